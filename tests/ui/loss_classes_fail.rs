use shaped::data::Dataset;
use shaped::prelude::*;
use shaped::solver::Solver;

#[derive(Sequential)]
#[sequential(input = (20,))]
struct Five {
    fc: Linear<20, 5>,
}

fn train(model: &mut Five, train: &Dataset, val: &Dataset) {
    let _ = Solver::new().train(model, &SoftmaxCrossEntropy::<10>, train, val);
}

fn main() {}
