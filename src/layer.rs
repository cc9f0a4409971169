//! The `Layer` and `Module` traits: how a layer computes, how its parameters are visited.

use crate::init::Init;
use crate::kernels::Elem;
use crate::shape::Shape;
use crate::tensor::Tensor;
use core::fmt;

/// A dotted path to a parameter (`fc1.weight`), built on the stack while visiting: no allocation.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
}

impl<'a> Path<'a> {
    /// The empty path at the top of a model.
    pub const ROOT: Path<'static> = Path { parent: None, name: "" };

    /// The path of a child named `name`.
    pub fn child(&'a self, name: &'a str) -> Path<'a> {
        Path { parent: Some(self), name }
    }

    /// The last component.
    pub fn name(&self) -> &str {
        self.name
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent
            && (p.parent.is_some() || !p.name.is_empty())
        {
            write!(f, "{p}.")?;
        }
        f.write_str(self.name)
    }
}

impl fmt::Debug for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// What a parameter tensor is; decides its initialisation, whether an optimizer trains it and
/// whether L2 regularisation applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix or kernel: random initialisation, trained, L2-regularised.
    Weight {
        /// Inputs that feed one output (for He/Xavier initialisation).
        fan_in: usize,
        /// Outputs one input feeds.
        fan_out: usize,
    },
    /// A bias: zero initialisation, trained, not regularised.
    Bias,
    /// Batch-norm scale γ: one initialisation, trained, not regularised.
    Gamma,
    /// Batch-norm shift β: zero initialisation, trained, not regularised.
    Beta,
    /// Batch-norm running mean: a buffer (saved in checkpoints, never trained).
    RunningMean,
    /// Batch-norm running variance: a buffer (saved in checkpoints, never trained).
    RunningVar,
}

impl ParamKind {
    /// Whether an optimizer updates it.
    pub fn trainable(&self) -> bool {
        !matches!(self, ParamKind::RunningMean | ParamKind::RunningVar)
    }
    /// Whether L2 regularisation applies (weights only, as in the spec).
    pub fn regularised(&self) -> bool {
        matches!(self, ParamKind::Weight { .. })
    }
}

/// What a visitor learns about a parameter besides its values.
#[derive(Clone, Copy, Debug)]
pub struct ParamInfo<'a> {
    /// Its dotted path in the model (`fc1.weight`).
    pub path: &'a Path<'a>,
    /// Its shape, outermost first (`[605, 16]`).
    pub shape: &'a [usize],
    /// What it is.
    pub kind: ParamKind,
}

/// Something with parameters (possibly none): a layer or a model.
///
/// Parameters are visited in a fixed order, the same for [`Module::visit_params`],
/// [`Module::visit_params_mut`] and [`Module::zip_params_mut`], so optimizers, checkpoints,
/// regularisation and summaries need no knowledge of layer types. The same type holds a model's
/// gradients: [`Module::zeros`] is the all-zero structure that `backward` writes into.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shaped layer with elements `{E}`",
    label = "not a layer of `{E}`",
    note = "every field of a #[derive(Sequential)] struct must be a layer (Linear, Conv2d, ReLU, ...) or a derived model, with the model's element type"
)]
pub trait Module<E: Elem>: Sized + Send + Sync {
    /// The module with every parameter at its neutral value (weights, biases and β zero; γ and the
    /// running variance one). Used for gradients and as the start of [`Module::init`].
    fn zeros() -> Self;

    /// Visits every parameter and buffer in order.
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E]));

    /// Visits every parameter and buffer in order, mutably.
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E]));

    /// Visits every parameter of `self` together with the same parameter of `other` (its gradient,
    /// say), in order.
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E]));

    /// Resets the random state of stochastic layers (dropout masks) from `seed`; a no-op elsewhere.
    fn reseed(&mut self, seed: u64) {
        let _ = seed;
    }

    /// A short name of the layer type with its static configuration, e.g. `Linear<605, 16>`.
    fn type_name() -> String;

    /// A freshly initialised module: weights from `init`, biases zero, γ one.
    fn init<R: rand::Rng + ?Sized>(rng: &mut R, init: Init) -> Self {
        let mut m = Self::zeros();
        m.visit_params_mut(&Path::ROOT, &mut |info, data| {
            if let ParamKind::Weight { fan_in, fan_out } = info.kind {
                init.fill(rng, data, fan_in, fan_out);
            }
        });
        m
    }

    /// Number of trainable scalars.
    fn num_params(&self) -> usize {
        let mut n = 0;
        self.visit_params(&Path::ROOT, &mut |info, data| {
            if info.kind.trainable() {
                n += data.len();
            }
        });
        n
    }

    /// Sets every parameter and buffer to zero (used on gradient holders).
    fn fill_zero(&mut self) {
        self.visit_params_mut(&Path::ROOT, &mut |_, d| d.fill(E::zero()));
    }
}

/// A layer that maps tensors of shape `In` to tensors of shape [`Layer::Out`], with its hand-derived
/// backward pass.
///
/// The trait is implemented only for inputs the layer accepts, so a layer that does not fit its
/// input is a compile error; each layer's file documents its rule in a `# Shapes` section.
///
/// Buffers are the caller's: outputs, caches and gradients are passed in and reused from step to
/// step, so a training step allocates nothing once the buffers have grown to the batch size.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take an input of shape `{In}` with elements `{E}`",
    label = "this layer or model does not accept `{In}` of `{E}`",
    note = "a model takes the input shape declared in its `#[sequential(input = ...)]` attribute and the element type of its layers"
)]
pub trait Layer<In: Shape, E: Elem>: Module<E> {
    /// The output shape (same batch dimension as the input).
    type Out: Shape<Batch = In::Batch>;
    /// What the training forward pass keeps for the backward pass (masks, normalised inputs, argmax
    /// positions, intermediate activations), reused across steps.
    type Cache: Default + Send;

    /// Inference forward pass (dropout off, batch norm on running statistics) into `y`, which is
    /// resized to the batch of `x`.
    fn forward(&self, x: &Tensor<In, E>, y: &mut Tensor<Self::Out, E>);

    /// Training forward pass into `y`, keeping in `cache` what [`Layer::backward`] needs (and
    /// updating running statistics).
    fn forward_train(&mut self, x: &Tensor<In, E>, y: &mut Tensor<Self::Out, E>, cache: &mut Self::Cache);

    /// Backward pass: given the input `x`, the output `y` and the loss gradient `dy` of the last
    /// [`Layer::forward_train`], writes the parameter gradients into `grads` (overwriting them) and,
    /// when `dx` is given, the input gradient into it (resized to the batch).
    fn backward(
        &self,
        x: &Tensor<In, E>,
        y: &Tensor<Self::Out, E>,
        dy: &Tensor<Self::Out, E>,
        cache: &mut Self::Cache,
        dx: Option<&mut Tensor<In, E>>,
        grads: &mut Self,
    );

    /// Rows of a model summary: a derived model lists its fields; a plain layer has none.
    fn summary_rows(&self) -> Vec<SummaryRow> {
        Vec::new()
    }

    /// Inference forward pass into a new tensor.
    fn predict(&self, x: &Tensor<In, E>) -> Tensor<Self::Out, E> {
        let mut y = Tensor::zeros(x.batch());
        self.forward(x, &mut y);
        y
    }
}

/// One step of a derived model's cache: the layer's output, the loss gradient with respect to it
/// (written by the next layer's backward pass) and the layer's own cache.
pub struct Step<S: Shape, C, E: Elem> {
    /// The layer's output in the last training pass.
    pub out: Tensor<S, E>,
    /// `dL/d out`, filled during the backward pass.
    pub grad: Tensor<S, E>,
    /// The layer's own cache.
    pub cache: C,
}

impl<S: Shape, C: Default, E: Elem> Default for Step<S, C, E> {
    fn default() -> Self {
        Step { out: Tensor::default(), grad: Tensor::default(), cache: C::default() }
    }
}

/// A derived seed for the `i`-th child of a module (splitmix64 of `seed` and `i`).
pub fn mix_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed ^ (i.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One row of a model summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The field's name.
    pub field: &'static str,
    /// The layer type with its static configuration.
    pub layer: String,
    /// The output shape without the batch, e.g. `[5, 22, 22]`.
    pub output: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
}

/// The static (non-batch) extents of shape `S`.
pub fn sample_dims<S: Shape>() -> Vec<usize> {
    let mut d = S::from_batch(S::Batch::default()).dims_vec();
    d.remove(0);
    d
}

fn fmt_extents(d: &[usize]) -> String {
    d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("×")
}

/// Writes a model summary table: one row per field, then the total.
pub fn write_summary(f: &mut fmt::Formatter<'_>, name: &str, input: &[usize], rows: &[SummaryRow]) -> fmt::Result {
    let wf = rows.iter().map(|r| r.field.len()).max().unwrap_or(0).max(5);
    let wl = rows.iter().map(|r| r.layer.len()).max().unwrap_or(0).max(5);
    let wo = rows.iter().map(|r| fmt_extents(&r.output).chars().count()).max().unwrap_or(0).max(6);
    writeln!(f, "{name} (input {})", fmt_extents(input))?;
    writeln!(f, "  {:<wf$}  {:<wl$}  {:<wo$}  {:>10}", "field", "layer", "output", "params")?;
    for r in rows {
        writeln!(f, "  {:<wf$}  {:<wl$}  {:<wo$}  {:>10}", r.field, r.layer, fmt_extents(&r.output), r.params)?;
    }
    let total: usize = rows.iter().map(|r| r.params).sum();
    write!(f, "  {:<wf$}  {:<wl$}  {:<wo$}  {:>10}", "total", "", "", total)
}
