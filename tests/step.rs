//! `TrainStep::step_batch` (a batch prepared as a tensor) trains exactly as `TrainStep::step`
//! (a batch gathered from the data set), and both check the data and labels they are given.

use shaped::data::synthetic;
use shaped::models::Mlp;
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;

type Flat = (Dyn, Const<784>);

/// The model every test starts from.
fn init_again() -> Mlp {
    Mlp::init(&mut rand::rngs::StdRng::seed_from_u64(3), Init::Gaussian(1e-2))
}

/// Every parameter, as bits.
fn bits<M: Module<f32>>(m: &M) -> Vec<u32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend(d.iter().map(|v| v.to_bits())));
    out
}

#[test]
fn step_batch_trains_bit_for_bit_as_step() {
    let data = synthetic::random_images(2, 120, &[784], 10);
    let (mut a, mut b) = (init_again(), init_again());
    let mut sa = TrainStep::<Flat, Mlp>::new(UpdateRule::RmsProp, 0.01, 50);
    let mut sb = TrainStep::<Flat, Mlp>::new(UpdateRule::RmsProp, 0.01, 50);
    let orders: [Vec<usize>; 3] = [(0..50).rev().collect(), (50..100).collect(), (100..120).collect()];
    for order in &orders {
        let la = sa.step(&mut a, &SoftmaxCrossEntropy::<10>, &data, order, 1e-3).unwrap();
        let (x, y) = data.batch::<Flat>(order).unwrap();
        let lb = sb.step_batch(&mut b, &SoftmaxCrossEntropy::<10>, &x, &y, 1e-3).unwrap();
        assert_eq!(la.to_bits(), lb.to_bits(), "losses differ");
        assert!(bits(&a) == bits(&b), "parameters differ after a step");
    }
    assert!(bits(&a) != bits(&init_again()), "the steps changed nothing");
}

#[test]
fn step_batch_rejects_labels_that_do_not_fit() {
    let data = synthetic::random_images(2, 20, &[784], 10);
    let mut model = init_again();
    let mut step = TrainStep::<Flat, Mlp>::new(UpdateRule::Adam, 0.0, 20);
    let (x, mut y) = data.batch::<Flat>(&(0..20).collect::<Vec<_>>()).unwrap();
    let before = bits(&model);
    let short = step.step_batch(&mut model, &SoftmaxCrossEntropy::<10>, &x, &y[..19], 1e-3);
    let msg = short.unwrap_err().to_string();
    assert!(msg.contains("19") && msg.contains("20"), "{msg}");
    y[7] = 10;
    let out_of_range = step.step_batch(&mut model, &SoftmaxCrossEntropy::<10>, &x, &y, 1e-3);
    let msg = out_of_range.unwrap_err().to_string();
    assert!(msg.contains("label 10 at position 7"), "{msg}");
    assert!(bits(&model) == before, "a rejected batch changed the parameters");
}

#[test]
fn step_rejects_data_that_does_not_fit_and_indices_past_the_end() {
    let mut model = init_again();
    let mut step = TrainStep::<Flat, Mlp>::new(UpdateRule::Adam, 0.0, 20);
    let before = bits(&model);
    let wrong = synthetic::random_images(2, 20, &[1, 27, 28], 10);
    let msg = step.step(&mut model, &SoftmaxCrossEntropy::<10>, &wrong, &[0, 1], 1e-3).unwrap_err().to_string();
    assert!(msg.contains("samples of 756 values") && msg.contains("takes 784"), "{msg}");
    let data = synthetic::random_images(2, 20, &[784], 10);
    let msg = step.step(&mut model, &SoftmaxCrossEntropy::<10>, &data, &[3, 20], 1e-3).unwrap_err().to_string();
    assert!(msg.contains("index 20 at position 1"), "{msg}");
    assert!(bits(&model) == before, "a rejected batch changed the parameters");
}
