//! The dense path of the convolution (small maps as one product, `kernels::conv::forward_dense`)
//! against the direct loops in f64, for strides, paddings and kernel sizes where the path is taken
//! and where it is not (it is exact whatever the sizes; the entry points take it only for maps no
//! larger than the kernel window); the f32 path the VGG takes against f64; and the entry points'
//! choice. `tests/isa.rs` runs this file on every instruction set of the host.

use rand::{Rng, SeedableRng};
use shaped::kernels::conv::{self, ConvDims, ConvScratch};

/// `n` values drawn uniformly from [−1, 1).
fn uniform(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Forward output, weight, bias and input gradients of `d` by the dense path or the direct loops.
fn run<E: shaped::kernels::Elem>(d: &ConvDims, dense: bool, x: &[E], w: &[E], b: &[E], dy: &[E]) -> [Vec<E>; 4] {
    let mut s = ConvScratch::default();
    let mut y = vec![E::zero(); d.n * d.f * d.oh() * d.ow()];
    let (mut dw, mut db, mut dx) = (vec![E::zero(); w.len()], vec![E::zero(); d.f], vec![E::zero(); x.len()]);
    // twice, so that the second pass runs on used scratch buffers
    for _ in 0..2 {
        if dense {
            conv::forward_dense(d, x, w, Some(b), &mut y, &mut s);
            conv::backward_dense(d, x, w, dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        } else {
            conv::forward_direct(d, x, w, Some(b), &mut y, &mut s);
            conv::backward_direct(d, x, w, dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        }
    }
    [y, dw, db, dx]
}

#[test]
fn dense_path_equals_the_direct_loops_in_f64() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for d in [
        ConvDims { n: 3, c: 4, h: 2, w: 2, f: 5, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 1, c: 3, h: 1, w: 1, f: 2, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 2, h: 3, w: 3, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 2, h: 3, w: 2, f: 3, k: 3, stride: 2, pad: 1 },
        ConvDims { n: 2, c: 3, h: 4, w: 4, f: 2, k: 5, stride: 1, pad: 2 },
        ConvDims { n: 2, c: 3, h: 5, w: 5, f: 4, k: 5, stride: 2, pad: 0 },
        ConvDims { n: 2, c: 2, h: 6, w: 7, f: 3, k: 3, stride: 1, pad: 0 },
        ConvDims { n: 2, c: 1, h: 9, w: 9, f: 2, k: 3, stride: 2, pad: 1 },
        ConvDims { n: 2, c: 2, h: 4, w: 4, f: 2, k: 1, stride: 1, pad: 0 },
    ] {
        let x = uniform(&mut rng, d.n * d.c * d.h * d.w);
        let w = uniform(&mut rng, d.f * d.c * d.k * d.k);
        let b = uniform(&mut rng, d.f);
        let dy = uniform(&mut rng, d.n * d.f * d.oh() * d.ow());
        let (dense, direct) = (run(&d, true, &x, &w, &b, &dy), run(&d, false, &x, &w, &b, &dy));
        for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(dense.iter().zip(&direct)) {
            let err = u.iter().zip(v).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(err < 1e-12, "{d:?} {name}: dense and direct differ by {err}");
        }
    }
}

#[test]
fn the_entry_points_take_the_dense_path_for_small_maps_and_it_matches_f64() {
    // the VGG's last convolutions: 64 channels of 2×2, 3×3 kernels with padding 1 (batch 10 here)
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let d = ConvDims { n: 10, c: 64, h: 2, w: 2, f: 64, k: 3, stride: 1, pad: 1 };
    let x = uniform(&mut rng, d.n * d.c * d.h * d.w);
    let w = uniform(&mut rng, d.f * d.c * d.k * d.k);
    let b = uniform(&mut rng, d.f);
    let dy = uniform(&mut rng, d.n * d.f * d.oh() * d.ow());
    let f32v = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let (x32, w32, b32, dy32) = (f32v(&x), f32v(&w), f32v(&b), f32v(&dy));
    // `conv::forward`/`backward` (what `Conv2d` calls) give the dense path's bits
    let mut s = ConvScratch::default();
    let mut y = vec![0.0f32; dy.len()];
    let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; d.f], vec![0.0f32; x.len()]);
    conv::forward(&d, &x32, &w32, Some(&b32), &mut y, &mut s);
    conv::backward(&d, &x32, &w32, &dy32, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
    let dense = run(&d, true, &x32, &w32, &b32, &dy32);
    for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(dense.iter().zip([&y, &dw, &db, &dx])) {
        assert!(
            u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{name}: the entry point is not the dense path"
        );
    }
    // and the f32 results against the f64 direct loops, within f32 rounding of sums of 576 (forward,
    // input gradient) or 40 (weight gradient) products of values in [−1, 1)
    let want = run(&d, false, &x, &w, &b, &dy);
    for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(dense.iter().zip(&want)) {
        let err = u.iter().zip(v).map(|(p, q)| (*p as f64 - q).abs()).fold(0.0, f64::max);
        assert!(err < 2e-5, "{name}: f32 dense path off the f64 direct loops by {err}");
    }
}

#[test]
fn a_dense_matrix_too_large_is_refused_before_it_is_allocated() {
    let d = ConvDims { n: 1, c: 4096, h: 64, w: 64, f: 4096, k: 3, stride: 1, pad: 1 };
    // (the tensors' lengths are checked after the matrix's size: these are empty)
    let r = std::panic::catch_unwind(|| {
        conv::forward_dense::<f32>(&d, &[], &[], None, &mut [], &mut ConvScratch::default());
    });
    let msg = r.expect_err("a 2⁴⁸-entry dense matrix was not refused");
    let msg = msg.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
    assert!(msg.contains("dense matrix of Some(281474976710656) entries"), "{msg}");
}

#[test]
fn the_dense_path_gives_the_same_bits_on_used_scratch_and_at_two_threads() {
    // One scratch through layers of other sizes and paths first (its buffers then hold other
    // values, longer than this layer needs: the dense path writes every entry it reads), and the
    // VGG's 64-channel 2×2 layer, whose matrix is built and folded split over two threads.
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let big = ConvDims { n: 3, c: 8, h: 9, w: 9, f: 6, k: 3, stride: 1, pad: 1 };
    let layers = [
        ConvDims { n: 6, c: 64, h: 2, w: 2, f: 64, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 3, h: 5, w: 5, f: 4, k: 5, stride: 2, pad: 0 },
        ConvDims { n: 2, c: 2, h: 3, w: 2, f: 3, k: 3, stride: 2, pad: 1 },
    ];
    let mut shared = ConvScratch::default();
    for d in layers {
        let (x, w, b) = (
            uniform(&mut rng, d.n * d.c * d.h * d.w),
            uniform(&mut rng, d.f * d.c * d.k * d.k),
            uniform(&mut rng, d.f),
        );
        let dy = uniform(&mut rng, d.n * d.f * d.oh() * d.ow());
        let f32v = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (x, w, b, dy) = (f32v(&x), f32v(&w), f32v(&b), f32v(&dy));
        let fresh = run(&d, true, &x, &w, &b, &dy);
        // the shared scratch has served the im2col path of a larger layer just before
        let (bx, bw) = (vec![0.5f32; big.n * big.c * big.h * big.w], vec![0.25f32; big.f * big.c * 9]);
        let mut by = vec![0.0f32; big.n * big.f * big.oh() * big.ow()];
        conv::forward_im2col(&big, &bx, &bw, None, &mut by, &mut shared);
        for threads in [1, 2] {
            shaped::threads::set_num_threads(threads);
            let mut y = vec![0.0f32; dy.len()];
            let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; d.f], vec![0.0f32; x.len()]);
            conv::forward_dense(&d, &x, &w, Some(&b), &mut y, &mut shared);
            conv::backward_dense(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut shared);
            for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(fresh.iter().zip([&y, &dw, &db, &dx])) {
                assert!(
                    u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{d:?} {name}: used scratch or {threads} threads changed the dense path's bits"
                );
            }
        }
        shaped::threads::set_num_threads(1);
    }
}
