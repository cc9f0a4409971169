//! Time of each convolution of the workload's CNNs, forward and backward, at batch 100 on one
//! thread or as many as asked:
//! `cargo run --release --example conv_layers -- [reps] [name filter] [threads]`. Prints µs and
//! GFLOP/s (useful multiply-adds × 2, as `shaped::flops` counts them) per layer and pass, to see
//! which layers and which paths (direct, compact, implicit im2col, patch matrix, dense, Winograd)
//! hold the step's time; a name ending in "(direct)" forces the direct loops, one ending in
//! "(im2col)" the im2col + GEMM path (the baseline of the Winograd layers, in the same run), one
//! ending in "(winograd)" the Winograd path where the entry points would not take it. The
//! layers after the VGG's are sizes either side of the Winograd path's channel rule.

use shaped::kernels::conv::{self, ConvDims, ConvScratch};
use std::time::Instant;

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(20);
    let threads: usize = std::env::args().nth(3).and_then(|v| v.parse().ok()).unwrap_or(1);
    shaped::threads::set_num_threads(threads);
    // (name, c, h, f, k, pad, input gradient wanted)
    let layers = [
        ("4a conv", 1, 28, 5, 7, 0, false),
        ("4b conv", 1, 28, 8, 7, 0, false),
        ("vgg conv1", 3, 32, 16, 3, 1, false),
        ("vgg conv1 (direct)", 3, 32, 16, 3, 1, false),
        ("vgg conv2", 16, 16, 32, 3, 1, true),
        ("vgg conv2 (im2col)", 16, 16, 32, 3, 1, true),
        ("vgg conv3", 32, 8, 32, 3, 1, true),
        ("vgg conv3 (im2col)", 32, 8, 32, 3, 1, true),
        ("vgg conv4", 32, 8, 32, 3, 1, true),
        ("vgg conv5", 32, 4, 64, 3, 1, true),
        ("vgg conv5 (im2col)", 32, 4, 64, 3, 1, true),
        ("vgg conv6", 64, 4, 64, 3, 1, true),
        ("vgg conv6 (im2col)", 64, 4, 64, 3, 1, true),
        ("vgg conv7", 64, 2, 64, 3, 1, true),
        ("vgg conv8", 64, 2, 64, 3, 1, true),
        ("8→16 6×6", 8, 6, 16, 3, 1, true),
        ("8→16 6×6 (im2col)", 8, 6, 16, 3, 1, true),
        ("8→16 6×6 (winograd)", 8, 6, 16, 3, 1, true),
        ("16→16 16×16", 16, 16, 16, 3, 1, true),
        ("16→16 16×16 (im2col)", 16, 16, 16, 3, 1, true),
        ("16→16 16×16 (winograd)", 16, 16, 16, 3, 1, true),
        ("8→32 16×16", 8, 16, 32, 3, 1, true),
        ("8→32 16×16 (im2col)", 8, 16, 32, 3, 1, true),
        ("8→32 16×16 (winograd)", 8, 16, 32, 3, 1, true),
        ("16→16 4×4", 16, 4, 16, 3, 1, true),
        ("16→16 4×4 (im2col)", 16, 4, 16, 3, 1, true),
        ("32→64 28×28", 32, 28, 64, 3, 1, true),
        ("32→64 28×28 (im2col)", 32, 28, 64, 3, 1, true),
    ];
    let mut total = (0.0, 0.0);
    let only = std::env::args().nth(2);
    for (name, c, h, f, k, pad, want_dx) in layers {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let d = ConvDims { n: 100, c, h, w: h, f, k, stride: 1, pad };
        let (oh, ow) = (d.oh(), d.ow());
        let val = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 500.0;
        let x: Vec<f32> = (0..d.n * c * d.h * d.w).map(val).collect();
        let w: Vec<f32> = (0..f * c * k * k).map(|i| val(i + 3) * 0.1).collect();
        let b = vec![0.1f32; f];
        let mut y = vec![0.0f32; d.n * f * oh * ow];
        let dy: Vec<f32> = (0..y.len()).map(|i| val(i + 11)).collect();
        let (mut dw, mut db, mut dx) = (vec![0.0f32; w.len()], vec![0.0f32; f], vec![0.0f32; x.len()]);
        let mut s = ConvScratch::default();
        let best = |run: &mut dyn FnMut()| {
            run();
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    run();
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        // "(direct)", "(im2col)": that path whatever `conv::forward` would choose
        let (direct, im2col) = (name.ends_with("(direct)"), name.ends_with("(im2col)"));
        let winograd = name.ends_with("(winograd)");
        let tf = best(&mut || {
            if direct {
                conv::forward_direct(&d, &x, &w, Some(&b), &mut y, &mut s)
            } else if im2col {
                conv::forward_im2col(&d, &x, &w, Some(&b), &mut y, &mut s)
            } else if winograd {
                conv::forward_winograd(&d, &x, &w, Some(&b), &mut y, &mut s)
            } else {
                conv::forward(&d, &x, &w, Some(&b), &mut y, &mut s)
            }
        });
        let tb = best(&mut || {
            let dxo = if want_dx { Some(&mut dx[..]) } else { None };
            if direct {
                conv::backward_direct(&d, &x, &w, &dy, &mut dw, Some(&mut db), dxo, &mut s)
            } else if im2col {
                conv::backward_im2col(&d, &x, &w, &dy, &mut dw, Some(&mut db), dxo, &mut s)
            } else if winograd {
                conv::backward_winograd(&d, &x, &w, &dy, &mut dw, Some(&mut db), dxo, &mut s)
            } else {
                conv::backward(&d, &x, &w, &dy, &mut dw, Some(&mut db), dxo, &mut s)
            }
        });
        let macs = (d.n * f * oh * ow * c * k * k) as f64;
        let (ff, fb) = (2.0 * macs, 2.0 * macs * if want_dx { 2.0 } else { 1.0 });
        println!(
            "{name:<22} {c:>2}→{f:<2} {}×{}: forward {:8.1} µs {:6.1} GFLOP/s | backward {:8.1} µs {:6.1} GFLOP/s",
            d.h,
            d.w,
            tf * 1e6,
            ff / tf / 1e9,
            tb * 1e6,
            fb / tb / 1e9
        );
        if name.starts_with("vgg") && !direct && !im2col && !winograd {
            total = (total.0 + tf, total.1 + tb);
        }
    }
    println!("vgg convs: forward {:.0} µs, backward {:.0} µs", total.0 * 1e6, total.1 * 1e6);
}
