//! The `hw1` example's command line on bad input: a failed run exits 1 naming the file or flag, a
//! usage error 2; flags are applied; user files are never destroyed; a resume refuses another run.

use std::path::Path as FsPath;

mod common;
use common::{hw1_binary, idx, mnist_dir, tmpdir};

// ---------------------------------------------------------------------------------------------
// The hw1 example

#[test]
fn hw1_exits_non_zero_with_the_message() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1");
    let csv = dir.join("bad-binary20.csv");
    std::fs::write(&csv, "x0,x1,label\n0.5,0.25,1\n0.5,oops,0\n").unwrap();
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    std::fs::write(mnist.join("train-images-idx3-ubyte"), idx(0x0803, &[1, 28, 28], &[0; 784])).unwrap();
    std::fs::write(mnist.join("train-labels-idx1-ubyte"), idx(0x0803, &[1, 1, 1], &[0])).unwrap();
    std::fs::write(mnist.join("t10k-images-idx3-ubyte"), idx(0x0803, &[1, 28, 28], &[0; 784])).unwrap();
    std::fs::write(mnist.join("t10k-labels-idx1-ubyte"), idx(0x0801, &[1], &[0])).unwrap();
    let cases: Vec<(Vec<&std::ffi::OsStr>, Vec<String>)> = vec![
        (
            vec!["1a".as_ref(), "--data".as_ref(), csv.as_os_str(), "--quiet".as_ref()],
            vec![csv.display().to_string(), "line 3".into(), "\"oops\" is not a number".into()],
        ),
        (
            vec!["4a".as_ref(), "--data".as_ref(), mnist.as_os_str(), "--quiet".as_ref()],
            vec!["train-labels-idx1-ubyte".into(), "wrong rank 3".into()],
        ),
        (
            vec![
                "1a".as_ref(),
                "--resume".as_ref(),
                csv.as_os_str(),
                "--quiet".as_ref(),
                "--epochs".as_ref(),
                "1".as_ref(),
            ],
            vec!["bad-binary20.csv".into(), "checkpoint".into()],
        ),
    ];
    for (args, phrases) in cases {
        let out = std::process::Command::new(&bin).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for p in phrases {
            assert!(stderr.contains(&p), "{args:?}: stderr lacks {p:?}: {stderr}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The hw1 command line

/// Runs `hw1` with `args` in `dir`: (exit code, stdout, stderr).
fn hw1(bin: &FsPath, dir: &FsPath, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(bin).args(args).current_dir(dir).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that `hw1 args` exits with `code` and a stderr naming every phrase, and never panics.
#[track_caller]
fn hw1_fails(bin: &FsPath, dir: &FsPath, args: &[&str], code: i32, phrases: &[&str]) {
    let (got, _, stderr) = hw1(bin, dir, args);
    assert_eq!(got, Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for p in phrases {
        assert!(stderr.contains(p), "{args:?}: stderr lacks {p:?}: {stderr}");
    }
}

/// The 20-feature CSV of the binary experiments: 1000 rows, labels alternating.
fn binary20_csv(path: &FsPath, bump: Option<usize>) {
    let mut text = (0..20).map(|i| format!("x{i}")).collect::<Vec<_>>().join(",") + ",label\n";
    for r in 0..1000usize {
        let row: Vec<String> = (0..20)
            .map(|c| {
                let v = ((r * 31 + c * 17) % 97) as f32 / 97.0 - 0.5 + if r % 2 == 1 { 0.3 } else { 0.0 };
                let v = if bump == Some(r) && c == 0 { v + 1.0 } else { v };
                format!("{v}")
            })
            .collect();
        text.push_str(&format!("{},{}\n", row.join(","), r % 2));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn hw1_usage_errors_exit_2_naming_the_flag() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1-usage");
    let (code, stdout, _) = hw1(&bin, &dir, &["--help"]);
    assert_eq!(code, Some(0));
    for flag in ["--lr ", "--reg ", "--batch ", "--lr-decay ", "--optimizer ", "--limit ", "--threads ", "--json"] {
        assert!(stdout.contains(flag), "--help lacks {flag}: {stdout}");
    }
    let cases: &[(&[&str], &[&str])] = &[
        (&["4a", "1a"], &["unexpected argument '1a'"]),
        (&["9z"], &["invalid value '9z'", "1a, 1b, 2a, 2b, 3a, 3b, 4a, 4b, 5"]),
        (&["1a", "--threads", "0"], &["--threads", "1..=64"]),
        (&["1a", "--threads", "1000"], &["--threads", "1..=64"]),
        (&["1a", "--data", ""], &["--data", "the path is empty"]),
        (&["1a", "--save", ""], &["--save", "the path is empty"]),
        (&["1a", "--limit", "0"], &["--limit", "at least 1"]),
        (&["1a", "--epochs", "0"], &["--epochs", "at least 1"]),
        (&["1a", "--batch", "0"], &["--batch", "at least 1"]),
        (&["1a", "--lr", "nan"], &["--lr", "must be finite"]),
        (&["1a", "--lr", "-1"], &["--lr", "must be positive"]),
        (&["1a", "--lr", "inf"], &["--lr", "must be finite"]),
        (&["1a", "--reg", "-0.1"], &["--reg", "zero or positive"]),
        (&["1a", "--lr=-1e-3"], &["--lr", "must be positive"]),
        (&["1a", "--lr-decay", "0"], &["--lr-decay", "must be positive"]),
        (&["1a", "--optimizer", "lbfgs"], &["--optimizer", "lbfgs", "adam"]),
        (&["1a", "--pixels", "scaled"], &["--pixels", "raw, unit"]),
        (&["1a", "--seed", "x"], &["--seed"]),
        (&["1a", "--load", "a", "--resume", "b"], &["--load", "--resume", "cannot be used with"]),
        (&["1a", "--frobnicate"], &["--frobnicate"]),
    ];
    for (args, phrases) in cases {
        hw1_fails(&bin, &dir, args, 2, phrases);
    }
}

#[test]
fn hw1_flags_are_applied_and_broken_pipes_are_quiet() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1-flags");
    let csv = dir.join("b20.csv");
    binary20_csv(&csv, None);
    let c = csv.to_str().unwrap();
    // --limit works for the binary experiments; the overrides are accepted and used.
    let (code, stdout, stderr) = hw1(
        &bin,
        &dir,
        &[
            "1a",
            "--data",
            c,
            "--limit",
            "7",
            "--epochs",
            "2",
            "--json",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--batch",
            "3",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("experiment 1a: 7 training, 250 validation, 250 test"), "{stderr}");
    assert!(stderr.contains("lr 1.000e-2"), "--lr not used: {stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("{\"experiment\":\"1a\",\"epochs\":2,"), "{stdout}");
    // The README's binary-20 command.
    let (code, stdout, stderr) = hw1(&bin, &dir, &["1a", "--data", c, "--reg", "0.0004", "--quiet", "--epochs", "3"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("1a: train "), "{stdout}");
    // stdout closed before the result is written: no panic, exit 0.
    let mut child = std::process::Command::new(&bin)
        .args(["1a", "--data", c, "--epochs", "1", "--json", "--quiet"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn hw1_never_destroys_user_files() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1-outputs");
    let csv = dir.join("b20.csv");
    binary20_csv(&csv, None);
    let c = csv.to_str().unwrap();
    let precious = b"not to be overwritten".to_vec();
    for name in ["model.png", "model.metrics.csv", "x.safetensors"] {
        std::fs::write(dir.join(name), &precious).unwrap();
    }
    // --save model.png: the plot would overwrite the checkpoint.
    hw1_fails(
        &bin,
        &dir,
        &["1a", "--data", c, "--save", "model.png", "--quiet"],
        1,
        &["model.png", "--save", "plot", "same file"],
    );
    // --save onto the file --resume reads.
    hw1_fails(
        &bin,
        &dir,
        &["1a", "--data", c, "--save", "x.safetensors", "--resume", "x.safetensors", "--quiet"],
        1,
        &["x.safetensors", "would overwrite --resume"],
    );
    // --save onto the data, or onto --load.
    hw1_fails(&bin, &dir, &["1a", "--data", c, "--save", "b20.csv", "--quiet"], 1, &["b20.csv", "--data"]);
    // A --load or --resume file that is not there: named with its flag.
    for flag in ["--load", "--resume"] {
        let args = ["1a", "--data", c, flag, "gone.safetensors", "--quiet"];
        hw1_fails(&bin, &dir, &args, 1, &["gone.safetensors", flag, "cannot read the checkpoint"]);
    }
    hw1_fails(
        &bin,
        &dir,
        &["1a", "--data", c, "--save", "x.safetensors", "--load", "x.safetensors", "--quiet"],
        1,
        &["x.safetensors", "--load"],
    );
    // Devices, directories, symbolic links to devices, missing directories: refused before training.
    std::os::unix::fs::symlink("/dev/null", dir.join("null.safetensors")).unwrap();
    for (save, phrase) in [
        ("/dev/null", "not a regular file"),
        ("null.safetensors", "not a regular file"),
        (".", "is a directory"),
        ("no/such/dir/m.safetensors", "does not exist"),
    ] {
        let (code, _, stderr) = hw1(&bin, &dir, &["1a", "--data", c, "--save", save, "--epochs", "1"]);
        assert_eq!(code, Some(1), "--save {save}: {stderr}");
        assert!(stderr.contains(save) && stderr.contains(phrase), "--save {save}: {stderr}");
        assert!(!stderr.contains("epoch   1"), "--save {save} trained first: {stderr}");
    }
    assert!(std::fs::symlink_metadata(dir.join("null.safetensors")).unwrap().file_type().is_symlink());
    for name in ["model.png", "model.metrics.csv", "x.safetensors"] {
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), precious, "{name} was changed");
    }
    // A good --save replaces earlier outputs whole and leaves no temporary behind.
    let (code, _, stderr) =
        hw1(&bin, &dir, &["1a", "--data", c, "--save", "model.safetensors", "--epochs", "2", "--quiet"]);
    assert_eq!(code, Some(0), "{stderr}");
    let csv_text = std::fs::read_to_string(dir.join("model.metrics.csv")).unwrap();
    assert!(csv_text.starts_with("epoch,loss,") && csv_text.lines().count() == 3, "{csv_text}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn hw1_checks_meaning_and_every_split_before_training() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1-meaning");
    // 14×56 training images, 28×28 test images: refused naming the file and both geometries.
    let wide = dir.join("wide");
    mnist_dir(&wide, 20, (14, 56), 5, (28, 28));
    hw1_fails(
        &bin,
        &dir,
        &["4a", "--data", wide.to_str().unwrap(), "--epochs", "1"],
        1,
        &["train-images-idx3-ubyte", "14x56", "28x28"],
    );
    // The test split of another geometry is refused before the first epoch, not after the last.
    let test_wide = dir.join("test-wide");
    mnist_dir(&test_wide, 20, (28, 28), 5, (14, 56));
    let (code, _, stderr) = hw1(&bin, &dir, &["3a", "--data", test_wide.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("t10k-images-idx3-ubyte.gz") && stderr.contains("14x56"), "{stderr}");
    assert!(!stderr.contains("epoch   1"), "trained before checking the test split: {stderr}");
    // --limit 1 leaves no validation sample.
    let ok = dir.join("ok");
    mnist_dir(&ok, 20, (28, 28), 5, (28, 28));
    // Batches of one sample for 4b's BatchNorm1d: named by --batch, before the first epoch.
    let (code, _, stderr) = hw1(&bin, &dir, &["4b", "--data", ok.to_str().unwrap(), "--batch", "1", "--epochs", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--batch: batches of 1 sample") && stderr.contains("`bn2` (BatchNorm1d<16>)"), "{stderr}");
    assert!(!stderr.contains("epoch   1"), "trained first: {stderr}");
    hw1_fails(
        &bin,
        &dir,
        &["3a", "--data", ok.to_str().unwrap(), "--limit", "1", "--quiet"],
        1,
        &["validation split is empty", "--limit 1"],
    );
    // An empty test split.
    let no_test = dir.join("no-test");
    mnist_dir(&no_test, 20, (28, 28), 0, (28, 28));
    hw1_fails(
        &bin,
        &dir,
        &["3a", "--data", no_test.to_str().unwrap(), "--quiet"],
        1,
        &["t10k-images-idx3-ubyte.gz", "test split is empty"],
    );
    // A CSV with 3 features for the 20-feature model: the file is named.
    let small = dir.join("three.csv");
    let mut text = String::from("a,b,c,label\n");
    for r in 0..1000 {
        text.push_str(&format!("1,2,3,{}\n", r % 2));
    }
    std::fs::write(&small, text).unwrap();
    hw1_fails(&bin, &dir, &["1a", "--data", small.to_str().unwrap(), "--quiet"], 1, &["three.csv", "3 features", "20"]);
    // A CSV of other than 1000 rows: the file is named.
    std::fs::write(&small, "x0,label\n1,0\n").unwrap();
    hw1_fails(&bin, &dir, &["1a", "--data", small.to_str().unwrap(), "--quiet"], 1, &["three.csv"]);
    // Compressed or looping --data.
    let loop_dir = dir.join("loop");
    std::os::unix::fs::symlink(&loop_dir, &loop_dir).unwrap();
    hw1_fails(&bin, &dir, &["4a", "--data", loop_dir.to_str().unwrap(), "--quiet"], 1, &["loop", "symbolic link loop"]);
    let xz = dir.join("b20.csv.xz");
    std::fs::write(&xz, b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46").unwrap();
    hw1_fails(&bin, &dir, &["1a", "--data", xz.to_str().unwrap(), "--quiet"], 1, &["b20.csv.xz", "xz-compressed"]);
}

#[test]
fn hw1_resume_refuses_another_run_naming_what_differs() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1-resume");
    let csv = dir.join("b20.csv");
    binary20_csv(&csv, None);
    let other = dir.join("other.csv");
    binary20_csv(&other, Some(3)); // one value of training row 3 differs
    let c = csv.to_str().unwrap();
    let (code, _, stderr) =
        hw1(&bin, &dir, &["1a", "--data", c, "--save", "run.safetensors", "--epochs", "1", "--quiet"]);
    assert_eq!(code, Some(0), "{stderr}");
    let last_bytes = std::fs::read(dir.join("run.last.safetensors")).unwrap();
    let resume = |extra: &[&str], phrases: &[&str]| {
        let mut args = vec!["1a", "--resume", "run.last.safetensors", "--epochs", "2", "--quiet"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--data") {
            args.extend_from_slice(&["--data", c]);
        }
        let mut all = vec!["run.last.safetensors"];
        all.extend_from_slice(phrases);
        hw1_fails(&bin, &dir, &args, 1, &all);
    };
    resume(&["--data", other.to_str().unwrap()], &["training data digest"]);
    resume(&["--pixels", "unit"], &["pixels: raw in the checkpoint, unit in this run"]);
    resume(&["--limit", "300"], &["limit: none in the checkpoint, 300 in this run", "number of training samples: 500"]);
    resume(&["--reg", "0.5"], &["L2 strength (reg): 0.2 in the checkpoint, 0.5 in this run"]);
    resume(&["--lr-decay", "0.5"], &["learning-rate decay: 0.95 in the checkpoint, 0.5 in this run"]);
    resume(&["--batch", "25"], &["batch size: 50 in the checkpoint, 25 in this run"]);
    resume(&["--optimizer", "adam"], &["update rule: sgd_momentum in the checkpoint, adam in this run"]);
    resume(&["--seed", "3"], &["seed: 0 in the checkpoint, 3 in this run"]);
    assert_eq!(std::fs::read(dir.join("run.last.safetensors")).unwrap(), last_bytes, "a refused resume wrote");
    // Another experiment's checkpoint (same model type): the experiment tag differs.
    hw1_fails(
        &bin,
        &dir,
        &["2a", "--data", c, "--resume", "run.last.safetensors", "--epochs", "2", "--quiet"],
        1,
        &["experiment: 1a in the checkpoint, 2a in this run"],
    );
    // The same settings resume, and an explicit --lr is a deliberate change.
    let (code, _, stderr) = hw1(
        &bin,
        &dir,
        &["1a", "--data", c, "--resume", "run.last.safetensors", "--epochs", "2", "--lr", "0.5", "--quiet"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    // NaN parameters given to --load are refused naming the tensor.
    let mut bytes = std::fs::read(dir.join("run.safetensors")).unwrap();
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(dir.join("nan.safetensors"), &bytes).unwrap();
    hw1_fails(
        &bin,
        &dir,
        &["1a", "--data", c, "--load", "nan.safetensors", "--quiet"],
        1,
        &["nan.safetensors", "holds NaN", "tensor `"],
    );
}
