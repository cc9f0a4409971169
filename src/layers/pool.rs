//! 2-D max pooling with window `P`, stride `S` and padding `PAD`; the windows must tile the padded
//! input exactly.

use crate::fuse::Kind;
use crate::kernels::Elem;
use crate::kernels::pool::PoolDims;
use crate::layer::{Act, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::Rule;

/// Max pooling over `P×P` windows moved by stride `S` (default `P`: non-overlapping), with `PAD`
/// rows and columns of −∞ on each side (default 0; at most `P/2`, PyTorch's rule). Without padding,
/// 2×2 windows with stride 2 take a specialised kernel.
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, C, (H + 2·PAD − P)/S + 1, (W + 2·PAD − P)/S + 1)`; windows
///   that do not tile the padded input exactly (`H + 2·PAD − P` not a multiple of `S`), a window
///   larger than the padded input, padding over half the window, or a window or stride of 0 are
///   compile errors naming the field and the extents.
/// - Backward: each output gradient goes to the first maximum of its window (row-major order; never
///   to padding); overlapping windows accumulate.
/// - In a derived model, right after a [`ReLU`](crate::layers::ReLU) or a
///   [`BatchNormReLU2d`](crate::layers::BatchNormReLU2d), the two are fused ([`crate::fuse`]):
///   the same results to the bit, passes over the activation fewer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaxPool2d<const P: usize, const S: usize = P, const PAD: usize = 0>;

/// Positions of the maxima of the last training pass.
#[derive(Clone, Debug, Default)]
pub struct PoolCache {
    pub(crate) argmax: Vec<u32>,
}

/// The kernel's sizes for a `C×H×W` batch `x`.
pub(crate) fn dims<E>(x: &Act<'_, E>, p: usize, stride: usize, pad: usize) -> PoolDims {
    PoolDims { planes: x.n * x.ext.dim(0), h: x.ext.dim(1), w: x.ext.dim(2), p, stride, pad }
}

impl<const P: usize, const S: usize, const PAD: usize, E: Elem> Module<E> for MaxPool2d<P, S, PAD> {
    const RULE: Rule = Rule::Pool { name: "MaxPool2d", k: P, s: S, p: PAD, exact: true };
    type Cache = PoolCache;
    const PER_SAMPLE: bool = true;
    const FUSE: Kind = Kind::MaxPool { p: P, s: S, pad: PAD };

    fn fuse_pool_cache(cache: &mut PoolCache) -> Option<&mut PoolCache> {
        Some(cache)
    }
    fn zeros() -> Self {
        MaxPool2d
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_max_pool_forward(&dims(&x, P, S, PAD), x.data, y, None);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut PoolCache) {
        check_io::<E, Self>(&x, y.len());
        cache.argmax.resize(y.len(), 0);
        E::k_max_pool_forward(&dims(&x, P, S, PAD), x.data, y, Some(&mut cache.argmax));
    }

    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut PoolCache,
        dx: Option<&mut [E]>,
        _: &mut Self,
    ) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            assert_eq!(cache.argmax.len(), dy.len(), "MaxPool2d: backward without a training forward pass");
            E::k_max_pool_backward(&dims(&x, P, S, PAD), dy, &cache.argmax, dx);
        }
    }
}
