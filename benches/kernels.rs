//! Kernel benchmarks on the workload's shapes: GEMM (the FC layers), convolution forward and
//! backward through the direct loop, through im2col + GEMM with an explicit patch matrix and through
//! the implicit im2col (so the choices of `conv::forward` are measured, not guessed), max pooling,
//! batch norm, and the fused batch norm → ReLU → max pooling backward.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shaped::kernels::conv::{self, ConvDims};
use shaped::kernels::norm::{self, NormDims};
use shaped::kernels::pool::{self, PoolDims};
use shaped::kernels::{Strides, gemm};
use std::hint::black_box;

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    // (m, n, k): 4a fc1 forward, 3b fc1 forward, 1b fc1 forward
    for &(m, n, k) in &[(100, 16, 605), (100, 64, 784), (50, 32, 20), (100, 10, 784)] {
        let (a, b) = (data(m * k), data(k * n));
        let mut out = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}@{k}x{n}")), |bch| {
            bch.iter(|| {
                gemm(
                    m,
                    n,
                    k,
                    &a,
                    Strides::row_major(k),
                    &b,
                    Strides::row_major(n),
                    &mut out,
                    Strides::row_major(n),
                    false,
                );
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn bench_conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    let shapes = [
        ("4a 1->5 7x7 28x28", ConvDims { n: 100, c: 1, h: 28, w: 28, f: 5, k: 7, stride: 1, pad: 0 }),
        ("vgg 16->32 3x3 16x16 p1", ConvDims { n: 100, c: 16, h: 16, w: 16, f: 32, k: 3, stride: 1, pad: 1 }),
        ("vgg 3->16 3x3 32x32 p1", ConvDims { n: 100, c: 3, h: 32, w: 32, f: 16, k: 3, stride: 1, pad: 1 }),
    ];
    for (name, d) in shapes {
        let x = data(d.n * d.c * d.h * d.w);
        let w = data(d.f * d.c * d.k * d.k);
        let q = d.oh() * d.ow();
        let mut y = vec![0.0f32; d.n * d.f * q];
        let dy = data(y.len());
        let mut dw = vec![0.0f32; w.len()];
        let mut dx = vec![0.0f32; x.len()];
        g.throughput(Throughput::Elements((2 * d.n * d.f * q * d.patch()) as u64));
        g.bench_function(format!("{name} forward direct"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::forward_direct(&d, &x, &w, None, black_box(&mut y), &mut scratch))
        });
        g.bench_function(format!("{name} forward direct, general strided rows"), |b| {
            b.iter(|| conv::forward_direct_rows(&d, &x, &w, None, black_box(&mut y)))
        });
        g.bench_function(format!("{name} forward im2col, patch matrix"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::forward_patch_matrix(&d, &x, &w, None, black_box(&mut y), &mut scratch))
        });
        g.bench_function(format!("{name} forward im2col, implicit where it applies"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::forward_im2col(&d, &x, &w, None, black_box(&mut y), &mut scratch))
        });
        g.bench_function(format!("{name} backward direct"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::backward_direct(&d, &x, &w, &dy, black_box(&mut dw), None, Some(&mut dx), &mut scratch))
        });
        g.bench_function(format!("{name} backward im2col, patch matrix"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::backward_patch_matrix(&d, &x, &w, &dy, black_box(&mut dw), Some(&mut dx), &mut scratch))
        });
        g.bench_function(format!("{name} backward im2col, implicit where it applies"), |b| {
            let mut scratch = conv::ConvScratch::default();
            b.iter(|| conv::backward_im2col(&d, &x, &w, &dy, black_box(&mut dw), None, Some(&mut dx), &mut scratch))
        });
    }
    g.finish();
}

fn bench_pool_norm(c: &mut Criterion) {
    let d = PoolDims { planes: 100 * 5, h: 22, w: 22, p: 2, stride: 2, pad: 0 };
    let x = data(d.planes * d.h * d.w);
    let mut y = vec![0.0f32; d.planes * d.oh() * d.ow()];
    let mut arg = vec![0u32; y.len()];
    c.bench_function("maxpool 2x2 (100,5,22,22) specialised", |b| {
        b.iter(|| pool::max_forward(&d, &x, black_box(&mut y), Some(&mut arg)))
    });
    c.bench_function("maxpool 2x2 (100,5,22,22) general", |b| {
        b.iter(|| pool::max_forward_general(&d, &x, black_box(&mut y), Some(&mut arg)))
    });
    let nd = NormDims { n: 100, c: 8, inner: 22 * 22 };
    let x = data(nd.n * nd.c * nd.inner);
    let (g, be) = (vec![1.0f32; 8], vec![0.0f32; 8]);
    let (mut rm, mut rv) = (vec![0.0f32; 8], vec![1.0f32; 8]);
    let (mut y, mut mean, mut is) = (vec![0.0f32; x.len()], vec![0.0f32; 8], vec![0.0f32; 8]);
    c.bench_function("batchnorm2d train (100,8,22,22)", |b| {
        b.iter(|| {
            norm::batchnorm_train(nd, &x, &g, &be, &mut rm, &mut rv, 0.9, 1e-5, black_box(&mut y), &mut mean, &mut is)
        })
    });
    // 4b's fused batch norm → ReLU → max pooling backward (the pooling's gradient scattered
    // inside batch norm's first pass)
    let pd = PoolDims { planes: 100 * 8, h: 22, w: 22, p: 2, stride: 2, pad: 0 };
    let q = pd.planes * pd.oh() * pd.ow();
    let (mut py, mut arg) = (vec![0.0f32; q], vec![0u32; q]);
    let gamma = vec![1.1f32; 8];
    norm::batchnorm_relu_pool_train(
        nd, &pd, &x, &gamma, &be, &mut rm, &mut rv, 0.9, 1e-5, &mut y, &mut mean, &mut is, &mut py, &mut arg,
    );
    let pdy = data(q);
    let (mut dg, mut db, mut dr, mut dx) =
        (vec![0.0f32; 8], vec![0.0f32; 8], vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
    c.bench_function("batchnorm2d relu maxpool backward (100,8,22,22)", |b| {
        b.iter(|| {
            let affine = (&gamma[..], &be[..]);
            norm::batchnorm_relu_pool_backward(
                nd,
                &pd,
                &pdy,
                &arg,
                &x,
                &mean,
                &is,
                affine,
                &mut dg,
                &mut db,
                &mut dr,
                Some(black_box(&mut dx)),
            )
        })
    });
}

/// The issue-17 kernels at the sizes of `examples/mlp_gelu.rs` (a batch of 64, 256 features): each
/// activation forward and backward, layer norm forward and backward.
fn bench_breadth(c: &mut Criterion) {
    use shaped::kernels::activation::{self, Activation};
    let n = 64 * 256;
    let (x, dy) = (data(n), data(n).into_iter().rev().collect::<Vec<_>>());
    let (mut y, mut dx) = (vec![0.0f32; n], vec![0.0f32; n]);
    for (name, a) in [
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("leaky_relu", Activation::LeakyReLU { slope: 0.01 }),
        ("gelu", Activation::Gelu),
    ] {
        c.bench_function(&format!("{name} forward (64×256)"), |b| {
            b.iter(|| activation::activation_forward(a, &x, black_box(&mut y)))
        });
        c.bench_function(&format!("{name} backward (64×256)"), |b| {
            b.iter(|| activation::activation_backward(a, &x, &y, &dy, black_box(&mut dx)))
        });
    }
    let (g, be) = (vec![1.0f32; 256], vec![0.0f32; 256]);
    let (mut mean, mut is) = (vec![0.0f32; 64], vec![0.0f32; 64]);
    let (mut dg, mut db) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    c.bench_function("layernorm forward (64×256)", |b| {
        b.iter(|| norm::layernorm_forward(64, 256, &x, &g, &be, 1e-5, black_box(&mut y), Some((&mut mean, &mut is))))
    });
    c.bench_function("layernorm backward (64×256)", |b| {
        b.iter(|| {
            norm::layernorm_backward(64, 256, &x, &dy, &g, &mean, &is, &mut dg, &mut db, Some(black_box(&mut dx)))
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_gemm, bench_conv, bench_pool_norm, bench_breadth
}
criterion_main!(benches);
