use shaped::prelude::*;

// The model is declared f64 but its linear layer keeps the default f32.
#[derive(Sequential)]
#[sequential(input = (20,), elem = f64)]
struct Model {
    fc1: Linear<20, 16, f64>,
    relu: ReLU,
    fc2: Linear<16, 1>,
}

fn main() {}
