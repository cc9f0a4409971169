//! Floating-point operations of a training step, counted from a model's shape rule
//! ([`Module::RULE`]) rather than by hand: the denominator-free half of "GFLOP/s as a share of the
//! host's peak" in `BENCHMARKS.md`.
//!
//! What is counted: the matrix products of convolutions and fully connected layers, two
//! operations per multiply-add — forward (`y = W·x`), the weight gradient (`dW = dy·xᵀ`) and the
//! input gradient (`dx = Wᵀ·dy`), the last except for the layer that reads the model's input
//! (its input gradient is not computed: a training step passes no `dx` to the first field). Biases,
//! batch norm, activations, pooling, losses and the optimizer's update are not counted (they are
//! memory-bound and a few per cent of the operations), nor are the zeros a padded convolution
//! multiplies or the discarded columns of the implicit-im2col GEMM (the count is the layer's,
//! not the kernel's).
//!
//! Model 4a (`Conv2d<1, 5, 7>` on 28×28, then `Linear<605, 16>`, `Linear<16, 10>`), per sample:
//! the convolution's 5·22·22·49 = 118,580 multiply-adds forward and again for its weight gradient
//! (it reads the model's input: no input gradient), the linear layers' 605·16 + 16·10 three times:
//!
//! ```
//! use shaped::flops::step_flops;
//! use shaped::models::{Cnn, Vgg};
//! let f = step_flops::<Cnn, f32>(100);
//! assert_eq!(f.forward, 100 * 2 * (118_580 + 9_680 + 160));
//! assert_eq!(f.weight_grad, f.forward);
//! assert_eq!(f.input_grad, 100 * 2 * (9_680 + 160));
//! assert_eq!(f.total(), 53_336_000);
//! assert_eq!(step_flops::<Vgg, f32>(100).total(), 2_303_155_200);
//! ```

use crate::layer::Module;
use crate::shape::{Extents, Msg, Rule, apply};

/// Operations of one training step (two per multiply-add), split by pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flops {
    /// The forward pass.
    pub forward: u64,
    /// Weight gradients.
    pub weight_grad: u64,
    /// Input gradients.
    pub input_grad: u64,
}

impl Flops {
    /// Forward and backward together.
    pub fn total(&self) -> u64 {
        self.forward + self.weight_grad + self.input_grad
    }

    fn add(&mut self, macs: u64, reads_input: bool) {
        self.forward += 2 * macs;
        self.weight_grad += 2 * macs;
        if !reads_input {
            self.input_grad += 2 * macs;
        }
    }
}

/// The operations of a training step of `M` on a batch of `batch` samples, counted from its rule
/// and declared input shape (see the module docs for what is counted).
///
/// # Panics
/// If `M` declares no input shape (a shape-polymorphic model): use [`rule_flops`] with the input.
pub fn step_flops<M: Module<E>, E: crate::kernels::Elem>(batch: usize) -> Flops {
    let input = match M::RULE {
        Rule::Seq(seq) => seq.input,
        Rule::Fixed { input, .. } => Some(input),
        _ => None,
    };
    let input = input.expect("step_flops: the model declares its input shape (else call rule_flops)");
    rule_flops(&M::RULE, input, batch)
}

/// The operations of a training step of a layer or model with rule `rule` on `batch` samples of
/// shape `input`.
///
/// # Panics
/// If the rule does not accept `input` (the message names the layer).
pub fn rule_flops(rule: &Rule, input: Extents, batch: usize) -> Flops {
    let mut f = Flops::default();
    walk(rule, input, true, &mut f);
    Flops {
        forward: f.forward * batch as u64,
        weight_grad: f.weight_grad * batch as u64,
        input_grad: f.input_grad * batch as u64,
    }
}

/// Adds one sample's operations of `rule` on `x` to `f`; returns the output extents.
/// `reads_input`: the layer's input is the model's input (no input gradient).
fn walk(rule: &Rule, x: Extents, reads_input: bool, f: &mut Flops) -> Extents {
    let out = match apply(rule, x, &Msg::new()) {
        Ok(e) => e,
        Err(m) => panic!("rule_flops: {m}"),
    };
    match *rule {
        Rule::Dense { i, o } => f.add((i * o) as u64, reads_input),
        Rule::Conv { c, k, .. } => f.add((out.numel() * c * k * k) as u64, reads_input),
        Rule::Seq(seq) => {
            let mut e = x;
            for (n, field) in seq.fields.iter().enumerate() {
                e = walk(&field.rule, e, reads_input && n == 0, f);
            }
        }
        Rule::Residual { main, shortcut } => {
            walk(main, x, reads_input, f);
            walk(shortcut, x, reads_input, f);
        }
        _ => {}
    }
    out
}
