//! A 20-layer derived model, for measuring what a model definition costs `cargo check` (see
//! ARCHITECTURE.md, "Compile cost"): `touch examples/deep20.rs && cargo check --example deep20`.

use shaped::prelude::*;

/// Twenty layers: four convolution blocks and a fully connected head.
#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Deep20 {
    c1: Conv2d<3, 8, 3, 1, 1>,
    b1: BatchNorm2d<8>,
    r1: ReLU,
    p1: MaxPool2d<2>,
    c2: Conv2d<8, 16, 3, 1, 1>,
    b2: BatchNorm2d<16>,
    r2: ReLU,
    p2: MaxPool2d<2>,
    c3: Conv2d<16, 16, 3, 1, 1>,
    b3: BatchNorm2d<16>,
    r3: ReLU,
    p3: MaxPool2d<2>,
    c4: Conv2d<16, 32, 3, 1, 1>,
    r4: ReLU,
    p4: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<128, 64>,
    r5: ReLU,
    drop: Dropout<Keep<50>>,
    fc2: Linear<64, 10>,
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = Deep20::init(&mut rng, Init::He);
    println!("{net}");
}
