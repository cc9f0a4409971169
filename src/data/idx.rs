//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed, and the loader for a
//! directory of the four Fashion-MNIST files.
//!
//! An IDX file is a big-endian magic number `00 00 TT RR` (type code `TT`, 0x08 for unsigned
//! bytes, and rank `RR`), `RR` big-endian u32 dimensions, then the data. Images are rank 3
//! (count, rows, cols), magic 0x00000803; labels are rank 1 (count), magic 0x00000801.
//!
//! Files starting with the gzip magic bytes `1f 8b` are decompressed transparently, whatever their
//! name. The Debian package `dataset-fashion-mnist` installs the four files gzip-compressed,
//! directly in [`FASHION_MNIST_DEBIAN_DIR`]:
//! `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
//! `t10k-labels-idx1-ubyte.gz`.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{Dataset, Pixels};
use crate::error::{Error, Result};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST (the four IDX files,
/// gzip-compressed).
pub const FASHION_MNIST_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The environment variable that overrides where [`fashion_mnist_dir`] looks.
const FASHION_MNIST_ENV: &str = "FASHION_MNIST_DIR";

/// The first two bytes of every gzip file.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Deflate cannot compress better than about 1032:1, so a gzip file of `n` bytes decompresses to
/// at most about `1032 * n` bytes: a header claiming more is rejected before reading.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The IDX type code of unsigned bytes.
const IDX_U8: u8 = 0x08;

/// The base names of the four (Fashion-)MNIST files, in the order train images, train labels,
/// test images, test labels.
const MNIST_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// Reads `buf.len()` bytes or up to end of file; returns how many were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An IDX file's unsigned-byte payload and its dimensions.
struct Idx {
    dims: Vec<usize>,
    payload: Vec<u8>,
}

/// At most this much decompressed data is skimmed, after a gzip file's content turned out
/// malformed, to find out whether the real cause is a corrupt gzip stream.
const GZIP_SKIM_LIMIT: u64 = 256 << 20;

/// Reads an unsigned-byte IDX file of rank `rank` (plain or gzip), validating the magic number
/// and that the data length matches the header exactly. `what` names the content ("images").
/// `describe` renders the dimensions for messages, e.g. "3 images of 28x28".
fn read_idx(path: &Path, rank: u8, what: &str, describe: fn(&[u64]) -> String) -> Result<Idx> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut file = BufReader::new(file);
    let mut prefix = [0u8; 2];
    let got = read_up_to(&mut file, &mut prefix).map_err(|e| Error::io(path, e))?;
    let prefix = &prefix[..got];
    let mut src = Cursor::new(prefix.to_vec()).chain(file);
    if prefix != GZIP_MAGIC {
        return parse_idx(&mut src, path, false, file_len, rank, what, describe);
    }
    let mut reader = MultiGzDecoder::new(src);
    match parse_idx(&mut reader, path, true, file_len, rank, what, describe) {
        Err(Error::Data { path, msg }) if !msg.starts_with(GZIP_CORRUPT) => {
            // Malformed content may be the symptom of a corrupt stream: if the rest of the stream
            // fails its integrity check, report that instead.
            match io::copy(&mut (&mut reader).take(GZIP_SKIM_LIMIT), &mut io::sink()) {
                Err(e) => {
                    Err(Error::data(path, format!("{GZIP_CORRUPT}: {e} (what was decompressed is invalid too: {msg})")))
                }
                Ok(_) => Err(Error::Data { path, msg }),
            }
        }
        r => r,
    }
}

/// The start of the message for an unreadable gzip stream.
const GZIP_CORRUPT: &str = "corrupt or truncated gzip data";

/// [`read_idx`] on an open reader: `gz` tells whether it decompresses a file of `file_len` bytes.
fn parse_idx(
    reader: &mut impl Read,
    path: &Path,
    gz: bool,
    file_len: u64,
    rank: u8,
    what: &str,
    describe: fn(&[u64]) -> String,
) -> Result<Idx> {
    let read_err = |e: io::Error| {
        if gz { Error::data(path, format!("{GZIP_CORRUPT}: {e}")) } else { Error::io(path, e) }
    };
    let source = if gz { "decompressed gzip stream" } else { "file" };

    let expected_magic = u32::from(IDX_U8) << 8 | u32::from(rank);
    let header_len = 4 + 4 * usize::from(rank);
    let mut header = vec![0u8; header_len];
    let got = read_up_to(reader, &mut header[..4]).map_err(read_err)?;
    if got < 4 {
        return Err(Error::data(
            path,
            format!(
                "truncated header: the {source} has only {got} bytes, an IDX {what} file starts with a \
                 {header_len}-byte header (magic number 0x{expected_magic:08X} and {rank} dimensions)"
            ),
        ));
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if header[0] != 0 || header[1] != 0 {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08X}: not an IDX file (IDX {what} start with \
                 0x{expected_magic:08X}, whose first two bytes are zero)"
            ),
        ));
    }
    if header[2] != IDX_U8 {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08X}: data type code 0x{:02X} is not 0x08 (unsigned \
                 byte); IDX {what} have magic number 0x{expected_magic:08X}",
                header[2]
            ),
        ));
    }
    if header[3] != rank {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08X}: wrong rank {}, IDX {what} have rank {rank} \
                 (magic number 0x{expected_magic:08X})",
                header[3]
            ),
        ));
    }
    let got = read_up_to(reader, &mut header[4..]).map_err(read_err)?;
    if got < header_len - 4 {
        return Err(Error::data(
            path,
            format!(
                "truncated header: the {source} ends after {} bytes, inside the {header_len}-byte \
                 header of rank {rank}",
                4 + got
            ),
        ));
    }
    let dims: Vec<u64> =
        header[4..].chunks_exact(4).map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect();
    let desc = describe(&dims);
    if dims.iter().skip(1).any(|&d| d == 0) {
        return Err(Error::data(path, format!("empty {what}: the header says {desc}")));
    }
    let expected = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        Error::data(path, format!("header sizes {dims:?} ({desc}) overflow: they cannot match the file length"))
    })?;

    // Check the claimed size against what the file can hold before allocating anything.
    let header_u64 = header_len as u64;
    if gz {
        let bound = file_len.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
        if expected > bound {
            return Err(Error::data(
                path,
                format!(
                    "truncated: the header claims {desc} = {expected} bytes of data, more than this \
                     {file_len}-byte gzip file can decompress to"
                ),
            ));
        }
    } else {
        let available = file_len.saturating_sub(header_u64);
        if let Some(e) = length_mismatch(&desc, expected, available, true, header_len, source) {
            return Err(Error::data(path, e));
        }
    }
    let expected_usize = usize::try_from(expected).map_err(|_| {
        Error::data(path, format!("the header claims {desc} = {expected} bytes: too large for this machine"))
    })?;

    let reserve = expected.min(file_len.saturating_mul(8)).min(isize::MAX as u64);
    let mut payload = Vec::with_capacity(reserve as usize);
    reader.take(expected.saturating_add(1)).read_to_end(&mut payload).map_err(read_err)?;
    // Re-check: the file may differ from its metadata, and a gzip stream's length is only known now.
    let got = payload.len() as u64;
    if let Some(e) = length_mismatch(&desc, expected, got, false, header_len, source) {
        return Err(Error::data(path, e));
    }
    debug_assert_eq!(payload.len(), expected_usize);
    let dims = dims.iter().map(|&d| d as usize).collect(); // each fits: product fits in usize
    Ok(Idx { dims, payload })
}

/// The message for a data length that disagrees with the header, if it does. Unless `exact`,
/// `available` may be `expected + 1` for "at least one trailing byte".
fn length_mismatch(
    desc: &str,
    expected: u64,
    available: u64,
    exact: bool,
    header_len: usize,
    source: &str,
) -> Option<String> {
    use std::cmp::Ordering;
    match available.cmp(&expected) {
        Ordering::Equal => None,
        Ordering::Less => Some(format!(
            "truncated: the header claims {desc} = {expected} bytes of data, but the {source} has only \
             {available} bytes after the {header_len}-byte header"
        )),
        Ordering::Greater => Some(format!(
            "trailing bytes: the header claims {desc} = {expected} bytes of data, but the {source} \
             has {} after the {header_len}-byte header",
            if exact { format!("{available} bytes") } else { "more".to_string() }
        )),
    }
}

/// Reads an IDX file of unsigned-byte images (magic 0x00000803: count, rows, cols), plain or
/// gzip-compressed (detected from the content, not the name).
///
/// Returns the pixels (row-major, image after image, scaled by `pixels`), the image count, rows
/// and cols.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::Data`] for a wrong magic number,
/// type or rank, a truncated header, data shorter or longer than the header claims, empty images
/// or corrupt gzip data.
pub fn read_idx_images(path: &Path, pixels: Pixels) -> Result<(Vec<f32>, usize, usize, usize)> {
    let idx = read_idx(path, 3, "images", |d| format!("{} images of {}x{}", d[0], d[1], d[2]))?;
    let (count, rows, cols) = (idx.dims[0], idx.dims[1], idx.dims[2]);
    Ok((pixels.convert(&idx.payload), count, rows, cols))
}

/// Reads an IDX file of unsigned-byte labels (magic 0x00000801: count), plain or gzip-compressed
/// (detected from the content, not the name). The labels' range is not checked here.
///
/// # Errors
/// As [`read_idx_images`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    Ok(read_idx(path, 1, "labels", |d| format!("{} labels", d[0]))?.payload)
}

/// The file `base` in `dir`, with or without a `.gz` suffix (also accepting the
/// `train-images.idx3-ubyte` spelling some archives use).
fn find_mnist_file(dir: &Path, base: &str) -> Option<PathBuf> {
    let dotted = base.replacen("-idx", ".idx", 1);
    [base.to_string(), format!("{base}.gz"), dotted.clone(), format!("{dotted}.gz")]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// The expected content of an MNIST directory, for error messages.
fn mnist_expected() -> String {
    format!(
        "a (Fashion-)MNIST directory holds the four IDX files {}, each optionally gzip-compressed \
         with a .gz suffix (the Debian package dataset-fashion-mnist installs them in {}; the \
         environment variable {} can point elsewhere)",
        MNIST_FILES.join(", "),
        FASHION_MNIST_DEBIAN_DIR,
        FASHION_MNIST_ENV
    )
}

/// Loads one split (`prefix` "train" or "t10k") of an MNIST directory.
fn load_mnist_split(dir: &Path, prefix: &str, pixels: Pixels) -> Result<Dataset> {
    let find = |kind: &str| {
        let base = format!("{prefix}-{kind}");
        find_mnist_file(dir, &base).ok_or_else(|| {
            Error::data(dir, format!("missing file {base} (or {base}.gz) in this directory: {}", mnist_expected()))
        })
    };
    let images_path = find("images-idx3-ubyte")?;
    let labels_path = find("labels-idx1-ubyte")?;
    let (x, count, rows, cols) = read_idx_images(&images_path, pixels)?;
    let labels = read_idx_labels(&labels_path)?;
    if labels.len() != count {
        return Err(Error::data(
            &labels_path,
            format!(
                "image/label count mismatch: {} labels, but {} holds {count} images",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= 10) {
        return Err(Error::data(
            &labels_path,
            format!("label {l} at index {i} is out of range: (Fashion-)MNIST has 10 classes, 0..=9"),
        ));
    }
    let y = labels.into_iter().map(usize::from).collect();
    Dataset::new(x, y, &[1, rows, cols], 10)
}

/// Loads a (Fashion-)MNIST directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each with or without a `.gz` suffix.
/// Returns `(train, test)` with sample dims `[1, rows, cols]` and 10 classes.
///
/// # Errors
/// [`Error::Data`] naming the directory and the missing file when one is absent; the file's
/// [`Error::Data`] when one is malformed, a label is not below 10, or the image and label counts
/// of a split differ; [`Error::Io`] if a file cannot be read.
pub fn load_mnist_dir(dir: &Path, pixels: Pixels) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(Error::data(dir, format!("not a directory (or it does not exist): {}", mnist_expected())));
    }
    let train = load_mnist_split(dir, "train", pixels)?;
    let test = load_mnist_split(dir, "t10k", pixels)?;
    Ok((train, test))
}

/// Where Fashion-MNIST is: the environment variable `FASHION_MNIST_DIR` if it is set and not
/// empty (its content is not checked), else [`FASHION_MNIST_DEBIAN_DIR`] if it holds the four
/// files, else `None`.
pub fn fashion_mnist_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(FASHION_MNIST_ENV)
        && !v.is_empty()
    {
        return Some(PathBuf::from(v));
    }
    let debian = Path::new(FASHION_MNIST_DEBIAN_DIR);
    MNIST_FILES.iter().all(|base| find_mnist_file(debian, base).is_some()).then(|| debian.to_path_buf())
}
