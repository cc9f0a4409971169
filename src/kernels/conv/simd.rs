//! Register-blocked stride-1 convolution for f32, one definition generic over the SIMD width
//! ([`Simd`]: AVX2 or AVX-512, as [`isa`] says): the forward pass keeps up to `MR` filters × `2L`
//! positions in registers over every input channel and kernel offset, the weight gradient shares
//! each input load between up to `MR` filters, so neither is bound by loads and stores as the
//! full-width `axpy` form is. The weight gradient keeps 16 partial sums per weight at both widths
//! (two AVX2 registers or one AVX-512 register per filter), so both give the same bits.

use super::ConvDims;
use crate::kernels::copy_short;
use crate::kernels::simd::{Avx2, Avx512, Isa, Simd, isa};

/// Partial sums per weight in the weight gradient (whatever the width).
const PS: usize = 16;
/// Floats of slack in the scratch buffers, to start their first part on a 64-byte boundary.
const ALIGN: usize = 16;
/// The widest forward tile's positions (`2L` on AVX-512): the padding the buffers leave for it.
const P_MAX: usize = 32;

fn round16(n: usize) -> usize {
    n.div_ceil(PS) * PS
}

/// Copies input plane `(ni, ci)` into `buf` with `pad` zeros around and a zero tail, so that the
/// kernels may read whole registers past the last output position.
/// (Rows go through `copy_short`: a `memcpy` call per row of 28 floats was 2.5 % of 4a's step;
/// an unpadded plane is one copy.)
#[inline(always)]
fn padded(d: &ConvDims, x: &[f32], ni: usize, ci: usize, buf: &mut [f32]) {
    let wp = d.w + 2 * d.pad;
    let src = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
    if d.pad == 0 {
        buf[..src.len()].copy_from_slice(src);
        buf[src.len()..].fill(0.0);
        return;
    }
    buf.fill(0.0);
    for r in 0..d.h {
        copy_short(&mut buf[(r + d.pad) * wp + d.pad..][..d.w], &src[r * d.w..][..d.w]);
    }
}

/// Length of the padded input buffer: the plane, plus what the last register can overrun.
fn xbuf_len(d: &ConvDims) -> usize {
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    hp * wp + 2 * P_MAX + d.k
}

/// The most scratch [`forward_f32`] resizes to for `d`, at any width (so that a caller can size
/// every thread's buffer up front: a thread that takes no chunk in the first steps must not grow
/// its buffer in a later one).
pub(super) fn forward_scratch_len(d: &ConvDims) -> usize {
    let len = (d.oh() - 1) * (d.w + 2 * d.pad) + d.ow();
    d.f * len.div_ceil(P_MAX) * P_MAX + d.c * (xbuf_len(d) + 2 * P_MAX) + ALIGN
}

/// The scratch [`weight_grad_f32`] resizes to for `d` (see [`forward_scratch_len`]).
pub(super) fn weight_grad_scratch_len(d: &ConvDims) -> usize {
    d.f * round16(d.oh() * (d.w + 2 * d.pad)) + d.c * xbuf_len(d) + d.f * d.c * d.k * d.k * PS + ALIGN
}

/// Forward pass: all input planes of a sample are padded once, then tiles of up to `MR` filters ×
/// `2L` positions (of the full-width output, `oh × wp`, whose wrap-around columns are dropped)
/// accumulate over every input channel and kernel offset in registers: per step two input
/// loads and one weight broadcast per filter feed `2·MR` FMAs, as in the GEMM micro-kernel.
///
/// # Safety
/// The CPU must support AVX2 and FMA (the caller checked; AVX-512 is used where [`isa`] says).
pub(super) unsafe fn forward_f32(
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(s: Avx2, d: &ConvDims, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], t: &mut Vec<f32>) {
        forward::<Avx2>(s, d, x, w, b, y, t)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn avx512(
        s: Avx512,
        d: &ConvDims,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
        t: &mut Vec<f32>,
    ) {
        forward::<Avx512>(s, d, x, w, b, y, t)
    }
    match isa() {
        // SAFETY: the token proves the features.
        Isa::Avx512 => unsafe { avx512(Avx512::try_new().expect("chosen ISA"), d, x, w, bias, y, scratch) },
        // SAFETY: as above.
        _ => unsafe { avx2(Avx2::try_new().expect("the caller checked AVX2"), d, x, w, bias, y, scratch) },
    }
}

/// [`forward_f32`] at width `S` (inlined into its `#[target_feature]` copies).
#[inline(always)]
fn forward<S: Simd>(
    s: S,
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    let (oh, ow) = (d.oh(), d.ow());
    let wp = d.w + 2 * d.pad;
    let len = (oh - 1) * wp + ow;
    let p = 2 * S::LANES;
    let ys = len.div_ceil(p) * p;
    // each padded plane, plus what the last tile can read past it
    let xl = xbuf_len(d) + 2 * P_MAX;
    scratch.resize(d.f * ys + d.c * xl + ALIGN, 0.0);
    let at = scratch.as_ptr().align_offset(4 * ALIGN).min(ALIGN);
    let (yfull, xbuf) = scratch[at..].split_at_mut(d.f * ys);
    for ni in 0..d.n {
        for ci in 0..d.c {
            padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
        }
        let mut f0 = 0;
        while f0 < d.f {
            let g = (d.f - f0).min(S::MR);
            let a = (d, f0, len, xl, &*xbuf, w, bias, &mut *yfull, ys);
            // SAFETY: the token's features (this is inlined into their function); `fw_tile`
            // asserts its bounds.
            unsafe {
                match g {
                    8 if S::MR >= 8 => fw_tile::<S, 8>(s, a),
                    7 if S::MR >= 7 => fw_tile::<S, 7>(s, a),
                    1 => fw_tile::<S, 1>(s, a),
                    2 => fw_tile::<S, 2>(s, a),
                    3 => fw_tile::<S, 3>(s, a),
                    4 => fw_tile::<S, 4>(s, a),
                    5 => fw_tile::<S, 5>(s, a),
                    _ => fw_tile::<S, 6>(s, a),
                }
            }
            f0 += g;
        }
        for fi in 0..d.f {
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                copy_short(&mut yp[oy * ow..][..ow], &yfull[fi * ys + oy * wp..][..ow]);
            }
        }
    }
}

/// The arguments of [`fw_tile`]: dims, first filter, positions, padded plane length, padded
/// planes, weights, bias, full-width output and its plane stride.
type FwArgs<'a> = (&'a ConvDims, usize, usize, usize, &'a [f32], &'a [f32], Option<&'a [f32]>, &'a mut [f32], usize);

/// Filters `f0..f0+G` over every input channel: `G × 2L` accumulators per tile of positions.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
unsafe fn fw_tile<S: Simd, const G: usize>(s: S, (d, f0, len, xl, xbuf, w, bias, yfull, ys): FwArgs) {
    let (k, wp, l) = (d.k, d.w + 2 * d.pad, S::LANES);
    let kk = k * k;
    let wrow: [usize; G] = core::array::from_fn(|g| (f0 + g) * d.c * kk);
    assert!(wrow[G - 1] + d.c * kk <= w.len() && (f0 + G) * ys <= yfull.len());
    // the last tile starts below `ys` and reads 2L values at offsets up to (k−1)·(wp+1)
    assert!(k >= 1 && ys + (k - 1) * (wp + 1) <= xl && d.c * xl <= xbuf.len() && ys % (2 * l) == 0);
    let b: [f32; G] = core::array::from_fn(|g| bias.map_or(0.0, |b| b[f0 + g]));
    let (xp, yp) = (xbuf.as_ptr(), yfull.as_mut_ptr());
    // SAFETY: the asserts above bound every offset below.
    unsafe {
        let mut pos = 0;
        while pos < len {
            let mut acc: [[S::V; 2]; G] = core::array::from_fn(|g| [s.splat(b[g]); 2]);
            for ci in 0..d.c {
                let xc = xp.add(ci * xl + pos);
                let wc = w.as_ptr().add(ci * kk);
                for ky in 0..k {
                    for kx in 0..k {
                        let off = ky * wp + kx;
                        let (x0, x1) = (s.load(xc.add(off)), s.load(xc.add(off + l)));
                        let t = ky * k + kx;
                        for g in 0..G {
                            let wv = s.splat(*wc.add(wrow[g] + t));
                            acc[g][0] = s.fmadd(wv, x0, acc[g][0]);
                            acc[g][1] = s.fmadd(wv, x1, acc[g][1]);
                        }
                    }
                }
            }
            for (g, a) in acc.iter().enumerate() {
                let o = yp.add((f0 + g) * ys + pos);
                s.store(o, a[0]);
                s.store(o.add(l), a[1]);
            }
            pos += 2 * l;
        }
    }
}

/// Weight gradient only (no input gradient): `acc[((f·c + ci)·k·k + ky·k + kx)·ow] += dW`.
///
/// Both widths keep 16 partial sums per weight (two AVX2 registers or one AVX-512 register per
/// filter), so they give the same bits. On this project's Zen 4 the AVX-512 instance took 45 %
/// longer than the AVX2 one while dY's rows were left unaligned (its 64-byte loads then always
/// straddled a cache line); with the rows on 64-byte boundaries it is 3–4 % faster (4a 0.971, 4b
/// 0.956, paired).
///
/// # Safety
/// The CPU must support AVX2 and FMA (the caller checked; AVX-512 is used where [`isa`] says).
pub(super) unsafe fn weight_grad_f32(d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(s: Avx2, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], t: &mut Vec<f32>) {
        weight_grad::<Avx2>(s, d, x, dy, acc, t)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn avx512(s: Avx512, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], t: &mut Vec<f32>) {
        weight_grad::<Avx512>(s, d, x, dy, acc, t)
    }
    match isa() {
        // SAFETY: the token proves the features.
        Isa::Avx512 => unsafe { avx512(Avx512::try_new().expect("chosen ISA"), d, x, dy, acc, scratch) },
        // SAFETY: as above.
        _ => unsafe { avx2(Avx2::try_new().expect("the caller checked AVX2"), d, x, dy, acc, scratch) },
    }
}

/// [`weight_grad_f32`] at width `S` (inlined into its `#[target_feature]` copies).
#[inline(always)]
fn weight_grad<S: Simd>(s: S, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    d.check_lens(x.len(), acc.len().min(d.f * d.c * d.k * d.k), dy.len());
    let (oh, ow, k) = (d.oh(), d.ow(), d.k);
    let kk = k * k;
    let wp = d.w + 2 * d.pad;
    let len = (oh - 1) * wp + ow;
    let ys = round16(oh * wp);
    let xl = xbuf_len(d);
    // dY on full-width rows, the padded input planes, and 16 partial sums per weight (summed
    // once, at the end)
    let vl = d.f * d.c * kk * PS;
    // dY's rows start on 64-byte boundaries (`ys` is a multiple of 16 floats), so that its loads
    // never straddle a cache line: the buffer's start is aligned inside the vector.
    scratch.resize(d.f * ys + d.c * xl + vl + ALIGN, 0.0);
    let at = scratch.as_ptr().align_offset(4 * ALIGN).min(ALIGN);
    let (dyfull, rest) = scratch[at..].split_at_mut(d.f * ys);
    let (xbuf, vacc) = rest.split_at_mut(d.c * xl);
    let vacc = &mut vacc[..vl];
    vacc.fill(0.0);
    for ni in 0..d.n {
        dyfull.fill(0.0);
        for fi in 0..d.f {
            let src = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                copy_short(&mut dyfull[fi * ys + oy * wp..][..ow], &src[oy * ow..][..ow]);
            }
        }
        for ci in 0..d.c {
            padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
        }
        let mut f0 = 0;
        while f0 < d.f {
            let g = (d.f - f0).min(S::MR);
            let a = (d, f0, len, xl, &*xbuf, &*dyfull, ys, &mut *vacc);
            // SAFETY: the token's features (inlined into their function); `dw_group` asserts its
            // bounds; dyfull is zero past `len` up to `ys`.
            unsafe {
                match g {
                    8 if S::MR >= 8 => dw_group::<S, 8>(s, a),
                    7 if S::MR >= 7 => dw_group::<S, 7>(s, a),
                    1 => dw_group::<S, 1>(s, a),
                    2 => dw_group::<S, 2>(s, a),
                    3 => dw_group::<S, 3>(s, a),
                    4 => dw_group::<S, 4>(s, a),
                    5 => dw_group::<S, 5>(s, a),
                    _ => dw_group::<S, 6>(s, a),
                }
            }
            f0 += g;
        }
    }
    for (wi, lanes) in vacc.chunks_exact(PS).enumerate() {
        acc[wi * ow] += lanes.iter().sum::<f32>();
    }
}

/// The arguments of [`dw_group`]: dims, first filter, positions, padded plane length, padded
/// planes, full-width dY, its plane stride, partial sums.
type DwArgs<'a> = (&'a ConvDims, usize, usize, usize, &'a [f32], &'a [f32], usize, &'a mut [f32]);

/// Positions per block of the weight-gradient kernel: a block of dY for eight filters (8 KiB)
/// and of the input planes stays in L1 while every kernel offset passes over it.
const CH: usize = 256;

/// Filters `f0..f0+G`: for each block of positions, each input channel and kernel offset, 16
/// lanes of `Σ dY·X` per filter in registers (`16/L` vectors), added to that weight's partial
/// sums in `vacc`. Lane `j` sums the positions `≡ j (mod 16)` at both widths.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
unsafe fn dw_group<S: Simd, const G: usize>(s: S, (d, f0, len, xl, xbuf, dyfull, ys, vacc): DwArgs) {
    let (k, wp, l) = (d.k, d.w + 2 * d.pad, S::LANES);
    let nv = PS / l;
    let kk = k * k;
    let end = round16(len);
    assert!(nv * l == PS && nv <= 2 && end <= ys && (f0 + G) * ys <= dyfull.len());
    assert!(k >= 1 && end + (k - 1) * (wp + 1) <= xl && d.c * xl <= xbuf.len());
    assert!((f0 + G) * d.c * kk * PS <= vacc.len());
    let (xp, gp, vp) = (xbuf.as_ptr(), dyfull.as_ptr(), vacc.as_mut_ptr());
    // SAFETY: the asserts above bound every pointer offset used below.
    unsafe {
        for c0 in (0..end).step_by(CH) {
            let c1 = (c0 + CH).min(end);
            for ci in 0..d.c {
                for ky in 0..k {
                    for kx in 0..k {
                        let xo = xp.add(ci * xl + ky * wp + kx);
                        let mut acc: [[S::V; 2]; G] = [[s.zero(); 2]; G];
                        let mut pos = c0;
                        while pos < c1 {
                            for v in 0..nv {
                                let xv = s.load(xo.add(pos + v * l));
                                for (g, a) in acc.iter_mut().enumerate() {
                                    a[v] = s.fmadd(s.load(gp.add((f0 + g) * ys + pos + v * l)), xv, a[v]);
                                }
                            }
                            pos += PS;
                        }
                        let t = ci * kk + ky * k + kx;
                        for (g, a) in acc.iter().enumerate() {
                            let vw = vp.add((((f0 + g) * d.c) * kk + t) * PS);
                            for (v, &av) in a.iter().enumerate().take(nv) {
                                s.store(vw.add(v * l), s.add(s.load(vw.add(v * l)), av));
                            }
                        }
                    }
                }
            }
        }
    }
}
