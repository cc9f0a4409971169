//! The crate's error type: every fallible operation names what it was reading and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in `shaped` at run time.
///
/// Shape mismatches between layers are compile errors; what remains are facts only known at run time:
/// buffer lengths, labels, files and numbers.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A buffer's length, or a runtime dimension, does not fit a tensor's shape.
    Shape(String),
    /// A label is outside the range the loss or data set allows.
    Label(String),
    /// A data file is malformed: the message names the file and what is wrong.
    Data {
        /// The file that was being read.
        path: PathBuf,
        /// What is wrong with it (with a line or byte position where one helps).
        msg: String,
    },
    /// A checkpoint does not fit the model: the message names the tensor and both shapes.
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// An output path cannot take the file (a directory, a device, a missing parent directory),
    /// or two outputs, or an output and an input, would be the same file.
    Output {
        /// The output path.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Training diverged or was misconfigured.
    Training(String),
    /// An operating-system I/O error while touching `path`.
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// A data-file error for `path`.
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Data { path: path.into(), msg: msg.into() }
    }
    /// A checkpoint error for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), msg: msg.into() }
    }
    /// An I/O error while touching `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::Label(m) => write!(f, "label error: {m}"),
            Error::Data { path, msg } => write!(f, "{}: {msg}", path.display()),
            Error::Checkpoint { path, msg } => write!(f, "checkpoint {}: {msg}", path.display()),
            Error::Training(m) => write!(f, "training stopped: {m}"),
            Error::Output { path, msg } => write!(f, "{}: {msg}", path.display()),
            Error::Io { path, source } if path.as_os_str().is_empty() => write!(f, "{}", describe_io(source)),
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), describe_io(source)),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An I/O error in words: a symbolic link loop says so (the system's message, "too many levels of
/// symbolic links", is easily read as a missing file).
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    // ELOOP: 40 on Linux, 62 on the BSDs and macOS.
    let eloop = if cfg!(target_os = "linux") { 40 } else { 62 };
    if cfg!(unix) && e.raw_os_error() == Some(eloop) { format!("a symbolic link loop ({e})") } else { e.to_string() }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `?` on the caller's own file operations in a function returning [`crate::Result`]: an
/// [`Error::Io`] without a path (shaped's own errors always name theirs).
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: PathBuf::new(), source }
    }
}
