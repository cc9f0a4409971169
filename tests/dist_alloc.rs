//! A steady-state data-parallel step (`TrainStep::step_shard`) allocates nothing either: the flat
//! gradient buffer is sized on the first step and the communicator's buffers are reused. Counted
//! with a global allocator that counts, without the test harness (whose threads allocate at
//! moments of their own), like tests/alloc.rs; the communicator is `dist::Local` (one rank), the
//! shards a part of a larger global batch so that the weighting runs.

use shaped::data::random_images;
use shaped::dist::{Comm, Local, ThreadComm};
use shaped::models::{CnnBn, Mlp};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations of 12 shard steps after two warm-up steps, over `comm`.
fn shard_step_allocs<S, M>(comm: &dyn Comm, dims: &[usize]) -> usize
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    SoftmaxCrossEntropy<10>: Loss<M::Out, f32>,
{
    let data = random_images(1, 100, dims, 10);
    let mut model = M::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
    let mut step = TrainStep::<S, M>::new(UpdateRule::SgdMomentum, 1e-3, 50).clip_grad_norm(Some(1.0));
    let (full, short): (Vec<usize>, Vec<usize>) = ((0..50).collect(), (50..80).collect());
    let loss = SoftmaxCrossEntropy::<10>;
    for b in [&full, &short] {
        step.step_shard(&mut model, &loss, &data, b, 2 * b.len(), 1e-3, comm).unwrap();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..12 {
        let b = if i % 3 == 2 { &short } else { &full };
        step.step_shard(&mut model, &loss, &data, b, 2 * b.len(), 1e-3, comm).unwrap();
    }
    ALLOCS.load(Ordering::Relaxed) - before
}

fn main() {
    type Img = (Dyn, Const<1>, Const<28>, Const<28>);
    // One kernel thread: the kernels' own splits are tests/alloc.rs's business.
    let n = shard_step_allocs::<(Dyn, Const<784>), Mlp>(&Local, &[784]);
    assert_eq!(n, 0, "3b: {n} heap allocations in 12 steady-state shard steps");
    // 4b: batch norm's running statistics travel in the flat buffer too.
    let n = shard_step_allocs::<Img, CnnBn>(&Local, &[1, 28, 28]);
    assert_eq!(n, 0, "4b: {n} heap allocations in 12 steady-state shard steps");
    // The in-process communicator reuses its slots as well (one rank: no other thread allocates).
    let group = ThreadComm::group(1);
    let n = shard_step_allocs::<(Dyn, Const<784>), Mlp>(&group[0], &[784]);
    assert_eq!(n, 0, "3b over ThreadComm: {n} heap allocations in 12 steady-state shard steps");
    println!("dist_alloc: 1 passed, 0 failed");
}
