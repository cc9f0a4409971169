use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Mlp {
    fc1: Linear<20, 16>,
    ln: LayerNorm<32>,
    gelu: GELU,
    fc2: Linear<16, 1>,
}

fn main() {}
