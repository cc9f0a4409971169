//! A small residual CNN shared by `tests/alloc.rs` and `tests/inference.rs`
//! (`#[path = "common/rescnn.rs"] mod rescnn;`).

use shaped::prelude::*;

/// The main branch of [`ResCnn`]'s residual block: a strided convolution and batch norm.
#[derive(Sequential)]
pub struct Branch {
    conv: Conv2d<4, 8, 3, 2, 1, false>,
    bn: BatchNorm2d<8>,
}

/// The projection shortcut that matches [`Branch`]: a strided 1×1 convolution.
#[derive(Sequential)]
pub struct Shortcut {
    conv: Conv2d<4, 8, 1, 2, 0, false>,
}

/// A small residual CNN with a projection shortcut and batch norm (3×16×16 → 5 scores), for the
/// inference and allocation checks.
#[derive(Sequential)]
#[sequential(input = (3, 16, 16))]
pub struct ResCnn {
    stem: Conv2d<3, 4, 3, 1, 1>,
    relu: ReLU,
    block: Residual<Branch, Shortcut>,
    pool: GlobalAvgPool,
    fc: Linear<8, 5>,
}
