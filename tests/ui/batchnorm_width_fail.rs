use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Mlp {
    fc1: Linear<20, 16>,
    bn: BatchNorm1d<32>,
    relu: ReLU,
    fc2: Linear<16, 1>,
}

fn main() {}
