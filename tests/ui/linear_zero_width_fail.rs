use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Net {
    fc: Linear<20, 0>,
}

fn main() {}
