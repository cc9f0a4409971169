//! Update rules: SGD, SGD with momentum (optionally Nesterov), RMSprop, Adam and AdamW, with the
//! homework's (cs231n) conventions; [`AnyOptimizer`] chooses one at run time, with its
//! hyper-parameters from an [`OptimConfig`].
//!
//! An optimizer walks a model and its gradients (a value of the same type, see
//! [`Module::zeros`]) with [`Module::zip_params_mut`] and updates every *trainable* parameter;
//! buffers such as batch-norm running statistics are skipped.
//!
//! An optimizer is typed by its model (`Adam<Net>`): it can only step the model it was made for.
//! State (velocities, caches, moments) is allocated once, on the first [`Optimizer::step`] (or
//! [`Optimizer::init_state`]), sized from the model's parameters; afterwards a step performs no heap
//! allocation. The state consists, for each of the optimizer's [`Optimizer::state_kinds`], of one
//! vector per trainable parameter with that parameter's length, named `<kind>.<parameter path>`
//! (`velocity.fc1.weight`), which is how checkpoints store it (see [`crate::io`]).
//!
//! | rule | update |
//! |---|---|
//! | [`Sgd`] | `w -= lr·dw` |
//! | [`SgdMomentum`] | `v = μ·v − lr·dw; w += v` (μ = 0.9); Nesterov: `w += μ·v − lr·dw` with the new `v` |
//! | [`RmsProp`] | `c = ρ·c + (1−ρ)·dw²; w −= lr·dw/(√c + ε)` (ρ = 0.99, ε = 1e-8) |
//! | [`Adam`] | `t += 1; m = β₁m + (1−β₁)dw; v = β₂v + (1−β₂)dw²; w −= lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)` (β 0.9/0.999, ε = 1e-8) |
//! | [`AdamW`] | `w −= lr·λ·w` (weights only), then Adam's step (λ = 1e-2; PyTorch's `AdamW`) |
//!
//! ```
//! use shaped::prelude::*;
//! use shaped::optim::{AnyOptimizer, Optimizer};
//! let mut fc = Linear::<2, 1, f64>::zeros();
//! let mut grads = Linear::<2, 1, f64>::zeros();
//! grads.weight.as_mut_slice().copy_from_slice(&[1.0, -2.0]);
//! let mut opt: AnyOptimizer<Linear<2, 1, f64>, f64> = "sgd".parse().unwrap();
//! opt.step(&mut fc, &grads, 0.5);
//! assert_eq!(fc.weight.as_slice(), &[-0.5, 1.0]);
//! ```

use crate::kernels::Elem;
use crate::layer::{Module, Path};
use core::fmt;

mod adamw;
mod any;
pub use adamw::AdamW;
pub use any::{AnyOptimizer, OptimConfig, ParseRuleError, UpdateRule};

/// An update rule with its state, typed by the model `M` it updates: the state is allocated from
/// `M`'s parameters, and using it with another model is a compile error.
#[diagnostic::on_unimplemented(
    message = "this optimizer's state belongs to another model than `{M}`",
    label = "the optimizer was created for another model",
    note = "an optimizer is typed by the model it updates (`Adam<Net>`): create one per model"
)]
pub trait Optimizer<M: Module<E>, E: Elem> {
    /// One update of every trainable parameter of `model` from `grads` (same structure) with learning
    /// rate `lr`. Allocates the state on the first call; later calls allocate nothing.
    ///
    fn step(&mut self, model: &mut M, grads: &M, lr: E) {
        self.step_l2(model, grads, lr, E::zero())
    }

    /// [`Optimizer::step`] with the L2 gradient `reg·w` added, as the update reads it, to the
    /// gradient of every regularised parameter (weights; not biases or batch-norm parameters): the
    /// same update as [`crate::loss::add_l2_grad`] followed by `step`, in one pass over the
    /// parameters and without writing into `grads`.
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E);

    /// The rule's name as accepted by [`UpdateRule::from_str`](core::str::FromStr::from_str) (`"adam"`).
    fn name(&self) -> &'static str;

    /// The kinds of per-parameter state this rule keeps (`["m", "v"]` for Adam, none for SGD).
    fn state_kinds(&self) -> &'static [&'static str];

    /// Allocates the state (zeros) for `model` if it is not allocated yet; a no-op afterwards.
    fn init_state(&mut self, model: &M);

    /// Whether the state has been allocated.
    fn has_state(&self) -> bool;

    /// Visits the state vectors in parameter order (for each trainable parameter, each kind), with
    /// names `<kind>.<parameter path>`. Visits nothing before the state is allocated.
    fn visit_state(&self, f: &mut dyn FnMut(&str, &[E]));

    /// Visits the state vectors mutably, in the order and with the names of
    /// [`Optimizer::visit_state`].
    fn visit_state_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E]));

    /// Number of steps taken (Adam's `t`).
    fn step_count(&self) -> u64;

    /// Sets the number of steps taken (when resuming from a checkpoint).
    fn set_step_count(&mut self, t: u64);

    /// Forgets the state: the next step starts afresh (and reallocates).
    fn reset(&mut self);
}

/// Ties an optimizer to the model type it updates (no data; `fn() -> M` keeps the optimizer `Send`
/// and `Sync` whatever `M` is).
struct ForModel<M>(core::marker::PhantomData<fn() -> M>);

impl<M> Default for ForModel<M> {
    fn default() -> Self {
        ForModel(core::marker::PhantomData)
    }
}

/// Per-parameter state shared by the rules: `K` vectors for every trainable parameter.
#[derive(Clone, Debug, PartialEq)]
struct State<E, const K: usize> {
    slots: Vec<Slot<E, K>>,
    ready: bool,
    steps: u64,
}

#[derive(Clone, Debug, PartialEq)]
struct Slot<E, const K: usize> {
    /// `<kind>.<path>` for each kind; empty for non-trainable parameters.
    names: [String; K],
    /// The state vectors; empty for non-trainable parameters.
    bufs: [Vec<E>; K],
    trainable: bool,
}

impl<E: Elem, const K: usize> Default for State<E, K> {
    fn default() -> Self {
        State { slots: Vec::new(), ready: false, steps: 0 }
    }
}

impl<E: Elem, const K: usize> State<E, K> {
    /// One slot per visited parameter (trainable or not) so the indexing follows the visit order.
    fn init<M: Module<E>>(&mut self, model: &M, kinds: &[&str; K]) {
        if self.ready {
            return;
        }
        let mut slots = Vec::new();
        model.visit_params(&Path::ROOT, &mut |info, data| {
            let trainable = info.kind.trainable();
            let len = if trainable { data.len() } else { 0 };
            let names =
                core::array::from_fn(|k| if trainable { format!("{}.{}", kinds[k], info.path) } else { String::new() });
            slots.push(Slot { names, bufs: core::array::from_fn(|_| vec![E::zero(); len]), trainable });
        });
        self.slots = slots;
        self.ready = true;
    }

    /// Calls `f(w, dw, state, r, regularised)` for every trainable parameter, with `r = reg` for
    /// regularised ones and 0 for the others; allocation-free once initialised.
    #[inline]
    fn update<M: Module<E>>(
        &mut self,
        model: &mut M,
        grads: &M,
        kinds: &[&str; K],
        reg: E,
        mut f: impl FnMut(&mut [E], &[E], &mut [Vec<E>; K], E, bool),
    ) {
        self.init(model, kinds);
        self.steps += 1;
        let slots = &mut self.slots;
        let mut i = 0usize;
        model.zip_params_mut(grads, &Path::ROOT, &mut |info, w, dw| {
            let slot = slots.get_mut(i).expect("optimizer state was allocated for a model with fewer parameters");
            i += 1;
            if !info.kind.trainable() {
                return;
            }
            assert!(
                slot.trainable && slot.bufs.iter().all(|b| b.len() == w.len()) && dw.len() == w.len(),
                "optimizer state for `{}` was allocated for a model of another structure",
                info.path
            );
            let regularised = info.kind.regularised();
            f(w, dw, &mut slot.bufs, if regularised { reg } else { E::zero() }, regularised);
        });
        assert_eq!(i, slots.len(), "optimizer state was allocated for a model with more parameters");
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &[E])) {
        for s in self.slots.iter().filter(|s| s.trainable) {
            for (name, buf) in s.names.iter().zip(&s.bufs) {
                f(name, buf);
            }
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E])) {
        for s in self.slots.iter_mut().filter(|s| s.trainable) {
            for (name, buf) in s.names.iter().zip(&mut s.bufs) {
                f(name, buf);
            }
        }
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

macro_rules! delegate_state {
    ($kinds:expr) => {
        fn state_kinds(&self) -> &'static [&'static str] {
            &$kinds
        }
        fn init_state(&mut self, model: &M) {
            self.state.init(model, &$kinds)
        }
        fn has_state(&self) -> bool {
            self.state.ready
        }
        fn visit_state(&self, f: &mut dyn FnMut(&str, &[E])) {
            self.state.visit(f)
        }
        fn visit_state_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E])) {
            self.state.visit_mut(f)
        }
        fn step_count(&self) -> u64 {
            self.state.steps
        }
        fn set_step_count(&mut self, t: u64) {
            self.state.steps = t;
        }
        fn reset(&mut self) {
            self.state.reset()
        }
    };
}

/// Plain stochastic gradient descent: `w -= lr·dw`. Keeps no state but the step count.
pub struct Sgd<M> {
    steps: u64,
    _model: ForModel<M>,
}

impl<M> Sgd<M> {
    /// Plain SGD.
    pub fn new() -> Self {
        Sgd { steps: 0, _model: ForModel::default() }
    }
}

impl<M> Default for Sgd<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Clone for Sgd<M> {
    fn clone(&self) -> Self {
        Sgd { steps: self.steps, _model: ForModel::default() }
    }
}

impl<M> fmt::Debug for Sgd<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sgd").field("steps", &self.steps).finish()
    }
}

impl<M> PartialEq for Sgd<M> {
    fn eq(&self, o: &Self) -> bool {
        self.steps == o.steps
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for Sgd<M> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        self.steps += 1;
        model.zip_params_mut(grads, &Path::ROOT, &mut |info, w, dw| {
            if info.kind.trainable() {
                let r = if info.kind.regularised() { reg } else { E::zero() };
                E::k_sgd_update(w, dw, lr, r);
            }
        });
    }
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    fn init_state(&mut self, _model: &M) {}
    fn has_state(&self) -> bool {
        true
    }
    fn visit_state(&self, _f: &mut dyn FnMut(&str, &[E])) {}
    fn visit_state_mut(&mut self, _f: &mut dyn FnMut(&str, &mut [E])) {}
    fn step_count(&self) -> u64 {
        self.steps
    }
    fn set_step_count(&mut self, t: u64) {
        self.steps = t;
    }
    fn reset(&mut self) {
        self.steps = 0;
    }
}

const MOMENTUM_KINDS: [&str; 1] = ["velocity"];

/// SGD with momentum (cs231n convention): `v = μ·v − lr·dw; w += v`, velocity starting at zero.
pub struct SgdMomentum<M, E: Elem = f32> {
    /// μ, the spec's 0.9.
    pub momentum: E,
    /// Nesterov's momentum: `w += μ·v − lr·dw` with the updated `v` (PyTorch's `nesterov=True`
    /// with `v = −lr·buf`), instead of `w += v`.
    pub nesterov: bool,
    state: State<E, 1>,
    _model: ForModel<M>,
}

impl<M, E: Elem> SgdMomentum<M, E> {
    /// Momentum 0.9.
    pub fn new() -> Self {
        Self::with_momentum(E::lit(0.9))
    }
    /// A given momentum μ.
    pub fn with_momentum(momentum: E) -> Self {
        SgdMomentum { momentum, nesterov: false, state: State::default(), _model: ForModel::default() }
    }
    /// Nesterov's momentum μ.
    pub fn nesterov(momentum: E) -> Self {
        SgdMomentum { nesterov: true, ..Self::with_momentum(momentum) }
    }
}

impl<M, E: Elem> Default for SgdMomentum<M, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, E: Elem> Clone for SgdMomentum<M, E> {
    fn clone(&self) -> Self {
        SgdMomentum {
            momentum: self.momentum,
            nesterov: self.nesterov,
            state: self.state.clone(),
            _model: ForModel::default(),
        }
    }
}

impl<M, E: Elem> fmt::Debug for SgdMomentum<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SgdMomentum")
            .field("momentum", &self.momentum)
            .field("nesterov", &self.nesterov)
            .field("state", &self.state)
            .finish()
    }
}

impl<M, E: Elem> PartialEq for SgdMomentum<M, E> {
    fn eq(&self, o: &Self) -> bool {
        self.momentum == o.momentum && self.nesterov == o.nesterov && self.state == o.state
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for SgdMomentum<M, E> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let (mu, nesterov) = (self.momentum, self.nesterov);
        self.state.update(model, grads, &MOMENTUM_KINDS, reg, |w, dw, [v], r, _| {
            E::k_momentum_update(w, dw, v, lr, mu, r, nesterov);
        });
    }
    fn name(&self) -> &'static str {
        "sgd_momentum"
    }
    delegate_state!(MOMENTUM_KINDS);
}

const RMSPROP_KINDS: [&str; 1] = ["cache"];

/// RMSprop: `c = ρ·c + (1−ρ)·dw²; w −= lr·dw/(√c + ε)`, cache starting at zero.
pub struct RmsProp<M, E: Elem = f32> {
    /// ρ, the spec's 0.99.
    pub decay: E,
    /// ε, the spec's 1e-8.
    pub eps: E,
    state: State<E, 1>,
    _model: ForModel<M>,
}

impl<M, E: Elem> RmsProp<M, E> {
    /// Decay 0.99, eps 1e-8.
    pub fn new() -> Self {
        Self::with(E::lit(0.99), E::lit(1e-8))
    }
    /// Given decay ρ and ε.
    pub fn with(decay: E, eps: E) -> Self {
        RmsProp { decay, eps, state: State::default(), _model: ForModel::default() }
    }
}

impl<M, E: Elem> Default for RmsProp<M, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, E: Elem> Clone for RmsProp<M, E> {
    fn clone(&self) -> Self {
        RmsProp { decay: self.decay, eps: self.eps, state: self.state.clone(), _model: ForModel::default() }
    }
}

impl<M, E: Elem> fmt::Debug for RmsProp<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RmsProp")
            .field("decay", &self.decay)
            .field("eps", &self.eps)
            .field("state", &self.state)
            .finish()
    }
}

impl<M, E: Elem> PartialEq for RmsProp<M, E> {
    fn eq(&self, o: &Self) -> bool {
        self.decay == o.decay && self.eps == o.eps && self.state == o.state
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for RmsProp<M, E> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let (rho, eps) = (self.decay, self.eps);
        self.state.update(model, grads, &RMSPROP_KINDS, reg, |w, dw, [c], r, _| {
            E::k_rmsprop_update(w, dw, c, lr, rho, eps, r);
        });
    }
    fn name(&self) -> &'static str {
        "rmsprop"
    }
    delegate_state!(RMSPROP_KINDS);
}

const ADAM_KINDS: [&str; 2] = ["m", "v"];

/// Adam with bias correction: `t += 1; m = β₁m + (1−β₁)dw; v = β₂v + (1−β₂)dw²;
/// w −= lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`; moments start at zero, `t` at 0.
pub struct Adam<M, E: Elem = f32> {
    /// β₁, the spec's 0.9.
    pub beta1: E,
    /// β₂, the spec's 0.999.
    pub beta2: E,
    /// ε, the spec's 1e-8.
    pub eps: E,
    state: State<E, 2>,
    _model: ForModel<M>,
}

impl<M, E: Elem> Adam<M, E> {
    /// β 0.9/0.999, eps 1e-8.
    pub fn new() -> Self {
        Self::with(E::lit(0.9), E::lit(0.999), E::lit(1e-8))
    }
    /// Given β₁, β₂ and ε.
    pub fn with(beta1: E, beta2: E, eps: E) -> Self {
        Adam { beta1, beta2, eps, state: State::default(), _model: ForModel::default() }
    }
}

impl<M, E: Elem> Default for Adam<M, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, E: Elem> Clone for Adam<M, E> {
    fn clone(&self) -> Self {
        Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            state: self.state.clone(),
            _model: ForModel::default(),
        }
    }
}

impl<M, E: Elem> fmt::Debug for Adam<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adam")
            .field("beta1", &self.beta1)
            .field("beta2", &self.beta2)
            .field("eps", &self.eps)
            .field("state", &self.state)
            .finish()
    }
}

impl<M, E: Elem> PartialEq for Adam<M, E> {
    fn eq(&self, o: &Self) -> bool {
        self.beta1 == o.beta1 && self.beta2 == o.beta2 && self.eps == o.eps && self.state == o.state
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for Adam<M, E> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        // `t` after this step's increment (done by `update`).
        let t = self.state.steps.saturating_add(1);
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let c1 = E::one() - b1.powi(t);
        let c2 = E::one() - b2.powi(t);
        self.state.update(model, grads, &ADAM_KINDS, reg, |w, dw, [m, v], r, _| {
            E::k_adam_update(w, dw, m, v, lr, b1, b2, eps, c1, c2, r);
        });
    }
    fn name(&self) -> &'static str {
        "adam"
    }
    delegate_state!(ADAM_KINDS);
}
