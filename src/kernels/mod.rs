//! Numeric kernels: non-generic loops over slices with sizes passed in; the layers are thin typed
//! wrappers that pass their static sizes.
//!
//! Matrix products go through one function, [`gemm()`], backed by the crate's own register-blocked
//! kernel (`matmul.rs`; `ARCHITECTURE.md` says why it replaced the `gemm` crate). Kernels are generic only over the element type (`f32` for
//! training, `f64` for gradient checks): two instantiations, whatever the number of models.

pub mod activation;
pub mod conv;
mod cpu;
mod elem;
mod elementwise;
mod gemm;
mod layernorm;
mod loss;
mod matmul;
pub mod norm;
mod norm_pool;
mod optim;
pub mod pool;
pub mod simd;
mod split;
mod table;

pub use elem::Elem;
pub use elementwise::{add_assign, add_into, add_row_bias, copy, relu_backward, relu_forward, sum_rows, sum_squares};
pub use gemm::{Strides, gemm};
pub use simd::{Isa, detected_isa, isa, set_isa};
pub use table::Kernels;

pub(crate) use cpu::multiversion;
pub(crate) use elementwise::{copy_short, first_non_finite};
pub(crate) use loss::{bce_logits_rows, huber_rows, l1_rows, logistic_rows, mse_rows};
pub(crate) use optim::{adam_update, adamw_update, momentum_update, rmsprop_update, sgd_update};
pub(crate) use split::split_batch;

use elem::sealed;

/// Grows this thread's kernel scratch (the GEMM packing buffers) to the largest any thread has
/// needed, so that work stealing never hands a thread a part it must allocate for mid-step.
pub(crate) fn presize_scratch() {
    matmul::presize_panels();
}
