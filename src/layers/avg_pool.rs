//! 2-D average pooling with window `K`, stride `S` and zero padding `P`; the windows must tile the
//! padded input exactly.

use crate::kernels::Elem;
use crate::layer::{Act, Module};
use crate::layers::pool::dims;
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::Rule;

/// Average pooling over `K×K` windows moved by stride `S` (default `K`), with `P` rows and columns
/// of zeros on each side (default 0, at most `K/2`). Every window divides by `K²`, padding
/// included: PyTorch's `AvgPool2d` with `count_include_pad=True` (its default).
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C, (H + 2·P − K)/S + 1, (W + 2·P − K)/S + 1)`; windows that
///   do not tile the padded input exactly, a window larger than the padded input, padding over half
///   the window, or a window or stride of 0 are compile errors naming the field and the extents.
/// - Backward: every input of a window receives `dY/K²`; overlapping windows accumulate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AvgPool2d<const K: usize, const S: usize = K, const P: usize = 0>;

impl<const K: usize, const S: usize, const P: usize, E: Elem> Module<E> for AvgPool2d<K, S, P> {
    const RULE: Rule = Rule::Pool { name: "AvgPool2d", k: K, s: S, p: P, exact: true };
    type Cache = ();
    const PER_SAMPLE: bool = true;

    fn zeros() -> Self {
        AvgPool2d
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_avg_pool_forward(&dims(&x, K, S, P), x.data, y);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }

    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            E::k_avg_pool_backward(&dims(&x, K, S, P), dy, dx);
        }
    }
}
