use shaped::prelude::*;

#[derive(Sequential)]
struct Model {
    fc: Linear<20, 1>,
}

fn main() {}
