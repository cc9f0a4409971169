//! The data-parallel check program that `tests/mpi.rs` launches (feature `mpi`): trains a spec
//! model on a small synthetic set, alone or as one rank of `mpirun -np N … --distributed`, and
//! prints on stdout (rank 0 only) every step's loss, the validation accuracy and a checksum of
//! the final parameters, to compare runs.
//!
//! ```text
//! cargo run --release --features mpi --example dist_check -- --model 4a --batch 51
//! mpirun --oversubscribe -np 2 target/release/examples/dist_check --model 4a --batch 51 --distributed
//! ```
//!
//! `tests/mpi.rs` includes this file and runs its own binary as the ranks (so that the test
//! never runs a stale build of the example).
//!
//! Fault injection (for the tests): `--fail-rank R --fail-step K --fail-how panic|error|kill`
//! makes rank R panic, return an error or kill itself (SIGKILL) at its K-th training step;
//! `--mismatch-rank R --mismatch lr|data` gives rank R another learning rate or one changed
//! training pixel, which the start-up check must refuse.

use clap::{Parser, ValueEnum};
use shaped::data::{Dataset, random_images};
use shaped::dist::{Comm, Mpi};
use shaped::models::{Cnn, CnnBn, Mlp};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{History, Solver};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    #[value(name = "3b")]
    Mlp,
    #[value(name = "4a")]
    Cnn,
    #[value(name = "4b")]
    CnnBn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailHow {
    Panic,
    Error,
    Kill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mismatch {
    Lr,
    Data,
}

#[derive(Parser, Debug)]
#[command(about = "Data-parallel training check: per-step losses of a small synthetic run")]
struct Args {
    #[arg(long, value_enum, default_value_t = Model::Cnn)]
    model: Model,
    /// Run as one rank of an MPI job (under mpirun).
    #[arg(long)]
    distributed: bool,
    /// Training examples.
    #[arg(long, default_value_t = 600)]
    samples: usize,
    /// Global batch size.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Kernel threads per rank.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long)]
    fail_rank: Option<usize>,
    #[arg(long, default_value_t = 3)]
    fail_step: usize,
    #[arg(long, value_enum, default_value_t = FailHow::Panic)]
    fail_how: FailHow,
    #[arg(long)]
    mismatch_rank: Option<usize>,
    #[arg(long, value_enum, default_value_t = Mismatch::Lr)]
    mismatch: Mismatch,
}

/// Softmax cross-entropy that fails on purpose at its `at`-th training call on the rank it is
/// armed on.
struct Failing {
    armed: Option<FailHow>,
    at: usize,
    calls: AtomicUsize,
}

impl<S: Shape> Loss<S, f32> for Failing
where
    SoftmaxCrossEntropy<10>: Loss<S, f32, Target = usize>,
{
    type Target = usize;
    fn loss(&self, scores: &Tensor<S, f32>, labels: &[usize], d: &mut Tensor<S, f32>) -> shaped::Result<f32> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        match self.armed {
            Some(how) if n == self.at => match how {
                FailHow::Panic => panic!("injected panic at training step {n}"),
                FailHow::Error => {
                    return Err(shaped::Error::Label(format!("injected error at training step {n}")));
                }
                FailHow::Kill => {
                    // SAFETY: raise is async-signal-safe and takes no pointers.
                    unsafe { libc::raise(libc::SIGKILL) };
                }
            },
            _ => {}
        }
        SoftmaxCrossEntropy::<10>.loss(scores, labels, d)
    }
    fn predict(&self, scores: &Tensor<S, f32>, out: &mut Vec<usize>) {
        SoftmaxCrossEntropy::<10>.predict(scores, out)
    }
    fn name(&self) -> &'static str {
        "softmax cross-entropy"
    }
}

fn train<S, M>(args: &Args, comm: Option<&dyn Comm>, train: &Dataset, val: &Dataset) -> shaped::Result<(History, u64)>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    Failing: Loss<M::Out, f32>,
{
    let rank = comm.map_or(0, |c| c.rank());
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut model = M::init(&mut rng, Init::He);
    let lr = if args.mismatch_rank == Some(rank) && args.mismatch == Mismatch::Lr { args.lr * 2.0 } else { args.lr };
    let solver = Solver::new()
        .rule(UpdateRule::SgdMomentum)
        .lr(lr)
        .batch_size(args.batch)
        .epochs(args.epochs)
        .seed(args.seed)
        .train_sample(200);
    let armed = if args.fail_rank == Some(rank) { Some(args.fail_how) } else { None };
    let loss = Failing { armed, at: args.fail_step, calls: AtomicUsize::new(0) };
    let hist = match comm {
        Some(c) => solver.train_distributed_as::<S, M, _>(c, &mut model, &loss, train, val)?,
        None => solver.train_as::<S, M, _>(&mut model, &loss, train, val)?,
    };
    Ok((hist, shaped::dist::param_checksum(&model)))
}

fn run(args: &Args, comm: Option<&dyn Comm>) -> shaped::Result<()> {
    let rank = comm.map_or(0, |c| c.rank());
    let dims: &[usize] = if args.model == Model::Mlp { &[784] } else { &[1, 28, 28] };
    let mut tr = random_images(args.seed, args.samples, dims, 10);
    tr.scale(1.0 / 255.0);
    if args.mismatch_rank == Some(rank) && args.mismatch == Mismatch::Data {
        tr.features_mut()[0] += 1.0;
    }
    let mut val = random_images(args.seed + 1, 200, dims, 10);
    val.scale(1.0 / 255.0);
    let (hist, sum) = match args.model {
        Model::Mlp => train::<(Dyn, Const<784>), Mlp>(args, comm, &tr, &val)?,
        Model::Cnn => train::<(Dyn, Const<1>, Const<28>, Const<28>), Cnn>(args, comm, &tr, &val)?,
        Model::CnnBn => train::<(Dyn, Const<1>, Const<28>, Const<28>), CnnBn>(args, comm, &tr, &val)?,
    };
    if rank == 0 {
        for (i, l) in hist.loss.iter().enumerate() {
            println!("loss {i} {l:e}");
        }
        for a in &hist.val_acc {
            println!("val_acc {a}");
        }
        println!("checksum {sum:016x}");
        println!("samples_per_sec {}", hist.train_samples_per_sec());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    entry(std::env::args_os())
}

/// The program on the command line `argv` (its first item the program's name); `tests/mpi.rs`
/// includes this file and calls it in its rank processes.
pub fn entry(argv: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    let args = Args::parse_from(argv);
    shaped::set_num_threads(args.threads);
    if !args.distributed {
        return match run(&args, None) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mpi = match Mpi::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(&args, Some(&mpi)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => mpi.abort(&e.to_string()),
    }
}
