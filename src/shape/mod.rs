//! Shapes as types: static dimensions (`Const<N>`), the runtime batch dimension (`Dyn`), shape
//! tuples of rank 1–4 and the compile-time shape rules of the layers.
//!
//! A shape is a tuple whose first element is the batch dimension (static or runtime) and whose other
//! elements are static extents: `(Dyn, Const<1>, Const<28>, Const<28>)` is a batch of 28×28 grey
//! images. Static dims are const generics, so compiler messages print them as numbers; the shape rules
//! (convolution and pooling output sizes, flatten products) compute with `typenum` inside crate-owned
//! traits ([`ConvOutput`], [`PoolOutput`], [`Flattened`], …), each with its own error message, and
//! convert back to `Const<N>` through a generated table (`table.rs`, extents up to [`TABLE_MAX`]).

use core::fmt::Debug;
use core::ops::{Add, Div, Mul, Rem, Sub};
use typenum::{Compare, Diff, Equal, Greater, Mod, Prod, Quot, Sum, U1, Unsigned};

mod table;
pub use table::TABLE_MAX;

/// A static dimension of extent `N`; prints as `Const<N>` in compiler messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Const<const N: usize>;

/// A dimension whose extent is known only at run time (the batch size of a data set's last batch, say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Dyn(pub usize);

/// A tensor dimension: static ([`Const`]) or runtime ([`Dyn`]).
pub trait Dim: Copy + Debug + Default + Send + Sync + PartialEq + 'static {
    /// The extent.
    fn size(&self) -> usize;
    /// This dimension with extent `n`, or `None` when `n` contradicts a static extent.
    fn from_size(n: usize) -> Option<Self>;
}

/// A dimension whose extent is a fact of its type.
pub trait ConstDim: Dim + Default {
    /// The extent.
    const N: usize;
}

impl<const N: usize> Dim for Const<N> {
    #[inline(always)]
    fn size(&self) -> usize {
        N
    }
    fn from_size(n: usize) -> Option<Self> {
        (n == N).then_some(Const)
    }
}

impl<const N: usize> ConstDim for Const<N> {
    const N: usize = N;
}

impl Dim for Dyn {
    #[inline(always)]
    fn size(&self) -> usize {
        self.0
    }
    fn from_size(n: usize) -> Option<Self> {
        Some(Dyn(n))
    }
}

/// The shape of a tensor: a tuple `(Batch, D1, …)` of rank 1–4 whose first dimension may be a runtime
/// [`Dyn`] and whose others are static.
///
/// The element count is `batch · SAMPLE_NUMEL`; a [`Tensor`](crate::Tensor)'s buffer always has
/// exactly that length.
pub trait Shape: Copy + Debug + Send + Sync + PartialEq + 'static {
    /// The first (batch) dimension.
    type Batch: Dim;
    /// Number of dimensions, the batch included.
    const RANK: usize;
    /// Elements per batch entry: the product of the static dimensions.
    const SAMPLE_NUMEL: usize;
    /// The batch dimension of this shape.
    fn batch(&self) -> Self::Batch;
    /// The shape with batch `b` (the other dimensions are static).
    fn from_batch(b: Self::Batch) -> Self;
    /// The extents, outermost first; only the first [`Shape::RANK`] entries are meaningful.
    fn dims(&self) -> [usize; 4];
    /// Total number of elements.
    #[inline(always)]
    fn numel(&self) -> usize {
        self.batch().size() * Self::SAMPLE_NUMEL
    }
    /// The extents as a list, e.g. `[100, 1, 28, 28]`.
    fn dims_vec(&self) -> Vec<usize> {
        self.dims()[..Self::RANK].to_vec()
    }
}

impl<B: Dim> Shape for (B,) {
    type Batch = B;
    const RANK: usize = 1;
    const SAMPLE_NUMEL: usize = 1;
    fn batch(&self) -> B {
        self.0
    }
    fn from_batch(b: B) -> Self {
        (b,)
    }
    fn dims(&self) -> [usize; 4] {
        [self.0.size(), 0, 0, 0]
    }
}

impl<B: Dim, D1: ConstDim> Shape for (B, D1) {
    type Batch = B;
    const RANK: usize = 2;
    const SAMPLE_NUMEL: usize = D1::N;
    fn batch(&self) -> B {
        self.0
    }
    fn from_batch(b: B) -> Self {
        (b, D1::default())
    }
    fn dims(&self) -> [usize; 4] {
        [self.0.size(), D1::N, 0, 0]
    }
}

impl<B: Dim, D1: ConstDim, D2: ConstDim> Shape for (B, D1, D2) {
    type Batch = B;
    const RANK: usize = 3;
    const SAMPLE_NUMEL: usize = D1::N * D2::N;
    fn batch(&self) -> B {
        self.0
    }
    fn from_batch(b: B) -> Self {
        (b, D1::default(), D2::default())
    }
    fn dims(&self) -> [usize; 4] {
        [self.0.size(), D1::N, D2::N, 0]
    }
}

impl<B: Dim, D1: ConstDim, D2: ConstDim, D3: ConstDim> Shape for (B, D1, D2, D3) {
    type Batch = B;
    const RANK: usize = 4;
    const SAMPLE_NUMEL: usize = D1::N * D2::N * D3::N;
    fn batch(&self) -> B {
        self.0
    }
    fn from_batch(b: B) -> Self {
        (b, D1::default(), D2::default(), D3::default())
    }
    fn dims(&self) -> [usize; 4] {
        [self.0.size(), D1::N, D2::N, D3::N]
    }
}

/// A shape with one score per batch entry: `(B,)` or `(B, Const<1>)` (what binary losses take).
pub trait OnePerSample: Shape {}
impl<B: Dim> OnePerSample for (B,) {}
impl<B: Dim> OnePerSample for (B, Const<1>) {}

/// Formats a shape as `(100, 5, 22, 22)`.
pub fn fmt_dims(dims: &[usize]) -> String {
    let inner: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("({})", inner.join(", "))
}

// ------------------------------------------------------------------------------------------------
// Bridges between Const<N> and typenum.

/// `Const<N>` as a typenum integer (generated for `N ≤ TABLE_MAX` and a few larger products).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is outside shaped's shape table (extents up to 1024 and a few larger products)",
    label = "this extent cannot take part in a compile-time shape rule",
    note = "regenerate the table with a larger bound (tools/gen_table.py) or flatten a smaller tensor"
)]
pub trait ToTypenum {
    /// The typenum integer.
    type Tn: Unsigned;
}

/// A typenum integer back as `Const<N>` (generated for `N ≤ TABLE_MAX` and a few larger products).
#[diagnostic::on_unimplemented(
    message = "a computed extent is outside shaped's shape table (extents up to 1024 and a few larger products)",
    label = "this layer produces an extent the table does not hold",
    note = "the `required for` notes below name the layer and its input in numbers; \
            regenerate the table with a larger bound (tools/gen_table.py) if the extent is intended"
)]
pub trait ToConst {
    /// The `Const<N>` with the same value.
    type Const: ConstDim;
}

type Tn<X> = <X as ToTypenum>::Tn;

// ------------------------------------------------------------------------------------------------
// Feature and channel agreement.

/// The input width a layer gets (`Self`) equals the width it expects (`Expected`).
#[diagnostic::on_unimplemented(
    message = "this layer expects {Expected} input features, but the previous layer produces {Self}",
    label = "expects {Expected} input features, gets {Self}",
    note = "the input width of a fully connected or batch-norm layer must equal the output width of the layer before it"
)]
pub trait FeaturesMatch<Expected> {}
impl<const N: usize> FeaturesMatch<Const<N>> for Const<N> {}

/// The channel count a convolution or spatial batch norm gets (`Self`) equals what it expects.
#[diagnostic::on_unimplemented(
    message = "this layer expects {Expected} input channels, but the previous layer produces {Self}",
    label = "expects {Expected} input channels, gets {Self}",
    note = "the input channels of a convolution or spatial batch norm must equal the channels of the layer before it"
)]
pub trait ChannelsMatch<Expected> {}
impl<const N: usize> ChannelsMatch<Const<N>> for Const<N> {}

// ------------------------------------------------------------------------------------------------
// Convolution: out = (H + 2P − K)/S + 1.

/// Output extent of a convolution with kernel `K`, stride `S` and padding `P` over an input extent
/// `Self`: `(H + 2P − K)/S + 1`.
#[diagnostic::on_unimplemented(
    message = "a convolution with kernel {K}, stride {S} and padding {P} cannot run over an input extent of {Self}",
    label = "this convolution does not fit its input"
)]
pub trait ConvOutput<K, S, P> {
    /// The output extent.
    type Out: ConstDim;
}

/// Internal step of [`ConvOutput`]: the kernel fits the padded input (`Ord` is its comparison).
#[diagnostic::on_unimplemented(
    message = "a convolution kernel is larger than its (padded) input",
    label = "the kernel does not fit the input",
    note = "the `required for` notes below give the input extent, kernel, stride and padding in numbers; \
            pad the input or use a smaller kernel"
)]
pub trait ConvFits {
    /// The output extent.
    type Out: ConstDim;
}

impl<A, K, S> ConvFits for (Greater, A, K, S)
where
    A: Sub<K>,
    Diff<A, K>: Div<S>,
    Quot<Diff<A, K>, S>: Add<U1>,
    Sum<Quot<Diff<A, K>, S>, U1>: ToConst,
{
    type Out = <Sum<Quot<Diff<A, K>, S>, U1> as ToConst>::Const;
}

impl<A, K, S> ConvFits for (Equal, A, K, S)
where
    A: Sub<K>,
    Diff<A, K>: Div<S>,
    Quot<Diff<A, K>, S>: Add<U1>,
    Sum<Quot<Diff<A, K>, S>, U1>: ToConst,
{
    type Out = <Sum<Quot<Diff<A, K>, S>, U1> as ToConst>::Const;
}

type Padded<H, P> = Sum<Sum<Tn<H>, Tn<P>>, Tn<P>>;

impl<const H: usize, const K: usize, const S: usize, const P: usize> ConvOutput<Const<K>, Const<S>, Const<P>>
    for Const<H>
where
    Const<H>: ToTypenum,
    Const<K>: ToTypenum,
    Const<S>: ToTypenum,
    Const<P>: ToTypenum,
    Tn<Const<H>>: Add<Tn<Const<P>>>,
    Sum<Tn<Const<H>>, Tn<Const<P>>>: Add<Tn<Const<P>>>,
    Padded<Const<H>, Const<P>>: typenum::Cmp<Tn<Const<K>>>,
    (Compare<Padded<Const<H>, Const<P>>, Tn<Const<K>>>, Padded<Const<H>, Const<P>>, Tn<Const<K>>, Tn<Const<S>>):
        ConvFits,
{
    type Out = <(
        Compare<Padded<Const<H>, Const<P>>, Tn<Const<K>>>,
        Padded<Const<H>, Const<P>>,
        Tn<Const<K>>,
        Tn<Const<S>>,
    ) as ConvFits>::Out;
}

// ------------------------------------------------------------------------------------------------
// Pooling: out = (H − P)/S + 1, with exact tiling.

/// Output extent of a `P`-wide pooling window moved by stride `S` over an input extent `Self`:
/// `(H − P)/S + 1`, defined only when the windows tile the input exactly.
#[diagnostic::on_unimplemented(
    message = "a pooling window of {P} with stride {S} cannot tile an input extent of {Self}",
    label = "this pooling layer does not tile its input"
)]
pub trait PoolOutput<P, S> {
    /// The output extent.
    type Out: ConstDim;
}

/// Internal step of [`PoolOutput`]: the window fits the input.
#[diagnostic::on_unimplemented(
    message = "a pooling window is larger than its input",
    label = "the window does not fit the input",
    note = "the `required for` notes below give the input extent, window and stride in numbers"
)]
pub trait PoolFits {
    /// The output extent.
    type Out: ConstDim;
}

/// Internal step of [`PoolOutput`]: `(H − P)` is a multiple of the stride (the remainder is zero).
#[diagnostic::on_unimplemented(
    message = "a pooling window and stride do not tile the input exactly",
    label = "(input extent − window) is not a multiple of the stride",
    note = "the `required for` notes below give the input extent, window and stride in numbers; \
            change the preceding layer's kernel or padding so that the extent tiles"
)]
pub trait PoolTiles {
    /// The output extent.
    type Out: ConstDim;
}

impl<Q> PoolTiles for (Q, typenum::UTerm)
where
    Q: Add<U1>,
    Sum<Q, U1>: ToConst,
{
    type Out = <Sum<Q, U1> as ToConst>::Const;
}

impl<A, P, S> PoolFits for (Greater, A, P, S)
where
    A: Sub<P>,
    Diff<A, P>: Div<S> + Rem<S>,
    (Quot<Diff<A, P>, S>, Mod<Diff<A, P>, S>): PoolTiles,
{
    type Out = <(Quot<Diff<A, P>, S>, Mod<Diff<A, P>, S>) as PoolTiles>::Out;
}

impl<A, P, S> PoolFits for (Equal, A, P, S)
where
    A: Sub<P>,
    Diff<A, P>: Div<S> + Rem<S>,
    (Quot<Diff<A, P>, S>, Mod<Diff<A, P>, S>): PoolTiles,
{
    type Out = <(Quot<Diff<A, P>, S>, Mod<Diff<A, P>, S>) as PoolTiles>::Out;
}

impl<const H: usize, const P: usize, const S: usize> PoolOutput<Const<P>, Const<S>> for Const<H>
where
    Const<H>: ToTypenum,
    Const<P>: ToTypenum,
    Const<S>: ToTypenum,
    Tn<Const<H>>: typenum::Cmp<Tn<Const<P>>>,
    (Compare<Tn<Const<H>>, Tn<Const<P>>>, Tn<Const<H>>, Tn<Const<P>>, Tn<Const<S>>): PoolFits,
{
    type Out = <(Compare<Tn<Const<H>>, Tn<Const<P>>>, Tn<Const<H>>, Tn<Const<P>>, Tn<Const<S>>) as PoolFits>::Out;
}

// ------------------------------------------------------------------------------------------------
// Flatten: C·H·W.

/// The flattened extent `C·H·W` of a `(C, H, W)` sample.
#[diagnostic::on_unimplemented(
    message = "cannot compute the flattened size of {Self} at compile time",
    label = "flatten needs a (C, H, W) input whose extents and product are in the shape table"
)]
pub trait Flattened {
    /// The product as `Const<N>`.
    type Out: ConstDim;
}

impl<C, H, W> Flattened for (C, H, W)
where
    C: ToTypenum,
    H: ToTypenum,
    W: ToTypenum,
    Tn<C>: Mul<Tn<H>>,
    Prod<Tn<C>, Tn<H>>: Mul<Tn<W>>,
    Prod<Prod<Tn<C>, Tn<H>>, Tn<W>>: ToConst,
{
    type Out = <Prod<Prod<Tn<C>, Tn<H>>, Tn<W>> as ToConst>::Const;
}

/// Output extent of a convolution: `ConvOut<H, K, S, P>` is `Const<(H + 2P − K)/S + 1>`.
pub type ConvOut<H, K, S, P> = <H as ConvOutput<K, S, P>>::Out;
/// Output extent of a pooling layer: `PoolOut<H, P, S>` is `Const<(H − P)/S + 1>`.
pub type PoolOut<H, P, S> = <H as PoolOutput<P, S>>::Out;
/// The flattened extent of a `(C, H, W)` sample.
pub type FlatOut<C, H, W> = <(C, H, W) as Flattened>::Out;
