//! CPU features and the multiversioning they drive: `multiversion!` (portable, AVX2+FMA, AVX-512), and the
//! inline helpers (fused multiply-add, `axpy`, dot products, lane sums) that multiversioned bodies
//! share.

use super::Elem;

/// Whether the kernels use AVX2 and FMA (or wider): the CPU has them and no narrower path was
/// chosen ([`super::simd::isa`], detected once; the multiversioned kernels branch on it).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    super::simd::isa() >= super::simd::Isa::Avx2
}

/// `a·b + c`; a fused multiply-add when the caller is compiled with FMA (never `mul_add` outside
/// FMA code: it would become a slow library call).
#[inline(always)]
pub(crate) fn fmadd<E: Elem, const FMA: bool>(a: E, b: E, c: E) -> E {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `y += a·x` elementwise (vectorised by the caller's target features).
#[inline(always)]
pub(crate) fn axpy<E: Elem, const FMA: bool>(y: &mut [E], a: E, x: &[E]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = fmadd::<E, FMA>(a, xv, *yv);
    }
}

/// `acc += a ⊙ b` elementwise.
#[inline(always)]
pub(crate) fn mul_acc<E: Elem, const FMA: bool>(acc: &mut [E], a: &[E], b: &[E]) {
    for ((c, &av), &bv) in acc.iter_mut().zip(a).zip(b) {
        *c = fmadd::<E, FMA>(av, bv, *c);
    }
}

/// `Σ a ⊙ b`, with eight independent partial sums so that the loop vectorises.
#[inline(always)]
pub(crate) fn dot<E: Elem, const FMA: bool>(a: &[E], b: &[E]) -> E {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [E::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] = fmadd::<E, FMA>(x[l], y[l], lanes[l]);
        }
    }
    let mut tail = E::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail = fmadd::<E, FMA>(x, y, tail);
    }
    lanes.iter().copied().fold(tail, |s, v| s + v)
}

/// [`dot`] of four rows with one `b`: the same eight partial sums per row, folded the same way.
#[inline(always)]
pub(crate) fn dot4<E: Elem, const FMA: bool>(rows: [&[E]; 4], b: &[E]) -> [E; 4] {
    let k = rows.iter().map(|r| r.len()).fold(b.len(), usize::min);
    let full = k / 8 * 8;
    let mut lanes = [[E::zero(); 8]; 4];
    for p0 in (0..full).step_by(8) {
        let bc: &[E; 8] = b[p0..p0 + 8].try_into().expect("8 elements");
        for (lr, row) in lanes.iter_mut().zip(&rows) {
            let ar: &[E; 8] = row[p0..p0 + 8].try_into().expect("8 elements");
            for l in 0..8 {
                lr[l] = fmadd::<E, FMA>(ar[l], bc[l], lr[l]);
            }
        }
    }
    core::array::from_fn(|r| {
        let tail = (full..k).fold(E::zero(), |t, p| fmadd::<E, FMA>(rows[r][p], b[p], t));
        lanes[r].iter().copied().fold(tail, |s, v| s + v)
    })
}

/// `Σ a`, with eight independent partial sums so that the loop vectorises.
#[inline(always)]
pub(crate) fn sum_lanes<E: Elem>(a: &[E]) -> E {
    let mut lanes = [E::zero(); 8];
    let c = a.chunks_exact(8);
    let tail: E = c.remainder().iter().copied().sum();
    for x in c {
        for l in 0..8 {
            lanes[l] += x[l];
        }
    }
    lanes.iter().copied().fold(tail, |s, v| s + v)
}

/// `Σ (a − m)²`, with eight independent partial sums.
#[inline(always)]
pub(crate) fn sq_dev_lanes<E: Elem, const FMA: bool>(a: &[E], m: E) -> E {
    let mut lanes = [E::zero(); 8];
    let c = a.chunks_exact(8);
    let mut tail = E::zero();
    for &v in c.remainder() {
        tail = fmadd::<E, FMA>(v - m, v - m, tail);
    }
    for x in c {
        for l in 0..8 {
            let dv = x[l] - m;
            lanes[l] = fmadd::<E, FMA>(dv, dv, lanes[l]);
        }
    }
    lanes.iter().copied().fold(tail, |s, v| s + v)
}

/// Runs `$body::<E, true>` compiled for AVX-512 or for AVX2+FMA, as [`super::simd::isa`] says,
/// else `$body::<E, false>`. The bodies are written for any width (loops the compiler vectorises,
/// with a fixed number of partial sums where a sum's order matters), so the three copies give the
/// same bits, except that the portable one does not fuse its multiply-adds.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<E: Elem>($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$m])*
        $vis fn $name<E: Elem>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast<E: Elem>($($arg: $ty),*) {
                    $body::<E, true>($($arg),*)
                }
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                unsafe fn wide<E: Elem>($($arg: $ty),*) {
                    $body::<E, true>($($arg),*)
                }
                match $crate::kernels::simd::isa() {
                    // SAFETY: the chosen ISA is one the CPU supports (`simd::isa` never exceeds
                    // the detected one).
                    $crate::kernels::simd::Isa::Avx512 => return unsafe { wide::<E>($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Isa::Avx2 => return unsafe { fast::<E>($($arg),*) },
                    $crate::kernels::simd::Isa::Portable => {}
                }
            }
            $body::<E, false>($($arg),*)
        }
    };
}
pub(crate) use multiversion;
