use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Net {
    fc: Linear<20, 20>,
    drop: Dropout<Keep<150>>,
}

fn main() {}
