//! `Tensor<S, E>`: one contiguous row-major buffer whose length is always the shape's element count.

use crate::error::{Error, Result};
use crate::kernels::Elem;
use crate::shape::{Dim, Shape, fmt_dims};

/// A dense row-major tensor of shape `S` with elements `E` (`f32` by default).
///
/// The buffer holds exactly `S::numel()` elements: every constructor checks it and no method can
/// change the length without changing the shape with it.
///
/// ```
/// use shaped::prelude::*;
/// let x = Tensor::<(Dyn, Const<3>)>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
/// assert_eq!(x.batch_size(), 2);
/// assert!(Tensor::<(Const<2>, Const<3>)>::from_vec(vec![0.0; 5]).is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<S: Shape, E: Elem = f32> {
    shape: S,
    data: Vec<E>,
}

impl<S: Shape, E: Elem> core::fmt::Debug for Tensor<S, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Tensor{} {:?}", fmt_dims(&self.shape.dims_vec()), &self.data)
    }
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    /// A tensor of zeros with the given batch size.
    pub fn zeros(batch: S::Batch) -> Self {
        let shape = S::from_batch(batch);
        Tensor { shape, data: vec![E::zero(); shape.numel()] }
    }

    /// A tensor filled with `value`.
    pub fn full(batch: S::Batch, value: E) -> Self {
        let shape = S::from_batch(batch);
        Tensor { shape, data: vec![value; shape.numel()] }
    }

    /// Takes ownership of `data`; the batch size is `data.len() / S::SAMPLE_NUMEL`. An error when the
    /// length is not a whole number of samples or contradicts a static batch size.
    pub fn from_vec(data: Vec<E>) -> Result<Self> {
        let per = S::SAMPLE_NUMEL;
        if per == 0 || !data.len().is_multiple_of(per) {
            return Err(Error::Shape(format!(
                "a buffer of {} elements is not a whole number of samples of {} elements",
                data.len(),
                per
            )));
        }
        let n = data.len() / per;
        let batch = S::Batch::from_size(n).ok_or_else(|| {
            Error::Shape(format!(
                "a buffer of {} elements holds {n} samples of {per} elements, which contradicts the tensor's static batch size",
                data.len()
            ))
        })?;
        Ok(Tensor { shape: S::from_batch(batch), data })
    }

    /// Copies `data` (see [`Tensor::from_vec`]).
    pub fn from_slice(data: &[E]) -> Result<Self> {
        Self::from_vec(data.to_vec())
    }

    /// Takes ownership of `data` for the given batch size; an error when the length differs from
    /// `batch · S::SAMPLE_NUMEL`.
    pub fn from_vec_batch(batch: S::Batch, data: Vec<E>) -> Result<Self> {
        let shape = S::from_batch(batch);
        if data.len() != shape.numel() {
            return Err(Error::Shape(format!(
                "a buffer of {} elements does not fit shape {} ({} elements)",
                data.len(),
                fmt_dims(&shape.dims_vec()),
                shape.numel()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// The shape value (its batch dimension carries the runtime batch size).
    #[inline(always)]
    pub fn shape(&self) -> S {
        self.shape
    }

    /// The batch dimension.
    #[inline(always)]
    pub fn batch(&self) -> S::Batch {
        self.shape.batch()
    }

    /// The batch size.
    #[inline(always)]
    pub fn batch_size(&self) -> usize {
        self.shape.batch().size()
    }

    /// The extents as a list, batch first.
    pub fn dims(&self) -> Vec<usize> {
        self.shape.dims_vec()
    }

    /// The elements, row-major.
    #[inline(always)]
    pub fn as_slice(&self) -> &[E] {
        &self.data
    }

    /// The elements, row-major, mutable (the length cannot change).
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [E] {
        &mut self.data
    }

    /// The buffer.
    pub fn into_vec(self) -> Vec<E> {
        self.data
    }

    /// Number of elements.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element (a batch of zero).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements of batch entry `i`.
    #[inline(always)]
    pub fn sample(&self, i: usize) -> &[E] {
        &self.data[i * S::SAMPLE_NUMEL..(i + 1) * S::SAMPLE_NUMEL]
    }

    /// Changes the batch size, keeping the buffer's capacity (no allocation when it shrinks or regrows
    /// within what it held before). New elements are zero.
    #[inline]
    pub fn set_batch(&mut self, batch: S::Batch) {
        if batch != self.shape.batch() {
            self.shape = S::from_batch(batch);
            self.data.resize(self.shape.numel(), E::zero());
        }
    }

    /// Sets every element to zero.
    pub fn fill_zero(&mut self) {
        self.data.fill(E::zero());
    }

    /// The same elements under another shape with the same batch and sample size (a flatten or an
    /// un-flatten); an error when the sizes differ.
    pub fn reshape<T: Shape<Batch = S::Batch>>(self) -> Result<Tensor<T, E>> {
        if T::SAMPLE_NUMEL != S::SAMPLE_NUMEL {
            return Err(Error::Shape(format!(
                "cannot reshape samples of {} elements into samples of {} elements",
                S::SAMPLE_NUMEL,
                T::SAMPLE_NUMEL
            )));
        }
        Ok(Tensor { shape: T::from_batch(self.shape.batch()), data: self.data })
    }

    /// The same tensor with another batch-dimension type of the same size (`Dyn` ↔ `Const<N>`),
    /// checked at run time.
    pub fn rebatch<T: Shape>(self) -> Result<Tensor<T, E>> {
        Tensor::<T, E>::from_vec(self.data)
    }

    /// Elementwise conversion to another element type.
    pub fn cast<F: Elem>(&self) -> Tensor<S, F> {
        Tensor { shape: self.shape, data: self.data.iter().map(|&v| F::from(v).unwrap_or_else(F::nan)).collect() }
    }

    /// Index of the largest element in each batch entry (argmax over the sample).
    pub fn argmax_rows(&self) -> Vec<usize> {
        (0..self.batch_size())
            .map(|i| {
                let row = self.sample(i);
                let mut best = 0;
                for (j, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = j;
                    }
                }
                best
            })
            .collect()
    }
}

impl<S: Shape, E: Elem> Default for Tensor<S, E>
where
    S::Batch: Default,
{
    fn default() -> Self {
        Self::zeros(S::Batch::default())
    }
}
