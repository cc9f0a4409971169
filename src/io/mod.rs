//! Checkpoints in the [safetensors](https://github.com/huggingface/safetensors) format.
//!
//! A checkpoint holds every parameter and buffer of a model under its dotted path (`fc1.weight`,
//! `bn1.running_mean`; a lone layer's are `weight`, `bias`), with the shape of its
//! [`ParamInfo`](crate::layer::ParamInfo) and the dtype of the element type (`F32`/`F64`,
//! little-endian), so Python opens it with `safetensors.numpy.load_file`. Extra tensors live under a
//! reserved prefix (optimizer state under `optim.`, the [solver](crate::solver)'s resume state under
//! `solver.`), and string metadata (epoch, accuracy) in the header's `__metadata__`.
//!
//! Loading checks every name, dtype and shape against the model type before writing anything: on
//! any error the model is left unchanged and the message names the tensor and both shapes.
//! Saving is atomic: the file is written to a temporary sibling, flushed to disk and renamed over
//! the target, so a crash mid-save leaves the previous checkpoint intact.
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
use crate::layer::{Module, Path as ParamPath};
use crate::optim::Optimizer;
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of the optimizer-state tensors written by [`save_checkpoint`] (`optim.velocity.fc1.weight`).
pub const OPTIM_PREFIX: &str = "optim.";

/// Prefix of the extra tensors the [solver](crate::solver) keeps in a resumable checkpoint
/// (`solver.loss`, `solver.best`).
pub const SOLVER_PREFIX: &str = "solver.";

/// Name prefixes allowed for extra tensors, i.e. tensors that are not parameters of the model.
pub const RESERVED_PREFIXES: &[&str] = &[OPTIM_PREFIX, SOLVER_PREFIX];

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
pub fn save<E: Elem, M: Module<E>>(model: &M, path: &Path) -> Result<()> {
    save_with(model, &[], &[], path)
}

/// Saves every parameter and buffer of `model`, the `extra` tensors (whose names must start with a
/// [reserved prefix](RESERVED_PREFIXES) such as `optim.`) and string `metadata` (keys must not
/// start with [`METADATA_PREFIX`]) to `path`, atomically.
pub fn save_with<E: Elem, M: Module<E>>(
    model: &M,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    path: &Path,
) -> Result<()> {
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

fn save_inner<E: Elem, M: Module<E>>(
    model: &M,
    extra: &[ExtraTensor<E>],
    metadata: &[(String, String)],
    own_metadata: &[(&str, String)],
    path: &Path,
) -> Result<()> {
    let dtype = dtype_of::<E>();
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    let mut names = HashSet::new();
    let mut dup = None;
    model.visit_params(&ParamPath::ROOT, &mut |info, data| {
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
pub fn load<E: Elem, M: Module<E>>(model: &mut M, path: &Path) -> Result<()> {
    load_with(model, path).map(|_| ())
}

/// As [`load`], and returns the extra tensors and metadata of the checkpoint.
pub fn load_with<E: Elem, M: Module<E>>(model: &mut M, path: &Path) -> Result<Checkpoint<E>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let parsed = parse(&bytes, path)?;
    let ckpt = validate(&parsed, &*model, path)?;
    write_model(&parsed, model);
    Ok(ckpt)
}

/// Saves `model` together with the state of `opt` (as extra tensors `optim.<kind>.<parameter
/// path>`, plus the optimizer's name and step count in the metadata) and the user `metadata`, for
/// resuming training with [`load_checkpoint`]. State not yet allocated is saved as zeros.
pub fn save_checkpoint<E: Elem, M: Module<E>, O: Optimizer<M, E>>(
    model: &M,
    opt: &O,
    metadata: &[(String, String)],
    path: &Path,
) -> Result<()> {
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
    path: &Path,
) -> Result<()> {
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
    let mut all: Vec<ExtraTensor<E>> = optimizer_layout(model, opt)
        .into_iter()
        .map(|(name, len)| {
            let data = have.remove(&name).unwrap_or_else(|| vec![E::zero(); len]);
            (format!("{OPTIM_PREFIX}{name}"), vec![data.len()], data)
        })
        .collect();
    all.extend(extra.iter().cloned());
    let own = [
        (META_MODEL, M::type_name()),
        (META_OPTIMIZER, opt.name().to_string()),
        (META_STEPS, opt.step_count().to_string()),
    ];
    save_inner(model, &all, metadata, &own, path)
}

/// The `__metadata__` of the checkpoint at `path` (this module's own `shaped.*` keys included),
/// read from its header only: no model is needed and no tensor is decoded.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] if it is not a safetensors file.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let parsed = parse(&bytes, path)?;
    Ok(parsed.meta.into_iter().collect())
}

/// Loads a checkpoint written by [`save_checkpoint`] into `model` and `opt` (whose hyper-parameters
/// are kept; its state and step count are replaced). The optimizer must be of the rule that was
/// saved, and every state tensor must be present with the right length. On any error neither the
/// model nor the optimizer is changed. Returns the checkpoint's extras (including the optimizer
/// state) and metadata.
pub fn load_checkpoint<E: Elem, M: Module<E>, O: Optimizer<M, E>>(
    model: &mut M,
    opt: &mut O,
    path: &Path,
) -> Result<Checkpoint<E>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let parsed = parse(&bytes, path)?;
    let ckpt = validate(&parsed, &*model, path)?;
    let saved = match &ckpt.optimizer {
        Some(name) => name.as_str(),
        None => {
            return Err(Error::checkpoint(
                path,
                "the file holds no optimizer state (it was saved without an optimizer)",
            ));
        }
    };
    if saved != opt.name() {
        return Err(Error::checkpoint(
            path,
            format!("the file holds state of the optimizer `{saved}`, but the optimizer is `{}`", opt.name()),
        ));
    }
    let steps = ckpt
        .optimizer_steps
        .ok_or_else(|| Error::checkpoint(path, format!("the metadata `{META_STEPS}` is missing or not a number")))?;
    let layout = optimizer_layout(&*model, &*opt);
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
                opt.name()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::checkpoint(path, join_problems(problems, &ckpt, M::type_name())));
    }
    write_model(&parsed, model);
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

/// `(<kind>.<path>, length)` of every state vector `opt` keeps for `model`, in the order of
/// [`Optimizer::visit_state`].
fn optimizer_layout<E: Elem, M: Module<E>, O: Optimizer<M, E>>(model: &M, opt: &O) -> Vec<(String, usize)> {
    let kinds = opt.state_kinds();
    let mut out = Vec::new();
    model.visit_params(&ParamPath::ROOT, &mut |info, data| {
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

/// The parsed file: its tensors and its `__metadata__`.
struct Parsed<'a> {
    st: SafeTensors<'a>,
    meta: HashMap<String, String>,
}

fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<Parsed<'a>> {
    let len = bytes.len();
    if len < 8 {
        return Err(Error::checkpoint(
            path,
            format!("the file is {len} bytes long, too short for a safetensors header: truncated or not a checkpoint"),
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > (len - 8) as u64 {
        return Err(Error::checkpoint(
            path,
            format!(
                "the header length field says {n} bytes but only {} follow: truncated or not a safetensors file",
                len - 8
            ),
        ));
    }
    let invalid = |e: safetensors::SafeTensorError| {
        let why = match e {
            safetensors::SafeTensorError::MetadataIncompleteBuffer => {
                "the tensor data does not match the file size (truncated?)".to_string()
            }
            e => e.to_string(),
        };
        Error::checkpoint(path, format!("not a valid safetensors file ({len} bytes): {why}"))
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    Ok(Parsed { st, meta: metadata.metadata().clone().unwrap_or_default() })
}

/// Checks every tensor of the file against `model` and collects extras and metadata; writes nothing.
fn validate<E: Elem, M: Module<E>>(parsed: &Parsed<'_>, model: &M, path: &Path) -> Result<Checkpoint<E>> {
    let st = &parsed.st;
    let dtype = dtype_of::<E>();
    let file: BTreeMap<&str, safetensors::tensor::TensorView<'_>> = st.iter().collect();
    let mut problems = Vec::new();
    let mut model_names = HashSet::new();
    model.visit_params(&ParamPath::ROOT, &mut |info, _| {
        let name = info.path.to_string();
        match file.get(name.as_str()) {
            None => problems.push(format!("tensor `{name}` (shape {:?}) is missing from the file", info.shape)),
            Some(t) => {
                if t.dtype() != dtype {
                    problems.push(format!(
                        "tensor `{name}` has dtype {} in the file, but the model expects {}",
                        t.dtype(),
                        E::DTYPE
                    ));
                } else if t.shape() != info.shape {
                    problems.push(format!(
                        "tensor `{name}` has shape {:?} in the file, but the model expects {:?}",
                        t.shape(),
                        info.shape
                    ));
                }
            }
        }
        model_names.insert(name);
    });

    let mut ckpt = Checkpoint::default();
    for (&name, t) in &file {
        if model_names.contains(name) {
            continue;
        }
        if !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            problems.push(format!(
                "unexpected tensor `{name}` (shape {:?}) in the file: the model has no such parameter",
                t.shape()
            ));
            continue;
        }
        if t.dtype() != dtype {
            problems.push(format!(
                "extra tensor `{name}` has dtype {} in the file, but the model's is {}",
                t.dtype(),
                E::DTYPE
            ));
            continue;
        }
        let numel: usize = t.shape().iter().product();
        let mut data = vec![E::zero(); numel];
        decode_into(t.data(), &mut data);
        ckpt.extra.push((name.to_string(), t.shape().to_vec(), data));
    }

    for (k, v) in &parsed.meta {
        match k.as_str() {
            META_MODEL => ckpt.model_type = Some(v.clone()),
            META_OPTIMIZER => ckpt.optimizer = Some(v.clone()),
            META_STEPS => ckpt.optimizer_steps = v.parse().ok(),
            _ if k.starts_with(METADATA_PREFIX) => {}
            _ => ckpt.metadata.push((k.clone(), v.clone())),
        }
    }
    ckpt.metadata.sort();

    if problems.is_empty() {
        Ok(ckpt)
    } else {
        Err(Error::checkpoint(path, join_problems(problems, &ckpt, M::type_name())))
    }
}

fn join_problems<E>(problems: Vec<String>, ckpt: &Checkpoint<E>, model_type: String) -> String {
    let mut msg = if problems.len() == 1 {
        problems.into_iter().next().expect("one problem")
    } else {
        let mut m = format!("{} tensors do not fit the model:", problems.len());
        for p in problems {
            m.push_str("\n  - ");
            m.push_str(&p);
        }
        m
    };
    if let Some(saved) = &ckpt.model_type
        && *saved != model_type
    {
        msg.push_str(&format!("\n(the file was saved from `{saved}`; the model is `{model_type}`)"));
    }
    msg
}

/// Copies the (validated) tensors of the file into `model`.
fn write_model<E: Elem, M: Module<E>>(parsed: &Parsed<'_>, model: &mut M) {
    let st = &parsed.st;
    model.visit_params_mut(&ParamPath::ROOT, &mut |info, data| {
        let t = st.tensor(&info.path.to_string()).expect("validated before writing");
        decode_into(t.data(), data);
    });
}

fn prefixes() -> String {
    RESERVED_PREFIXES.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}

/// Writes `bytes` to `path` atomically: a temporary sibling `<name>.tmp-<pid>-<n>` is written,
/// fsynced and renamed over `path`; then the directory is fsynced (best effort). On error the
/// temporary file is removed and `path` is untouched.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().ok_or_else(|| Error::checkpoint(path, "the path does not name a file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let tmp = dir.join(tmp_name);

    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
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
