//! Flatten: `(B, C, H, W)` to `(B, C·H·W)`, row-major.

use crate::kernels::Elem;
use crate::layer::{Act, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::Rule;

/// Flattens each sample, row-major; no parameters.
///
/// # Shapes
/// - input `(B, D1, …)` of any rank ≥ 2, output `(B, D1·…)`; the product is computed at compile
///   time with no limit on its size (one that overflows `usize` is a compile error).
/// - Backward: `dX` is `dY` viewed in the input's shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl<E: Elem> Module<E> for Flatten {
    const RULE: Rule = Rule::Flatten;
    type Cache = ();
    const PER_SAMPLE: bool = true;
    const VIEW: bool = true;

    fn zeros() -> Self {
        Flatten
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_copy(x.data, y);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }

    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            E::k_copy(dy, dx);
        }
    }
}
