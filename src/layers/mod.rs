//! The layers of the workload, one file each: forward, hand-derived backward, shape rule, parameters.

mod batchnorm;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod pool;
mod relu;

pub use batchnorm::{BN_EPS, BN_MOMENTUM, BatchNorm1d, BatchNorm2d};
pub use conv::Conv2d;
pub use dropout::{Drop, Dropout, DropoutForm, Inverted, Keep, Probability, Vanilla};
pub use flatten::Flatten;
pub use linear::Linear;
pub use pool::MaxPool2d;
pub use relu::ReLU;

use crate::kernels::Elem;
use crate::layer::{ParamInfo, ParamKind, Path};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Visits one parameter tensor under `path.name`.
#[inline]
pub(crate) fn visit_one<E: Elem, S: Shape>(
    path: &Path<'_>,
    name: &str,
    kind: ParamKind,
    t: &Tensor<S, E>,
    f: &mut dyn FnMut(&ParamInfo<'_>, &[E]),
) {
    let p = path.child(name);
    let dims = t.shape().dims();
    f(&ParamInfo { path: &p, shape: &dims[..S::RANK], kind }, t.as_slice());
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
    let p = path.child(name);
    let dims = t.shape().dims();
    f(&ParamInfo { path: &p, shape: &dims[..S::RANK], kind }, t.as_mut_slice());
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
    let p = path.child(name);
    let dims = t.shape().dims();
    f(&ParamInfo { path: &p, shape: &dims[..S::RANK], kind }, t.as_mut_slice(), other.as_slice());
}
