//! Normalisation kernels: layer norm over each row's features (at the end), and batch norm over a `(N, C, inner)` layout: statistics per channel over `N·inner`
//! (`inner = 1` for features, `H·W` for spatial batch norm).
//!
//! Each pass runs over the samples in memory order, writing one partial per sample and channel;
//! the partials are summed per channel in sample order. With several kernel threads, large calls
//! split the *samples* between them, as the convolutions, ReLU and pooling around a batch norm do,
//! so that each thread reads the values it wrote itself. (The earlier kernels went channel by
//! channel and split the channels: every thread then read half of every sample from the other
//! core, and 4b's convolution gradient after the batch norm ran 50 % slower on two threads than on
//! one; going channel by channel was also slower on one thread, with its 576-value runs 18 KiB
//! apart.) The sums do not depend on how the samples are split: the results do not depend on the
//! thread count.

use super::cpu::{fmadd, sq_dev_lanes, sum_lanes};
use super::{Elem, multiversion};
use crate::threads::{chunk_count, run_chunks_on, split_runs};

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

impl NormDims {
    /// Checks that `x` holds `n·c·inner` values and every per-channel slice `c` (the public entry
    /// points call it before touching a buffer).
    pub fn check_lens(&self, x: usize, per_channel: &[usize]) {
        let len = self.n.checked_mul(self.c).and_then(|v| v.checked_mul(self.inner));
        assert_eq!(len, Some(x), "batch norm: tensor length for {self:?}");
        assert!(
            per_channel.iter().all(|&l| l == self.c),
            "batch norm: per-channel lengths {per_channel:?} for {} channels",
            self.c
        );
    }

    /// Over how many threads a call splits its samples, and into how many chunks (one each when
    /// the call is too small to pay for threads).
    fn split(&self) -> (usize, usize) {
        // per sample, about four passes (of about two multiply-adds each) over its C·inner values
        let parts = super::split_batch(self.n, self.c * self.inner * 8).max(1);
        (parts, chunk_count(self.n, parts))
    }

    /// The number of values per channel, as `E` (at least 1).
    fn count<E: Elem>(&self) -> E {
        E::from(self.n * self.inner).unwrap_or_else(E::one).max(E::one())
    }
}

/// Training forward: batch mean and biased variance per channel; `y = γ·x̂ + β` with
/// `x̂ = (x − μ)/√(σ² + eps)`; running statistics `r = momentum·r + (1 − momentum)·batch`.
/// Keeps `μ` and `1/√(σ² + eps)` per channel for the backward pass, which recomputes `x̂` from `x`
/// (one stream fewer to write than keeping `x̂`).
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
    mean: &mut [E],
    inv_std: &mut [E],
) {
    d.check_lens(x.len(), &[gamma.len(), beta.len(), running_mean.len(), running_var.len(), mean.len(), inv_std.len()]);
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    let NormDims { n, c, inner } = d;
    let len = n * c * inner;
    let (x, y, mean, inv_std) = (&x[..len], &mut y[..len], &mut mean[..c], &mut inv_std[..c]);
    let ((parts, chunks), vals) = (d.split(), c * inner);
    let count = d.count::<E>();
    super::matmul::with_panel::<E, _>(n * c, |partial| {
        let partial = &mut partial[..n * c];
        if inner == 0 {
            partial.fill(E::zero()); // sums over no values (the sample passes write nothing)
        }
        run_chunks_on(parts, split_runs(partial, n, c, chunks), |(lo, m, p)| {
            sample_sums(inner, &x[lo * vals..][..m * vals], p)
        });
        for (ch, mu) in mean.iter_mut().enumerate() {
            *mu = column_sum(partial, c, ch) / count;
        }
        let mean = &*mean;
        run_chunks_on(parts, split_runs(partial, n, c, chunks), |(lo, m, p)| {
            sample_sq_devs(c, inner, &x[lo * vals..][..m * vals], mean, p)
        });
        for ch in 0..c {
            let var = column_sum(partial, c, ch) / count;
            inv_std[ch] = E::one() / (var + eps).sqrt();
            running_mean[ch] = momentum * running_mean[ch] + (E::one() - momentum) * mean[ch];
            running_var[ch] = momentum * running_var[ch] + (E::one() - momentum) * var;
        }
        let inv_std = &*inv_std;
        run_chunks_on(parts, split_runs(y, n, vals, chunks), |(lo, m, ys)| {
            normalize(c, inner, &x[lo * vals..][..m * vals], mean, inv_std, gamma, beta, ys)
        });
    });
}

/// `Σ_s partial[s·c + ch]` over the samples in order (the one-thread loop's order).
fn column_sum<E: Elem>(partial: &[E], c: usize, ch: usize) -> E {
    partial.iter().skip(ch).step_by(c).fold(E::zero(), |s, &v| s + v)
}

multiversion! {
    /// `out[i] = Σ x[i·inner..(i+1)·inner]`: per sample and channel of a `(samples, C, inner)` block.
    fn sample_sums<E: Elem>(inner: usize, x: &[E], out: &mut [E]) => sample_sums_body
}

#[inline(always)]
fn sample_sums_body<E: Elem, const FMA: bool>(inner: usize, x: &[E], out: &mut [E]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(inner.max(1))) {
        *o = sum_lanes(xs);
    }
}

multiversion! {
    /// `out[i] = Σ (x − μ_ch)²` over run `i` of `inner` values (channel `ch = i mod c`).
    fn sample_sq_devs<E: Elem>(c: usize, inner: usize, x: &[E], mean: &[E], out: &mut [E]) => sample_sq_devs_body
}

#[inline(always)]
fn sample_sq_devs_body<E: Elem, const FMA: bool>(c: usize, inner: usize, x: &[E], mean: &[E], out: &mut [E]) {
    for (i, (o, xs)) in out.iter_mut().zip(x.chunks_exact(inner.max(1))).enumerate() {
        *o = sq_dev_lanes::<E, FMA>(xs, mean[i % c]);
    }
}

multiversion! {
    /// `y = γ·(x − μ)·inv_std + β` per channel, on a `(samples, C, inner)` block.
    #[allow(clippy::too_many_arguments)]
    fn normalize<E: Elem>(
        c: usize, inner: usize, x: &[E], mean: &[E], inv_std: &[E], gamma: &[E], beta: &[E], y: &mut [E],
    ) => normalize_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn normalize_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    beta: &[E],
    y: &mut [E],
) {
    for (i, (ys, xs)) in y.chunks_exact_mut(inner.max(1)).zip(x.chunks_exact(inner.max(1))).enumerate() {
        let ch = i % c;
        let (mu, is, g, b) = (mean[ch], inv_std[ch], gamma[ch], beta[ch]);
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            *yv = fmadd::<E, FMA>(g, (xv - mu) * is, b);
        }
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
    d.check_lens(x.len(), &[gamma.len(), beta.len(), running_mean.len(), running_var.len()]);
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    let NormDims { n, c, inner } = d;
    let ((parts, chunks), vals) = (d.split(), c * inner);
    super::matmul::with_panel::<E, _>(2 * c, |panel| {
        let (scale, shift) = panel[..2 * c].split_at_mut(c);
        for ch in 0..c {
            scale[ch] = gamma[ch] / (running_var[ch] + eps).sqrt();
            shift[ch] = beta[ch] - running_mean[ch] * scale[ch];
        }
        let (scale, shift) = (&*scale, &*shift);
        run_chunks_on(parts, split_runs(y, n, vals, chunks), |(lo, _, ys)| {
            let xs = &x[lo * vals..][..ys.len()];
            for (i, (yr, xr)) in ys.chunks_exact_mut(inner.max(1)).zip(xs.chunks_exact(inner.max(1))).enumerate() {
                let (a, b) = (scale[i % c], shift[i % c]);
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = v * a + b;
                }
            }
        });
    });
}

/// Backward: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/(m·σ) · (m·dy − dβ − x̂·dγ)` with `m = N·inner`
/// and `x̂ = (x − μ)·inv_std` recomputed from the forward input `x` and the kept `mean`, `inv_std`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward<E: Elem>(
    d: NormDims,
    dy: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    d.check_lens(x.len(), &[mean.len(), inv_std.len(), gamma.len(), dgamma.len(), dbeta.len()]);
    assert_eq!(dy.len(), x.len(), "batch norm: output gradient length");
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "batch norm: input gradient length");
    let NormDims { n, c, inner } = d;
    let len = n * c * inner;
    let (dy, x, dgamma, dbeta) = (&dy[..len], &x[..len], &mut dgamma[..c], &mut dbeta[..c]);
    let dx = dx.map(|dx| &mut dx[..len]);
    let ((parts, chunks), vals) = (d.split(), c * inner);
    let count = d.count::<E>();
    super::matmul::with_panel::<E, _>(2 * n * c, |partial| {
        let partial = &mut partial[..2 * n * c];
        if inner == 0 {
            partial.fill(E::zero()); // sums over no values (the sample passes write nothing)
        }
        let (pb, pg) = partial.split_at_mut(n * c);
        let pieces = split_runs(pb, n, c, chunks).zip(split_runs(pg, n, c, chunks));
        run_chunks_on(parts, pieces, |((lo, m, b), (_, _, g))| {
            let r = lo * vals..(lo + m) * vals;
            sample_back_sums(c, inner, &dy[r.clone()], &x[r], mean, b, g)
        });
        for ch in 0..c {
            dbeta[ch] = column_sum(pb, c, ch);
            dgamma[ch] = column_sum(pg, c, ch) * inv_std[ch];
        }
        if let Some(dx) = dx {
            let (db, dg) = (&*dbeta, &*dgamma);
            run_chunks_on(parts, split_runs(dx, n, vals, chunks), |(lo, m, o)| {
                let r = lo * vals..(lo + m) * vals;
                sample_dx(c, inner, &dy[r.clone()], &x[r], mean, inv_std, gamma, db, dg, count, o)
            });
        }
    });
}

multiversion! {
    /// Per run `i` of `inner` values (channel `ch = i mod c`): `db[i] = Σ dy`,
    /// `dg[i] = Σ dy·(x − μ_ch)`.
    #[allow(clippy::too_many_arguments)]
    fn sample_back_sums<E: Elem>(
        c: usize, inner: usize, dy: &[E], x: &[E], mean: &[E], db: &mut [E], dg: &mut [E],
    ) => sample_back_sums_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_back_sums_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    dy: &[E],
    x: &[E],
    mean: &[E],
    db: &mut [E],
    dg: &mut [E],
) {
    let runs = dy.chunks_exact(inner.max(1)).zip(x.chunks_exact(inner.max(1)));
    for (i, ((b, g), (dys, xs))) in db.iter_mut().zip(dg.iter_mut()).zip(runs).enumerate() {
        *b = sum_lanes(dys);
        *g = dot_dev::<E, FMA>(dys, xs, mean[i % c]);
    }
}

multiversion! {
    /// `dx = γ·inv_std/m · (m·dy − dβ − (x − μ)·inv_std·dγ)` per channel, on a `(samples, C, inner)`
    /// block.
    #[allow(clippy::too_many_arguments)]
    fn sample_dx<E: Elem>(
        c: usize, inner: usize, dy: &[E], x: &[E], mean: &[E], inv_std: &[E], gamma: &[E],
        dbeta: &[E], dgamma: &[E], m: E, dx: &mut [E],
    ) => sample_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_dx_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    dy: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    dbeta: &[E],
    dgamma: &[E],
    m: E,
    dx: &mut [E],
) {
    let runs = dy.chunks_exact(inner.max(1)).zip(x.chunks_exact(inner.max(1)));
    for (i, (o, (dys, xs))) in dx.chunks_exact_mut(inner.max(1)).zip(runs).enumerate() {
        let ch = i % c;
        let (mu, is, db, dg) = (mean[ch], inv_std[ch], dbeta[ch], dgamma[ch]);
        let k = gamma[ch] * is / m;
        for ((o, &g), &xv) in o.iter_mut().zip(dys).zip(xs) {
            *o = k * (m * g - db - (xv - mu) * is * dg);
        }
    }
}

/// `Σ a·(x − m)`, with eight independent partial sums.
#[inline(always)]
fn dot_dev<E: Elem, const FMA: bool>(a: &[E], x: &[E], m: E) -> E {
    let len = a.len().min(x.len());
    let (a, x) = (&a[..len], &x[..len]);
    let mut lanes = [E::zero(); 8];
    let (ca, cx) = (a.chunks_exact(8), x.chunks_exact(8));
    let mut tail = E::zero();
    for (&u, &v) in ca.remainder().iter().zip(cx.remainder()) {
        tail = fmadd::<E, FMA>(u, v - m, tail);
    }
    for (u, v) in ca.zip(cx) {
        for l in 0..8 {
            lanes[l] = fmadd::<E, FMA>(u[l], v[l] - m, lanes[l]);
        }
    }
    lanes.iter().copied().fold(tail, |s, v| s + v)
}

/// Layer norm over each of `rows` rows of `d` features: `y = γ·x̂ + β` with
/// `x̂ = (x − μ)/√(σ² + eps)`, `μ` and the biased `σ²` of the row. With `stats`, keeps each row's
/// `μ` and `1/√(σ² + eps)` for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<E: Elem>(
    rows: usize,
    d: usize,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    eps: E,
    y: &mut [E],
    stats: Option<(&mut [E], &mut [E])>,
) {
    assert_eq!(Some(x.len()), rows.checked_mul(d), "layer norm: input length for {rows} rows of {d}");
    assert!(y.len() == x.len() && gamma.len() == d && beta.len() == d, "layer norm: output or γ, β lengths");
    assert!(stats.as_ref().is_none_or(|(m, s)| m.len() == rows && s.len() == rows), "layer norm: statistics lengths");
    if d == 0 {
        return;
    }
    match stats {
        Some((mean, inv_std)) => layernorm_rows(d, x, gamma, beta, eps, y, mean, inv_std),
        None => {
            for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
                let (mut m, mut s) = ([E::zero()], [E::zero()]);
                layernorm_rows(d, xr, gamma, beta, eps, yr, &mut m, &mut s);
            }
        }
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_rows<E: Elem>(
        d: usize, x: &[E], gamma: &[E], beta: &[E], eps: E, y: &mut [E], mean: &mut [E], inv_std: &mut [E],
    ) => layernorm_rows_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_rows_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    eps: E,
    y: &mut [E],
    mean: &mut [E],
    inv_std: &mut [E],
) {
    let count = E::lit(d as f64);
    let rows = x.chunks_exact(d).zip(y.chunks_exact_mut(d));
    for ((xr, yr), (mu, is)) in rows.zip(mean.iter_mut().zip(inv_std.iter_mut())) {
        let m = sum_lanes(xr) / count;
        let s = E::one() / (sq_dev_lanes::<E, FMA>(xr, m) / count + eps).sqrt();
        for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
            *o = fmadd::<E, FMA>(g, (v - m) * s, b);
        }
        (*mu, *is) = (m, s);
    }
}

/// Backward of [`layernorm_forward`] from the kept row statistics: `dβ = Σ_rows dy`,
/// `dγ = Σ_rows dy·x̂` (overwritten), and per row, with `g = γ·dy`,
/// `dx = inv_std/d · (d·g − Σ g − x̂·Σ g·x̂)`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<E: Elem>(
    rows: usize,
    d: usize,
    x: &[E],
    dy: &[E],
    gamma: &[E],
    mean: &[E],
    inv_std: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    assert_eq!(Some(x.len()), rows.checked_mul(d), "layer norm: input length for {rows} rows of {d}");
    assert!(dy.len() == x.len() && dx.as_ref().is_none_or(|t| t.len() == x.len()), "layer norm: gradient lengths");
    assert!(gamma.len() == d && dgamma.len() == d && dbeta.len() == d, "layer norm: γ, β lengths");
    assert!(mean.len() == rows && inv_std.len() == rows, "layer norm: backward without a training forward pass");
    dgamma.fill(E::zero());
    dbeta.fill(E::zero());
    if d == 0 {
        return;
    }
    layernorm_param_grads(d, x, dy, mean, inv_std, dgamma, dbeta);
    if let Some(dx) = dx {
        layernorm_dx(d, x, dy, gamma, mean, inv_std, dx);
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_param_grads<E: Elem>(
        d: usize, x: &[E], dy: &[E], mean: &[E], inv_std: &[E], dgamma: &mut [E], dbeta: &mut [E],
    ) => layernorm_param_grads_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_param_grads_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    dy: &[E],
    mean: &[E],
    inv_std: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
) {
    for ((xr, gr), (&m, &s)) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(mean.iter().zip(inv_std)) {
        for (((dg, db), &v), &g) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(xr).zip(gr) {
            *dg = fmadd::<E, FMA>(g, (v - m) * s, *dg);
            *db += g;
        }
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_dx<E: Elem>(
        d: usize, x: &[E], dy: &[E], gamma: &[E], mean: &[E], inv_std: &[E], dx: &mut [E],
    ) => layernorm_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_dx_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    dy: &[E],
    gamma: &[E],
    mean: &[E],
    inv_std: &[E],
    dx: &mut [E],
) {
    let count = E::lit(d as f64);
    let rows = x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
    for (((xr, gr), o), (&m, &s)) in rows.zip(mean.iter().zip(inv_std)) {
        // Σ g and Σ g·x̂ with g = γ·dy, in eight independent partial sums (one chain of adds
        // would wait on itself)
        let (mut lg, mut lgx) = ([E::zero(); 8], [E::zero(); 8]);
        let (cx, cg, cy) = (xr.chunks_exact(8), gamma.chunks_exact(8), gr.chunks_exact(8));
        let (mut sg, mut sgx) = (E::zero(), E::zero());
        for ((&v, &dyv), &ga) in cx.remainder().iter().zip(cy.remainder()).zip(cg.remainder()) {
            sg += ga * dyv;
            sgx = fmadd::<E, FMA>(ga * dyv, (v - m) * s, sgx);
        }
        for ((xc, yc), gc) in cx.zip(cy).zip(cg) {
            for l in 0..8 {
                let g = gc[l] * yc[l];
                lg[l] += g;
                lgx[l] = fmadd::<E, FMA>(g, (xc[l] - m) * s, lgx[l]);
            }
        }
        let sg = lg.iter().copied().fold(sg, |a, v| a + v);
        let sgx = lgx.iter().copied().fold(sgx, |a, v| a + v);
        let k = s / count;
        for (((o, &v), &dyv), &ga) in o.iter_mut().zip(xr).zip(gr).zip(gamma) {
            let xh = (v - m) * s;
            *o = k * (count * ga * dyv - sg - xh * sgx);
        }
    }
}
