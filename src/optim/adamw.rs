//! AdamW: Adam with decoupled weight decay.

use super::{ADAM_KINDS, Adam, Optimizer};
use crate::kernels::Elem;
use crate::layer::Module;
use core::fmt;

/// AdamW (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`): decoupled weight decay
/// `w −= lr·λ·w` (as `w *= 1 − lr·λ`), then [`Adam`]'s step on the gradient alone (plus the L2
/// term `reg·w` of [`Optimizer::step_l2`], read before the decay, as a gradient computed before
/// the step would be). The decay
/// applies to weights ([`ParamKind::regularised`](crate::ParamKind::regularised)), not to biases
/// or normalisation parameters (PyTorch decays every parameter of a group unless told otherwise).
pub struct AdamW<M, E: Elem = f32> {
    /// The Adam part (β₁ 0.9, β₂ 0.999, ε 1e-8 by default).
    pub adam: Adam<M, E>,
    /// λ, the decoupled weight decay (1e-2 by default, PyTorch's).
    pub weight_decay: E,
}

impl<M, E: Elem> AdamW<M, E> {
    /// β 0.9/0.999, ε 1e-8, weight decay 1e-2.
    pub fn new() -> Self {
        Self::with(E::lit(0.9), E::lit(0.999), E::lit(1e-8), E::lit(1e-2))
    }
    /// Given β₁, β₂, ε and weight decay λ.
    pub fn with(beta1: E, beta2: E, eps: E, weight_decay: E) -> Self {
        AdamW { adam: Adam::with(beta1, beta2, eps), weight_decay }
    }
}

impl<M, E: Elem> Default for AdamW<M, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, E: Elem> Clone for AdamW<M, E> {
    fn clone(&self) -> Self {
        AdamW { adam: self.adam.clone(), weight_decay: self.weight_decay }
    }
}

impl<M, E: Elem> fmt::Debug for AdamW<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdamW").field("adam", &self.adam).field("weight_decay", &self.weight_decay).finish()
    }
}

impl<M, E: Elem> PartialEq for AdamW<M, E> {
    fn eq(&self, o: &Self) -> bool {
        self.adam == o.adam && self.weight_decay == o.weight_decay
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for AdamW<M, E> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let a = &mut self.adam;
        let (b1, b2, eps) = (a.beta1, a.beta2, a.eps);
        let t = i32::try_from(a.state.steps.saturating_add(1)).unwrap_or(i32::MAX);
        let (c1, c2) = (E::one() - b1.powi(t), E::one() - b2.powi(t));
        let keep = E::one() - lr * self.weight_decay;
        a.state.update(model, grads, &ADAM_KINDS, reg, |w, dw, [m, v], r, decays| {
            let keep = if decays { keep } else { E::one() };
            E::k_adamw_update(w, dw, m, v, lr, b1, b2, eps, c1, c2, r, keep);
        });
    }
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        &ADAM_KINDS
    }
    fn init_state(&mut self, model: &M) {
        self.adam.state.init(model, &ADAM_KINDS)
    }
    fn has_state(&self) -> bool {
        self.adam.state.ready
    }
    fn visit_state(&self, f: &mut dyn FnMut(&str, &[E])) {
        self.adam.state.visit(f)
    }
    fn visit_state_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E])) {
        self.adam.state.visit_mut(f)
    }
    fn step_count(&self) -> u64 {
        self.adam.state.steps
    }
    fn set_step_count(&mut self, t: u64) {
        self.adam.state.steps = t;
    }
    fn reset(&mut self) {
        self.adam.state.reset()
    }
}
