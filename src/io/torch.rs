//! PyTorch interoperability and non-strict loading: checkpoints in the names and layouts of a
//! PyTorch `state_dict` (safetensors), and loads that take what fits and report the rest.
//!
//! | shaped | PyTorch (`state_dict`) |
//! |---|---|
//! | `fc1.weight` `[in, out]` (`Linear`) | `fc1.weight` `[out, in]` (transposed) |
//! | `fc1.bias`, `conv.weight` `[F, C, K, K]`, `conv.bias` | the same |
//! | `bn.gamma`, `bn.beta` | `bn.weight`, `bn.bias` |
//! | `bn.running_mean`, `bn.running_var` | the same, plus `bn.num_batches_tracked` (int64 scalar, written 0, ignored on load) |
//!
//! A model written as the same `torch.nn.Sequential`-like module with the same attribute names
//! (`self.fc1 = nn.Linear(605, 16)`, …) loads the exported file with `load_state_dict(safetensors.torch.load_file(path))`.

use super::{Raw, dtype_of, encode, parse, write_atomic};
use crate::error::{Error, Result};
use crate::kernels::Elem;
use crate::layer::{Module, ParamKind, ParamTree, Path as ParamPath};
use safetensors::Dtype;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// How the tensors of a file are named and laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// shaped's own (field paths, `Linear` weights `[in, out]`, `gamma`/`beta`).
    Native,
    /// PyTorch's `state_dict` (`Linear` weights `[out, in]`, `weight`/`bias` for batch norm).
    Torch,
}

/// What a non-strict load did: which parameters it loaded, which it left as they were, and which
/// tensors of the file it did not use (with why).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Parameters loaded from the file (model paths).
    pub loaded: Vec<String>,
    /// Parameters left unchanged: the file does not hold them under their name, or holds them
    /// with another shape or dtype (listed in `skipped` with the reason).
    pub missing: Vec<String>,
    /// Tensors of the file that were not loaded, with the reason (another shape or dtype, no such
    /// parameter in the model).
    pub skipped: Vec<(String, String)>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loaded {} tensors", self.loaded.len())?;
        if !self.missing.is_empty() {
            write!(f, "; kept {} as they were: {}", self.missing.len(), self.missing.join(", "))?;
        }
        for (name, why) in &self.skipped {
            write!(f, "; skipped `{name}`: {why}")?;
        }
        Ok(())
    }
}

/// One parameter as a file names and lays it out.
struct Slot {
    path: String,
    file_name: String,
    shape: Vec<usize>,
    /// The file holds the transpose (`Linear` weights in PyTorch's layout).
    transpose: bool,
}

fn slots<E: Elem>(model: &dyn ParamTree<E>, naming: Naming) -> Vec<Slot> {
    let mut out = Vec::new();
    model.visit(&ParamPath::ROOT, &mut |info, _| {
        let path = info.path.to_string();
        let (mut file_name, mut shape, mut transpose) = (path.clone(), info.shape.to_vec(), false);
        if naming == Naming::Torch {
            let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
            let join = |leaf: &str| if parent.is_empty() { leaf.to_string() } else { format!("{parent}.{leaf}") };
            match info.kind {
                ParamKind::Gamma => file_name = join("weight"),
                ParamKind::Beta => file_name = join("bias"),
                ParamKind::Weight { .. } if shape.len() == 2 => {
                    shape.reverse();
                    transpose = true;
                }
                _ => {}
            }
        }
        out.push(Slot { path, file_name, shape, transpose });
    });
    out
}

/// `[r, c]` row-major into `[c, r]`.
fn transposed<E: Copy>(data: &[E], r: usize, c: usize) -> Vec<E> {
    let mut out = Vec::with_capacity(data.len());
    for j in 0..c {
        out.extend((0..r).map(|i| data[i * c + j]));
    }
    out
}

/// Saves `model` in PyTorch's `state_dict` names and layouts (see the module docs), atomically.
pub fn save_torch<E: Elem, M: Module<E>>(model: &M, path: impl AsRef<Path>) -> Result<()> {
    save_torch_dyn(model, path.as_ref())
}

fn save_torch_dyn<E: Elem>(model: &dyn ParamTree<E>, path: &Path) -> Result<()> {
    let plan = slots(model, Naming::Torch);
    let dtype = dtype_of::<E>();
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    let mut i = 0;
    model.visit(&ParamPath::ROOT, &mut |info, data| {
        let s = &plan[i];
        i += 1;
        let values = if s.transpose { transposed(data, s.shape[1], s.shape[0]) } else { data.to_vec() };
        tensors.push((s.file_name.clone(), Raw { dtype, shape: s.shape.clone(), bytes: encode(&values) }));
        if info.kind == ParamKind::RunningVar {
            let counter = s.file_name.replace("running_var", "num_batches_tracked");
            tensors.push((counter, Raw { dtype: Dtype::I64, shape: vec![], bytes: vec![0; 8] }));
        }
    });
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(super::META_MODEL.to_string(), model.model_name());
    let bytes = safetensors::serialize(tensors.iter().map(|(n, r)| (n.as_str(), r)), Some(meta))
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads a checkpoint in PyTorch's `state_dict` names and layouts into `model`, strictly: every
/// parameter must be there with its shape and the model's dtype, and the file may hold nothing
/// else (but `num_batches_tracked` counters). On error the model is unchanged.
pub fn load_torch<E: Elem, M: Module<E>>(model: &mut M, path: impl AsRef<Path>) -> Result<()> {
    load_named(model, path.as_ref(), Naming::Torch, true).map(|_| ())
}

/// Loads what fits of the checkpoint at `path` (shaped's own naming) into `model`, for
/// fine-tuning: every parameter the file holds under its name with its shape and dtype is loaded,
/// the others stay as they are, and the report says which were loaded, kept and skipped. Values
/// must be finite; on error the model is unchanged.
pub fn load_partial<E: Elem, M: Module<E>>(model: &mut M, path: impl AsRef<Path>) -> Result<LoadReport> {
    load_named(model, path.as_ref(), Naming::Native, false)
}

/// [`load_partial`] for a file in PyTorch's naming and layout.
pub fn load_torch_partial<E: Elem, M: Module<E>>(model: &mut M, path: impl AsRef<Path>) -> Result<LoadReport> {
    load_named(model, path.as_ref(), Naming::Torch, false)
}

/// `e` (an error loading `parsed` in shaped's own naming into `model`) with a pointer to
/// [`load_torch`] when every parameter is in the file under PyTorch's name with PyTorch's shape.
pub(super) fn hint_torch<E: Elem>(e: Error, parsed: &super::read::Parsed, model: &dyn ParamTree<E>) -> Error {
    let fits = slots(model, Naming::Torch)
        .iter()
        .all(|s| parsed.tensors.get(&s.file_name).is_some_and(|t| t.shape == s.shape));
    match e {
        Error::Checkpoint { path, msg } if fits => Error::Checkpoint {
            path,
            msg: format!(
                "{msg}\n  (the file's tensors are named and laid out as a PyTorch state_dict of this model: \
                 load it with `io::load_torch`)"
            ),
        },
        e => e,
    }
}

fn load_named<E: Elem>(model: &mut dyn ParamTree<E>, path: &Path, naming: Naming, strict: bool) -> Result<LoadReport> {
    let parsed = parse(path)?;
    let plan = slots(model, naming);
    let dtype = dtype_of::<E>();
    let mut report = LoadReport::default();
    let mut problems = Vec::new();
    let mut used = HashSet::new();
    let mut staged: Vec<Option<Vec<E>>> = Vec::with_capacity(plan.len());
    for s in &plan {
        let Some(t) = parsed.tensors.get(&s.file_name) else {
            problems.push(format!("tensor `{}` (shape {:?}) is missing from the file", s.file_name, s.shape));
            report.missing.push(s.path.clone());
            staged.push(None);
            continue;
        };
        used.insert(s.file_name.clone());
        let why = if t.dtype != dtype {
            Some(format!("dtype {} in the file, the model's is {}", t.dtype, E::DTYPE))
        } else if t.shape != s.shape {
            Some(format!("shape {:?} in the file, the model expects {:?}", t.shape, s.shape))
        } else {
            None
        };
        if let Some(why) = why {
            problems.push(format!("tensor `{}` has {why}", s.file_name));
            report.skipped.push((s.file_name.clone(), why));
            report.missing.push(s.path.clone());
            staged.push(None);
            continue;
        }
        let values = parsed.values::<E>(&s.file_name, t)?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::checkpoint(
                path,
                format!(
                    "tensor `{}` holds {} at index {i}: a parameter must be finite",
                    s.file_name,
                    values[i].to_f64_lossy()
                ),
            ));
        }
        let (r, c) = (s.shape.first().copied().unwrap_or(0), s.shape.get(1).copied().unwrap_or(0));
        staged.push(Some(if s.transpose { transposed(&values, r, c) } else { values }));
        report.loaded.push(s.path.clone());
    }
    let unused: BTreeMap<_, _> = parsed
        .tensors
        .iter()
        .filter(|(n, _)| !(used.contains(*n) || naming == Naming::Torch && n.ends_with("num_batches_tracked")))
        .filter(|(n, _)| naming == Naming::Torch || !super::RESERVED_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    for (name, t) in unused {
        problems.push(format!("unexpected tensor `{name}` (shape {:?}): the model has no such parameter", t.shape));
        report.skipped.push((name.clone(), "the model has no such parameter".into()));
    }
    if strict && !problems.is_empty() {
        let n = problems.len();
        return Err(Error::checkpoint(path, format!("{n} tensors do not fit the model:\n  {}", problems.join("\n  "))));
    }
    let mut it = staged.into_iter();
    model.visit_mut(&ParamPath::ROOT, &mut |_, data| {
        if let Some(Some(v)) = it.next() {
            data.copy_from_slice(&v);
        }
    });
    Ok(report)
}
