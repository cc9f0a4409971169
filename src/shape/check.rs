//! Where the rules are enforced: the derive's field-by-field check of a model ([`Checked`]), the
//! compile-time check of typed calls ([`expect`]) and the run-time evaluation that sizes buffers
//! ([`out_extents`]).

// A check's error is a `Msg` held by value: const evaluation cannot box.
#![allow(clippy::result_large_err)]

use super::msg::Msg;
use super::rule::{Extents, Field, Rule, apply, describe, fits_memory};

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
    /// The model's output extents. When the check failed: the declared output if there is one,
    /// else what the layers from the failing one on would produce had each got the input it
    /// expects (a `Linear<100, 10>` after 128 features still outputs 10), so that the code using
    /// the model does not fail a second time on a made-up output; a flat `1` when that cannot be
    /// told.
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
                Err(m) => {
                    let out = match seq.output {
                        Some(out) => out,
                        None => guess_out(seq.fields, i, cur),
                    };
                    return Checked { at: i, msg: m, out };
                }
            };
            i += 1;
        }
        if let Some(out) = seq.output
            && !out.same(&cur)
        {
            let m = out.write(Msg::new().s(seq.name).s(": declares output "));
            let m = cur.write(m.s(", but its last layer produces "));
            return Checked { at: seq.fields.len() - 1, msg: m, out };
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

/// The output of `fields[from..]` on `x`, where field `from` refused `x`: each layer that refuses
/// its input is given the one it expects where its rule says which (the features of a `Linear`
/// or a `BatchNorm1d`, the channels of a convolution or a `BatchNorm2d`, with `x`'s map); a flat
/// `1` when a layer refuses and its rule does not say.
const fn guess_out(fields: &[Field], from: usize, x: Extents) -> Extents {
    let mut cur = x;
    let mut i = from;
    while i < fields.len() {
        let rule = &fields[i].rule;
        cur = match apply(rule, cur, &Msg::new()) {
            Ok(e) => e,
            Err(_) => {
                let wanted = match *rule {
                    Rule::Dense { i, .. } | Rule::Features { n: i, .. } => Some(Extents::flat(i)),
                    Rule::Conv { c, .. } | Rule::Channels { c, .. } if cur.rank() == 3 => {
                        Some(Extents::new(&[c, cur.dim(1), cur.dim(2)]))
                    }
                    _ => None,
                };
                match wanted {
                    Some(w) => match apply(rule, w, &Msg::new()) {
                        Ok(e) => e,
                        Err(_) => return Extents::flat(1),
                    },
                    None => return Extents::flat(1),
                }
            }
        };
        i += 1;
    }
    cur
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::SeqRule;

    const fn seq(fields: &'static [Field]) -> SeqRule {
        SeqRule { name: "Net", input: Some(Extents::new(&[3, 8, 8])), output: None, fields }
    }

    /// A failed check still gives the output the layers after the failure say they produce.
    #[test]
    fn a_failed_check_guesses_the_output_from_the_layers_after_it() {
        const CONV_WRONG: [Field; 4] = [
            Field { name: "conv1", rule: Rule::Conv { c: 3, f: 4, k: 3, s: 1, p: 1, bias: true } },
            Field { name: "conv2", rule: Rule::Conv { c: 5, f: 6, k: 3, s: 1, p: 0, bias: true } },
            Field { name: "bn", rule: Rule::Channels { name: "BatchNorm2d", c: 6 } },
            Field { name: "pool", rule: Rule::GlobalPool { name: "GlobalAvgPool2d" } },
        ];
        const S1: SeqRule = seq(&CONV_WRONG);
        const M1: Rule = Rule::Seq(&S1);
        let c = Checked::model(&M1);
        assert!(c.failed_at(1), "{}", c.msg.as_str());
        // conv2 given the 5 channels it expects on the 8×8 map: 6×6×6, then pooled to 6.
        assert!(c.out.same(&Extents::flat(6)), "{:?}", c.out);
        const FC_WRONG: [Field; 3] = [
            Field { name: "flat", rule: Rule::Flatten },
            Field { name: "fc1", rule: Rule::Dense { i: 100, o: 16 } },
            Field { name: "fc2", rule: Rule::Dense { i: 16, o: 10 } },
        ];
        const S2: SeqRule = seq(&FC_WRONG);
        const M2: Rule = Rule::Seq(&S2);
        let c = Checked::model(&M2);
        assert!(c.failed_at(1) && c.out.same(&Extents::flat(10)), "{:?}", c.out);
        // A layer that does not say what it expects (a global pooling after a `Linear` given the
        // features it expects): the flat 1 of old.
        const POOL_WRONG: [Field; 2] = [
            Field { name: "fc", rule: Rule::Dense { i: 192, o: 7 } },
            Field { name: "pool", rule: Rule::GlobalPool { name: "GlobalAvgPool2d" } },
        ];
        const S3: SeqRule = seq(&POOL_WRONG);
        const M3: Rule = Rule::Seq(&S3);
        let c = Checked::model(&M3);
        assert!(c.failed_at(0) && c.out.same(&Extents::flat(1)), "{:?}", c.out);
    }
}
