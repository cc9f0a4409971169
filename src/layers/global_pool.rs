//! Global average pooling: each channel of a feature map to its mean.

use crate::kernels::Elem;
use crate::layer::{Act, Layer, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Const, ConstDim, Dim, Rule};

/// Global average pooling, `y[c] = (1/(H·W)) Σ_{h,w} x[c, h, w]`; no parameters.
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C)`; a flat input is a compile error.
/// - Backward: `dX[c, h, w] = dY[c]/(H·W)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool;

impl<E: Elem> Module<E> for GlobalAvgPool {
    const RULE: Rule = Rule::GlobalPool { name: "GlobalAvgPool" };
    type Cache = ();
    const PER_SAMPLE: bool = true;

    fn zeros() -> Self {
        GlobalAvgPool
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_global_avg_pool_forward(x.n * x.ext.dim(0), x.ext.dim(1) * x.ext.dim(2), x.data, y);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }

    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            E::k_global_avg_pool_backward(x.n * x.ext.dim(0), x.ext.dim(1) * x.ext.dim(2), dy, dx);
        }
    }
}

impl<B: Dim, const C: usize, H: ConstDim, W: ConstDim, E: Elem> Layer<(B, Const<C>, H, W), E> for GlobalAvgPool {
    type Out = (B, Const<C>);
}
