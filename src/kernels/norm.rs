//! Batch-norm kernels (layer norm is in `layernorm.rs`, re-exported here) over a `(N, C, inner)` layout: statistics per channel over `N·inner`
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
//!
//! In a training step run in parts, one per thread (`threads::group`), each part calls these
//! kernels on its own samples; the per-sample partials of every part are then summed in part
//! order, which is sample order (`batch_sums`), so every part gets the whole batch's statistics
//! and backward sums, the same bits as a whole step, and divides by the whole batch's count. Only
//! the last part (the one holding the trained model's gradients) writes `dγ` and `dβ`: the others
//! write zeros, so the step's sum of the parts' gradients is the batch's.

use super::cpu::{fmadd, sq_dev_lanes, sum_lanes};
pub use super::layernorm::{layernorm_backward, layernorm_forward};
use super::norm_pool::{Pooled, pooled_back_sums_into, pooled_dx};
pub use super::norm_pool::{batchnorm_relu_pool_backward, batchnorm_relu_pool_train};
use super::pool::{PoolDims, max_forward_one};
use super::{Elem, multiversion};
use crate::threads::group::member;
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

    /// The number of values per channel in the whole batch (every part's, in a step in parts),
    /// as `E` (at least 1).
    fn count<E: Elem>(&self) -> E {
        let n = match member() {
            Some(m) => {
                assert_eq!(m.n(), self.n, "batch norm in a step in parts: {} samples in a part of {}", self.n, m.n());
                m.total()
            }
            None => self.n,
        };
        E::from(n * self.inner).unwrap_or_else(E::one).max(E::one())
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
    let stats = (running_mean, running_var, mean, inv_std);
    bn_train(d, x, (gamma, beta), stats, (momentum, eps), y, false, None)
}

/// [`batchnorm_train`] followed by ReLU, fused: `y = max(γ·x̂ + β, 0)` in the pass that writes
/// `y` (the same operations as the two layers, in the same order: the same bits), saving ReLU's
/// read and write of the activation.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_train<E: Elem>(
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
    let stats = (running_mean, running_var, mean, inv_std);
    bn_train(d, x, (gamma, beta), stats, (momentum, eps), y, true, None)
}

/// Running mean and variance, batch mean and inverse deviation.
type BnStats<'a, E> = (&'a mut [E], &'a mut [E], &'a mut [E], &'a mut [E]);

/// A max pooling fused after the normalisation: its sizes, output and argmax.
type PoolAfter<'a, E> = Option<(&'a PoolDims, &'a mut [E], &'a mut [u32])>;

#[allow(clippy::too_many_arguments)]
pub(super) fn bn_train<E: Elem>(
    d: NormDims,
    x: &[E],
    (gamma, beta): (&[E], &[E]),
    (running_mean, running_var, mean, inv_std): BnStats<'_, E>,
    (momentum, eps): (E, E),
    y: &mut [E],
    relu: bool,
    pool: PoolAfter<'_, E>,
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
        batch_sums([partial, &[]], [mean, &mut []]);
        mean.iter_mut().for_each(|mu| *mu = *mu / count);
        let mean = &*mean;
        run_chunks_on(parts, split_runs(partial, n, c, chunks), |(lo, m, p)| {
            sample_sq_devs(c, inner, &x[lo * vals..][..m * vals], mean, p)
        });
        batch_sums([partial, &[]], [inv_std, &mut []]); // Σ (x − μ)², then the inverse deviation
        for ch in 0..c {
            let var = inv_std[ch] / count;
            inv_std[ch] = E::one() / (var + eps).sqrt();
            running_mean[ch] = momentum * running_mean[ch] + (E::one() - momentum) * mean[ch];
            running_var[ch] = momentum * running_var[ch] + (E::one() - momentum) * var;
        }
        let inv_std = &*inv_std;
        let Some((pd, py, argmax)) = pool else {
            run_chunks_on(parts, split_runs(y, n, vals, chunks), |(lo, m, ys)| {
                normalize(c, inner, &x[lo * vals..][..m * vals], (mean, inv_std), (gamma, beta), ys, relu)
            });
            return;
        };
        // Sample by sample: normalise, then pool what was written (the same values and comparisons
        // as two passes over the batch), one sample behind, so that the pooling's loads find
        // values whose stores have retired.
        let (pdc, q) = (PoolDims { planes: c, ..*pd }, c * pd.oh() * pd.ow());
        let pieces =
            split_runs(y, n, vals, chunks).zip(split_runs(py, n, q, chunks)).zip(split_runs(argmax, n, q, chunks));
        // Only the chunk's first two samples of `y` are written, in turn (the backward pass
        // recomputes ReLU's mask from `x`, so the batch norm's output is not kept).
        run_chunks_on(parts, pieces, |(((lo, m, ys), (_, _, pys)), (_, _, pas))| {
            let norm = |s: usize, ys: &mut [E]| {
                let (xs, ys) = (&x[(lo + s) * vals..][..vals], &mut ys[(s % 2) * vals..][..vals]);
                normalize(c, inner, xs, (mean, inv_std), (gamma, beta), ys, relu)
            };
            if m > 0 {
                norm(0, ys);
            }
            for s in 0..m {
                if s + 1 < m {
                    norm(s + 1, ys);
                }
                max_forward_one(
                    &pdc,
                    &ys[(s % 2) * vals..][..vals],
                    &mut pys[s * q..][..q],
                    Some(&mut pas[s * q..][..q]),
                    false,
                );
            }
        });
    });
}

/// `outs[k][ch] = Σ_s partials[k][s·c + ch]` (`c = outs[k].len()`) over the samples in order
/// (the one-thread loop's order), a row at a time; in a step in parts, over every part's rows in
/// part order (see the module docs).
fn batch_sums<E: Elem>(partials: [&[E]; 2], mut outs: [&mut [E]; 2]) {
    let add = |outs: &mut [&mut [E]; 2], rows: [&[E]; 2]| {
        for (out, rows) in outs.iter_mut().zip(rows) {
            for row in rows.chunks_exact(out.len().max(1)) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
        }
    };
    outs.iter_mut().for_each(|o| o.fill(E::zero()));
    match member() {
        None => add(&mut outs, partials),
        Some(m) => m.exchange(partials, |get| (0..m.parts()).for_each(|p| add(&mut outs, get(p)))),
    }
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
    /// `y = γ·(x − μ)·inv_std + β` per channel, on a `(samples, C, inner)` block; with `relu`,
    /// `y = max(that, 0)` (ReLU's exact select).
    fn normalize<E: Elem>(
        c: usize, inner: usize, x: &[E], stats: (&[E], &[E]), affine: (&[E], &[E]), y: &mut [E], relu: bool,
    ) => normalize_body
}

#[inline(always)]
fn normalize_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    x: &[E],
    (mean, inv_std): (&[E], &[E]),
    (gamma, beta): (&[E], &[E]),
    y: &mut [E],
    relu: bool,
) {
    for (i, (ys, xs)) in y.chunks_exact_mut(inner.max(1)).zip(x.chunks_exact(inner.max(1))).enumerate() {
        let ch = i % c;
        let (mu, is, g, b) = (mean[ch], inv_std[ch], gamma[ch], beta[ch]);
        if relu {
            for (yv, &xv) in ys.iter_mut().zip(xs) {
                let v = fmadd::<E, FMA>(g, (xv - mu) * is, b);
                *yv = if v <= E::zero() { E::zero() } else { v }; // (a NaN passes)
            }
        } else {
            for (yv, &xv) in ys.iter_mut().zip(xs) {
                *yv = fmadd::<E, FMA>(g, (xv - mu) * is, b);
            }
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
    bn_eval(d, x, (gamma, beta), (running_mean, running_var), eps, y, false)
}

/// [`batchnorm_eval`] followed by ReLU, fused (same bits as the two layers).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_eval<E: Elem>(
    d: NormDims,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    running_mean: &[E],
    running_var: &[E],
    eps: E,
    y: &mut [E],
) {
    bn_eval(d, x, (gamma, beta), (running_mean, running_var), eps, y, true)
}

fn bn_eval<E: Elem>(
    d: NormDims,
    x: &[E],
    (gamma, beta): (&[E], &[E]),
    (running_mean, running_var): (&[E], &[E]),
    eps: E,
    y: &mut [E],
    relu: bool,
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
                    let t = v * a + b;
                    *o = if relu && t <= E::zero() { E::zero() } else { t }; // (a NaN passes)
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
    bn_backward(d, Dy::Dense(dy, None), None, x, (mean, inv_std), gamma, (dgamma, dbeta), dx)
}

/// The backward pass of [`batchnorm_relu_train`]: [`batchnorm_backward`] of ReLU's input
/// gradient `g = dy` where `y > 0`, else 0 (`y` the fused output), computed where each pass reads
/// `dy` instead of written and read again (the same values and sums: the same bits as the two
/// layers' passes).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_backward<E: Elem>(
    d: NormDims,
    dy: &[E],
    y: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    bn_backward(d, Dy::Dense(dy, Some(y)), None, x, (mean, inv_std), gamma, (dgamma, dbeta), dx)
}

/// ReLU's backward select: `dy` where the output `y` is positive, else 0.
#[inline(always)]
pub(super) fn relu_grad<E: Elem>(dy: E, y: E) -> E {
    if y > E::zero() { dy } else { E::zero() }
}

/// Where a backward pass reads its output gradient.
#[derive(Clone, Copy)]
pub(super) enum Dy<'a, E> {
    /// `dy`; with ReLU, also the fused output `y` (ReLU's mask).
    Dense(&'a [E], Option<&'a [E]>),
    /// A following max pooling's gradient, scattered plane by plane into `dr` by the first pass
    /// and read back by the second, with ReLU's select made on a mask recomputed from `x`.
    Pooled(Pooled<'a, E>),
}

/// With a pooled source, the first pass scatters the gradient plane by plane into `dr` (sized like
/// `x`), where the second reads it.
#[allow(clippy::too_many_arguments)]
pub(super) fn bn_backward<E: Elem>(
    d: NormDims,
    src: Dy<'_, E>,
    dr: Option<&mut [E]>,
    x: &[E],
    (mean, inv_std): (&[E], &[E]),
    gamma: &[E],
    (dgamma, dbeta): (&mut [E], &mut [E]),
    dx: Option<&mut [E]>,
) {
    d.check_lens(x.len(), &[mean.len(), inv_std.len(), gamma.len(), dgamma.len(), dbeta.len()]);
    if let Dy::Dense(dy, mask) = src {
        assert_eq!(dy.len(), x.len(), "batch norm: output gradient length");
        assert!(mask.is_none_or(|y| y.len() == x.len()), "batch norm: output length");
    }
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "batch norm: input gradient length");
    let NormDims { n, c, inner } = d;
    let len = n * c * inner;
    let (x, dgamma, dbeta) = (&x[..len], &mut dgamma[..c], &mut dbeta[..c]);
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
        let (dy, mask) = match (src, dr) {
            (Dy::Dense(dy, mask), _) => {
                run_chunks_on(parts, pieces, |((lo, m, b), (_, _, g))| {
                    let r = lo * vals..(lo + m) * vals;
                    let m = mask.map(|y| &y[r.clone()]);
                    sample_back_sums(c, inner, (&dy[r.clone()], m), &x[r], mean, b, g)
                });
                (dy, mask)
            }
            (Dy::Pooled(p), Some(dr)) => {
                // Each chunk scatters its planes into its part of `dr` as it sums them, and reads
                // them back for the input gradient below.
                let dr = &mut dr[..len];
                let pieces = pieces.zip(split_runs(dr, n, vals, chunks));
                run_chunks_on(parts, pieces, |(((lo, m, b), (_, _, g)), (_, _, o))| {
                    let r = lo * vals..(lo + m) * vals;
                    pooled_back_sums_into(c, inner, p.samples(lo, m), &x[r], (mean, inv_std), b, g, o)
                });
                batch_sums([pb, pg], [dbeta, dgamma]);
                dgamma.iter_mut().zip(inv_std).for_each(|(g, &s)| *g = *g * s);
                if let Some(dx) = dx {
                    let (db, dg) = (&*dbeta, &*dgamma);
                    let pieces = split_runs(dx, n, vals, chunks).zip(split_runs(dr, n, vals, chunks));
                    run_chunks_on(parts, pieces, |((lo, m, o), (_, _, g))| {
                        let r = lo * vals..(lo + m) * vals;
                        let stats = (mean, inv_std, gamma, p.beta(), db, dg, count);
                        pooled_dx(c, inner, &x[r], stats, g, o)
                    });
                }
                return;
            }
            (Dy::Pooled(_), None) => unreachable!("batch norm: a pooled gradient without its buffer"),
        };
        batch_sums([pb, pg], [dbeta, dgamma]);
        dgamma.iter_mut().zip(inv_std).for_each(|(g, &s)| *g = *g * s);
        if let Some(dx) = dx {
            let (db, dg) = (&*dbeta, &*dgamma);
            run_chunks_on(parts, split_runs(dx, n, vals, chunks), |(lo, m, o)| {
                let r = lo * vals..(lo + m) * vals;
                let g = (&dy[r.clone()], mask.map(|y| &y[r.clone()]));
                sample_dx(c, inner, g, &x[r], mean, inv_std, gamma, db, dg, count, o)
            });
        }
    });
    // In a step in parts, the batch's dγ and dβ are the last part's (see the module docs).
    if member().is_some_and(|m| m.index() + 1 != m.parts()) {
        dgamma.fill(E::zero());
        dbeta.fill(E::zero());
    }
}

multiversion! {
    /// Per run `i` of `inner` values (channel `ch = i mod c`): `db[i] = Σ g`,
    /// `dg[i] = Σ g·(x − μ_ch)`, with `g = dy`, or with a mask `y`, `g = relu_grad(dy, y)`.
    #[allow(clippy::too_many_arguments)]
    fn sample_back_sums<E: Elem>(
        c: usize, inner: usize, dy: (&[E], Option<&[E]>), x: &[E], mean: &[E], db: &mut [E], dg: &mut [E],
    ) => sample_back_sums_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_back_sums_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    (dy, mask): (&[E], Option<&[E]>),
    x: &[E],
    mean: &[E],
    db: &mut [E],
    dg: &mut [E],
) {
    let runs = dy.chunks_exact(inner.max(1)).zip(x.chunks_exact(inner.max(1)));
    let Some(y) = mask else {
        for (i, ((b, g), (dys, xs))) in db.iter_mut().zip(dg.iter_mut()).zip(runs).enumerate() {
            *b = sum_lanes(dys);
            *g = dot_dev::<E, FMA>(dys, xs, mean[i % c]);
        }
        return;
    };
    let runs = runs.zip(y.chunks_exact(inner.max(1)));
    for (i, ((b, g), ((dys, xs), ys))) in db.iter_mut().zip(dg.iter_mut()).zip(runs).enumerate() {
        (*b, *g) = masked_sums::<E, FMA>(dys, ys, xs, mean[i % c]);
    }
}

/// `(Σ g, Σ g·(x − m))` with `g = relu_grad(dy, y)`: [`sum_lanes`] and [`dot_dev`] of `g`, the
/// same eight partial sums folded the same way.
#[inline(always)]
fn masked_sums<E: Elem, const FMA: bool>(dy: &[E], y: &[E], x: &[E], m: E) -> (E, E) {
    let len = dy.len().min(y.len()).min(x.len());
    let (dy, y, x) = (&dy[..len], &y[..len], &x[..len]);
    let (mut sl, mut dl) = ([E::zero(); 8], [E::zero(); 8]);
    let (cd, cy, cx) = (dy.chunks_exact(8), y.chunks_exact(8), x.chunks_exact(8));
    let (rd, ry, rx) = (cd.remainder(), cy.remainder(), cx.remainder());
    for ((d, yv), xv) in cd.zip(cy).zip(cx) {
        for l in 0..8 {
            let g = relu_grad(d[l], yv[l]);
            sl[l] += g;
            dl[l] = fmadd::<E, FMA>(g, xv[l] - m, dl[l]);
        }
    }
    let st: E = rd.iter().zip(ry).map(|(&d, &yv)| relu_grad(d, yv)).sum();
    let mut dt = E::zero();
    for ((&d, &yv), &xv) in rd.iter().zip(ry).zip(rx) {
        dt = fmadd::<E, FMA>(relu_grad(d, yv), xv - m, dt);
    }
    (sl.iter().copied().fold(st, |s, v| s + v), dl.iter().copied().fold(dt, |s, v| s + v))
}

multiversion! {
    /// `dx = γ·inv_std/m · (m·dy − dβ − (x − μ)·inv_std·dγ)` per channel, on a `(samples, C, inner)`
    /// block.
    #[allow(clippy::too_many_arguments)]
    fn sample_dx<E: Elem>(
        c: usize, inner: usize, dy: (&[E], Option<&[E]>), x: &[E], mean: &[E], inv_std: &[E], gamma: &[E],
        dbeta: &[E], dgamma: &[E], m: E, dx: &mut [E],
    ) => sample_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sample_dx_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    (dy, mask): (&[E], Option<&[E]>),
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
        match mask {
            None => {
                for ((o, &g), &xv) in o.iter_mut().zip(dys).zip(xs) {
                    *o = k * (m * g - db - (xv - mu) * is * dg);
                }
            }
            Some(y) => {
                let ys = &y[i * inner.max(1)..][..dys.len()];
                for (((o, &d), &xv), &yv) in o.iter_mut().zip(dys).zip(xs).zip(ys) {
                    *o = k * (m * relu_grad(d, yv) - db - (xv - mu) * is * dg);
                }
            }
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
