use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Block {
    fc: Linear<20, 16>,
    relu: ReLU,
}

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Model {
    block: Block,
    fc: Linear<32, 10>,
}

fn main() {}
