//! PyTorch `state_dict` export and import (names, layouts, the batch-norm counter) and non-strict
//! loading for fine-tuning.

use shaped::io::{self, LoadReport};
use shaped::prelude::*;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Sequential)]
#[sequential(input = (1, 6, 6))]
struct Small {
    conv: Conv2d<1, 2, 3>,
    bn: BatchNorm2d<2>,
    relu: ReLU,
    flat: Flatten,
    fc: Linear<32, 3>,
}

#[derive(Clone, Debug, PartialEq, Sequential)]
#[sequential(input = (1, 6, 6))]
struct OtherHead {
    conv: Conv2d<1, 2, 3>,
    bn: BatchNorm2d<2>,
    relu: ReLU,
    flat: Flatten,
    fc: Linear<32, 5>,
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shaped-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Every parameter and buffer distinct.
fn distinct<M: Module<f32>>() -> M {
    let mut m = M::zeros();
    let mut k = 0.0f32;
    m.visit_params_mut(&ParamPath::ROOT, &mut |_, d| {
        for v in d {
            k += 1.0;
            *v = k * 0.25;
        }
    });
    m
}

#[test]
fn torch_export_names_layouts_and_round_trip() {
    let net: Small = distinct();
    let p = tmp("small.pt.safetensors");
    io::save_torch(&net, &p).unwrap();

    // The file in PyTorch's terms.
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "conv.bias",
            "conv.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    let fc = st.tensor("fc.weight").unwrap();
    assert_eq!(fc.shape(), [3, 32], "Linear weights are [out, in]");
    let vals: Vec<f32> = fc.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let w = net.fc.weight.as_slice(); // [in = 32, out = 3]
    for o in 0..3 {
        for i in 0..32 {
            assert_eq!(vals[o * 32 + i], w[i * 3 + o], "fc.weight[{o}, {i}]");
        }
    }
    let gamma = st.tensor("bn.weight").unwrap();
    let g: Vec<f32> = gamma.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(g, net.bn.params.gamma.as_slice());
    let counter = st.tensor("bn.num_batches_tracked").unwrap();
    assert_eq!((counter.dtype(), counter.shape()), (safetensors::Dtype::I64, &[][..]));
    assert_eq!(st.tensor("conv.weight").unwrap().shape(), [2, 1, 3, 3]);

    // And back.
    let mut back = Small::zeros();
    io::load_torch(&mut back, &p).unwrap();
    assert_eq!(back, net);
    // shaped's own loader refuses the PyTorch layout, naming what differs.
    let err = io::load(&mut Small::zeros(), &p).unwrap_err().to_string();
    assert!(err.contains("bn.gamma") && err.contains("missing"), "{err}");
    // ... and points to the loader that reads it.
    assert!(err.contains("load it with `io::load_torch`"), "{err}");
    // Another model's state_dict gets no such pointer.
    io::save_torch(&distinct::<OtherHead>(), &p).unwrap();
    let err = io::load(&mut Small::zeros(), &p).unwrap_err().to_string();
    assert!(!err.contains("load_torch"), "{err}");
}

#[test]
fn torch_import_is_strict_and_leaves_the_model_on_error() {
    let p = tmp("other.pt.safetensors");
    io::save_torch(&distinct::<OtherHead>(), &p).unwrap();
    let mut m: Small = distinct();
    let before = m.clone();
    let err = io::load_torch(&mut m, &p).unwrap_err().to_string();
    assert!(err.contains("`fc.weight`") && err.contains("[5, 32]") && err.contains("[3, 32]"), "{err}");
    assert_eq!(m, before, "a failed load changed the model");
}

#[test]
fn partial_load_reports_what_it_skipped() {
    // Fine-tuning: the backbone of one model into another with a different head.
    let p = tmp("other.safetensors");
    let src: OtherHead = distinct();
    io::save(&src, &p).unwrap();
    let mut m: Small = Small::zeros();
    let report: LoadReport = io::load_partial(&mut m, &p).unwrap();
    assert_eq!(report.loaded, ["conv.weight", "conv.bias", "bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var"]);
    assert_eq!(report.missing, ["fc.weight", "fc.bias"]);
    let skipped: Vec<&str> = report.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["fc.weight", "fc.bias"]);
    assert!(report.skipped[0].1.contains("[32, 5]"), "{report}");
    assert_eq!(m.conv, src.conv);
    assert_eq!(m.fc, Small::zeros().fc, "the head is kept");
    assert!(report.to_string().contains("skipped `fc.weight`"), "{report}");

    // The same through PyTorch's naming.
    let pt = tmp("other2.pt.safetensors");
    io::save_torch(&src, &pt).unwrap();
    let mut m2 = Small::zeros();
    let r2 = io::load_torch_partial(&mut m2, &pt).unwrap();
    assert_eq!(r2.loaded.len(), 6);
    assert_eq!(m2.bn, src.bn);
}
