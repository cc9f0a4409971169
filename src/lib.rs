//! # shaped
//!
//! Neural networks whose tensor shapes live in the type system. A model is a Rust type; if one
//! layer's output does not fit the next layer's input, `cargo check` rejects it with a message that
//! names the layer and both shapes in numbers. `#[derive(Sequential)]` writes the forward and
//! backward passes of sequential models; the kernels are monomorphized for their static shapes.
//!
//! Start with [`prelude`], the [`Layer`] trait, the layers in [`layers`] and `ARCHITECTURE.md`.
//!
//! ```
//! use shaped::prelude::*;
//!
//! #[derive(Sequential)]
//! #[sequential(input = (1, 28, 28))]        // the sample shape; the batch stays free
//! struct Cnn {
//!     conv: Conv2d<1, 5, 7, 1, 0, false>,   // 1 → 5 channels, 7×7, stride 1, no padding, no bias
//!     relu1: ReLU,
//!     pool: MaxPool2d<2>,                   // must tile its input exactly
//!     flat: Flatten,
//!     fc1: Linear<605, 16>,                 // 5·11·11 = 605: a wrong number fails `cargo check`
//!     relu2: ReLU,
//!     fc2: Linear<16, 10>,
//! }
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let net = Cnn::init(&mut rng, Init::Gaussian(1e-3));
//! assert!(net.to_string().contains("fc1"));  // the summary: field, layer, output shape, parameters
//! let x = Tensor::<(Dyn, Const<1>, Const<28>, Const<28>)>::zeros(Dyn(32));
//! let scores = net.predict(&x);             // Tensor<(Dyn, Const<10>)>
//! assert_eq!(scores.batch_size(), 32);
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Visitor callbacks (`&mut dyn FnMut(&ParamInfo, &mut [E], &[E])`) are spelled out so that hand-written
// `Module` impls can copy the signature; clippy would have them hidden behind aliases.
#![allow(clippy::type_complexity)]

// Lets `#[derive(Sequential)]` (which writes `::shaped::…` paths) work inside this crate too.
extern crate self as shaped;

pub mod data;
pub mod dist;
pub mod error;
pub mod flops;
pub mod fuse;
pub mod gradcheck;
pub mod guide;
pub mod init;
pub mod io;
pub mod kernels;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod models;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod schedule;
pub mod shape;
pub mod solver;
pub mod step;
pub mod tensor;
pub mod threads;

pub use error::{Error, Result};
pub use layer::{Layer, Module, ParamInfo, ParamKind, Path};
pub use model::{Model, OutputOf, Predictor};
pub use shaped_macros::Sequential;
pub use tensor::Tensor;
pub use threads::{num_threads, set_num_threads};

/// Everything a model definition and a training loop need.
///
/// It exports no name of the standard prelude or of `std::path` (`Result`, `Error`, `Drop` and
/// the parameter `Path` stay under their modules: `shaped::Result`, `shaped::layers::Drop`, …;
/// the parameter path is `ParamPath` here).
pub mod prelude {
    pub use crate::Sequential;
    pub use crate::data::{Augment, ChannelNorm, Dataset};
    pub use crate::init::Init;
    pub use crate::kernels::Elem;
    pub use crate::layer::{Layer, Module, ParamInfo, ParamKind, Path as ParamPath};
    pub use crate::layers::{
        AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormReLU2d, Conv2d, Dropout, Flatten, GELU, GlobalAvgPool, Identity,
        Inverted, Keep, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ReLU, Residual, Sigmoid, Softmax, Tanh,
        Vanilla,
    };
    pub use crate::loss::{
        BceWithLogits, Hinge, Huber, L1, Logistic, Loss, Mse, SoftmaxCrossEntropy, hinge_loss, logistic_loss,
        softmax_loss,
    };
    pub use crate::model::{Model, OutputOf, Predictor};
    pub use crate::optim::{Adam, AdamW, AnyOptimizer, OptimConfig, Optimizer, RmsProp, Sgd, SgdMomentum, UpdateRule};
    pub use crate::schedule::{Exponential, StepDecay, WarmupCosine};
    pub use crate::shape::{Const, ConstDim, Dim, Dyn, Shape};
    pub use crate::solver::{Solver, accuracy, predict};
    pub use crate::tensor::Tensor;
    pub use rand::Rng;
    pub use rand::SeedableRng;
    pub use rand::rngs::StdRng;
}

/// The README's Rust blocks, compiled and run as doctests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
