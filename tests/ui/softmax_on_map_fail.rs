use shaped::prelude::*;

// Softmax normalises the features of a flat input; a feature map needs a Flatten first.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Probs {
    conv: Conv2d<1, 4, 5>,
    probs: Softmax,
}

fn main() {}
