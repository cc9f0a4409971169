use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (64,))]
struct Head {
    fc: Linear<64, 32>,
    gap: GlobalAvgPool,
}

fn main() {}
