//! The shaped side of `tools/parity.py`: trains one model in f64 for 100 steps on the first 100
//! batches of Fashion-MNIST (in order, no shuffling, dropout off), with the homework's update rule
//! for it, and writes what PyTorch must reproduce: the initial and final parameters in PyTorch's
//! `state_dict` layout (`io::save_torch`), the loss of every step and the final model's scores on the
//! first 100 test images.
//!
//! `cargo run --release --example parity -- <3b|4a|4b|lenet> <OUT_DIR>`

use shaped::data::{self, Dataset, Pixels};
use shaped::loss::{l2_penalty, softmax_loss};
use shaped::optim::{AnyOptimizer, Optimizer};
use shaped::prelude::*;
use std::path::Path as FsPath;

#[derive(Sequential)]
#[sequential(input = (784,), elem = f64)]
struct Mlp {
    fc1: Linear<784, 64, f64>,
    relu: ReLU,
    fc2: Linear<64, 10, f64>,
}

#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = f64)]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false, f64>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16, f64>,
    relu2: ReLU,
    fc2: Linear<16, 10, f64>,
}

/// 4b without its dropout.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = f64)]
struct CnnBn {
    conv: Conv2d<1, 8, 7, 1, 0, false, f64>,
    bn1: BatchNorm2d<8, f64>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<968, 16, f64>,
    bn2: BatchNorm1d<16, f64>,
    relu2: ReLU,
    fc2: Linear<16, 10, f64>,
}

#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = f64)]
struct LeNet {
    conv1: Conv2d<1, 6, 5, 1, 2, true, f64>,
    bn1: BatchNorm2d<6, f64>,
    relu1: ReLU,
    pool1: MaxPool2d<2>,
    conv2: Conv2d<6, 16, 5, 1, 0, true, f64>,
    bn2: BatchNorm2d<16, f64>,
    relu2: ReLU,
    pool2: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<400, 120, f64>,
    relu3: ReLU,
    fc2: Linear<120, 84, f64>,
    relu4: ReLU,
    fc3: Linear<84, 10, f64>,
}

/// Steps to run (100; `PARITY_STEPS` overrides it, for diagnosing a mismatch).
fn steps() -> usize {
    std::env::var("PARITY_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

/// Samples `lo..lo + n` of `data` as an f64 batch.
fn batch<S: Shape<Batch = Dyn>>(data: &Dataset, lo: usize, n: usize) -> shaped::Result<Tensor<S, f64>> {
    let per = data.sample_len();
    let x: Vec<f64> = data.features()[lo * per..(lo + n) * per].iter().map(|&v| v as f64).collect();
    Tensor::from_vec(x)
}

struct Setup {
    rule: UpdateRule,
    lr: f64,
    reg: f64,
    batch: usize,
}

fn run<S, M>(
    name: &str,
    mut model: M,
    setup: Setup,
    train: &Dataset,
    test: &Dataset,
    out: &FsPath,
) -> shaped::Result<()>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f64, Out = (Dyn, Const<10>)>,
{
    shaped::io::save_torch(&model, out.join(format!("{name}.init.safetensors")))?;
    let mut opt = AnyOptimizer::<M, f64>::new(setup.rule);
    let (mut y, mut dy) = (Tensor::zeros(Dyn(0)), Tensor::zeros(Dyn(0)));
    let mut cache = M::Cache::default();
    let mut grads = M::zeros();
    let mut losses = Vec::with_capacity(steps());
    for step in 0..steps() {
        let lo = step * setup.batch;
        let x = batch::<S>(train, lo, setup.batch)?;
        let labels = &train.labels()[lo..lo + setup.batch];
        model.forward_train(&x, &mut y, &mut cache);
        let loss = softmax_loss(&y, labels, &mut dy)? + l2_penalty(&model, setup.reg);
        model.backward(&x, &y, &dy, &mut cache, None, &mut grads);
        opt.step_l2(&mut model, &grads, setup.lr, setup.reg);
        losses.push(loss);
    }
    shaped::io::save_torch(&model, out.join(format!("{name}.final.safetensors")))?;
    let scores = model.predict(&batch::<S>(test, 0, 100)?);
    let list = |v: &[f64]| v.iter().map(|a| format!("{a:e}")).collect::<Vec<_>>().join(",");
    let json = format!(
        "{{\"model\":\"{name}\",\"rule\":\"{}\",\"lr\":{},\"reg\":{},\"batch\":{},\"losses\":[{}],\"scores\":[{}]}}\n",
        setup.rule,
        setup.lr,
        setup.reg,
        setup.batch,
        list(&losses),
        list(scores.as_slice())
    );
    std::fs::write(out.join(format!("{name}.json")), json).map_err(|e| shaped::Error::io(out, e))?;
    println!("{name}: {} steps, loss {:.6} -> {:.6}", losses.len(), losses[0], losses[losses.len() - 1]);
    Ok(())
}

fn main() -> shaped::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which, out] = args.as_slice() else {
        eprintln!("usage: parity <3b|4a|4b|lenet> <OUT_DIR>");
        std::process::exit(2);
    };
    let out = FsPath::new(out);
    std::fs::create_dir_all(out).map_err(|e| shaped::Error::io(out, e))?;
    let dir = data::idx::fashion_mnist_dir().ok_or_else(|| {
        shaped::Error::Shape("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist".into())
    })?;
    let pixels = if which == "lenet" { Pixels::Unit } else { Pixels::Raw };
    let (train, test) = data::idx::load_mnist_dir(&dir, pixels)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let hw = |rule, lr, reg| Setup { rule, lr, reg, batch: 100 };
    type Img = (Dyn, Const<1>, Const<28>, Const<28>);
    // The homework's initialisation is N(0, 1e-3²), under which nothing moves in 100 steps; a
    // larger scale makes the comparison meaningful.
    let init = Init::Gaussian(0.05);
    match which.as_str() {
        "3b" => run::<(Dyn, Const<784>), _>(
            "3b",
            Mlp::init(&mut rng, init),
            hw(UpdateRule::RmsProp, 1e-4, 0.01),
            &train,
            &test,
            out,
        ),
        "4a" => {
            run::<Img, _>("4a", Cnn::init(&mut rng, init), hw(UpdateRule::SgdMomentum, 1e-3, 0.0), &train, &test, out)
        }
        "4b" => {
            run::<Img, _>("4b", CnnBn::init(&mut rng, init), hw(UpdateRule::SgdMomentum, 1e-2, 0.0), &train, &test, out)
        }
        "lenet" => run::<Img, _>(
            "lenet",
            LeNet::init(&mut rng, Init::He),
            Setup { rule: UpdateRule::Adam, lr: 1e-3, reg: 0.0, batch: 64 },
            &train,
            &test,
            out,
        ),
        other => {
            eprintln!("unknown model `{other}`: 3b, 4a, 4b or lenet");
            std::process::exit(2);
        }
    }
}
