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
    /// The error function `erf(x)` (the exact GELU's `Φ`): for `f64` libm's (within an ulp); for
    /// `f32` inline arithmetic that vectorises (within 5e-7 of the exact value, tested).
    fn erf(self) -> Self;
    /// `tanh x`: the standard library's, or for `f32` inline arithmetic that vectorises.
    #[inline(always)]
    fn tanh_inline(self) -> Self {
        self.tanh()
    }
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
    /// Eigen's rational approximation (`generic_fast_erf_float`): `x·P(x²)/Q(x²)` on `x` clamped
    /// to [−4, 4], the result clamped to [−1, 1]; exactly ±1 from `|x| = 3.7` on.
    #[inline(always)]
    fn erf(self) -> Self {
        let x = self.clamp(-4.0, 4.0);
        let x2 = x * x;
        let mut p = -2.726_142e-10 * x2 + 2.770_681_4e-8;
        for c in [-2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_600_1e-3, -1.609_603_3e-2] {
            p = p * x2 + c;
        }
        let mut q = -1.456_607_2e-5 * x2 - 2.133_740_6e-4;
        for c in [-1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
            q = q * x2 + c;
        }
        let r = (x * p / q).clamp(-1.0, 1.0);
        // ±1 beyond 3.7 (erf(3.7) = 1 − 1.7e-7), so that Φ reaches exactly 0 and 1 in the tails
        if self.abs() >= 3.7 { 1f32.copysign(self) } else { r }
    }
    /// Cephes' `tanhf`: an odd polynomial below 0.625, `(1 − e^−2|x|)/(1 + e^−2|x|)` with the sign
    /// of `x` above (both computed, one selected, so loops vectorise); NaN for NaN.
    #[inline(always)]
    fn tanh_inline(self) -> Self {
        let a = self.abs();
        let e = (-2.0 * a).exp_nonpos();
        let big = ((1.0 - e) / (1.0 + e)).copysign(self);
        let z = self * self;
        let mut p = -5.704_988_7e-3 * z + 2.063_909e-2;
        for c in [-5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1] {
            p = p * z + c;
        }
        let small = p * z * self + self;
        // (NaN takes the polynomial, which keeps it NaN.)
        if a >= 0.625 { big } else { small }
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
