//! 2-D max pooling with window `P` and stride `S`; the windows must tile the input exactly.

use crate::kernels::Elem;
use crate::kernels::pool::{self, PoolDims};
use crate::layer::{Layer, Module, ParamInfo, Path};
use crate::shape::{Const, ConstDim, Dim, PoolOut, PoolOutput};
use crate::tensor::Tensor;

/// Max pooling over `P×P` windows moved by stride `S` (default `P`: non-overlapping); no padding.
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C, (H − P)/S + 1, (W − P)/S + 1)`; windows that do not tile
///   the input exactly (`(H − P)` not a multiple of `S`), or a window larger than the input, are a
///   compile error.
/// - Backward: each output gradient goes to the first maximum of its window (row-major order);
///   overlapping windows accumulate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxPool2d<const P: usize, const S: usize = P>;

impl<const P: usize, const S: usize, E: Elem> Module<E> for MaxPool2d<P, S> {
    fn zeros() -> Self {
        MaxPool2d
    }
    fn visit_params(&self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {}
    fn visit_params_mut(&mut self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {}
    fn zip_params_mut(&mut self, _: &Self, _: &Path<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {}
    fn type_name() -> String {
        if P == S { format!("MaxPool2d<{P}>") } else { format!("MaxPool2d<{P}, {S}>") }
    }
}

/// Positions of the maxima of the last training pass.
#[derive(Clone, Debug, Default)]
pub struct PoolCache {
    argmax: Vec<u32>,
}

impl<B: Dim, C: ConstDim, H, W, const P: usize, const S: usize, E: Elem> Layer<(B, C, H, W), E> for MaxPool2d<P, S>
where
    H: ConstDim + PoolOutput<Const<P>, Const<S>>,
    W: ConstDim + PoolOutput<Const<P>, Const<S>>,
{
    type Out = (B, C, PoolOut<H, Const<P>, Const<S>>, PoolOut<W, Const<P>, Const<S>>);
    type Cache = PoolCache;

    fn forward(&self, x: &Tensor<(B, C, H, W), E>, y: &mut Tensor<Self::Out, E>) {
        y.set_batch(x.batch());
        let d = PoolDims { planes: x.batch_size() * C::N, h: H::N, w: W::N, p: P, stride: S };
        pool::max_forward(&d, x.as_slice(), y.as_mut_slice(), None);
    }

    fn forward_train(&mut self, x: &Tensor<(B, C, H, W), E>, y: &mut Tensor<Self::Out, E>, cache: &mut PoolCache) {
        y.set_batch(x.batch());
        cache.argmax.resize(y.len(), 0);
        let d = PoolDims { planes: x.batch_size() * C::N, h: H::N, w: W::N, p: P, stride: S };
        pool::max_forward(&d, x.as_slice(), y.as_mut_slice(), Some(&mut cache.argmax));
    }

    fn backward(
        &self,
        x: &Tensor<(B, C, H, W), E>,
        _y: &Tensor<Self::Out, E>,
        dy: &Tensor<Self::Out, E>,
        cache: &mut PoolCache,
        dx: Option<&mut Tensor<(B, C, H, W), E>>,
        _: &mut Self,
    ) {
        if let Some(dx) = dx {
            dx.set_batch(x.batch());
            let d = PoolDims { planes: x.batch_size() * C::N, h: H::N, w: W::N, p: P, stride: S };
            pool::max_backward(&d, dy.as_slice(), &cache.argmax, dx.as_mut_slice());
        }
    }
}
