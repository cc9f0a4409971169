//! Fully connected layer: `Y = X W + b`.

use crate::init::Init;
use crate::kernels::{Elem, Strides};
use crate::layer::{Act, Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{check_grads, check_io, visit_one, visit_one_mut, zip_one};
use crate::shape::{Const, Dim, Rule};
use crate::tensor::Tensor;

/// Fully connected layer with `I` inputs and `O` outputs: `Y = X W + b`.
///
/// # Shapes
/// - input `(B, I)`, output `(B, O)`; `B` is the batch (static or [`Dyn`](crate::shape::Dyn)).
/// - weight `W`: `(I, O)`; bias `b`: `(O)`.
/// - Backward: `dW = Xᵀ dY`, `db = Σₙ dY`, `dX = dY Wᵀ`.
///
/// An input whose width is not `I`, or an `I` or `O` of zero, is a compile error naming the field
/// and both widths.
///
/// ```
/// use shaped::prelude::*;
/// let fc = Linear::<3, 2, f64>::zeros();
/// let x = Tensor::<(Dyn, Const<3>), f64>::from_vec(vec![1.0; 6]).unwrap();
/// assert_eq!(fc.predict(&x).dims(), vec![2, 2]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<const I: usize, const O: usize, E: Elem = f32> {
    /// Weight `W`, `(I, O)`.
    pub weight: Tensor<(Const<I>, Const<O>), E>,
    /// Bias `b`, `(O)`.
    pub bias: Tensor<(Const<O>,), E>,
}

impl<const I: usize, const O: usize, E: Elem> Linear<I, O, E> {
    /// A layer initialised from `rng` (weights from `init`, bias zero).
    pub fn new<R: rand::Rng + ?Sized>(rng: &mut R, init: Init) -> Self {
        <Self as Module<E>>::init(rng, init)
    }
}

impl<const I: usize, const O: usize, E: Elem> Module<E> for Linear<I, O, E> {
    const RULE: Rule = Rule::Dense { i: I, o: O };
    type Cache = ();
    const PER_SAMPLE: bool = true;

    fn zeros() -> Self {
        Linear { weight: Tensor::zeros(Const), bias: Tensor::zeros(Const) }
    }
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        visit_one(path, "weight", ParamKind::Weight { fan_in: I, fan_out: O }, &self.weight, f);
        visit_one(path, "bias", ParamKind::Bias, &self.bias, f);
    }
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        visit_one_mut(path, "weight", ParamKind::Weight { fan_in: I, fan_out: O }, &mut self.weight, f);
        visit_one_mut(path, "bias", ParamKind::Bias, &mut self.bias, f);
    }
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        let k = ParamKind::Weight { fan_in: I, fan_out: O };
        zip_one(path, "weight", k, &mut self.weight, &other.weight, f);
        zip_one(path, "bias", ParamKind::Bias, &mut self.bias, &other.bias, f);
    }

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        dense_forward(x.n, I, O, x.data, self.weight.as_slice(), self.bias.as_slice(), y);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }

    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, grads: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        let (dw, db) = (grads.weight.as_mut_slice(), grads.bias.as_mut_slice());
        dense_backward(x.n, I, O, x.data, self.weight.as_slice(), dy, dw, db, dx);
    }
}

impl<B: Dim, const I: usize, const O: usize, E: Elem> Layer<(B, Const<I>), E> for Linear<I, O, E> {
    type Out = (B, Const<O>);
}

/// A lone `Linear` (logistic regression, a linear SVM) takes `I` features per sample.
impl<const I: usize, const O: usize, E: Elem> crate::model::Model<E> for Linear<I, O, E> {
    type Input = (crate::shape::Dyn, Const<I>);
}

/// `Y = X W + b` for `n` rows of `i` features into `o` outputs (one instance per element type).
fn dense_forward<E: Elem>(n: usize, i: usize, o: usize, x: &[E], w: &[E], b: &[E], y: &mut [E]) {
    E::k_gemm(n, o, i, x, Strides::row_major(i), w, Strides::row_major(o), y, Strides::row_major(o), false);
    E::k_add_row_bias(y, b);
}

/// `dW = Xᵀ dY`, `db = Σₙ dY` and, when asked, `dX = dY Wᵀ`.
#[allow(clippy::too_many_arguments)]
fn dense_backward<E: Elem>(
    n: usize,
    i: usize,
    o: usize,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: &mut [E],
    dx: Option<&mut [E]>,
) {
    E::k_gemm(i, o, n, x, Strides::transposed(i), dy, Strides::row_major(o), dw, Strides::row_major(o), false);
    E::k_sum_rows(dy, db);
    if let Some(dx) = dx {
        E::k_gemm(n, i, o, dy, Strides::row_major(o), w, Strides::transposed(o), dx, Strides::row_major(i), false);
    }
}
