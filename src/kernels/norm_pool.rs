//! The backward pass of `BatchNormReLU2d` followed by `MaxPool2d`, fused: the pooling's gradient
//! is scattered (zeros, then each output gradient added at its argmax, in order: exactly
//! [`max_backward`](super::pool::max_backward)'s values) plane by plane in batch norm's first
//! backward pass, one plane ahead of the sums that read it, instead of in a pass of its own: the
//! pooling's input gradient is written once and read once (by the second pass) instead of written
//! and read twice.

use super::norm::{Dy, NormDims, bn_backward, masked_sums};
use super::pool::PoolDims;
use super::{Elem, multiversion};

/// A max pooling's output gradient `dy` (`q` values a plane) and argmax, over the planes of a
/// batch norm whose fused ReLU output is `y`.
#[derive(Clone, Copy)]
pub(super) struct Pooled<'a, E> {
    /// Gradient values a plane.
    q: usize,
    /// Planes a sample.
    c: usize,
    dy: &'a [E],
    argmax: &'a [u32],
    y: &'a [E],
}

impl<'a, E> Pooled<'a, E> {
    /// Samples `lo .. lo + m` (`vals` values a sample in `y`).
    pub(super) fn samples(&self, lo: usize, m: usize, vals: usize) -> Self {
        let per = self.c * self.q;
        Pooled {
            dy: &self.dy[lo * per..(lo + m) * per],
            argmax: &self.argmax[lo * per..(lo + m) * per],
            y: &self.y[lo * vals..(lo + m) * vals],
            ..*self
        }
    }

    /// The batch norm's output (ReLU's mask).
    pub(super) fn y(&self) -> &'a [E] {
        self.y
    }

    /// Writes plane `i`'s pooling input gradient into `plane`.
    #[inline(always)]
    fn scatter(&self, i: usize, plane: &mut [E])
    where
        E: Elem,
    {
        plane.fill(E::zero());
        for (&g, &a) in self.dy[i * self.q..][..self.q].iter().zip(&self.argmax[i * self.q..][..self.q]) {
            plane[a as usize] += g;
        }
    }
}

/// [`batchnorm_relu_backward`](super::norm::batchnorm_relu_backward) of the input gradient of a
/// max pooling `pd` over its output `y` — the pooling's output gradient `pdy` and `argmax` — with
/// that gradient scattered into `dr` (sized like `x`) where batch norm's first pass reads it: the
/// same values, sums and bits as [`max_backward`](super::pool::max_backward) into `dr` followed by
/// `batchnorm_relu_backward`, one pass over the activation fewer.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_pool_backward<E: Elem>(
    d: NormDims,
    pd: &PoolDims,
    pdy: &[E],
    argmax: &[u32],
    y: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dr: &mut [E],
    dx: Option<&mut [E]>,
) {
    super::norm::check_pools(d, pd);
    assert_eq!(dr.len(), x.len(), "pooling: input gradient length");
    pd.check_lens(y.len(), pdy.len());
    assert_eq!(argmax.len(), pdy.len(), "pooling: argmax length");
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    // (An argmax outside its plane would panic in the scatter, which indexes the plane with it.)
    let p = Pooled { q: pd.oh() * pd.ow(), c: d.c, dy: pdy, argmax, y };
    bn_backward(d, Dy::Pooled(p), Some(dr), x, (mean, inv_std), gamma, (dgamma, dbeta), dx)
}

multiversion! {
    /// Batch norm's first backward pass (`sample_back_sums` with ReLU's mask) over the pooling's
    /// input gradient, scattered plane by plane into `dr` (a `(samples, C, inner)` block) just
    /// before it is summed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pooled_back_sums_into<E: Elem>(
        c: usize, inner: usize, p: Pooled<'_, E>, x: &[E], mean: &[E], db: &mut [E], dg: &mut [E], dr: &mut [E],
    ) => pooled_back_sums_into_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pooled_back_sums_into_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    p: Pooled<'_, E>,
    x: &[E],
    mean: &[E],
    db: &mut [E],
    dg: &mut [E],
    dr: &mut [E],
) {
    let planes = db.len().min(dg.len());
    if planes == 0 || inner == 0 {
        return;
    }
    // One plane ahead: the sums then read values whose (scalar) stores have long retired, not ones
    // still in the store buffer, which the vector loads could not take from it.
    p.scatter(0, &mut dr[..inner]);
    for i in 0..planes {
        if i + 1 < planes {
            p.scatter(i + 1, &mut dr[(i + 1) * inner..][..inner]);
        }
        let plane = &dr[i * inner..][..inner];
        (db[i], dg[i]) =
            masked_sums::<E, FMA>(plane, &p.y[i * inner..][..inner], &x[i * inner..][..inner], mean[i % c]);
    }
}
