//! The solver's distributed mode ([`Solver::train_distributed`]): the epoch loop of
//! [`Solver::train`] driven through a [`Trainee`] that trains on this rank's shard of every batch,
//! evaluates on shards and reduces, and compares the ranks' parameters once per epoch.

use super::resume::{count_values, restore, snapshot};
use super::run::{Job, Trainee};
use super::{History, Solver, accuracy_as, mean_loss_as};
use crate::data::Dataset;
use crate::dist::{self, Comm};
use crate::error::{Error, Result};
use crate::io::{Checkpoint, ExtraTensor};
use crate::layer::{Layer, ParamTree};
use crate::loss::{Loss, Target, TargetKind};
use crate::model::{Model, OutputOf};
use crate::optim::{AnyOptimizer, OptimConfig, UpdateRule};
use crate::shape::{Dyn, Shape};
use crate::step::TrainStep;
use std::cell::{Cell, RefCell};
use std::path::Path as FsPath;

impl Solver {
    /// [`Solver::train`] as one rank of a data-parallel job over `comm` (see [`crate::dist`]):
    /// every rank calls it with the same model type, settings and data; each global batch of
    /// [`Solver::batch_size`] is split over the ranks, whose summed gradients drive the same
    /// update everywhere. With one rank it is [`Solver::train`].
    ///
    /// * **Start-up.** The data are checked against the model on every rank and the outputs on
    ///   rank 0; then the ranks compare the model type, parameter count, loss, every
    ///   hyper-parameter, the [tags](Solver::tag) and the data digests, and refuse to start if
    ///   any differ (naming the ranks). Rank 0's initial parameters are broadcast to all ranks.
    ///   The run is tagged `ranks = N`: a resumable checkpoint continues with the same number of
    ///   ranks (another number gives another summation order, not the same run).
    /// * **Outputs.** Only rank 0 writes checkpoints and the metrics CSV and prints progress;
    ///   every rank reads [`Solver::resume_from`]'s checkpoint.
    /// * **Measures.** Accuracy and validation loss are computed on each rank's contiguous shard
    ///   of the data set and summed; every rank gets the whole set's value. The history's losses
    ///   are the global batches' losses; its samples per second count global samples.
    /// * **In step.** After each epoch a checksum of the parameters is compared across ranks.
    ///
    /// * **Augmentation** ([`Solver::augment`]) draws each rank's crops and flips from its own
    ///   stream, like dropout.
    ///
    /// # Errors
    /// Those of [`Solver::train`], on the rank where they happen, plus [`Error::Training`] when
    /// the ranks disagree at start-up or drift apart. An error on one rank is returned on every
    /// rank: its own error where it happened, and on the others an error naming the ranks that
    /// failed (start-up checks, reading the resume checkpoint, and rank 0's metrics and checkpoint
    /// writes are each followed by a collective check), so no rank is left waiting.
    pub fn train_distributed<M, L>(
        &self,
        comm: &dyn Comm,
        model: &mut M,
        loss: &L,
        train: &Dataset,
        val: &Dataset,
    ) -> Result<History>
    where
        M: Model<f32>,
        L: Loss<OutputOf<M>, f32>,
    {
        self.train_distributed_as::<M::Input, M, L>(comm, model, loss, train, val)
    }

    /// [`Solver::train_distributed`] with the input shape `S` written out (as
    /// [`Solver::train_as`]).
    ///
    /// # Errors
    /// As [`Solver::train_distributed`].
    pub fn train_distributed_as<S, M, L>(
        &self,
        comm: &dyn Comm,
        model: &mut M,
        loss: &L,
        train: &Dataset,
        val: &Dataset,
    ) -> Result<History>
    where
        S: Shape<Batch = Dyn>,
        M: Layer<S, f32>,
        L: Loss<M::Out, f32>,
    {
        if comm.size() == 1 {
            return self.train_as::<S, M, L>(model, loss, train, val);
        }
        let rank = comm.rank();
        let checked = (|| {
            train.check_input::<S>("training")?;
            val.check_input::<S>("validation")?;
            let (kind, outputs) = (<L::Target as Target>::KIND, <M::Out as Shape>::SAMPLE_NUMEL);
            train.check_targets(kind, outputs, loss.name(), "training")?;
            val.check_targets(kind, outputs, loss.name(), "validation")?;
            if let Some(a) = &self.augment {
                a.check_dims(S::SAMPLE.dims())?;
            }
            if rank == 0 { self.check_outputs() } else { Ok(()) }
        })();
        all_ok(comm, checked)?;
        let mut me = self.clone().tag("ranks", comm.size().to_string());
        if rank != 0 {
            (me.checkpoint, me.last_checkpoint, me.metrics, me.verbose) = (None, None, None, false);
        }
        let mut facts: Vec<(String, String)> =
            me.run_facts(train, val).into_iter().map(|f| (f.what, f.value)).collect();
        facts.extend([
            ("model".to_string(), M::type_name()),
            ("number of parameter values".to_string(), count_values(&*model).to_string()),
            ("loss".to_string(), loss.name().to_string()),
            ("number of epochs".to_string(), self.epochs.to_string()),
            ("early stopping".to_string(), format!("{:?}", self.patience)),
        ]);
        dist::check_agreement(comm, &facts)?;
        let mut params = Vec::new();
        snapshot(&*model, &mut params);
        comm.broadcast_f32(&mut params);
        restore(model, &params);
        let bs = self.batch_size.min(train.len());
        let mut step = TrainStep::new(self.rule, self.reg, bs).clip_grad_norm(self.clip).augment(self.augment);
        *step.optimizer_mut() = AnyOptimizer::with_config(self.rule, &self.optim);
        let job = Job::<S, M, L> { model, loss, step, staged: None };
        let mut dj =
            DistJob { job, comm, shards: RefCell::new(Vec::new()), epoch: Cell::new(0), checked: Cell::new(0) };
        me.run(&mut dj, train, val)
    }
}

/// Every rank's `local` result of the same step (a start-up check, reading the resume
/// checkpoint, rank 0's writes): `Ok` when all succeeded; otherwise this rank's own error, or an
/// error naming the ranks that failed.
fn all_ok(comm: &dyn Comm, local: Result<()>) -> Result<()> {
    let mut all = vec![0u64; comm.size()];
    comm.all_gather_u64(&[u64::from(local.is_err())], &mut all);
    local?;
    let failed: Vec<String> = all.iter().enumerate().filter(|(_, f)| **f != 0).map(|(r, _)| r.to_string()).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Training(format!(
            "distributed run stopped: rank(s) {} failed (see their messages), so every rank stops here",
            failed.join(", ")
        )))
    }
}

/// One rank's [`Job`]: trains on its shard of every batch, evaluates on shards and sums.
struct DistJob<'a, S: Shape<Batch = Dyn>, M: Layer<S, f32>, L> {
    job: Job<'a, S, M, L>,
    comm: &'a dyn Comm,
    /// This rank's shard of each data set evaluated so far, keyed by its features' address and
    /// its length (the training sample and the validation set: built once per run).
    shards: RefCell<Vec<((usize, usize), Dataset)>>,
    /// Epochs begun (counted by [`Trainee::reseed`]) and the last one whose parameters were
    /// compared across ranks.
    epoch: Cell<usize>,
    checked: Cell<usize>,
}

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>, L: Loss<M::Out, f32>> DistJob<'_, S, M, L> {
    /// This rank's contiguous shard of `data`, cached.
    fn with_shard<R>(&self, data: &Dataset, f: impl FnOnce(&Dataset) -> R) -> R {
        let key = (data.features().as_ptr() as usize, data.len());
        let mut shards = self.shards.borrow_mut();
        let i = match shards.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let idx: Vec<usize> = dist::shard(data.len(), self.comm.rank(), self.comm.size()).collect();
                shards.push((key, data.subset(&idx)));
                shards.len() - 1
            }
        };
        f(&shards[i].1)
    }
}

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>, L: Loss<M::Out, f32>> Trainee for DistJob<'_, S, M, L> {
    fn step(&mut self, data: &Dataset, idx: &[usize], lr: f32) -> Result<f32> {
        let mine = &idx[dist::shard(idx.len(), self.comm.rank(), self.comm.size())];
        let job = &mut self.job;
        job.step.step_shard(job.model, job.loss, data, mine, idx.len(), lr, self.comm)
    }
    fn set_step_seed(&mut self, seed: u64) {
        self.job.set_step_seed(seed);
    }
    fn min_batch(&self) -> (usize, Option<String>) {
        self.job.min_batch()
    }
    fn kind(&self) -> TargetKind {
        self.job.kind()
    }
    fn evaluate(&self, data: &Dataset) -> Result<f64> {
        let epoch = self.epoch.get();
        if self.checked.get() != epoch {
            self.checked.set(epoch);
            dist::check_in_step(self.comm, self.job.params(), &format!("{epoch} epoch(s) of this run"))?;
        }
        let (model, loss) = (&*self.job.model, self.job.loss);
        // The shard's sum (correct predictions, or loss × examples) and its size, summed over ranks.
        let mut sums = self.with_shard(data, |shard| -> Result<[f64; 2]> {
            let n = shard.len() as f64;
            if shard.is_empty() {
                return Ok([0.0, 0.0]);
            }
            let v = match self.kind() {
                TargetKind::Classes => accuracy_as::<S, M, L>(model, loss, shard, 1000)?,
                TargetKind::Values => mean_loss_as::<S, M, L>(model, loss, shard, 1000)?,
            };
            Ok([v * n, n])
        })?;
        self.comm.allreduce_sum_f64(&mut sums);
        Ok(if sums[1] > 0.0 { sums[0] / sums[1] } else { 0.0 })
    }
    fn reseed(&mut self, seed: u64) {
        self.epoch.set(self.epoch.get() + 1);
        self.job.reseed(dist::rank_seed(seed, self.comm.rank()));
    }
    fn params(&self) -> &dyn ParamTree<f32> {
        self.job.params()
    }
    fn params_mut(&mut self) -> &mut dyn ParamTree<f32> {
        self.job.params_mut()
    }
    fn save(&self, path: &FsPath) -> Result<()> {
        self.job.save(path)
    }
    fn save_checkpoint(&self, extra: &[ExtraTensor<f32>], meta: &[(String, String)], path: &FsPath) -> Result<()> {
        self.job.save_checkpoint(extra, meta, path)
    }
    fn stage_checkpoint(&mut self, rule: UpdateRule, config: &OptimConfig, path: &FsPath) -> Result<Checkpoint<f32>> {
        self.job.stage_checkpoint(rule, config, path)
    }
    fn staged(&self) -> Option<&dyn ParamTree<f32>> {
        self.job.staged()
    }
    fn commit_staged(&mut self) {
        self.job.commit_staged()
    }
    fn agree(&self, failed: bool) -> Result<()> {
        // This rank's own error, if any, is what `settle` returns; the placeholder is not shown.
        all_ok(self.comm, if failed { Err(Error::Training(String::new())) } else { Ok(()) })
    }
}
