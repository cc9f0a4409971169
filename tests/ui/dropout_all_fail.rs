//! Dropping every activation is refused as keeping none is (`Keep<0>`): the model could learn
//! nothing.
use shaped::layers::Drop;
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4,))]
struct Net {
    drop: Dropout<Drop<100>>,
    fc: Linear<4, 2>,
}

fn main() {}
