//! Experiment 5: the small VGG with a nested derived block.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Block1 {
    conv: Conv2d<3, 16, 3, 1, 1>,
    bn: BatchNorm2d<16>,
    relu: ReLU,
    pool: MaxPool2d<2>,
}

#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Vgg {
    block1: Block1,
    conv2: Conv2d<16, 32, 3, 1, 1>,
    bn2: BatchNorm2d<32>,
    relu2: ReLU,
    pool2: MaxPool2d<2>,
    conv3: Conv2d<32, 32, 3, 1, 1>,
    bn3: BatchNorm2d<32>,
    relu3: ReLU,
    conv4: Conv2d<32, 32, 3, 1, 1>,
    bn4: BatchNorm2d<32>,
    relu4: ReLU,
    pool4: MaxPool2d<2>,
    conv5: Conv2d<32, 64, 3, 1, 1>,
    bn5: BatchNorm2d<64>,
    relu5: ReLU,
    conv6: Conv2d<64, 64, 3, 1, 1>,
    bn6: BatchNorm2d<64>,
    relu6: ReLU,
    pool6: MaxPool2d<2>,
    conv7: Conv2d<64, 64, 3, 1, 1>,
    bn7: BatchNorm2d<64>,
    relu7: ReLU,
    conv8: Conv2d<64, 64, 3, 1, 1>,
    bn8: BatchNorm2d<64>,
    relu8: ReLU,
    pool8: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<64, 64>,
    relu9: ReLU,
    drop: Dropout<Keep<50>, Inverted>,
    fc2: Linear<64, 10>,
}

fn main() {
    let x = Tensor::<(Dyn, Const<3>, Const<32>, Const<32>)>::zeros(Dyn(2));
    assert_eq!(Vgg::zeros().predict(&x).dims(), [2, 10]);
    assert_eq!(Block1::zeros().predict(&x).dims(), [2, 16, 16, 16]);
}
