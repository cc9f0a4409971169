//! The losses on real-valued targets (MSE, L1, Huber, binary cross-entropy on logits): values
//! against naive formulas, f64 gradient checks against centred differences, and how data sets
//! with class labels or values pair with losses (before training, naming the loss and the data).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::Error;
use shaped::data::{Dataset, Targets};
use shaped::gradcheck::{numeric_gradient, rel_error};
use shaped::loss::{BceWithLogits, Huber, L1, Loss, Mse, TargetKind};
use shaped::prelude::*;
use shaped::solver::Solver;

const TOL: f64 = 1e-7;

type Out = (Dyn, Const<3>);

fn uniform(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// The loss's value and gradient on `s` against `t`, and the centred-difference gradient.
fn check<L: Loss<Out, f64, Target = f64>>(name: &str, loss: &L, s: &[f64], t: &[f64]) -> f64 {
    let b = s.len() / 3;
    let x = Tensor::<Out, f64>::from_vec_batch(Dyn(b), s.to_vec()).unwrap();
    let mut d = Tensor::<Out, f64>::zeros(Dyn(b));
    let value = loss.loss(&x, t, &mut d).unwrap();
    let mut v = s.to_vec();
    let num = numeric_gradient(
        |v| {
            let x = Tensor::<Out, f64>::from_vec_batch(Dyn(b), v.to_vec()).unwrap();
            let mut scratch = Tensor::<Out, f64>::zeros(Dyn(b));
            loss.loss(&x, t, &mut scratch).unwrap()
        },
        &mut v,
        shaped::gradcheck::H,
    );
    let err = rel_error(&num, d.as_slice());
    println!("{name}: max relative error {err:.3e}");
    assert!(err < TOL, "{name}: relative error {err:e}\nnumeric {num:?}\nanalytic {:?}", d.as_slice());
    value
}

fn naive(s: &[f64], t: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    s.iter().zip(t).map(|(&s, &t)| f(s, t)).sum::<f64>() / s.len() as f64
}

#[test]
fn mse_l1_huber_values_and_gradients() {
    let mut rng = StdRng::seed_from_u64(7);
    let s = uniform(&mut rng, 15, -3.0, 3.0);
    let t = uniform(&mut rng, 15, -3.0, 3.0);
    // Keep residuals away from the kinks (L1 at 0, Huber at ±δ), where centred differences straddle them.
    assert!(s.iter().zip(&t).all(|(a, b)| (a - b).abs() > 1e-3 && ((a - b).abs() - 1.0).abs() > 1e-3));
    let v = check("mse", &Mse, &s, &t);
    assert!((v - naive(&s, &t, |s, t| (s - t).powi(2))).abs() < 1e-12, "{v}");
    let v = check("l1", &L1, &s, &t);
    assert!((v - naive(&s, &t, |s, t| (s - t).abs())).abs() < 1e-12, "{v}");
    for delta in [1.0, 0.5, 2.5] {
        let v = check("huber", &Huber::new(delta), &s, &t);
        let want = naive(&s, &t, |s, t| {
            let r: f64 = s - t;
            if r.abs() < delta { 0.5 * r * r } else { delta * (r.abs() - 0.5 * delta) }
        });
        assert!((v - want).abs() < 1e-12, "huber δ={delta}: {v} vs {want}");
    }
    assert_eq!(Huber::default().delta, 1.0);
    // Hand-computed: residuals (1, -3) and (0.5, 0): MSE (1+9+0.25)/3... over 2 samples × 3 outputs.
    let x = Tensor::<Out, f64>::from_vec_batch(Dyn(2), vec![1.0, -3.0, 0.5, 0.0, 2.0, 2.0]).unwrap();
    let t = [0.0, 0.0, 0.0, 0.0, 2.0, 4.0];
    let mut d = Tensor::<Out, f64>::zeros(Dyn(2));
    assert!((Mse.loss(&x, &t, &mut d).unwrap() - (1.0 + 9.0 + 0.25 + 0.0 + 0.0 + 4.0) / 6.0).abs() < 1e-15);
    assert_eq!(d.as_slice(), &[2.0 / 6.0, -6.0 / 6.0, 1.0 / 6.0, 0.0, 0.0, -4.0 / 6.0]);
    assert!((L1.loss(&x, &t, &mut d).unwrap() - 6.5 / 6.0).abs() < 1e-15);
    assert_eq!(d.as_slice()[3], 0.0, "L1's gradient at a zero residual is 0 (PyTorch's)");
    // Huber δ=1: 0.5, 2.5, 0.125, 0, 0, 1.5.
    assert!((Huber::default().loss(&x, &t, &mut d).unwrap() - 4.625 / 6.0).abs() < 1e-15);
    assert_eq!(d.as_slice(), &[1.0 / 6.0, -1.0 / 6.0, 0.5 / 6.0, 0.0, 0.0, -1.0 / 6.0]);
}

#[test]
fn bce_with_logits_is_stable_and_matches_the_formula() {
    let mut rng = StdRng::seed_from_u64(3);
    let s = uniform(&mut rng, 18, -6.0, 6.0);
    let t: Vec<f64> = (0..18).map(|i| if i % 3 == 0 { 0.25 } else { (i % 2) as f64 }).collect();
    let v = check("bce", &BceWithLogits, &s, &t);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want = naive(&s, &t, |s, t| -(t * sig(s).ln() + (1.0 - t) * (1.0 - sig(s)).ln()));
    assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    // Zero logits: ln 2 whatever the targets.
    let x = Tensor::<Out, f64>::zeros(Dyn(2));
    let mut d = Tensor::<Out, f64>::zeros(Dyn(2));
    let l = BceWithLogits.loss(&x, &[0.0, 1.0, 0.5, 1.0, 0.0, 0.0], &mut d).unwrap();
    assert!((l - 2f64.ln()).abs() < 1e-15);
    // Huge logits stay finite (f32, as training uses it): the naive formula gives inf or NaN.
    let x = Tensor::<Out, f32>::from_vec_batch(Dyn(1), vec![200.0, -200.0, 90.0]).unwrap();
    let mut d = Tensor::<Out, f32>::zeros(Dyn(1));
    let l = BceWithLogits.loss(&x, &[0.0, 1.0, 1.0], &mut d).unwrap();
    assert!((l - 400.0 / 3.0).abs() < 1e-3, "{l}");
    assert!(d.as_slice().iter().all(|g| g.is_finite()));
    assert_eq!(d.as_slice(), &[1.0 / 3.0, -1.0 / 3.0, 0.0]);
}

#[test]
fn a_wrong_number_of_targets_is_an_error() {
    let x = Tensor::<Out, f64>::zeros(Dyn(2));
    let mut d = Tensor::<Out, f64>::zeros(Dyn(2));
    let e = Mse.loss(&x, &[0.0; 5], &mut d).unwrap_err();
    assert!(matches!(&e, Error::Shape(m) if m.contains("5 target values for 6")), "{e}");
}

#[test]
fn regression_data_sets_hold_values_with_checked_lengths() {
    let ds = Dataset::regression(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![0.5, -1.0, 2.0], &[2], 1).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.values(), &[0.5, -1.0, 2.0]);
    assert!(ds.labels().is_empty());
    assert_eq!(ds.targets(), &Targets::Values(vec![0.5, -1.0, 2.0], 1));
    let sub = ds.subset(&[2, 0]);
    assert_eq!((sub.features(), sub.values()), (&[5.0, 6.0, 1.0, 2.0][..], &[2.0, 0.5][..]));
    let (a, b) = ds.clone().split_at(1);
    assert_eq!((a.values(), b.values()), (&[0.5][..], &[-1.0, 2.0][..]));
    assert_ne!(
        ds.digest(),
        Dataset::regression(ds.features().to_vec(), vec![0.5, -1.0, 2.5], &[2], 1).unwrap().digest()
    );
    let w2 = Dataset::regression(vec![0.0; 4], vec![1.0, 2.0, 3.0, 4.0], &[2], 2).unwrap();
    assert_eq!((w2.len(), w2.target_width()), (2, 2));
    let (x, y) = w2.batch_values::<(Dyn, Const<2>)>(&[1]).unwrap();
    assert_eq!((x.batch_size(), y), (1, vec![3.0, 4.0]));
    for (r, phrase) in [
        (Dataset::regression(vec![0.0; 6], vec![1.0, 2.0], &[2], 1), "6 feature values do not make 2 samples"),
        (Dataset::regression(vec![0.0; 6], vec![1.0, 2.0, 3.0], &[2], 2), "whole samples of 2"),
        (Dataset::regression(vec![0.0; 2], vec![f32::NAN], &[2], 1), "target value 0 of sample 0 is NaN"),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(phrase), "{e}");
    }
}

type Reg = Linear<2, 1>;

fn line_data(n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y = x.chunks(2).map(|p| 3.0 * p[0] - 2.0 * p[1] + 0.5).collect();
    Dataset::regression(x, y, &[2], 1).unwrap()
}

#[test]
fn the_solver_fits_a_line_and_reports_the_validation_loss() {
    let (train, val) = (line_data(256, 1), line_data(64, 2));
    let mut m = Reg::zeros();
    // (one file per process: `tests/isa.rs` runs this test in a child process while its own copy
    // may be running)
    let name = format!("losses-line-metrics-{}.csv", std::process::id());
    let csv = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let h = Solver::new()
        .rule(UpdateRule::Adam)
        .lr(0.05)
        .metrics_csv(&csv)
        .epochs(30)
        .batch_size(32)
        .train(&mut m, &Mse, &train, &val)
        .unwrap();
    assert_eq!(h.val_loss.len(), 30);
    assert!(h.train_acc.is_empty() && h.val_acc.is_empty());
    let best = h.val_loss.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(h.best_val_loss, best);
    assert_eq!(h.val_loss[h.best_epoch - 1], best, "the best epoch has the lowest validation loss");
    assert!(best < 1e-3, "{:?}", h.val_loss);
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::remove_file(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!((rows[0], rows.len()), ("epoch,loss,val_loss,lr,seconds", 31));
    assert_eq!(rows[30].split(',').nth(2).unwrap().parse::<f64>().unwrap(), h.val_loss[29]);
    let w = m.weight.as_slice();
    assert!((w[0] - 3.0).abs() < 0.05 && (w[1] + 2.0).abs() < 0.05, "{w:?}");
    assert!((shaped::solver::mean_loss(&m, &Mse, &val, 7).unwrap() - best).abs() < 1e-6);
}

#[test]
fn data_of_the_wrong_kind_or_width_is_refused_before_training_naming_loss_and_data() {
    let reg = line_data(10, 1);
    let cls = shaped::data::synthetic::binary20(1, 10);
    let mut m = Reg::zeros();
    let before = m.weight.as_slice().to_vec();
    let e = Solver::new().train(&mut m, &Mse, &reg, &cls.clone()).unwrap_err().to_string();
    // (binary20 has 20 features: the shape check comes first for the validation set.)
    assert!(e.contains("validation"), "{e}");
    let cls2 = Dataset::new(vec![0.0; 20], vec![0; 10], &[2], 2).unwrap();
    let e = Solver::new().train(&mut m, &Mse, &cls2, &reg).unwrap_err();
    assert!(matches!(&e, Error::Label(_)), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("MSE") && e.contains("training") && e.contains("real-valued targets") && e.contains("class labels"),
        "{e}"
    );
    let e = Solver::new().train(&mut m, &Logistic, &reg, &reg).unwrap_err().to_string();
    assert!(e.contains("logistic") && e.contains("needs class labels"), "{e}");
    let wide = Dataset::regression(vec![0.0; 20], vec![0.0; 20], &[2], 2).unwrap();
    let e = Solver::new().train(&mut m, &Huber::default(), &reg, &wide).unwrap_err().to_string();
    assert!(
        e.contains("Huber") && e.contains("validation") && e.contains("1 per sample") && e.contains("holds 2"),
        "{e}"
    );
    assert_eq!(m.weight.as_slice(), &before[..], "nothing was trained");
    assert_eq!(TargetKind::Values.describe(), "real-valued targets");
}
