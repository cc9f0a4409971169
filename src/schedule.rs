//! Learning-rate schedules, outside the solver: a [`Schedule`] maps the base learning rate and
//! the position in training ([`Progress`]) to the rate of one step.
//!
//! | schedule | rate of step `t` (0-based, over the run) in epoch `k` (1-based) | changes |
//! |---|---|---|
//! | [`Constant`] | `lr` | never |
//! | [`StepDecay`] | `lr·γ^⌊(k−1)/every⌋` | per epoch |
//! | [`Exponential`] | `lr·γ^(k−1)` (what [`Solver::lr_decay`](crate::solver::Solver::lr_decay) sets) | per epoch |
//! | [`WarmupCosine`] | `lr·(t+1)/w` for `t < w`, then `min + (lr − min)·½(1 + cos(π·(t−w)/(T−w)))` with `T` the steps of its `epochs` (default: the run's) | per step |
//!
//! The powers are repeated `f32` multiplications (`lr` multiplied `k−1` times by `γ`), the
//! arithmetic of the solver's earlier per-epoch decay, so a resumed run recomputes the same rates
//! bit for bit.

use core::fmt::Debug;

/// Where training is: what a [`Schedule`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The epoch, 1-based.
    pub epoch: usize,
    /// The step within the epoch, 0-based.
    pub step: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Epochs of the run.
    pub epochs: usize,
}

impl Progress {
    /// The step over the whole run, 0-based: `(epoch − 1)·steps_per_epoch + step`.
    pub fn global_step(&self) -> usize {
        self.epoch.saturating_sub(1) * self.steps_per_epoch + self.step
    }
    /// Steps of the whole run: `epochs·steps_per_epoch`.
    pub fn total_steps(&self) -> usize {
        self.epochs * self.steps_per_epoch
    }
}

/// A learning-rate schedule. `Send + Sync + Debug` so that a [`Solver`](crate::solver::Solver)
/// holding one stays cloneable, printable and shareable.
pub trait Schedule: Send + Sync + Debug {
    /// The learning rate at `at`, for base rate `base`.
    fn lr(&self, base: f32, at: &Progress) -> f32;
    /// Whether the rate changes within an epoch (the solver then asks before every step; otherwise
    /// once per epoch, at its first step).
    fn per_step(&self) -> bool {
        false
    }
    /// The schedule and its parameters in words (`"exponential(gamma=0.95)"`): what a resumable
    /// checkpoint records, so that a resume with another schedule is refused.
    fn describe(&self) -> String;
    /// Whether the rates depend on the run's number of epochs (a cosine spanning the run): a
    /// resumed run must then keep that number, which its checkpoint records.
    fn depends_on_epochs(&self) -> bool {
        false
    }
    /// What is wrong with the schedule's parameters for base rate `base`, if anything: the solver
    /// asks before the first epoch, so that a bad factor or floor is refused then, not when the
    /// rate it gives goes wrong mid-run. (Default: nothing.)
    fn check(&self, base: f32) -> Result<(), String> {
        let _ = base;
        Ok(())
    }
}

/// Refuses a decay factor that is not a finite value ≥ 0.
fn check_gamma(gamma: f32) -> Result<(), String> {
    if gamma.is_finite() && gamma >= 0.0 {
        Ok(())
    } else {
        Err(format!("gamma = {gamma}: the factor must be a finite value ≥ 0"))
    }
}

/// `base · γⁿ` as `n` repeated `f32` multiplications.
fn repeated(base: f32, gamma: f32, n: usize) -> f32 {
    let mut lr = base;
    for _ in 0..n {
        lr *= gamma;
    }
    lr
}

/// The base rate throughout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl Schedule for Constant {
    fn lr(&self, base: f32, _: &Progress) -> f32 {
        base
    }
    fn describe(&self) -> String {
        "constant".into()
    }
}

/// Multiplies the rate by `gamma` every `every` epochs: `lr·γ^⌊(k−1)/every⌋` in epoch `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Epochs between decays (at least 1).
    pub every: usize,
    /// The factor.
    pub gamma: f32,
}

impl Schedule for StepDecay {
    fn lr(&self, base: f32, at: &Progress) -> f32 {
        repeated(base, self.gamma, at.epoch.saturating_sub(1) / self.every.max(1))
    }
    fn describe(&self) -> String {
        format!("step(every={}, gamma={})", self.every, self.gamma)
    }
    fn check(&self, _: f32) -> Result<(), String> {
        if self.every == 0 {
            return Err("every = 0: the rate decays every 1 or more epochs".into());
        }
        check_gamma(self.gamma)
    }
}

/// Multiplies the rate by `gamma` every epoch: `lr·γ^(k−1)` in epoch `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// The factor per epoch.
    pub gamma: f32,
}

impl Schedule for Exponential {
    fn lr(&self, base: f32, at: &Progress) -> f32 {
        repeated(base, self.gamma, at.epoch.saturating_sub(1))
    }
    fn describe(&self) -> String {
        format!("exponential(gamma={})", self.gamma)
    }
    fn check(&self, _: f32) -> Result<(), String> {
        check_gamma(self.gamma)
    }
}

/// Linear warm-up over `warmup` steps (`lr·(t+1)/warmup`), then cosine annealing from `lr` to
/// `min_lr` over the rest of the steps of `epochs` epochs (the run's by default), then `min_lr`;
/// per step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosine {
    /// Warm-up steps (0: none).
    pub warmup: usize,
    /// The rate at the end of the cosine.
    pub min_lr: f32,
    /// The epochs the warm-up and cosine span; `None`: the run's
    /// ([`Solver::epochs`](crate::solver::Solver::epochs)), so that a run cannot be extended by a
    /// resume (its rates would change), while a fixed number allows it.
    pub epochs: Option<usize>,
}

impl WarmupCosine {
    /// `warmup` warm-up steps, annealing to 0 at the end of the run.
    pub fn new(warmup: usize) -> Self {
        WarmupCosine { warmup, min_lr: 0.0, epochs: None }
    }
}

impl Schedule for WarmupCosine {
    fn lr(&self, base: f32, at: &Progress) -> f32 {
        let t = at.global_step();
        if t < self.warmup {
            return (f64::from(base) * (t + 1) as f64 / self.warmup as f64) as f32;
        }
        let total = self.epochs.map_or(at.total_steps(), |e| e * at.steps_per_epoch);
        let span = total.saturating_sub(self.warmup).max(1);
        let frac = ((t - self.warmup) as f64 / span as f64).min(1.0);
        let (b, m) = (f64::from(base), f64::from(self.min_lr));
        (m + (b - m) * 0.5 * (1.0 + (core::f64::consts::PI * frac).cos())) as f32
    }
    fn per_step(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        let epochs = self.epochs.map_or_else(|| "run".to_string(), |e| e.to_string());
        format!("warmup_cosine(warmup={}, min_lr={}, epochs={epochs})", self.warmup, self.min_lr)
    }
    fn depends_on_epochs(&self) -> bool {
        self.epochs.is_none()
    }
    fn check(&self, base: f32) -> Result<(), String> {
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return Err(format!("min_lr = {}: the floor must be a finite value ≥ 0", self.min_lr));
        }
        if self.min_lr > base {
            return Err(format!(
                "min_lr = {} is above the learning rate {base}: the cosine would raise the rate",
                self.min_lr
            ));
        }
        if self.epochs == Some(0) {
            return Err("epochs = Some(0): the warm-up and cosine span at least one epoch".into());
        }
        Ok(())
    }
}
