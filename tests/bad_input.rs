//! Bad input gets a clear error: a corpus of malformed data files and checkpoints, written here,
//! each of which must give the right error variant with a message naming the file (and, for
//! checkpoints, the tensor and both shapes) — never a panic, never a silently wrong result. And the
//! `hw1` example exits non-zero with the message.

use shaped::Error;
use shaped::data::{self, Pixels};
use shaped::io;
use shaped::optim::Adam;
use shaped::prelude::*;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path as FsPath, PathBuf};

/// A fresh directory under cargo's target tmp dir.
fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-input-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn cifar_record(label: u8) -> Vec<u8> {
    let mut v = vec![label];
    v.extend((0..3072u32).map(|i| i as u8));
    v
}

/// Which error variant a case must produce.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Data,
    Checkpoint,
}

/// Runs `f` and checks it returns the error `kind` whose message contains every phrase; a panic is
/// reported as a failure of this case, not of the whole corpus.
fn check<T: std::fmt::Debug>(
    case: &str,
    kind: Kind,
    phrases: &[&str],
    f: impl FnOnce() -> shaped::Result<T>,
) -> Result<(), String> {
    let r = catch_unwind(AssertUnwindSafe(f)).map_err(|_| format!("{case}: PANICKED"))?;
    let e = match r {
        Ok(v) => return Err(format!("{case}: expected an error, got {v:?}")),
        Err(e) => e,
    };
    let got = match &e {
        Error::Data { .. } => Kind::Data,
        Error::Checkpoint { .. } => Kind::Checkpoint,
        _ => return Err(format!("{case}: expected Error::{kind:?}, got {e:?}")),
    };
    if got != kind {
        return Err(format!("{case}: expected Error::{kind:?}, got {e:?}"));
    }
    let msg = e.to_string();
    for p in phrases {
        if !msg.contains(p) {
            return Err(format!("{case}: the message lacks {p:?}: {msg}"));
        }
    }
    Ok(())
}

/// Collects the failures of a corpus and reports them all at once.
#[track_caller]
fn report(results: Vec<Result<(), String>>, at_least: usize) {
    assert!(results.len() >= at_least, "only {} cases", results.len());
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Data files

#[derive(Clone, Copy)]
enum Reader {
    Images,
    Labels,
    Csv,
    Cifar,
    /// A (Fashion-)MNIST directory: the bytes are the training labels, the rest is valid.
    MnistLabels,
}

fn read(reader: Reader, p: &FsPath) -> shaped::Result<String> {
    match reader {
        Reader::Images => data::read_idx_images(p, Pixels::Raw).map(|r| format!("{} images", r.1)),
        Reader::Labels => data::read_idx_labels(p).map(|l| format!("{} labels", l.len())),
        Reader::Csv => data::read_csv(p, "label", 3).map(|d| format!("{d:?}")),
        Reader::Cifar => data::read_cifar_batch(p, Pixels::Raw).map(|d| format!("{d:?}")),
        Reader::MnistLabels => data::load_mnist_dir(p.parent().unwrap(), Pixels::Raw).map(|d| format!("{d:?}")),
    }
}

#[test]
fn malformed_data_files_are_data_errors_naming_the_file() {
    let dir = tmpdir("data");
    let images = idx(0x0803, &[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let labels = idx(0x0801, &[2], &[1, 2]);
    let h = "x0,x1,label\n";
    // (file name, reader, content, phrases besides the file name)
    let cases: Vec<(&str, Reader, Vec<u8>, Vec<&str>)> = vec![
        // Wrong magic number, plain and gzip.
        ("magic.idx", Reader::Images, b"\x89PNG\r\n\x1a\n not idx".to_vec(), vec!["wrong magic number", "0x89504E47"]),
        ("magic.idx.gz", Reader::Images, gz(b"GIF89a......"), vec!["wrong magic number"]),
        // Wrong rank: labels read as images and images as labels.
        ("rank1.idx", Reader::Images, labels.clone(), vec!["wrong rank 1", "0x00000803"]),
        ("rank3.idx", Reader::Labels, images.clone(), vec!["wrong rank 3", "0x00000801"]),
        ("rank4.idx.gz", Reader::Images, gz(&idx(0x0804, &[1, 1, 1, 1], &[0])), vec!["wrong rank 4"]),
        // Header counts that disagree with the file length.
        ("count.idx", Reader::Images, idx(0x0803, &[5, 2, 2], &[0; 8]), vec!["5 images of 2x2 = 20 bytes", "only 8"]),
        ("count-labels.idx", Reader::Labels, idx(0x0801, &[1], &[1, 2, 3]), vec!["trailing bytes", "1 labels"]),
        ("count.idx.gz", Reader::Images, gz(&idx(0x0803, &[3, 2, 2], &[0; 20])), vec!["trailing bytes", "gzip"]),
        ("huge.idx", Reader::Images, idx(0x0803, &[u32::MAX, 28, 28], &[0; 4]), vec!["truncated", "4294967295 images"]),
        // Truncated data and headers.
        ("cut.idx", Reader::Images, images[..images.len() - 3].to_vec(), vec!["truncated", "only 5 bytes"]),
        ("cut-header.idx", Reader::Labels, labels[..6].to_vec(), vec!["truncated header"]),
        ("cut.idx.gz", Reader::Images, gz(&images)[..20].to_vec(), vec!["corrupt or truncated gzip data"]),
        ("cut-content.idx.gz", Reader::Labels, gz(&labels[..9]), vec!["truncated", "2 labels"]),
        // Label out of range (IDX in a directory, CIFAR, CSV).
        (
            "train-labels-idx1-ubyte",
            Reader::MnistLabels,
            idx(0x0801, &[2], &[3, 12]),
            vec!["label 12 at index 1", "out of range"],
        ),
        (
            "label.bin",
            Reader::Cifar,
            [cifar_record(3), cifar_record(10)].concat(),
            vec!["record 1", "label 10 is out of range"],
        ),
        (
            "label.csv",
            Reader::Csv,
            format!("{h}1,2,0\n1,2,3\n").into_bytes(),
            vec!["line 3", "bad label \"3\"", "out of range"],
        ),
        // CIFAR truncated.
        ("cut.bin", Reader::Cifar, cifar_record(1)[..3000].to_vec(), vec!["file length 3000 bytes", "3073-byte"]),
        // Ragged and non-numeric CSV rows, with their line numbers.
        (
            "ragged.csv",
            Reader::Csv,
            format!("{h}1,2,0\n\n1,2\n").into_bytes(),
            vec!["line 4", "ragged", "2 fields", "3 columns"],
        ),
        ("long-row.csv", Reader::Csv, format!("{h}1,2,0,5\n").into_bytes(), vec!["line 2", "ragged", "4 fields"]),
        (
            "text.csv",
            Reader::Csv,
            format!("{h}1,2,0\n0.5,two,1\n").into_bytes(),
            vec!["line 3", "\"two\" is not a number"],
        ),
        ("empty-field.csv", Reader::Csv, format!("{h}1,,0\n").into_bytes(), vec!["line 2", "column 2", "not a number"]),
        // NaN and infinite features.
        ("nan.csv", Reader::Csv, format!("{h}1,2,0\nnan,2,1\n").into_bytes(), vec!["line 3", "NaN", "must be finite"]),
        ("inf.csv", Reader::Csv, format!("{h}inf,2,0\n").into_bytes(), vec!["line 2", "infinite"]),
        ("overflow.csv", Reader::Csv, format!("{h}1,-4e38,0\n").into_bytes(), vec!["line 2", "too large for f32"]),
        // Not a data file at all.
        ("binary.csv", Reader::Csv, vec![0xff, 0xfe, 0, 1, 2], vec!["not UTF-8"]),
        ("empty.csv", Reader::Csv, Vec::new(), vec!["empty file"]),
        // Other compression formats name the format found, not a wrong magic number alone.
        (
            "xz.idx",
            Reader::Images,
            b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46".to_vec(),
            vec!["xz-compressed", "decompress"],
        ),
        ("twice.idx.gz", Reader::Images, gz(&gz(&images)), vec!["compressed twice", "gzip-compressed"]),
        ("zstd.idx", Reader::Labels, b"\x28\xb5\x2f\xfd\x00\x58\x61\x00".to_vec(), vec!["zstd-compressed"]),
        ("bz2.csv", Reader::Csv, b"BZh91AY&SY\x00\x01".to_vec(), vec!["bzip2-compressed", "not CSV text"]),
        ("gz.csv", Reader::Csv, gz(format!("{h}1,2,0\n").as_bytes()), vec!["gzip-compressed", "not CSV text"]),
        (
            "zip.bin",
            Reader::Cifar,
            [b"PK\x03\x04".to_vec(), cifar_record(1)[4..].to_vec()].concat(),
            vec!["zip archive"],
        ),
        // A CSV line longer than the limit stops the reader at that line.
        (
            "long-line.csv",
            Reader::Csv,
            format!("{h}{}\n1,2,0\n", "1".repeat(data::csv::MAX_CSV_LINE + 10)).into_bytes(),
            vec!["line 2 is longer than 1048576 bytes"],
        ),
        // Binary garbage after a good header fails at its own line.
        (
            "garbage.csv",
            Reader::Csv,
            [h.as_bytes(), b"1,2,0\n\x00\xff\xfe\x80\n"].concat(),
            vec!["not UTF-8", "line 3"],
        ),
        // Headers over the stated caps, refused before anything is read.
        (
            "over-cap.idx",
            Reader::Images,
            idx(0x0803, &[2, 32768, 32768], &[0; 16]),
            vec!["2 images of 32768x32768 = 2147483648 bytes", "only 16"],
        ),
    ];
    let mut results = Vec::new();
    for (name, reader, bytes, phrases) in cases {
        let p = if matches!(reader, Reader::MnistLabels) {
            let d = dir.join("mnist");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("train-images-idx3-ubyte"), &images).unwrap();
            std::fs::write(d.join("t10k-images-idx3-ubyte"), &images).unwrap();
            std::fs::write(d.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
            d.join(name)
        } else {
            dir.join(name)
        };
        std::fs::write(&p, &bytes).unwrap();
        let mut all = vec![name];
        all.extend(phrases);
        results.push(check(name, Kind::Data, &all, || read(reader, &p)));
    }
    report(results, 30);
}

#[test]
fn images_and_labels_of_different_counts() {
    let dir = tmpdir("counts");
    let w = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    w("train-images-idx3-ubyte.gz", &gz(&idx(0x0803, &[3, 1, 2], &[0; 6])));
    w("train-labels-idx1-ubyte", &idx(0x0801, &[2], &[1, 2]));
    w("t10k-images-idx3-ubyte", &idx(0x0803, &[1, 1, 2], &[0; 2]));
    w("t10k-labels-idx1-ubyte", &idx(0x0801, &[1], &[0]));
    let r = check(
        "count mismatch",
        Kind::Data,
        &[
            "train-labels-idx1-ubyte",
            "image/label count mismatch",
            "2 labels",
            "train-images-idx3-ubyte.gz",
            "3 images",
        ],
        || data::load_mnist_dir(&dir, Pixels::Raw),
    );
    report(vec![r], 1);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

#[derive(Sequential)]
#[sequential(input = (3,))]
struct Net {
    fc1: Linear<3, 4>,
    bn: BatchNorm1d<4>,
    relu: ReLU,
    fc2: Linear<4, 2>,
}

/// `Net` without `fc2`: loading its file into `Net` misses tensors.
#[derive(Sequential)]
#[sequential(input = (3,))]
struct Head {
    fc1: Linear<3, 4>,
    bn: BatchNorm1d<4>,
    relu: ReLU,
}

/// `Net` with one more layer: loading its file into `Net` finds extra tensors.
#[derive(Sequential)]
#[sequential(input = (3,))]
struct Longer {
    fc1: Linear<3, 4>,
    bn: BatchNorm1d<4>,
    relu: ReLU,
    fc2: Linear<4, 2>,
    fc3: Linear<2, 2>,
}

/// `Net` with a wider output.
#[derive(Sequential)]
#[sequential(input = (3,))]
struct Wide {
    fc1: Linear<3, 4>,
    bn: BatchNorm1d<4>,
    relu: ReLU,
    fc2: Linear<4, 5>,
}

/// `Net` in f64.
#[derive(Sequential)]
#[sequential(input = (3,), elem = f64)]
struct Net64 {
    fc1: Linear<3, 4, f64>,
    bn: BatchNorm1d<4, f64>,
    relu: ReLU,
    fc2: Linear<4, 2, f64>,
}

/// Every parameter and buffer value, as bits.
fn values<M: Module<f32>>(m: &M) -> Vec<u32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend(d.iter().map(|v| v.to_bits())));
    out
}

fn init<M: Module<f32>>(seed: u64) -> M {
    M::init(&mut rand::rngs::StdRng::seed_from_u64(seed), Init::He)
}

/// A safetensors file from a header (JSON) and data bytes.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A safetensors file written by hand: `(name, dtype, shape, values)` (the values' f32 bytes are
/// written whatever the dtype says) and string metadata.
fn craft(tensors: &[(String, &str, Vec<usize>, Vec<f32>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    if !meta.is_empty() {
        let kv: Vec<String> = meta.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
        entries.push(format!("\"__metadata__\":{{{}}}", kv.join(",")));
    }
    for (name, dtype, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        entries.push(format!(
            "{name:?}:{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    }
    safetensors(&format!("{{{}}}", entries.join(",")), &data)
}

#[test]
fn malformed_checkpoints_are_checkpoint_errors_naming_the_tensor() {
    let dir = tmpdir("ckpt");
    let save = |name: &str, f: &dyn Fn(&FsPath) -> shaped::Result<()>| {
        let p = dir.join(name);
        f(&p).unwrap();
        p
    };
    let good = save("good.safetensors", &|p| io::save(&init::<Net>(1), p));
    let good_bytes = std::fs::read(&good).unwrap();
    let resumable = save("resumable.safetensors", &|p| io::save_checkpoint(&init::<Net>(1), &Adam::new(), &[], p));
    let head = save("head.safetensors", &|p| io::save(&init::<Head>(2), p));
    let longer = save("longer.safetensors", &|p| io::save(&init::<Longer>(3), p));
    let wide = save("wide.safetensors", &|p| io::save(&init::<Wide>(4), p));
    let f64_file =
        save("f64.safetensors", &|p| io::save(&Net64::init(&mut rand::rngs::StdRng::seed_from_u64(5), Init::He), p));
    let w = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cut_header = w("cut-header.safetensors", &good_bytes[..good_bytes.len() / 10]);
    let cut_data = w("cut-data.safetensors", &good_bytes[..good_bytes.len() - 7]);
    let empty = w("empty.safetensors", b"");
    let zip = w("zip.safetensors", b"PK\x03\x04\x14\x00\x00\x00\x08\x00 a zip archive, not safetensors");
    let huge_len = w("huge-len.safetensors", &u64::MAX.to_le_bytes());
    let not_json = w("not-json.safetensors", &safetensors("{this is not json}", &[]));
    let bad_offsets = w(
        "offsets.safetensors",
        &safetensors(r#"{"fc1.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,4800]}}"#, &[0; 48]),
    );
    let shape_vs_bytes = w(
        "shape-bytes.safetensors",
        &safetensors(r#"{"fc1.weight":{"dtype":"F32","shape":[3,5],"data_offsets":[0,48]}}"#, &[0; 48]),
    );
    // Net's tensors, but fc2.bias as I32.
    let net_tensors = |bias_dtype: &'static str| {
        let mut out = Vec::new();
        init::<Net>(6).visit_params(&ParamPath::ROOT, &mut |info, d| {
            let name = info.path.to_string();
            let dtype = if name == "fc2.bias" { bias_dtype } else { "F32" };
            out.push((name, dtype, info.shape.to_vec(), d.to_vec()));
        });
        out
    };
    let int_dtype = w("i32.safetensors", &craft(&net_tensors("I32"), &[]));
    // Adam state for Net with `optim.m.fc1.weight` of 3 values instead of 12.
    let short_state = {
        let mut t = net_tensors("F32");
        init::<Net>(6).visit_params(&ParamPath::ROOT, &mut |info, d| {
            if info.kind.trainable() {
                for k in ["m", "v"] {
                    let n = if k == "m" && info.path.to_string() == "fc1.weight" { 3 } else { d.len() };
                    t.push((format!("optim.{k}.{}", info.path), "F32", vec![n], vec![0.0; n]));
                }
            }
        });
        w("short-state.safetensors", &craft(&t, &[("shaped.optimizer", "adam"), ("shaped.optimizer_steps", "1")]))
    };

    type Case<'a> = (&'a str, &'a FsPath, Vec<&'a str>);
    let plain: Vec<Case> = vec![
        ("truncated header", &cut_header, vec!["truncated"]),
        ("truncated data", &cut_data, vec!["truncated"]),
        ("empty file", &empty, vec!["0 bytes long", "too short"]),
        ("zip archive", &zip, vec!["not a safetensors file"]),
        ("header length past the end", &huge_len, vec!["truncated or not a safetensors file"]),
        ("header not JSON", &not_json, vec!["not a valid safetensors file"]),
        ("offsets past the end", &bad_offsets, vec!["not a valid safetensors file"]),
        ("shape and byte count disagree", &shape_vs_bytes, vec!["not a valid safetensors file"]),
        (
            "missing tensors",
            &head,
            vec!["tensor `fc2.weight` (shape [4, 2]) is missing", "tensor `fc2.bias` (shape [2]) is missing"],
        ),
        (
            "extra tensors",
            &longer,
            vec!["unexpected tensor `fc3.weight` (shape [2, 2])", "unexpected tensor `fc3.bias`"],
        ),
        (
            "wrong shape",
            &wide,
            vec![
                "tensor `fc2.weight` has shape [4, 5] in the file, but the model expects [4, 2]",
                "`fc2.bias` has shape [5]",
            ],
        ),
        ("wrong dtype", &f64_file, vec!["tensor `fc1.weight` has dtype F64 in the file, but the model expects F32"]),
        ("integer tensor", &int_dtype, vec!["tensor `fc2.bias` has dtype I32"]),
        ("no optimizer state", &good, vec!["no optimizer state"]),
    ];
    let mut results = Vec::new();
    let reference = values(&init::<Net>(9));
    for (case, path, phrases) in &plain {
        let file = path.file_name().unwrap().to_str().unwrap();
        let mut all = vec![file];
        all.extend(phrases.iter().copied());
        let mut m = init::<Net>(9);
        if *case == "no optimizer state" {
            let mut opt = Adam::new();
            results.push(check(case, Kind::Checkpoint, &all, || io::load_checkpoint(&mut m, &mut opt, path)));
        } else {
            results.push(check(case, Kind::Checkpoint, &all, || io::load(&mut m, path)));
            // The resume path reads the same way.
            let mut opt = Adam::new();
            let mut m2 = init::<Net>(9);
            results.push(check(case, Kind::Checkpoint, &all, || io::load_checkpoint(&mut m2, &mut opt, path)));
            if values(&m2) != reference {
                results.push(Err(format!("{case}: a failed load_checkpoint changed the model")));
            }
        }
        if values(&m) != reference {
            results.push(Err(format!("{case}: a failed load changed the model")));
        }
    }

    // Optimizer state of the wrong rule, and of the wrong length.
    let mut m = init::<Net>(9);
    let mut mom = SgdMomentum::new();
    results.push(check(
        "wrong optimizer",
        Kind::Checkpoint,
        &["resumable.safetensors", "`adam`", "`sgd_momentum`"],
        || io::load_checkpoint(&mut m, &mut mom, &resumable),
    ));
    let mut opt = Adam::new();
    results.push(check(
        "optimizer state of the wrong shape",
        Kind::Checkpoint,
        &["short-state.safetensors", "`optim.m.fc1.weight` has shape [3] in the file, but the model expects [12]"],
        || io::load_checkpoint(&mut m, &mut opt, &short_state),
    ));
    // Good files still load.
    io::load(&mut m, &good).unwrap();
    assert_eq!(values(&m), values(&init::<Net>(1)));
    report(results, 20);
}

/// Every prefix and many single-byte corruptions of a real checkpoint: errors, never panics.
#[test]
fn corrupted_checkpoints_never_panic() {
    let dir = tmpdir("ckpt-mutations");
    let p = dir.join("net.safetensors");
    io::save_checkpoint(&init::<Net>(1), &Adam::new(), &[("epoch".into(), "3".into())], &p).unwrap();
    let good = std::fs::read(&p).unwrap();
    let q = dir.join("mutant.safetensors");
    let mut panics = Vec::new();
    let mut attempt = |bytes: &[u8], what: String| {
        std::fs::write(&q, bytes).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut m = Net::zeros();
            let mut opt = Adam::new();
            (io::load(&mut m, &q).is_ok(), io::load_checkpoint(&mut m, &mut opt, &q).is_ok())
        }));
        match r {
            Err(_) => panics.push(what),
            Ok((plain, full)) => {
                assert!(plain == full || !full, "{what}: a file load_checkpoint accepts, load rejects")
            }
        }
    };
    for cut in 0..good.len() {
        attempt(&good[..cut], format!("cut at {cut}"));
    }
    for i in (0..good.len()).step_by(3) {
        for x in [0x01u8, 0x80, 0xff] {
            let mut m = good.clone();
            m[i] ^= x;
            attempt(&m, format!("byte {i} ^ {x:#x}"));
        }
    }
    assert!(panics.is_empty(), "panicked on: {panics:?}");
}

// ---------------------------------------------------------------------------------------------
// The hw1 example

/// The `hw1` example binary that `cargo test` builds (into `target/<profile>/examples/`), if it is
/// there and newer than every source file; `None` (and the test is skipped with a note) otherwise,
/// e.g. under `cargo test --test bad_input`, which builds no examples. Cargo cannot be run from
/// here: it holds the build-directory lock while the tests run.
fn hw1_binary() -> Option<PathBuf> {
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
// Second round (issue 16): meaning, links, compression, non-finite values

/// `n` 28×28 images (pixel `i` of image `k` is `(k + i) % 256`) and their labels `k % 10`.
fn mnist_split(n: u32, rows: u32, cols: u32) -> (Vec<u8>, Vec<u8>) {
    let px: Vec<u8> = (0..n * rows * cols).map(|i| (i / (rows * cols) + i) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|k| (k % 10) as u8).collect();
    (idx(0x0803, &[n, rows, cols], &px), idx(0x0801, &[n], &labels))
}

/// A (Fashion-)MNIST directory: `train` training images of `train_geometry`, `test` test images
/// of `test_geometry`.
fn mnist_dir(dir: &FsPath, train: u32, train_geometry: (u32, u32), test: u32, test_geometry: (u32, u32)) {
    std::fs::create_dir_all(dir).unwrap();
    let (ti, tl) = mnist_split(train, train_geometry.0, train_geometry.1);
    let (si, sl) = mnist_split(test, test_geometry.0, test_geometry.1);
    std::fs::write(dir.join("train-images-idx3-ubyte"), ti).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(&tl)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&si)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), sl).unwrap();
}

#[test]
fn geometry_is_checked_not_only_sizes() {
    let dir = tmpdir("geometry");
    // 14×56 test images beside 28×28 training images: same size, other meaning.
    let d = dir.join("mixed");
    mnist_dir(&d, 20, (28, 28), 5, (14, 56));
    let r = check("test geometry", Kind::Data, &["t10k-images-idx3-ubyte.gz", "14x56", "28x28"], || {
        data::load_mnist_dir(&d, Pixels::Raw).map(|_| ())
    });
    // The header alone tells the geometry, without reading the pixels.
    let header = data::read_idx_image_header(&d.join("t10k-images-idx3-ubyte.gz")).map_err(|e| e.to_string());
    let lying = dir.join("lying.idx");
    std::fs::write(&lying, idx(0x0803, &[1000, 28, 28], &[0; 10])).unwrap();
    let lie = check("header-only read of a lying file", Kind::Data, &["lying.idx", "truncated"], || {
        data::read_idx_image_header(&lying)
    });
    report(vec![r, lie], 2);
    assert_eq!(header, Ok((5, 14, 56)));
}

#[test]
fn symbolic_link_loops_are_named_not_reported_missing() {
    let dir = tmpdir("loops");
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = data::read_csv(&a, "label", 2).unwrap_err().to_string();
    assert!(err.contains("a.csv") && err.contains("symbolic link loop"), "{err}");
    // In an MNIST directory: the looping file is named, not "missing".
    let d = dir.join("mnist");
    mnist_dir(&d, 20, (28, 28), 5, (28, 28));
    let images = d.join("train-images-idx3-ubyte");
    std::fs::remove_file(&images).unwrap();
    std::os::unix::fs::symlink(&images, &images).unwrap();
    let err = data::load_mnist_dir(&d, Pixels::Raw).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte") && err.contains("symbolic link loop"), "{err}");
    assert!(!err.contains("missing"), "{err}");
    let err = io::load(&mut init::<Net>(1), &a).unwrap_err().to_string();
    assert!(err.contains("a.csv") && err.contains("symbolic link loop"), "{err}");
}

#[test]
fn compressed_and_non_finite_checkpoints_are_named() {
    let dir = tmpdir("ckpt-round2");
    let good = dir.join("good.safetensors");
    io::save(&init::<Net>(1), &good).unwrap();
    let xz = dir.join("model.safetensors.xz");
    std::fs::write(&xz, b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46\x02\x00\x21\x01").unwrap();
    let gzipped = dir.join("model.safetensors.gz");
    std::fs::write(&gzipped, gz(&std::fs::read(&good).unwrap())).unwrap();
    let mut nan = init::<Net>(1);
    nan.visit_params_mut(&ParamPath::ROOT, &mut |info, d| {
        if info.path.to_string() == "fc1.bias" {
            d[2] = f32::NEG_INFINITY;
        }
    });
    let nan_file = dir.join("nan.safetensors");
    io::save(&nan, &nan_file).unwrap();
    let mut m = init::<Net>(9);
    let reference = values(&m);
    let mut opt = Adam::new();
    let results = vec![
        check("xz", Kind::Checkpoint, &["model.safetensors.xz", "xz-compressed", "not a safetensors file"], || {
            io::load(&mut m, &xz)
        }),
        check("gzip", Kind::Checkpoint, &["model.safetensors.gz", "gzip-compressed"], || io::load(&mut m, &gzipped)),
        check("non-finite", Kind::Checkpoint, &["nan.safetensors", "tensor `fc1.bias` holds -inf at index 2"], || {
            io::load(&mut m, &nan_file)
        }),
        check("non-finite, resume path", Kind::Checkpoint, &["nan.safetensors", "`fc1.bias`"], || {
            io::load_checkpoint(&mut m, &mut opt, &nan_file)
        }),
    ];
    report(results, 4);
    assert_eq!(values(&m), reference, "a refused load changed the model");
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
