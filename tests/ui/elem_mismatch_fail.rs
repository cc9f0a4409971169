use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Model {
    fc: Linear<20, 2>,
}

fn main() {
    let model = Model::zeros();
    let x = Tensor::<(Dyn, Const<20>), f64>::zeros(Dyn(2));
    let _ = model.predict(&x);
}
