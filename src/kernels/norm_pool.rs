//! `BatchNormReLU2d` followed by `MaxPool2d`, fused. The training forward pass pools each sample
//! right after normalising it and keeps no batch-norm output. The backward pass recomputes ReLU's
//! mask from the batch norm's input, and writes the pooling's input gradient (zeros, then each
//! output gradient added at its argmax, in order: exactly
//! [`max_backward`](super::pool::max_backward)'s values) plane by plane inside batch norm's first
//! backward pass, one plane ahead of the sums that read it; the second pass (the input gradient)
//! reads it back. The unfused passes write it in a
//! pass of their own and read it twice. (Scattering it again in the second pass instead, into two
//! planes kept in L1, as an earlier form did, was slower: a scatter, a fill and a scalar store per
//! output, is bound by the stores — 4b's planes, this project's Zen 4: 1.1–1.2× the time,
//! `cargo bench --bench kernels -- "relu maxpool backward"`.)

use super::cpu::fmadd;
use super::norm::{Dy, NormDims, bn_backward, bn_train, relu_grad};
use super::pool::PoolDims;
use super::{Elem, multiversion};

/// A max pooling's output gradient `dy` (`q` values a plane) and argmax, over the planes of a
/// batch norm with ReLU whose scale and shift are `gamma` and `beta`.
#[derive(Clone, Copy)]
pub(super) struct Pooled<'a, E> {
    /// Gradient values a plane.
    q: usize,
    /// Planes a sample.
    c: usize,
    dy: &'a [E],
    argmax: &'a [u32],
    gamma: &'a [E],
    beta: &'a [E],
    /// Whether the windows are disjoint (stride ≥ window): each input is then the argmax of at
    /// most one output, and the scatter stores instead of adding (no load just after the fill).
    disjoint: bool,
}

impl<'a, E> Pooled<'a, E> {
    /// Samples `lo .. lo + m`.
    pub(super) fn samples(&self, lo: usize, m: usize) -> Self {
        let per = self.c * self.q;
        Pooled { dy: &self.dy[lo * per..(lo + m) * per], argmax: &self.argmax[lo * per..(lo + m) * per], ..*self }
    }

    /// The batch norm's shifts.
    pub(super) fn beta(&self) -> &'a [E] {
        self.beta
    }

    /// Writes plane `i`'s pooling input gradient into `plane`.
    #[inline(always)]
    fn scatter(&self, i: usize, plane: &mut [E])
    where
        E: Elem,
    {
        plane.fill(E::zero());
        let (dy, argmax) = (&self.dy[i * self.q..][..self.q], &self.argmax[i * self.q..][..self.q]);
        if self.disjoint {
            // `0 + g`: the bits of the addition below (−0 becomes +0)
            for (&g, &a) in dy.iter().zip(argmax) {
                plane[a as usize] = E::zero() + g;
            }
        } else {
            for (&g, &a) in dy.iter().zip(argmax) {
                plane[a as usize] += g;
            }
        }
    }
}

/// [`batchnorm_relu_train`](super::norm::batchnorm_relu_train) followed by max pooling
/// ([`pool::max_forward`](super::pool::max_forward) with argmax) of its output, fused: each sample
/// is pooled right after it is normalised, while its values are still in cache, instead of in a
/// pass of its own over the whole batch. `y` (sized like `x`) is scratch: the batch norm's output
/// is not kept (its backward pass, [`batchnorm_relu_pool_backward`], recomputes ReLU's mask from
/// `x`); `py` and `argmax` are the pooling's output and positions, the same bits as the two calls.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_pool_train<E: Elem>(
    d: NormDims,
    pd: &PoolDims,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    running_mean: &mut [E],
    running_var: &mut [E],
    momentum: E,
    eps: E,
    y: &mut [E],
    mean: &mut [E],
    inv_std: &mut [E],
    py: &mut [E],
    argmax: &mut [u32],
) {
    check_pools(d, pd);
    pd.check_lens(y.len(), py.len());
    assert_eq!(argmax.len(), py.len(), "pooling: argmax length");
    let stats = (running_mean, running_var, mean, inv_std);
    bn_train(d, x, (gamma, beta), stats, (momentum, eps), y, true, Some((pd, py, argmax)))
}

/// A pooling fused after a batch norm pools exactly its planes (each sample's channels).
fn check_pools(d: NormDims, pd: &PoolDims) {
    assert!(
        pd.planes == d.n * d.c && pd.h.checked_mul(pd.w) == Some(d.inner),
        "batch norm and pooling: {pd:?} does not pool {d:?}"
    );
}

/// [`batchnorm_relu_backward`](super::norm::batchnorm_relu_backward) of the input gradient of a
/// max pooling `pd` over the batch norm's output — the pooling's output gradient `pdy` and
/// `argmax`, the batch norm's input `x`, statistics and `(γ, β)` — with that gradient scattered
/// plane by plane inside batch norm's first pass: the same values, sums and bits as
/// [`max_backward`](super::pool::max_backward) followed by `batchnorm_relu_backward`, one pass
/// over the batch fewer. `dr` (sized like `x`) receives the pooling's input gradient
/// (`max_backward`'s values).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_relu_pool_backward<E: Elem>(
    d: NormDims,
    pd: &PoolDims,
    pdy: &[E],
    argmax: &[u32],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    (gamma, beta): (&[E], &[E]),
    dgamma: &mut [E],
    dbeta: &mut [E],
    dr: &mut [E],
    dx: Option<&mut [E]>,
) {
    check_pools(d, pd);
    assert_eq!(dr.len(), x.len(), "pooling: input gradient length");
    pd.check_lens(x.len(), pdy.len());
    assert_eq!(argmax.len(), pdy.len(), "pooling: argmax length");
    assert!(beta.len() >= d.c, "batch norm: {} shifts for {} channels", beta.len(), d.c);
    // (An argmax outside its plane would panic in the scatter, which indexes the plane with it.)
    let p = Pooled { q: pd.oh() * pd.ow(), c: d.c, dy: pdy, argmax, gamma, beta, disjoint: pd.stride >= pd.p };
    bn_backward(d, Dy::Pooled(p), Some(dr), x, (mean, inv_std), gamma, (dgamma, dbeta), dx)
}

/// `[μ, σ⁻¹, γ, β]` of a channel: ReLU's mask at `x` is `γ·(x − μ)·σ⁻¹ + β > 0`, the forward
/// pass's expression (`normalize`: the same multiply-adds on the same ISA), so the same select as
/// on the output it did not keep (`y > 0` exactly where that value is, `y` being it through ReLU).
type Affine<E> = [E; 4];

/// ReLU's backward select of `dy` at input `x`, its mask recomputed (see [`Affine`]).
#[inline(always)]
fn select<E: Elem, const FMA: bool>(dy: E, x: E, [mu, is, g, b]: Affine<E>) -> E {
    relu_grad(dy, fmadd::<E, FMA>(g, (x - mu) * is, b))
}

/// `(Σ g, Σ g·(x − μ))` with `g` ReLU's select of `dy` at `x` ([`select`]): `masked_sums`'s
/// partial sums, folded the same way, so the same bits as over the kept output. (The select is
/// computed, not stored back: a conditional store becomes a masked store on AVX2, slow on AMD.)
#[inline(always)]
fn selected_sums<E: Elem, const FMA: bool>(dy: &[E], x: &[E], a: Affine<E>) -> (E, E) {
    let len = dy.len().min(x.len());
    let (dy, x, mu) = (&dy[..len], &x[..len], a[0]);
    let (mut sl, mut dl) = ([E::zero(); 8], [E::zero(); 8]);
    let (cd, cx) = (dy.chunks_exact(8), x.chunks_exact(8));
    let (rd, rx) = (cd.remainder(), cx.remainder());
    for (d, xv) in cd.zip(cx) {
        for l in 0..8 {
            let g = select::<E, FMA>(d[l], xv[l], a);
            sl[l] += g;
            dl[l] = fmadd::<E, FMA>(g, xv[l] - mu, dl[l]);
        }
    }
    let st: E = rd.iter().zip(rx).map(|(&d, &xv)| select::<E, FMA>(d, xv, a)).sum();
    let mut dt = E::zero();
    for (&d, &xv) in rd.iter().zip(rx) {
        dt = fmadd::<E, FMA>(select::<E, FMA>(d, xv, a), xv - mu, dt);
    }
    (sl.iter().copied().fold(st, |s, v| s + v), dl.iter().copied().fold(dt, |s, v| s + v))
}

multiversion! {
    /// Batch norm's first backward pass (`sample_back_sums` with ReLU's mask) over the pooling's
    /// input gradient, which it writes into `dr` (sized like `x`) plane by plane, one plane ahead
    /// of the sums: a plane's scalar stores have long retired when the sums' vector loads read it
    /// (they could not take the values from the store buffer).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pooled_back_sums_into<E: Elem>(
        c: usize, inner: usize, p: Pooled<'_, E>, x: &[E], stats: (&[E], &[E]),
        db: &mut [E], dg: &mut [E], dr: &mut [E],
    ) => pooled_back_sums_into_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pooled_back_sums_into_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    p: Pooled<'_, E>,
    x: &[E],
    (mean, inv_std): (&[E], &[E]),
    db: &mut [E],
    dg: &mut [E],
    dr: &mut [E],
) {
    let planes = db.len().min(dg.len());
    if planes == 0 || inner == 0 {
        return;
    }
    let dr = &mut dr[..planes * inner];
    p.scatter(0, &mut dr[..inner]);
    for i in 0..planes {
        let (done, ahead) = dr.split_at_mut((i + 1) * inner);
        if i + 1 < planes {
            p.scatter(i + 1, &mut ahead[..inner]);
        }
        let (ch, xs) = (i % c, &x[i * inner..][..inner]);
        let a = [mean[ch], inv_std[ch], p.gamma[ch], p.beta[ch]];
        (db[i], dg[i]) = selected_sums::<E, FMA>(&done[i * inner..], xs, a);
    }
}

multiversion! {
    /// Batch norm's input gradient (`sample_dx` with ReLU's mask) from the pooling's input
    /// gradient `dr` that [`pooled_back_sums_into`] wrote, with the channel statistics
    /// `(μ, σ⁻¹, γ, β, dβ, dγ, count)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pooled_dx<E: Elem>(
        c: usize, inner: usize, x: &[E], stats: (&[E], &[E], &[E], &[E], &[E], &[E], E), dr: &[E], dx: &mut [E],
    ) => pooled_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pooled_dx_body<E: Elem, const FMA: bool>(
    c: usize,
    inner: usize,
    x: &[E],
    (mean, inv_std, gamma, beta, dbeta, dgamma, m): (&[E], &[E], &[E], &[E], &[E], &[E], E),
    dr: &[E],
    dx: &mut [E],
) {
    if inner == 0 {
        return;
    }
    for i in 0..dx.len() / inner {
        let ch = i % c;
        let (mu, is) = (mean[ch], inv_std[ch]);
        let k = gamma[ch] * is / m;
        let (o, xs, g) = (&mut dx[i * inner..][..inner], &x[i * inner..][..inner], &dr[i * inner..][..inner]);
        let (a, db, dg) = ([mu, is, gamma[ch], beta[ch]], dbeta[ch], dgamma[ch]);
        // `sample_dx`'s expression with ReLU's mask
        for ((o, &d), &xv) in o.iter_mut().zip(g).zip(xs) {
            *o = k * (m * select::<E, FMA>(d, xv, a) - db - (xv - mu) * is * dg);
        }
    }
}
