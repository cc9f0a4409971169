//! The kernel table: one non-generic entry point per kernel and element type, compiled once in
//! this crate.
//!
//! A generic function is compiled again in every crate that instantiates it, and a model's code
//! (the derived passes, the layers' thin wrappers) is instantiated in the user's crate. If those
//! wrappers called the generic kernels directly, every user crate would compile the GEMM, every
//! convolution path, pooling, batch norm and the updates again (15–17 s per edit of a training
//! program, measured). So they call through [`Kernels`], a sealed supertrait of
//! [`Elem`](super::Elem) whose methods are implemented for `f32` and `f64` here: each method is a
//! concrete function whose body (the generic kernel at that type) is compiled in `shaped`, and a
//! user's crate compiles only the call.
//!
//! The `f32` entries (training) are compiled here; the `f64` ones (gradient checks, reference
//! results) are `#[inline]`, so they are compiled only by a crate that uses them and the crate's
//! own build does not pay for a second copy of every kernel.

use super::activation::{Activation, RowDims};
use super::conv::{ConvDims, ConvScratch};
use super::norm::NormDims;
use super::pool::PoolDims;
use super::{Strides, activation, conv, norm, pool};

macro_rules! kernel_table {
    ($(
        $(#[$m:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $($p:ident)::+;
    )*) => {
        /// The kernels' entry points for one element type (see the module docs). Implemented for
        /// `f32` and `f64` only; call the functions of [`crate::kernels`] rather than these.
        #[doc(hidden)]
        pub trait Kernels: Sized + super::sealed::Sealed {
            $(
                $(#[$m])*
                #[allow(clippy::too_many_arguments)]
                fn $name($($arg: $ty),*) $(-> $ret)?;
            )*
        }
        kernel_table!(@impl f32 $( fn $name($($arg: $ty),*) $(-> $ret)? => $($p)::+; )*);
        kernel_table!(@impl_inline f64 $( fn $name($($arg: $ty),*) $(-> $ret)? => $($p)::+; )*);
    };
    (@impl_inline $t:ident $( fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $($p:ident)::+; )*) => {
        impl Kernels for $t {
            $(
                #[allow(clippy::too_many_arguments)]
                #[inline]
                fn $name($($arg: $ty),*) $(-> $ret)? {
                    $($p)::+::<$t>($($arg),*)
                }
            )*
        }
    };
    (@impl $t:ident $( fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $($p:ident)::+; )*) => {
        impl Kernels for $t {
            $(
                #[allow(clippy::too_many_arguments)]
                fn $name($($arg: $ty),*) $(-> $ret)? {
                    $($p)::+::<$t>($($arg),*)
                }
            )*
        }
    };
}

kernel_table! {
    /// [`super::gemm`].
    fn k_gemm(m: usize, n: usize, k: usize, a: &[Self], sa: Strides, b: &[Self], sb: Strides, c: &mut [Self], sc: Strides, accumulate: bool) => super::gemm;
    /// [`super::add_row_bias`].
    fn k_add_row_bias(y: &mut [Self], b: &[Self]) => super::add_row_bias;
    /// [`super::sum_rows`].
    fn k_sum_rows(dy: &[Self], db: &mut [Self]) => super::sum_rows;
    /// [`super::relu_forward`].
    fn k_relu_forward(x: &[Self], y: &mut [Self]) => super::relu_forward;
    /// [`super::relu_backward`].
    fn k_relu_backward(x: &[Self], dy: &[Self], dx: &mut [Self]) => super::relu_backward;
    /// [`super::copy`].
    fn k_copy(src: &[Self], dst: &mut [Self]) => super::copy;
    /// [`super::add_assign`].
    fn k_add_assign(y: &mut [Self], x: &[Self]) => super::add_assign;
    /// [`super::add_into`].
    fn k_add_into(y: &mut [Self], a: &[Self], b: &[Self]) => super::add_into;
    /// [`super::sum_squares`].
    fn k_sum_squares(a: &[Self]) -> Self => super::sum_squares;
    /// `super::logistic_rows`.
    fn k_logistic_rows(scores: &[Self], labels: &[usize], d: &mut [Self], n: Self, total: &mut Self) => super::logistic_rows;
    /// `super::mse_rows`: squared errors' sum; writes `2(s − t)·inv_n` into `d`.
    fn k_mse_rows(scores: &[Self], targets: &[Self], d: &mut [Self], inv_n: Self) -> Self => super::mse_rows;
    /// `super::l1_rows`: absolute errors' sum; writes `sign(s − t)·inv_n` into `d`.
    fn k_l1_rows(scores: &[Self], targets: &[Self], d: &mut [Self], inv_n: Self) -> Self => super::l1_rows;
    /// `super::huber_rows`: Huber losses' sum with threshold `delta`; writes the gradient times `inv_n`.
    fn k_huber_rows(scores: &[Self], targets: &[Self], d: &mut [Self], inv_n: Self, delta: Self) -> Self => super::huber_rows;
    /// `super::bce_logits_rows`: binary cross-entropy on logits' sum; writes `(σ(s) − t)·inv_n`.
    fn k_bce_logits_rows(scores: &[Self], targets: &[Self], d: &mut [Self], inv_n: Self) -> Self => super::bce_logits_rows;
    /// `super::sgd_update`.
    fn k_sgd_update(w: &mut [Self], dw: &[Self], lr: Self, reg: Self) => super::sgd_update;
    /// `super::momentum_update`.
    fn k_momentum_update(w: &mut [Self], dw: &[Self], v: &mut [Self], lr: Self, mu: Self, reg: Self, nesterov: bool) => super::momentum_update;
    /// `super::rmsprop_update`.
    fn k_rmsprop_update(w: &mut [Self], dw: &[Self], c: &mut [Self], lr: Self, rho: Self, eps: Self, reg: Self) => super::rmsprop_update;
    /// `super::adam_update`.
    fn k_adam_update(w: &mut [Self], dw: &[Self], m: &mut [Self], v: &mut [Self], lr: Self, b1: Self, b2: Self, eps: Self, c1: Self, c2: Self, reg: Self) => super::adam_update;
    /// `super::adamw_update`.
    fn k_adamw_update(w: &mut [Self], dw: &[Self], m: &mut [Self], v: &mut [Self], lr: Self, b1: Self, b2: Self, eps: Self, c1: Self, c2: Self, reg: Self, keep: Self) => super::adamw_update;
    /// [`conv::forward`].
    fn k_conv_forward(d: &ConvDims, x: &[Self], w: &[Self], bias: Option<&[Self]>, y: &mut [Self], scratch: &mut ConvScratch<Self>) => conv::forward;
    /// [`conv::backward`].
    fn k_conv_backward(d: &ConvDims, x: &[Self], w: &[Self], dy: &[Self], dw: &mut [Self], db: Option<&mut [Self]>, dx: Option<&mut [Self]>, scratch: &mut ConvScratch<Self>) => conv::backward;
    /// [`pool::max_forward`].
    fn k_max_pool_forward(d: &PoolDims, x: &[Self], y: &mut [Self], argmax: Option<&mut [u32]>) => pool::max_forward;
    /// [`pool::max_backward`].
    fn k_max_pool_backward(d: &PoolDims, dy: &[Self], argmax: &[u32], dx: &mut [Self]) => pool::max_backward;
    /// [`pool::relu_max_forward`].
    fn k_relu_max_pool_forward(d: &PoolDims, x: &[Self], y: &mut [Self], argmax: Option<&mut [u32]>) => pool::relu_max_forward;
    /// [`pool::relu_max_backward`].
    fn k_relu_max_pool_backward(d: &PoolDims, dy: &[Self], argmax: &[u32], y: &[Self], dx: &mut [Self]) => pool::relu_max_backward;
    /// [`norm::batchnorm_relu_pool_train`].
    fn k_batchnorm_relu_pool_train(d: NormDims, pd: &PoolDims, x: &[Self], gamma: &[Self], beta: &[Self], running_mean: &mut [Self], running_var: &mut [Self], momentum: Self, eps: Self, y: &mut [Self], mean: &mut [Self], inv_std: &mut [Self], py: &mut [Self], argmax: &mut [u32]) => norm::batchnorm_relu_pool_train;
    /// [`norm::batchnorm_relu_pool_backward`].
    fn k_batchnorm_relu_pool_backward(d: NormDims, pd: &PoolDims, pdy: &[Self], argmax: &[u32], x: &[Self], mean: &[Self], inv_std: &[Self], affine: (&[Self], &[Self]), dgamma: &mut [Self], dbeta: &mut [Self], dr: &mut [Self], dx: Option<&mut [Self]>) => norm::batchnorm_relu_pool_backward;
    /// [`norm::batchnorm_train`].
    fn k_batchnorm_train(d: NormDims, x: &[Self], gamma: &[Self], beta: &[Self], running_mean: &mut [Self], running_var: &mut [Self], momentum: Self, eps: Self, y: &mut [Self], mean: &mut [Self], inv_std: &mut [Self]) => norm::batchnorm_train;
    /// [`norm::batchnorm_eval`].
    fn k_batchnorm_eval(d: NormDims, x: &[Self], gamma: &[Self], beta: &[Self], running_mean: &[Self], running_var: &[Self], eps: Self, y: &mut [Self]) => norm::batchnorm_eval;
    /// [`norm::batchnorm_backward`].
    fn k_batchnorm_backward(d: NormDims, dy: &[Self], x: &[Self], mean: &[Self], inv_std: &[Self], gamma: &[Self], dgamma: &mut [Self], dbeta: &mut [Self], dx: Option<&mut [Self]>) => norm::batchnorm_backward;
    /// [`norm::batchnorm_relu_train`].
    fn k_batchnorm_relu_train(d: NormDims, x: &[Self], gamma: &[Self], beta: &[Self], running_mean: &mut [Self], running_var: &mut [Self], momentum: Self, eps: Self, y: &mut [Self], mean: &mut [Self], inv_std: &mut [Self]) => norm::batchnorm_relu_train;
    /// [`norm::batchnorm_relu_eval`].
    fn k_batchnorm_relu_eval(d: NormDims, x: &[Self], gamma: &[Self], beta: &[Self], running_mean: &[Self], running_var: &[Self], eps: Self, y: &mut [Self]) => norm::batchnorm_relu_eval;
    /// [`norm::batchnorm_relu_backward`].
    fn k_batchnorm_relu_backward(d: NormDims, dy: &[Self], y: &[Self], x: &[Self], mean: &[Self], inv_std: &[Self], gamma: &[Self], dgamma: &mut [Self], dbeta: &mut [Self], dx: Option<&mut [Self]>) => norm::batchnorm_relu_backward;
    /// [`activation::activation_forward`].
    fn k_activation_forward(a: Activation, x: &[Self], y: &mut [Self]) => activation::activation_forward;
    /// [`activation::activation_backward`].
    fn k_activation_backward(a: Activation, x: &[Self], y: &[Self], dy: &[Self], dx: &mut [Self]) => activation::activation_backward;
    /// [`activation::softmax_forward`].
    fn k_softmax_forward(d: RowDims, x: &[Self], y: &mut [Self], log: bool) => activation::softmax_forward;
    /// [`activation::softmax_backward`].
    fn k_softmax_backward(d: RowDims, y: &[Self], dy: &[Self], dx: &mut [Self], log: bool) => activation::softmax_backward;
    /// [`pool::avg_forward`].
    fn k_avg_pool_forward(d: &PoolDims, x: &[Self], y: &mut [Self]) => pool::avg_forward;
    /// [`pool::avg_backward`].
    fn k_avg_pool_backward(d: &PoolDims, dy: &[Self], dx: &mut [Self]) => pool::avg_backward;
    /// [`pool::global_avg_forward`].
    fn k_global_avg_pool_forward(planes: usize, hw: usize, x: &[Self], y: &mut [Self]) => pool::global_avg_forward;
    /// [`pool::global_avg_backward`].
    fn k_global_avg_pool_backward(planes: usize, hw: usize, dy: &[Self], dx: &mut [Self]) => pool::global_avg_backward;
    /// [`norm::layernorm_forward`].
    fn k_layernorm_forward(rows: usize, d: usize, x: &[Self], gamma: &[Self], beta: &[Self], eps: Self, y: &mut [Self], stats: Option<(&mut [Self], &mut [Self])>) => norm::layernorm_forward;
    /// [`norm::layernorm_backward`].
    fn k_layernorm_backward(rows: usize, d: usize, x: &[Self], dy: &[Self], gamma: &[Self], mean: &[Self], inv_std: &[Self], dgamma: &mut [Self], dbeta: &mut [Self], dx: Option<&mut [Self]>) => norm::layernorm_backward;
    /// The softmax cross-entropy rows of [`crate::loss::softmax_loss`].
    fn k_softmax_rows(scores: &[Self], c: usize, labels: &[usize], dscores: &mut [Self]) -> crate::error::Result<Self> => crate::loss::softmax_rows;
}
