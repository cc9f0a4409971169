//! Training faults lose nothing: a save killed at any moment leaves the previous checkpoint
//! loadable, a diverging run stops with a clear error and keeps its best checkpoint, a resumed run
//! ends bit-identical to an uninterrupted one, and the same seed gives the same parameters.

use shaped::Error;
use shaped::data::{Dataset, synthetic};
use shaped::io;
use shaped::optim::UpdateRule;
use shaped::prelude::*;
use shaped::solver::{History, Solver, last_checkpoint_path};
use std::io::{BufRead, BufReader};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small model with batch norm (buffers) and dropout (randomness).
#[derive(Sequential)]
#[sequential(input = (20,))]
struct Net {
    fc1: Linear<20, 32>,
    bn: BatchNorm1d<32>,
    relu: ReLU,
    drop: Dropout<Keep<50>, Inverted>,
    fc2: Linear<32, 1>,
}

type In = (Dyn, Const<20>);

/// A fresh directory under cargo's target tmp dir.
fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reliability-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn data() -> (Dataset, Dataset) {
    let ds = synthetic::binary20(11, 600);
    ds.split_at(450)
}

fn fresh_net(seed: u64) -> Net {
    Net::init(&mut rand::rngs::StdRng::seed_from_u64(seed), Init::He)
}

/// Every parameter and buffer, as bits (so that -0.0 and NaN compare exactly).
fn bits<M: Module<f32>>(m: &M) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |info, d| {
        out.push((info.path.to_string(), d.iter().map(|v| v.to_bits()).collect()))
    });
    out
}

fn solver(rule: UpdateRule, lr: f32) -> Solver {
    Solver::new().rule(rule).lr(lr).lr_decay(0.9).reg(1e-3).batch_size(32).seed(5)
}

/// The history without the wall-clock time.
fn untimed(h: &History) -> History {
    History { train_seconds: 0.0, ..h.clone() }
}

/// A model, optimizer state and metadata read back from a resumable checkpoint.
/// Named parameter bits, named optimizer state and the optimizer's step count.
type Saved = (Vec<(String, Vec<u32>)>, Vec<(String, Vec<f32>)>, u64);

fn read_last(path: &FsPath, rule: UpdateRule) -> Saved {
    let mut m = Net::zeros();
    let mut opt = AnyOptimizer::new(rule);
    io::load_checkpoint(&mut m, &mut opt, path).unwrap();
    let mut state = Vec::new();
    opt.visit_state(&mut |n, d| state.push((n.to_string(), d.to_vec())));
    (bits(&m), state, opt.step_count())
}

// ---- resume ----

#[test]
fn resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    let (train, val) = data();
    for rule in [UpdateRule::SgdMomentum, UpdateRule::Adam] {
        let lr = if rule == UpdateRule::Adam { 1e-2 } else { 5e-2 };
        let dir = tmpdir(&format!("resume-{rule}"));

        // Uninterrupted: 4 epochs.
        let full_best = dir.join("full.safetensors");
        let mut full = fresh_net(1);
        let h_full = solver(rule, lr)
            .epochs(4)
            .checkpoint(&full_best)
            .metrics_csv(dir.join("full.csv"))
            .train(&mut full, &Logistic, &train, &val)
            .unwrap();

        // Interrupted after 2 epochs, then resumed for 2 more into a model of other values.
        let best = dir.join("part.safetensors");
        let mut part = fresh_net(1);
        let h_part = solver(rule, lr)
            .epochs(2)
            .checkpoint(&best)
            .metrics_csv(dir.join("part.csv"))
            .train(&mut part, &Logistic, &train, &val)
            .unwrap();
        let last = last_checkpoint_path(&best);
        assert_eq!(last, dir.join("part.last.safetensors"));
        assert!(last.is_file() && best.is_file());
        let meta = io::read_metadata(&last).unwrap();
        assert_eq!(meta.get("solver.epoch").map(String::as_str), Some("2"));
        assert_eq!(meta.get("shaped.optimizer").map(String::as_str), Some(rule.name()));

        let mut resumed = fresh_net(99);
        let h_resumed = solver(rule, lr)
            .epochs(4)
            .checkpoint(&best)
            .metrics_csv(dir.join("part.csv"))
            .resume_from(&last)
            .train(&mut resumed, &Logistic, &train, &val)
            .unwrap();

        assert_eq!(bits(&resumed), bits(&full), "{rule}: best parameters differ after resuming");
        assert_eq!(untimed(&h_resumed), untimed(&h_full), "{rule}: histories differ");
        assert_eq!(h_resumed.loss.len(), 4 * 450usize.div_ceil(32));
        assert_eq!(&h_resumed.loss[..h_part.loss.len()], &h_part.loss[..]);
        // The last epoch's parameters and optimizer state, not only the best ones, agree.
        assert_eq!(read_last(&last, rule), read_last(&last_checkpoint_path(&full_best), rule), "{rule}");
        // So do the best-parameter files and the metrics (epochs 1-4 once each, same values).
        let (mut a, mut b) = (Net::zeros(), Net::zeros());
        io::load(&mut a, &full_best).unwrap();
        io::load(&mut b, &best).unwrap();
        assert_eq!(bits(&a), bits(&b));
        let csv_values = |p: PathBuf| -> Vec<Vec<String>> {
            let text = std::fs::read_to_string(p).unwrap();
            // Drop the wall-clock column.
            text.lines().map(|l| l.split(',').take(5).map(String::from).collect()).collect()
        };
        assert_eq!(csv_values(dir.join("part.csv")), csv_values(dir.join("full.csv")));
        assert_eq!(csv_values(dir.join("part.csv")).len(), 5);
    }
}

#[test]
fn resume_restores_the_best_epoch_even_when_no_epoch_is_left() {
    let (train, val) = data();
    let dir = tmpdir("resume-best");
    let best = dir.join("b.safetensors");
    let mut net = fresh_net(2);
    let h = solver(UpdateRule::SgdMomentum, 0.3)
        .epochs(3)
        .checkpoint(&best)
        .train(&mut net, &Logistic, &train, &val)
        .unwrap();
    // Resuming a finished run trains nothing and ends on the best epoch's parameters, which come
    // from the resumable checkpoint (it also holds the last epoch's parameters).
    let mut again = fresh_net(3);
    let h2 = solver(UpdateRule::SgdMomentum, 0.3)
        .epochs(3)
        .resume_from(last_checkpoint_path(&best))
        .train(&mut again, &Logistic, &train, &val)
        .unwrap();
    assert_eq!(bits(&again), bits(&net));
    assert_eq!(untimed(&h2), untimed(&h));
    // Fewer epochs than the checkpoint holds: refused (it used to return the 3-epoch run as if
    // it were a 2-epoch one).
    let mut fewer = fresh_net(3);
    let r = solver(UpdateRule::SgdMomentum, 0.3)
        .epochs(2)
        .resume_from(last_checkpoint_path(&best))
        .train(&mut fewer, &Logistic, &train, &val);
    checkpoint_err(r, "b.last.safetensors", &["already trained 3 epochs, more than the 2"]);
    assert_eq!(bits(&fewer), bits(&fresh_net(3)), "the model is unchanged");
}

#[track_caller]
fn checkpoint_err(r: shaped::Result<History>, file: &str, phrases: &[&str]) {
    match r {
        Err(e @ Error::Checkpoint { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "does not name {file}: {msg}");
            for p in phrases {
                assert!(msg.contains(p), "lacks {p:?}: {msg}");
            }
        }
        other => panic!("expected Error::Checkpoint, got {other:?}"),
    }
}

#[test]
fn resume_refuses_a_checkpoint_of_another_run() {
    let (train, val) = data();
    let dir = tmpdir("resume-mismatch");
    let best = dir.join("run.safetensors");
    let last = last_checkpoint_path(&best);
    let mut net = fresh_net(4);
    solver(UpdateRule::Adam, 1e-2).epochs(1).checkpoint(&best).train(&mut net, &Logistic, &train, &val).unwrap();
    let before = bits(&net);
    let go = |s: Solver, net: &mut Net| s.epochs(2).train(net, &Logistic, &train, &val);

    checkpoint_err(
        go(solver(UpdateRule::Adam, 1e-2).seed(6).resume_from(&last), &mut net),
        "run.last",
        &["seed: 5 in the checkpoint, 6 in this run"],
    );
    checkpoint_err(
        go(solver(UpdateRule::Adam, 1e-2).batch_size(16).resume_from(&last), &mut net),
        "run.last",
        &["batch size: 32 in the checkpoint, 16 in this run"],
    );
    checkpoint_err(
        go(solver(UpdateRule::SgdMomentum, 1e-2).resume_from(&last), &mut net),
        "run.last",
        &["update rule: adam in the checkpoint, sgd_momentum in this run"],
    );
    // The best-parameters file is not resumable.
    checkpoint_err(
        go(solver(UpdateRule::Adam, 1e-2).resume_from(&best), &mut net),
        "run.safetensors",
        &["not a resumable checkpoint"],
    );
    // Fewer training samples than the saved run.
    let small = train.slice(0..400);
    let r = solver(UpdateRule::Adam, 1e-2).epochs(2).resume_from(&last).train(&mut net, &Logistic, &small, &val);
    checkpoint_err(
        r,
        "run.last",
        &["number of training samples: 450 in the checkpoint, 400 in this run", "training data digest"],
    );
    // A model of another shape: the error names the tensor and both shapes.
    #[derive(Sequential)]
    #[sequential(input = (20,))]
    struct Wider {
        fc1: Linear<20, 33>,
        bn: BatchNorm1d<33>,
        relu: ReLU,
        drop: Dropout<Keep<50>, Inverted>,
        fc2: Linear<33, 1>,
    }
    let mut wider = Wider::zeros();
    let r = solver(UpdateRule::Adam, 1e-2).epochs(2).resume_from(&last).train(&mut wider, &Logistic, &train, &val);
    checkpoint_err(
        r,
        "run.last",
        &["tensor `fc1.weight` has shape [20, 32] in the file, but the model expects [20, 33]"],
    );
    assert_eq!(bits(&net), before, "a failed resume changed the model");
}

// ---- divergence ----

#[test]
fn divergence_stops_with_an_error_and_keeps_the_best_checkpoint() {
    let (train, val) = data();
    let dir = tmpdir("diverge");
    let best = dir.join("best.safetensors");
    let last = last_checkpoint_path(&best);

    // From the start: the error names epoch 1 and the step, and nothing is written.
    let mut net = fresh_net(7);
    let err = Solver::new()
        .rule(UpdateRule::Sgd)
        .lr(1e30)
        .batch_size(50)
        .epochs(3)
        .checkpoint(&best)
        .train(&mut net, &Hinge, &train, &val)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Training(_)), "{msg}");
    assert!(msg.contains("epoch 1") && msg.contains("step ") && msg.contains("lower the learning rate"), "{msg}");
    assert!(msg.contains("(learning rate 1e30)"), "{msg}");
    assert!(!best.exists() && !last.exists(), "{msg}");

    // Two good epochs, then a resumed run with a huge learning rate diverges in epoch 3.
    let sane = || Solver::new().rule(UpdateRule::SgdMomentum).lr(0.05).batch_size(50).seed(8).checkpoint(&best);
    let mut net = fresh_net(7);
    sane().epochs(2).train(&mut net, &Hinge, &train, &val).unwrap();
    let best_bytes = std::fs::read(&best).unwrap();
    let last_bytes = std::fs::read(&last).unwrap();
    let err = sane()
        .lr(1e30)
        .allow_lr_change(true)
        .epochs(6)
        .resume_from(&last)
        .train(&mut net, &Hinge, &train, &val)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Training(_)), "{msg}");
    assert!(msg.contains("at epoch 3") && msg.contains("step "), "{msg}");
    assert!(msg.contains("lower the learning rate"), "{msg}");
    assert!(msg.contains(&format!("the best checkpoint so far is still in {}", best.display())), "{msg}");
    assert!(msg.contains(&format!("resume from {}", last.display())), "{msg}");
    // Both checkpoints are untouched and load, with finite values.
    assert_eq!(std::fs::read(&best).unwrap(), best_bytes);
    assert_eq!(std::fs::read(&last).unwrap(), last_bytes);
    let mut back = Net::zeros();
    io::load(&mut back, &best).unwrap();
    assert!(bits(&back).iter().all(|(_, v)| v.iter().all(|&b| f32::from_bits(b).is_finite())));
    // And the run continues from the last good epoch with a sane learning rate.
    let h = sane().epochs(4).resume_from(&last).train(&mut net, &Hinge, &train, &val).unwrap();
    assert_eq!(h.val_acc.len(), 4);
    assert!(h.loss.iter().all(|l| l.is_finite()), "{h:?}");
    assert!(bits(&net).iter().all(|(_, v)| v.iter().all(|&b| f32::from_bits(b).is_finite())));
}

// ---- determinism ----

#[test]
fn same_seed_gives_bit_identical_parameters() {
    let (train, val) = data();
    let run = |seed: u64| {
        let mut net = fresh_net(9);
        let h = Solver::new()
            .rule(UpdateRule::Adam)
            .lr(1e-2)
            .batch_size(20)
            .epochs(3)
            .seed(seed)
            .train(&mut net, &Logistic, &train, &val)
            .unwrap();
        (bits(&net), h.loss)
    };
    let (a, la) = run(42);
    let (b, lb) = run(42);
    assert_eq!(a, b);
    assert_eq!(la.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), lb.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let (c, _) = run(43);
    assert_ne!(a, c, "the seed has no effect");
}

// ---- a save killed at any moment ----

/// Set (to the checkpoint path) in the child process that saves in a loop until killed.
const CHILD_ENV: &str = "SHAPED_RELIABILITY_SAVE_LOOP";

/// 2048·4096 + 4096 f32 values: a 32 MiB checkpoint.
type Big = Linear<2048, 4096, f32>;

/// Version `v` (1 or 2) of the big model: value `i` is `1000·v + i mod 1000`.
fn big(v: u32) -> Big {
    let mut m = Big::zeros();
    let mut i = 0u32;
    m.visit_params_mut(&ParamPath::ROOT, &mut |_, d| {
        for x in d {
            *x = (1000 * v + i % 1000) as f32;
            i += 1;
        }
    });
    m
}

/// Which version a loaded model is, if it is entirely one of them.
fn version_of(m: &Big) -> Option<u32> {
    let mut i = 0u32;
    let mut seen: Option<u32> = None;
    let mut ok = true;
    m.visit_params(&ParamPath::ROOT, &mut |_, d| {
        for &x in d {
            let v = (x as u32).wrapping_sub(i % 1000) / 1000;
            if x != (1000 * v + i % 1000) as f32 || seen.is_some_and(|s| s != v) || !(1..=2).contains(&v) {
                ok = false;
            }
            seen.get_or_insert(v);
            i += 1;
        }
    });
    if ok { seen } else { None }
}

/// The child: saves versions 2 and 1 alternately to the path in `CHILD_ENV` until killed. Does
/// nothing in a normal test run.
#[test]
fn child_saves_in_a_loop() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let path = PathBuf::from(path);
    let (one, two) = (big(1), big(2));
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(60); // never outlive a lost parent
    while Instant::now() < deadline {
        io::save(&two, &path).unwrap();
        println!("saved 2");
        io::save(&one, &path).unwrap();
        println!("saved 1");
    }
}

#[test]
fn a_save_killed_at_any_moment_leaves_a_loadable_checkpoint() {
    let dir = tmpdir("kill");
    let path = dir.join("big.safetensors");
    io::save(&big(1), &path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seen = [0usize; 3];
    let mut mid_save = 0;
    let reps = 24;
    for rep in 0..reps {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_saves_in_a_loop", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.trim_end().ends_with("ready") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the child exited before saving");
        }
        // 0 to ~290 ms in steps of 12.5 ms, visited in a scrambled order.
        let delay = Duration::from_micros(((rep * 7) % reps) as u64 * 12_500);
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        drop(out);

        let mut m = Big::zeros();
        io::load(&mut m, &path).unwrap_or_else(|e| panic!("rep {rep} (killed after {delay:?}): {e}"));
        let v = version_of(&m).unwrap_or_else(|| panic!("rep {rep}: the checkpoint mixes versions"));
        seen[v as usize] += 1;
        // What a kill leaves behind is only ever a temporary sibling, never a damaged target.
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name != "big.safetensors" {
                assert!(name.starts_with("big.safetensors.tmp-"), "unexpected file {name}");
                mid_save += 1;
                std::fs::remove_file(dir.join(name)).unwrap();
            }
        }
    }
    eprintln!(
        "{reps} kills: version 1 loaded {} times, version 2 {} times; {mid_save} interrupted saves",
        seen[1], seen[2]
    );
    assert_eq!(seen[1] + seen[2], reps);
    assert!(mid_save > 0, "no kill landed inside a save");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- outputs never destroy user files ----

/// The error's message, which must be of `Error::Output` and name every phrase.
#[track_caller]
fn output_err(r: shaped::Result<History>, phrases: &[&str]) {
    match r {
        Err(e @ Error::Output { .. }) => {
            let msg = e.to_string();
            for p in phrases {
                assert!(msg.contains(p), "lacks {p:?}: {msg}");
            }
        }
        other => panic!("expected Error::Output, got {other:?}"),
    }
}

#[test]
fn outputs_are_checked_before_training_and_never_collide() {
    let (train, val) = data();
    let dir = tmpdir("outputs");
    let keep = dir.join("keep.safetensors");
    std::fs::write(&keep, b"the user's file").unwrap();
    let go = |s: Solver| {
        let mut net = fresh_net(1);
        let before = bits(&net);
        let r = s.epochs(1).train(&mut net, &Logistic, &train, &val);
        assert_eq!(bits(&net), before, "a refused run trained");
        r
    };
    let sgd = || solver(UpdateRule::SgdMomentum, 0.05);
    // The metrics CSV onto the checkpoint: refused, the checkpoint's earlier content intact.
    output_err(
        go(sgd().checkpoint(&keep).metrics_csv(&keep)),
        &["keep.safetensors", "the metrics CSV", "the best-parameters checkpoint", "same file"],
    );
    // The resumable checkpoint onto the best one, through another spelling of the path.
    let other_spelling = dir.join(".").join("keep.safetensors");
    output_err(
        go(sgd().checkpoint(&keep).last_checkpoint(&other_spelling)),
        &["the resumable checkpoint", "the best-parameters checkpoint", "same file"],
    );
    assert_eq!(std::fs::read(&keep).unwrap(), b"the user's file");
    // A directory, a device, a missing parent directory: refused before the first epoch.
    output_err(go(sgd().checkpoint(&dir)), &["is a directory"]);
    output_err(go(sgd().checkpoint("/dev/null")), &["/dev/null", "not a regular file"]);
    output_err(go(sgd().metrics_csv(dir.join("no/such/m.csv"))), &["the metrics CSV", "does not exist"]);
    // A symbolic link to a device is refused too (and the link left alone).
    let link = dir.join("null-link.safetensors");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    output_err(go(sgd().checkpoint(&link)), &["null-link.safetensors", "not a regular file"]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // A symbolic link loop says so.
    let (a, b) = (dir.join("loop-a"), dir.join("loop-b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    output_err(go(sgd().checkpoint(&a)), &["loop-a", "symbolic link loop"]);
    // io::save itself refuses a device.
    let err = io::save(&fresh_net(1), FsPath::new("/dev/null")).unwrap_err();
    assert!(matches!(err, Error::Output { .. }) && err.to_string().contains("/dev/null"), "{err}");
}

#[test]
fn the_metrics_csv_is_replaced_atomically_never_truncated_in_place() {
    let (train, val) = data();
    let dir = tmpdir("metrics-atomic");
    let csv = dir.join("m.csv");
    std::fs::write(&csv, b"an earlier run's metrics\n").unwrap();
    // A second name for the earlier file: writing in place would change what it shows.
    let earlier = dir.join("earlier.csv");
    std::fs::hard_link(&csv, &earlier).unwrap();
    let mut net = fresh_net(1);
    solver(UpdateRule::SgdMomentum, 0.05).epochs(2).metrics_csv(&csv).train(&mut net, &Logistic, &train, &val).unwrap();
    assert_eq!(std::fs::read(&earlier).unwrap(), b"an earlier run's metrics\n");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("epoch,loss,"), "{text}");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["earlier.csv", "m.csv"], "temporary files left behind");
}

#[test]
fn leftover_temporaries_of_dead_processes_are_removed_by_the_next_save() {
    let dir = tmpdir("stale-tmp");
    let p = dir.join("m.safetensors");
    // A pid above Linux's maximum (2^22) runs nowhere; pid 1 always runs.
    let dead = dir.join("m.safetensors.tmp-4194305-7");
    let dead_png = dir.join("m.safetensors.tmp-4194306-0.png");
    let alive = dir.join("m.safetensors.tmp-1-3");
    let unrelated = dir.join("n.safetensors.tmp-4194305-7");
    for f in [&dead, &dead_png, &alive, &unrelated] {
        std::fs::write(f, b"half a checkpoint").unwrap();
    }
    io::save(&fresh_net(1), &p).unwrap();
    assert!(!dead.exists() && !dead_png.exists(), "stale temporaries survived the save");
    assert!(alive.exists(), "a running process's temporary was removed");
    assert!(unrelated.exists(), "another target's temporary was removed");
    let mut back = Net::zeros();
    io::load(&mut back, &p).unwrap();
    assert_eq!(bits(&back), bits(&fresh_net(1)));
}

// ---- resume knows what it resumes ----

#[test]
fn resume_refuses_other_data_and_other_hyper_parameters_naming_both_values() {
    let (train, val) = data();
    let dir = tmpdir("resume-facts");
    let best = dir.join("run.safetensors");
    let last = last_checkpoint_path(&best);
    let tagged = || solver(UpdateRule::Adam, 1e-2).tag("pixels", "raw").tag("limit", "none");
    let mut net = fresh_net(4);
    tagged().epochs(1).checkpoint(&best).train(&mut net, &Logistic, &train, &val).unwrap();
    let meta = io::read_metadata(&last).unwrap();
    for key in ["solver.train_digest", "solver.val_digest", "solver.initial_lr", "solver.reg", "solver.tag.pixels"] {
        assert!(meta.contains_key(key), "{key} not recorded: {meta:?}");
    }
    let before = bits(&net);
    let go = |s: Solver, tr: &Dataset, va: &Dataset, net: &mut Net| {
        s.epochs(2).resume_from(&last).train(net, &Logistic, tr, va)
    };
    // Same sizes, one feature changed: the digests tell.
    let mut x = train.features().to_vec();
    x[17] += 1.0;
    let changed = Dataset::new(x, train.labels().to_vec(), train.sample_dims(), train.classes()).unwrap();
    checkpoint_err(go(tagged(), &changed, &val, &mut net), "run.last", &["training data digest"]);
    // One validation label changed.
    let mut y = val.labels().to_vec();
    y[3] = 1 - y[3];
    let val2 = Dataset::new(val.features().to_vec(), y, val.sample_dims(), val.classes()).unwrap();
    checkpoint_err(go(tagged(), &train, &val2, &mut net), "run.last", &["validation data digest"]);
    // Hyper-parameters: both values named.
    checkpoint_err(
        go(tagged().lr(0.5), &train, &val, &mut net),
        "run.last",
        &["learning rate: 0.01 in the checkpoint, 0.5 in this run"],
    );
    checkpoint_err(
        go(tagged().lr_decay(0.5), &train, &val, &mut net),
        "run.last",
        &["learning-rate decay: 0.9 in the checkpoint, 0.5 in this run"],
    );
    checkpoint_err(
        go(tagged().reg(0.25), &train, &val, &mut net),
        "run.last",
        &["L2 strength (reg): 0.001 in the checkpoint, 0.25 in this run"],
    );
    // The caller's tags (pixel scaling, limit), changed or missing; several differences at once.
    checkpoint_err(
        go(tagged().tag("pixels", "unit").tag("limit", "300"), &train, &val, &mut net),
        "run.last",
        &["pixels: raw in the checkpoint, unit in this run", "limit: none in the checkpoint, 300 in this run"],
    );
    checkpoint_err(
        go(solver(UpdateRule::Adam, 1e-2).tag("limit", "none"), &train, &val, &mut net),
        "run.last",
        &["pixels: raw in the checkpoint, not set in this run"],
    );
    assert_eq!(bits(&net), before, "a refused resume changed the model");
    // A deliberate learning-rate change is allowed when asked for, and nothing else differs.
    go(tagged().lr(5e-3).allow_lr_change(true), &train, &val, &mut net).unwrap();
}

/// The byte range of tensor `name` in a safetensors file (from its JSON header).
fn tensor_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at = header.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("no {name} in {header}"));
    let offsets = &header[at..];
    let offsets = &offsets[offsets.find("\"data_offsets\":[").unwrap() + 16..];
    let offsets = &offsets[..offsets.find(']').unwrap()];
    let (s, e) = offsets.split_once(',').unwrap();
    8 + n + s.trim().parse::<usize>().unwrap()..8 + n + e.trim().parse::<usize>().unwrap()
}

#[test]
fn non_finite_parameters_are_refused_at_load_naming_the_tensor() {
    let (train, val) = data();
    let dir = tmpdir("non-finite");
    // --load: a NaN weight.
    let p = dir.join("nan.safetensors");
    let mut bad = fresh_net(1);
    bad.visit_params_mut(&ParamPath::ROOT, &mut |info, d| {
        if info.path.to_string() == "fc2.weight" {
            d[5] = f32::NAN;
        }
    });
    io::save(&bad, &p).unwrap();
    let mut m = fresh_net(2);
    let before = bits(&m);
    let err = io::load(&mut m, &p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Checkpoint { .. }), "{msg}");
    assert!(msg.contains("nan.safetensors") && msg.contains("tensor `fc2.weight` holds NaN at index 5"), "{msg}");
    assert_eq!(bits(&m), before);

    // A resumable checkpoint whose saved best parameters hold an infinity.
    let best = dir.join("run.safetensors");
    let last = last_checkpoint_path(&best);
    let mut net = fresh_net(3);
    solver(UpdateRule::SgdMomentum, 0.05).epochs(1).checkpoint(&best).train(&mut net, &Logistic, &train, &val).unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let r = tensor_range(&bytes, "solver.best");
    let at = r.start + 4 * 40; // value 40: in fc1.weight (20×32 values)
    bytes[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    std::fs::write(&last, &bytes).unwrap();
    let before = bits(&net);
    let r = solver(UpdateRule::SgdMomentum, 0.05).epochs(2).resume_from(&last).train(&mut net, &Logistic, &train, &val);
    checkpoint_err(r, "run.last", &["tensor `solver.best`", "inf at index 40", "`fc1.weight`", "finite"]);
    assert_eq!(bits(&net), before);
}

#[test]
fn empty_splits_are_errors_naming_the_split() {
    let (train, val) = data();
    let mut net = fresh_net(1);
    let s = || solver(UpdateRule::SgdMomentum, 0.05).epochs(1);
    let empty = val.slice(0..0);
    let err = s().train(&mut net, &Logistic, &train, &empty).unwrap_err().to_string();
    assert!(err.contains("validation set is empty"), "{err}");
    let err = s().train(&mut net, &Logistic, &empty, &val).unwrap_err().to_string();
    assert!(err.contains("training set is empty"), "{err}");
    let err = empty.check_input::<In>("test").unwrap_err().to_string();
    assert!(err.contains("test set is empty"), "{err}");
}
