use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,), output = (3,))]
struct Net {
    fc: Linear<20, 2>,
}

fn main() {}
