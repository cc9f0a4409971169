//! Mini-batch training: epochs, learning-rate decay, accuracy after each epoch, loss history,
//! best-by-validation restore, progress and metrics.

use crate::data::{Dataset, shuffle_order};
use crate::error::{Error, Result};
use crate::layer::{Layer, Module, Path};
use crate::loss::{Loss, add_l2_grad, l2_penalty};
use crate::optim::{AnyOptimizer, Optimizer, UpdateRule};
use crate::shape::{Dyn, Shape};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::Write;
use std::path::PathBuf;
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
    metrics: Option<PathBuf>,
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
            metrics: None,
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
    /// Saves the best parameters (by validation accuracy) to this safetensors file as training goes.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }
    /// Writes per-epoch metrics (epoch, mean loss, train/val accuracy, lr, seconds) to this CSV file.
    pub fn metrics_csv(mut self, path: impl Into<PathBuf>) -> Self {
        self.metrics = Some(path.into());
        self
    }

    /// Trains `model` on `train` with `loss`, measuring accuracy on `val` after each epoch, and
    /// restores the parameters of the best epoch at the end.
    ///
    /// `S` is the model's input shape with a runtime batch, e.g. `(Dyn, Const<1>, Const<28>,
    /// Const<28>)`; the data's samples must have `S::SAMPLE_NUMEL` features. Errors: data that does
    /// not fit the model, labels the loss rejects, a non-finite loss (training diverged), I/O.
    pub fn train<S, M, L>(&self, model: &mut M, loss: &L, train: &Dataset, val: &Dataset) -> Result<History>
    where
        S: Shape<Batch = Dyn>,
        M: Layer<S, f32>,
        L: Loss<M::Out, f32>,
    {
        check_fits::<S>(train, "training")?;
        check_fits::<S>(val, "validation")?;
        if train.is_empty() {
            return Err(Error::Training("the training set is empty".into()));
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        model.reseed(self.seed);
        let mut opt = AnyOptimizer::<f32>::new(self.rule);
        let bs = self.batch_size.min(train.len());
        let mut x = Tensor::<S, f32>::zeros(Dyn(bs));
        let mut labels = vec![0usize; bs];
        let mut y = Tensor::<M::Out, f32>::zeros(Dyn(bs));
        let mut dy = Tensor::<M::Out, f32>::zeros(Dyn(bs));
        let mut cache = M::Cache::default();
        let mut grads = M::zeros();
        let mut order = Vec::with_capacity(train.len());
        let mut best: Vec<f32> = Vec::new();
        let mut hist = History { best_val_acc: -1.0, ..History::default() };
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
            Some(p) => {
                let mut f = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
                writeln!(f, "epoch,loss,train_acc,val_acc,lr,seconds").map_err(|e| Error::io(p, e))?;
                Some((p.clone(), f))
            }
            None => None,
        };
        let steps_per_epoch = train.len().div_ceil(bs);
        let mut lr = self.lr;
        let reg = self.reg;
        for epoch in 1..=self.epochs {
            let t_epoch = Instant::now();
            shuffle_order(&mut order, train.len(), &mut rng);
            let bar = self.progress_bar(steps_per_epoch as u64, epoch);
            let mut epoch_loss = 0.0f64;
            let mut epoch_train_secs = 0.0f64;
            for (step, chunk) in order.chunks(bs).enumerate() {
                let t0 = Instant::now();
                let b = chunk.len();
                x.set_batch(Dyn(b));
                labels.resize(b, 0);
                train.gather_into(chunk, x.as_mut_slice(), &mut labels);
                model.forward_train(&x, &mut y, &mut cache);
                let mut l = loss.loss(&y, &labels, &mut dy)?;
                if reg != 0.0 {
                    l += l2_penalty(model, reg);
                }
                if !l.is_finite() {
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    return Err(Error::Training(format!(
                        "the loss became {l} at epoch {epoch}, step {} (learning rate {lr}); lower the learning rate{}",
                        step + 1,
                        match &self.checkpoint {
                            Some(p) => format!("; the best checkpoint so far is still in {}", p.display()),
                            None => String::new(),
                        }
                    )));
                }
                model.backward(&x, &y, &dy, &mut cache, None, &mut grads);
                if reg != 0.0 {
                    add_l2_grad(model, &mut grads, reg);
                }
                opt.step(model, &grads, lr);
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
                    crate::io::save(model, p)?;
                }
            }
            if self.verbose {
                eprintln!(
                    "epoch {epoch:>3}/{}: loss {mean_loss:.4}  train acc {train_acc:.4}  val acc {val_acc:.4}  lr {lr:.3e}  ({:.1} s)",
                    self.epochs,
                    t_epoch.elapsed().as_secs_f64()
                );
            }
            if let Some((p, f)) = metrics.as_mut() {
                writeln!(f, "{epoch},{mean_loss},{train_acc},{val_acc},{lr},{}", t_epoch.elapsed().as_secs_f64())
                    .map_err(|e| Error::io(&*p, e))?;
            }
            lr *= self.lr_decay;
        }
        if !best.is_empty() {
            restore(model, &best);
        }
        Ok(hist)
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

fn check_fits<S: Shape>(data: &Dataset, what: &str) -> Result<()> {
    if data.sample_len() != S::SAMPLE_NUMEL {
        return Err(Error::Shape(format!(
            "the {what} data has samples of {} values ({:?}), but the model takes {} per sample",
            data.sample_len(),
            data.sample_dims(),
            S::SAMPLE_NUMEL
        )));
    }
    Ok(())
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
    check_fits::<S>(data, "prediction")?;
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
