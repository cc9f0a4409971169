//! The layers of the workload, one file each: forward, hand-derived backward, shape rule, parameters.

mod activation;
mod avg_pool;
mod batchnorm;
mod conv;
mod dropout;
mod flatten;
mod global_pool;
mod layernorm;
mod linear;
mod pool;
mod relu;
mod residual;
mod softmax;

pub use activation::{GELU, LeakyReLU, Sigmoid, Tanh};
pub use avg_pool::AvgPool2d;
pub use batchnorm::{BN_EPS, BN_MOMENTUM, BatchNorm1d, BatchNorm2d, BatchNormReLU2d, BnCache};
pub use conv::Conv2d;
pub use dropout::{Drop, Dropout, DropoutForm, Inverted, Keep, Probability, Vanilla};
pub use flatten::Flatten;
pub use global_pool::GlobalAvgPool;
pub use layernorm::{LN_EPS, LayerNorm};
pub use linear::Linear;
pub use pool::{MaxPool2d, PoolCache};
pub use relu::ReLU;
pub use residual::{Identity, Residual, ResidualCache};
pub use softmax::{LogSoftmax, Softmax};

use crate::kernels::Elem;
use crate::layer::{Act, Module, ParamInfo, ParamKind, Path};
use crate::shape::{Extents, Shape};
use crate::tensor::Tensor;

/// See [`crate::layer::check_call`].
#[inline]
pub(crate) fn check_io<E: Elem, M: Module<E>>(x: &Act<'_, E>, y_len: usize) -> Extents {
    crate::layer::check_call::<E, M>(x, y_len)
}

/// See [`crate::layer::check_backward`].
#[inline]
pub(crate) fn check_grads<E: Elem, M: Module<E>>(x: &Act<'_, E>, y: &[E], dy: &[E], dx: Option<&[E]>) -> Extents {
    crate::layer::check_backward::<E, M>(x, y.len(), dy.len(), dx.map(<[E]>::len))
}

/// Implements the three parameter visitors of a layer without parameters.
macro_rules! no_params {
    ($e:ty) => {
        fn visit_params(&self, _: &$crate::layer::Path<'_>, _: &mut dyn FnMut(&$crate::layer::ParamInfo<'_>, &[$e])) {}
        fn visit_params_mut(
            &mut self,
            _: &$crate::layer::Path<'_>,
            _: &mut dyn FnMut(&$crate::layer::ParamInfo<'_>, &mut [$e]),
        ) {
        }
        fn zip_params_mut(
            &mut self,
            _: &Self,
            _: &$crate::layer::Path<'_>,
            _: &mut dyn FnMut(&$crate::layer::ParamInfo<'_>, &mut [$e], &[$e]),
        ) {
        }
    };
}
pub(crate) use no_params;

/// Visits one parameter tensor under `path.name`.
#[inline]
pub(crate) fn visit_one<E: Elem, S: Shape>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    t: &Tensor<S, E>,
    f: &mut dyn FnMut(&ParamInfo<'_>, &[E]),
) {
    let dims = t.shape().dims();
    visit_slice(path, name, kind, &dims[..S::RANK], t.as_slice(), f);
}

fn visit_slice<E>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    shape: &[usize],
    data: &[E],
    f: &mut dyn FnMut(&ParamInfo<'_>, &[E]),
) {
    let p = path.child(name);
    f(&ParamInfo { path: &p, shape, kind }, data);
}

/// Visits one parameter tensor under `path.name`, mutably.
#[inline]
pub(crate) fn visit_one_mut<E: Elem, S: Shape>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    t: &mut Tensor<S, E>,
    f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E]),
) {
    let dims = t.shape().dims();
    visit_slice_mut(path, name, kind, &dims[..S::RANK], t.as_mut_slice(), f);
}

fn visit_slice_mut<E>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    shape: &[usize],
    data: &mut [E],
    f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E]),
) {
    let p = path.child(name);
    f(&ParamInfo { path: &p, shape, kind }, data);
}

/// Visits one parameter tensor with its counterpart in `other`.
#[inline]
pub(crate) fn zip_one<E: Elem, S: Shape>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    t: &mut Tensor<S, E>,
    other: &Tensor<S, E>,
    f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E]),
) {
    let dims = t.shape().dims();
    let p = path.child(name);
    f(&ParamInfo { path: &p, shape: &dims[..S::RANK], kind }, t.as_mut_slice(), other.as_slice());
}
