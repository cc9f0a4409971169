//! One training step with buffers allocated once: forward, loss, L2, backward, gradient clipping,
//! update.

use crate::data::{Augment, Dataset};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::layer::{Layer, Module, Path};
use crate::loss::{Loss, Target, l2_penalty};
use crate::optim::{AnyOptimizer, Optimizer, UpdateRule};
use crate::shape::{Dyn, Shape};
use crate::tensor::Tensor;

mod floor;
pub(crate) use floor::too_small;
mod parts;

/// The buffers of a training step (input batch, targets, output, output gradient, cache, parameter
/// gradients, optimizer state), sized on the first step and reused: a steady-state
/// [`TrainStep::step`] performs no heap allocation.
///
/// With [`TrainStep::clip_grad_norm`]`(Some(max))`, the gradients of the trainable parameters
/// are scaled by `max/(‖g‖ + 1e-6)` whenever their global L2 norm `‖g‖` (over all of them
/// together, before the L2 term `reg·W` is added) exceeds `max`: PyTorch's
/// `clip_grad_norm_`.
///
/// On two or more kernel threads ([`crate::set_num_threads`]), a step of a model whose layers all
/// treat samples on their own ([`Module::PER_SAMPLE`]) or are the crate's batch norms and dropout
/// ([`Module::IN_PARTS`]) runs in parts: each thread runs the whole forward and backward pass on
/// its share of the batch and the parts' gradients are summed in order, so the step hands work
/// over once instead of once per layer (the same result up to rounding, and the same bits from
/// run to run at one thread count; [`TrainStep::parts`]). Batch norm's statistics and sums are
/// the whole batch's (the parts meet to add them up, in sample order) and dropout's masks those of
/// a whole step. Other models' steps run whole, each kernel splitting its own work.
pub struct TrainStep<S: Shape<Batch = Dyn>, M: Layer<S, f32>> {
    pub(crate) x: Tensor<S, f32>,
    pub(crate) labels: Vec<usize>,
    pub(crate) values: Vec<f32>,
    pub(crate) y: Tensor<M::Out, f32>,
    pub(crate) dy: Tensor<M::Out, f32>,
    pub(crate) cache: M::Cache,
    pub(crate) grads: M,
    pub(crate) opt: AnyOptimizer<M, f32>,
    pub(crate) reg: f32,
    pub(crate) clip: Option<f32>,
    pub(crate) grad_norm: f32,
    /// Augmentation of each gathered batch (images only), with the seed of the next step.
    pub(crate) augment: Option<Augment>,
    pub(crate) aug_seed: u64,
    pub(crate) aug_scratch: Vec<f32>,
    /// Whether a step of this model split work over the kernel threads (then the whole step runs on
    /// a kernel thread; a model too small to split stays on the caller's thread).
    pub(crate) splits: bool,
    /// The distributed step's contiguous buffer (gradients, statistics, loss; `shaped::dist`),
    /// empty until the first [`TrainStep::step_shard`].
    pub(crate) flat: Vec<f32>,
    /// The other parts' buffers of a step split in parts (`step/parts.rs`), empty until one is.
    pub(crate) replicas: Vec<parts::Replica<S, M>>,
    /// The batch size last asked about and whether a step of it has the work to be split in parts.
    pub(crate) parts_memo: (usize, bool),
    /// How many parts the last step ran in.
    pub(crate) last_parts: usize,
    /// The model's running statistics before the step (put back when the step fails).
    pub(crate) stats: Vec<f32>,
}

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>> TrainStep<S, M> {
    /// Buffers for batches of up to `batch` examples, the update rule `rule` and L2 strength `reg`.
    pub fn new(rule: UpdateRule, reg: f32, batch: usize) -> Self {
        TrainStep {
            x: Tensor::zeros(Dyn(batch)),
            labels: Vec::with_capacity(batch),
            values: Vec::new(),
            y: Tensor::zeros(Dyn(batch)),
            dy: Tensor::zeros(Dyn(batch)),
            cache: M::Cache::default(),
            grads: M::zeros(),
            opt: AnyOptimizer::new(rule),
            reg,
            clip: None,
            grad_norm: 0.0,
            augment: None,
            aug_seed: 0,
            aug_scratch: Vec::new(),
            splits: false,
            flat: Vec::new(),
            replicas: Vec::new(),
            parts_memo: (0, false),
            last_parts: 0,
            stats: Vec::new(),
        }
    }

    /// Augments every batch that [`TrainStep::step`] gathers from a data set (random crop with
    /// padding, horizontal flip; see [`Augment`]) before the forward pass; `None` (the default)
    /// trains on the samples as they are. Batches given as tensors ([`TrainStep::step_batch`]) are
    /// not augmented. The model's input must be `C×H×W` images larger than the crop padding, or
    /// the step returns [`Error::Shape`].
    pub fn augment(mut self, augment: Option<Augment>) -> Self {
        self.augment = augment.filter(|a| *a != Augment::default());
        self
    }

    /// The seed of the next step's augmentation (each step then derives the next one from it);
    /// the solver sets it per step from its seed, the epoch and the step number, so a run (and a
    /// resumed run) is reproducible.
    pub fn set_augment_seed(&mut self, seed: u64) {
        self.aug_seed = seed;
    }

    /// Clips the gradients to this global L2 norm before every update (see the type's docs);
    /// `None` (the default) does not clip.
    pub fn clip_grad_norm(mut self, max: Option<f32>) -> Self {
        self.clip = max;
        self
    }

    /// The global L2 norm of the trainable parameters' gradients in the last step, before any
    /// clipping (computed only when clipping is on; 0 otherwise).
    pub fn grad_norm(&self) -> f32 {
        self.grad_norm
    }

    /// How many parts the last step ran in: 1 when it ran whole (its kernels splitting their own
    /// work over the kernel threads), else one per kernel thread, each thread running the whole
    /// model on its part of the batch (for models whose layers are all [`Module::IN_PARTS`],
    /// with enough work per step, at least 8 samples per part and at most 4 Mi parameters, each
    /// part keeping its own copy of them and of their gradients); 0 before the first step. A
    /// distributed step ([`TrainStep::step_shard`]) runs whole.
    pub fn parts(&self) -> usize {
        self.last_parts
    }

    /// The optimizer (for checkpoints of its state).
    pub fn optimizer(&self) -> &AnyOptimizer<M, f32> {
        &self.opt
    }

    /// The optimizer, mutably (to restore its state).
    pub fn optimizer_mut(&mut self) -> &mut AnyOptimizer<M, f32> {
        &mut self.opt
    }

    /// Trains `model` on the examples `batch` (indices into `data`) with learning rate `lr`; returns
    /// the loss (data loss + L2 penalty). A data set whose samples do not fit the model, an index
    /// past its end, an empty batch or one smaller than [`TrainStep::min_batch`], a learning rate
    /// that is not a finite value ≥ 0, a non-finite loss and a non-finite gradient are errors and
    /// leave the parameters and running statistics unchanged.
    pub fn step<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        data: &Dataset,
        batch: &[usize],
        lr: f32,
    ) -> Result<f32> {
        self.pooled(|s| s.step_here(model, loss, data, batch, lr))
    }

    /// Trains `model` on a batch already in a tensor: `x` (its batch size is the batch's) with the
    /// class or 0/1 labels `labels`, learning rate `lr`; returns the loss as [`TrainStep::step`]
    /// does. For batches prepared once (with [`Dataset::batch`]) outside the timed or hot loop: the
    /// copy of the examples out of the data set is then not part of the step. Labels that do not
    /// match the batch size or the model's classes are an error, and so are the batches and
    /// learning rates [`TrainStep::step`] refuses, a non-finite loss and
    /// a non-finite gradient (named after the first NaN or infinity among the inputs when there is
    /// one: a data set's inputs are checked when it is made, a tensor's are not); the parameters
    /// and running statistics are then unchanged. A loss on real-valued targets takes them through
    /// [`TrainStep::step_targets`] (here it finds no values and returns an error).
    pub fn step_batch<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        x: &Tensor<S, f32>,
        labels: &[usize],
        lr: f32,
    ) -> Result<f32> {
        self.pooled(|s| s.run(model, loss, Some((x, L::Target::pick(labels, &[]))), lr))
    }

    /// [`TrainStep::step_batch`] with the targets the loss takes: class labels, or one value per
    /// model output (a batch from [`Dataset::batch_values`]).
    pub fn step_targets<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        x: &Tensor<S, f32>,
        targets: &[L::Target],
        lr: f32,
    ) -> Result<f32> {
        self.pooled(|s| s.run(model, loss, Some((x, targets)), lr))
    }

    /// Runs `step` (one training step) inside [`threads::install`](crate::threads::install) once
    /// a step of this model has split work over the kernel threads, so that every kernel's split
    /// starts without a hand-over from (and back to) a parked pool; a model too small to split
    /// never wakes the workers.
    pub(crate) fn pooled(&mut self, step: impl FnOnce(&mut Self) -> Result<f32>) -> Result<f32> {
        if self.splits {
            return crate::threads::install(|| step(self));
        }
        let before = crate::threads::splits();
        let l = step(self);
        self.splits = crate::threads::splits() != before;
        l
    }

    fn step_here<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        data: &Dataset,
        batch: &[usize],
        lr: f32,
    ) -> Result<f32> {
        data.check_batch::<S>(batch)?;
        data.check_targets(L::Target::KIND, M::Out::SAMPLE_NUMEL, loss.name(), "training")?;
        self.load_batch(data, batch, self.aug_seed)?;
        if self.augment.is_some() {
            self.aug_seed = crate::layer::mix_seed(self.aug_seed, 1);
        }
        self.run(model, loss, None, lr)
    }

    /// Gathers the examples `idx` of `data` into `self.x` and their labels or values into
    /// `self.labels` / `self.values`, then augments the inputs with `aug_seed` when augmentation is
    /// on (the batch of a step here, or a rank's shard of one in `dist`).
    pub(crate) fn load_batch(&mut self, data: &Dataset, idx: &[usize], aug_seed: u64) -> Result<()> {
        let b = idx.len();
        self.x.set_batch(Dyn(b));
        if let crate::data::Targets::Values(..) = data.targets() {
            self.values.resize(b * data.target_width(), 0.0);
            data.gather_values_into(idx, self.x.as_mut_slice(), &mut self.values);
        } else {
            self.labels.resize(b, 0);
            data.gather_into(idx, self.x.as_mut_slice(), &mut self.labels);
        }
        if let Some(a) = self.augment {
            let e = S::SAMPLE;
            if e.rank() != 3 {
                return Err(Error::Shape(format!(
                    "augmentation needs C×H×W image samples, but the model's input has {} dimensions",
                    e.rank()
                )));
            }
            a.apply(self.x.as_mut_slice(), [e.dim(0), e.dim(1), e.dim(2)], aug_seed, &mut self.aug_scratch)?;
        }
        Ok(())
    }

    /// Forward, loss, backward and update on `batch` (input and labels), or on the gathered batch
    /// in `self.x` and `self.labels` when it is `None`.
    fn run<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        batch: Option<(&Tensor<S, f32>, &[L::Target])>,
        lr: f32,
    ) -> Result<f32> {
        let n = batch.map_or_else(|| self.x.batch_size(), |(x, _)| x.batch_size());
        Self::check_step(n, lr)?;
        self.save_stats(model);
        let l = self.passes_and_checks(model, loss, batch);
        match l {
            Ok(l) => {
                // The L2 gradient `reg·W` is added inside the update (one pass over the parameters).
                self.opt.step_l2(model, &self.grads, lr, self.reg);
                Ok(l)
            }
            Err(e) => {
                self.restore_stats(model);
                // A NaN or an infinity among a batch tensor's inputs is the cause to name (batch
                // norm spreads it over the batch, and a layer may map it to a finite value, so the
                // loss or the gradients fail far from it; a data set's inputs are checked when it
                // is made). Looked for only when a step fails: the scan would cost a tiny model's step
                // a tenth of its time.
                let x = batch.map(|(x, _)| x.as_slice()).unwrap_or_default();
                Err(match crate::kernels::first_non_finite(x) {
                    Some(k) => {
                        let len = S::SAMPLE.numel().max(1);
                        Error::Shape(format!(
                            "input value {} of sample {} is {}: a training batch's inputs must be finite ({e})",
                            k % len,
                            k / len,
                            x[k]
                        ))
                    }
                    None => e,
                })
            }
        }
    }

    /// The smallest batch this model trains on, and the layer that sets it when that is more than
    /// 1: batch norm with one value per channel and sample (`BatchNorm1d`, or `BatchNorm2d` on 1×1
    /// maps) needs 2 samples, as in PyTorch (at batch size 1 it outputs zeros and drives its
    /// running variance to 0). [`Solver`](crate::solver::Solver) refuses a smaller batch size and
    /// leaves out an epoch's last batch when it is smaller.
    pub fn min_batch() -> (usize, Option<String>) {
        floor::min_train_batch(&M::RULE, S::SAMPLE)
    }

    /// Refuses what no step trains on: a learning rate that is not a finite value ≥ 0, an empty
    /// batch, a batch smaller than the model's [`TrainStep::min_batch`].
    fn check_step(n: usize, lr: f32) -> Result<()> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::Training(format!("the learning rate is {lr:e}: it must be a finite value ≥ 0")));
        }
        if n == 0 {
            return Err(Error::Shape("an empty batch: a training step needs at least one sample".into()));
        }
        if n < 2 {
            // (Only here: the rule's walk allocates, and steps allocate nothing.)
            if let (min, Some(layer)) = Self::min_batch()
                && n < min
            {
                return Err(Error::Shape(format!("a batch of {n} sample is {}", floor::too_small(&layer, min))));
            }
        }
        Ok(())
    }

    /// Forward, loss, backward (whole or in parts), the L2 penalty, the checks that the loss and
    /// the gradients are finite, and clipping: everything of a step before its update.
    fn passes_and_checks<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        batch: Option<(&Tensor<S, f32>, &[L::Target])>,
    ) -> Result<f32> {
        let x_own = core::mem::take(&mut self.x);
        let (labels, values) = (core::mem::take(&mut self.labels), core::mem::take(&mut self.values));
        let (x, targets) = batch.unwrap_or((&x_own, L::Target::pick(&labels, &values)));
        let n = x.batch_size();
        let parts = if targets.len() % n.max(1) == 0 { self.parts_for(model, n) } else { 1 };
        let in_parts = if parts > 1 { self.passes_in_parts(model, loss, x, targets, parts) } else { None };
        self.last_parts = if in_parts.is_some() { parts } else { 1 };
        let passes = in_parts.unwrap_or_else(|| self.passes(model, loss, x, targets));
        (self.x, self.labels, self.values) = (x_own, labels, values);
        let mut l = passes?;
        if self.reg != 0.0 {
            l += l2_penalty(model, self.reg);
        }
        if !l.is_finite() {
            return Err(Error::Training(format!("the loss became {l}")));
        }
        let mut bad = None;
        self.grads.visit_params(&Path::ROOT, &mut |info, g| {
            if bad.is_none()
                && info.kind.trainable()
                && let Some(k) = crate::kernels::first_non_finite(g)
            {
                bad = Some(format!("the gradient of `{}` became {} at index {k}", info.path, g[k]));
            }
        });
        if let Some(msg) = bad {
            return Err(Error::Training(msg));
        }
        if let Some(max) = self.clip {
            self.grad_norm = clip_grad_norm(&mut self.grads, max);
        }
        Ok(l)
    }

    /// Keeps a copy of `model`'s running statistics (batch norm's), put back by
    /// [`TrainStep::restore_stats`] when the step fails (its forward pass has updated them).
    fn save_stats(&mut self, model: &M) {
        self.stats.clear();
        model.visit_params(&Path::ROOT, &mut |info, v| {
            if !info.kind.trainable() {
                self.stats.extend_from_slice(v);
            }
        });
    }

    /// Puts back the running statistics [`TrainStep::save_stats`] kept.
    fn restore_stats(&mut self, model: &mut M) {
        let mut at = 0;
        model.visit_params_mut(&Path::ROOT, &mut |info, v| {
            if !info.kind.trainable() {
                v.copy_from_slice(&self.stats[at..at + v.len()]);
                at += v.len();
            }
        });
    }

    /// Forward, loss and backward of the whole batch `x` (the kernels splitting their own work over
    /// the kernel threads); returns the data loss. A non-finite loss skips the backward pass.
    fn passes<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        x: &Tensor<S, f32>,
        targets: &[L::Target],
    ) -> Result<f32> {
        model.forward_train(x, &mut self.y, &mut self.cache);
        let l = loss.loss(&self.y, targets, &mut self.dy)?;
        if l.is_finite() {
            model.backward(x, &self.y, &self.dy, &mut self.cache, None, &mut self.grads);
        }
        Ok(l)
    }
}

/// Scales the trainable gradients in `grads` by `max/(‖g‖ + 1e-6)` if their global L2 norm `‖g‖`
/// exceeds `max`; returns `‖g‖`. Allocation-free (two passes over the gradients).
pub(crate) fn clip_grad_norm<M: Module<f32>>(grads: &mut M, max: f32) -> f32 {
    let mut sq = 0.0f64;
    grads.visit_params(&Path::ROOT, &mut |info, g| {
        if info.kind.trainable() {
            sq += f64::from(f32::k_sum_squares(g));
        }
    });
    let norm = sq.sqrt();
    if norm > f64::from(max) {
        let scale = (f64::from(max) / (norm + 1e-6)) as f32;
        grads.visit_params_mut(&Path::ROOT, &mut |info, g| {
            if info.kind.trainable() {
                for v in g {
                    *v *= scale;
                }
            }
        });
    }
    norm as f32
}
