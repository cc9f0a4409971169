//! Mini-batch training: epochs, learning-rate decay, accuracy after each epoch, loss history,
//! best-by-validation restore, progress and metrics, and resuming an interrupted run.
//!
//! # Randomness
//!
//! Nothing random carries over from one epoch to the next: epoch `k` (1-based) shuffles the
//! training set with a generator derived from the epoch seed [`mix_seed`]`(seed, k)` and reseeds
//! the model's dropout masks ([`Module::reseed`]) from that epoch seed too. A run is therefore a function of the seed,
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

use crate::data::{Dataset, shuffle_order};
use crate::error::{Error, Result};
use crate::io::{self, ExtraTensor};
use crate::layer::{Layer, Module, Path, mix_seed};
use crate::loss::Loss;
use crate::optim::{AnyOptimizer, UpdateRule};
use crate::shape::{Dyn, Shape};
use crate::step::TrainStep;
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// What a training run produced, epoch by epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Loss (data loss + L2 penalty) of every training step.
    pub loss: Vec<f32>,
    /// Accuracy on (a sample of up to 1000 of) the training examples after each epoch.
    pub train_acc: Vec<f64>,
    /// Validation accuracy after each epoch.
    pub val_acc: Vec<f64>,
    /// Learning rate used in each epoch.
    pub lr: Vec<f32>,
    /// The epoch (1-based) whose parameters were restored at the end.
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub best_val_acc: f64,
    /// Seconds spent in training steps (forward, loss, backward, update; no evaluation).
    pub train_seconds: f64,
    /// Training examples processed by training steps.
    pub train_samples: usize,
}

impl History {
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
///     .train::<(Dyn, Const<20>), _, _>(model, &Logistic, train, val)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Solver {
    rule: UpdateRule,
    lr: f32,
    lr_decay: f32,
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
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            rule: UpdateRule::Sgd,
            lr: 1e-2,
            lr_decay: 1.0,
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
        }
    }
}

impl Solver {
    /// Plain SGD, lr 1e-2, no decay, batch 100, 10 epochs, no regularisation, seed 0, quiet.
    pub fn new() -> Self {
        Self::default()
    }
    /// The update rule.
    pub fn rule(mut self, rule: UpdateRule) -> Self {
        self.rule = rule;
        self
    }
    /// The initial learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = lr;
        self
    }
    /// Multiplies the learning rate once per epoch.
    pub fn lr_decay(mut self, decay: f32) -> Self {
        self.lr_decay = decay;
        self
    }
    /// Examples per step.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
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

    /// Trains `model` on `train` with `loss`, measuring accuracy on `val` after each epoch, and
    /// restores the parameters of the best epoch at the end.
    ///
    /// `S` is the model's input shape with a runtime batch, e.g. `(Dyn, Const<1>, Const<28>,
    /// Const<28>)`; the data's samples must have `S::SAMPLE_NUMEL` features. Errors: data that does
    /// not fit the model, labels the loss rejects, a non-finite loss or parameter (training
    /// diverged: [`Error::Training`] naming the epoch and step), a resume checkpoint that does not
    /// fit ([`Error::Checkpoint`]), I/O.
    pub fn train<S, M, L>(&self, model: &mut M, loss: &L, train: &Dataset, val: &Dataset) -> Result<History>
    where
        S: Shape<Batch = Dyn>,
        M: Layer<S, f32>,
        L: Loss<M::Out, f32>,
    {
        train.check_input::<S>("training")?;
        val.check_input::<S>("validation")?;
        self.check_outputs()?;
        let bs = self.batch_size.min(train.len());
        // The step's buffers (batch, outputs, cache, gradients, optimizer state) live as long as the run.
        let mut step = TrainStep::<S, M>::new(self.rule, self.reg, bs);
        let mut best: Vec<f32> = Vec::new();
        let mut hist = History { best_val_acc: -1.0, ..History::default() };
        let mut done = 0usize;
        let last_path = self.last_checkpoint_file();
        // What the resumable checkpoint records of the run, and a resume checks.
        let facts = if self.resume.is_some() || last_path.is_some() { self.run_facts(train, val) } else { Vec::new() };
        if let Some(p) = &self.resume {
            let r = self.load_resume(model, step.optimizer_mut(), p, &facts)?;
            (hist, best, done) = (r.hist, r.best, r.epoch);
        }
        let mut order = Vec::with_capacity(train.len());
        let sample_idx: Vec<usize> = if train.len() > self.train_sample {
            let mut o = Vec::new();
            shuffle_order(&mut o, train.len(), &mut StdRng::seed_from_u64(self.seed ^ 0x5eed));
            o.truncate(self.train_sample);
            o
        } else {
            (0..train.len()).collect()
        };
        let train_eval = train.subset(&sample_idx);
        let mut metrics = match &self.metrics {
            Some(p) => Some((p.clone(), metrics_start(p, done)?)),
            None => None,
        };
        let steps_per_epoch = train.len().div_ceil(bs);
        let mut lr = self.lr;
        for _ in 0..done {
            lr *= self.lr_decay;
        }
        for epoch in done + 1..=self.epochs {
            let t_epoch = Instant::now();
            let epoch_seed = mix_seed(self.seed, epoch as u64);
            shuffle_order(&mut order, train.len(), &mut StdRng::seed_from_u64(mix_seed(epoch_seed, 0)));
            model.reseed(mix_seed(epoch_seed, 1));
            let bar = self.progress_bar(steps_per_epoch as u64, epoch);
            let mut epoch_loss = 0.0f64;
            let mut epoch_train_secs = 0.0f64;
            for (step_no, chunk) in order.chunks(bs).enumerate() {
                let t0 = Instant::now();
                let b = chunk.len();
                let l = match step.step(model, loss, train, chunk, lr) {
                    Ok(l) => l,
                    Err(Error::Training(what)) => {
                        if let Some(b) = &bar {
                            b.abandon();
                        }
                        return Err(self.diverged(
                            format!("{what} at epoch {epoch}, step {} of {steps_per_epoch}", step_no + 1),
                            lr,
                            epoch - 1,
                            last_path.as_deref(),
                        ));
                    }
                    Err(e) => return Err(e),
                };
                epoch_train_secs += t0.elapsed().as_secs_f64();
                hist.train_samples += b;
                hist.loss.push(l);
                epoch_loss += l as f64;
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "loss {l:.4}  {:.0} samples/s",
                        hist.train_samples as f64 / (hist.train_seconds + epoch_train_secs).max(1e-9)
                    ));
                    bar.inc(1);
                }
            }
            hist.train_seconds += epoch_train_secs;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            // A finite loss does not prove finite parameters (the last update may overflow, and
            // ReLU hides NaN): never evaluate or save a broken model.
            if let Some(name) = first_non_finite(model) {
                return Err(self.diverged(
                    format!(
                        "parameter `{name}` became NaN or infinite at epoch {epoch}, in one of its {steps_per_epoch} steps \
                         (the loss stayed finite)"
                    ),
                    lr,
                    epoch - 1,
                    last_path.as_deref(),
                ));
            }
            let train_acc = accuracy::<S, M, L>(model, loss, &train_eval, 1000)?;
            let val_acc = accuracy::<S, M, L>(model, loss, val, 1000)?;
            hist.train_acc.push(train_acc);
            hist.val_acc.push(val_acc);
            hist.lr.push(lr);
            let mean_loss = epoch_loss / steps_per_epoch as f64;
            if val_acc > hist.best_val_acc {
                hist.best_val_acc = val_acc;
                hist.best_epoch = epoch;
                snapshot(model, &mut best);
                if let Some(p) = &self.checkpoint {
                    io::save(model, p)?;
                }
            }
            if self.verbose {
                eprintln!(
                    "epoch {epoch:>3}/{}: loss {mean_loss:.4}  train acc {train_acc:.4}  val acc {val_acc:.4}  lr {lr:.3e}  ({:.1} s)",
                    self.epochs,
                    t_epoch.elapsed().as_secs_f64()
                );
            }
            if let Some((p, text)) = metrics.as_mut() {
                text.push_str(&format!(
                    "{epoch},{mean_loss},{train_acc},{val_acc},{lr},{}\n",
                    t_epoch.elapsed().as_secs_f64()
                ));
                io::write_atomic(p, text.as_bytes())?;
            }
            if let Some(p) = &last_path {
                self.save_resume(model, step.optimizer(), &hist, &best, epoch, &facts, p)?;
            }
            lr *= self.lr_decay;
        }
        if !best.is_empty() {
            restore(model, &best);
        }
        Ok(hist)
    }

    /// The error for a diverged run: what happened, the advice, and which checkpoints survive.
    fn diverged(&self, what: String, lr: f32, completed: usize, last: Option<&FsPath>) -> Error {
        let mut msg = format!("{what} (learning rate {lr}); lower the learning rate");
        if let Some(p) = &self.checkpoint
            && completed > 0
        {
            msg.push_str(&format!("; the best checkpoint so far is still in {}", p.display()));
        }
        if let Some(p) = last
            && completed > 0
        {
            msg.push_str(&format!(
                "; to continue from the end of epoch {completed} with a lower learning rate, resume from {}",
                p.display()
            ));
        }
        Error::Training(msg)
    }

    /// Writes the resumable checkpoint after `epoch`.
    #[allow(clippy::too_many_arguments)]
    fn save_resume<M: Module<f32>>(
        &self,
        model: &M,
        opt: &AnyOptimizer<M, f32>,
        hist: &History,
        best: &[f32],
        epoch: usize,
        facts: &[Fact],
        path: &FsPath,
    ) -> Result<()> {
        let list = |v: &[f64]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let lrs = hist.lr.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let mut meta: Vec<(String, String)> = [
            (RESUME_EPOCH, epoch.to_string()),
            (RESUME_EPOCHS, self.epochs.to_string()),
            (RESUME_BEST_EPOCH, hist.best_epoch.to_string()),
            (RESUME_BEST_VAL, hist.best_val_acc.to_string()),
            (RESUME_TRAIN_ACC, list(&hist.train_acc)),
            (RESUME_VAL_ACC, list(&hist.val_acc)),
            (RESUME_LR, lrs),
            (RESUME_SECONDS, hist.train_seconds.to_string()),
            (RESUME_SAMPLES, hist.train_samples.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        meta.extend(facts.iter().map(|f| (f.key.clone(), f.value.clone())));
        let extra: Vec<ExtraTensor<f32>> = vec![
            (RESUME_LOSS.to_string(), vec![hist.loss.len()], hist.loss.clone()),
            (RESUME_BEST.to_string(), vec![best.len()], best.to_vec()),
        ];
        io::save_checkpoint_with(model, opt, &extra, &meta, path)
    }

    /// What determines this run's result besides the initial parameters: recorded in the resumable
    /// checkpoint and compared on resume.
    fn run_facts(&self, train: &Dataset, val: &Dataset) -> Vec<Fact> {
        let digest = |d: &Dataset| format!("{:016x}", d.digest());
        let mut facts = vec![
            Fact::new(RESUME_SEED, "seed", self.seed.to_string()),
            Fact::new(RESUME_BATCH, "batch size", self.batch_size.to_string()),
            Fact::new(RESUME_TRAIN_LEN, "number of training samples", train.len().to_string()),
            Fact::new(RESUME_TRAIN_DIGEST, "training data digest", digest(train)),
            Fact::new(RESUME_VAL_LEN, "number of validation samples", val.len().to_string()),
            Fact::new(RESUME_VAL_DIGEST, "validation data digest", digest(val)),
            Fact::new(RESUME_RULE, "update rule", self.rule.name().to_string()),
            Fact::new(RESUME_LR0, "learning rate", self.lr.to_string()),
            Fact::new(RESUME_DECAY, "learning-rate decay", self.lr_decay.to_string()),
            Fact::new(RESUME_REG, "L2 strength (reg)", self.reg.to_string()),
            Fact::new(RESUME_TRAIN_SAMPLE, "training-accuracy sample", self.train_sample.to_string()),
        ];
        facts.extend(self.tags.iter().map(|(k, v)| Fact {
            key: format!("{RESUME_TAG}{k}"),
            what: k.clone(),
            value: v.clone(),
        }));
        facts
    }

    /// Reads a resumable checkpoint into `model` and `opt`; on any error neither is changed.
    fn load_resume<M: Module<f32>>(
        &self,
        model: &mut M,
        opt: &mut AnyOptimizer<M, f32>,
        path: &FsPath,
        facts: &[Fact],
    ) -> Result<Resumed> {
        let err = |msg: String| Error::checkpoint(path, msg);
        let meta = io::read_metadata(path)?;
        if !meta.contains_key(RESUME_EPOCH) {
            return Err(err(format!(
                "not a resumable checkpoint (no `{RESUME_EPOCH}` metadata): resume from the file the solver \
                 writes after every epoch (`<name>.last.safetensors` next to the best-parameters checkpoint)"
            )));
        }
        let epoch: usize = meta_value(&meta, RESUME_EPOCH, path)?;
        let mut differences = Vec::new();
        for f in facts {
            if f.key == RESUME_LR0 && self.allow_lr_change {
                continue;
            }
            let theirs = meta.get(&f.key).map(String::as_str).unwrap_or("(not recorded)");
            if theirs != f.value {
                differences.push(format!("{}: {theirs} in the checkpoint, {} in this run", f.what, f.value));
            }
        }
        // Tags of the saved run that this run does not set.
        for (k, v) in meta.range(RESUME_TAG.to_string()..) {
            let Some(tag) = k.strip_prefix(RESUME_TAG) else { break };
            if !facts.iter().any(|f| f.key == *k) {
                differences.push(format!("{tag}: {v} in the checkpoint, not set in this run"));
            }
        }
        if !differences.is_empty() {
            return Err(err(format!(
                "the checkpoint was written by another run; {}. A resumed run needs the same data and settings \
                 to continue where it stopped (only the number of epochs may change{})",
                differences.join("; "),
                if self.allow_lr_change { ", and the learning rate" } else { "" }
            )));
        }
        let mut m = M::zeros();
        let mut o = AnyOptimizer::<M, f32>::new(self.rule);
        let ck = io::load_checkpoint(&mut m, &mut o, path)?;
        let list = |key: &str| -> Result<&str> {
            meta.get(key).map(String::as_str).ok_or_else(|| err(format!("the metadata `{key}` is missing")))
        };
        let tensor = |name: &str| -> Result<Vec<f32>> {
            ck.extra(name)
                .map(|(_, d)| d.to_vec())
                .ok_or_else(|| err(format!("tensor `{name}` is missing from the resumable checkpoint")))
        };
        let hist = History {
            loss: tensor(RESUME_LOSS)?,
            train_acc: parse_list(list(RESUME_TRAIN_ACC)?, RESUME_TRAIN_ACC, path)?,
            val_acc: parse_list(list(RESUME_VAL_ACC)?, RESUME_VAL_ACC, path)?,
            lr: parse_list(list(RESUME_LR)?, RESUME_LR, path)?,
            best_epoch: meta_value(&meta, RESUME_BEST_EPOCH, path)?,
            best_val_acc: meta_value(&meta, RESUME_BEST_VAL, path)?,
            train_seconds: meta_value(&meta, RESUME_SECONDS, path)?,
            train_samples: meta_value(&meta, RESUME_SAMPLES, path)?,
        };
        if hist.train_acc.len() != epoch || hist.val_acc.len() != epoch || hist.lr.len() != epoch {
            return Err(err(format!(
                "the history holds {} / {} / {} epochs of training accuracy / validation accuracy / learning \
                 rate, but the checkpoint is at epoch {epoch}",
                hist.train_acc.len(),
                hist.val_acc.len(),
                hist.lr.len()
            )));
        }
        let best = tensor(RESUME_BEST)?;
        let numel = count_values(&m);
        if best.len() != numel && !(best.is_empty() && hist.best_epoch == 0) {
            return Err(err(format!(
                "tensor `{RESUME_BEST}` has shape [{}] in the file, but the model expects [{numel}]",
                best.len()
            )));
        }
        if let Some(i) = best.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "tensor `{RESUME_BEST}` (the best epoch's parameters) holds {} at index {i}, in `{}`: parameters \
                 must be finite",
                best[i],
                param_at(&m, i)
            )));
        }
        *model = m;
        *opt = o;
        Ok(Resumed { epoch, hist, best })
    }

    fn progress_bar(&self, len: u64, epoch: usize) -> Option<indicatif::ProgressBar> {
        if !self.verbose {
            return None;
        }
        let bar = indicatif::ProgressBar::new(len);
        let style = indicatif::ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(epoch.to_string());
        Some(bar)
    }
}

/// A fact about a run recorded in its resumable checkpoint: metadata key, what it is in words,
/// value.
struct Fact {
    key: String,
    what: String,
    value: String,
}

impl Fact {
    fn new(key: &str, what: &str, value: String) -> Self {
        Fact { key: key.to_string(), what: what.to_string(), value }
    }
}

/// What [`Solver::resume_from`] restores besides the model and the optimizer.
struct Resumed {
    epoch: usize,
    hist: History,
    best: Vec<f32>,
}

const RESUME_EPOCH: &str = "solver.epoch";
const RESUME_EPOCHS: &str = "solver.epochs";
const RESUME_SEED: &str = "solver.seed";
const RESUME_BATCH: &str = "solver.batch_size";
const RESUME_TRAIN_LEN: &str = "solver.train_len";
const RESUME_RULE: &str = "solver.rule";
const RESUME_TRAIN_DIGEST: &str = "solver.train_digest";
const RESUME_VAL_LEN: &str = "solver.val_len";
const RESUME_VAL_DIGEST: &str = "solver.val_digest";
const RESUME_LR0: &str = "solver.initial_lr";
const RESUME_DECAY: &str = "solver.lr_decay";
const RESUME_REG: &str = "solver.reg";
const RESUME_TRAIN_SAMPLE: &str = "solver.train_sample";
/// Prefix of the caller's [tags](Solver::tag).
const RESUME_TAG: &str = "solver.tag.";
const RESUME_BEST_EPOCH: &str = "solver.best_epoch";
const RESUME_BEST_VAL: &str = "solver.best_val_acc";
const RESUME_TRAIN_ACC: &str = "solver.train_acc";
const RESUME_VAL_ACC: &str = "solver.val_acc";
const RESUME_LR: &str = "solver.lr";
const RESUME_SECONDS: &str = "solver.train_seconds";
const RESUME_SAMPLES: &str = "solver.train_samples";
/// The loss of every step so far.
const RESUME_LOSS: &str = "solver.loss";
/// The best epoch's parameters and buffers, concatenated in visiting order.
const RESUME_BEST: &str = "solver.best";

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

/// A metadata value parsed as `T`.
fn meta_value<T: FromStr>(meta: &BTreeMap<String, String>, key: &str, path: &FsPath) -> Result<T> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::checkpoint(path, format!("the metadata `{key}` is missing or not a number")))
}

/// A comma-separated list of numbers (empty for none), exactly as `to_string` wrote them.
fn parse_list<T: FromStr>(v: &str, key: &str, path: &FsPath) -> Result<Vec<T>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                Error::checkpoint(path, format!("the metadata `{key}` holds {s:?}, which is not a number"))
            })
        })
        .collect()
}

/// The metrics CSV's text so far: its header or, when resuming after epoch `done` from an
/// existing file, the header and the rows up to that epoch (rows of later epochs, written before
/// the interruption but not covered by the checkpoint, are dropped). Each epoch appends a row and
/// writes the whole text atomically, so the previous file survives a failed write.
fn metrics_start(p: &FsPath, done: usize) -> Result<String> {
    const HEADER: &str = "epoch,loss,train_acc,val_acc,lr,seconds\n";
    if done == 0 {
        return Ok(HEADER.to_string());
    }
    let old = match std::fs::read_to_string(p) {
        Ok(old) => old,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HEADER.to_string()),
        Err(e) => return Err(Error::io(p, e)),
    };
    Ok(old
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0 || l.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e <= done)
        })
        .map(|(_, l)| format!("{l}\n"))
        .collect())
}

/// The path of the parameter or buffer that holds value `i` of the concatenation of all of them.
fn param_at<M: Module<f32>>(model: &M, i: usize) -> String {
    let (mut at, mut name) = (0, String::new());
    model.visit_params(&Path::ROOT, &mut |info, d| {
        if name.is_empty() && i < at + d.len() {
            name = info.path.to_string();
        }
        at += d.len();
    });
    name
}

/// The path of the first parameter or buffer holding a NaN or infinity.
fn first_non_finite<M: Module<f32>>(model: &M) -> Option<String> {
    let mut bad = None;
    model.visit_params(&Path::ROOT, &mut |info, d| {
        if bad.is_none() && d.iter().any(|v| !v.is_finite()) {
            bad = Some(info.path.to_string());
        }
    });
    bad
}

/// The number of parameter and buffer values of `model`.
fn count_values<M: Module<f32>>(model: &M) -> usize {
    let mut n = 0;
    model.visit_params(&Path::ROOT, &mut |_, d| n += d.len());
    n
}

/// Copies every parameter and buffer of `model` into `out` (reusing its capacity).
fn snapshot<M: Module<f32>>(model: &M, out: &mut Vec<f32>) {
    out.clear();
    model.visit_params(&Path::ROOT, &mut |_, d| out.extend_from_slice(d));
}

/// The inverse of [`snapshot`].
fn restore<M: Module<f32>>(model: &mut M, from: &[f32]) {
    let mut at = 0;
    model.visit_params_mut(&Path::ROOT, &mut |_, d| {
        d.copy_from_slice(&from[at..at + d.len()]);
        at += d.len();
    });
}

/// Fraction of `data` that `model` (in inference mode) classifies correctly, in batches of `batch`.
pub fn accuracy<S, M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<f64>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    if data.is_empty() {
        return Ok(0.0);
    }
    let pred = predict::<S, M, L>(model, loss, data, batch)?;
    let correct = pred.iter().zip(data.labels()).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / data.len() as f64)
}

/// Predicted classes of `data` by `model` in inference mode.
pub fn predict<S, M, L>(model: &M, loss: &L, data: &Dataset, batch: usize) -> Result<Vec<usize>>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    data.check_fits::<S>("prediction")?;
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
