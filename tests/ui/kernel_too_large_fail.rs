use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 5, 5))]
struct Tiny {
    conv: Conv2d<1, 4, 7>,
    relu: ReLU,
}

fn main() {}
