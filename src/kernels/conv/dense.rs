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
use crate::kernels::{Elem, Strides, gemm};

/// The most entries of `Wd` this path builds (4 MiB in f32).
const MAX_ENTRIES: usize = 1 << 20;

/// Whether the dense path applies: an input plane no larger than the kernel window (`h·w ≤ k·k`,
/// so the dense product multiplies no more pairs than im2col does, and none over padding) and a
/// dense matrix of at most [`MAX_ENTRIES`].
pub(super) fn dense_applies(d: &ConvDims) -> bool {
    let (inputs, outputs) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    d.h * d.w <= d.k * d.k && inputs.checked_mul(outputs).is_some_and(|e| e <= MAX_ENTRIES)
}

/// For every tap of the kernel inside the input and every output column, `visit(tap, at)`: the
/// weight index `f·c·k·k + ky·k + kx` of input channel 0 and the index `col·(c·h·w) + iy·w + ix` of
/// that entry of `Wdᵀ` (column `(f, oy, ox)`, row `(0, iy, ix)`); input channel `ci` adds `ci·k·k`
/// and `ci·h·w` to them (the visitor runs over the channels, a long strided loop).
#[inline(always)]
fn for_each_tap(d: &ConvDims, mut visit: impl FnMut(usize, usize)) {
    let (oh, ow, k, s, pad) = (d.oh(), d.ow(), d.k, d.stride, d.pad);
    let inputs = d.c * d.h * d.w;
    // the kernel offsets `lo..hi` that land inside an input extent `len` from output position `o`
    let span = |o: usize, len: usize| {
        let lo = pad.saturating_sub(o * s);
        let hi = (len + pad).saturating_sub(o * s).min(k);
        (lo, hi.max(lo))
    };
    for fi in 0..d.f {
        for oy in 0..oh {
            let (ky0, ky1) = span(oy, d.h);
            for ox in 0..ow {
                let (kx0, kx1) = span(ox, d.w);
                let col = (fi * oh + oy) * ow + ox;
                for ky in ky0..ky1 {
                    // (iy, ix) = (oy·s + ky − pad, ox·s + kx − pad), inside the input (`ky ≥ ky0`,
                    // `kx ≥ kx0`: no subtraction goes below zero)
                    let row = col * inputs + (oy * s + ky - pad) * d.w;
                    for kx in kx0..kx1 {
                        visit(fi * d.c * k * k + ky * k + kx, row + ox * s + kx - pad);
                    }
                }
            }
        }
    }
}

/// Builds `Wdᵀ` (`f·oh·ow × c·h·w`, row-major: each row the kernel taps one output reads) in `buf`.
fn dense_weights_t<E: Elem>(d: &ConvDims, w: &[E], buf: &mut Vec<E>) {
    let (inputs, outputs) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    buf.clear();
    buf.resize(inputs * outputs, E::zero());
    let (kk, hw) = (d.k * d.k, d.h * d.w);
    for_each_tap(d, |tap, at| {
        for (o, &v) in buf[at..].iter_mut().step_by(hw).zip(w[tap..].iter().step_by(kk)).take(d.c) {
            *o = v;
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
    dense_weights_t(d, w, &mut wdt);
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
    if let Some(dx) = dx {
        let mut wdt = core::mem::take(&mut scratch.wt);
        dense_weights_t(d, w, &mut wdt);
        gemm(d.n, inputs, outputs, dy, rm_out, &wdt, rm_in, dx, rm_in, false);
        scratch.wt = wdt;
    }
    // dWdᵀ (outputs × inputs) = dYᵀ · X, then each tap's entries summed onto it
    let mut dwdt = core::mem::take(&mut scratch.partials);
    dwdt.clear();
    dwdt.resize(inputs * outputs, E::zero());
    gemm(outputs, inputs, d.n, dy, Strides::transposed(outputs), x, rm_in, &mut dwdt, rm_in, false);
    dw.fill(E::zero());
    let (kk, hw) = (d.k * d.k, d.h * d.w);
    for_each_tap(d, |tap, at| {
        for (g, &v) in dw[tap..].iter_mut().step_by(kk).zip(dwdt[at..].iter().step_by(hw)).take(d.c) {
            *g += v;
        }
    });
    scratch.partials = dwdt;
}

/// `Wd`'s entries, checked against a bound before anything is allocated (first: the sizes are
/// valid, then the matrix is not too large).
fn check_size(d: &ConvDims) {
    d.validate();
    let e = (d.c * d.h * d.w).checked_mul(d.f * d.oh() * d.ow());
    assert!(e.is_some_and(|e| e <= 1 << 28), "convolution: a dense matrix of {e:?} entries for {d:?}");
}
