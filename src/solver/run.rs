//! The epoch loop, compiled once: it drives the model through [`Trainee`], an object-safe view
//! that [`Solver::train`] builds around the typed model, loss and training step.

use super::resume::{first_non_finite, restore, snapshot};
use super::{History, Solver, accuracy};
use crate::data::{Dataset, shuffle_order};
use crate::error::{Error, Result};
use crate::io::{self, Checkpoint, ExtraTensor};
use crate::layer::{Layer, ParamTree, mix_seed};
use crate::loss::Loss;
use crate::optim::{AnyOptimizer, UpdateRule};
use crate::shape::{Dyn, Shape};
use crate::step::TrainStep;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path as FsPath;
use std::time::Instant;

/// What the epoch loop asks of the model being trained. [`Job`] is the one implementation; the
/// trait object keeps the loop, the bookkeeping and the checkpoints out of the user's crate.
pub(super) trait Trainee {
    /// One training step on samples `idx` of `data` with learning rate `lr`; the loss.
    fn step(&mut self, data: &Dataset, idx: &[usize], lr: f32) -> Result<f32>;
    /// Classification accuracy on `data` in inference mode.
    fn accuracy(&self, data: &Dataset) -> Result<f64>;
    /// [`Module::reseed`](crate::Module::reseed).
    fn reseed(&mut self, seed: u64);
    /// The model's parameters.
    fn params(&self) -> &dyn ParamTree<f32>;
    /// The model's parameters, mutably.
    fn params_mut(&mut self) -> &mut dyn ParamTree<f32>;
    /// Saves the model ([`io::save`]).
    fn save(&self, path: &FsPath) -> Result<()>;
    /// Saves the model and the optimizer state with `extra` tensors and `meta` ([`io::save_checkpoint_with`]).
    fn save_checkpoint(&self, extra: &[ExtraTensor<f32>], meta: &[(String, String)], path: &FsPath) -> Result<()>;
    /// Loads a resumable checkpoint into a fresh model and optimizer of `rule`, kept aside (the
    /// model being trained is unchanged) until [`Trainee::commit_staged`].
    fn stage_checkpoint(&mut self, rule: UpdateRule, path: &FsPath) -> Result<Checkpoint<f32>>;
    /// The staged model's parameters (after a successful [`Trainee::stage_checkpoint`]).
    fn staged(&self) -> Option<&dyn ParamTree<f32>>;
    /// Replaces the model and the optimizer with the staged ones.
    fn commit_staged(&mut self);
}

/// The typed model, loss and step of one [`Solver::train`] call.
pub(super) struct Job<'a, S: Shape<Batch = Dyn>, M: Layer<S, f32>, L> {
    pub(super) model: &'a mut M,
    pub(super) loss: &'a L,
    pub(super) step: TrainStep<S, M>,
    pub(super) staged: Option<(M, AnyOptimizer<M, f32>)>,
}

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>, L: Loss<M::Out, f32>> Trainee for Job<'_, S, M, L> {
    fn step(&mut self, data: &Dataset, idx: &[usize], lr: f32) -> Result<f32> {
        self.step.step(self.model, self.loss, data, idx, lr)
    }
    fn accuracy(&self, data: &Dataset) -> Result<f64> {
        accuracy::<S, M, L>(self.model, self.loss, data, 1000)
    }
    fn reseed(&mut self, seed: u64) {
        self.model.reseed(seed);
    }
    fn params(&self) -> &dyn ParamTree<f32> {
        &*self.model
    }
    fn params_mut(&mut self) -> &mut dyn ParamTree<f32> {
        &mut *self.model
    }
    fn save(&self, path: &FsPath) -> Result<()> {
        io::save(&*self.model, path)
    }
    fn save_checkpoint(&self, extra: &[ExtraTensor<f32>], meta: &[(String, String)], path: &FsPath) -> Result<()> {
        io::save_checkpoint_with(&*self.model, self.step.optimizer(), extra, meta, path)
    }
    fn stage_checkpoint(&mut self, rule: UpdateRule, path: &FsPath) -> Result<Checkpoint<f32>> {
        let mut m = M::zeros();
        let mut o = AnyOptimizer::<M, f32>::new(rule);
        let ck = io::load_checkpoint(&mut m, &mut o, path)?;
        self.staged = Some((m, o));
        Ok(ck)
    }
    fn staged(&self) -> Option<&dyn ParamTree<f32>> {
        self.staged.as_ref().map(|(m, _)| m as &dyn ParamTree<f32>)
    }
    fn commit_staged(&mut self) {
        if let Some((m, o)) = self.staged.take() {
            *self.model = m;
            *self.step.optimizer_mut() = o;
        }
    }
}

impl Solver {
    /// The body of [`Solver::train`] (data and outputs already checked).
    pub(super) fn run(&self, job: &mut dyn Trainee, train: &Dataset, val: &Dataset) -> Result<History> {
        let bs = self.batch_size.min(train.len());
        let mut best: Vec<f32> = Vec::new();
        let mut hist = History { best_val_acc: -1.0, ..History::default() };
        let mut done = 0usize;
        let last_path = self.last_checkpoint_file();
        // What the resumable checkpoint records of the run, and a resume checks.
        let facts = if self.resume.is_some() || last_path.is_some() { self.run_facts(train, val) } else { Vec::new() };
        if let Some(p) = &self.resume {
            let r = self.load_resume(job, p, &facts)?;
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
            job.reseed(mix_seed(epoch_seed, 1));
            let bar = self.progress_bar(steps_per_epoch as u64, epoch);
            let mut epoch_loss = 0.0f64;
            let mut epoch_train_secs = 0.0f64;
            for (step_no, chunk) in order.chunks(bs).enumerate() {
                let t0 = Instant::now();
                let b = chunk.len();
                let l = match job.step(train, chunk, lr) {
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
            if let Some(name) = first_non_finite(job.params()) {
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
            let train_acc = job.accuracy(&train_eval)?;
            let val_acc = job.accuracy(val)?;
            hist.train_acc.push(train_acc);
            hist.val_acc.push(val_acc);
            hist.lr.push(lr);
            let mean_loss = epoch_loss / steps_per_epoch as f64;
            if val_acc > hist.best_val_acc {
                hist.best_val_acc = val_acc;
                hist.best_epoch = epoch;
                snapshot(job.params(), &mut best);
                if let Some(p) = &self.checkpoint {
                    job.save(p)?;
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
                self.save_resume(job, &hist, &best, epoch, &facts, p)?;
            }
            lr *= self.lr_decay;
        }
        if !best.is_empty() {
            restore(job.params_mut(), &best);
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
