// Single-sample inference on an array of the wrong length fails `cargo build`, naming both sizes.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4,))]
struct Mlp {
    fc1: Linear<4, 8>,
    relu: ReLU,
    fc2: Linear<8, 3>,
}

fn main() {
    let model = Mlp::zeros();
    let mut p = Predictor::new(&model);
    let y: [f32; 3] = p.predict(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    let _ = y;
}
