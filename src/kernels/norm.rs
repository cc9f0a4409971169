//! Batch-normalisation kernels over a `(N, C, inner)` layout: statistics per channel over `N·inner`
//! (`inner = 1` for features, `H·W` for spatial batch norm).

use super::{Elem, fmadd, multiversion, sq_dev_lanes, sum_lanes};

/// Sizes of a batch-norm call.
#[derive(Clone, Copy, Debug)]
pub struct NormDims {
    /// Batch size.
    pub n: usize,
    /// Channels (features).
    pub c: usize,
    /// Elements per channel per sample (1, or `H·W`).
    pub inner: usize,
}

multiversion! {
    /// Training forward: batch mean and biased variance per channel; `y = γ·x̂ + β` with
    /// `x̂ = (x − μ)/√(σ² + eps)`; running statistics `r = momentum·r + (1 − momentum)·batch`.
    /// Keeps `x̂` and `1/√(σ² + eps)` for the backward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_train<E: Elem>(
        d: NormDims,
        x: &[E],
        gamma: &[E],
        beta: &[E],
        running_mean: &mut [E],
        running_var: &mut [E],
        momentum: E,
        eps: E,
        y: &mut [E],
        xhat: &mut [E],
        inv_std: &mut [E],
    ) => batchnorm_train_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn batchnorm_train_body<E: Elem, const FMA: bool>(
    d: NormDims,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    running_mean: &mut [E],
    running_var: &mut [E],
    momentum: E,
    eps: E,
    y: &mut [E],
    xhat: &mut [E],
    inv_std: &mut [E],
) {
    let NormDims { n, c, inner } = d;
    let count = E::from(n * inner).unwrap_or_else(E::one).max(E::one());
    for ch in 0..c {
        let mut sum = E::zero();
        for s in 0..n {
            let base = (s * c + ch) * inner;
            sum += sum_lanes(&x[base..base + inner]);
        }
        let mean = sum / count;
        let mut sq = E::zero();
        for s in 0..n {
            let base = (s * c + ch) * inner;
            sq += sq_dev_lanes::<E, FMA>(&x[base..base + inner], mean);
        }
        let var = sq / count;
        let is = E::one() / (var + eps).sqrt();
        inv_std[ch] = is;
        let (g, b) = (gamma[ch], beta[ch]);
        for s in 0..n {
            let base = (s * c + ch) * inner;
            for ((yv, hv), &xv) in
                y[base..base + inner].iter_mut().zip(&mut xhat[base..base + inner]).zip(&x[base..base + inner])
            {
                let h = (xv - mean) * is;
                *hv = h;
                *yv = fmadd::<E, FMA>(g, h, b);
            }
        }
        running_mean[ch] = momentum * running_mean[ch] + (E::one() - momentum) * mean;
        running_var[ch] = momentum * running_var[ch] + (E::one() - momentum) * var;
    }
}

/// Inference forward with running statistics: `y = γ·(x − r_μ)/√(r_σ² + eps) + β`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_eval<E: Elem>(
    d: NormDims,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    running_mean: &[E],
    running_var: &[E],
    eps: E,
    y: &mut [E],
) {
    let NormDims { n, c, inner } = d;
    for ch in 0..c {
        let scale = gamma[ch] / (running_var[ch] + eps).sqrt();
        let shift = beta[ch] - running_mean[ch] * scale;
        for s in 0..n {
            let base = (s * c + ch) * inner;
            for i in base..base + inner {
                y[i] = x[i] * scale + shift;
            }
        }
    }
}

multiversion! {
    /// Backward: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/(m·σ) · (m·dy − dβ − x̂·dγ)` with `m = N·inner`.
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_backward<E: Elem>(
        d: NormDims,
        dy: &[E],
        xhat: &[E],
        inv_std: &[E],
        gamma: &[E],
        dgamma: &mut [E],
        dbeta: &mut [E],
        dx: Option<&mut [E]>,
    ) => batchnorm_backward_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn batchnorm_backward_body<E: Elem, const FMA: bool>(
    d: NormDims,
    dy: &[E],
    xhat: &[E],
    inv_std: &[E],
    gamma: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    let NormDims { n, c, inner } = d;
    for ch in 0..c {
        let (mut db, mut dg) = (E::zero(), E::zero());
        for s in 0..n {
            let base = (s * c + ch) * inner;
            db += sum_lanes(&dy[base..base + inner]);
            dg += super::dot::<E, FMA>(&dy[base..base + inner], &xhat[base..base + inner]);
        }
        dbeta[ch] = db;
        dgamma[ch] = dg;
    }
    if let Some(dx) = dx {
        let m = E::from(n * inner).unwrap_or_else(E::one).max(E::one());
        for ch in 0..c {
            let k = gamma[ch] * inv_std[ch] / m;
            let (db, dg) = (dbeta[ch], dgamma[ch]);
            for s in 0..n {
                let base = (s * c + ch) * inner;
                for i in base..base + inner {
                    dx[i] = k * (m * dy[i] - db - xhat[i] * dg);
                }
            }
        }
    }
}
