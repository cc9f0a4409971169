//! The backward pass of `BatchNormReLU2d` followed by `MaxPool2d`, fused: the pooling's gradient
//! is scattered (zeros, then each output gradient added at its argmax, in order: exactly
//! [`max_backward`](super::pool::max_backward)'s values) into a plane-sized buffer on the stack
//! where each of batch norm's two backward passes reads its output gradient, so the pooling's input
//! gradient — a batch-sized buffer written once and read twice — never reaches memory.

use super::norm::{Dy, NormDims, bn_backward, masked_sums, relu_grad};
use super::pool::PoolDims;
use super::{Elem, multiversion};

/// The largest plane (`H·W`) [`batchnorm_relu_pool_backward`] takes: its scatter buffer is an
/// array of that many values on the stack (16 KiB of `f32`). Larger planes go through the two
/// layers' passes.
pub const POOLED_PLANE_MAX: usize = 4096;

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
/// max pooling `pd` over its output `y` — the pooling's output gradient `pdy` and `argmax` — without
/// that gradient written out: the same values, sums and bits as
/// [`max_backward`](super::pool::max_backward) followed by `batchnorm_relu_backward`. Planes
/// (`H·W`) of at most [`POOLED_PLANE_MAX`] values.
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
    dx: Option<&mut [E]>,
) {
    assert!(
        pd.planes == d.n * d.c && pd.h.checked_mul(pd.w) == Some(d.inner),
        "batch norm and pooling: {pd:?} does not pool {d:?}"
    );
    assert!(d.inner <= POOLED_PLANE_MAX, "batch norm and pooling: planes of {} values", d.inner);
    pd.check_lens(y.len(), pdy.len());
    assert_eq!(argmax.len(), pdy.len(), "pooling: argmax length");
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    // (An argmax outside its plane would panic in the scatter, which indexes the plane with it.)
    let p = Pooled { q: pd.oh() * pd.ow(), c: d.c, dy: pdy, argmax, y };
    bn_backward(d, Dy::Pooled(p), x, (mean, inv_std), gamma, (dgamma, dbeta), dx)
}

multiversion! {
    /// [`sample_back_sums`](super::norm) with ReLU's mask, of the scattered pooling gradient.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pooled_back_sums<E: Elem>(
        c: usize, inner: usize, p: Pooled<'_, E>, x: &[E], mean: &[E], db: &mut [E], dg: &mut [E],
    ) => pooled_back_sums_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pooled_back_sums_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    p: Pooled<'_, E>,
    x: &[E],
    mean: &[E],
    db: &mut [E],
    dg: &mut [E],
) {
    let mut buf = [E::zero(); POOLED_PLANE_MAX];
    let plane = &mut buf[..inner];
    for (i, (b, g)) in db.iter_mut().zip(dg.iter_mut()).enumerate() {
        p.scatter(i, plane);
        (*b, *g) = masked_sums::<E, FMA>(plane, &p.y[i * inner..][..inner], &x[i * inner..][..inner], mean[i % c]);
    }
}

multiversion! {
    /// `sample_dx` with ReLU's mask, of the scattered pooling gradient.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pooled_dx<E: Elem>(
        c: usize, inner: usize, p: Pooled<'_, E>, x: &[E], stats: (&[E], &[E]), gamma: &[E],
        sums: (&[E], &[E]), m: E, dx: &mut [E],
    ) => pooled_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pooled_dx_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    p: Pooled<'_, E>,
    x: &[E],
    (mean, inv_std): (&[E], &[E]),
    gamma: &[E],
    (dbeta, dgamma): (&[E], &[E]),
    m: E,
    dx: &mut [E],
) {
    let mut buf = [E::zero(); POOLED_PLANE_MAX];
    let plane = &mut buf[..inner];
    for (i, o) in dx.chunks_exact_mut(inner).enumerate() {
        p.scatter(i, plane);
        let ch = i % c;
        let (mu, is, db, dg) = (mean[ch], inv_std[ch], dbeta[ch], dgamma[ch]);
        let k = gamma[ch] * is / m;
        let (xs, ys) = (&x[i * inner..][..inner], &p.y[i * inner..][..inner]);
        for (((o, &d), &xv), &yv) in o.iter_mut().zip(&*plane).zip(xs).zip(ys) {
            *o = k * (m * relu_grad(d, yv) - db - (xv - mu) * is * dg);
        }
    }
}
