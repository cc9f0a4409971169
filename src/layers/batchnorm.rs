//! Batch normalisation over features `(N, D)` and over channels `(N, C, H, W)`.

use crate::kernels::Elem;
use crate::kernels::norm::{self, NormDims};
use crate::layer::{Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{visit_one, visit_one_mut, zip_one};
use crate::shape::{ChannelsMatch, Const, ConstDim, Dim, FeaturesMatch, Shape};
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

    fn forward<S: Shape>(&self, x: &Tensor<S, E>, y: &mut Tensor<S, E>, inner: usize) {
        y.set_batch(x.batch());
        let d = NormDims { n: x.batch_size(), c: C, inner };
        norm::batchnorm_eval(
            d,
            x.as_slice(),
            self.gamma.as_slice(),
            self.beta.as_slice(),
            self.running_mean.as_slice(),
            self.running_var.as_slice(),
            E::lit(BN_EPS),
            y.as_mut_slice(),
        );
    }

    fn forward_train<S: Shape>(
        &mut self,
        x: &Tensor<S, E>,
        y: &mut Tensor<S, E>,
        cache: &mut BnCache<E>,
        inner: usize,
    ) {
        y.set_batch(x.batch());
        cache.mean.resize(C, E::zero());
        cache.inv_std.resize(C, E::zero());
        let d = NormDims { n: x.batch_size(), c: C, inner };
        norm::batchnorm_train(
            d,
            x.as_slice(),
            self.gamma.as_slice(),
            self.beta.as_slice(),
            self.running_mean.as_mut_slice(),
            self.running_var.as_mut_slice(),
            E::lit(BN_MOMENTUM),
            E::lit(BN_EPS),
            y.as_mut_slice(),
            &mut cache.mean,
            &mut cache.inv_std,
        );
    }

    fn backward<S: Shape>(
        &self,
        x: &Tensor<S, E>,
        dy: &Tensor<S, E>,
        cache: &BnCache<E>,
        dx: Option<&mut Tensor<S, E>>,
        grads: &mut Self,
        inner: usize,
    ) {
        let d = NormDims { n: x.batch_size(), c: C, inner };
        let dx = dx.map(|t| {
            t.set_batch(x.batch());
            t.as_mut_slice()
        });
        norm::batchnorm_backward(
            d,
            dy.as_slice(),
            x.as_slice(),
            &cache.mean,
            &cache.inv_std,
            self.gamma.as_slice(),
            grads.gamma.as_mut_slice(),
            grads.beta.as_mut_slice(),
            dx,
        );
    }
}

/// What batch norm keeps for its backward pass: the batch mean and `1/√(σ² + eps)` per channel
/// (the backward pass recomputes `x̂` from its input).
#[derive(Clone, Debug, Default)]
pub struct BnCache<E> {
    mean: Vec<E>,
    inv_std: Vec<E>,
}

macro_rules! bn_module {
    ($ty:ident, $name:literal) => {
        impl<const C: usize, E: Elem> Module<E> for $ty<C, E> {
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
            fn type_name() -> String {
                format!(concat!($name, "<{}>"), C)
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
bn_module!(BatchNorm1d, "BatchNorm1d");

impl<B: Dim, X: ConstDim + FeaturesMatch<Const<D>>, const D: usize, E: Elem> Layer<(B, X), E> for BatchNorm1d<D, E> {
    type Out = (B, X);
    type Cache = BnCache<E>;
    fn forward(&self, x: &Tensor<(B, X), E>, y: &mut Tensor<(B, X), E>) {
        self.params.forward(x, y, 1)
    }
    fn forward_train(&mut self, x: &Tensor<(B, X), E>, y: &mut Tensor<(B, X), E>, c: &mut BnCache<E>) {
        self.params.forward_train(x, y, c, 1)
    }
    fn backward(
        &self,
        x: &Tensor<(B, X), E>,
        _y: &Tensor<(B, X), E>,
        dy: &Tensor<(B, X), E>,
        cache: &mut BnCache<E>,
        dx: Option<&mut Tensor<(B, X), E>>,
        grads: &mut Self,
    ) {
        self.params.backward(x, dy, cache, dx, &mut grads.params, 1)
    }
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
bn_module!(BatchNorm2d, "BatchNorm2d");

impl<B: Dim, X, H: ConstDim, W: ConstDim, const C: usize, E: Elem> Layer<(B, X, H, W), E> for BatchNorm2d<C, E>
where
    X: ConstDim + ChannelsMatch<Const<C>>,
{
    type Out = (B, X, H, W);
    type Cache = BnCache<E>;
    fn forward(&self, x: &Tensor<(B, X, H, W), E>, y: &mut Tensor<(B, X, H, W), E>) {
        self.params.forward(x, y, H::N * W::N)
    }
    fn forward_train(&mut self, x: &Tensor<(B, X, H, W), E>, y: &mut Tensor<(B, X, H, W), E>, c: &mut BnCache<E>) {
        self.params.forward_train(x, y, c, H::N * W::N)
    }
    fn backward(
        &self,
        x: &Tensor<(B, X, H, W), E>,
        _y: &Tensor<(B, X, H, W), E>,
        dy: &Tensor<(B, X, H, W), E>,
        cache: &mut BnCache<E>,
        dx: Option<&mut Tensor<(B, X, H, W), E>>,
        grads: &mut Self,
    ) {
        self.params.backward(x, dy, cache, dx, &mut grads.params, H::N * W::N)
    }
}
