//! SIMD widths as values: which instruction set the kernels use ([`Isa`], detected once, and
//! forced by tests or `SHAPED_ISA`), and the `Simd` trait that lets one register-tile definition
//! be compiled for AVX2 (8 lanes, `__m256`) and for AVX-512 (16 lanes, `__m512`).
//!
//! A token (`Avx2`, `Avx512`) is made only after the CPU has been seen to support its
//! instructions, so code holding one may use them; the kernels that take a token are
//! `#[inline(always)]` and instantiated inside `#[target_feature]` functions (the `_avx2` and
//! `_avx512` entries), where the trait's methods compile to single instructions.

#[cfg(target_arch = "x86_64")]
pub(crate) mod gemm;
#[cfg(target_arch = "x86_64")]
mod token;

#[cfg(target_arch = "x86_64")]
pub(crate) use token::{Avx2, Avx512, Simd};

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets the kernels are compiled for, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code (whatever the compile target guarantees: SSE2 on x86-64), no FMA.
    Portable,
    /// AVX2 and FMA: 8 lanes of `f32`.
    Avx2,
    /// AVX-512 (F, BW, VL) with AVX2 and FMA: 16 lanes of `f32`.
    Avx512,
}

impl Isa {
    /// Every instruction set, narrowest first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name used by `SHAPED_ISA` and in reports: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    fn from_u8(v: u8) -> Isa {
        match v {
            1 => Isa::Portable,
            2 => Isa::Avx2,
            _ => Isa::Avx512,
        }
    }
}

/// The widest instruction set this CPU supports (detected once).
pub fn detected_isa() -> Isa {
    static DETECTED: AtomicU8 = AtomicU8::new(0);
    match DETECTED.load(Ordering::Relaxed) {
        0 => {
            let isa = detect();
            DETECTED.store(isa as u8 + 1, Ordering::Relaxed);
            isa
        }
        v => Isa::from_u8(v),
    }
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
                return Isa::Avx512;
            }
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// The chosen instruction set: 0 before the first call, else `Isa as u8 + 1`.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// The instruction set the kernels use: the detected one, or a narrower one chosen by
/// [`set_isa`] or by the environment variable `SHAPED_ISA` (`portable`, `avx2`, `avx512`; read
/// once, at the first kernel call). One relaxed atomic load once known.
#[inline]
pub fn isa() -> Isa {
    match CHOSEN.load(Ordering::Relaxed) {
        0 => init_isa(),
        v => Isa::from_u8(v),
    }
}

#[cold]
fn init_isa() -> Isa {
    let want = std::env::var("SHAPED_ISA").ok().and_then(|v| Isa::ALL.into_iter().find(|i| i.name() == v.trim()));
    let isa = want.map_or(detected_isa(), |w| w.min(detected_isa()));
    CHOSEN.store(isa as u8 + 1, Ordering::Relaxed);
    isa
}

/// Makes the kernels use `want`, or the widest set this CPU has if `want` is wider; returns the
/// set now in use. For tests and benchmarks that compare paths on one host: it applies to every
/// thread from the next kernel call, so change it only while no kernel runs (the paths' results
/// agree to rounding, not to the bit).
pub fn set_isa(want: Isa) -> Isa {
    let isa = want.min(detected_isa());
    CHOSEN.store(isa as u8 + 1, Ordering::Relaxed);
    isa
}
