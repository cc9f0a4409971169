use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (C, H, W))]
struct Block<const C: usize, const H: usize, const W: usize> {
    conv: Conv2d<C, C, 3, 1, 1>,
    relu: ReLU,
}

#[derive(Sequential)]
#[sequential(input = (16, 32, 32))]
struct Net {
    block32: Block<16, 32, 32>,
    pool: MaxPool2d<2>,
    block16: Block<16, 32, 32>,
}

fn main() {}
