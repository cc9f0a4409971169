//! CIFAR-10 in its binary version: batch files of 3073-byte records, each one label byte (0..=9)
//! followed by 3072 pixel bytes (3×32×32, channel-major: 1024 red, 1024 green, 1024 blue, each
//! row-major).

use std::path::{Path, PathBuf};

use super::{Dataset, Pixels};
use crate::error::{Error, Result};

/// Bytes of one CIFAR-10 image: 3 channels of 32×32.
const PIXELS: usize = 3 * 32 * 32;
/// Bytes of one record: the label byte and the pixels.
const RECORD: usize = 1 + PIXELS;
/// The number of CIFAR-10 classes.
const CLASSES: usize = 10;
/// The training batch files, in order.
const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// The test batch file.
const TEST_FILE: &str = "test_batch.bin";
/// The most bytes a batch file may have: 100,000 records (307 MB; the official files hold 10,000),
/// checked against the file's size before anything is read.
pub const MAX_CIFAR_BATCH_BYTES: u64 = 100_000 * RECORD as u64;
/// The subdirectory the official archive unpacks to.
const SUBDIR: &str = "cifar-10-batches-bin";

/// Reads one CIFAR-10 binary batch file (e.g. `data_batch_1.bin`, 10000 records): sample dims
/// `[3, 32, 32]`, 10 classes, pixels scaled by `pixels`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Data`] if it is compressed, its length is
/// not a positive multiple of 3073 bytes or over [`MAX_CIFAR_BATCH_BYTES`], or a label byte is not
/// below 10.
pub fn read_cifar_batch(path: impl AsRef<Path>, pixels: Pixels) -> Result<Dataset> {
    fn inner(path: &Path, pixels: Pixels) -> Result<Dataset> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::data(path, "is a directory, not a CIFAR-10 batch file"));
        }
        let len = meta.len();
        let mut head = [0u8; 8];
        let got = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(|e| Error::io(path, e))?;
        if let Some(format) = super::compressed_format(&head[..got]) {
            return Err(Error::data(
                path,
                format!(
                    "the file is {format}, not a CIFAR-10 batch: extract the CIFAR-10 binary version archive \
                     first, it holds data_batch_1.bin ... test_batch.bin"
                ),
            ));
        }
        if len > MAX_CIFAR_BATCH_BYTES {
            return Err(Error::data(
                path,
                format!(
                    "the file has {len} bytes, more than the {MAX_CIFAR_BATCH_BYTES} (100,000 records) a CIFAR-10 batch \
                     file may have"
                ),
            ));
        }
        let check_len = |len: u64| -> Result<()> {
            if len == 0 || !len.is_multiple_of(RECORD as u64) {
                return Err(Error::data(
                    path,
                    format!(
                        "file length {len} bytes is not a positive multiple of the {RECORD}-byte CIFAR-10 \
                         record (1 label byte + {PIXELS} pixel bytes)"
                    ),
                ));
            }
            Ok(())
        };
        check_len(len)?;
        let mut bytes = Vec::new();
        let oom = || Error::data(path, format!("cannot allocate memory for the {len}-byte file"));
        bytes.try_reserve_exact(len as usize).map_err(|_| oom())?;
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
                MAX_CIFAR_BATCH_BYTES + 1,
            ),
            &mut bytes,
        )
        .map_err(|e| Error::io(path, e))?;
        check_len(bytes.len() as u64)?; // the file may have changed since its metadata was read
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return Err(Error::data(
                path,
                "the file is gzip-compressed (label byte 31 is out of range): extract the CIFAR-10 \
                 binary version archive first, it holds data_batch_1.bin ... test_batch.bin",
            ));
        }
        let n = bytes.len() / RECORD;
        let mut x = Vec::new();
        let mut y = Vec::new();
        x.try_reserve_exact(n * PIXELS).and_then(|()| y.try_reserve_exact(n)).map_err(|_| oom())?;
        for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
            let Some((&label, px)) = rec.split_first() else { continue }; // never: records are 3073 bytes
            if usize::from(label) >= CLASSES {
                return Err(Error::data(
                    path,
                    format!(
                        "record {i} (byte offset {}): label {label} is out of range, CIFAR-10 labels are 0..=9",
                        i * RECORD
                    ),
                ));
            }
            y.push(usize::from(label));
            x.extend(pixels.convert(px));
        }
        Dataset::new(x, y, &[3, 32, 32], CLASSES)
    }
    inner(path.as_ref(), pixels)
}

/// The directory holding the CIFAR-10 batch files: `dir` itself or its `cifar-10-batches-bin/`
/// subdirectory.
fn cifar_files_dir(dir: &Path) -> Option<PathBuf> {
    let has_all = |d: &Path| TRAIN_FILES.iter().chain([&TEST_FILE]).all(|f| d.join(f).is_file());
    [dir.to_path_buf(), dir.join(SUBDIR)].into_iter().find(|d| has_all(d))
}

/// Loads CIFAR-10 (binary version) from `dir`: `data_batch_1.bin` .. `data_batch_5.bin` are the
/// training set and `test_batch.bin` the test set; the files may also be in a
/// `cifar-10-batches-bin/` subdirectory of `dir` (as the archive unpacks). Returns `(train, test)`.
///
/// # Errors
/// [`Error::Data`] naming `dir` and explaining where to get CIFAR-10 when a file is missing; a
/// batch file's error when one is malformed.
pub fn load_cifar10_dir(dir: impl AsRef<Path>, pixels: Pixels) -> Result<(Dataset, Dataset)> {
    fn inner(dir: &Path, pixels: Pixels) -> Result<(Dataset, Dataset)> {
        let Some(files) = cifar_files_dir(dir) else {
            let all: Vec<&str> = TRAIN_FILES.iter().chain([&TEST_FILE]).copied().collect();
            let missing: Vec<&str> =
                all.iter().filter(|f| !dir.join(f).is_file() && !dir.join(SUBDIR).join(f).is_file()).copied().collect();
            let missing = match missing.len() {
                0 => " (some of the files are in the directory and others in its subdirectory)".to_string(),
                n if n == all.len() => String::new(),
                _ => format!(" (missing {})", missing.join(", ")),
            };
            return Err(Error::data(
                dir,
                format!(
                    "CIFAR-10 not found: expected the batch files {} in this directory or in its {SUBDIR}/ \
                     subdirectory{missing}. Download the \"CIFAR-10 binary version (suitable for C \
                     programs)\" from Alex Krizhevsky's CIFAR-10 page at the University of Toronto and \
                     unpack it here",
                    all.join(", ")
                ),
            ));
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for f in TRAIN_FILES {
            let batch = read_cifar_batch(files.join(f), pixels)?;
            x.extend_from_slice(batch.features());
            y.extend_from_slice(batch.labels());
        }
        let train = Dataset::new(x, y, &[3, 32, 32], CLASSES)?;
        let test = read_cifar_batch(files.join(TEST_FILE), pixels)?;
        Ok((train, test))
    }
    inner(dir.as_ref(), pixels)
}
