//! The breadth layers of issue 17 — Sigmoid, Tanh, LeakyReLU, GELU, AvgPool2d, GlobalAvgPool,
//! padded MaxPool2d, LayerNorm, Softmax, LogSoftmax: f64 gradient checks (centred differences,
//! relative error below 1e-7), forward passes against naive references and formulas, and a derived
//! model using them.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shaped::gradcheck::{GradCheck, GradReport, check_layer};
use shaped::prelude::*;

const TOL: f64 = 1e-7;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// i.i.d. uniform values in `(lo, hi)`.
fn uniform<S: Shape, E: Elem>(rng: &mut StdRng, batch: S::Batch, lo: f64, hi: f64) -> Tensor<S, E> {
    let mut t = Tensor::<S, E>::zeros(batch);
    for v in t.as_mut_slice() {
        *v = E::lit(rng.random_range(lo..hi));
    }
    t
}

/// A permutation of an evenly spaced grid over (−2, 2): all distinct (no near ties in a max pool),
/// none within `1/len` of 0 (no kink of LeakyReLU inside a finite difference).
fn distinct<S: Shape>(rng: &mut StdRng, batch: S::Batch) -> Tensor<S, f64> {
    let mut t = Tensor::<S, f64>::zeros(batch);
    let n = t.len();
    let mut vals: Vec<f64> = (0..n).map(|i| 2.0 * (-1.0 + (2.0 * i as f64 + 1.0) / n as f64)).collect();
    vals.shuffle(rng);
    t.as_mut_slice().copy_from_slice(&vals);
    t
}

fn check<In: Shape, L: Module<f64>>(name: &str, layer: &mut L, x: &Tensor<In, f64>) -> GradReport {
    let report = check_layer(layer, x, &GradCheck::default());
    println!("{name}: max {:.3e} ({report})", report.max_error());
    assert!(report.max_error() < TOL && report.max_error().is_finite(), "{name}: {report}");
    report
}

fn assert_close<E: Elem>(got: &[E], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g.to_f64_lossy();
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

type Map<const N: usize, const C: usize, const H: usize, const W: usize> = (Const<N>, Const<C>, Const<H>, Const<W>);

// ------------------------------------------------------------------------------------------------
// Activations

#[test]
fn activations_gradcheck() {
    let mut r = rng(1);
    let x = distinct::<Map<3, 2, 5, 5>>(&mut r, Const);
    let xf = distinct::<(Dyn, Const<10>)>(&mut r, Dyn(6));
    check("Sigmoid", &mut Sigmoid, &x);
    check("Sigmoid (Dyn)", &mut Sigmoid, &xf);
    check("Tanh", &mut Tanh, &x);
    check("Tanh (Dyn)", &mut Tanh, &xf);
    check("LeakyReLU<200>", &mut LeakyReLU::<200>, &x);
    check("LeakyReLU<200> (Dyn)", &mut LeakyReLU::<200>, &xf);
    // slope 0.01: gradients of 0.01·dY, so a small input (the objective's rounding is relative to
    // its sum); the exact backward values are checked in `activations_match_their_formulas`
    let xs = distinct::<(Const<2>, Const<5>)>(&mut r, Const);
    check("LeakyReLU<10> (2,5)", &mut LeakyReLU::<10>, &xs);
    check("GELU", &mut GELU, &x);
    check("GELU (Dyn)", &mut GELU, &xf);
    // GELU towards both tails (within ±3 the gradient is large enough for a relative error) …
    let mut tails = Tensor::<(Const<1>, Const<6>), f64>::zeros(Const);
    tails.as_mut_slice().copy_from_slice(&[-3.0, -2.2, -1.2, 1.3, 2.2, 3.0]);
    check("GELU tails", &mut GELU, &tails);
    // … and far out, where the left tail's gradient is ~1e-10: an absolute comparison
    let far = [-7.0, -4.5, 4.5, 7.0];
    let x = Tensor::<(Const<1>, Const<4>), f64>::from_vec(far.to_vec()).unwrap();
    let dy = Tensor::<(Const<1>, Const<4>), f64>::from_vec(vec![1.0; 4]).unwrap();
    let (mut y, mut dx) = (Tensor::zeros(Const), Tensor::zeros(Const));
    GELU.forward_train(&x, &mut y, &mut ());
    GELU.backward(&x, &y, &dy, &mut (), Some(&mut dx), &mut GELU);
    for (i, &v) in far.iter().enumerate() {
        let f = |v: f64| GELU.predict(&Tensor::<(Const<1>, Const<1>), f64>::from_vec(vec![v]).unwrap()).as_slice()[0];
        let num = (f(v + 1e-5) - f(v - 1e-5)) / 2e-5;
        assert!((num - dx.as_slice()[i]).abs() < 1e-9, "GELU′({v}): {} vs {num}", dx.as_slice()[i]);
    }
}

/// Exact values of `x·Φ(x)` (Python's `math.erf`) and the other formulas, in f64 and f32.
#[test]
fn activations_match_their_formulas() {
    let xs = [-6.0, -2.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 6.0];
    let gelu_exact = [
        -5.919_525_869_479_969e-9,
        -0.015_524_163_314_440_398,
        -0.158_655_253_931_457_07,
        -0.154_268_769_362_993_44,
        -4.996_010_577_860_89e-4,
        0.0,
        5.003_989_422_139_11e-4,
        0.345_731_230_637_006_56,
        0.841_344_746_068_542_9,
        2.484_475_836_685_559_7,
        5.999_999_994_080_474,
    ];
    let x64 = Tensor::<(Const<1>, Const<11>), f64>::from_vec(xs.to_vec()).unwrap();
    let x32 = Tensor::<(Const<1>, Const<11>), f32>::from_vec(xs.iter().map(|&v| v as f32).collect()).unwrap();
    assert_close(GELU.predict(&x64).as_slice(), &gelu_exact, 1e-12, "GELU f64");
    assert_close(GELU.predict(&x32).as_slice(), &gelu_exact, 1e-6, "GELU f32");
    let sig: Vec<f64> = xs.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
    assert_close(Sigmoid.predict(&x64).as_slice(), &sig, 1e-15, "Sigmoid f64");
    assert_close(Sigmoid.predict(&x32).as_slice(), &sig, 1e-6, "Sigmoid f32");
    let th: Vec<f64> = xs.iter().map(|&v| v.tanh()).collect();
    assert_close(Tanh.predict(&x64).as_slice(), &th, 1e-15, "Tanh f64");
    assert_close(Tanh.predict(&x32).as_slice(), &th, 1e-6, "Tanh f32");
    let lk: Vec<f64> = xs.iter().map(|&v| if v > 0.0 { v } else { 0.01 * v }).collect();
    assert_close(LeakyReLU::<10>.predict(&x64).as_slice(), &lk, 0.0, "LeakyReLU<10>");
    let lk: Vec<f64> = xs.iter().map(|&v| if v > 0.0 { v } else { 0.25 * v }).collect();
    assert_close(LeakyReLU::<250>.predict(&x32).as_slice(), &lk, 1e-7, "LeakyReLU<250> f32");
    // LeakyReLU's backward: dY where x > 0, else 0.01·dY
    let (mut y, mut dx, mut g) = (Tensor::zeros(Const), Tensor::zeros(Const), LeakyReLU::<10>);
    let dy = Tensor::<(Const<1>, Const<11>), f64>::from_vec(vec![1.0; 11]).unwrap();
    LeakyReLU::<10>.forward_train(&x64, &mut y, &mut ());
    LeakyReLU::<10>.backward(&x64, &y, &dy, &mut (), Some(&mut dx), &mut g);
    let want: Vec<f64> = xs.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.01 }).collect();
    assert_close(dx.as_slice(), &want, 0.0, "LeakyReLU<10> backward");
    // no overflow at the ends of f32
    let big = Tensor::<(Const<1>, Const<2>), f32>::from_vec(vec![-1e30, 1e30]).unwrap();
    let s = Sigmoid.predict(&big);
    assert!(s.as_slice()[0] < 1e-37 && s.as_slice()[1] == 1.0, "{:?}", s.as_slice()); // e^−87 at most
    assert_eq!(GELU.predict(&big).as_slice(), &[-0.0, 1e30]);
}

/// `f32`'s inline `erf` and `tanh` against `f64`'s over a fine grid.
#[test]
fn f32_erf_and_tanh_are_accurate() {
    let (mut worst_erf, mut worst_tanh) = (0f64, 0f64);
    for i in -120_000..=120_000 {
        let x = i as f32 * 5e-5; // −6 … 6
        let e = (<f32 as Elem>::erf(x) as f64 - <f64 as Elem>::erf(x as f64)).abs();
        worst_erf = worst_erf.max(e);
        let t64 = (x as f64).tanh();
        let t = ((x.tanh_inline() as f64) - t64).abs() / t64.abs().max(1e-30);
        if x != 0.0 {
            worst_tanh = worst_tanh.max(t);
        }
    }
    println!("f32 erf: max abs error {worst_erf:.2e}; tanh: max rel error {worst_tanh:.2e}");
    assert!(worst_erf < 5e-7, "erf: {worst_erf:e}");
    assert!(worst_tanh < 4e-7, "tanh: {worst_tanh:e}");
    assert_eq!(<f32 as Elem>::erf(-30.0), -1.0);
    assert!(f32::NAN.tanh_inline().is_nan() && <f32 as Elem>::erf(f32::NAN).is_nan(), "NaN stays NaN");
    assert_eq!((f32::INFINITY.tanh_inline(), f32::NEG_INFINITY.tanh_inline()), (1.0, -1.0));
    let slope = <f32 as Elem>::erf(1e-30) / 1e-30; // relative precision near 0
    assert!((slope / core::f32::consts::FRAC_2_SQRT_PI - 1.0).abs() < 3e-7, "{slope}");
}

/// A large batch (split over two kernel threads) gives the same values as one thread, and the
/// f32 backward agrees with the f64 one.
#[test]
fn activations_threads_and_precision() {
    let mut r = rng(2);
    let x = uniform::<(Dyn, Const<1000>), f32>(&mut r, Dyn(300), -4.0, 4.0);
    let dy = uniform::<(Dyn, Const<1000>), f32>(&mut r, Dyn(300), -1.0, 1.0);
    let x64 = Tensor::<(Dyn, Const<1000>), f64>::from_vec(x.as_slice().iter().map(|&v| v as f64).collect()).unwrap();
    let dy64 = Tensor::<(Dyn, Const<1000>), f64>::from_vec(dy.as_slice().iter().map(|&v| v as f64).collect()).unwrap();
    fn run<
        L: Layer<(Dyn, Const<1000>), f32, Out = (Dyn, Const<1000>)>
            + Layer<(Dyn, Const<1000>), f64, Out = (Dyn, Const<1000>)>,
    >(
        mut l: L,
        x: &Tensor<(Dyn, Const<1000>), f32>,
        dy: &Tensor<(Dyn, Const<1000>), f32>,
        x64: &Tensor<(Dyn, Const<1000>), f64>,
        dy64: &Tensor<(Dyn, Const<1000>), f64>,
        name: &str,
    ) {
        let mut out = Vec::new();
        for threads in [1, 2] {
            shaped::set_num_threads(threads);
            let mut y = Tensor::zeros(Dyn(0));
            let mut dx = Tensor::zeros(Dyn(0));
            let mut g = <L as Module<f32>>::zeros();
            <L as Layer<_, f32>>::forward_train(&mut l, x, &mut y, &mut Default::default());
            <L as Layer<_, f32>>::backward(&l, x, &y, dy, &mut Default::default(), Some(&mut dx), &mut g);
            out.push((y, dx));
        }
        shaped::set_num_threads(1);
        assert_eq!(out[0].0.as_slice(), out[1].0.as_slice(), "{name}: forward with 1 and 2 threads");
        assert_eq!(out[0].1.as_slice(), out[1].1.as_slice(), "{name}: backward with 1 and 2 threads");
        let mut y = Tensor::zeros(Dyn(0));
        let mut dx = Tensor::zeros(Dyn(0));
        let mut g = <L as Module<f64>>::zeros();
        <L as Layer<_, f64>>::forward_train(&mut l, x64, &mut y, &mut Default::default());
        <L as Layer<_, f64>>::backward(&l, x64, &y, dy64, &mut Default::default(), Some(&mut dx), &mut g);
        assert_close(out[0].0.as_slice(), y.as_slice(), 2e-6, name);
        assert_close(out[0].1.as_slice(), dx.as_slice(), 2e-6, name);
    }
    run(Sigmoid, &x, &dy, &x64, &dy64, "Sigmoid");
    run(Tanh, &x, &dy, &x64, &dy64, "Tanh");
    run(LeakyReLU::<30>, &x, &dy, &x64, &dy64, "LeakyReLU<30>");
    run(GELU, &x, &dy, &x64, &dy64, "GELU");
}

// ------------------------------------------------------------------------------------------------
// Pooling

/// Naive pooling of `planes` planes `h×w`, window `k`, stride `s`, padding `p`: max over in-bounds values (padding −∞), or the sum of in-bounds
/// values over `k²` (zero padding counted).
fn naive_pool(x: &[f64], [planes, h, w]: [usize; 3], [k, s, p]: [usize; 3], max: bool) -> Vec<f64> {
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let mut y = Vec::new();
    for pl in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                        let v = if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            if max { f64::NEG_INFINITY } else { 0.0 }
                        } else {
                            x[pl * h * w + iy as usize * w + ix as usize]
                        };
                        acc = if max { acc.max(v) } else { acc + v };
                    }
                }
                y.push(if max { acc } else { acc / (k * k) as f64 });
            }
        }
    }
    y
}

#[test]
fn pooling_gradcheck() {
    let mut r = rng(3);
    let x = distinct::<Map<2, 2, 6, 6>>(&mut r, Const);
    check("AvgPool2d<2>", &mut AvgPool2d::<2>, &x);
    check("AvgPool2d<3, 1, 1> (overlapping, padded)", &mut AvgPool2d::<3, 1, 1>, &x);
    check("AvgPool2d<2, 2, 1>", &mut AvgPool2d::<2, 2, 1>, &x);
    check("GlobalAvgPool", &mut GlobalAvgPool, &x);
    let x7 = distinct::<Map<2, 3, 7, 7>>(&mut r, Const);
    check("AvgPool2d<3, 2, 1> 7×7", &mut AvgPool2d::<3, 2, 1>, &x7);
    check("MaxPool2d<3, 2, 1> 7×7", &mut MaxPool2d::<3, 2, 1>, &x7);
    check("MaxPool2d<3, 1, 1> 7×7 (overlapping)", &mut MaxPool2d::<3, 1, 1>, &x7);
    check("MaxPool2d<2, 2, 1>", &mut MaxPool2d::<2, 2, 1>, &x);
    check("MaxPool2d<2> (fast path)", &mut MaxPool2d::<2>, &x);
}

fn pool_case<L: Module<f32>, const C: usize, const H: usize, const W: usize>(
    mut layer: L,
    k: usize,
    s: usize,
    p: usize,
    max: bool,
) {
    let mut r = rng(4);
    // 64 samples: enough for the kernels to split the planes over two threads
    let x = uniform::<(Dyn, Const<C>, Const<H>, Const<W>), f32>(&mut r, Dyn(64), -1.0, 1.0);
    let x64: Vec<f64> = x.as_slice().iter().map(|&v| v as f64).collect();
    let want = naive_pool(&x64, [64 * C, H, W], [k, s, p], max);
    let mut results = Vec::new();
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        let n_out = want.len();
        let mut y = vec![0.0f32; n_out];
        layer.forward_raw(shaped::layer::Act::of(&x), &mut y);
        let mut yt = vec![0.0f32; n_out];
        layer.forward_train_raw(shaped::layer::Act::of(&x), &mut yt, &mut Default::default());
        assert_eq!(y, yt, "{}: inference and training forward", L::type_name());
        assert_close(&y, &want, 1e-6, &L::type_name());
        results.push(y);
    }
    shaped::set_num_threads(1);
    assert_eq!(results[0], results[1], "{}: 1 and 2 threads", L::type_name());
}

#[test]
fn pooling_matches_naive_loops() {
    pool_case::<_, 3, 12, 12>(AvgPool2d::<2>, 2, 2, 0, false);
    pool_case::<_, 3, 11, 11>(AvgPool2d::<3, 2, 1>, 3, 2, 1, false);
    pool_case::<_, 3, 12, 12>(AvgPool2d::<3, 3>, 3, 3, 0, false);
    pool_case::<_, 2, 9, 9>(AvgPool2d::<3, 1, 1>, 3, 1, 1, false);
    pool_case::<_, 3, 11, 11>(MaxPool2d::<3, 2, 1>, 3, 2, 1, true);
    pool_case::<_, 3, 12, 12>(MaxPool2d::<2, 2, 1>, 2, 2, 1, true);
    pool_case::<_, 2, 9, 9>(MaxPool2d::<3, 1, 1>, 3, 1, 1, true);
    pool_case::<_, 3, 12, 12>(MaxPool2d::<2>, 2, 2, 0, true);
}

#[test]
fn global_avg_pool_is_the_plane_mean() {
    let mut r = rng(5);
    let x = uniform::<(Dyn, Const<4>, Const<5>, Const<3>), f32>(&mut r, Dyn(7), -1.0, 1.0);
    let y: Tensor<(Dyn, Const<4>), f32> = GlobalAvgPool.predict(&x);
    let want: Vec<f64> = x.as_slice().chunks(15).map(|p| p.iter().map(|&v| v as f64).sum::<f64>() / 15.0).collect();
    assert_close(y.as_slice(), &want, 1e-6, "GlobalAvgPool");
}

#[test]
fn pooling_names_and_shapes() {
    assert_eq!(<MaxPool2d<3, 2, 1> as Module<f32>>::type_name(), "MaxPool2d<3, 2, 1>");
    assert_eq!(<MaxPool2d<2> as Module<f32>>::type_name(), "MaxPool2d<2>");
    assert_eq!(<LeakyReLU as Module<f32>>::type_name(), "LeakyReLU<10>");
    assert_eq!(<LeakyReLU<200> as Module<f32>>::type_name(), "LeakyReLU<200>");
    assert_eq!(<AvgPool2d<2> as Module<f32>>::type_name(), "AvgPool2d<2>");
    assert_eq!(<AvgPool2d<3, 2, 1> as Module<f32>>::type_name(), "AvgPool2d<3, 2, 1>");
    // by hand, with the output type written out (checked at build)
    let x = Tensor::<(Dyn, Const<2>, Const<7>, Const<7>)>::zeros(Dyn(3));
    let y: Tensor<(Dyn, Const<2>, Const<4>, Const<4>)> = MaxPool2d::<3, 2, 1>.apply(&x);
    assert_eq!(y.batch_size(), 3);
    let y: Tensor<(Dyn, Const<2>, Const<4>, Const<4>)> = AvgPool2d::<3, 2, 1>.apply(&x);
    assert_eq!(y.batch_size(), 3);
}

// ------------------------------------------------------------------------------------------------
// LayerNorm

fn layernorm(seed: u64) -> LayerNorm<6, f64> {
    let mut r = rng(seed);
    let mut ln = <LayerNorm<6, f64> as Module<f64>>::zeros();
    for v in ln.gamma.as_mut_slice() {
        *v = r.random_range(0.5..1.5);
    }
    for v in ln.beta.as_mut_slice() {
        *v = r.random_range(-0.5..0.5);
    }
    ln
}

#[test]
fn layernorm_gradcheck() {
    let mut r = rng(6);
    let mut ln = layernorm(7);
    let mut x = uniform::<(Const<5>, Const<6>), f64>(&mut r, Const, -1.0, 1.0);
    // different scales and offsets per sample
    for (i, row) in x.as_mut_slice().chunks_exact_mut(6).enumerate() {
        for v in row {
            *v = *v * (1.0 + i as f64) + 0.3 * i as f64;
        }
    }
    let rep = check("LayerNorm<6> (5,6)", &mut ln, &x);
    let names: Vec<&str> = rep.params.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["gamma", "beta"]);
    let xd = uniform::<(Dyn, Const<6>), f64>(&mut r, Dyn(3), -2.0, 2.0);
    check("LayerNorm<6> (Dyn=3,6)", &mut ln, &xd);
    let x1 = uniform::<(Dyn, Const<6>), f64>(&mut r, Dyn(1), -2.0, 2.0);
    check("LayerNorm<6> (Dyn=1,6)", &mut ln, &x1);
}

#[test]
fn layernorm_matches_the_formula() {
    let mut r = rng(8);
    let ln = layernorm(9);
    let x = uniform::<(Dyn, Const<6>), f64>(&mut r, Dyn(4), -3.0, 3.0);
    let mut want = Vec::new();
    for row in x.as_slice().chunks(6) {
        let m = row.iter().sum::<f64>() / 6.0;
        let var = row.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 6.0;
        for (j, v) in row.iter().enumerate() {
            want.push(ln.gamma.as_slice()[j] * (v - m) / (var + 1e-5).sqrt() + ln.beta.as_slice()[j]);
        }
    }
    let y = ln.predict(&x);
    assert_close(y.as_slice(), &want, 1e-14, "LayerNorm inference");
    let (mut yt, mut cache) = (Tensor::zeros(Dyn(0)), Default::default());
    let mut ln2 = ln.clone();
    ln2.forward_train(&x, &mut yt, &mut cache);
    assert_eq!(y.as_slice(), yt.as_slice(), "training and inference forward agree (no running statistics)");
    assert_eq!(ln2, ln, "training changes no parameter");
    // f32, constant rows: x̂ = 0 (ε keeps the root positive), y = β
    let x = Tensor::<(Const<2>, Const<6>), f32>::from_vec(vec![3.0; 12]).unwrap();
    let ln32 = <LayerNorm<6> as Module<f32>>::zeros();
    assert!(ln32.predict(&x).as_slice().iter().all(|&v| v == 0.0));
}

// ------------------------------------------------------------------------------------------------
// Softmax and log-softmax

#[test]
fn softmax_gradcheck() {
    let mut r = rng(10);
    let x = uniform::<(Const<4>, Const<7>), f64>(&mut r, Const, -3.0, 3.0);
    check("Softmax (4,7)", &mut Softmax, &x);
    check("LogSoftmax (4,7)", &mut LogSoftmax, &x);
    let xd = uniform::<(Dyn, Const<3>), f64>(&mut r, Dyn(5), -3.0, 3.0);
    check("Softmax (Dyn=5,3)", &mut Softmax, &xd);
    check("LogSoftmax (Dyn=5,3)", &mut LogSoftmax, &xd);
}

#[test]
fn softmax_matches_the_formula_and_is_stable() {
    let x = Tensor::<(Const<2>, Const<3>), f32>::from_vec(vec![1.0, 2.0, 3.0, 1000.0, 1001.0, -1000.0]).unwrap();
    let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
    let s: f64 = e.iter().sum();
    let (a, b) = (1.0 / (1.0 + 1f64.exp()), 1f64.exp() / (1.0 + 1f64.exp()));
    let want = [e[0] / s, e[1] / s, e[2] / s, a, b, 0.0];
    let p = Softmax.predict(&x);
    assert_close(p.as_slice(), &want, 1e-6, "Softmax");
    let lp = LogSoftmax.predict(&x);
    let want_log = [(e[0] / s).ln(), (e[1] / s).ln(), (e[2] / s).ln(), a.ln(), b.ln(), -2001.0 + b.ln()];
    assert_close(lp.as_slice(), &want_log, 1e-6, "LogSoftmax");
    assert!(lp.as_slice().iter().all(|v| v.is_finite()));
    // 2 threads, a large batch: the same values
    let mut r = rng(11);
    let x = uniform::<(Dyn, Const<100>), f32>(&mut r, Dyn(500), -5.0, 5.0);
    shaped::set_num_threads(2);
    let two = LogSoftmax.predict(&x);
    shaped::set_num_threads(1);
    assert_eq!(LogSoftmax.predict(&x).as_slice(), two.as_slice());
}

// ------------------------------------------------------------------------------------------------
// In a derived model

#[derive(Sequential)]
#[sequential(input = (2, 7, 7), elem = f64)]
struct Breadth {
    pad_pool: MaxPool2d<3, 2, 1>,
    sig: Sigmoid,
    avg: AvgPool2d<2>,
    gap: GlobalAvgPool,
    ln: LayerNorm<2, f64>,
    fc: Linear<2, 5, f64>,
    gelu: GELU,
    leaky: LeakyReLU,
    tanh: Tanh,
    out: LogSoftmax,
}

#[test]
fn derived_model_of_the_new_layers() {
    let mut r = rng(12);
    let mut m = Breadth::init(&mut r, Init::Gaussian(1.0));
    for v in m.ln.gamma.as_mut_slice().iter_mut().chain(m.ln.beta.as_mut_slice()) {
        *v = r.random_range(0.5..1.5);
    }
    let x = distinct::<(Dyn, Const<2>, Const<7>, Const<7>)>(&mut r, Dyn(3));
    let y: Tensor<(Dyn, Const<5>), f64> = m.predict(&x);
    assert_eq!(y.batch_size(), 3);
    let s = m.to_string();
    for needle in
        ["MaxPool2d<3, 2, 1>", "AvgPool2d<2>", "GlobalAvgPool", "LayerNorm<2>", "GELU", "LeakyReLU", "LogSoftmax"]
    {
        assert!(s.contains(needle), "summary lacks {needle}:\n{s}");
    }
    let rep = check_layer(&mut m, &x, &GradCheck { max_entries: Some(40), seed: 1, ..GradCheck::default() });
    println!("Breadth: {rep}");
    assert!(rep.max_error() < TOL, "{rep}");
}

// ------------------------------------------------------------------------------------------------
// Kernel entry points: sizes are checked before any buffer is touched

fn panics_with(what: &str, f: impl FnOnce() + std::panic::UnwindSafe) {
    let err = std::panic::catch_unwind(f).expect_err("the call must panic");
    let msg = err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()));
    let msg = msg.unwrap_or_default();
    assert!(msg.contains(what), "message {msg:?} lacks {what:?}");
}

#[test]
fn new_kernel_entry_points_reject_bad_dims() {
    use shaped::kernels::activation::{self, Activation, RowDims};
    use shaped::kernels::{norm, pool};
    let d = pool::PoolDims { planes: 2, h: 4, w: 4, p: 2, stride: 2, pad: 2 };
    panics_with("exceeds half the window", move || pool::avg_forward(&d, &[0f32; 32], &mut [0f32; 18]));
    panics_with("exceeds half the window", move || pool::max_forward(&d, &[0f32; 32], &mut [0f32; 18], None));
    let d = pool::PoolDims { planes: 2, h: 4, w: 4, p: 3, stride: 2, pad: 1 };
    panics_with("output length", move || pool::avg_forward(&d, &[0f32; 32], &mut [0f32; 7]));
    panics_with("input length", move || pool::avg_backward(&d, &[0f32; 8], &mut [0f32; 31]));
    panics_with("output length", move || pool::global_avg_forward(2, 16, &[0f32; 32], &mut [0f32; 3]));
    panics_with("input length", move || pool::global_avg_backward(2, 16, &[0f32; 2], &mut [0f32; 30]));
    panics_with("lengths differ", || activation::activation_forward(Activation::Gelu, &[0f32; 4], &mut [0f32; 3]));
    panics_with("lengths differ", || {
        activation::activation_backward(Activation::Tanh, &[0f32; 4], &[0f32; 4], &[0f32; 4], &mut [0f32; 5])
    });
    let rd = RowDims { rows: 2, d: 3 };
    panics_with("row kernel", move || activation::softmax_forward(rd, &[0f32; 6], &mut [0f32; 5], false));
    panics_with("row kernel", move || activation::softmax_backward(rd, &[0f32; 6], &[0f32; 7], &mut [0f32; 6], true));
    panics_with("γ, β", || {
        norm::layernorm_forward(2, 3, &[0f32; 6], &[1.0; 2], &[0.0; 3], 1e-5, &mut [0f32; 6], None)
    });
    panics_with("without a training forward pass", || {
        let (mut g, mut b) = ([0f32; 3], [0f32; 3]);
        norm::layernorm_backward(2, 3, &[0f32; 6], &[0f32; 6], &[1.0; 3], &[0.0; 1], &[1.0; 1], &mut g, &mut b, None)
    });
}
