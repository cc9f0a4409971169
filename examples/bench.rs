//! Training-step throughput of the spec's models on synthetic data of the right shape:
//! `cargo run --release --example bench -- <experiment> [--threads N] [--steps K] [--reps R] [--gather] [--isa I] [--json]`.
//!
//! Prints one JSON line `{"experiment","threads","batch","step_us","train_samples_per_sec","isa",
//! "gflop_per_step","gflops"}`: the median over `R` repetitions of `K` steps each, after a warm-up
//! of `K/5` steps; the operations are counted by `shaped::flops::step_flops` (convolutions and
//! linear layers, forward and backward). `--isa portable|avx2|avx512` forces a narrower kernel path. The work is a full
//! training step (forward, loss, L2, backward, update) with the experiment's optimizer.
//!
//! As in the PyTorch script it is compared with (`../shared/bench/pytorch_seed_models.py`), the
//! batches are materialised before the timed loop, in order, from as many examples as that script
//! trains on (20,000; 5,000 for the VGG; 1,000 for the 20-feature models), and each step trains on
//! one of them ([`TrainStep::step_batch`]). With `--gather` each step copies its examples out of
//! the data set itself ([`TrainStep::step`], as a shuffled epoch of `hw1` does).

use shaped::data::{Dataset, synthetic};
use shaped::kernels::{Isa, isa, set_isa};
use shaped::models::{Cnn, CnnBn, LinearModel, Mlp, Softmax, TwoLayer, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;
use std::time::Instant;

struct Opts {
    experiment: String,
    threads: usize,
    steps: usize,
    reps: usize,
    gather: bool,
    json: bool,
}

fn bench<S, M, L>(o: &Opts, rule: UpdateRule, reg: f32, batch: usize, loss: L, data: Dataset) -> (f64, u64)
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut model = M::init(&mut rng, Init::Gaussian(1e-3));
    let mut step = TrainStep::<S, M>::new(rule, reg, batch);
    let batches: Vec<Vec<usize>> = (0..data.len() / batch).map(|i| (i * batch..(i + 1) * batch).collect()).collect();
    let prepared: Vec<(Tensor<S, f32>, Vec<usize>)> = if o.gather {
        Vec::new()
    } else {
        batches.iter().map(|b| data.batch::<S>(b).expect("the synthetic data fits the model")).collect()
    };
    let mut k = 0;
    let mut run = |n: usize| {
        for _ in 0..n {
            let i = k % batches.len();
            if o.gather {
                step.step(&mut model, &loss, &data, &batches[i], 1e-6).expect("finite loss");
            } else {
                let (x, y) = &prepared[i];
                step.step_batch(&mut model, &loss, x, y, 1e-6).expect("finite loss");
            }
            k += 1;
        }
    };
    run((o.steps / 5).max(1));
    let mut times: Vec<f64> = (0..o.reps)
        .map(|_| {
            let t = Instant::now();
            run(o.steps);
            t.elapsed().as_secs_f64() / o.steps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], shaped::flops::step_flops::<M, f32>(batch).total())
}

/// Prints `problem` (if any) and the usage, and exits: with status 2 after a problem, 0 for `--help`.
fn usage(problem: &str) -> ! {
    let text = "usage: bench [1a|1b|2a|2b|3a|3b|4a|4b|5] [--threads N] [--steps K] [--reps R] [--gather] \
                [--isa portable|avx2|avx512] [--json]";
    if problem.is_empty() {
        println!("{text}");
        std::process::exit(0);
    }
    eprintln!("bench: {problem}\n{text}");
    std::process::exit(2);
}

fn main() {
    let mut o = Opts { experiment: "4a".into(), threads: 1, steps: 0, reps: 5, gather: false, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            let v = args.next().unwrap_or_default();
            v.parse().unwrap_or_else(|_| usage(&format!("{name} needs a whole number, not {v:?}")))
        };
        match a.as_str() {
            "--threads" => {
                o.threads = num("--threads");
                if !(1..=shaped::threads::MAX_THREADS).contains(&o.threads) {
                    usage(&format!("--threads takes 1 to {}, not {}", shaped::threads::MAX_THREADS, o.threads));
                }
            }
            "--steps" => o.steps = num("--steps"),
            "--reps" => o.reps = num("--reps").max(1),
            "--json" => o.json = true,
            "--gather" => o.gather = true,
            "--isa" => {
                let v = args.next().unwrap_or_default();
                match Isa::ALL.into_iter().find(|i| i.name() == v) {
                    Some(want) if want <= shaped::kernels::detected_isa() => {
                        set_isa(want);
                    }
                    Some(_) => {
                        usage(&format!("--isa {v}: this CPU's widest is {}", shaped::kernels::detected_isa().name()))
                    }
                    None => usage(&format!("--isa takes portable, avx2 or avx512, not {v:?}")),
                }
            }
            "-h" | "--help" => usage(""),
            s if !s.starts_with('-') => o.experiment = s.into(),
            other => usage(&format!("unknown option {other}")),
        }
    }
    if !["1a", "1b", "2a", "2b", "3a", "3b", "4a", "4b", "5"].contains(&o.experiment.as_str()) {
        usage(&format!("unknown experiment {:?}", o.experiment));
    }
    shaped::set_num_threads(o.threads);
    let img = |n| synthetic::random_images(1, n, &[1, 28, 28], 10);
    let flat = |n| synthetic::random_images(1, n, &[784], 10);
    let defaults = |tiny: usize, small: usize, conv: usize| match o.experiment.as_str() {
        "1a" | "1b" | "2a" | "2b" => tiny,
        "3a" | "3b" => small,
        _ => conv,
    };
    if o.steps == 0 {
        o.steps = defaults(20_000, 1000, if o.experiment == "5" { 10 } else { 100 });
    }
    let sm = UpdateRule::SgdMomentum;
    let (batch, (t, flops)) = match o.experiment.as_str() {
        "1a" => {
            (50, bench::<(Dyn, Const<20>), LinearModel, _>(&o, sm, 0.2, 50, Logistic, synthetic::binary20(1, 1000)))
        }
        "1b" => (50, bench::<(Dyn, Const<20>), TwoLayer, _>(&o, sm, 0.3, 50, Logistic, synthetic::binary20(1, 1000))),
        "2a" => (50, bench::<(Dyn, Const<20>), LinearModel, _>(&o, sm, 0.1, 50, Hinge, synthetic::binary20(1, 1000))),
        "2b" => (50, bench::<(Dyn, Const<20>), TwoLayer, _>(&o, sm, 0.3, 50, Hinge, synthetic::binary20(1, 1000))),
        "3a" => (
            100,
            bench::<(Dyn, Const<784>), Softmax, _>(
                &o,
                UpdateRule::RmsProp,
                0.01,
                100,
                SoftmaxCrossEntropy::<10>,
                flat(20_000),
            ),
        ),
        "3b" => (
            100,
            bench::<(Dyn, Const<784>), Mlp, _>(
                &o,
                UpdateRule::RmsProp,
                0.01,
                100,
                SoftmaxCrossEntropy::<10>,
                flat(20_000),
            ),
        ),
        "4a" => (
            100,
            bench::<(Dyn, Const<1>, Const<28>, Const<28>), Cnn, _>(
                &o,
                sm,
                0.0,
                100,
                SoftmaxCrossEntropy::<10>,
                img(20_000),
            ),
        ),
        "4b" => (
            100,
            bench::<(Dyn, Const<1>, Const<28>, Const<28>), CnnBn, _>(
                &o,
                sm,
                0.0,
                100,
                SoftmaxCrossEntropy::<10>,
                img(20_000),
            ),
        ),
        "5" => (
            100,
            bench::<(Dyn, Const<3>, Const<32>, Const<32>), Vgg, _>(
                &o,
                UpdateRule::Adam,
                0.0,
                100,
                SoftmaxCrossEntropy::<10>,
                synthetic::random_images(1, 5000, &[3, 32, 32], 10),
            ),
        ),
        other => usage(&format!("unknown experiment {other:?}")),
    };
    let sps = batch as f64 / t;
    if o.json {
        println!(
            "{{\"experiment\":\"{}\",\"threads\":{},\"batch\":{batch},\"step_us\":{:.2},\"train_samples_per_sec\":{:.1},\"isa\":\"{}\",\"gflop_per_step\":{:.4},\"gflops\":{:.2}}}",
            o.experiment,
            o.threads,
            t * 1e6,
            sps,
            isa().name(),
            flops as f64 / 1e9,
            flops as f64 / t / 1e9
        );
    } else {
        println!(
            "{}: {:.2} µs per step, {:.0} samples/s, {:.2} GFLOP/s ({:.4} GFLOP a step; {} threads, {})",
            o.experiment,
            t * 1e6,
            sps,
            flops as f64 / t / 1e9,
            flops as f64 / 1e9,
            o.threads,
            isa().name()
        );
    }
}
