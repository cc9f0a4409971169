//! Flatten: `(B, C, H, W)` to `(B, C·H·W)`, row-major.

use crate::kernels::Elem;
use crate::layer::{Layer, Module, ParamInfo, Path};
use crate::shape::{ConstDim, Dim, FlatOut, Flattened};
use crate::tensor::Tensor;

/// Flattens each sample, row-major; no parameters.
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C·H·W)`; the product is computed by the type system (it must
///   be in the shape table, see [`TABLE_MAX`](crate::shape::TABLE_MAX)).
/// - Backward: `dX` is `dY` viewed as `(B, C, H, W)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl<E: Elem> Module<E> for Flatten {
    fn zeros() -> Self {
        Flatten
    }
    fn visit_params(&self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {}
    fn visit_params_mut(&mut self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {}
    fn zip_params_mut(&mut self, _: &Self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {}
    fn type_name() -> String {
        "Flatten".into()
    }
}

impl<B: Dim, C: ConstDim, H: ConstDim, W: ConstDim, E: Elem> Layer<(B, C, H, W), E> for Flatten
where
    (C, H, W): Flattened,
{
    type Out = (B, FlatOut<C, H, W>);
    type Cache = ();

    fn forward(&self, x: &Tensor<(B, C, H, W), E>, y: &mut Tensor<Self::Out, E>) {
        y.set_batch(x.batch());
        crate::kernels::copy(x.as_slice(), y.as_mut_slice());
    }

    fn forward_train(&mut self, x: &Tensor<(B, C, H, W), E>, y: &mut Tensor<Self::Out, E>, _: &mut ()) {
        self.forward(x, y);
    }

    fn backward(
        &self,
        x: &Tensor<(B, C, H, W), E>,
        _y: &Tensor<Self::Out, E>,
        dy: &Tensor<Self::Out, E>,
        _: &mut (),
        dx: Option<&mut Tensor<(B, C, H, W), E>>,
        _: &mut Self,
    ) {
        if let Some(dx) = dx {
            dx.set_batch(x.batch());
            crate::kernels::copy(dy.as_slice(), dx.as_mut_slice());
        }
    }
}
