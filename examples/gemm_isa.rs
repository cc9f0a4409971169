//! GEMM throughput on each instruction set this CPU has (the f32 register tiles at each width):
//! `cargo run --release --example gemm_isa -- [reps]`. Prints GFLOP/s per shape and ISA, the
//! shapes being the workload's (VGG convolutions as products, 3b's fully connected layer).

use shaped::kernels::{Isa, Strides, detected_isa, gemm, set_isa};
use std::time::Instant;

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(5);
    // (m, n, k, A transposed, B transposed): conv-like products, then a linear layer's forward,
    // weight gradient and input gradient (4a's 605 → 16, 3b's 784 → 64).
    let shapes = [
        (16, 1088, 27, false, false),
        (32, 1088, 144, false, false),
        (64, 96, 576, false, false),
        (144, 16, 1088, false, false),
        (100, 16, 605, false, false),
        (605, 16, 100, true, false),
        (100, 605, 16, false, true),
        (100, 64, 784, false, false),
        (784, 64, 100, true, false),
        (100, 784, 64, false, true),
        (100, 256, 256, false, false),
        (256, 256, 100, true, false),
    ];
    for (m, n, k, ta, tb) in shapes {
        let sa = if ta { Strides::transposed(m) } else { Strides::row_major(k) };
        let sb = if tb { Strides::transposed(k) } else { Strides::row_major(n) };
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let mut line = format!("{m:>4}x{n:<5}x{k:<5}{}{}", if ta { "Aᵀ" } else { "  " }, if tb { "Bᵀ" } else { "  " });
        for isa in Isa::ALL.into_iter().filter(|&i| i <= detected_isa()) {
            set_isa(isa);
            let iters = (1e8 / (m * n * k) as f64).ceil() as usize;
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t = Instant::now();
                for _ in 0..iters {
                    gemm(m, n, k, &a, sa, &b, sb, &mut c, Strides::row_major(n), false);
                }
                best = best.min(t.elapsed().as_secs_f64() / iters as f64);
            }
            line += &format!("  {}: {:6.1} GFLOP/s", isa.name(), 2.0 * (m * n * k) as f64 / best / 1e9);
        }
        println!("{line}");
    }
}
