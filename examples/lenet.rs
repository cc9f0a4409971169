//! LeNet-5 with batch norm on Fashion-MNIST, trained with Adam on pixels in [0, 1]: a training
//! program as a user writes one (model, solver, prediction, checkpoint save and load), and the
//! program the compile-time figures in ARCHITECTURE.md are measured on.
//!
//! `cargo run --release --example lenet [-- EPOCHS [DATA_DIR]]` (Fashion-MNIST from Debian's
//! `dataset-fashion-mnist` by default, or MNIST-style IDX files in `DATA_DIR`).

use shaped::data::{self, Pixels};
use shaped::prelude::*;
use shaped::solver::{Solver, accuracy};
use std::process::ExitCode;

/// LeNet-5 (LeCun et al., 1998) with batch norm after each convolution.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct LeNet {
    conv1: Conv2d<1, 6, 5, 1, 2>,
    bn1: BatchNorm2d<6>,
    relu1: ReLU,
    pool1: MaxPool2d<2>,
    conv2: Conv2d<6, 16, 5>,
    bn2: BatchNorm2d<16>,
    relu2: ReLU,
    pool2: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<400, 120>,
    relu3: ReLU,
    fc2: Linear<120, 84>,
    relu4: ReLU,
    fc3: Linear<84, 10>,
}

type Input = (Dyn, Const<1>, Const<28>, Const<28>);

fn run() -> shaped::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = match args.next() {
        Some(a) => a.parse().map_err(|_| shaped::Error::Shape(format!("EPOCHS must be a number, got `{a}`")))?,
        None => 3,
    };
    let dir = match args.next() {
        Some(d) => d.into(),
        None => data::idx::fashion_mnist_dir().ok_or_else(|| {
            shaped::Error::Shape("Fashion-MNIST is missing: `apt-get install dataset-fashion-mnist`".into())
        })?,
    };
    let (train, test) = data::idx::load_mnist_dir(&dir, Pixels::Unit)?;
    let (train, val) = train.holdout(10);

    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = LeNet::init(&mut rng, Init::He);
    println!("{net}");

    let solver = Solver::new().rule(UpdateRule::Adam).lr(1e-3).batch_size(64).epochs(epochs).seed(0).verbose(true);
    let loss = SoftmaxCrossEntropy::<10>;
    let history = solver.train(&mut net, &loss, &train, &val)?;
    let test_acc = accuracy(&net, &loss, &test, 256)?;
    println!(
        "best epoch {}: val {:.4}, test {test_acc:.4}; {:.0} training samples/s",
        history.best_epoch,
        history.best_val_acc,
        history.train_samples_per_sec()
    );

    // Predict one batch, save, load into a fresh model, and predict the same.
    let (x, _) = test.batch::<Input>(&(0..8).collect::<Vec<_>>())?;
    let scores = net.predict(&x);
    let path = std::env::temp_dir().join(format!("lenet-{}.safetensors", std::process::id()));
    shaped::io::save(&net, &path)?;
    let mut back = LeNet::zeros();
    shaped::io::load(&mut back, &path)?;
    std::fs::remove_file(&path).ok();
    assert_eq!(back.predict(&x).as_slice(), scores.as_slice(), "a loaded model predicts the same");
    println!("saved, loaded and predicted the same scores for {} images", x.batch_size());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
