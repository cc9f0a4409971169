//! Writes a synthetic data set in the CIFAR-10 binary format (`data_batch_1.bin` … `data_batch_5.bin`,
//! `test_batch.bin`: records of 1 label byte + 3×32×32 pixel bytes), for trying experiment 5 where
//! the real CIFAR-10 cannot be downloaded:
//! `cargo run --release --example make_cifar -- DIR [--per-batch N]`.
//!
//! Each class is a coloured oriented stripe pattern with random phase, brightness and noise, so the
//! task is learnable but not trivial; it is not CIFAR-10 and says nothing about accuracy on it.

use rand::{Rng, SeedableRng};
use std::io::Write;

fn image(rng: &mut impl Rng, class: u8, out: &mut Vec<u8>) {
    let angle = class as f32 * std::f32::consts::PI / 10.0;
    let (dx, dy) = (angle.cos(), angle.sin());
    let freq = 0.35 + 0.05 * (class % 3) as f32;
    let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let bright: f32 = rng.random_range(0.6..1.0);
    let tint = [(class * 37 % 255) as f32, (class * 91 % 255) as f32, (class * 53 % 255) as f32];
    for (ch, t) in tint.iter().enumerate() {
        for y in 0..32 {
            for x in 0..32 {
                let s = ((x as f32 * dx + y as f32 * dy) * freq + phase).sin() * 0.5 + 0.5;
                let noise: f32 = rng.random_range(-40.0..40.0);
                let v = bright * (0.5 * t + 0.5 * 255.0 * s) + noise + 10.0 * ch as f32;
                out.push(v.clamp(0.0, 255.0) as u8);
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "synthetic-cifar".into()));
    let mut per_batch = 2000usize;
    while let Some(a) = args.next() {
        if a == "--per-batch" {
            per_batch = args.next().and_then(|v| v.parse().ok()).expect("--per-batch N");
        }
    }
    write(&dir, per_batch)?;
    println!("wrote {} records per file to {}", per_batch, dir.display());
    Ok(())
}

/// Writes the six files of `per_batch` records each into `dir` (created if missing).
pub fn write(dir: &std::path::Path, per_batch: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in names {
        let mut buf = Vec::with_capacity(per_batch * 3073);
        for _ in 0..per_batch {
            let class: u8 = rng.random_range(0..10);
            buf.push(class);
            image(&mut rng, class, &mut buf);
        }
        std::fs::File::create(dir.join(name))?.write_all(&buf)?;
    }
    Ok(())
}
