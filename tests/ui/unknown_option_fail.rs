use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,), batch = 32)]
struct Model {
    fc: Linear<20, 1>,
}

fn main() {}
