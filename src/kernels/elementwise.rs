//! Elementwise and row kernels: copies, ReLU, bias and row sums, sums, sums of squares.

use super::cpu::sum_lanes;
use super::split::split_elementwise;
use super::{Elem, multiversion};

multiversion! {
    /// `Σ a²`, with 32 independent partial sums (four AVX registers, so the adds do not wait on
    /// each other; plain multiplies and adds in both versions, so the sum does not depend on the
    /// CPU).
    pub(crate) fn sum_squares_into<E: Elem>(a: &[E], out: &mut E) => sum_squares_body
}

/// `Σ a²` (32 independent partial sums, plain multiplies and adds: the same bits on every CPU).
pub fn sum_squares<E: Elem>(a: &[E]) -> E {
    let mut s = E::zero();
    sum_squares_into(a, &mut s);
    s
}

#[inline(always)]
fn sum_squares_body<E: Elem, const FMA: bool>(a: &[E], out: &mut E) {
    const L: usize = 32;
    let mut lanes = [E::zero(); L];
    let c = a.chunks_exact(L);
    let tail: E = c.remainder().iter().map(|&v| v * v).sum();
    for x in c {
        for l in 0..L {
            lanes[l] += x[l] * x[l];
        }
    }
    *out = lanes.iter().copied().fold(tail, |s, v| s + v);
}

multiversion! {
    /// `y[i, j] += b[j]` over the rows of the row-major `y`.
    pub fn add_row_bias<E: Elem>(y: &mut [E], b: &[E]) => add_row_bias_body
}

#[inline(always)]
fn add_row_bias_body<E: Elem, const FMA: bool>(y: &mut [E], b: &[E]) {
    if let [bias] = b {
        for v in y.iter_mut() {
            *v += *bias;
        }
        return;
    }
    for row in y.chunks_exact_mut(b.len()) {
        for (v, &bi) in row.iter_mut().zip(b) {
            *v += bi;
        }
    }
}

multiversion! {
    /// `db[j] = Σ_i dy[i, j]` over the rows of the row-major `dy`.
    pub fn sum_rows<E: Elem>(dy: &[E], db: &mut [E]) => sum_rows_body
}

#[inline(always)]
fn sum_rows_body<E: Elem, const FMA: bool>(dy: &[E], db: &mut [E]) {
    if let [d] = db {
        *d = sum_lanes(dy);
        return;
    }
    // 32 columns at a time, summed in registers over all rows (through memory, each row's adds
    // would wait on the previous row's stores).
    const W: usize = 32;
    let c = db.len();
    let mut j0 = 0;
    while j0 < c {
        let w = W.min(c - j0);
        let mut acc = [E::zero(); W];
        if w == W {
            for row in dy.chunks_exact(c) {
                let row: &[E; W] = row[j0..j0 + W].try_into().expect("W columns");
                for l in 0..W {
                    acc[l] += row[l];
                }
            }
        } else {
            for row in dy.chunks_exact(c) {
                for (a, &v) in acc.iter_mut().zip(&row[j0..j0 + w]) {
                    *a += v;
                }
            }
        }
        db[j0..j0 + w].copy_from_slice(&acc[..w]);
        j0 += W;
    }
}

/// `dst = src` (lengths must match), split over the kernel threads when large (a batch of
/// activations: the copy runs at memory speed, so a split pays from about 50k elements).
pub fn copy<E: Elem>(src: &[E], dst: &mut [E]) {
    assert_eq!(src.len(), dst.len(), "copy: source and destination lengths differ");
    split_elementwise(dst, 64 * 8, |r, piece| piece.copy_from_slice(&src[r]));
}

/// `dst = src` for short rows (feature-map rows, GEMM tile rows, 20-feature samples), in 8- or
/// 4-element moves, the last one overlapping the one before: a `memcpy` call per row of 2–16
/// elements costs more than the copy. Copies `min(len)` elements, exactly (signed zeros too).
#[inline(always)]
pub(crate) fn copy_short<E: Elem>(dst: &mut [E], src: &[E]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    // Whole chunks, then the last chunk again where a partial one is left (an overlapping copy:
    // exact, and no loop of single values that would become a `memcpy` call again).
    macro_rules! chunks {
        ($k:expr) => {{
            for (d, s) in dst.chunks_exact_mut($k).zip(src.chunks_exact($k)) {
                let v: [E; $k] = s.try_into().expect("whole chunk");
                d.copy_from_slice(&v);
            }
            if n % $k != 0 {
                let v: [E; $k] = src[n - $k..].try_into().expect("last chunk");
                dst[n - $k..].copy_from_slice(&v);
            }
        }};
    }
    match n {
        8.. => chunks!(8),
        4.. => chunks!(4),
        _ => {
            // (Three at most, written out.)
            if n > 0 {
                dst[0] = src[0];
            }
            if n > 1 {
                dst[1] = src[1];
            }
            if n > 2 {
                dst[2] = src[2];
            }
        }
    }
}

/// `y = max(x, 0)` elementwise (split over the kernel threads when large).
pub fn relu_forward<E: Elem>(x: &[E], y: &mut [E]) {
    let n = x.len().min(y.len());
    split_elementwise(&mut y[..n], 128, |r, y| relu_forward_one(&x[r], y));
}

/// `dx = dy` where `x > 0`, else 0, elementwise (split over the kernel threads when large).
pub fn relu_backward<E: Elem>(x: &[E], dy: &[E], dx: &mut [E]) {
    let n = x.len().min(dy.len()).min(dx.len());
    split_elementwise(&mut dx[..n], 128, |r, dx| relu_backward_one(&x[r.clone()], &dy[r], dx));
}

multiversion! {
    fn relu_forward_one<E: Elem>(x: &[E], y: &mut [E]) => relu_forward_body
}

#[inline(always)]
fn relu_forward_body<E: Elem, const FMA: bool>(x: &[E], y: &mut [E]) {
    for (o, &v) in y.iter_mut().zip(x) {
        // (`v ≤ 0` rather than `v > 0`: a NaN passes, as in PyTorch, instead of becoming 0.)
        *o = if v <= E::zero() { E::zero() } else { v };
    }
}

multiversion! {
    fn relu_backward_one<E: Elem>(x: &[E], dy: &[E], dx: &mut [E]) => relu_backward_body
}

#[inline(always)]
fn relu_backward_body<E: Elem, const FMA: bool>(x: &[E], dy: &[E], dx: &mut [E]) {
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
        *d = if v > E::zero() { g } else { E::zero() };
    }
}

/// `y += x`, elementwise.
pub fn add_assign<E: Elem>(y: &mut [E], x: &[E]) {
    assert_eq!(y.len(), x.len(), "add_assign: lengths differ");
    for (a, &b) in y.iter_mut().zip(x) {
        *a += b;
    }
}

/// `y = a + b`, elementwise.
pub fn add_into<E: Elem>(y: &mut [E], a: &[E], b: &[E]) {
    assert!(y.len() == a.len() && a.len() == b.len(), "add_into: lengths differ");
    for ((o, &p), &q) in y.iter_mut().zip(a).zip(b) {
        *o = p + q;
    }
}

/// The first value of `x` that is a NaN or an infinity, if any. The scan keeps a flag per lane
/// (an exponent field of all ones), which vectorises, and looks for the position only when the
/// flag is set.
pub(crate) fn first_non_finite(x: &[f32]) -> Option<usize> {
    let mut bad = false;
    any_non_finite(x, &mut bad);
    if bad { x.iter().position(|v| !v.is_finite()) } else { None }
}

multiversion! {
    /// Sets `*bad` to whether `x` holds a NaN or an infinity.
    fn any_non_finite<E: Elem>(x: &[E], bad: &mut bool) => any_non_finite_body
}

#[inline(always)]
fn any_non_finite_body<E: Elem, const FMA: bool>(x: &[E], bad: &mut bool) {
    // `|v| < ∞` is false for a NaN and for an infinity: one compare per value, which vectorises.
    let inf = E::infinity();
    *bad = !x.iter().fold(true, |a, &v| a & (v.abs() < inf));
}

#[cfg(test)]
mod finite_tests {
    #[test]
    fn the_first_nan_or_infinity_is_found() {
        let mut x = vec![1.0f32; 1000];
        x[3] = f32::MAX;
        x[4] = -0.0;
        x[5] = f32::MIN_POSITIVE / 2.0;
        assert_eq!(super::first_non_finite(&x), None);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
            x[700] = bad;
            x[900] = f32::NAN;
            assert_eq!(super::first_non_finite(&x), Some(700), "{bad}");
            x[700] = 1.0;
            assert_eq!(super::first_non_finite(&x), Some(900));
            x[900] = 1.0;
        }
        assert_eq!(super::first_non_finite(&[]), None);
    }
}
