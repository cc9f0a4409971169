//! Output files: checked before a run writes anything, replaced atomically (temporary sibling,
//! fsync, rename), temporaries of dead processes cleaned up.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Checks, before anything is written, that `path` can take an output file: it names a file, its
/// parent directory exists, and it is absent or a regular file (or a symbolic link to one). A
/// directory, a device such as `/dev/null`, a FIFO, a socket or a symbolic link loop is refused
/// with [`Error::Output`] naming the path: an atomic save would replace such a node with a regular
/// file.
pub fn check_output_path(path: &Path) -> Result<()> {
    let err = |msg: String| Error::Output { path: path.to_path_buf(), msg };
    if path.as_os_str().is_empty() {
        return Err(err("an empty path names no file".into()));
    }
    if path.file_name().is_none() {
        let what = if path.is_dir() { "is a directory, not a file: name a file inside it" } else { "names no file" };
        return Err(err(what.into()));
    }
    let dir = parent_dir(path);
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(err(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(format!("the directory {} does not exist", dir.display())));
        }
        Err(e) => return Err(err(format!("the directory {}: {}", dir.display(), crate::error::describe_io(&e)))),
    }
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(err("is a directory, not a file: name a file inside it".into())),
        Ok(_) => {
            Err(err("is not a regular file (a device, FIFO or socket): outputs are written to a temporary file and \
             renamed over the target, which would replace this node"
                .into()))
        }
        // Absent, or a dangling symbolic link (which the rename replaces): fine.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(crate::error::describe_io(&e))),
    }
}

/// Whether `a` and `b` name the same file: the same file once symbolic links and `.`/`..` are
/// resolved (for a file that does not exist yet, its directory is resolved), or, on Unix, the
/// same inode (hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (fs::metadata(a), fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    let resolve = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = fs::canonicalize(p) {
            return Some(c);
        }
        Some(fs::canonicalize(parent_dir(p)).ok()?.join(p.file_name()?))
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling `<name>.tmp-<pid>-<n>` is written,
/// fsynced and renamed over `path`; then the directory is fsynced (best effort). On error the
/// temporary file is removed and `path` is untouched. `path` must pass [`check_output_path`].
/// Temporaries of the same target left by a process that no longer runs (a killed save) are
/// removed first (on Linux, where `/proc` tells which processes run).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, None, |tmp| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp).map_err(|e| Error::io(tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(tmp, e))
    })
}

/// As [`write_atomic`], with the content written by `write` into the temporary file whose path it
/// is given (which does not exist yet); `extension` is appended to the temporary's name
/// (`<name>.tmp-<pid>-<n>.png`) for writers that choose the format by extension.
pub fn write_atomic_with(path: &Path, extension: Option<&str>, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    check_output_path(path)?;
    let file_name = path.file_name().ok_or_else(|| Error::checkpoint(path, "the path does not name a file"))?;
    let dir = parent_dir(path);
    remove_stale_temporaries(&dir, &file_name.to_string_lossy());
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    if let Some(ext) = extension {
        tmp_name.push(format!(".{ext}"));
    }
    let tmp = dir.join(tmp_name);

    let written = write(&tmp).and_then(|()| {
        File::options().write(true).open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `<name>.tmp-<pid>-<n>[.ext]` files in `dir` whose process is gone (best effort).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!("{name}.tmp-");
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some((pid, counter)) = rest.split_once('-') else { continue };
        let counter = counter.split('.').next().unwrap_or_default();
        let (Ok(pid), true) = (pid.parse::<u32>(), !counter.is_empty() && counter.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Whether process `pid` runs (always assumed where it cannot be told).
fn process_runs(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}
