//! CSV data sets: the first byte chooses the number of classes, the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaped::data::read_csv;

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else { return };
    let classes = usize::from(first % 12);
    shaped_fuzz::with_file("csv", text, |p| {
        if let Ok(ds) = read_csv(p, "label", classes) {
            assert!(!ds.is_empty());
            assert_eq!(ds.features().len(), ds.len() * ds.sample_len());
            assert!(ds.labels().iter().all(|&l| l < classes));
            assert!(ds.features().iter().all(|v| v.is_finite()));
        }
    });
});
