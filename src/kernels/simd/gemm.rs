//! The f32 GEMM on AVX2 or AVX-512, one definition generic over the width ([`Simd`]): `R × 2L`
//! register tiles (`L` lanes: 16 columns on AVX2, 32 on AVX-512, and a one-vector `R × L` tile
//! for a last block of `L` columns), `B` read in place where its rows allow it and packed
//! otherwise, tiles stored straight into `C` where its rows are unit-stride. Each element of `C`
//! is the same chain of fused multiply-adds along the depth at both widths (same depth blocks,
//! same order), so AVX2 and AVX-512 give the same bits.

use super::{Avx2, Avx512, Isa, Simd, isa};
use crate::kernels::Strides;
use crate::kernels::matmul::{KC, NR_MAX, depth_block, pack_b};

/// The widest tile row: the accumulator buffer of a partial tile.
const MR_MAX: usize = 12;

/// `c (+)= a · b` in f32 on the chosen instruction set ([`isa`]), as described on
/// [`gemm_f32`]; returns `false`, doing nothing, when that is [`Isa::Portable`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32_fast(
    (m, n, k): (usize, usize, usize),
    (a, sa, a_rows): (&[f32], Strides, Option<&[usize]>),
    (b, sb, b_rows): (&[f32], Strides, Option<&[usize]>),
    (c, sc): (&mut [f32], Strides),
    accumulate: bool,
    panel: &mut [f32],
) -> bool {
    match isa() {
        Isa::Portable => false,
        Isa::Avx2 => {
            let s = Avx2::try_new().expect("the chosen ISA is supported");
            // SAFETY: the token proves AVX2 and FMA; `gemm_f32` asserts the bounds.
            unsafe { gemm_avx2(s, (m, n, k), (a, sa, a_rows), (b, sb, b_rows), (c, sc), accumulate, panel) };
            true
        }
        Isa::Avx512 => {
            let s = Avx512::try_new().expect("the chosen ISA is supported");
            // SAFETY: the token proves AVX-512; `gemm_f32` asserts the bounds.
            unsafe { gemm_avx512(s, (m, n, k), (a, sa, a_rows), (b, sb, b_rows), (c, sc), accumulate, panel) };
            true
        }
    }
}

type Lhs<'a> = (&'a [f32], Strides, Option<&'a [usize]>);

/// [`gemm_f32`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA (the token says so).
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(
    s: Avx2,
    mnk: (usize, usize, usize),
    a: Lhs,
    b: Lhs,
    c: (&mut [f32], Strides),
    acc: bool,
    panel: &mut [f32],
) {
    // SAFETY: this function's features are the token's.
    unsafe { gemm_f32(s, mnk, a, b, c, acc, panel) }
}

/// [`gemm_f32`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL (the token says so).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn gemm_avx512(
    s: Avx512,
    mnk: (usize, usize, usize),
    a: Lhs,
    b: Lhs,
    c: (&mut [f32], Strides),
    acc: bool,
    panel: &mut [f32],
) {
    // SAFETY: this function's features are the token's.
    unsafe { gemm_f32(s, mnk, a, b, c, acc, panel) }
}

/// The rows of the next tile when `rem` rows are left, at most `S::MR`: on AVX2 six, except that
/// 7 and 8 left become 4 + 3 and 4 + 4 (a 1- or 2-row tile has too few accumulators to hide the
/// FMA latency); on AVX-512 the rows left split into equal tiles of at most `MR`.
#[inline(always)]
fn tile_rows<S: Simd>(rem: usize) -> usize {
    if S::MR == 6 {
        return if rem == 7 || rem == 8 { 4 } else { rem.min(6) };
    }
    rem.div_ceil(rem.div_ceil(S::MR))
}

/// The width of the column block at `j0` (a multiple of the lane count: `2L`, or `L` when at most
/// `L` columns are left) and how many of its columns are in `C`.
#[inline(always)]
fn block<S: Simd>(j0: usize, n: usize) -> (usize, usize) {
    let nc = (2 * S::LANES).min(n - j0);
    (if nc <= S::LANES { S::LANES } else { 2 * S::LANES }, nc)
}

/// The f32 GEMM at width `S`: tiles for every row count `R` ≤ `S::MR`; `B` read in place when its
/// rows are unit-stride and a block is whole (packed otherwise, into `panel`); tiles written
/// straight into `C` when its rows are unit-stride (through a small buffer otherwise). Small
/// products, where packing and copying would cost more than the arithmetic, are the reason for
/// the in-place paths. With `a_rows`, row `i` of `A` starts at `a[a_rows[i]]` (`sa.rs` unused);
/// with `b_rows`, row `p` of `B` is `b[b_rows[p]..][..n]`, read in place (`sb` unused, `n` a
/// multiple of 16): the implicit im2col of the convolutions.
///
/// # Safety
/// The CPU must support the token's instructions, and this must be inlined into a function
/// compiled with them. (Every slice is bounds-checked against its view here.)
#[inline(always)]
unsafe fn gemm_f32<S: Simd>(
    s: S,
    (m, n, k): (usize, usize, usize),
    (a, sa, a_rows): Lhs,
    (b, sb, b_rows): Lhs,
    (c, sc): (&mut [f32], Strides),
    accumulate: bool,
    panel: &mut [f32],
) {
    // Empty products never get here: `kernels::gemm` returns for them. The bounds below are what
    // the raw-pointer tiles rely on.
    assert!(m > 0 && n > 0 && k > 0, "gemm: empty product");
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
            n.is_multiple_of(16) && r.len() >= k && r[..k].iter().all(|&o| o + n <= b.len()),
            "gemm: an rhs row runs past its buffer (or n is not a multiple of 16)"
        ),
    }
    assert!(panel.len() >= KC * 2 * S::LANES && 2 * S::LANES <= NR_MAX, "gemm: panel too short");
    assert!(S::MR <= MR_MAX);
    let tiles = Tiles { a, sa, a_rows, sc, accumulate };
    // B read in place (no packing): B's rows through `b_rows`, or unit-stride rows (whole blocks).
    let in_place = |p0: usize, j0: usize| -> (*const f32, usize, *const usize) {
        match b_rows {
            // SAFETY (the pointer arithmetic): rows p0..p0+kc, columns j0..j0+cw of B are in
            // bounds (asserted above, and the caller reads in place only whole blocks).
            Some(r) => (unsafe { b.as_ptr().add(j0) }, 0, r[p0..].as_ptr()),
            None => (unsafe { b.as_ptr().add(p0 * sb.rs + j0) }, sb.rs, core::ptr::null()),
        }
    };
    let kb = depth_block(k);
    if sc.cs == 1 && a_rows.is_none() && b_rows.is_none() && sb.cs == 1 && n.is_multiple_of(S::LANES) {
        // Nothing to pack: each A tile (`mr` rows × `kc`) is used for all column blocks while it
        // is in L1, and B's `kc × n` slab comes from L2 (3b's step, whose time is mostly
        // 100×784·784×64 and its weight gradient, measured 6 % faster than with the column-block
        // order below; the VGG's implicit-im2col products measured slower this way and keep it).
        for p0 in (0..k).step_by(kb) {
            let kc = kb.min(k - p0);
            let mut i0 = 0;
            while i0 < m {
                let mr = tile_rows::<S>(m - i0);
                let mut j0 = 0;
                while j0 < n {
                    let (cw, nc) = block::<S>(j0, n);
                    // SAFETY: the token's features; the bounds asserted above (nc == cw: every
                    // block is whole, n being a multiple of L).
                    unsafe { tiles.run(s, c, (i0, mr), (j0, nc, cw), (p0, kc), in_place(p0, j0)) };
                    j0 += cw;
                }
                i0 += mr;
            }
        }
        return;
    }
    let mut j0 = 0;
    while j0 < n {
        let (cw, nc) = block::<S>(j0, n);
        for p0 in (0..k).step_by(kb) {
            let kc = kb.min(k - p0);
            let bb = if b_rows.is_some() || (sb.cs == 1 && nc == cw) {
                in_place(p0, j0)
            } else {
                // SAFETY: AVX2 (implied by the token's features).
                unsafe { pack_b_f32(b, sb, (p0, kc), (j0, nc), panel, cw) };
                (panel.as_ptr(), cw, core::ptr::null())
            };
            let mut i0 = 0;
            while i0 < m {
                let mr = tile_rows::<S>(m - i0);
                // SAFETY: as above.
                unsafe { tiles.run(s, c, (i0, mr), (j0, nc, cw), (p0, kc), bb) };
                i0 += mr;
            }
        }
        j0 += cw;
    }
}

/// What the tiles of one f32 GEMM call share: `A` (with its strides, or row offsets) and the
/// layout of `C`.
#[derive(Clone, Copy)]
struct Tiles<'a> {
    a: &'a [f32],
    sa: Strides,
    a_rows: Option<&'a [usize]>,
    sc: Strides,
    accumulate: bool,
}

impl Tiles<'_> {
    /// One `mr × cw` tile of `C` at rows `i0..`, columns `j0..` (`nc` of them kept), depth
    /// `p0..p0 + kc`, with `B`'s block at `b = (pointer, row stride, row offsets or null)`.
    /// (A method rather than a closure so that it can be inlined at both of its call sites: the
    /// tiny products of 1a–2b pay for every call.)
    ///
    /// # Safety
    /// The token's features; the rows, columns and depth are inside the operands (as
    /// `gemm_f32` asserts), `B`'s block holds `cw` columns.
    #[inline(always)]
    unsafe fn run<S: Simd>(
        &self,
        s: S,
        c: &mut [f32],
        (i0, mr): (usize, usize),
        (j0, nc, cw): (usize, usize, usize),
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
        if sc.cs == 1 && nc == cw {
            // SAFETY: rows i0..i0+mr, columns j0..j0+cw of C are in bounds (the caller's
            // contract); the tile reads only the A rows and B block described there.
            unsafe { t.run_any(s, mr, cw, c.as_mut_ptr().add(i0 * sc.rs + j0), sc.rs, !first) };
        } else {
            let mut acc = [[0.0f32; NR_MAX]; MR_MAX];
            // SAFETY: `acc` holds MR_MAX ≥ mr rows of NR_MAX ≥ cw; A and B as above.
            unsafe { t.run_any(s, mr, cw, acc.as_mut_ptr() as *mut f32, NR_MAX, false) };
            let base = i0 * sc.rs + j0 * sc.cs;
            for (r, accr) in acc.iter().enumerate().take(mr) {
                for (j, &v) in accr.iter().enumerate().take(nc) {
                    let d = &mut c[base + r * sc.rs + j * sc.cs];
                    *d = if first { v } else { *d + v };
                }
            }
        }
    }
}

/// One register tile: `A` rows from `a` (row stride `rs`, column stride `cs`, `kc` columns), `B`
/// as `kc` rows from `b` with row stride `bs` — or, in the indirect variant, row `p` at
/// `b + offs[p]`. When `arows` is not null, row `r` of `A` starts at `a + arows[r]` instead of
/// `a + r·rs`.
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

/// `$mr` to a const generic row count `R` ≤ `S::MR` (arms past it are dead for that width).
macro_rules! by_rows {
    ($s:ty, $mr:expr, |$r:ident| $call:expr) => {
        match $mr {
            12 if <$s>::MR >= 12 => {
                const $r: usize = 12;
                $call
            }
            11 if <$s>::MR >= 11 => {
                const $r: usize = 11;
                $call
            }
            10 if <$s>::MR >= 10 => {
                const $r: usize = 10;
                $call
            }
            9 if <$s>::MR >= 9 => {
                const $r: usize = 9;
                $call
            }
            8 if <$s>::MR >= 8 => {
                const $r: usize = 8;
                $call
            }
            7 if <$s>::MR >= 7 => {
                const $r: usize = 7;
                $call
            }
            6 => {
                const $r: usize = 6;
                $call
            }
            5 => {
                const $r: usize = 5;
                $call
            }
            4 => {
                const $r: usize = 4;
                $call
            }
            3 => {
                const $r: usize = 3;
                $call
            }
            2 => {
                const $r: usize = 2;
                $call
            }
            _ => {
                const $r: usize = 1;
                $call
            }
        }
    };
}

impl Tile {
    /// Writes (or, with `add`, adds) `mr` rows of `cw` (`L` or `2L`) into `out` (row stride `os`).
    ///
    /// # Safety
    /// The token's features; `a`, `b` hold the elements described on [`Tile`] for `mr` ≤ `S::MR`
    /// rows and `cw` columns; `out` holds `mr` rows of `cw` at stride `os`.
    #[inline(always)]
    unsafe fn run_any<S: Simd>(&self, s: S, mr: usize, cw: usize, out: *mut f32, os: usize, add: bool) {
        assert!(mr >= 1 && mr <= S::MR && (cw == S::LANES || cw == 2 * S::LANES), "GEMM tile of {mr} × {cw}");
        // SAFETY: forwarded from the caller.
        unsafe {
            match (self.offs.is_null(), cw == S::LANES) {
                (true, false) => by_rows!(S, mr, |R| self.rows::<S, R, 2, false>(s, out, os, add)),
                (true, true) => by_rows!(S, mr, |R| self.rows::<S, R, 1, false>(s, out, os, add)),
                (false, false) => by_rows!(S, mr, |R| self.rows::<S, R, 2, true>(s, out, os, add)),
                (false, true) => by_rows!(S, mr, |R| self.rows::<S, R, 1, true>(s, out, os, add)),
            }
        }
    }

    /// The `R × C·L` micro-kernel, its `C·R` accumulators in registers.
    ///
    /// # Safety
    /// As for [`Tile::run_any`] with `mr = R`, `cw = C·L`.
    #[inline(always)]
    unsafe fn rows<S: Simd, const R: usize, const C: usize, const IND: bool>(
        &self,
        s: S,
        out: *mut f32,
        os: usize,
        add: bool,
    ) {
        // SAFETY: the caller guarantees the bounds; unaligned loads and stores.
        unsafe {
            let mut acc = [[s.zero(); C]; R];
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
                let bv: [S::V; C] = core::array::from_fn(|j| s.load(bp.add(j * S::LANES)));
                for r in 0..R {
                    let av = s.splat(*ap.add(rows[r]));
                    for j in 0..C {
                        acc[r][j] = s.fmadd(av, bv[j], acc[r][j]);
                    }
                }
                ap = ap.add(self.cs);
                if !IND {
                    bp = bp.add(self.bs);
                }
            }
            for (r, accr) in acc.iter_mut().enumerate() {
                let o = out.add(r * os);
                for (j, v) in accr.iter_mut().enumerate() {
                    if add {
                        *v = s.add(*v, s.load(o.add(j * S::LANES)));
                    }
                    s.store(o.add(j * S::LANES), *v);
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
/// The CPU must support AVX2. (Every access is bounds-checked.) The panel is `kc` rows of `nr`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pack_b_f32(
    b: &[f32],
    sb: Strides,
    (p0, kc): (usize, usize),
    (j0, nc): (usize, usize),
    panel: &mut [f32],
    nr: usize,
) {
    use core::arch::x86_64::*;
    if sb.rs != 1 || sb.cs == 1 {
        return pack_b(b, sb, p0, kc, j0, nc, panel, nr);
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
                let dst = &mut panel[(pb + q) * nr + jb..][..8];
                // SAFETY: `dst` holds 8 floats (unaligned store).
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
            }
        }
        for p in p8..kc {
            for j in jb..jb + 8 {
                panel[p * nr + j] = b[at(p, j)];
            }
        }
    }
    for j in j8..nr {
        for p in 0..kc {
            panel[p * nr + j] = if j < nc { b[at(p, j)] } else { 0.0 };
        }
    }
}
