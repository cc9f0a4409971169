use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<600, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

fn main() {}
