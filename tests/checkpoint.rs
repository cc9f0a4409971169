//! safetensors checkpoints: round trips, the file format, and every way a load can fail.

use shaped::Error;
use shaped::io::{self, Checkpoint};
use shaped::optim::{Adam, Optimizer, SgdMomentum};
use shaped::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

// ---- test models: two modules under "fc1" and "fc2", or one under "fc1" ----

#[derive(Clone, Debug, PartialEq, Sequential)]
struct Pair<A, B> {
    fc1: A,
    fc2: B,
}

#[derive(Clone, Debug, PartialEq, Sequential)]
struct One<A> {
    fc1: A,
}

/// `fc1` a linear layer, `fc2` a batch norm (so buffers are saved too).
type Net = Pair<Linear<3, 4, f32>, BatchNorm1d<4, f32>>;

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// A model with every parameter and buffer distinct and nonzero.
fn random<M: Module<f32>>(seed: u64) -> M {
    let mut m = M::init(&mut rng(seed), Init::Gaussian(1.0));
    let mut k = 0.0f32;
    m.visit_params_mut(&ParamPath::ROOT, &mut |_, d| {
        for v in d {
            k += 1.0;
            *v += k * 0.125;
        }
    });
    m
}

/// A fresh directory under cargo's target tmp dir.
fn tmpdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dir_listing(dir: &FsPath) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[track_caller]
fn checkpoint_msg(e: Error) -> String {
    match e {
        Error::Checkpoint { msg, .. } => msg,
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

// ---- round trips ----

#[test]
fn round_trip_lone_layer() {
    let dir = tmpdir("lone");
    let p = dir.join("fc.safetensors");
    let fc: Linear<3, 2, f32> = random(1);
    io::save(&fc, &p).unwrap();
    let mut back = Linear::<3, 2, f32>::zeros();
    io::load(&mut back, &p).unwrap();
    assert_eq!(back, fc);

    let fc64 = Linear::<3, 2, f64>::init(&mut rng(2), Init::He);
    io::save(&fc64, &p).unwrap();
    let mut back64 = Linear::<3, 2, f64>::zeros();
    io::load(&mut back64, &p).unwrap();
    assert_eq!(back64, fc64);
    assert_eq!(dir_listing(&dir), ["fc.safetensors"]);
}

#[test]
fn round_trip_nested_model_with_buffers_extras_and_metadata() {
    let dir = tmpdir("nested");
    let p = dir.join("net.safetensors");
    let net: Net = random(3);
    let extra = vec![("optim.note".to_string(), vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])];
    let meta = vec![("epoch".to_string(), "7".to_string()), ("val_acc".to_string(), "0.976".to_string())];
    io::save_with(&net, &extra, &meta, &p).unwrap();

    let mut back = Net::zeros();
    let ck: Checkpoint<f32> = io::load_with(&mut back, &p).unwrap();
    assert_eq!(back, net);
    assert_eq!(back.fc2.params.running_var, net.fc2.params.running_var);
    assert_eq!(ck.extra, extra);
    assert_eq!(ck.extra("optim.note"), Some((&[2usize, 2][..], &[1.0f32, 2.0, 3.0, 4.0][..])));
    assert_eq!(ck.metadata, meta);
    assert_eq!(ck.metadata("epoch"), Some("7"));
    assert_eq!(ck.model_type.as_deref(), Some("Pair<Linear<3, 4>, BatchNorm1d<4>>"));
    assert_eq!(ck.optimizer, None);

    // Plain `load` accepts (and ignores) the reserved extras.
    let mut again = Net::zeros();
    io::load(&mut again, &p).unwrap();
    assert_eq!(again, net);
}

// ---- the file format, parsed by hand ----

/// Just enough JSON for a safetensors header.
#[derive(Debug, PartialEq)]
enum Json {
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

fn parse_json(s: &[u8]) -> Json {
    fn ws(s: &[u8], i: &mut usize) {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(s: &[u8], i: &mut usize) -> Json {
        ws(s, i);
        match s[*i] {
            b'{' => {
                *i += 1;
                let mut m = BTreeMap::new();
                loop {
                    ws(s, i);
                    if s[*i] == b'}' {
                        *i += 1;
                        break;
                    }
                    let Json::Str(k) = value(s, i) else { panic!("object key is not a string") };
                    ws(s, i);
                    assert_eq!(s[*i], b':');
                    *i += 1;
                    let v = value(s, i);
                    assert!(m.insert(k, v).is_none(), "duplicate key");
                    ws(s, i);
                    if s[*i] == b',' {
                        *i += 1;
                    }
                }
                Json::Obj(m)
            }
            b'[' => {
                *i += 1;
                let mut v = Vec::new();
                loop {
                    ws(s, i);
                    if s[*i] == b']' {
                        *i += 1;
                        break;
                    }
                    v.push(value(s, i));
                    ws(s, i);
                    if s[*i] == b',' {
                        *i += 1;
                    }
                }
                Json::Arr(v)
            }
            b'"' => {
                *i += 1;
                let start = *i;
                while s[*i] != b'"' {
                    assert_ne!(s[*i], b'\\', "escapes are not expected in this header");
                    *i += 1;
                }
                let out = String::from_utf8(s[start..*i].to_vec()).unwrap();
                *i += 1;
                Json::Str(out)
            }
            _ => {
                let start = *i;
                while *i < s.len() && (s[*i].is_ascii_digit() || b"+-.eE".contains(&s[*i])) {
                    *i += 1;
                }
                Json::Num(std::str::from_utf8(&s[start..*i]).unwrap().parse().unwrap())
            }
        }
    }
    let mut i = 0;
    let v = value(s, &mut i);
    ws(s, &mut i);
    assert_eq!(i, s.len(), "trailing bytes after the header JSON");
    v
}

fn nums(j: &Json) -> Vec<usize> {
    let Json::Arr(a) = j else { panic!("not an array: {j:?}") };
    a.iter()
        .map(|x| match x {
            Json::Num(n) => *n as usize,
            _ => panic!("not a number"),
        })
        .collect()
}

#[test]
fn file_is_standard_safetensors() {
    let dir = tmpdir("format");
    let p = dir.join("net.safetensors");
    let net: Net = random(4);
    io::save_with(&net, &[], &[("epoch".into(), "3".into())], &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();

    // 8-byte little-endian header length, then that much JSON (padded with spaces to 8 bytes).
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert!(n.is_multiple_of(8));
    let header = &bytes[8..8 + n];
    assert_eq!(header[0], b'{');
    let Json::Obj(h) = parse_json(header) else { panic!("header is not an object") };
    let data = &bytes[8 + n..];

    let Some(Json::Obj(meta)) = h.get("__metadata__") else { panic!("no __metadata__") };
    assert_eq!(meta.get("epoch"), Some(&Json::Str("3".into())));
    assert_eq!(meta.get("shaped.model"), Some(&Json::Str("Pair<Linear<3, 4>, BatchNorm1d<4>>".into())));

    let mut expected = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |info, d| {
        expected.push((info.path.to_string(), info.shape.to_vec(), d.to_vec()))
    });
    let names: Vec<&String> = h.keys().filter(|k| *k != "__metadata__").collect();
    assert_eq!(names.len(), expected.len(), "{names:?}");
    let mut covered = 0;
    for (name, shape, values) in &expected {
        let Some(Json::Obj(t)) = h.get(name) else { panic!("tensor `{name}` missing from the header") };
        assert_eq!(t.get("dtype"), Some(&Json::Str("F32".into())), "{name}");
        assert_eq!(&nums(&t["shape"]), shape, "{name}");
        let off = nums(&t["data_offsets"]);
        assert_eq!(off[1] - off[0], values.len() * 4, "{name}");
        let decoded: Vec<f32> =
            data[off[0]..off[1]].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(&decoded, values, "{name}");
        covered += off[1] - off[0];
    }
    assert_eq!(covered, data.len(), "the data section holds exactly the tensors");
    for name in ["fc1.weight", "fc1.bias", "fc2.gamma", "fc2.beta", "fc2.running_mean", "fc2.running_var"] {
        assert!(h.contains_key(name), "{name}");
    }

    // f64 models are stored as F64; a lone layer's tensors are `weight` and `bias`.
    let fc = Linear::<3, 2, f64>::init(&mut rng(5), Init::He);
    io::save(&fc, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let Json::Obj(h) = parse_json(&bytes[8..8 + n]) else { panic!() };
    let Some(Json::Obj(w)) = h.get("weight") else { panic!("no `weight`: {h:?}") };
    assert_eq!(w.get("dtype"), Some(&Json::Str("F64".into())));
    assert_eq!(nums(&w["shape"]), [3, 2]);
    let off = nums(&w["data_offsets"]);
    let first = f64::from_le_bytes(bytes[8 + n + off[0]..8 + n + off[0] + 8].try_into().unwrap());
    assert_eq!(first, fc.weight.as_slice()[0]);
    assert!(h.contains_key("bias"));
}

// ---- failed loads ----

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let dir = tmpdir("shape");
    let p = dir.join("fc.safetensors");
    io::save(&random::<Linear<3, 2, f32>>(6), &p).unwrap();
    let mut fc: Linear<4, 2, f32> = random(7);
    let before = fc.clone();
    let msg = checkpoint_msg(io::load(&mut fc, &p).unwrap_err());
    assert!(msg.contains("tensor `weight` has shape [3, 2] in the file, but the model expects [4, 2]"), "{msg}");
    assert!(msg.contains("Linear<3, 2>") && msg.contains("Linear<4, 2>"), "{msg}");
    assert_eq!(fc, before, "the model changed after a failed load");

    // The error's Display names the file.
    let shown = io::load(&mut fc, &p).unwrap_err().to_string();
    assert!(shown.contains("fc.safetensors"), "{shown}");
}

#[test]
fn partial_mismatch_leaves_model_unchanged() {
    // fc1 fits, fc2 does not: fc1 must not be written either.
    let dir = tmpdir("partial");
    let p = dir.join("pair.safetensors");
    io::save(&random::<Pair<Linear<3, 4, f32>, Linear<4, 2, f32>>>(8), &p).unwrap();
    let mut m: Pair<Linear<3, 4, f32>, Linear<4, 3, f32>> = random(9);
    let before = m.clone();
    let msg = checkpoint_msg(io::load(&mut m, &p).unwrap_err());
    assert!(msg.contains("tensor `fc2.weight` has shape [4, 2] in the file, but the model expects [4, 3]"), "{msg}");
    assert!(msg.contains("tensor `fc2.bias` has shape [2] in the file, but the model expects [3]"), "{msg}");
    assert!(!msg.contains("fc1"), "{msg}");
    assert_eq!(m, before);
}

#[test]
fn wrong_dtype() {
    let dir = tmpdir("dtype");
    let p = dir.join("fc.safetensors");
    io::save(&Linear::<3, 2, f64>::init(&mut rng(10), Init::He), &p).unwrap();
    let mut fc: Linear<3, 2, f32> = random(11);
    let before = fc.clone();
    let msg = checkpoint_msg(io::load(&mut fc, &p).unwrap_err());
    assert!(msg.contains("tensor `weight` has dtype F64 in the file, but the model expects F32"), "{msg}");
    assert!(msg.contains("`bias`"), "{msg}");
    assert_eq!(fc, before);
}

#[test]
fn missing_tensor() {
    let dir = tmpdir("missing");
    let p = dir.join("one.safetensors");
    io::save(&random::<One<Linear<3, 4, f32>>>(12), &p).unwrap();
    let mut m: Pair<Linear<3, 4, f32>, Linear<4, 2, f32>> = random(13);
    let before = m.clone();
    let msg = checkpoint_msg(io::load(&mut m, &p).unwrap_err());
    assert!(msg.contains("tensor `fc2.weight` (shape [4, 2]) is missing from the file"), "{msg}");
    assert!(msg.contains("tensor `fc2.bias` (shape [2]) is missing from the file"), "{msg}");
    assert_eq!(m, before);
}

#[test]
fn extra_tensor() {
    let dir = tmpdir("extra");
    let p = dir.join("pair.safetensors");
    io::save(&random::<Pair<Linear<3, 4, f32>, Linear<4, 2, f32>>>(14), &p).unwrap();
    let mut m: One<Linear<3, 4, f32>> = random(15);
    let before = m.clone();
    let msg = checkpoint_msg(io::load(&mut m, &p).unwrap_err());
    assert!(msg.contains("unexpected tensor `fc2.weight` (shape [4, 2])"), "{msg}");
    assert!(msg.contains("unexpected tensor `fc2.bias` (shape [2])"), "{msg}");
    assert_eq!(m, before);
}

#[test]
fn extras_need_a_reserved_prefix() {
    let dir = tmpdir("prefix");
    let p = dir.join("fc.safetensors");
    let fc: Linear<3, 2, f32> = random(16);
    let bad = vec![("velocity".to_string(), vec![1], vec![0.0f32])];
    let msg = checkpoint_msg(io::save_with(&fc, &bad, &[], &p).unwrap_err());
    assert!(msg.contains("`velocity`") && msg.contains("optim."), "{msg}");
    let clash = vec![("optim.x".to_string(), vec![2], vec![0.0f32])];
    assert!(io::save_with(&fc, &clash, &[], &p).is_err(), "shape [2] with 1 value was accepted");
    let reserved_meta = vec![("shaped.model".to_string(), "x".to_string())];
    assert!(io::save_with(&fc, &[], &reserved_meta, &p).is_err());
    assert!(!p.exists());
    assert!(dir_listing(&dir).is_empty());
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let dir = tmpdir("truncated");
    let p = dir.join("net.safetensors");
    let net: Net = random(17);
    io::save(&net, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let q = dir.join("cut.safetensors");
    let mut m: Net = random(18);
    let before = m.clone();
    for len in 0..bytes.len() {
        std::fs::write(&q, &bytes[..len]).unwrap();
        let err = io::load(&mut m, &q).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("cut.safetensors"), "length {len}: {shown}");
        checkpoint_msg(err);
        assert_eq!(m, before, "length {len}");
    }
    // Trailing bytes are rejected too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    std::fs::write(&q, &longer).unwrap();
    assert!(io::load(&mut m, &q).is_err());
    // The intact file still loads.
    io::load(&mut m, &p).unwrap();
    assert_eq!(m, net);
}

#[test]
fn garbage_files_are_errors() {
    let dir = tmpdir("garbage");
    let q = dir.join("garbage.safetensors");
    let mut fc: Linear<3, 2, f32> = random(19);
    let before = fc.clone();
    let mut header_not_json = 16u64.to_le_bytes().to_vec();
    header_not_json.extend_from_slice(b"not json at all!");
    let mut header_wrong_offsets = Vec::new();
    let h = br#"{"weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,99]}}"#;
    header_wrong_offsets.extend_from_slice(&(h.len() as u64).to_le_bytes());
    header_wrong_offsets.extend_from_slice(h);
    header_wrong_offsets.extend_from_slice(&[0u8; 24]);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello, this is not a checkpoint at all".to_vec(),
        (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
        u64::MAX.to_le_bytes().to_vec(),
        header_not_json,
        header_wrong_offsets,
    ];
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(&q, c).unwrap();
        let err = io::load(&mut fc, &q).unwrap_err();
        assert!(err.to_string().contains("garbage.safetensors"), "case {i}: {err}");
        checkpoint_msg(err);
        assert_eq!(fc, before, "case {i}");
    }
    // A missing file is an I/O error naming it.
    let err = io::load(&mut fc, dir.join("nope.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("nope.safetensors"), "{err}");
}

// ---- atomic saves ----

#[test]
fn atomic_save_leaves_no_temp_files() {
    let dir = tmpdir("atomic");
    let p = dir.join("model.safetensors");
    let a: Net = random(20);
    let b: Net = random(21);
    io::save(&a, &p).unwrap();
    io::save(&b, &p).unwrap(); // overwrites
    assert_eq!(dir_listing(&dir), ["model.safetensors"]);
    let mut m = Net::zeros();
    io::load(&mut m, &p).unwrap();
    assert_eq!(m, b);

    // A save onto a directory is refused before anything is written.
    let target_dir = dir.join("occupied");
    std::fs::create_dir(&target_dir).unwrap();
    std::fs::write(target_dir.join("keep"), b"x").unwrap();
    let err = io::save(&a, &target_dir).unwrap_err();
    assert!(matches!(err, Error::Output { .. }) && err.to_string().contains("is a directory"), "{err}");
    assert_eq!(dir_listing(&dir), ["model.safetensors", "occupied"]);
    assert_eq!(dir_listing(&target_dir), ["keep"]);

    // A save into a missing directory fails cleanly; the previous checkpoint survives failures.
    assert!(io::save(&a, dir.join("no/such/dir/m.safetensors")).is_err());
    let mut m = Net::zeros();
    io::load(&mut m, &p).unwrap();
    assert_eq!(m, b);
    assert_eq!(dir_listing(&dir), ["model.safetensors", "occupied"]);
}

// ---- optimizer state ----

#[test]
fn resume_with_optimizer_state_reproduces_training() {
    type M = Pair<Linear<3, 4, f32>, BatchNorm1d<4, f32>>;
    let dir = tmpdir("resume");
    let p = dir.join("ckpt.safetensors");
    let g: M = random(22);
    let mut m: M = random(23);
    let mut opt = Adam::new();
    for _ in 0..3 {
        opt.step(&mut m, &g, 1e-2);
    }
    io::save_checkpoint(&m, &opt, &[("epoch".into(), "3".into())], &p).unwrap();

    let mut m2 = M::zeros();
    let mut opt2 = Adam::new();
    let ck = io::load_checkpoint(&mut m2, &mut opt2, &p).unwrap();
    assert_eq!(ck.metadata("epoch"), Some("3"));
    assert_eq!(ck.optimizer.as_deref(), Some("adam"));
    assert_eq!(ck.optimizer_steps, Some(3));
    assert!(ck.extra("optim.m.fc1.weight").is_some());
    assert!(ck.extra("optim.v.fc2.gamma").is_some());
    assert!(ck.extra("optim.m.fc2.running_mean").is_none(), "buffers have no optimizer state");
    assert_eq!(m2, m);
    assert_eq!(opt2.step_count(), 3);
    opt.step(&mut m, &g, 1e-2);
    opt2.step(&mut m2, &g, 1e-2);
    assert_eq!(m2, m, "the resumed run diverged from the uninterrupted one");

    // The wrong rule, or a file without optimizer state, is an error that changes nothing.
    let mut m3: M = random(24);
    let before = m3.clone();
    let mut mom = SgdMomentum::new();
    let msg = checkpoint_msg(io::load_checkpoint(&mut m3, &mut mom, &p).unwrap_err());
    assert!(msg.contains("adam") && msg.contains("sgd_momentum"), "{msg}");
    assert_eq!(m3, before);
    assert!(!mom.has_state());
    io::save(&m, &p).unwrap();
    let msg = checkpoint_msg(io::load_checkpoint(&mut m3, &mut opt2, &p).unwrap_err());
    assert!(msg.contains("no optimizer state"), "{msg}");
    assert_eq!(m3, before);
    assert_eq!(opt2.step_count(), 4);
}

#[test]
fn optimizer_state_before_the_first_step_is_saved_as_zeros() {
    let dir = tmpdir("fresh-opt");
    let p = dir.join("ckpt.safetensors");
    let fc: Linear<3, 2, f32> = random(25);
    io::save_checkpoint(&fc, &SgdMomentum::new(), &[], &p).unwrap();
    let mut back = Linear::<3, 2, f32>::zeros();
    let mut opt = SgdMomentum::new();
    let ck = io::load_checkpoint(&mut back, &mut opt, &p).unwrap();
    assert_eq!(back, fc);
    assert_eq!(ck.extra("optim.velocity.weight"), Some((&[6usize][..], &[0.0f32; 6][..])));
    let mut names = Vec::new();
    opt.visit_state(&mut |n, d| {
        assert!(d.iter().all(|&v| v == 0.0));
        names.push(n.to_string());
    });
    assert_eq!(names, ["velocity.weight", "velocity.bias"]);
}
