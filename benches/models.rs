//! One training step (forward, loss, L2, backward, optimizer update) of each of the workload's
//! models, with the experiment's optimizer and batch size, on synthetic data of the right shape, at
//! one and at two kernel threads. `examples/bench.rs` measures the same step for the comparison
//! with PyTorch; this is the criterion version, for tracking changes between commits:
//! `cargo bench --bench models` (or `-- 4a` for one model).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use shaped::data::{Dataset, synthetic};
use shaped::models::{Cnn, CnnBn, LinearModel, Mlp, Softmax, TwoLayer, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;
use std::time::Duration;

/// The issue-17 layers in a training step: an MLP with layer norm and GELU (as `examples/mlp_gelu.rs`).
#[derive(Sequential)]
#[sequential(input = (784,))]
struct MlpGelu {
    fc1: Linear<784, 256>,
    ln1: LayerNorm<256>,
    gelu1: GELU,
    fc2: Linear<256, 128>,
    ln2: LayerNorm<128>,
    gelu2: GELU,
    fc3: Linear<128, 10>,
}

/// Benchmarks the training step of model `M` under the name `name`.
fn step<S, M, L>(c: &mut Criterion, name: &str, rule: UpdateRule, reg: f32, batch: usize, loss: L, data: Dataset)
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
    L: Loss<M::Out, f32>,
{
    let mut g = c.benchmark_group("train_step");
    g.throughput(Throughput::Elements(batch as u64));
    if name == "5 vgg" {
        g.sample_size(10).measurement_time(Duration::from_secs(8));
    }
    let batches: Vec<Vec<usize>> = (0..data.len() / batch).map(|i| (i * batch..(i + 1) * batch).collect()).collect();
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut model = M::init(&mut rng, Init::Gaussian(1e-3));
        let mut ts = TrainStep::<S, M>::new(rule, reg, batch);
        let mut k = 0;
        g.bench_function(BenchmarkId::new(name, format!("{threads} thread(s)")), |b| {
            b.iter(|| {
                let l = ts.step(&mut model, &loss, &data, &batches[k % batches.len()], 1e-6).expect("finite loss");
                k += 1;
                l
            })
        });
    }
    shaped::set_num_threads(1);
    g.finish();
}

fn binary(c: &mut Criterion) {
    let sm = UpdateRule::SgdMomentum;
    let d = || synthetic::binary20(1, 1000);
    step::<(Dyn, Const<20>), LinearModel, _>(c, "1a logistic 20->1", sm, 0.2, 50, Logistic, d());
    step::<(Dyn, Const<20>), TwoLayer, _>(c, "1b 20->32->1 logistic", sm, 0.3, 50, Logistic, d());
    step::<(Dyn, Const<20>), LinearModel, _>(c, "2a hinge 20->1", sm, 0.1, 50, Hinge, d());
    step::<(Dyn, Const<20>), TwoLayer, _>(c, "2b 20->32->1 hinge", sm, 0.3, 50, Hinge, d());
}

fn mnist(c: &mut Criterion) {
    let flat = || synthetic::random_images(1, 2000, &[784], 10);
    let img = || synthetic::random_images(1, 2000, &[1, 28, 28], 10);
    let (rms, sm) = (UpdateRule::RmsProp, UpdateRule::SgdMomentum);
    let ce = SoftmaxCrossEntropy::<10>;
    step::<(Dyn, Const<784>), Softmax, _>(c, "3a softmax 784->10", rms, 0.01, 100, ce, flat());
    step::<(Dyn, Const<784>), Mlp, _>(c, "3b 784->64->10", rms, 0.01, 100, ce, flat());
    step::<(Dyn, Const<1>, Const<28>, Const<28>), Cnn, _>(c, "4a cnn", sm, 0.0, 100, ce, img());
    step::<(Dyn, Const<1>, Const<28>, Const<28>), CnnBn, _>(c, "4b cnn bn dropout", sm, 0.0, 100, ce, img());
    let adam = UpdateRule::Adam;
    step::<(Dyn, Const<784>), MlpGelu, _>(c, "mlp 784->256->128->10 layernorm gelu", adam, 0.0, 64, ce, flat());
}

fn cifar(c: &mut Criterion) {
    let data = synthetic::random_images(1, 1000, &[3, 32, 32], 10);
    let ce = SoftmaxCrossEntropy::<10>;
    step::<(Dyn, Const<3>, Const<32>, Const<32>), Vgg, _>(c, "5 vgg", UpdateRule::Adam, 0.0, 100, ce, data);
}

criterion_group!(benches, binary, mnist, cifar);
criterion_main!(benches);
