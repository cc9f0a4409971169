//! Checkpoints in the [safetensors](https://github.com/huggingface/safetensors) format.
//!
//! A checkpoint holds every parameter and buffer of a model under its dotted path (`fc1.weight`,
//! `bn1.running_mean`; a lone layer's are `weight`, `bias`), with the shape of its
//! [`ParamInfo`](crate::layer::ParamInfo) and the dtype of the element type (`F32`/`F64`,
//! little-endian), so Python opens it with `safetensors.numpy.load_file`. Extra tensors live under a
//! reserved prefix (optimizer state under `optim.`, the [solver](crate::solver)'s resume state under
//! `solver.`), and string metadata (epoch, accuracy) in the header's `__metadata__`.
//!
//! Loading reads the 8-byte length and the JSON header first and checks them against the file's
//! real size (the header may not exceed [`MAX_HEADER_BYTES`], the tensors must end exactly at the
//! end of the file), then checks every name, dtype and shape against the model type, and only then
//! reads the tensors it needs, one byte range each: a sparse or lying file costs no memory. Every
//! parameter and buffer must be finite. On any error the model is left unchanged and the message
//! names the tensor (and both shapes).
//! Saving is atomic: the file is written to a temporary sibling, flushed to disk and renamed over
//! the target, so a crash mid-save leaves the previous checkpoint intact; temporaries left by a
//! killed process are removed by the next save of the same target ([`write_atomic`]). Outputs are
//! regular files: a directory, a device or a FIFO is refused before anything is written
//! ([`check_output_path`]).
//!
//! ```
//! use shaped::prelude::*;
//! let dir = std::env::temp_dir().join(format!("shaped-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("fc.safetensors");
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let fc = Linear::<3, 2, f32>::new(&mut rng, Init::Xavier);
//! shaped::io::save(&fc, &path).unwrap();
//! let mut back = Linear::<3, 2, f32>::zeros();
//! shaped::io::load(&mut back, &path).unwrap();
//! assert_eq!(fc, back);
//! let err = shaped::io::load(&mut Linear::<4, 2, f32>::zeros(), &path).unwrap_err();
//! assert!(err.to_string().contains("tensor `weight` has shape [3, 2] in the file, but the model expects [4, 2]"));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::error::{Error, Result};
use crate::kernels::Elem;
use crate::layer::{Module, ParamTree, Path as ParamPath};
use crate::optim::Optimizer;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

mod output;
mod read;
mod torch;

use read::{join_problems, parse, validate, write_model};

pub use output::{check_output_path, same_file, write_atomic, write_atomic_with};
pub use torch::{LoadReport, Naming, load_partial, load_torch, load_torch_partial, save_torch};

/// Prefix of the optimizer-state tensors written by [`save_checkpoint`] (`optim.velocity.fc1.weight`).
pub const OPTIM_PREFIX: &str = "optim.";

/// Prefix of the extra tensors the [solver](crate::solver) keeps in a resumable checkpoint
/// (`solver.loss`, `solver.best`).
pub const SOLVER_PREFIX: &str = "solver.";

/// Name prefixes allowed for extra tensors, i.e. tensors that are not parameters of the model.
pub const RESERVED_PREFIXES: &[&str] = &[OPTIM_PREFIX, SOLVER_PREFIX];

/// The longest checkpoint header (JSON) that is read: the safetensors format's own limit. A file
/// whose length field says more is refused before anything is allocated.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Prefix of the metadata keys this module writes itself; user metadata may not use it.
pub const METADATA_PREFIX: &str = "shaped.";

const META_MODEL: &str = "shaped.model";
const META_OPTIMIZER: &str = "shaped.optimizer";
const META_STEPS: &str = "shaped.optimizer_steps";

/// An extra named tensor: name, shape, values (row-major).
pub type ExtraTensor<E> = (String, Vec<usize>, Vec<E>);

/// What a checkpoint holds besides the model's parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint<E> {
    /// Extra tensors (names with a [reserved prefix](RESERVED_PREFIXES)), sorted by name.
    pub extra: Vec<ExtraTensor<E>>,
    /// User metadata (keys without the [`METADATA_PREFIX`]), sorted by key.
    pub metadata: Vec<(String, String)>,
    /// [`Module::type_name`] of the model that was saved, when recorded.
    pub model_type: Option<String>,
    /// [`Optimizer::name`] of the optimizer whose state was saved by [`save_checkpoint`].
    pub optimizer: Option<String>,
    /// [`Optimizer::step_count`] at save time, when optimizer state was saved.
    pub optimizer_steps: Option<u64>,
}

impl<E> Checkpoint<E> {
    /// The extra tensor `name` (with its prefix, e.g. `optim.m.fc1.weight`): shape and values.
    pub fn extra(&self, name: &str) -> Option<(&[usize], &[E])> {
        self.extra.iter().find(|(n, ..)| n == name).map(|(_, s, d)| (&s[..], &d[..]))
    }

    /// The user metadata value under `key`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Saves every parameter and buffer of `model` to `path` (atomically).
pub fn save<E: Elem, M: Module<E>>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    save_with(model, &[], &[], path)
}

/// Saves every parameter and buffer of `model`, the `extra` tensors (whose names must start with a
/// [reserved prefix](RESERVED_PREFIXES) such as `optim.`) and string `metadata` (keys must not
/// start with [`METADATA_PREFIX`]) to `path`, atomically.
pub fn save_with<E: Elem, M: Module<E>>(
    model: &M,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    for (k, _) in metadata {
        if k.starts_with(METADATA_PREFIX) {
            return Err(Error::checkpoint(
                path,
                format!("metadata key `{k}` uses the reserved prefix `{METADATA_PREFIX}`"),
            ));
        }
    }
    save_inner(model, extra, metadata, &[(META_MODEL, M::type_name())], path)
}

fn save_inner<E: Elem>(
    model: &dyn ParamTree<E>,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    own_metadata: &[(&str, String)],
    path: &Path,
) -> Result<()> {
    let dtype = dtype_of::<E>();
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    let mut names = HashSet::new();
    let mut dup = None;
    model.visit(&ParamPath::ROOT, &mut |info, data| {
        let name = info.path.to_string();
        if !names.insert(name.clone()) && dup.is_none() {
            dup = Some(name.clone());
        }
        tensors.push((name, Raw { dtype, shape: info.shape.to_vec(), bytes: encode(data) }));
    });
    if let Some(d) = dup {
        return Err(Error::checkpoint(path, format!("the model has two parameters named `{d}`")));
    }
    for (name, shape, data) in extra {
        if !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return Err(Error::checkpoint(
                path,
                format!("extra tensor `{name}` must have a name starting with a reserved prefix ({})", prefixes()),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(Error::checkpoint(path, format!("two tensors named `{name}`")));
        }
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::checkpoint(
                path,
                format!("extra tensor `{name}` has shape {shape:?} but {} values", data.len()),
            ));
        }
        tensors.push((name.clone(), Raw { dtype, shape: shape.clone(), bytes: encode(data) }));
    }
    let mut meta: HashMap<String, String> = metadata.iter().cloned().collect();
    for (k, v) in own_metadata {
        meta.insert((*k).to_string(), v.clone());
    }
    let bytes = safetensors::serialize(tensors.iter().map(|(n, r)| (n.as_str(), r)), Some(meta))
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads `path` into `model`. Every parameter must be in the file with the model's dtype and shape
/// and the file may hold no other tensors except extras under a [reserved
/// prefix](RESERVED_PREFIXES) (ignored here). On error the model is unchanged.
pub fn load<E: Elem, M: Module<E>>(model: &mut M, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let parsed = parse(path)?;
    let (_, staged) = validate(&parsed, &*model, false).map_err(|e| torch::hint_torch(e, &parsed, &*model))?;
    write_model(staged, model);
    Ok(())
}

/// As [`load`], and returns the extra tensors and metadata of the checkpoint.
pub fn load_with<E: Elem, M: Module<E>>(model: &mut M, path: impl AsRef<Path>) -> Result<Checkpoint<E>> {
    let path = path.as_ref();
    let parsed = parse(path)?;
    let (ckpt, staged) = validate(&parsed, model, true)?;
    write_model(staged, model);
    Ok(ckpt)
}

/// Saves `model` together with the state of `opt` (as extra tensors `optim.<kind>.<parameter
/// path>`, plus the optimizer's name and step count in the metadata) and the user `metadata`, for
/// resuming training with [`load_checkpoint`]. State not yet allocated is saved as zeros.
pub fn save_checkpoint<E: Elem, M: Module<E>, O: Optimizer<M, E>>(
    model: &M,
    opt: &O,
    metadata: &[(String, String)],
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    save_checkpoint_with(model, opt, &[], metadata, path)
}

/// As [`save_checkpoint`], with `extra` tensors besides the optimizer state: their names must
/// start with a [reserved prefix](RESERVED_PREFIXES) other than [`OPTIM_PREFIX`] (which belongs to
/// the optimizer), e.g. `solver.loss`.
pub fn save_checkpoint_with<E: Elem, M: Module<E>, O: Optimizer<M, E>>(
    model: &M,
    opt: &O,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    for (k, _) in metadata {
        if k.starts_with(METADATA_PREFIX) {
            return Err(Error::checkpoint(
                path,
                format!("metadata key `{k}` uses the reserved prefix `{METADATA_PREFIX}`"),
            ));
        }
    }
    if let Some((name, ..)) = extra.iter().find(|(n, ..)| n.starts_with(OPTIM_PREFIX)) {
        return Err(Error::checkpoint(
            path,
            format!("extra tensor `{name}` uses the prefix `{OPTIM_PREFIX}`, which holds the optimizer's state"),
        ));
    }
    let mut have: HashMap<String, Vec<E>> = HashMap::new();
    opt.visit_state(&mut |name, data| {
        have.insert(name.to_string(), data.to_vec());
    });
    let opt_info = (opt.name(), opt.state_kinds(), opt.step_count());
    save_with_state(model, opt_info, have, extra, metadata, path)
}

/// The body of [`save_checkpoint_with`] once the optimizer's state is gathered (compiled once).
fn save_with_state<E: Elem>(
    model: &dyn ParamTree<E>,
    (opt_name, kinds, steps): (&str, &[&str], u64),
    mut have: HashMap<String, Vec<E>>,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    path: &Path,
) -> Result<()> {
    let mut all: Vec<ExtraTensor<E>> = optimizer_layout(model, kinds)
        .into_iter()
        .map(|(name, len)| {
            let data = have.remove(&name).unwrap_or_else(|| vec![E::zero(); len]);
            (format!("{OPTIM_PREFIX}{name}"), vec![data.len()], data)
        })
        .collect();
    all.extend(extra.iter().cloned());
    let own =
        [(META_MODEL, model.model_name()), (META_OPTIMIZER, opt_name.to_string()), (META_STEPS, steps.to_string())];
    save_inner(model, &all, metadata, &own, path)
}

/// The `__metadata__` of the checkpoint at `path` (this module's own `shaped.*` keys included),
/// read from its header only: no model is needed and no tensor is decoded.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] if it is not a safetensors file.
pub fn read_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>> {
    let path = path.as_ref();
    Ok(parse(path)?.meta.into_iter().collect())
}

/// Loads a checkpoint written by [`save_checkpoint`] into `model` and `opt` (whose hyper-parameters
/// are kept; its state and step count are replaced). The optimizer must be of the rule that was
/// saved, and every state tensor must be present with the right length. On any error neither the
/// model nor the optimizer is changed. Returns the checkpoint's extras (including the optimizer
/// state) and metadata.
pub fn load_checkpoint<E: Elem, M: Module<E>, O: Optimizer<M, E>>(
    model: &mut M,
    opt: &mut O,
    path: impl AsRef<Path>,
) -> Result<Checkpoint<E>> {
    let path = path.as_ref();
    let (ckpt, staged, steps) = check_checkpoint(path, &*model, opt.name(), opt.state_kinds())?;
    write_model(staged, model);
    opt.reset();
    opt.init_state(&*model);
    opt.visit_state_mut(&mut |name, data| {
        let full = format!("{OPTIM_PREFIX}{name}");
        let (_, src) = ckpt.extra(&full).expect("validated above");
        data.copy_from_slice(src);
    });
    opt.set_step_count(steps);
    Ok(ckpt)
}

/// The checks of [`load_checkpoint`], before anything is written (compiled once): the model's
/// tensors, the optimizer's name and every state tensor. Returns the checkpoint, the model's staged
/// values and the step count.
fn check_checkpoint<E: Elem>(
    path: &Path,
    model: &dyn ParamTree<E>,
    opt_name: &str,
    kinds: &[&str],
) -> Result<(Checkpoint<E>, Vec<Vec<E>>, u64)> {
    let parsed = parse(path)?;
    let (ckpt, staged) = validate(&parsed, model, true)?;
    let saved = match &ckpt.optimizer {
        Some(name) => name.as_str(),
        None => {
            return Err(Error::checkpoint(
                path,
                "the file holds no optimizer state (it was saved without an optimizer)",
            ));
        }
    };
    if saved != opt_name {
        return Err(Error::checkpoint(
            path,
            format!("the file holds state of the optimizer `{saved}`, but the optimizer is `{}`", opt_name),
        ));
    }
    let steps = ckpt
        .optimizer_steps
        .ok_or_else(|| Error::checkpoint(path, format!("the metadata `{META_STEPS}` is missing or not a number")))?;
    let layout = optimizer_layout(model, kinds);
    let mut problems = Vec::new();
    let mut expected = HashSet::new();
    for (name, len) in &layout {
        let full = format!("{OPTIM_PREFIX}{name}");
        match ckpt.extra(&full) {
            None => problems.push(format!("optimizer state `{full}` ({len} values) is missing from the file")),
            Some((shape, data)) if data.len() != *len => problems.push(format!(
                "optimizer state `{full}` has shape {shape:?} in the file, but the model expects [{len}]"
            )),
            Some(_) => {}
        }
        expected.insert(full);
    }
    for (name, shape, _) in &ckpt.extra {
        if name.starts_with(OPTIM_PREFIX) && !expected.contains(name) {
            problems.push(format!(
                "unexpected optimizer state `{name}` (shape {shape:?}) in the file: `{}` keeps no such state for this model",
                opt_name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::checkpoint(path, join_problems(problems, &ckpt, model.model_name())));
    }
    Ok((ckpt, staged, steps))
}

/// `(<kind>.<path>, length)` of every state vector `opt` keeps for `model`, in the order of
/// [`Optimizer::visit_state`].
fn optimizer_layout<E: Elem>(model: &dyn ParamTree<E>, kinds: &[&str]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    model.visit(&ParamPath::ROOT, &mut |info, data| {
        if info.kind.trainable() {
            for k in kinds {
                out.push((format!("{k}.{}", info.path), data.len()));
            }
        }
    });
    out
}

/// A tensor to serialise: dtype, shape and little-endian bytes.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<E: Elem>() -> Dtype {
    match E::DTYPE {
        "F32" => Dtype::F32,
        "F64" => Dtype::F64,
        other => unreachable!("unsupported element dtype {other}"),
    }
}

fn encode<E: Elem>(data: &[E]) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_of_val(data));
    match E::DTYPE {
        "F32" => data.iter().for_each(|v| out.extend_from_slice(&(v.to_f64_lossy() as f32).to_le_bytes())),
        _ => data.iter().for_each(|v| out.extend_from_slice(&v.to_f64_lossy().to_le_bytes())),
    }
    out
}

/// Decodes little-endian values of `E`'s dtype (the caller checked dtype and length).
fn decode_into<E: Elem>(bytes: &[u8], out: &mut [E]) {
    match E::DTYPE {
        "F32" => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = E::lit(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64);
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = E::lit(f64::from_le_bytes(c.try_into().expect("8 bytes")));
            }
        }
    }
}

fn prefixes() -> String {
    RESERVED_PREFIXES.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}
