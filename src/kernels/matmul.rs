//! The crate's own GEMM: entries, packing and the portable `MR × NR` micro-kernel over a packed
//! panel of `B` (f64, and f32 on the portable path); f32 on AVX2 or AVX-512 runs the register tiles
//! of `simd/gemm.rs`. Allocation-free in steady state (the packing buffer is a thread-local that
//! only grows).
//!
//! It replaced the `gemm` crate on the hot path because that crate allocates on every call (packing
//! buffers and bookkeeping vectors), which a training step must not do, and because its per-call
//! overhead dominated the workload's tiny products (50×20·20×32). See `ARCHITECTURE.md`.

#[cfg(target_arch = "x86_64")]
use super::simd::gemm::gemm_f32_fast;
use super::{Elem, Strides, copy_short, cpu::fmadd, multiversion};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows of the portable micro-tile.
const MR: usize = 6;
/// Columns of the portable micro-tile.
const NR: usize = 16;
/// Columns of the widest f32 tile (two AVX-512 registers): the packing buffer's row length.
pub(crate) const NR_MAX: usize = 32;
/// Depth of one packed panel (keeps a `KC × NR` panel in L1).
pub(crate) const KC: usize = 256;

thread_local! {
    static PANEL32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PANEL64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// The largest packing buffer any thread has grown to, per element type: a thread that grows grows
/// to at least this, and [`presize_panels`] brings a thread up to it before it runs a split's part.
/// So once every size a training step needs has been seen by some thread, no thread allocates
/// again, whichever chunks work stealing hands it.
static HIGH32: AtomicUsize = AtomicUsize::new(0);
static HIGH64: AtomicUsize = AtomicUsize::new(0);

/// Grows `v` to `len` (or the high-water mark, if larger) when it is shorter than `len`.
fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize, high: &AtomicUsize) {
    if v.len() < len {
        let target = len.max(high.load(Ordering::Relaxed));
        v.resize(target, T::default());
        high.fetch_max(target, Ordering::Relaxed);
    }
}

/// Grows this thread's packing buffers to the largest any thread uses (called by the threads of a
/// split before they run their parts; a no-op once they are that large).
pub(crate) fn presize_panels() {
    let h32 = HIGH32.load(Ordering::Relaxed);
    if h32 > 0 {
        // A thread inside `with_panel` (a split started from a plane path) keeps its buffer as is.
        PANEL32.with(|p| p.try_borrow_mut().map(|mut p| grow(&mut p, h32, &HIGH32)).ok());
    }
    let h64 = HIGH64.load(Ordering::Relaxed);
    if h64 > 0 {
        PANEL64.with(|p| p.try_borrow_mut().map(|mut p| grow(&mut p, h64, &HIGH64)).ok());
    }
}

/// Runs `f` with this thread's packing buffer for `E` (`len` elements, grown as needed, contents
/// unspecified). The GEMM and the im2col/col2im plane paths use it; neither calls the other, so
/// the buffer is never borrowed twice.
pub(super) fn with_panel<E: Elem, R>(len: usize, f: impl FnOnce(&mut [E]) -> R) -> R {
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        PANEL32.with(|p| {
            let mut p = p.borrow_mut();
            grow(&mut p, len, &HIGH32);
            // SAFETY: E is f32 (checked by TypeId just above), so the slice has the right type.
            let s = unsafe { core::slice::from_raw_parts_mut(p.as_mut_ptr() as *mut E, len) };
            f(s)
        })
    } else {
        PANEL64.with(|p| {
            let mut p = p.borrow_mut();
            grow(&mut p, len, &HIGH64);
            assert!(core::any::TypeId::of::<E>() == core::any::TypeId::of::<f64>(), "Elem is f32 or f64");
            // SAFETY: E is f64 (checked by TypeId just above), so the slice has the right type.
            let s = unsafe { core::slice::from_raw_parts_mut(p.as_mut_ptr() as *mut E, len) };
            f(s)
        })
    }
}

/// `c (+)= a · b` for an `m×k` by `k×n` product with arbitrary strides, `m, n, k ≥ 1`; the slices'
/// lengths have been checked by the caller ([`super::gemm`], which handles empty products).
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
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        #[cfg(target_arch = "x86_64")]
        {
            let (a, b, c) = (as_f32(a), as_f32(b), as_f32_mut(c));
            let done = with_panel::<f32, _>(KC * NR_MAX, |panel| {
                gemm_f32_fast((m, n, k), (a, sa, None), (b, sb, None), (c, sc), accumulate, panel)
            });
            if done {
                return;
            }
        }
    }
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
            pack_b(b, sb, p0, kc, j0, nc, panel, NR);
            let first = p0 == 0 && !accumulate;
            let mut i0 = 0;
            while i0 < m {
                let mr = MR.min(m - i0);
                let mut acc = [[E::zero(); NR]; MR];
                for p in 0..kc {
                    let brow: &[E; NR] = panel[p * NR..(p + 1) * NR].try_into().expect("NR wide");
                    let ap = (p0 + p) * sa.cs;
                    for (r, accr) in acc.iter_mut().enumerate().take(mr) {
                        let av = a[(i0 + r) * sa.rs + ap];
                        for j in 0..NR {
                            accr[j] = fmadd::<E, FMA>(av, brow[j], accr[j]);
                        }
                    }
                }
                store_tile(&acc, mr, nc, c, (i0 * sc.rs + j0 * sc.cs, sc), first);
                i0 += MR;
            }
        }
    }
}

/// The depth of the panels for a product of depth `k`: at most [`KC`], in blocks as equal as
/// possible (784 = 4 × 196 rather than 3 × 256 + 16, whose last panel would pay a whole pass of
/// loads and stores of `C` for 16 steps).
#[inline(always)]
pub(crate) fn depth_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// Packs `B[p0..p0+kc, j0..j0+nc]` as `kc` rows of `nr` (zero-padded), reading `B` along its
/// unit-stride direction (rows for row-major `B`, columns for a transposed view).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn pack_b<E: Elem>(
    b: &[E],
    sb: Strides,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    panel: &mut [E],
    nr: usize,
) {
    if sb.cs == 1 {
        // Rows of B are unit-stride: short fixed-size moves (no per-element indexing).
        for p in 0..kc {
            let row = &mut panel[p * nr..(p + 1) * nr];
            let base = (p0 + p) * sb.rs + j0;
            copy_short(&mut row[..nc], &b[base..base + nc]);
            row[nc..].fill(E::zero());
        }
    } else if sb.rs != 1 {
        for p in 0..kc {
            let row = &mut panel[p * nr..(p + 1) * nr];
            let base = (p0 + p) * sb.rs + j0 * sb.cs;
            for (j, v) in row[..nc].iter_mut().enumerate() {
                *v = b[base + j * sb.cs];
            }
            row[nc..].fill(E::zero());
        }
    } else {
        for j in 0..nr {
            if j < nc {
                let col = &b[p0 + (j0 + j) * sb.cs..][..kc];
                for (p, &x) in col.iter().enumerate() {
                    panel[p * nr + j] = x;
                }
            } else {
                for p in 0..kc {
                    panel[p * nr + j] = E::zero();
                }
            }
        }
    }
}

/// Writes (`first`) or adds the `mr × nc` corner of a tile into `C` at `(offset, strides)`.
#[inline(always)]
fn store_tile<E: Elem>(acc: &[[E; NR]; MR], mr: usize, nc: usize, c: &mut [E], at: (usize, Strides), first: bool) {
    let (base, sc) = at;
    if sc.cs == 1 {
        for (r, accr) in acc.iter().enumerate().take(mr) {
            let dst = &mut c[base + r * sc.rs..][..nc];
            if first {
                copy_short(dst, &accr[..nc]);
            } else {
                for (d, &v) in dst.iter_mut().zip(accr) {
                    *d += v;
                }
            }
        }
        return;
    }
    for (r, accr) in acc.iter().enumerate().take(mr) {
        for (j, &v) in accr.iter().enumerate().take(nc) {
            let d = &mut c[base + r * sc.rs + j * sc.cs];
            *d = if first { v } else { *d + v };
        }
    }
}

/// `c = a · B` in f32 where row `p` of the `k × n` matrix `B` is `b[offs[p]..][..n]`: an implicit
/// im2col, the rows being shifted windows of zero-padded input planes. `a` is row-major `m × k`
/// with row stride `a_rs`, `c` row-major `m × n` with row stride `ldc`, `n` a multiple of 16.
/// Returns `false`, doing nothing, on the portable path ([`super::simd::isa`]; the caller then
/// builds the patch matrix instead).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_indirect_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_rs: usize,
    b: &[f32],
    offs: &[usize],
    c: &mut [f32],
    ldc: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(m > 0 && n > 0 && k > 0 && a_rs >= k && ldc >= n, "gemm_indirect: bad shape");
        let (sa, sb, sc) = (Strides::row_major(a_rs), Strides { rs: 0, cs: 1 }, Strides::row_major(ldc));
        with_panel::<f32, _>(KC * NR_MAX, |panel| {
            gemm_f32_fast((m, n, k), (a, sa, None), (b, sb, Some(offs)), (c, sc), false, panel)
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, a, a_rs, b, offs, c, ldc);
        false
    }
}

/// `c (+)= A · b` in f32 where row `i` of the `m × k` matrix `A` is `a[a_rows[i]..]` with column
/// stride `a_cs` (an implicit im2col on the left: the rows are windows of padded planes), `b` and
/// `c` strided as in [`super::gemm()`]. Returns `false`, doing nothing, on the portable path.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_rows_indirect_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_rows: &[usize],
    a_cs: usize,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
    sc: Strides,
    accumulate: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(m > 0 && n > 0 && k > 0, "gemm_rows_indirect: empty product");
        assert!(b.len() >= sb.required_len(k, n), "gemm_rows_indirect: rhs too short");
        let sa = Strides { rs: 0, cs: a_cs };
        with_panel::<f32, _>(KC * NR_MAX, |panel| {
            gemm_f32_fast((m, n, k), (a, sa, Some(a_rows)), (b, sb, None), (c, sc), accumulate, panel)
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, a, a_rows, a_cs, b, sb, c, sc, accumulate);
        false
    }
}

/// `a` as `&[f32]` when `E` is `f32`.
pub(super) fn as_f32<E: Elem>(a: &[E]) -> &[f32] {
    assert_eq!(core::any::TypeId::of::<E>(), core::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (asserted just above).
    unsafe { core::slice::from_raw_parts(a.as_ptr() as *const f32, a.len()) }
}

/// `a` as `&mut [f32]` when `E` is `f32`.
pub(super) fn as_f32_mut<E: Elem>(a: &mut [E]) -> &mut [f32] {
    assert_eq!(core::any::TypeId::of::<E>(), core::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (asserted just above).
    unsafe { core::slice::from_raw_parts_mut(a.as_mut_ptr() as *mut f32, a.len()) }
}
