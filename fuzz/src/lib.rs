//! Shared pieces of the fuzz targets: the readers take paths, so every input is written to a
//! per-process temporary file first; and the model the checkpoint target loads into.

use shaped::prelude::*;
use std::path::{Path as FsPath, PathBuf};

/// A per-process scratch file for target `tag` (in `/dev/shm` when it exists: no disk writes).
fn scratch(tag: &str) -> PathBuf {
    let shm = FsPath::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    dir.join(format!("shaped-fuzz-{tag}-{}", std::process::id()))
}

/// Writes `data` to the scratch file of `tag` and calls `f` with its path.
pub fn with_file<T>(tag: &str, data: &[u8], f: impl FnOnce(&FsPath) -> T) -> T {
    let p = scratch(tag);
    std::fs::write(&p, data).expect("the scratch file is writable");
    f(&p)
}

/// The model the checkpoint target loads into: a parameter, buffers (batch norm) and a layer
/// without parameters.
#[derive(Sequential)]
#[sequential(input = (3,))]
pub struct Net {
    /// Layer `fc1`.
    pub fc1: Linear<3, 4>,
    /// Layer `bn`.
    pub bn: BatchNorm1d<4>,
    /// Layer `relu`.
    pub relu: ReLU,
    /// Layer `fc2`.
    pub fc2: Linear<4, 2>,
}

/// The input shape of [`Net`].
pub type NetIn = (Dyn, Const<3>);

/// The training set of the resume path: 8 samples of 3 features, 2 classes.
pub fn tiny_set() -> shaped::data::Dataset {
    let x: Vec<f32> = (0..24).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
    let y = (0..8).map(|i| i % 2).collect();
    shaped::data::Dataset::new(x, y, &[3], 2).expect("a valid data set")
}

/// The solver whose resumable checkpoints the checkpoint target reads (epochs are set by the caller).
pub fn solver() -> shaped::solver::Solver {
    shaped::solver::Solver::new().rule(UpdateRule::Adam).lr(1e-2).batch_size(4).seed(1)
}
