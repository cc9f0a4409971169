//! The same seed and thread count give bit-identical parameters after training, for a CNN with
//! batch norm and dropout whose convolutions split the batch over threads; the SGD updates of a
//! large layer give the same bits split over threads as on one. (A test binary of its own: the
//! thread count is process-wide; its tests take `THREADS` in turn.)

use shaped::data::{Dataset, synthetic};
use shaped::optim::{Optimizer, Sgd, SgdMomentum, UpdateRule};
use shaped::prelude::*;
use shaped::solver::Solver;
use std::sync::Mutex;

/// Held by each test for its whole run: the thread count is process-wide.
static THREADS: Mutex<()> = Mutex::new(());

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 8, 5>,
    bn: BatchNorm2d<8>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<1152, 16>,
    bn1: BatchNorm1d<16>,
    relu2: ReLU,
    drop: Dropout<Keep<60>, Inverted>,
    fc2: Linear<16, 10>,
}

/// Every parameter and buffer, as bits.
fn bits<M: Module<f32>>(m: &M) -> Vec<u32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend(d.iter().map(|v| v.to_bits())));
    out
}

fn run(threads: usize, seed: u64, train: &Dataset, val: &Dataset) -> (Vec<u32>, Vec<u32>) {
    shaped::set_num_threads(threads);
    let mut net = Cnn::init(&mut rand::rngs::StdRng::seed_from_u64(1), Init::He);
    let h = Solver::new()
        .rule(UpdateRule::Adam)
        .lr(1e-3)
        .batch_size(40)
        .epochs(2)
        .seed(seed)
        .train(&mut net, &SoftmaxCrossEntropy::<10>, train, val)
        .unwrap();
    (bits(&net), h.loss.iter().map(|l| l.to_bits()).collect())
}

#[test]
fn same_seed_and_threads_give_bit_identical_parameters() {
    let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut data = synthetic::random_images(3, 240, &[1, 28, 28], 10);
    data.scale(1.0 / 255.0);
    let (train, val) = data.split_at(200);
    for threads in [1, 2] {
        let a = run(threads, 7, &train, &val);
        let b = run(threads, 7, &train, &val);
        assert!(a == b, "{threads} thread(s): two runs with the same seed differ");
        assert!(a.1.iter().all(|&l| f32::from_bits(l).is_finite()));
        let c = run(threads, 8, &train, &val);
        assert!(a.0 != c.0, "{threads} thread(s): the seed has no effect");
    }
    shaped::set_num_threads(1);
}

type Wide = Linear<256, 128>;

/// The learning rate and L2 factor of [`three_steps`].
const LR: f32 = 0.1;
const REG: f32 = 0.01;

/// Weight `i`'s start (`k = 0`) and its gradient at step `k`: values in [−1, 1].
fn value(i: usize, k: usize) -> f32 {
    ((i * 7919 + k * 104_729) % 2001) as f32 / 1000.0 - 1.0
}

/// Three steps of `opt` on a layer of 32,768 weights (split over the kernel threads when there are
/// two) from fixed values, as bits.
fn three_steps<O: Optimizer<Wide, f32>>(mut opt: O, threads: usize) -> Vec<u32> {
    shaped::set_num_threads(threads);
    let (mut m, mut g) = (Wide::zeros(), Wide::zeros());
    m.weight.as_mut_slice().iter_mut().enumerate().for_each(|(i, w)| *w = value(i, 0));
    for k in 1..=3 {
        g.weight.as_mut_slice().iter_mut().enumerate().for_each(|(i, w)| *w = value(i, k));
        opt.step_l2(&mut m, &g, LR, REG);
    }
    shaped::set_num_threads(1);
    m.weight.as_slice().iter().map(|w| w.to_bits()).collect()
}

/// SGD, momentum and Nesterov on a layer large enough to split: one and two threads give the
/// same bits, those of the formulas computed here value by value in the same order.
#[test]
fn sgd_updates_split_over_threads_keep_their_bits() {
    let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mu = 0.9f32;
    for (name, nesterov) in [("sgd", None), ("momentum", Some(false)), ("nesterov", Some(true))] {
        let want: Vec<u32> = (0..256 * 128)
            .map(|i| {
                let (mut w, mut v) = (value(i, 0), 0.0f32);
                for k in 1..=3 {
                    let step = LR * (value(i, k) + REG * w);
                    match nesterov {
                        None => w -= step,
                        Some(n) => {
                            v = mu * v - step;
                            w += if n { mu * v - step } else { v };
                        }
                    }
                }
                w.to_bits()
            })
            .collect();
        for threads in [1, 2] {
            let got = match nesterov {
                None => three_steps(Sgd::new(), threads),
                Some(false) => three_steps(SgdMomentum::new(), threads),
                Some(true) => three_steps(SgdMomentum::nesterov(mu), threads),
            };
            assert!(got == want, "{name}, {threads} thread(s): other bits than the formula's");
        }
    }
}
