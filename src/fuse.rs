//! Adjacent-layer fusion in the derived passes (issue 19, item 4).
//!
//! A layer says what it can fuse with through [`Module::FUSE`] (a [`Kind`]); the derive checks
//! every adjacent pair of fields with [`joined`] in a `const` block, so the branch not taken is
//! dead code after monomorphisation, and for a joined pair calls the functions of this module
//! instead of the two layers' passes. They are thin: they reach the caches and parameters they
//! need through [`Module`]'s fusion hooks ([`Module::fuse_pool_cache`], [`Module::fuse_bn_mut`],
//! [`Module::fuse_affine`], [`Module::fuse_bn_cache`]) and call one kernel of the table, compiled
//! once in this crate.
//!
//! | pair | forward (training, inference, reuse) | backward |
//! |---|---|---|
//! | [`ReLU`](crate::layers::ReLU) → [`MaxPool2d`](crate::layers::MaxPool2d) | one pass over `x`: pooling of `max(x, 0)`, ReLU's output not written | one pass: each gradient added at its argmax where the pooled output is positive (ReLU's select; the pooled output is ReLU's input there through that select), ReLU's backward skipped |
//! | [`BatchNormReLU2d`](crate::layers::BatchNormReLU2d) → `MaxPool2d` | training: each sample pooled right after it is normalised (while in cache); inference: the two layers | the pooling's gradient scattered plane by plane in batch norm's first backward pass, just ahead of the sums that read it (written there once and read by both passes, one pass fewer than the two layers) |
//!
//! Every fused pass gives the same bits as the two layers, for every input (NaN included: ReLU
//! maps it to +0 before the pooling compares anything, and the fused kernels apply ReLU's exact
//! select to each value as they read it); `tests/fusion_pairs.rs` checks it.
//!
//! The ReLU's step keeps its (sized) `out` buffer, which a fused pass does not write: nothing
//! reads it (the pooling's backward pass reads only its argmax, ReLU's reads its input).

use crate::kernels::Elem;
use crate::kernels::norm::NormDims;
use crate::kernels::pool::PoolDims;
use crate::layer::{Act, Module, Step, check_backward, check_call};
use crate::layers::{BN_EPS, BN_MOMENTUM};
use crate::shape::Extents;

/// What a layer can fuse with a neighbour ([`Module::FUSE`]). A pair is fused when its first
/// layer is a *head* (`Relu`, `BnRelu`) and its second a *tail* (`MaxPool`); no kind is both, so
/// a layer is never in two fused pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Nothing (the default).
    None,
    /// [`ReLU`](crate::layers::ReLU).
    Relu,
    /// [`BatchNormReLU2d`](crate::layers::BatchNormReLU2d).
    BnRelu,
    /// [`MaxPool2d<P, S, PAD>`](crate::layers::MaxPool2d): window `p`, stride `s`, padding `pad`.
    MaxPool {
        /// Window.
        p: usize,
        /// Stride.
        s: usize,
        /// Padding.
        pad: usize,
    },
}

impl Kind {
    /// Whether a pair may start with this kind.
    pub const fn is_head(self) -> bool {
        matches!(self, Kind::Relu | Kind::BnRelu)
    }
    /// Whether a pair may end with this kind.
    pub const fn is_tail(self) -> bool {
        matches!(self, Kind::MaxPool { .. })
    }
}

/// Whether the derive fuses a field of kind `a` with the next field, of kind `b` (evaluated in a
/// `const` block: the other branch is dead code).
pub const fn joined(a: Kind, b: Kind) -> bool {
    a.is_head() && b.is_tail()
}

/// γ, β and the running statistics of a batch norm (or their gradients), as slices
/// ([`Module::fuse_bn_mut`]).
#[derive(Debug)]
pub struct BnParamsMut<'a, E> {
    /// Scale γ.
    pub gamma: &'a mut [E],
    /// Shift β.
    pub beta: &'a mut [E],
    /// Running mean (updated by a training pass).
    pub running_mean: &'a mut [E],
    /// Running variance (updated by a training pass).
    pub running_var: &'a mut [E],
}

/// The pooling geometry of a tail kind.
fn pool_dims<E>(kind: Kind, x: &Act<'_, E>) -> PoolDims {
    let Kind::MaxPool { p, s, pad } = kind else { unreachable!("fuse: {kind:?} is not a pooling") };
    PoolDims { planes: x.n * x.ext.dim(0), h: x.ext.dim(1), w: x.ext.dim(2), p, stride: s, pad }
}

/// Checks a fused pair's forward buffers: `x` follows `A`'s rule into `ha` (`A`'s output, extents
/// `a_ext`), which follows `B`'s into `yb`. Returns `A`'s output as `B`'s input.
fn check_pair<'h, E: Elem, A: Module<E>, B: Module<E>>(
    x: &Act<'_, E>,
    ha: &'h [E],
    a_ext: Extents,
    yb: usize,
) -> Act<'h, E> {
    let out = check_call::<E, A>(x, ha.len());
    assert_eq!(out, a_ext, "fuse: the first layer's output extents");
    let mid = Act::new(ha, x.n, a_ext);
    check_call::<E, B>(&mid, yb);
    mid
}

/// Inference forward pass of the pair `a → b` from `x` into `yb`; `ha` (`a`'s output, extents
/// `a_ext`) is scratch the fused pass may leave unwritten.
pub fn forward<E: Elem, A: Module<E>, B: Module<E>>(
    a: &A,
    b: &B,
    x: Act<'_, E>,
    ha: &mut [E],
    a_ext: Extents,
    yb: &mut [E],
) {
    match A::FUSE {
        Kind::Relu => {
            let mid = check_pair::<E, A, B>(&x, ha, a_ext, yb.len());
            E::k_relu_max_pool_forward(&pool_dims(B::FUSE, &mid), x.data, yb, None);
        }
        _ => {
            a.forward_raw(x, ha);
            b.forward_raw(Act::new(ha, x.n, a_ext), yb);
        }
    }
}

/// [`forward`] keeping intermediates in the caches ([`Module::forward_reuse`]); `sa` is `a`'s step.
pub fn forward_reuse<E: Elem, A: Module<E>, B: Module<E>>(
    a: &A,
    b: &B,
    x: Act<'_, E>,
    sa: &mut Step<A::Cache, E>,
    yb: &mut [E],
    cb: &mut B::Cache,
) {
    match A::FUSE {
        Kind::Relu => forward(a, b, x, &mut sa.out, sa.ext, yb),
        _ => {
            a.forward_reuse(x, &mut sa.out, &mut sa.cache);
            b.forward_reuse(Act::new(&sa.out, x.n, sa.ext), yb, cb);
        }
    }
}

/// Training forward pass of the pair `a → b` from `x` into `yb`, keeping what the backward pass
/// needs in `a`'s step `sa` and `b`'s cache `cb`. `sa.out`, `a`'s output, is scratch here: the
/// fused kernels do not keep it (the backward pass recomputes what it needs from `x`).
pub fn forward_train<E: Elem, A: Module<E>, B: Module<E>>(
    a: &mut A,
    x: Act<'_, E>,
    sa: &mut Step<A::Cache, E>,
    yb: &mut [E],
    cb: &mut B::Cache,
) {
    let mid = check_pair::<E, A, B>(&x, &sa.out, sa.ext, yb.len());
    let d = pool_dims(B::FUSE, &mid);
    let pool = B::fuse_pool_cache(cb).expect("fuse: a pooling's cache");
    pool.argmax.resize(yb.len(), 0);
    match A::FUSE {
        Kind::Relu => E::k_relu_max_pool_forward(&d, x.data, yb, Some(&mut pool.argmax)),
        Kind::BnRelu => {
            let nd = NormDims { n: x.n, c: x.ext.dim(0), inner: x.ext.dim(1) * x.ext.dim(2) };
            let bn = a.fuse_bn_mut().expect("fuse: batch norm parameters");
            let c = A::fuse_bn_cache(&mut sa.cache).expect("fuse: a batch norm's cache");
            c.mean.resize(nd.c, E::zero());
            c.inv_std.resize(nd.c, E::zero());
            E::k_batchnorm_relu_pool_train(
                nd,
                &d,
                x.data,
                bn.gamma,
                bn.beta,
                bn.running_mean,
                bn.running_var,
                E::lit(BN_MOMENTUM),
                E::lit(BN_EPS),
                &mut sa.out,
                &mut c.mean,
                &mut c.inv_std,
                yb,
                &mut pool.argmax,
            );
        }
        k => unreachable!("fuse: {k:?} is not a head"),
    }
}

/// Backward pass of the pair `a → b` (after [`forward_train`]): given `b`'s output `yb` and its
/// gradient `dyb`, writes the parameter gradients into `ga`, `gb` and, when `dx` is given, the
/// gradient of `a`'s input `x` into it. `sa.grad` (the gradient between the two) is sized, and
/// used as scratch.
///
/// Panics on a backward pass without a training forward pass, or buffers of the wrong lengths.
#[allow(clippy::too_many_arguments)]
pub fn backward<E: Elem, A: Module<E>, B: Module<E>>(
    (a, _b): (&A, &B),
    x: Act<'_, E>,
    sa: &mut Step<A::Cache, E>,
    (yb, dyb): (&[E], &[E]),
    cb: &mut B::Cache,
    dx: Option<&mut [E]>,
    (ga, _gb): (&mut A, &mut B),
) {
    sa.fit_grad();
    // the checks both heads need: the buffers' lengths, and a training pass before this one
    check_call::<E, A>(&x, sa.out.len());
    let mid = Act::new(&sa.out, x.n, sa.ext);
    check_backward::<E, B>(&mid, yb.len(), dyb.len(), None);
    let pd = pool_dims(B::FUSE, &mid);
    assert!(dx.as_ref().is_none_or(|d| d.len() == x.data.len()), "fuse: the input gradient does not match the input");
    let argmax = &B::fuse_pool_cache(cb).expect("fuse: a pooling's cache").argmax;
    assert_eq!(argmax.len(), dyb.len(), "MaxPool2d: backward without a training forward pass");
    match A::FUSE {
        Kind::Relu => {
            if let Some(dx) = dx {
                E::k_relu_max_pool_backward(&pd, dyb, argmax, yb, dx);
            }
        }
        Kind::BnRelu => {
            let nd = NormDims { n: x.n, c: x.ext.dim(0), inner: x.ext.dim(1) * x.ext.dim(2) };
            let c = A::fuse_bn_cache(&mut sa.cache).expect("fuse: a batch norm's cache");
            assert_eq!(c.mean.len(), nd.c, "batch norm: backward without a training forward pass");
            let affine = a.fuse_affine().expect("fuse: batch norm parameters");
            let g = ga.fuse_bn_mut().expect("fuse: batch norm gradients");
            E::k_batchnorm_relu_pool_backward(
                nd,
                &pd,
                dyb,
                argmax,
                x.data,
                &c.mean,
                &c.inv_std,
                affine,
                g.gamma,
                g.beta,
                &mut sa.grad,
                dx,
            );
        }
        k => unreachable!("fuse: {k:?} is not a head"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No kind is both a head and a tail, so the derive's pairs never overlap.
    #[test]
    fn heads_and_tails_are_disjoint() {
        let kinds = [Kind::None, Kind::Relu, Kind::BnRelu, Kind::MaxPool { p: 2, s: 2, pad: 0 }];
        for k in kinds {
            assert!(!(k.is_head() && k.is_tail()), "{k:?}");
            for j in kinds {
                assert_eq!(joined(k, j), k.is_head() && j.is_tail());
            }
        }
    }
}
