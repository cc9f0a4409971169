//! The direct convolution loops (few input channels): a full-width `axpy` form for stride 1, a
//! strided row loop otherwise, multiversioned for AVX2+FMA and handing f32 on AVX2 to the register
//! tiles in `simd.rs`.

#[cfg(target_arch = "x86_64")]
use super::simd;
use super::{ConvDims, ConvScratch, check_bias, split_backward};
#[cfg(target_arch = "x86_64")]
use crate::kernels::cpu::has_avx2_fma;
use crate::kernels::cpu::{axpy, dot, fmadd, mul_acc};
#[cfg(target_arch = "x86_64")]
use crate::kernels::matmul::{as_f32, as_f32_mut};
use crate::kernels::{Elem, split_batch};
use crate::threads::{chunk_count, run_chunks, split_runs};

/// Forward pass, direct loop: `y[n,f] = Σ_c x[n,c] ⋆ w[f,c] (+ b[f])`, the batch split over
/// [`num_threads`](crate::threads::num_threads) threads, with an AVX2+FMA version chosen at run time.
pub fn forward_direct<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    let parts = split_batch(d.n, xs * ys * d.k * d.k);
    if parts <= 1 {
        return forward_direct_mv(d, x, w, bias, y, &mut scratch.parts(1)[0][0]);
    }
    let pieces = split_runs(y, d.n, ys, chunk_count(d.n, parts));
    let bufs = scratch.parts(parts);
    for b in bufs.iter_mut() {
        // every thread's buffer sized now, whether or not it takes a chunk this time
        reserve(&mut b[0], scratch_len(d, false));
    }
    run_chunks(bufs, pieces, |buf, (lo, n, yc)| {
        let dd = ConvDims { n, ..*d };
        forward_direct_mv(&dd, &x[lo * xs..][..n * xs], w, bias, yc, &mut buf[0])
    });
}

fn forward_direct_mv<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E], scratch: &mut Vec<E>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { forward_direct_avx2(d, x, w, bias, y, scratch) };
    }
    if d.stride == 1 {
        forward_full_width::<E, false>(d, x, w, bias, y, scratch)
    } else {
        forward_direct_body::<E, false>(d, x, w, bias, y)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_direct_avx2<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut Vec<E>,
) {
    if d.stride == 1 {
        forward_full_width::<E, true>(d, x, w, bias, y, scratch)
    } else {
        forward_direct_body::<E, true>(d, x, w, bias, y)
    }
}

/// The direct forward pass through the general strided row loop, without the stride-1
/// full-width specialisation (single-threaded; for benchmarks and tests of the specialisation).
pub fn forward_direct_rows<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E]) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fast<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E]) {
            forward_direct_body::<E, true>(d, x, w, bias, y)
        }
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { fast(d, x, w, bias, y) };
    }
    forward_direct_body::<E, false>(d, x, w, bias, y)
}

/// The most scratch a direct pass on `d` resizes its buffer to, forward or `backward`, on any
/// path (register tiles or full-width loops; the strided loops use none).
fn scratch_len(d: &ConvDims, backward: bool) -> usize {
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    let full_width = if backward { d.f * d.oh() * wp + 2 * hp * wp } else { d.oh() * wp + hp * wp };
    #[cfg(target_arch = "x86_64")]
    {
        let tiles = if backward { simd::weight_grad_scratch_len(d) } else { simd::forward_scratch_len(d) };
        full_width.max(tiles)
    }
    #[cfg(not(target_arch = "x86_64"))]
    full_width
}

/// Makes `v`'s capacity at least `len` (no allocation later when it is resized up to `len`).
fn reserve<E>(v: &mut Vec<E>, len: usize) {
    v.reserve(len.saturating_sub(v.len()));
}

/// Copies plane `src` (`h × w`) into the middle of `dst` (`(h+2p) × (w+2p)`, zero border).
#[inline(always)]
fn pad_plane<E: Elem>(src: &[E], h: usize, w: usize, p: usize, dst: &mut [E]) {
    let wp = w + 2 * p;
    dst.fill(E::zero());
    for r in 0..h {
        dst[(r + p) * wp + p..][..w].copy_from_slice(&src[r * w..][..w]);
    }
}

/// The input plane `ci` of sample `ni`, padded into `buf` when the convolution pads.
#[inline(always)]
fn plane<'a, E: Elem>(d: &ConvDims, x: &'a [E], ni: usize, ci: usize, buf: &'a mut [E]) -> &'a [E] {
    let src = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
    if d.pad == 0 {
        src
    } else {
        pad_plane(src, d.h, d.w, d.pad, buf);
        buf
    }
}

/// Stride-1 forward on full-width rows: for each kernel offset, one long `axpy` over the whole
/// (padded) plane, `y_full[i] += w·x[i + ky·wp + kx]`, whose wrap-around columns (`ow..wp`) are
/// computed and dropped. Long unit-stride loops vectorise fully; rows of `ow` elements did not.
#[inline(always)]
fn forward_full_width<E: Elem, const FMA: bool>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut Vec<E>,
) {
    #[cfg(target_arch = "x86_64")]
    if FMA && has_avx2_fma() && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        let (x32, w32, y32) = (as_f32(x), as_f32(w), as_f32_mut(y));
        let b32 = bias.map(as_f32);
        // SAFETY: E is f32 (checked just above): the same vector.
        let scratch32 = unsafe { &mut *(scratch as *mut Vec<E> as *mut Vec<f32>) };
        // SAFETY: the CPU supports AVX2 and FMA (detection checked just above, whatever FMA says).
        return unsafe { simd::forward_f32(d, x32, w32, b32, y32, scratch32) };
    }
    let (oh, ow, k) = (d.oh(), d.ow(), d.k);
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    let len = (oh - 1) * wp + ow;
    scratch.resize(oh * wp + hp * wp, E::zero());
    let (yfull, xbuf) = scratch.split_at_mut(oh * wp);
    for ni in 0..d.n {
        for fi in 0..d.f {
            yfull.fill(bias.map_or(E::zero(), |b| b[fi]));
            for ci in 0..d.c {
                let xp = plane(d, x, ni, ci, xbuf);
                let wk = &w[(fi * d.c + ci) * k * k..][..k * k];
                for ky in 0..k {
                    for kx in 0..k {
                        axpy::<E, FMA>(&mut yfull[..len], wk[ky * k + kx], &xp[ky * wp + kx..][..len]);
                    }
                }
            }
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                yp[oy * ow..][..ow].copy_from_slice(&yfull[oy * wp..][..ow]);
            }
        }
    }
}

#[inline(always)]
fn forward_direct_body<E: Elem, const FMA: bool>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ni in 0..d.n {
        for fi in 0..d.f {
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            yp.fill(bias.map_or(E::zero(), |b| b[fi]));
            for ci in 0..d.c {
                let xp = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
                let wk = &w[(fi * d.c + ci) * k * k..][..k * k];
                for ky in 0..k {
                    let (oy0, oy1) = d.valid(ky, d.h, oh);
                    for kx in 0..k {
                        let (ox0, ox1) = d.valid(kx, d.w, ow);
                        let wv = wk[ky * k + kx];
                        for oy in oy0..oy1 {
                            let iy = oy * s + ky - d.pad;
                            let yrow = &mut yp[oy * ow + ox0..oy * ow + ox1];
                            let xrow = &xp[iy * d.w..(iy + 1) * d.w];
                            if s == 1 {
                                axpy::<E, FMA>(yrow, wv, &xrow[ox0 + kx - d.pad..][..ox1 - ox0]);
                            } else {
                                for (j, yv) in yrow.iter_mut().enumerate() {
                                    *yv = fmadd::<E, FMA>(wv, xrow[(ox0 + j) * s + kx - d.pad], *yv);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Backward pass, direct loop: `dw = Σ_n x ⋆ dy`, `db = Σ dy`, `dx` = `dy` fully convolved with `w`.
/// The weight gradient is accumulated row-wise (`f·c·k·k` rows of `ow` partial sums in `scratch`,
/// vectorisable) and summed at the end; the batch is split over the kernel threads in chunks, each
/// chunk with its own partial sums, added in chunk order (the same sums whichever thread ran which
/// chunk).
#[allow(clippy::too_many_arguments)]
pub fn backward_direct<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_backward(x.len(), w.len(), dy.len(), dw.len(), db.as_ref().map(|b| b.len()), dx.as_ref().map(|t| t.len()));
    let (oh, ow) = (d.oh(), d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * oh * ow);
    let acc_len = d.f * d.c * d.k * d.k * ow;
    let parts = split_batch(d.n, xs * ys * d.k * d.k).max(1);
    let mut partials = core::mem::take(&mut scratch.partials);
    let bufs = scratch.parts(parts);
    for b in bufs.iter_mut() {
        reserve(&mut b[1], scratch_len(d, true));
    }
    split_backward(d, dy, (dx, db), (bufs, 1), (&mut partials, acc_len), |lo, n, dxc, acc, buf| {
        let dd = ConvDims { n, ..*d };
        let (xc, dyc) = (&x[lo * xs..][..n * xs], &dy[lo * ys..][..n * ys]);
        acc.fill(E::zero());
        backward_direct_mv(&dd, xc, w, dyc, dxc, acc, &mut buf[1])
    });
    for (g, row) in dw.iter_mut().zip(partials[..acc_len].chunks_exact(ow.max(1))) {
        *g = row.iter().copied().sum();
    }
    scratch.partials = partials;
}

fn backward_direct_mv<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dx: Option<&mut [E]>,
    acc: &mut [E],
    scratch: &mut Vec<E>,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { backward_direct_avx2(d, x, w, dy, dx, acc, scratch) };
    }
    if d.stride == 1 {
        backward_full_width::<E, false>(d, x, w, dy, dx, acc, scratch)
    } else {
        backward_direct_body::<E, false>(d, x, w, dy, dx, acc)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_direct_avx2<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dx: Option<&mut [E]>,
    acc: &mut [E],
    scratch: &mut Vec<E>,
) {
    if d.stride == 1 {
        backward_full_width::<E, true>(d, x, w, dy, dx, acc, scratch)
    } else {
        backward_direct_body::<E, true>(d, x, w, dy, dx, acc)
    }
}

/// Stride-1 backward on full-width rows (see [`forward_full_width`]): `dy` is laid out with zeroed
/// wrap-around columns, so `dW[f,c,ky,kx] = dy_full · x[ky·wp + kx ..]` is one long dot product and
/// the padded input gradient one long `axpy` per kernel offset. `acc[(f·c + ci)·k·k + …]` receives
/// the weight gradient in its first column (the row layout of the strided path is kept, `ow` wide).
#[inline(always)]
fn backward_full_width<E: Elem, const FMA: bool>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    mut dx: Option<&mut [E]>,
    acc: &mut [E],
    scratch: &mut Vec<E>,
) {
    #[cfg(target_arch = "x86_64")]
    if FMA && dx.is_none() && has_avx2_fma() && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        let (x32, dy32, acc32) = (as_f32(x), as_f32(dy), as_f32_mut(acc));
        // SAFETY: E is f32 (checked just above): the same vector.
        let scratch32 = unsafe { &mut *(scratch as *mut Vec<E> as *mut Vec<f32>) };
        // SAFETY: the CPU supports AVX2 and FMA (detection checked just above, whatever FMA says).
        return unsafe { simd::weight_grad_f32(d, x32, dy32, acc32, scratch32) };
    }
    let (oh, ow, k) = (d.oh(), d.ow(), d.k);
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    let len = (oh - 1) * wp + ow;
    let plane_p = hp * wp;
    scratch.resize(d.f * oh * wp + 2 * plane_p, E::zero());
    let (dyfull, rest) = scratch.split_at_mut(d.f * oh * wp);
    let (xbuf, dxbuf) = rest.split_at_mut(plane_p);
    for ni in 0..d.n {
        // dY of this sample, full width with zero wrap-around columns.
        dyfull.fill(E::zero());
        for fi in 0..d.f {
            let src = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                dyfull[(fi * oh + oy) * wp..][..ow].copy_from_slice(&src[oy * ow..][..ow]);
            }
        }
        for ci in 0..d.c {
            let xp = plane(d, x, ni, ci, xbuf);
            if dx.is_some() {
                dxbuf.fill(E::zero());
            }
            for fi in 0..d.f {
                let g = &dyfull[fi * oh * wp..][..len];
                let woff = (fi * d.c + ci) * k * k;
                for ky in 0..k {
                    for kx in 0..k {
                        let t = woff + ky * k + kx;
                        acc[t * ow] += dot::<E, FMA>(g, &xp[ky * wp + kx..][..len]);
                        if dx.is_some() {
                            axpy::<E, FMA>(&mut dxbuf[ky * wp + kx..][..len], w[t], g);
                        }
                    }
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let dst = &mut dx[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
                for r in 0..d.h {
                    dst[r * d.w..][..d.w].copy_from_slice(&dxbuf[(r + d.pad) * wp + d.pad..][..d.w]);
                }
            }
        }
    }
}

/// `acc` holds `f·c·k·k` rows of `ow` partial sums of the weight gradient (added to).
#[inline(always)]
fn backward_direct_body<E: Elem, const FMA: bool>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    mut dx: Option<&mut [E]>,
    acc: &mut [E],
) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    if let Some(dx) = dx.as_deref_mut() {
        dx.fill(E::zero());
    }
    for ni in 0..d.n {
        for fi in 0..d.f {
            let dyp = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for ci in 0..d.c {
                let xoff = (ni * d.c + ci) * d.h * d.w;
                let xp = &x[xoff..][..d.h * d.w];
                let woff = (fi * d.c + ci) * k * k;
                for ky in 0..k {
                    let (oy0, oy1) = d.valid(ky, d.h, oh);
                    for kx in 0..k {
                        let (ox0, ox1) = d.valid(kx, d.w, ow);
                        let len = ox1 - ox0;
                        let wv = w[woff + ky * k + kx];
                        let arow = &mut acc[(woff + ky * k + kx) * ow..][..ow][ox0..ox1];
                        for oy in oy0..oy1 {
                            let iy = oy * s + ky - d.pad;
                            let drow = &dyp[oy * ow + ox0..oy * ow + ox1];
                            let xrow = &xp[iy * d.w..(iy + 1) * d.w];
                            if s == 1 {
                                let xs = &xrow[ox0 + kx - d.pad..][..len];
                                mul_acc::<E, FMA>(arow, drow, xs);
                                if let Some(dx) = dx.as_deref_mut() {
                                    let dxrow = &mut dx[xoff + iy * d.w + ox0 + kx - d.pad..][..len];
                                    axpy::<E, FMA>(dxrow, wv, drow);
                                }
                            } else {
                                for (j, a) in arow.iter_mut().enumerate() {
                                    *a = fmadd::<E, FMA>(drow[j], xrow[(ox0 + j) * s + kx - d.pad], *a);
                                }
                                if let Some(dx) = dx.as_deref_mut() {
                                    let dxrow = &mut dx[xoff + iy * d.w..][..d.w];
                                    for (j, &g) in drow.iter().enumerate() {
                                        let t = (ox0 + j) * s + kx - d.pad;
                                        dxrow[t] = fmadd::<E, FMA>(wv, g, dxrow[t]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
