//! Implicit im2col (f32 on AVX2+FMA, stride 1): the GEMM reads the patch rows as windows of
//! zero-padded input planes (`matmul::gemm_indirect_f32`), so no patch matrix is written; the
//! backward pass needs "same" padding.

use super::{ConvDims, ConvScratch, split_backward};
#[cfg(target_arch = "x86_64")]
use crate::kernels::cpu::has_avx2_fma;
use crate::kernels::matmul::{self, as_f32, as_f32_mut};
use crate::kernels::{Elem, Strides, copy_short, split_batch};
use crate::threads::{chunk_count, run_chunks, split_runs};

/// Whether the implicit-im2col forward pass applies: f32 on an AVX2+FMA CPU, stride 1, and output
/// rows of at least 8 (the GEMM computes `ow + k − 1` columns per output row, the extra ones
/// discarded: too many for narrower maps).
fn indirect_applies<E: Elem>(d: &ConvDims) -> bool {
    #[cfg(target_arch = "x86_64")]
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() && has_avx2_fma() {
        return d.stride == 1 && d.ow() >= 8 && d.n > 0 && d.f > 0 && d.c > 0;
    }
    let _ = d;
    false
}

/// Whether the implicit-im2col backward pass applies: as the forward, and "same" padding
/// (`2·pad = k − 1`, so that the padded output gradient has the padded input's geometry), with
/// the dropped columns past the last output row reading on into the bottom padding and the next
/// plane's top padding (zeros), never into values.
pub(super) fn indirect_backward_applies<E: Elem>(d: &ConvDims) -> bool {
    let (pad, wp) = (d.pad, d.w + 2 * d.pad);
    let (plane, nw) = ((d.h + 2 * pad) * wp, (d.h * wp).next_multiple_of(16));
    indirect_applies::<E>(d) && 2 * pad + 1 == d.k && pad > 0 && pad * (wp + 1) + nw <= plane + pad * wp
}

/// The forward pass without a patch matrix: each sample's channels are copied once into
/// zero-padded planes (`hp × wp`), and the GEMM reads row `(c, ky, kx)` of the patch matrix as the
/// window of `oh·wp` values starting at `c·hp·wp + ky·wp + kx` (`gemm_indirect_f32`). Output row
/// `oy` then sits at columns `oy·wp ..` of the product, whose last `k − 1` columns per row (which
/// wrap into the next padded row) are dropped. Returns `false` where it does not apply
/// ([`indirect_applies`]).
pub(super) fn forward_indirect<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) -> bool {
    if !indirect_applies::<E>(d) {
        return false;
    }
    let (oh, ow, k, pad) = (d.oh(), d.ow(), d.k, d.pad);
    let (hp, wp) = (d.h + 2 * pad, d.w + 2 * pad);
    let (plane, q, p) = (hp * wp, oh * ow, d.patch());
    let nw = (oh * wp).next_multiple_of(16);
    // The last window of the last plane runs past it by up to `nw − oh·wp + k − 1` values (read
    // into columns that are dropped): room for them, zeroed.
    let plen = d.c * plane + nw + k * wp;
    let (xs, ys) = (d.c * d.h * d.w, d.f * q);
    let mut offs = core::mem::take(&mut scratch.offs);
    patch_offsets(&mut offs, d.c, k, plane, wp);
    let (x, w) = (as_f32(x), as_f32(w));
    let bias = bias.map(as_f32);
    let run = |buf: &mut [Vec<E>; 4], (lo, _, yc): (usize, usize, &mut [f32])| {
        let [pbuf, ybuf, _, _] = buf;
        pbuf.clear();
        pbuf.resize(plen, E::zero()); // borders zero (the buffer is shared with the backward pass)
        ybuf.resize(d.f * nw, E::zero());
        let (planes, yw) = (as_f32_mut(pbuf), as_f32_mut(ybuf));
        for (s, yn) in yc.chunks_exact_mut(ys).enumerate() {
            pad_planes(planes, &x[(lo + s) * xs..][..xs], (d.h, d.w, pad, wp));
            let done = matmul::gemm_indirect_f32(d.f, nw, p, w, p, planes, &offs, yw, nw);
            assert!(done, "the indirect GEMM runs where indirect_applies");
            for (fi, yf) in yn.chunks_exact_mut(q).enumerate() {
                let b = bias.map_or(0.0, |b| b[fi]);
                for (oy, row) in yf.chunks_exact_mut(ow).enumerate() {
                    for (o, &v) in row.iter_mut().zip(&yw[fi * nw + oy * wp..][..ow]) {
                        *o = v + b;
                    }
                }
            }
        }
    };
    let parts = split_batch(d.n, ys * p).max(1);
    let pieces = split_runs(as_f32_mut(y), d.n, ys, chunk_count(d.n, parts));
    run_chunks(scratch.parts(parts), pieces, run);
    scratch.offs = offs;
    true
}

/// The offsets `ci·plane + ky·wp + kx` of the implicit patch rows, for `channels` planes.
fn patch_offsets(offs: &mut Vec<usize>, channels: usize, k: usize, plane: usize, wp: usize) {
    offs.clear();
    for ci in 0..channels {
        for ky in 0..k {
            offs.extend((0..k).map(|kx| ci * plane + ky * wp + kx));
        }
    }
}

/// Copies the `h × w` planes of `src` into the interiors of the zero-padded `hp × wp` planes of
/// `dst` (border `pad`).
fn pad_planes(dst: &mut [f32], src: &[f32], (h, w, pad, wp): (usize, usize, usize, usize)) {
    let plane = (h + 2 * pad) * wp;
    for (ci, sp) in src.chunks_exact(h * w).enumerate() {
        for (iy, row) in sp.chunks_exact(w).enumerate() {
            copy_short(&mut dst[ci * plane + (iy + pad) * wp + pad..][..w], row);
        }
    }
}

/// The backward pass without patch matrices, where "same" padding (`2·pad = k − 1`, stride 1)
/// gives the zero-padded output gradient `dYp` the input planes' geometry:
/// - `dWᵀ (p × f) += P (p × nw) · dYwᵀ`: the rows of the left factor are the windows of the padded
///   input planes the forward pass reads (`gemm_rows_indirect_f32`), and `dYw` — the output
///   gradient laid out on the padded width, zero in the dropped columns — is `dYp` read from
///   offset `pad·(wp + 1)`;
/// - `dX = W' ⋆ dYp`: a forward pass of the padded output gradient with the weights flipped and
///   transposed (`W'[c, f, ky, kx] = W[f, c, k−1−ky, k−1−kx]`), through `gemm_indirect_f32`.
///
/// Returns `dx` and `db` back (`Err`) where it does not apply.
#[allow(clippy::type_complexity)]
pub(super) fn backward_indirect<'a, 'b, E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    (dx, db): (Option<&'a mut [E]>, Option<&'b mut [E]>),
    scratch: &mut ConvScratch<E>,
) -> Result<(), (Option<&'a mut [E]>, Option<&'b mut [E]>)> {
    if !indirect_backward_applies::<E>(d) {
        return Err((dx, db));
    }
    let (k, pad) = (d.k, d.pad);
    let (hp, wp) = (d.h + 2 * pad, d.w + 2 * pad);
    let plane = hp * wp;
    let nw = (d.h * wp).next_multiple_of(16);
    let (p, pf) = (d.patch(), d.f * k * k);
    let slack = nw + k * wp + wp + 1;
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.h * d.w);
    let mut offs = core::mem::take(&mut scratch.offs);
    patch_offsets(&mut offs, d.c.max(d.f), k, plane, wp);
    let mut wt = core::mem::take(&mut scratch.wt);
    wt.clear();
    if dx.is_some() {
        for ci in 0..d.c {
            for fi in 0..d.f {
                for ky in (0..k).rev() {
                    wt.extend((0..k).rev().map(|kx| w[((fi * d.c + ci) * k + ky) * k + kx]));
                }
            }
        }
    }
    let dy_e = dy; // (the bias gradient sums it as `E`)
    let (x, dy, wt32) = (as_f32(x), as_f32(dy), as_f32(&wt));
    let (offs_ref, geo) = (&offs, (d.h, d.w, pad, wp));
    let run = |lo: usize, n: usize, dxc: Option<&mut [E]>, dwp: &mut [E], buf: &mut [Vec<E>; 4]| {
        let [pbuf, ybuf, _, xbuf] = buf;
        for (b, len) in [(&mut *pbuf, d.c * plane + slack), (&mut *ybuf, d.f * plane + slack)] {
            b.clear();
            b.resize(len, E::zero());
        }
        dwp.fill(E::zero());
        xbuf.resize(d.c * nw, E::zero());
        let (planes, dyp, dwp, dxw) = (as_f32_mut(pbuf), as_f32_mut(ybuf), as_f32_mut(dwp), as_f32_mut(xbuf));
        let mut dxc = dxc.map(as_f32_mut);
        for s in 0..n {
            pad_planes(planes, &x[(lo + s) * xs..][..xs], geo);
            pad_planes(dyp, &dy[(lo + s) * ys..][..ys], geo);
            // dWᵀ row-major (p × f): the tiles store whole rows (transposed once, at the end).
            let (sb, sc) = (Strides { rs: 1, cs: plane }, Strides::row_major(d.f));
            let done = matmul::gemm_rows_indirect_f32(
                p,
                d.f,
                nw,
                planes,
                &offs_ref[..p],
                1,
                &dyp[pad * (wp + 1)..],
                sb,
                dwp,
                sc,
                true,
            );
            assert!(done, "the indirect GEMM runs where indirect_applies");
            if let Some(dxc) = dxc.as_deref_mut() {
                let done = matmul::gemm_indirect_f32(d.c, nw, pf, wt32, pf, dyp, &offs_ref[..pf], dxw, nw);
                assert!(done, "the indirect GEMM runs where indirect_applies");
                for (ci, dxp) in dxc[s * xs..][..xs].chunks_exact_mut(d.h * d.w).enumerate() {
                    for (iy, row) in dxp.chunks_exact_mut(d.w).enumerate() {
                        copy_short(row, &dxw[ci * nw + iy * wp..][..d.w]);
                    }
                }
            }
        }
    };
    let mut partials = core::mem::take(&mut scratch.partials);
    let bufs = scratch.parts(split_batch(d.n, ys * p * 2).max(1));
    split_backward(d, dy_e, (dx, db), (bufs, 1), (&mut partials, d.f * p), run);
    // dW (f × p) = Σ over chunks of dWᵀ (p × f), in chunk order.
    for (fi, dwf) in dw.chunks_exact_mut(p).enumerate() {
        for (i, g) in dwf.iter_mut().enumerate() {
            *g = partials[i * d.f + fi];
        }
    }
    scratch.partials = partials;
    scratch.offs = offs;
    scratch.wt = wt;
    Ok(())
}
