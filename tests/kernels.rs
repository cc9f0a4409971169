//! The crate's own GEMM against a naive triple loop: every stride layout the layers use, edge tiles
//! (m not a multiple of 4, n not a multiple of 16 or 32, k beyond one packed panel), accumulation,
//! f32 and f64, on the path this process uses (`tests/isa.rs` runs this file on every path); and the batch-split convolution kernels equal the single-threaded ones.

use rand::{Rng, SeedableRng};
use shaped::kernels::conv::{self, ConvDims, ConvScratch};
use shaped::kernels::{Strides, gemm};

/// `n` values drawn uniformly from [−1, 1).
fn uniform(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn naive(m: usize, n: usize, k: usize, a: &[f64], sa: Strides, b: &[f64], sb: Strides) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * sa.rs + p * sa.cs] * b[p * sb.rs + j * sb.cs]).sum();
        }
    }
    c
}

#[test]
fn gemm_matches_naive_on_every_layout() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (4, 16, 20),
        (50, 32, 20),
        (7, 17, 300),
        (100, 10, 784),
        (13, 33, 513),
        (64, 1, 9),
        (70, 1, 50),
        (11, 48, 600),
        (24, 80, 40),
        (17, 64, 300),
        (9, 8, 33),
        (5, 16, 0),
    ];
    for &(m, n, k) in &shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for accumulate in [false, true] {
                let a = uniform(&mut rng, m * k);
                let b = uniform(&mut rng, k * n);
                let sa = if ta { Strides::transposed(m) } else { Strides::row_major(k) };
                let sb = if tb { Strides::transposed(k) } else { Strides::row_major(n) };
                let want = naive(m, n, k, &a, sa, &b, sb);
                let init = uniform(&mut rng, m * n);
                // f64
                let mut c = init.clone();
                gemm(m, n, k, &a, sa, &b, sb, &mut c, Strides::row_major(n), accumulate);
                for i in 0..m * n {
                    let w = want[i] + if accumulate { init[i] } else { 0.0 };
                    assert!((c[i] - w).abs() < 1e-12, "f64 {m}x{n}x{k} ta={ta} tb={tb} acc={accumulate} [{i}]");
                }
                // f32, written through a transposed destination view
                let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                let mut ct: Vec<f32> = vec![0.0; m * n];
                gemm(m, n, k, &a32, sa, &b32, sb, &mut ct, Strides::transposed(m), false);
                for i in 0..m {
                    for j in 0..n {
                        let got = ct[j * m + i] as f64;
                        assert!(
                            (got - want[i * n + j]).abs() < 1e-4 * (k.max(1) as f64).sqrt(),
                            "f32 {m}x{n}x{k} [{i},{j}]"
                        );
                    }
                }
                // f32, row-major destination (the in-place tile stores), overwriting or adding
                let mut cr: Vec<f32> = init.iter().map(|&v| v as f32).collect();
                gemm(m, n, k, &a32, sa, &b32, sb, &mut cr, Strides::row_major(n), accumulate);
                for i in 0..m * n {
                    let w = want[i] + if accumulate { init[i] } else { 0.0 };
                    let tol = 1e-4 * (k.max(1) as f64).sqrt();
                    assert!((cr[i] as f64 - w).abs() < tol, "f32 {m}x{n}x{k} ta={ta} tb={tb} acc={accumulate} [{i}]");
                }
            }
        }
    }
}

#[test]
fn threaded_gemm_is_bit_identical() {
    // Large products split C's rows over the threads; each element is computed the same way.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for &(m, n, k, ta) in &[(100, 64, 784, false), (605, 16, 100, true), (97, 33, 500, false), (200, 10, 784, false)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let init: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let sa = if ta { Strides::transposed(m) } else { Strides::row_major(k) };
        for accumulate in [false, true] {
            let run = |threads: usize| {
                shaped::set_num_threads(threads);
                let mut c = init.clone();
                gemm(m, n, k, &a, sa, &b, Strides::row_major(n), &mut c, Strides::row_major(n), accumulate);
                shaped::set_num_threads(1);
                c
            };
            assert_eq!(run(1), run(2), "{m}x{n}x{k} ta={ta} acc={accumulate}");
        }
    }
}

#[test]
fn threaded_convolution_equals_single_threaded() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for d in [
        ConvDims { n: 64, c: 1, h: 28, w: 28, f: 5, k: 7, stride: 1, pad: 0 },
        ConvDims { n: 33, c: 2, h: 12, w: 12, f: 3, k: 3, stride: 2, pad: 1 },
        ConvDims { n: 40, c: 3, h: 14, w: 14, f: 4, k: 3, stride: 1, pad: 1 },
    ] {
        let x = uniform(&mut rng, d.n * d.c * d.h * d.w);
        let w = uniform(&mut rng, d.f * d.c * d.k * d.k);
        let ylen = d.n * d.f * d.oh() * d.ow();
        let dy = uniform(&mut rng, ylen);
        let run = |threads: usize| {
            shaped::set_num_threads(threads);
            let mut s = ConvScratch::default();
            let mut y = vec![0.0; ylen];
            conv::forward_direct(&d, &x, &w, None, &mut y, &mut s);
            let (mut dw, mut dx, mut db) = (vec![0.0; w.len()], vec![0.0; x.len()], vec![f64::NAN; d.f]);
            conv::backward_direct(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
            shaped::set_num_threads(1);
            (y, dw, dx, db)
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.0, two.0, "forward is bit-identical across thread counts");
        assert_eq!(one.2, two.2, "input gradient is bit-identical across thread counts");
        for (a, b) in one.1.iter().zip(&two.1).chain(one.3.iter().zip(&two.3)) {
            assert!((a - b).abs() < 1e-12, "weight or bias gradient: {a} vs {b}");
        }
        // the bias gradient against a plain sum over samples and positions
        let q = d.oh() * d.ow();
        for (fi, g) in two.3.iter().enumerate() {
            let want: f64 = (0..d.n).map(|ni| dy[(ni * d.f + fi) * q..][..q].iter().sum::<f64>()).sum();
            assert!((g - want).abs() < 1e-9, "bias gradient {fi}: {g} vs {want}");
        }
    }
}

/// The f32 register-blocked convolution (AVX2 machines) against the f64 kernels, which the gradient
/// checks cover: filter groups of every size up to 8 and beyond, padding, kernel sizes.
#[test]
fn f32_convolution_matches_f64() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for (f, c, hw, k, pad) in [
        (1, 1, 9, 3, 0),
        (5, 1, 28, 7, 0),
        (8, 1, 28, 7, 0),
        (11, 2, 13, 5, 2),
        (3, 3, 8, 3, 1),
        (7, 2, 10, 1, 0),
        (16, 3, 32, 3, 1),
        // compact positions on AVX-512 (rows ≥ 16): vectors crossing rows at every offset, a
        // one-lane tail (17² = 18·16 + 1), padding
        (7, 2, 19, 3, 0),
        (3, 1, 18, 3, 1),
    ] {
        let d = ConvDims { n: 3, c, h: hw, w: hw, f, k, stride: 1, pad };
        let x = uniform(&mut rng, d.n * c * hw * hw);
        let w = uniform(&mut rng, f * c * k * k);
        let b = uniform(&mut rng, f);
        let ylen = d.n * f * d.oh() * d.ow();
        let dy = uniform(&mut rng, ylen);
        let f32v = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (mut y64, mut y32) = (vec![0.0f64; ylen], vec![0.0f32; ylen]);
        conv::forward_direct(&d, &x, &w, Some(&b), &mut y64, &mut ConvScratch::default());
        conv::forward_direct(&d, &f32v(&x), &f32v(&w), Some(&f32v(&b)), &mut y32, &mut ConvScratch::default());
        let tol = 1e-4 * (c * k * k) as f64;
        for (i, (a, bb)) in y64.iter().zip(&y32).enumerate() {
            assert!((a - *bb as f64).abs() < tol, "forward f={f} c={c} k={k} p={pad} [{i}]: {a} vs {bb}");
        }
        let (mut dw64, mut dw32) = (vec![0.0f64; w.len()], vec![0.0f32; w.len()]);
        conv::backward_direct(&d, &x, &w, &dy, &mut dw64, None, None, &mut ConvScratch::default());
        conv::backward_direct(&d, &f32v(&x), &f32v(&w), &f32v(&dy), &mut dw32, None, None, &mut ConvScratch::default());
        let tol = 1e-4 * (d.n * d.oh() * d.ow()) as f64;
        for (i, (a, bb)) in dw64.iter().zip(&dw32).enumerate() {
            assert!((a - *bb as f64).abs() < tol, "weight gradient f={f} c={c} k={k} p={pad} [{i}]: {a} vs {bb}");
        }
    }
}

#[test]
fn threaded_max_pool_equals_single_threaded() {
    use shaped::kernels::pool::{self, PoolDims};
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for d in [
        PoolDims { planes: 800, h: 22, w: 22, p: 2, stride: 2, pad: 0 },
        PoolDims { planes: 640, h: 11, w: 11, p: 3, stride: 2, pad: 0 },
    ] {
        let x: Vec<f32> = (0..d.planes * d.h * d.w).map(|_| rng.random_range(-1.0..1.0)).collect();
        let run = |threads: usize| {
            shaped::set_num_threads(threads);
            let mut y = vec![0.0f32; d.planes * d.oh() * d.ow()];
            let mut a = vec![0u32; y.len()];
            pool::max_forward(&d, &x, &mut y, Some(&mut a));
            // backward (planes split too), with the output as a stand-in gradient
            let mut dx = vec![f32::NAN; x.len()];
            pool::max_backward(&d, &y, &a, &mut dx);
            shaped::set_num_threads(1);
            (y, a, dx)
        };
        let (one, two) = (run(1), run(2));
        assert!(one.2.iter().all(|v| v.is_finite()), "backward writes every input gradient");
        assert_eq!(one, two);
    }
}

#[test]
fn threaded_relu_equals_single_threaded() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let n = 300_001; // large enough to split, not a multiple of the piece size
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let dy: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let run = |threads: usize| {
        shaped::set_num_threads(threads);
        let (mut y, mut dx) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        shaped::kernels::relu_forward(&x, &mut y);
        shaped::kernels::relu_backward(&x, &dy, &mut dx);
        shaped::set_num_threads(1);
        (y, dx)
    };
    let (one, two) = (run(1), run(2));
    for i in 0..n {
        assert_eq!(one.0[i], x[i].max(0.0), "forward [{i}]");
        assert_eq!(one.1[i], if x[i] > 0.0 { dy[i] } else { 0.0 }, "backward [{i}]");
    }
    assert_eq!(one, two);
}

#[test]
fn a_panicking_step_on_the_pool_does_not_hang() {
    // `threads::install` keeps the other kernel threads polling while the step runs; a panic inside
    // must still release them (the scope waits for them before passing the panic on).
    shaped::set_num_threads(2);
    let r = std::panic::catch_unwind(|| shaped::threads::install(|| panic!("inside the step")));
    assert!(r.is_err(), "the panic reaches the caller");
    assert_eq!(shaped::threads::install(|| 7), 7, "the pool still works afterwards");
    shaped::set_num_threads(1);
}

#[test]
fn im2col_paths_equal_the_direct_convolution() {
    // Stride-1 im2col/col2im go through a zero-padded plane, with fixed-size row moves for output
    // widths 2, 4, 8, 16 and 32 and a loop for the others; other strides take the general loop.
    // All must agree with the direct kernels.
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    for d in [
        ConvDims { n: 3, c: 4, h: 6, w: 7, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 5, w: 70, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 5, h: 4, w: 4, f: 2, k: 3, stride: 1, pad: 2 },
        ConvDims { n: 2, c: 4, h: 2, w: 2, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 3, c: 4, h: 4, w: 4, f: 5, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 8, w: 8, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 16, w: 16, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 3, w: 32, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 9, w: 9, f: 3, k: 3, stride: 2, pad: 1 },
    ] {
        let x = uniform(&mut rng, d.n * d.c * d.h * d.w);
        let w = uniform(&mut rng, d.f * d.c * d.k * d.k);
        let b = uniform(&mut rng, d.f);
        let ylen = d.n * d.f * d.oh() * d.ow();
        let dy = uniform(&mut rng, ylen);
        let run = |im2col: bool| {
            let mut s = ConvScratch::default();
            let mut y = vec![0.0; ylen];
            let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; d.f], vec![0.0; x.len()]);
            if im2col {
                conv::forward_im2col(&d, &x, &w, Some(&b), &mut y, &mut s);
                conv::backward_im2col(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
            } else {
                conv::forward_direct(&d, &x, &w, Some(&b), &mut y, &mut s);
                conv::backward_direct(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
            }
            [y, dw, db, dx]
        };
        let (a, b2) = (run(true), run(false));
        for (name, (u, v)) in ["y", "dW", "db", "dX"].iter().zip(a.iter().zip(&b2)) {
            let err = u.iter().zip(v).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(err < 1e-12, "{d:?} {name}: im2col and direct differ by {err}");
        }
    }
}

#[test]
fn vectorised_2x2_pool_equals_the_general_loop() {
    // The f32 2×2 kernel (eight windows per AVX2 step; rows of 9–15 windows end with an
    // overlapping step, rows under 8 run the scalar loop) must pick the same maximum and the
    // same first-maximum index as the general loop, ties included, and with ReLU first the same
    // as the general loop of `max(x, 0)`.
    use shaped::kernels::pool::{self, PoolDims};
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    for (h, w) in [(32, 32), (16, 16), (22, 22), (9, 35), (2, 2), (4, 18), (6, 34), (2, 64), (3, 67)] {
        let d = PoolDims { planes: 3, h, w, p: 2, stride: 2, pad: 0 };
        // few distinct values, so that windows often hold ties
        let x: Vec<f32> = (0..d.planes * h * w).map(|_| rng.random_range(0..4) as f32 - 1.5).collect();
        let q = d.planes * d.oh() * d.ow();
        let (mut y, mut a) = (vec![0.0f32; q], vec![0u32; q]);
        let (mut yg, mut ag) = (vec![0.0f32; q], vec![0u32; q]);
        pool::max_forward(&d, &x, &mut y, Some(&mut a));
        pool::max_forward_general(&d, &x, &mut yg, Some(&mut ag));
        assert_eq!(a, ag, "{h}×{w}: argmax differs");
        assert_eq!(y, yg, "{h}×{w}: maxima differ");
        let relu: Vec<f32> = x.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
        pool::relu_max_forward(&d, &x, &mut y, Some(&mut a));
        pool::max_forward_general(&d, &relu, &mut yg, Some(&mut ag));
        assert_eq!(a, ag, "{h}×{w}: argmax of max(x, 0) differs");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&yg), "{h}×{w}: maxima of max(x, 0) differ");
    }
}

#[test]
fn vectorised_2x2_pool_backward_equals_zeroing_and_adding() {
    // The f32 2×2 backward (eight windows per AVX2 step, every input gradient written once; rows
    // of 9–15 windows end with an overlapping step) must give the bits of zeroing the input
    // gradient and adding each output gradient at its argmax: −0 becomes +0, NaN stays, and with
    // ReLU's output only `y > 0` passes (not 0, not NaN).
    use shaped::kernels::pool::{self, PoolDims};
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let special = [0.0f32, -0.0, f32::NAN, 1.5, -2.0];
    for (h, w) in [(22, 22), (32, 32), (9, 35), (4, 18), (17, 16), (16, 33), (3, 5), (6, 34), (2, 64), (3, 67)] {
        let d = PoolDims { planes: 3, h, w, p: 2, stride: 2, pad: 0 };
        let x: Vec<f32> = (0..d.planes * h * w).map(|_| rng.random_range(0..4) as f32 - 1.5).collect();
        let q = d.planes * d.oh() * d.ow();
        let (mut y, mut a) = (vec![0.0f32; q], vec![0u32; q]);
        pool::relu_max_forward(&d, &x, &mut y, Some(&mut a));
        let pick = |rng: &mut rand::rngs::StdRng| {
            if rng.random_range(0..4) == 0 {
                special[rng.random_range(0..special.len())]
            } else {
                rng.random_range(-1.0..1.0)
            }
        };
        let dy: Vec<f32> = (0..q).map(|_| pick(&mut rng)).collect();
        let yr: Vec<f32> = (0..q).map(|i| if i % 7 == 3 { f32::NAN } else { y[i] }).collect();
        for relu in [false, true] {
            let mut want = vec![0.0f32; d.planes * h * w];
            for (i, (&g, &k)) in dy.iter().zip(&a).enumerate() {
                let plane = i / (d.oh() * d.ow()) * h * w;
                want[plane + k as usize] += if !relu || yr[i] > 0.0 { g } else { 0.0 };
            }
            let mut got = vec![7.0f32; want.len()];
            if relu {
                pool::relu_max_backward(&d, &dy, &a, &yr, &mut got);
            } else {
                pool::max_backward(&d, &dy, &a, &mut got);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{h}×{w}, relu {relu}");
        }
    }
}

#[test]
fn column_sums_match_a_naive_loop() {
    // `sum_rows` (bias gradients) sums 32 columns at a time in registers, the rest one by one.
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for (rows, cols) in [(50, 1), (3, 5), (50, 32), (7, 33), (100, 70), (0, 16)] {
        let dy = uniform(&mut rng, rows * cols);
        let mut db = vec![f64::NAN; cols];
        shaped::kernels::sum_rows(&dy, &mut db);
        for (j, &got) in db.iter().enumerate() {
            let want: f64 = (0..rows).map(|i| dy[i * cols + j]).sum();
            assert!((got - want).abs() < 1e-12, "{rows}×{cols}, column {j}: {got} vs {want}");
        }
    }
}

#[test]
fn implicit_im2col_f32_equals_the_f64_direct_convolution() {
    // In f32 on an AVX2 CPU, stride-1 convolutions with output rows of ≥ 8 skip the patch matrix
    // (the GEMM reads windows of zero-padded planes); with "same" padding the backward pass does
    // too. Compare against the f64 direct kernels, on one and two threads (the batch split).
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    for d in [
        ConvDims { n: 3, c: 4, h: 8, w: 8, f: 5, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 4, c: 16, h: 16, w: 16, f: 32, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 5, w: 70, f: 3, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 2, c: 4, h: 9, w: 12, f: 7, k: 5, stride: 1, pad: 2 },
        ConvDims { n: 2, c: 5, h: 12, w: 11, f: 3, k: 3, stride: 1, pad: 0 },
        ConvDims { n: 3, c: 4, h: 4, w: 4, f: 5, k: 3, stride: 1, pad: 1 },
    ] {
        let x = uniform(&mut rng, d.n * d.c * d.h * d.w);
        let w = uniform(&mut rng, d.f * d.c * d.k * d.k);
        let b = uniform(&mut rng, d.f);
        let ylen = d.n * d.f * d.oh() * d.ow();
        let dy = uniform(&mut rng, ylen);
        let mut s = ConvScratch::default();
        let mut y = vec![0.0; ylen];
        let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; d.f], vec![0.0; x.len()]);
        conv::forward_direct(&d, &x, &w, Some(&b), &mut y, &mut s);
        conv::backward_direct(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (x32, w32, b32, dy32) = (f(&x), f(&w), f(&b), f(&dy));
        for threads in [1, 2] {
            shaped::set_num_threads(threads);
            let mut s = ConvScratch::default();
            // Twice with the same scratch: the backward pass reuses the forward's buffers, whose
            // zero borders must be restored.
            for round in 0..2 {
                let mut y32 = vec![f32::NAN; ylen];
                let (mut dw32, mut db32, mut dx32) =
                    (vec![f32::NAN; w.len()], vec![f32::NAN; d.f], vec![f32::NAN; x.len()]);
                conv::forward_im2col(&d, &x32, &w32, Some(&b32), &mut y32, &mut s);
                conv::backward_im2col(&d, &x32, &w32, &dy32, &mut dw32, Some(&mut db32), Some(&mut dx32), &mut s);
                let depth = (d.c * d.k * d.k).max(d.n * d.oh() * d.ow()) as f64;
                for (name, got, want) in [("y", &y32, &y), ("dW", &dw32, &dw), ("db", &db32, &db), ("dX", &dx32, &dx)] {
                    let err = got.iter().zip(want.iter()).map(|(&p, &q)| (p as f64 - q).abs()).fold(0.0, f64::max);
                    assert!(
                        err < 2e-6 * depth,
                        "{d:?} {threads} thread(s), round {round}, {name}: f32 and f64 differ by {err}"
                    );
                }
            }
        }
        shaped::set_num_threads(1);
    }
}

#[test]
fn sum_squares_matches_a_naive_sum() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for len in [0, 1, 7, 31, 32, 33, 64, 100, 1000, 50_890] {
        let a = uniform(&mut rng, len);
        let want: f64 = a.iter().map(|v| v * v).sum();
        let got = shaped::kernels::sum_squares(&a);
        assert!((got - want).abs() <= 1e-12 * want.max(1.0), "f64, {len} values: {got} vs {want}");
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let want32: f64 = a32.iter().map(|&v| v as f64 * v as f64).sum();
        let got32 = shaped::kernels::sum_squares(&a32) as f64;
        assert!((got32 - want32).abs() <= 1e-5 * want32.max(1.0), "f32, {len} values: {got32} vs {want32}");
    }
}

#[test]
fn threaded_batch_norm_equals_single_threaded() {
    use shaped::kernels::norm::{self, NormDims};
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    // 4b's spatial batch norm (split over the samples on two threads), an odd batch, a small
    // call that stays whole, and calls with nothing to normalise (no values per channel, no
    // channels, no samples), which must not panic.
    for d in [
        NormDims { n: 100, c: 8, inner: 576 },
        NormDims { n: 37, c: 5, inner: 300 },
        NormDims { n: 6, c: 3, inner: 4 },
        NormDims { n: 4, c: 3, inner: 0 },
        NormDims { n: 4, c: 0, inner: 5 },
        NormDims { n: 0, c: 3, inner: 5 },
    ] {
        let len = d.n * d.c * d.inner;
        let x: Vec<f64> = (0..len).map(|_| rng.random_range(-2.0..3.0)).collect();
        let dy = uniform(&mut rng, len);
        let gamma: Vec<f64> = (0..d.c).map(|_| rng.random_range(0.5..1.5)).collect();
        let beta: Vec<f64> = (0..d.c).map(|_| rng.random_range(-0.5..0.5)).collect();
        fn run<E: shaped::kernels::Elem>(
            threads: usize,
            d: NormDims,
            x: &[E],
            dy: &[E],
            gamma: &[E],
            beta: &[E],
        ) -> Vec<Vec<E>> {
            shaped::set_num_threads(threads);
            let c = d.c;
            let (mut rm, mut rv) = (vec![E::zero(); c], vec![E::one(); c]);
            let (mut y, mut mean, mut is) = (vec![E::nan(); x.len()], vec![E::nan(); c], vec![E::nan(); c]);
            let m = E::from(0.9).unwrap();
            let eps = E::from(1e-5).unwrap();
            norm::batchnorm_train(d, x, gamma, beta, &mut rm, &mut rv, m, eps, &mut y, &mut mean, &mut is);
            let (mut dg, mut db, mut dx) = (vec![E::nan(); c], vec![E::nan(); c], vec![E::nan(); x.len()]);
            norm::batchnorm_backward(d, dy, x, &mean, &is, gamma, &mut dg, &mut db, Some(&mut dx));
            // inference on the running statistics just updated
            let mut ye = vec![E::nan(); x.len()];
            norm::batchnorm_eval(d, x, gamma, beta, &rm, &rv, eps, &mut ye);
            shaped::set_num_threads(1);
            let inner = d.inner.max(1);
            for (i, (&v, &o)) in x.iter().zip(&ye).enumerate() {
                let ch = (i / inner) % c;
                let scale = gamma[ch] / (rv[ch] + eps).sqrt();
                let want = v * scale + (beta[ch] - rm[ch] * scale);
                assert!(o == want, "batchnorm_eval [{i}]: {o:?} vs {want:?}");
            }
            vec![y, mean, is, rm, rv, dg, db, dx, ye]
        }
        let one = run(1, d, &x, &dy, &gamma, &beta);
        assert!(one.iter().flatten().all(|v| v.is_finite()), "every output written");
        assert!(one == run(2, d, &x, &dy, &gamma, &beta), "f64 {d:?}");
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (x, dy, gamma, beta) = (f(&x), f(&dy), f(&gamma), f(&beta));
        assert!(run(1, d, &x, &dy, &gamma, &beta) == run(2, d, &x, &dy, &gamma, &beta), "f32 {d:?}");
    }
}

#[test]
fn threaded_im2col_paths_equal_single_threaded() {
    // Batches large enough to split into chunks (several per thread, run by whichever thread gets
    // to them): the implicit path (stride 1, "same" padding) and the patch-matrix path (no padding,
    // stride 2) in f32, at one and two threads; outputs and input gradients are per sample (the
    // same bits), the weight gradient sums one partial per chunk (close).
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    for d in [
        ConvDims { n: 41, c: 8, h: 16, w: 16, f: 8, k: 3, stride: 1, pad: 1 },
        ConvDims { n: 37, c: 6, h: 15, w: 15, f: 10, k: 3, stride: 2, pad: 0 },
    ] {
        let f = |v: Vec<f64>| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let x = f(uniform(&mut rng, d.n * d.c * d.h * d.w));
        let w = f(uniform(&mut rng, d.f * d.c * d.k * d.k));
        let ylen = d.n * d.f * d.oh() * d.ow();
        let dy = f(uniform(&mut rng, ylen));
        let run = |threads: usize, patch_matrix: bool| {
            shaped::set_num_threads(threads);
            let mut s = ConvScratch::default();
            let mut y = vec![f32::NAN; ylen];
            let (mut dw, mut dx, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; x.len()], vec![f32::NAN; d.f]);
            if patch_matrix {
                conv::forward_patch_matrix(&d, &x, &w, None, &mut y, &mut s);
                conv::backward_patch_matrix(&d, &x, &w, &dy, &mut dw, Some(&mut dx), &mut s);
            } else {
                conv::forward_im2col(&d, &x, &w, None, &mut y, &mut s);
                conv::backward_im2col(&d, &x, &w, &dy, &mut dw, Some(&mut db), Some(&mut dx), &mut s);
            }
            shaped::set_num_threads(1);
            (y, dw, dx, db)
        };
        for patch_matrix in [false, true] {
            let (one, two) = (run(1, patch_matrix), run(2, patch_matrix));
            assert!(one.0.iter().chain(&one.1).chain(&one.2).all(|v| v.is_finite()), "{d:?}: every value written");
            assert_eq!(one.0, two.0, "{d:?} patch matrix {patch_matrix}: forward");
            assert_eq!(one.2, two.2, "{d:?} patch matrix {patch_matrix}: input gradient");
            let scale = one.1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, b) in one.1.iter().zip(&two.1) {
                assert!((a - b).abs() <= 1e-5 * scale, "{d:?} patch matrix {patch_matrix}: weight gradient {a} vs {b}");
            }
            if !patch_matrix {
                // (the public patch-matrix pass leaves the bias gradient to its caller)
                let q = d.oh() * d.ow();
                for (fi, (a, b)) in one.3.iter().zip(&two.3).enumerate() {
                    let want: f32 = (0..d.n).map(|ni| dy[(ni * d.f + fi) * q..][..q].iter().sum::<f32>()).sum();
                    assert!(
                        (a - b).abs() <= 1e-4 && (b - want).abs() <= 1e-3,
                        "{d:?}: bias gradient {fi}: {a}, {b}, {want}"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Public kernel entry points validate their dims before any (unsafe) tile runs: a bad call panics
// with the sizes, never reads out of bounds.

fn panics_with(what: &str, f: impl FnOnce() + std::panic::UnwindSafe) {
    let err = std::panic::catch_unwind(f).expect_err("the call must panic");
    let msg = err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()));
    let msg = msg.unwrap_or_default();
    assert!(msg.contains(what), "message {msg:?} lacks {what:?}");
}

#[test]
fn conv_entry_points_reject_degenerate_dims() {
    let ok = ConvDims { n: 1, c: 1, h: 8, w: 8, f: 2, k: 3, stride: 1, pad: 0 };
    // a kernel larger than the padded input: oh() used to wrap around
    let big = ConvDims { k: 9, ..ok };
    panics_with("does not fit", move || {
        let _ = big.oh();
    });
    for (d, what) in [
        (ConvDims { k: 0, ..ok }, "must be at least 1"),
        (ConvDims { stride: 0, ..ok }, "must be at least 1"),
        (ConvDims { f: 0, ..ok }, "must be at least 1"),
        (big, "does not fit"),
    ] {
        let (x, w) = (vec![0f32; 64], vec![0f32; 18]);
        panics_with(what, move || {
            let mut y = vec![0f32; 72];
            conv::forward(&d, &x, &w, None, &mut y, &mut ConvScratch::default());
        });
    }
    // buffers that disagree with the dims
    panics_with("output length", move || {
        let (x, w, mut y) = (vec![0f32; 64], vec![0f32; 18], vec![0f32; 71]);
        conv::forward(&ok, &x, &w, None, &mut y, &mut ConvScratch::default());
    });
    panics_with("input length", move || {
        let (x, w, mut dw) = (vec![0f32; 63], vec![0f32; 18], vec![0f32; 18]);
        conv::backward(&ok, &x, &w, &[0f32; 72], &mut dw, None, None, &mut ConvScratch::default());
    });
    panics_with("bias length", move || {
        let (x, w, mut y) = (vec![0f32; 64], vec![0f32; 18], vec![0f32; 72]);
        conv::forward(&ok, &x, &w, Some(&[0.0; 3]), &mut y, &mut ConvScratch::default());
    });
}

#[test]
fn pool_and_norm_entry_points_reject_bad_dims() {
    use shaped::kernels::norm::{self, NormDims};
    use shaped::kernels::pool::{self, PoolDims};
    let d = PoolDims { planes: 2, h: 4, w: 4, p: 0, stride: 2, pad: 0 };
    panics_with("must be at least 1", move || pool::max_forward(&d, &[0f32; 32], &mut [0f32; 8], None));
    let d = PoolDims { planes: 2, h: 4, w: 4, p: 5, stride: 5, pad: 0 };
    panics_with("does not fit", move || pool::max_forward(&d, &[0f32; 32], &mut [0f32; 8], None));
    let d = PoolDims { planes: 2, h: 4, w: 4, p: 2, stride: 2, pad: 0 };
    panics_with("output length", move || pool::max_forward(&d, &[0f32; 32], &mut [0f32; 7], None));
    panics_with("argmax length", move || pool::max_forward(&d, &[0f32; 32], &mut [0f32; 8], Some(&mut [0u32; 3])));
    let d = NormDims { n: 2, c: 3, inner: 4 };
    panics_with("tensor length", move || {
        norm::batchnorm_eval(d, &[0f32; 23], &[1.0; 3], &[0.0; 3], &[0.0; 3], &[1.0; 3], 1e-5, &mut [0f32; 23])
    });
    panics_with("per-channel lengths", move || {
        norm::batchnorm_eval(d, &[0f32; 24], &[1.0; 2], &[0.0; 3], &[0.0; 3], &[1.0; 3], 1e-5, &mut [0f32; 24])
    });
}
