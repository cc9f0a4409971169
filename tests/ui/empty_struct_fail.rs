use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Empty {}

fn main() {}
