//! Update rules: SGD, SGD with momentum, RMSprop and Adam, with the homework's (cs231n) conventions.
//!
//! An optimizer walks a model and its gradients (a value of the same type, see
//! [`Module::zeros`]) with [`Module::zip_params_mut`] and updates every *trainable* parameter;
//! buffers such as batch-norm running statistics are skipped.
//!
//! State (velocities, caches, moments) is allocated once, on the first [`Optimizer::step`] (or
//! [`Optimizer::init_state`]), sized from the model's parameters; afterwards a step performs no heap
//! allocation. The state consists, for each of the optimizer's [`Optimizer::state_kinds`], of one
//! vector per trainable parameter with that parameter's length, named `<kind>.<parameter path>`
//! (`velocity.fc1.weight`), which is how checkpoints store it (see [`crate::io`]).
//!
//! | rule | update |
//! |---|---|
//! | [`Sgd`] | `w -= lr·dw` |
//! | [`SgdMomentum`] | `v = μ·v − lr·dw; w += v` (μ = 0.9) |
//! | [`RmsProp`] | `c = ρ·c + (1−ρ)·dw²; w −= lr·dw/(√c + ε)` (ρ = 0.99, ε = 1e-8) |
//! | [`Adam`] | `t += 1; m = β₁m + (1−β₁)dw; v = β₂v + (1−β₂)dw²; w −= lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)` (β 0.9/0.999, ε = 1e-8) |
//!
//! ```
//! use shaped::prelude::*;
//! use shaped::optim::{AnyOptimizer, Optimizer};
//! let mut fc = Linear::<2, 1, f64>::zeros();
//! let mut grads = Linear::<2, 1, f64>::zeros();
//! grads.weight.as_mut_slice().copy_from_slice(&[1.0, -2.0]);
//! let mut opt: AnyOptimizer<f64> = "sgd".parse().unwrap();
//! opt.step(&mut fc, &grads, 0.5);
//! assert_eq!(fc.weight.as_slice(), &[-0.5, 1.0]);
//! ```

use crate::kernels::Elem;
use crate::layer::{Module, Path};
use core::fmt;
use core::str::FromStr;

/// An update rule with its state.
pub trait Optimizer<E: Elem> {
    /// One update of every trainable parameter of `model` from `grads` (same structure) with learning
    /// rate `lr`. Allocates the state on the first call; later calls allocate nothing.
    ///
    /// Panics if the state was sized for a model of another structure.
    fn step<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E) {
        self.step_l2(model, grads, lr, E::zero())
    }

    /// [`Optimizer::step`] with the L2 gradient `reg·w` added, as the update reads it, to the
    /// gradient of every regularised parameter (weights; not biases or batch-norm parameters): the
    /// same update as [`crate::loss::add_l2_grad`] followed by `step`, in one pass over the
    /// parameters and without writing into `grads`.
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E);

    /// The rule's name as accepted by [`UpdateRule::from_str`] (`"adam"`).
    fn name(&self) -> &'static str;

    /// The kinds of per-parameter state this rule keeps (`["m", "v"]` for Adam, none for SGD).
    fn state_kinds(&self) -> &'static [&'static str];

    /// Allocates the state (zeros) for `model` if it is not allocated yet; a no-op afterwards.
    fn init_state<M: Module<E>>(&mut self, model: &M);

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

    /// Calls `f(w, dw, state, r)` for every trainable parameter, with `r = reg` for regularised
    /// ones and 0 for the others; allocation-free once initialised.
    #[inline]
    fn update<M: Module<E>>(
        &mut self,
        model: &mut M,
        grads: &M,
        kinds: &[&str; K],
        reg: E,
        mut f: impl FnMut(&mut [E], &[E], &mut [Vec<E>; K], E),
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
            f(w, dw, &mut slot.bufs, if info.kind.regularised() { reg } else { E::zero() });
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
        fn init_state<M: Module<E>>(&mut self, model: &M) {
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sgd {
    steps: u64,
}

impl Sgd {
    /// Plain SGD.
    pub fn new() -> Self {
        Sgd::default()
    }
}

impl<E: Elem> Optimizer<E> for Sgd {
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        self.steps += 1;
        model.zip_params_mut(grads, &Path::ROOT, &mut |info, w, dw| {
            if info.kind.trainable() {
                let r = if info.kind.regularised() { reg } else { E::zero() };
                for (w, &g) in w.iter_mut().zip(dw) {
                    *w = *w - lr * (g + r * *w);
                }
            }
        });
    }
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    fn init_state<M: Module<E>>(&mut self, _model: &M) {}
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
#[derive(Clone, Debug, PartialEq)]
pub struct SgdMomentum<E: Elem = f32> {
    /// μ, the spec's 0.9.
    pub momentum: E,
    state: State<E, 1>,
}

impl<E: Elem> SgdMomentum<E> {
    /// Momentum 0.9.
    pub fn new() -> Self {
        Self::with_momentum(E::lit(0.9))
    }
    /// A given momentum μ.
    pub fn with_momentum(momentum: E) -> Self {
        SgdMomentum { momentum, state: State::default() }
    }
}

impl<E: Elem> Default for SgdMomentum<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Elem> Optimizer<E> for SgdMomentum<E> {
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let mu = self.momentum;
        self.state.update(model, grads, &MOMENTUM_KINDS, reg, |w, dw, [v], r| {
            for ((w, &g), v) in w.iter_mut().zip(dw).zip(v.iter_mut()) {
                *v = mu * *v - lr * (g + r * *w);
                *w += *v;
            }
        });
    }
    fn name(&self) -> &'static str {
        "sgd_momentum"
    }
    delegate_state!(MOMENTUM_KINDS);
}

const RMSPROP_KINDS: [&str; 1] = ["cache"];

/// RMSprop: `c = ρ·c + (1−ρ)·dw²; w −= lr·dw/(√c + ε)`, cache starting at zero.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsProp<E: Elem = f32> {
    /// ρ, the spec's 0.99.
    pub decay: E,
    /// ε, the spec's 1e-8.
    pub eps: E,
    state: State<E, 1>,
}

impl<E: Elem> RmsProp<E> {
    /// Decay 0.99, eps 1e-8.
    pub fn new() -> Self {
        Self::with(E::lit(0.99), E::lit(1e-8))
    }
    /// Given decay ρ and ε.
    pub fn with(decay: E, eps: E) -> Self {
        RmsProp { decay, eps, state: State::default() }
    }
}

impl<E: Elem> Default for RmsProp<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Elem> Optimizer<E> for RmsProp<E> {
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let (rho, eps) = (self.decay, self.eps);
        self.state.update(model, grads, &RMSPROP_KINDS, reg, |w, dw, [c], r| {
            crate::kernels::rmsprop_update(w, dw, c, lr, rho, eps, r);
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
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<E: Elem = f32> {
    /// β₁, the spec's 0.9.
    pub beta1: E,
    /// β₂, the spec's 0.999.
    pub beta2: E,
    /// ε, the spec's 1e-8.
    pub eps: E,
    state: State<E, 2>,
}

impl<E: Elem> Adam<E> {
    /// β 0.9/0.999, eps 1e-8.
    pub fn new() -> Self {
        Self::with(E::lit(0.9), E::lit(0.999), E::lit(1e-8))
    }
    /// Given β₁, β₂ and ε.
    pub fn with(beta1: E, beta2: E, eps: E) -> Self {
        Adam { beta1, beta2, eps, state: State::default() }
    }
}

impl<E: Elem> Default for Adam<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Elem> Optimizer<E> for Adam<E> {
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        // `t` after this step's increment (done by `update`).
        let t = self.state.steps.saturating_add(1);
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let c1 = E::one() - b1.powi(t);
        let c2 = E::one() - b2.powi(t);
        self.state.update(model, grads, &ADAM_KINDS, reg, |w, dw, [m, v], r| {
            crate::kernels::adam_update(w, dw, m, v, lr, b1, b2, eps, c1, c2, r);
        });
    }
    fn name(&self) -> &'static str {
        "adam"
    }
    delegate_state!(ADAM_KINDS);
}

/// The update rules, for choosing one at run time (command lines, configuration files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateRule {
    /// [`Sgd`].
    Sgd,
    /// [`SgdMomentum`].
    SgdMomentum,
    /// [`RmsProp`].
    RmsProp,
    /// [`Adam`].
    Adam,
}

impl UpdateRule {
    /// Every rule, in the order of the spec.
    pub const ALL: [UpdateRule; 4] = [UpdateRule::Sgd, UpdateRule::SgdMomentum, UpdateRule::RmsProp, UpdateRule::Adam];

    /// The name accepted by [`UpdateRule::from_str`]: `sgd`, `sgd_momentum`, `rmsprop`, `adam`.
    pub fn name(self) -> &'static str {
        match self {
            UpdateRule::Sgd => "sgd",
            UpdateRule::SgdMomentum => "sgd_momentum",
            UpdateRule::RmsProp => "rmsprop",
            UpdateRule::Adam => "adam",
        }
    }
}

impl fmt::Display for UpdateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown update-rule name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRuleError(pub String);

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown update rule `{}`; expected one of sgd, sgd_momentum, rmsprop, adam", self.0)
    }
}

impl std::error::Error for ParseRuleError {}

impl FromStr for UpdateRule {
    type Err = ParseRuleError;
    /// `sgd`, `sgd_momentum`, `rmsprop` or `adam` (case-insensitive; `-` may replace `_`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        UpdateRule::ALL.into_iter().find(|r| r.name() == norm).ok_or_else(|| ParseRuleError(s.to_string()))
    }
}

/// One of the four rules with its default hyper-parameters, chosen at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyOptimizer<E: Elem = f32> {
    /// [`Sgd`].
    Sgd(Sgd),
    /// [`SgdMomentum`].
    SgdMomentum(SgdMomentum<E>),
    /// [`RmsProp`].
    RmsProp(RmsProp<E>),
    /// [`Adam`].
    Adam(Adam<E>),
}

impl<E: Elem> AnyOptimizer<E> {
    /// The rule `rule` with the spec's hyper-parameters.
    pub fn new(rule: UpdateRule) -> Self {
        match rule {
            UpdateRule::Sgd => AnyOptimizer::Sgd(Sgd::new()),
            UpdateRule::SgdMomentum => AnyOptimizer::SgdMomentum(SgdMomentum::new()),
            UpdateRule::RmsProp => AnyOptimizer::RmsProp(RmsProp::new()),
            UpdateRule::Adam => AnyOptimizer::Adam(Adam::new()),
        }
    }

    /// Which rule this is.
    pub fn rule(&self) -> UpdateRule {
        match self {
            AnyOptimizer::Sgd(_) => UpdateRule::Sgd,
            AnyOptimizer::SgdMomentum(_) => UpdateRule::SgdMomentum,
            AnyOptimizer::RmsProp(_) => UpdateRule::RmsProp,
            AnyOptimizer::Adam(_) => UpdateRule::Adam,
        }
    }
}

impl<E: Elem> From<UpdateRule> for AnyOptimizer<E> {
    fn from(rule: UpdateRule) -> Self {
        AnyOptimizer::new(rule)
    }
}

impl<E: Elem> FromStr for AnyOptimizer<E> {
    type Err = ParseRuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<UpdateRule>().map(AnyOptimizer::new)
    }
}

macro_rules! dispatch {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            AnyOptimizer::Sgd($o) => $e,
            AnyOptimizer::SgdMomentum($o) => $e,
            AnyOptimizer::RmsProp($o) => $e,
            AnyOptimizer::Adam($o) => $e,
        }
    };
}

impl<E: Elem> Optimizer<E> for AnyOptimizer<E> {
    fn step_l2<M: Module<E>>(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        dispatch!(self, o => o.step_l2(model, grads, lr, reg))
    }
    fn name(&self) -> &'static str {
        dispatch!(self, o => Optimizer::<E>::name(o))
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        dispatch!(self, o => Optimizer::<E>::state_kinds(o))
    }
    fn init_state<M: Module<E>>(&mut self, model: &M) {
        dispatch!(self, o => o.init_state(model))
    }
    fn has_state(&self) -> bool {
        dispatch!(self, o => Optimizer::<E>::has_state(o))
    }
    fn visit_state(&self, f: &mut dyn FnMut(&str, &[E])) {
        dispatch!(self, o => o.visit_state(f))
    }
    fn visit_state_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E])) {
        dispatch!(self, o => o.visit_state_mut(f))
    }
    fn step_count(&self) -> u64 {
        dispatch!(self, o => Optimizer::<E>::step_count(o))
    }
    fn set_step_count(&mut self, t: u64) {
        dispatch!(self, o => Optimizer::<E>::set_step_count(o, t))
    }
    fn reset(&mut self) {
        dispatch!(self, o => Optimizer::<E>::reset(o))
    }
}
