use shaped::prelude::*;

#[derive(Sequential)]
struct Down {
    conv: Conv2d<16, 32, 3, 2, 1>,
    relu: ReLU,
}

#[derive(Sequential)]
#[sequential(input = (16, 8, 8))]
struct Net {
    res: Residual<Down>,
}

fn main() {}
