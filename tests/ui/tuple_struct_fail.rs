use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Model(Linear<20, 16>, ReLU);

fn main() {}
