//! CIFAR-10 binary batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaped::data::{Pixels, read_cifar_batch};

fuzz_target!(|data: &[u8]| {
    shaped_fuzz::with_file("cifar", data, |p| {
        if let Ok(ds) = read_cifar_batch(p, Pixels::Raw) {
            assert_eq!(ds.len() * 3073, data.len());
            assert!(ds.labels().iter().all(|&l| l < 10));
        }
    });
});
