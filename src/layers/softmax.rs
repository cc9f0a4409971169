//! Softmax and log-softmax over the features of a flat input, for inference (with a backward pass,
//! so they can also sit inside a trained model).

use crate::kernels::Elem;
use crate::kernels::activation::RowDims;
use crate::layer::{Act, Layer, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Const, Dim, Rule};

fn forward<E: Elem, M: Module<E>>(x: Act<'_, E>, y: &mut [E], log: bool) {
    check_io::<E, M>(&x, y.len());
    E::k_softmax_forward(RowDims { rows: x.n, d: x.ext.dim(0) }, x.data, y, log);
}

fn backward<E: Elem, M: Module<E>>(x: Act<'_, E>, y: &[E], dy: &[E], dx: Option<&mut [E]>, log: bool) {
    check_grads::<E, M>(&x, y, dy, dx.as_deref());
    if let Some(dx) = dx {
        E::k_softmax_backward(RowDims { rows: x.n, d: x.ext.dim(0) }, y, dy, dx, log);
    }
}

macro_rules! softmax_layer {
    ($ty:ident, $name:literal, $log:expr) => {
        impl<E: Elem> Module<E> for $ty {
            const RULE: Rule = Rule::Flat { name: $name };
            type Cache = ();
            const PER_SAMPLE: bool = true;

            fn zeros() -> Self {
                $ty
            }
            no_params!(E);

            fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
                forward::<E, Self>(x, y, $log)
            }
            fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
                forward::<E, Self>(x, y, $log)
            }
            fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
                backward::<E, Self>(x, y, dy, dx, $log)
            }
        }

        impl<B: Dim, const D: usize, E: Elem> Layer<(B, Const<D>), E> for $ty {
            type Out = (B, Const<D>);
        }
    };
}

/// Softmax over each sample's features, `y_j = e^(x_j − m)/Σ_k e^(x_k − m)` with `m = max_k x_k`
/// (for probabilities at inference; train on scores with `SoftmaxCrossEntropy`, which includes it).
///
/// # Shapes
/// - input `(B, D)`, output `(B, D)`; a feature map is a compile error ("put a Flatten before it").
/// - Backward (from the output): `dX = y ⊙ (dY − Σ_j dY_j·y_j)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Softmax;
softmax_layer!(Softmax, "Softmax", false);

/// Log-softmax over each sample's features, `y_j = x_j − m − ln Σ_k e^(x_k − m)`, `m = max_k x_k`.
///
/// # Shapes
/// - input `(B, D)`, output `(B, D)`; a feature map is a compile error ("put a Flatten before it").
/// - Backward (from the output): `dX = dY − e^y·Σ_j dY_j`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSoftmax;
softmax_layer!(LogSoftmax, "LogSoftmax", true);
