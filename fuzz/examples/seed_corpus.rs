//! Writes the seed inputs of the fuzz targets into `fuzz/seeds/<target>/` (valid files of each
//! format, so that the fuzzer starts from the interesting side of every check):
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example seed_corpus`.

use shaped::io;
use shaped::prelude::*;
use shaped_fuzz::{Net, NetIn};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn write(dir: &FsPath, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), bytes).expect("write");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");

    let d = root.join("idx");
    let images = idx(0x0803, &[2, 3, 2], &[0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    let labels = idx(0x0801, &[3], &[1, 9, 0]);
    write(&d, "images", &images);
    write(&d, "labels", &labels);
    write(&d, "images.gz", &gz(&images));
    write(&d, "labels.gz", &gz(&labels));
    write(&d, "empty-images", &idx(0x0803, &[0, 28, 28], &[]));

    let d = root.join("csv");
    // The first byte is the number of classes (mod 12).
    write(&d, "binary20", b"\x02x0,x1,x2,label\n0.5,1e-3,-2,1\n1,2,3,0\n\n4.5,.5,6,1.0\n");
    write(&d, "crlf-quoted", b"\x03\"a\", label ,b\r\n0.5,2,-2\r\n 1 ,0, 3\r\n");
    write(&d, "bom", "\u{3}\u{feff}label,x\n1,2\n".as_bytes());

    let d = root.join("cifar");
    let mut rec = vec![7u8];
    rec.extend((0..3072u32).map(|i| (i * 13) as u8));
    write(&d, "one-record", &rec);
    rec[0] = 0;
    write(&d, "one-record-label-0", &rec);

    let d = root.join("checkpoint");
    std::fs::create_dir_all(&d).expect("mkdir");
    let net = Net::init(&mut rand::rngs::StdRng::seed_from_u64(1), Init::He);
    io::save(&net, &d.join("params")).expect("save");
    io::save_checkpoint(&net, &Adam::<f32>::new(), &[("epoch".into(), "1".into())], &d.join("adam")).expect("save");
    let set = shaped_fuzz::tiny_set();
    let tmp = std::env::temp_dir().join(format!("shaped-seed-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let best = tmp.join("best.safetensors");
    let mut m = Net::init(&mut rand::rngs::StdRng::seed_from_u64(2), Init::He);
    shaped_fuzz::solver()
        .epochs(2)
        .checkpoint(&best)
        .train::<NetIn, _, _>(&mut m, &SoftmaxCrossEntropy::<2>, &set, &set)
        .expect("training");
    std::fs::copy(shaped::solver::last_checkpoint_path(&best), d.join("resumable")).expect("copy");
    std::fs::remove_dir_all(&tmp).expect("cleanup");
    println!("seeds written to {}", root.display());
}
