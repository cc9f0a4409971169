//! The same seed and thread count give bit-identical parameters after training, for a CNN with
//! batch norm and dropout whose convolutions split the batch over threads. (A test binary of its
//! own: the thread count is process-wide.)

use shaped::data::{Dataset, synthetic};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::Solver;

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
