//! Batch-normalisation kernels over a `(N, C, inner)` layout: statistics per channel over `N·inner`
//! (`inner = 1` for features, `H·W` for spatial batch norm). With several kernel threads, large calls
//! split the channels between them; each channel is computed in the same order either way, so the
//! results do not depend on the thread count.

use std::marker::PhantomData;
use std::ops::Range;

use super::{Elem, fmadd, multiversion, sq_dev_lanes, sum_lanes};

/// Sizes of a batch-norm call.
#[derive(Clone, Copy, Debug)]
pub struct NormDims {
    /// Batch size.
    pub n: usize,
    /// Channels (features).
    pub c: usize,
    /// Elements per channel per sample (1, or `H·W`).
    pub inner: usize,
}

/// A buffer written by several parts of a channel split at once. A channel's elements of a
/// `(N, C, inner)` tensor are interleaved with the other channels' (one run of `inner` per sample),
/// so the parts cannot hold disjoint `&mut` slices of the whole; each borrows only its own
/// channels' pieces, one at a time.
struct Shared<'a, E> {
    ptr: *mut E,
    len: usize,
    _buf: PhantomData<&'a mut [E]>,
}

// SAFETY: a `Shared` is the unique borrow of its buffer (taken from a `&mut [E]`); the parts that
// share it only create slices of their own channels (see `Shared::piece`), which never overlap.
unsafe impl<E: Send> Send for Shared<'_, E> {}
unsafe impl<E: Send> Sync for Shared<'_, E> {}

impl<'a, E> Shared<'a, E> {
    fn new(buf: &'a mut [E]) -> Self {
        Shared { ptr: buf.as_mut_ptr(), len: buf.len(), _buf: PhantomData }
    }

    /// `len` elements from `start`.
    ///
    /// # Safety
    /// No other live slice from this `Shared` may overlap the piece: each part of a split works on
    /// its own channel range only, and drops a piece before taking the next.
    #[allow(clippy::mut_from_ref)]
    unsafe fn piece(&self, start: usize, len: usize) -> &mut [E] {
        assert!(start + len <= self.len, "batch-norm buffer too short");
        // SAFETY: in bounds (checked just above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Runs `f` on consecutive channel ranges covering `0..c`, over the kernel threads when the call is
/// large enough to pay for them (one range otherwise).
fn split_channels(d: NormDims, f: &(dyn Fn(Range<usize>) + Sync)) {
    // per channel, about four passes (of about two multiply-adds each) over its N·inner elements
    let parts = super::split_batch(d.c, d.n * d.inner * 8);
    if parts <= 1 {
        return f(0..d.c);
    }
    let per = d.c.div_ceil(parts);
    crate::threads::run_parts((0..d.c).step_by(per).map(|start| start..(start + per).min(d.c)), f);
}

/// Training forward: batch mean and biased variance per channel; `y = γ·x̂ + β` with
/// `x̂ = (x − μ)/√(σ² + eps)`; running statistics `r = momentum·r + (1 − momentum)·batch`.
/// Keeps `μ` and `1/√(σ² + eps)` per channel for the backward pass, which recomputes `x̂` from `x`
/// (one stream fewer to write than keeping `x̂`).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_train<E: Elem>(
    d: NormDims,
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
) {
    let bufs = TrainBufs {
        y: Shared::new(y),
        mean: Shared::new(mean),
        inv_std: Shared::new(inv_std),
        running_mean: Shared::new(running_mean),
        running_var: Shared::new(running_var),
    };
    split_channels(d, &|chs| train_channels(d, chs, x, gamma, beta, momentum, eps, &bufs));
}

/// The outputs of [`batchnorm_train`], shared by the parts of a channel split.
struct TrainBufs<'a, E> {
    y: Shared<'a, E>,
    mean: Shared<'a, E>,
    inv_std: Shared<'a, E>,
    running_mean: Shared<'a, E>,
    running_var: Shared<'a, E>,
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn train_channels<E: Elem>(
        d: NormDims,
        chs: Range<usize>,
        x: &[E],
        gamma: &[E],
        beta: &[E],
        momentum: E,
        eps: E,
        out: &TrainBufs<'_, E>,
    ) => train_channels_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn train_channels_body<E: Elem, const FMA: bool>(
    d: NormDims,
    chs: Range<usize>,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    momentum: E,
    eps: E,
    out: &TrainBufs<'_, E>,
) {
    let NormDims { n, c, inner } = d;
    let count = E::from(n * inner).unwrap_or_else(E::one).max(E::one());
    for ch in chs {
        let mut sum = E::zero();
        for s in 0..n {
            let base = (s * c + ch) * inner;
            sum += sum_lanes(&x[base..base + inner]);
        }
        let mean = sum / count;
        let mut sq = E::zero();
        for s in 0..n {
            let base = (s * c + ch) * inner;
            sq += sq_dev_lanes::<E, FMA>(&x[base..base + inner], mean);
        }
        let var = sq / count;
        let is = E::one() / (var + eps).sqrt();
        let (g, b) = (gamma[ch], beta[ch]);
        for s in 0..n {
            let base = (s * c + ch) * inner;
            // SAFETY: channel `ch` belongs to this part only; one piece at a time.
            let y = unsafe { out.y.piece(base, inner) };
            for (yv, &xv) in y.iter_mut().zip(&x[base..base + inner]) {
                *yv = fmadd::<E, FMA>(g, (xv - mean) * is, b);
            }
        }
        // SAFETY: as above, element `ch` of the per-channel buffers belongs to this part only.
        unsafe {
            out.mean.piece(ch, 1)[0] = mean;
            out.inv_std.piece(ch, 1)[0] = is;
            let rm = &mut out.running_mean.piece(ch, 1)[0];
            *rm = momentum * *rm + (E::one() - momentum) * mean;
            let rv = &mut out.running_var.piece(ch, 1)[0];
            *rv = momentum * *rv + (E::one() - momentum) * var;
        }
    }
}

/// Inference forward with running statistics: `y = γ·(x − r_μ)/√(r_σ² + eps) + β`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_eval<E: Elem>(
    d: NormDims,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    running_mean: &[E],
    running_var: &[E],
    eps: E,
    y: &mut [E],
) {
    let NormDims { n, c, inner } = d;
    for ch in 0..c {
        let scale = gamma[ch] / (running_var[ch] + eps).sqrt();
        let shift = beta[ch] - running_mean[ch] * scale;
        for s in 0..n {
            let base = (s * c + ch) * inner;
            for i in base..base + inner {
                y[i] = x[i] * scale + shift;
            }
        }
    }
}

/// Backward: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/(m·σ) · (m·dy − dβ − x̂·dγ)` with `m = N·inner`
/// and `x̂ = (x − μ)·inv_std` recomputed from the forward input `x` and the kept `mean`, `inv_std`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward<E: Elem>(
    d: NormDims,
    dy: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    let out = BackBufs { dgamma: Shared::new(dgamma), dbeta: Shared::new(dbeta), dx: dx.map(Shared::new) };
    split_channels(d, &|chs| backward_channels(d, chs, dy, x, mean, inv_std, gamma, &out));
}

/// The outputs of [`batchnorm_backward`], shared by the parts of a channel split.
struct BackBufs<'a, E> {
    dgamma: Shared<'a, E>,
    dbeta: Shared<'a, E>,
    dx: Option<Shared<'a, E>>,
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn backward_channels<E: Elem>(
        d: NormDims,
        chs: Range<usize>,
        dy: &[E],
        x: &[E],
        mean: &[E],
        inv_std: &[E],
        gamma: &[E],
        out: &BackBufs<'_, E>,
    ) => backward_channels_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_channels_body<E: Elem, const FMA: bool>(
    d: NormDims,
    chs: Range<usize>,
    dy: &[E],
    x: &[E],
    mean: &[E],
    inv_std: &[E],
    gamma: &[E],
    out: &BackBufs<'_, E>,
) {
    let NormDims { n, c, inner } = d;
    let m = E::from(n * inner).unwrap_or_else(E::one).max(E::one());
    for ch in chs {
        let (mu, is) = (mean[ch], inv_std[ch]);
        let (mut db, mut dg) = (E::zero(), E::zero());
        for s in 0..n {
            let base = (s * c + ch) * inner;
            db += sum_lanes(&dy[base..base + inner]);
            dg += dot_dev::<E, FMA>(&dy[base..base + inner], &x[base..base + inner], mu);
        }
        let dg = dg * is;
        // SAFETY: channel `ch` belongs to this part only; one piece of each buffer at a time.
        unsafe {
            out.dbeta.piece(ch, 1)[0] = db;
            out.dgamma.piece(ch, 1)[0] = dg;
        }
        if let Some(dx) = &out.dx {
            let k = gamma[ch] * is / m;
            for s in 0..n {
                let base = (s * c + ch) * inner;
                // SAFETY: as above.
                let dxr = unsafe { dx.piece(base, inner) };
                for ((o, &g), &xv) in dxr.iter_mut().zip(&dy[base..base + inner]).zip(&x[base..base + inner]) {
                    *o = k * (m * g - db - (xv - mu) * is * dg);
                }
            }
        }
    }
}

/// `Σ a·(x − m)`, with eight independent partial sums.
#[inline(always)]
fn dot_dev<E: Elem, const FMA: bool>(a: &[E], x: &[E], m: E) -> E {
    let len = a.len().min(x.len());
    let (a, x) = (&a[..len], &x[..len]);
    let mut lanes = [E::zero(); 8];
    let (ca, cx) = (a.chunks_exact(8), x.chunks_exact(8));
    let mut tail = E::zero();
    for (&u, &v) in ca.remainder().iter().zip(cx.remainder()) {
        tail = fmadd::<E, FMA>(u, v - m, tail);
    }
    for (u, v) in ca.zip(cx) {
        for l in 0..8 {
            lanes[l] = fmadd::<E, FMA>(u[l], v[l] - m, lanes[l]);
        }
    }
    lanes.iter().copied().fold(tail, |s, v| s + v)
}
