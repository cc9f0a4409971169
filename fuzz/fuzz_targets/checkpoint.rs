//! Checkpoints: plain loads, loads with optimizer state, header metadata, and the solver's resume
//! path. A failed load must leave the model unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shaped::io;
use shaped::prelude::*;
use shaped_fuzz::{Net, NetIn};

/// Every parameter and buffer, as bits.
fn bits(m: &Net) -> Vec<u32> {
    let mut out = Vec::new();
    m.visit_params(&ParamPath::ROOT, &mut |_, d| out.extend(d.iter().map(|v| v.to_bits())));
    out
}

fuzz_target!(|data: &[u8]| {
    shaped_fuzz::with_file("checkpoint", data, |p| {
        let _ = io::read_metadata(p);
        let mut m = Net::zeros();
        let before = bits(&m);
        if io::load(&mut m, p).is_err() {
            assert_eq!(bits(&m), before, "a failed load changed the model");
        }
        let mut m = Net::zeros();
        let mut opt = Adam::new();
        if io::load_checkpoint(&mut m, &mut opt, p).is_err() {
            assert_eq!(bits(&m), before, "a failed load_checkpoint changed the model");
        }
        let set = shaped_fuzz::tiny_set();
        let mut m = Net::zeros();
        let r = shaped_fuzz::solver().epochs(0).resume_from(p).train::<NetIn, _, _>(
            &mut m,
            &SoftmaxCrossEntropy::<2>,
            &set,
            &set,
        );
        if r.is_err() {
            assert_eq!(bits(&m), before, "a failed resume changed the model");
        }
    });
});
