//! The crate's own GEMM: a register-blocked `MR × NR` micro-kernel over a packed panel of `B`,
//! multiversioned for AVX2+FMA, allocation-free in steady state (the packing buffer is a
//! thread-local that only grows).
//!
//! It replaced the `gemm` crate on the hot path because that crate allocates on every call (packing
//! buffers and bookkeeping vectors), which a training step must not do, and because its per-call
//! overhead dominated the workload's tiny products (50×20·20×32). See `ARCHITECTURE.md`.

use super::{Elem, Strides, fmadd, multiversion};
use std::cell::RefCell;

/// Rows of the micro-tile (12 accumulator registers of `f32` at NR = 16; a 4-row kernel takes
/// the remainder).
const MR: usize = 6;
/// Columns of the micro-tile (two AVX registers of `f32`).
const NR: usize = 16;
/// Depth of one packed panel (keeps a `KC × NR` panel in L1).
const KC: usize = 256;

thread_local! {
    static PANEL32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PANEL64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's packing buffer for `E`, grown to at least `len` elements.
fn with_panel<E: Elem, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
        if v.len() < len {
            v.resize(len, T::default());
        }
    }
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        PANEL32.with(|p| {
            let mut p = p.borrow_mut();
            grow(&mut p, len);
            // SAFETY: E is f32 (checked by TypeId just above), so the slice has the right type.
            let s = unsafe { core::slice::from_raw_parts_mut(p.as_mut_ptr() as *mut E, len) };
            f(s)
        })
    } else {
        PANEL64.with(|p| {
            let mut p = p.borrow_mut();
            grow(&mut p, len);
            assert_eq!(core::mem::size_of::<E>(), 8, "Elem is f32 or f64");
            // SAFETY: Elem is implemented for f32 and f64 only; not f32, so E is f64.
            let s = unsafe { core::slice::from_raw_parts_mut(p.as_mut_ptr() as *mut E, len) };
            f(s)
        })
    }
}

/// `c (+)= a · b` for an `m×k` by `k×n` product with arbitrary strides; the slices' lengths have
/// been checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_small<E: Elem>(
    m: usize,
    n: usize,
    k: usize,
    a: &[E],
    sa: Strides,
    b: &[E],
    sb: Strides,
    c: &mut [E],
    sc: Strides,
    accumulate: bool,
) {
    with_panel::<E, _>(KC * NR, |panel| gemm_mv(m, n, k, a, sa, b, sb, c, sc, accumulate, panel))
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn gemm_mv<E: Elem>(
        m: usize,
        n: usize,
        k: usize,
        a: &[E],
        sa: Strides,
        b: &[E],
        sb: Strides,
        c: &mut [E],
        sc: Strides,
        accumulate: bool,
        panel: &mut [E],
    ) => gemm_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemm_body<E: Elem, const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: &[E],
    sa: Strides,
    b: &[E],
    sb: Strides,
    c: &mut [E],
    sc: Strides,
    accumulate: bool,
    panel: &mut [E],
) {
    for j0 in (0..n).step_by(NR) {
        let nc = NR.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            // Pack B[p0..p0+kc, j0..j0+nc] as kc rows of NR (zero-padded), reading B along its
            // unit-stride direction (rows for row-major B, columns for a transposed view).
            if sb.cs == 1 || sb.rs != 1 {
                for p in 0..kc {
                    let row = &mut panel[p * NR..(p + 1) * NR];
                    let base = (p0 + p) * sb.rs + j0 * sb.cs;
                    if sb.cs == 1 {
                        for (v, &x) in row[..nc].iter_mut().zip(&b[base..base + nc]) {
                            *v = x;
                        }
                    } else {
                        for (j, v) in row[..nc].iter_mut().enumerate() {
                            *v = b[base + j * sb.cs];
                        }
                    }
                    row[nc..].fill(E::zero());
                }
            } else {
                for j in 0..NR {
                    if j < nc {
                        let col = &b[p0 + (j0 + j) * sb.cs..][..kc];
                        for (p, &x) in col.iter().enumerate() {
                            panel[p * NR + j] = x;
                        }
                    } else {
                        for p in 0..kc {
                            panel[p * NR + j] = E::zero();
                        }
                    }
                }
            }
            let first = p0 == 0 && !accumulate;
            let mut i0 = 0;
            while i0 < m {
                let mr = MR.min(m - i0);
                let mut acc = [[E::zero(); NR]; MR];
                #[cfg(target_arch = "x86_64")]
                // Rows this tile runs through the AVX2 f32 kernel: MR, or 4 for a remainder of 4–5.
                let rows = if mr == MR {
                    MR
                } else if mr >= 4 {
                    4
                } else {
                    0
                };
                let done = FMA && rows > 0 && {
                    if let Some(acc32) = (&mut acc as &mut dyn core::any::Any).downcast_mut::<[[f32; NR]; MR]>() {
                        let a32 = as_f32(a);
                        let p32 = as_f32(&panel[..kc * NR]);
                        let need = (i0 + rows - 1) * sa.rs + (p0 + kc - 1) * sa.cs;
                        assert!(need < a32.len(), "gemm: lhs too short");
                        let at = &a32[i0 * sa.rs + p0 * sa.cs..];
                        // SAFETY: FMA is only true inside the AVX2+FMA version; the assert above bounds
                        // every element of A the kernel reads, the panel holds kc rows of NR.
                        unsafe {
                            if rows == MR {
                                ukernel_f32::<MR>(kc, at, sa.rs, sa.cs, p32, acc32)
                            } else {
                                ukernel_f32::<4>(kc, at, sa.rs, sa.cs, p32, acc32)
                            }
                        };
                        rows == mr
                    } else {
                        false
                    }
                };
                // A remainder of 5 rows: the kernel did 4, the last row goes through the loop below.
                let skip =
                    if FMA && rows == 4 && mr > 4 && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
                        4
                    } else {
                        0
                    };
                #[cfg(not(target_arch = "x86_64"))]
                let done = false;
                if done {
                } else if mr == MR {
                    for p in 0..kc {
                        let brow: &[E; NR] = panel[p * NR..(p + 1) * NR].try_into().expect("NR wide");
                        let ap = (p0 + p) * sa.cs;
                        for r in 0..MR {
                            let av = a[(i0 + r) * sa.rs + ap];
                            for j in 0..NR {
                                acc[r][j] = fmadd::<E, FMA>(av, brow[j], acc[r][j]);
                            }
                        }
                    }
                } else {
                    for p in 0..kc {
                        let brow: &[E; NR] = panel[p * NR..(p + 1) * NR].try_into().expect("NR wide");
                        let ap = (p0 + p) * sa.cs;
                        for r in skip..mr {
                            let av = a[(i0 + r) * sa.rs + ap];
                            for j in 0..NR {
                                acc[r][j] = fmadd::<E, FMA>(av, brow[j], acc[r][j]);
                            }
                        }
                    }
                }
                for (r, accr) in acc.iter().enumerate().take(mr) {
                    let base = (i0 + r) * sc.rs + j0 * sc.cs;
                    if sc.cs == 1 {
                        let dst = &mut c[base..base + nc];
                        if first {
                            for (d, &v) in dst.iter_mut().zip(accr) {
                                *d = v;
                            }
                        } else {
                            for (d, &v) in dst.iter_mut().zip(accr) {
                                *d += v;
                            }
                        }
                    } else {
                        for (j, &v) in accr.iter().enumerate().take(nc) {
                            let d = &mut c[base + j * sc.cs];
                            *d = if first { v } else { *d + v };
                        }
                    }
                }
                i0 += MR;
            }
        }
    }
}

/// `a` as `&[f32]` when `E` is `f32`.
fn as_f32<E: Elem>(a: &[E]) -> &[f32] {
    assert_eq!(core::any::TypeId::of::<E>(), core::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (asserted just above).
    unsafe { core::slice::from_raw_parts(a.as_ptr() as *const f32, a.len()) }
}

/// The `R × 16` f32 micro-kernel with AVX2 and FMA: `acc[..R] = A[0..R, 0..kc] · panel[0..kc, 0..16]`,
/// the `2R` accumulators in registers.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a` must hold element `(R−1)·rs + (kc−1)·cs`; `panel` `kc·16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ukernel_f32<const R: usize>(
    kc: usize,
    a: &[f32],
    rs: usize,
    cs: usize,
    panel: &[f32],
    acc: &mut [[f32; NR]; MR],
) {
    use core::arch::x86_64::*;
    debug_assert!(R <= MR && panel.len() >= kc * NR && (kc == 0 || a.len() > (R - 1) * rs + (kc - 1) * cs));
    let (pa, pb) = (a.as_ptr(), panel.as_ptr());
    // SAFETY: the caller guarantees the bounds above; unaligned loads and stores.
    unsafe {
        let mut c0 = [_mm256_setzero_ps(); R];
        let mut c1 = [_mm256_setzero_ps(); R];
        for p in 0..kc {
            let b0 = _mm256_loadu_ps(pb.add(p * NR));
            let b1 = _mm256_loadu_ps(pb.add(p * NR + 8));
            let ap = pa.add(p * cs);
            for r in 0..R {
                let av = _mm256_set1_ps(*ap.add(r * rs));
                c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc[r].as_mut_ptr(), c0[r]);
            _mm256_storeu_ps(acc[r].as_mut_ptr().add(8), c1[r]);
        }
    }
}
