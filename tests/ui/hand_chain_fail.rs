// Layers chained by hand outside the derive: a wrong output shape fails `cargo build` with the
// rule's message.
use shaped::prelude::*;

fn main() {
    let conv = Conv2d::<1, 5, 7>::zeros();
    let x = Tensor::<(Dyn, Const<1>, Const<28>, Const<28>)>::zeros(Dyn(2));
    let y: Tensor<(Dyn, Const<5>, Const<24>, Const<24>)> = conv.apply(&x);
    let _ = y;
}
