//! Convolutions of small maps as dense products: where the kernel window covers most of the input
//! (the last blocks of a CIFAR VGG: 64 channels of 2×2, a 3×3 kernel with padding 1), the
//! convolution is a linear map from `c·h·w` inputs to `f·oh·ow` outputs whose matrix `Wd` has few
//! zeros, and one GEMM over the batch does it: `Y (n × f·oh·ow) = X (n × c·h·w) · Wd`. Im2col
//! would instead multiply every kernel tap, the ones over padding too, in products of `oh·ow`
//! columns per sample (4 for a 2×2 map), far from the GEMM's best shapes.
//!
//! `Wd[(c, iy, ix), (f, oy, ox)] = w[f, c, iy + pad − oy·s, ix + pad − ox·s]` where that tap is
//! inside the kernel, else 0. The backward pass is two more products: `dX = dY · Wdᵀ` and
//! `dWd = Xᵀ · dY`, folded back onto the kernel's taps.

use super::{ConvDims, ConvScratch, bias_grad};
use crate::kernels::split::split_pass;
use crate::kernels::{Elem, Strides, gemm};
use crate::threads::for_chunks;

/// The most entries of `Wd` this path builds (4 MiB in f32).
const MAX_ENTRIES: usize = 1 << 20;

/// Whether the dense path applies: an input plane no larger than the kernel window (`h·w ≤ k·k`,
/// so the dense product multiplies no more pairs than im2col does, and none over padding) and a
/// dense matrix of at most [`MAX_ENTRIES`].
pub(super) fn dense_applies(d: &ConvDims) -> bool {
    let (inputs, outputs) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    d.h * d.w <= d.k * d.k && inputs.checked_mul(outputs).is_some_and(|e| e <= MAX_ENTRIES)
}

/// Marks an input pixel outside the kernel window of an output position in [`tap_map`].
const NO_TAP: usize = usize::MAX;

/// `map[r·hw + p]`: the kernel tap `ky·k + kx` that output position `r = oy·ow + ox` applies to
/// input pixel `p = iy·w + ix` (`iy = oy·s + ky − pad`, `ix = ox·s + kx − pad`), or [`NO_TAP`]. The
/// same for every channel and filter, so `Wd` is built and folded from it with short contiguous
/// loops (in `map`, the layer's `offs` scratch, grown once).
fn tap_map(d: &ConvDims, map: &mut Vec<usize>) {
    let (ow, hw, k) = (d.ow(), d.h * d.w, d.k);
    let len = d.oh() * ow * hw;
    if map.len() < len {
        map.resize(len, NO_TAP);
    }
    // the kernel offset that puts input index `i` under output position `o`, if inside the kernel
    let tap = |i: usize, o: usize| (i + d.pad).checked_sub(o * d.stride).filter(|&t| t < k);
    for (r, row) in map[..len].chunks_exact_mut(hw).enumerate() {
        let (oy, ox) = (r / ow, r % ow);
        for (p, t) in row.iter_mut().enumerate() {
            *t = match (tap(p / d.w, oy), tap(p % d.w, ox)) {
                (Some(ky), Some(kx)) => ky * k + kx,
                _ => NO_TAP,
            };
        }
    }
}

/// How many parts the per-filter loops over `Wd` (building it, folding its gradient) split into.
fn filter_parts(d: &ConvDims) -> usize {
    split_pass(d.f * d.oh() * d.ow() * d.c * d.h * d.w)
}

/// Builds `Wdᵀ` (`f·oh·ow × c·h·w`, row-major: each row the kernel taps one output reads) in `buf`
/// from the [`tap_map`] `map`, every entry written (no zero fill), split over the filters.
fn dense_weights_t<E: Elem>(d: &ConvDims, w: &[E], buf: &mut Vec<E>, map: &[usize]) {
    let (inputs, q, hw, ck) = (d.c * d.h * d.w, d.oh() * d.ow(), d.h * d.w, d.c * d.k * d.k);
    let len = inputs * d.f * q;
    if buf.len() < len {
        buf.resize(len, E::zero());
    }
    let map = &map[..q * hw];
    for_chunks(&mut buf[..len], q * inputs, filter_parts(d), |at, rows| {
        let f0 = at / (q * inputs);
        for (fi, rows) in rows.chunks_exact_mut(q * inputs).enumerate() {
            let kernels = &w[(f0 + fi) * ck..][..ck];
            for (row, m) in rows.chunks_exact_mut(inputs).zip(map.chunks_exact(hw)) {
                for (seg, kern) in row.chunks_exact_mut(hw).zip(kernels.chunks_exact(d.k * d.k)) {
                    for (o, &t) in seg.iter_mut().zip(m) {
                        *o = if t == NO_TAP { E::zero() } else { kern[t] };
                    }
                }
            }
        }
    });
}

/// `dW` from `dWdᵀ` (`f·oh·ow × c·h·w`): each tap's entries summed onto it over the output
/// positions in order, split over the filters.
fn fold_weight_gradient<E: Elem>(d: &ConvDims, dwdt: &[E], map: &[usize], dw: &mut [E]) {
    let (inputs, q, hw, kk) = (d.c * d.h * d.w, d.oh() * d.ow(), d.h * d.w, d.k * d.k);
    let map = &map[..q * hw];
    for_chunks(dw, d.c * kk, filter_parts(d), |at, dwf| {
        let f0 = at / (d.c * kk);
        for (fi, g) in dwf.chunks_exact_mut(d.c * kk).enumerate() {
            g.fill(E::zero());
            let rows = &dwdt[(f0 + fi) * q * inputs..][..q * inputs];
            for (row, m) in rows.chunks_exact(inputs).zip(map.chunks_exact(hw)) {
                for (gk, seg) in g.chunks_exact_mut(kk).zip(row.chunks_exact(hw)) {
                    for (&t, &v) in m.iter().zip(seg) {
                        if t != NO_TAP {
                            gk[t] += v;
                        }
                    }
                }
            }
        }
    });
}

/// The dense path's forward pass, whatever the sizes ([`forward`](super::forward) takes it where
/// it is the fastest; tests and benchmarks call it directly): `y = x · Wd (+ b[f])`. Panics on inconsistent lengths, and
/// before allocating when `Wd` would have more than 2²⁸ entries.
pub fn forward_dense<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    check_size(d);
    d.check_lens(x.len(), w.len(), y.len());
    super::check_bias(d, bias.map(|b| b.len()));
    let q = d.oh() * d.ow();
    let (inputs, outputs) = (d.c * d.h * d.w, d.f * q);
    let mut wdt = core::mem::take(&mut scratch.wt);
    tap_map(d, &mut scratch.offs);
    dense_weights_t(d, w, &mut wdt, &scratch.offs);
    let ym = &mut y[..d.n * outputs];
    let (rm_in, rm_out) = (Strides::row_major(inputs), Strides::row_major(outputs));
    gemm(d.n, outputs, inputs, x, rm_in, &wdt, Strides::transposed(inputs), ym, rm_out, false);
    if let Some(b) = bias {
        for yn in ym.chunks_exact_mut(outputs) {
            for (yf, &bf) in yn.chunks_exact_mut(q).zip(b) {
                yf.iter_mut().for_each(|v| *v += bf);
            }
        }
    }
    scratch.wt = wdt;
}

/// The dense path's backward pass whatever the sizes (see [`forward_dense`]): `dW` (overwritten),
/// `db` and `dX` when given.
#[allow(clippy::too_many_arguments)]
pub fn backward_dense<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    check_size(d);
    d.check_backward(x.len(), w.len(), dy.len(), dw.len(), db.as_ref().map(|b| b.len()), dx.as_ref().map(|t| t.len()));
    let (inputs, outputs) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    let (rm_in, rm_out) = (Strides::row_major(inputs), Strides::row_major(outputs));
    if let Some(db) = db {
        bias_grad(d, dy, db);
    }
    tap_map(d, &mut scratch.offs);
    if let Some(dx) = dx {
        let mut wdt = core::mem::take(&mut scratch.wt);
        dense_weights_t(d, w, &mut wdt, &scratch.offs);
        gemm(d.n, inputs, outputs, dy, rm_out, &wdt, rm_in, dx, rm_in, false);
        scratch.wt = wdt;
    }
    // dWdᵀ (outputs × inputs) = dYᵀ · X (every entry written), then each tap's entries summed
    let mut dwdt = core::mem::take(&mut scratch.partials);
    if dwdt.len() < inputs * outputs {
        dwdt.resize(inputs * outputs, E::zero());
    }
    gemm(outputs, inputs, d.n, dy, Strides::transposed(outputs), x, rm_in, &mut dwdt, rm_in, false);
    fold_weight_gradient(d, &dwdt, &scratch.offs, dw);
    scratch.partials = dwdt;
}

/// `Wd`'s entries, checked against a bound before anything is allocated (first: the sizes are
/// valid, then the matrix is not too large).
fn check_size(d: &ConvDims) {
    d.validate();
    let e = (d.c * d.h * d.w).checked_mul(d.f * d.oh() * d.ow());
    assert!(e.is_some_and(|e| e <= 1 << 28), "convolution: a dense matrix of {e:?} entries for {d:?}");
}
