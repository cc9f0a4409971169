use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (64,))]
struct Net {
    fc: Linear<64, 32>,
    bn: BatchNorm2d<32>,
}

fn main() {}
