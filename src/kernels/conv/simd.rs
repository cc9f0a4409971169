//! Register-blocked stride-1 convolution for f32 with AVX2+FMA: the forward pass keeps 6 filters ×
//! 16 positions in registers over every input channel and kernel offset, the weight gradient shares
//! each input load between up to eight filters, so neither is bound by loads and stores as the
//! full-width `axpy` form is.

use super::ConvDims;
use core::arch::x86_64::*;

const L: usize = 8;

fn round8(n: usize) -> usize {
    n.div_ceil(L) * L
}

/// Copies input plane `(ni, ci)` into `buf` with `pad` zeros around and a zero tail, so that the
/// kernels may read whole registers past the last output position.
fn padded(d: &ConvDims, x: &[f32], ni: usize, ci: usize, buf: &mut [f32]) {
    let wp = d.w + 2 * d.pad;
    buf.fill(0.0);
    let src = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
    for r in 0..d.h {
        buf[(r + d.pad) * wp + d.pad..][..d.w].copy_from_slice(&src[r * d.w..][..d.w]);
    }
}

/// Length of the padded input buffer: the plane, plus what the last register can overrun.
fn xbuf_len(d: &ConvDims) -> usize {
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    hp * wp + 2 * L + d.k
}

/// Positions per register tile of the forward kernel (two registers).
const P: usize = 2 * L;
/// Filters per register tile of the forward kernel (`2·F` = 12 accumulators).
const F: usize = 6;

/// Forward pass: all input planes of a sample are padded once, then tiles of up to 6 filters ×
/// 16 positions (of the full-width output, `oh × wp`, whose wrap-around columns are dropped)
/// accumulate over every input channel and kernel offset in registers: per step two input
/// loads and one weight broadcast per filter feed twelve FMAs, as in the GEMM micro-kernel.
///
/// # Safety
/// AVX2 and FMA must be available.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_f32(
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
    let ys = len.div_ceil(P) * P;
    // each padded plane, plus what the last tile can read past it
    let xl = xbuf_len(d) + 2 * P;
    scratch.resize(d.f * ys + d.c * xl, 0.0);
    let (yfull, xbuf) = scratch.split_at_mut(d.f * ys);
    for ni in 0..d.n {
        for ci in 0..d.c {
            padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
        }
        let mut f0 = 0;
        while f0 < d.f {
            let g = (d.f - f0).min(F);
            // SAFETY: checked inside (`fw_tile` asserts its bounds).
            unsafe {
                match g {
                    1 => fw_tile::<1>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                    2 => fw_tile::<2>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                    3 => fw_tile::<3>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                    4 => fw_tile::<4>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                    5 => fw_tile::<5>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                    _ => fw_tile::<6>(d, f0, len, xl, xbuf, w, bias, yfull, ys),
                }
            }
            f0 += g;
        }
        for fi in 0..d.f {
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                yp[oy * ow..][..ow].copy_from_slice(&yfull[fi * ys + oy * wp..][..ow]);
            }
        }
    }
}

/// Filters `f0..f0+G` over every input channel: `G × 16` accumulators per tile of positions.
///
/// # Safety
/// AVX2 and FMA must be available. (Bounds are asserted.)
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn fw_tile<const G: usize>(
    d: &ConvDims,
    f0: usize,
    len: usize,
    xl: usize,
    xbuf: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    yfull: &mut [f32],
    ys: usize,
) {
    let (k, wp) = (d.k, d.w + 2 * d.pad);
    let kk = k * k;
    let wrow: [usize; G] = core::array::from_fn(|g| (f0 + g) * d.c * kk);
    assert!(wrow[G - 1] + d.c * kk <= w.len() && (f0 + G) * ys <= yfull.len());
    // the last tile starts below `ys` and reads P values at offsets up to (k−1)·(wp+1)
    assert!(k >= 1 && ys + (k - 1) * (wp + 1) <= xl && d.c * xl <= xbuf.len());
    let b: [f32; G] = core::array::from_fn(|g| bias.map_or(0.0, |b| b[f0 + g]));
    let (xp, yp) = (xbuf.as_ptr(), yfull.as_mut_ptr());
    // SAFETY: the asserts above bound every offset below.
    unsafe {
        let mut pos = 0;
        while pos < len {
            let mut a0: [__m256; G] = core::array::from_fn(|g| _mm256_set1_ps(b[g]));
            let mut a1 = a0;
            for ci in 0..d.c {
                let xc = xp.add(ci * xl + pos);
                let wc = w.as_ptr().add(ci * kk);
                for ky in 0..k {
                    for kx in 0..k {
                        let off = ky * wp + kx;
                        let (x0, x1) = (_mm256_loadu_ps(xc.add(off)), _mm256_loadu_ps(xc.add(off + L)));
                        let t = ky * k + kx;
                        for g in 0..G {
                            let wv = _mm256_set1_ps(*wc.add(wrow[g] + t));
                            a0[g] = _mm256_fmadd_ps(wv, x0, a0[g]);
                            a1[g] = _mm256_fmadd_ps(wv, x1, a1[g]);
                        }
                    }
                }
            }
            for g in 0..G {
                let o = yp.add((f0 + g) * ys + pos);
                _mm256_storeu_ps(o, a0[g]);
                _mm256_storeu_ps(o.add(L), a1[g]);
            }
            pos += P;
        }
    }
}

/// Weight gradient only (no input gradient): `acc[((f·c + ci)·k·k + ky·k + kx)·ow] += dW`.
///
/// # Safety
/// AVX2 and FMA must be available.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn weight_grad_f32(d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    d.check_lens(x.len(), acc.len().min(d.f * d.c * d.k * d.k), dy.len());
    let (oh, ow, k) = (d.oh(), d.ow(), d.k);
    let kk = k * k;
    let wp = d.w + 2 * d.pad;
    let len = (oh - 1) * wp + ow;
    let ys = round8(oh * wp);
    let xl = xbuf_len(d);
    // dY on full-width rows, the padded input planes, and one register of partial sums per
    // weight (summed across lanes once, at the end)
    let vl = d.f * d.c * kk * L;
    scratch.resize(d.f * ys + d.c * xl + vl, 0.0);
    let (dyfull, rest) = scratch.split_at_mut(d.f * ys);
    let (xbuf, vacc) = rest.split_at_mut(d.c * xl);
    vacc.fill(0.0);
    for ni in 0..d.n {
        dyfull.fill(0.0);
        for fi in 0..d.f {
            let src = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                dyfull[fi * ys + oy * wp..][..ow].copy_from_slice(&src[oy * ow..][..ow]);
            }
        }
        for ci in 0..d.c {
            padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
        }
        let mut f0 = 0;
        while f0 < d.f {
            let g = (d.f - f0).min(L);
            // SAFETY: checked inside (`dw_group` asserts its bounds); dyfull is zero past `len`
            // up to `ys`.
            unsafe {
                match g {
                    1 => dw_group::<1>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    2 => dw_group::<2>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    3 => dw_group::<3>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    4 => dw_group::<4>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    5 => dw_group::<5>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    6 => dw_group::<6>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    7 => dw_group::<7>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                    _ => dw_group::<8>(d, f0, len, xl, xbuf, dyfull, ys, vacc),
                }
            }
            f0 += g;
        }
    }
    for (wi, lanes) in vacc.chunks_exact(L).enumerate() {
        acc[wi * ow] += lanes.iter().sum::<f32>();
    }
}

/// Positions per block of the weight-gradient kernel: a block of dY for eight filters (8 KiB)
/// and of the input planes stays in L1 while every kernel offset passes over it.
const CH: usize = 256;

/// Filters `f0..f0+G`: for each block of positions, each input channel and kernel offset, eight
/// lanes of `Σ dY·X` per filter in registers, added to that weight's partial sums in `vacc`.
///
/// # Safety
/// AVX2 and FMA must be available. (Bounds are asserted.)
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_group<const G: usize>(
    d: &ConvDims,
    f0: usize,
    len: usize,
    xl: usize,
    xbuf: &[f32],
    dyfull: &[f32],
    ys: usize,
    vacc: &mut [f32],
) {
    let (k, wp) = (d.k, d.w + 2 * d.pad);
    let kk = k * k;
    let end = round8(len);
    assert!(end <= ys && (f0 + G) * ys <= dyfull.len());
    assert!(k >= 1 && end + (k - 1) * (wp + 1) <= xl && d.c * xl <= xbuf.len());
    assert!((f0 + G) * d.c * kk * L <= vacc.len());
    let (xp, gp, vp) = (xbuf.as_ptr(), dyfull.as_ptr(), vacc.as_mut_ptr());
    // SAFETY: the asserts above bound every pointer offset used below.
    unsafe {
        for c0 in (0..end).step_by(CH) {
            let c1 = (c0 + CH).min(end);
            for ci in 0..d.c {
                for ky in 0..k {
                    for kx in 0..k {
                        let xo = xp.add(ci * xl + ky * wp + kx);
                        let mut s: [__m256; G] = [_mm256_setzero_ps(); G];
                        let mut pos = c0;
                        while pos < c1 {
                            let xv = _mm256_loadu_ps(xo.add(pos));
                            for (g, sg) in s.iter_mut().enumerate() {
                                *sg = _mm256_fmadd_ps(_mm256_loadu_ps(gp.add((f0 + g) * ys + pos)), xv, *sg);
                            }
                            pos += L;
                        }
                        let t = ci * kk + ky * k + kx;
                        for (g, sg) in s.iter().enumerate() {
                            let v = vp.add((((f0 + g) * d.c) * kk + t) * L);
                            _mm256_storeu_ps(v, _mm256_add_ps(_mm256_loadu_ps(v), *sg));
                        }
                    }
                }
            }
        }
    }
}
