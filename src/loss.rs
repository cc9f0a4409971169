//! Losses (logistic, binary hinge, softmax cross-entropy), all averaged over the batch, and L2
//! regularisation on weights.

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

/// A loss over model outputs of shape `S`, as the solver uses it (`Sync`: a training step may run
/// on a kernel thread).
pub trait Loss<S: Shape, E: Elem>: Sync {
    /// The mean loss over the batch; writes `dL/dscores` into `dscores`.
    fn loss(&self, scores: &Tensor<S, E>, labels: &[usize], dscores: &mut Tensor<S, E>) -> Result<E>;
    /// The predicted class of each batch entry, appended to `out`.
    fn predict(&self, scores: &Tensor<S, E>, out: &mut Vec<usize>);
    /// The loss's name.
    fn name(&self) -> &'static str;
}

/// Softmax cross-entropy over `C` classes, as a [`Loss`]: prediction is the argmax.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxCrossEntropy<const C: usize>;

impl<B: Dim, X: ConstDim + ClassesMatch<Const<C>>, const C: usize, E: Elem> Loss<(B, X), E> for SoftmaxCrossEntropy<C> {
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
