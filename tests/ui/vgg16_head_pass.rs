// VGG-16's classifier head: 512·7·7 = 25088 → 4096 → 4096 → 1000.
use shaped::prelude::*;

#[derive(Sequential)]
#[sequential(input = (512, 7, 7))]
struct Head {
    flat: Flatten,
    fc1: Linear<25088, 4096>,
    relu1: ReLU,
    drop1: Dropout,
    fc2: Linear<4096, 4096>,
    relu2: ReLU,
    drop2: Dropout,
    fc3: Linear<4096, 1000>,
}

fn takes(_: Tensor<(Dyn, Const<1000>)>) {}

fn main() {
    // The type alone: building the 120M-parameter head is not needed to check it.
    fn out_of(h: &Head, x: &Tensor<(Dyn, Const<512>, Const<7>, Const<7>)>) -> Tensor<(Dyn, Const<1000>)> {
        h.predict(x)
    }
    let _ = out_of;
    let _ = takes;
}
