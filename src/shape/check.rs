//! Where the rules are enforced: the derive's field-by-field check of a model ([`Checked`]), the
//! compile-time check of typed calls ([`expect`]) and the run-time evaluation that sizes buffers
//! ([`out_extents`]).

// A check's error is a `Msg` held by value: const evaluation cannot box.
#![allow(clippy::result_large_err)]

use super::msg::Msg;
use super::rule::{Extents, Rule, apply, describe, fits_memory};

/// Output extents of `rule` over `x` at run time; panics with the rule's message when it fails
/// (a derived model checks its rules at compile time, so this fires only for unchecked use).
pub fn out_extents(rule: &Rule, x: Extents) -> Extents {
    match apply(rule, x, &Msg::new()) {
        Ok(e) => e,
        Err(m) => panic!("{}", m.as_str()),
    }
}

/// Where a model's check failed: a field index, or one of the two markers below.
pub const AT_INPUT: usize = usize::MAX - 1;
/// No failure.
pub const AT_NONE: usize = usize::MAX;

/// The result of checking a derived model's rule, evaluated in a non-generic constant by the
/// derive: which field failed (or [`AT_NONE`]), the message, and the output extents.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    /// The failing field's index, [`AT_INPUT`] for the declared input, [`AT_NONE`] when all fit.
    pub at: usize,
    /// The error sentence.
    pub msg: Msg,
    /// The model's output extents (a flat `1` when the check failed, so that types stay well-formed).
    pub out: Extents,
}

impl Checked {
    /// Checks a derived model's rule (a [`Rule::Seq`] with a declared input) field by field.
    pub const fn model(rule: &Rule) -> Checked {
        let Rule::Seq(seq) = rule else {
            return Checked::fail(AT_INPUT, Msg::new().s("not a derived model"));
        };
        let Some(input) = seq.input else {
            return Checked { at: AT_NONE, msg: Msg::new(), out: Extents::flat(1) };
        };
        let mut i = 0;
        while i < input.rank() {
            if input.dim(i) == 0 {
                return Checked::fail(AT_INPUT, Msg::new().s(seq.name).s(": its input shape has an extent 0"));
            }
            i += 1;
        }
        match input.checked_numel() {
            Some(n) if fits_memory(n) => {}
            _ => {
                return Checked::fail(
                    AT_INPUT,
                    input.write(Msg::new().s(seq.name).s(": its input shape ")).s(" overflows"),
                );
            }
        }
        let mut cur = input;
        let mut i = 0;
        while i < seq.fields.len() {
            let f = &seq.fields[i];
            cur = match apply(&f.rule, cur, &Msg::new().s(f.name)) {
                Ok(e) => e,
                Err(m) => return Checked::fail(i, m),
            };
            i += 1;
        }
        if let Some(out) = seq.output
            && !out.same(&cur)
        {
            let m = out.write(Msg::new().s(seq.name).s(": declares output "));
            return Checked::fail(seq.fields.len() - 1, cur.write(m.s(", but its last layer produces ")));
        }
        Checked { at: AT_NONE, msg: Msg::new(), out: cur }
    }

    const fn fail(at: usize, msg: Msg) -> Checked {
        Checked { at, msg, out: Extents::flat(1) }
    }

    /// Whether the check failed at `at`.
    pub const fn failed_at(&self, at: usize) -> bool {
        self.at == at
    }
}

/// Checks at compile time (in a `const` block) that `rule` maps `input` to `output`; panics with
/// the rule's sentence otherwise. Typed calls on layers use it, so a wrong shape chained by hand
/// fails at `cargo build` with the same message as in a derived model.
pub const fn expect(rule: &Rule, input: Extents, output: Extents) {
    match apply(rule, input, &Msg::new()) {
        Ok(out) => {
            if !out.same(&output) {
                let m = describe(rule, Msg::new());
                let m = input.write(m.s(" maps ")).s(" to ");
                let m = output.write(out.write(m).s(", but the output tensor's shape is "));
                panic!("{}", m.as_str());
            }
        }
        Err(m) => panic!("{}", m.as_str()),
    }
}
