//! A multilayer perceptron with GELU activations and layer norm on Fashion-MNIST, trained with Adam
//! on pixels in [0, 1]: the issue-17 layers in a training program as a user writes one.
//!
//! `cargo run --release --example mlp_gelu [-- EPOCHS [DATA_DIR]]` (Fashion-MNIST from Debian's
//! `dataset-fashion-mnist` by default, or MNIST-style IDX files in `DATA_DIR`).

use shaped::data::{self, Pixels};
use shaped::prelude::*;
use shaped::solver::{Solver, accuracy};
use std::process::ExitCode;
use std::time::Instant;

/// 784 → 256 → 128 → 10, each hidden layer `Linear → LayerNorm → GELU` (the pre-activation
/// normalisation of transformer feed-forward blocks).
#[derive(Sequential)]
#[sequential(input = (784,))]
struct MlpGelu {
    fc1: Linear<784, 256>,
    ln1: LayerNorm<256>,
    gelu1: GELU,
    fc2: Linear<256, 128>,
    ln2: LayerNorm<128>,
    gelu2: GELU,
    fc3: Linear<128, 10>,
}

fn run() -> shaped::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs: usize = match args.next() {
        Some(a) => a.parse().map_err(|_| shaped::Error::Shape(format!("EPOCHS must be a number, got `{a}`")))?,
        None => 2,
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
    let mut net = MlpGelu::init(&mut rng, Init::He);
    println!("{net}");

    let solver = Solver::new().rule(UpdateRule::Adam).lr(1e-3).batch_size(64).epochs(epochs).seed(0).verbose(true);
    let loss = SoftmaxCrossEntropy::<10>;
    let start = Instant::now();
    let history = solver.train(&mut net, &loss, &train, &val)?;
    let secs = start.elapsed().as_secs_f64();
    let test_acc = accuracy(&net, &loss, &test, 256)?;
    let train_acc = history.train_acc.last().copied().unwrap_or(f64::NAN);
    println!(
        "{epochs} epochs in {secs:.1} s ({:.0} training samples/s); best epoch {}: train {train_acc:.4}, val {:.4}, \
         test {test_acc:.4}",
        history.train_samples_per_sec(),
        history.best_epoch,
        history.best_val_acc,
    );
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
