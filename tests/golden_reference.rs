//! Golden values and exact semantics, second part: losses at zero scores and known values, label
//! and shape errors, tensor construction, max-pool ties and overlapping windows, and the layers
//! against naive reference loops.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::Error;
use shaped::init::Init;
use shaped::layer::{Layer, Module};
use shaped::layers::{Linear, MaxPool2d};
use shaped::loss::{Hinge, Logistic, Loss, SoftmaxCrossEntropy, hinge_loss, logistic_loss, softmax_loss};
use shaped::shape::{Const, Dyn};
use shaped::tensor::Tensor;

mod common;
use common::{assert_close, uniform};

// ------------------------------------------------------------------------------------------------
// Losses

#[test]
fn losses_at_zero_scores() {
    let s = Tensor::<(Const<4>, Const<10>), f64>::zeros(Const);
    let mut d = Tensor::zeros(Const);
    let l = softmax_loss(&s, &[0, 3, 9, 5], &mut d).unwrap();
    assert!((l - 10f64.ln()).abs() < 1e-12, "softmax {l}");
    // dscores = (1/C − onehot)/N
    assert!((d.as_slice()[0] - (0.1 - 1.0) / 4.0).abs() < 1e-15);
    assert!((d.as_slice()[1] - 0.1 / 4.0).abs() < 1e-15);
    let sce = SoftmaxCrossEntropy::<10>.loss(&s, &[0, 3, 9, 5], &mut d).unwrap();
    assert!((sce - 10f64.ln()).abs() < 1e-12);

    let s = Tensor::<(Const<6>,), f64>::zeros(Const);
    let labels = [0, 1, 1, 0, 1, 0];
    let mut d = Tensor::zeros(Const);
    let l = logistic_loss(&s, &labels, &mut d).unwrap();
    assert!((l - 2f64.ln()).abs() < 1e-12, "logistic {l}");
    assert!((l - 0.693).abs() < 1e-3);
    for (&g, &y) in d.as_slice().iter().zip(&labels) {
        assert!((g - (0.5 - y as f64) / 6.0).abs() < 1e-15);
    }
    assert!((Logistic.loss(&s, &labels, &mut d).unwrap() - 2f64.ln()).abs() < 1e-12);

    let l = hinge_loss(&s, &labels, &mut d).unwrap();
    assert!((l - 1.0).abs() < 1e-12, "hinge {l}");
    for (&g, &y) in d.as_slice().iter().zip(&labels) {
        let yy = if y == 1 { 1.0 } else { -1.0 };
        assert!((g + yy / 6.0).abs() < 1e-15);
    }
    assert!((Hinge.loss(&s, &labels, &mut d).unwrap() - 1.0).abs() < 1e-12);

    // f32 and (B, 1) scores
    let s32 = Tensor::<(Dyn, Const<1>), f32>::zeros(Dyn(3));
    let mut d32 = Tensor::zeros(Dyn(0));
    assert!((logistic_loss(&s32, &[1, 0, 1], &mut d32).unwrap() - std::f32::consts::LN_2).abs() < 1e-6);
    assert!((hinge_loss(&s32, &[1, 0, 1], &mut d32).unwrap() - 1.0).abs() < 1e-6);
    let s32 = Tensor::<(Dyn, Const<10>), f32>::zeros(Dyn(3));
    let mut d32 = Tensor::zeros(Dyn(0));
    assert!((softmax_loss(&s32, &[1, 0, 9], &mut d32).unwrap() - std::f32::consts::LN_10).abs() < 1e-6);
}

#[test]
fn losses_known_values() {
    // softmax of [1, 2, 3] with label 2: −log(e³/(e+e²+e³))
    let s = Tensor::<(Const<1>, Const<3>), f64>::from_vec(vec![1.0, 2.0, 3.0]).unwrap();
    let mut d = Tensor::zeros(Const);
    let l = softmax_loss(&s, &[2], &mut d).unwrap();
    let z = 1f64.exp() + 2f64.exp() + 3f64.exp();
    assert!((l - (z.ln() - 3.0)).abs() < 1e-14);
    // huge scores stay finite
    let s = Tensor::<(Const<1>, Const<3>), f64>::from_vec(vec![1000.0, 0.0, -1000.0]).unwrap();
    let l = softmax_loss(&s, &[1], &mut d).unwrap();
    assert!((l - 1000.0).abs() < 1e-9 && d.as_slice().iter().all(|v| v.is_finite()));
    // logistic: log(1+e^s) − y·s, stable at ±large s
    let s = Tensor::<(Const<4>,), f64>::from_vec(vec![2.0, -1.0, 800.0, -800.0]).unwrap();
    let mut d = Tensor::zeros(Const);
    let l = logistic_loss(&s, &[1, 0, 0, 0], &mut d).unwrap();
    let want = ((1.0 + (-2f64).exp()).ln() + (1.0 + (-1f64).exp()).ln() + 800.0 + 0.0) / 4.0;
    assert!((l - want).abs() < 1e-12, "logistic {l} vs {want}");
    assert!(d.as_slice().iter().all(|v| v.is_finite()));
    assert!((d.as_slice()[2] - 0.25).abs() < 1e-15 && d.as_slice()[3].abs() < 1e-15);
    // hinge: max(0, 1 − y·s)
    let s = Tensor::<(Const<4>,), f64>::from_vec(vec![2.0, 0.5, -0.25, 3.0]).unwrap();
    let l = hinge_loss(&s, &[1, 1, 0, 0], &mut d).unwrap();
    assert!((l - (0.0 + 0.5 + 0.75 + 4.0) / 4.0).abs() < 1e-15);
    assert_eq!(d.as_slice(), &[0.0, -0.25, 0.25, 0.25]);
}

#[test]
fn loss_label_errors() {
    let s = Tensor::<(Const<2>, Const<10>), f64>::zeros(Const);
    let mut d = Tensor::zeros(Const);
    assert!(matches!(softmax_loss(&s, &[0, 10], &mut d), Err(Error::Label(_))));
    assert!(matches!(softmax_loss(&s, &[usize::MAX, 0], &mut d), Err(Error::Label(_))));
    assert!(matches!(SoftmaxCrossEntropy::<10>.loss(&s, &[10, 0], &mut d), Err(Error::Label(_))));
    assert!(softmax_loss(&s, &[9, 0], &mut d).is_ok());

    let s = Tensor::<(Const<3>,), f64>::zeros(Const);
    let mut d = Tensor::zeros(Const);
    assert!(matches!(logistic_loss(&s, &[0, 2, 1], &mut d), Err(Error::Label(_))));
    assert!(matches!(hinge_loss(&s, &[0, 1, 5], &mut d), Err(Error::Label(_))));
    assert!(matches!(Logistic.loss(&s, &[3, 1, 1], &mut d), Err(Error::Label(_))));
    assert!(matches!(Hinge.loss(&s, &[0, 1, 2], &mut d), Err(Error::Label(_))));
}

#[test]
fn loss_batch_mismatch_errors() {
    let s = Tensor::<(Dyn, Const<10>), f64>::zeros(Dyn(3));
    let mut d = Tensor::zeros(Dyn(0));
    assert!(matches!(softmax_loss(&s, &[0, 1], &mut d), Err(Error::Shape(_))));
    assert!(matches!(softmax_loss(&s, &[0, 1, 2, 3], &mut d), Err(Error::Shape(_))));
    assert!(matches!(SoftmaxCrossEntropy::<10>.loss(&s, &[], &mut d), Err(Error::Shape(_))));
    let s = Tensor::<(Dyn, Const<1>), f64>::zeros(Dyn(3));
    let mut d = Tensor::zeros(Dyn(0));
    assert!(matches!(logistic_loss(&s, &[0, 1], &mut d), Err(Error::Shape(_))));
    assert!(matches!(hinge_loss(&s, &[0, 1, 1, 0], &mut d), Err(Error::Shape(_))));
    assert!(matches!(Logistic.loss(&s, &[0], &mut d), Err(Error::Shape(_))));
    assert!(matches!(Hinge.loss(&s, &[0, 1, 0, 1], &mut d), Err(Error::Shape(_))));
}

// ------------------------------------------------------------------------------------------------
// Tensor construction

#[test]
fn tensor_from_vec_checks_length() {
    type S = (Const<2>, Const<3>);
    assert!(matches!(Tensor::<S, f32>::from_vec(vec![0.0; 5]), Err(Error::Shape(_))));
    assert!(matches!(Tensor::<S, f32>::from_vec(vec![0.0; 9]), Err(Error::Shape(_))));
    assert!(matches!(Tensor::<S, f32>::from_vec(vec![0.0; 3]), Err(Error::Shape(_))));
    assert!(matches!(Tensor::<S, f32>::from_vec(vec![]), Err(Error::Shape(_))));
    assert!(Tensor::<S, f32>::from_vec(vec![0.0; 6]).is_ok());
    assert!(Tensor::<S, f32>::from_slice(&[0.0; 7]).is_err());

    type D = (Dyn, Const<3>, Const<2>);
    assert!(matches!(Tensor::<D, f64>::from_vec(vec![0.0; 7]), Err(Error::Shape(_))));
    assert!(matches!(Tensor::<D, f64>::from_vec(vec![0.0; 13]), Err(Error::Shape(_))));
    let t = Tensor::<D, f64>::from_vec(vec![0.0; 18]).unwrap();
    assert_eq!(t.batch_size(), 3);
    assert_eq!(t.dims(), vec![3, 3, 2]);
    let t = Tensor::<D, f64>::from_vec(vec![]).unwrap();
    assert_eq!(t.batch_size(), 0);

    assert!(Tensor::<D, f64>::from_vec_batch(Dyn(2), vec![0.0; 13]).is_err());
    assert!(Tensor::<D, f64>::from_vec_batch(Dyn(2), vec![0.0; 12]).is_ok());
    assert!(Tensor::<(Const<4>,), f64>::from_vec(vec![0.0; 5]).is_err());
    // reshape and rebatch checks
    let t = Tensor::<(Dyn, Const<6>), f64>::from_vec((0..12).map(f64::from).collect()).unwrap();
    assert!(t.clone().reshape::<(Dyn, Const<5>)>().is_err());
    let r = t.clone().reshape::<(Dyn, Const<2>, Const<3>)>().unwrap();
    assert_eq!(r.as_slice(), t.as_slice());
    assert!(t.clone().rebatch::<(Const<3>, Const<6>)>().is_err());
    assert!(t.rebatch::<(Const<2>, Const<6>)>().is_ok());
}

// ------------------------------------------------------------------------------------------------
// Max pooling

#[test]
fn maxpool_gradient_goes_to_first_maximum_on_ties() {
    let mut pool = MaxPool2d::<2>;
    // one plane 2×4: window 0 all equal; window 1 has its maximum at positions 1 and 2 (row-major)
    let x = Tensor::<(Const<1>, Const<1>, Const<2>, Const<4>), f64>::from_vec(vec![
        1.0, 1.0, 0.0, 5.0, //
        1.0, 1.0, 5.0, 2.0,
    ])
    .unwrap();
    let mut y = Tensor::<(Const<1>, Const<1>, Const<1>, Const<2>), f64>::zeros(Const);
    let mut cache = Default::default();
    Module::<f64>::apply_train(&mut pool, &x, &mut y, &mut cache);
    assert_eq!(y.as_slice(), &[1.0, 5.0]);
    let dy = Tensor::from_vec(vec![3.0, 7.0]).unwrap();
    let mut dx = Tensor::full(Const, 9.0);
    Module::<f64>::apply_backward(&pool, &x, &y, &dy, &mut cache, Some(&mut dx), &mut MaxPool2d::<2>);
    assert_eq!(dx.as_slice(), &[3.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0]);

    // all-negative window with ties
    let x = Tensor::<(Const<1>, Const<1>, Const<2>, Const<2>), f64>::from_vec(vec![-2.0, -1.0, -1.0, -1.0]).unwrap();
    let mut y = Tensor::<(Const<1>, Const<1>, Const<1>, Const<1>), f64>::zeros(Const);
    Module::<f64>::apply_train(&mut pool, &x, &mut y, &mut cache);
    assert_eq!(y.as_slice(), &[-1.0]);
    let mut dx = Tensor::zeros(Const);
    Module::<f64>::apply_backward(
        &pool,
        &x,
        &y,
        &Tensor::from_vec(vec![1.0]).unwrap(),
        &mut cache,
        Some(&mut dx),
        &mut MaxPool2d::<2>,
    );
    assert_eq!(dx.as_slice(), &[0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn maxpool_overlapping_windows_accumulate() {
    let mut pool = MaxPool2d::<3, 1>;
    // 4×4 plane with a unique global maximum at (1, 2): it is in all four 3×3 windows
    let mut v: Vec<f64> = (0..16).map(|i| i as f64 * 0.1).collect();
    v[6] = 100.0;
    let x = Tensor::<(Const<1>, Const<1>, Const<4>, Const<4>), f64>::from_vec(v).unwrap();
    let mut y = Tensor::<(Const<1>, Const<1>, Const<2>, Const<2>), f64>::zeros(Const);
    let mut cache = Default::default();
    Module::<f64>::apply_train(&mut pool, &x, &mut y, &mut cache);
    assert_eq!(y.as_slice(), &[100.0; 4]);
    let dy = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut dx = Tensor::zeros(Const);
    Module::<f64>::apply_backward(&pool, &x, &y, &dy, &mut cache, Some(&mut dx), &mut MaxPool2d::<3, 1>);
    let mut want = vec![0.0; 16];
    want[6] = 10.0;
    assert_eq!(dx.as_slice(), want.as_slice());
}

#[test]
fn maxpool_matches_naive_reference() {
    fn naive(x: &[f64], planes: usize, h: usize, w: usize, p: usize, s: usize) -> Vec<f64> {
        let (oh, ow) = ((h - p) / s + 1, (w - p) / s + 1);
        let mut y = Vec::new();
        for pl in 0..planes {
            for i in 0..oh {
                for j in 0..ow {
                    let mut m = f64::NEG_INFINITY;
                    for u in 0..p {
                        for v in 0..p {
                            m = m.max(x[(pl * h + i * s + u) * w + j * s + v]);
                        }
                    }
                    y.push(m);
                }
            }
        }
        y
    }
    let mut rng = StdRng::seed_from_u64(9);
    let x = uniform::<(Const<2>, Const<3>, Const<7>, Const<9>)>(&mut rng, Const);
    let y: Tensor<(Const<2>, Const<3>, Const<3>, Const<4>), f64> = Module::<f64>::apply(&MaxPool2d::<3, 2>, &x);
    assert_eq!(y.as_slice(), naive(x.as_slice(), 6, 7, 9, 3, 2).as_slice());
    let y: Tensor<(Const<2>, Const<3>, Const<5>, Const<7>), f64> = Module::<f64>::apply(&MaxPool2d::<3, 1>, &x);
    assert_eq!(y.as_slice(), naive(x.as_slice(), 6, 7, 9, 3, 1).as_slice());
    let x = uniform::<(Dyn, Const<2>, Const<6>, Const<8>)>(&mut rng, Dyn(3));
    let y: Tensor<(Dyn, Const<2>, Const<3>, Const<4>), f64> = Module::<f64>::apply(&MaxPool2d::<2>, &x);
    assert_eq!(y.as_slice(), naive(x.as_slice(), 6, 6, 8, 2, 2).as_slice());
}

// ------------------------------------------------------------------------------------------------
// Linear

#[test]
fn linear_matches_naive_triple_loop() {
    let mut rng = StdRng::seed_from_u64(10);
    let mut fc = Linear::<7, 5, f64>::new(&mut rng, Init::Gaussian(1.0));
    for v in fc.bias.as_mut_slice() {
        *v = rng.random_range(-1.0..1.0);
    }
    let x = uniform::<(Dyn, Const<7>)>(&mut rng, Dyn(4));
    let y = fc.predict(&x);
    let (w, b, xs) = (fc.weight.as_slice(), fc.bias.as_slice(), x.as_slice());
    let mut want = vec![0.0; 4 * 5];
    for n in 0..4 {
        for o in 0..5 {
            let mut acc = b[o];
            for i in 0..7 {
                acc += xs[n * 7 + i] * w[i * 5 + o];
            }
            want[n * 5 + o] = acc;
        }
    }
    assert_close(y.as_slice(), &want, 1e-13, "linear forward");

    // backward against the formulas dW = Xᵀ dY, db = Σ dY, dX = dY Wᵀ
    let mut dy = y.clone();
    for v in dy.as_mut_slice() {
        *v = rng.random_range(-1.0..1.0);
    }
    let mut g = Linear::<7, 5, f64>::zeros();
    g.weight.as_mut_slice().fill(3.0);
    g.bias.as_mut_slice().fill(3.0);
    let mut dx = Tensor::zeros(Dyn(0));
    fc.backward(&x, &y, &dy, &mut (), Some(&mut dx), &mut g);
    let d = dy.as_slice();
    let mut dw = vec![0.0; 35];
    let mut db = vec![0.0; 5];
    let mut dxw = vec![0.0; 28];
    for n in 0..4 {
        for o in 0..5 {
            db[o] += d[n * 5 + o];
            for i in 0..7 {
                dw[i * 5 + o] += xs[n * 7 + i] * d[n * 5 + o];
                dxw[n * 7 + i] += d[n * 5 + o] * w[i * 5 + o];
            }
        }
    }
    assert_close(g.weight.as_slice(), &dw, 1e-13, "linear dW");
    assert_close(g.bias.as_slice(), &db, 1e-13, "linear db");
    assert_close(dx.as_slice(), &dxw, 1e-13, "linear dX");
    assert_eq!(dx.batch_size(), 4);

    // f32, static batch of 1
    let mut f32fc = Linear::<3, 2, f32>::zeros();
    f32fc.weight.as_mut_slice().copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    f32fc.bias.as_mut_slice().copy_from_slice(&[0.5, -0.5]);
    let x = Tensor::<(Const<1>, Const<3>), f32>::from_vec(vec![1.0, 0.0, -1.0]).unwrap();
    assert_eq!(f32fc.predict(&x).as_slice(), &[1.0 - 5.0 + 0.5, 2.0 - 6.0 - 0.5]);
}

#[test]
fn f32_logistic_matches_f64() {
    // The f32 loss evaluates e^−|s| and ln(1 + e^−|s|) with inline polynomials (so that the loop
    // vectorises); they must agree with the f64 library functions to f32 precision everywhere.
    use shaped::kernels::Elem;
    for i in 0..=20_000 {
        let x = -100.0 * i as f64 / 20_000.0;
        let (got, want) = ((x as f32).exp_nonpos() as f64, (x as f32 as f64).exp());
        if x >= -87.0 {
            assert!((got - want).abs() <= 2.5e-7 * want, "exp({x}) = {got}, want {want}");
        } else {
            assert!(got <= 1.7e-38, "exp({x}) = {got}");
        }
    }
    let unit = (0..=20_000).map(|i| i as f64 / 20_000.0).chain((1..60).map(|p| 2f64.powi(-p)));
    for x in unit.chain([0.0, 1e-8, 1e-9, 1e-30, std::f64::consts::SQRT_2 - 1.0]) {
        let x32 = x as f32;
        let (got, want) = (x32.ln_1p_unit() as f64, (x32 as f64).ln_1p());
        assert!((got - want).abs() <= 1.5e-7 * want, "ln_1p({x}) = {got}, want {want}");
    }
    // The whole loss: scores across the range, both labels, against the f64 path.
    let mut rng = StdRng::seed_from_u64(3);
    let n = 203; // not a multiple of the kernel's 8 lanes
    let scores: Vec<f64> = (0..n)
        .map(|i| match i % 4 {
            0 => rng.random_range(-1.0..1.0),
            1 => rng.random_range(-12.0..12.0),
            2 => rng.random_range(-120.0..120.0),
            _ => 0.0,
        })
        .map(|v: f64| v as f32 as f64) // the scores both paths see
        .collect();
    let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..2)).collect();
    let s64 = Tensor::<(Dyn, Const<1>), f64>::from_vec_batch(Dyn(n), scores.clone()).unwrap();
    let s32 =
        Tensor::<(Dyn, Const<1>), f32>::from_vec_batch(Dyn(n), scores.iter().map(|&v| v as f32).collect()).unwrap();
    let (mut d64, mut d32) = (Tensor::zeros(Dyn(0)), Tensor::zeros(Dyn(0)));
    let l64 = logistic_loss(&s64, &labels, &mut d64).unwrap();
    let l32 = logistic_loss(&s32, &labels, &mut d32).unwrap() as f64;
    assert!((l32 - l64).abs() <= 1e-6 * l64, "loss {l32} vs {l64}");
    for (i, (&g32, &g64)) in d32.as_slice().iter().zip(d64.as_slice()).enumerate() {
        assert!(
            (g32 as f64 - g64).abs() <= 4.0 * f32::EPSILON as f64 / n as f64,
            "gradient {i}: {g32} vs {g64} (score {})",
            scores[i]
        );
    }
}
