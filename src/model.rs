//! A model with a declared input ([`Model`]), so training and evaluation need no turbofish, and
//! allocation-free single-sample inference on arrays ([`Predictor`]).

use crate::kernels::Elem;
use crate::layer::{Act, Layer};
use crate::shape::{Dyn, Msg, Shape, expect};

/// A layer or model whose input shape is known from its type: every `#[derive(Sequential)]` model
/// with `#[sequential(input = ...)]` (the derive writes this impl), and [`Linear`](crate::layers::Linear)
/// (`(Dyn, Const<I>)`).
///
/// It is what lets [`Solver::train`](crate::solver::Solver::train),
/// [`accuracy`](crate::solver::accuracy), [`predict`](crate::solver::predict) and
/// [`evaluate`](crate::metrics::evaluate) infer the input from the model argument alone:
///
/// ```
/// use shaped::prelude::*;
/// #[derive(Sequential)]
/// #[sequential(input = (4,))]
/// struct Mlp {
///     fc1: Linear<4, 8>,
///     relu: ReLU,
///     fc2: Linear<8, 3>,
/// }
/// // Input = (Dyn, Const<4>): a runtime batch of 4-feature samples.
/// fn takes<M: Model>() -> usize { <M::Input as Shape>::SAMPLE_NUMEL }
/// assert_eq!(takes::<Mlp>(), 4);
/// ```
///
/// A hand-written layer implements it in one line, `impl Model for MyLayer { type Input = (Dyn,
/// Const<N>); }`, next to its [`Layer`] impl for that input.
pub trait Model<E: Elem = f32>: Layer<<Self as Model<E>>::Input, E> {
    /// The input shape with a runtime batch, e.g. `(Dyn, Const<1>, Const<28>, Const<28>)`.
    type Input: Shape<Batch = Dyn>;
}

/// The output shape of a [`Model`] (with a runtime batch): `OutputOf<Lenet>` is `(Dyn, Const<10>)`.
pub type OutputOf<M, E = f32> = <M as Layer<<M as Model<E>>::Input, E>>::Out;

/// Single-sample inference without allocation: a sample as an array of exactly the model's input
/// size in, an array of exactly its output size out.
///
/// The predictor borrows the model and owns the intermediate buffers (and any convolution scratch),
/// sized once by [`Predictor::new`]; [`Predictor::predict`] then allocates nothing. Array sizes are
/// checked when the call is compiled: a `[f32; 785]` given to a 784-input model fails `cargo build`
/// with a message naming both sizes.
///
/// ```
/// use shaped::prelude::*;
/// #[derive(Sequential)]
/// #[sequential(input = (4,))]
/// struct Mlp {
///     fc1: Linear<4, 8>,
///     relu: ReLU,
///     fc2: Linear<8, 3>,
/// }
/// let model = Mlp::init(&mut rand::rngs::StdRng::seed_from_u64(0), Init::He);
/// let mut p = Predictor::new(&model);
/// let scores: [f32; 3] = p.predict(&[0.5, -1.0, 2.0, 0.0]);
/// let class = p.predict_class(&[0.5, -1.0, 2.0, 0.0]);
/// assert!(class < 3 && scores.iter().all(|s| s.is_finite()));
/// ```
pub struct Predictor<'m, M: Model<E>, E: Elem = f32> {
    model: &'m M,
    cache: M::Cache,
    out: Vec<E>,
}

impl<'m, M: Model<E>, E: Elem> Predictor<'m, M, E> {
    /// A predictor for `model`, its buffers sized for one sample (by one warm-up pass on zeros).
    pub fn new(model: &'m M) -> Self {
        let out_len = <OutputOf<M, E> as Shape>::SAMPLE_NUMEL;
        let mut p = Predictor { model, cache: M::Cache::default(), out: vec![E::zero(); out_len] };
        let zeros = vec![E::zero(); <M::Input as Shape>::SAMPLE_NUMEL];
        p.run(&zeros);
        p
    }

    fn run(&mut self, x: &[E]) {
        let act = Act::new(x, 1, <M::Input as Shape>::SAMPLE);
        self.model.forward_reuse(act, &mut self.out, &mut self.cache);
    }

    /// The model's output (inference mode) for one sample. `N` must be the model's input size and
    /// `K` its output size, checked at build time.
    pub fn predict<const N: usize, const K: usize>(&mut self, x: &[E; N]) -> [E; K] {
        const {
            expect(&M::RULE, <M::Input as Shape>::SAMPLE, <OutputOf<M, E> as Shape>::SAMPLE);
            sizes(N, <M::Input as Shape>::SAMPLE_NUMEL, "input");
            sizes(K, <OutputOf<M, E> as Shape>::SAMPLE_NUMEL, "output");
        };
        self.run(x);
        let mut y = [E::zero(); K];
        y.copy_from_slice(&self.out);
        y
    }

    /// The index of the highest output for one sample (ties go to the lower index): the predicted
    /// class of a classifier.
    pub fn predict_class<const N: usize>(&mut self, x: &[E; N]) -> usize {
        const { sizes(N, <M::Input as Shape>::SAMPLE_NUMEL, "input") };
        self.run(x);
        let row = &self.out;
        row.iter().enumerate().fold(0, |best, (j, v)| if *v > row[best] { j } else { best })
    }

    /// The model's outputs for the last sample, as a slice (no copy).
    pub fn last_output(&self) -> &[E] {
        &self.out
    }
}

/// Panics (at compile time, where it is called in a constant) unless an array of `len` values fits
/// a model's `what` ("input" or "output") of `numel` values, naming both sizes.
const fn sizes(len: usize, numel: usize, what: &str) {
    if len != numel {
        let m =
            Msg::new().s("Predictor: the model's ").s(what).s(" has ").n(numel).s(" values, but the array has ").n(len);
        panic!("{}", m.as_str());
    }
}
