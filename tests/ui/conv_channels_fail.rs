use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct TwoConv {
    conv1: Conv2d<1, 5, 3>,
    relu: ReLU,
    conv2: Conv2d<6, 8, 3>,
}

fn main() {}
