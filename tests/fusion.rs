//! Fused layers against the layers they fuse, bit for bit: `BatchNormReLU2d` against `BatchNorm2d`
//! followed by `ReLU` — training forward (output, running statistics), backward (input gradient,
//! γ and β gradients), inference forward — in f32 and f64, on one and two kernel threads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::kernels::Elem;
use shaped::layer::{Act, Module};
use shaped::layers::{BatchNorm2d, BatchNormReLU2d, ReLU};
use shaped::shape::Extents;

const C: usize = 6;

fn values<E: Elem>(rng: &mut StdRng, n: usize) -> Vec<E> {
    // Some exact zeros, so that the ReLU's ties are exercised too.
    (0..n).map(|i| if i % 17 == 0 { E::zero() } else { E::lit(rng.random_range(-1.0..1.0)) }).collect()
}

fn bits<E: Elem>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64_lossy().to_bits()).collect()
}

fn fused_equals_unfused<E: Elem>(n: usize, h: usize, w: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ext = Extents::map(C, h, w);
    let len = n * C * h * w;
    let x: Vec<E> = values(&mut rng, len);
    let dy: Vec<E> = values(&mut rng, len);
    let mut bn = BatchNorm2d::<C, E>::zeros();
    bn.params.gamma.as_mut_slice().copy_from_slice(&values::<E>(&mut rng, C));
    bn.params.beta.as_mut_slice().copy_from_slice(&values::<E>(&mut rng, C));
    let mut fused = BatchNormReLU2d::<C, E> { params: bn.params.clone() };
    let mut relu = ReLU;
    let what = format!("{} n={n} {h}×{w}", core::any::type_name::<E>());

    // training forward
    let (mut t, mut y, mut yf) = (vec![E::zero(); len], vec![E::zero(); len], vec![E::zero(); len]);
    let (mut bn_cache, mut relu_cache, mut f_cache) = (Default::default(), Default::default(), Default::default());
    bn.forward_train_raw(Act::new(&x, n, ext), &mut t, &mut bn_cache);
    relu.forward_train_raw(Act::new(&t, n, ext), &mut y, &mut relu_cache);
    fused.forward_train_raw(Act::new(&x, n, ext), &mut yf, &mut f_cache);
    assert_eq!(bits(&y), bits(&yf), "{what}: training output");
    assert_eq!(bn.params, fused.params, "{what}: running statistics");

    // backward
    let (mut g, mut dx, mut dxf) = (vec![E::zero(); len], vec![E::zero(); len], vec![E::zero(); len]);
    let (mut grads, mut grads_f) = (BatchNorm2d::<C, E>::zeros(), BatchNormReLU2d::<C, E>::zeros());
    let mut relu_grads = ReLU;
    relu.backward_raw(Act::new(&t, n, ext), &y, &dy, &mut relu_cache, Some(&mut g), &mut relu_grads);
    bn.backward_raw(Act::new(&x, n, ext), &t, &g, &mut bn_cache, Some(&mut dx), &mut grads);
    fused.backward_raw(Act::new(&x, n, ext), &yf, &dy, &mut f_cache, Some(&mut dxf), &mut grads_f);
    assert_eq!(bits(&dx), bits(&dxf), "{what}: input gradient");
    assert_eq!(bits(grads.params.gamma.as_slice()), bits(grads_f.params.gamma.as_slice()), "{what}: dγ");
    assert_eq!(bits(grads.params.beta.as_slice()), bits(grads_f.params.beta.as_slice()), "{what}: dβ");

    // inference
    let (mut te, mut ye, mut yfe) = (vec![E::zero(); len], vec![E::zero(); len], vec![E::zero(); len]);
    bn.forward_raw(Act::new(&x, n, ext), &mut te);
    relu.forward_raw(Act::new(&te, n, ext), &mut ye);
    fused.forward_raw(Act::new(&x, n, ext), &mut yfe);
    assert_eq!(bits(&ye), bits(&yfe), "{what}: inference output");
}

#[test]
fn batchnorm_relu_equals_batchnorm_then_relu_bit_for_bit() {
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        for (n, h, w) in [(1, 1, 1), (3, 5, 7), (8, 16, 16), (100, 8, 8)] {
            fused_equals_unfused::<f32>(n, h, w, 3 + n as u64);
            fused_equals_unfused::<f64>(n, h, w, 5 + n as u64);
        }
    }
    shaped::set_num_threads(1);
}

#[test]
fn batchnorm_relu_names_itself_and_keeps_batchnorm_parameter_names() {
    let mut names = Vec::new();
    let bn = shaped::Path::ROOT.child("bn");
    BatchNormReLU2d::<C, f32>::zeros().visit_params(&bn, &mut |info, _| names.push(info.path.to_string()));
    assert_eq!(names, ["bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var"]);
    let rule = format!(
        "{}",
        shaped::shape::describe(&<BatchNormReLU2d<C, f32> as Module<f32>>::RULE, shaped::shape::Msg::new())
    );
    assert!(rule.contains("BatchNormReLU2d"), "{rule}");
}
