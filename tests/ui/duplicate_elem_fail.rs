use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,), elem = f32, elem = f64)]
struct Net {
    fc: Linear<20, 2>,
}

fn main() {}
