//! End-to-end training: the spec's 4a CNN on real Fashion-MNIST images (Debian's
//! `dataset-fashion-mnist`, installed by `.ci/run`), the solver's best-by-validation restore and its
//! divergence error.

use shaped::Error;
use shaped::data::{self, Dataset, Pixels};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{Solver, accuracy};

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

#[derive(Sequential)]
#[sequential(input = (20,))]
struct TwoLayer {
    fc1: Linear<20, 32>,
    relu: ReLU,
    fc2: Linear<32, 1>,
}

fn fashion_mnist() -> (Dataset, Dataset) {
    let dir = data::idx::fashion_mnist_dir()
        .expect("Fashion-MNIST is missing: `apt-get install dataset-fashion-mnist` (the README's setup, .ci/run)");
    data::idx::load_mnist_dir(&dir, Pixels::Raw).expect("the Debian package's IDX files load")
}

#[test]
fn cnn_4a_learns_fashion_mnist() {
    let (train, test) = fashion_mnist();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    let train = train.slice(0..6000);
    let (train, val) = train.holdout(10);
    let test = test.slice(0..1000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut net = Cnn::init(&mut rng, Init::Gaussian(1e-3));
    let before = accuracy(&net, &SoftmaxCrossEntropy::<10>, &test, 500).unwrap();
    let hist = Solver::new()
        .rule(UpdateRule::SgdMomentum)
        .lr(1e-3)
        .lr_decay(0.9)
        .batch_size(100)
        .epochs(6)
        .train(&mut net, &SoftmaxCrossEntropy::<10>, &train, &val)
        .unwrap();
    let first: f32 = hist.loss[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = hist.loss[hist.loss.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!((first - 10f32.ln()).abs() < 0.1, "starts near ln 10: {first}");
    assert!(last < 0.7 * first, "the loss falls: {first} -> {last}");
    let after = accuracy(&net, &SoftmaxCrossEntropy::<10>, &test, 500).unwrap();
    assert!(after > 0.6, "test accuracy {after} (chance is 0.1; before training {before})");
}

#[test]
fn solver_restores_best_validation_parameters() {
    let ds = data::synthetic::binary20(7, 1000);
    let (train, rest) = ds.split_at(500);
    let (val, _) = rest.split_at(250);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut net = TwoLayer::init(&mut rng, Init::Gaussian(0.1));
    // A large, undecayed learning rate makes validation accuracy wander from epoch to epoch.
    let hist = Solver::new()
        .rule(UpdateRule::SgdMomentum)
        .lr(0.5)
        .batch_size(25)
        .epochs(15)
        .train(&mut net, &Logistic, &train, &val)
        .unwrap();
    let best = hist.val_acc.iter().cloned().fold(0.0, f64::max);
    assert_eq!(hist.best_val_acc, best);
    assert_eq!(hist.val_acc[hist.best_epoch - 1], best);
    let now = accuracy(&net, &Logistic, &val, 100).unwrap();
    assert_eq!(now, best, "the restored parameters score the best epoch's accuracy");
    assert_eq!(hist.loss.len(), 15 * 20);
}

#[test]
fn diverging_loss_is_an_error_naming_epoch_and_step() {
    let ds = data::synthetic::binary20(7, 1000);
    let (train, val) = ds.split_at(800);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut net = TwoLayer::init(&mut rng, Init::Gaussian(1.0));
    let err = Solver::new()
        .rule(UpdateRule::Sgd)
        .lr(1e30)
        .batch_size(50)
        .epochs(5)
        .train(&mut net, &Hinge, &train, &val)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Training(_)), "{msg}");
    assert!(msg.contains("epoch 1") && msg.contains("step") && msg.contains("lower the learning rate"), "{msg}");
}

#[test]
fn data_that_does_not_fit_the_model_is_an_error() {
    let ds = data::synthetic::binary20(7, 100);
    let mut net = Cnn::zeros();
    let err = Solver::new().train(&mut net, &SoftmaxCrossEntropy::<10>, &ds, &ds).unwrap_err();
    assert!(err.to_string().contains("784"), "{err}");
}
