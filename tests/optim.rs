//! The update rules against hand-computed values on a tiny `Linear<2, 1, f64>`.

use shaped::optim::{Adam, AnyOptimizer, Optimizer, RmsProp, Sgd, SgdMomentum, UpdateRule};
use shaped::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---- an allocator that counts the allocations of the current thread ----

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCS.with(|c| c.get())
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised thread-local `Cell`,
// which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- helpers ----

type Fc = Linear<2, 1, f64>;

/// `w = [[1], [-2]]`, `b = [0.5]`.
fn model() -> Fc {
    let mut m = Fc::zeros();
    m.weight.as_mut_slice().copy_from_slice(&[1.0, -2.0]);
    m.bias.as_mut_slice().copy_from_slice(&[0.5]);
    m
}

/// The gradients of steps 1, 2, 3: `[dw0, dw1, db]`.
const GRADS: [[f64; 3]; 3] = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.1], [-0.3, 0.5, 0.2]];

fn grads(step: usize) -> Fc {
    let g = GRADS[step];
    let mut m = Fc::zeros();
    m.weight.as_mut_slice().copy_from_slice(&g[..2]);
    m.bias.as_mut_slice().copy_from_slice(&g[2..]);
    m
}

fn params(m: &Fc) -> [f64; 3] {
    let w = m.weight.as_slice();
    [w[0], w[1], m.bias.as_slice()[0]]
}

fn state<O: Optimizer<Fc, f64>>(opt: &O) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    opt.visit_state(&mut |name, data| out.push((name.to_string(), data.to_vec())));
    out
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "got {got:?}, want {want:?}");
    }
}

/// Runs `steps` steps with learning rate `lr` and returns the parameters after each.
fn run<O: Optimizer<Fc, f64>>(opt: &mut O, steps: usize, lr: f64) -> (Fc, Vec<[f64; 3]>) {
    let mut m = model();
    let mut out = Vec::new();
    for s in 0..steps {
        opt.step(&mut m, &grads(s), lr);
        out.push(params(&m));
    }
    (m, out)
}

// ---- the rules ----

#[test]
fn sgd_subtracts_lr_times_gradient() {
    let mut opt = Sgd::new();
    let (_, p) = run(&mut opt, 2, 0.1);
    // w0: 1 − 0.1·0.1 = 0.99, then 0.99 − 0.1·0.4 = 0.95
    // w1: −2 + 0.02 = −1.98, then unchanged
    // b:  0.5 − 0.03 = 0.47, then + 0.01 = 0.48
    assert_close(&p[0], &[0.99, -1.98, 0.47]);
    assert_close(&p[1], &[0.95, -1.98, 0.48]);
    assert_eq!(Optimizer::<Fc, f64>::step_count(&opt), 2);
    assert!(state(&opt).is_empty());
}

#[test]
fn momentum_follows_cs231n_convention() {
    let mut opt = SgdMomentum::new();
    assert_eq!(opt.momentum, 0.9);
    let (_, p) = run(&mut opt, 3, 0.1);
    // v1 = −0.1·g1 = [−0.01, 0.02, −0.03];             w1 = [0.99, −1.98, 0.47]
    // v2 = 0.9·v1 − 0.1·g2 = [−0.049, 0.018, −0.017];  w2 = [0.941, −1.962, 0.453]
    // v3 = 0.9·v2 − 0.1·g3 = [−0.0141, −0.0338, −0.0353]; w3 = [0.9269, −1.9958, 0.4177]
    assert_close(&p[0], &[0.99, -1.98, 0.47]);
    assert_close(&p[1], &[0.941, -1.962, 0.453]);
    assert_close(&p[2], &[0.9269, -1.9958, 0.4177]);
    let s = state(&opt);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].0, "velocity.weight");
    assert_eq!(s[1].0, "velocity.bias");
    assert_close(&s[0].1, &[-0.0141, -0.0338]);
    assert_close(&s[1].1, &[-0.0353]);
}

#[test]
fn rmsprop_scales_by_running_rms() {
    let mut opt = RmsProp::new();
    assert_eq!((opt.decay, opt.eps), (0.99, 1e-8));
    let (_, p) = run(&mut opt, 2, 0.01);
    // step 1: c = 0.01·g² = [1e-4, 4e-4, 9e-4]; √c = |g|/10, so w −= 0.01·10·sign(g)·|g|/(|g|+1e-7)
    let step1 = |w: f64, g: f64| w - 0.01 * g / ((0.01 * g * g).sqrt() + 1e-8);
    assert_close(&p[0], &[step1(1.0, 0.1), step1(-2.0, -0.2), step1(0.5, 0.3)]);
    assert_close(&p[0], &[0.900_000_099_999_9, -1.900_000_049_999_975, 0.400_000_033_333_322_24]);
    // step 2: c = 0.99·c1 + 0.01·g2² = [0.001699, 0.000396, 0.000991]
    let s = state(&opt);
    assert_eq!(s[0].0, "cache.weight");
    assert_close(&s[0].1, &[0.001699, 0.000396]);
    assert_close(&s[1].1, &[0.000991]);
    assert_close(&p[1], &[0.802_957_327_331_148_3, -1.900_000_049_999_975, 0.431_766_070_141_997_86]);
}

#[test]
fn adam_with_bias_correction() {
    let mut opt = Adam::new();
    assert_eq!((opt.beta1, opt.beta2, opt.eps), (0.9, 0.999, 1e-8));
    let lr = 0.01;
    let (_, p) = run(&mut opt, 3, lr);
    // Step 1 with bias correction: m̂ = g, v̂ = g², so every parameter moves by lr·sign(g) (up to
    // eps). Without the correction it would move by lr·0.1·|g|/(√0.001·|g|) ≈ 3.16·lr.
    let w0 = params(&model());
    for (i, g) in GRADS[0].iter().enumerate() {
        let moved = p[0][i] - w0[i];
        assert!((moved + lr * g.signum()).abs() < 1e-7, "parameter {i} moved by {moved}");
    }
    assert_close(&p[0], &[0.990_000_000_999_999_9, -1.990_000_000_5, 0.490_000_000_333_333_3]);
    assert_close(&p[1], &[0.981_156_236_397_511_7, -1.983_299_418_432_555_9, 0.485_997_814_792_808_07]);
    assert_close(&p[2], &[0.979_389_153_378_965_3, -1.987_309_486_287_194_3, 0.479_966_950_157_613_9]);
    assert_eq!(Optimizer::<Fc, f64>::step_count(&opt), 3);
    let s = state(&opt);
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["m.weight", "v.weight", "m.bias", "v.bias"]);
    assert_close(&s[0].1, &[0.0141, 0.0338]);
    assert_close(&s[1].1, &[0.000_259_820_01, 0.000_289_920_04]);
    assert_close(&s[2].1, &[0.0353]);
    assert_close(&s[3].1, &[0.000_139_810_09]);
}

#[test]
fn adam_resumes_from_step_count() {
    // Restoring m, v and t reproduces the uninterrupted run.
    let mut a = Adam::new();
    let (_, full) = run(&mut a, 3, 0.01);

    let mut b = Adam::new();
    let mut m = model();
    for s in 0..2 {
        b.step(&mut m, &grads(s), 0.01);
    }
    let saved = state(&b);
    let t = Optimizer::<Fc, f64>::step_count(&b);
    let mut c = Adam::new();
    c.init_state(&m);
    let mut i = 0;
    c.visit_state_mut(&mut |name, data| {
        assert_eq!(name, saved[i].0);
        data.copy_from_slice(&saved[i].1);
        i += 1;
    });
    c.set_step_count(t);
    c.step(&mut m, &grads(2), 0.01);
    assert_close(&params(&m), &full[2]);
}

#[test]
fn any_optimizer_matches_concrete_rules() {
    for rule in UpdateRule::ALL {
        let mut any = AnyOptimizer::new(rule);
        assert_eq!(any.rule(), rule);
        assert_eq!(any.name(), rule.name());
        let (_, got) = run(&mut any, 3, 0.01);
        let want = match rule {
            UpdateRule::Sgd => run(&mut Sgd::new(), 3, 0.01).1,
            UpdateRule::SgdMomentum => run(&mut SgdMomentum::new(), 3, 0.01).1,
            UpdateRule::RmsProp => run(&mut RmsProp::new(), 3, 0.01).1,
            UpdateRule::Adam => run(&mut Adam::new(), 3, 0.01).1,
            UpdateRule::AdamW => run(&mut shaped::optim::AdamW::new(), 3, 0.01).1,
        };
        assert_eq!(got, want, "{rule}");
        assert_eq!(any.step_count(), 3);
    }
}

#[test]
fn rules_parse_from_names() {
    for (s, rule) in [
        ("sgd", UpdateRule::Sgd),
        ("sgd_momentum", UpdateRule::SgdMomentum),
        ("rmsprop", UpdateRule::RmsProp),
        ("adam", UpdateRule::Adam),
        ("Adam", UpdateRule::Adam),
        ("sgd-momentum", UpdateRule::SgdMomentum),
    ] {
        assert_eq!(s.parse::<UpdateRule>().unwrap(), rule);
        assert_eq!(s.parse::<AnyOptimizer<Fc>>().unwrap().rule(), rule);
        assert_eq!(rule.to_string().parse::<UpdateRule>().unwrap(), rule);
    }
    let err = "adagrad".parse::<AnyOptimizer<Fc>>().unwrap_err().to_string();
    assert!(err.contains("adagrad") && err.contains("sgd_momentum"), "{err}");
}

#[test]
fn batchnorm_running_stats_are_not_trained() {
    type Bn = BatchNorm1d<3, f64>;
    for rule in UpdateRule::ALL {
        let mut bn = Bn::zeros();
        bn.params.running_mean.as_mut_slice().copy_from_slice(&[0.1, 0.2, 0.3]);
        bn.params.running_var.as_mut_slice().copy_from_slice(&[1.1, 1.2, 1.3]);
        let mut g = Bn::zeros();
        g.params.gamma.as_mut_slice().fill(0.5);
        g.params.beta.as_mut_slice().fill(-0.5);
        // Nonsense "gradients" of the buffers: must be ignored.
        g.params.running_mean.as_mut_slice().fill(7.0);
        g.params.running_var.as_mut_slice().fill(7.0);
        let mut opt = AnyOptimizer::new(rule);
        for _ in 0..3 {
            opt.step(&mut bn, &g, 0.1);
        }
        assert_eq!(bn.params.running_mean.as_slice(), &[0.1, 0.2, 0.3], "{rule}");
        assert_eq!(bn.params.running_var.as_slice(), &[1.1, 1.2, 1.3], "{rule}");
        assert!(bn.params.gamma.as_slice().iter().all(|&v| v < 1.0), "{rule}: γ was not trained");
        assert!(bn.params.beta.as_slice().iter().all(|&v| v > 0.0), "{rule}: β was not trained");
        let mut names = Vec::new();
        opt.visit_state(&mut |n, d| {
            assert_eq!(d.len(), 3);
            names.push(n.to_string());
        });
        let want: Vec<String> =
            ["gamma", "beta"].iter().flat_map(|p| opt.state_kinds().iter().map(move |k| format!("{k}.{p}"))).collect();
        assert_eq!(names, want, "{rule}");
        assert!(names.iter().all(|n| n.ends_with(".gamma") || n.ends_with(".beta")), "{names:?}");
    }
}

#[test]
fn steady_state_steps_do_not_allocate_or_reallocate() {
    type Bn = BatchNorm1d<4, f32>;
    for rule in UpdateRule::ALL {
        let mut m = Bn::zeros();
        let mut g = Bn::zeros();
        g.params.gamma.as_mut_slice().fill(0.25);
        let mut opt = AnyOptimizer::new(rule);
        let first = allocations();
        opt.step(&mut m, &g, 0.01); // allocates the state
        if rule != UpdateRule::Sgd {
            assert!(allocations() > first, "{rule}: the allocation counter does not count");
        }
        let mut ptrs = Vec::new();
        opt.visit_state(&mut |_, d| ptrs.push(d.as_ptr() as usize));
        let before = allocations();
        for _ in 0..100 {
            opt.step(&mut m, &g, 0.01);
        }
        let after = allocations();
        assert_eq!(after - before, 0, "{rule}: {} allocations in 100 steps", after - before);
        let mut again = Vec::new();
        opt.visit_state(&mut |_, d| again.push(d.as_ptr() as usize));
        assert_eq!(ptrs, again, "{rule}: state was reallocated");
    }
    // The concrete types too (no enum dispatch).
    let mut m = model();
    let g = grads(0);
    let mut adam = Adam::new();
    adam.step(&mut m, &g, 0.01);
    let before = allocations();
    for _ in 0..10 {
        adam.step(&mut m, &g, 0.01);
    }
    assert_eq!(allocations() - before, 0);
}

#[test]
fn init_state_then_step_keeps_buffers() {
    let m0 = model();
    let mut opt = SgdMomentum::new();
    assert!(!opt.has_state());
    assert!(state(&opt).is_empty());
    opt.init_state(&m0);
    assert!(opt.has_state());
    let s = state(&opt);
    assert_eq!(s, vec![("velocity.weight".to_string(), vec![0.0, 0.0]), ("velocity.bias".to_string(), vec![0.0])]);
    let (_, p) = run(&mut opt, 1, 0.1);
    assert_close(&p[0], &[0.99, -1.98, 0.47]);
    opt.reset();
    assert!(!opt.has_state());
    assert_eq!(opt.step_count(), 0);
}

#[test]
fn step_l2_equals_adding_the_l2_gradient_then_stepping() {
    // The fused update (the training step's path) against the two-pass one, bit for bit, for every
    // rule and both element types; the bias (not regularised) must not see the L2 term.
    fn check<E: shaped::kernels::Elem>(rule: UpdateRule) {
        type M<E> = Linear<2, 1, E>;
        let start = |v: [f64; 3]| {
            let mut m = M::<E>::zeros();
            m.weight.as_mut_slice().copy_from_slice(&[E::lit(v[0]), E::lit(v[1])]);
            m.bias.as_mut_slice().copy_from_slice(&[E::lit(v[2])]);
            m
        };
        let reg = E::lit(0.3);
        let (mut fused, mut two_pass) = (start([1.0, -2.0, 0.5]), start([1.0, -2.0, 0.5]));
        let (mut a, mut b) = (AnyOptimizer::<M<E>, E>::new(rule), AnyOptimizer::<M<E>, E>::new(rule));
        for g in GRADS {
            let grads = start(g);
            a.step_l2(&mut fused, &grads, E::lit(0.1), reg);
            let mut with_l2 = start(g);
            shaped::loss::add_l2_grad(&two_pass, &mut with_l2, reg);
            b.step(&mut two_pass, &with_l2, E::lit(0.1));
        }
        assert_eq!(fused.weight.as_slice(), two_pass.weight.as_slice(), "{rule}");
        assert_eq!(fused.bias.as_slice(), two_pass.bias.as_slice(), "{rule}");
        // And the L2 term did act: without it the weights end elsewhere.
        let (mut plain, mut c) = (start([1.0, -2.0, 0.5]), AnyOptimizer::<M<E>, E>::new(rule));
        for g in GRADS {
            c.step(&mut plain, &start(g), E::lit(0.1));
        }
        assert_ne!(plain.weight.as_slice(), fused.weight.as_slice(), "{rule}");
        assert_eq!(plain.bias.as_slice(), fused.bias.as_slice(), "{rule}: the bias is not regularised");
    }
    for rule in UpdateRule::ALL {
        check::<f64>(rule);
        check::<f32>(rule);
    }
}
