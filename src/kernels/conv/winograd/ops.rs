//! The arithmetic of the transforms on `[E; N]` vectors (the compiler keeps them in registers of
//! the caller's width), and unaligned loads and stores of them through raw pointers.

use crate::kernels::{Elem, multiversion};

#[inline(always)]
pub(super) fn add<E: Elem, const N: usize>(mut x: [E; N], y: [E; N]) -> [E; N] {
    for l in 0..N {
        x[l] += y[l];
    }
    x
}

#[inline(always)]
pub(super) fn sub<E: Elem, const N: usize>(mut x: [E; N], y: [E; N]) -> [E; N] {
    for l in 0..N {
        x[l] = x[l] - y[l];
    }
    x
}

/// `Bᵀ x` along one axis: `(x0 − x2, x1 + x2, x2 − x1, x1 − x3)`.
#[inline(always)]
pub(super) fn bt<E: Elem, const N: usize>([x0, x1, x2, x3]: [[E; N]; 4]) -> [[E; N]; 4] {
    [sub(x0, x2), add(x1, x2), sub(x2, x1), sub(x1, x3)]
}

/// `Aᵀ x` along one axis: `(x0 + x1 + x2, x1 − x2 − x3)`.
#[inline(always)]
pub(super) fn at<E: Elem, const N: usize>([x0, x1, x2, x3]: [[E; N]; 4]) -> [[E; N]; 2] {
    [add(add(x0, x1), x2), sub(sub(x1, x2), x3)]
}

/// `A x` along one axis: `(x0, x0 + x1, x0 − x1, −x1)`.
#[inline(always)]
pub(super) fn ax<E: Elem, const N: usize>([x0, x1]: [[E; N]; 2]) -> [[E; N]; 4] {
    let mut neg = x1;
    for v in &mut neg {
        *v = -*v;
    }
    [x0, add(x0, x1), sub(x0, x1), neg]
}

/// `N` consecutive values at `p + at`.
///
/// # Safety
/// `p + at .. p + at + N` is inside one allocation.
#[inline(always)]
pub(super) unsafe fn load<E: Elem, const N: usize>(p: *const E, at: usize) -> [E; N] {
    // SAFETY: the caller's range; `read_unaligned` needs no alignment.
    unsafe { p.add(at).cast::<[E; N]>().read_unaligned() }
}

/// Writes `v` to `p + at ..`.
///
/// # Safety
/// `p + at .. p + at + N` is inside one allocation, writable, and not borrowed elsewhere.
#[inline(always)]
pub(super) unsafe fn store<E: Elem, const N: usize>(p: *mut E, at: usize, v: [E; N]) {
    // SAFETY: the caller's range.
    unsafe { p.add(at).cast::<[E; N]>().write_unaligned(v) }
}

#[inline(always)]
fn half<E: Elem, const N: usize>(mut x: [E; N]) -> [E; N] {
    for v in &mut x {
        *v = *v * E::lit(0.5);
    }
    x
}

/// `G x` along one axis: `(x0, (x0 + x1 + x2)/2, (x0 − x1 + x2)/2, x2)`.
#[inline(always)]
fn g3<E: Elem, const N: usize>([x0, x1, x2]: [[E; N]; 3]) -> [[E; N]; 4] {
    [x0, half(add(add(x0, x1), x2)), half(add(sub(x0, x1), x2)), x2]
}

/// `Gᵀ x` along one axis: `(x0 + (x1 + x2)/2, (x1 − x2)/2, (x1 + x2)/2 + x3)`.
#[inline(always)]
fn gt4<E: Elem, const N: usize>([x0, x1, x2, x3]: [[E; N]; 4]) -> [[E; N]; 3] {
    let s = half(add(x1, x2));
    [add(x0, s), half(sub(x1, x2)), add(s, x3)]
}

multiversion! {
    /// `points[p·n + j] = (G g Gᵀ)[p]` of the kernels `g[s][v] = taps[(3s + v)·n + j]`, `j < n`.
    pub(super) fn weights<E: Elem>(taps: &[E], n: usize, points: &mut [E]) => weights_body
}

#[inline(always)]
fn weights_body<E: Elem, const FMA: bool>(taps: &[E], n: usize, points: &mut [E]) {
    let mut j = 0;
    while j + 16 <= n {
        weights_n::<E, 16>(taps, n, points, j);
        j += 16;
    }
    for j in j..n {
        weights_n::<E, 1>(taps, n, points, j);
    }
}

#[inline(always)]
fn weights_n<E: Elem, const N: usize>(taps: &[E], n: usize, points: &mut [E], j: usize) {
    let tap = |k: usize| -> [E; N] { taps[k * n + j..][..N].try_into().expect("N kernels") };
    // t[i][v] = (G g)[i][v], column v of g at a time; then row i of t through G.
    let cols = [g3([tap(0), tap(3), tap(6)]), g3([tap(1), tap(4), tap(7)]), g3([tap(2), tap(5), tap(8)])];
    for i in 0..4 {
        for (b, x) in g3([cols[0][i], cols[1][i], cols[2][i]]).iter().enumerate() {
            points[(4 * i + b) * n + j..][..N].copy_from_slice(x);
        }
    }
}

multiversion! {
    /// `taps[(3s + v)·n + j] = (Gᵀ m G)[s][v]` of the 4 × 4 transformed gradients
    /// `m[i][b] = points[(4i + b)·n + j]`, `j < n`.
    pub(super) fn weight_gradient<E: Elem>(points: &[E], n: usize, taps: &mut [E]) => weight_gradient_body
}

#[inline(always)]
fn weight_gradient_body<E: Elem, const FMA: bool>(points: &[E], n: usize, taps: &mut [E]) {
    let mut j = 0;
    while j + 16 <= n {
        weight_gradient_n::<E, 16>(points, n, taps, j);
        j += 16;
    }
    for j in j..n {
        weight_gradient_n::<E, 1>(points, n, taps, j);
    }
}

#[inline(always)]
fn weight_gradient_n<E: Elem, const N: usize>(points: &[E], n: usize, taps: &mut [E], j: usize) {
    let pt = |p: usize| -> [E; N] { points[p * n + j..][..N].try_into().expect("N kernels") };
    // t[i][v] = (m G)[i][v], row i of m at a time; then column v of t through Gᵀ.
    let rows = [
        gt4([pt(0), pt(1), pt(2), pt(3)]),
        gt4([pt(4), pt(5), pt(6), pt(7)]),
        gt4([pt(8), pt(9), pt(10), pt(11)]),
        gt4([pt(12), pt(13), pt(14), pt(15)]),
    ];
    for v in 0..3 {
        for (s, x) in gt4([rows[0][v], rows[1][v], rows[2][v], rows[3][v]]).iter().enumerate() {
            taps[(3 * s + v) * n + j..][..N].copy_from_slice(x);
        }
    }
}
