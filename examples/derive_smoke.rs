use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Cnn {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = Cnn::init(&mut rng, Init::default());
    println!("{net}");
    let x = Tensor::<(Dyn, Const<1>, Const<28>, Const<28>)>::zeros(Dyn(3));
    let y = net.predict(&x);
    println!("{:?}", y.dims());
}
