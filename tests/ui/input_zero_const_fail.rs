use shaped::prelude::*;

const SIDE: usize = 28 - 28;

#[derive(Sequential)]
#[sequential(input = (1, SIDE, SIDE))]
struct Net {
    relu: ReLU,
}

fn main() {}
