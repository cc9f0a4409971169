//! Composition: residual connections (identity and projection shortcuts) and generic blocks, with
//! f64 gradient checks against centred differences and forward passes against the same layers
//! applied by hand.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::gradcheck::{GradCheck, check_layer};
use shaped::prelude::*;
use shaped::shape::Extents;

const TOL: f64 = 1e-7;

/// 40 random entries per tensor (as the derived-model checks in `tests/derive.rs`): deep chains
/// make entries near zero whose centred differences are dominated by rounding.
fn cfg() -> GradCheck {
    GradCheck { max_entries: Some(40), seed: 3, ..GradCheck::default() }
}

/// Distinct values spread over (−1, 1) in random order (no near ties for max pooling, few values
/// near a ReLU kink).
fn uniform<S: Shape>(rng: &mut StdRng, batch: S::Batch) -> Tensor<S, f64> {
    use rand::seq::SliceRandom;
    let mut t = Tensor::<S, f64>::zeros(batch);
    let n = t.len();
    let mut vals: Vec<f64> = (0..n).map(|i| -1.0 + (2.0 * i as f64 + 1.0) / n as f64).collect();
    vals.shuffle(rng);
    t.as_mut_slice().copy_from_slice(&vals);
    t
}

/// Random parameters everywhere (biases and batch-norm scales too), so no gradient is trivially 0.
fn randomise<M: Module<f64>>(m: &mut M, seed: u64) {
    let mut r = StdRng::seed_from_u64(seed);
    m.visit_params_mut(&ParamPath::ROOT, &mut |info, d| {
        if info.kind.trainable() {
            for v in d {
                *v = r.random_range(-0.5..0.5);
            }
        }
    });
}

#[derive(Clone, Sequential)]
#[sequential(elem = f64)]
struct Basic {
    conv1: Conv2d<3, 3, 3, 1, 1, true, f64>,
    relu: ReLU,
    conv2: Conv2d<3, 3, 3, 1, 1, false, f64>,
}

#[derive(Clone, Sequential)]
#[sequential(elem = f64)]
struct Down {
    conv1: Conv2d<3, 4, 3, 2, 1, false, f64>,
    bn: BatchNorm2d<4, f64>,
    relu: ReLU,
}

#[derive(Clone, Sequential)]
#[sequential(input = (3, 6, 6), elem = f64)]
struct ResNet {
    res1: Residual<Basic>,
    relu1: ReLU,
    res2: Residual<Down, Conv2d<3, 4, 1, 2, 0, false, f64>>,
    flat: Flatten,
    fc: Linear<36, 2, f64>,
}

#[test]
fn residual_identity_gradients() {
    let mut r = StdRng::seed_from_u64(1);
    let mut res = <Residual<Basic> as Module<f64>>::zeros();
    randomise(&mut res, 2);
    let x = uniform::<(Const<2>, Const<3>, Const<5>, Const<5>)>(&mut r, Const);
    let rep = check_layer(&mut res, &x, &cfg());
    println!("Residual<Basic>: {rep}");
    assert_eq!(rep.params.len(), 3, "{rep}");
    assert!(rep.max_error() < TOL, "{rep}");
}

#[test]
fn residual_projection_gradients() {
    let mut r = StdRng::seed_from_u64(3);
    let mut res = <Residual<Down, Conv2d<3, 4, 1, 2, 0, false, f64>> as Module<f64>>::zeros();
    randomise(&mut res, 4);
    let x = uniform::<(Const<3>, Const<3>, Const<6>, Const<6>)>(&mut r, Const);
    let rep = check_layer(&mut res, &x, &cfg());
    println!("Residual<Down, Conv2d>: {rep}");
    let names: Vec<&str> = rep.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["block.conv1.weight", "block.bn.gamma", "block.bn.beta", "shortcut.weight"]);
    assert!(rep.max_error() < TOL, "{rep}");
}

#[test]
fn resnet_gradients_and_forward_by_hand() {
    let mut r = StdRng::seed_from_u64(5);
    let mut net = ResNet::zeros();
    randomise(&mut net, 6);
    let x = uniform::<(Const<2>, Const<3>, Const<6>, Const<6>)>(&mut r, Const);
    let rep = check_layer(&mut net, &x, &cfg());
    println!("ResNet: {rep}");
    assert!(rep.max_error() < TOL, "{rep}");

    // Inference forward against the branches applied by hand: y = relu(B(x) + x), then
    // Down(h) + Proj(h).
    type X = (Const<2>, Const<3>, Const<6>, Const<6>);
    type H = (Const<2>, Const<4>, Const<3>, Const<3>);
    let b: Tensor<X, f64> = net.res1.block.apply(&x);
    let mut h = x.clone();
    for (o, v) in h.as_mut_slice().iter_mut().zip(b.as_slice()) {
        *o = (*o + v).max(0.0);
    }
    let d: Tensor<H, f64> = net.res2.block.apply(&h);
    let p: Tensor<H, f64> = net.res2.shortcut.apply(&h);
    let sum: Vec<f64> = d.as_slice().iter().zip(p.as_slice()).map(|(a, b)| a + b).collect();
    let flat = Tensor::<(Const<2>, Const<36>), f64>::from_vec(sum).unwrap();
    let want = net.fc.predict(&flat);
    let got = net.predict(&x);
    for (a, b) in got.as_slice().iter().zip(want.as_slice()) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let s = format!("{net}");
    assert!(s.contains("res2") && s.contains("4×3×3"), "{s}");
}

/// One block generic over channels, spatial size and element type.
#[derive(Clone, Sequential)]
#[sequential(input = (C, H, W), output = (C, H, W), elem = E)]
struct Block<const C: usize, const H: usize, const W: usize, E: Elem> {
    conv: Conv2d<C, C, 3, 1, 1, true, E>,
    relu: ReLU,
}

#[derive(Clone, Sequential)]
#[sequential(input = (2, 8, 8), elem = E)]
struct TwoScales<E: Elem> {
    big: Block<2, 8, 8, E>,
    pool: MaxPool2d<2>,
    small: Block<2, 4, 4, E>,
    flat: Flatten,
    fc: Linear<32, 3, E>,
}

#[test]
fn generic_block_at_two_resolutions() {
    let mut r = StdRng::seed_from_u64(7);
    let mut net = TwoScales::<f64>::zeros();
    randomise(&mut net, 8);
    let x = uniform::<(Dyn, Const<2>, Const<8>, Const<8>)>(&mut r, Dyn(2));
    let rep = check_layer(&mut net, &x, &cfg());
    println!("TwoScales: {rep}");
    assert_eq!(rep.params.len(), 6, "{rep}");
    assert!(rep.max_error() < TOL, "{rep}");

    // The typed face of the block at each resolution, against the model's own summary.
    let h: Tensor<(Dyn, Const<2>, Const<8>, Const<8>), f64> = net.big.predict(&x);
    assert_eq!(h.dims(), [2, 2, 8, 8]);
    let rows = net.summary_rows(Extents::map(2, 8, 8));
    assert_eq!(rows[2].output, [2, 4, 4]);
    assert_eq!(rows[3].output, [32]);
    assert_eq!(rows[1].layer, "MaxPool2d<2>");
    assert_eq!(rows[0].layer, "Block<2, 8, 8>");

    // The same model in f32 trains through the same code.
    let net32 = TwoScales::<f32>::zeros();
    let y = net32.predict(&Tensor::<(Dyn, Const<2>, Const<8>, Const<8>)>::zeros(Dyn(1)));
    assert_eq!(y.dims(), [1, 3]);
}

/// A block with no declared input: any shape its layers accept.
#[derive(Clone, Sequential)]
#[sequential(elem = f64)]
struct Act2 {
    relu: ReLU,
    drop: Dropout<Keep<100>>,
}

#[derive(Clone, Sequential)]
#[sequential(input = (4, 4, 4), elem = f64)]
struct Poly {
    a: Act2,
    pool: MaxPool2d<2>,
    b: Act2,
    flat: Flatten,
    c: Act2,
    fc: Linear<16, 2, f64>,
}

#[test]
fn shape_polymorphic_block() {
    let mut r = StdRng::seed_from_u64(9);
    let mut net = Poly::zeros();
    randomise(&mut net, 10);
    let x = uniform::<(Const<2>, Const<4>, Const<4>, Const<4>)>(&mut r, Const);
    let rep = check_layer(&mut net, &x, &cfg());
    assert!(rep.max_error() < TOL, "{rep}");
    let rows = net.summary_rows(Extents::map(4, 4, 4));
    let outs: Vec<Vec<usize>> = rows.iter().map(|r| r.output.clone()).collect();
    assert_eq!(outs, vec![vec![4, 4, 4], vec![4, 2, 2], vec![4, 2, 2], vec![16], vec![16], vec![2]]);
}

#[test]
#[should_panic(expected = "Linear<5, 2> expects 5 input features, but the previous layer produces 4")]
fn raw_interface_rejects_wrong_extents() {
    // The shape-erased interface checks its input against the rule before any kernel runs.
    let fc = Linear::<5, 2, f64>::zeros();
    let x = [0.0; 8];
    let mut y = [0.0; 4];
    fc.forward_raw(shaped::layer::Act::new(&x, 2, Extents::flat(4)), &mut y);
}
