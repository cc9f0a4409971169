//! The `Layer` and `Module` traits: how a layer computes, how its parameters are visited.

use crate::fuse::{BnParamsMut, Kind};
use crate::init::Init;
use crate::kernels::Elem;
use crate::layers::{BnCache, PoolCache};
use crate::shape::{Extents, Msg, Rule, Shape, describe, expect, out_extents};
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

/// A batch of activations as the shape-erased interface sees it: `n` samples of extents `ext`,
/// row-major in `data` (`data.len() == n · ext.numel()`).
#[derive(Clone, Copy, Debug)]
pub struct Act<'a, E> {
    /// The values.
    pub data: &'a [E],
    /// Batch size.
    pub n: usize,
    /// The extents of one sample.
    pub ext: Extents,
}

impl<'a, E> Act<'a, E> {
    /// A batch of `n` samples of extents `ext`; panics when `data` has another length.
    pub fn new(data: &'a [E], n: usize, ext: Extents) -> Self {
        assert_eq!(
            data.len(),
            n * ext.numel(),
            "an activation buffer of {} values is not {n} samples of {:?}",
            data.len(),
            ext.dims()
        );
        Act { data, n, ext }
    }

    /// A typed tensor's values.
    pub fn of<S: Shape>(t: &'a Tensor<S, E>) -> Self
    where
        E: Elem,
    {
        Act { data: t.as_slice(), n: t.batch_size(), ext: S::SAMPLE }
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.ext.numel()
    }
}

/// A layer or a model: its parameters (visited in a fixed order), its shape rule and its forward
/// and backward passes over buffers whose extents are known at run time.
///
/// Parameters are visited in a fixed order, the same for [`Module::visit_params`],
/// [`Module::visit_params_mut`] and [`Module::zip_params_mut`], so optimizers, checkpoints,
/// regularisation and summaries need no knowledge of layer types. The same type holds a model's
/// gradients: [`Module::zeros`] is the all-zero structure that `backward` writes into.
///
/// The passes take caller-owned buffers and reuse the cache from step to step, so a training step
/// allocates nothing once the buffers have grown to the batch size. [`Layer`] is the typed face of
/// the same passes, with static shapes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shaped layer with elements `{E}`",
    label = "not a layer of `{E}`",
    note = "a field of a #[derive(Sequential)] struct is a layer (Linear, Conv2d, ReLU, ...) or a derived model of the struct's element type; a model's element type is `f32` unless it says #[sequential(elem = f64)] or is generic over it (elem = E)"
)]
pub trait Module<E: Elem>: Sized + Send + Sync {
    /// The layer's shape rule: what input it takes and what it produces.
    const RULE: Rule;

    /// What the training forward pass keeps for the backward pass (masks, normalised inputs, argmax
    /// positions, intermediate activations), reused across steps.
    type Cache: Default + Send;

    /// What the layer can fuse with a neighbour in a derived model's passes ([`crate::fuse`]);
    /// `Kind::None` unless a fused pass knows the layer.
    const FUSE: Kind = Kind::None;

    /// Whether the training passes treat every sample on its own and leave the layer unchanged: no
    /// batch statistics, no running statistics, no random generator. A training step on two or
    /// more kernel threads then runs the whole model on each thread's part of the batch and sums
    /// the parts' parameter gradients (one hand-over per step instead of one per layer; see
    /// [`TrainStep`](crate::step::TrainStep)), which gives the same gradients up to rounding.
    /// `false` unless a layer says so (a layer that says so wrongly would train differently on
    /// several threads); a derived model's is true when every field's is.
    const PER_SAMPLE: bool = false;

    /// Whether a training step on two or more kernel threads may run the model in parts, one per
    /// thread, that meet where a layer needs the whole batch: [`Module::PER_SAMPLE`] layers, and
    /// the crate's batch norms (their statistics and backward sums are summed over every part's
    /// samples, in sample order, the whole batch's bits) and dropout (its masks drawn for the
    /// whole batch, in order, the whole step's masks). The parts of such a step run at once, and
    /// every part must reach the same meetings, so a layer that meets (through the crate's
    /// internals) must say so; others keep the default, [`Module::PER_SAMPLE`] (a hand-written
    /// layer that needs the whole batch cannot meet the other parts: it keeps `false`, and its
    /// models train whole). A derived model's is true when every field's is.
    const IN_PARTS: bool = Self::PER_SAMPLE;

    /// Whether the layer's output is its input, reinterpreted: the same values in the same order
    /// under other extents (`Flatten`, `Identity`), with no parameters and no cache (a layer that
    /// says so wrongly would not be trained: its backward pass is not called). A derived model's
    /// training passes then do not call it, unless it is the last field or follows another view:
    /// the next field reads the buffer before it, and writes its input gradient where the view's
    /// input gradient would go, so neither pass copies the activation (4a's 242 KB, twice a step).
    /// `false` unless a layer says so; a skipped view's step keeps its extents only
    /// ([`Step::prepare_view`]).
    const VIEW: bool = false;

    /// Fusion hook: the max-pooling cache inside `cache`, for a layer whose [`Module::FUSE`] is
    /// `Kind::MaxPool`.
    fn fuse_pool_cache(cache: &mut Self::Cache) -> Option<&mut PoolCache> {
        let _ = cache;
        None
    }

    /// Fusion hook: the batch-norm parameters (or gradients) of a layer whose [`Module::FUSE`] is
    /// `Kind::BnRelu`.
    fn fuse_bn_mut(&mut self) -> Option<BnParamsMut<'_, E>> {
        None
    }

    /// Fusion hook: the batch-norm scale γ and shift β of a layer whose [`Module::FUSE`] is
    /// `Kind::BnRelu`.
    fn fuse_affine(&self) -> Option<(&[E], &[E])> {
        None
    }

    /// Fusion hook: the batch-norm cache inside `cache`, for a layer whose [`Module::FUSE`] is
    /// `Kind::BnRelu`.
    fn fuse_bn_cache(cache: &mut Self::Cache) -> Option<&mut BnCache<E>> {
        let _ = cache;
        None
    }

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

    /// Inference forward pass (dropout off, batch norm on running statistics) of `x` into `y`
    /// (`y.len()` = batch × the rule's output elements).
    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]);

    /// Training forward pass into `y`, keeping in `cache` what [`Module::backward_raw`] needs (and
    /// updating running statistics).
    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut Self::Cache);

    /// Inference forward pass like [`Module::forward_raw`], keeping its intermediate buffers and
    /// scratch in `cache` so that repeated calls at one batch size allocate nothing (what
    /// [`Predictor`](crate::model::Predictor) uses). The result equals `forward_raw`'s.
    fn forward_reuse(&self, x: Act<'_, E>, y: &mut [E], cache: &mut Self::Cache) {
        let _ = cache;
        self.forward_raw(x, y);
    }

    /// Backward pass: given the input `x`, the output `y` and the loss gradient `dy` of the last
    /// [`Module::forward_train_raw`], writes the parameter gradients into `grads` (overwriting them)
    /// and, when `dx` is given, the input gradient into it.
    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut Self::Cache,
        dx: Option<&mut [E]>,
        grads: &mut Self,
    );

    /// Resets the random state of stochastic layers (dropout masks) from `seed`; a no-op elsewhere.
    fn reseed(&mut self, seed: u64) {
        let _ = seed;
    }

    /// A short name of the layer type with its static configuration, e.g. `Linear<605, 16>`.
    fn type_name() -> String {
        describe(&Self::RULE, Msg::new()).as_str().to_string()
    }

    /// Rows of a model summary for input extents `input`: a derived model lists its fields; a plain
    /// layer has none.
    fn summary_rows(&self, input: Extents) -> Vec<SummaryRow> {
        let _ = input;
        Vec::new()
    }

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

    /// Inference forward pass with static shapes chosen by the caller (for layers chained by hand):
    /// `let h: Tensor<(Dyn, Const<32>, Const<26>, Const<26>)> = conv.apply(&x);`. A shape that
    /// does not follow the layer's rule fails `cargo build` with the rule's message.
    fn apply<In: Shape, Out: Shape<Batch = In::Batch>>(&self, x: &Tensor<In, E>) -> Tensor<Out, E> {
        const { expect(&Self::RULE, In::SAMPLE, Out::SAMPLE) };
        let mut y = Tensor::zeros(x.batch());
        self.forward_raw(Act::of(x), y.as_mut_slice());
        y
    }

    /// [`Module::apply`] into a caller's tensor (resized to the batch of `x`).
    fn apply_into<In: Shape, Out: Shape<Batch = In::Batch>>(&self, x: &Tensor<In, E>, y: &mut Tensor<Out, E>) {
        const { expect(&Self::RULE, In::SAMPLE, Out::SAMPLE) };
        y.set_batch(x.batch());
        self.forward_raw(Act::of(x), y.as_mut_slice());
    }

    /// Typed training forward pass (output type chosen by the caller, checked like
    /// [`Module::apply`]) into `y`, keeping in `cache` what [`Module::apply_backward`] needs (and
    /// updating running statistics).
    fn apply_train<In: Shape, Out: Shape<Batch = In::Batch>>(
        &mut self,
        x: &Tensor<In, E>,
        y: &mut Tensor<Out, E>,
        cache: &mut Self::Cache,
    ) {
        const { expect(&Self::RULE, In::SAMPLE, Out::SAMPLE) };
        y.set_batch(x.batch());
        self.forward_train_raw(Act::of(x), y.as_mut_slice(), cache);
    }

    /// Typed backward pass (shapes chosen by the caller, checked like [`Module::apply`]): given the input `x`, the output `y` and the loss gradient `dy` of the last
    /// [`Module::apply_train`], writes the parameter gradients into `grads` (overwriting them) and,
    /// when `dx` is given, the input gradient into it (resized to the batch).
    fn apply_backward<In: Shape, Out: Shape<Batch = In::Batch>>(
        &self,
        x: &Tensor<In, E>,
        y: &Tensor<Out, E>,
        dy: &Tensor<Out, E>,
        cache: &mut Self::Cache,
        dx: Option<&mut Tensor<In, E>>,
        grads: &mut Self,
    ) {
        const { expect(&Self::RULE, In::SAMPLE, Out::SAMPLE) };
        assert_eq!(dy.batch_size(), x.batch_size(), "backward: the output gradient's batch differs from the input's");
        let dx = dx.map(|t| {
            t.set_batch(x.batch());
            t.as_mut_slice()
        });
        self.backward_raw(Act::of(x), y.as_slice(), dy.as_slice(), cache, dx, grads);
    }
}

/// A model's parameters behind a trait object: what checkpoints, the solver's bookkeeping and
/// optimizer state need, so that their code is compiled once in `shaped` rather than once per model
/// in the user's crate. Every [`Module`] is one.
pub trait ParamTree<E: Elem> {
    /// [`Module::visit_params`].
    fn visit(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E]));
    /// [`Module::visit_params_mut`].
    fn visit_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E]));
    /// [`Module::type_name`].
    fn model_name(&self) -> String;
}

impl<E: Elem, M: Module<E>> ParamTree<E> for M {
    fn visit(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        self.visit_params(path, f)
    }
    fn visit_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        self.visit_params_mut(path, f)
    }
    fn model_name(&self) -> String {
        M::type_name()
    }
}

/// The typed face of a [`Module`]: a layer or model that maps tensors of shape `In` to tensors of
/// shape [`Layer::Out`].
///
/// Derived models implement it for their declared input (any batch dimension); layers whose output
/// shape can be written from their input (`Linear`, `ReLU`, batch norm, dropout, …) for every input
/// they accept. It is what training code asks of a model: [`Layer::Out`] names the output a loss
/// takes. Layers whose output extents are computed (convolutions, pooling, flatten) are used inside
/// derived models, or by hand through [`Module::apply`], [`Module::apply_train`] and
/// [`Module::apply_backward`] with the output type written out.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take an input of shape `{In}` with elements `{E}`",
    label = "this layer or model does not accept `{In}` of `{E}`",
    note = "a model takes the input shape declared in its `#[sequential(input = ...)]` attribute and the element type of its layers"
)]
pub trait Layer<In: Shape, E: Elem>: Module<E> {
    /// The output shape (same batch dimension as the input).
    type Out: Shape<Batch = In::Batch>;

    /// Inference forward pass (dropout off, batch norm on running statistics) of a typed batch into
    /// `y`, which is resized to the batch of `x`. The shapes are checked against the layer's rule
    /// when the call is compiled.
    fn forward(&self, x: &Tensor<In, E>, y: &mut Tensor<Self::Out, E>) {
        const { expect(&Self::RULE, In::SAMPLE, <Self::Out as Shape>::SAMPLE) };
        y.set_batch(x.batch());
        self.forward_raw(Act::of(x), y.as_mut_slice());
    }

    /// Training forward pass into `y`, keeping in `cache` what [`Layer::backward`] needs (and
    /// updating running statistics).
    fn forward_train(&mut self, x: &Tensor<In, E>, y: &mut Tensor<Self::Out, E>, cache: &mut Self::Cache) {
        const { expect(&Self::RULE, In::SAMPLE, <Self::Out as Shape>::SAMPLE) };
        y.set_batch(x.batch());
        self.forward_train_raw(Act::of(x), y.as_mut_slice(), cache);
    }

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
    ) {
        const { expect(&Self::RULE, In::SAMPLE, <Self::Out as Shape>::SAMPLE) };
        assert_eq!(dy.batch_size(), x.batch_size(), "backward: the output gradient's batch differs from the input's");
        let dx = dx.map(|t| {
            t.set_batch(x.batch());
            t.as_mut_slice()
        });
        self.backward_raw(Act::of(x), y.as_slice(), dy.as_slice(), cache, dx, grads);
    }

    /// Inference forward pass into a new tensor.
    fn predict(&self, x: &Tensor<In, E>) -> Tensor<Self::Out, E> {
        let mut y = Tensor::zeros(x.batch());
        self.forward(x, &mut y);
        y
    }

    /// The model's scores as probabilities: a softmax over each sample's values (for a classifier
    /// whose last layer outputs one score per class; no loss object needed).
    fn predict_proba(&self, x: &Tensor<In, E>) -> Tensor<Self::Out, E> {
        let scores = self.predict(x);
        let mut p = Tensor::zeros(x.batch());
        let d = crate::kernels::activation::RowDims { rows: x.batch_size(), d: <Self::Out as Shape>::SAMPLE_NUMEL };
        E::k_softmax_forward(d, scores.as_slice(), p.as_mut_slice(), false);
        p
    }

    /// The predicted class of each sample: the index of its highest score (ties go to the lower
    /// index), with no loss object needed.
    fn predict_classes(&self, x: &Tensor<In, E>) -> Vec<usize> {
        let scores = self.predict(x);
        let per = <Self::Out as Shape>::SAMPLE_NUMEL.max(1);
        scores
            .as_slice()
            .chunks_exact(per)
            .map(|row| row.iter().enumerate().fold(0, |best, (j, v)| if *v > row[best] { j } else { best }))
            .collect()
    }
}

/// One step of a derived model's cache: the layer's output, the loss gradient with respect to it
/// (written by the next layer's backward pass) and the layer's own cache. (A view's step,
/// [`Module::VIEW`], keeps its extents only: its output is the step before it.)
#[derive(Clone, Debug, Default)]
pub struct Step<C, E> {
    /// The layer's output in the last training pass.
    pub out: Vec<E>,
    /// `dL/d out`, filled during the backward pass.
    pub grad: Vec<E>,
    /// The extents of one sample of `out`.
    pub ext: Extents,
    /// The layer's own cache.
    pub cache: C,
}

impl<C, E: Elem> Step<C, E> {
    /// Sets the step's extents to `rule`'s output over `input` and sizes its output for `n` samples
    /// (the buffer only grows).
    pub fn prepare(&mut self, rule: &Rule, input: Extents, n: usize) {
        self.ext = out_extents(rule, input);
        self.out.resize(n * self.ext.numel(), E::zero());
    }

    /// Sets the step's extents to `rule`'s output over `input`, for a view ([`Module::VIEW`]): its
    /// output is the previous step's buffer, so it keeps none of its own.
    pub fn prepare_view(&mut self, rule: &Rule, input: Extents) {
        self.ext = out_extents(rule, input);
    }

    /// Sizes the gradient like the output.
    pub fn fit_grad(&mut self) {
        self.grad.resize(self.out.len(), E::zero());
    }
}

/// A zeroed buffer for `n` samples of extents `ext` (a derived model's inference intermediates).
pub fn buffer<E: Elem>(n: usize, ext: Extents) -> Vec<E> {
    vec![E::zero(); n * ext.numel()]
}

/// Checks a call of the shape-erased interface of `M`: the input's extents follow `M`'s rule, the
/// input buffer holds `n` samples of them and the output buffer `n` samples of the rule's output.
/// Returns the output extents; panics with the rule's message otherwise, so a safe caller cannot
/// reach a kernel with dims that disagree with its buffers.
pub fn check_call<E: Elem, M: Module<E>>(x: &Act<'_, E>, y_len: usize) -> Extents {
    check_lengths(&M::RULE, x.data.len(), x.n, x.ext, y_len)
}

/// The body of [`check_call`], compiled once.
fn check_lengths(rule: &Rule, x_len: usize, n: usize, ext: Extents, y_len: usize) -> Extents {
    let out = out_extents(rule, ext);
    let name = || describe(rule, Msg::new());
    assert_eq!(x_len, n * ext.numel(), "{}: the input buffer does not hold {n} samples", name());
    assert_eq!(y_len, n * out.numel(), "{}: the output buffer does not hold {n} samples", name());
    out
}

/// Checks the backward buffers of a call of `M`'s shape-erased interface: `x` and `y` as in
/// [`check_call`], `dy` like `y`, `dx` (when given) like `x`. Returns the output extents.
pub fn check_backward<E: Elem, M: Module<E>>(x: &Act<'_, E>, y: usize, dy: usize, dx: Option<usize>) -> Extents {
    let out = check_lengths(&M::RULE, x.data.len(), x.n, x.ext, y);
    check_grad_lengths(&M::RULE, x.data.len(), y, dy, dx);
    out
}

fn check_grad_lengths(rule: &Rule, x: usize, y: usize, dy: usize, dx: Option<usize>) {
    let name = || describe(rule, Msg::new());
    assert_eq!(dy, y, "{}: the output gradient does not match the output", name());
    assert!(dx.is_none_or(|d| d == x), "{}: the input gradient does not match the input", name());
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
