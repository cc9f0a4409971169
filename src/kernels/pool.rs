//! 2-D pooling kernels: max pooling with argmax bookkeeping (padding −∞), average pooling (zero
//! padding counted in the divisor) and global average pooling.

use super::{Elem, multiversion};
use crate::threads::{chunk_count, run_chunks_on, split_runs};

/// Sizes of a pooling call: `x` is `(planes, h, w)` with `planes = n·c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    /// Number of `h × w` planes (batch × channels).
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size (square).
    pub p: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side (at most `p/2`): −∞ for max pooling, zeros for average pooling.
    pub pad: usize,
}

impl PoolDims {
    /// Output height `(h + 2·pad − p)/s + 1`; panics when the window is larger than the padded input,
    /// a size is 0 or the padding exceeds half the window.
    pub fn oh(&self) -> usize {
        self.out(self.h)
    }
    /// Output width `(w − p)/s + 1`; panics like [`PoolDims::oh`].
    pub fn ow(&self) -> usize {
        self.out(self.w)
    }
    fn out(&self, len: usize) -> usize {
        assert!(
            self.p >= 1 && self.stride >= 1,
            "pooling: window {} and stride {} must be at least 1",
            self.p,
            self.stride
        );
        assert!(self.pad <= self.p / 2, "pooling: padding {} exceeds half the window {}", self.pad, self.p);
        match len.saturating_add(2 * self.pad).checked_sub(self.p) {
            Some(span) => span / self.stride + 1,
            None => panic!("pooling: window {} does not fit an input extent {len}", self.p),
        }
    }
    /// Checks the sizes and that `x` holds `planes·h·w` values and `y` `planes·oh·ow` (the public
    /// entry points call it before touching a buffer).
    pub fn check_lens(&self, x: usize, y: usize) {
        let xs = self.planes.checked_mul(self.h).and_then(|v| v.checked_mul(self.w));
        assert_eq!(xs, Some(x), "pooling: input length for {self:?}");
        assert_eq!(y, self.planes * self.oh() * self.ow(), "pooling: output length for {self:?}");
        assert!(self.h * self.w <= u32::MAX as usize, "pooling: planes of more than 2³² values");
    }
}

/// Max pooling; when `argmax` is given, records for each output the in-plane index of the first
/// maximum of its window (row-major scan order).
pub fn max_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>) {
    max_forward_split(d, x, y, argmax, false)
}

/// ReLU followed by max pooling, in one pass over `x`: `y` and `argmax` are exactly
/// [`max_forward`] of ReLU's output (every value goes through ReLU's select `x ≤ 0 ? +0 : x` as it
/// is read, so ties, ±0 — which ReLU maps to +0 — and NaN — which it passes — give the same bits
/// and positions), without writing that output.
pub fn relu_max_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>) {
    max_forward_split(d, x, y, argmax, true)
}

fn max_forward_split<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>, relu: bool) {
    d.check_lens(x.len(), y.len());
    assert!(argmax.as_ref().is_none_or(|a| a.len() == y.len()), "pooling: argmax length");
    let (xs, ys) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 8);
    if parts <= 1 {
        return max_forward_one(d, x, y, argmax, relu);
    }
    // Planes are independent: split them over the kernel threads.
    let mut arg_rest = argmax;
    let pieces = split_runs(y, d.planes, ys, chunk_count(d.planes, parts)).map(|(p0, n, yc)| {
        let ac = match arg_rest.take() {
            Some(rest) => {
                let (head, tail) = rest.split_at_mut(n * ys);
                arg_rest = Some(tail);
                Some(head)
            }
            None => None,
        };
        (p0, n, yc, ac)
    });
    run_chunks_on(parts, pieces, |(p0, n, yc, ac)| {
        let dd = PoolDims { planes: n, ..*d };
        max_forward_one(&dd, &x[p0 * xs..][..n * xs], yc, ac, relu)
    });
}

/// Max pooling of `d.planes` planes on the calling thread (`relu`: of `max(x, 0)`), with the
/// 2×2 fast path; the lengths are the caller's to check.
pub(crate) fn max_forward_one<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>, relu: bool) {
    match argmax {
        Some(a) if d.p == 2 && d.stride == 2 && d.pad == 0 => max2_forward(d, x, y, a, relu),
        a if relu => general::<E, true>(d, x, y, a),
        a => general::<E, false>(d, x, y, a),
    }
}

/// ReLU's select, `v ≤ 0 ? 0 : v` (a NaN passes), when `RELU`; `v` otherwise.
#[inline(always)]
fn relu_if<E: Elem, const RELU: bool>(v: E) -> E {
    if RELU && v <= E::zero() { E::zero() } else { v }
}

multiversion! {
    /// 2×2 windows with stride 2 (the common case), branch-free, with argmax.
    /// (`relu`: of `max(x, 0)`, see [`relu_max_forward`].)
    fn max2_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: &mut [u32], relu: bool) => max2_forward_body
}

#[inline(always)]
fn max2_forward_body<E: Elem, const FMA: bool>(d: &PoolDims, x: &[E], y: &mut [E], argmax: &mut [u32], relu: bool) {
    #[cfg(target_arch = "x86_64")]
    if FMA && super::cpu::has_avx2_fma() && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        let (x32, y32) = (super::matmul::as_f32(x), super::matmul::as_f32_mut(y));
        // SAFETY: the CPU supports AVX2 and FMA (detection checked just above, whatever FMA says).
        return unsafe {
            if relu {
                max2_forward_f32::<true>(d, x32, y32, argmax)
            } else {
                max2_forward_f32::<false>(d, x32, y32, argmax)
            }
        };
    }
    if relu { max2_scalar::<E, true>(d, x, y, argmax) } else { max2_scalar::<E, false>(d, x, y, argmax) }
}

#[inline(always)]
fn max2_scalar<E: Elem, const RELU: bool>(d: &PoolDims, x: &[E], y: &mut [E], argmax: &mut [u32]) {
    let (oh, ow, w) = (d.oh(), d.ow(), d.w);
    for pl in 0..d.planes {
        let xp = &x[pl * d.h * w..][..d.h * w];
        let base = pl * oh * ow;
        for oy in 0..oh {
            let r0 = &xp[2 * oy * w..][..w];
            let r1 = &xp[(2 * oy + 1) * w..][..w];
            let yrow = &mut y[base + oy * ow..][..ow];
            let arow = &mut argmax[base + oy * ow..][..ow];
            let i0 = (2 * oy * w) as u32;
            for ox in 0..ow {
                (yrow[ox], arow[ox]) = window2::<E, RELU>(r0, r1, ox, w, i0);
            }
        }
    }
}

/// Maximum and in-plane index of the 2×2 window `ox` on input rows `r0`, `r1` (row `r0` starting at
/// index `i0` of a plane `w` wide): the first maximum in row-major order, a later element winning
/// only when strictly larger or a NaN (with `RELU`, of the values through ReLU's select).
#[inline(always)]
fn window2<E: Elem, const RELU: bool>(r0: &[E], r1: &[E], ox: usize, w: usize, i0: u32) -> (E, u32) {
    let r = relu_if::<E, RELU>;
    let (a, b, c, e) = (r(r0[2 * ox]), r(r0[2 * ox + 1]), r(r1[2 * ox]), r(r1[2 * ox + 1]));
    let (m1, k1) = if wins(b, a) { (b, 1u32) } else { (a, 0u32) };
    let (m2, k2) = if wins(e, c) { (e, 1u32) } else { (c, 0u32) };
    let (m, k) = if wins(m2, m1) { (m2, w as u32 + k2) } else { (m1, k1) };
    (m, i0 + 2 * ox as u32 + k)
}

/// Whether a later value `v` takes a window's maximum from `best`: when it is larger, or a NaN (a
/// window with a NaN pools to NaN, its last NaN in row-major order, as in PyTorch).
#[inline(always)]
fn wins<E: Elem>(v: E, best: E) -> bool {
    v > best || v.is_nan()
}

/// [`max2_forward`] for `f32` with AVX2: eight windows per step (their two input rows split into
/// even and odd columns), the same comparisons as the scalar loop, which takes the ends of rows
/// under eight windows (a longer row ends with an overlapping step).
/// With `RELU`, every value first goes through ReLU's select (`v ≤ 0 ? +0 : v`, as an AND with the
/// unordered `!(v ≤ 0)` mask: +0 for ±0 and negatives, a NaN unchanged, like the scalar select).
///
/// # Safety
/// The CPU must support AVX2. (Every row is bounds-checked before its vector loads.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max2_forward_f32<const RELU: bool>(d: &PoolDims, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    use core::arch::x86_64::*;
    let (oh, ow, w) = (d.oh(), d.ow(), d.w);
    // What the vector loads below rely on: 2×2 windows with stride 2, so `2·ow ≤ w`.
    assert!(d.p == 2 && d.stride == 2 && d.pad == 0 && 2 * ow <= w && 2 * oh <= d.h, "max2_forward_f32: {d:?}");
    assert!(x.len() == d.planes * d.h * w && y.len() == d.planes * oh * ow && argmax.len() == y.len());
    let vec_end = ow / 8 * 8;
    // Eight windows from each `ox`; a row whose width is not a multiple of eight (but at least
    // eight) ends with the eight windows `ow − 8 ..`, recomputing some of the previous ones to the
    // same values.
    let tail = (ow >= 8 && vec_end < ow).then_some(ow - 8);
    // SAFETY (whole body): AVX2 is enabled; every load and store below is inside a row slice
    // whose length was checked: `2·ox + 16 ≤ 2·ow ≤ w` for the input rows, `ox + 8 ≤ ow` for the
    // output rows (`ox` is a multiple of 8 below `ow / 8 · 8`, or `ow − 8` when `ow ≥ 8`).
    unsafe {
        // even and odd columns of 16 consecutive values, in order
        let zero = _mm256_setzero_ps();
        // (`!(v ≤ 0)`, true for a NaN too: it passes, as the scalar select's.)
        let relu = |v: __m256| if RELU { _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_NLE_UQ>(v, zero)) } else { v };
        let split = |p: *const f32| {
            let (lo, hi) = (relu(_mm256_loadu_ps(p)), relu(_mm256_loadu_ps(p.add(8))));
            let ev = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
            let od = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
            let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
            (fix(ev), fix(od))
        };
        let one = _mm256_set1_epi32(1);
        let wv = _mm256_set1_epi32(w as i32);
        let lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        for pl in 0..d.planes {
            let xp = &x[pl * d.h * w..][..d.h * w];
            let base = pl * oh * ow;
            for oy in 0..oh {
                let r0 = &xp[2 * oy * w..][..w];
                let r1 = &xp[(2 * oy + 1) * w..][..w];
                let yrow = &mut y[base + oy * ow..][..ow];
                let arow = &mut argmax[base + oy * ow..][..ow];
                let i0 = (2 * oy * w) as u32;
                for ox in (0..vec_end).step_by(8).chain(tail) {
                    let (a, b) = split(r0.as_ptr().add(2 * ox));
                    let (c, e) = split(r1.as_ptr().add(2 * ox));
                    // `wins`: larger, or a NaN
                    let wins = |v: __m256, best: __m256| {
                        _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, best), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v))
                    };
                    let g1 = wins(b, a);
                    let m1 = _mm256_blendv_ps(a, b, g1);
                    let g2 = wins(e, c);
                    let m2 = _mm256_blendv_ps(c, e, g2);
                    let g3 = wins(m2, m1);
                    let m = _mm256_blendv_ps(m1, m2, g3);
                    let k1 = _mm256_and_si256(_mm256_castps_si256(g1), one);
                    let k2 = _mm256_add_epi32(wv, _mm256_and_si256(_mm256_castps_si256(g2), one));
                    let k = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k1), _mm256_castsi256_ps(k2), g3));
                    let at = _mm256_add_epi32(_mm256_set1_epi32((i0 + 2 * ox as u32) as i32), lane2);
                    _mm256_storeu_ps(yrow.as_mut_ptr().add(ox), m);
                    _mm256_storeu_si256(arow.as_mut_ptr().add(ox) as *mut __m256i, _mm256_add_epi32(at, k));
                }
                if tail.is_none() {
                    for ox in vec_end..ow {
                        (yrow[ox], arow[ox]) = window2::<f32, RELU>(r0, r1, ox, w, i0);
                    }
                }
            }
        }
    }
}

/// Max pooling for any window, stride and padding (the general path; [`max_forward`] dispatches
/// here except for 2×2 windows with stride 2 and no padding). Padding counts as −∞: a window's
/// maximum is that of its values inside the input (every window has one, as `pad ≤ p/2`).
pub fn max_forward_general<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>) {
    general::<E, false>(d, x, y, argmax)
}

/// [`max_forward_general`], of `max(x, 0)` when `RELU`.
fn general<E: Elem, const RELU: bool>(d: &PoolDims, x: &[E], y: &mut [E], mut argmax: Option<&mut [u32]>) {
    d.check_lens(x.len(), y.len());
    assert!(argmax.as_ref().is_none_or(|a| a.len() == y.len()), "pooling: argmax length");
    let (oh, ow) = (d.oh(), d.ow());
    for pl in 0..d.planes {
        let xp = &x[pl * d.h * d.w..][..d.h * d.w];
        let base = pl * oh * ow;
        for oy in 0..oh {
            let rows = window_range(oy, d, d.h);
            for ox in 0..ow {
                let cols = window_range(ox, d, d.w);
                let mut best = rows.start * d.w + cols.start;
                let mut bv = relu_if::<E, RELU>(xp[best]);
                for iy in rows.clone() {
                    for ix in cols.clone() {
                        let v = relu_if::<E, RELU>(xp[iy * d.w + ix]);
                        if wins(v, bv) {
                            bv = v;
                            best = iy * d.w + ix;
                        }
                    }
                }
                y[base + oy * ow + ox] = bv;
                if let Some(a) = argmax.as_deref_mut() {
                    a[base + oy * ow + ox] = best as u32;
                }
            }
        }
    }
}

/// The input positions window `o` covers along an extent `len`, clipped to the input.
#[inline(always)]
fn window_range(o: usize, d: &PoolDims, len: usize) -> core::ops::Range<usize> {
    let start = o * d.stride;
    start.saturating_sub(d.pad)..(start + d.p).saturating_sub(d.pad).min(len)
}

/// Backward: each output gradient goes to the first maximum of its window; overlapping windows
/// accumulate.
pub fn max_backward<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], dx: &mut [E]) {
    max_backward_split(d, dy, argmax, None, dx)
}

/// The backward pass of [`relu_max_forward`], given its output `y`: each output gradient is added
/// at its window's first maximum when `y` is positive, nothing is added where `y` is 0, and every
/// other input gradient is 0 — the same values as [`max_backward`] followed by ReLU's backward
/// pass (`dy` where ReLU's input is positive), without writing the pooling's input gradient or
/// reading ReLU's input. (`y > 0` exactly when ReLU's input at the argmax is: `y` is that value
/// through ReLU's select. Where it is not, ReLU's backward writes +0, and here the additions of +0
/// to the zeroed gradient leave +0.)
pub fn relu_max_backward<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], y: &[E], dx: &mut [E]) {
    assert_eq!(y.len(), dy.len(), "pooling: output length");
    max_backward_split(d, dy, argmax, Some(y), dx)
}

fn max_backward_split<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], y: Option<&[E]>, dx: &mut [E]) {
    d.check_lens(dx.len(), dy.len());
    assert_eq!(argmax.len(), dy.len(), "pooling: argmax length");
    let (xs, q) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 8);
    if parts <= 1 {
        return max_backward_one(d, dy, argmax, y, dx);
    }
    // Planes are independent: split them over the kernel threads.
    crate::threads::for_chunks(&mut dx[..d.planes * xs], xs, parts, |at, dxc| {
        let (p0, n) = (at / xs, dxc.len() / xs);
        let dd = PoolDims { planes: n, ..*d };
        let y = y.map(|y| &y[p0 * q..][..n * q]);
        max_backward_one(&dd, &dy[p0 * q..][..n * q], &argmax[p0 * q..][..n * q], y, dxc)
    });
}

/// [`max_backward`] of `d.planes` planes on the calling thread; with the output `y`, only where
/// `y > 0` ([`relu_max_backward`]).
fn max_backward_one<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], y: Option<&[E]>, dx: &mut [E]) {
    let (q, xs) = (d.oh() * d.ow(), d.h * d.w);
    #[cfg(target_arch = "x86_64")]
    if d.p == 2
        && d.stride == 2
        && d.pad == 0
        && d.ow() >= 8
        && super::cpu::has_avx2_fma()
        && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
    {
        let (dy32, dx32) = (super::matmul::as_f32(dy), super::matmul::as_f32_mut(dx));
        // SAFETY: the CPU supports AVX2 (the chosen ISA, checked just above).
        return unsafe { max2_backward_f32(d, dy32, argmax, y.map(super::matmul::as_f32), dx32) };
    }
    dx[..d.planes * xs].fill(E::zero());
    for pl in 0..d.planes {
        let dxp = &mut dx[pl * xs..][..xs];
        let (gs, args) = (&dy[pl * q..][..q], &argmax[pl * q..][..q]);
        match y {
            None => {
                for (g, &i) in gs.iter().zip(args) {
                    dxp[i as usize] += *g;
                }
            }
            Some(y) => {
                for ((&g, &i), &yv) in gs.iter().zip(args).zip(&y[pl * q..][..q]) {
                    // ReLU's backward select, made before the addition (a select, not a branch:
                    // the signs of `y` are not predictable).
                    dxp[i as usize] += if yv > E::zero() { g } else { E::zero() };
                }
            }
        }
    }
}

/// [`max_backward_one`] for `f32` 2×2 windows with stride 2, no padding and rows of at least eight
/// windows, with AVX2. The windows do not overlap, so every input gradient is written once, eight
/// windows (two rows of 16 values) per step: `0 + g` at a window's argmax (`g` through ReLU's
/// select on `y` when given), +0 at its other positions and outside every window — the values of
/// zeroing the planes and adding each `g` at its argmax, in one pass instead of two. A row whose
/// width is not a multiple of eight ends with the eight windows `ow − 8 ..` (rewriting some values
/// with themselves).
///
/// # Safety
/// The CPU must support AVX2. (The lengths the vector loads and stores rely on are asserted.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max2_backward_f32(d: &PoolDims, dy: &[f32], argmax: &[u32], y: Option<&[f32]>, dx: &mut [f32]) {
    use core::arch::x86_64::*;
    let (oh, ow, w) = (d.oh(), d.ow(), d.w);
    let (q, xs) = (oh * ow, d.h * w);
    assert!(d.p == 2 && d.stride == 2 && d.pad == 0 && ow >= 8 && 2 * ow <= w && 2 * oh <= d.h, "{d:?}");
    assert!(dy.len() >= d.planes * q && argmax.len() >= d.planes * q && dx.len() >= d.planes * xs);
    assert!(y.is_none_or(|y| y.len() >= d.planes * q) && w < i32::MAX as usize / 4);
    let vec_end = ow / 8 * 8;
    let tail = (vec_end < ow).then_some(ow - 8);
    // SAFETY (whole body): AVX2 is enabled; every load reads 8 values at `oy·ow + ox` with
    // `ox + 8 ≤ ow` of a plane's `q = oh·ow` (asserted lengths), every store 8 values at `2·ox` or
    // `2·ox + 8` of a row slice `w ≥ 2·ow ≥ 2·ox + 16` long.
    unsafe {
        let zero = _mm256_setzero_ps();
        let lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        let offsets =
            [_mm256_set1_epi32(0), _mm256_set1_epi32(1), _mm256_set1_epi32(w as i32), _mm256_set1_epi32(w as i32 + 1)];
        for pl in 0..d.planes {
            let dxp = &mut dx[pl * xs..][..xs];
            let (gs, args) = (&dy[pl * q..][..q], &argmax[pl * q..][..q]);
            let ys = y.map(|y| &y[pl * q..][..q]);
            for oy in 0..oh {
                let (r0, r1) = dxp[2 * oy * w..][..2 * w].split_at_mut(w);
                for ox in (0..vec_end).step_by(8).chain(tail) {
                    let o = oy * ow + ox;
                    let mut g = _mm256_loadu_ps(gs.as_ptr().add(o));
                    if let Some(ys) = ys {
                        g = _mm256_and_ps(g, _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(ys.as_ptr().add(o)), zero));
                    }
                    let g = _mm256_add_ps(zero, g);
                    let first = _mm256_set1_epi32((2 * oy * w + 2 * ox) as i32);
                    let k = _mm256_sub_epi32(
                        _mm256_loadu_si256(args.as_ptr().add(o) as *const __m256i),
                        _mm256_add_epi32(first, lane2),
                    );
                    let at = |m: __m256i| _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, m)));
                    for (row, (even, odd)) in
                        [(&mut *r0, (at(offsets[0]), at(offsets[1]))), (&mut *r1, (at(offsets[2]), at(offsets[3])))]
                    {
                        // windows 0 1 | 4 5 and 2 3 | 6 7 interleaved, then their halves in order
                        let (lo, hi) = (_mm256_unpacklo_ps(even, odd), _mm256_unpackhi_ps(even, odd));
                        _mm256_storeu_ps(row.as_mut_ptr().add(2 * ox), _mm256_permute2f128_ps::<0x20>(lo, hi));
                        _mm256_storeu_ps(row.as_mut_ptr().add(2 * ox + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
                    }
                }
                r0[2 * ow..].fill(0.0);
                r1[2 * ow..].fill(0.0);
            }
            dxp[2 * oh * w..].fill(0.0);
        }
    }
}

/// Average pooling: each output is the sum of its window's values inside the input divided by
/// `p²` (zero padding counts in the divisor, PyTorch's `count_include_pad=True`).
pub fn avg_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E]) {
    d.check_lens(x.len(), y.len());
    let (xs, ys) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 4);
    crate::threads::for_chunks(&mut y[..d.planes * ys], ys, parts, |at, yc| {
        let (p0, n) = (at / ys, yc.len() / ys);
        avg_forward_one(&PoolDims { planes: n, ..*d }, &x[p0 * xs..][..n * xs], yc)
    });
}

multiversion! {
    fn avg_forward_one<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E]) => avg_forward_body
}

#[inline(always)]
fn avg_forward_body<E: Elem, const FMA: bool>(d: &PoolDims, x: &[E], y: &mut [E]) {
    let (oh, ow) = (d.oh(), d.ow());
    let scale = E::one() / E::lit((d.p * d.p) as f64);
    for (xp, yp) in x.chunks_exact(d.h * d.w).zip(y.chunks_exact_mut(oh * ow)) {
        for oy in 0..oh {
            let rows = window_range(oy, d, d.h);
            for ox in 0..ow {
                let cols = window_range(ox, d, d.w);
                let mut s = E::zero();
                for iy in rows.clone() {
                    for &v in &xp[iy * d.w..][cols.clone()] {
                        s += v;
                    }
                }
                yp[oy * ow + ox] = s * scale;
            }
        }
    }
}

/// Backward of [`avg_forward`]: every input of a window receives `dy/p²`; overlapping windows
/// accumulate.
pub fn avg_backward<E: Elem>(d: &PoolDims, dy: &[E], dx: &mut [E]) {
    d.check_lens(dx.len(), dy.len());
    let (xs, ys) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 4);
    crate::threads::for_chunks(&mut dx[..d.planes * xs], xs, parts, |at, dxc| {
        let (p0, n) = (at / xs, dxc.len() / xs);
        avg_backward_one(&PoolDims { planes: n, ..*d }, &dy[p0 * ys..][..n * ys], dxc)
    });
}

multiversion! {
    fn avg_backward_one<E: Elem>(d: &PoolDims, dy: &[E], dx: &mut [E]) => avg_backward_body
}

#[inline(always)]
fn avg_backward_body<E: Elem, const FMA: bool>(d: &PoolDims, dy: &[E], dx: &mut [E]) {
    let (oh, ow) = (d.oh(), d.ow());
    let scale = E::one() / E::lit((d.p * d.p) as f64);
    dx.fill(E::zero());
    for (dxp, gp) in dx.chunks_exact_mut(d.h * d.w).zip(dy.chunks_exact(oh * ow)) {
        for oy in 0..oh {
            let rows = window_range(oy, d, d.h);
            for ox in 0..ow {
                let cols = window_range(ox, d, d.w);
                let g = gp[oy * ow + ox] * scale;
                for iy in rows.clone() {
                    for v in &mut dxp[iy * d.w..][cols.clone()] {
                        *v += g;
                    }
                }
            }
        }
    }
}

/// Global average pooling: `y[i] = mean of plane i` of `planes` planes of `hw` values each.
pub fn global_avg_forward<E: Elem>(planes: usize, hw: usize, x: &[E], y: &mut [E]) {
    assert_eq!(Some(x.len()), planes.checked_mul(hw), "global pooling: input length for {planes} planes of {hw}");
    assert_eq!(y.len(), planes, "global pooling: output length for {planes} planes");
    if hw == 0 {
        return y.fill(E::zero());
    }
    let scale = E::one() / E::lit(hw as f64);
    for (o, xp) in y.iter_mut().zip(x.chunks_exact(hw)) {
        *o = super::cpu::sum_lanes(xp) * scale;
    }
}

/// Backward of [`global_avg_forward`]: `dx[i, ·] = dy[i]/hw`.
pub fn global_avg_backward<E: Elem>(planes: usize, hw: usize, dy: &[E], dx: &mut [E]) {
    assert_eq!(Some(dx.len()), planes.checked_mul(hw), "global pooling: input length for {planes} planes of {hw}");
    assert_eq!(dy.len(), planes, "global pooling: output length for {planes} planes");
    if hw == 0 {
        return;
    }
    let scale = E::one() / E::lit(hw as f64);
    for (&g, dxp) in dy.iter().zip(dx.chunks_exact_mut(hw)) {
        dxp.fill(g * scale);
    }
}
