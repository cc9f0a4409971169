//! The homework's experiments by name: `cargo run --release --example hw1 -- <experiment> [options]`.
//!
//! Experiments (hyper-parameters from the spec's table): 1a 1b (logistic), 2a 2b (hinge) on the
//! 20-feature binary set; 3a 3b (softmax, MLP) and 4a 4b (CNNs) on Fashion-MNIST (or MNIST with
//! `--data DIR`); 5 (small VGG) on CIFAR-10 from `--data DIR`. Without an experiment: 4a for 5 epochs.
//!
//! Options: `--data PATH`, `--epochs N`, `--seed N`, `--threads N`, `--json`, `--save PATH`,
//! `--load PATH`, `--resume PATH`, `--pixels raw|unit`, `--limit N` (use the first N training images),
//! `--quiet`.
//!
//! `--save best.safetensors` keeps the best parameters in `best.safetensors` and, after every
//! epoch, a resumable checkpoint in `best.last.safetensors`; `--resume best.last.safetensors`
//! (with the same experiment, seed and data) continues that run from the epoch after the saved one
//! and ends with the same parameters as an uninterrupted run. A resumed run keeps updating the file
//! it resumed from (or, with `--save`, the files `--save` names).

use shaped::data::{self, Dataset, Pixels};
use shaped::models::{Cnn, CnnBn, LinearModel, Mlp, Softmax, TwoLayer, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{Solver, accuracy};
use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    experiment: String,
    data: Option<PathBuf>,
    epochs: Option<usize>,
    seed: u64,
    threads: usize,
    json: bool,
    save: Option<PathBuf>,
    load: Option<PathBuf>,
    resume: Option<PathBuf>,
    pixels: Pixels,
    limit: Option<usize>,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        experiment: "4a".into(),
        data: None,
        epochs: None,
        seed: 0,
        threads: 1,
        json: false,
        save: None,
        load: None,
        resume: None,
        pixels: Pixels::Raw,
        limit: None,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    let mut named = false;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--data" => a.data = Some(value("--data")?.into()),
            "--epochs" => {
                a.epochs = Some(value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?);
            }
            "--seed" => a.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--threads" => a.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--limit" => a.limit = Some(value("--limit")?.parse().map_err(|e| format!("--limit: {e}"))?),
            "--json" => a.json = true,
            "--quiet" => a.quiet = true,
            "--save" => a.save = Some(value("--save")?.into()),
            "--load" => a.load = Some(value("--load")?.into()),
            "--resume" => a.resume = Some(value("--resume")?.into()),
            "--pixels" => {
                a.pixels = match value("--pixels")?.as_str() {
                    "raw" => Pixels::Raw,
                    "unit" => Pixels::Unit,
                    other => return Err(format!("--pixels takes raw or unit, not {other}")),
                }
            }
            "-h" | "--help" => return Err(HELP.into()),
            s if !s.starts_with('-') => {
                a.experiment = s.to_string();
                named = true;
            }
            other => return Err(format!("unknown option {other}\n{HELP}")),
        }
    }
    if a.load.is_some() && a.resume.is_some() {
        return Err("--load and --resume cannot be combined: --resume restores the parameters itself".into());
    }
    // Without an experiment: 4a for 5 epochs (the PyTorch comparison's setting). A named
    // experiment runs the spec's epochs unless --epochs says otherwise.
    if !named && a.epochs.is_none() {
        a.epochs = Some(5);
    }
    Ok(a)
}

const HELP: &str = "usage: hw1 [1a|1b|2a|2b|3a|3b|4a|4b|5] [--data PATH] [--epochs N] [--seed N] [--threads N] \
[--json] [--save PATH] [--load PATH] [--resume PATH] [--pixels raw|unit] [--limit N] [--quiet]";

struct Report {
    experiment: String,
    epochs: usize,
    train_acc: f64,
    val_acc: f64,
    test_acc: Option<f64>,
    samples_per_sec: f64,
    seconds: f64,
}

#[allow(clippy::too_many_arguments)]
fn run<S, M, L>(
    args: &Args,
    solver: Solver,
    epochs: usize,
    loss: L,
    train: Dataset,
    val: Dataset,
    test: Option<Dataset>,
) -> shaped::Result<Report>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32> + Display,
    L: Loss<M::Out, f32>,
{
    let t0 = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut model = M::init(&mut rng, Init::Gaussian(1e-3));
    if let Some(p) = &args.load {
        shaped::io::load(&mut model, p)?;
        if !args.quiet {
            eprintln!("loaded {}", p.display());
        }
    }
    if !args.quiet {
        eprintln!("{model}");
        eprintln!(
            "experiment {}: {} training, {} validation{} examples, {epochs} epochs",
            args.experiment,
            train.len(),
            val.len(),
            test.as_ref().map(|t| format!(", {} test", t.len())).unwrap_or_default()
        );
    }
    let mut solver = solver.epochs(epochs).seed(args.seed).verbose(!args.quiet);
    if let Some(p) = &args.save {
        solver = solver.checkpoint(p);
        let mut csv = p.clone();
        csv.set_extension("metrics.csv");
        solver = solver.metrics_csv(csv);
    }
    if let Some(p) = &args.resume {
        // Without --save, keep updating the file the run resumed from.
        if args.save.is_none() {
            solver = solver.last_checkpoint(p);
        }
        solver = solver.resume_from(p);
        if !args.quiet {
            eprintln!("resuming from {}", p.display());
        }
    }
    let hist = solver.train::<S, M, L>(&mut model, &loss, &train, &val)?;
    let test_acc = match &test {
        Some(t) => Some(accuracy::<S, M, L>(&model, &loss, t, 1000)?),
        None => None,
    };
    let best = hist.best_epoch.max(1) - 1;
    let report = Report {
        experiment: args.experiment.clone(),
        epochs,
        train_acc: hist.train_acc.get(best).copied().unwrap_or(0.0),
        val_acc: hist.best_val_acc.max(0.0),
        test_acc,
        samples_per_sec: hist.train_samples_per_sec(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    if let Some(p) = &args.save {
        shaped::io::save(&model, p)?;
        let png = p.with_extension("png");
        // The plot is a convenience: a machine without a font still gets the checkpoint and the CSV.
        let plotted = shaped::plot::plot_history(&hist, &format!("experiment {}", args.experiment), &png);
        if !args.quiet {
            eprintln!("saved the best parameters (epoch {}) to {}", hist.best_epoch, p.display());
            if let Some(last) = solver.last_checkpoint_file() {
                eprintln!("the last epoch's resumable checkpoint is {}", last.display());
            }
            match plotted {
                Ok(()) => eprintln!("wrote training curves to {}", png.display()),
                Err(e) => eprintln!("note: no plot: {e}"),
            }
        }
    }
    Ok(report)
}

fn binary20(args: &Args) -> shaped::Result<(Dataset, Dataset, Dataset)> {
    let ds = match &args.data {
        Some(p) => data::csv::read_csv(p, "label", 2)?,
        None => data::synthetic::binary20(598, 1000),
    };
    data::csv::binary20_splits(ds)
}

fn mnist_like(args: &Args) -> shaped::Result<(Dataset, Dataset, Dataset)> {
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => data::idx::fashion_mnist_dir().ok_or_else(|| {
            shaped::Error::data(
                data::idx::FASHION_MNIST_DEBIAN_DIR,
                "Fashion-MNIST not found: install it with `apt-get install dataset-fashion-mnist`, \
                 or pass --data DIR with the four MNIST-style IDX files",
            )
        })?,
    };
    let (train, test) = data::idx::load_mnist_dir(&dir, args.pixels)?;
    let train = match args.limit {
        Some(n) if n < train.len() => train.slice(0..n),
        _ => train,
    };
    let (train, val) = train.holdout(10);
    Ok((train, val, test))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Convolutions split each batch over this many threads (the other layers run on one).
    shaped::set_num_threads(args.threads);
    match experiment(&args) {
        Ok(r) => {
            let test = r.test_acc.map(|t| format!("{t:.4}")).unwrap_or_else(|| "null".into());
            if !args.quiet {
                eprintln!(
                    "{}: train acc {:.4}, val acc {:.4}, test acc {test}, {:.0} training samples/s, {:.1} s",
                    r.experiment, r.train_acc, r.val_acc, r.samples_per_sec, r.seconds
                );
            }
            if args.json {
                println!(
                    "{{\"experiment\":\"{}\",\"epochs\":{},\"train_acc\":{:.6},\"val_acc\":{:.6},\"test_acc\":{},\"train_samples_per_sec\":{:.1},\"seconds\":{:.3}}}",
                    r.experiment, r.epochs, r.train_acc, r.val_acc, test, r.samples_per_sec, r.seconds
                );
            } else {
                println!("{}: train {:.4} / val {:.4} / test {test}", r.experiment, r.train_acc, r.val_acc);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn experiment(args: &Args) -> shaped::Result<Report> {
    let ep = |spec: usize| args.epochs.unwrap_or(spec);
    match args.experiment.as_str() {
        "1a" | "1b" | "2a" | "2b" => {
            let (train, val, test) = binary20(args)?;
            let sm = Solver::new().rule(UpdateRule::SgdMomentum).batch_size(50);
            match args.experiment.as_str() {
                "1a" => run::<(Dyn, Const<20>), LinearModel, _>(
                    args,
                    sm.lr(1.0).lr_decay(0.95).reg(0.2),
                    ep(20),
                    Logistic,
                    train,
                    val,
                    Some(test),
                ),
                "1b" => run::<(Dyn, Const<20>), TwoLayer, _>(
                    args,
                    sm.lr(8e-2).lr_decay(0.9).reg(0.3),
                    ep(20),
                    Logistic,
                    train,
                    val,
                    Some(test),
                ),
                "2a" => run::<(Dyn, Const<20>), LinearModel, _>(
                    args,
                    sm.lr(1.0).lr_decay(0.95).reg(0.1),
                    ep(50),
                    Hinge,
                    train,
                    val,
                    Some(test),
                ),
                _ => run::<(Dyn, Const<20>), TwoLayer, _>(
                    args,
                    sm.lr(0.1).lr_decay(0.95).reg(0.3),
                    ep(50),
                    Hinge,
                    train,
                    val,
                    Some(test),
                ),
            }
        }
        "3a" | "3b" => {
            let (train, val, test) = mnist_like(args)?;
            let rms = Solver::new().rule(UpdateRule::RmsProp).batch_size(100).lr_decay(0.9).reg(0.01);
            if args.experiment == "3a" {
                run::<(Dyn, Const<784>), Softmax, _>(
                    args,
                    rms.lr(5e-5),
                    ep(50),
                    SoftmaxCrossEntropy::<10>,
                    train,
                    val,
                    Some(test),
                )
            } else {
                run::<(Dyn, Const<784>), Mlp, _>(
                    args,
                    rms.lr(1e-4),
                    ep(50),
                    SoftmaxCrossEntropy::<10>,
                    train,
                    val,
                    Some(test),
                )
            }
        }
        "4a" | "4b" => {
            let (train, val, test) = mnist_like(args)?;
            let sm = Solver::new().rule(UpdateRule::SgdMomentum).batch_size(100).lr_decay(0.9);
            type Img = (Dyn, Const<1>, Const<28>, Const<28>);
            if args.experiment == "4a" {
                run::<Img, Cnn, _>(args, sm.lr(1e-3), ep(50), SoftmaxCrossEntropy::<10>, train, val, Some(test))
            } else {
                run::<Img, CnnBn, _>(args, sm.lr(1e-2), ep(50), SoftmaxCrossEntropy::<10>, train, val, Some(test))
            }
        }
        "5" => {
            let dir = args.data.clone().ok_or_else(|| {
                shaped::Error::data(
                    "--data",
                    "experiment 5 needs CIFAR-10: download the \"CIFAR-10 binary version\" from Alex Krizhevsky's \
                     CIFAR page at the University of Toronto, unpack it and pass --data DIR (the folder with \
                     data_batch_1.bin … data_batch_5.bin and test_batch.bin)",
                )
            })?;
            let (train, test) = data::cifar::load_cifar10_dir(&dir, args.pixels)?;
            let train = match args.limit {
                Some(n) if n < train.len() => train.slice(0..n),
                _ => train,
            };
            let (train, val) = train.holdout(10);
            let adam = Solver::new().rule(UpdateRule::Adam).lr(1e-3).batch_size(100);
            run::<(Dyn, Const<3>, Const<32>, Const<32>), Vgg, _>(
                args,
                adam,
                ep(10),
                SoftmaxCrossEntropy::<10>,
                train,
                val,
                Some(test),
            )
        }
        other => Err(shaped::Error::Training(format!("unknown experiment `{other}`; {HELP}"))),
    }
}
