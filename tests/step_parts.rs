//! A training step in parts (`TrainStep::parts`): on two kernel threads a model whose layers all
//! treat samples on their own, or meet where they need the whole batch (batch norm, dropout), runs
//! whole on each thread's half of the batch, and trains as the one-thread step does (up to
//! rounding), the same bits from run to run; a part that fails ends the others. (A test binary of
//! its own: the thread count is process-wide.)

use shaped::data::{Dataset, synthetic};
use shaped::layer::{Act, ParamInfo};
use shaped::models::{Cnn, CnnBn, Mlp, Vgg};
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::step::TrainStep;

type Img = (Dyn, Const<1>, Const<28>, Const<28>);

/// A regression model of three outputs.
#[derive(Sequential)]
#[sequential(input = (64,))]
struct Reg {
    fc1: Linear<64, 256>,
    act: Tanh,
    fc2: Linear<256, 3>,
}

/// `n` samples for [`Reg`].
fn regression(n: usize) -> Dataset {
    let x: Vec<f32> = (0..n * 64).map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0).collect();
    let y: Vec<f32> = (0..n * 3).map(|i| (i * 13 % 29) as f32 / 14.0 - 1.0).collect();
    Dataset::regression(x, y, &[64], 3).unwrap()
}

/// One test at a time: the thread count is process-wide.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every parameter and buffer.
fn values<M: Module<f32>>(m: &M) -> Vec<f32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend_from_slice(d));
    out
}

/// `steps` Adam steps of `M` on batches of `batch` from `data` with `threads` kernel threads: the
/// losses, the parameters and the parts the last step ran in.
fn train<S: Shape<Batch = Dyn>, M: Layer<S, f32>, L: Loss<M::Out, f32>>(
    threads: usize,
    data: &Dataset,
    loss: &L,
    batch: usize,
    steps: usize,
) -> (Vec<f32>, Vec<f32>, usize) {
    train_with::<S, M, L>(UpdateRule::Adam, threads, data, loss, batch, steps)
}

/// [`train`] with the update rule `rule`.
fn train_with<S: Shape<Batch = Dyn>, M: Layer<S, f32>, L: Loss<M::Out, f32>>(
    rule: UpdateRule,
    threads: usize,
    data: &Dataset,
    loss: &L,
    batch: usize,
    steps: usize,
) -> (Vec<f32>, Vec<f32>, usize) {
    shaped::set_num_threads(threads);
    let mut m = M::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let mut step = TrainStep::<S, M>::new(rule, 1e-3, batch);
    let losses = (0..steps)
        .map(|s| {
            let idx: Vec<usize> = (0..batch).map(|i| (s * batch + i) % data.len()).collect();
            step.step(&mut m, loss, data, &idx, 1e-3).expect("a finite loss")
        })
        .collect();
    let parts = step.parts();
    shaped::set_num_threads(1);
    (losses, values(&m), parts)
}

/// The largest difference relative to the largest value of `a`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Whether `M` says its training passes treat samples on their own.
fn per_sample<M: Module<f32>>() -> bool {
    M::PER_SAMPLE
}

/// Whether `M` may train in parts.
fn in_parts<M: Module<f32>>() -> bool {
    M::IN_PARTS
}

#[test]
fn which_models_are_per_sample() {
    assert!(per_sample::<Cnn>() && per_sample::<Mlp>());
    assert!(!per_sample::<CnnBn>(), "batch norm and dropout see the whole batch");
    assert!(!per_sample::<BatchNorm1d<4>>() && !per_sample::<Dropout>());
    assert!(per_sample::<Residual<Conv2d<2, 2, 3, 1, 1>, Identity>>());
    assert!(!per_sample::<Residual<BatchNorm2d<2>, Identity>>());
    // ... and which may train in parts that meet.
    assert!(in_parts::<Cnn>() && in_parts::<CnnBn>() && in_parts::<Vgg>());
    assert!(in_parts::<BatchNormReLU2d<4>>() && in_parts::<Dropout<shaped::layers::Drop<10>, Vanilla>>());
    assert!(in_parts::<Residual<BatchNorm2d<2>, Identity>>());
    assert!(!in_parts::<Probe>() && !in_parts::<WithProbe>(), "a layer that does not say so stays whole");
}

/// A hand-written layer (identity) that says it treats samples on their own when `PER` is set,
/// panics on a sample whose first value is 1234, writes a NaN when [`NAN_ON_WORKER`] is set and
/// it runs on a kernel worker (the first part of a two-part step), and a NaN into its input
/// gradient when [`NAN_GRADIENT`] is set.
#[derive(Clone, Debug)]
struct Probe<const PER: bool = false>;

impl<const PER: bool> Module<f32> for Probe<PER> {
    const RULE: shaped::shape::Rule = shaped::shape::Rule::Identity;
    type Cache = ();
    const PER_SAMPLE: bool = PER;
    fn zeros() -> Self {
        Probe
    }
    fn visit_params(&self, _: &ParamPath<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &[f32])) {}
    fn visit_params_mut(&mut self, _: &ParamPath<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [f32])) {}
    fn zip_params_mut(&mut self, _: &Self, _: &ParamPath<'_>, _: &mut dyn FnMut(&ParamInfo<'_>, &mut [f32], &[f32])) {}
    fn forward_raw(&self, x: Act<'_, f32>, y: &mut [f32]) {
        y.copy_from_slice(x.data);
    }
    fn forward_train_raw(&mut self, x: Act<'_, f32>, y: &mut [f32], _: &mut ()) {
        let len = x.data.len() / x.n.max(1);
        assert!(x.data.chunks(len.max(1)).all(|s| s[0] != 1234.0), "the probe met its sample");
        y.copy_from_slice(x.data);
        let worker = std::thread::current().name().is_some_and(|n| n.starts_with("shaped-kernel"));
        if worker && NAN_ON_WORKER.load(std::sync::atomic::Ordering::Relaxed) {
            y[0] = f32::NAN;
        }
    }
    fn backward_raw(&self, _: Act<'_, f32>, _: &[f32], dy: &[f32], _: &mut (), dx: Option<&mut [f32]>, _: &mut Self) {
        if let Some(dx) = dx {
            dx.copy_from_slice(dy);
            if NAN_GRADIENT.load(std::sync::atomic::Ordering::Relaxed) {
                dx[dx.len() - 1] = f32::NAN;
            }
        }
    }
}

impl<S: Shape, const PER: bool> Layer<S, f32> for Probe<PER> {
    type Out = S;
}

static NAN_ON_WORKER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static NAN_GRADIENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// 4b's model with a probe on its scores.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct Scored {
    net: CnnBn,
    probe: Probe<true>,
}

/// 4b's model behind a probe that does not say it treats samples on their own.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct WithProbe {
    probe: Probe,
    net: CnnBn,
}

/// 4b's model behind a probe that says it does.
#[derive(Sequential)]
#[sequential(input = (1, 28, 28))]
struct WithPerSampleProbe {
    probe: Probe<true>,
    net: CnnBn,
}

#[test]
fn batch_norm_and_dropout_in_parts_train_as_on_one_thread() {
    let _one = serial();
    let data = synthetic::random_images(3, 300, &[1, 28, 28], 10);
    let loss = SoftmaxCrossEntropy::<10>;
    // Batch statistics over the whole batch and dropout masks drawn for it: 4b's losses and
    // parameters (running statistics included) as on one thread, up to the gradients' rounding.
    let (l1, p1, n1) = train::<Img, CnnBn, _>(1, &data, &loss, 100, 6);
    let (l2, p2, n2) = train::<Img, CnnBn, _>(2, &data, &loss, 100, 6);
    assert_eq!((n1, n2), (1, 2), "one thread runs whole, two in two parts");
    assert!(rel_diff(&l1, &l2) < 1e-5, "losses {l1:?} vs {l2:?}");
    assert!(rel_diff(&p1, &p2) < 1e-4, "parameters differ by {}", rel_diff(&p1, &p2));
    let (l3, p3, _) = train::<Img, CnnBn, _>(2, &data, &loss, 100, 6);
    assert!(l2.iter().zip(&l3).all(|(a, b)| a.to_bits() == b.to_bits()), "two runs differ");
    assert!(p2.iter().zip(&p3).all(|(a, b)| a.to_bits() == b.to_bits()), "two runs differ");
    // Uneven parts (37 samples: 18 and 19), plain SGD (Adam's steps would not show a gradient
    // counted twice).
    let (l1, p1, _) = train_with::<Img, CnnBn, _>(UpdateRule::Sgd, 1, &data, &loss, 37, 4);
    let (l2, p2, n2) = train_with::<Img, CnnBn, _>(UpdateRule::Sgd, 2, &data, &loss, 37, 4);
    assert_eq!(n2, 2);
    assert!(rel_diff(&l1, &l2) < 1e-5, "losses {l1:?} vs {l2:?}");
    assert!(rel_diff(&p1, &p2) < 1e-4, "parameters differ by {}", rel_diff(&p1, &p2));
    // A layer that does not say it may run in parts keeps the step whole.
    let (_, _, n) = train::<Img, WithProbe, _>(2, &data, &loss, 100, 1);
    assert_eq!(n, 1);
}

#[test]
fn a_failing_part_ends_the_others() {
    let _one = serial();
    shaped::set_num_threads(2);
    let data = synthetic::random_images(3, 100, &[1, 28, 28], 10);
    let idx: Vec<usize> = (0..100).collect();
    let (mut x, mut y) = data.batch::<Img>(&idx).unwrap();
    let mut m = WithPerSampleProbe::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let mut step = TrainStep::<Img, WithPerSampleProbe>::new(UpdateRule::Adam, 0.0, 100);
    let loss = SoftmaxCrossEntropy::<10>;
    step.step_batch(&mut m, &loss, &x, &y, 1e-3).unwrap();
    assert_eq!(step.parts(), 2);
    // A panic in one part, before the first batch norm: the other part leaves its meeting and the
    // part's own message reaches the caller (for the first part, a worker's, and the last).
    for sample in [10, 90] {
        x.as_mut_slice()[sample * 784] = 1234.0;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step.step_batch(&mut m, &loss, &x, &y, 1e-3)));
        let msg = r.expect_err("the probe panics").downcast::<&str>().map(|s| *s).unwrap_or_default();
        assert_eq!(msg, "the probe met its sample");
        x.as_mut_slice()[sample * 784] = 0.0;
    }
    step.step_batch(&mut m, &loss, &x, &y, 1e-3).expect("the threads are free again");
    assert_eq!(step.parts(), 2);
    // A label the loss refuses in one part: named at the batch's position, nothing trained, no
    // part left waiting.
    let mut n = CnnBn::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let mut step = TrainStep::<Img, CnnBn>::new(UpdateRule::Adam, 0.0, 100);
    let trained = |m: &CnnBn| {
        let mut out = Vec::new();
        m.visit_params(&ParamPath::ROOT, &mut |i, d| {
            if i.kind.trainable() {
                out.extend_from_slice(d)
            }
        });
        out
    };
    let before = trained(&n);
    y[73] = 10;
    let err = step.step_batch(&mut n, &loss, &x, &y, 1e-3).unwrap_err().to_string();
    assert!(err.contains("label 10 at position 73"), "the position is the batch's: {err}");
    assert!(trained(&n) == before, "a refused step changed the parameters");
    // A NaN score in the first part only: both parts skip the backward pass (and its meetings),
    // the step fails and trains nothing.
    y[73] = 3;
    let mut s = Scored::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let mut step = TrainStep::<Img, Scored>::new(UpdateRule::Adam, 0.0, 100);
    let before = trained(&s.net);
    NAN_ON_WORKER.store(true, std::sync::atomic::Ordering::Relaxed);
    let err = step.step_batch(&mut s, &loss, &x, &y, 1e-3).map_err(|e| e.to_string());
    NAN_ON_WORKER.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(err.as_ref().is_err_and(|e| e.contains("NaN")), "{err:?}");
    assert_eq!(step.parts(), 2, "the NaN step ran in parts");
    assert!(trained(&s.net) == before, "a failed step changed the parameters");
    step.step_batch(&mut s, &loss, &x, &y, 1e-3).expect("the next step trains");
    assert!(trained(&s.net) != before);
    shaped::set_num_threads(1);
}

#[test]
fn non_finite_inputs_and_gradients_are_refused_whole_and_in_parts() {
    let _one = serial();
    let data = synthetic::random_images(3, 100, &[1, 28, 28], 10);
    let idx: Vec<usize> = (0..100).collect();
    let (mut x, y) = data.batch::<Img>(&idx).unwrap();
    let loss = SoftmaxCrossEntropy::<10>;
    for threads in [1, 2] {
        shaped::set_num_threads(threads);
        let mut m = Scored::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
        let mut step = TrainStep::<Img, Scored>::new(UpdateRule::Sgd, 0.0, 100);
        step.step_batch(&mut m, &loss, &x, &y, 1e-3).unwrap();
        let before = values(&m); // parameters and running statistics
        // A NaN input: ReLU would make it 0 and batch norm spread it, with a finite loss.
        for bad in [f32::NAN, f32::NEG_INFINITY] {
            x.as_mut_slice()[80 * 784 + 300] = bad;
            let err = step.step_batch(&mut m, &loss, &x, &y, 1e-3).unwrap_err().to_string();
            assert!(err.contains(&format!("input value 300 of sample 80 is {bad}")), "{err}");
            assert!(values(&m) == before, "{threads} thread(s): a refused step changed the model");
        }
        x.as_mut_slice()[80 * 784 + 300] = 0.0;
        // A NaN gradient with a finite loss: refused after the passes, the running statistics
        // (which the forward pass updated) put back.
        NAN_GRADIENT.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = step.step_batch(&mut m, &loss, &x, &y, 1e-3).map_err(|e| e.to_string());
        NAN_GRADIENT.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(err.as_ref().is_err_and(|e| e.contains("the gradient of `net.") && e.contains("NaN")), "{err:?}");
        assert_eq!(step.parts(), threads);
        assert!(values(&m) == before, "{threads} thread(s): a refused step changed the model");
        step.step_batch(&mut m, &loss, &x, &y, 1e-3).expect("the next step trains");
        assert!(values(&m) != before);
    }
    shaped::set_num_threads(1);
}

#[test]
fn a_cnn_in_parts_trains_as_on_one_thread() {
    let _one = serial();
    let data = synthetic::random_images(3, 300, &[1, 28, 28], 10);
    let loss = SoftmaxCrossEntropy::<10>;
    let (l1, p1, n1) = train::<Img, Cnn, _>(1, &data, &loss, 100, 6);
    let (l2, p2, n2) = train::<Img, Cnn, _>(2, &data, &loss, 100, 6);
    assert_eq!((n1, n2), (1, 2), "one thread runs whole, two in two parts");
    assert!(rel_diff(&l1, &l2) < 1e-5, "losses {l1:?} vs {l2:?}");
    assert!(rel_diff(&p1, &p2) < 1e-4, "parameters differ by {}", rel_diff(&p1, &p2));
    let (l3, p3, _) = train::<Img, Cnn, _>(2, &data, &loss, 100, 6);
    assert!(l2.iter().zip(&l3).all(|(a, b)| a.to_bits() == b.to_bits()), "two runs differ");
    assert!(p2.iter().zip(&p3).all(|(a, b)| a.to_bits() == b.to_bits()), "two runs differ");
}

#[test]
fn uneven_parts_and_real_valued_targets() {
    let _one = serial();
    let data = regression(200);
    for batch in [37, 101] {
        let (l1, p1, n1) = train::<(Dyn, Const<64>), Reg, _>(1, &data, &Mse, batch, 5);
        let (l2, p2, n2) = train::<(Dyn, Const<64>), Reg, _>(2, &data, &Mse, batch, 5);
        assert_eq!((n1, n2), (1, 2));
        assert!(rel_diff(&l1, &l2) < 1e-5, "batch {batch}: losses {l1:?} vs {l2:?}");
        assert!(rel_diff(&p1, &p2) < 1e-4, "batch {batch}: parameters differ by {}", rel_diff(&p1, &p2));
    }
}

#[test]
fn tiny_and_large_models_run_whole() {
    let _one = serial();
    let data = synthetic::random_images(3, 100, &[1, 28, 28], 10);
    let small = synthetic::random_images(3, 100, &[20], 2);
    #[derive(Sequential)]
    #[sequential(input = (20,))]
    struct Tiny {
        fc: Linear<20, 2>,
    }
    let (_, _, n) = train::<(Dyn, Const<20>), Tiny, _>(2, &small, &SoftmaxCrossEntropy::<2>, 100, 2);
    assert_eq!(n, 1, "a step of a few thousand operations is not worth a hand-over");
    let (_, _, n) = train::<Img, Cnn, _>(2, &data, &SoftmaxCrossEntropy::<10>, 9, 2);
    assert_eq!(n, 1, "nine samples make no two parts of eight");
    #[derive(Sequential)]
    #[sequential(input = (2048,))]
    struct Wide {
        fc: Linear<2048, 2048>,
    }
    let wide = synthetic::random_images(3, 16, &[2048], 2048);
    let (_, _, n) = train::<(Dyn, Const<2048>), Wide, _>(2, &wide, &SoftmaxCrossEntropy::<2048>, 16, 1);
    assert_eq!(n, 1, "4.2 million parameters are not copied per part");
}

#[test]
fn bad_targets_and_non_finite_inputs_in_parts() {
    let _one = serial();
    shaped::set_num_threads(2);
    let data = synthetic::random_images(3, 100, &[1, 28, 28], 10);
    let mut m = Cnn::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let before = values(&m);
    let mut step = TrainStep::<Img, Cnn>::new(UpdateRule::Adam, 0.0, 100);
    let idx: Vec<usize> = (0..100).collect();
    let (x, mut y) = data.batch::<Img>(&idx).unwrap();
    y[73] = 10;
    let err = step.step_batch(&mut m, &SoftmaxCrossEntropy::<10>, &x, &y, 1e-3).unwrap_err().to_string();
    assert!(err.contains("label 10 at position 73"), "the position is the batch's: {err}");
    assert!(values(&m) == before, "a refused step changed the parameters");
    // A NaN in the second part's input: the loss is NaN, the step fails naming the input, the
    // parameters stay.
    let data = regression(100);
    let mut r = Reg::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He);
    let before = values(&r);
    let mut step = TrainStep::<(Dyn, Const<64>), Reg>::new(UpdateRule::Adam, 0.0, 100);
    let (mut x, t) = data.batch_values::<(Dyn, Const<64>)>(&idx).unwrap();
    x.as_mut_slice()[80 * 64 + 5] = f32::NAN;
    let err = step.step_targets(&mut r, &Mse, &x, &t, 1e-3).unwrap_err().to_string();
    assert!(err.contains("input value 5 of sample 80 is NaN"), "{err}");
    assert!(values(&r) == before, "a failed step changed the parameters");
    // A loss that overflows in the second part (finite inputs and targets): the loss is infinite,
    // the step ran in parts, the parameters stay.
    x.as_mut_slice()[80 * 64 + 5] = 0.5;
    let mut t = t;
    t[80 * 3] = 1e30;
    let err = step.step_targets(&mut r, &Mse, &x, &t, 1e-3).unwrap_err().to_string();
    assert!(err.contains("the loss became"), "{err}");
    assert_eq!(step.parts(), 2, "the step ran in parts");
    assert!(values(&r) == before, "a failed step changed the parameters");
    shaped::set_num_threads(1);
}
