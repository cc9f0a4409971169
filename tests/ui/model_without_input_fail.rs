use shaped::prelude::*;

// Without `input`, a derived struct is a shape-polymorphic block: it has no typed face of its own.
#[derive(Sequential)]
struct Model {
    fc: Linear<20, 1>,
}

fn main() {
    let x = Tensor::<(Dyn, Const<20>)>::zeros(Dyn(2));
    let _ = Model::zeros().predict(&x);
}
