//! Layer normalisation over the `D` features of each sample, with learnable γ and β.

use crate::kernels::Elem;
use crate::layer::{Act, Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{check_grads, check_io, visit_one, visit_one_mut, zip_one};
use crate::shape::{Const, Dim, Rule};
use crate::tensor::Tensor;

/// `eps` added to the variance inside the square root (PyTorch's and candle's 1e-5).
pub const LN_EPS: f64 = 1e-5;

/// Layer normalisation over the `D` features of each sample: `y = γ·x̂ + β` with
/// `x̂ = (x − μ)/√(σ² + ε)`, `μ` and the biased variance `σ²` of the sample's features, `ε = 1e-5`
/// inside the root. No running statistics: training and inference compute the same.
///
/// # Shapes
/// - input `(B, D)`, output `(B, D)`; γ (`ParamKind::Gamma`, starts at one) and β
///   (`ParamKind::Beta`, starts at zero) are `(D)`.
/// - Backward: `dβ = Σ_samples dY`, `dγ = Σ_samples dY·x̂`, and per sample, with `g = γ·dY`,
///   `dX = (1/(D·σ))·(D·g − Σ g − x̂·Σ g·x̂)`, `σ = √(σ² + ε)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<const D: usize, E: Elem = f32> {
    /// Scale γ, `(D)`.
    pub gamma: Tensor<(Const<D>,), E>,
    /// Shift β, `(D)`.
    pub beta: Tensor<(Const<D>,), E>,
}

/// What layer norm keeps for its backward pass: each sample's mean and `1/√(σ² + ε)`.
#[derive(Clone, Debug, Default)]
pub struct LnCache<E> {
    mean: Vec<E>,
    inv_std: Vec<E>,
}

impl<const D: usize, E: Elem> Module<E> for LayerNorm<D, E> {
    const RULE: Rule = Rule::Features { name: "LayerNorm", n: D };
    type Cache = LnCache<E>;
    const PER_SAMPLE: bool = true;

    fn zeros() -> Self {
        LayerNorm { gamma: Tensor::full(Const, E::one()), beta: Tensor::zeros(Const) }
    }
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        visit_one(path, "gamma", ParamKind::Gamma, &self.gamma, f);
        visit_one(path, "beta", ParamKind::Beta, &self.beta, f);
    }
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        visit_one_mut(path, "gamma", ParamKind::Gamma, &mut self.gamma, f);
        visit_one_mut(path, "beta", ParamKind::Beta, &mut self.beta, f);
    }
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        zip_one(path, "gamma", ParamKind::Gamma, &mut self.gamma, &other.gamma, f);
        zip_one(path, "beta", ParamKind::Beta, &mut self.beta, &other.beta, f);
    }

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        let (g, b) = (self.gamma.as_slice(), self.beta.as_slice());
        E::k_layernorm_forward(x.n, D, x.data, g, b, E::lit(LN_EPS), y, None);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut LnCache<E>) {
        check_io::<E, Self>(&x, y.len());
        // the buffers only grow: a smaller last batch uses their front
        if cache.mean.len() < x.n {
            cache.mean.resize(x.n, E::zero());
            cache.inv_std.resize(x.n, E::zero());
        }
        let stats = (&mut cache.mean[..x.n], &mut cache.inv_std[..x.n]);
        let (g, b) = (self.gamma.as_slice(), self.beta.as_slice());
        E::k_layernorm_forward(x.n, D, x.data, g, b, E::lit(LN_EPS), y, Some(stats));
    }

    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut LnCache<E>,
        dx: Option<&mut [E]>,
        grads: &mut Self,
    ) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        assert!(cache.mean.len() >= x.n, "LayerNorm: backward without a training forward pass");
        E::k_layernorm_backward(
            x.n,
            D,
            x.data,
            dy,
            self.gamma.as_slice(),
            &cache.mean[..x.n],
            &cache.inv_std[..x.n],
            grads.gamma.as_mut_slice(),
            grads.beta.as_mut_slice(),
            dx,
        );
    }
}

impl<B: Dim, const D: usize, E: Elem> Layer<(B, Const<D>), E> for LayerNorm<D, E> {
    type Out = (B, Const<D>);
}
