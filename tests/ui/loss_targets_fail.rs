// A regression loss takes one real value per output: class labels are a type error.
use shaped::loss::Mse;
use shaped::prelude::*;
use shaped::step::TrainStep;

fn step(model: &mut Linear<4, 2>, step: &mut TrainStep<(Dyn, Const<4>), Linear<4, 2>>, x: &Tensor<(Dyn, Const<4>)>) {
    let labels: Vec<usize> = vec![0, 1];
    let _ = step.step_targets(model, &Mse, x, &labels, 1e-3);
}

fn main() {}
