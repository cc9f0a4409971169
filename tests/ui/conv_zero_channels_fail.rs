use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Net {
    conv: Conv2d<1, 0, 3>,
}

fn main() {}
