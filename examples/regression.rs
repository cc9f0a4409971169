//! Regression with a small MLP: `y = sin(x₁) + x₂² + noise` on a generated, seeded data set,
//! trained with MSE and AdamW under a warm-up + cosine learning-rate schedule, with gradient
//! clipping, early stopping and a seeded shuffled validation split. Prints the validation loss
//! per epoch and the test MSE against the trivial predictor's (the training mean).
//!
//! `cargo run --release --example regression [-- EPOCHS]`

use rand::Rng;
use rand_distr::{Distribution, Normal};
use shaped::data::Dataset;
use shaped::loss::Mse;
use shaped::optim::OptimConfig;
use shaped::prelude::*;
use shaped::schedule::WarmupCosine;
use shaped::solver::{Solver, mean_loss};
use std::process::ExitCode;

/// Two inputs, two hidden layers of 64, one output.
#[derive(Sequential)]
#[sequential(input = (2,))]
struct Mlp {
    fc1: Linear<2, 64>,
    relu1: ReLU,
    fc2: Linear<64, 64>,
    relu2: ReLU,
    fc3: Linear<64, 1>,
}

/// Noise standard deviation: the best possible test MSE is its square, 0.01.
const NOISE: f64 = 0.1;

/// `n` samples of `x ∈ [−2, 2]²`, `y = sin(x₁) + x₂² + N(0, 0.1²)`.
fn generate(n: usize, seed: u64) -> shaped::Result<Dataset> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0, NOISE).expect("a valid deviation");
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b): (f64, f64) = (rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0));
        x.extend([a as f32, b as f32]);
        y.push((a.sin() + b * b + noise.sample(&mut rng)) as f32);
    }
    Dataset::regression(x, y, &[2], 1)
}

fn run() -> shaped::Result<()> {
    let epochs: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| shaped::Error::Shape(format!("EPOCHS must be a number, got `{a}`")))?,
        None => 40,
    };
    let (train, val) = generate(4000, 1)?.split_shuffled(0.2, 7)?;
    let test = generate(1000, 2)?;

    let mut net = Mlp::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
    println!("{net}");
    let solver = Solver::new()
        .rule(UpdateRule::AdamW)
        .optim(OptimConfig { weight_decay: 1e-4, ..OptimConfig::default() })
        .lr(3e-3)
        .schedule(WarmupCosine::new(100))
        .clip_grad_norm(5.0)
        .early_stopping(10)
        .batch_size(32)
        .epochs(epochs)
        .seed(0);
    let history = solver.train(&mut net, &Mse, &train, &val)?;
    for (k, (l, lr)) in history.val_loss.iter().zip(&history.lr).enumerate() {
        println!("epoch {:>3}: validation MSE {l:.5}  (lr {lr:.2e} at its first step)", k + 1);
    }
    if history.stopped_early > 0 {
        println!("stopped early after epoch {}", history.stopped_early);
    }
    let test_mse = mean_loss(&net, &Mse, &test, 256)?;
    let mean = train.values().iter().map(|&v| f64::from(v)).sum::<f64>() / train.len() as f64;
    let trivial = test.values().iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / test.len() as f64;
    println!(
        "best epoch {} (validation MSE {:.5}); test MSE {test_mse:.5} vs {trivial:.5} for the training mean \
         (noise floor {:.4}); {:.0} training samples/s",
        history.best_epoch,
        history.best_val_loss,
        NOISE * NOISE,
        history.train_samples_per_sec()
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
