use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Block {
    conv: Conv2d<3, 16, 3, 1, 1>,
    bn: BatchNorm2d<32>,
    relu: ReLU,
}

fn main() {}
