//! Shapes as types: static dimensions (`Const<N>`), the runtime batch dimension (`Dyn`), shape
//! tuples of rank 1–4 and the compile-time shape rules of the layers.
//!
//! A shape is a tuple whose first element is the batch dimension (static or runtime) and whose other
//! elements are static extents: `(Dyn, Const<1>, Const<28>, Const<28>)` is a batch of 28×28 grey
//! images. Static dims are const generics, so compiler messages print them as numbers.
//!
//! The shape rules of the layers (convolution and pooling output sizes, flatten products, feature
//! and channel agreement) are data, [`Rule`], evaluated by one `const fn`, [`apply`]: there is no
//! table and no limit on extents, and every failure is a sentence with the sizes in decimal.

use core::fmt::Debug;

mod check;
mod msg;
mod rule;
pub use check::{AT_INPUT, AT_NONE, Checked, expect, out_extents};
pub use msg::{MSG_CAPACITY, Msg};
pub use rule::{Extents, Field, Rule, SeqRule, apply, describe};

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
    /// The static (non-batch) extents.
    const SAMPLE: Extents;
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
    const SAMPLE: Extents = Extents::SCALAR;
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
    const SAMPLE: Extents = Extents::flat(D1::N);
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
    const SAMPLE: Extents = Extents::new(&[D1::N, D2::N]);
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
    const SAMPLE: Extents = Extents::map(D1::N, D2::N, D3::N);
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

/// The shape of rank `R + 1` with batch `B` and static extents `D0, D1, D2` (those past `R` unused):
/// how a derived model writes its output type from extents computed in a constant.
pub type ShapeOf<B, const R: usize, const D0: usize, const D1: usize, const D2: usize> =
    <Rank<R> as MakeShape<B, D0, D1, D2>>::Shape;

/// A sample rank, as a type (see [`ShapeOf`]).
pub struct Rank<const R: usize>;

/// Builds the shape of a rank from its extents (see [`ShapeOf`]).
pub trait MakeShape<B: Dim, const D0: usize, const D1: usize, const D2: usize> {
    /// The shape.
    type Shape: Shape<Batch = B>;
}

impl<B: Dim, const D0: usize, const D1: usize, const D2: usize> MakeShape<B, D0, D1, D2> for Rank<0> {
    type Shape = (B,);
}
impl<B: Dim, const D0: usize, const D1: usize, const D2: usize> MakeShape<B, D0, D1, D2> for Rank<1> {
    type Shape = (B, Const<D0>);
}
impl<B: Dim, const D0: usize, const D1: usize, const D2: usize> MakeShape<B, D0, D1, D2> for Rank<2> {
    type Shape = (B, Const<D0>, Const<D1>);
}
impl<B: Dim, const D0: usize, const D1: usize, const D2: usize> MakeShape<B, D0, D1, D2> for Rank<3> {
    type Shape = (B, Const<D0>, Const<D1>, Const<D2>);
}
