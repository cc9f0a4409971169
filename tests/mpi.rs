//! Data-parallel training under `mpirun` (feature `mpi`): launches `examples/dist_check.rs` with
//! `mpirun --oversubscribe -np 2` and checks that two ranks follow the one-process trajectory
//! (per-step losses to a relative 1e-5 on 3b and 4a), that a run is reproducible, and that a
//! failing rank (panic, error, SIGKILL) or ranks that disagree at start-up end the job with a
//! message instead of a hang.
//!
//! A test without the libtest harness: run with the argument `dist-check`, the binary is the
//! program of `examples/dist_check.rs` (included below), which `mpirun` starts as the ranks;
//! otherwise it runs the checks below one after the other (an argument other than `dist-check`
//! selects the checks whose names contain it).

#[cfg(feature = "mpi")]
#[path = "../examples/dist_check.rs"]
#[allow(dead_code)]
mod dist_check;

#[cfg(not(feature = "mpi"))]
fn main() {}

#[cfg(feature = "mpi")]
fn main() -> std::process::ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "dist-check") {
        argv.remove(1);
        return dist_check::entry(argv);
    }
    let filter = argv.get(1).and_then(|a| a.to_str()).filter(|a| !a.starts_with('-')).map(str::to_string);
    let checks: [(&str, fn()); 5] = [
        ("two_ranks_follow_the_one_process_trajectory", two_ranks_follow_the_one_process_trajectory),
        (
            "a_two_rank_run_is_reproducible_and_keeps_ranks_in_step",
            a_two_rank_run_is_reproducible_and_keeps_ranks_in_step,
        ),
        ("a_failing_rank_ends_the_job_with_its_rank_and_cause", a_failing_rank_ends_the_job_with_its_rank_and_cause),
        ("ranks_that_disagree_are_refused_at_start_up", ranks_that_disagree_are_refused_at_start_up),
        ("hw1_distributed_writes_on_rank_0_and_resumes", hw1_distributed_writes_on_rank_0_and_resumes),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let t0 = Instant::now();
        let ok = std::panic::catch_unwind(check).is_ok();
        println!("test {name} ... {} ({:.1} s)", if ok { "ok" } else { "FAILED" }, t0.elapsed().as_secs_f64());
        failed += usize::from(!ok);
    }
    if failed > 0 {
        println!("{failed} mpi check(s) failed");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(feature = "mpi")]
use checks::*;

/// The checks.
#[cfg(feature = "mpi")]
mod checks {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};
    use std::time::Duration;
    pub use std::time::Instant;

    /// This binary, which is the rank program when its first argument is `dist-check`.
    fn dist_check() -> PathBuf {
        std::env::current_exe().expect("the test's path")
    }

    /// Runs `cmd`, killing it (and failing the test) after `limit`; its output.
    fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mpirun starts (is openmpi-bin installed?)");
        // Read the pipes on threads, so that a chatty child cannot block on a full pipe.
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let t_out = std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut v).ok();
            v
        });
        let t_err = std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut err, &mut v).ok();
            v
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > limit {
                child.kill().ok();
                child.wait().ok();
                panic!("{cmd:?} still running after {limit:?}: a hang");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output { status, stdout: t_out.join().expect("stdout"), stderr: t_err.join().expect("stderr") }
    }

    fn mpirun(np: usize, args: &[&str]) -> Output {
        let mut all = vec!["dist-check"];
        all.extend_from_slice(args);
        all.push("--distributed");
        mpirun_program(np, &dist_check(), &all)
    }

    /// `mpirun --oversubscribe -np N program args…` (as root with `--allow-run-as-root`).
    fn mpirun_program(np: usize, program: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("mpirun");
        cmd.arg("--oversubscribe");
        // SAFETY: geteuid has no preconditions and touches no memory.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-run-as-root");
        }
        cmd.args(["-np", &np.to_string()]).arg(program).args(args);
        run_with_timeout(cmd, Duration::from_secs(120))
    }

    fn alone(args: &[&str]) -> Output {
        let mut cmd = Command::new(dist_check());
        cmd.arg("dist-check").args(args);
        run_with_timeout(cmd, Duration::from_secs(120))
    }

    fn ok(o: &Output, what: &str) -> String {
        assert!(o.status.success(), "{what} failed: {:?}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout.clone()).expect("utf-8")
    }

    /// The values of the lines `key i value` (or `key value`) of `out`.
    fn values(out: &str, key: &str) -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
            .map(|r| r.rsplit(' ').next().unwrap_or_default().to_string())
            .collect()
    }

    fn losses(out: &str) -> Vec<f64> {
        values(out, "loss").iter().map(|v| v.parse().expect("a loss")).collect()
    }

    pub fn two_ranks_follow_the_one_process_trajectory() {
        // A global batch of 51 over 2 ranks: shards of 25 and 26, and a last partial batch of 39
        // (600 = 11·51 + 39), so the shard weighting is exercised.
        for model in ["3b", "4a"] {
            let args = ["--model", model, "--samples", "600", "--batch", "51", "--epochs", "2"];
            let one = ok(&alone(&args), "the one-process run");
            let two = ok(&mpirun(2, &args), "the two-rank run");
            let (a, b) = (losses(&one), losses(&two));
            assert_eq!(a.len(), 24, "two epochs of 12 steps:\n{one}");
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(x.is_finite() && y.is_finite());
                let rel = (x - y).abs() / x.abs().max(1e-12);
                assert!(rel <= 1e-5, "{model} step {i}: one process {x}, two ranks {y} (relative {rel:e})");
            }
            // The losses moved: the check compares a trajectory, not a constant.
            assert!(a.iter().any(|l| (l - a[0]).abs() > 1e-3), "{model}: {a:?}");
            // Accuracy measured on the ranks' shards and summed is the whole set's.
            assert_eq!(values(&one, "val_acc"), values(&two, "val_acc"), "{model}");
        }
    }

    pub fn a_two_rank_run_is_reproducible_and_keeps_ranks_in_step() {
        // 4b has batch norm (local statistics, running statistics averaged) and dropout (masks seeded
        // per rank); after every epoch the ranks' parameter checksums are compared, so two epochs
        // that end normally prove that the running statistics stayed identical on both ranks.
        let args = ["--model", "4b", "--samples", "300", "--batch", "32", "--epochs", "2", "--lr", "0.01"];
        let first = ok(&mpirun(2, &args), "the first run");
        let second = ok(&mpirun(2, &args), "the second run");
        assert_eq!(values(&first, "loss"), values(&second, "loss"));
        assert_eq!(values(&first, "checksum"), values(&second, "checksum"));
        assert_eq!(losses(&first).len(), 20);
        // Dropout differs per rank, so the run is not the one-process run.
        let one = ok(&alone(&args), "the one-process run");
        assert_ne!(values(&one, "checksum"), values(&first, "checksum"));
    }

    pub fn a_failing_rank_ends_the_job_with_its_rank_and_cause() {
        let cases = [
            ("panic", "rank 1 failed: panicked: injected panic at training step 3"),
            ("error", "rank 1 failed: label error: injected error at training step 3"),
            // mpirun reports a killed rank itself.
            ("kill", "rank 1"),
        ];
        for (how, expect) in cases {
            let t0 = Instant::now();
            let o = mpirun(2, &["--model", "4a", "--samples", "600", "--fail-rank", "1", "--fail-how", how]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{how}: the job succeeded:\n{err}");
            assert!(err.contains(expect), "{how}: stderr lacks {expect:?}:\n{err}");
            if how == "kill" {
                assert!(err.contains("signal 9"), "{how}: stderr does not name the signal:\n{err}");
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "{how}: took {:?}", t0.elapsed());
        }
    }

    pub fn ranks_that_disagree_are_refused_at_start_up() {
        for (mismatch, what) in [("lr", "learning rate"), ("data", "training data digest")] {
            let o = mpirun(2, &["--model", "3b", "--mismatch-rank", "1", "--mismatch", mismatch]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{mismatch}: the job succeeded");
            assert!(err.contains("distributed run refused"), "{mismatch}:\n{err}");
            assert!(err.contains(&format!("{what} (rank 1 differs from rank 0")), "{mismatch}:\n{err}");
            // No step was taken.
            assert!(!String::from_utf8_lossy(&o.stdout).contains("loss 0"), "{mismatch}");
        }
    }

    /// The `hw1` example that a plain `cargo test --features mpi` builds, if it is there and newer
    /// than the sources (`cargo test --test mpi` builds no examples: the check is then skipped
    /// with a note, as in tests/bad_input.rs).
    fn hw1_binary() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let bin = exe.parent()?.parent()?.join("examples").join("hw1");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut newest = std::time::SystemTime::UNIX_EPOCH;
        // Cargo.toml is left out: an edit there that matters rebuilds hw1 anyway, and one that does
        // not (another test's entry) would skip this check for no reason.
        let mut stack = vec![
            root.join("src"),
            root.join("macros/src"),
            root.join("examples/hw1.rs"),
            root.join("examples/support"),
        ];
        while let Some(p) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&p) else { continue };
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&p).ok()?.filter_map(|e| e.ok().map(|e| e.path())));
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(t);
            }
        }
        match built {
            Some(t) if t >= newest => Some(bin),
            _ => {
                println!("note: skipping the hw1 check: {} is missing or older than the sources", bin.display());
                None
            }
        }
    }

    pub fn hw1_distributed_writes_on_rank_0_and_resumes() {
        let Some(hw1) = hw1_binary() else { return };
        if !Path::new("/usr/share/datasets/fashion-mnist").is_dir() {
            println!("note: skipping the hw1 check: no Fashion-MNIST (apt-get install dataset-fashion-mnist)");
            return;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mpi-hw1");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let save = dir.join("3b.safetensors");
        let save_s = save.to_str().expect("a UTF-8 path");
        let common = ["3b", "--limit", "3000", "--json", "--quiet"];
        let run = |np: usize, extra: &[&str]| {
            let mut args = common.to_vec();
            args.extend_from_slice(extra);
            mpirun_program(np, &hw1, &args)
        };
        let first = ok(&run(2, &["--distributed", "--epochs", "1", "--save", save_s]), "hw1 3b on 2 ranks");
        // One report (rank 0's), one row of metrics, the checkpoints written once.
        assert_eq!(first.lines().filter(|l| l.starts_with('{')).count(), 1, "{first}");
        assert!(first.contains("\"epochs\":1"), "{first}");
        let metrics = std::fs::read_to_string(dir.join("3b.metrics.csv")).expect("rank 0 wrote the metrics");
        assert_eq!(metrics.lines().count(), 2, "{metrics}");
        let last = dir.join("3b.last.safetensors");
        assert!(save.is_file() && last.is_file());
        let last_s = last.to_str().expect("a UTF-8 path");
        // Every rank reads the resumable checkpoint and continues with epoch 2.
        let second = ok(&run(2, &["--distributed", "--epochs", "2", "--resume", last_s]), "the resumed run");
        assert!(second.contains("\"epochs\":2"), "{second}");
        // A two-rank run does not resume as one process (another summation order).
        let o = run(1, &["--epochs", "3", "--resume", last_s]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("ranks: 2 in the checkpoint, not set in this run"), "{err}");
    }
}
