//! What a data set's samples are labelled with ([`Targets`]), and how much a split holds out
//! ([`Holdout`]).

use crate::loss::TargetKind;

/// What a data set's samples are labelled with.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class index per sample (classification; [`Dataset::new`](super::Dataset::new)).
    Classes(Vec<usize>),
    /// `width` real values per sample, row-major (regression, multi-label; [`Dataset::regression`](super::Dataset::regression)).
    Values(Vec<f32>, usize),
}

impl Targets {
    /// Which kind of targets these are.
    pub fn kind(&self) -> TargetKind {
        match self {
            Targets::Classes(_) => TargetKind::Classes,
            Targets::Values(..) => TargetKind::Values,
        }
    }

    /// Values per sample: 1 for class labels, the width for values.
    pub fn width(&self) -> usize {
        match self {
            Targets::Classes(_) => 1,
            Targets::Values(_, w) => *w,
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Targets::Classes(y) => y.len(),
            Targets::Values(v, w) => v.len() / (*w).max(1),
        }
    }

    /// The targets of the samples `idx`, in that order.
    pub(super) fn pick(&self, idx: impl Iterator<Item = usize>) -> Targets {
        match self {
            Targets::Classes(y) => Targets::Classes(idx.map(|i| y[i]).collect()),
            Targets::Values(v, w) => {
                Targets::Values(idx.flat_map(|i| v[i * w..(i + 1) * w].iter().copied()).collect(), *w)
            }
        }
    }

    /// Splits off the targets of samples `n..`.
    pub(super) fn split_off(&mut self, n: usize) -> Targets {
        match self {
            Targets::Classes(y) => Targets::Classes(y.split_off(n)),
            Targets::Values(v, w) => Targets::Values(v.split_off(n * *w), *w),
        }
    }
}

/// How many samples [`Dataset::split_shuffled`](super::Dataset::split_shuffled) holds out: a fraction (`0.1`) or a count (`500`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Holdout {
    /// This fraction of the samples, rounded down.
    Fraction(f64),
    /// This many samples.
    Count(usize),
}

impl From<f64> for Holdout {
    fn from(f: f64) -> Self {
        Holdout::Fraction(f)
    }
}

impl From<usize> for Holdout {
    fn from(c: usize) -> Self {
        Holdout::Count(c)
    }
}
