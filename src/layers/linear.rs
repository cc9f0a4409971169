//! Fully connected layer: `Y = X W + b`.

use crate::init::Init;
use crate::kernels::{self, Elem, Strides};
use crate::layer::{Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{visit_one, visit_one_mut, zip_one};
use crate::shape::{Const, ConstDim, Dim, FeaturesMatch};
use crate::tensor::Tensor;

/// Fully connected layer with `I` inputs and `O` outputs: `Y = X W + b`.
///
/// # Shapes
/// - input `(B, I)`, output `(B, O)`; `B` is the batch (static or [`Dyn`](crate::shape::Dyn)).
/// - weight `W`: `(I, O)`; bias `b`: `(O)`.
/// - Backward: `dW = Xᵀ dY`, `db = Σₙ dY`, `dX = dY Wᵀ`.
///
/// An input whose width is not `I` is a compile error naming both widths.
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
    fn type_name() -> String {
        format!("Linear<{I}, {O}>")
    }
}

impl<B: Dim, X: ConstDim + FeaturesMatch<Const<I>>, const I: usize, const O: usize, E: Elem> Layer<(B, X), E>
    for Linear<I, O, E>
{
    type Out = (B, Const<O>);
    type Cache = ();

    fn forward(&self, x: &Tensor<(B, X), E>, y: &mut Tensor<(B, Const<O>), E>) {
        let n = x.batch_size();
        y.set_batch(x.batch());
        let (w, yd) = (self.weight.as_slice(), y.as_mut_slice());
        kernels::gemm(
            n,
            O,
            I,
            x.as_slice(),
            Strides::row_major(I),
            w,
            Strides::row_major(O),
            yd,
            Strides::row_major(O),
            false,
        );
        kernels::add_row_bias(yd, self.bias.as_slice());
    }

    fn forward_train(&mut self, x: &Tensor<(B, X), E>, y: &mut Tensor<(B, Const<O>), E>, _cache: &mut ()) {
        self.forward(x, y);
    }

    fn backward(
        &self,
        x: &Tensor<(B, X), E>,
        _y: &Tensor<(B, Const<O>), E>,
        dy: &Tensor<(B, Const<O>), E>,
        _cache: &mut (),
        dx: Option<&mut Tensor<(B, X), E>>,
        grads: &mut Self,
    ) {
        let n = x.batch_size();
        // dW = Xᵀ dY  (I×n · n×O)
        kernels::gemm(
            I,
            O,
            n,
            x.as_slice(),
            Strides::transposed(I),
            dy.as_slice(),
            Strides::row_major(O),
            grads.weight.as_mut_slice(),
            Strides::row_major(O),
            false,
        );
        kernels::sum_rows(dy.as_slice(), grads.bias.as_mut_slice());
        if let Some(dx) = dx {
            dx.set_batch(x.batch());
            // dX = dY Wᵀ  (n×O · O×I)
            kernels::gemm(
                n,
                I,
                O,
                dy.as_slice(),
                Strides::row_major(O),
                self.weight.as_slice(),
                Strides::transposed(O),
                dx.as_mut_slice(),
                Strides::row_major(I),
                false,
            );
        }
    }
}
