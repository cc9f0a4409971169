//! 2-D convolution (cross-correlation, kernel not flipped) with stride, zero padding and an optional bias.

use crate::kernels::Elem;
use crate::kernels::conv::{self, ConvDims};
use crate::layer::{Act, Module, ParamInfo, ParamKind, Path};
use crate::layers::{check_grads, check_io, visit_one, visit_one_mut, zip_one};
use crate::shape::{Const, Rule};
use crate::tensor::Tensor;

/// 2-D convolution from `C` to `F` channels with a `K×K` kernel, stride `S` (default 1), zero padding
/// `P` (default 0) and a bias when `BIAS` (default `true`).
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, F, (H + 2P − K)/S + 1, (W + 2P − K)/S + 1)`, computed by the
///   shape rule at compile time; a kernel larger than the padded input, a channel count other than
///   `C`, or a kernel, stride or channel count of 0 is a compile error naming the field and the sizes.
/// - weight `(F, C, K, K)`; bias `(F)`.
/// - Forward is cross-correlation: `y[n,f,i,j] = Σ_{c,u,v} x[n,c,iS+u−P,jS+v−P]·w[f,c,u,v] + b[f]`.
/// - Backward: `dW = Σₙ X ⋆ dY`, `db = Σ dY`, `dX` = the full convolution of `dY` with `W`.
///
/// The homework's convolution is `Conv2d<1, 5, 7, 1, 0, false>` (valid, stride 1, no bias); the
/// CIFAR net's are `Conv2d<C, F, 3, 1, 1>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d<
    const C: usize,
    const F: usize,
    const K: usize,
    const S: usize = 1,
    const P: usize = 0,
    const BIAS: bool = true,
    E: Elem = f32,
> {
    /// Kernel, `(F, C, K, K)`.
    pub weight: Tensor<(Const<F>, Const<C>, Const<K>, Const<K>), E>,
    /// Bias, `(F)`; stays zero and is not visited when `BIAS` is `false`.
    pub bias: Tensor<(Const<F>,), E>,
}

/// Scratch of the im2col path, reused across steps.
#[derive(Clone, Debug, Default)]
pub struct ConvCache<E> {
    scratch: conv::ConvScratch<E>,
}

impl<const C: usize, const F: usize, const K: usize, const S: usize, const P: usize, const BIAS: bool, E: Elem>
    Module<E> for Conv2d<C, F, K, S, P, BIAS, E>
{
    const RULE: Rule = Rule::Conv { c: C, f: F, k: K, s: S, p: P, bias: BIAS };
    type Cache = ConvCache<E>;
    const PER_SAMPLE: bool = true;

    fn zeros() -> Self {
        Conv2d { weight: Tensor::zeros(Const), bias: Tensor::zeros(Const) }
    }
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        visit_one(path, "weight", Self::KIND, &self.weight, f);
        if BIAS {
            visit_one(path, "bias", ParamKind::Bias, &self.bias, f);
        }
    }
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        visit_one_mut(path, "weight", Self::KIND, &mut self.weight, f);
        if BIAS {
            visit_one_mut(path, "bias", ParamKind::Bias, &mut self.bias, f);
        }
    }
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        zip_one(path, "weight", Self::KIND, &mut self.weight, &other.weight, f);
        if BIAS {
            zip_one(path, "bias", ParamKind::Bias, &mut self.bias, &other.bias, f);
        }
    }

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        let mut cache = ConvCache::default();
        self.run_forward(x, y, &mut cache);
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut ConvCache<E>) {
        self.run_forward(x, y, cache);
    }

    fn forward_reuse(&self, x: Act<'_, E>, y: &mut [E], cache: &mut ConvCache<E>) {
        self.run_forward(x, y, cache);
    }

    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut ConvCache<E>,
        dx: Option<&mut [E]>,
        grads: &mut Self,
    ) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        let d = Self::dims(&x);
        let db = if BIAS { Some(grads.bias.as_mut_slice()) } else { None };
        E::k_conv_backward(
            &d,
            x.data,
            self.weight.as_slice(),
            dy,
            grads.weight.as_mut_slice(),
            db,
            dx,
            &mut cache.scratch,
        );
    }
}

impl<const C: usize, const F: usize, const K: usize, const S: usize, const P: usize, const BIAS: bool, E: Elem>
    Conv2d<C, F, K, S, P, BIAS, E>
{
    const KIND: ParamKind = ParamKind::Weight { fan_in: C * K * K, fan_out: F * K * K };

    fn dims(x: &Act<'_, E>) -> ConvDims {
        ConvDims { n: x.n, c: C, h: x.ext.dim(1), w: x.ext.dim(2), f: F, k: K, stride: S, pad: P }
    }

    fn run_forward(&self, x: Act<'_, E>, y: &mut [E], cache: &mut ConvCache<E>) {
        check_io::<E, Self>(&x, y.len());
        let bias = if BIAS { Some(self.bias.as_slice()) } else { None };
        E::k_conv_forward(&Self::dims(&x), x.data, self.weight.as_slice(), bias, y, &mut cache.scratch);
    }
}
