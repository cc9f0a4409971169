//! Experiments 4a and 4b.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct CnnBn {
    conv: Conv2d<1, 8, 7, 1, 0, false>,
    bn1: BatchNorm2d<8>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<968, 16>,
    bn2: BatchNorm1d<16>,
    relu2: ReLU,
    drop: Dropout<Keep<50>, Vanilla>,
    fc2: Linear<16, 10>,
}

/// 4a in f64 with the element type as a parameter.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = E)]
struct CnnOf<E: Elem> {
    conv: Conv2d<1, 5, 7, 1, 0, false, E>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16, E>,
    relu2: ReLU,
    fc2: Linear<16, 10, E>,
}

fn main() {
    let x = Tensor::<(Dyn, Const<1>, Const<28>, Const<28>)>::zeros(Dyn(2));
    assert_eq!(Cnn::zeros().predict(&x).dims(), [2, 10]);
    assert_eq!(CnnBn::zeros().predict(&x).dims(), [2, 10]);
    let x = Tensor::<(Const<3>, Const<1>, Const<28>, Const<28>), f64>::zeros(Const);
    assert_eq!(<CnnOf<f64> as Module<f64>>::zeros().predict(&x).dims(), [3, 10]);
    let _ = format!("{}", Cnn::zeros());
}
