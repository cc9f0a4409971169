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

/// The most data (after the header) a gzip-compressed IDX file may claim: 256 MiB, five times
/// Fashion-MNIST's training images (47 MB). A header claiming more is refused before anything is
/// decompressed or allocated; decompress larger files first (plain files are limited by
/// [`MAX_IDX_BYTES`] and their real size).
pub const MAX_GZIP_IDX_BYTES: u64 = 256 << 20;

/// The most data (after the header) a plain IDX file may hold: 1 GiB, which becomes 4 GiB of f32
/// features. A header claiming more is refused before anything is allocated, as is one claiming
/// more than the file's real size.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

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

/// Opens an IDX file: the reader (decompressing when the file starts with the gzip magic bytes),
/// whether it is gzip and the file's length.
fn open_idx(path: &Path) -> Result<(Box<dyn Read>, bool, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::data(path, "is a directory, not an IDX file"));
    }
    let file_len = meta.len();
    let mut file = BufReader::new(file);
    let mut prefix = [0u8; 2];
    let got = read_up_to(&mut file, &mut prefix).map_err(|e| Error::io(path, e))?;
    let gz = prefix[..got] == GZIP_MAGIC;
    let src = Cursor::new(prefix[..got].to_vec()).chain(file);
    if gz { Ok((Box::new(MultiGzDecoder::new(src)), true, file_len)) } else { Ok((Box::new(src), false, file_len)) }
}

/// Reads an unsigned-byte IDX file of rank `rank` (plain or gzip), validating the magic number
/// and that the data length matches the header exactly. `what` names the content ("images").
/// `describe` renders the dimensions for messages, e.g. "3 images of 28x28".
fn read_idx(path: &Path, rank: u8, what: &str, describe: fn(&[u64]) -> String) -> Result<Idx> {
    let (mut reader, gz, file_len) = open_idx(path)?;
    let header = parse_header(&mut reader, path, gz, file_len, rank, what, describe);
    let r = header.and_then(|h| read_payload(&mut reader, path, gz, file_len, h));
    blame_corrupt_gzip(&mut reader, gz, r)
}

/// `r`, or when it is a data error of a gzip file (`gz`), and the rest of the stream in `reader`
/// fails its integrity check, that: malformed content may be the symptom of a corrupt stream.
fn blame_corrupt_gzip<T>(reader: &mut dyn Read, gz: bool, r: Result<T>) -> Result<T> {
    match r {
        Err(Error::Data { path, msg }) if gz && !msg.starts_with(GZIP_CORRUPT) => {
            match io::copy(&mut reader.take(GZIP_SKIM_LIMIT), &mut io::sink()) {
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

/// A checked IDX header.
struct Header {
    dims: Vec<u64>,
    header_len: usize,
    /// The dimensions in words ("3 images of 28x28").
    desc: String,
    /// Bytes of data the header claims (checked against the file size and the caps).
    expected: u64,
}

/// Reads and checks the header of an IDX file of `rank` from `reader` (`gz`: it decompresses a
/// file of `file_len` bytes): magic number, rank, non-empty sample dimensions, and the claimed
/// size against the file's real size (plain) or the caps (gzip) — before anything is allocated.
fn parse_header(
    reader: &mut impl Read,
    path: &Path,
    gz: bool,
    file_len: u64,
    rank: u8,
    what: &str,
    describe: fn(&[u64]) -> String,
) -> Result<Header> {
    let read_err = |e: io::Error| {
        if gz { Error::data(path, format!("{GZIP_CORRUPT}: {e}")) } else { Error::io(path, e) }
    };
    let source = if gz { "decompressed gzip stream" } else { "file" };

    let expected_magic = u32::from(IDX_U8) << 8 | u32::from(rank);
    let header_len = 4 + 4 * usize::from(rank);
    let mut header = vec![0u8; header_len];
    let got = read_up_to(reader, &mut header[..4]).map_err(read_err)?;
    if let Some(format) = super::compressed_format(&header[..got]) {
        let magic = match got {
            4 => format!(
                "wrong magic number 0x{:08X}: ",
                u32::from_be_bytes([header[0], header[1], header[2], header[3]])
            ),
            _ => String::new(),
        };
        let msg = magic
            + &if gz {
                format!(
                    "the decompressed gzip stream is {format}, not IDX {what}: the file was compressed twice \
                 (or holds an archive); decompress it until an IDX file remains"
                )
            } else {
                format!("the file is {format}, not IDX {what}: decompress it first (only gzip is read directly)")
            };
        return Err(Error::data(path, msg));
    }
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
        if expected > MAX_GZIP_IDX_BYTES {
            return Err(Error::data(
                path,
                format!(
                    "the header claims {desc} = {expected} bytes of data, more than the {} MiB a gzip-compressed \
                     IDX file may hold: decompress the file first",
                    MAX_GZIP_IDX_BYTES >> 20
                ),
            ));
        }
    } else {
        let available = file_len.saturating_sub(header_u64);
        if let Some(e) = length_mismatch(&desc, expected, available, true, header_len, source) {
            return Err(Error::data(path, e));
        }
        if expected > MAX_IDX_BYTES {
            return Err(Error::data(
                path,
                format!(
                    "the header claims {desc} = {expected} bytes of data, more than the {} MiB limit of an IDX file",
                    MAX_IDX_BYTES >> 20
                ),
            ));
        }
    }
    Ok(Header { dims, header_len, desc, expected })
}

/// Reads the data of an IDX file whose header `h` was read and checked.
fn read_payload(reader: &mut impl Read, path: &Path, gz: bool, file_len: u64, h: Header) -> Result<Idx> {
    let read_err = |e: io::Error| {
        if gz { Error::data(path, format!("{GZIP_CORRUPT}: {e}")) } else { Error::io(path, e) }
    };
    let source = if gz { "decompressed gzip stream" } else { "file" };
    let Header { dims, header_len, desc, expected } = h;
    let expected_usize = usize::try_from(expected).map_err(|_| {
        Error::data(path, format!("the header claims {desc} = {expected} bytes: too large for this machine"))
    })?;
    let reserve = expected.min(file_len.saturating_mul(8)).min(isize::MAX as u64);
    let mut payload = Vec::new();
    payload.try_reserve_exact(reserve as usize).map_err(|_| out_of_memory(path, &desc, expected))?;
    reader.take(expected.saturating_add(1)).read_to_end(&mut payload).map_err(|e| {
        if e.kind() == io::ErrorKind::OutOfMemory { out_of_memory(path, &desc, expected) } else { read_err(e) }
    })?;
    // Re-check: the file may differ from its metadata, and a gzip stream's length is only known now.
    let got = payload.len() as u64;
    if let Some(e) = length_mismatch(&desc, expected, got, false, header_len, source) {
        return Err(Error::data(path, e));
    }
    debug_assert_eq!(payload.len(), expected_usize);
    let dims = dims.iter().map(|&d| d as usize).collect(); // each fits: product fits in usize
    Ok(Idx { dims, payload })
}

/// The error for data that does not fit in memory.
fn out_of_memory(path: &Path, desc: &str, bytes: u64) -> Error {
    Error::data(path, format!("cannot allocate memory for {desc} ({bytes} bytes, 4 times that as f32 features)"))
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
pub fn read_idx_images(path: impl AsRef<Path>, pixels: Pixels) -> Result<(Vec<f32>, usize, usize, usize)> {
    fn inner(path: &Path, pixels: Pixels) -> Result<(Vec<f32>, usize, usize, usize)> {
        let idx = read_idx(path, 3, "images", describe_images)?;
        let (count, rows, cols) = (idx.dims[0], idx.dims[1], idx.dims[2]);
        let x = pixels.try_convert(&idx.payload).ok_or_else(|| {
            out_of_memory(path, &describe_images(&[count as u64, rows as u64, cols as u64]), idx.payload.len() as u64)
        })?;
        Ok((x, count, rows, cols))
    }
    inner(path.as_ref(), pixels)
}

fn describe_images(d: &[u64]) -> String {
    format!("{} images of {}x{}", d[0], d[1], d[2])
}

/// Reads only the header of an IDX image file (plain or gzip): `(count, rows, cols)`, checked
/// like [`read_idx_images`] checks it (magic number, rank, sizes against the file's size and the
/// caps) without reading the pixels. Lets a caller check the geometry of every split before
/// loading any.
///
/// # Errors
/// As [`read_idx_images`], for the header.
pub fn read_idx_image_header(path: impl AsRef<Path>) -> Result<(usize, usize, usize)> {
    fn inner(path: &Path) -> Result<(usize, usize, usize)> {
        let (mut reader, gz, file_len) = open_idx(path)?;
        let h = parse_header(&mut reader, path, gz, file_len, 3, "images", describe_images);
        let h = blame_corrupt_gzip(&mut reader, gz, h)?;
        let d = |i: usize| usize::try_from(h.dims[i]).unwrap_or(usize::MAX);
        Ok((d(0), d(1), d(2)))
    }
    inner(path.as_ref())
}

/// Reads an IDX file of unsigned-byte labels (magic 0x00000801: count), plain or gzip-compressed
/// (detected from the content, not the name). The labels' range is not checked here.
///
/// # Errors
/// As [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    fn inner(path: &Path) -> Result<Vec<u8>> {
        Ok(read_idx(path, 1, "labels", |d| format!("{} labels", d[0]))?.payload)
    }
    inner(path.as_ref())
}

/// The file `base` in `dir`, with or without a `.gz` suffix (also accepting the
/// `train-images.idx3-ubyte` spelling some archives use): `None` if there is none, an error if a
/// candidate exists but cannot be looked at (a symbolic link loop, no permission).
fn find_mnist_file(dir: &Path, base: &str) -> Result<Option<PathBuf>> {
    let dotted = base.replacen("-idx", ".idx", 1);
    for name in [base.to_string(), format!("{base}.gz"), dotted.clone(), format!("{dotted}.gz")] {
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => return Ok(Some(p)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(p, e)),
        }
    }
    Ok(None)
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

/// The image and label files of one split (`prefix` "train" or "t10k") of an MNIST directory.
fn mnist_split_files(dir: &Path, prefix: &str) -> Result<(PathBuf, PathBuf)> {
    let find = |kind: &str| {
        let base = format!("{prefix}-{kind}");
        find_mnist_file(dir, &base)?.ok_or_else(|| {
            Error::data(dir, format!("missing file {base} (or {base}.gz) in this directory: {}", mnist_expected()))
        })
    };
    Ok((find("images-idx3-ubyte")?, find("labels-idx1-ubyte")?))
}

/// The training and test image files of a (Fashion-)MNIST directory, as [`load_mnist_dir`]
/// would read them: with [`read_idx_image_header`], their geometry can be checked before loading.
///
/// # Errors
/// As [`load_mnist_dir`] for a missing directory or file.
pub fn mnist_image_files(dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
    fn inner(dir: &Path) -> Result<(PathBuf, PathBuf)> {
        check_dir(dir)?;
        Ok((mnist_split_files(dir, "train")?.0, mnist_split_files(dir, "t10k")?.0))
    }
    inner(dir.as_ref())
}

/// An error unless `dir` is a directory (a symbolic link loop is named as such).
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::data(dir, format!("not a directory: {}", mnist_expected()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(Error::data(dir, format!("not a directory (it does not exist): {}", mnist_expected())))
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Loads one split (`prefix` "train" or "t10k") of an MNIST directory; also returns the images'
/// path.
fn load_mnist_split(dir: &Path, prefix: &str, pixels: Pixels) -> Result<(Dataset, PathBuf)> {
    let (images_path, labels_path) = mnist_split_files(dir, prefix)?;
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
    let ds = Dataset::new(x, y, &[1, rows, cols], 10).map_err(|e| Error::data(&images_path, e.to_string()))?;
    Ok((ds, images_path))
}

/// Loads a (Fashion-)MNIST directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each with or without a `.gz` suffix.
/// Returns `(train, test)` with sample dims `[1, rows, cols]` and 10 classes.
///
/// # Errors
/// [`Error::Data`] naming the directory and the missing file when one is absent; the file's
/// [`Error::Data`] when one is malformed, a label is not below 10, the image and label counts
/// of a split differ, or the test images' geometry is not the training images'; [`Error::Io`] if a
/// file cannot be read (naming a symbolic link loop as such).
pub fn load_mnist_dir(dir: impl AsRef<Path>, pixels: Pixels) -> Result<(Dataset, Dataset)> {
    fn inner(dir: &Path, pixels: Pixels) -> Result<(Dataset, Dataset)> {
        check_dir(dir)?;
        let (train, train_images) = load_mnist_split(dir, "train", pixels)?;
        let (test, test_images) = load_mnist_split(dir, "t10k", pixels)?;
        if test.sample_dims() != train.sample_dims() {
            let geometry = |d: &[usize]| d.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
            return Err(Error::data(
                &test_images,
                format!(
                    "the test images are {}, but the training images in {} are {}",
                    geometry(test.sample_dims()),
                    train_images.display(),
                    geometry(train.sample_dims())
                ),
            ));
        }
        Ok((train, test))
    }
    inner(dir.as_ref(), pixels)
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
    MNIST_FILES.iter().all(|base| find_mnist_file(debian, base).ok().flatten().is_some()).then(|| debian.to_path_buf())
}
