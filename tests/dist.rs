//! Data-parallel training without MPI: `Solver::train_distributed` over `dist::ThreadComm` (ranks
//! are threads of this process) against `Solver::train` with the same global batch, the
//! start-up refusal and the per-epoch drift check. `tests/mpi.rs` runs the same under `mpirun`.

use shaped::data::{Dataset, random_images};
use shaped::dist::{Comm, ThreadComm, check_in_step};
use shaped::models::{Cnn, CnnBn, Mlp};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{History, Solver};

fn images(seed: u64, n: usize, dims: &[usize]) -> Dataset {
    let mut d = random_images(seed, n, dims, 10);
    d.scale(1.0 / 255.0);
    d
}

fn solver(batch: usize, epochs: usize) -> Solver {
    Solver::new().rule(UpdateRule::SgdMomentum).lr(0.05).batch_size(batch).epochs(epochs).seed(3).train_sample(100)
}

/// Runs `f(rank's comm)` on `n` threads; the ranks' results in rank order.
fn on_ranks<T: Send>(n: usize, f: impl Fn(&ThreadComm) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadComm::group(n).into_iter().map(|c| s.spawn(|| f(&{ c }))).collect();
        handles.into_iter().map(|h| h.join().expect("a rank panicked")).collect()
    })
}

/// One process and `n` ranks on the same model type, data and settings: the per-step losses.
fn compare<S, M>(n: usize, dims: &[usize], samples: usize, batch: usize)
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    SoftmaxCrossEntropy<10>: Loss<M::Out, f32, Target = usize>,
{
    let (train, val) = (images(1, samples, dims), images(2, 100, dims));
    let init = || M::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
    let mut one = init();
    let alone = solver(batch, 2).train_as::<S, M, _>(&mut one, &SoftmaxCrossEntropy::<10>, &train, &val).unwrap();
    let ranks: Vec<(History, u64)> = on_ranks(n, |c| {
        let mut m = init();
        let h = solver(batch, 2)
            .train_distributed_as::<S, M, _>(c, &mut m, &SoftmaxCrossEntropy::<10>, &train, &val)
            .unwrap();
        (h, shaped::dist::param_checksum(&m))
    });
    let what = format!("{}, {n} ranks, batch {batch} of {samples}", M::type_name());
    assert_eq!(alone.loss.len(), 2 * samples.div_ceil(batch), "{what}");
    for (r, (h, sum)) in ranks.iter().enumerate() {
        // Every rank holds the same history and parameters.
        assert_eq!(h.loss, ranks[0].0.loss, "{what}: rank {r}");
        assert_eq!(*sum, ranks[0].1, "{what}: rank {r}");
        assert_eq!(h.val_acc, ranks[0].0.val_acc, "{what}: rank {r}");
    }
    for (i, (a, b)) in alone.loss.iter().zip(&ranks[0].0.loss).enumerate() {
        let rel = ((a - b) / a).abs();
        assert!(rel <= 1e-5, "{what}: step {i}: one process {a}, ranks {b} (relative {rel:e})");
    }
    // Accuracy on the ranks' shards, summed: the one-process value (up to a prediction flipped by
    // the last bits of the parameters).
    for (a, b) in alone.val_acc.iter().zip(&ranks[0].0.val_acc) {
        assert!((a - b).abs() <= 0.011, "{what}: validation accuracy {a} alone, {b} on ranks");
    }
    assert!(alone.loss.iter().any(|l| (l - alone.loss[0]).abs() > 1e-3), "{what}: the loss never moved");
}

#[test]
fn ranks_follow_the_one_process_trajectory() {
    type Flat = (Dyn, Const<784>);
    type Img = (Dyn, Const<1>, Const<28>, Const<28>);
    // 2 ranks: even shards; 3 ranks over a batch of 50 (16, 17, 17) and a last batch of 10.
    compare::<Flat, Mlp>(2, &[784], 600, 50);
    compare::<Flat, Mlp>(3, &[784], 610, 50);
    compare::<Img, Cnn>(2, &[1, 28, 28], 302, 51);
    compare::<Img, Cnn>(3, &[1, 28, 28], 310, 50);
    // A batch smaller than the number of ranks: rank 0's shard is empty.
    compare::<Flat, Mlp>(3, &[784], 20, 2);
}

#[test]
fn batch_norm_statistics_stay_identical_on_every_rank() {
    type Img = (Dyn, Const<1>, Const<28>, Const<28>);
    let (train, val) = (images(1, 200, &[1, 28, 28]), images(2, 50, &[1, 28, 28]));
    let sums = on_ranks(2, |c| {
        let mut m = CnnBn::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
        let s = solver(20, 2).lr(0.01);
        s.train_distributed_as::<Img, CnnBn, _>(c, &mut m, &SoftmaxCrossEntropy::<10>, &train, &val).unwrap();
        let mut running = Vec::new();
        m.visit_params(&ParamPath::ROOT, &mut |info, d| {
            if !info.kind.trainable() {
                running.extend_from_slice(d);
            }
        });
        (shaped::dist::param_checksum(&m), running)
    });
    assert_eq!(sums[0], sums[1]);
    // The running statistics moved from their initial values (mean 0, variance 1).
    assert!(sums[0].1.iter().any(|v| *v != 0.0 && *v != 1.0));
}

#[test]
fn ranks_that_disagree_are_refused_before_training() {
    type Flat = (Dyn, Const<784>);
    let (train, val) = (images(1, 100, &[784]), images(2, 20, &[784]));
    let other = images(9, 100, &[784]);
    let errors = on_ranks(3, |c| {
        let mut m = Mlp::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
        let s = if c.rank() == 2 { solver(10, 1).seed(4) } else { solver(10, 1) };
        let data = if c.rank() == 1 { &other } else { &train };
        s.train_distributed_as::<Flat, Mlp, _>(c, &mut m, &SoftmaxCrossEntropy::<10>, data, &val)
            .unwrap_err()
            .to_string()
    });
    for e in &errors {
        assert!(e.contains("distributed run refused"), "{e}");
        assert!(e.contains("seed (rank 2 differs from rank 0"), "{e}");
        assert!(e.contains("training data digest (rank 1 differs from rank 0"), "{e}");
        assert!(!e.contains("learning rate"), "{e}");
    }
}

#[test]
fn parameters_that_drift_apart_are_reported() {
    let errors = on_ranks(2, |c| {
        let mut m = Linear::<3, 2>::zeros();
        check_in_step(c, &m, "epoch 1").unwrap();
        if c.rank() == 1 {
            m.visit_params_mut(&ParamPath::ROOT, &mut |_, d| d[0] = 1e-30);
        }
        check_in_step(c, &m, "epoch 2").unwrap_err().to_string()
    });
    assert_eq!(errors[0], errors[1]);
    assert!(errors[0].contains("drifted apart after epoch 2: rank(s) 1 differ from rank 0"), "{}", errors[0]);
}

#[test]
fn augmented_ranks_stay_in_step_and_repeat() {
    type Img = (Dyn, Const<1>, Const<28>, Const<28>);
    let (train, val) = (images(1, 120, &[1, 28, 28]), images(2, 40, &[1, 28, 28]));
    let aug = shaped::data::Augment { crop_pad: 2, hflip: true };
    let run = || {
        on_ranks(2, |c| {
            let mut m = Cnn::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
            let h = solver(20, 2)
                .augment(aug)
                .train_distributed_as::<Img, Cnn, _>(c, &mut m, &SoftmaxCrossEntropy::<10>, &train, &val)
                .unwrap();
            (h.loss, shaped::dist::param_checksum(&m))
        })
    };
    let (a, b) = (run(), run());
    // Both ranks hold the same model (checked after every epoch too), and a second run repeats the first.
    assert_eq!(a[0], a[1]);
    assert_eq!(a, b);
    // The crops and flips changed the run.
    let plain = on_ranks(2, |c| {
        let mut m = Cnn::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
        solver(20, 2)
            .train_distributed_as::<Img, Cnn, _>(c, &mut m, &SoftmaxCrossEntropy::<10>, &train, &val)
            .unwrap()
            .loss
    });
    assert_ne!(plain[0], a[0].0);
}

/// A rank that fails after the start-up checks (here: rank 1 cannot read the checkpoint it is to
/// resume from) ends every rank's run with an error, none left waiting in a collective: rank 1
/// returns its own error naming the file, the others one naming rank 1.
#[test]
fn an_error_on_one_rank_ends_every_rank() {
    // A watchdog: a rank left waiting would hang the test, so fail it loudly instead.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("an_error_on_one_rank_ends_every_rank: a rank still waits after 120 s");
            std::process::exit(1);
        }
    });
    let (train, val) = (images(1, 100, &[784]), images(2, 20, &[784]));
    let missing = std::env::temp_dir().join(format!("shaped-no-such-resume-{}.safetensors", std::process::id()));
    let errors = on_ranks(3, |c| {
        let mut m = Mlp::init(&mut rand::rngs::StdRng::seed_from_u64(7), Init::He);
        let s = if c.rank() == 1 { solver(10, 2).resume_from(&missing) } else { solver(10, 2) };
        s.train_distributed(c, &mut m, &SoftmaxCrossEntropy::<10>, &train, &val).unwrap_err().to_string()
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(errors[1].contains("shaped-no-such-resume"), "rank 1 returns its own error: {}", errors[1]);
    for r in [0, 2] {
        assert!(errors[r].contains("rank(s) 1 failed"), "rank {r}: {}", errors[r]);
    }
}
