// Residual blocks: an identity shortcut, and a projection shortcut for a block that halves the
// resolution and doubles the channels.
use shaped::prelude::*;

#[derive(Sequential)]
struct Basic {
    conv1: Conv2d<16, 16, 3, 1, 1, false>,
    bn1: BatchNorm2d<16>,
    relu: ReLU,
    conv2: Conv2d<16, 16, 3, 1, 1, false>,
    bn2: BatchNorm2d<16>,
}

#[derive(Sequential)]
struct Down {
    conv1: Conv2d<16, 32, 3, 2, 1, false>,
    bn1: BatchNorm2d<32>,
    relu: ReLU,
    conv2: Conv2d<32, 32, 3, 1, 1, false>,
    bn2: BatchNorm2d<32>,
}

#[derive(Sequential)]
#[sequential(input = (3, 16, 16))]
struct ResNet {
    stem: Conv2d<3, 16, 3, 1, 1>,
    res1: Residual<Basic>,
    relu1: ReLU,
    res2: Residual<Down, Conv2d<16, 32, 1, 2, 0, false>>,
    relu2: ReLU,
    pool: MaxPool2d<8>,
    flat: Flatten,
    fc: Linear<32, 10>,
}

fn main() {
    let net = ResNet::zeros();
    let y: Tensor<(Dyn, Const<10>)> = net.predict(&Tensor::zeros(Dyn(2)));
    assert_eq!(y.dims(), vec![2, 10]);
    let s = format!("{net}");
    assert!(s.contains("32×8×8"), "{s}");
}
