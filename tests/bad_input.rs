//! Bad input gets a clear error: a corpus of malformed data files and checkpoints, written here,
//! each of which must give the right error variant with a message naming the file (and, for
//! checkpoints, the tensor and both shapes) — never a panic, never a silently wrong result. The `hw1`
//! command line's bad input is `tests/hw1_cli.rs`.

use shaped::Error;
use shaped::data::{self, Pixels};
use shaped::io;
use shaped::optim::Adam;
use shaped::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path as FsPath;

mod common;
use common::{gz, idx, mnist_dir, tmpdir};

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
// Second round (issue 16): meaning, links, compression, non-finite values

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
    let header = data::read_idx_image_header(d.join("t10k-images-idx3-ubyte.gz")).map_err(|e| e.to_string());
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
