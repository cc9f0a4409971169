//! The data-parallel training step: a rank's shard forward and backward, one all-reduce over a
//! contiguous buffer, the same update on every rank.

use super::Comm;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layer::{Layer, Module, Path};
use crate::loss::{Loss, Target, l2_penalty};
use crate::optim::Optimizer;
use crate::shape::{Dyn, Shape};
use crate::step::{TrainStep, clip_grad_norm};

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>> TrainStep<S, M> {
    /// One data-parallel step: this rank trains on `shard` (its indices into `data`, a part of a
    /// global batch of `global` examples split over `comm`'s ranks, see [`shard`](super::shard)),
    /// and every rank ends with the update of the global batch's mean loss. Returns the global
    /// batch's loss (data loss + L2 penalty), the same on every rank.
    ///
    /// The trainable gradients (scaled by `shard.len()/global`), the batch-norm running
    /// statistics (weighted the same way) and the weighted loss are packed into one buffer
    /// allocated on the first call; one [`Comm::allreduce_sum_f32`] sums it over the ranks and the
    /// sums are unpacked into the gradients and the model's statistics; then clipping and the
    /// update run as in [`TrainStep::step`]. With [`TrainStep::augment`], each rank augments its
    /// shard from its own stream ([`rank_seed`](super::rank_seed) of the step's seed). An empty shard (a batch smaller than the number of
    /// ranks) contributes zeros. Every rank must call it for every global batch.
    ///
    /// # Errors
    /// As [`TrainStep::step`]; a non-finite global loss is an error on every rank (the
    /// parameters are unchanged).
    #[allow(clippy::too_many_arguments)]
    pub fn step_shard<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        data: &Dataset,
        shard: &[usize],
        global: usize,
        lr: f32,
        comm: &dyn Comm,
    ) -> Result<f32> {
        data.check_batch::<S>(shard)?;
        data.check_targets(L::Target::KIND, M::Out::SAMPLE_NUMEL, loss.name(), "training")?;
        if shard.len() > global || global == 0 {
            return Err(Error::Training(format!(
                "a shard of {} examples is not part of a global batch of {global}",
                shard.len()
            )));
        }
        // The shard's loss, weighted; the forward and backward passes on the kernel threads.
        let rank = comm.rank();
        let weighted = self.pooled(|s| s.shard_pass(model, loss, data, shard, global, rank))?;
        let n = self.flat.len() - 1;
        self.flat[n] = weighted;
        comm.allreduce_sum_f32(&mut self.flat);
        let mut l = self.flat[n];
        if self.reg != 0.0 {
            l += l2_penalty(model, self.reg);
        }
        if !l.is_finite() {
            return Err(Error::Training(format!("the loss became {l}")));
        }
        unpack(&self.flat, &mut self.grads, model);
        if let Some(max) = self.clip {
            self.grad_norm = clip_grad_norm(&mut self.grads, max);
        }
        self.opt.step_l2(model, &self.grads, lr, self.reg);
        Ok(l)
    }

    /// Forward, loss and backward on `shard`, then its gradients and running statistics packed
    /// into `self.flat` weighted by `shard.len()/global`; the weighted loss.
    fn shard_pass<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        data: &Dataset,
        shard: &[usize],
        global: usize,
        rank: usize,
    ) -> Result<f32> {
        // Every rank advances the augmentation seed, and augments its shard from its own stream.
        let aug_seed = super::rank_seed(self.aug_seed, rank);
        self.aug_seed = crate::layer::mix_seed(self.aug_seed, 1);
        let mut values = 0;
        model.visit_params(&Path::ROOT, &mut |_, d| values += d.len());
        self.flat.resize(values + 1, 0.0);
        let b = shard.len();
        if b == 0 {
            self.flat.fill(0.0);
            return Ok(0.0);
        }
        self.load_batch(data, shard, aug_seed)?;
        let targets = L::Target::pick(&self.labels, &self.values);
        model.forward_train(&self.x, &mut self.y, &mut self.cache);
        let l = loss.loss(&self.y, targets, &mut self.dy)?;
        model.backward(&self.x, &self.y, &self.dy, &mut self.cache, None, &mut self.grads);
        let w = b as f32 / global as f32;
        pack(&mut self.flat, &self.grads, model, w);
        Ok(l * w)
    }
}

/// Copies `w·g` for every trainable gradient `g` of `grads` and `w·s` for every non-trainable
/// buffer `s` of `model` (batch norm's running statistics) into `flat`, in visit order.
fn pack<M: Module<f32>>(flat: &mut [f32], grads: &M, model: &M, w: f32) {
    let mut at = 0;
    grads.visit_params(&Path::ROOT, &mut |info, g| {
        if info.kind.trainable() {
            for (o, v) in flat[at..at + g.len()].iter_mut().zip(g) {
                *o = v * w;
            }
        }
        at += g.len();
    });
    at = 0;
    model.visit_params(&Path::ROOT, &mut |info, s| {
        if !info.kind.trainable() {
            for (o, v) in flat[at..at + s.len()].iter_mut().zip(s) {
                *o = v * w;
            }
        }
        at += s.len();
    });
}

/// The inverse of [`pack`] after the sum: the trainable gradients into `grads`, the statistics
/// into `model`.
fn unpack<M: Module<f32>>(flat: &[f32], grads: &mut M, model: &mut M) {
    let mut at = 0;
    grads.visit_params_mut(&Path::ROOT, &mut |info, g| {
        if info.kind.trainable() {
            g.copy_from_slice(&flat[at..at + g.len()]);
        }
        at += g.len();
    });
    at = 0;
    model.visit_params_mut(&Path::ROOT, &mut |info, s| {
        if !info.kind.trainable() {
            s.copy_from_slice(&flat[at..at + s.len()]);
        }
        at += s.len();
    });
}
