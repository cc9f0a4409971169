use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4, 3, 3))]
struct Net {
    pool: MaxPool2d<4>,
}

fn main() {}
