//! A model with one wrong size, used as a program uses it (trained with a loss, then asked for
//! predictions): the one error at the field, and no second one about the model's output (its
//! last layer still says it outputs 10 scores).
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Net {
    conv: Conv2d<1, 4, 3>,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<676, 32>,
    act: ReLU,
    fc2: Linear<30, 10>,
}

fn main() {
    let mut net = Net::init(&mut rand::rngs::StdRng::seed_from_u64(1), Init::He);
    let data = shaped::data::synthetic::random_images(1, 8, &[1, 28, 28], 10);
    let mut step = TrainStep::<(Dyn, Const<1>, Const<28>, Const<28>), Net>::new(UpdateRule::Adam, 0.0, 8);
    let _ = step.step(&mut net, &SoftmaxCrossEntropy::<10>, &data, &[0, 1], 0.01);
    let _ = shaped::solver::accuracy(&net, &SoftmaxCrossEntropy::<10>, &data, 4);
}
