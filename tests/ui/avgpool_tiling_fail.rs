use shaped::prelude::*;

// A 6×6 kernel leaves 23×23, which a 2×2 average pool with stride 2 does not tile.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Odd {
    conv: Conv2d<1, 5, 6>,
    gelu: GELU,
    pool: AvgPool2d<2>,
}

fn main() {}
