//! The Winograd F(2×2, 3×3) path of the convolution (`kernels::conv::forward_winograd`,
//! `backward_winograd`): against the direct loops in f64 for odd and even maps, wide (the tiles
//! of a plane as vector lanes) and narrow (the samples as lanes), channel counts around the
//! vector width, one sample and several blocks of samples; against centred
//! differences in f64; the f32 path the VGG takes against f64 and at two threads;
//! the entry points' choice; and the sizes it refuses. `tests/isa.rs` runs this file on every
//! instruction set of the host.

use rand::{Rng, SeedableRng};
use shaped::kernels::Elem;
use shaped::kernels::conv::{self, ConvDims, ConvScratch};

/// Held by the tests that change the thread count or compare bits across calls.
static THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `n` values drawn uniformly from [−1, 1).
fn uniform(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

/// Forward output, weight, bias and input gradients of `d` by the Winograd path or the direct
/// loops (twice, so that the second pass runs on used scratch buffers).
fn run<E: Elem>(d: &ConvDims, winograd: bool, x: &[E], w: &[E], b: &[E], dy: &[E]) -> [Vec<E>; 4] {
    let mut s = ConvScratch::default();
    let mut y = vec![E::zero(); d.n * d.f * d.oh() * d.ow()];
    let (mut dw, mut db, mut dx) = (vec![E::zero(); w.len()], vec![E::zero(); d.f], vec![E::zero(); x.len()]);
    for _ in 0..2 {
        if winograd {
            conv::forward_winograd(d, x, w, Some(b), &mut y, &mut s);
            conv::backward_winograd(d, x, w, dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        } else {
            conv::forward_direct(d, x, w, Some(b), &mut y, &mut s);
            conv::backward_direct(d, x, w, dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        }
    }
    [y, dw, db, dx]
}

fn max_err<E: Elem>(u: &[E], v: &[f64]) -> f64 {
    assert_eq!(u.len(), v.len());
    u.iter().zip(v).map(|(p, q)| (p.to_f64_lossy() - q).abs()).fold(0.0, f64::max)
}

/// Random tensors for `d`: input, weights, bias, output gradient.
fn tensors(d: &ConvDims, seed: u64) -> [Vec<f64>; 4] {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    [
        uniform(&mut rng, d.n * d.c * d.h * d.w),
        uniform(&mut rng, d.f * d.c * 9),
        uniform(&mut rng, d.f),
        uniform(&mut rng, d.n * d.f * d.h * d.w),
    ]
}

fn dims(n: usize, c: usize, h: usize, w: usize, f: usize) -> ConvDims {
    ConvDims { n, c, h, w, f, k: 3, stride: 1, pad: 1 }
}

#[test]
fn winograd_equals_the_direct_loops_in_f64() {
    for (i, d) in [
        dims(2, 8, 8, 8, 8),
        dims(3, 9, 7, 5, 11),   // odd maps: the last tile row and column half outside
        dims(1, 16, 1, 1, 8),   // a single pixel
        dims(2, 8, 1, 9, 8),    // one row
        dims(2, 8, 9, 1, 8),    // one column
        dims(2, 17, 6, 13, 33), // channels and filters past the vector width
        dims(5, 8, 16, 16, 16), // several blocks of samples
        dims(40, 8, 4, 4, 8),   // many samples per block, a short last block
        dims(1, 64, 3, 18, 12),
        dims(18, 8, 40, 6, 8), // narrow maps (samples as lanes): two blocks, positions in parts
        dims(2, 12, 5, 7, 20),
        dims(2, 1, 6, 6, 1), // one channel, one filter (computed, if not chosen by the entry points)
        dims(17, 3, 5, 8, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let [x, w, b, dy] = tensors(&d, 30 + i as u64);
        let (win, direct) = (run(&d, true, &x, &w, &b, &dy), run(&d, false, &x, &w, &b, &dy));
        for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(win.iter().zip(&direct)) {
            let err = max_err(u, v);
            assert!(err < 1e-12, "{d:?} {name}: Winograd and direct differ by {err}");
        }
    }
}

#[test]
fn winograd_backward_equals_centred_differences_in_f64() {
    // L = Σ dy ⊙ conv(x, w) + b: dL/dw and dL/dx by centred differences against the backward pass.
    let d = dims(2, 8, 5, 6, 9);
    let [x, w, b, dy] = tensors(&d, 40);
    let loss = |x: &[f64], w: &[f64]| {
        let mut y = vec![0.0; dy.len()];
        conv::forward_winograd(&d, x, w, Some(&b), &mut y, &mut ConvScratch::default());
        y.iter().zip(&dy).map(|(a, g)| a * g).sum::<f64>()
    };
    let [_, dw, db, dx] = run(&d, true, &x, &w, &b, &dy);
    let h = 1e-5;
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    for _ in 0..40 {
        let i = rng.random_range(0..w.len());
        let (mut wp, mut wm) = (w.clone(), w.clone());
        wp[i] += h;
        wm[i] -= h;
        let num = (loss(&x, &wp) - loss(&x, &wm)) / (2.0 * h);
        assert!((num - dw[i]).abs() < 1e-7 * (1.0 + num.abs()), "dW[{i}]: {} against {num}", dw[i]);
        let j = rng.random_range(0..x.len());
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[j] += h;
        xm[j] -= h;
        let num = (loss(&xp, &w) - loss(&xm, &w)) / (2.0 * h);
        assert!((num - dx[j]).abs() < 1e-7 * (1.0 + num.abs()), "dX[{j}]: {} against {num}", dx[j]);
    }
    let sums: Vec<f64> =
        (0..d.f).map(|f| (0..d.n).map(|n| dy[(n * d.f + f) * 30..][..30].iter().sum::<f64>()).sum()).collect();
    assert!(db.iter().zip(&sums).all(|(a, b)| (a - b).abs() < 1e-12), "db is not Σ dy");
}

#[test]
fn the_entry_points_take_winograd_for_the_vgg_layers_and_it_matches_f64() {
    // the VGG's second and third convolutions (batch 12 here), and 16→16, at the channel rule
    let _one_at_a_time = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for (seed, d) in [(50, dims(12, 16, 16, 16, 32)), (51, dims(12, 32, 8, 8, 32)), (52, dims(12, 16, 16, 16, 16))] {
        let [x, w, b, dy] = tensors(&d, seed);
        let (x32, w32, b32, dy32) = (to_f32(&x), to_f32(&w), to_f32(&b), to_f32(&dy));
        let mut s = ConvScratch::default();
        let mut y = vec![0.0f32; dy.len()];
        let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; d.f], vec![0.0f32; x.len()]);
        conv::forward(&d, &x32, &w32, Some(&b32), &mut y, &mut s);
        conv::backward(&d, &x32, &w32, &dy32, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        let win = run(&d, true, &x32, &w32, &b32, &dy32);
        for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(win.iter().zip([&y, &dw, &db, &dx])) {
            assert!(
                u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{d:?} {name}: the entry point is not the Winograd path"
            );
        }
        // f32 against the f64 direct loops: the forward and input gradient sum 9·c (≤ 288) and
        // 9·f products of values in [−1, 1); the transforms add up to 16 of them before the
        // products (and the weight gradient sums n·h·w ≤ 3072), so a few ulps of sums of ~10–50.
        let want = run(&d, false, &x, &w, &b, &dy);
        for (name, (u, v), tol) in
            [("y", (&win[0], &want[0]), 2e-5), ("dW", (&win[1], &want[1]), 1e-4), ("dX", (&win[3], &want[3]), 2e-5)]
        {
            let err = max_err(u, v);
            assert!(err < tol, "{d:?} {name}: f32 Winograd off the f64 direct loops by {err}");
        }
    }
}

#[test]
fn the_entry_points_leave_layers_with_few_channels_to_im2col() {
    // 8→32 on 16 × 16 maps and 8→16 on 6 × 6 ran slower through Winograd than through im2col
    // (`c·f < 8·(c + f)`; 12→16 is below the rule too)
    let _one_at_a_time = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for (seed, d) in [(55, dims(4, 12, 16, 16, 16)), (56, dims(4, 8, 16, 16, 32)), (57, dims(4, 8, 6, 6, 16))] {
        let [x, w, b, _] = tensors(&d, seed);
        let (x, w, b) = (to_f32(&x), to_f32(&w), to_f32(&b));
        let (mut y, mut y2) = (vec![0.0f32; d.n * d.f * d.h * d.w], vec![0.0f32; d.n * d.f * d.h * d.w]);
        conv::forward(&d, &x, &w, Some(&b), &mut y, &mut ConvScratch::default());
        conv::forward_im2col(&d, &x, &w, Some(&b), &mut y2, &mut ConvScratch::default());
        assert!(y.iter().zip(&y2).all(|(p, q)| p.to_bits() == q.to_bits()), "{d:?}: the entry point is not im2col");
    }
}

#[test]
fn the_outputs_of_a_sample_do_not_depend_on_the_split_and_the_weight_gradient_within_rounding() {
    // (Other tests of the binary may change the thread count while this one runs: the forward
    // output and the input gradient are computed per sample, so their bits may not depend on the
    // split at all; the weight gradient's partial sums are added in chunk order, so it is within
    // rounding of one thread's.)
    let _one_at_a_time = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    // a wide map (the phases) and a narrow one (samples as lanes: 37 samples, blocks of 16 kept whole)
    // (and 30→37 on 4 × 4: 1,110 kernels, whose weight transforms and gradient fold are split
    // over the threads by columns, the last block 6 kernels wide)
    for (seed, d) in [(60, dims(24, 16, 16, 16, 32)), (61, dims(37, 16, 4, 4, 24)), (62, dims(9, 30, 4, 4, 37))] {
        let [x, w, b, dy] = tensors(&d, seed);
        let (x, w, b, dy) = (to_f32(&x), to_f32(&w), to_f32(&b), to_f32(&dy));
        shaped::threads::set_num_threads(1);
        let one = run(&d, true, &x, &w, &b, &dy);
        shaped::threads::set_num_threads(2);
        let two = run(&d, true, &x, &w, &b, &dy);
        shaped::threads::set_num_threads(1);
        for (k, name) in ["y", "dW", "db", "dX"].iter().enumerate() {
            if k == 0 || k == 3 {
                assert!(
                    two[k].iter().zip(&one[k]).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{d:?} {name} depends on the split"
                );
            }
            let err = two[k].iter().zip(&one[k]).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-3, "{d:?} {name}: two threads off one by {err}");
        }
    }
}

#[test]
fn sizes_winograd_does_not_compute_are_refused() {
    for d in [
        ConvDims { n: 1, c: 8, h: 8, w: 8, f: 8, k: 5, stride: 1, pad: 2 },
        ConvDims { n: 1, c: 8, h: 8, w: 8, f: 8, k: 3, stride: 2, pad: 1 },
        ConvDims { n: 1, c: 8, h: 8, w: 8, f: 8, k: 3, stride: 1, pad: 0 },
    ] {
        let (x, w) = (vec![0.0f32; d.n * d.c * d.h * d.w], vec![0.0f32; d.f * d.c * d.k * d.k]);
        let mut y = vec![0.0f32; d.n * d.f * d.oh() * d.ow()];
        let r = std::panic::catch_unwind(move || {
            conv::forward_winograd(&d, &x, &w, None, &mut y, &mut ConvScratch::default());
        });
        let msg = r.expect_err("an unsupported size was not refused");
        let msg = msg.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        assert!(msg.contains("Winograd F(2×2, 3×3) needs"), "{msg}");
    }
}
