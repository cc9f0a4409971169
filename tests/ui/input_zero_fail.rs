use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 0, 28))]
struct Net {
    relu: ReLU,
}

fn main() {}
