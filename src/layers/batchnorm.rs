//! Batch normalisation over features `(N, D)` and over channels `(N, C, H, W)`, and the latter
//! fused with a following ReLU.

use crate::fuse::{BnParamsMut, Kind};
use crate::kernels::Elem;
use crate::kernels::norm::NormDims;
use crate::layer::{Act, Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{check_grads, check_io, visit_one, visit_one_mut, zip_one};
use crate::shape::{Const, ConstDim, Dim, Rule};
use crate::tensor::Tensor;

/// `eps` added to the variance (the spec's 1e-5).
pub const BN_EPS: f64 = 1e-5;
/// Running statistics: `r = BN_MOMENTUM·r + (1 − BN_MOMENTUM)·batch` (the spec's 0.9).
pub const BN_MOMENTUM: f64 = 0.9;

/// γ, β and the running statistics of `C` channels, shared by both batch-norm layers.
#[derive(Clone, Debug, PartialEq)]
pub struct BnParams<const C: usize, E: Elem> {
    /// Scale γ, `(C)`, starts at one.
    pub gamma: Tensor<(Const<C>,), E>,
    /// Shift β, `(C)`, starts at zero.
    pub beta: Tensor<(Const<C>,), E>,
    /// Running mean, `(C)`: a buffer, not trained.
    pub running_mean: Tensor<(Const<C>,), E>,
    /// Running (biased) variance, `(C)`: a buffer, not trained.
    pub running_var: Tensor<(Const<C>,), E>,
}

impl<const C: usize, E: Elem> BnParams<C, E> {
    fn new() -> Self {
        BnParams {
            gamma: Tensor::full(Const, E::one()),
            beta: Tensor::zeros(Const),
            running_mean: Tensor::zeros(Const),
            running_var: Tensor::full(Const, E::one()),
        }
    }
    fn visit(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        visit_one(path, "gamma", ParamKind::Gamma, &self.gamma, f);
        visit_one(path, "beta", ParamKind::Beta, &self.beta, f);
        visit_one(path, "running_mean", ParamKind::RunningMean, &self.running_mean, f);
        visit_one(path, "running_var", ParamKind::RunningVar, &self.running_var, f);
    }
    fn visit_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        visit_one_mut(path, "gamma", ParamKind::Gamma, &mut self.gamma, f);
        visit_one_mut(path, "beta", ParamKind::Beta, &mut self.beta, f);
        visit_one_mut(path, "running_mean", ParamKind::RunningMean, &mut self.running_mean, f);
        visit_one_mut(path, "running_var", ParamKind::RunningVar, &mut self.running_var, f);
    }
    fn zip(&mut self, o: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        zip_one(path, "gamma", ParamKind::Gamma, &mut self.gamma, &o.gamma, f);
        zip_one(path, "beta", ParamKind::Beta, &mut self.beta, &o.beta, f);
        zip_one(path, "running_mean", ParamKind::RunningMean, &mut self.running_mean, &o.running_mean, f);
        zip_one(path, "running_var", ParamKind::RunningVar, &mut self.running_var, &o.running_var, f);
    }

    fn forward(&self, x: &[E], n: usize, inner: usize, y: &mut [E], relu: bool) {
        let d = NormDims { n, c: C, inner };
        let eval = if relu { E::k_batchnorm_relu_eval } else { E::k_batchnorm_eval };
        eval(
            d,
            x,
            self.gamma.as_slice(),
            self.beta.as_slice(),
            self.running_mean.as_slice(),
            self.running_var.as_slice(),
            E::lit(BN_EPS),
            y,
        );
    }

    fn forward_train(&mut self, x: &[E], n: usize, inner: usize, y: &mut [E], cache: &mut BnCache<E>, relu: bool) {
        cache.mean.resize(C, E::zero());
        cache.inv_std.resize(C, E::zero());
        let d = NormDims { n, c: C, inner };
        let train = if relu { E::k_batchnorm_relu_train } else { E::k_batchnorm_train };
        train(
            d,
            x,
            self.gamma.as_slice(),
            self.beta.as_slice(),
            self.running_mean.as_mut_slice(),
            self.running_var.as_mut_slice(),
            E::lit(BN_MOMENTUM),
            E::lit(BN_EPS),
            y,
            &mut cache.mean,
            &mut cache.inv_std,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        x: &[E],
        n: usize,
        inner: usize,
        (dy, relu_y): (&[E], Option<&[E]>),
        cache: &BnCache<E>,
        dx: Option<&mut [E]>,
        grads: &mut Self,
    ) {
        assert_eq!(cache.mean.len(), C, "batch norm: backward without a training forward pass");
        let d = NormDims { n, c: C, inner };
        let (g, b) = (grads.gamma.as_mut_slice(), grads.beta.as_mut_slice());
        let (mean, inv_std, gamma) = (&cache.mean, &cache.inv_std, self.gamma.as_slice());
        match relu_y {
            None => E::k_batchnorm_backward(d, dy, x, mean, inv_std, gamma, g, b, dx),
            Some(y) => E::k_batchnorm_relu_backward(d, dy, y, x, mean, inv_std, gamma, g, b, dx),
        }
    }
}

/// What batch norm keeps for its backward pass: the batch mean and `1/√(σ² + eps)` per channel
/// (the backward pass recomputes `x̂` from its input).
#[derive(Clone, Debug, Default)]
pub struct BnCache<E> {
    pub(crate) mean: Vec<E>,
    pub(crate) inv_std: Vec<E>,
}

macro_rules! bn_module {
    ($ty:ident, $rule:expr, $inner:expr, $relu:expr, $fuse:expr) => {
        impl<const C: usize, E: Elem> Module<E> for $ty<C, E> {
            const RULE: Rule = $rule;
            type Cache = BnCache<E>;
            const FUSE: Kind = $fuse;
            // The kernels sum the statistics over every part's samples (`kernels::norm`).
            const IN_PARTS: bool = true;

            fn fuse_affine(&self) -> Option<(&[E], &[E])> {
                Some((self.params.gamma.as_slice(), self.params.beta.as_slice()))
            }
            fn fuse_bn_mut(&mut self) -> Option<BnParamsMut<'_, E>> {
                let p = &mut self.params;
                Some(BnParamsMut {
                    gamma: p.gamma.as_mut_slice(),
                    beta: p.beta.as_mut_slice(),
                    running_mean: p.running_mean.as_mut_slice(),
                    running_var: p.running_var.as_mut_slice(),
                })
            }
            fn fuse_bn_cache(cache: &mut BnCache<E>) -> Option<&mut BnCache<E>> {
                Some(cache)
            }

            fn zeros() -> Self {
                $ty { params: BnParams::new() }
            }
            fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
                self.params.visit(path, f)
            }
            fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
                self.params.visit_mut(path, f)
            }
            fn zip_params_mut(
                &mut self,
                other: &Self,
                path: &Path<'_>,
                f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E]),
            ) {
                self.params.zip(&other.params, path, f)
            }

            fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
                check_io::<E, Self>(&x, y.len());
                let inner: fn(&Act<'_, E>) -> usize = $inner;
                self.params.forward(x.data, x.n, inner(&x), y, $relu)
            }
            fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], c: &mut BnCache<E>) {
                check_io::<E, Self>(&x, y.len());
                let inner: fn(&Act<'_, E>) -> usize = $inner;
                self.params.forward_train(x.data, x.n, inner(&x), y, c, $relu)
            }
            fn backward_raw(
                &self,
                x: Act<'_, E>,
                y: &[E],
                dy: &[E],
                cache: &mut BnCache<E>,
                dx: Option<&mut [E]>,
                grads: &mut Self,
            ) {
                check_grads::<E, Self>(&x, y, dy, dx.as_deref());
                let inner: fn(&Act<'_, E>) -> usize = $inner;
                let relu_y = if $relu { Some(y) } else { None };
                self.params.backward(x.data, x.n, inner(&x), (dy, relu_y), cache, dx, &mut grads.params)
            }
        }
    };
}

/// Batch normalisation over `D` features.
///
/// # Shapes
/// - input `(B, D)`, output `(B, D)`; γ, β and running statistics `(D)`.
/// - Training: batch mean and **biased** variance per feature, eps 1e-5, running statistics
///   `r = 0.9·r + 0.1·batch`; inference uses the running statistics.
/// - Backward: `dβ = Σ dY`, `dγ = Σ dY·x̂`, `dX = γ/(N·σ)·(N·dY − dβ − x̂·dγ)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm1d<const D: usize, E: Elem = f32> {
    /// γ, β and running statistics.
    pub params: BnParams<D, E>,
}
bn_module!(BatchNorm1d, Rule::Features { name: "BatchNorm1d", n: C }, |_| 1, false, Kind::None);

impl<B: Dim, const D: usize, E: Elem> Layer<(B, Const<D>), E> for BatchNorm1d<D, E> {
    type Out = (B, Const<D>);
}

/// Spatial batch normalisation over `C` channels: statistics per channel over `N`, `H` and `W`.
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C, H, W)`; γ, β and running statistics `(C)`.
/// - Conventions as [`BatchNorm1d`], with `N·H·W` values per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm2d<const C: usize, E: Elem = f32> {
    /// γ, β and running statistics.
    pub params: BnParams<C, E>,
}
bn_module!(
    BatchNorm2d,
    Rule::Channels { name: "BatchNorm2d", c: C },
    |x| x.ext.dim(1) * x.ext.dim(2),
    false,
    Kind::None
);

impl<B: Dim, H: ConstDim, W: ConstDim, const C: usize, E: Elem> Layer<(B, Const<C>, H, W), E> for BatchNorm2d<C, E> {
    type Out = (B, Const<C>, H, W);
}

/// [`BatchNorm2d`] followed by [`ReLU`](crate::layers::ReLU), fused into one layer: the ReLU is
/// applied in the pass that writes the normalised output, and its backward select (`dy` where the
/// output is positive) is done where batch norm's backward passes read the output gradient. Same
/// parameters (`gamma`, `beta`, running statistics: checkpoints are interchangeable with a
/// `BatchNorm2d` field of the same name), same results to the bit as the two layers, two passes
/// over the activation fewer per training step (ReLU's forward read and write, and its backward
/// pass's write of the gradient that batch norm then reads twice).
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C, H, W)`; γ, β and running statistics `(C)`.
/// - Conventions as [`BatchNorm2d`]; output `max(BN(x), 0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormReLU2d<const C: usize, E: Elem = f32> {
    /// γ, β and running statistics.
    pub params: BnParams<C, E>,
}
bn_module!(
    BatchNormReLU2d,
    Rule::Channels { name: "BatchNormReLU2d", c: C },
    |x| x.ext.dim(1) * x.ext.dim(2),
    true,
    Kind::BnRelu
);

impl<B: Dim, H: ConstDim, W: ConstDim, const C: usize, E: Elem> Layer<(B, Const<C>, H, W), E>
    for BatchNormReLU2d<C, E>
{
    type Out = (B, Const<C>, H, W);
}
