//! Helpers shared by the integration tests that include this module (`mod common;`).
#![allow(dead_code)] // each test crate uses some of them

use rand::Rng;
use rand::rngs::StdRng;
use shaped::shape::Shape;
use shaped::tensor::Tensor;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};

/// A fresh directory under cargo's target tmp dir.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-input-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `bytes` gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An IDX file: magic, big-endian dimensions, then `data`.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The `hw1` example binary that `cargo test` builds (into `target/<profile>/examples/`), if it is
/// there and newer than every source file; `None` (and the test is skipped with a note) otherwise,
/// e.g. under `cargo test --test bad_input`, which builds no examples. Cargo cannot be run from
/// here: it holds the build-directory lock while the tests run.
pub fn hw1_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join("examples").join(format!("hw1{}", std::env::consts::EXE_SUFFIX));
    let Some(built) = std::fs::metadata(&bin).and_then(|m| m.modified()).ok() else {
        eprintln!("skipping the hw1 check: {} is not built (plain `cargo test` builds it)", bin.display());
        return None;
    };
    let root = FsPath::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack =
        vec![root.join("src"), root.join("macros/src"), root.join("examples/hw1.rs"), root.join("Cargo.toml")];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).ok()?.filter_map(|e| e.ok().map(|e| e.path())));
        } else if let Ok(t) = meta.modified() {
            newest = newest.max(t);
        }
    }
    if built < newest {
        eprintln!(
            "skipping the hw1 check: {} is older than the sources (run `cargo test` without --test)",
            bin.display()
        );
        return None;
    }
    Some(bin)
}

/// `n` 28×28 images (pixel `i` of image `k` is `(k + i) % 256`) and their labels `k % 10`.
pub fn mnist_split(n: u32, rows: u32, cols: u32) -> (Vec<u8>, Vec<u8>) {
    let px: Vec<u8> = (0..n * rows * cols).map(|i| (i / (rows * cols) + i) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|k| (k % 10) as u8).collect();
    (idx(0x0803, &[n, rows, cols], &px), idx(0x0801, &[n], &labels))
}

/// A (Fashion-)MNIST directory: `train` training images of `train_geometry`, `test` test images
/// of `test_geometry`.
pub fn mnist_dir(dir: &FsPath, train: u32, train_geometry: (u32, u32), test: u32, test_geometry: (u32, u32)) {
    std::fs::create_dir_all(dir).unwrap();
    let (ti, tl) = mnist_split(train, train_geometry.0, train_geometry.1);
    let (si, sl) = mnist_split(test, test_geometry.0, test_geometry.1);
    std::fs::write(dir.join("train-images-idx3-ubyte"), ti).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&tl)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&si)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), sl).unwrap();
}

/// `n` evenly spaced values from `a` to `b`.
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

/// Elementwise `|got − want| ≤ tol`, naming the first element that is not.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w} (|diff| {:e} > {tol:e})", (g - w).abs());
    }
}

/// A tensor of uniform values in [−1, 1).
pub fn uniform<S: Shape>(rng: &mut StdRng, batch: S::Batch) -> Tensor<S, f64> {
    let mut t = Tensor::<S, f64>::zeros(batch);
    for v in t.as_mut_slice() {
        *v = rng.random_range(-1.0..1.0);
    }
    t
}
