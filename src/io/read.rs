//! Reading a checkpoint: the header alone first (checked against the file's size), then every
//! name, dtype and shape against the model, and only then the values (which must be finite).

use super::*;
use std::io::{Read, Seek, SeekFrom};

/// A checkpoint's header, read on its own, and the open file its tensors are read from.
pub(super) struct Parsed {
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// Where the tensor data starts: after the length field and the header.
    pub(super) data_start: u64,
    /// Every tensor's dtype, shape and byte range (relative to `data_start`), by name.
    pub(super) tensors: BTreeMap<String, TensorInfo>,
    pub(super) meta: HashMap<String, String>,
}

impl Parsed {
    /// The values of tensor `name` (whose dtype is `E`'s: checked by the caller), read from its
    /// byte range.
    pub(super) fn values<E: Elem>(&self, name: &str, info: &TensorInfo) -> Result<Vec<E>> {
        let (s, e) = info.data_offsets;
        let len = e - s;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).map_err(|_| {
            Error::checkpoint(&self.path, format!("tensor `{name}`: cannot allocate {len} bytes for its values"))
        })?;
        bytes.resize(len, 0);
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.data_start + s as u64))
            .and_then(|_| f.read_exact(&mut bytes))
            .map_err(|e| Error::checkpoint(&self.path, format!("tensor `{name}`: cannot read its {len} bytes: {e}")))?;
        let mut out = vec![E::zero(); len / size_of::<E>()];
        decode_into(&bytes, &mut out);
        Ok(out)
    }
}

/// Opens `path` and reads and checks its header against the file's real size: nothing is
/// allocated beyond the header, which is at most [`MAX_HEADER_BYTES`].
pub(super) fn parse(path: &Path) -> Result<Parsed> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let md = file.metadata().map_err(|e| Error::io(path, e))?;
    if !md.is_file() {
        return Err(Error::checkpoint(path, "not a regular file (a directory, device or FIFO)"));
    }
    let len = md.len();
    let mut head = [0u8; 8];
    let got = read_up_to(&mut &file, &mut head).map_err(|e| Error::io(path, e))?;
    if let Some(format) = crate::data::compressed_format(&head[..got]) {
        return Err(Error::checkpoint(
            path,
            format!("the file is {format}, not a safetensors file: decompress or extract it first"),
        ));
    }
    if len < 8 || got < 8 {
        return Err(Error::checkpoint(
            path,
            format!("the file is {len} bytes long, too short for a safetensors header: truncated or not a checkpoint"),
        ));
    }
    let n = u64::from_le_bytes(head);
    if n > len - 8 {
        return Err(Error::checkpoint(
            path,
            format!(
                "the header length field says {n} bytes but only {} follow: truncated or not a safetensors file",
                len - 8
            ),
        ));
    }
    if n > MAX_HEADER_BYTES {
        return Err(Error::checkpoint(
            path,
            format!(
                "the header length field says {n} bytes, more than the {MAX_HEADER_BYTES} a safetensors header \
                 may have: not a safetensors file"
            ),
        ));
    }
    let mut header = vec![0u8; n as usize];
    (&file).read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let invalid = |why: String| Error::checkpoint(path, format!("not a valid safetensors file ({len} bytes): {why}"));
    let metadata: Metadata = serde_json::from_slice(&header).map_err(|e| invalid(e.to_string()))?;
    // The tensors' ranges are contiguous from 0 (checked by `Metadata`): the last one's end is the
    // length of the data, which must reach exactly the end of the file.
    let mut tensors = BTreeMap::new();
    let mut data_len = 0u64;
    for (name, info) in metadata.tensors() {
        data_len = data_len.max(info.data_offsets.1 as u64);
        tensors.insert(name, info.clone());
    }
    let data_start = 8 + n;
    if data_start.checked_add(data_len) != Some(len) {
        return Err(invalid(format!(
            "the tensor data does not match the file size (truncated?): the header describes {data_len} bytes \
             of tensors, the file has {} after the header",
            len - data_start
        )));
    }
    let meta = metadata.metadata().clone().unwrap_or_default();
    Ok(Parsed { file, path: path.to_path_buf(), data_start, tensors, meta })
}

/// Reads `buf.len()` bytes or up to end of file; returns how many were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Checks every tensor of the file against `model` (from the header alone), then reads the
/// model's tensors (refusing NaN and infinities) and, with `want_extra`, the extra tensors.
/// Writes nothing: returns the checkpoint's extras and metadata and the model's values in visiting
/// order.
pub(super) fn validate<E: Elem>(
    parsed: &Parsed,
    model: &dyn ParamTree<E>,
    want_extra: bool,
) -> Result<(Checkpoint<E>, Vec<Vec<E>>)> {
    let path = parsed.path.as_path();
    let dtype = dtype_of::<E>();
    let file = &parsed.tensors;
    let mut problems = Vec::new();
    let mut model_names = HashSet::new();
    let mut wanted = Vec::new();
    model.visit(&ParamPath::ROOT, &mut |info, _| {
        let name = info.path.to_string();
        match file.get(name.as_str()) {
            None => problems.push(format!("tensor `{name}` (shape {:?}) is missing from the file", info.shape)),
            Some(t) => {
                if t.dtype != dtype {
                    problems.push(format!(
                        "tensor `{name}` has dtype {} in the file, but the model expects {}",
                        t.dtype,
                        E::DTYPE
                    ));
                } else if t.shape != info.shape {
                    problems.push(format!(
                        "tensor `{name}` has shape {:?} in the file, but the model expects {:?}",
                        t.shape, info.shape
                    ));
                }
            }
        }
        wanted.push(name.clone());
        model_names.insert(name);
    });

    let mut ckpt = Checkpoint::default();
    let mut extras = Vec::new();
    for (name, t) in file {
        if model_names.contains(name) {
            continue;
        }
        if !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            problems.push(format!(
                "unexpected tensor `{name}` (shape {:?}) in the file: the model has no such parameter",
                t.shape
            ));
            continue;
        }
        if t.dtype != dtype {
            problems.push(format!(
                "extra tensor `{name}` has dtype {} in the file, but the model's is {}",
                t.dtype,
                E::DTYPE
            ));
            continue;
        }
        extras.push((name, t));
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
    if !problems.is_empty() {
        return Err(Error::checkpoint(path, join_problems(problems, &ckpt, model.model_name())));
    }

    // Only now, with every name, dtype and shape right, are the values read.
    let mut staged = Vec::with_capacity(wanted.len());
    for name in &wanted {
        let values = parsed.values::<E>(name, &file[name.as_str()])?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::checkpoint(
                path,
                format!(
                    "tensor `{name}` holds {} at index {i}: a parameter must be finite (the saved run had \
                     diverged, or the file is damaged)",
                    values[i].to_f64_lossy()
                ),
            ));
        }
        staged.push(values);
    }
    if want_extra {
        for (name, t) in extras {
            let data = parsed.values::<E>(name, t)?;
            ckpt.extra.push((name.clone(), t.shape.clone(), data));
        }
    }
    Ok((ckpt, staged))
}

pub(super) fn join_problems<E>(problems: Vec<String>, ckpt: &Checkpoint<E>, model_type: String) -> String {
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

/// Copies the (validated) values of the file, in visiting order, into `model`.
pub(super) fn write_model<E: Elem>(staged: Vec<Vec<E>>, model: &mut dyn ParamTree<E>) {
    let mut it = staged.into_iter();
    model.visit_mut(&ParamPath::ROOT, &mut |_, data| {
        data.copy_from_slice(&it.next().expect("one staged tensor per parameter, validated before writing"));
    });
}
