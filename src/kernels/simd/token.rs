//! The [`Simd`] trait and its two tokens, [`Avx2`] and [`Avx512`]: a token exists only on a CPU
//! with its instructions, so its methods may use them.

use super::{Isa, detected_isa};
use core::arch::x86_64::*;

/// One SIMD width: its vector type, lane count and the rows of the GEMM micro-tile it affords,
/// with the handful of operations the register tiles need. Methods are `#[inline(always)]`: used
/// inside a function compiled with the token's features, each is one instruction.
pub(crate) trait Simd: Copy {
    /// A vector of `LANES` `f32`.
    type V: Copy;
    /// `f32` lanes per vector.
    const LANES: usize;
    /// Rows of the GEMM micro-tile of two vectors per row (`2·MR` accumulators, two `B`
    /// vectors and a broadcast must fit in the register file: 16 registers for AVX2, 32 for
    /// AVX-512).
    const MR: usize;
    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a·b + c`, fused.
    fn fmadd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// Loads `LANES` values from `p` (unaligned).
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` `f32`.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores `LANES` values to `p` (unaligned).
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` `f32`.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Copies `LANES / 2` values from `src` to `dst` (unaligned; one half-width load and store).
    ///
    /// # Safety
    /// `src` must be valid for reading `LANES / 2` `f32`, `dst` for writing them.
    unsafe fn copy_half(self, dst: *mut f32, src: *const f32);
    /// A set of lanes.
    type M: Copy;
    /// Lanes `lo..hi` (`lo ≤ hi ≤ LANES`; empty when `lo ≥ hi`).
    fn lanes(self, lo: usize, hi: usize) -> Self::M;
    /// Loads the lanes of `m` from `p + lane`, zero in the others, which are not read (a masked
    /// load: no fault, whatever their addresses).
    ///
    /// # Safety
    /// `p + lane` must be valid for reading one `f32` for every lane of `m`.
    unsafe fn load_masked(self, p: *const f32, m: Self::M) -> Self::V;
    /// Stores the lanes of `m` to `p + lane`; the others are not written.
    ///
    /// # Safety
    /// `p + lane` must be valid for writing one `f32` for every lane of `m`.
    unsafe fn store_masked(self, p: *mut f32, v: Self::V, m: Self::M);
    /// The lanes of `m` from `b`, the others from `a` (exact: no arithmetic).
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
}

/// AVX2 and FMA: 8 lanes (`__m256`), 16 registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

/// AVX-512 (F, BW, VL): 16 lanes (`__m512`), 32 registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx2 {
    /// The token, if this CPU has AVX2 and FMA.
    #[inline]
    pub(crate) fn try_new() -> Option<Self> {
        (detected_isa() >= Isa::Avx2).then_some(Avx2(()))
    }
}

impl Avx512 {
    /// The token, if this CPU has AVX-512 F, BW and VL (and AVX2, FMA).
    #[inline]
    pub(crate) fn try_new() -> Option<Self> {
        (detected_isa() >= Isa::Avx512).then_some(Avx512(()))
    }
}

// SAFETY (every `unsafe` block below): an `Avx2` exists only where the CPU has AVX2 and FMA
// (`Avx2::try_new`); pointer validity is the caller's contract, stated on `load`, `store`,
// `copy_half`, `load_masked` and `store_masked`.
impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;
    const MR: usize = 6;
    #[inline(always)]
    fn zero(self) -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn fmadd(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn copy_half(self, dst: *mut f32, src: *const f32) {
        unsafe { _mm_storeu_ps(dst, _mm_loadu_ps(src)) }
    }
    type M = __m256i;
    #[inline(always)]
    fn lanes(self, lo: usize, hi: usize) -> __m256i {
        // lane i is in the set when lo ≤ i < hi: (i < hi) and not (i < lo)
        let (lo, hi) = (lo.min(8) as i32, hi.min(8) as i32);
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx);
            let below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx);
            _mm256_andnot_si256(below_lo, below_hi)
        }
    }
    #[inline(always)]
    unsafe fn load_masked(self, p: *const f32, m: __m256i) -> __m256 {
        unsafe { _mm256_maskload_ps(p, m) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, v: __m256, m: __m256i) {
        unsafe { _mm256_maskstore_ps(p, m, v) }
    }
    #[inline(always)]
    fn select(self, m: __m256i, a: __m256, b: __m256) -> __m256 {
        // (`lanes` sets every bit of a lane in the set, so its sign bit)
        unsafe { _mm256_blendv_ps(a, b, _mm256_castsi256_ps(m)) }
    }
}

// SAFETY (every `unsafe` block below): an `Avx512` exists only where the CPU has AVX-512F
// (`Avx512::try_new`); pointer validity is the caller's contract, stated on `load`, `store`,
// `copy_half`, `load_masked` and `store_masked`.
impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;
    const MR: usize = 8;
    #[inline(always)]
    fn zero(self) -> __m512 {
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn fmadd(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn copy_half(self, dst: *mut f32, src: *const f32) {
        unsafe { _mm256_storeu_ps(dst, _mm256_loadu_ps(src)) }
    }
    type M = __mmask16;
    #[inline(always)]
    fn lanes(self, lo: usize, hi: usize) -> __mmask16 {
        let (lo, hi) = (lo.min(16), hi.min(16));
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
    }
    #[inline(always)]
    unsafe fn load_masked(self, p: *const f32, m: __mmask16) -> __m512 {
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn store_masked(self, p: *mut f32, v: __m512, m: __mmask16) {
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mask_blend_ps(m, a, b) }
    }
}
