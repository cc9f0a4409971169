use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
#[sequential(input = (30,))]
struct Net {
    fc: Linear<20, 2>,
}

fn main() {}
