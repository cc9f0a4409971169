use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu: ReLU,
}

fn main() {
    let model = Cnn::zeros();
    let x = Tensor::<(Dyn, Const<3>, Const<28>, Const<28>)>::zeros(Dyn(2));
    let _ = model.predict(&x);
}
