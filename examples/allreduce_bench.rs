//! All-reduce latency and bandwidth through [`shaped::dist::Mpi`] (feature `mpi`), at the spec
//! models' gradient sizes and a sweep of sizes, with the fitted alpha-beta model of a ring
//! all-reduce: `mpirun -np 2 target/release/examples/allreduce_bench [--seconds S]`.
//!
//! Each size runs 7 batches of calls (each batch ≈ `S`/7 seconds, after a barrier and a warm-up);
//! rank 0 prints the median time per call, the algorithm bandwidth (bytes / time) and, for the
//! sweep, the alpha-beta model of a ring all-reduce, `t = 2(p−1)·α + 2(p−1)/p · bytes · β`
//! (α from the one-float call, β the median over the messages of 256 KiB and more).

use shaped::dist::{Comm, Mpi};
use shaped::models::{Cnn, CnnBn, Mlp, Vgg};
use shaped::prelude::*;

/// Median seconds per all-reduce of `n` floats.
fn time_allreduce(comm: &Mpi, n: usize, seconds: f64) -> f64 {
    let mut buf = vec![1.0f32; n];
    for _ in 0..5 {
        comm.allreduce_sum_f32(&mut buf);
    }
    // Calls per batch, agreed on by all ranks (rank 0's estimate, broadcast).
    comm.barrier();
    let t0 = comm.time();
    comm.allreduce_sum_f32(&mut buf);
    let mut calls = [((seconds / 7.0) / (comm.time() - t0).max(1e-7)).clamp(3.0, 100_000.0) as f32];
    comm.broadcast_f32(&mut calls);
    let calls = calls[0] as usize;
    let mut per_call: Vec<f64> = (0..7)
        .map(|_| {
            comm.barrier();
            let t0 = comm.time();
            for _ in 0..calls {
                buf.fill(1.0);
                comm.allreduce_sum_f32(&mut buf);
            }
            (comm.time() - t0) / calls as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[3]
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map(|s| s.parse().expect("--seconds takes a number"))
        .unwrap_or(1.0);
    let comm = Mpi::init().expect("MPI");
    let (rank, p) = (comm.rank(), comm.size());
    let models = [
        ("3b", Mlp::zeros().num_params()),
        ("4a", Cnn::zeros().num_params()),
        ("4b", CnnBn::zeros().num_params()),
        ("VGG", Vgg::zeros().num_params()),
    ];
    if rank == 0 {
        println!("ranks {p}");
        println!("| size | floats | bytes | time per all-reduce | bandwidth (bytes/time) |");
        println!("|---|---|---|---|---|");
    }
    // The step's buffer: the trainable values and the loss (plus batch norm's running
    // statistics, a few dozen values here).
    for (name, n) in models {
        let n = n + 1;
        let t = time_allreduce(&comm, n, seconds);
        if rank == 0 {
            println!(
                "| {name} gradients | {n} | {} | {:.1} µs | {:.2} GB/s |",
                4 * n,
                t * 1e6,
                4.0 * n as f64 / t / 1e9
            );
        }
    }
    let sweep = [1usize, 256, 4096, 65_536, 262_144, 1 << 20, 4 << 20];
    let mut pts = Vec::new();
    for n in sweep {
        let t = time_allreduce(&comm, n, seconds);
        pts.push((4.0 * n as f64, t));
        if rank == 0 {
            println!("| sweep | {n} | {} | {:.1} µs | {:.2} GB/s |", 4 * n, t * 1e6, 4.0 * n as f64 / t / 1e9);
        }
    }
    if rank == 0 && p > 1 {
        // alpha from the one-float all-reduce (t = 2(p−1)·α), beta as the median over the large
        // messages (≥ 256 KiB) of (t − 2(p−1)·α) / (2(p−1)/p · bytes): a least-squares line is
        // dominated by the largest, noisiest points on a shared host.
        let pf = p as f64;
        let alpha = pts[0].1 / (2.0 * (pf - 1.0));
        let mut betas: Vec<f64> = pts
            .iter()
            .filter(|q| q.0 >= 262_144.0)
            .map(|q| (q.1 - 2.0 * (pf - 1.0) * alpha) / (2.0 * (pf - 1.0) / pf * q.0))
            .collect();
        betas.sort_by(f64::total_cmp);
        let beta = betas[betas.len() / 2];
        println!(
            "alpha = {:.2} µs, beta = {:.3} ns/byte ({:.2} GB/s per link), p = {p}",
            alpha * 1e6,
            beta * 1e9,
            1.0 / beta / 1e9
        );
    }
}
