//! A small ResNet (He et al., 2016: three stages of basic residual blocks, 16/32/64 channels, batch
//! norm, global average pooling) trained on CIFAR-10 binary files with per-channel normalisation
//! and augmentation (random crop with padding 4, horizontal flips), Adam, and a checkpoint of the
//! best epoch.
//!
//! ```sh
//! cargo run --release --example resnet_cifar -- DIR [--epochs N] [--batch N] [--limit N] [--threads N] [--save FILE]
//! ```
//!
//! `DIR` holds `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin` (the "CIFAR-10 binary
//! version", or its `cifar-10-batches-bin/` subdirectory). Without the real data set, make
//! synthetic files of the same format: `cargo run --release --example make_cifar -- /tmp/cifar`.

use clap::Parser;
use shaped::data::{Pixels, load_cifar10_dir};
use shaped::metrics::evaluate;
use shaped::plot::{plot_confusion, plot_history};
use shaped::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

/// A basic block's main branch: conv 3×3 → BN → ReLU → conv 3×3 → BN, `C` channels, size kept.
/// Shape-polymorphic (no `input`): it takes any `C×H×W` map.
#[derive(Sequential)]
struct Basic<const C: usize> {
    conv1: Conv2d<C, C, 3, 1, 1, false>,
    bn1: BatchNorm2d<C>,
    relu: ReLU,
    conv2: Conv2d<C, C, 3, 1, 1, false>,
    bn2: BatchNorm2d<C>,
}

/// A downsampling block's main branch: `I → O` channels, the first convolution of stride 2.
#[derive(Sequential)]
struct Down<const I: usize, const O: usize> {
    conv1: Conv2d<I, O, 3, 2, 1, false>,
    bn1: BatchNorm2d<O>,
    relu: ReLU,
    conv2: Conv2d<O, O, 3, 1, 1, false>,
    bn2: BatchNorm2d<O>,
}

/// The projection shortcut that matches [`Down`]'s output: conv 1×1 of stride 2 → BN.
#[derive(Sequential)]
struct Proj<const I: usize, const O: usize> {
    conv: Conv2d<I, O, 1, 2, 0, false>,
    bn: BatchNorm2d<O>,
}

/// ResNet-8 for 3×32×32 images: 32×32×16 → 16×16×32 → 8×8×64 → global pool → 10 scores. A
/// wrong channel count or a shortcut that does not match its block fails `cargo check` here.
#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct ResNet {
    stem: Conv2d<3, 16, 3, 1, 1, false>,
    bn: BatchNorm2d<16>,
    relu0: ReLU,
    stage1: Residual<Basic<16>>,
    relu1: ReLU,
    stage2: Residual<Down<16, 32>, Proj<16, 32>>,
    relu2: ReLU,
    stage3: Residual<Down<32, 64>, Proj<32, 64>>,
    relu3: ReLU,
    pool: GlobalAvgPool,
    fc: Linear<64, 10>,
}

/// Command line.
#[derive(Parser)]
#[command(about = "A small ResNet on CIFAR-10 binary files, with augmentation")]
pub struct Args {
    /// Directory of the CIFAR-10 binary files.
    dir: PathBuf,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Use only the first N training images (and N/5 test images): a quick run.
    #[arg(long)]
    limit: Option<usize>,
    /// Write the best epoch's parameters here, and the training curves (`.png`) and the test
    /// confusion matrix (`.confusion.png`) next to it.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Print the per-epoch losses as one JSON line at the end (for scripts and tests).
    #[arg(long)]
    json: bool,
    /// Kernel threads (on two or more, each step runs in parts, one per thread, that meet at the
    /// batch norms).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: u64,
}

/// What a run measured.
pub struct Report {
    /// The mean training loss of each epoch.
    pub epoch_loss: Vec<f64>,
    /// Top-1 accuracy on the test files.
    pub test_acc: f64,
}

pub fn run(args: &Args) -> shaped::Result<Report> {
    shaped::set_num_threads(args.threads as usize);
    let (mut train, mut test) = load_cifar10_dir(&args.dir, Pixels::Unit)?;
    if let Some(n) = args.limit {
        train = train.slice(0..n.min(train.len()));
        test = test.slice(0..(n / 5).clamp(1, test.len()));
    }
    // Statistics from the training images only, applied to every split.
    let norm = ChannelNorm::fit(&train)?;
    norm.apply(&mut train)?;
    norm.apply(&mut test)?;
    let (train, val) = train.split_shuffled(0.1, 0)?;

    let mut net = ResNet::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
    if !args.json {
        println!("{net}");
    }
    let mut solver = Solver::new()
        .lr(args.lr)
        .batch_size(args.batch)
        .epochs(args.epochs)
        .augment(Augment { crop_pad: 4, hflip: true })
        .verbose(!args.json);
    if let Some(path) = &args.save {
        solver = solver.checkpoint(path);
    }
    let history = solver.train(&mut net, &SoftmaxCrossEntropy::<10>, &train, &val)?;
    let eval = evaluate(&net, &test, 256, 3)?;
    if let Some(path) = &args.save {
        // Next to the checkpoint: the training curves and the test confusion matrix (PNG, each
        // drawn into a temporary file renamed over the target).
        let curves = path.with_extension("png");
        let confusion = path.with_extension("confusion.png");
        shaped::io::write_atomic_with(&curves, Some("png"), |tmp| plot_history(&history, "ResNet-8", tmp))?;
        shaped::io::write_atomic_with(&confusion, Some("png"), |tmp| {
            plot_confusion(&eval.confusion, "ResNet-8, test", tmp)
        })?;
        if !args.json {
            println!("wrote {}, {} and {}", path.display(), curves.display(), confusion.display());
        }
    }
    if args.json {
        let losses: Vec<String> = history.epoch_loss().iter().map(|l| format!("{l:.6}")).collect();
        println!("{{\"epoch_loss\": [{}], \"test_acc\": {:.6}}}", losses.join(", "), eval.accuracy);
    } else {
        println!(
            "best epoch {}: val {:.4}; test top-1 {:.4}, top-3 {:.4}; {:.0} training samples/s",
            history.best_epoch,
            history.best_val_acc,
            eval.accuracy,
            eval.top_k,
            history.train_samples_per_sec()
        );
        println!("{}", eval.confusion);
    }
    Ok(Report { epoch_loss: history.epoch_loss(), test_acc: eval.accuracy })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
