//! What a step, a run and an evaluation refuse instead of training or answering wrongly: batch norm
//! on one value per channel (a batch of 1 sample for `BatchNorm1d`), an empty batch, a learning
//! rate that is not a finite value ≥ 0, batches of 0 samples in an evaluation, and labels the
//! model's outputs cannot take. Each is an error that names what is wrong and leaves the model as
//! it was.

use shaped::data::Dataset;
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{accuracy, mean_loss, predict};
use shaped::step::TrainStep;

/// Batch norm over features: one value per channel at batch size 1.
#[derive(Sequential)]
#[sequential(input = (6,))]
struct Feat {
    fc1: Linear<6, 8>,
    bn: BatchNorm1d<8>,
    act: ReLU,
    fc2: Linear<8, 4>,
}

/// Batch norm over 4×4 maps: 16 values per channel even at batch size 1.
#[derive(Sequential)]
#[sequential(input = (1, 4, 4))]
struct Maps {
    conv: Conv2d<1, 2, 3, 1, 1>,
    bn: BatchNorm2d<2>,
    act: ReLU,
    flat: Flatten,
    fc: Linear<32, 4>,
}

/// `n` samples of `len` features in 4 classes (the class is the sign pattern of two features).
fn data(n: usize, len: usize, classes: usize) -> Dataset {
    let x: Vec<f32> = (0..n * len).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 0.9).collect();
    let y: Vec<usize> = (0..n).map(|i| usize::from(x[i * len] > 0.0) + 2 * usize::from(x[i * len + 1] > 0.0)).collect();
    let y = y.into_iter().enumerate().map(|(i, c)| if classes > 4 && i % 7 == 3 { 6 } else { c }).collect();
    Dataset::new(x, y, &[len], classes).unwrap()
}

/// Every parameter and buffer of `m`.
fn values<M: Module<f32>>(m: &M) -> Vec<f32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend_from_slice(d));
    out
}

fn feat() -> Feat {
    Feat::init(&mut rand::rngs::StdRng::seed_from_u64(3), Init::He)
}

#[test]
fn batch_norm_on_one_value_per_channel_refuses_a_batch_of_one() {
    let d = data(8, 6, 4);
    let mut m = feat();
    let mut step = TrainStep::<(Dyn, Const<6>), Feat>::new(UpdateRule::Adam, 1e-2, 8);
    let before = values(&m);
    let err = step.step(&mut m, &SoftmaxCrossEntropy::<4>, &d, &[3], 0.01).unwrap_err().to_string();
    assert!(err.contains("`bn` (BatchNorm1d<8>)") && err.contains("batch of 1 sample"), "{err}");
    assert_eq!(values(&m), before, "a refused step changes nothing");
    assert_eq!(TrainStep::<(Dyn, Const<6>), Feat>::min_batch().0, 2);
    // Two samples train.
    step.step(&mut m, &SoftmaxCrossEntropy::<4>, &d, &[3, 4], 0.01).unwrap();
    assert_ne!(values(&m), before);
    // Over 4×4 maps a batch of one sample has 16 values per channel: it trains.
    let d = data(8, 16, 4);
    let mut maps = Maps::init(&mut rand::rngs::StdRng::seed_from_u64(3), Init::He);
    let mut step = TrainStep::<(Dyn, Const<1>, Const<4>, Const<4>), Maps>::new(UpdateRule::Adam, 0.0, 8);
    step.step(&mut maps, &SoftmaxCrossEntropy::<4>, &d, &[5], 0.01).unwrap();
    assert_eq!(TrainStep::<(Dyn, Const<1>, Const<4>, Const<4>), Maps>::min_batch(), (1, None));
}

#[test]
fn an_empty_batch_and_a_bad_learning_rate_are_refused() {
    let d = data(8, 6, 4);
    let mut m = feat();
    // (L2 and Adam: an empty step used to apply the penalty's gradient to every parameter.)
    let mut step = TrainStep::<(Dyn, Const<6>), Feat>::new(UpdateRule::Adam, 1e-2, 8);
    let before = values(&m);
    let err = step.step(&mut m, &SoftmaxCrossEntropy::<4>, &d, &[], 0.01).unwrap_err().to_string();
    assert!(err.contains("empty batch"), "{err}");
    let (x, y) = d.batch::<(Dyn, Const<6>)>(&[]).unwrap();
    assert!(step.step_batch(&mut m, &SoftmaxCrossEntropy::<4>, &x, &y, 0.01).is_err());
    for lr in [f32::NAN, f32::INFINITY, -0.01] {
        let err = step.step(&mut m, &SoftmaxCrossEntropy::<4>, &d, &[0, 1, 2], lr).unwrap_err().to_string();
        assert!(err.contains("learning rate") && err.contains("finite value ≥ 0"), "{lr}: {err}");
    }
    assert_eq!(values(&m), before, "refused steps change nothing");
    step.step(&mut m, &SoftmaxCrossEntropy::<4>, &d, &[0, 1, 2], 0.0).unwrap();
}

#[test]
fn the_solver_refuses_batches_too_small_and_leaves_out_a_short_last_batch() {
    let (train, val) = (data(17, 6, 4), data(8, 6, 4));
    let mut m = feat();
    let before = values(&m);
    let err = Solver::new().batch_size(1).epochs(1).train(&mut m, &SoftmaxCrossEntropy::<4>, &train, &val);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("Solver::batch_size(1)") && err.contains("`bn` (BatchNorm1d<8>)"), "{err}");
    let err = Solver::new().lr(f32::NAN).epochs(1).train(&mut m, &SoftmaxCrossEntropy::<4>, &train, &val);
    assert!(err.unwrap_err().to_string().contains("Solver::lr(NaN)"));
    let err = Solver::new().batch_size(0).epochs(1).train(&mut m, &SoftmaxCrossEntropy::<4>, &train, &val);
    assert!(err.unwrap_err().to_string().contains("Solver::batch_size(0)"));
    assert_eq!(values(&m), before);
    // 17 samples in batches of 16: the 1-sample rest is left out, each epoch one step.
    let h = Solver::new().batch_size(16).epochs(3).lr(0.01).train(&mut m, &SoftmaxCrossEntropy::<4>, &train, &val);
    let h = h.unwrap();
    assert_eq!(h.loss.len(), 3, "one step an epoch");
    assert!(values(&m).iter().all(|v| v.is_finite()));
    // A model without batch norm takes every sample: 17 in batches of 16 are two steps.
    #[derive(Sequential)]
    #[sequential(input = (6,))]
    struct Plain {
        fc: Linear<6, 4>,
    }
    let mut p = Plain::init(&mut rand::rngs::StdRng::seed_from_u64(3), Init::He);
    let h = Solver::new().batch_size(16).epochs(1).train(&mut p, &SoftmaxCrossEntropy::<4>, &train, &val).unwrap();
    assert_eq!(h.loss.len(), 2);
}

#[test]
fn evaluations_refuse_batches_of_zero_and_labels_the_model_cannot_take() {
    let d = data(12, 6, 4);
    let m = feat();
    let loss = SoftmaxCrossEntropy::<4>;
    assert!(predict(&m, &loss, &d, 0).unwrap_err().to_string().contains("batches of 0 samples"));
    assert!(accuracy(&m, &loss, &d, 0).is_err());
    assert!(mean_loss(&m, &loss, &d, 0).is_err());
    assert_eq!(predict(&m, &loss, &d, 5).unwrap().len(), 12);
    // Ten classes, some labels 6, for a model of 4 outputs.
    let wide = data(12, 6, 10);
    let err = accuracy(&m, &loss, &wide, 4).unwrap_err().to_string();
    assert!(err.contains("label 6 of sample 3 of the evaluation data") && err.contains("4 output(s)"), "{err}");
    let mut t = feat();
    let before = values(&t);
    let err = Solver::new().epochs(1).train(&mut t, &loss, &wide, &d).unwrap_err().to_string();
    assert!(err.contains("of the training data") && err.contains("softmax cross-entropy"), "{err}");
    assert_eq!(values(&t), before, "refused before training");
}

/// A schedule whose rate goes wrong after a number of epochs.
#[derive(Debug)]
struct GoesNan;

impl shaped::schedule::Schedule for GoesNan {
    fn lr(&self, base: f32, at: &shaped::schedule::Progress) -> f32 {
        if at.epoch >= 2 { f32::NAN } else { base }
    }
    fn describe(&self) -> String {
        "goes-nan".into()
    }
}

#[test]
fn the_solver_refuses_bad_schedules_before_training() {
    use shaped::schedule::{Exponential, StepDecay, WarmupCosine};
    let (train, val) = (data(32, 6, 4), data(8, 6, 4));
    let loss = SoftmaxCrossEntropy::<4>;
    let mut m = feat();
    let before = values(&m);
    let solver = || Solver::new().lr(0.01).batch_size(8).epochs(3);
    let cases: Vec<(Solver, &str)> = vec![
        (solver().schedule(StepDecay { every: 0, gamma: 0.5 }), "every = 0"),
        (solver().schedule(StepDecay { every: 1, gamma: -1.0 }), "gamma = -1"),
        (solver().schedule(Exponential { gamma: f32::NAN }), "gamma = NaN"),
        (solver().lr_decay(f32::INFINITY), "gamma = inf"),
        (solver().schedule(WarmupCosine { warmup: 2, min_lr: 1.0, epochs: None }), "above the learning rate"),
        (solver().schedule(WarmupCosine { warmup: 2, min_lr: -0.1, epochs: None }), "min_lr = -0.1"),
        (solver().schedule(WarmupCosine { warmup: 2, min_lr: 0.0, epochs: Some(0) }), "epochs = Some(0)"),
    ];
    for (s, want) in cases {
        let err = s.train(&mut m, &loss, &train, &val).unwrap_err().to_string();
        assert!(err.contains("learning-rate schedule") && err.contains(want), "{want}: {err}");
    }
    assert_eq!(values(&m), before, "refused before the first step");
    // A schedule that goes wrong mid-run is named, not blamed on a rate too high.
    let err = solver().schedule(GoesNan).train(&mut m, &loss, &train, &val).unwrap_err().to_string();
    assert!(err.contains("goes-nan gave NaN at epoch 2, step 1 of 4"), "{err}");
    assert!(!err.contains("lower the learning rate"), "{err}");
}
