//! The fused batch norm → ReLU → max pooling kernels (`kernels::norm::batchnorm_relu_pool_train`
//! and `batchnorm_relu_pool_backward`) against the unfused kernels they replace
//! (`batchnorm_relu_train` then `pool::max_forward`; `pool::max_backward` then
//! `batchnorm_relu_backward`), bit for bit: the fused forward keeps no batch-norm output and the
//! fused backward writes the pooling's input gradient inside batch norm's first pass (and
//! recomputes ReLU's mask from the input), so their buffers start filled with garbage here, and
//! the sizes include one channel, one sample, odd planes, overlapping windows with padding, NaN
//! inputs, and two threads.

use rand::{Rng, SeedableRng, rngs::StdRng};
use shaped::kernels::Elem;
use shaped::kernels::norm::{self, NormDims};
use shaped::kernels::pool::{self, PoolDims};

fn values<E: Elem>(rng: &mut StdRng, n: usize) -> Vec<E> {
    (0..n).map(|_| E::lit(rng.random_range(-1.0..1.0))).collect()
}

fn bits<E: Elem>(v: &[E]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64_lossy().to_bits()).collect()
}

/// Everything both ways compute, for one batch: pooled output, argmax, running statistics, saved
/// statistics, parameter gradients, input gradient and the pooling's input gradient.
fn run<E: Elem>(fused: bool, d: NormDims, pd: &PoolDims, x: &[E], affine: (&[E], &[E]), pdy: &[E]) -> Vec<Vec<u64>> {
    let (gamma, beta) = affine;
    let (len, c, q) = (x.len(), d.c, pd.oh() * pd.ow() * pd.planes);
    let garbage = E::lit(7.25);
    let (mut rm, mut rv) = (vec![E::zero(); c], vec![E::one(); c]);
    let (mut mean, mut inv_std) = (vec![E::zero(); c], vec![E::zero(); c]);
    let (mut y, mut py, mut argmax) = (vec![garbage; len], vec![E::zero(); q], vec![0u32; q]);
    let (mut dg, mut db, mut dx) = (vec![garbage; c], vec![garbage; c], vec![garbage; len]);
    let (m, eps) = (E::lit(0.9), E::lit(1e-5));
    let mut dr = vec![garbage; len];
    if fused {
        norm::batchnorm_relu_pool_train(
            d,
            pd,
            x,
            gamma,
            beta,
            &mut rm,
            &mut rv,
            m,
            eps,
            &mut y,
            &mut mean,
            &mut inv_std,
            &mut py,
            &mut argmax,
        );
        norm::batchnorm_relu_pool_backward(
            d,
            pd,
            pdy,
            &argmax,
            x,
            &mean,
            &inv_std,
            affine,
            &mut dg,
            &mut db,
            &mut dr,
            Some(&mut dx),
        );
        // without the input gradient (a first layer): the same parameter gradients, and `dr`
        // still receives the pooling's input gradient
        let (mut dg1, mut db1, mut dr1) = (vec![garbage; c], vec![garbage; c], vec![garbage; len]);
        norm::batchnorm_relu_pool_backward(
            d, pd, pdy, &argmax, x, &mean, &inv_std, affine, &mut dg1, &mut db1, &mut dr1, None,
        );
        assert_eq!((bits(&dg1), bits(&db1), bits(&dr1)), (bits(&dg), bits(&db), bits(&dr)), "no dx: {d:?} {pd:?}");
    } else {
        norm::batchnorm_relu_train(d, x, gamma, beta, &mut rm, &mut rv, m, eps, &mut y, &mut mean, &mut inv_std);
        pool::max_forward(pd, &y, &mut py, Some(&mut argmax));
        pool::max_backward(pd, pdy, &argmax, &mut dr);
        norm::batchnorm_relu_backward(d, &dr, &y, x, &mean, &inv_std, gamma, &mut dg, &mut db, Some(&mut dx));
    }
    let argmax: Vec<u64> = argmax.iter().map(|&a| a as u64).collect();
    let (py, rm, rv, mean, inv_std) = (bits(&py), bits(&rm), bits(&rv), bits(&mean), bits(&inv_std));
    vec![py, argmax, rm, rv, mean, inv_std, bits(&dg), bits(&db), bits(&dx), bits(&dr)]
}

fn check<E: Elem>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // (n, c, h, w, window, stride, pad)
    for (n, c, h, w, p, s, pad) in [
        (1, 1, 2, 2, 2, 2, 0),
        (3, 1, 5, 7, 2, 2, 0),
        (2, 2, 7, 9, 2, 2, 0), // odd planes without a NaN: a last row and column in no window
        (2, 3, 6, 6, 2, 2, 0),
        (4, 2, 9, 11, 3, 2, 1),
        (5, 4, 8, 8, 2, 2, 0),
        (64, 16, 16, 16, 2, 2, 0),
        (33, 8, 10, 10, 3, 2, 1),
    ] {
        let d = NormDims { n, c, inner: h * w };
        let pd = PoolDims { planes: n * c, h, w, p, stride: s, pad };
        let mut x = values::<E>(&mut rng, n * c * h * w);
        if n > 2 {
            x[5] = E::lit(f64::NAN); // a NaN reaches its channel's statistics, the same way both ways
        }
        let (mut gamma, mut beta) = (values::<E>(&mut rng, c), values::<E>(&mut rng, c));
        if c > 1 {
            // a channel whose every value is exactly at ReLU's edge (γ·x̂ + β = 0: masked out)
            (gamma[0], beta[0]) = (E::zero(), E::zero());
        }
        let mut pdy = values::<E>(&mut rng, n * c * pd.oh() * pd.ow());
        pdy[0] = E::lit(-0.0); // signed zeros among the gradients: the same bits both ways
        if pdy.len() > 1 {
            pdy[1] = E::zero();
        }
        for threads in [1, 2] {
            shaped::set_num_threads(threads);
            let (a, b) = (run(true, d, &pd, &x, (&gamma, &beta), &pdy), run(false, d, &pd, &x, (&gamma, &beta), &pdy));
            let names =
                ["pooled", "argmax", "running mean", "running var", "mean", "inv_std", "dγ", "dβ", "dx", "pool dx"];
            for ((name, u), v) in names.iter().zip(&a).zip(&b) {
                assert_eq!(u, v, "{name} differs fused/unfused for {d:?} {pd:?} at {threads} threads");
            }
        }
    }
    shaped::set_num_threads(1);
}

#[test]
fn fused_batchnorm_relu_pool_kernels_equal_the_unfused_ones_bit_for_bit() {
    check::<f32>(1);
    check::<f64>(2);
}
