//! IDX images and labels, plain or gzip: any bytes give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaped::data::{Pixels, read_idx_images, read_idx_labels};

fuzz_target!(|data: &[u8]| {
    shaped_fuzz::with_file("idx", data, |p| {
        if let Ok((x, count, rows, cols)) = read_idx_images(p, Pixels::Unit) {
            assert_eq!(x.len(), count * rows * cols);
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let _ = read_idx_labels(p);
    });
});
