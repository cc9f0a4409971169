//! The arithmetic of the transforms on `[E; N]` vectors (the compiler keeps them in registers of
//! the caller's width), and unaligned loads and stores of them through raw pointers.

use crate::kernels::split::Columns;
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
    /// `points[p][j] = (G g Gᵀ)[p]` of the kernels `g[s][v] = taps[3s + v][j]` for the columns `j`
    /// of `points` (rows of `n`, its own block of columns of the 16 rows of `U`; `taps` the same
    /// columns of 9 rows).
    pub(super) fn weights<E: Elem>(taps: &mut Columns<'_, E>, points: &mut Columns<'_, E>) => weights_body
}

#[inline(always)]
fn weights_body<E: Elem, const FMA: bool>(taps: &mut Columns<'_, E>, points: &mut Columns<'_, E>) {
    let (mut j, n) = (0, points.width());
    while j + 16 <= n {
        weights_n::<E, 16>(taps, points, j);
        j += 16;
    }
    for j in j..n {
        weights_n::<E, 1>(taps, points, j);
    }
}

#[inline(always)]
fn weights_n<E: Elem, const N: usize>(taps: &mut Columns<'_, E>, points: &mut Columns<'_, E>, j: usize) {
    let mut tap = |k: usize| -> [E; N] { taps.row(k)[j..][..N].try_into().expect("N kernels") };
    // t[i][v] = (G g)[i][v], column v of g at a time; then row i of t through G.
    let cols = [g3([tap(0), tap(3), tap(6)]), g3([tap(1), tap(4), tap(7)]), g3([tap(2), tap(5), tap(8)])];
    for (i, ((&c0, &c1), &c2)) in cols[0].iter().zip(&cols[1]).zip(&cols[2]).enumerate() {
        for (b, x) in g3([c0, c1, c2]).iter().enumerate() {
            points.row(4 * i + b)[j..][..N].copy_from_slice(x);
        }
    }
}

multiversion! {
    /// `dw[(j − j0)·9 + 3s + v] = (Gᵀ m G)[s][v]` of the 4 × 4 transformed gradients
    /// `m[i][b] = points[(4i + b)·n + j]`, for the kernels `j0 ≤ j < j0 + dw.len()/9` (`n` in all).
    pub(super) fn weight_gradient<E: Elem>(points: &[E], n: usize, j0: usize, dw: &mut [E]) => weight_gradient_body
}

#[inline(always)]
fn weight_gradient_body<E: Elem, const FMA: bool>(points: &[E], n: usize, j0: usize, dw: &mut [E]) {
    let mut blocks = dw.chunks_exact_mut(9 * 16);
    let mut j = j0;
    for block in &mut blocks {
        weight_gradient_n::<E, 16>(points, n, j, block);
        j += 16;
    }
    for one in blocks.into_remainder().chunks_exact_mut(9) {
        weight_gradient_n::<E, 1>(points, n, j, one);
        j += 1;
    }
}

#[inline(always)]
fn weight_gradient_n<E: Elem, const N: usize>(points: &[E], n: usize, j: usize, dw: &mut [E]) {
    let pt = |p: usize| -> [E; N] { points[p * n + j..][..N].try_into().expect("N kernels") };
    // t[i][v] = (m G)[i][v], row i of m at a time; then column v of t through Gᵀ.
    let rows = [
        gt4([pt(0), pt(1), pt(2), pt(3)]),
        gt4([pt(4), pt(5), pt(6), pt(7)]),
        gt4([pt(8), pt(9), pt(10), pt(11)]),
        gt4([pt(12), pt(13), pt(14), pt(15)]),
    ];
    let dw: &mut [E] = &mut dw[..9 * N];
    for v in 0..3 {
        for (s, x) in gt4([rows[0][v], rows[1][v], rows[2][v], rows[3][v]]).iter().enumerate() {
            for (l, &g) in x.iter().enumerate() {
                dw[l * 9 + 3 * s + v] = g;
            }
        }
    }
}
