use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Model {
    fc: Linear<20, 16>,
    name: String,
}

fn main() {}
