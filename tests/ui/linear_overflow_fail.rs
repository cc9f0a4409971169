use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4294967296,))]
struct Net {
    fc: Linear<4294967296, 4294967296>,
}

fn main() {}
