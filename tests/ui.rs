//! Compile-time diagnostics of `#[derive(Sequential)]` and the shape rules (trybuild snapshots under
//! `tests/ui/`), and models of the homework that must compile. Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test --test ui` (they follow the wording of the pinned toolchain).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*_fail.rs");
    t.pass("tests/ui/*_pass.rs");
}
