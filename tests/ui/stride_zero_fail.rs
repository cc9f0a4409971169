use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Net {
    conv: Conv2d<1, 5, 3, 0>,
}

fn main() {}
