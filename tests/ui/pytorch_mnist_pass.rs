// PyTorch's MNIST example CNN: the flatten is 64·12·12 = 9216, far past the old shape table.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Net {
    conv1: Conv2d<1, 32, 3>,
    relu1: ReLU,
    conv2: Conv2d<32, 64, 3>,
    relu2: ReLU,
    pool: MaxPool2d<2>,
    drop1: Dropout<Keep<75>>,
    flat: Flatten,
    fc1: Linear<9216, 128>,
    relu3: ReLU,
    drop2: Dropout<Keep<50>>,
    fc2: Linear<128, 10>,
}

// And the same with a 10-filter conv and pool (flatten 10·13·13 = 1690).
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Small {
    conv: Conv2d<1, 10, 3>,
    relu: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc: Linear<1690, 10>,
}

fn main() {
    let net = Net::zeros();
    let x = Tensor::<(Dyn, Const<1>, Const<28>, Const<28>)>::zeros(Dyn(2));
    let y: Tensor<(Dyn, Const<10>)> = net.predict(&x);
    assert_eq!(y.dims(), vec![2, 10]);
    let y: Tensor<(Dyn, Const<10>)> = Small::zeros().predict(&x);
    assert_eq!(y.dims(), vec![2, 10]);
    assert!(format!("{net}").contains("9216"));
}
