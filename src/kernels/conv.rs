//! 2-D convolution (cross-correlation) kernels: a direct loop for few channels, im2col + GEMM for many.

use super::{Elem, Strides, gemm, multiversion};

/// Sizes of a convolution call. `x` is `(n, c, h, w)`, the kernel `(f, c, k, k)`, `y` `(n, f, oh, ow)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Filters (output channels).
    pub f: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl ConvDims {
    /// Output height `(h + 2p − k)/s + 1`; panics when the kernel is larger than the padded input or
    /// the stride is 0 (see [`ConvDims::validate`]).
    pub fn oh(&self) -> usize {
        out_extent(self.h, self.k, self.stride, self.pad)
    }
    /// Output width `(w + 2p − k)/s + 1`; panics like [`ConvDims::oh`].
    pub fn ow(&self) -> usize {
        out_extent(self.w, self.k, self.stride, self.pad)
    }
    /// Checks the sizes every kernel relies on: kernel, stride, channels and filters at least 1, the
    /// kernel inside the padded input, and the tensors' element counts free of overflow. The public
    /// entry points call it (with [`ConvDims::check_lens`]) before touching a buffer.
    pub fn validate(&self) {
        assert!(
            self.k >= 1 && self.stride >= 1,
            "convolution: kernel {} and stride {} must be at least 1",
            self.k,
            self.stride
        );
        assert!(
            self.c >= 1 && self.f >= 1,
            "convolution: {} channels and {} filters must be at least 1",
            self.c,
            self.f
        );
        let (oh, ow) = (self.oh(), self.ow());
        let x = [self.n, self.c, self.h, self.w].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let y = [self.n, self.f, oh, ow].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let w = [self.f, self.c, self.k, self.k].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let pad = (self.h + 2 * self.pad).checked_mul(self.w + 2 * self.pad);
        assert!(
            x.is_some() && y.is_some() && w.is_some() && pad.is_some(),
            "convolution: sizes overflow usize: {self:?}"
        );
    }
    /// Validates the dims and checks `x`, `w`, `y` hold `n·c·h·w`, `f·c·k·k` and `n·f·oh·ow` values.
    pub fn check_lens(&self, x: usize, w: usize, y: usize) {
        self.validate();
        assert_eq!(x, self.n * self.c * self.h * self.w, "convolution: input length for {self:?}");
        assert_eq!(w, self.f * self.c * self.k * self.k, "convolution: weight length for {self:?}");
        assert_eq!(y, self.n * self.f * self.oh() * self.ow(), "convolution: output length for {self:?}");
    }
    /// Rows of the im2col matrix: `c·k·k`.
    pub fn patch(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Whether im2col + GEMM is the faster path (many input channels); see `benches/kernels.rs`.
    pub fn prefers_im2col(&self) -> bool {
        self.c >= 4
    }
    /// The output positions `o` (along an axis of input extent `len` and output extent `olen`) for
    /// which kernel offset `kk` reads inside the input: `lo..hi`.
    #[inline(always)]
    fn valid(&self, kk: usize, len: usize, olen: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        let lo = if p > kk { (p - kk).div_ceil(s) } else { 0 };
        let hi = if len + p > kk { ((len - 1 + p - kk) / s + 1).min(olen) } else { 0 };
        (lo, hi.max(lo))
    }
}

use super::copy_short;
use super::matmul::{as_f32, as_f32_mut};
use crate::threads::{chunk_count, even_runs, run_chunks, split_runs};

/// `db[f] = Σ_{n, position} dy[n, f, position]`.
fn bias_grad<E: Elem>(d: &ConvDims, dy: &[E], db: &mut [E]) {
    let q = d.oh() * d.ow();
    db.fill(E::zero());
    for ni in 0..d.n {
        for (fi, b) in db.iter_mut().enumerate() {
            *b += super::cpu::sum_lanes(&dy[(ni * d.f + fi) * q..][..q]);
        }
    }
}

/// The first `len` elements of `rest` (which keeps the others), when there is a buffer at all.
fn split_off<'a, E>(rest: &mut Option<&'a mut [E]>, len: usize) -> Option<&'a mut [E]> {
    let (head, tail) = rest.take()?.split_at_mut(len);
    *rest = Some(tail);
    Some(head)
}

/// Runs `run(lo, n, dx, partial, buffers)` on the batch of `d.n` samples cut into chunks (samples
/// `lo..lo + n` each, with their slice of `dx` and a `plen`-long slice of `partials` for the chunk's
/// own weight-gradient partial sum, which `run` overwrites), spread over `bufs.len()` threads, each
/// with its own buffers: the backward passes' split over the kernel threads. When `db` is given,
/// each chunk also sums its samples' bias gradient (`Σ dy` per filter). On return
/// `partials[..plen]` holds the sum of the chunks' partial sums and `db` the bias gradient, both
/// added in chunk order (the same sums whichever thread ran which chunk).
fn split_backward<E: Elem>(
    d: &ConvDims,
    dy: &[E],
    (dx, db): (Option<&mut [E]>, Option<&mut [E]>),
    bufs: &mut [[Vec<E>; 4]],
    (partials, plen): (&mut Vec<E>, usize),
    run: impl Fn(usize, usize, Option<&mut [E]>, &mut [E], &mut [Vec<E>; 4]) + Sync,
) {
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    let nb = if db.is_some() { d.f } else { 0 };
    let chunks = chunk_count(d.n, bufs.len());
    let stride = (plen + nb).max(1); // (so that a gradient of no values still has one slot per chunk)
    if partials.len() < chunks * stride {
        partials.resize(chunks * stride, E::zero());
    }
    let one = |lo: usize, n: usize, dxc: Option<&mut [E]>, part: &mut [E], buf: &mut [Vec<E>; 4]| {
        let (dwp, dbp) = part[..plen + nb].split_at_mut(plen);
        run(lo, n, dxc, dwp, buf);
        if nb > 0 {
            bias_grad(&ConvDims { n, ..*d }, &dy[lo * ys..][..n * ys], dbp);
        }
    };
    if let [buf] = bufs {
        one(0, d.n, dx, &mut partials[..stride], buf);
    } else {
        let mut dx_rest = dx;
        let pieces = even_runs(d.n, chunks)
            .zip(partials.chunks_exact_mut(stride))
            .map(|((lo, n), part)| (lo, n, split_off(&mut dx_rest, n * xs), part));
        run_chunks(bufs, pieces, |buf, (lo, n, dxc, part)| one(lo, n, dxc, part, buf));
        reduce_chunks(partials, stride, chunks);
    }
    if let Some(db) = db {
        db.copy_from_slice(&partials[plen..plen + nb]);
    }
}

/// `partials[..len] = Σ_i partials[i·len ..][..len]` over `chunks` partial sums, in chunk order
/// (the same sums however the elements are split over the kernel threads).
fn reduce_chunks<E: Elem>(partials: &mut [E], len: usize, chunks: usize) {
    if chunks <= 1 {
        return;
    }
    let (first, rest) = partials[..chunks * len].split_at_mut(len);
    let rest = &*rest;
    super::split::split_elementwise(first, 64 * chunks, |r, out| {
        for c in 0..chunks - 1 {
            for (o, &v) in out.iter_mut().zip(&rest[c * len + r.start..][..r.len()]) {
                *o += v;
            }
        }
    });
}

/// A bias (or its gradient), when given, has one value per filter.
fn check_bias(d: &ConvDims, len: Option<usize>) {
    assert!(len.is_none_or(|l| l == d.f), "convolution: bias length {len:?} for {} filters", d.f);
}

/// `(len + 2·pad − k)/stride + 1`, checked: a kernel larger than the padded input or a zero stride
/// panics with the sizes instead of wrapping around.
fn out_extent(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    let padded = pad.checked_mul(2).and_then(|p| len.checked_add(p));
    match padded.and_then(|p| p.checked_sub(k)) {
        Some(span) if stride > 0 => span / stride + 1,
        _ => panic!("convolution: kernel {k} with stride {stride} does not fit an input extent {len} padded by {pad}"),
    }
}

/// Scratch buffers of the convolution kernels, one set per thread of a split, kept across steps so
/// that a steady-state step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct ConvScratch<E> {
    parts: Vec<[Vec<E>; 4]>,
    /// One weight-gradient partial sum per chunk of the batch (see `split_backward`).
    partials: Vec<E>,
    /// The row offsets of the implicit patch matrix (see `forward_indirect`).
    offs: Vec<usize>,
    /// The flipped, transposed weights of the implicit backward pass (see `backward_indirect`).
    wt: Vec<E>,
}

impl<E: Elem> ConvScratch<E> {
    fn parts(&mut self, n: usize) -> &mut [[Vec<E>; 4]] {
        if self.parts.len() < n {
            self.parts.resize_with(n, Default::default);
        }
        &mut self.parts[..n]
    }
}

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
    let parts = super::split_batch(d.n, xs * ys * d.k * d.k);
    if parts <= 1 {
        return forward_direct_mv(d, x, w, bias, y, &mut scratch.parts(1)[0][0]);
    }
    let pieces = split_runs(y, d.n, ys, chunk_count(d.n, parts));
    run_chunks(scratch.parts(parts), pieces, |buf, (lo, n, yc)| {
        let dd = ConvDims { n, ..*d };
        forward_direct_mv(&dd, &x[lo * xs..][..n * xs], w, bias, yc, &mut buf[0])
    });
}

fn forward_direct_mv<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E], scratch: &mut Vec<E>) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2_fma() {
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
    if super::cpu::has_avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fast<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E]) {
            forward_direct_body::<E, true>(d, x, w, bias, y)
        }
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { fast(d, x, w, bias, y) };
    }
    forward_direct_body::<E, false>(d, x, w, bias, y)
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
    if FMA && super::cpu::has_avx2_fma() && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
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
                        super::cpu::axpy::<E, FMA>(&mut yfull[..len], wk[ky * k + kx], &xp[ky * wp + kx..][..len]);
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
                                super::cpu::axpy::<E, FMA>(yrow, wv, &xrow[ox0 + kx - d.pad..][..ox1 - ox0]);
                            } else {
                                for (j, yv) in yrow.iter_mut().enumerate() {
                                    *yv = super::cpu::fmadd::<E, FMA>(wv, xrow[(ox0 + j) * s + kx - d.pad], *yv);
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
    d.check_lens(x.len(), w.len(), dy.len());
    assert_eq!(dw.len(), w.len(), "convolution: weight gradient length");
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "convolution: input gradient length");
    check_bias(d, db.as_ref().map(|b| b.len()));
    let (oh, ow) = (d.oh(), d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * oh * ow);
    let acc_len = d.f * d.c * d.k * d.k * ow;
    let parts = super::split_batch(d.n, xs * ys * d.k * d.k).max(1);
    let mut partials = core::mem::take(&mut scratch.partials);
    let bufs = scratch.parts(parts);
    split_backward(d, dy, (dx, db), bufs, (&mut partials, acc_len), |lo, n, dxc, acc, buf| {
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
    if super::cpu::has_avx2_fma() {
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
    if FMA
        && dx.is_none()
        && super::cpu::has_avx2_fma()
        && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
    {
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
                        acc[t * ow] += super::cpu::dot::<E, FMA>(g, &xp[ky * wp + kx..][..len]);
                        if dx.is_some() {
                            super::cpu::axpy::<E, FMA>(&mut dxbuf[ky * wp + kx..][..len], w[t], g);
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
                                super::cpu::mul_acc::<E, FMA>(arow, drow, xs);
                                if let Some(dx) = dx.as_deref_mut() {
                                    let dxrow = &mut dx[xoff + iy * d.w + ox0 + kx - d.pad..][..len];
                                    super::cpu::axpy::<E, FMA>(dxrow, wv, drow);
                                }
                            } else {
                                for (j, a) in arow.iter_mut().enumerate() {
                                    *a = super::cpu::fmadd::<E, FMA>(drow[j], xrow[(ox0 + j) * s + kx - d.pad], *a);
                                }
                                if let Some(dx) = dx.as_deref_mut() {
                                    let dxrow = &mut dx[xoff + iy * d.w..][..d.w];
                                    for (j, &g) in drow.iter().enumerate() {
                                        let t = (ox0 + j) * s + kx - d.pad;
                                        dxrow[t] = super::cpu::fmadd::<E, FMA>(wv, g, dxrow[t]);
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

/// Writes the patches of sample `xs` (`(c, h, w)`) as the columns of `cols` (`c·k·k × oh·ow`).
pub fn im2col<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E]) {
    d.validate();
    im2col_at(d, xs, cols, d.oh() * d.ow(), 0)
}

/// [`im2col`] into columns `col0..col0 + oh·ow` of a matrix whose rows are `ld` long (several
/// samples side by side). Stride 1 goes through a zero-padded plane in the thread's packing buffer.
fn im2col_at<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) {
    if d.stride == 1 {
        let len = (d.h + 2 * d.pad) * (d.w + 2 * d.pad);
        super::matmul::with_panel::<E, _>(len, |plane| im2col_plane_mv(d, xs, cols, ld, col0, plane))
    } else {
        im2col_strided(d, xs, cols, ld, col0)
    }
}

multiversion! {
    /// The stride-1 [`im2col_at`], through `plane`.
    fn im2col_plane_mv<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize, plane: &mut [E]) => im2col_plane_body
}

multiversion! {
    /// [`im2col_at`] for any stride.
    fn im2col_strided<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) => im2col_strided_body
}

/// Copies `OW` elements (`OW > 0`, a fixed-size move) or `dst.len()` elements (`OW = 0`).
#[inline(always)]
fn copy_fixed<E: Elem, const OW: usize>(dst: &mut [E], src: &[E]) {
    if OW > 0 {
        let v: [E; OW] = src[..OW].try_into().expect("row width");
        let d: &mut [E; OW] = dst.try_into().expect("row width");
        *d = v;
    } else {
        copy_short(dst, src);
    }
}

/// `dst += src` over `OW` elements (`OW > 0`, fixed-size) or `dst.len()` elements (`OW = 0`).
#[inline(always)]
fn add_fixed<E: Elem, const OW: usize>(dst: &mut [E], src: &[E]) {
    if OW > 0 {
        let v: &[E; OW] = src[..OW].try_into().expect("row width");
        let d: &mut [E; OW] = dst.try_into().expect("row width");
        for j in 0..OW {
            d[j] += v[j];
        }
    } else {
        add_row(dst, src);
    }
}

/// Stride-1 im2col through a zero-padded copy of each input plane: the row of kernel offset
/// `(ky, kx)` is `oh` windows of `OW` elements (`OW = 0`: `ow`, not fixed) of the plane, so every
/// copy is a fixed-size move with no border logic. `plane` (`(h + 2p)·(w + 2p)`) arrives zeroed;
/// only its inner part is written, so its border stays zero.
#[inline(always)]
fn im2col_plane<E: Elem, const OW: usize>(
    d: &ConvDims,
    xs: &[E],
    cols: &mut [E],
    ld: usize,
    col0: usize,
    plane: &mut [E],
) {
    let (oh, ow, k, p) = (d.oh(), d.ow(), d.k, d.pad);
    let pw = d.w + 2 * p;
    for ci in 0..d.c {
        for iy in 0..d.h {
            copy_short(&mut plane[(iy + p) * pw + p..][..d.w], &xs[(ci * d.h + iy) * d.w..][..d.w]);
        }
        for ky in 0..k {
            for kx in 0..k {
                let dst = &mut cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                let src = &plane[ky * pw + kx..];
                for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
                    copy_fixed::<E, OW>(out, &src[oy * pw..][..ow]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col_plane`]: each plane's kernel-offset rows are added into a zero-padded
/// accumulator with fixed-size adds, whose inner part is then added into `dxs`.
#[inline(always)]
fn col2im_plane<E: Elem, const OW: usize>(
    d: &ConvDims,
    cols: &[E],
    ld: usize,
    col0: usize,
    dxs: &mut [E],
    plane: &mut [E],
) {
    let (oh, ow, k, p) = (d.oh(), d.ow(), d.k, d.pad);
    let pw = d.w + 2 * p;
    for ci in 0..d.c {
        plane.fill(E::zero());
        for ky in 0..k {
            for kx in 0..k {
                let src = &cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                let acc = &mut plane[ky * pw + kx..];
                for (oy, row) in src.chunks_exact(ow).enumerate() {
                    add_fixed::<E, OW>(&mut acc[oy * pw..][..ow], row);
                }
            }
        }
        for iy in 0..d.h {
            add_row(&mut dxs[(ci * d.h + iy) * d.w..][..d.w], &plane[(iy + p) * pw + p..][..d.w]);
        }
    }
}

/// `dst += src` elementwise (the adjoint of [`copy_short`]).
#[inline(always)]
fn add_row<E: Elem>(dst: &mut [E], src: &[E]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += v;
    }
}

/// `$f::<E, W>(args)` with `W` the output width `$ow` when it is one of the common widths (fixed-size
/// row moves), `W = 0` (rows of `ow` elements) otherwise.
macro_rules! by_width {
    ($ow:expr, $f:ident($($arg:expr),*)) => {
        match $ow {
            2 => $f::<E, 2>($($arg),*),
            4 => $f::<E, 4>($($arg),*),
            8 => $f::<E, 8>($($arg),*),
            16 => $f::<E, 16>($($arg),*),
            32 => $f::<E, 32>($($arg),*),
            _ => $f::<E, 0>($($arg),*),
        }
    };
}

#[inline(always)]
fn im2col_plane_body<E: Elem, const FMA: bool>(
    d: &ConvDims,
    xs: &[E],
    cols: &mut [E],
    ld: usize,
    col0: usize,
    plane: &mut [E],
) {
    plane.fill(E::zero());
    by_width!(d.ow(), im2col_plane(d, xs, cols, ld, col0, plane))
}

#[inline(always)]
fn im2col_strided_body<E: Elem, const FMA: bool>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &mut cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                for oy in 0..oh {
                    let out = &mut row[oy * ow..][..ow];
                    if oy < oy0 || oy >= oy1 {
                        out.fill(E::zero());
                        continue;
                    }
                    let iy = oy * s + ky - d.pad;
                    let xrow = &xs[(ci * d.h + iy) * d.w..][..d.w];
                    out[..ox0].fill(E::zero());
                    out[ox1..].fill(E::zero());
                    for ox in ox0..ox1 {
                        out[ox] = xrow[ox * s + kx - d.pad];
                    }
                }
            }
        }
    }
}

/// Adds the columns of `cols` back into the sample gradient `dxs` (the adjoint of [`im2col`]).
pub fn col2im<E: Elem>(d: &ConvDims, cols: &[E], dxs: &mut [E]) {
    d.validate();
    col2im_at(d, cols, d.oh() * d.ow(), 0, dxs)
}

/// [`col2im`] from columns `col0..col0 + oh·ow` of a matrix whose rows are `ld` long. Stride 1
/// accumulates in a zero-padded plane in the thread's packing buffer.
fn col2im_at<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) {
    if d.stride == 1 {
        let len = (d.h + 2 * d.pad) * (d.w + 2 * d.pad);
        super::matmul::with_panel::<E, _>(len, |plane| col2im_plane_mv(d, cols, ld, col0, dxs, plane))
    } else {
        col2im_strided(d, cols, ld, col0, dxs)
    }
}

multiversion! {
    /// The stride-1 [`col2im_at`], through `plane`.
    fn col2im_plane_mv<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E], plane: &mut [E]) => col2im_plane_body
}

multiversion! {
    /// [`col2im_at`] for any stride.
    fn col2im_strided<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) => col2im_strided_body
}

#[inline(always)]
fn col2im_plane_body<E: Elem, const FMA: bool>(
    d: &ConvDims,
    cols: &[E],
    ld: usize,
    col0: usize,
    dxs: &mut [E],
    plane: &mut [E],
) {
    by_width!(d.ow(), col2im_plane(d, cols, ld, col0, dxs, plane))
}

#[inline(always)]
fn col2im_strided_body<E: Elem, const FMA: bool>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                for oy in oy0..oy1 {
                    let iy = oy * s + ky - d.pad;
                    let dxrow = &mut dxs[(ci * d.h + iy) * d.w..][..d.w];
                    for ox in ox0..ox1 {
                        dxrow[ox * s + kx - d.pad] += row[oy * ow + ox];
                    }
                }
            }
        }
    }
}

/// How many samples' patch matrices to put side by side in one GEMM: enough for at least 64 columns
/// (the 16-wide micro-kernel needs several), few enough that the `p × columns` matrix stays in L2.
fn samples_per_gemm(p: usize, q: usize, per: usize) -> usize {
    const L2_ELEMS: usize = 65536; // 256 KiB of f32, a quarter of this machine's L2
    let fit = L2_ELEMS / (p * q).max(1);
    let wide = 64usize.div_ceil(q.max(1));
    fit.max(wide).clamp(1, per.max(1))
}

/// Whether the implicit-im2col forward pass applies: f32 on an AVX2+FMA CPU, stride 1, and output
/// rows of at least 8 (the GEMM computes `ow + k − 1` columns per output row, the extra ones
/// discarded: too many for narrower maps).
fn indirect_applies<E: Elem>(d: &ConvDims) -> bool {
    #[cfg(target_arch = "x86_64")]
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() && super::cpu::has_avx2_fma() {
        return d.stride == 1 && d.ow() >= 8 && d.n > 0 && d.f > 0 && d.c > 0;
    }
    let _ = d;
    false
}

/// Whether the implicit-im2col backward pass applies: as the forward, and "same" padding
/// (`2·pad = k − 1`, so that the padded output gradient has the padded input's geometry), with
/// the dropped columns past the last output row reading on into the bottom padding and the next
/// plane's top padding (zeros), never into values.
fn indirect_backward_applies<E: Elem>(d: &ConvDims) -> bool {
    let (pad, wp) = (d.pad, d.w + 2 * d.pad);
    let (plane, nw) = ((d.h + 2 * pad) * wp, (d.h * wp).next_multiple_of(16));
    indirect_applies::<E>(d) && 2 * pad + 1 == d.k && pad > 0 && pad * (wp + 1) + nw <= plane + pad * wp
}

/// Forward pass by the fastest path for `d` and `E`: without a patch matrix where
/// `backward` can do the same (f32 on AVX2, stride 1, "same" padding, output rows ≥ 8), through
/// im2col + GEMM for ≥ 4 input channels ([`ConvDims::prefers_im2col`]), direct loops otherwise.
pub fn forward<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E], scratch: &mut ConvScratch<E>) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    if d.prefers_im2col() || indirect_backward_applies::<E>(d) {
        forward_im2col(d, x, w, bias, y, scratch)
    } else {
        forward_direct(d, x, w, bias, y, scratch)
    }
}

/// Backward pass by the path [`forward`] takes for `d` and `E`.
#[allow(clippy::too_many_arguments)]
pub fn backward<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), dy.len());
    assert_eq!(dw.len(), w.len(), "convolution: weight gradient length");
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "convolution: input gradient length");
    check_bias(d, db.as_ref().map(|b| b.len()));
    if d.prefers_im2col() || indirect_backward_applies::<E>(d) {
        backward_im2col(d, x, w, dy, dw, db, dx, scratch)
    } else {
        backward_direct(d, x, w, dy, dw, db, dx, scratch)
    }
}

/// The forward pass without a patch matrix: each sample's channels are copied once into
/// zero-padded planes (`hp × wp`), and the GEMM reads row `(c, ky, kx)` of the patch matrix as the
/// window of `oh·wp` values starting at `c·hp·wp + ky·wp + kx` (`gemm_indirect_f32`). Output row
/// `oy` then sits at columns `oy·wp ..` of the product, whose last `k − 1` columns per row (which
/// wrap into the next padded row) are dropped. Returns `false` where it does not apply
/// ([`indirect_applies`]).
fn forward_indirect<E: Elem>(
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
            let done = super::matmul::gemm_indirect_f32(d.f, nw, p, w, p, planes, &offs, yw, nw);
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
    let parts = super::split_batch(d.n, ys * p).max(1);
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
fn backward_indirect<'a, 'b, E: Elem>(
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
            let done = super::matmul::gemm_rows_indirect_f32(
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
                let done = super::matmul::gemm_indirect_f32(d.c, nw, pf, wt32, pf, dyp, &offs_ref[..pf], dxw, nw);
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
    let bufs = scratch.parts(super::split_batch(d.n, ys * p * 2).max(1));
    split_backward(d, dy_e, (dx, db), bufs, (&mut partials, d.f * p), run);
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

/// Forward pass through im2col + GEMM, the batch split over the kernel threads: without a patch
/// matrix where the implicit path applies (f32 on AVX2, stride 1, output rows ≥ 8), through
/// [`forward_patch_matrix`] otherwise.
pub fn forward_im2col<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    if !forward_indirect(d, x, w, bias, y, scratch) {
        forward_patch_matrix(d, x, w, bias, y, scratch)
    }
}

/// Forward pass through an explicit patch matrix (im2col) + GEMM, whatever the element type and
/// shape (what [`forward_im2col`] falls back to; public so that benches can compare the two).
pub fn forward_patch_matrix<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    let (p, q) = (d.patch(), d.oh() * d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * q);
    let parts = super::split_batch(d.n, ys * p).max(1);
    let chunks = chunk_count(d.n, parts);
    // Samples per GEMM: small feature maps are batched side by side so that the product has enough
    // columns for the 16-wide micro-kernel.
    let nb = samples_per_gemm(p, q, d.n.div_ceil(chunks));
    let run = |buf: &mut [Vec<E>; 4], (lo, n, yc): (usize, usize, &mut [E])| {
        let [cols, ytmp, _, _] = buf;
        cols.resize(p * q * nb, E::zero());
        ytmp.resize(d.f * q * nb, E::zero());
        let mut s0 = 0;
        while s0 < n {
            let m = nb.min(n - s0);
            let ld = m * q;
            for s in 0..m {
                im2col_at(d, &x[(lo + s0 + s) * xs..][..xs], cols, ld, s * q);
            }
            if m == 1 {
                let yn = &mut yc[s0 * ys..][..ys];
                gemm(
                    d.f,
                    q,
                    p,
                    w,
                    Strides::row_major(p),
                    cols,
                    Strides::row_major(q),
                    yn,
                    Strides::row_major(q),
                    false,
                );
            } else {
                gemm(
                    d.f,
                    ld,
                    p,
                    w,
                    Strides::row_major(p),
                    cols,
                    Strides::row_major(ld),
                    ytmp,
                    Strides::row_major(ld),
                    false,
                );
                for s in 0..m {
                    for fi in 0..d.f {
                        copy_short(&mut yc[(s0 + s) * ys + fi * q..][..q], &ytmp[fi * ld + s * q..][..q]);
                    }
                }
            }
            if let Some(b) = bias {
                for yn in yc[s0 * ys..(s0 + m) * ys].chunks_exact_mut(ys) {
                    for (fi, row) in yn.chunks_exact_mut(q).enumerate() {
                        for v in row {
                            *v += b[fi];
                        }
                    }
                }
            }
            s0 += m;
        }
    };
    run_chunks(scratch.parts(parts), split_runs(y, d.n, ys, chunks), run);
}

/// Backward pass through im2col + GEMM, the batch split over the kernel threads in chunks (each with
/// its own weight- and bias-gradient partial sums, added in chunk order): without patch matrices
/// where the implicit path applies (f32 on AVX2, stride 1, "same" padding, output rows ≥ 8), through
/// [`backward_patch_matrix`] otherwise.
#[allow(clippy::too_many_arguments)]
pub fn backward_im2col<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), dy.len());
    assert_eq!(dw.len(), w.len(), "convolution: weight gradient length");
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "convolution: input gradient length");
    check_bias(d, db.as_ref().map(|b| b.len()));
    if let Err(dx_db) = backward_indirect(d, x, w, dy, dw, (dx, db), scratch) {
        patch_matrix_backward(d, x, w, dy, dw, dx_db, scratch)
    }
}

/// Backward pass (weight and input gradients; no bias gradient) through explicit patch matrices
/// (im2col/col2im) + GEMM: what [`backward_im2col`] falls back to, public for benches.
#[allow(clippy::too_many_arguments)]
pub fn backward_patch_matrix<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), dy.len());
    assert_eq!(dw.len(), w.len(), "convolution: weight gradient length");
    assert!(dx.as_ref().is_none_or(|t| t.len() == x.len()), "convolution: input gradient length");
    patch_matrix_backward(d, x, w, dy, dw, (dx, None), scratch)
}

/// [`backward_patch_matrix`], and the bias gradient when `db` is given.
fn patch_matrix_backward<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    (dx, db): (Option<&mut [E]>, Option<&mut [E]>),
    scratch: &mut ConvScratch<E>,
) {
    let (p, q) = (d.patch(), d.oh() * d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * q);
    let parts = super::split_batch(d.n, ys * p * 2).max(1);
    let nb = samples_per_gemm(p, q, d.n.div_ceil(chunk_count(d.n, parts)));
    // One chunk: samples lo..lo+n, its dW partial sum in `dwp`; small maps are batched `nb` at a time.
    let run = |lo: usize, n: usize, dxc: Option<&mut [E]>, dwp: &mut [E], buf: &mut [Vec<E>; 4]| {
        let [cols, dcols, _, dyg] = buf;
        cols.resize(p * q * nb, E::zero());
        dcols.resize(p * q * nb, E::zero());
        dyg.resize(d.f * q * nb, E::zero());
        dwp.fill(E::zero());
        let mut dxc = dxc;
        let mut s0 = 0;
        while s0 < n {
            let m = nb.min(n - s0);
            let ld = m * q;
            for s in 0..m {
                im2col_at(d, &x[(lo + s0 + s) * xs..][..xs], cols, ld, s * q);
            }
            let g: &[E] = if m == 1 {
                &dy[(lo + s0) * ys..][..ys]
            } else {
                for s in 0..m {
                    for fi in 0..d.f {
                        copy_short(&mut dyg[fi * ld + s * q..][..q], &dy[(lo + s0 + s) * ys + fi * q..][..q]);
                    }
                }
                &dyg[..d.f * ld]
            };
            // dWᵀ (p × f) += cols (p × ld) · dYᵀ (ld × f): the GEMM packs the narrow dY, not
            // the 9×-wider patch matrix, and broadcasts from the patch rows in place.
            gemm(
                p,
                d.f,
                ld,
                cols,
                Strides::row_major(ld),
                g,
                Strides::transposed(ld),
                dwp,
                Strides::transposed(p),
                true,
            );
            if let Some(dx) = dxc.as_deref_mut() {
                // dcols (p × ld) = Wᵀ (p × f) · dY (f × ld)
                gemm(
                    p,
                    ld,
                    d.f,
                    w,
                    Strides::transposed(p),
                    g,
                    Strides::row_major(ld),
                    dcols,
                    Strides::row_major(ld),
                    false,
                );
                for s in 0..m {
                    let dxs = &mut dx[(s0 + s) * xs..][..xs];
                    dxs.fill(E::zero());
                    col2im_at(d, dcols, ld, s * q, dxs);
                }
            }
            s0 += m;
        }
    };
    let mut partials = core::mem::take(&mut scratch.partials);
    split_backward(d, dy, (dx, db), scratch.parts(parts), (&mut partials, d.f * p), run);
    dw.copy_from_slice(&partials[..d.f * p]);
    scratch.partials = partials;
}

/// Register-blocked stride-1 convolution for f32 with AVX2+FMA: the forward pass keeps 6 filters ×
/// 16 positions in registers over every input channel and kernel offset, the weight gradient shares
/// each input load between up to eight filters, so neither is bound by loads and stores as the
/// full-width `axpy` form is.
#[cfg(target_arch = "x86_64")]
mod simd {
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
}
