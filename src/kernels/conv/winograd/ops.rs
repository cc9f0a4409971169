//! The arithmetic of the transforms on `[E; N]` vectors (the compiler keeps them in registers of
//! the caller's width), and unaligned loads and stores of them through raw pointers.

use crate::kernels::Elem;

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
