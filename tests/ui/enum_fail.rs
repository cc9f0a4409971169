use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
enum Model {
    Small(Linear<20, 1>),
}

fn main() {}
