//! Training breadth: AdamW and Nesterov against hand-computed values, optimizer hyper-parameters
//! through `AnyOptimizer::with_config` and the solver, learning-rate schedules, gradient clipping,
//! early stopping, the seeded shuffled split, and resuming a regression run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::data::{Dataset, synthetic};
use shaped::loss::Mse;
use shaped::optim::{Adam, AdamW, OptimConfig, SgdMomentum};
use shaped::prelude::*;
use shaped::schedule::{Constant, Exponential, Progress, Schedule, StepDecay, WarmupCosine};
use shaped::solver::{History, Solver};
use shaped::step::TrainStep;
use std::path::PathBuf;

type Fc = Linear<2, 1, f64>;

/// `w = [1, -2]`, `b = 0.5`.
fn model() -> Fc {
    let mut m = Fc::zeros();
    m.weight.as_mut_slice().copy_from_slice(&[1.0, -2.0]);
    m.bias.as_mut_slice().copy_from_slice(&[0.5]);
    m
}

const GRADS: [[f64; 3]; 3] = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.1], [-0.3, 0.5, 0.2]];

fn grads(step: usize) -> Fc {
    let mut m = Fc::zeros();
    m.weight.as_mut_slice().copy_from_slice(&GRADS[step][..2]);
    m.bias.as_mut_slice().copy_from_slice(&GRADS[step][2..]);
    m
}

fn params(m: &Fc) -> [f64; 3] {
    [m.weight.as_slice()[0], m.weight.as_slice()[1], m.bias.as_slice()[0]]
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "got {got:?}, want {want:?}");
    }
}

#[test]
fn adamw_decays_weights_then_takes_adams_step() {
    let mut opt = AdamW::<Fc, f64>::new();
    assert_eq!((opt.adam.beta1, opt.adam.beta2, opt.adam.eps, opt.weight_decay), (0.9, 0.999, 1e-8, 1e-2));
    let mut m = model();
    opt.step(&mut m, &grads(0), 0.1);
    // Step 1: weights × (1 − 0.1·0.01) = 0.999 (not the bias), then Adam's first step
    // lr·m̂/(√v̂ + ε) = 0.1·g/(|g| + 1e-8).
    let adam1 = |g: f64| 0.1 * g / (g.abs() + 1e-8);
    assert_close(&params(&m), &[0.999 - adam1(0.1), -1.998 - adam1(-0.2), 0.5 - adam1(0.3)]);
    // Steps 2 and 3 equal Adam on a model whose weights are decayed by hand first.
    let (mut reference, mut adam) = (model(), Adam::<Fc, f64>::new());
    let mut m = model();
    let mut opt = AdamW::<Fc, f64>::with(0.9, 0.999, 1e-8, 0.05);
    for s in 0..3 {
        opt.step(&mut m, &grads(s), 0.01);
        for w in reference.weight.as_mut_slice() {
            *w *= 1.0 - 0.01 * 0.05;
        }
        adam.step(&mut reference, &grads(s), 0.01);
        assert_eq!(params(&m), params(&reference), "step {}", s + 1);
    }
    assert_eq!(Optimizer::<Fc, f64>::name(&opt), "adamw");
    assert_eq!("AdamW".parse::<UpdateRule>().unwrap(), UpdateRule::AdamW);
}

#[test]
fn nesterov_momentum_matches_hand_computed_values() {
    let mut opt = SgdMomentum::<Fc, f64>::nesterov(0.9);
    let mut m = model();
    opt.step(&mut m, &grads(0), 0.1);
    // v1 = −0.1·g1 = [−0.01, 0.02, −0.03]; w += 0.9·v1 − 0.1·g1 = 1.9·v1.
    assert_close(&params(&m), &[0.981, -1.962, 0.443]);
    opt.step(&mut m, &grads(1), 0.1);
    // v2 = 0.9·v1 − 0.1·g2 = [−0.049, 0.018, −0.017]; w += 0.9·v2 − 0.1·g2 = [−0.0841, 0.0162, −0.0053].
    assert_close(&params(&m), &[0.8969, -1.9458, 0.4377]);
}

#[test]
fn with_config_sets_every_hyper_parameter() {
    let c =
        OptimConfig { momentum: 0.5, nesterov: true, rho: 0.9, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.1 };
    let any = |r| AnyOptimizer::<Fc, f64>::with_config(r, &c);
    match any(UpdateRule::SgdMomentum) {
        AnyOptimizer::SgdMomentum(o) => assert_eq!((o.momentum, o.nesterov), (0.5, true)),
        o => panic!("{o:?}"),
    }
    match any(UpdateRule::RmsProp) {
        AnyOptimizer::RmsProp(o) => assert_eq!((o.decay, o.eps), (0.9, 1e-6)),
        o => panic!("{o:?}"),
    }
    match any(UpdateRule::Adam) {
        AnyOptimizer::Adam(o) => assert_eq!((o.beta1, o.beta2, o.eps), (0.8, 0.99, 1e-6)),
        o => panic!("{o:?}"),
    }
    match any(UpdateRule::AdamW) {
        AnyOptimizer::AdamW(o) => {
            assert_eq!((o.adam.beta1, o.adam.beta2, o.adam.eps, o.weight_decay), (0.8, 0.99, 1e-6, 0.1))
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.describe(UpdateRule::AdamW), "beta1=0.8 beta2=0.99 eps=0.000001 weight_decay=0.1");
    assert_eq!(
        AnyOptimizer::<Fc, f64>::new(UpdateRule::Adam),
        AnyOptimizer::with_config(UpdateRule::Adam, &OptimConfig::default())
    );
}

fn at(epoch: usize, step: usize) -> Progress {
    Progress { epoch, step, steps_per_epoch: 10, epochs: 2 }
}

#[test]
fn schedules_give_their_rates() {
    assert_eq!(Constant.lr(0.1, &at(2, 5)), 0.1);
    let e = Exponential { gamma: 0.5 };
    assert_eq!([e.lr(0.1, &at(1, 9)), e.lr(0.1, &at(3, 0))], [0.1, 0.1f32 * 0.5 * 0.5]);
    let s = StepDecay { every: 2, gamma: 0.1 };
    let lrs: Vec<f32> = (1..=5).map(|k| s.lr(1.0, &at(k, 0))).collect();
    assert_eq!(lrs, [1.0, 1.0, 0.1, 0.1, 0.1f32 * 0.1]);
    assert!(!s.per_step() && !e.per_step());
    let c = WarmupCosine::new(4);
    assert!(c.per_step());
    let lr = |t: usize| c.lr(0.8, &at(1 + t / 10, t % 10));
    assert_eq!([lr(0), lr(1), lr(3), lr(4)], [0.2, 0.4, 0.8, 0.8]);
    // After warm-up, 16 steps of cosine: half-way (step 12) is half the rate.
    assert!((lr(12) - 0.4).abs() < 1e-7, "{}", lr(12));
    assert!((lr(19) - 0.4 * (1.0 + (std::f32::consts::PI * 15.0 / 16.0).cos())).abs() < 1e-7);
    assert!((1..20).all(|t| t <= 4 || lr(t) < lr(t - 1)), "decreasing after warm-up");
    let floor = WarmupCosine { warmup: 0, min_lr: 0.1, epochs: None };
    let fixed = WarmupCosine { epochs: Some(1), ..WarmupCosine::new(4) };
    assert_eq!(
        (fixed.lr(0.8, &at(1, 7)), fixed.lr(0.8, &at(2, 5))),
        (c.lr(0.8, &Progress { epochs: 1, ..at(1, 7) }), 0.0)
    );
    assert!(c.depends_on_epochs() && !fixed.depends_on_epochs());
    assert!(
        (floor.lr(1.0, &at(2, 9)) - (0.1 + 0.9 * 0.5 * (1.0 + (std::f32::consts::PI * 19.0 / 20.0).cos()))).abs()
            < 1e-6
    );
    assert_eq!(e.describe(), "exponential(gamma=0.5)");
}

type Net = Linear<20, 1>;

fn fresh() -> Net {
    Net::init(&mut StdRng::seed_from_u64(4), Init::Xavier)
}

fn bits(m: &Net) -> Vec<u32> {
    m.weight.as_slice().iter().chain(m.bias.as_slice()).map(|v| v.to_bits()).collect()
}

#[test]
fn lr_decay_is_the_exponential_schedule_bit_for_bit() {
    let (train, val) = synthetic::binary20(2, 300).split_at(200);
    let go = |s: Solver| {
        let mut m = fresh();
        let h = s
            .rule(UpdateRule::SgdMomentum)
            .lr(0.3)
            .epochs(4)
            .batch_size(25)
            .train(&mut m, &Logistic, &train, &val)
            .unwrap();
        (h, bits(&m))
    };
    let (a, pa) = go(Solver::new().lr_decay(0.7));
    let (b, pb) = go(Solver::new().schedule(Exponential { gamma: 0.7 }));
    assert_eq!(pa, pb);
    assert_eq!(a.lr, b.lr);
    assert_eq!(a.lr, [0.3, 0.3f32 * 0.7, 0.3f32 * 0.7 * 0.7, 0.3f32 * 0.7 * 0.7 * 0.7]);
}

#[test]
fn a_clipped_step_equals_a_step_with_the_scaled_gradient() {
    let data = synthetic::binary20(5, 64);
    let idx: Vec<usize> = (0..64).collect();
    let (lr, max) = (0.5f32, 0.01f32);
    let (mut clipped, mut scaled) = (fresh(), fresh());
    let mut a = TrainStep::<(Dyn, Const<20>), Net>::new(UpdateRule::Sgd, 0.0, 64).clip_grad_norm(Some(max));
    a.step(&mut clipped, &Logistic, &data, &idx, lr).unwrap();
    let norm = a.grad_norm();
    assert!(norm > 10.0 * max, "the gradient must be clipped: norm {norm}");
    // Unclipped (a limit above the norm), with the learning rate scaled instead.
    let mut b = TrainStep::<(Dyn, Const<20>), Net>::new(UpdateRule::Sgd, 0.0, 64).clip_grad_norm(Some(f32::MAX));
    b.step(&mut scaled, &Logistic, &data, &idx, lr * max / (norm + 1e-6)).unwrap();
    assert_eq!(b.grad_norm(), norm);
    let (p, q) = (fresh(), &clipped);
    let moved: f32 = p.weight.as_slice().iter().zip(q.weight.as_slice()).map(|(x, y)| (x - y).powi(2)).sum::<f32>()
        + (p.bias.as_slice()[0] - q.bias.as_slice()[0]).powi(2);
    assert!((moved.sqrt() - lr * max).abs() < 1e-3 * lr * max, "the step has length lr·max: {}", moved.sqrt());
    for (x, y) in clipped
        .weight
        .as_slice()
        .iter()
        .chain(clipped.bias.as_slice())
        .zip(scaled.weight.as_slice().iter().chain(scaled.bias.as_slice()))
    {
        assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
    }
}

/// `y = 3·x₀ − 2·x₁ + 0.5` (or its mirror image, `sign = -1`) on uniform inputs.
fn line(n: usize, seed: u64, sign: f32) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y = x.chunks(2).map(|p| sign * (3.0 * p[0] - 2.0 * p[1]) + 0.5).collect();
    Dataset::regression(x, y, &[2], 1).unwrap()
}

#[test]
fn early_stopping_stops_after_patience_and_restores_the_best_epoch() {
    // The validation set is the mirror image: fitting the training set soon makes it worse.
    let (train, val) = (line(200, 1, 1.0), line(50, 2, -1.0));
    let solver = Solver::new().rule(UpdateRule::Adam).lr(0.02).batch_size(20).early_stopping(3);
    let dir = tmpdir("early");
    let last = dir.join("early.last.safetensors");
    let mut m = Linear::<2, 1>::zeros();
    let h = solver.clone().epochs(100).last_checkpoint(&last).train(&mut m, &Mse, &train, &val).unwrap();
    assert!(h.stopped_early > 0 && h.stopped_early < 100, "{h:?}");
    assert_eq!(h.stopped_early, h.best_epoch + 3);
    assert_eq!(h.val_loss.len(), h.stopped_early);
    assert!(h.val_loss[h.best_epoch..].iter().all(|&l| l >= h.best_val_loss));
    // The parameters are the best epoch's: those of a run that ends there.
    let mut short = Linear::<2, 1>::zeros();
    let hs = solver.clone().epochs(h.best_epoch).train(&mut short, &Mse, &train, &val).unwrap();
    assert_eq!(hs.stopped_early, 0);
    assert_eq!(m.weight.as_slice(), short.weight.as_slice());
    assert_eq!(m.bias.as_slice(), short.bias.as_slice());
    // Resuming the stopped run trains no further: the same history and parameters.
    let mut resumed = Linear::<2, 1>::zeros();
    let hr = solver.epochs(100).resume_from(&last).train(&mut resumed, &Mse, &train, &val).unwrap();
    assert_eq!(History { train_seconds: 0.0, ..hr }, History { train_seconds: 0.0, ..h });
    assert_eq!(resumed.weight.as_slice(), m.weight.as_slice());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shuffled_splits_are_seeded_disjoint_and_complete() {
    let n = 100;
    let ds = Dataset::new((0..n).map(|i| i as f32).collect(), (0..n).map(|i| i % 3).collect(), &[1], 3).unwrap();
    let (tr, va) = ds.split_shuffled(0.25, 9).unwrap();
    assert_eq!((tr.len(), va.len()), (75, 25));
    let mut all: Vec<f32> = tr.features().iter().chain(va.features()).copied().collect();
    all.sort_by(f32::total_cmp);
    assert_eq!(all, (0..n).map(|i| i as f32).collect::<Vec<_>>(), "disjoint and complete");
    assert!(va.features().windows(2).all(|w| w[0] < w[1]), "original order kept");
    assert!(va.features().iter().zip(va.labels()).all(|(&x, &l)| l == x as usize % 3), "labels follow");
    let (tr2, va2) = ds.split_shuffled(0.25, 9).unwrap();
    assert_eq!((tr2.digest(), va2.digest()), (tr.digest(), va.digest()), "same seed, same split");
    let (_, va3) = ds.split_shuffled(25usize, 10).unwrap();
    assert_ne!(va3.digest(), va.digest(), "another seed, another split");
    assert_ne!(va.features(), &(0..25).map(|i| i as f32).collect::<Vec<_>>()[..], "shuffled, not the first 25");
    assert!(ds.split_shuffled(1.5, 0).unwrap_err().to_string().contains("1.5"));
    assert!(ds.split_shuffled(101usize, 0).unwrap_err().to_string().contains("101"));
}

fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("training-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_resumed_regression_run_with_adamw_cosine_and_clipping_is_bit_identical() {
    let (train, val) = (line(120, 3, 1.0), line(40, 4, 1.0));
    let dir = tmpdir("resume");
    let solver = Solver::new()
        .rule(UpdateRule::AdamW)
        .optim(OptimConfig { beta1: 0.85, weight_decay: 0.05, ..OptimConfig::default() })
        .schedule(WarmupCosine { epochs: Some(4), ..WarmupCosine::new(5) })
        .clip_grad_norm(1.0)
        .lr(0.05)
        .batch_size(16)
        .seed(3);
    let untimed = |h: History| History { train_seconds: 0.0, ..h };
    let mut full = Linear::<2, 1>::zeros();
    let hf = solver.clone().epochs(4).train(&mut full, &Mse, &train, &val).unwrap();
    let last = dir.join("run.last.safetensors");
    let mut part = Linear::<2, 1>::zeros();
    solver.clone().epochs(2).last_checkpoint(&last).train(&mut part, &Mse, &train, &val).unwrap();
    let mut resumed = Linear::<2, 1>::zeros();
    let hr = solver.clone().epochs(4).resume_from(&last).train(&mut resumed, &Mse, &train, &val).unwrap();
    assert_eq!(resumed.weight.as_slice(), full.weight.as_slice());
    assert_eq!(resumed.bias.as_slice(), full.bias.as_slice());
    assert_eq!(untimed(hr), untimed(hf));
    // Other hyper-parameters, schedule or clipping: refused, naming what differs.
    for (s, phrase) in [
        (solver.clone().optim(OptimConfig::default()), "optimizer hyper-parameters: beta1=0.85"),
        (
            solver.clone().schedule(WarmupCosine::new(5)),
            "learning-rate schedule: warmup_cosine(warmup=5, min_lr=0, epochs=4) in the checkpoint, warmup_cosine(warmup=5, min_lr=0, epochs=run) over 4 epochs in this run",
        ),
        (solver.clone().clip_grad_norm(2.0), "gradient clipping (max norm): 1 in the checkpoint, 2 in this run"),
    ] {
        let mut m = Linear::<2, 1>::zeros();
        let e = s.epochs(4).resume_from(&last).train(&mut m, &Mse, &train, &val).unwrap_err();
        assert!(e.to_string().contains(phrase), "{e}");
    }
    // A cosine spanning the run's epochs cannot be extended by a resume: its rates would change.
    let spanning = solver.clone().schedule(WarmupCosine::new(5));
    let mut m = Linear::<2, 1>::zeros();
    spanning.clone().epochs(2).last_checkpoint(&last).train(&mut m, &Mse, &train, &val).unwrap();
    let e = spanning.epochs(4).resume_from(&last).train(&mut m, &Mse, &train, &val).unwrap_err();
    assert!(e.to_string().contains("over 2 epochs in the checkpoint"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
