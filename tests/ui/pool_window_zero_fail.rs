use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4, 8, 8))]
struct Net {
    pool: MaxPool2d<0>,
}

fn main() {}
