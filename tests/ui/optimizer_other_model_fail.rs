// An optimizer's state is typed by its model: stepping another model with it does not compile.
use shaped::optim::{Adam, Optimizer};
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (4,))]
struct A {
    fc: Linear<4, 2>,
}

#[derive(Sequential)]
#[sequential(input = (4,))]
struct B {
    fc: Linear<4, 3>,
}

fn main() {
    let (mut a, mut b) = (A::zeros(), B::zeros());
    let mut opt = Adam::new();
    opt.step(&mut a, &A::zeros(), 0.1);
    opt.step(&mut b, &B::zeros(), 0.1);
}
