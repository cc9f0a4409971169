//! Tests of `#[derive(Sequential)]`: end-to-end gradient checks of the homework's CNNs (f64), the
//! derived backward against the same layers chained by hand, the summary, nesting, parameter paths
//! and batch-dimension independence.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shaped::gradcheck::{GradCheck, GradReport, check_layer};
use shaped::layer::SummaryRow;
use shaped::prelude::*;

const TOL: f64 = 1e-7;

type Img<B> = (B, Const<1>, Const<28>, Const<28>);

/// Experiment 4a in f64.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = f64)]
struct Cnn64 {
    conv: Conv2d<1, 5, 7, 1, 0, false, f64>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16, f64>,
    relu2: ReLU,
    fc2: Linear<16, 10, f64>,
}

/// Experiment 4a in f32 (the default element type).
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

/// Experiment 4b in f64.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28), elem = f64)]
struct CnnBn64 {
    conv: Conv2d<1, 8, 7, 1, 0, false, f64>,
    bn1: BatchNorm2d<8, f64>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<968, 16, f64>,
    bn2: BatchNorm1d<16, f64>,
    relu2: ReLU,
    drop: Dropout<Keep<50>, Vanilla>,
    fc2: Linear<16, 10, f64>,
}

/// A derived block generic over its element type.
#[derive(Sequential)]
#[sequential(input = (1, 12, 12), elem = E)]
struct Block<E: Elem> {
    conv: Conv2d<1, 4, 3, 1, 1, true, E>,
    relu: ReLU,
    pool: MaxPool2d<2>,
}

/// A model with a derived block as its first field.
#[derive(Sequential)]
#[sequential(input = (1, 12, 12), elem = f64)]
struct Nested {
    block: Block<f64>,
    flat: Flatten,
    fc: Linear<144, 3, f64>,
}

/// A view (`Flatten`, `Module::VIEW`) as the first field: the next field reads `x` itself and
/// writes the caller's input gradient.
#[derive(Sequential)]
#[sequential(input = (2, 3, 3), elem = f64)]
struct ViewFirst {
    flat: Flatten,
    fc: Linear<18, 4, f64>,
    relu: ReLU,
    out: Linear<4, 3, f64>,
}

/// Two views in a row between layers (the second, right after a view, is called) and a view as
/// the last field (which writes `y`, so it is called).
#[derive(Sequential)]
#[sequential(input = (1, 6, 6), elem = f64)]
struct ViewsBetween {
    conv: Conv2d<1, 3, 3, 1, 0, true, f64>,
    flat1: Flatten,
    flat2: Flatten,
    fc: Linear<48, 5, f64>,
    flat3: Flatten,
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A tensor whose values are a random permutation of an evenly spaced grid over (−1, 1): all
/// distinct (no max-pool ties).
fn distinct<S: Shape>(rng: &mut StdRng, batch: S::Batch) -> Tensor<S, f64> {
    let mut t = Tensor::<S, f64>::zeros(batch);
    let n = t.len();
    let mut vals: Vec<f64> = (0..n).map(|i| -1.0 + (2.0 * i as f64 + 1.0) / n as f64).collect();
    vals.shuffle(rng);
    t.as_mut_slice().copy_from_slice(&vals);
    t
}

fn params<E: Elem, M: Module<E>>(m: &M) -> Vec<(String, Vec<E>)> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |info, data| out.push((info.path.to_string(), data.to_vec())));
    out
}

fn param_names<E: Elem, M: Module<E>>(m: &M) -> Vec<String> {
    params(m).into_iter().map(|p| p.0).collect()
}

/// Sets batch-norm γ and β to random values, so they are not at their neutral values.
fn randomise_bn<E: Elem, M: Module<E>>(m: &mut M, rng: &mut StdRng) {
    m.visit_params_mut(&ParamPath::ROOT, &mut |info, data| match info.kind {
        ParamKind::Gamma => data.iter_mut().for_each(|v| *v = E::lit(rng.random_range(0.5..1.5))),
        ParamKind::Beta => data.iter_mut().for_each(|v| *v = E::lit(rng.random_range(-0.5..0.5))),
        _ => {}
    });
}

fn check<In: Shape, L: Layer<In, f64>>(name: &str, layer: &mut L, x: &Tensor<In, f64>, seed: u64) -> GradReport {
    let cfg = GradCheck { max_entries: Some(40), seed, ..GradCheck::default() };
    let report = check_layer(layer, x, &cfg);
    println!("{name}: max {:.3e} ({report})", report.max_error());
    assert!(report.max_error().is_finite(), "{name}: {report}");
    assert!(report.max_error() < TOL, "{name}: {report}");
    report
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-12 * (1.0 + x.abs().max(y.abs())), "{what}[{i}]: {x} vs {y}");
    }
}

fn checked_names(r: &GradReport) -> Vec<&str> {
    r.params.iter().map(|p| p.0.as_str()).collect()
}

#[test]
fn cnn_4a_gradient_check() {
    let mut r = rng(11);
    let mut model = Cnn64::init(&mut r, Init::Gaussian(0.3));
    let x = distinct::<Img<Const<2>>>(&mut r, Const);
    let report = check("4a", &mut model, &x, 3);
    assert_eq!(checked_names(&report), ["conv.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
}

#[test]
fn cnn_4b_gradient_check_train_mode() {
    let mut r = rng(12);
    let mut model = CnnBn64::init(&mut r, Init::Gaussian(0.3));
    randomise_bn(&mut model, &mut r);
    // Batch 4: with 2 samples batch norm over the batch maps every feature to ±1 whatever the input,
    // which leaves upstream gradients at rounding-noise level.
    let x = distinct::<Img<Const<4>>>(&mut r, Const);
    let cfg = GradCheck { max_entries: Some(40), seed: 5, ..GradCheck::default() };
    let report = check_layer(&mut model, &x, &cfg);
    println!("4b: {report}");
    assert!(report.input < TOL, "4b: {report}");
    assert_eq!(
        checked_names(&report),
        [
            "conv.weight",
            "bn1.gamma",
            "bn1.beta",
            "fc1.weight",
            "fc1.bias",
            "bn2.gamma",
            "bn2.beta",
            "fc2.weight",
            "fc2.bias"
        ]
    );
    // `fc1.bias` feeds batch norm, which subtracts the batch mean: its exact gradient is zero, so a
    // relative error is rounding noise over the 1e-8 floor. Every other tensor meets 1e-7; that one
    // is checked in absolute terms below.
    for (name, err) in &report.params {
        if name != "fc1.bias" {
            assert!(*err < TOL && err.is_finite(), "4b: {name}: {report}");
        }
    }
    model.reseed(cfg.seed);
    let mut y = Tensor::zeros(Const);
    let mut cache = Default::default();
    model.forward_train(&x, &mut y, &mut cache);
    let dy =
        Tensor::<(Const<4>, Const<10>), f64>::from_vec((0..40).map(|_| r.random_range(-1.0..1.0)).collect()).unwrap();
    let mut grads = <CnnBn64 as Module<f64>>::zeros();
    model.backward(&x, &y, &dy, &mut cache, None, &mut grads);
    assert!(grads.fc1.bias.as_slice().iter().all(|g| g.abs() < 1e-12), "{:?}", grads.fc1.bias);
    let objective = |m: &mut CnnBn64| {
        m.reseed(cfg.seed);
        let mut y = Tensor::zeros(Const);
        m.forward_train(&x, &mut y, &mut Default::default());
        y.as_slice().iter().zip(dy.as_slice()).map(|(a, b)| a * b).sum::<f64>()
    };
    for i in 0..16 {
        let old = model.fc1.bias.as_slice()[i];
        model.fc1.bias.as_mut_slice()[i] = old + cfg.h;
        let fp = objective(&mut model);
        model.fc1.bias.as_mut_slice()[i] = old - cfg.h;
        let fm = objective(&mut model);
        model.fc1.bias.as_mut_slice()[i] = old;
        let num = (fp - fm) / (2.0 * cfg.h);
        assert!(num.abs() < 1e-8, "numeric d/d fc1.bias[{i}] = {num}");
    }
}

/// The derived backward pass equals the same layers' forward/backward chained by hand.
#[test]
fn derived_backward_equals_hand_chained() {
    let mut r = rng(21);
    let mut model = CnnBn64::init(&mut r, Init::Gaussian(0.3));
    randomise_bn(&mut model, &mut r);
    let x = distinct::<Img<Dyn>>(&mut r, Dyn(3));

    // Hand-chained copies of the layers (dropout reseeded like the model reseeds its fields).
    let seed = 77;
    model.reseed(seed);
    let mut conv = model.conv.clone();
    let mut bn1 = model.bn1.clone();
    let mut relu1 = model.relu1;
    let mut pool = model.pool;
    let mut flat = model.flat;
    let mut fc1 = model.fc1.clone();
    let mut bn2 = model.bn2.clone();
    let mut relu2 = model.relu2;
    let mut drop = model.drop.clone();
    let mut fc2 = model.fc2.clone();

    // Derived.
    let mut y = Tensor::<_, f64>::zeros(Dyn(3));
    let mut cache = <CnnBn64 as Module<f64>>::Cache::default();
    model.forward_train(&x, &mut y, &mut cache);
    let dy_vals: Vec<f64> = (0..y.len()).map(|_| r.random_range(-1.0..1.0)).collect();
    let dy = Tensor::<(Dyn, Const<10>), f64>::from_vec(dy_vals).unwrap();
    let mut dx = Tensor::<Img<Dyn>, f64>::zeros(Dyn(3));
    let mut grads = <CnnBn64 as Module<f64>>::zeros();
    model.backward(&x, &y, &dy, &mut cache, Some(&mut dx), &mut grads);

    // By hand.
    macro_rules! fwd {
        ($layer:ident, $x:expr, $In:ty) => {{
            let mut out = Tensor::zeros(Dyn(3));
            let mut c = Default::default();
            Module::<f64>::apply_train::<$In, _>(&mut $layer, $x, &mut out, &mut c);
            (out, c)
        }};
    }
    type S1 = (Dyn, Const<8>, Const<22>, Const<22>);
    type S3 = (Dyn, Const<8>, Const<11>, Const<11>);
    type F = (Dyn, Const<968>);
    type H = (Dyn, Const<16>);
    let (h0, mut c0): (Tensor<S1, f64>, _) = fwd!(conv, &x, Img<Dyn>);
    let (h1, mut c1): (Tensor<S1, f64>, _) = fwd!(bn1, &h0, S1);
    let (h2, mut c2): (Tensor<S1, f64>, _) = fwd!(relu1, &h1, S1);
    let (h3, mut c3): (Tensor<S3, f64>, _) = fwd!(pool, &h2, S1);
    let (h4, mut c4): (Tensor<F, f64>, _) = fwd!(flat, &h3, S3);
    let (h5, mut c5): (Tensor<H, f64>, _) = fwd!(fc1, &h4, F);
    let (h6, mut c6): (Tensor<H, f64>, _) = fwd!(bn2, &h5, H);
    let (h7, mut c7): (Tensor<H, f64>, _) = fwd!(relu2, &h6, H);
    let (h8, mut c8): (Tensor<H, f64>, _) = fwd!(drop, &h7, H);
    let (h9, mut c9): (Tensor<(Dyn, Const<10>), f64>, _) = fwd!(fc2, &h8, H);
    assert_close(h9.as_slice(), y.as_slice(), "output");

    let mut g_conv = Module::<f64>::zeros();
    let mut g_bn1 = Module::<f64>::zeros();
    let mut g_fc1 = Module::<f64>::zeros();
    let mut g_bn2 = Module::<f64>::zeros();
    let mut g_fc2 = Module::<f64>::zeros();
    let mut d8 = Tensor::<H, f64>::zeros(Dyn(3));
    fc2.backward(&h8, &h9, &dy, &mut c9, Some(&mut d8), &mut g_fc2);
    let mut d7 = Tensor::<H, f64>::zeros(Dyn(3));
    Layer::<H, f64>::backward(&drop, &h7, &h8, &d8, &mut c8, Some(&mut d7), &mut Module::<f64>::zeros());
    let mut d6 = Tensor::<H, f64>::zeros(Dyn(3));
    Layer::<H, f64>::backward(&relu2, &h6, &h7, &d7, &mut c7, Some(&mut d6), &mut ReLU);
    let mut d5 = Tensor::<H, f64>::zeros(Dyn(3));
    bn2.backward(&h5, &h6, &d6, &mut c6, Some(&mut d5), &mut g_bn2);
    let mut d4 = Tensor::<F, f64>::zeros(Dyn(3));
    fc1.backward(&h4, &h5, &d5, &mut c5, Some(&mut d4), &mut g_fc1);
    let mut d3 = Tensor::<S3, f64>::zeros(Dyn(3));
    Module::<f64>::apply_backward(&flat, &h3, &h4, &d4, &mut c4, Some(&mut d3), &mut Flatten);
    let mut d2 = Tensor::<S1, f64>::zeros(Dyn(3));
    Module::<f64>::apply_backward(&pool, &h2, &h3, &d3, &mut c3, Some(&mut d2), &mut MaxPool2d);
    let mut d1 = Tensor::<S1, f64>::zeros(Dyn(3));
    Layer::<S1, f64>::backward(&relu1, &h1, &h2, &d2, &mut c2, Some(&mut d1), &mut ReLU);
    let mut d0 = Tensor::<S1, f64>::zeros(Dyn(3));
    bn1.backward(&h0, &h1, &d1, &mut c1, Some(&mut d0), &mut g_bn1);
    let mut dx_hand = Tensor::<Img<Dyn>, f64>::zeros(Dyn(3));
    conv.apply_backward(&x, &h0, &d0, &mut c0, Some(&mut dx_hand), &mut g_conv);

    assert_close(dx.as_slice(), dx_hand.as_slice(), "dx");
    assert_close(grads.conv.weight.as_slice(), g_conv.weight.as_slice(), "conv.weight");
    assert_close(grads.fc1.weight.as_slice(), g_fc1.weight.as_slice(), "fc1.weight");
    assert_close(grads.fc1.bias.as_slice(), g_fc1.bias.as_slice(), "fc1.bias");
    assert_close(grads.fc2.weight.as_slice(), g_fc2.weight.as_slice(), "fc2.weight");
    assert_close(grads.fc2.bias.as_slice(), g_fc2.bias.as_slice(), "fc2.bias");
    assert_close(grads.bn1.params.gamma.as_slice(), g_bn1.params.gamma.as_slice(), "bn1.gamma");
    assert_close(grads.bn1.params.beta.as_slice(), g_bn1.params.beta.as_slice(), "bn1.beta");
    assert_close(grads.bn2.params.gamma.as_slice(), g_bn2.params.gamma.as_slice(), "bn2.gamma");
    assert_close(grads.bn2.params.beta.as_slice(), g_bn2.params.beta.as_slice(), "bn2.beta");
    // Every gradient the model visits is one of the above (and they are not all zero).
    let n: usize = params(&grads).iter().map(|p| p.1.iter().filter(|v| **v != 0.0).count()).sum();
    assert!(n > 0);
    // The running statistics moved the same way.
    assert_close(model.bn1.params.running_mean.as_slice(), bn1.params.running_mean.as_slice(), "bn1.running_mean");
    assert_close(model.bn2.params.running_var.as_slice(), bn2.params.running_var.as_slice(), "bn2.running_var");
}

#[test]
fn summary_of_4a() {
    let model = Cnn::init(&mut rng(0), Init::default());
    let s = format!("{model}");
    println!("{s}");
    for needle in ["Cnn", "1×28×28", "5×22×22", "5×11×11", "605", "16", "10", "245", "9696", "170", "10111"] {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
    let total = s.lines().last().unwrap();
    assert!(total.contains("total") && total.trim_end().ends_with("10111"), "{total}");

    let rows = Module::<f32>::summary_rows(&model, shaped::shape::Extents::map(1, 28, 28));
    let row = |field: &'static str, layer: &str, output: &[usize], params: usize| SummaryRow {
        field,
        layer: layer.to_string(),
        output: output.to_vec(),
        params,
    };
    assert_eq!(
        rows,
        vec![
            row("conv", "Conv2d<1, 5, 7, 1, 0, false>", &[5, 22, 22], 245),
            row("relu1", "ReLU", &[5, 22, 22], 0),
            row("pool", "MaxPool2d<2>", &[5, 11, 11], 0),
            row("flat", "Flatten", &[605], 0),
            row("fc1", "Linear<605, 16>", &[16], 9696),
            row("relu2", "ReLU", &[16], 0),
            row("fc2", "Linear<16, 10>", &[10], 170),
        ]
    );
    assert_eq!(model.num_params(), 10111);
    assert_eq!(<Cnn as Module<f32>>::type_name(), "Cnn");
}

#[test]
fn nested_block() {
    let mut r = rng(33);
    let mut model = Nested::init(&mut r, Init::Gaussian(0.3));
    assert_eq!(param_names(&model), ["block.conv.weight", "block.conv.bias", "fc.weight", "fc.bias"]);
    let infos = {
        let mut v = Vec::new();
        model.visit_params(&ParamPath::ROOT, &mut |info, _| v.push((info.path.to_string(), info.shape.to_vec())));
        v
    };
    assert_eq!(infos[0], ("block.conv.weight".to_string(), vec![4, 1, 3, 3]));
    assert_eq!(model.num_params(), 4 * 9 + 4 + 144 * 3 + 3);

    let x = distinct::<(Dyn, Const<1>, Const<12>, Const<12>)>(&mut r, Dyn(2));
    let y = model.predict(&x);
    assert_eq!(y.dims(), [2, 3]);
    // The block alone gives the same intermediate as the model's first field.
    let h = model.block.predict(&x);
    assert_eq!(h.dims(), [2, 4, 6, 6]);
    let flat: Tensor<(Dyn, Const<144>), f64> = Module::<f64>::apply(&model.flat, &h);
    let y2 = model.fc.predict(&flat);
    assert_close(y.as_slice(), y2.as_slice(), "nested forward");

    let s = format!("{model}");
    assert!(s.contains("block") && s.contains("4×6×6") && s.contains("144"), "{s}");

    let report = check("nested", &mut model, &distinct::<(Const<2>, Const<1>, Const<12>, Const<12>)>(&mut r, Const), 1);
    assert_eq!(checked_names(&report), ["block.conv.weight", "block.conv.bias", "fc.weight", "fc.bias"]);
}

#[test]
fn parameter_order_and_batch_independence() {
    let model = Cnn::init(&mut rng(41), Init::Gaussian(0.1));
    assert_eq!(param_names(&model), ["conv.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    let mut shapes = Vec::new();
    model.visit_params(&ParamPath::ROOT, &mut |info, _| shapes.push(info.shape.to_vec()));
    assert_eq!(shapes, [vec![5, 1, 7, 7], vec![605, 16], vec![16], vec![16, 10], vec![10]]);

    // A child path prefixes every name.
    let root = ParamPath::ROOT;
    let prefix = root.child("model");
    let mut prefixed = Vec::new();
    model.visit_params(&prefix, &mut |info, _| prefixed.push(info.path.to_string()));
    assert_eq!(prefixed[0], "model.conv.weight");

    let mut r = rng(42);
    let data: Vec<f32> = (0..4 * 28 * 28).map(|_| r.random_range(-1.0..1.0)).collect();
    let xd = Tensor::<Img<Dyn>>::from_vec(data.clone()).unwrap();
    let xc = Tensor::<Img<Const<4>>>::from_vec(data).unwrap();
    let yd = model.predict(&xd);
    let yc = model.predict(&xc);
    assert_eq!(yd.dims(), [4, 10]);
    assert_eq!(yc.dims(), [4, 10]);
    assert_eq!(yd.as_slice(), yc.as_slice());

    // Training mode too.
    let mut m = model.clone_via_params();
    let mut yd_t = Tensor::zeros(Dyn(4));
    let mut yc_t = Tensor::zeros(Const::<4>);
    m.forward_train(&xd, &mut yd_t, &mut Default::default());
    m.forward_train(&xc, &mut yc_t, &mut Default::default());
    assert_eq!(yd_t.as_slice(), yc_t.as_slice());
    assert_eq!(yd_t.as_slice(), yd.as_slice());
}

trait CloneViaParams: Module<f32> {
    fn clone_via_params(&self) -> Self {
        let mut m = Self::zeros();
        m.zip_params_mut(self, &ParamPath::ROOT, &mut |_, dst, src| dst.copy_from_slice(src));
        m
    }
}
impl<M: Module<f32>> CloneViaParams for M {}

/// Views are handed on, not called (but for one right after another, and the last field): their
/// steps keep no buffer, and the gradients through them (the input's included, where a view is
/// first) match centred differences.
#[test]
fn views_hand_their_input_on() {
    let mut r = rng(54);
    let mut first = ViewFirst::init(&mut r, Init::Gaussian(0.5));
    let x = distinct::<(Const<2>, Const<2>, Const<3>, Const<3>)>(&mut r, Const);
    check("view first", &mut first, &x, 7);
    let mut y = Tensor::<(Const<2>, Const<3>), f64>::zeros(Const);
    let mut cache = Default::default();
    first.apply_train(&x, &mut y, &mut cache);
    let (flat, (fc, _)) = &cache;
    assert!(flat.out.is_empty() && flat.grad.is_empty() && !fc.out.is_empty(), "the view kept a buffer");

    let mut between = ViewsBetween::init(&mut r, Init::Gaussian(0.5));
    let x = distinct::<(Const<2>, Const<1>, Const<6>, Const<6>)>(&mut r, Const);
    let report = check("views between", &mut between, &x, 8);
    assert_eq!(checked_names(&report), ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]);
    let mut y = Tensor::<(Const<2>, Const<5>), f64>::zeros(Const);
    let mut cache = Default::default();
    between.apply_train(&x, &mut y, &mut cache);
    let (conv, (flat1, (flat2, (fc, _)))) = &cache;
    // the first view is handed on; the one right after it is called (so that the derive's
    // expressions stay one level deep): it copies into its own buffer
    assert!(flat1.out.is_empty() && flat1.grad.is_empty(), "a view kept a buffer");
    assert_eq!(flat2.out.len(), 2 * 48);
    assert_eq!((conv.out.len(), fc.out.len(), flat2.ext.numel()), (2 * 48, 2 * 5, 48));
    // the last field, a view, wrote `y`: the same values as the layer before it
    assert_eq!(y.as_slice(), &fc.out[..]);
}
