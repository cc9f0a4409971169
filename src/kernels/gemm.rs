//! The one matrix-product entry, [`gemm()`], over strided views ([`Strides`]), with its
//! matrix-vector case (`gemv`); the general products run in `matmul.rs`.

use super::cpu::{axpy, dot, dot4, fmadd};
use super::split::split_batch;
use super::{Elem, matmul, multiversion};

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
    pub(super) fn required_len(&self, rows: usize, cols: usize) -> usize {
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
