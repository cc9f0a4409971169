//! The element types the kernels support: the sealed [`Elem`] trait, implemented for `f32` and `f64`.

use super::Kernels;
use core::fmt::Debug;
use num_traits::Float;

pub(super) mod sealed {
    /// Only `f32` and `f64` are element types: kernels reinterpret buffers by `TypeId` and size.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// An element type the kernels support: `f32` or `f64` (sealed: the kernels' buffer casts rely on
/// there being no other).
pub trait Elem:
    sealed::Sealed + Kernels + Float + Default + Debug + Send + Sync + core::iter::Sum + core::ops::AddAssign + 'static
{
    /// The dtype's name in checkpoints (`"F32"`, `"F64"`).
    const DTYPE: &'static str;

    /// Converts an `f64` literal.
    fn lit(v: f64) -> Self;
    /// Converts to `f64`.
    fn to_f64_lossy(self) -> f64;
    /// `ln(1 + x)` for `x ∈ [0, 1]`, to this type's precision (the logistic loss's softplus term).
    #[inline(always)]
    fn ln_1p_unit(self) -> Self {
        self.ln_1p()
    }
    /// `eˣ` for `x ≤ 0`, to this type's precision (the logistic loss's `e^−|s|`).
    #[inline(always)]
    fn exp_nonpos(self) -> Self {
        self.exp()
    }
    /// The error function `erf(x)` (libm's, within an ulp; the exact GELU's `Φ`).
    fn erf(self) -> Self;
}

impl Elem for f32 {
    const DTYPE: &'static str = "F32";
    #[inline(always)]
    fn lit(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64_lossy(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    /// Inline arithmetic (no library call, so loops over it vectorise): `1 + x = 2ᵏ(1 + f)` with
    /// `f ∈ [√½ − 1, √2 − 1]` computed exactly from `x`, then Cephes' `logf` polynomial for
    /// `ln(1 + f)` (relative error under 1e-7).
    #[inline(always)]
    fn ln_1p_unit(self) -> Self {
        let big = self > core::f32::consts::SQRT_2 - 1.0;
        let f = if big { (self - 1.0) * 0.5 } else { self };
        let k = if big { 1.0 } else { 0.0 };
        let z = f * f;
        let mut p = 7.037_683_6e-2 * f - 1.151_461e-1;
        for c in [
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ] {
            p = p * f + c;
        }
        // k·ln 2 in two parts (0.693359375 is exact in a few bits) around the polynomial.
        let y = f * z * p - 2.121_944_4e-4 * k - 0.5 * z;
        f + y + 0.693_359_4 * k
    }
    /// Inline arithmetic (Cephes' `expf`): `eˣ = 2ⁿ·eʳ` with `r = x − n·ln 2 ∈ [−ln 2/2, ln 2/2]`
    /// and a degree-5 polynomial for `eʳ − 1 − r` (within 2 ulp); `x` below −87 gives `e⁻⁸⁷`.
    #[inline(always)]
    fn exp_nonpos(self) -> Self {
        // n = round(x·log₂e) by adding 1.5·2²³ (no float-to-int conversion, which would not
        // vectorise): t's low mantissa bits hold n, so t's bits give 2ⁿ's exponent field directly.
        const MAGIC: f32 = 12_582_912.0;
        let x = self.max(-87.0);
        let t = x * core::f32::consts::LOG2_E + MAGIC;
        let nf = t - MAGIC;
        let r = x - nf * 0.693_359_4 + nf * 2.121_944_4e-4;
        let mut p = 1.987_569_1e-4 * r + 1.398_2e-3;
        for c in [8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = p * r + c;
        }
        let two_n = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits() - 127) << 23);
        (p * r * r + r + 1.0) * two_n
    }
}

impl Elem for f64 {
    const DTYPE: &'static str = "F64";
    #[inline(always)]
    fn lit(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64_lossy(self) -> f64 {
        self
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
}
