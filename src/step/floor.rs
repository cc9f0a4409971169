//! The smallest batch a model can train on, read from its shape rule ([`Module::RULE`]): batch
//! norm normalises each channel over the batch, and with one value per channel (`BatchNorm1d`, or
//! `BatchNorm2d` on 1×1 maps, at batch size 1) every output is 0 and the running variance is
//! driven to 0 — a step that trains nothing and breaks the model's inference. PyTorch refuses it
//! ("Expected more than 1 value per channel when training"), and so does [`TrainStep`].
//!
//! [`Module::RULE`]: crate::layer::Module::RULE
//! [`TrainStep`]: super::TrainStep

use crate::shape::{Extents, Msg, Rule, apply};

/// The smallest training batch of a model with rule `rule` on samples of extents `input`, and
/// the layer that sets it (`path: Type<…>`) when that is more than 1.
pub(crate) fn min_train_batch(rule: &Rule, input: Extents) -> (usize, Option<String>) {
    match walk(rule, input, "") {
        (_, Some(layer)) => (2, Some(layer)),
        (_, None) => (1, None),
    }
}

/// Why batches below `min` do not train `layer` (the end of the refusals' sentences).
pub(crate) fn too_small(layer: &str, min: usize) -> String {
    format!(
        "too small to train {layer}: batch norm needs more than one value per channel in training (batches of at \
         least {min} samples)"
    )
}

/// `rule`'s output extents on `x`, and the first batch norm (by path) inside it that sees one
/// value per channel and sample.
fn walk(rule: &Rule, x: Extents, path: &str) -> (Extents, Option<String>) {
    // (A derived model's rule holds: its crate compiled. Should it not, nothing is refused here.)
    let Ok(out) = apply(rule, x, &Msg::new()) else { return (x, None) };
    let name_it = || {
        let what = crate::shape::describe(rule, Msg::new());
        if path.is_empty() { what.as_str().to_string() } else { format!("`{path}` ({})", what.as_str()) }
    };
    let found = match *rule {
        Rule::Features { name, .. } if is_batch_norm(name) => Some(name_it()),
        Rule::Channels { name, c } if is_batch_norm(name) && x.numel() <= c => Some(name_it()),
        Rule::Seq(seq) => {
            let mut e = x;
            let mut found = None;
            for field in seq.fields {
                let (next, f) = walk(&field.rule, e, &child(path, field.name));
                e = next;
                found = found.or(f);
            }
            found
        }
        // (The branches by their parameter paths: `Residual`'s fields `block` and `shortcut`.)
        Rule::Residual { main, shortcut } => {
            walk(main, x, &child(path, "block")).1.or_else(|| walk(shortcut, x, &child(path, "shortcut")).1)
        }
        _ => None,
    };
    (out, found)
}

/// The path of `name` inside `path` (`a.b`; `name` alone at the root), as parameter paths read.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// Whether a layer so named normalises over the batch (`BatchNorm1d`, `BatchNorm2d`,
/// `BatchNormReLU2d`; not `LayerNorm`, which normalises each sample on its own).
fn is_batch_norm(name: &str) -> bool {
    name.starts_with("BatchNorm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{Field, SeqRule};

    const MAPS: [Field; 5] = [
        Field { name: "conv", rule: Rule::Conv { c: 2, f: 3, k: 3, s: 1, p: 1, bias: true } },
        Field { name: "bn", rule: Rule::Channels { name: "BatchNorm2d", c: 3 } },
        Field { name: "pool", rule: Rule::GlobalPool { name: "GlobalAvgPool2d" } },
        Field { name: "flat", rule: Rule::Flatten },
        Field { name: "fc", rule: Rule::Dense { i: 3, o: 4 } },
    ];
    const MAPS_SEQ: SeqRule = SeqRule { name: "Maps", input: None, output: None, fields: &MAPS };
    const OUTER: [Field; 3] = [
        Field { name: "maps", rule: Rule::Seq(&MAPS_SEQ) },
        Field { name: "bn1", rule: Rule::Features { name: "BatchNorm1d", n: 4 } },
        Field { name: "ln", rule: Rule::Features { name: "LayerNorm", n: 4 } },
    ];
    const LN_ONLY: [Field; 2] = [
        Field { name: "fc", rule: Rule::Dense { i: 8, o: 4 } },
        Field { name: "ln", rule: Rule::Features { name: "LayerNorm", n: 4 } },
    ];

    #[test]
    fn batch_norm_over_single_values_needs_two_samples() {
        let x = Extents::new(&[2, 4, 4]);
        // BatchNorm2d on 4×4 maps has 16 values per channel at batch size 1.
        assert_eq!(min_train_batch(&Rule::Seq(&MAPS_SEQ), x), (1, None));
        const NET: SeqRule = SeqRule { name: "Net", input: None, output: None, fields: &OUTER };
        let (n, layer) = min_train_batch(&Rule::Seq(&NET), x);
        assert_eq!((n, layer.as_deref()), (2, Some("`bn1` (BatchNorm1d<4>)")));
        // LayerNorm normalises each sample on its own.
        const LN: SeqRule = SeqRule { name: "Ln", input: None, output: None, fields: &LN_ONLY };
        assert_eq!(min_train_batch(&Rule::Seq(&LN), Extents::new(&[8])), (1, None));
        // BatchNorm2d on 1×1 maps: one value per channel; inside a model, by its path.
        let bn2 = Rule::Channels { name: "BatchNorm2d", c: 3 };
        assert_eq!(min_train_batch(&bn2, Extents::new(&[3, 1, 1])), (2, Some("BatchNorm2d<3>".to_string())));
        let (_, inner) = min_train_batch(&Rule::Seq(&MAPS_SEQ), Extents::new(&[2, 1, 1]));
        assert_eq!(inner.as_deref(), Some("`bn` (BatchNorm2d<3>)"));
        // Inside a residual block, by the block's parameter path.
        const RES: [Field; 1] = [Field {
            name: "res",
            rule: Rule::Residual { main: &Rule::Features { name: "BatchNorm1d", n: 8 }, shortcut: &Rule::Identity },
        }];
        const RES_SEQ: SeqRule = SeqRule { name: "Res", input: None, output: None, fields: &RES };
        let (_, layer) = min_train_batch(&Rule::Seq(&RES_SEQ), Extents::new(&[8]));
        assert_eq!(layer.as_deref(), Some("`res.block` (BatchNorm1d<8>)"));
    }
}
