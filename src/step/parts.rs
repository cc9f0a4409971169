//! A training step in parts: for a model whose training passes treat every sample on its own
//! ([`Module::PER_SAMPLE`](crate::layer::Module::PER_SAMPLE)), or meet the other parts where they
//! need the whole batch ([`Module::IN_PARTS`](crate::layer::Module::IN_PARTS): batch norm,
//! dropout), each kernel thread runs the whole forward pass, loss and backward pass on its own
//! part of the batch, and the parts' parameter gradients are summed in a fixed order.
//!
//! Parts that meet run at once (`threads::group`): between the loss and the backward pass they
//! agree on whether every part's loss was finite, so that all of them run the backward pass (and
//! its meetings) or none does.
//!
//! A step split layer by layer hands work to the other threads (and waits for them) once per
//! layer, and each layer's parameters, gradients and activations travel between the cores' caches;
//! for a small model such as the spec's 4a those hand-overs were a third of a two-thread step. Split
//! by parts, a step hands over once, each thread reads only its own samples' activations, and what
//! crosses cores is one copy of the parameters and of the gradients.

use super::TrainStep;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::layer::{Act, Layer, Path};
use crate::loss::Loss;
use crate::shape::{Dyn, Shape};
use crate::tensor::Tensor;

/// Below this many floating-point operations a step (forward and backward, counted by
/// [`crate::flops::rule_flops`]) does not pay for a hand-over to the other threads: about 10 µs
/// of work on one core.
const MIN_STEP_FLOPS: u64 = 1_000_000;

/// Samples a part gets at least (fewer would run the kernels on slivers of a batch).
const MIN_PART_SAMPLES: usize = 8;

/// Parameters (and buffers) a model has at most to be split in parts: each further part keeps a
/// copy of them and of their gradients (32 MiB per part at this size); a larger model's layers
/// have the work to split on their own.
const MAX_PART_PARAMS: usize = 4 << 20;

/// A part's own copy of what a step keeps: the parameters (copied from the model before each
/// step), the output and its gradient, the cache and the parameter gradients.
pub(crate) struct Replica<S: Shape<Batch = Dyn>, M: Layer<S, f32>> {
    model: M,
    y: Tensor<M::Out, f32>,
    dy: Tensor<M::Out, f32>,
    cache: M::Cache,
    grads: M,
    /// The part's loss, weighted by its share of the batch.
    loss: Result<f32>,
}

/// What one part of a split step works with: its samples `lo..lo + n`, the model (the trained one
/// for the last part, a replica's copy for the others) and its buffers.
struct Part<'a, S: Shape<Batch = Dyn>, M: Layer<S, f32>> {
    lo: usize,
    n: usize,
    model: &'a mut M,
    y: &'a mut Tensor<M::Out, f32>,
    dy: &'a mut Tensor<M::Out, f32>,
    cache: &'a mut M::Cache,
    grads: &'a mut M,
    loss: &'a mut Result<f32>,
}

impl<S: Shape<Batch = Dyn>, M: Layer<S, f32>> TrainStep<S, M> {
    /// How many parts a step of `model` on `n` samples runs in: the kernel threads when the model
    /// may run in parts ([`Module::IN_PARTS`](crate::layer::Module::IN_PARTS)), each part has
    /// [`MIN_PART_SAMPLES`], the step enough work and the model at most [`MAX_PART_PARAMS`];
    /// else 1 (the step runs whole, its kernels splitting their own work).
    pub(crate) fn parts_for(&mut self, model: &M, n: usize) -> usize {
        if !M::IN_PARTS || crate::threads::in_part() {
            return 1;
        }
        let t = crate::threads::num_threads().min(n / MIN_PART_SAMPLES);
        if t <= 1 {
            return 1;
        }
        if self.parts_memo.0 != n {
            let f = crate::flops::rule_flops(&M::RULE, S::SAMPLE, n);
            let mut params = 0;
            model.visit_params(&Path::ROOT, &mut |_, v| params += v.len());
            self.parts_memo = (n, f.total() >= MIN_STEP_FLOPS && params <= MAX_PART_PARAMS);
        }
        if self.parts_memo.1 { t } else { 1 }
    }

    /// Forward, loss and backward of `x` (with `targets`) in `parts` parts, one per kernel thread,
    /// into `self.grads` (the last part's gradients, then the others' added in part order);
    /// returns the batch's data loss (the parts' losses weighted by their shares of the batch,
    /// which is the mean over the batch for a loss that is a mean over samples, as [`Loss`]
    /// requires). A loss that refuses a part's targets is asked again on the whole batch's
    /// targets (with zero outputs), so that its message names the batch's positions. `None`,
    /// having run nothing, when the parts of a model that is not per-sample cannot run at once
    /// (`threads::group::run_together`): the step then runs whole.
    pub(crate) fn passes_in_parts<L: Loss<M::Out, f32>>(
        &mut self,
        model: &mut M,
        loss: &L,
        x: &Tensor<S, f32>,
        targets: &[L::Target],
        parts: usize,
    ) -> Option<Result<f32>> {
        let n = x.batch_size();
        let per = targets.len() / n.max(1);
        while self.replicas.len() + 1 < parts {
            self.replicas.push(Replica {
                model: M::zeros(),
                y: Tensor::zeros(Dyn(0)),
                dy: Tensor::zeros(Dyn(0)),
                cache: M::Cache::default(),
                grads: M::zeros(),
                loss: Ok(0.0),
            });
        }
        let replicas = &mut self.replicas[..parts - 1];
        for r in replicas.iter_mut() {
            r.model.zip_params_mut(model, &Path::ROOT, &mut |_, w, v| w.copy_from_slice(v));
        }
        // Part `i` has samples `i·n/parts ..`; the last part is the model's own (see below).
        let bounds = |i: usize| (i * n / parts, (i + 1) * n / parts - i * n / parts);
        let mut own = Ok(0.0);
        let (lo, m) = bounds(parts - 1);
        let head = Part {
            lo,
            n: m,
            model,
            y: &mut self.y,
            dy: &mut self.dy,
            cache: &mut self.cache,
            grads: &mut self.grads,
            loss: &mut own,
        };
        let rest = replicas.iter_mut().enumerate().map(|(i, r)| {
            let (lo, n) = bounds(i);
            Part {
                lo,
                n,
                model: &mut r.model,
                y: &mut r.y,
                dy: &mut r.dy,
                cache: &mut r.cache,
                grads: &mut r.grads,
                loss: &mut r.loss,
            }
        });
        let (xs, len) = (x.as_slice(), S::SAMPLE.numel());
        // The model's own part (its parameters, the step's own gradients) is the last payload,
        // which `run_parts` runs on this thread: the thread that then sums the gradients and
        // updates the parameters has them in its own cache (the other way round, each update wrote
        // lines the other core held: on one host state that made RMSprop's update of 3b five
        // times slower). It takes the last samples, as the last part of every kernel split
        // (the batch gather's included) does, so each thread reads the rows it gathered.
        let payloads = rest.chain(core::iter::once(head));
        let run = |p: Part<'_, S, M>| {
            let xa = Act::new(&xs[p.lo * len..][..p.n * len], p.n, S::SAMPLE);
            p.y.set_batch(Dyn(p.n));
            p.model.forward_train_raw(xa, p.y.as_mut_slice(), p.cache);
            *p.loss = loss.loss(p.y, &targets[p.lo * per..][..p.n * per], p.dy).map(|l| {
                let share = p.n as f32 / n as f32;
                p.dy.as_mut_slice().iter_mut().for_each(|g| *g *= share);
                l * share
            });
            let mut go = matches!(p.loss, Ok(l) if l.is_finite());
            if let Some(me) = crate::threads::group::member() {
                go = me.all(go);
            }
            if go {
                p.model.backward_raw(xa, p.y.as_slice(), p.dy.as_slice(), p.cache, None, p.grads);
            }
        };
        if M::PER_SAMPLE {
            crate::threads::run_parts(payloads, run);
        } else {
            let spans: [(usize, usize); crate::threads::MAX_THREADS] = core::array::from_fn(bounds);
            if !crate::threads::group::run_together(n, &spans[..parts], payloads, run) {
                return None;
            }
        }
        let mut l = match own {
            Ok(l) => l,
            Err(e) => return Some(Err(self.whole_batch_error(loss, targets, n).unwrap_or(e))),
        };
        for r in self.replicas[..parts - 1].iter_mut() {
            match core::mem::replace(&mut r.loss, Ok(0.0)) {
                Ok(v) => l += v,
                Err(e) => return Some(Err(self.whole_batch_error(loss, targets, n).unwrap_or(e))),
            }
            self.grads.zip_params_mut(&r.grads, &Path::ROOT, &mut |_, g, h| f32::k_add_assign(g, h));
        }
        Some(Ok(l))
    }

    /// The error `loss` gives for the whole batch's `targets` (`n` samples), with zero outputs:
    /// a part's refusal, named with the batch's positions (an error path: it allocates).
    fn whole_batch_error<L: Loss<M::Out, f32>>(&self, loss: &L, targets: &[L::Target], n: usize) -> Option<Error> {
        let (y, mut dy) = (Tensor::<M::Out, f32>::zeros(Dyn(n)), Tensor::<M::Out, f32>::zeros(Dyn(n)));
        loss.loss(&y, targets, &mut dy).err()
    }
}
