use shaped::prelude::*;

// 8 filters: the flattened size is 8·11·11 = 968, not 4a's 605.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct CnnBn {
    conv: Conv2d<1, 8, 7, 1, 0, false>,
    bn1: BatchNorm2d<8>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    fc2: Linear<16, 10>,
}

fn main() {}
