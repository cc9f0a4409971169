//! A steady-state training step performs zero heap allocations (single-threaded kernels): shapes
//! are static, so every buffer is sized on the first step and reused. Counted with a global
//! allocator that counts.
//!
//! The process runs without the test harness (`harness = false` in Cargo.toml): the harness's own
//! threads allocate at moments of their own, which a process-wide counter cannot tell from the
//! steps' (it made this test fail now and then). Here the only threads are this one and the
//! crate's kernel workers, whose allocations do count.

use shaped::data::synthetic;
use shaped::models::{Cnn, CnnBn, Mlp, TwoLayer, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "common/rescnn.rs"]
mod rescnn;
use rescnn::ResCnn;

/// The issue-17 elementwise layers and layer norm in an MLP.
#[derive(Sequential)]
#[sequential(input = (784,))]
struct Breadth {
    fc1: Linear<784, 32>,
    ln: LayerNorm<32>,
    gelu: GELU,
    fc2: Linear<32, 16>,
    tanh: Tanh,
    sig: Sigmoid,
    leaky: LeakyReLU,
    fc3: Linear<16, 10>,
    out: LogSoftmax,
}

/// The issue-17 pooling layers in a small CNN.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct BreadthCnn {
    conv: Conv2d<1, 4, 3, 1, 1>,
    pool: MaxPool2d<2, 2, 1>,
    avg: AvgPool2d<3>,
    gap: GlobalAvgPool,
    fc: Linear<4, 10>,
}

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

/// Allocations made by 12 training steps after two warm-up steps (which size the buffers),
/// cycling through full batches and a smaller last batch as an epoch does, alternately gathered
/// from the data set (`step`) and prepared as tensors (`step_batch`).
fn steady_state_allocs<S, M, L>(rule: UpdateRule, reg: f32, loss: L, data: shaped::data::Dataset) -> usize
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut model = M::init(&mut rng, Init::Gaussian(1e-2));
    let mut step = TrainStep::<S, M>::new(rule, reg, 50);
    let full: Vec<usize> = (0..50).collect();
    let short: Vec<usize> = (50..80).collect();
    for b in [&full, &short] {
        step.step(&mut model, &loss, &data, b, 1e-3).unwrap();
    }
    // The same batches prepared as tensors, for `step_batch` (allocated before counting).
    let prepared = [data.batch::<S>(&full).unwrap(), data.batch::<S>(&short).unwrap()];
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..6 {
        let b = if i % 3 == 2 { &short } else { &full };
        step.step(&mut model, &loss, &data, b, 1e-3).unwrap();
        let (x, y) = &prepared[usize::from(i % 3 == 2)];
        step.step_batch(&mut model, &loss, x, y, 1e-3).unwrap();
    }
    ALLOCS.load(Ordering::Relaxed) - before
}

// One test function: the counter is process-wide, so the cases must not run in parallel.
fn main() {
    training_steps_do_not_allocate();
    single_sample_inference_does_not_allocate();
    // The closing line test runners print, for the logs.
    println!("alloc: 2 passed, 0 failed");
}

/// Allocations of 20 single-sample predictions on arrays (after `Predictor::new`).
fn predictor_allocs<M: Model, const N: usize, const K: usize>() -> usize {
    let model = M::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
    let mut p = Predictor::new(&model);
    let mut x = [0f32; N];
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut check = 0f32;
    for i in 0..20 {
        x[i % N] = i as f32 * 0.1;
        let y: [f32; K] = p.predict(&x);
        check += y[0] + p.predict_class(&x) as f32;
    }
    let n = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(check.is_finite());
    n
}

fn single_sample_inference_does_not_allocate() {
    let cases = [
        ("3b", predictor_allocs::<Mlp, 784, 10>()),
        ("4a", predictor_allocs::<Cnn, 784, 10>()),
        ("4b", predictor_allocs::<CnnBn, 784, 10>()),
        ("residual CNN", predictor_allocs::<ResCnn, 768, 5>()),
        ("CNN with padded MaxPool2d, AvgPool2d, GlobalAvgPool", predictor_allocs::<BreadthCnn, 784, 10>()),
    ];
    for (name, n) in cases {
        assert_eq!(n, 0, "{name}: {n} heap allocations in 20 single-sample predictions");
    }
}

fn training_steps_do_not_allocate() {
    // With one thread, and with two (the convolutions then split the batch over a worker thread,
    // whose allocations the process-wide counter sees too).
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        for (name, n) in cases() {
            assert_eq!(n, 0, "experiment {name}, {threads} thread(s): {n} heap allocations in 12 steady-state steps");
        }
    }
    shaped::set_num_threads(1);
}

/// The regression path: real-valued targets gathered by `step` and passed to `step_targets`,
/// MSE, AdamW and gradient clipping (a limit low enough that every step clips).
fn regression_allocs() -> usize {
    type M = TwoLayer;
    let bin = synthetic::binary20(1, 100);
    let values: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.3).collect();
    let data = shaped::data::Dataset::regression(bin.features().to_vec(), values, &[20], 1).unwrap();
    let mut model = M::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::Gaussian(1e-2));
    let mut step = TrainStep::<(Dyn, Const<20>), M>::new(UpdateRule::AdamW, 0.1, 50).clip_grad_norm(Some(1e-3));
    let (full, short): (Vec<usize>, Vec<usize>) = ((0..50).collect(), (50..80).collect());
    for b in [&full, &short] {
        step.step(&mut model, &shaped::loss::Mse, &data, b, 1e-3).unwrap();
    }
    let prepared =
        [data.batch_values::<(Dyn, Const<20>)>(&full).unwrap(), data.batch_values::<(Dyn, Const<20>)>(&short).unwrap()];
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..6 {
        let b = if i % 3 == 2 { &short } else { &full };
        step.step(&mut model, &shaped::loss::Mse, &data, b, 1e-3).unwrap();
        let (x, y) = &prepared[usize::from(i % 3 == 2)];
        step.step_targets(&mut model, &shaped::loss::Mse, x, y, 1e-3).unwrap();
    }
    let n = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(step.grad_norm() > 1e-3, "the steps clipped");
    n
}

/// Steps with per-batch augmentation (random crop, flips) gathered from a data set.
fn augmented_allocs() -> usize {
    let data = synthetic::random_images(1, 100, &[1, 28, 28], 10);
    let mut model = CnnBn::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
    let aug = shaped::data::Augment { crop_pad: 3, hflip: true };
    let mut step =
        TrainStep::<(Dyn, Const<1>, Const<28>, Const<28>), CnnBn>::new(UpdateRule::Adam, 0.0, 50).augment(Some(aug));
    let (full, short): (Vec<usize>, Vec<usize>) = ((0..50).collect(), (50..80).collect());
    for b in [&full, &short] {
        step.step(&mut model, &SoftmaxCrossEntropy::<10>, &data, b, 1e-3).unwrap();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..6 {
        step.set_augment_seed(i);
        let b = if i % 3 == 2 { &short } else { &full };
        step.step(&mut model, &SoftmaxCrossEntropy::<10>, &data, b, 1e-3).unwrap();
    }
    ALLOCS.load(Ordering::Relaxed) - before
}

fn cases() -> [(&'static str, usize); 10] {
    let bin = synthetic::binary20(1, 100);
    let img = synthetic::random_images(1, 100, &[1, 28, 28], 10);
    let flat = synthetic::random_images(1, 100, &[784], 10);
    [
        (
            "1b",
            steady_state_allocs::<(Dyn, Const<20>), TwoLayer, _>(UpdateRule::SgdMomentum, 0.3, Logistic, bin.clone()),
        ),
        ("2b", steady_state_allocs::<(Dyn, Const<20>), TwoLayer, _>(UpdateRule::SgdMomentum, 0.3, Hinge, bin)),
        (
            "3b",
            steady_state_allocs::<(Dyn, Const<784>), Mlp, _>(
                UpdateRule::RmsProp,
                0.01,
                SoftmaxCrossEntropy::<10>,
                flat,
            ),
        ),
        (
            "4a",
            steady_state_allocs::<(Dyn, Const<1>, Const<28>, Const<28>), Cnn, _>(
                UpdateRule::SgdMomentum,
                0.0,
                SoftmaxCrossEntropy::<10>,
                img.clone(),
            ),
        ),
        (
            "4b",
            steady_state_allocs::<(Dyn, Const<1>, Const<28>, Const<28>), CnnBn, _>(
                UpdateRule::Adam,
                0.0,
                SoftmaxCrossEntropy::<10>,
                img.clone(),
            ),
        ),
        (
            "MLP with LayerNorm, GELU, Tanh, Sigmoid, LeakyReLU, LogSoftmax",
            steady_state_allocs::<(Dyn, Const<784>), Breadth, _>(
                UpdateRule::Adam,
                0.0,
                SoftmaxCrossEntropy::<10>,
                synthetic::random_images(1, 100, &[784], 10),
            ),
        ),
        (
            "CNN with padded MaxPool2d, AvgPool2d, GlobalAvgPool",
            steady_state_allocs::<(Dyn, Const<1>, Const<28>, Const<28>), BreadthCnn, _>(
                UpdateRule::Adam,
                0.0,
                SoftmaxCrossEntropy::<10>,
                img,
            ),
        ),
        (
            "5 (the VGG: Winograd, dense and im2col convolutions, batches of 50 and 30)",
            steady_state_allocs::<(Dyn, Const<3>, Const<32>, Const<32>), Vgg, _>(
                UpdateRule::Adam,
                0.0,
                SoftmaxCrossEntropy::<10>,
                synthetic::random_images(1, 100, &[3, 32, 32], 10),
            ),
        ),
        ("regression (MSE, AdamW, clipping)", regression_allocs()),
        ("4b with augmentation", augmented_allocs()),
    ]
}
