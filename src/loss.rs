//! Losses, all averaged: on class labels (logistic, binary hinge, softmax cross-entropy; over the
//! batch) and on real-valued targets (MSE, L1, Huber, multi-label binary cross-entropy on logits;
//! over the batch's elements, PyTorch's `reduction = "mean"`, which for one output per sample is
//! the mean over the batch); L2 regularisation on weights.
//!
//! A loss states what it compares the model's outputs with through [`Loss::Target`]: `usize` class
//! labels, or real values (the element type), one per model output. Passing class labels to a
//! regression loss is a type error; whether a [`Dataset`](crate::data::Dataset) holds the kind of
//! targets a loss needs, with one value per model output, is checked before training
//! ([`crate::data::Dataset::check_targets`]).

use crate::error::{Error, Result};
use crate::kernels::Elem;
use crate::layer::{Module, Path};
use crate::shape::{Const, ConstDim, Dim, OnePerSample, Shape};
use crate::tensor::Tensor;

fn check_batch(n: usize, labels: &[usize]) -> Result<()> {
    if labels.len() != n {
        return Err(Error::Shape(format!("{} labels for a batch of {n} scores", labels.len())));
    }
    Ok(())
}

fn check_binary(labels: &[usize]) -> Result<()> {
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l > 1) {
        return Err(Error::Label(format!("label {l} at position {i} is not a binary label (0 or 1)")));
    }
    Ok(())
}

/// Logistic loss on logits: `mean(log(1 + e^s) − y·s)` with labels `y ∈ {0, 1}` (the sigmoid is
/// inside); writes `dL/ds = (σ(s) − y)/N` into `dscores`. ≈ 0.693 at zero scores.
pub fn logistic_loss<S: OnePerSample, E: Elem>(
    scores: &Tensor<S, E>,
    labels: &[usize],
    dscores: &mut Tensor<S, E>,
) -> Result<E> {
    check_batch(scores.batch_size(), labels)?;
    check_binary(labels)?;
    dscores.set_batch(scores.batch());
    let n = E::lit(scores.batch_size().max(1) as f64);
    let mut total = E::zero();
    E::k_logistic_rows(scores.as_slice(), labels, dscores.as_mut_slice(), n, &mut total);
    Ok(total / n)
}

/// Binary hinge (SVM) loss: labels `{0, 1}` map to `y ∈ {−1, +1}`; `mean(max(0, 1 − y·s))`; writes
/// `dL/ds = −y/N` where the margin is violated. ≈ 1.0 at zero scores.
pub fn hinge_loss<S: OnePerSample, E: Elem>(
    scores: &Tensor<S, E>,
    labels: &[usize],
    dscores: &mut Tensor<S, E>,
) -> Result<E> {
    check_batch(scores.batch_size(), labels)?;
    check_binary(labels)?;
    dscores.set_batch(scores.batch());
    let n = E::lit(scores.batch_size().max(1) as f64);
    let mut total = E::zero();
    for ((d, &s), &l) in dscores.as_mut_slice().iter_mut().zip(scores.as_slice()).zip(labels) {
        let y = if l == 1 { E::one() } else { -E::one() };
        let margin = E::one() - y * s;
        if margin > E::zero() {
            total += margin;
            *d = -y / n;
        } else {
            *d = E::zero();
        }
    }
    Ok(total / n)
}

/// Softmax cross-entropy over `C` classes: `mean(−log softmax(s)[y])`; writes
/// `dL/ds = (softmax(s) − onehot(y))/N`. ≈ ln C at zero scores. A label `≥ C` is an error.
pub fn softmax_loss<B: Dim, const C: usize, E: Elem>(
    scores: &Tensor<(B, Const<C>), E>,
    labels: &[usize],
    dscores: &mut Tensor<(B, Const<C>), E>,
) -> Result<E> {
    dscores.set_batch(scores.batch());
    E::k_softmax_rows(scores.as_slice(), C, labels, dscores.as_mut_slice())
}

/// Softmax cross-entropy over the rows (of `c` scores each) of `scores`; the kernel behind
/// [`softmax_loss`] and [`SoftmaxCrossEntropy`].
pub(crate) fn softmax_rows<E: Elem>(scores: &[E], c: usize, labels: &[usize], dscores: &mut [E]) -> Result<E> {
    let batch = scores.len() / c.max(1);
    check_batch(batch, labels)?;
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= c) {
        return Err(Error::Label(format!("label {l} at position {i} is not a class index below {c}")));
    }
    let n = E::lit(batch.max(1) as f64);
    let mut total = E::zero();
    for ((row, drow), &l) in scores.chunks_exact(c).zip(dscores.chunks_exact_mut(c)).zip(labels) {
        let m = row.iter().copied().fold(E::neg_infinity(), E::max);
        let mut z = E::zero();
        for (d, &s) in drow.iter_mut().zip(row) {
            *d = (s - m).exp();
            z += *d;
        }
        total += z.ln() - (row[l] - m);
        for d in drow.iter_mut() {
            *d = *d / z / n;
        }
        drow[l] = drow[l] - E::one() / n;
    }
    Ok(total / n)
}

/// The number of classes a softmax loss expects (`Expected`) equals the model's output width.
#[diagnostic::on_unimplemented(
    message = "the loss expects {Expected} class scores, but the model produces {Self}",
    label = "expects {Expected} class scores, gets {Self}",
    note = "the model's last layer must output one score per class"
)]
pub trait ClassesMatch<Expected> {}
impl<const N: usize> ClassesMatch<Const<N>> for Const<N> {}

/// What a loss compares the model's outputs with: class labels (`usize`) or real values (`f32`,
/// `f64`: one per model output). Sealed.
pub trait Target: Copy + Default + Send + Sync + core::fmt::Debug + 'static + target_sealed::Sealed {
    /// Which kind of targets this is.
    const KIND: TargetKind;
    /// The targets of a gathered batch: `labels` for class labels, `values` for `f32` values (the
    /// training pipeline's; empty for `f64`, which only direct calls use).
    #[doc(hidden)]
    fn pick<'a>(labels: &'a [usize], values: &'a [f32]) -> &'a [Self];
}

mod target_sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The kinds of targets a data set holds and a loss needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// One class index per sample (classification).
    Classes,
    /// Real values, as many per sample as the model has outputs (regression, multi-label).
    Values,
}

impl TargetKind {
    /// In words: "class labels" or "real-valued targets".
    pub fn describe(self) -> &'static str {
        match self {
            TargetKind::Classes => "class labels",
            TargetKind::Values => "real-valued targets",
        }
    }
}

impl Target for usize {
    const KIND: TargetKind = TargetKind::Classes;
    fn pick<'a>(labels: &'a [usize], _: &'a [f32]) -> &'a [usize] {
        labels
    }
}

impl Target for f32 {
    const KIND: TargetKind = TargetKind::Values;
    fn pick<'a>(_: &'a [usize], values: &'a [f32]) -> &'a [f32] {
        values
    }
}

impl Target for f64 {
    const KIND: TargetKind = TargetKind::Values;
    fn pick<'a>(_: &'a [usize], _: &'a [f32]) -> &'a [f64] {
        &[]
    }
}

/// A loss over model outputs of shape `S`, as the solver uses it (`Sync`: a training step may run
/// on a kernel thread).
///
/// A loss is the mean of per-sample terms over the batch (as every loss of the crate is): a step
/// in parts ([`TrainStep::parts`](crate::step::TrainStep::parts)) and a data-parallel step
/// ([`crate::dist`]) weight each part's loss and gradient by its share of the batch.
pub trait Loss<S: Shape, E: Elem>: Sync {
    /// What the loss compares the outputs with: `usize` class labels (one per sample) or `E`
    /// values (one per output, `S::SAMPLE_NUMEL` per sample).
    type Target: Target;
    /// The mean loss over the batch; writes `dL/dscores` into `dscores`.
    fn loss(&self, scores: &Tensor<S, E>, targets: &[Self::Target], dscores: &mut Tensor<S, E>) -> Result<E>;
    /// The predicted class of each batch entry, appended to `out` (nothing for losses on real
    /// values, which have no classes).
    fn predict(&self, scores: &Tensor<S, E>, out: &mut Vec<usize>) {
        let _ = (scores, out);
    }
    /// The loss's name.
    fn name(&self) -> &'static str;
}

/// Softmax cross-entropy over `C` classes, as a [`Loss`]: prediction is the argmax.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxCrossEntropy<const C: usize>;

impl<B: Dim, X: ConstDim + ClassesMatch<Const<C>>, const C: usize, E: Elem> Loss<(B, X), E> for SoftmaxCrossEntropy<C> {
    type Target = usize;
    fn loss(&self, scores: &Tensor<(B, X), E>, labels: &[usize], d: &mut Tensor<(B, X), E>) -> Result<E> {
        d.set_batch(scores.batch());
        E::k_softmax_rows(scores.as_slice(), C, labels, d.as_mut_slice())
    }
    fn predict(&self, scores: &Tensor<(B, X), E>, out: &mut Vec<usize>) {
        out.extend(scores.argmax_rows());
    }
    fn name(&self) -> &'static str {
        "softmax cross-entropy"
    }
}

/// Logistic loss as a [`Loss`]: prediction is `score > 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Logistic;

impl<S: OnePerSample, E: Elem> Loss<S, E> for Logistic {
    type Target = usize;
    fn loss(&self, scores: &Tensor<S, E>, labels: &[usize], d: &mut Tensor<S, E>) -> Result<E> {
        logistic_loss(scores, labels, d)
    }
    fn predict(&self, scores: &Tensor<S, E>, out: &mut Vec<usize>) {
        out.extend(scores.as_slice().iter().map(|&s| usize::from(s > E::zero())));
    }
    fn name(&self) -> &'static str {
        "logistic"
    }
}

/// Binary hinge loss as a [`Loss`]: prediction is `score > 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hinge;

impl<S: OnePerSample, E: Elem> Loss<S, E> for Hinge {
    type Target = usize;
    fn loss(&self, scores: &Tensor<S, E>, labels: &[usize], d: &mut Tensor<S, E>) -> Result<E> {
        hinge_loss(scores, labels, d)
    }
    fn predict(&self, scores: &Tensor<S, E>, out: &mut Vec<usize>) {
        out.extend(scores.as_slice().iter().map(|&s| usize::from(s > E::zero())));
    }
    fn name(&self) -> &'static str {
        "hinge"
    }
}

fn check_values(n: usize, targets: usize) -> Result<()> {
    if targets != n {
        return Err(Error::Shape(format!("{targets} target values for {n} model outputs")));
    }
    Ok(())
}

/// Defines a loss on real-valued targets over a kernel-table entry.
macro_rules! value_loss {
    ($(#[$m:meta])* $name:ident, $text:literal, |$self:ident, $s:ident, $t:ident, $d:ident, $inv:ident| $call:expr) => {
        $(#[$m])*
        impl<S: Shape, E: Elem + Target> Loss<S, E> for $name {
            type Target = E;
            fn loss(&$self, scores: &Tensor<S, E>, targets: &[E], d: &mut Tensor<S, E>) -> Result<E> {
                check_values(scores.as_slice().len(), targets.len())?;
                d.set_batch(scores.batch());
                let $inv = E::one() / E::lit(scores.as_slice().len().max(1) as f64);
                let ($s, $t, $d) = (scores.as_slice(), targets, d.as_mut_slice());
                Ok($call * $inv)
            }
            fn name(&self) -> &'static str {
                $text
            }
        }
    };
}

/// Mean squared error on real-valued targets: `mean((s − t)²)` over the batch's `N·W` outputs
/// (PyTorch's `MSELoss`); `dL/ds = 2(s − t)/(N·W)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mse;

value_loss!(Mse, "MSE", |self, s, t, d, inv| E::k_mse_rows(s, t, d, inv));

/// Mean absolute error on real-valued targets: `mean(|s − t|)` (PyTorch's `L1Loss`);
/// `dL/ds = sign(s − t)/(N·W)`, 0 where `s = t`.
#[derive(Clone, Copy, Debug, Default)]
pub struct L1;

value_loss!(L1, "L1", |self, s, t, d, inv| E::k_l1_rows(s, t, d, inv));

/// Huber loss on real-valued targets with threshold `delta` (PyTorch's `HuberLoss`, default
/// δ = 1): per output `0.5·r²` where `|r| < δ`, else `δ·(|r| − 0.5·δ)`, with `r = s − t`;
/// averaged over the `N·W` outputs. Its gradient is `r` clipped to `[−δ, δ]`, over `N·W`.
#[derive(Clone, Copy, Debug)]
pub struct Huber {
    /// δ: where the loss turns from quadratic to linear (> 0).
    pub delta: f64,
}

impl Huber {
    /// Huber loss with threshold `delta`.
    pub fn new(delta: f64) -> Self {
        Huber { delta }
    }
}

impl Default for Huber {
    /// δ = 1.0, PyTorch's default.
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

value_loss!(Huber, "Huber", |self, s, t, d, inv| E::k_huber_rows(s, t, d, inv, E::lit(self.delta)));

/// Multi-label binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`): every output is
/// an independent yes/no score `s` with a target `t ∈ [0, 1]`; per output
/// `−t·ln σ(s) − (1−t)·ln(1−σ(s))`, computed as `max(s, 0) − s·t + ln(1 + e^−|s|)` (finite for
/// any logit), averaged over the `N·W` outputs; `dL/ds = (σ(s) − t)/(N·W)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogits;

value_loss!(BceWithLogits, "binary cross-entropy with logits", |self, s, t, d, inv| E::k_bce_logits_rows(s, t, d, inv));

/// The L2 penalty `0.5·reg·Σ W²` over the weights of `model` (not biases, not batch-norm parameters).
pub fn l2_penalty<E: Elem, M: Module<E>>(model: &M, reg: E) -> E {
    let mut sum = E::zero();
    model.visit_params(&Path::ROOT, &mut |info, w| {
        if info.kind.regularised() {
            sum += E::k_sum_squares(w);
        }
    });
    E::lit(0.5) * reg * sum
}

/// Adds the L2 gradient `reg·W` to the weight gradients in `grads`.
pub fn add_l2_grad<E: Elem, M: Module<E>>(model: &M, grads: &mut M, reg: E) {
    grads.zip_params_mut(model, &Path::ROOT, &mut |info, g, w| {
        if info.kind.regularised() {
            for (gi, &wi) in g.iter_mut().zip(w) {
                *gi += reg * wi;
            }
        }
    });
}
