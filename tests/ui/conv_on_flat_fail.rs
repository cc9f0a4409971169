use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (784,))]
struct Net {
    conv: Conv2d<1, 8, 3>,
}

fn main() {}
