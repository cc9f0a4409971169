//! Golden values and exact semantics: the spec's convolution and batch-norm numbers, running
//! statistics and dropout masks. Losses, tensor construction, max-pool ties and the layers against
//! naive reference loops are `tests/golden_reference.rs`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shaped::init::Init;
use shaped::layer::{Act, Layer, Module};
use shaped::layers::{BatchNorm1d, BatchNorm2d, Conv2d, Drop, Dropout, Inverted, Keep, Vanilla};
use shaped::shape::{Const, Dyn, Extents, out_extents};
use shaped::tensor::Tensor;

mod common;
use common::{assert_close, linspace, uniform};

// ------------------------------------------------------------------------------------------------
// Convolution

#[test]
fn conv_golden_spec() {
    let mut conv = Conv2d::<1, 1, 3, 1, 0, false, f64>::zeros();
    conv.weight.as_mut_slice().copy_from_slice(&linspace(-0.9, 0.6, 9));
    let x = Tensor::<(Const<1>, Const<1>, Const<6>, Const<6>), f64>::from_vec(linspace(-0.1, 2.5, 36)).unwrap();
    let y: Tensor<(Const<1>, Const<1>, Const<4>, Const<4>), f64> = conv.apply(&x);
    assert_eq!(y.dims(), vec![1, 1, 4, 4]);
    assert_close(&y.as_slice()[..4], &[1.02085714, 0.92057143, 0.82028571, 0.72], 1e-7, "conv row 0");
    // train forward gives the same
    let mut yt = Tensor::<(Const<1>, Const<1>, Const<4>, Const<4>), f64>::zeros(Const);
    conv.apply_train(&x, &mut yt, &mut Default::default());
    assert_eq!(yt.as_slice(), y.as_slice());

    // f32 too, to f32 precision
    let mut c32 = Conv2d::<1, 1, 3, 1, 0, false, f32>::zeros();
    for (d, s) in c32.weight.as_mut_slice().iter_mut().zip(linspace(-0.9, 0.6, 9)) {
        *d = s as f32;
    }
    let x32 = Tensor::<(Dyn, Const<1>, Const<6>, Const<6>), f32>::from_vec(
        linspace(-0.1, 2.5, 36).into_iter().map(|v| v as f32).collect(),
    )
    .unwrap();
    let y32: Tensor<(Dyn, Const<1>, Const<4>, Const<4>)> = c32.apply(&x32);
    let first: Vec<f64> = y32.as_slice()[..4].iter().map(|&v| v as f64).collect();
    assert_close(&first, &[1.02085714, 0.92057143, 0.82028571, 0.72], 1e-5, "conv f32 row 0");
}

/// Naive convolution (cross-correlation with stride and zero padding) and its gradients, straight
/// from the definition `y[n,f,i,j] = Σ_{c,u,v} x[n,c,iS+u−P,jS+v−P]·w[f,c,u,v] + b[f]`.
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    dy: &[f64],
    (n, c, h, wd): (usize, usize, usize, usize),
    (f, k, s, p): (usize, usize, usize, usize),
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (wd + 2 * p - k) / s + 1;
    let mut y = vec![0.0; n * f * oh * ow];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; f];
    for ni in 0..n {
        for fi in 0..f {
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((ni * f + fi) * oh + i) * ow + j;
                    let mut acc = b.map_or(0.0, |b| b[fi]);
                    db[fi] += dy[yi];
                    for ci in 0..c {
                        for u in 0..k {
                            for v in 0..k {
                                let iy = (i * s + u) as isize - p as isize;
                                let ix = (j * s + v) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((ni * c + ci) * h + iy as usize) * wd + ix as usize;
                                let wi = ((fi * c + ci) * k + u) * k + v;
                                acc += x[xi] * w[wi];
                                dx[xi] += w[wi] * dy[yi];
                                dw[wi] += x[xi] * dy[yi];
                            }
                        }
                    }
                    y[yi] = acc;
                }
            }
        }
    }
    (y, dx, dw, db)
}

fn conv_vs_naive<
    const N: usize,
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const BIAS: bool,
>(
    seed: u64,
) {
    type L<const C: usize, const F: usize, const K: usize, const S: usize, const P: usize, const BIAS: bool> =
        Conv2d<C, F, K, S, P, BIAS, f64>;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conv = L::<C, F, K, S, P, BIAS>::init(&mut rng, Init::Gaussian(1.0));
    for v in conv.bias.as_mut_slice() {
        *v = rng.random_range(-1.0..1.0);
    }
    // the shape-erased interface: the output extents come from the rule
    let x = uniform::<(Const<N>, Const<C>, Const<H>, Const<W>)>(&mut rng, Const);
    let out = out_extents(&<L<C, F, K, S, P, BIAS> as Module<f64>>::RULE, Extents::map(C, H, W));
    let mut y = vec![0.0; N * out.numel()];
    let mut cache = Default::default();
    conv.forward_train_raw(Act::of(&x), &mut y, &mut cache);
    let dy: Vec<f64> = y.iter().map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut dx = vec![0.0; x.len()];
    let mut g = L::<C, F, K, S, P, BIAS>::zeros();
    // dirty gradient buffers: backward must overwrite, not accumulate
    g.weight.as_mut_slice().fill(7.0);
    g.bias.as_mut_slice().fill(7.0);
    dx.fill(7.0);
    conv.backward_raw(Act::of(&x), &y, &dy, &mut cache, Some(&mut dx), &mut g);
    let bias = if BIAS { Some(conv.bias.as_slice()) } else { None };
    let (ny, ndx, ndw, ndb) = naive_conv(x.as_slice(), conv.weight.as_slice(), bias, &dy, (N, C, H, W), (F, K, S, P));
    let what = format!("Conv2d<{C},{F},{K},{S},{P},{BIAS}> on ({N},{C},{H},{W})");
    assert_close(&y, &ny, 1e-12, &format!("{what} y"));
    let mut yp = vec![0.0; y.len()];
    conv.forward_raw(Act::of(&x), &mut yp);
    assert_close(&yp, &ny, 1e-12, &format!("{what} predict"));
    assert_close(&dx, &ndx, 1e-12, &format!("{what} dx"));
    assert_close(g.weight.as_slice(), &ndw, 1e-12, &format!("{what} dw"));
    if BIAS {
        assert_close(g.bias.as_slice(), &ndb, 1e-12, &format!("{what} db"));
    }
    // backward without dx gives the same parameter gradients
    let mut g2 = L::<C, F, K, S, P, BIAS>::zeros();
    conv.backward_raw(Act::of(&x), &y, &dy, &mut cache, None, &mut g2);
    assert_close(g2.weight.as_slice(), &ndw, 1e-12, &format!("{what} dw (no dx)"));
}

#[test]
fn conv_matches_naive_reference() {
    // direct path (C < 4)
    conv_vs_naive::<2, 1, 10, 10, 5, 7, 1, 0, false>(1);
    conv_vs_naive::<2, 2, 7, 6, 3, 3, 1, 0, true>(2);
    conv_vs_naive::<2, 2, 6, 5, 3, 3, 1, 1, true>(3);
    conv_vs_naive::<2, 2, 9, 9, 3, 3, 2, 0, true>(4);
    conv_vs_naive::<2, 2, 8, 8, 3, 3, 2, 0, true>(5);
    conv_vs_naive::<2, 2, 7, 7, 3, 3, 2, 1, true>(6);
    conv_vs_naive::<2, 2, 8, 8, 3, 3, 2, 1, true>(7);
    conv_vs_naive::<2, 1, 6, 6, 2, 5, 1, 2, true>(8);
    conv_vs_naive::<2, 2, 4, 4, 2, 1, 1, 1, true>(9);
    conv_vs_naive::<1, 3, 5, 7, 2, 3, 3, 2, true>(10);
    // im2col path (C ≥ 4)
    conv_vs_naive::<2, 4, 5, 5, 3, 3, 1, 1, true>(11);
    conv_vs_naive::<3, 6, 4, 4, 2, 3, 1, 1, false>(12);
    conv_vs_naive::<2, 5, 7, 7, 2, 3, 2, 0, true>(13);
    conv_vs_naive::<2, 4, 6, 6, 3, 3, 2, 1, true>(14);
    conv_vs_naive::<2, 5, 5, 5, 2, 1, 2, 2, true>(15);
    conv_vs_naive::<2, 4, 6, 9, 3, 5, 1, 2, true>(16);
    conv_vs_naive::<1, 8, 5, 5, 4, 3, 2, 1, true>(17);
}

// ------------------------------------------------------------------------------------------------
// Batch norm

const BN_X: [f64; 6] = [-0.1, 0.02, 0.14, 0.26, 0.38, 0.5];

fn bn_spec() -> BatchNorm1d<3, f64> {
    let mut bn = BatchNorm1d::<3, f64>::zeros();
    bn.params.gamma.as_mut_slice().copy_from_slice(&linspace(-0.2, 0.3, 3));
    bn.params.beta.as_mut_slice().copy_from_slice(&linspace(-0.3, 0.1, 3));
    bn
}

#[test]
fn batchnorm_golden_spec_train() {
    assert_close(&linspace(-0.1, 0.5, 6), &BN_X, 1e-15, "linspace");
    let mut bn = bn_spec();
    let x = Tensor::<(Const<2>, Const<3>), f64>::from_vec(linspace(-0.1, 0.5, 6)).unwrap();
    let mut y = Tensor::zeros(Const);
    bn.forward_train(&x, &mut y, &mut Default::default());
    let want = [-0.10003086, -0.14999229, -0.19995371, -0.49996914, -0.05000771, 0.39995371];
    assert_close(y.as_slice(), &want, 1e-7, "bn train out");

    // running stats: 0.9·init + 0.1·batch, biased variance; init mean 0, var 1
    let mean = [(BN_X[0] + BN_X[3]) / 2.0, (BN_X[1] + BN_X[4]) / 2.0, (BN_X[2] + BN_X[5]) / 2.0];
    let var: Vec<f64> = (0..3).map(|j| ((BN_X[j] - mean[j]).powi(2) + (BN_X[j + 3] - mean[j]).powi(2)) / 2.0).collect();
    assert_close(&var, &[0.0324; 3], 1e-15, "biased variance");
    let rm: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
    let rv: Vec<f64> = var.iter().map(|v| 0.9 + 0.1 * v).collect();
    assert_close(bn.params.running_mean.as_slice(), &rm, 1e-15, "running mean");
    assert_close(bn.params.running_var.as_slice(), &rv, 1e-15, "running var");

    // from non-trivial running stats, twice
    let mut bn = bn_spec();
    bn.params.running_mean.as_mut_slice().copy_from_slice(&[0.5, -0.5, 2.0]);
    bn.params.running_var.as_mut_slice().copy_from_slice(&[2.0, 3.0, 0.25]);
    bn.forward_train(&x, &mut y, &mut Default::default());
    bn.forward_train(&x, &mut y, &mut Default::default());
    let init_m = [0.5, -0.5, 2.0];
    let init_v = [2.0, 3.0, 0.25];
    let rm: Vec<f64> = (0..3).map(|j| 0.9 * (0.9 * init_m[j] + 0.1 * mean[j]) + 0.1 * mean[j]).collect();
    let rv: Vec<f64> = (0..3).map(|j| 0.9 * (0.9 * init_v[j] + 0.1 * var[j]) + 0.1 * var[j]).collect();
    assert_close(bn.params.running_mean.as_slice(), &rm, 1e-14, "running mean x2");
    assert_close(bn.params.running_var.as_slice(), &rv, 1e-14, "running var x2");
    // the training output does not depend on the running stats
    assert_close(y.as_slice(), &want, 1e-7, "bn train out (other running stats)");
}

#[test]
fn batchnorm_eval_uses_running_stats() {
    let mut bn = bn_spec();
    let rm = [0.5, -0.5, 2.0];
    let rv = [2.0, 3.0, 0.25];
    bn.params.running_mean.as_mut_slice().copy_from_slice(&rm);
    bn.params.running_var.as_mut_slice().copy_from_slice(&rv);
    let g = linspace(-0.2, 0.3, 3);
    let b = linspace(-0.3, 0.1, 3);
    let x = Tensor::<(Dyn, Const<3>), f64>::from_vec(linspace(-0.1, 0.5, 6)).unwrap();
    let y = bn.predict(&x);
    let want: Vec<f64> =
        (0..6).map(|i| g[i % 3] * (BN_X[i] - rm[i % 3]) / (rv[i % 3] + 1e-5).sqrt() + b[i % 3]).collect();
    assert_close(y.as_slice(), &want, 1e-14, "bn eval");
    // eval does not touch the running stats
    assert_eq!(bn.params.running_mean.as_slice(), &rm);
    assert_eq!(bn.params.running_var.as_slice(), &rv);
    // a fresh layer in eval mode (mean 0, var 1, γ 1, β 0) is x/√(1+eps)
    let fresh = BatchNorm1d::<3, f64>::zeros();
    let y = fresh.predict(&x);
    let want: Vec<f64> = BN_X.iter().map(|v| v / (1.0f64 + 1e-5).sqrt()).collect();
    assert_close(y.as_slice(), &want, 1e-15, "fresh bn eval");
}

#[test]
fn batchnorm2d_per_channel_statistics() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut bn = BatchNorm2d::<3, f64>::zeros();
    let g = [0.5, -1.5, 2.0];
    let b = [0.1, 0.2, -0.3];
    bn.params.gamma.as_mut_slice().copy_from_slice(&g);
    bn.params.beta.as_mut_slice().copy_from_slice(&b);
    let mut x = uniform::<(Const<2>, Const<3>, Const<2>, Const<4>)>(&mut rng, Const);
    // channel offsets so that the statistics differ per channel
    for (i, v) in x.as_mut_slice().iter_mut().enumerate() {
        *v += ((i / 8) % 3) as f64 * 3.0;
    }
    let xs = x.as_slice().to_vec();
    let mut y = Tensor::zeros(Const);
    bn.forward_train(&x, &mut y, &mut Default::default());
    for c in 0..3 {
        let vals: Vec<f64> = (0..2).flat_map(|n| xs[(n * 3 + c) * 8..][..8].to_vec()).collect();
        let m = vals.iter().sum::<f64>() / 16.0;
        let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 16.0;
        for n in 0..2 {
            for i in 0..8 {
                let idx = (n * 3 + c) * 8 + i;
                let want = g[c] * (xs[idx] - m) / (v + 1e-5).sqrt() + b[c];
                assert!((y.as_slice()[idx] - want).abs() < 1e-13, "bn2d y[{idx}]");
            }
        }
        assert!((bn.params.running_mean.as_slice()[c] - 0.1 * m).abs() < 1e-14);
        assert!((bn.params.running_var.as_slice()[c] - (0.9 + 0.1 * v)).abs() < 1e-14);
    }
    // eval on running stats
    let ye = bn.predict(&x);
    for (idx, &xv) in xs.iter().enumerate() {
        let c = (idx / 8) % 3;
        let (rm, rv) = (bn.params.running_mean.as_slice()[c], bn.params.running_var.as_slice()[c]);
        let want = g[c] * (xv - rm) / (rv + 1e-5).sqrt() + b[c];
        assert!((ye.as_slice()[idx] - want).abs() < 1e-13, "bn2d eval y[{idx}]");
    }
}

// ------------------------------------------------------------------------------------------------
// Dropout

fn kept_fraction<P: shaped::layers::Probability, F: shaped::layers::DropoutForm>(seed: u64) -> f64 {
    let mut d = <Dropout<P, F> as Module<f64>>::zeros();
    Module::<f64>::reseed(&mut d, seed);
    let x = Tensor::<(Dyn, Const<1000>), f64>::full(Dyn(100), 1.0);
    let mut y = Tensor::zeros(Dyn(0));
    d.forward_train(&x, &mut y, &mut Default::default());
    y.as_slice().iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64
}

#[test]
fn dropout_keep_and_drop_probabilities() {
    let k80 = kept_fraction::<Keep<80>, Inverted>(1);
    assert!((k80 - 0.8).abs() < 0.01, "Keep<80> kept {k80}");
    let d80 = kept_fraction::<Drop<80>, Inverted>(2);
    assert!((d80 - 0.2).abs() < 0.01, "Drop<80> kept {d80}");
    let k80v = kept_fraction::<Keep<80>, Vanilla>(3);
    assert!((k80v - 0.8).abs() < 0.01, "Keep<80> vanilla kept {k80v}");
    let d20 = kept_fraction::<Drop<20>, Vanilla>(4);
    assert!((d20 - 0.8).abs() < 0.01, "Drop<20> vanilla kept {d20}");
    assert_eq!(<Dropout<Keep<80>> as Module<f32>>::zeros().keep_probability(), 0.8);
    assert!((<Dropout<Drop<80>> as Module<f32>>::zeros().keep_probability() - 0.2).abs() < 1e-15);
    assert_eq!(kept_fraction::<Keep<100>, Inverted>(5), 1.0);
    // (`Drop<100>`, like `Keep<0>`, is a compile error: tests/ui/dropout_all_fail.rs.)
    let d99 = kept_fraction::<Drop<99>, Inverted>(6);
    assert!(d99 > 0.0 && d99 < 0.02, "Drop<99> kept {d99}");
    assert_eq!(kept_fraction::<Drop<0>, Inverted>(7), 1.0);
    println!("kept fractions: Keep<80> {k80}, Drop<80> {d80}, Keep<80> vanilla {k80v}, Drop<20> vanilla {d20}");
}

#[test]
fn dropout_inverted_values() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut x = Tensor::<(Const<10>, Const<100>), f64>::zeros(Const);
    for v in x.as_mut_slice() {
        *v = rng.random_range(0.5..1.5) * if rng.random::<bool>() { 1.0 } else { -1.0 };
    }
    let p = 0.8;
    let mut d = <Dropout<Keep<80>, Inverted> as Module<f64>>::zeros();
    Module::<f64>::reseed(&mut d, 11);
    let mut y = Tensor::zeros(Const);
    let mut cache = Default::default();
    d.forward_train(&x, &mut y, &mut cache);
    let (mut zeros, mut scaled) = (0, 0);
    for (&yv, &xv) in y.as_slice().iter().zip(x.as_slice()) {
        if yv == 0.0 {
            zeros += 1;
        } else {
            assert!((yv - xv / p).abs() < 1e-14, "inverted train: {yv} vs {xv}/p");
            scaled += 1;
        }
    }
    assert!(zeros > 0 && scaled > 0);
    // backward uses the same mask and scale
    let dy = Tensor::<(Const<10>, Const<100>), f64>::full(Const, 1.0);
    let mut dx = Tensor::zeros(Const);
    d.backward(&x, &y, &dy, &mut cache, Some(&mut dx), &mut <Dropout<Keep<80>, Inverted> as Module<f64>>::zeros());
    for ((&g, &yv), &xv) in dx.as_slice().iter().zip(y.as_slice()).zip(x.as_slice()) {
        assert!((g * xv - yv).abs() < 1e-14, "dx = dy·M/p");
    }
    // eval: identity
    assert_eq!(d.predict(&x).as_slice(), x.as_slice());
}

#[test]
fn dropout_vanilla_values() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut x = Tensor::<(Dyn, Const<100>), f64>::zeros(Dyn(10));
    for v in x.as_mut_slice() {
        *v = rng.random_range(0.5..1.5) * if rng.random::<bool>() { 1.0 } else { -1.0 };
    }
    let p = 0.3;
    let mut d = <Dropout<Drop<70>, Vanilla> as Module<f64>>::zeros();
    Module::<f64>::reseed(&mut d, 12);
    let mut y = Tensor::zeros(Dyn(0));
    d.forward_train(&x, &mut y, &mut Default::default());
    let mut kept = 0;
    for (&yv, &xv) in y.as_slice().iter().zip(x.as_slice()) {
        assert!(yv == 0.0 || yv == xv, "vanilla train: {yv} vs {xv}");
        kept += usize::from(yv != 0.0);
    }
    assert!(kept > 0 && kept < 1000);
    let ye = d.predict(&x);
    for (&yv, &xv) in ye.as_slice().iter().zip(x.as_slice()) {
        assert!((yv - p * xv).abs() < 1e-15, "vanilla eval: {yv} vs p·{xv}");
    }
}

fn mask_of(seed: u64) -> Vec<f64> {
    let mut d = <Dropout<Keep<50>, Inverted> as Module<f64>>::zeros();
    Module::<f64>::reseed(&mut d, seed);
    let x = Tensor::<(Const<4>, Const<64>), f64>::full(Const, 1.0);
    let mut y = Tensor::zeros(Const);
    d.forward_train(&x, &mut y, &mut Default::default());
    y.into_vec()
}

#[test]
fn dropout_seeding() {
    assert_eq!(mask_of(42), mask_of(42));
    assert_ne!(mask_of(42), mask_of(43));
    assert_ne!(mask_of(0), mask_of(1));
    // consecutive passes without reseeding draw new masks
    let mut d = <Dropout<Keep<50>, Inverted> as Module<f64>>::zeros();
    Module::<f64>::reseed(&mut d, 42);
    let x = Tensor::<(Const<4>, Const<64>), f64>::full(Const, 1.0);
    let (mut y1, mut y2) = (Tensor::zeros(Const), Tensor::zeros(Const));
    d.forward_train(&x, &mut y1, &mut Default::default());
    d.forward_train(&x, &mut y2, &mut Default::default());
    assert_eq!(y1.as_slice(), mask_of(42).as_slice());
    assert_ne!(y1.as_slice(), y2.as_slice());
}
