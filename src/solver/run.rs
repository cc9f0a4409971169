//! The epoch loop, compiled once: it drives the model through [`Trainee`], an object-safe view
//! that [`Solver::train`] builds around the typed model, loss and training step.
//!
//! [`Solver::run`] reads as the list of an epoch's steps: [`Solver::train_epoch`] (shuffle,
//! steps at the scheduled rates), [`Solver::evaluate`] (the finite-parameter check, the
//! validation measure, the best epoch), [`Solver::report`] (the stderr line, the metrics CSV) and
//! [`Solver::save_epoch`] (the best and resumable checkpoints), then the early-stopping rule.

use super::resume::{Fact, first_non_finite, restore, snapshot};
use super::{History, Solver, accuracy_as, mean_loss_as};
use crate::data::{Dataset, shuffle_order};
use crate::error::{Error, Result};
use crate::io::{self, Checkpoint, ExtraTensor};
use crate::layer::{Layer, ParamTree, mix_seed};
use crate::loss::{Loss, Target, TargetKind};
use crate::optim::{AnyOptimizer, OptimConfig, UpdateRule};
use crate::schedule::{Progress, Schedule};
use crate::shape::{Dyn, Shape};
use crate::step::TrainStep;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What the epoch loop asks of the model being trained. [`Job`] is the one implementation; the
/// trait object keeps the loop, the bookkeeping and the checkpoints out of the user's crate.
pub(super) trait Trainee {
    /// One training step on samples `idx` of `data` with learning rate `lr`; the loss.
    fn step(&mut self, data: &Dataset, idx: &[usize], lr: f32) -> Result<f32>;
    /// The smallest batch the model trains on, and the layer that sets it
    /// ([`TrainStep::min_batch`]).
    fn min_batch(&self) -> (usize, Option<String>);
    /// Sets the seed of the next step's augmentation ([`TrainStep::set_augment_seed`]).
    fn set_step_seed(&mut self, seed: u64);
    /// What the loss compares the outputs with.
    fn kind(&self) -> TargetKind;
    /// The validation measure on `data` in inference mode: the accuracy for class labels, the
    /// mean loss for real-valued targets.
    fn evaluate(&self, data: &Dataset) -> Result<f64>;
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
    /// Loads a resumable checkpoint into a fresh model and optimizer of `rule` (with `config`),
    /// kept aside (the model being trained is unchanged) until [`Trainee::commit_staged`].
    fn stage_checkpoint(&mut self, rule: UpdateRule, config: &OptimConfig, path: &FsPath) -> Result<Checkpoint<f32>>;
    /// The staged model's parameters (after a successful [`Trainee::stage_checkpoint`]).
    fn staged(&self) -> Option<&dyn ParamTree<f32>>;
    /// Replaces the model and the optimizer with the staged ones.
    fn commit_staged(&mut self);
    /// Whether every rank of a distributed run got past the same point without an error (`failed`
    /// is this rank's own outcome): a collective in distributed mode, so that an error on one rank
    /// (a checkpoint rank 0 cannot write, a resume file one rank cannot read) ends every rank's run
    /// with an error instead of leaving the others waiting. One process: `Ok`.
    fn agree(&self, failed: bool) -> Result<()> {
        let _ = failed;
        Ok(())
    }
}

/// `r`, after the ranks have agreed that they all got here ([`Trainee::agree`]): this rank's own
/// error, or one naming the ranks that failed.
fn settle<T>(job: &dyn Trainee, r: Result<T>) -> Result<T> {
    let all = job.agree(r.is_err());
    let v = r?;
    all.map(|()| v)
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
    fn min_batch(&self) -> (usize, Option<String>) {
        TrainStep::<S, M>::min_batch()
    }
    fn set_step_seed(&mut self, seed: u64) {
        self.step.set_augment_seed(seed);
    }
    fn kind(&self) -> TargetKind {
        <L::Target as Target>::KIND
    }
    fn evaluate(&self, data: &Dataset) -> Result<f64> {
        match self.kind() {
            TargetKind::Classes => accuracy_as::<S, M, L>(self.model, self.loss, data, 1000),
            TargetKind::Values => mean_loss_as::<S, M, L>(self.model, self.loss, data, 1000),
        }
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
    fn stage_checkpoint(&mut self, rule: UpdateRule, config: &OptimConfig, path: &FsPath) -> Result<Checkpoint<f32>> {
        let mut m = M::zeros();
        let mut o = AnyOptimizer::<M, f32>::with_config(rule, config);
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

/// What the epoch steps share during one run.
struct RunState {
    hist: History,
    /// The best epoch's parameters (empty before the first epoch).
    best: Vec<f32>,
    /// Epochs already done (by a resumed run).
    done: usize,
    /// The epoch's order of the training samples (capacity reused).
    order: Vec<usize>,
    /// The sample of the training set whose accuracy is reported (classification).
    train_eval: Dataset,
    /// The metrics CSV: its path and text so far.
    metrics: Option<(PathBuf, String)>,
    /// What the resumable checkpoint records and a resume checks.
    facts: Vec<Fact>,
    last_path: Option<PathBuf>,
    schedule: Arc<dyn Schedule>,
    bs: usize,
    steps_per_epoch: usize,
    kind: TargetKind,
}

/// What one epoch's training produced.
struct EpochRun {
    /// The rate of its first step.
    lr: f32,
    mean_loss: f64,
    started: Instant,
}

impl Solver {
    /// The body of [`Solver::train`] (data and outputs already checked).
    pub(super) fn run(&self, job: &mut dyn Trainee, train: &Dataset, val: &Dataset) -> Result<History> {
        let started = self.start(job, train, val);
        let mut st = settle(job, started)?;
        // A resumed run that had already stopped early trains no further.
        let stopped = st.done > 0 && self.should_stop(&st.hist, st.done);
        if stopped {
            st.hist.stopped_early = st.done;
        }
        let first = if stopped { self.epochs + 1 } else { st.done + 1 };
        for epoch in first..=self.epochs {
            let ep = self.train_epoch(job, train, &mut st, epoch)?;
            let improved = self.evaluate(job, val, &mut st, epoch, ep.lr)?;
            // Only rank 0 writes: its errors end every rank's run.
            let reported = self.report(&mut st, epoch, &ep);
            settle(job, reported)?;
            let saved = self.save_epoch(job, &st, epoch, improved);
            settle(job, saved)?;
            if self.should_stop(&st.hist, epoch) {
                st.hist.stopped_early = epoch;
                break;
            }
        }
        if !st.best.is_empty() {
            restore(job.params_mut(), &st.best);
        }
        Ok(st.hist)
    }

    /// Before the first epoch: the facts, the resumed state, the training-accuracy sample, the
    /// metrics CSV so far.
    fn start(&self, job: &mut dyn Trainee, train: &Dataset, val: &Dataset) -> Result<RunState> {
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return Err(Error::Training(format!(
                "Solver::lr({:e}): the learning rate must be a finite value ≥ 0",
                self.lr
            )));
        }
        if self.batch_size == 0 {
            return Err(Error::Training("Solver::batch_size(0): a step needs at least one sample".into()));
        }
        let schedule = self.schedule_in_effect();
        if let Err(why) = schedule.check(self.lr) {
            return Err(Error::Training(format!("the learning-rate schedule {}: {why}", schedule.describe())));
        }
        let bs = self.batch_size.min(train.len());
        let (min_batch, layer) = job.min_batch();
        if let Some(layer) = layer.filter(|_| bs < min_batch) {
            return Err(Error::Training(format!(
                "batches of {bs} sample(s) (Solver::batch_size({}), {} training samples) are {}",
                self.batch_size,
                train.len(),
                crate::step::too_small(&layer, min_batch)
            )));
        }
        let last_path = self.last_checkpoint_file();
        let facts = if self.resume.is_some() || last_path.is_some() { self.run_facts(train, val) } else { Vec::new() };
        let mut hist = History { best_val_acc: -1.0, best_val_loss: f64::INFINITY, ..History::default() };
        let (mut best, mut done) = (Vec::new(), 0);
        if let Some(p) = &self.resume {
            let r = self.load_resume(job, p, &facts)?;
            (hist, best, done) = (r.hist, r.best, r.epoch);
        }
        let kind = job.kind();
        let sample_idx: Vec<usize> = if kind == TargetKind::Values {
            Vec::new()
        } else if train.len() > self.train_sample {
            let mut o = Vec::new();
            shuffle_order(&mut o, train.len(), &mut StdRng::seed_from_u64(self.seed ^ 0x5eed));
            o.truncate(self.train_sample);
            o
        } else {
            (0..train.len()).collect()
        };
        let metrics = match &self.metrics {
            Some(p) => Some((p.clone(), metrics_start(p, done, kind)?)),
            None => None,
        };
        Ok(RunState {
            hist,
            best,
            done,
            order: Vec::with_capacity(train.len()),
            train_eval: train.subset(&sample_idx),
            metrics,
            facts,
            last_path,
            schedule: self.schedule_in_effect(),
            bs,
            // An epoch's last batch, when smaller than the model trains on, is left out (another
            // epoch's shuffle puts its samples in full batches).
            steps_per_epoch: train.len() / bs + usize::from(train.len() % bs >= min_batch),
            kind,
        })
    }

    /// Epoch `epoch`'s training steps: the epoch's shuffle and dropout seed, one step per batch at
    /// the scheduled rate, the loss history and timing.
    fn train_epoch(&self, job: &mut dyn Trainee, train: &Dataset, st: &mut RunState, epoch: usize) -> Result<EpochRun> {
        let started = Instant::now();
        let epoch_seed = mix_seed(self.seed, epoch as u64);
        shuffle_order(&mut st.order, train.len(), &mut StdRng::seed_from_u64(mix_seed(epoch_seed, 0)));
        job.reseed(mix_seed(epoch_seed, 1));
        let spe = st.steps_per_epoch;
        let at = |step| Progress { epoch, step, steps_per_epoch: spe, epochs: self.epochs };
        let first_lr = st.schedule.lr(self.lr, &at(0));
        let bar = self.progress_bar(spe as u64, epoch);
        let (mut sum, mut secs) = (0.0f64, 0.0f64);
        for (step_no, chunk) in st.order.chunks(st.bs).take(spe).enumerate() {
            let lr = if st.schedule.per_step() { st.schedule.lr(self.lr, &at(step_no)) } else { first_lr };
            if !(lr.is_finite() && lr >= 0.0) {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(Error::Training(format!(
                    "the learning-rate schedule {} gave {lr} at epoch {epoch}, step {} of {spe}: a learning rate \
                     must be a finite value ≥ 0",
                    st.schedule.describe(),
                    step_no + 1
                )));
            }
            let t0 = Instant::now();
            job.set_step_seed(mix_seed(mix_seed(epoch_seed, 2), step_no as u64));
            let l = match job.step(train, chunk, lr) {
                Ok(l) => l,
                Err(Error::Training(what)) => {
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    let what = format!("{what} at epoch {epoch}, step {} of {spe}", step_no + 1);
                    return Err(self.diverged(what, lr, epoch - 1, st.last_path.as_deref()));
                }
                Err(e) => return Err(e),
            };
            secs += t0.elapsed().as_secs_f64();
            st.hist.train_samples += chunk.len();
            st.hist.loss.push(l);
            sum += f64::from(l);
            if let Some(bar) = &bar {
                let rate = st.hist.train_samples as f64 / (st.hist.train_seconds + secs).max(1e-9);
                bar.set_message(format!("loss {l:.4}  {rate:.0} samples/s"));
                bar.inc(1);
            }
        }
        st.hist.train_seconds += secs;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(EpochRun { lr: first_lr, mean_loss: sum / spe as f64, started })
    }

    /// After epoch `epoch`'s steps: refuses non-finite parameters, measures the training sample
    /// and the validation set, records them and the rate, and snapshots the parameters if this
    /// is the best epoch so far (highest validation accuracy, or lowest validation loss); whether
    /// it is.
    fn evaluate(&self, job: &mut dyn Trainee, val: &Dataset, st: &mut RunState, epoch: usize, lr: f32) -> Result<bool> {
        // A finite loss does not prove finite parameters (the last update may overflow): never
        // evaluate or save a broken model.
        if let Some(name) = first_non_finite(job.params()) {
            let what = format!(
                "parameter `{name}` became NaN or infinite at epoch {epoch}, in one of its {} steps (the loss \
                 stayed finite)",
                st.steps_per_epoch
            );
            return Err(self.diverged(what, lr, epoch - 1, st.last_path.as_deref()));
        }
        let h = &mut st.hist;
        h.lr.push(lr);
        let improved = match st.kind {
            TargetKind::Classes => {
                h.train_acc.push(job.evaluate(&st.train_eval)?);
                let acc = job.evaluate(val)?;
                h.val_acc.push(acc);
                let better = acc > h.best_val_acc;
                if better {
                    h.best_val_acc = acc;
                }
                better
            }
            TargetKind::Values => {
                let loss = job.evaluate(val)?;
                h.val_loss.push(loss);
                let better = loss < h.best_val_loss;
                if better {
                    h.best_val_loss = loss;
                }
                better
            }
        };
        if improved {
            h.best_epoch = epoch;
            snapshot(job.params(), &mut st.best);
        }
        Ok(improved)
    }

    /// Epoch `epoch`'s line on stderr (verbose) and row of the metrics CSV.
    fn report(&self, st: &mut RunState, epoch: usize, ep: &EpochRun) -> Result<()> {
        let (h, secs, lr, loss) = (&st.hist, ep.started.elapsed().as_secs_f64(), ep.lr, ep.mean_loss);
        let measures = match st.kind {
            TargetKind::Classes => {
                let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
                let (t, v) = (last(&h.train_acc), last(&h.val_acc));
                (format!("train acc {t:.4}  val acc {v:.4}"), format!("{t},{v}"))
            }
            TargetKind::Values => {
                let v = h.val_loss.last().copied().unwrap_or(f64::NAN);
                (format!("val loss {v:.6}"), format!("{v}"))
            }
        };
        if self.verbose {
            eprintln!("epoch {epoch:>3}/{}: loss {loss:.4}  {}  lr {lr:.3e}  ({secs:.1} s)", self.epochs, measures.0);
        }
        if let Some((p, text)) = st.metrics.as_mut() {
            text.push_str(&format!("{epoch},{loss},{},{lr},{secs}\n", measures.1));
            io::write_atomic(p, text.as_bytes())?;
        }
        Ok(())
    }

    /// After epoch `epoch`: the best parameters to [`Solver::checkpoint`] if they improved, and the
    /// resumable checkpoint.
    fn save_epoch(&self, job: &dyn Trainee, st: &RunState, epoch: usize, improved: bool) -> Result<()> {
        if let Some(p) = &self.checkpoint
            && improved
        {
            job.save(p)?;
        }
        if let Some(p) = &st.last_path {
            self.save_resume(job, &st.hist, &st.best, epoch, &st.facts, p)?;
        }
        Ok(())
    }

    /// Early stopping: whether `patience` epochs have passed since the best one, after `epoch`.
    fn should_stop(&self, hist: &History, epoch: usize) -> bool {
        self.patience.is_some_and(|p| epoch.saturating_sub(hist.best_epoch) >= p)
    }

    /// The error for a diverged run: what happened, the advice, and which checkpoints survive.
    fn diverged(&self, what: String, lr: f32, completed: usize, last: Option<&FsPath>) -> Error {
        let mut msg = format!("{what} (learning rate {}); lower the learning rate", show_lr(lr));
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
fn metrics_start(p: &FsPath, done: usize, kind: TargetKind) -> Result<String> {
    let header = match kind {
        TargetKind::Classes => "epoch,loss,train_acc,val_acc,lr,seconds\n",
        TargetKind::Values => "epoch,loss,val_loss,lr,seconds\n",
    };
    if done == 0 {
        return Ok(header.to_string());
    }
    let old = match std::fs::read_to_string(p) {
        Ok(old) => old,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(header.to_string()),
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

/// A learning rate for a message: plain between 1e-4 and 1e6, in scientific notation outside
/// (`1e30`, not thirty-one digits).
fn show_lr(lr: f32) -> String {
    if lr == 0.0 || (1e-4..1e6).contains(&lr.abs()) { format!("{lr}") } else { format!("{lr:e}") }
}
