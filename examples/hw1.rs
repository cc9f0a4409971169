//! The homework's experiments by name: `cargo run --release --example hw1 -- <experiment> [options]`
//! (`--help` lists the options).
//!
//! Experiments (hyper-parameters from the spec's table, each overridable with `--lr`, `--reg`,
//! `--batch`, `--lr-decay`, `--optimizer`): 1a 1b (logistic), 2a 2b (hinge) on the 20-feature
//! binary set; 3a 3b (softmax, MLP) and 4a 4b (CNNs) on Fashion-MNIST (or MNIST with `--data DIR`);
//! 5 (small VGG) on CIFAR-10 from `--data DIR`. Without an experiment: 4a for 5 epochs.
//!
//! `--save best.safetensors` keeps the best parameters in `best.safetensors` and, after every
//! epoch, a resumable checkpoint in `best.last.safetensors`, the metrics in
//! `best.metrics.csv` and, at the end, the training curves in `best.png`; every one of these
//! paths is checked before the data is loaded (a regular file or absent, in an existing
//! directory, none the same file as another or as an input). `--resume best.last.safetensors`
//! (with the same experiment, seed, data and settings; only `--epochs` and an explicit `--lr` may
//! change) continues that run from the epoch after the saved one and ends with the same
//! parameters as an uninterrupted run. A resumed run keeps updating the file it resumed from (or,
//! with `--save`, the files `--save` names).
//!
//! Exit status: 0 on success (also when stdout is closed early, as in `hw1 --json | true`), 1 when
//! the run fails (bad data, a checkpoint that does not fit, divergence), 2 for a usage error.

use clap::{Parser, ValueEnum};
use shaped::data::{self, Dataset, Pixels};
use shaped::dist::Comm;
use shaped::models::{Cnn, CnnBn, LinearModel, Mlp, Softmax, TwoLayer, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{Solver, last_checkpoint_path};
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

// `--distributed` (one rank of an MPI job).
#[path = "support/hw1_distributed.rs"]
mod distributed;

/// The spec's experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Experiment {
    #[value(name = "1a")]
    E1a,
    #[value(name = "1b")]
    E1b,
    #[value(name = "2a")]
    E2a,
    #[value(name = "2b")]
    E2b,
    #[value(name = "3a")]
    E3a,
    #[value(name = "3b")]
    E3b,
    #[value(name = "4a")]
    E4a,
    #[value(name = "4b")]
    E4b,
    #[value(name = "5")]
    E5,
}

impl Experiment {
    fn name(self) -> &'static str {
        match self {
            Experiment::E1a => "1a",
            Experiment::E1b => "1b",
            Experiment::E2a => "2a",
            Experiment::E2b => "2b",
            Experiment::E3a => "3a",
            Experiment::E3b => "3b",
            Experiment::E4a => "4a",
            Experiment::E4b => "4b",
            Experiment::E5 => "5",
        }
    }
}

/// Pixel scaling on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PixelsArg {
    /// Bytes 0..=255 unchanged (what the spec's hyper-parameters were tuned on).
    Raw,
    /// Bytes divided by 255.
    Unit,
}

/// Runs one of the homework's experiments.
#[derive(Parser, Debug)]
#[command(
    name = "hw1",
    about = "Runs one of the homework's experiments (without one: 4a for 5 epochs)",
    allow_negative_numbers = true
)]
struct Args {
    /// The experiment: 1a 1b 2a 2b (20-feature binary set), 3a 3b 4a 4b (Fashion-MNIST), 5 (CIFAR-10).
    experiment: Option<Experiment>,
    /// The data: a CSV file (1a-2b), an MNIST-style IDX directory (3a-4b) or a CIFAR-10 binary directory (5).
    #[arg(long, value_name = "PATH", value_parser = non_empty_path)]
    data: Option<PathBuf>,
    /// Passes over the training data (default: the spec's; 5 without an experiment).
    #[arg(long, value_name = "N", value_parser = positive_usize)]
    epochs: Option<usize>,
    /// Seed of the initial parameters, the batch order and dropout.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Kernel threads, 1 to 64.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    threads: u8,
    /// Print the result as one JSON object on the last stdout line.
    #[arg(long)]
    json: bool,
    /// Save the best parameters here; beside it, with PATH's extension replaced (m.safetensors →
    /// m.last.safetensors, m.metrics.csv, m.png, m.confusion.png): the resumable checkpoint, the
    /// metrics, the curves and the test confusion matrix.
    #[arg(long, value_name = "PATH", value_parser = non_empty_path)]
    save: Option<PathBuf>,
    /// Start from these parameters (a checkpoint of the experiment's model).
    #[arg(long, value_name = "PATH", value_parser = non_empty_path, conflicts_with = "resume")]
    load: Option<PathBuf>,
    /// Continue the run saved in this resumable checkpoint (m.last.safetensors of --save m.safetensors).
    #[arg(long, value_name = "PATH", value_parser = non_empty_path)]
    resume: Option<PathBuf>,
    /// Pixel scaling of image data.
    #[arg(long, value_enum, default_value_t = PixelsArg::Raw)]
    pixels: PixelsArg,
    /// Use only the first N training samples (before the validation hold-out, for 3a-5; of the
    /// 500-sample training split, for 1a-2b).
    #[arg(long, value_name = "N", value_parser = positive_usize)]
    limit: Option<usize>,
    /// No progress or summary on stderr.
    #[arg(long)]
    quiet: bool,
    /// Initial learning rate (positive), instead of the spec's.
    #[arg(long, value_name = "X", value_parser = positive_finite)]
    lr: Option<f32>,
    /// L2 strength (zero or positive), instead of the spec's.
    #[arg(long, value_name = "X", value_parser = non_negative_finite)]
    reg: Option<f32>,
    /// Examples per step (positive), instead of the spec's.
    #[arg(long, value_name = "N", value_parser = positive_usize)]
    batch: Option<usize>,
    /// Factor applied to the learning rate after every epoch (positive), instead of the spec's.
    #[arg(long = "lr-decay", value_name = "X", value_parser = positive_finite)]
    lr_decay: Option<f32>,
    /// Update rule, instead of the spec's: sgd, momentum (= sgd_momentum), rmsprop, adam or adamw.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    optimizer: Option<UpdateRule>,
    /// Run as one rank of a data-parallel MPI job: `mpirun -np N hw1 <experiment> --distributed`
    /// (built with `--features mpi`). --batch is the global batch, split over the ranks; rank 0
    /// alone prints and writes --save's files.
    #[arg(long)]
    distributed: bool,
}

impl Args {
    fn experiment(&self) -> Experiment {
        self.experiment.unwrap_or(Experiment::E4a)
    }
    fn pixels(&self) -> Pixels {
        match self.pixels {
            PixelsArg::Raw => Pixels::Raw,
            PixelsArg::Unit => Pixels::Unit,
        }
    }
}

fn non_empty_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() { Err("the path is empty".into()) } else { Ok(PathBuf::from(s)) }
}

fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

fn finite(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if v.is_finite() { Ok(v) } else { Err("must be finite".into()) }
}

fn positive_finite(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v > 0.0 { Ok(v) } else { Err("must be positive".into()) }
}

fn non_negative_finite(s: &str) -> Result<f32, String> {
    let v = finite(s)?;
    if v >= 0.0 { Ok(v) } else { Err("must be zero or positive".into()) }
}

fn parse_rule(s: &str) -> Result<UpdateRule, String> {
    if s.eq_ignore_ascii_case("momentum") {
        return Ok(UpdateRule::SgdMomentum);
    }
    s.parse::<UpdateRule>().map_err(|e| format!("{e} (or momentum)"))
}

/// The spec's settings of an experiment, before the command line's overrides.
struct Spec {
    rule: UpdateRule,
    lr: f32,
    lr_decay: f32,
    reg: f32,
    batch: usize,
    epochs: usize,
}

impl Spec {
    fn of(e: Experiment) -> Spec {
        use Experiment::*;
        let (rule, lr, lr_decay, reg, batch, epochs) = match e {
            E1a => (UpdateRule::SgdMomentum, 1.0, 0.95, 0.2, 50, 20),
            E1b => (UpdateRule::SgdMomentum, 8e-2, 0.9, 0.3, 50, 20),
            E2a => (UpdateRule::SgdMomentum, 1.0, 0.95, 0.1, 50, 50),
            E2b => (UpdateRule::SgdMomentum, 0.1, 0.95, 0.3, 50, 50),
            E3a => (UpdateRule::RmsProp, 5e-5, 0.9, 0.01, 100, 50),
            E3b => (UpdateRule::RmsProp, 1e-4, 0.9, 0.01, 100, 50),
            E4a => (UpdateRule::SgdMomentum, 1e-3, 0.9, 0.0, 100, 50),
            E4b => (UpdateRule::SgdMomentum, 1e-2, 0.9, 0.0, 100, 50),
            E5 => (UpdateRule::Adam, 1e-3, 1.0, 0.0, 100, 10),
        };
        Spec { rule, lr, lr_decay, reg, batch, epochs }
    }
}

/// What `--save` (or `--resume` alone) writes: (what, derived from which flag, path).
fn outputs(args: &Args) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    if let Some(p) = &args.save {
        out.push(("--save (the best parameters)", p.clone()));
        out.push(("the resumable checkpoint (--save with .last)", last_checkpoint_path(p)));
        out.push(("the metrics CSV (--save with the extension .metrics.csv)", metrics_path(p)));
        out.push(("the training-curve plot (--save with the extension .png)", p.with_extension("png")));
        out.push(("the test confusion matrix (--save with the extension .confusion.png)", confusion_path(p)));
    } else if let Some(p) = &args.resume {
        out.push(("--resume (updated after every epoch)", p.clone()));
    }
    out
}

fn metrics_path(save: &Path) -> PathBuf {
    save.with_extension("metrics.csv")
}

fn confusion_path(save: &Path) -> PathBuf {
    save.with_extension("confusion.png")
}

/// Checks every output before anything is read or trained: each can take a file, none is another
/// or an input (the resumed file may be the resumable checkpoint: it is meant to be updated).
fn check_outputs(args: &Args) -> shaped::Result<()> {
    let outs = outputs(args);
    let mut inputs: Vec<(&str, PathBuf)> = Vec::new();
    if let Some(d) = &args.data {
        inputs.push(("--data", d.clone()));
        if let Ok(entries) = std::fs::read_dir(d) {
            inputs.extend(entries.flatten().take(1000).map(|e| ("a file of --data", e.path())));
        }
    }
    if let Some(p) = &args.load {
        inputs.push(("--load", p.clone()));
    }
    let resume_is_last = |p: &Path| args.resume.as_deref().is_some_and(|r| shaped::io::same_file(r, p));
    if let Some(p) = &args.resume {
        inputs.push(("--resume", p.clone()));
    }
    for (i, (what, p)) in outs.iter().enumerate() {
        shaped::io::check_output_path(p).map_err(|e| match e {
            shaped::Error::Output { path, msg } => shaped::Error::Output { path, msg: format!("{what}: {msg}") },
            e => e,
        })?;
        if let Some((other, _)) = outs[..i].iter().find(|(_, q)| shaped::io::same_file(p, q)) {
            return Err(shaped::Error::Output {
                path: p.clone(),
                msg: format!("{what} and {other} would be the same file: choose another --save path"),
            });
        }
        for (input, q) in &inputs {
            let allowed = *input == "--resume" && what.starts_with("the resumable checkpoint") && resume_is_last(p);
            if !allowed && !what.starts_with("--resume") && shaped::io::same_file(p, q) {
                return Err(shaped::Error::Output {
                    path: p.clone(),
                    msg: format!("{what} would overwrite {input} ({}): choose another --save path", q.display()),
                });
            }
        }
    }
    Ok(())
}

struct Report {
    experiment: &'static str,
    epochs: usize,
    train_acc: f64,
    val_acc: f64,
    test_acc: f64,
    samples_per_sec: f64,
    seconds: f64,
}

/// The three splits of an experiment, checked: none empty, every sample of the model's geometry.
struct Splits {
    train: Dataset,
    val: Dataset,
    test: Dataset,
}

fn run<M, L>(args: &Args, comm: Option<&dyn Comm>, splits: Splits, loss: L) -> shaped::Result<Report>
where
    M: Model + Display,
    L: Loss<OutputOf<M>, f32>,
{
    let Splits { train, val, test } = splits;
    // Every split against the model's input, before the first epoch.
    train.check_input::<M::Input>("training")?;
    val.check_input::<M::Input>("validation")?;
    test.check_input::<M::Input>("test")?;
    // A batch the model cannot train on, named by its flag (batch norm over one value per channel).
    let batch = args.batch.unwrap_or(Spec::of(args.experiment()).batch).min(train.len());
    if let (min, Some(layer)) = shaped::step::TrainStep::<M::Input, M>::min_batch()
        && batch < min
    {
        return Err(shaped::Error::Training(format!(
            "--batch: batches of {batch} sample(s) are too small to train {layer}: batch norm needs more than one \
             value per channel in training (use --batch {min} or more)"
        )));
    }
    let experiment = args.experiment();
    let spec = Spec::of(experiment);
    let epochs = args.epochs.unwrap_or(if args.experiment.is_none() { 5 } else { spec.epochs });
    let t0 = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut model = M::init(&mut rng, Init::Gaussian(1e-3));
    if let Some(p) = &args.load {
        shaped::io::load(&mut model, p).map_err(|e| flag_io("--load", e))?;
        if !args.quiet {
            eprintln!("loaded {}", p.display());
        }
    }
    if !args.quiet {
        eprintln!("{model}");
        eprintln!(
            "experiment {}: {} training, {} validation, {} test examples, {epochs} epochs",
            experiment.name(),
            train.len(),
            val.len(),
            test.len()
        );
    }
    let mut solver = Solver::new()
        .rule(args.optimizer.unwrap_or(spec.rule))
        .lr(args.lr.unwrap_or(spec.lr))
        .lr_decay(args.lr_decay.unwrap_or(spec.lr_decay))
        .reg(args.reg.unwrap_or(spec.reg))
        .batch_size(args.batch.unwrap_or(spec.batch))
        .epochs(epochs)
        .seed(args.seed)
        .verbose(!args.quiet)
        .tag("experiment", experiment.name())
        .tag("pixels", args.pixels().name())
        .tag("limit", args.limit.map_or("none".to_string(), |n| n.to_string()))
        // An explicit --lr on a resumed run is a deliberate change (a diverged run resumed lower).
        .allow_lr_change(args.lr.is_some());
    if let Some(p) = &args.save {
        solver = solver.checkpoint(p).metrics_csv(metrics_path(p));
    }
    if let Some(p) = &args.resume {
        // (A missing file named by the flag, before any training.)
        std::fs::File::open(p).map_err(|e| flag_io("--resume", shaped::Error::io(p, e)))?;
        // Without --save, keep updating the file the run resumed from.
        if args.save.is_none() {
            solver = solver.last_checkpoint(p);
        }
        solver = solver.resume_from(p);
        if !args.quiet {
            eprintln!("resuming from {}", p.display());
        }
    }
    let hist = match comm {
        Some(c) => solver.train_distributed(c, &mut model, &loss, &train, &val)?,
        None => solver.train(&mut model, &loss, &train, &val)?,
    };
    let test_pred = shaped::solver::predict(&model, &loss, &test, 1000)?;
    let confusion = shaped::metrics::ConfusionMatrix::from_predictions(test.classes(), test.labels(), &test_pred)?;
    let test_acc = confusion.accuracy();
    if !args.quiet && !args.json {
        println!("test set, true class (rows) against predicted class (columns):\n{confusion}");
    }
    let best = hist.best_epoch.max(1) - 1;
    let report = Report {
        experiment: experiment.name(),
        epochs,
        train_acc: hist.train_acc.get(best).copied().unwrap_or(0.0),
        val_acc: hist.best_val_acc.max(0.0),
        test_acc,
        samples_per_sec: hist.train_samples_per_sec(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    // Rank 0 alone writes (every rank holds the same parameters).
    if let Some(p) = &args.save
        && comm.is_none_or(|c| c.rank() == 0)
    {
        shaped::io::save(&model, p)?;
        let png = p.with_extension("png");
        // The plot is a convenience: a machine without a font still gets the checkpoint and the CSV.
        // Drawn into a temporary file renamed over the target, like every output.
        let plotted = shaped::io::write_atomic_with(&png, Some("png"), |tmp| {
            shaped::plot::plot_history(&hist, &format!("experiment {}", experiment.name()), tmp)
        });
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
        let cpng = confusion_path(p);
        let plotted = shaped::io::write_atomic_with(&cpng, Some("png"), |tmp| {
            shaped::plot::plot_confusion(&confusion, &format!("experiment {}", experiment.name()), tmp)
        });
        if !args.quiet {
            match plotted {
                Ok(()) => eprintln!("wrote the test confusion matrix to {}", cpng.display()),
                Err(e) => eprintln!("note: no confusion plot: {e}"),
            }
        }
    }
    Ok(report)
}

/// An empty split is an error naming it, where it came from and, when `--limit` emptied it, the
/// limit that would not.
fn check_not_empty(split: &str, ds: &Dataset, source: &Path, args: &Args) -> shaped::Result<()> {
    if !ds.is_empty() {
        return Ok(());
    }
    let hint = match (split, args.limit) {
        ("validation", Some(n)) => format!(
            ": --limit {n} keeps {n} training samples, of which 1/10 (rounded down) are held out for validation; \
             use --limit 10 or more"
        ),
        _ => String::new(),
    };
    Err(shaped::Error::data(source, format!("the {split} split is empty{hint}")))
}

/// The 20-feature set: 500 training (the first `--limit` of them), 250 validation, 250 test.
fn binary20(args: &Args) -> shaped::Result<Splits> {
    let (ds, source) = match &args.data {
        Some(p) => (data::csv::read_csv(p, "label", 2)?, p.clone()),
        None => (data::synthetic::binary20(598, 1000), PathBuf::from("(the generated 20-feature set)")),
    };
    if ds.sample_dims() != [20] {
        return Err(shaped::Error::data(
            &source,
            format!(
                "the rows have {} features, but experiment {}'s model takes 20",
                ds.sample_len(),
                args.experiment().name()
            ),
        ));
    }
    let (train, val, test) = data::csv::binary20_splits(ds).map_err(|e| shaped::Error::data(&source, e.to_string()))?;
    let train = match args.limit {
        Some(n) if n < train.len() => train.slice(0..n),
        _ => train,
    };
    Ok(Splits { train, val, test })
}

/// Refuses an image file whose declared geometry is not the model's (rows × cols), naming the
/// file and both: read from the headers alone, before anything is loaded.
fn check_idx_geometry(args: &Args, dir: &Path, rows: usize, cols: usize) -> shaped::Result<()> {
    let (train_images, test_images) = data::idx::mnist_image_files(dir)?;
    for f in [train_images, test_images] {
        let (_, r, c) = data::idx::read_idx_image_header(&f)?;
        if (r, c) != (rows, cols) {
            return Err(shaped::Error::data(
                &f,
                format!(
                    "the images are {r}x{c}, but experiment {}'s model takes {rows}x{cols} images",
                    args.experiment().name()
                ),
            ));
        }
    }
    Ok(())
}

fn mnist_like(args: &Args) -> shaped::Result<Splits> {
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
    check_idx_geometry(args, &dir, 28, 28)?;
    let (train, test) = data::idx::load_mnist_dir(&dir, args.pixels())?;
    let (train_images, test_images) = data::idx::mnist_image_files(&dir)?;
    split_images(args, train, test, &train_images, &test_images)
}

/// Applies `--limit`, holds out the last 1/10 of the training set for validation and checks that
/// no split is empty.
fn split_images(
    args: &Args,
    train: Dataset,
    test: Dataset,
    train_source: &Path,
    test_source: &Path,
) -> shaped::Result<Splits> {
    let train = match args.limit {
        Some(n) if n < train.len() => train.slice(0..n),
        _ => train,
    };
    let (train, val) = train.holdout(10);
    check_not_empty("training", &train, train_source, args)?;
    check_not_empty("validation", &val, train_source, args)?;
    check_not_empty("test", &test, test_source, args)?;
    Ok(Splits { train, val, test })
}

fn main() -> ExitCode {
    // Usage errors exit with 2 and --help with 0 (clap's own exits).
    let args = Args::parse();
    // Each thread trains the whole model on its share of every batch, the threads meeting at batch
    // norm (`TrainStep::parts`), or, for a model too small or too large for that, the kernels split
    // their work over the threads.
    shaped::set_num_threads(usize::from(args.threads));
    if args.distributed {
        return distributed::main(args);
    }
    let result = check_outputs(&args).and_then(|()| experiment(&args, None));
    finish(&args, result)
}

/// Reports `result` on stderr and stdout; the exit status.
fn finish(args: &Args, result: shaped::Result<Report>) -> ExitCode {
    match result {
        Ok(r) => {
            if !args.quiet {
                eprintln!(
                    "{}: train acc {:.4}, val acc {:.4}, test acc {:.4}, {:.0} training samples/s, {:.1} s",
                    r.experiment, r.train_acc, r.val_acc, r.test_acc, r.samples_per_sec, r.seconds
                );
            }
            let line = if args.json {
                format!(
                    "{{\"experiment\":\"{}\",\"epochs\":{},\"train_acc\":{:.6},\"val_acc\":{:.6},\"test_acc\":{:.4},\"train_samples_per_sec\":{:.1},\"seconds\":{:.3}}}",
                    r.experiment, r.epochs, r.train_acc, r.val_acc, r.test_acc, r.samples_per_sec, r.seconds
                )
            } else {
                format!("{}: train {:.4} / val {:.4} / test {:.4}", r.experiment, r.train_acc, r.val_acc, r.test_acc)
            };
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{line}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // The reader went away (`hw1 --json | head -0`): nothing left to tell anyone.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the result to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn experiment(args: &Args, comm: Option<&dyn Comm>) -> shaped::Result<Report> {
    use Experiment::*;
    let e = args.experiment();
    match e {
        E1a | E1b | E2a | E2b => {
            let splits = binary20(args)?;
            match e {
                E1a => run::<LinearModel, _>(args, comm, splits, Logistic),
                E1b => run::<TwoLayer, _>(args, comm, splits, Logistic),
                E2a => run::<LinearModel, _>(args, comm, splits, Hinge),
                _ => run::<TwoLayer, _>(args, comm, splits, Hinge),
            }
        }
        E3a | E3b => {
            let splits = mnist_like(args)?;
            if e == E3a {
                run::<Softmax, _>(args, comm, splits, SoftmaxCrossEntropy::<10>)
            } else {
                run::<Mlp, _>(args, comm, splits, SoftmaxCrossEntropy::<10>)
            }
        }
        E4a | E4b => {
            let splits = mnist_like(args)?;
            if e == E4a {
                run::<Cnn, _>(args, comm, splits, SoftmaxCrossEntropy::<10>)
            } else {
                run::<CnnBn, _>(args, comm, splits, SoftmaxCrossEntropy::<10>)
            }
        }
        E5 => {
            let dir = args.data.clone().ok_or_else(|| {
                shaped::Error::data(
                    "--data",
                    "experiment 5 needs CIFAR-10: download the \"CIFAR-10 binary version\" from Alex Krizhevsky's \
                     CIFAR page at the University of Toronto, unpack it and pass --data DIR (the folder with \
                     data_batch_1.bin … data_batch_5.bin and test_batch.bin)",
                )
            })?;
            let (train, test) = data::cifar::load_cifar10_dir(&dir, args.pixels())?;
            let splits = split_images(args, train, test, &dir, &dir)?;
            run::<Vgg, _>(args, comm, splits, SoftmaxCrossEntropy::<10>)
        }
    }
}

/// `e`, when it is an I/O error on the file a flag names (a missing `--load` or `--resume` file),
/// as a checkpoint error that names the flag.
fn flag_io(flag: &str, e: shaped::Error) -> shaped::Error {
    match e {
        shaped::Error::Io { path, source } => {
            shaped::Error::checkpoint(path, format!("{flag}: cannot read the checkpoint: {source}"))
        }
        e => e,
    }
}
