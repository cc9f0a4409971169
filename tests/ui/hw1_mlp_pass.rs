//! Experiments 1a/1b/2a/2b (20 features) and 3a/3b (784 pixels).
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct LinearModel {
    fc: Linear<20, 1>,
}

#[derive(Sequential)]
#[sequential(input = (20,))]
struct TwoLayer {
    fc1: Linear<20, 32>,
    relu: ReLU,
    fc2: Linear<32, 1>,
}

#[derive(Sequential)]
#[sequential(input = (784,))]
struct Softmax {
    fc: Linear<784, 10>,
}

#[derive(Sequential)]
#[sequential(input = (784,))]
struct Mlp {
    fc1: Linear<784, 64>,
    relu: ReLU,
    fc2: Linear<64, 10>,
}

fn main() {
    let x = Tensor::<(Dyn, Const<20>)>::zeros(Dyn(2));
    assert_eq!(LinearModel::zeros().predict(&x).dims(), [2, 1]);
    assert_eq!(TwoLayer::zeros().predict(&x).dims(), [2, 1]);
    let x = Tensor::<(Dyn, Const<784>)>::zeros(Dyn(2));
    assert_eq!(Softmax::zeros().predict(&x).dims(), [2, 10]);
    assert_eq!(Mlp::zeros().predict(&x).dims(), [2, 10]);
    let _ = (Logistic, Hinge, SoftmaxCrossEntropy::<10>);
}
