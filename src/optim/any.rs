//! Choosing an update rule and its hyper-parameters at run time: [`UpdateRule`], [`OptimConfig`],
//! [`AnyOptimizer`].

use super::{Adam, AdamW, Optimizer, RmsProp, Sgd, SgdMomentum};
use crate::kernels::Elem;
use crate::layer::Module;
use core::fmt;
use core::str::FromStr;

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
    /// [`AdamW`].
    AdamW,
}

impl UpdateRule {
    /// Every rule, in the order of the spec.
    pub const ALL: [UpdateRule; 5] =
        [UpdateRule::Sgd, UpdateRule::SgdMomentum, UpdateRule::RmsProp, UpdateRule::Adam, UpdateRule::AdamW];

    /// The name accepted by [`UpdateRule::from_str`]: `sgd`, `sgd_momentum`, `rmsprop`, `adam`,
    /// `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            UpdateRule::Sgd => "sgd",
            UpdateRule::SgdMomentum => "sgd_momentum",
            UpdateRule::RmsProp => "rmsprop",
            UpdateRule::Adam => "adam",
            UpdateRule::AdamW => "adamw",
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
        write!(f, "unknown update rule `{}`; expected one of sgd, sgd_momentum, rmsprop, adam, adamw", self.0)
    }
}

impl std::error::Error for ParseRuleError {}

impl FromStr for UpdateRule {
    type Err = ParseRuleError;
    /// `sgd`, `sgd_momentum`, `rmsprop`, `adam` or `adamw` (case-insensitive; `-` may replace `_`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        UpdateRule::ALL.into_iter().find(|r| r.name() == norm).ok_or_else(|| ParseRuleError(s.to_string()))
    }
}

macro_rules! dispatch {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            AnyOptimizer::Sgd($o) => $e,
            AnyOptimizer::SgdMomentum($o) => $e,
            AnyOptimizer::RmsProp($o) => $e,
            AnyOptimizer::Adam($o) => $e,
            AnyOptimizer::AdamW($o) => $e,
        }
    };
}

macro_rules! dispatch_map {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            AnyOptimizer::Sgd($o) => AnyOptimizer::Sgd($e),
            AnyOptimizer::SgdMomentum($o) => AnyOptimizer::SgdMomentum($e),
            AnyOptimizer::RmsProp($o) => AnyOptimizer::RmsProp($e),
            AnyOptimizer::Adam($o) => AnyOptimizer::Adam($e),
            AnyOptimizer::AdamW($o) => AnyOptimizer::AdamW($e),
        }
    };
}

/// One of the five rules with its hyper-parameters, chosen at run time.
pub enum AnyOptimizer<M, E: Elem = f32> {
    /// [`Sgd`].
    Sgd(Sgd<M>),
    /// [`SgdMomentum`].
    SgdMomentum(SgdMomentum<M, E>),
    /// [`RmsProp`].
    RmsProp(RmsProp<M, E>),
    /// [`Adam`].
    Adam(Adam<M, E>),
    /// [`AdamW`].
    AdamW(AdamW<M, E>),
}

impl<M, E: Elem> Clone for AnyOptimizer<M, E> {
    fn clone(&self) -> Self {
        dispatch_map!(self, o => o.clone())
    }
}

impl<M, E: Elem> fmt::Debug for AnyOptimizer<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        dispatch!(self, o => fmt::Debug::fmt(o, f))
    }
}

impl<M, E: Elem> PartialEq for AnyOptimizer<M, E> {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (AnyOptimizer::Sgd(a), AnyOptimizer::Sgd(b)) => a == b,
            (AnyOptimizer::SgdMomentum(a), AnyOptimizer::SgdMomentum(b)) => a == b,
            (AnyOptimizer::RmsProp(a), AnyOptimizer::RmsProp(b)) => a == b,
            (AnyOptimizer::Adam(a), AnyOptimizer::Adam(b)) => a == b,
            (AnyOptimizer::AdamW(a), AnyOptimizer::AdamW(b)) => a == b,
            _ => false,
        }
    }
}

impl<M, E: Elem> AnyOptimizer<M, E> {
    /// The rule `rule` with the spec's hyper-parameters ([`OptimConfig::default`]).
    pub fn new(rule: UpdateRule) -> Self {
        Self::with_config(rule, &OptimConfig::default())
    }

    /// The rule `rule` with the hyper-parameters of `c` that it uses.
    pub fn with_config(rule: UpdateRule, c: &OptimConfig) -> Self {
        let l = E::lit;
        match rule {
            UpdateRule::Sgd => AnyOptimizer::Sgd(Sgd::new()),
            UpdateRule::SgdMomentum => AnyOptimizer::SgdMomentum(SgdMomentum {
                nesterov: c.nesterov,
                ..SgdMomentum::with_momentum(l(c.momentum))
            }),
            UpdateRule::RmsProp => AnyOptimizer::RmsProp(RmsProp::with(l(c.rho), l(c.eps))),
            UpdateRule::Adam => AnyOptimizer::Adam(Adam::with(l(c.beta1), l(c.beta2), l(c.eps))),
            UpdateRule::AdamW => AnyOptimizer::AdamW(AdamW::with(l(c.beta1), l(c.beta2), l(c.eps), l(c.weight_decay))),
        }
    }

    /// Which rule this is.
    pub fn rule(&self) -> UpdateRule {
        match self {
            AnyOptimizer::Sgd(_) => UpdateRule::Sgd,
            AnyOptimizer::SgdMomentum(_) => UpdateRule::SgdMomentum,
            AnyOptimizer::RmsProp(_) => UpdateRule::RmsProp,
            AnyOptimizer::Adam(_) => UpdateRule::Adam,
            AnyOptimizer::AdamW(_) => UpdateRule::AdamW,
        }
    }
}

/// The hyper-parameters of every rule, for [`AnyOptimizer::with_config`] and
/// [`Solver::optim`](crate::solver::Solver::optim); each rule reads the ones it uses. The
/// defaults are the spec's (and PyTorch's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimConfig {
    /// SGD-momentum's μ (0.9).
    pub momentum: f64,
    /// SGD-momentum with Nesterov's momentum (false).
    pub nesterov: bool,
    /// RMSprop's decay ρ (0.99).
    pub rho: f64,
    /// Adam's and AdamW's β₁ (0.9).
    pub beta1: f64,
    /// Adam's and AdamW's β₂ (0.999).
    pub beta2: f64,
    /// RMSprop's, Adam's and AdamW's ε (1e-8).
    pub eps: f64,
    /// AdamW's decoupled weight decay λ (1e-2). The other rules regularise through the L2
    /// strength `reg` instead.
    pub weight_decay: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            momentum: 0.9,
            nesterov: false,
            rho: 0.99,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

impl OptimConfig {
    /// The hyper-parameters `rule` uses, as `name=value` pairs (`"beta1=0.9 beta2=0.999 eps=1e-8"`;
    /// empty for plain SGD): what a resumable checkpoint records.
    pub fn describe(&self, rule: UpdateRule) -> String {
        let c = self;
        match rule {
            UpdateRule::Sgd => String::new(),
            UpdateRule::SgdMomentum => format!("momentum={} nesterov={}", c.momentum, c.nesterov),
            UpdateRule::RmsProp => format!("rho={} eps={}", c.rho, c.eps),
            UpdateRule::Adam => format!("beta1={} beta2={} eps={}", c.beta1, c.beta2, c.eps),
            UpdateRule::AdamW => {
                format!("beta1={} beta2={} eps={} weight_decay={}", c.beta1, c.beta2, c.eps, c.weight_decay)
            }
        }
    }
}

impl<M, E: Elem> From<UpdateRule> for AnyOptimizer<M, E> {
    fn from(rule: UpdateRule) -> Self {
        AnyOptimizer::new(rule)
    }
}

impl<M, E: Elem> FromStr for AnyOptimizer<M, E> {
    type Err = ParseRuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<UpdateRule>().map(AnyOptimizer::new)
    }
}

impl<M: Module<E>, E: Elem> Optimizer<M, E> for AnyOptimizer<M, E> {
    fn step_l2(&mut self, model: &mut M, grads: &M, lr: E, reg: E) {
        dispatch!(self, o => o.step_l2(model, grads, lr, reg))
    }
    fn name(&self) -> &'static str {
        dispatch!(self, o => Optimizer::<M, E>::name(o))
    }
    fn state_kinds(&self) -> &'static [&'static str] {
        dispatch!(self, o => Optimizer::<M, E>::state_kinds(o))
    }
    fn init_state(&mut self, model: &M) {
        dispatch!(self, o => o.init_state(model))
    }
    fn has_state(&self) -> bool {
        dispatch!(self, o => Optimizer::<M, E>::has_state(o))
    }
    fn visit_state(&self, f: &mut dyn FnMut(&str, &[E])) {
        dispatch!(self, o => o.visit_state(f))
    }
    fn visit_state_mut(&mut self, f: &mut dyn FnMut(&str, &mut [E])) {
        dispatch!(self, o => o.visit_state_mut(f))
    }
    fn step_count(&self) -> u64 {
        dispatch!(self, o => Optimizer::<M, E>::step_count(o))
    }
    fn set_step_count(&mut self, t: u64) {
        dispatch!(self, o => Optimizer::<M, E>::set_step_count(o, t))
    }
    fn reset(&mut self) {
        dispatch!(self, o => Optimizer::<M, E>::reset(o))
    }
}
