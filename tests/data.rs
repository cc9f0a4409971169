//! Tests of `shaped::data`: round trips through small IDX (plain and gzip), CSV and CIFAR-10 files,
//! a corpus of malformed files (each must give `Error::Data` naming the file and the problem, never
//! a panic). The `Dataset` operations, shuffling and the synthetic sets are `tests/dataset.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use shaped::data::*;
use shaped::error::Error;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh, empty directory under the system temp dir, unique to this process and `name`;
/// removed when dropped.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("shaped-data-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = idx_header(0x0803, &[count, rows, cols]);
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = idx_header(0x0801, &[labels.len() as u32]);
    v.extend_from_slice(labels);
    v
}

/// One CIFAR-10 record: label and 3072 pixels derived from `seed`.
fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
    let mut v = vec![label];
    v.extend((0..3072u32).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    v
}

/// Asserts `r` is an `Error::Data` whose message names `file` and contains every phrase.
#[track_caller]
fn assert_data_err<T: std::fmt::Debug>(r: shaped::error::Result<T>, file: &str, phrases: &[&str]) {
    match r {
        Err(e @ Error::Data { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "message does not name {file:?}: {msg}");
            for p in phrases {
                assert!(msg.contains(p), "message for {file:?} lacks {p:?}: {msg}");
            }
        }
        Err(e) => panic!("{file}: expected Error::Data, got {e:?}"),
        Ok(v) => panic!("{file}: expected an error, got {v:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// IDX

#[test]
fn idx_round_trip_plain_and_gzip() {
    let dir = tmpdir("idx-round-trip");
    let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| (i * 11) as u8).collect();
    let raw = idx_images(3, 2, 4, &pixels);
    let labels = [3u8, 0, 9];
    let plain = write(&dir, "images-idx3-ubyte", &raw);
    let gzipped = write(&dir, "images-idx3-ubyte.gz", &gz(&raw));
    // Gzip is detected from the content, not the name.
    let disguised = write(&dir, "images.bin", &gz(&raw));
    let lab_plain = write(&dir, "labels-idx1-ubyte", &idx_labels(&labels));
    let lab_gz = write(&dir, "labels.dat", &gz(&idx_labels(&labels)));

    let expected_raw: Vec<f32> = pixels.iter().map(|&b| f32::from(b)).collect();
    for p in [&plain, &gzipped, &disguised] {
        let (x, count, rows, cols) = read_idx_images(p, Pixels::Raw).unwrap();
        assert_eq!((count, rows, cols), (3, 2, 4));
        assert_eq!(x, expected_raw);
        let (x, ..) = read_idx_images(p, Pixels::Unit).unwrap();
        assert_eq!(x.len(), 24);
        for (u, &b) in x.iter().zip(&pixels) {
            assert_eq!(*u, f32::from(b) / 255.0);
        }
    }
    assert_eq!(read_idx_labels(&lab_plain).unwrap(), labels);
    assert_eq!(read_idx_labels(&lab_gz).unwrap(), labels);
    assert_eq!(Pixels::default(), Pixels::Raw);

    // Zero images is a valid (empty) file.
    let empty = write(&dir, "empty-images", &idx_images(0, 28, 28, &[]));
    let (x, count, rows, cols) = read_idx_images(&empty, Pixels::Raw).unwrap();
    assert_eq!((x.len(), count, rows, cols), (0, 0, 28, 28));
}

#[test]
fn mnist_dir_plain_and_gzip_files() {
    let dir = tmpdir("mnist-dir");
    let train_px: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
    let test_px: Vec<u8> = (0..2 * 3 * 3).map(|i| 200 + i as u8).collect();
    write(&dir, "train-images-idx3-ubyte.gz", &gz(&idx_images(4, 3, 3, &train_px)));
    write(&dir, "train-labels-idx1-ubyte", &idx_labels(&[1, 2, 3, 9]));
    write(&dir, "t10k-images-idx3-ubyte", &idx_images(2, 3, 3, &test_px));
    write(&dir, "t10k-labels-idx1-ubyte.gz", &gz(&idx_labels(&[0, 5])));
    let (train, test) = load_mnist_dir(&dir, Pixels::Raw).unwrap();
    assert_eq!(train.len(), 4);
    assert_eq!(test.len(), 2);
    assert_eq!(train.sample_dims(), &[1, 3, 3]);
    assert_eq!(train.sample_len(), 9);
    assert_eq!(train.classes(), 10);
    assert_eq!(train.labels(), &[1, 2, 3, 9]);
    assert_eq!(test.labels(), &[0, 5]);
    assert_eq!(train.sample(1), &[9., 10., 11., 12., 13., 14., 15., 16., 17.]);
    assert_eq!(test.sample(0)[0], 200.0);

    let (train_u, _) = load_mnist_dir(&dir, Pixels::Unit).unwrap();
    assert_eq!(train_u.sample(1)[0], 9.0 / 255.0);

    // A missing file: the error names the directory and the file.
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let dir_name = dir.file_name().unwrap().to_str().unwrap();
    assert_data_err(load_mnist_dir(&dir, Pixels::Raw), dir_name, &["missing", "t10k-labels-idx1-ubyte"]);
    assert_data_err(
        load_mnist_dir(dir.join("nope"), Pixels::Raw),
        "nope",
        &["not a directory", "train-images-idx3-ubyte"],
    );
}

#[test]
fn fashion_mnist_dir_points_at_a_loadable_place() {
    // Whatever the machine has: if a directory is reported, it holds the four files.
    assert_eq!(FASHION_MNIST_DEBIAN_DIR, "/usr/share/datasets/fashion-mnist");
    if std::env::var_os("FASHION_MNIST_DIR").is_none()
        && let Some(dir) = fashion_mnist_dir()
    {
        assert_eq!(dir, Path::new(FASHION_MNIST_DEBIAN_DIR));
        for f in ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            assert!(dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_round_trip() {
    let dir = tmpdir("csv");
    // Label in the middle, CRLF line endings, spaces, an integral float label, a trailing blank line.
    let text = "a, label ,b\r\n0.5,1,-2\r\n1e-1, 0.0 ,3\r\n\r\n7,1.0,8\r\n\r\n";
    let p = write(&dir, "small.csv", text.as_bytes());
    let ds = read_csv(&p, "label", 2).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.sample_dims(), &[2]);
    assert_eq!(ds.classes(), 2);
    assert_eq!(ds.labels(), &[1, 0, 1]);
    assert_eq!(ds.features(), &[0.5, -2.0, 0.1, 3.0, 7.0, 8.0]);

    // The homework layout: x0..x19 then label.
    let mut text = (0..20).map(|i| format!("x{i}")).collect::<Vec<_>>().join(",") + ",label\n";
    for r in 0..5 {
        let row: Vec<String> = (0..20).map(|i| format!("{}", (r * 20 + i) as f64 / 100.0)).collect();
        text += &format!("{},{}\n", row.join(","), r % 2);
    }
    let p = write(&dir, "hw.csv", text.as_bytes());
    let ds = read_csv(&p, "label", 2).unwrap();
    assert_eq!(ds.len(), 5);
    assert_eq!(ds.sample_len(), 20);
    assert_eq!(ds.sample(2)[3], 0.43);
    assert_eq!(ds.labels(), &[0, 1, 0, 1, 0]);
}

#[test]
fn binary20_splits_sizes() {
    let ds = binary20(7, 1000);
    let first = ds.sample(500).to_vec();
    let last = ds.sample(999).to_vec();
    let (train, val, test) = binary20_splits(ds).unwrap();
    assert_eq!((train.len(), val.len(), test.len()), (500, 250, 250));
    assert_eq!(val.sample(0), &first[..]);
    assert_eq!(test.sample(249), &last[..]);
    assert!(matches!(binary20_splits(binary20(7, 999)), Err(Error::Shape(_))));
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10

#[test]
fn cifar_round_trip_and_dir() {
    let dir = tmpdir("cifar");
    let mut bytes = cifar_record(3, 1);
    bytes.extend(cifar_record(9, 2));
    let p = write(&dir, "batch.bin", &bytes);
    let ds = read_cifar_batch(&p, Pixels::Raw).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.sample_dims(), &[3, 32, 32]);
    assert_eq!(ds.classes(), 10);
    assert_eq!(ds.labels(), &[3, 9]);
    let expected: Vec<f32> = bytes[3074..].iter().map(|&b| f32::from(b)).collect();
    assert_eq!(ds.sample(1), &expected[..]);
    let unit = read_cifar_batch(&p, Pixels::Unit).unwrap();
    assert_eq!(unit.sample(1)[5], expected[5] / 255.0);

    // The files inside the archive's subdirectory.
    let sub = "cifar-10-batches-bin";
    for i in 1..=5u8 {
        write(&dir, &format!("{sub}/data_batch_{i}.bin"), &cifar_record(i, i));
    }
    let dir_name = dir.file_name().unwrap().to_str().unwrap().to_string();
    // Before test_batch.bin exists: an explanation of what is expected and where to get it.
    let err = load_cifar10_dir(&dir, Pixels::Raw);
    assert_data_err(
        err,
        &dir_name,
        &[
            "CIFAR-10 binary version",
            "data_batch_1.bin",
            "test_batch.bin",
            "cifar-10-batches-bin",
            "missing test_batch.bin",
        ],
    );
    write(&dir, &format!("{sub}/test_batch.bin"), &cifar_record(0, 42));
    let (train, test) = load_cifar10_dir(&dir, Pixels::Raw).unwrap();
    assert_eq!(train.len(), 5);
    assert_eq!(train.labels(), &[1, 2, 3, 4, 5]);
    assert_eq!(test.labels(), &[0]);
    assert_eq!(train.sample(4)[0], f32::from(cifar_record(5, 5)[1]));
    // ...and directly in the directory.
    let (train2, _) = load_cifar10_dir(dir.join(sub), Pixels::Raw).unwrap();
    assert_eq!(train2, train);

    let empty = tmpdir("cifar-empty");
    let msg = load_cifar10_dir(&empty, Pixels::Raw).unwrap_err().to_string();
    assert!(msg.contains("University of Toronto") && msg.contains("Krizhevsky"), "{msg}");
    assert!(!msg.contains("http") && !msg.contains("www."), "no URLs in messages: {msg}");
}

// ---------------------------------------------------------------------------------------------
// Malformed files: each gives Error::Data naming the file and the problem.

#[derive(Clone, Copy)]
enum Loader {
    Images,
    Labels,
    Csv,
    Cifar,
}

fn load(loader: Loader, p: &Path) -> shaped::error::Result<String> {
    match loader {
        Loader::Images => read_idx_images(p, Pixels::Raw).map(|r| format!("{} images", r.1)),
        Loader::Labels => read_idx_labels(p).map(|l| format!("{} labels", l.len())),
        Loader::Csv => read_csv(p, "label", 2).map(|d| format!("{d:?}")),
        Loader::Cifar => read_cifar_batch(p, Pixels::Raw).map(|d| format!("{d:?}")),
    }
}

#[test]
fn malformed_files_are_data_errors() {
    let dir = tmpdir("malformed");
    let good_images = idx_images(2, 2, 2, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let good_gz = gz(&good_images);
    let mut corrupt_gz = good_gz.clone();
    let mid = corrupt_gz.len() / 2;
    for b in &mut corrupt_gz[mid - 3..mid + 3] {
        *b ^= 0x5a;
    }
    let mut bad_crc_gz = good_gz.clone();
    let n = bad_crc_gz.len();
    bad_crc_gz[n - 8] ^= 0xff; // the CRC32 in the gzip trailer
    let mut trailing = good_images.clone();
    trailing.push(0);
    let mut wrong_rank = idx_header(0x0804, &[2, 2, 2, 1]);
    wrong_rank.extend_from_slice(&[0; 8]);
    let mut wrong_type = idx_header(0x0D03, &[1, 1, 1]);
    wrong_type.extend_from_slice(&[0; 4]);
    let mut cifar_bad_label = cifar_record(1, 0);
    cifar_bad_label.extend(cifar_record(10, 0));
    let header = "x0,x1,label\n";

    let cases: Vec<(&str, Loader, Vec<u8>, &[&str])> = vec![
        // IDX images
        (
            "wrong-magic.idx",
            Loader::Images,
            b"PK\x03\x04 zip, not idx at all".to_vec(),
            &["wrong magic number", "0x504B0304"],
        ),
        (
            "labels-as-images.idx",
            Loader::Images,
            idx_labels(&[1, 2]),
            &["wrong magic number", "wrong rank 1", "0x00000803"],
        ),
        ("wrong-rank.idx", Loader::Images, wrong_rank, &["wrong rank 4"]),
        ("wrong-type.idx", Loader::Images, wrong_type, &["data type code 0x0D"]),
        ("empty.idx", Loader::Images, Vec::new(), &["truncated header", "only 0 bytes"]),
        ("short-header.idx", Loader::Images, idx_header(0x0803, &[2, 2])[..10].to_vec(), &["truncated header"]),
        (
            "truncated.idx",
            Loader::Images,
            good_images[..good_images.len() - 1].to_vec(),
            &["truncated", "2 images of 2x2 = 8 bytes", "only 7 bytes"],
        ),
        ("trailing.idx", Loader::Images, trailing.clone(), &["trailing bytes", "9 bytes"]),
        (
            "count-too-big.idx",
            Loader::Images,
            idx_images(3, 2, 2, &[0; 8]),
            &["truncated", "3 images of 2x2 = 12 bytes"],
        ),
        ("huge-count.idx", Loader::Images, idx_images(u32::MAX, 28, 28, &[0; 16]), &["truncated", "4294967295 images"]),
        ("overflow.idx", Loader::Images, idx_images(u32::MAX, u32::MAX, u32::MAX, &[0; 16]), &["overflow"]),
        ("empty-images.idx", Loader::Images, idx_images(2, 0, 5, &[]), &["empty images"]),
        // gzip
        ("corrupt.idx.gz", Loader::Images, corrupt_gz, &["corrupt or truncated gzip data"]),
        ("bad-crc.idx.gz", Loader::Images, bad_crc_gz, &["corrupt or truncated gzip data", "checksum"]),
        ("cut.idx.gz", Loader::Images, good_gz[..good_gz.len() / 2].to_vec(), &["corrupt or truncated gzip data"]),
        (
            "huge-count.idx.gz",
            Loader::Images,
            gz(&idx_images(u32::MAX, 28, 28, &[0; 64])),
            &["more than this", "gzip file"],
        ),
        ("trailing.idx.gz", Loader::Images, gz(&trailing), &["trailing bytes", "gzip"]),
        ("truncated.idx.gz", Loader::Images, gz(&good_images[..20]), &["truncated", "gzip"]),
        ("garbage-after.idx.gz", Loader::Images, [good_gz.clone(), b"junk".to_vec()].concat(), &["gzip"]),
        // IDX labels
        (
            "images-as-labels.idx",
            Loader::Labels,
            good_images.clone(),
            &["wrong magic number", "wrong rank 3", "0x00000801"],
        ),
        ("labels-truncated.idx", Loader::Labels, idx_labels(&[1, 2, 3])[..10].to_vec(), &["truncated", "3 labels"]),
        ("labels-trailing.idx", Loader::Labels, [idx_labels(&[1, 2, 3]), vec![4]].concat(), &["trailing bytes"]),
        // CSV
        ("empty.csv", Loader::Csv, Vec::new(), &["empty file"]),
        ("blank.csv", Loader::Csv, b"\n  \n".to_vec(), &["empty file"]),
        ("no-label.csv", Loader::Csv, b"x0,x1,y\n1,2,0\n".to_vec(), &["missing label column", "\"label\"", "line 1"]),
        ("two-labels.csv", Loader::Csv, b"label,x,label\n1,2,0\n".to_vec(), &["more than once"]),
        ("only-label.csv", Loader::Csv, b"label\n1\n".to_vec(), &["no feature columns"]),
        ("header-only.csv", Loader::Csv, header.as_bytes().to_vec(), &["no data rows"]),
        (
            "ragged.csv",
            Loader::Csv,
            format!("{header}1,2,0\n1,2,1\n1,2\n").into_bytes(),
            &["line 4", "ragged", "2 fields", "3 columns"],
        ),
        ("ragged-long.csv", Loader::Csv, format!("{header}1,2,0,9\n").into_bytes(), &["line 2", "ragged", "4 fields"]),
        (
            "non-numeric.csv",
            Loader::Csv,
            format!("{header}1,2,0\n1,abc,1\n").into_bytes(),
            &["line 3", "column 2", "\"x1\"", "\"abc\" is not a number"],
        ),
        ("empty-field.csv", Loader::Csv, format!("{header}1,,0\n").into_bytes(), &["line 2", "not a number"]),
        ("nan.csv", Loader::Csv, format!("{header}1,2,0\nNaN,2,1\n").into_bytes(), &["line 3", "NaN", "finite"]),
        ("inf.csv", Loader::Csv, format!("{header}1,2,0\n1,-inf,1\n").into_bytes(), &["line 3", "infinite"]),
        ("f32-overflow.csv", Loader::Csv, format!("{header}1,1e39,1\n").into_bytes(), &["line 2", "too large for f32"]),
        (
            "label-range.csv",
            Loader::Csv,
            format!("{header}1,2,0\n1,2,2\n").into_bytes(),
            &["line 3", "bad label \"2\"", "out of range"],
        ),
        (
            "label-frac.csv",
            Loader::Csv,
            format!("{header}1,2,0.5\n").into_bytes(),
            &["line 2", "bad label", "non-negative integer"],
        ),
        ("label-neg.csv", Loader::Csv, format!("{header}1,2,-1\n").into_bytes(), &["line 2", "bad label \"-1\""]),
        (
            "label-text.csv",
            Loader::Csv,
            format!("{header}1,2,cat\n").into_bytes(),
            &["line 2", "bad label \"cat\"", "not a number"],
        ),
        ("not-utf8.csv", Loader::Csv, b"x0,label\n\xff\xfe,1\n".to_vec(), &["UTF-8", "byte offset 9"]),
        // CIFAR-10
        ("empty.bin", Loader::Cifar, Vec::new(), &["not a positive multiple of the 3073-byte"]),
        (
            "short.bin",
            Loader::Cifar,
            cifar_record(1, 0)[..3072].to_vec(),
            &["file length 3072 bytes", "not a positive multiple"],
        ),
        (
            "long.bin",
            Loader::Cifar,
            [cifar_record(1, 0), vec![0]].concat(),
            &["file length 3074 bytes", "not a positive multiple"],
        ),
        ("label-10.bin", Loader::Cifar, cifar_bad_label, &["record 1", "label 10 is out of range"]),
        (
            "gzipped.bin",
            Loader::Cifar,
            gz(&cifar_record(1, 0)).into_iter().chain(std::iter::repeat(0)).take(3073).collect(),
            &["gzip-compressed"],
        ),
    ];
    assert!(cases.len() >= 15);
    for (name, loader, bytes, phrases) in cases {
        let p = write(&dir, name, &bytes);
        assert_data_err(load(loader, &p), name, phrases);
    }
}

#[test]
fn mnist_dir_label_and_count_errors() {
    // Labels >= 10.
    let dir = tmpdir("mnist-bad-label");
    write(&dir, "train-images-idx3-ubyte", &idx_images(2, 1, 1, &[0, 0]));
    write(&dir, "train-labels-idx1-ubyte", &idx_labels(&[3, 10]));
    write(&dir, "t10k-images-idx3-ubyte", &idx_images(1, 1, 1, &[0]));
    write(&dir, "t10k-labels-idx1-ubyte", &idx_labels(&[0]));
    assert_data_err(
        load_mnist_dir(&dir, Pixels::Raw),
        "train-labels-idx1-ubyte",
        &["label 10 at index 1 is out of range"],
    );
    // Image/label count mismatch (in the test split).
    write(&dir, "train-labels-idx1-ubyte", &idx_labels(&[3, 9]));
    write(&dir, "t10k-labels-idx1-ubyte", &idx_labels(&[0, 1]));
    assert_data_err(
        load_mnist_dir(&dir, Pixels::Raw),
        "t10k-labels-idx1-ubyte",
        &["image/label count mismatch", "2 labels", "1 images"],
    );
    // A malformed file in the directory surfaces its own error.
    write(&dir, "t10k-labels-idx1-ubyte", &idx_images(1, 1, 1, &[0]));
    assert_data_err(load_mnist_dir(&dir, Pixels::Raw), "t10k-labels-idx1-ubyte", &["wrong rank 3"]);
}

#[test]
fn missing_files_are_io_errors() {
    let dir = tmpdir("missing");
    let p = dir.join("absent");
    assert!(matches!(read_idx_images(&p, Pixels::Raw), Err(Error::Io { .. })));
    assert!(matches!(read_idx_labels(&p), Err(Error::Io { .. })));
    assert!(matches!(read_csv(&p, "label", 2), Err(Error::Io { .. })));
    assert!(matches!(read_cifar_batch(&p, Pixels::Raw), Err(Error::Io { .. })));
}

/// Truncations and random byte mutations of valid files never panic, and every truncation of an
/// uncompressed file is an error.
#[test]
fn mutated_files_never_panic() {
    let dir = tmpdir("mutations");
    let images = idx_images(3, 2, 3, &(0..18).collect::<Vec<u8>>());
    let labels = idx_labels(&[1, 2, 3, 4]);
    let csv = b"x0,x1,label\n0.5,1,0\n2,3,1\n-1,1e3,1\n".to_vec();
    let cifar = [cifar_record(1, 3), cifar_record(2, 4)].concat();
    let samples: Vec<(Loader, Vec<u8>)> = vec![
        (Loader::Images, images.clone()),
        (Loader::Images, gz(&images)),
        (Loader::Labels, labels.clone()),
        (Loader::Labels, gz(&labels)),
        (Loader::Csv, csv.clone()),
        (Loader::Cifar, cifar.clone()),
    ];
    let p = dir.join("mutant");
    for (k, (loader, good)) in samples.iter().enumerate() {
        std::fs::write(&p, good).unwrap();
        load(*loader, &p).unwrap_or_else(|e| panic!("sample {k} should load: {e}"));
        let step = if good.len() > 1000 { 97 } else { 1 };
        for cut in (0..good.len()).step_by(step) {
            std::fs::write(&p, &good[..cut]).unwrap();
            let r = load(*loader, &p);
            if !matches!(loader, Loader::Csv) {
                assert!(matches!(r, Err(Error::Data { .. })), "sample {k} cut at {cut}: {r:?}");
            }
        }
        let mut rng = StdRng::seed_from_u64(k as u64);
        for _ in 0..300 {
            let mut m = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
            }
            std::fs::write(&p, &m).unwrap();
            let _ = load(*loader, &p);
        }
    }
    for len in [0usize, 1, 3, 7, 16, 100, 3073] {
        let mut bytes = vec![0u8; len];
        StdRng::seed_from_u64(len as u64).fill_bytes(&mut bytes);
        std::fs::write(&p, &bytes).unwrap();
        for loader in [Loader::Images, Loader::Labels, Loader::Csv, Loader::Cifar] {
            let _ = load(loader, &p);
        }
    }
}

/// A gzip stream corrupted near its start decompresses into a header that makes no sense: the
/// header reader (which `hw1` calls first) blames the stream, as the full reader does, not the
/// sizes it misread.
#[test]
fn idx_header_of_a_corrupt_gzip_names_the_corruption() {
    let d = tmpdir("idx-corrupt-gz-header");
    let pixels: Vec<u8> = (0..50 * 28 * 28).map(|i| (i * 7 % 251) as u8).collect();
    let good = gz(&idx_images(50, 28, 28, &pixels));
    let (mut blamed, mut misread) = (0, Vec::new());
    for at in 10..good.len().min(60) {
        let mut bad = good.clone();
        bad[at] ^= 0xa5;
        let p = write(&d.0, &format!("corrupt-{at}.gz"), &bad);
        if let Err(e) = read_idx_image_header(&p) {
            let msg = e.to_string();
            if msg.contains("corrupt or truncated gzip data") {
                blamed += 1;
            } else {
                misread.push(format!("byte {at}: {msg}"));
            }
        }
    }
    assert!(misread.is_empty(), "{misread:#?}");
    assert!(blamed > 0, "no corruption made the header unreadable");
}
