//! The training-curve PNG: drawn from a history, a valid PNG of the promised size (needs a TrueType
//! font: Debian's fonts-dejavu-core, installed by `.ci/run`).

use shaped::solver::History;

#[test]
fn history_plot_is_a_png() {
    let hist = History {
        loss: (0..200).map(|i| 2.3 * (-(i as f32) / 80.0).exp() + 0.2).collect(),
        train_acc: vec![0.5, 0.7, 0.8, 0.85],
        val_acc: vec![0.45, 0.65, 0.75, 0.78],
        lr: vec![1e-3; 4],
        best_epoch: 4,
        best_val_acc: 0.78,
        train_seconds: 1.0,
        train_samples: 1000,
        ..History::default()
    };
    let dir = std::env::temp_dir().join(format!("shaped-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("curves.png");
    shaped::plot::plot_history(&hist, "test", &path).expect("the plot is drawn");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let (w, h) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1200, 450));
    assert!(bytes.len() > 10_000, "a real picture, not an empty canvas: {} bytes", bytes.len());
}
