//! The crate's own GEMM: a register-blocked `MR × NR` micro-kernel over a packed panel of `B`,
//! multiversioned for AVX2+FMA, allocation-free in steady state (the packing buffer is a
//! thread-local that only grows).
//!
//! It replaced the `gemm` crate on the hot path because that crate allocates on every call (packing
//! buffers and bookkeeping vectors), which a training step must not do, and because its per-call
//! overhead dominated the workload's tiny products (50×20·20×32). See `ARCHITECTURE.md`.

use super::{Elem, Strides, copy_short, cpu::fmadd, multiversion};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows of the micro-tile (12 accumulator registers of `f32` at NR = 16; tiles of 1–5 rows take
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
    #[cfg(target_arch = "x86_64")]
    if FMA && super::cpu::has_avx2_fma() && core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        let (a, b, c, panel) = (as_f32(a), as_f32(b), as_f32_mut(c), as_f32_mut(panel));
        // SAFETY: the CPU supports AVX2 and FMA (detection checked just above, whatever FMA says).
        return unsafe { gemm_f32_avx2(m, n, k, a, sa, b, sb, c, sc, accumulate, panel, None, None) };
    }
    for j0 in (0..n).step_by(NR) {
        let nc = NR.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            pack_b(b, sb, p0, kc, j0, nc, panel);
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

/// The rows of the next f32 tile when `rem` rows are left: six, except that 7 and 8 left become
/// 4 + 3 and 4 + 4 (a 1- or 2-row tile has too few accumulators to hide the FMA latency).
#[inline(always)]
fn tile_rows(rem: usize) -> usize {
    if rem == 7 || rem == 8 { 4 } else { rem.min(MR) }
}

/// The depth of the panels for a product of depth `k`: at most [`KC`], in blocks as equal as
/// possible (784 = 4 × 196 rather than 3 × 256 + 16, whose last panel would pay a whole pass of
/// loads and stores of `C` for 16 steps).
#[inline(always)]
fn depth_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// Packs `B[p0..p0+kc, j0..j0+nc]` as `kc` rows of `NR` (zero-padded), reading `B` along its
/// unit-stride direction (rows for row-major `B`, columns for a transposed view).
#[inline(always)]
fn pack_b<E: Elem>(b: &[E], sb: Strides, p0: usize, kc: usize, j0: usize, nc: usize, panel: &mut [E]) {
    if sb.cs == 1 {
        // Rows of B are unit-stride: short fixed-size moves (no per-element indexing).
        for p in 0..kc {
            let row = &mut panel[p * NR..(p + 1) * NR];
            let base = (p0 + p) * sb.rs + j0;
            copy_short(&mut row[..nc], &b[base..base + nc]);
            row[nc..].fill(E::zero());
        }
    } else if sb.rs != 1 {
        for p in 0..kc {
            let row = &mut panel[p * NR..(p + 1) * NR];
            let base = (p0 + p) * sb.rs + j0 * sb.cs;
            for (j, v) in row[..nc].iter_mut().enumerate() {
                *v = b[base + j * sb.cs];
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
}

/// [`pack_b`] for f32 with AVX2: a transposed `B` (unit-stride columns, as the weight gradient's
/// `dYᵀ` and a transposed weight matrix are) is packed in 8 × 8 blocks through an in-register
/// transpose; the element loop stored one float per 64-byte panel row (5 % of the VGG's step).
///
/// # Safety
/// The CPU must support AVX2. (Every access is bounds-checked.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f32(b: &[f32], sb: Strides, p0: usize, kc: usize, j0: usize, nc: usize, panel: &mut [f32]) {
    use core::arch::x86_64::*;
    if sb.rs != 1 || sb.cs == 1 {
        return pack_b(b, sb, p0, kc, j0, nc, panel);
    }
    let cs = sb.cs;
    let (p8, j8) = (kc / 8 * 8, nc / 8 * 8);
    let at = |p: usize, j: usize| p0 + p + (j0 + j) * cs;
    for jb in (0..j8).step_by(8) {
        for pb in (0..p8).step_by(8) {
            // Row r of the block: column jb + r of B, depths pb..pb + 8.
            let r: [__m256; 8] = core::array::from_fn(|r| {
                let src = &b[at(pb, jb + r)..][..8];
                // SAFETY: `src` holds 8 floats (unaligned load).
                unsafe { _mm256_loadu_ps(src.as_ptr()) }
            });
            let (t0, t1) = (_mm256_unpacklo_ps(r[0], r[1]), _mm256_unpackhi_ps(r[0], r[1]));
            let (t2, t3) = (_mm256_unpacklo_ps(r[2], r[3]), _mm256_unpackhi_ps(r[2], r[3]));
            let (t4, t5) = (_mm256_unpacklo_ps(r[4], r[5]), _mm256_unpackhi_ps(r[4], r[5]));
            let (t6, t7) = (_mm256_unpacklo_ps(r[6], r[7]), _mm256_unpackhi_ps(r[6], r[7]));
            let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
            let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
            let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
            let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (q, v) in cols.into_iter().enumerate() {
                let dst = &mut panel[(pb + q) * NR + jb..][..8];
                // SAFETY: `dst` holds 8 floats (unaligned store).
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
            }
        }
        for p in p8..kc {
            for j in jb..jb + 8 {
                panel[p * NR + j] = b[at(p, j)];
            }
        }
    }
    for j in j8..NR {
        for p in 0..kc {
            panel[p * NR + j] = if j < nc { b[at(p, j)] } else { 0.0 };
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

/// The f32 GEMM with AVX2 and FMA: `R × 16` register tiles for every row count `R` ≤ `MR`; `B` read
/// in place when its rows are unit-stride and a block is a full 16 columns wide (packed otherwise,
/// into `panel`); tiles written straight into `C` when its rows are unit-stride (through a small
/// buffer otherwise). Small products, where packing and copying would cost more than the
/// arithmetic, are the reason for the in-place paths. With `a_rows`, row `i` of `A` starts at
/// `a[a_rows[i]]` (`sa.rs` unused); with `b_rows`, row `p` of `B` is `b[b_rows[p]..][..n]`, read in
/// place (`sb` unused, `n` a multiple of 16): the implicit im2col of the convolutions.
///
/// # Safety
/// The CPU must support AVX2 and FMA. (Every slice is bounds-checked against its view here.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32_avx2(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
    sc: Strides,
    accumulate: bool,
    panel: &mut [f32],
    a_rows: Option<&[usize]>,
    b_rows: Option<&[usize]>,
) {
    // Empty products never get here: `kernels::gemm` returns for them. The bounds below are what
    // the raw-pointer tiles rely on.
    assert!(sc.required_len(m, n) <= c.len(), "gemm: output too short");
    match a_rows {
        None => assert!(sa.required_len(m, k) <= a.len(), "gemm: lhs too short"),
        Some(r) => assert!(
            r.len() >= m && r[..m].iter().all(|&o| o + (k - 1) * sa.cs < a.len()),
            "gemm: an lhs row runs past its buffer"
        ),
    }
    match b_rows {
        None => assert!(sb.required_len(k, n) <= b.len(), "gemm: rhs too short"),
        Some(r) => assert!(
            n.is_multiple_of(NR) && r.len() >= k && r[..k].iter().all(|&o| o + n <= b.len()),
            "gemm: an rhs row runs past its buffer (or n is not a multiple of 16)"
        ),
    }
    assert!(panel.len() >= KC * NR, "gemm: panel too short");
    let tiles = Tiles { a, sa, a_rows, sc, accumulate };
    // B read in place (no packing) for every block: B's rows through `b_rows`, or unit-stride
    // rows and whole 16-column blocks.
    let in_place = |p0: usize, j0: usize| -> (*const f32, usize, *const usize) {
        match b_rows {
            // SAFETY (the pointer arithmetic): rows p0..p0+kc, columns j0..j0+16 of B are in
            // bounds (asserted above).
            Some(r) => (unsafe { b.as_ptr().add(j0) }, 0, r[p0..].as_ptr()),
            None => (unsafe { b.as_ptr().add(p0 * sb.rs + j0) }, sb.rs, core::ptr::null()),
        }
    };
    if sc.cs == 1 && a_rows.is_none() && b_rows.is_none() && sb.cs == 1 && n.is_multiple_of(NR) {
        // Nothing to pack: each A tile (`mr` rows × `kc`) is used for all column blocks while it
        // is in L1, and B's `kc × n` slab comes from L2 (3b's step, whose time is mostly
        // 100×784·784×64 and its weight gradient, measured 6 % faster than with the column-block
        // order below; the VGG's implicit-im2col products measured slower this way and keep it).
        let kb = depth_block(k);
        for p0 in (0..k).step_by(kb) {
            let kc = kb.min(k - p0);
            let mut i0 = 0;
            while i0 < m {
                let mr = tile_rows(m - i0);
                for j0 in (0..n).step_by(NR) {
                    // SAFETY: AVX2 and FMA (this function's features); the bounds asserted above.
                    unsafe { tiles.run(c, (i0, mr), (j0, NR), (p0, kc), in_place(p0, j0)) };
                }
                i0 += mr;
            }
        }
        return;
    }
    for j0 in (0..n).step_by(NR) {
        let nc = NR.min(n - j0);
        let kb = depth_block(k);
        for p0 in (0..k).step_by(kb) {
            let kc = kb.min(k - p0);
            let bb = if b_rows.is_some() || (sb.cs == 1 && nc == NR) {
                in_place(p0, j0)
            } else {
                // SAFETY: AVX2 and FMA (this function's features).
                unsafe { pack_b_f32(b, sb, p0, kc, j0, nc, panel) };
                (panel.as_ptr(), NR, core::ptr::null())
            };
            let mut i0 = 0;
            while i0 < m {
                let mr = tile_rows(m - i0);
                // SAFETY: as above.
                unsafe { tiles.run(c, (i0, mr), (j0, nc), (p0, kc), bb) };
                i0 += mr;
            }
        }
    }
}

/// `c = a · B` in f32 where row `p` of the `k × n` matrix `B` is `b[offs[p]..][..n]`: an implicit
/// im2col, the rows being shifted windows of zero-padded input planes. `a` is row-major `m × k`
/// with row stride `a_rs`, `c` row-major `m × n` with row stride `ldc`, `n` a multiple of 16.
/// Returns `false`, doing nothing, on a CPU without AVX2 and FMA (the caller then builds the patch
/// matrix instead).
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
    if super::cpu::has_avx2_fma() {
        assert!(m > 0 && n > 0 && k > 0 && a_rs >= k && ldc >= n, "gemm_indirect: bad shape");
        let (sa, sb, sc) = (Strides::row_major(a_rs), Strides { rs: 0, cs: 1 }, Strides::row_major(ldc));
        // SAFETY: AVX2 and FMA are present (checked above); the kernel asserts the bounds.
        with_panel::<f32, _>(KC * NR, |panel| unsafe {
            gemm_f32_avx2(m, n, k, a, sa, b, sb, c, sc, false, panel, None, Some(offs))
        });
        return true;
    }
    let _ = (m, n, k, a, a_rs, b, offs, c, ldc);
    false
}

/// `c (+)= A · b` in f32 where row `i` of the `m × k` matrix `A` is `a[a_rows[i]..]` with column
/// stride `a_cs` (an implicit im2col on the left: the rows are windows of padded planes), `b` and
/// `c` strided as in [`super::gemm()`]. Returns `false`, doing nothing, without AVX2 and FMA.
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
    if super::cpu::has_avx2_fma() {
        assert!(m > 0 && n > 0 && k > 0, "gemm_rows_indirect: empty product");
        assert!(b.len() >= sb.required_len(k, n), "gemm_rows_indirect: rhs too short");
        let sa = Strides { rs: 0, cs: a_cs };
        // SAFETY: AVX2 and FMA are present (checked above); the kernel asserts the bounds.
        with_panel::<f32, _>(KC * NR, |panel| unsafe {
            gemm_f32_avx2(m, n, k, a, sa, b, sb, c, sc, accumulate, panel, Some(a_rows), None)
        });
        return true;
    }
    let _ = (m, n, k, a, a_rows, a_cs, b, sb, c, sc, accumulate);
    false
}

/// What the tiles of one f32 GEMM call share: `A` (with its strides, or row offsets) and the
/// layout of `C`.
#[cfg(target_arch = "x86_64")]
struct Tiles<'a> {
    a: &'a [f32],
    sa: Strides,
    a_rows: Option<&'a [usize]>,
    sc: Strides,
    accumulate: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tiles<'_> {
    /// One `mr × 16` tile of `C` at rows `i0..`, columns `j0..` (`nc` of them kept), depth
    /// `p0..p0 + kc`, with `B`'s block at `b = (pointer, row stride, row offsets or null)`.
    /// (A method rather than a closure so that it can be inlined at both of its call sites: the
    /// tiny products of 1a–2b pay for every call.)
    ///
    /// # Safety
    /// AVX2 and FMA; the rows, columns and depth are inside the operands (as `gemm_f32_avx2`
    /// asserts).
    #[inline(always)]
    unsafe fn run(
        &self,
        c: &mut [f32],
        (i0, mr): (usize, usize),
        (j0, nc): (usize, usize),
        (p0, kc): (usize, usize),
        (bp, bs, offs): (*const f32, usize, *const usize),
    ) {
        let Tiles { a, sa, a_rows, sc, accumulate } = *self;
        let first = p0 == 0 && !accumulate;
        // SAFETY: rows i0..i0+mr, columns p0..p0+kc of A are in bounds (the caller's contract).
        let (ap, arows) = match a_rows {
            None => (unsafe { a.as_ptr().add(i0 * sa.rs + p0 * sa.cs) }, core::ptr::null()),
            Some(r) => (unsafe { a.as_ptr().add(p0 * sa.cs) }, r[i0..].as_ptr()),
        };
        let t = Tile { kc, a: ap, rs: sa.rs, cs: sa.cs, b: bp, bs, offs, arows };
        if sc.cs == 1 && nc == NR {
            // SAFETY: rows i0..i0+mr, columns j0..j0+16 of C are in bounds (the caller's
            // contract); the tile reads only the A rows and B block described there.
            unsafe { t.run_any(mr, c.as_mut_ptr().add(i0 * sc.rs + j0), sc.rs, !first) };
        } else {
            let mut acc = [[0.0f32; NR]; MR];
            // SAFETY: `acc` holds MR rows of NR; A and B as above.
            unsafe { t.run_any(mr, acc.as_mut_ptr() as *mut f32, NR, false) };
            store_tile(&acc, mr, nc, c, (i0 * sc.rs + j0 * sc.cs, sc), first);
        }
    }
}

/// One `R × 16` register tile of the f32 kernel: `A` rows from `a` (row stride `rs`, column stride
/// `cs`, `kc` columns), `B` as `kc` rows of 16 from `b` with row stride `bs` — or, in the indirect
/// variant, row `p` at `b + offs[p]`. When `arows` is not null, row `r` of `A` starts at
/// `a + arows[r]` instead of `a + r·rs`.
#[cfg(target_arch = "x86_64")]
struct Tile {
    kc: usize,
    a: *const f32,
    rs: usize,
    cs: usize,
    b: *const f32,
    bs: usize,
    offs: *const usize,
    arows: *const usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// Writes (or, with `add`, adds) `mr` rows of 16 into `out` (row stride `os`).
    ///
    /// # Safety
    /// AVX2 and FMA; `a`, `b` hold the elements described on [`Tile`] for `mr` rows; `out` holds
    /// `mr` rows of 16 at stride `os`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const IND: bool>(&self, mr: usize, out: *mut f32, os: usize, add: bool) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match mr {
                6 => self.rows::<6, IND>(out, os, add),
                5 => self.rows::<5, IND>(out, os, add),
                4 => self.rows::<4, IND>(out, os, add),
                3 => self.rows::<3, IND>(out, os, add),
                2 => self.rows::<2, IND>(out, os, add),
                _ => self.rows::<1, IND>(out, os, add),
            }
        }
    }

    /// [`Tile::run`], the indirect variant when `offs` is set.
    ///
    /// # Safety
    /// As for [`Tile::run`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run_any(&self, mr: usize, out: *mut f32, os: usize, add: bool) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if self.offs.is_null() { self.run::<false>(mr, out, os, add) } else { self.run::<true>(mr, out, os, add) }
        }
    }

    /// The `R × 16` micro-kernel, its `2R` accumulators in registers.
    ///
    /// # Safety
    /// As for [`Tile::run`] with `mr = R`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const R: usize, const IND: bool>(&self, out: *mut f32, os: usize, add: bool) {
        use core::arch::x86_64::*;
        // SAFETY: the caller guarantees the bounds; unaligned loads and stores.
        unsafe {
            let mut c0 = [_mm256_setzero_ps(); R];
            let mut c1 = [_mm256_setzero_ps(); R];
            // One offset per row of A, opaque to the optimiser so that it keeps them in registers:
            // left alone, it rebuilds the row addresses as a running sum, a chain of R dependent
            // adds in every step of the loop (seen in the profile as the kernel's bottleneck).
            let rows: [usize; R] = core::hint::black_box(core::array::from_fn(|r| {
                if self.arows.is_null() { r * self.rs } else { *self.arows.add(r) }
            }));
            let (mut ap, mut bp, mut op) = (self.a, self.b, self.offs);
            for _ in 0..self.kc {
                if IND {
                    bp = self.b.add(*op);
                    op = op.add(1);
                }
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                for r in 0..R {
                    let av = _mm256_set1_ps(*ap.add(rows[r]));
                    c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
                }
                ap = ap.add(self.cs);
                if !IND {
                    bp = bp.add(self.bs);
                }
            }
            for r in 0..R {
                let o = out.add(r * os);
                if add {
                    c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(o));
                    c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(o.add(8)));
                }
                _mm256_storeu_ps(o, c0[r]);
                _mm256_storeu_ps(o.add(8), c1[r]);
            }
        }
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
