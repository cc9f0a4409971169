use shaped::gradcheck::{GradCheck, check_layer};
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4,))]
struct Net {
    fc: Linear<4, 2>,
}

fn main() {
    let mut net = Net::zeros();
    let x = Tensor::<(Dyn, Const<4>), f64>::zeros(Dyn(2));
    let _ = check_layer(&mut net, &x, &GradCheck::default());
}
