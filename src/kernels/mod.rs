//! Numeric kernels: non-generic loops over slices with sizes passed in; the layers are thin typed
//! wrappers that pass their static sizes.
//!
//! Matrix products go through one function, [`gemm()`], backed by the crate's own register-blocked
//! kernel (`matmul.rs`; `ARCHITECTURE.md` says why it replaced the `gemm` crate). Kernels are generic only over the element type (`f32` for
//! training, `f64` for gradient checks): two instantiations, whatever the number of models.

pub mod conv;
mod matmul;
pub mod norm;
pub mod pool;
mod table;

pub use table::Kernels;

use core::fmt::Debug;
use num_traits::Float;

mod sealed {
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
}

/// A strided matrix view: element `(i, j)` is at `i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub struct Strides {
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl Strides {
    /// A row-major matrix with `cols` columns.
    #[inline(always)]
    pub fn row_major(cols: usize) -> Self {
        Strides { rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns (a view, no copy).
    #[inline(always)]
    pub fn transposed(cols: usize) -> Self {
        Strides { rs: 1, cs: cols }
    }
    fn required_len(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 { 0 } else { (rows - 1) * self.rs + (cols - 1) * self.cs + 1 }
    }
}

/// `c = a · b` (or `c += a · b` when `accumulate`), with `a` m×k, `b` k×n, `c` m×n, each with its own
/// strides (so transposes cost no copy).
///
/// Panics if a slice is too short for its view: the typed wrappers size every buffer from static
/// shapes, so this is a check of the crate's own code, never of user input.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm<E: Elem>(
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
    assert!(a.len() >= sa.required_len(m, k), "gemm: lhs too short");
    assert!(b.len() >= sb.required_len(k, n), "gemm: rhs too short");
    assert!(c.len() >= sc.required_len(m, n), "gemm: dst too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * sc.rs + j * sc.cs] = E::zero();
                }
            }
        }
        return;
    }
    if n == 1 {
        // A matrix-vector product (a one-output layer): a dot product per row.
        return gemv(m, k, a, sa, b, sb.rs, c, sc.rs, accumulate);
    }
    // Large products split the rows of C over the kernel threads (C's rows must be contiguous runs).
    // Every element is computed by the same code either way, so the split does not change results.
    // "Large" is higher than for other kernels: a step whose only splits are small products (3a's
    // 100×784·784×10) loses more to running on the pool than the split gains. Inside a step that
    // runs on the pool anyway (its convolutions split), the workers are spinning and a quarter of
    // that pays (4a's fully connected 100×605·605×16).
    let large = if crate::threads::workers_awake() { 250_000 } else { 1_000_000 };
    let parts = if sc.cs == 1 && m * n * k >= large { split_batch(m, n * k) } else { 1 };
    if parts > 1 {
        let per = m.div_ceil(parts).next_multiple_of(6); // whole 6-row tiles per part
        let c = &mut c[..sc.required_len(m, n)];
        return crate::threads::for_pieces(c, per * sc.rs, |at, head| {
            let i0 = at / sc.rs;
            let rows = per.min(m - i0);
            matmul::gemm_small(rows, n, k, &a[i0 * sa.rs..], sa, b, sb, head, sc, accumulate)
        });
    }
    matmul::gemm_small(m, n, k, a, sa, b, sb, c, sc, accumulate);
}

/// Whether this CPU has AVX2 and FMA (detected once; the multiversioned kernels branch on it).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
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

/// Runs `$body::<E, true>` compiled for AVX2+FMA when the CPU has them, else `$body::<E, false>`.
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
                if $crate::kernels::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { fast::<E>($($arg),*) };
                }
            }
            $body::<E, false>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Into how many parts to split a batch of `n` samples whose per-sample work is about `work`
/// multiply-adds: one part per kernel thread, but only when each part has enough work to pay for a
/// thread (about 40 µs: the parts start on pool threads that are already running).
pub(crate) fn split_batch(n: usize, work_per_sample: usize) -> usize {
    let t = crate::threads::num_threads();
    if t <= 1 || n < 2 || crate::threads::in_part() {
        return 1;
    }
    let total = n.saturating_mul(work_per_sample);
    if total < 400_000 { 1 } else { t.min(n) }
}

multiversion! {
    /// `Σ a²`, with 32 independent partial sums (four AVX registers, so the adds do not wait on
    /// each other; plain multiplies and adds in both versions, so the sum does not depend on the
    /// CPU).
    pub(crate) fn sum_squares_into<E: Elem>(a: &[E], out: &mut E) => sum_squares_body
}

/// `Σ a²` (32 independent partial sums, plain multiplies and adds: the same bits on every CPU).
pub fn sum_squares<E: Elem>(a: &[E]) -> E {
    let mut s = E::zero();
    sum_squares_into(a, &mut s);
    s
}

#[inline(always)]
fn sum_squares_body<E: Elem, const FMA: bool>(a: &[E], out: &mut E) {
    const L: usize = 32;
    let mut lanes = [E::zero(); L];
    let c = a.chunks_exact(L);
    let tail: E = c.remainder().iter().map(|&v| v * v).sum();
    for x in c {
        for l in 0..L {
            lanes[l] += x[l] * x[l];
        }
    }
    *out = lanes.iter().copied().fold(tail, |s, v| s + v);
}

multiversion! {
    /// `c[i] (+)= Σ_p a[i, p]·b[p]`: the `n = 1` case of [`gemm()`].
    #[allow(clippy::too_many_arguments)]
    fn gemv<E: Elem>(
        m: usize,
        k: usize,
        a: &[E],
        sa: Strides,
        b: &[E],
        b_stride: usize,
        c: &mut [E],
        c_stride: usize,
        accumulate: bool,
    ) => gemv_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemv_body<E: Elem, const FMA: bool>(
    m: usize,
    k: usize,
    a: &[E],
    sa: Strides,
    b: &[E],
    b_stride: usize,
    c: &mut [E],
    c_stride: usize,
    accumulate: bool,
) {
    if sa.rs == 1 && c_stride == 1 && sa.cs >= m {
        // A is a transposed view: its columns are contiguous, so accumulate column by column, 32
        // outputs at a time in registers (not through memory: each column's update would wait on
        // the previous one's store).
        const W: usize = 32;
        let c = &mut c[..m];
        if !accumulate {
            c.fill(E::zero());
        }
        let mut i0 = 0;
        while i0 + W <= m {
            let mut acc = [E::zero(); W];
            acc.copy_from_slice(&c[i0..i0 + W]);
            for p in 0..k {
                let (bv, col) = (b[p * b_stride], &a[p * sa.cs + i0..p * sa.cs + i0 + W]);
                for l in 0..W {
                    acc[l] = fmadd::<E, FMA>(bv, col[l], acc[l]);
                }
            }
            c[i0..i0 + W].copy_from_slice(&acc);
            i0 += W;
        }
        if i0 < m {
            for p in 0..k {
                axpy::<E, FMA>(&mut c[i0..], b[p * b_stride], &a[p * sa.cs + i0..p * sa.cs + m]);
            }
        }
        return;
    }
    let mut i0 = 0;
    if sa.cs == 1 && b_stride == 1 {
        // Four rows at a time: each 8-element chunk of `b` is loaded once for four dot products,
        // and the four chains run side by side (same sums, in the same order, as `dot`).
        while i0 + 4 <= m {
            let rows: [&[E]; 4] = core::array::from_fn(|r| &a[(i0 + r) * sa.rs..][..k]);
            for (r, v) in dot4::<E, FMA>(rows, &b[..k]).into_iter().enumerate() {
                let d = &mut c[(i0 + r) * c_stride];
                *d = if accumulate { *d + v } else { v };
            }
            i0 += 4;
        }
    }
    for i in i0..m {
        let v = if sa.cs == 1 && b_stride == 1 {
            dot::<E, FMA>(&a[i * sa.rs..i * sa.rs + k], &b[..k])
        } else {
            (0..k).fold(E::zero(), |acc, p| fmadd::<E, FMA>(a[i * sa.rs + p * sa.cs], b[p * b_stride], acc))
        };
        let d = &mut c[i * c_stride];
        *d = if accumulate { *d + v } else { v };
    }
}

multiversion! {
    /// The logistic loss's kernel: for each score `s` with label `y ∈ {0, 1}` writes
    /// `(σ(s) − y)/n` into `d` and adds `log(1 + eˢ) − y·s` to `total`, both from `e^−|s|` (no
    /// overflow, one exponential).
    pub(crate) fn logistic_rows<E: Elem>(scores: &[E], labels: &[usize], d: &mut [E], n: E, total: &mut E) => logistic_body
}

#[inline(always)]
fn logistic_body<E: Elem, const FMA: bool>(scores: &[E], labels: &[usize], d: &mut [E], n: E, total: &mut E) {
    #[inline(always)]
    fn one<E: Elem>(s: E, label: usize, d: &mut E, n: E) -> E {
        let y = if label == 1 { E::one() } else { E::zero() };
        let e = (-s.abs()).exp_nonpos();
        let sig = if s >= E::zero() { E::one() } else { e } / (E::one() + e);
        *d = (sig - y) / n;
        s.max(E::zero()) - s * y + e.ln_1p_unit()
    }
    let len = scores.len().min(labels.len()).min(d.len());
    let (scores, labels, d) = (&scores[..len], &labels[..len], &mut d[..len]);
    let mut lanes = [E::zero(); 8];
    let (cs, cl, mut cd) = (scores.chunks_exact(8), labels.chunks_exact(8), d.chunks_exact_mut(8));
    let (rs, rl) = (cs.remainder(), cl.remainder());
    for ((s, l), dd) in cs.zip(cl).zip(&mut cd) {
        for i in 0..8 {
            lanes[i] += one(s[i], l[i], &mut dd[i], n);
        }
    }
    let mut tail = E::zero();
    for ((&s, &l), dd) in rs.iter().zip(rl).zip(cd.into_remainder()) {
        tail += one(s, l, dd, n);
    }
    *total = lanes.iter().copied().fold(tail, |a, v| a + v);
}

multiversion! {
    /// RMSprop's element update with gradient `g = dw + reg·w` (the L2 term, `reg` = 0 for
    /// unregularised parameters): `c = ρ·c + (1−ρ)·g²; w −= lr·g/(√c + ε)` (plain multiplies and
    /// adds in both versions, so results do not depend on the CPU).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rmsprop_update<E: Elem>(w: &mut [E], dw: &[E], c: &mut [E], lr: E, rho: E, eps: E, reg: E) => rmsprop_body
}

#[inline(always)]
fn rmsprop_body<E: Elem, const FMA: bool>(w: &mut [E], dw: &[E], c: &mut [E], lr: E, rho: E, eps: E, reg: E) {
    let one_minus = E::one() - rho;
    for ((w, &g), c) in w.iter_mut().zip(dw).zip(c.iter_mut()) {
        let g = g + reg * *w;
        *c = rho * *c + one_minus * g * g;
        *w = *w - lr * g / (c.sqrt() + eps);
    }
}

multiversion! {
    /// Adam's element update with gradient `g = dw + reg·w` and bias corrections `c1 = 1−β₁ᵗ`,
    /// `c2 = 1−β₂ᵗ` (plain multiplies and adds in both versions).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adam_update<E: Elem>(w: &mut [E], dw: &[E], m: &mut [E], v: &mut [E], lr: E, b1: E, b2: E, eps: E, c1: E, c2: E, reg: E) => adam_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adam_body<E: Elem, const FMA: bool>(
    w: &mut [E],
    dw: &[E],
    m: &mut [E],
    v: &mut [E],
    lr: E,
    b1: E,
    b2: E,
    eps: E,
    c1: E,
    c2: E,
    reg: E,
) {
    let (one_b1, one_b2) = (E::one() - b1, E::one() - b2);
    for (((w, &g), m), v) in w.iter_mut().zip(dw).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + reg * *w;
        *m = b1 * *m + one_b1 * g;
        *v = b2 * *v + one_b2 * g * g;
        let mt = *m / c1;
        let vt = *v / c2;
        *w = *w - lr * mt / (vt.sqrt() + eps);
    }
}

multiversion! {
    /// `y[i, j] += b[j]` over the rows of the row-major `y`.
    pub fn add_row_bias<E: Elem>(y: &mut [E], b: &[E]) => add_row_bias_body
}

#[inline(always)]
fn add_row_bias_body<E: Elem, const FMA: bool>(y: &mut [E], b: &[E]) {
    if let [bias] = b {
        for v in y.iter_mut() {
            *v += *bias;
        }
        return;
    }
    for row in y.chunks_exact_mut(b.len()) {
        for (v, &bi) in row.iter_mut().zip(b) {
            *v += bi;
        }
    }
}

multiversion! {
    /// `db[j] = Σ_i dy[i, j]` over the rows of the row-major `dy`.
    pub fn sum_rows<E: Elem>(dy: &[E], db: &mut [E]) => sum_rows_body
}

#[inline(always)]
fn sum_rows_body<E: Elem, const FMA: bool>(dy: &[E], db: &mut [E]) {
    if let [d] = db {
        *d = sum_lanes(dy);
        return;
    }
    // 32 columns at a time, summed in registers over all rows (through memory, each row's adds
    // would wait on the previous row's stores).
    const W: usize = 32;
    let c = db.len();
    let mut j0 = 0;
    while j0 < c {
        let w = W.min(c - j0);
        let mut acc = [E::zero(); W];
        if w == W {
            for row in dy.chunks_exact(c) {
                let row: &[E; W] = row[j0..j0 + W].try_into().expect("W columns");
                for l in 0..W {
                    acc[l] += row[l];
                }
            }
        } else {
            for row in dy.chunks_exact(c) {
                for (a, &v) in acc.iter_mut().zip(&row[j0..j0 + w]) {
                    *a += v;
                }
            }
        }
        db[j0..j0 + w].copy_from_slice(&acc[..w]);
        j0 += W;
    }
}

/// Runs `f(range, out[range])` over `out`, split over the kernel threads when it is large enough to
/// pay for a split: `work` is the cost of 64 elements in [`split_batch`]'s units (128 for a few
/// operations per element).
fn split_elementwise<E: Elem>(out: &mut [E], work: usize, f: impl Fn(core::ops::Range<usize>, &mut [E]) + Sync) {
    let parts = split_batch(out.len().div_ceil(64), work);
    if parts <= 1 {
        return f(0..out.len(), out);
    }
    crate::threads::for_chunks(out, 64, parts, |at, piece| f(at..at + piece.len(), piece));
}

/// `dst = src` (lengths must match), split over the kernel threads when large (a batch of
/// activations: the copy runs at memory speed, so a split pays from about 50k elements).
pub fn copy<E: Elem>(src: &[E], dst: &mut [E]) {
    assert_eq!(src.len(), dst.len(), "copy: source and destination lengths differ");
    split_elementwise(dst, 64 * 8, |r, piece| piece.copy_from_slice(&src[r]));
}

/// `dst = src` for short rows (feature-map rows, GEMM tile rows, 20-feature samples), in 8-element
/// moves and a plain loop: a `memcpy` call per row of 2–16 elements costs more than the copy.
/// (Copies `min(len)` elements; a negative zero in the tail may come out positive.)
#[inline(always)]
pub(crate) fn copy_short<E: Elem>(dst: &mut [E], src: &[E]) {
    let mut dc = dst.chunks_exact_mut(8);
    let mut sc = src.chunks_exact(8);
    for (d, s) in (&mut dc).zip(&mut sc) {
        let v: [E; 8] = s.try_into().expect("8 wide");
        d.copy_from_slice(&v);
    }
    for (d, &s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        // `+ 0` keeps this a loop (an identical copy loop would become a `memcpy` call again)
        *d = s + E::zero();
    }
}

/// `y = max(x, 0)` elementwise (split over the kernel threads when large).
pub fn relu_forward<E: Elem>(x: &[E], y: &mut [E]) {
    let n = x.len().min(y.len());
    split_elementwise(&mut y[..n], 128, |r, y| relu_forward_one(&x[r], y));
}

/// `dx = dy` where `x > 0`, else 0, elementwise (split over the kernel threads when large).
pub fn relu_backward<E: Elem>(x: &[E], dy: &[E], dx: &mut [E]) {
    let n = x.len().min(dy.len()).min(dx.len());
    split_elementwise(&mut dx[..n], 128, |r, dx| relu_backward_one(&x[r.clone()], &dy[r], dx));
}

multiversion! {
    fn relu_forward_one<E: Elem>(x: &[E], y: &mut [E]) => relu_forward_body
}

#[inline(always)]
fn relu_forward_body<E: Elem, const FMA: bool>(x: &[E], y: &mut [E]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = if v > E::zero() { v } else { E::zero() };
    }
}

multiversion! {
    fn relu_backward_one<E: Elem>(x: &[E], dy: &[E], dx: &mut [E]) => relu_backward_body
}

#[inline(always)]
fn relu_backward_body<E: Elem, const FMA: bool>(x: &[E], dy: &[E], dx: &mut [E]) {
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
        *d = if v > E::zero() { g } else { E::zero() };
    }
}

/// `y += x`, elementwise.
pub fn add_assign<E: Elem>(y: &mut [E], x: &[E]) {
    assert_eq!(y.len(), x.len(), "add_assign: lengths differ");
    for (a, &b) in y.iter_mut().zip(x) {
        *a += b;
    }
}

/// `y = a + b`, elementwise.
pub fn add_into<E: Elem>(y: &mut [E], a: &[E], b: &[E]) {
    assert!(y.len() == a.len() && a.len() == b.len(), "add_into: lengths differ");
    for ((o, &p), &q) in y.iter_mut().zip(a).zip(b) {
        *o = p + q;
    }
}
