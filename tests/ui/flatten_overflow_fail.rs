use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4294967296, 4294967296, 2))]
struct Net {
    flat: Flatten,
}

fn main() {}
