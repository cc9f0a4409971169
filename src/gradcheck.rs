//! Centred-difference gradient checking in `f64`, usable on any layer, model or loss.
//!
//! The homework's conventions: `h = 1e-5`, relative error
//! `max_i |a_i − b_i| / max(1e-8, |a_i| + |b_i|)`.
//!
//! ```
//! use shaped::prelude::*;
//! use shaped::gradcheck::{GradCheck, check_layer};
//! let mut fc = Linear::<4, 3, f64>::new(&mut rand::rngs::StdRng::seed_from_u64(0), Init::Gaussian(1.0));
//! let x = Tensor::<(Const<2>, Const<4>), f64>::from_vec((0..8).map(|i| i as f64 * 0.1).collect()).unwrap();
//! let report = check_layer(&mut fc, &x, &GradCheck::default());
//! assert!(report.max_error() < 1e-7, "{report}");
//! ```

use crate::layer::{Act, Module, Path};
use crate::shape::{Shape, out_extents};
use crate::tensor::Tensor;
use core::fmt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The homework's step, `1e-5`.
pub const H: f64 = 1e-5;

/// Relative error `max_i |a_i − b_i| / max(1e-8, |a_i| + |b_i|)`.
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_error: lengths differ");
    a.iter().zip(b).map(|(&x, &y)| (x - y).abs() / (x.abs() + y.abs()).max(1e-8)).fold(0.0, f64::max)
}

/// Numerical gradient of a scalar function `f` at `x` by centred differences (restores `x`).
pub fn numeric_gradient(mut f: impl FnMut(&[f64]) -> f64, x: &mut [f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let old = x[i];
            x[i] = old + h;
            let fp = f(x);
            x[i] = old - h;
            let fm = f(x);
            x[i] = old;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Numerical gradient of `Σ f(x) ⊙ df` for a vector-valued `f` (the gradient a backward pass given
/// upstream gradient `df` must return).
pub fn numeric_gradient_array(mut f: impl FnMut(&[f64]) -> Vec<f64>, x: &mut [f64], df: &[f64], h: f64) -> Vec<f64> {
    numeric_gradient(|x| f(x).iter().zip(df).map(|(a, b)| a * b).sum(), x, h)
}

/// Settings of [`check_layer`].
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Finite-difference step.
    pub h: f64,
    /// Check at most this many (randomly chosen) entries per tensor; `None` checks all.
    pub max_entries: Option<usize>,
    /// Seed of the upstream gradient, the entry sample and of [`Module::reseed`] before every
    /// forward pass (so dropout masks stay fixed).
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck { h: H, max_entries: None, seed: 0 }
    }
}

/// Relative errors of one gradient check: input gradient and every trainable parameter.
#[derive(Clone, Debug, Default)]
pub struct GradReport {
    /// Relative error of the input gradient.
    pub input: f64,
    /// Relative error of each trainable parameter's gradient, by path.
    pub params: Vec<(String, f64)>,
}

impl GradReport {
    /// The largest relative error.
    pub fn max_error(&self) -> f64 {
        self.params.iter().map(|p| p.1).fold(self.input, f64::max)
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dx: {:.3e}", self.input)?;
        for (p, e) in &self.params {
            write!(f, ", {p}: {e:.3e}")?;
        }
        Ok(())
    }
}

fn pick(len: usize, max: Option<usize>, rng: &mut StdRng) -> Vec<usize> {
    match max {
        Some(m) if m < len => (0..m).map(|_| rng.random_range(0..len)).collect(),
        _ => (0..len).collect(),
    }
}

fn nudge<L: Module<f64>>(layer: &mut L, tensor: usize, entry: usize, delta: f64) {
    let mut t = 0;
    layer.visit_params_mut(&Path::ROOT, &mut |info, data| {
        if info.kind.trainable() {
            if t == tensor {
                data[entry] += delta;
            }
            t += 1;
        }
    });
}

/// Checks a layer's (or model's) training-mode backward pass against centred differences of
/// `L = Σ y ⊙ dy` for a random upstream gradient `dy`: the input gradient and every trainable
/// parameter's gradient.
///
/// Works on any [`Module`] over `f64`: a layer whose output shape is computed (a convolution, say)
/// is checked on the input's extents without naming its output type.
pub fn check_layer<In: Shape, L: Module<f64>>(layer: &mut L, x: &Tensor<In, f64>, cfg: &GradCheck) -> GradReport {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let out_len = x.batch_size() * out_extents(&L::RULE, In::SAMPLE).numel();
    let mut y = vec![0.0; out_len];
    let mut cache = L::Cache::default();
    layer.reseed(cfg.seed);
    layer.forward_train_raw(Act::of(x), &mut y, &mut cache);
    let dy: Vec<f64> = (0..y.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut dx = vec![0.0; x.len()];
    let mut grads = L::zeros();
    layer.backward_raw(Act::of(x), &y, &dy, &mut cache, Some(&mut dx), &mut grads);

    let objective = |layer: &mut L, x: &Tensor<In, f64>| -> f64 {
        let mut y = vec![0.0; out_len];
        let mut cache = L::Cache::default();
        layer.reseed(cfg.seed);
        layer.forward_train_raw(Act::of(x), &mut y, &mut cache);
        y.iter().zip(&dy).map(|(a, b)| a * b).sum()
    };

    // input gradient
    let mut xp = x.clone();
    let idx = pick(x.len(), cfg.max_entries, &mut rng);
    let (mut num, mut ana) = (Vec::new(), Vec::new());
    for &i in &idx {
        let old = xp.as_slice()[i];
        xp.as_mut_slice()[i] = old + cfg.h;
        let fp = objective(layer, &xp);
        xp.as_mut_slice()[i] = old - cfg.h;
        let fm = objective(layer, &xp);
        xp.as_mut_slice()[i] = old;
        num.push((fp - fm) / (2.0 * cfg.h));
        ana.push(dx[i]);
    }
    let mut report = GradReport { input: rel_error(&num, &ana), params: Vec::new() };

    // parameter gradients
    let mut infos: Vec<(String, usize)> = Vec::new();
    layer.visit_params(&Path::ROOT, &mut |info, data| {
        if info.kind.trainable() {
            infos.push((info.path.to_string(), data.len()));
        }
    });
    let mut analytic: Vec<Vec<f64>> = Vec::new();
    grads.visit_params(&Path::ROOT, &mut |info, data| {
        if info.kind.trainable() {
            analytic.push(data.to_vec());
        }
    });
    for (t, (name, len)) in infos.iter().enumerate() {
        let idx = pick(*len, cfg.max_entries, &mut rng);
        let (mut num, mut ana) = (Vec::new(), Vec::new());
        for &i in &idx {
            nudge(layer, t, i, cfg.h);
            let fp = objective(layer, x);
            nudge(layer, t, i, -2.0 * cfg.h);
            let fm = objective(layer, x);
            nudge(layer, t, i, cfg.h);
            num.push((fp - fm) / (2.0 * cfg.h));
            ana.push(analytic[t][i]);
        }
        report.params.push((name.clone(), rel_error(&num, &ana)));
    }
    report
}
