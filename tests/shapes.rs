//! Type-level output shapes: each assertion compiles only if the layer's `Out` is exactly the
//! expected type (so this file failing to build is a failing test), plus the `Shape` trait's values.

use shaped::layer::Layer;
use shaped::layers::{BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU};
use shaped::shape::{Const, Dyn};
use shaped::shape::{ConvOut, FlatOut, PoolOut, Shape};
use shaped::tensor::Tensor;

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
    assert_out::<Conv2d<1, 5, 7>, Img<Dyn, 1, 28, 28>, Img<Dyn, 5, 22, 22>>();
    assert_out::<Conv2d<1, 5, 7>, Img<B100, 1, 28, 28>, Img<B100, 5, 22, 22>>();
    assert_out::<Conv2d<1, 5, 7, 1, 0, false>, Img<Dyn, 1, 28, 28>, Img<Dyn, 5, 22, 22>>();
    assert_out_f64::<Conv2d<1, 5, 7, 1, 0, false, f64>, Img<B100, 1, 28, 28>, Img<B100, 5, 22, 22>>();
    // 4b: 8 filters
    assert_out::<Conv2d<1, 8, 7>, Img<Dyn, 1, 28, 28>, Img<Dyn, 8, 22, 22>>();
    // CIFAR: 3×3, padding 1 keeps the extent
    assert_out::<Conv2d<3, 16, 3, 1, 1>, Img<Dyn, 3, 32, 32>, Img<Dyn, 16, 32, 32>>();
    assert_out::<Conv2d<3, 16, 3, 1, 1>, Img<B100, 3, 32, 32>, Img<B100, 16, 32, 32>>();
    assert_out::<Conv2d<16, 32, 3, 1, 1>, Img<Dyn, 16, 16, 16>, Img<Dyn, 32, 16, 16>>();
    assert_out::<Conv2d<64, 64, 3, 1, 1>, Img<Dyn, 64, 2, 2>, Img<Dyn, 64, 2, 2>>();
    // stride 2, padding 1: (28 + 2 − 3)/2 + 1 = 14
    assert_out::<Conv2d<1, 4, 3, 2, 1>, Img<Dyn, 1, 28, 28>, Img<Dyn, 4, 14, 14>>();
    // stride 2, no padding: (28 − 5)/2 + 1 = 12 (floor)
    assert_out::<Conv2d<1, 4, 5, 2, 0>, Img<B100, 1, 28, 28>, Img<B100, 4, 12, 12>>();
    // non-square input
    assert_out::<Conv2d<2, 3, 3>, Img<Dyn, 2, 7, 6>, Img<Dyn, 3, 5, 4>>();
    // kernel equal to the input: 1×1 output
    assert_out::<Conv2d<1, 2, 5>, Img<Dyn, 1, 5, 5>, Img<Dyn, 2, 1, 1>>();
    // 1×1 kernel with padding 1 grows the extent
    assert_out::<Conv2d<2, 2, 1, 1, 1>, Img<Dyn, 2, 4, 4>, Img<Dyn, 2, 6, 6>>();
    // the computed extents themselves
    same::<ConvOut<Const<28>, Const<7>, Const<1>, Const<0>>, Const<22>>();
    same::<ConvOut<Const<32>, Const<3>, Const<1>, Const<1>>, Const<32>>();
    same::<ConvOut<Const<28>, Const<3>, Const<2>, Const<1>>, Const<14>>();
    same::<ConvOut<Const<28>, Const<5>, Const<2>, Const<0>>, Const<12>>();
}

#[test]
fn pool_output_shapes() {
    assert_out::<MaxPool2d<2>, Img<Dyn, 5, 22, 22>, Img<Dyn, 5, 11, 11>>();
    assert_out::<MaxPool2d<2>, Img<B100, 5, 22, 22>, Img<B100, 5, 11, 11>>();
    assert_out::<MaxPool2d<2, 2>, Img<B100, 8, 22, 22>, Img<B100, 8, 11, 11>>();
    assert_out::<MaxPool2d<3, 1>, Img<Dyn, 2, 10, 10>, Img<Dyn, 2, 8, 8>>();
    assert_out::<MaxPool2d<3, 2>, Img<Dyn, 2, 11, 11>, Img<Dyn, 2, 5, 5>>();
    assert_out::<MaxPool2d<3, 2>, Img<B100, 2, 7, 9>, Img<B100, 2, 3, 4>>();
    // CIFAR: 32 → 16 → 8 → 4 → 2 → 1
    assert_out::<MaxPool2d<2>, Img<Dyn, 16, 32, 32>, Img<Dyn, 16, 16, 16>>();
    assert_out::<MaxPool2d<2>, Img<Dyn, 64, 2, 2>, Img<Dyn, 64, 1, 1>>();
    same::<PoolOut<Const<22>, Const<2>, Const<2>>, Const<11>>();
    same::<PoolOut<Const<10>, Const<3>, Const<1>>, Const<8>>();
    same::<PoolOut<Const<11>, Const<3>, Const<2>>, Const<5>>();
}

#[test]
fn flatten_output_shapes() {
    assert_out::<Flatten, Img<Dyn, 5, 11, 11>, (Dyn, Const<605>)>();
    assert_out::<Flatten, Img<B100, 5, 11, 11>, (B100, Const<605>)>();
    assert_out::<Flatten, Img<Dyn, 8, 11, 11>, (Dyn, Const<968>)>();
    assert_out::<Flatten, Img<Dyn, 64, 1, 1>, (Dyn, Const<64>)>();
    assert_out::<Flatten, Img<Dyn, 1, 28, 28>, (Dyn, Const<784>)>();
    assert_out::<Flatten, Img<Dyn, 3, 32, 32>, (Dyn, Const<3072>)>();
    same::<FlatOut<Const<5>, Const<11>, Const<11>>, Const<605>>();
    same::<FlatOut<Const<8>, Const<11>, Const<11>>, Const<968>>();
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

#[test]
fn homework_4a_chain_by_types() {
    // (B,1,28,28) → conv (B,5,22,22) → pool (B,5,11,11) → flatten (B,605) → fc 16 → fc 10,
    // each step's input being the previous step's `Out`
    type X = Img<Dyn, 1, 28, 28>;
    type A = <Conv2d<1, 5, 7, 1, 0, false> as Layer<X, f32>>::Out;
    type R = <ReLU as Layer<A, f32>>::Out;
    type P = <MaxPool2d<2> as Layer<R, f32>>::Out;
    type F = <Flatten as Layer<P, f32>>::Out;
    type H = <Linear<605, 16> as Layer<F, f32>>::Out;
    type O = <Linear<16, 10> as Layer<H, f32>>::Out;
    same::<A, Img<Dyn, 5, 22, 22>>();
    same::<P, Img<Dyn, 5, 11, 11>>();
    same::<F, (Dyn, Const<605>)>();
    same::<O, (Dyn, Const<10>)>();
    assert_eq!(<O as Shape>::SAMPLE_NUMEL, 10);
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
    let y = conv.predict(&x);
    assert_eq!(y.dims(), vec![3, 5, 22, 22]);
    let p = MaxPool2d::<2>.predict(&y);
    assert_eq!(p.dims(), vec![3, 5, 11, 11]);
    let f = Flatten.predict(&p);
    assert_eq!(f.dims(), vec![3, 605]);
    let c = Conv2d::<1, 4, 3, 2, 1>::zeros().predict(&Tensor::<Img<B100, 1, 28, 28>>::zeros(Const));
    assert_eq!(c.dims(), vec![100, 4, 14, 14]);
    let c = Conv2d::<1, 4, 5, 2, 0>::zeros().predict(&Tensor::<Img<Dyn, 1, 28, 28>>::zeros(Dyn(2)));
    assert_eq!(c.dims(), vec![2, 4, 12, 12]);
    let m = MaxPool2d::<3, 2>.predict(&Tensor::<Img<Dyn, 2, 11, 11>>::zeros(Dyn(1)));
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
