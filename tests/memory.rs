//! Memory before sizes: inputs that claim (or are) huge — sparse files, a small gzip claiming
//! hundreds of millions of images, endless devices, checkpoints whose header promises gigabytes —
//! fail cleanly with an error naming the file, before allocating what they claim. Every case runs
//! in a child process whose address space is capped at 1 GiB (`setrlimit(RLIMIT_AS)`), so a
//! regression fails fast (an allocation failure aborts the child, which the parent reports)
//! instead of swapping. Unix only (`setrlimit`, devices).
#![cfg(unix)]

use shaped::data::{self, Pixels};
use shaped::io;
use shaped::prelude::*;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::process::Command;

mod common;
use common::hw1_binary;

/// Set (to a case name) in the child process; the file it reads is in `PATH_ENV`.
const CASE_ENV: &str = "SHAPED_MEMORY_CASE";
const PATH_ENV: &str = "SHAPED_MEMORY_PATH";
/// The address-space cap of every child.
const CAP: u64 = 1 << 30;

/// A fresh directory under cargo's target tmp dir.
fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("memory-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Caps this process's address space at [`CAP`].
fn cap_address_space() -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: CAP as libc::rlim_t, rlim_max: CAP as libc::rlim_t };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// `bytes` at the start of a sparse file of `len` bytes.
fn sparse(path: &FsPath, bytes: &[u8], len: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    f.set_len(len).unwrap();
}

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// A safetensors file start: the length field and the JSON header.
fn safetensors_header(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

/// The child: runs the case in `CASE_ENV` on the file in `PATH_ENV` under the cap and prints
/// `RESULT ok` or `RESULT err <message>`. Does nothing in a normal test run.
#[test]
fn child_runs_one_case() {
    let Some(case) = std::env::var_os(CASE_ENV) else { return };
    let path = PathBuf::from(std::env::var_os(PATH_ENV).unwrap());
    cap_address_space().unwrap();
    let r: shaped::Result<String> = match case.to_str().unwrap() {
        "idx" => data::read_idx_images(&path, Pixels::Raw).map(|r| format!("{} images", r.1)),
        "idx-header" => data::read_idx_image_header(&path).map(|r| format!("{r:?}")),
        "mnist-dir" => data::load_mnist_dir(&path, Pixels::Raw).map(|r| format!("{:?}", r.0)),
        "csv" => data::read_csv(&path, "label", 2).map(|d| format!("{d:?}")),
        "cifar" => data::read_cifar_batch(&path, Pixels::Raw).map(|d| format!("{d:?}")),
        "load" => io::load(&mut Linear::<3, 4, f32>::zeros(), &path).map(|()| "loaded".into()),
        "metadata" => io::read_metadata(&path).map(|m| format!("{m:?}")),
        other => panic!("unknown case {other}"),
    };
    match r {
        Ok(v) => println!("RESULT ok {v}"),
        Err(e) => println!("RESULT err {e}"),
    }
}

/// Runs `case` on `path` in a capped child; returns the error message (panics if the child
/// crashed, e.g. aborted on an allocation, or the read succeeded).
fn run_case(case: &str, path: &FsPath) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_runs_one_case", "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .env(PATH_ENV, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case} on {}: the child failed ({:?}): {stderr}", path.display(), out.status);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    line.strip_prefix("err ").unwrap_or_else(|| panic!("{case} on {}: accepted: {line}", path.display())).to_string()
}

#[track_caller]
fn assert_names(msg: &str, phrases: &[&str]) {
    for p in phrases {
        assert!(msg.contains(p), "lacks {p:?}: {msg}");
    }
}

#[test]
fn huge_claims_fail_cleanly_under_a_memory_cap() {
    let dir = tmpdir("claims");
    // A sparse IDX file holding one 40000×40000 image (1.6 GB, all of it really there).
    let p = dir.join("sparse-40000.idx");
    sparse(&p, &idx_header(0x0803, &[1, 40000, 40000]), 16 + 40000 * 40000);
    assert_names(&run_case("idx", &p), &["sparse-40000.idx", "1 images of 40000x40000", "1024 MiB limit"]);
    assert_names(&run_case("idx-header", &p), &["sparse-40000.idx", "1024 MiB limit"]);
    // One 16384×16384 image: under the file cap, but 1 GiB of f32 features does not fit under
    // the cap: a clean error, not an abort.
    let p = dir.join("sparse-16384.idx");
    sparse(&p, &idx_header(0x0803, &[1, 16384, 16384]), 16 + 16384 * 16384);
    assert_names(&run_case("idx", &p), &["sparse-16384.idx", "cannot allocate memory"]);
    // A 300 kB gzip file claiming 300 million 1×1 images: over the stated gzip cap.
    let p = dir.join("claims.idx.gz");
    let mut body = idx_header(0x0803, &[300_000_000, 1, 1]);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    body.extend((0..300_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&body).unwrap();
    std::fs::write(&p, e.finish().unwrap()).unwrap();
    assert_names(&run_case("idx", &p), &["claims.idx.gz", "300000000 images", "256 MiB"]);
    // The same file as the training images of a directory.
    let d = dir.join("mnist");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(&p, d.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx_header(0x0801, &[0])).unwrap();
    assert_names(&run_case("mnist-dir", &d), &["train-images-idx3-ubyte.gz", "256 MiB"]);
    // A sparse CIFAR batch of 200,000 records (615 MB).
    let p = dir.join("sparse.bin");
    sparse(&p, &[], 200_000 * 3073);
    assert_names(&run_case("cifar", &p), &["sparse.bin", "more than"]);
}

#[test]
fn endless_and_binary_csv_input_stops_early_under_a_memory_cap() {
    assert_names(&run_case("csv", FsPath::new("/dev/urandom")), &["/dev/urandom"]);
    assert_names(&run_case("csv", FsPath::new("/dev/zero")), &["/dev/zero", "line 1 is longer than 1048576 bytes"]);
    // A good header, then one endless line.
    let dir = tmpdir("csv");
    let p = dir.join("endless.csv");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(b"x0,label\n").unwrap();
    f.write_all(&vec![b'1'; 3 << 20]).unwrap();
    drop(f);
    assert_names(&run_case("csv", &p), &["endless.csv", "line 2 is longer than"]);
}

#[test]
fn checkpoints_are_read_header_first_under_a_memory_cap() {
    let dir = tmpdir("checkpoints");
    // A 1.5 GB sparse file whose header describes 48 bytes of tensors.
    let p = dir.join("sparse.safetensors");
    let head = safetensors_header(r#"{"weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]}}"#);
    sparse(&p, &head, 1_500_000_000);
    assert_names(&run_case("load", &p), &["sparse.safetensors", "does not match the file size"]);
    assert_names(&run_case("metadata", &p), &["sparse.safetensors", "does not match the file size"]);
    // A header describing 1.6 GB of tensors that are really there (sparse): the shapes are
    // refused before any value is read.
    let p = dir.join("big.safetensors");
    let n: u64 = 20_000 * 20_000 * 4;
    let json = format!(
        r#"{{"bias":{{"dtype":"F32","shape":[4],"data_offsets":[0,16]}},"weight":{{"dtype":"F32","shape":[20000,20000],"data_offsets":[16,{}]}}}}"#,
        16 + n
    );
    let head = safetensors_header(&json);
    sparse(&p, &head, head.len() as u64 + 16 + n);
    assert_names(
        &run_case("load", &p),
        &["big.safetensors", "tensor `weight` has shape [20000, 20000] in the file, but the model expects [3, 4]"],
    );
    // A length field claiming a 1 GB header.
    let p = dir.join("long-header.safetensors");
    sparse(&p, &(1u64 << 30).to_le_bytes(), 1_500_000_000);
    assert_names(&run_case("load", &p), &["long-header.safetensors", "more than the 100000000"]);
}

/// Runs `hw1 args` under the cap: it must exit 1 (not crash) with every phrase on stderr.
#[track_caller]
fn hw1_capped(bin: &FsPath, args: &[&str], phrases: &[&str]) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(args);
    // SAFETY: between fork and exec the closure only calls setrlimit (async-signal-safe) and
    // allocates nothing.
    unsafe {
        cmd.pre_exec(cap_address_space);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {:?}: {stderr}", out.status);
    assert_names(&stderr, phrases);
}

#[test]
fn hw1_fails_cleanly_on_huge_input_under_a_memory_cap() {
    let Some(bin) = hw1_binary() else { return };
    let dir = tmpdir("hw1");
    hw1_capped(&bin, &["1a", "--data", "/dev/urandom", "--quiet"], &["/dev/urandom"]);
    let d = dir.join("mnist");
    std::fs::create_dir_all(&d).unwrap();
    sparse(&d.join("train-images-idx3-ubyte"), &idx_header(0x0803, &[1, 40000, 40000]), 16 + 40000 * 40000);
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx_header(0x0801, &[0])).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx_header(0x0803, &[0, 28, 28])).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx_header(0x0801, &[0])).unwrap();
    hw1_capped(&bin, &["4a", "--data", d.to_str().unwrap(), "--quiet"], &["train-images-idx3-ubyte", "limit"]);
    let p = dir.join("sparse.safetensors");
    sparse(
        &p,
        &safetensors_header(r#"{"weight":{"dtype":"F32","shape":[20,1],"data_offsets":[0,80]}}"#),
        1_500_000_000,
    );
    hw1_capped(
        &bin,
        &["1a", "--load", p.to_str().unwrap(), "--quiet"],
        &["sparse.safetensors", "does not match the file size"],
    );
}
