use shaped::prelude::*;

// Padding of 2 on a 3×3 window: more than half the window (PyTorch's rule).
#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Stem {
    conv: Conv2d<3, 8, 3, 1, 1>,
    relu: ReLU,
    pool: MaxPool2d<3, 2, 2>,
}

fn main() {}
