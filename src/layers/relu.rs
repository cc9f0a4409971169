//! Rectified linear unit: `y = max(x, 0)`.

use crate::fuse::Kind;
use crate::kernels::Elem;
use crate::layer::{Act, Layer, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Rule, Shape};

/// Rectified linear unit, elementwise `y = max(x, 0)`; no parameters. A NaN passes (as in
/// PyTorch), so a NaN in an input reaches the scores instead of vanishing; ±0 give +0.
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY` where `x > 0`, else 0 (0 at `x = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReLU;

impl<E: Elem> Module<E> for ReLU {
    const RULE: Rule = Rule::Elementwise { name: "ReLU" };
    type Cache = ();
    const PER_SAMPLE: bool = true;
    const FUSE: Kind = Kind::Relu;

    fn zeros() -> Self {
        ReLU
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_relu_forward(x.data, y);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }

    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            E::k_relu_backward(x.data, dy, dx);
        }
    }
}

impl<S: Shape, E: Elem> Layer<S, E> for ReLU {
    type Out = S;
}
