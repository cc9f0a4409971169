//! Adjacent-layer fusion in the derived passes (`shaped::fuse`), bit for bit: each model with a
//! fused pair (ReLU → MaxPool2d, BatchNormReLU2d → MaxPool2d) against the same model with an
//! `Identity` between the two layers, which breaks the pair (`Identity` copies values and
//! gradients exactly). Compared: training, inference and reuse outputs, the input gradient, every
//! parameter gradient and the running statistics, on inputs with exact zeros, −0, all-negative
//! windows and ties, odd sizes, batches of 1 and 3 (and one large enough to split over two kernel
//! threads), in f32 and f64.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::kernels::Elem;
use shaped::layer::{Act, Module};
use shaped::layers::{BatchNormReLU2d, Identity};
use shaped::prelude::*;
use shaped::shape::Extents;

macro_rules! pair_models {
    ($fused:ident, $split:ident, ($c:expr, $h:expr, $w:expr), [$($pre:ident: $pty:ty),*], $head:ident: $hty:ty, $tail:ident: $tty:ty) => {
        #[derive(Sequential)]
        #[sequential(input = ($c, $h, $w), elem = E)]
        struct $fused<E: Elem> {
            $($pre: $pty,)*
            $head: $hty,
            $tail: $tty,
            flat: Flatten,
        }
        #[derive(Sequential)]
        #[sequential(input = ($c, $h, $w), elem = E)]
        struct $split<E: Elem> {
            $($pre: $pty,)*
            $head: $hty,
            gap: Identity,
            $tail: $tty,
            flat: Flatten,
        }
    };
}

// ReLU → MaxPool2d after a convolution: 2×2 (the vector kernel, 11 outputs a row: 8 + a tail of
// 3), overlapping 3×3 stride 2, and padded 3×3 stride 2 padding 1.
pair_models!(ConvRelu2, ConvRelu2Split, (2, 10, 22), [conv: Conv2d<2, 3, 1, 1, 0, true, E>], relu: ReLU, pool: MaxPool2d<2>);
pair_models!(ConvRelu3, ConvRelu3Split, (2, 9, 11), [conv: Conv2d<2, 3, 1, 1, 0, true, E>], relu: ReLU, pool: MaxPool2d<3, 2>);
pair_models!(ConvRelu3p, ConvRelu3pSplit, (2, 9, 11), [conv: Conv2d<2, 3, 1, 1, 0, true, E>], relu: ReLU, pool: MaxPool2d<3, 2, 1>);

// ReLU first: the pair's input gradient is the model's (given or not). (No field names the
// element type, so one model per type.)
#[derive(Sequential)]
#[sequential(input = (3, 6, 18))]
struct Relu2 {
    relu: ReLU,
    pool: MaxPool2d<2>,
}
#[derive(Sequential)]
#[sequential(input = (3, 6, 18))]
struct Relu2Split {
    relu: ReLU,
    gap: Identity,
    pool: MaxPool2d<2>,
}
#[derive(Sequential)]
#[sequential(input = (3, 9, 11), elem = f64)]
struct Relu3p {
    relu: ReLU,
    pool: MaxPool2d<3, 2, 1>,
}
#[derive(Sequential)]
#[sequential(input = (3, 9, 11), elem = f64)]
struct Relu3pSplit {
    relu: ReLU,
    gap: Identity,
    pool: MaxPool2d<3, 2, 1>,
}
// BatchNormReLU2d → MaxPool2d.
pair_models!(Bn2, Bn2Split, (2, 10, 22), [conv: Conv2d<2, 4, 3, 1, 1, true, E>], bn: BatchNormReLU2d<4, E>, pool: MaxPool2d<2>);
pair_models!(Bn3, Bn3Split, (2, 9, 11), [conv: Conv2d<2, 4, 3, 1, 1, true, E>], bn: BatchNormReLU2d<4, E>, pool: MaxPool2d<3, 2, 1>);
// Large enough for the kernels to split over two threads (with a batch of 8).
// (A batch norm in front rather than a convolution: a convolution's weight gradient depends on
// the thread count, which other tests of `tests/isa.rs` change while this one runs.)
pair_models!(BigRelu, BigReluSplit, (16, 32, 32), [bn0: BatchNorm2d<16, E>], relu: ReLU, pool: MaxPool2d<2>);
pair_models!(BigBn, BigBnSplit, (16, 32, 32), [bn0: BatchNorm2d<16, E>], bn: BatchNormReLU2d<16, E>, pool: MaxPool2d<2>);

/// Values on a coarse grid (ties everywhere), with exact zeros and negative zeros, and runs of
/// negatives (whole windows ≤ 0).
fn values<E: Elem>(rng: &mut StdRng, n: usize) -> Vec<E> {
    (0..n)
        .map(|i| match (i / 5) % 7 {
            0 => E::lit(-(rng.random_range(0..4) as f64) / 4.0),
            1 if i % 2 == 0 => E::lit(-0.0),
            _ => E::lit(rng.random_range(-4..=4) as f64 / 4.0),
        })
        .collect()
}

fn bits<E: Elem>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64_lossy().to_bits()).collect()
}

/// Asserts `a` and `b` hold the same bits, naming the first position that differs.
#[track_caller]
fn same_bits<E: Elem>(a: &[E], b: &[E], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    if let Some(i) = bits(a).iter().zip(bits(b)).position(|(x, y)| *x != y) {
        panic!(
            "{what}: position {i} of {}: {:?} (fused) vs {:?} (unfused)",
            a.len(),
            a[i].to_f64_lossy(),
            b[i].to_f64_lossy()
        );
    }
}

fn params<E: Elem, M: Module<E>>(m: &M) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    m.visit_params(&shaped::Path::ROOT, &mut |info, d| out.push((info.path.to_string(), bits(d))));
    out
}

/// Both models' passes on one batch, compared bit for bit. `tweak` changes the input (NaN).
fn same<E: Elem, F: Module<E>, S: Module<E>>(n: usize, ext: Extents, seed: u64, tweak: &dyn Fn(&mut [E])) {
    let what = format!("{} n={n} {:?} seed {seed}", F::type_name(), core::any::type_name::<E>());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fused = F::init(&mut rng, Init::Gaussian(1.0));
    fused.visit_params_mut(&shaped::Path::ROOT, &mut |info, d| {
        if matches!(info.kind, ParamKind::Gamma | ParamKind::Beta) {
            d.iter_mut().for_each(|v| *v = E::lit(rng.random_range(-1.0..1.0)));
        }
    });
    let mut split = S::zeros();
    // The same parameters (the split model has only a parameterless Identity more).
    let mut flat = Vec::new();
    fused.visit_params(&shaped::Path::ROOT, &mut |_, d| flat.push(d.to_vec()));
    let mut it = flat.into_iter();
    split.visit_params_mut(&shaped::Path::ROOT, &mut |_, d| d.copy_from_slice(&it.next().expect("same parameters")));
    let mut x: Vec<E> = values(&mut rng, n * ext.numel());
    tweak(&mut x);
    let ny = n * shaped::shape::out_extents(&F::RULE, ext).numel();
    let dy: Vec<E> = values(&mut rng, ny);
    let act = Act::new(&x, n, ext);

    for step in 0..2 {
        let (mut yf, mut ys) = (vec![E::zero(); ny], vec![E::zero(); ny]);
        let (mut cf, mut cs) = (F::Cache::default(), S::Cache::default());
        fused.forward_train_raw(act, &mut yf, &mut cf);
        split.forward_train_raw(act, &mut ys, &mut cs);
        same_bits(&yf, &ys, &format!("{what}: training output, step {step}"));
        assert_eq!(params(&fused), params(&split), "{what}: running statistics, step {step}");
        for with_dx in [true, false] {
            let (mut gf, mut gs) = (F::zeros(), S::zeros());
            let (mut dxf, mut dxs) = (vec![E::lit(7.0); x.len()], vec![E::lit(7.0); x.len()]);
            fused.backward_raw(act, &yf, &dy, &mut cf, with_dx.then_some(&mut dxf[..]), &mut gf);
            split.backward_raw(act, &ys, &dy, &mut cs, with_dx.then_some(&mut dxs[..]), &mut gs);
            same_bits(&dxf, &dxs, &format!("{what}: input gradient, step {step}"));
            for ((name, a), (_, b)) in params(&gf).iter().zip(params(&gs)) {
                assert!(*a == b, "{what}: gradient of {name}, step {step}");
            }
        }
    }
    let (mut yf, mut ys) = (vec![E::zero(); ny], vec![E::zero(); ny]);
    fused.forward_raw(act, &mut yf);
    split.forward_raw(act, &mut ys);
    same_bits(&yf, &ys, &format!("{what}: inference output"));
    let (mut cf, mut cs) = (F::Cache::default(), S::Cache::default());
    for _ in 0..2 {
        fused.forward_reuse(act, &mut yf, &mut cf);
        split.forward_reuse(act, &mut ys, &mut cs);
        same_bits(&yf, &ys, &format!("{what}: reuse output"));
    }
}

fn all<E: Elem>(tweak: &dyn Fn(&mut [E]), with_bn: bool, first: &dyn Fn(usize, u64)) {
    for n in [1, 3] {
        first(n, 11 + n as u64);
        let seed = 11 + n as u64;
        same::<E, ConvRelu2<E>, ConvRelu2Split<E>>(n, Extents::map(2, 10, 22), seed, tweak);
        same::<E, ConvRelu3<E>, ConvRelu3Split<E>>(n, Extents::map(2, 9, 11), seed, tweak);
        same::<E, ConvRelu3p<E>, ConvRelu3pSplit<E>>(n, Extents::map(2, 9, 11), seed, tweak);
        if with_bn {
            same::<E, Bn2<E>, Bn2Split<E>>(n, Extents::map(2, 10, 22), seed, tweak);
            same::<E, Bn3<E>, Bn3Split<E>>(n, Extents::map(2, 9, 11), seed, tweak);
        }
    }
}

#[test]
fn relu_pool_and_bn_relu_pool_fused_equal_unfused_bit_for_bit() {
    shaped::set_num_threads(1);
    all::<f32>(&|_| {}, true, &|n, seed| same::<f32, Relu2, Relu2Split>(n, Extents::map(3, 6, 18), seed, &|_| {}));
    all::<f64>(&|_| {}, true, &|n, seed| same::<f64, Relu3p, Relu3pSplit>(n, Extents::map(3, 9, 11), seed, &|_| {}));
}

/// NaN inputs: ReLU passes a NaN and the pooling takes a window's last NaN, and the fused ReLU →
/// MaxPool2d applies that select to each value it reads before the same comparisons, so the
/// results stay identical. (NaN into
/// a batch norm makes its statistics NaN either way; the BN pair is left out here.)
#[test]
fn relu_pool_fused_equals_unfused_with_nan_inputs() {
    shaped::set_num_threads(1);
    let nan32 = |x: &mut [f32]| x.iter_mut().step_by(13).for_each(|v| *v = f32::NAN);
    let nan64 = |x: &mut [f64]| x.iter_mut().step_by(13).for_each(|v| *v = -f64::NAN);
    all::<f32>(&nan32, false, &|n, seed| same::<f32, Relu2, Relu2Split>(n, Extents::map(3, 6, 18), seed, &nan32));
    all::<f64>(&nan64, false, &|n, seed| same::<f64, Relu3p, Relu3pSplit>(n, Extents::map(3, 9, 11), seed, &nan64));
}

#[test]
fn fused_pairs_equal_unfused_on_two_threads() {
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        for n in [8, 3] {
            same::<f32, BigRelu<f32>, BigReluSplit<f32>>(n, Extents::map(16, 32, 32), 5, &|_| {});
            same::<f32, BigBn<f32>, BigBnSplit<f32>>(n, Extents::map(16, 32, 32), 6, &|_| {});
        }
    }
    shaped::set_num_threads(1);
}

/// The derive fuses exactly the pairs it should: an `Identity` between the layers, or another
/// order, keeps them apart.
#[test]
fn which_pairs_are_joined() {
    use shaped::fuse::{Kind, joined};
    assert!(joined(<ReLU as Module<f32>>::FUSE, <MaxPool2d<2> as Module<f32>>::FUSE));
    assert!(joined(<BatchNormReLU2d<4> as Module<f32>>::FUSE, <MaxPool2d<3, 2, 1> as Module<f32>>::FUSE));
    assert!(!joined(<MaxPool2d<2> as Module<f32>>::FUSE, <ReLU as Module<f32>>::FUSE));
    assert!(!joined(<ReLU as Module<f32>>::FUSE, <Identity as Module<f32>>::FUSE));
    assert!(!joined(<BatchNorm2d<4> as Module<f32>>::FUSE, <MaxPool2d<2> as Module<f32>>::FUSE));
    assert_eq!(<MaxPool2d<3, 2, 1> as Module<f32>>::FUSE, Kind::MaxPool { p: 3, s: 2, pad: 1 });
}

/// The spec's 4a model and the VGG's first block (`shaped::models`) against copies with the pair
/// split. (One sample: a batch of one is never split over threads, so the convolutions' weight
/// gradients do not depend on the thread count other tests of `tests/isa.rs` set meanwhile.)
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct CnnSplit {
    conv: Conv2d<1, 5, 7, 1, 0, false>,
    relu1: ReLU,
    gap: Identity,
    pool: MaxPool2d<2>,
    flat: Flatten,
    fc1: Linear<605, 16>,
    relu2: ReLU,
    fc2: Linear<16, 10>,
}

#[derive(Sequential)]
#[sequential(input = (3, 32, 32))]
struct Block1Split {
    conv: Conv2d<3, 16, 3, 1, 1>,
    bn: BatchNormReLU2d<16>,
    gap: Identity,
    pool: MaxPool2d<2>,
}

#[test]
fn spec_models_fused_equal_unfused() {
    shaped::set_num_threads(1);
    same::<f32, shaped::models::Cnn, CnnSplit>(1, Extents::map(1, 28, 28), 21, &|_| {});
    same::<f32, shaped::models::Block1, Block1Split>(1, Extents::map(3, 32, 32), 22, &|_| {});
}
