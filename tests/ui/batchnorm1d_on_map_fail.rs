use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Net {
    conv: Conv2d<1, 8, 3>,
    bn: BatchNorm1d<8>,
}

fn main() {}
