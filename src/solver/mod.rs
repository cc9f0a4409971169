//! Mini-batch training: epochs, learning-rate schedules, optimizer hyper-parameters, gradient
//! clipping, validation after each epoch, loss history, best-by-validation restore, early
//! stopping, progress and metrics, and resuming an interrupted run.
//!
//! # Classification and regression
//!
//! The loss's [`Target`] decides what the solver measures. With class labels
//! it reports the accuracy on the training sample and the validation set after each epoch, and the
//! *best epoch* is the one with the **highest validation accuracy** (the first of equals). With
//! real-valued targets (MSE, L1, Huber, binary cross-entropy) it reports the **validation loss**
//! (the loss's mean over the validation set, in inference mode, without the L2 term) and the best
//! epoch is the one with the **lowest validation loss**. Before the first epoch both data sets are
//! checked against the loss ([`Dataset::check_targets`]): the kind of targets and, for values, one
//! per model output.
//!
//! # Early stopping
//!
//! With [`Solver::early_stopping`]`(patience)`, training stops after an epoch that is `patience`
//! epochs past the best one (no improvement in `patience` epochs); the best epoch's parameters
//! are restored as at the end of every run. The rule reads only the history, so a resumed run
//! stops where the uninterrupted one would.
//!
//! # Randomness
//!
//! Nothing random carries over from one epoch to the next: epoch `k` (1-based) shuffles the
//! training set with a generator derived from the epoch seed [`mix_seed`](crate::layer::mix_seed)`(seed, k)` and reseeds
//! the model's dropout masks ([`Module::reseed`](crate::Module::reseed)) from that epoch seed too. A run is therefore a function of the seed,
//! the data and the initial parameters (bit for bit: training is single-threaded), and a resumed
//! run needs no generator state from the checkpoint.
//!
//! # Checkpoints and resuming
//!
//! With [`Solver::checkpoint`]`(best)`, the parameters of the best epoch so far (by validation
//! accuracy) are saved to `best` whenever they improve, and after every epoch a *resumable*
//! checkpoint is saved to [`last_checkpoint_path`]`(best)` (`best.last.safetensors` for
//! `best.safetensors`; [`Solver::last_checkpoint`] chooses another path). It holds the parameters
//! and buffers after that epoch, the optimizer state and step count (see [`io::save_checkpoint`]),
//! the history so far and the best epoch's parameters, with metadata `solver.epoch`, `solver.seed`, `solver.batch_size`, `solver.train_len`,
//! `solver.best_epoch`, `solver.best_val_acc`, ... . Every save is atomic, so a run killed at any
//! moment leaves both files loadable.
//!
//! [`Solver::resume_from`]`(last)` loads such a file and continues with the next epoch; with the
//! same seed, data, batch size and hyper-parameters it ends with the same parameters, bit for bit,
//! as a run that was never interrupted. The checkpoint records what determines the result — a
//! [digest](Dataset::digest) of the training and validation sets, their sizes, the seed, the batch
//! size, the update rule, the learning rate, its decay, the L2 strength, the training-accuracy
//! sample and the caller's [tags](Solver::tag) (pixel scaling, a data limit) — and a resume with
//! any of them different is refused with a list of what differs (checkpoint vs this run). Only the
//! number of epochs may change (to extend a run), and the learning rate with
//! [`Solver::allow_lr_change`]: the rate of epoch `k` is recomputed as `lr · lr_decay^(k−1)` from
//! the resumed solver's own settings, so a run that diverged can be resumed from its last good
//! epoch with a lower learning rate.
//!
//! # Outputs
//!
//! Before the first epoch every output (the best and the resumable checkpoints, the metrics CSV)
//! is checked with [`io::check_output_path`] (a regular file or absent, in an existing directory)
//! and no two of them may be the same file. Every output is replaced atomically
//! ([`io::write_atomic`]): the metrics CSV is rewritten whole after each epoch, so a full disk
//! leaves the previous version intact.

mod dist;
mod resume;
mod run;

use crate::data::{Augment, Dataset};
use crate::error::{Error, Result};
use crate::io;
use crate::layer::Layer;
use crate::loss::{Loss, Target, TargetKind};
use crate::model::{Model, OutputOf};
use crate::optim::{AnyOptimizer, OptimConfig, UpdateRule};
use crate::schedule::{Exponential, Schedule};
use crate::shape::{Dyn, Shape};
use crate::step::TrainStep;
use crate::tensor::Tensor;
use run::Job;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// What a training run produced, epoch by epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Loss (data loss + L2 penalty) of every training step.
    pub loss: Vec<f32>,
    /// Accuracy on (a sample of up to 1000 of) the training examples after each epoch
    /// (classification; empty for real-valued targets).
    pub train_acc: Vec<f64>,
    /// Validation accuracy after each epoch (classification; empty for real-valued targets).
    pub val_acc: Vec<f64>,
    /// Validation loss after each epoch (real-valued targets; empty for classification).
    pub val_loss: Vec<f64>,
    /// Learning rate used in each epoch.
    pub lr: Vec<f32>,
    /// The epoch (1-based) whose parameters were restored at the end.
    pub best_epoch: usize,
    /// Its validation accuracy (classification).
    pub best_val_acc: f64,
    /// Its validation loss (real-valued targets).
    pub best_val_loss: f64,
    /// The epoch after which early stopping ended the run (0: it ran all its epochs).
    pub stopped_early: usize,
    /// Seconds spent in training steps (forward, loss, backward, update; no evaluation).
    pub train_seconds: f64,
    /// Training examples processed by training steps.
    pub train_samples: usize,
}

impl History {
    /// The mean training loss of each epoch (the step losses of [`History::loss`] in equal runs,
    /// one per epoch trained).
    pub fn epoch_loss(&self) -> Vec<f64> {
        let epochs = self.lr.len();
        if epochs == 0 || self.loss.is_empty() {
            return Vec::new();
        }
        let per = (self.loss.len() / epochs).max(1);
        self.loss
            .chunks(per)
            .take(epochs)
            .map(|c| c.iter().map(|&l| f64::from(l)).sum::<f64>() / c.len() as f64)
            .collect()
    }

    /// Training throughput: samples per second of training steps only.
    pub fn train_samples_per_sec(&self) -> f64 {
        if self.train_seconds > 0.0 { self.train_samples as f64 / self.train_seconds } else { 0.0 }
    }
}

/// Mini-batch trainer, configured with a builder.
///
/// ```no_run
/// # use shaped::prelude::*;
/// # use shaped::solver::Solver;
/// # use shaped::optim::UpdateRule;
/// # fn demo(model: &mut Linear<20, 1>, train: &shaped::data::Dataset, val: &shaped::data::Dataset) -> shaped::Result<()> {
/// let history = Solver::new()
///     .rule(UpdateRule::SgdMomentum)
///     .lr(1.0)
///     .lr_decay(0.95)
///     .reg(0.2)
///     .epochs(20)
///     .batch_size(50)
///     .train(model, &Logistic, train, val)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Solver {
    rule: UpdateRule,
    optim: OptimConfig,
    lr: f32,
    lr_decay: f32,
    schedule: Option<Arc<dyn Schedule>>,
    clip: Option<f32>,
    patience: Option<usize>,
    batch_size: usize,
    epochs: usize,
    reg: f32,
    seed: u64,
    train_sample: usize,
    verbose: bool,
    checkpoint: Option<PathBuf>,
    last_checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
    metrics: Option<PathBuf>,
    tags: Vec<(String, String)>,
    allow_lr_change: bool,
    augment: Option<Augment>,
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            rule: UpdateRule::Adam,
            optim: OptimConfig::default(),
            lr: 1e-3,
            lr_decay: 1.0,
            schedule: None,
            clip: None,
            patience: None,
            batch_size: 100,
            epochs: 10,
            reg: 0.0,
            seed: 0,
            train_sample: 1000,
            verbose: false,
            checkpoint: None,
            last_checkpoint: None,
            resume: None,
            metrics: None,
            tags: Vec::new(),
            allow_lr_change: false,
            augment: None,
        }
    }
}

impl Solver {
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8) at lr 1e-3, no decay, batch 100, 10 epochs, no
    /// regularisation, seed 0, quiet: modern defaults. The homework's plain SGD at 1e-2 is
    /// `.rule(UpdateRule::Sgd).lr(1e-2)` (what `examples/hw1.rs` sets from its experiment table).
    pub fn new() -> Self {
        Self::default()
    }
    /// The update rule.
    pub fn rule(mut self, rule: UpdateRule) -> Self {
        self.rule = rule;
        self
    }
    /// Augments every training batch (random crop with zero padding, horizontal flips), drawn
    /// afresh per step from the seed, the epoch and the step: reproducible, and the same on a
    /// resumed run. Validation and test data are never augmented. The model's input must be
    /// `C×H×W` images larger than the padding (checked before training starts).
    pub fn augment(mut self, augment: Augment) -> Self {
        self.augment = (augment != Augment::default()).then_some(augment);
        self
    }
    /// The initial learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = lr;
        self
    }
    /// Multiplies the learning rate once per epoch: the schedule
    /// [`Exponential`]`{ gamma: decay }` (replacing any [`Solver::schedule`]).
    pub fn lr_decay(mut self, decay: f32) -> Self {
        self.lr_decay = decay;
        self.schedule = None;
        self
    }
    /// The learning-rate schedule (see [`crate::schedule`]), applied to [`Solver::lr`]; replaces
    /// [`Solver::lr_decay`]. The default is no decay.
    pub fn schedule(mut self, schedule: impl Schedule + 'static) -> Self {
        self.schedule = Some(Arc::new(schedule));
        self.lr_decay = 1.0;
        self
    }
    /// The schedule in effect: the one set, else [`Exponential`] with the `lr_decay` factor.
    pub fn schedule_in_effect(&self) -> Arc<dyn Schedule> {
        self.schedule.clone().unwrap_or_else(|| Arc::new(Exponential { gamma: self.lr_decay }))
    }
    /// The update rule's hyper-parameters (momentum, Nesterov, ρ, β₁, β₂, ε, AdamW's weight
    /// decay); each rule reads the ones it uses. Defaults: [`OptimConfig::default`].
    pub fn optim(mut self, config: OptimConfig) -> Self {
        self.optim = config;
        self
    }
    /// Clips the gradients to this global L2 norm before every update (PyTorch's
    /// `clip_grad_norm_`; see [`TrainStep`]).
    pub fn clip_grad_norm(mut self, max: f32) -> Self {
        self.clip = Some(max);
        self
    }
    /// Stops training after `patience` epochs without a better validation result (accuracy for
    /// classification, loss for real-valued targets); the best epoch is restored.
    pub fn early_stopping(mut self, patience: usize) -> Self {
        self.patience = Some(patience.max(1));
        self
    }
    /// Examples per step (at least 1: a run with 0 is refused before the first epoch).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Passes over the training data.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// L2 strength: `loss += 0.5·reg·Σ W²` over weights.
    pub fn reg(mut self, reg: f32) -> Self {
        self.reg = reg;
        self
    }
    /// Seed of the batch order and of dropout masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Training accuracy is measured on at most this many training examples (1000 in the spec).
    pub fn train_sample(mut self, n: usize) -> Self {
        self.train_sample = n;
        self
    }
    /// Progress bar per epoch and a line per epoch on stderr.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }
    /// Saves the best parameters (by validation accuracy) to this safetensors file as training
    /// goes, and a resumable checkpoint after every epoch to [`last_checkpoint_path`]`(path)` (unless
    /// [`Solver::last_checkpoint`] names another file).
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }
    /// Saves a resumable checkpoint (parameters, optimizer state, history, best parameters) to this
    /// file after every epoch, for [`Solver::resume_from`]; with or without [`Solver::checkpoint`].
    pub fn last_checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.last_checkpoint = Some(path.into());
        self
    }
    /// Continues the run saved in this resumable checkpoint (see [`Solver::last_checkpoint`]): the
    /// model's parameters, the optimizer state and the history are replaced by the file's and
    /// training starts with the epoch after the one it recorded. The seed, batch size and number of
    /// training samples must be the saved run's; the rule must be the same.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.resume = Some(path.into());
        self
    }
    /// Where the resumable checkpoint goes: [`Solver::last_checkpoint`] if set, else derived from
    /// [`Solver::checkpoint`] by [`last_checkpoint_path`], else nowhere.
    pub fn last_checkpoint_file(&self) -> Option<PathBuf> {
        self.last_checkpoint.clone().or_else(|| self.checkpoint.as_deref().map(last_checkpoint_path))
    }
    /// Writes per-epoch metrics (epoch, mean loss, train/val accuracy, lr, seconds) to this CSV file.
    pub fn metrics_csv(mut self, path: impl Into<PathBuf>) -> Self {
        self.metrics = Some(path.into());
        self
    }
    /// Records a fact about the run that the solver cannot see (how the data was prepared: pixel
    /// scaling, a limit on the training set) in the resumable checkpoint, under `key`; a resume
    /// whose tags differ is refused. Setting a key again replaces its value.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.tags.retain(|(k, _)| *k != key);
        self.tags.push((key, value.into()));
        self.tags.sort();
        self
    }
    /// Lets [`Solver::resume_from`] continue with another learning rate than the saved run's (to
    /// recover a diverged run); every other setting must still match.
    pub fn allow_lr_change(mut self, allow: bool) -> Self {
        self.allow_lr_change = allow;
        self
    }
    /// The outputs this solver writes, with what each is, in the order they are checked.
    fn outputs(&self) -> Vec<(&'static str, PathBuf)> {
        let mut out = Vec::new();
        if let Some(p) = &self.checkpoint {
            out.push(("the best-parameters checkpoint", p.clone()));
        }
        if let Some(p) = self.last_checkpoint_file() {
            out.push(("the resumable checkpoint", p));
        }
        if let Some(p) = &self.metrics {
            out.push(("the metrics CSV", p.clone()));
        }
        out
    }
    /// Checks every output path (see [`io::check_output_path`]) and that no two outputs are the
    /// same file, before anything is trained or written.
    ///
    /// # Errors
    /// [`Error::Output`] naming the path (and, for a collision, both outputs).
    pub fn check_outputs(&self) -> Result<()> {
        let outs = self.outputs();
        for (i, (what, p)) in outs.iter().enumerate() {
            io::check_output_path(p).map_err(|e| match e {
                Error::Output { path, msg } => Error::Output { path, msg: format!("{what}: {msg}") },
                e => e,
            })?;
            if let Some((other, _)) = outs[..i].iter().find(|(_, q)| io::same_file(p, q)) {
                return Err(Error::Output {
                    path: p.clone(),
                    msg: format!("{what} and {other} would be the same file: one would overwrite the other"),
                });
            }
        }
        Ok(())
    }

    /// Trains `model` on `train` with `loss`, measuring accuracy (classification) or the loss
    /// (real-valued targets) on `val` after each epoch, and restores the parameters of the best
    /// epoch at the end.
    ///
    /// The input shape comes from the model's type ([`Model::Input`], declared by
    /// `#[sequential(input = ...)]`): no turbofish. The data's samples must have as many features
    /// as one input sample. Errors: data that does
    /// not fit the model, targets of the wrong kind or width for the loss ([`Error::Label`] naming
    /// the loss and the data set), labels the loss rejects, a non-finite loss or parameter (training
    /// diverged: [`Error::Training`] naming the epoch and step), a resume checkpoint that does not
    /// fit ([`Error::Checkpoint`]), I/O.
    pub fn train<M, L>(&self, model: &mut M, loss: &L, train: &Dataset, val: &Dataset) -> Result<History>
    where
        M: Model<f32>,
        L: Loss<OutputOf<M>, f32>,
    {
        self.train_as::<M::Input, M, L>(model, loss, train, val)
    }

    /// [`Solver::train`] with the input shape `S` written out, for a layer that accepts several
    /// inputs and implements no [`Model`] (e.g. `train_as::<(Dyn, Const<20>), _, _>`).
    pub fn train_as<S, M, L>(&self, model: &mut M, loss: &L, train: &Dataset, val: &Dataset) -> Result<History>
    where
        S: Shape<Batch = Dyn>,
        M: Layer<S, f32>,
        L: Loss<M::Out, f32>,
    {
        train.check_input::<S>("training")?;
        val.check_input::<S>("validation")?;
        let (kind, outputs) = (<L::Target as Target>::KIND, <M::Out as Shape>::SAMPLE_NUMEL);
        train.check_targets(kind, outputs, loss.name(), "training")?;
        val.check_targets(kind, outputs, loss.name(), "validation")?;
        train.check_labels_fit(outputs, loss.name(), "training")?;
        val.check_labels_fit(outputs, loss.name(), "validation")?;
        if train.is_empty() {
            return Err(Error::Shape("the training data has no samples".into()));
        }
        self.check_outputs()?;
        let bs = self.batch_size.min(train.len());
        // The step's buffers (batch, outputs, cache, gradients, optimizer state) live as long as the run.
        if let Some(a) = &self.augment {
            a.check_dims(S::SAMPLE.dims())?;
        }
        let mut step = TrainStep::new(self.rule, self.reg, bs).clip_grad_norm(self.clip).augment(self.augment);
        *step.optimizer_mut() = AnyOptimizer::with_config(self.rule, &self.optim);
        let mut job = Job::<S, M, L> { model, loss, step, staged: None };
        self.run(&mut job, train, val)
    }
}

/// The resumable checkpoint that goes with the best-parameters checkpoint `best`: `.last` inserted
/// before the extension (`runs/4a.safetensors` → `runs/4a.last.safetensors`), or appended when
/// there is none (`model` → `model.last`).
pub fn last_checkpoint_path(best: &FsPath) -> PathBuf {
    let mut name = best.file_stem().unwrap_or_default().to_os_string();
    name.push(".last");
    if let Some(ext) = best.extension() {
        name.push(".");
        name.push(ext);
    }
    best.with_file_name(name)
}

/// The mean of `loss` over `data` (in inference mode, in batches of `batch`; without L2): the
/// validation loss the solver reports for real-valued targets.
///
/// # Errors
/// Data that does not fit the model, targets the loss rejects.
pub fn mean_loss<M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<f64>
where
    M: Model<f32>,
    L: Loss<OutputOf<M>, f32>,
{
    mean_loss_as::<M::Input, M, L>(model, loss, data, batch)
}

/// [`mean_loss`] with the input shape `S` written out (for a layer that implements no [`Model`]).
pub fn mean_loss_as<S, M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<f64>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    data.check_fits::<S>("evaluation")?;
    data.check_targets(<L::Target as Target>::KIND, <M::Out as Shape>::SAMPLE_NUMEL, loss.name(), "evaluation")?;
    check_eval_batch(batch, "mean_loss")?;
    let mut y = Tensor::<M::Out, f32>::zeros(Dyn(0));
    let mut dy = Tensor::<M::Out, f32>::zeros(Dyn(0));
    let (per, w) = (data.sample_len(), data.target_width());
    let mut total = 0.0f64;
    for start in (0..data.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len());
        let x = Tensor::<S, f32>::from_slice(&data.features()[start * per..end * per])?;
        model.forward(&x, &mut y);
        let (labels, values) = match <L::Target as Target>::KIND {
            TargetKind::Classes => (&data.labels()[start..end], &[][..]),
            TargetKind::Values => (&[][..], &data.values()[start * w..end * w]),
        };
        let l = loss.loss(&y, <L::Target as Target>::pick(labels, values), &mut dy)?;
        total += f64::from(l) * (end - start) as f64;
    }
    Ok(total / data.len().max(1) as f64)
}

/// Refuses an evaluation in batches of 0 samples (`what`: the function's name).
pub(crate) fn check_eval_batch(batch: usize, what: &str) -> Result<()> {
    if batch == 0 {
        return Err(Error::Shape(format!("{what}: batches of 0 samples (the batch size must be at least 1)")));
    }
    Ok(())
}

/// Fraction of `data` that `model` (in inference mode) classifies correctly, in batches of `batch`
/// (at least 1). Labels the model's outputs cannot take are an error.
pub fn accuracy<M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<f64>
where
    M: Model<f32>,
    L: Loss<OutputOf<M>, f32>,
{
    accuracy_as::<M::Input, M, L>(model, loss, data, batch)
}

/// [`accuracy`] with the input shape `S` written out (for a layer that implements no [`Model`]).
pub fn accuracy_as<S, M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<f64>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    check_eval_batch(batch, "accuracy")?;
    data.check_labels_fit(<M::Out as Shape>::SAMPLE_NUMEL, loss.name(), "evaluation")?;
    if data.is_empty() {
        return Ok(0.0);
    }
    let pred = predict_as::<S, M, L>(model, loss, data, batch)?;
    let correct = pred.iter().zip(data.labels()).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / data.len() as f64)
}

/// Predicted classes of `data` by `model` in inference mode.
pub fn predict<M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<Vec<usize>>
where
    M: Model<f32>,
    L: Loss<OutputOf<M>, f32>,
{
    predict_as::<M::Input, M, L>(model, loss, data, batch)
}

/// [`predict`] with the input shape `S` written out (for a layer that implements no [`Model`]).
pub fn predict_as<S, M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<Vec<usize>>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    data.check_fits::<S>("prediction")?;
    check_eval_batch(batch, "predict")?;
    let mut out = Vec::with_capacity(data.len());
    let mut y = Tensor::<M::Out, f32>::zeros(Dyn(0));
    let per = data.sample_len();
    for start in (0..data.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len());
        let x = Tensor::<S, f32>::from_slice(&data.features()[start * per..end * per])?;
        model.forward(&x, &mut y);
        loss.predict(&y, &mut out);
    }
    Ok(out)
}
