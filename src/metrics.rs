//! Classification metrics beyond accuracy: top-k accuracy and the confusion matrix (printed as a
//! table, plotted by [`crate::plot::plot_confusion`]).
//!
//! ```
//! use shaped::metrics::{ConfusionMatrix, top_k_accuracy};
//! // two samples, three classes
//! let scores = [0.1, 0.7, 0.2, /* */ 0.5, 0.1, 0.4];
//! assert_eq!(top_k_accuracy(&scores, 3, &[2, 2], 1).unwrap(), 0.0);
//! assert_eq!(top_k_accuracy(&scores, 3, &[2, 2], 2).unwrap(), 1.0);
//! let cm = ConfusionMatrix::from_predictions(3, &[2, 2], &[1, 0]).unwrap();
//! assert_eq!(cm.count(2, 1), 1);
//! assert_eq!(cm.accuracy(), 0.0);
//! ```

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::model::Model;
use crate::shape::{Dyn, Shape};
use crate::tensor::Tensor;
use std::fmt;

/// Fraction of rows of `scores` (`classes` per row) whose label is among the `k` highest scores
/// (ties broken towards the lower class index, as `argmax` does).
pub fn top_k_accuracy(scores: &[f32], classes: usize, labels: &[usize], k: usize) -> Result<f64> {
    check_rows(scores.len(), classes, labels)?;
    if k == 0 {
        return Err(Error::Shape("top-k accuracy needs k ≥ 1".into()));
    }
    if k > classes {
        return Err(Error::Shape(format!(
            "top-{k} accuracy of {classes} classes: k must be at most the number of classes"
        )));
    }
    if labels.is_empty() {
        return Ok(0.0);
    }
    let hits = scores.chunks_exact(classes).zip(labels).filter(|(row, l)| rank_of(row, **l) < k).count();
    Ok(hits as f64 / labels.len() as f64)
}

/// How many classes score above `label` (or equal to it with a lower index).
fn rank_of(row: &[f32], label: usize) -> usize {
    let s = row[label];
    row.iter().enumerate().filter(|&(j, &v)| v > s || (v == s && j < label)).count()
}

fn check_rows(len: usize, classes: usize, labels: &[usize]) -> Result<()> {
    if classes == 0 || len != classes * labels.len() {
        return Err(Error::Shape(format!(
            "{len} scores are not {} rows of {classes} classes (one per label)",
            labels.len()
        )));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
        return Err(Error::Label(format!("label {l} at position {i} is not one of {classes} classes")));
    }
    Ok(())
}

/// Counts of (true class, predicted class) pairs: row `t`, column `p`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    /// The matrix of `predicted` against `labels` (same length, every class below `classes`).
    pub fn from_predictions(classes: usize, labels: &[usize], predicted: &[usize]) -> Result<Self> {
        if labels.len() != predicted.len() {
            return Err(Error::Shape(format!("{} labels but {} predictions", labels.len(), predicted.len())));
        }
        let mut m = ConfusionMatrix::new(classes);
        for (i, (&t, &p)) in labels.iter().zip(predicted).enumerate() {
            if t >= classes || p >= classes {
                return Err(Error::Label(format!("pair {i} ({t}, {p}) is outside {classes} classes")));
            }
            m.counts[t * classes + p] += 1;
        }
        Ok(m)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// All samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The diagonal's share of the total (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        right as f64 / self.total().max(1) as f64
    }

    /// Recall of class `c`: correct predictions among its samples (`None` without samples).
    pub fn recall(&self, c: usize) -> Option<f64> {
        let n: u64 = (0..self.classes).map(|p| self.count(c, p)).sum();
        (n > 0).then(|| self.count(c, c) as f64 / n as f64)
    }

    /// Precision of class `c`: correct predictions among those predicted `c` (`None` if none).
    pub fn precision(&self, c: usize) -> Option<f64> {
        let n: u64 = (0..self.classes).map(|t| self.count(t, c)).sum();
        (n > 0).then(|| self.count(c, c) as f64 / n as f64)
    }
}

impl fmt::Display for ConfusionMatrix {
    /// A table: one row per true class, one column per predicted class, and each class's recall.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.counts.iter().max().map_or(1, |m| m.to_string().len()).max(3);
        write!(f, "true\\pred")?;
        for p in 0..self.classes {
            write!(f, " {p:>w$}")?;
        }
        writeln!(f, "   recall")?;
        for t in 0..self.classes {
            write!(f, "{t:>9}")?;
            for p in 0..self.classes {
                write!(f, " {:>w$}", self.count(t, p))?;
            }
            match self.recall(t) {
                Some(r) => writeln!(f, "   {r:.3}")?,
                None => writeln!(f, "   -")?,
            }
        }
        write!(f, "accuracy {:.4} of {}", self.accuracy(), self.total())
    }
}

/// What [`evaluate`] measures on a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Top-k accuracy for the `k` asked.
    pub top_k: f64,
    /// The confusion matrix.
    pub confusion: ConfusionMatrix,
}

/// Runs `model` (inference mode) over `data` in batches of `batch` and measures top-1 and top-`k`
/// accuracy and the confusion matrix; the model's output is one score per class.
///
/// The input shape comes from the model's type ([`Model`]); [`evaluate_as`] takes it written out.
pub fn evaluate<M: Model<f32>>(model: &M, data: &Dataset, batch: usize, k: usize) -> Result<Evaluation> {
    evaluate_as::<M::Input, M>(model, data, batch, k)
}

/// [`evaluate`] with the input shape `S` written out (for a layer that implements no [`Model`]).
pub fn evaluate_as<S, M>(model: &M, data: &Dataset, batch: usize, k: usize) -> Result<Evaluation>
where
    S: Shape<Batch = Dyn>,
    M: Layer<S, f32>,
{
    data.check_fits::<S>("evaluation")?;
    crate::solver::check_eval_batch(batch, "evaluate")?;
    let classes = <M::Out as Shape>::SAMPLE_NUMEL;
    let labels = data.labels();
    let per = data.sample_len();
    let mut scores = Vec::with_capacity(data.len() * classes);
    let mut y = Tensor::<M::Out, f32>::zeros(Dyn(0));
    for start in (0..data.len()).step_by(batch) {
        let end = (start + batch).min(data.len());
        let x = Tensor::<S, f32>::from_slice(&data.features()[start * per..end * per])?;
        model.forward(&x, &mut y);
        scores.extend_from_slice(y.as_slice());
    }
    let predicted: Vec<usize> =
        scores.chunks_exact(classes).map(|r| (0..classes).find(|&j| rank_of(r, j) == 0).unwrap_or(0)).collect();
    Ok(Evaluation {
        accuracy: top_k_accuracy(&scores, classes, labels, 1)?,
        top_k: top_k_accuracy(&scores, classes, labels, k)?,
        confusion: ConfusionMatrix::from_predictions(classes, labels, &predicted)?,
    })
}
