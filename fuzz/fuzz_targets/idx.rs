//! IDX images and labels, plain or gzip: any bytes give a value or an error, never a panic; the
//! header-only reader agrees with the full one (a header it accepts is the one the full read
//! returns, and a header it refuses makes the full read fail), so the sizes are checked before
//! anything is allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaped::data::{Pixels, read_idx_image_header, read_idx_images, read_idx_labels};

fuzz_target!(|data: &[u8]| {
    shaped_fuzz::with_file("idx", data, |p| {
        let header = read_idx_image_header(p);
        if let Ok((x, count, rows, cols)) = read_idx_images(p, Pixels::Unit) {
            assert_eq!(x.len(), count * rows * cols);
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
            assert_eq!(header.ok(), Some((count, rows, cols)), "the header-only read disagrees");
        }
        let _ = read_idx_labels(p);
    });
});
