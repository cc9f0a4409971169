//! `examples/resnet_cifar.rs` (a small ResNet: `Residual`, batch norm, global pooling, per-batch
//! augmentation) on synthetic CIFAR-format files from `examples/make_cifar.rs`: the loss falls.
//! The two examples are compiled into this test as modules, so it runs the code a user runs.

#[allow(dead_code)]
#[path = "../examples/make_cifar.rs"]
mod make_cifar;
#[allow(dead_code)]
#[path = "../examples/resnet_cifar.rs"]
mod resnet_cifar;

use clap::Parser;

#[test]
fn resnet_loss_falls_on_synthetic_cifar() {
    let dir = std::env::temp_dir().join(format!("shaped-resnet-cifar-{}", std::process::id()));
    make_cifar::write(&dir, 100).unwrap();
    let args = resnet_cifar::Args::parse_from([
        "resnet_cifar",
        dir.to_str().unwrap(),
        "--epochs",
        "3",
        "--batch",
        "32",
        "--json",
    ]);
    let report = resnet_cifar::run(&args).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let l = &report.epoch_loss;
    assert_eq!(l.len(), 3);
    assert!(l.iter().all(|v| v.is_finite()), "{l:?}");
    assert!(l[2] < 0.8 * l[0], "the training loss falls: {l:?}");
    assert!(report.test_acc > 0.2, "better than chance (0.1) on the test file: {}", report.test_acc);
}
