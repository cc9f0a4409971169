// One block generic over channels, spatial size and element type, used at two resolutions.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (C, H, W), output = (C, H, W), elem = E)]
struct Block<const C: usize, const H: usize, const W: usize, E: Elem> {
    conv: Conv2d<C, C, 3, 1, 1, false, E>,
    bn: BatchNorm2d<C, E>,
    relu: ReLU,
}

#[derive(Sequential)]
#[sequential(input = (3, 32, 32), elem = E)]
struct Net<E: Elem> {
    stem: Conv2d<3, 16, 3, 1, 1, true, E>,
    block32: Block<16, 32, 32, E>,
    pool: MaxPool2d<2>,
    block16: Block<16, 16, 16, E>,
    gap: MaxPool2d<16>,
    flat: Flatten,
    fc: Linear<16, 10, E>,
}

// A block with no declared input takes whatever its layers accept, checked where it is used.
#[derive(Sequential)]
struct Any {
    relu: ReLU,
    drop: Dropout,
}

#[derive(Sequential)]
#[sequential(input = (8, 12, 12))]
struct UsesAny {
    a: Any,
    pool: MaxPool2d<2>,
    b: Any,
    flat: Flatten,
    fc: Linear<288, 2>,
}

fn main() {
    let x = Tensor::<(Dyn, Const<3>, Const<32>, Const<32>), f64>::zeros(Dyn(2));
    let y: Tensor<(Dyn, Const<10>), f64> = Net::<f64>::zeros().predict(&x);
    assert_eq!(y.dims(), vec![2, 10]);
    let b = Block::<16, 8, 8, f32>::zeros();
    let h: Tensor<(Dyn, Const<16>, Const<8>, Const<8>)> = b.predict(&Tensor::zeros(Dyn(1)));
    assert_eq!(h.dims(), vec![1, 16, 8, 8]);
    let y: Tensor<(Dyn, Const<2>)> = UsesAny::zeros().predict(&Tensor::zeros(Dyn(3)));
    assert_eq!(y.dims(), vec![3, 2]);
}
