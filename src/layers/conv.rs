//! 2-D convolution (cross-correlation, kernel not flipped) with stride, zero padding and an optional bias.

use crate::kernels::Elem;
use crate::kernels::conv::{self, ConvDims};
use crate::layer::{Layer, Module, ParamInfo, ParamKind, Path};
use crate::layers::{visit_one, visit_one_mut, zip_one};
use crate::shape::{ChannelsMatch, Const, ConstDim, ConvOut, ConvOutput, Dim};
use crate::tensor::Tensor;

/// 2-D convolution from `C` to `F` channels with a `K×K` kernel, stride `S` (default 1), zero padding
/// `P` (default 0) and a bias when `BIAS` (default `true`).
///
/// # Shapes
/// - input `(B, C, H, W)`, output `(B, F, (H + 2P − K)/S + 1, (W + 2P − K)/S + 1)`, computed by the
///   type system; a kernel larger than the padded input, or a channel count other than `C`, is a
///   compile error.
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

impl<const C: usize, const F: usize, const K: usize, const S: usize, const P: usize, const BIAS: bool, E: Elem>
    Module<E> for Conv2d<C, F, K, S, P, BIAS, E>
{
    fn zeros() -> Self {
        Conv2d { weight: Tensor::zeros(Const), bias: Tensor::zeros(Const) }
    }
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        let kind = ParamKind::Weight { fan_in: C * K * K, fan_out: F * K * K };
        visit_one(path, "weight", kind, &self.weight, f);
        if BIAS {
            visit_one(path, "bias", ParamKind::Bias, &self.bias, f);
        }
    }
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        let kind = ParamKind::Weight { fan_in: C * K * K, fan_out: F * K * K };
        visit_one_mut(path, "weight", kind, &mut self.weight, f);
        if BIAS {
            visit_one_mut(path, "bias", ParamKind::Bias, &mut self.bias, f);
        }
    }
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        let kind = ParamKind::Weight { fan_in: C * K * K, fan_out: F * K * K };
        zip_one(path, "weight", kind, &mut self.weight, &other.weight, f);
        if BIAS {
            zip_one(path, "bias", ParamKind::Bias, &mut self.bias, &other.bias, f);
        }
    }
    fn type_name() -> String {
        let mut s = format!("Conv2d<{C}, {F}, {K}");
        if S != 1 || P != 0 || !BIAS {
            s += &format!(", {S}, {P}");
        }
        if !BIAS {
            s += ", false";
        }
        s + ">"
    }
}

/// Scratch of the im2col path, reused across steps.
#[derive(Clone, Debug, Default)]
pub struct ConvCache<E> {
    scratch: conv::ConvScratch<E>,
}

impl<
    B: Dim,
    X: ConstDim + ChannelsMatch<Const<C>>,
    H: ConstDim + ConvOutput<Const<K>, Const<S>, Const<P>>,
    W: ConstDim + ConvOutput<Const<K>, Const<S>, Const<P>>,
    const C: usize,
    const F: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const BIAS: bool,
    E: Elem,
> Layer<(B, X, H, W), E> for Conv2d<C, F, K, S, P, BIAS, E>
{
    type Out = (B, Const<F>, ConvOut<H, Const<K>, Const<S>, Const<P>>, ConvOut<W, Const<K>, Const<S>, Const<P>>);
    type Cache = ConvCache<E>;

    fn forward(&self, x: &Tensor<(B, X, H, W), E>, y: &mut Tensor<Self::Out, E>) {
        let mut cache = ConvCache::default();
        self.run_forward(x, y, &mut cache);
    }

    fn forward_train(&mut self, x: &Tensor<(B, X, H, W), E>, y: &mut Tensor<Self::Out, E>, cache: &mut ConvCache<E>) {
        self.run_forward(x, y, cache);
    }

    fn backward(
        &self,
        x: &Tensor<(B, X, H, W), E>,
        _y: &Tensor<Self::Out, E>,
        dy: &Tensor<Self::Out, E>,
        cache: &mut ConvCache<E>,
        dx: Option<&mut Tensor<(B, X, H, W), E>>,
        grads: &mut Self,
    ) {
        let d = Self::dims::<H, W>(x.batch_size());
        let dx = dx.map(|t| {
            t.set_batch(x.batch());
            t.as_mut_slice()
        });
        let db = if BIAS { Some(grads.bias.as_mut_slice()) } else { None };
        let (x, w, dy) = (x.as_slice(), self.weight.as_slice(), dy.as_slice());
        conv::backward(&d, x, w, dy, grads.weight.as_mut_slice(), db, dx, &mut cache.scratch);
    }
}

impl<const C: usize, const F: usize, const K: usize, const S: usize, const P: usize, const BIAS: bool, E: Elem>
    Conv2d<C, F, K, S, P, BIAS, E>
{
    fn dims<H: ConstDim, W: ConstDim>(n: usize) -> ConvDims {
        ConvDims { n, c: C, h: H::N, w: W::N, f: F, k: K, stride: S, pad: P }
    }

    fn run_forward<B: Dim, X: ConstDim, H: ConstDim, W: ConstDim, O: crate::shape::Shape<Batch = B>>(
        &self,
        x: &Tensor<(B, X, H, W), E>,
        y: &mut Tensor<O, E>,
        cache: &mut ConvCache<E>,
    ) {
        y.set_batch(x.batch());
        let d = Self::dims::<H, W>(x.batch_size());
        let bias = if BIAS { Some(self.bias.as_slice()) } else { None };
        conv::forward(&d, x.as_slice(), self.weight.as_slice(), bias, y.as_mut_slice(), &mut cache.scratch);
    }
}
