//! Rectified linear unit: `y = max(x, 0)`.

use crate::kernels::Elem;
use crate::layer::{Layer, Module, ParamInfo, Path};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Rectified linear unit, elementwise `y = max(x, 0)`; no parameters.
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY` where `x > 0`, else 0 (0 at `x = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReLU;

impl<E: Elem> Module<E> for ReLU {
    fn zeros() -> Self {
        ReLU
    }
    fn visit_params(&self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {}
    fn visit_params_mut(&mut self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {}
    fn zip_params_mut(&mut self, _: &Self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {}
    fn type_name() -> String {
        "ReLU".into()
    }
}

impl<S: Shape, E: Elem> Layer<S, E> for ReLU {
    type Out = S;
    type Cache = ();

    fn forward(&self, x: &Tensor<S, E>, y: &mut Tensor<S, E>) {
        y.set_batch(x.batch());
        crate::kernels::relu_forward(x.as_slice(), y.as_mut_slice());
    }

    fn forward_train(&mut self, x: &Tensor<S, E>, y: &mut Tensor<S, E>, _: &mut ()) {
        self.forward(x, y);
    }

    fn backward(
        &self,
        x: &Tensor<S, E>,
        _y: &Tensor<S, E>,
        dy: &Tensor<S, E>,
        _: &mut (),
        dx: Option<&mut Tensor<S, E>>,
        _: &mut Self,
    ) {
        if let Some(dx) = dx {
            dx.set_batch(x.batch());
            crate::kernels::relu_backward(x.as_slice(), dy.as_slice(), dx.as_mut_slice());
        }
    }
}
