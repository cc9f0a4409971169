//! Output shapes: each assertion compiles only if the layer maps the input to exactly the expected
//! type (so this file failing to build is a failing test), the rules' extents evaluated at compile
//! time and at run time, and the `Shape` trait's values.

use shaped::layer::{Layer, Module};
use shaped::layers::{BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU};
use shaped::prelude::Sequential;
use shaped::shape::Shape;
use shaped::shape::{Const, Dyn, Extents, out_extents};
use shaped::tensor::Tensor;

/// Builds only when `L`'s rule maps `In` to `Expected` (its typed `apply` is instantiated, and with
/// it the compile-time check), and checks the same at run time.
fn assert_rule<L: Module<f32>, In: Shape, Expected: Shape<Batch = In::Batch>>() {
    let _f: fn(&L, &Tensor<In>) -> Tensor<Expected> = L::apply::<In, Expected>;
    assert_eq!(out_extents(&L::RULE, In::SAMPLE), Expected::SAMPLE);
}

fn assert_rule_f64<L: Module<f64>, In: Shape, Expected: Shape<Batch = In::Batch>>() {
    let _f: fn(&L, &Tensor<In, f64>) -> Tensor<Expected, f64> = L::apply::<In, Expected>;
    assert_eq!(out_extents(&L::RULE, In::SAMPLE), Expected::SAMPLE);
}

/// A rule's output extents, computed in a constant (compile time).
const fn out_of(rule: &shaped::shape::Rule, input: Extents) -> Extents {
    match shaped::shape::apply(rule, input, &shaped::shape::Msg::new()) {
        Ok(e) => e,
        Err(_) => panic!("rule failed"),
    }
}

/// Compiles only when `L` maps `In` to exactly `Expected` (for `f32` and `f64`).
fn assert_out<L, In, Expected>()
where
    In: Shape,
    Expected: Shape,
    L: Layer<In, f32, Out = Expected>,
{
}

fn assert_out_f64<L, In, Expected>()
where
    In: Shape,
    Expected: Shape,
    L: Layer<In, f64, Out = Expected>,
{
}

/// Compiles only when `A` and `B` are the same type.
trait Same<B> {}
impl<A> Same<A> for A {}
fn same<A: Same<B>, B>() {}

type B100 = Const<100>;
type Img<B, const C: usize, const H: usize, const W: usize> = (B, Const<C>, Const<H>, Const<W>);

#[test]
fn conv_output_shapes() {
    // the homework's 4a conv: (B,1,28,28) -> (B,5,22,22)
    assert_rule::<Conv2d<1, 5, 7>, Img<Dyn, 1, 28, 28>, Img<Dyn, 5, 22, 22>>();
    assert_rule::<Conv2d<1, 5, 7>, Img<B100, 1, 28, 28>, Img<B100, 5, 22, 22>>();
    assert_rule::<Conv2d<1, 5, 7, 1, 0, false>, Img<Dyn, 1, 28, 28>, Img<Dyn, 5, 22, 22>>();
    assert_rule_f64::<Conv2d<1, 5, 7, 1, 0, false, f64>, Img<B100, 1, 28, 28>, Img<B100, 5, 22, 22>>();
    // 4b: 8 filters
    assert_rule::<Conv2d<1, 8, 7>, Img<Dyn, 1, 28, 28>, Img<Dyn, 8, 22, 22>>();
    // CIFAR: 3×3, padding 1 keeps the extent
    assert_rule::<Conv2d<3, 16, 3, 1, 1>, Img<Dyn, 3, 32, 32>, Img<Dyn, 16, 32, 32>>();
    assert_rule::<Conv2d<3, 16, 3, 1, 1>, Img<B100, 3, 32, 32>, Img<B100, 16, 32, 32>>();
    assert_rule::<Conv2d<16, 32, 3, 1, 1>, Img<Dyn, 16, 16, 16>, Img<Dyn, 32, 16, 16>>();
    assert_rule::<Conv2d<64, 64, 3, 1, 1>, Img<Dyn, 64, 2, 2>, Img<Dyn, 64, 2, 2>>();
    // stride 2, padding 1: (28 + 2 − 3)/2 + 1 = 14
    assert_rule::<Conv2d<1, 4, 3, 2, 1>, Img<Dyn, 1, 28, 28>, Img<Dyn, 4, 14, 14>>();
    // stride 2, no padding: (28 − 5)/2 + 1 = 12 (floor)
    assert_rule::<Conv2d<1, 4, 5, 2, 0>, Img<B100, 1, 28, 28>, Img<B100, 4, 12, 12>>();
    // non-square input
    assert_rule::<Conv2d<2, 3, 3>, Img<Dyn, 2, 7, 6>, Img<Dyn, 3, 5, 4>>();
    // kernel equal to the input: 1×1 output
    assert_rule::<Conv2d<1, 2, 5>, Img<Dyn, 1, 5, 5>, Img<Dyn, 2, 1, 1>>();
    // 1×1 kernel with padding 1 grows the extent
    assert_rule::<Conv2d<2, 2, 1, 1, 1>, Img<Dyn, 2, 4, 4>, Img<Dyn, 2, 6, 6>>();
    // the computed extents themselves, in constants
    const A: Extents = out_of(&<Conv2d<1, 5, 7> as Module<f32>>::RULE, Extents::map(1, 28, 28));
    const B: Extents = out_of(&<Conv2d<3, 8, 3, 2, 1> as Module<f32>>::RULE, Extents::map(3, 28, 28));
    const C: Extents = out_of(&<Conv2d<1, 32, 3> as Module<f32>>::RULE, Extents::map(1, 28, 28));
    assert_eq!(A.dims(), [5, 22, 22]);
    assert_eq!(B.dims(), [8, 14, 14]);
    assert_eq!(C.dims(), [32, 26, 26]);
    // far beyond the old 1024-entry table
    const BIG: Extents = out_of(&<Conv2d<3, 4, 3, 1, 1> as Module<f32>>::RULE, Extents::map(3, 4096, 1 << 20));
    assert_eq!(BIG.dims(), [4, 4096, 1 << 20]);
}

#[test]
fn pool_output_shapes() {
    assert_rule::<MaxPool2d<2>, Img<Dyn, 5, 22, 22>, Img<Dyn, 5, 11, 11>>();
    assert_rule::<MaxPool2d<2>, Img<B100, 5, 22, 22>, Img<B100, 5, 11, 11>>();
    assert_rule::<MaxPool2d<2, 2>, Img<B100, 8, 22, 22>, Img<B100, 8, 11, 11>>();
    assert_rule::<MaxPool2d<3, 1>, Img<Dyn, 2, 10, 10>, Img<Dyn, 2, 8, 8>>();
    assert_rule::<MaxPool2d<3, 2>, Img<Dyn, 2, 11, 11>, Img<Dyn, 2, 5, 5>>();
    assert_rule::<MaxPool2d<3, 2>, Img<B100, 2, 7, 9>, Img<B100, 2, 3, 4>>();
    // CIFAR: 32 → 16 → 8 → 4 → 2 → 1
    assert_rule::<MaxPool2d<2>, Img<Dyn, 16, 32, 32>, Img<Dyn, 16, 16, 16>>();
    assert_rule::<MaxPool2d<2>, Img<Dyn, 64, 2, 2>, Img<Dyn, 64, 1, 1>>();
    const P: Extents = out_of(&<MaxPool2d<3, 2> as Module<f32>>::RULE, Extents::map(2, 11, 11));
    assert_eq!(P.dims(), [2, 5, 5]);
    const Q: Extents = out_of(&<MaxPool2d<2> as Module<f32>>::RULE, Extents::map(64, 2048, 4096));
    assert_eq!(Q.dims(), [64, 1024, 2048]);
}

#[test]
fn flatten_output_shapes() {
    assert_rule::<Flatten, Img<Dyn, 5, 11, 11>, (Dyn, Const<605>)>();
    assert_rule::<Flatten, Img<B100, 5, 11, 11>, (B100, Const<605>)>();
    assert_rule::<Flatten, Img<Dyn, 8, 11, 11>, (Dyn, Const<968>)>();
    assert_rule::<Flatten, Img<Dyn, 64, 1, 1>, (Dyn, Const<64>)>();
    assert_rule::<Flatten, Img<Dyn, 1, 28, 28>, (Dyn, Const<784>)>();
    assert_rule::<Flatten, Img<Dyn, 3, 32, 32>, (Dyn, Const<3072>)>();
    // PyTorch's MNIST CNN flattens 64×12×12 = 9216; VGG-16 512×7×7 = 25088
    assert_rule::<Flatten, Img<Dyn, 64, 12, 12>, (Dyn, Const<9216>)>();
    assert_rule::<Flatten, Img<Dyn, 512, 7, 7>, (Dyn, Const<25088>)>();
    const F: Extents = out_of(&<Flatten as Module<f32>>::RULE, Extents::map(1024, 1024, 1024));
    assert_eq!(F.dims(), [1 << 30]);
}

#[test]
fn linear_and_elementwise_output_shapes() {
    assert_out::<Linear<605, 16>, (Dyn, Const<605>), (Dyn, Const<16>)>();
    assert_out::<Linear<605, 16>, (B100, Const<605>), (B100, Const<16>)>();
    assert_out::<Linear<16, 10>, (Dyn, Const<16>), (Dyn, Const<10>)>();
    assert_out::<Linear<20, 1>, (Const<50>, Const<20>), (Const<50>, Const<1>)>();
    assert_out::<Linear<784, 64>, (Dyn, Const<784>), (Dyn, Const<64>)>();
    assert_out_f64::<Linear<968, 16, f64>, (Dyn, Const<968>), (Dyn, Const<16>)>();
    assert_out::<ReLU, Img<Dyn, 5, 22, 22>, Img<Dyn, 5, 22, 22>>();
    assert_out::<ReLU, (B100, Const<16>), (B100, Const<16>)>();
    assert_out::<Dropout, (Dyn, Const<64>), (Dyn, Const<64>)>();
    assert_out::<BatchNorm1d<16>, (Dyn, Const<16>), (Dyn, Const<16>)>();
    assert_out::<BatchNorm2d<8>, Img<B100, 8, 22, 22>, Img<B100, 8, 22, 22>>();
}

#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Hw4a {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu: ReLU,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

#[test]
fn homework_4a_chain_by_types() {
    // (B,1,28,28) → conv (B,5,22,22) → pool (B,5,11,11) → flatten (B,605) → fc 16 → fc 10: the
    // derived model's output type, for a runtime and a static batch
    same::<<Hw4a as Layer<Img<Dyn, 1, 28, 28>, f32>>::Out, (Dyn, Const<10>)>();
    same::<<Hw4a as Layer<Img<B100, 1, 28, 28>, f32>>::Out, (B100, Const<10>)>();
    let rows = Hw4a::zeros().summary_rows(Extents::map(1, 28, 28));
    let outs: Vec<Vec<usize>> = rows.iter().map(|r| r.output.clone()).collect();
    assert_eq!(outs, vec![vec![5, 22, 22], vec![5, 22, 22], vec![5, 11, 11], vec![605], vec![16], vec![16], vec![10]]);
}

#[test]
fn linear_input_width_is_inferred() {
    // `Linear<_, 10>`: the input width comes from the tensor it is applied to
    use shaped::layer::Module;
    let fc: Linear<_, 10> = Module::zeros();
    let x = Tensor::<(Dyn, Const<605>)>::from_vec(vec![1.0; 2 * 605]).unwrap();
    let y = fc.predict(&x);
    same_as::<(Dyn, Const<10>), _>(&y);
    assert_eq!(y.dims(), vec![2, 10]);
    assert_eq!(fc.weight.dims(), vec![605, 10]);

    let fc2: Linear<_, 16, f64> = Module::zeros();
    let x = Tensor::<(B100, Const<968>), f64>::zeros(Const);
    let y = fc2.predict(&x);
    same_as::<(B100, Const<16>), _>(&y);
    assert_eq!(fc2.weight.dims(), vec![968, 16]);
}

/// Compiles only when the tensor's shape is `S`.
fn same_as<S: Shape, T>(_: &Tensor<T, impl shaped::kernels::Elem>)
where
    T: Shape + Same<S>,
{
}

#[test]
fn runtime_shapes_agree_with_types() {
    use shaped::layer::Module;
    let conv = Conv2d::<1, 5, 7>::zeros();
    let x = Tensor::<Img<Dyn, 1, 28, 28>>::zeros(Dyn(3));
    let y: Tensor<Img<Dyn, 5, 22, 22>> = conv.apply(&x);
    assert_eq!(y.dims(), vec![3, 5, 22, 22]);
    let p: Tensor<Img<Dyn, 5, 11, 11>> = Module::<f32>::apply(&MaxPool2d::<2>, &y);
    assert_eq!(p.dims(), vec![3, 5, 11, 11]);
    let f: Tensor<(Dyn, Const<605>)> = Module::<f32>::apply(&Flatten, &p);
    assert_eq!(f.dims(), vec![3, 605]);
    let c: Tensor<Img<B100, 4, 14, 14>> =
        Conv2d::<1, 4, 3, 2, 1>::zeros().apply(&Tensor::<Img<B100, 1, 28, 28>>::zeros(Const));
    assert_eq!(c.dims(), vec![100, 4, 14, 14]);
    let c: Tensor<Img<Dyn, 4, 12, 12>> =
        Conv2d::<1, 4, 5, 2, 0>::zeros().apply(&Tensor::<Img<Dyn, 1, 28, 28>>::zeros(Dyn(2)));
    assert_eq!(c.dims(), vec![2, 4, 12, 12]);
    let m: Tensor<Img<Dyn, 2, 5, 5>> =
        Module::<f32>::apply(&MaxPool2d::<3, 2>, &Tensor::<Img<Dyn, 2, 11, 11>>::zeros(Dyn(1)));
    assert_eq!(m.dims(), vec![1, 2, 5, 5]);
}

#[test]
fn shape_trait_values() {
    type S1 = (Dyn,);
    type S2 = (Dyn, Const<605>);
    type S3 = (Const<4>, Const<3>, Const<7>);
    type S4 = Img<B100, 5, 22, 22>;
    assert_eq!(<S1 as Shape>::RANK, 1);
    assert_eq!(<S2 as Shape>::RANK, 2);
    assert_eq!(<S3 as Shape>::RANK, 3);
    assert_eq!(<S4 as Shape>::RANK, 4);
    assert_eq!(<S1 as Shape>::SAMPLE_NUMEL, 1);
    assert_eq!(<S2 as Shape>::SAMPLE_NUMEL, 605);
    assert_eq!(<S3 as Shape>::SAMPLE_NUMEL, 21);
    assert_eq!(<S4 as Shape>::SAMPLE_NUMEL, 5 * 22 * 22);

    let s1: S1 = Shape::from_batch(Dyn(7));
    assert_eq!(s1.dims(), [7, 0, 0, 0]);
    assert_eq!(s1.numel(), 7);
    let s2: S2 = Shape::from_batch(Dyn(3));
    assert_eq!(s2.dims(), [3, 605, 0, 0]);
    assert_eq!(s2.dims_vec(), vec![3, 605]);
    assert_eq!(s2.numel(), 3 * 605);
    let s3: S3 = Shape::from_batch(Const);
    assert_eq!(s3.dims(), [4, 3, 7, 0]);
    assert_eq!(s3.numel(), 84);
    let s4: S4 = Shape::from_batch(Const);
    assert_eq!(s4.dims(), [100, 5, 22, 22]);
    assert_eq!(s4.dims_vec(), vec![100, 5, 22, 22]);
    assert_eq!(s4.numel(), 100 * 5 * 22 * 22);
    assert_eq!(s4.batch(), Const::<100>);
    assert_eq!(shaped::shape::fmt_dims(&s4.dims_vec()), "(100, 5, 22, 22)");

    use shaped::shape::{ConstDim, Dim};
    assert_eq!(<Const<28> as ConstDim>::N, 28);
    assert_eq!(Const::<28>.size(), 28);
    assert_eq!(Dyn(5).size(), 5);
    assert_eq!(Const::<3>::from_size(3), Some(Const::<3>));
    assert_eq!(Const::<3>::from_size(4), None);
    assert_eq!(Dyn::from_size(4), Some(Dyn(4)));

    // tensors carry their runtime shape
    let t = Tensor::<S2>::zeros(Dyn(3));
    assert_eq!(t.len(), 3 * 605);
    assert_eq!(t.shape(), s2);
    let mut t = Tensor::<Img<Dyn, 2, 3, 3>>::zeros(Dyn(2));
    t.set_batch(Dyn(5));
    assert_eq!(t.dims(), vec![5, 2, 3, 3]);
    assert_eq!(t.len(), 90);
}
