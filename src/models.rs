//! The reference workload's models (the spec's experiments 1a–5), as derived sequential models.
//!
//! | experiment | model | input |
//! |---|---|---|
//! | 1a, 2a | [`LinearModel`]: fc 20→1 | `(20,)` |
//! | 1b, 2b | [`TwoLayer`]: fc 20→32, ReLU, fc 32→1 | `(20,)` |
//! | 3a | [`Softmax`]: fc 784→10 | `(784,)` |
//! | 3b | [`Mlp`]: fc 784→64, ReLU, fc 64→10 | `(784,)` |
//! | 4a | [`Cnn`]: conv 1→5 7×7, ReLU, pool 2, fc 605→16, ReLU, fc 16→10 | `(1, 28, 28)` |
//! | 4b | [`CnnBn`]: 4a with 8 filters, batch norm and vanilla dropout | `(1, 28, 28)` |
//! | 5 | [`Vgg`]: the small VGG for CIFAR-10 | `(3, 32, 32)` |
//!
//! Each spatial batch norm followed by a ReLU is one fused layer, [`BatchNormReLU2d`] (the same
//! parameters under the same names, the same results to the bit, two passes over the activation
//! fewer; issue 19).

use crate::layers::BatchNormReLU2d;
use crate::prelude::*;

/// Experiments 1a/2a: one fully connected layer, 20 → 1 (logistic or hinge on top).
#[derive(Sequential)]
#[sequential(input = (20,))]
pub struct LinearModel {
    /// Layer `fc`.
    pub fc: Linear<20, 1>,
}

/// Experiments 1b/2b: 20 → 32 → ReLU → 1.
#[derive(Sequential)]
#[sequential(input = (20,))]
pub struct TwoLayer {
    /// Layer `fc1`.
    pub fc1: Linear<20, 32>,
    /// Layer `relu`.
    pub relu: ReLU,
    /// Layer `fc2`.
    pub fc2: Linear<32, 1>,
}

/// Experiment 3a: softmax regression, 784 → 10.
#[derive(Sequential)]
#[sequential(input = (784,))]
pub struct Softmax {
    /// Layer `fc`.
    pub fc: Linear<784, 10>,
}

/// Experiment 3b: 784 → 64 → ReLU → 10.
#[derive(Sequential)]
#[sequential(input = (784,))]
pub struct Mlp {
    /// Layer `fc1`.
    pub fc1: Linear<784, 64>,
    /// Layer `relu`.
    pub relu: ReLU,
    /// Layer `fc2`.
    pub fc2: Linear<64, 10>,
}

/// Experiment 4a: conv 5@7×7 → ReLU → pool 2 → fc 16 → ReLU → fc 10.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
pub struct Cnn {
    /// Layer `conv`.
    pub conv: Conv2d<1, 5, 7, 1, 0, false>,
    /// Layer `relu1`.
    pub relu1: ReLU,
    /// Layer `pool`.
    pub pool: MaxPool2d<2>,
    /// Layer `flat`.
    pub flat: Flatten,
    /// Layer `fc1`.
    pub fc1: Linear<605, 16>,
    /// Layer `relu2`.
    pub relu2: ReLU,
    /// Layer `fc2`.
    pub fc2: Linear<16, 10>,
}

/// Experiment 4b: 4a with 8 filters, batch norm and (the homework's vanilla) dropout.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
pub struct CnnBn {
    /// Layer `conv`.
    pub conv: Conv2d<1, 8, 7, 1, 0, false>,
    /// Layer `bn1`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn1: BatchNormReLU2d<8>,
    /// Layer `pool`.
    pub pool: MaxPool2d<2>,
    /// Layer `flat`.
    pub flat: Flatten,
    /// Layer `fc1`.
    pub fc1: Linear<968, 16>,
    /// Layer `bn2`.
    pub bn2: BatchNorm1d<16>,
    /// Layer `relu2`.
    pub relu2: ReLU,
    /// Layer `drop`.
    pub drop: Dropout<Keep<50>, Vanilla>,
    /// Layer `fc2`.
    pub fc2: Linear<16, 10>,
}

/// A 3×3 convolution (padding 1, bias) followed by batch norm and ReLU.
#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
pub struct Block1 {
    /// Layer `conv`.
    pub conv: Conv2d<3, 16, 3, 1, 1>,
    /// Layer `bn`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn: BatchNormReLU2d<16>,
    /// Layer `pool`.
    pub pool: MaxPool2d<2>,
}

/// Experiment 5: the small VGG for CIFAR-10 (blocks nest as derived models).
#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
pub struct Vgg {
    /// Layer `block1`.
    pub block1: Block1,
    /// Layer `conv2`.
    pub conv2: Conv2d<16, 32, 3, 1, 1>,
    /// Layer `bn2`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn2: BatchNormReLU2d<32>,
    /// Layer `pool2`.
    pub pool2: MaxPool2d<2>,
    /// Layer `conv3`.
    pub conv3: Conv2d<32, 32, 3, 1, 1>,
    /// Layer `bn3`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn3: BatchNormReLU2d<32>,
    /// Layer `conv4`.
    pub conv4: Conv2d<32, 32, 3, 1, 1>,
    /// Layer `bn4`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn4: BatchNormReLU2d<32>,
    /// Layer `pool4`.
    pub pool4: MaxPool2d<2>,
    /// Layer `conv5`.
    pub conv5: Conv2d<32, 64, 3, 1, 1>,
    /// Layer `bn5`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn5: BatchNormReLU2d<64>,
    /// Layer `conv6`.
    pub conv6: Conv2d<64, 64, 3, 1, 1>,
    /// Layer `bn6`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn6: BatchNormReLU2d<64>,
    /// Layer `pool6`.
    pub pool6: MaxPool2d<2>,
    /// Layer `conv7`.
    pub conv7: Conv2d<64, 64, 3, 1, 1>,
    /// Layer `bn7`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn7: BatchNormReLU2d<64>,
    /// Layer `conv8`.
    pub conv8: Conv2d<64, 64, 3, 1, 1>,
    /// Layer `bn8`: batch norm and ReLU, fused (`BatchNormReLU2d`; same parameters).
    pub bn8: BatchNormReLU2d<64>,
    /// Layer `pool8`.
    pub pool8: MaxPool2d<2>,
    /// Layer `flat`.
    pub flat: Flatten,
    /// Layer `fc1`.
    pub fc1: Linear<64, 64>,
    /// Layer `relu9`.
    pub relu9: ReLU,
    /// Layer `drop`.
    pub drop: Dropout<Keep<50>, Inverted>,
    /// Layer `fc2`.
    pub fc2: Linear<64, 10>,
}
