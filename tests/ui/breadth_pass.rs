// The issue-17 layers in one model that must compile: padded max pooling, average pooling, global
// average pooling, layer norm, the activations and log-softmax.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (3, 31, 31))]
struct Net {
    conv: Conv2d<3, 8, 3, 1, 1>,
    leaky: LeakyReLU<100>,
    pool: MaxPool2d<3, 2, 1>,
    avg: AvgPool2d<2>,
    sig: Sigmoid,
    gap: GlobalAvgPool,
    ln: LayerNorm<8>,
    fc: Linear<8, 10>,
    gelu: GELU,
    tanh: Tanh,
    out: LogSoftmax,
}

fn main() {
    let net = Net::zeros();
    let x = Tensor::<(Dyn, Const<3>, Const<31>, Const<31>)>::zeros(Dyn(2));
    let y: Tensor<(Dyn, Const<10>)> = net.predict(&x);
    assert_eq!(y.batch_size(), 2);
}
