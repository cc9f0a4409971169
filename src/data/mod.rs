//! Data sets: the in-memory [`Dataset`], loaders for IDX (Fashion-MNIST), CSV and CIFAR-10 files,
//! and seeded synthetic sets.
//!
//! Every loader validates its input completely: a malformed file gives an [`Error::Data`] naming
//! the file and what is wrong (with a line number or record index where one helps), never a panic,
//! and header counts are checked against the real file length before anything is allocated.

pub mod augment;
pub mod cifar;
pub mod csv;
pub mod idx;
pub mod synthetic;
mod targets;

pub use augment::{Augment, ChannelNorm};
pub use cifar::{load_cifar10_dir, read_cifar_batch};
pub use csv::{binary20_splits, read_csv};
pub use idx::{
    FASHION_MNIST_DEBIAN_DIR, fashion_mnist_dir, load_mnist_dir, mnist_image_files, read_idx_image_header,
    read_idx_images, read_idx_labels,
};
pub use synthetic::{binary20, random_images};
pub use targets::{Holdout, Targets};

use std::fmt;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::loss::TargetKind;
use crate::shape::{Dyn, Shape};
use crate::tensor::Tensor;

/// In-memory data set: `len` samples, each `sample_len` f32 features (row-major, e.g. C*H*W
/// pixels), with [`Targets`]: class indices ([`Dataset::new`]) or real values
/// ([`Dataset::regression`]).
///
/// The invariants (checked by the constructors) are: `features().len() == len() * sample_len()`,
/// every label is `< classes()`, and every feature and target value is finite.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    x: Vec<f32>,
    y: Targets,
    sample_dims: Vec<usize>,
    classes: usize,
}

impl fmt::Debug for Dataset {
    /// A summary (length, sample shape, classes), not the features themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("sample_dims", &self.sample_dims)
            .field("classes", &self.classes)
            .field("targets", &self.y.kind())
            .field("target_width", &self.y.width())
            .finish()
    }
}

impl Dataset {
    /// A data set from row-major features `x` (`y.len()` samples of `prod(sample_dims)` values)
    /// and labels `y`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x.len() != y.len() * prod(sample_dims)`, if a sample dimension is
    /// zero, or if a feature is NaN or infinite; [`Error::Label`] if `classes` is zero or a label
    /// is `>= classes`.
    pub fn new(x: Vec<f32>, y: Vec<usize>, sample_dims: &[usize], classes: usize) -> Result<Self> {
        let sample_len = Self::check_features(&x, y.len(), sample_dims)?;
        if classes == 0 {
            return Err(Error::Label("a data set needs at least one class".into()));
        }
        if let Some((i, &l)) = y.iter().enumerate().find(|&(_, &l)| l >= classes) {
            return Err(Error::Label(format!(
                "label {l} of sample {i} is out of range: the data set has {classes} classes (0..{classes})"
            )));
        }
        let _ = sample_len;
        Ok(Dataset { x, y: Targets::Classes(y), sample_dims: sample_dims.to_vec(), classes })
    }

    /// A data set with real-valued targets (regression, multi-label): row-major features `x` and
    /// `width` target values per sample in `values` (`values.len() / width` samples).
    ///
    /// # Errors
    /// [`Error::Shape`] if `width` is zero, `values.len()` is not a multiple of it, the features
    /// do not make that many samples of shape `sample_dims`, or a feature or value is NaN or
    /// infinite.
    pub fn regression(x: Vec<f32>, values: Vec<f32>, sample_dims: &[usize], width: usize) -> Result<Self> {
        if width == 0 || !values.len().is_multiple_of(width) {
            return Err(Error::Shape(format!(
                "{} target values do not make whole samples of {width} values each",
                values.len()
            )));
        }
        Self::check_features(&x, values.len() / width, sample_dims)?;
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Shape(format!(
                "target value {} of sample {} is {}: targets must be finite",
                k % width,
                k / width,
                values[k]
            )));
        }
        Ok(Dataset { x, y: Targets::Values(values, width), sample_dims: sample_dims.to_vec(), classes: 0 })
    }

    /// Checks that `x` holds `n` finite samples of shape `sample_dims`; their length.
    fn check_features(x: &[f32], n: usize, sample_dims: &[usize]) -> Result<usize> {
        if let Some(d) = sample_dims.iter().position(|&d| d == 0) {
            return Err(Error::Shape(format!("sample dimensions {sample_dims:?}: dimension {d} is zero")));
        }
        let sample_len = sample_dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Shape(format!("sample dimensions {sample_dims:?} overflow usize")))?;
        let expected = n.checked_mul(sample_len);
        if expected != Some(x.len()) {
            return Err(Error::Shape(format!(
                "{} feature values do not make {n} samples of shape {sample_dims:?} ({sample_len} values each)",
                x.len(),
            )));
        }
        if let Some(k) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Shape(format!(
                "feature {} of sample {} is {}: features must be finite",
                k % sample_len,
                k / sample_len,
                x[k]
            )));
        }
        Ok(sample_len)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// The targets: class labels or real values.
    pub fn targets(&self) -> &Targets {
        &self.y
    }

    /// The real-valued targets, [`target_width`](Self::target_width) per sample (row-major); empty
    /// for a data set of class labels.
    pub fn values(&self) -> &[f32] {
        match &self.y {
            Targets::Values(v, _) => v,
            Targets::Classes(_) => &[],
        }
    }

    /// Target values per sample: 1 for class labels.
    pub fn target_width(&self) -> usize {
        self.y.width()
    }

    /// An error before training unless this data set holds the targets that `loss` (named
    /// `loss_name`) needs: class labels, or real values with one per model output (`outputs`).
    /// `what` names the data set ("training", "validation").
    ///
    /// # Errors
    /// [`Error::Label`] naming the loss, the data set and both sides.
    pub fn check_targets(&self, kind: TargetKind, outputs: usize, loss_name: &str, what: &str) -> Result<()> {
        let have = self.y.kind();
        if have != kind {
            return Err(Error::Label(format!(
                "the {loss_name} loss needs {}, but the {what} data holds {}{}",
                kind.describe(),
                have.describe(),
                match kind {
                    TargetKind::Values => " (build it with `Dataset::regression`)",
                    TargetKind::Classes => " (build it with `Dataset::new`)",
                }
            )));
        }
        if kind == TargetKind::Values && self.y.width() != outputs {
            return Err(Error::Label(format!(
                "the {loss_name} loss needs one target value per model output ({outputs} per sample), but the \
                 {what} data holds {} per sample",
                self.y.width()
            )));
        }
        Ok(())
    }

    /// Checks that every class label is one the model's `outputs` scores can take — below
    /// `outputs`, or below 2 for a model with one output (a logistic or hinge score) — naming the
    /// first that is not, the loss and the set (`what`: "training", "validation", …). Real-valued
    /// targets pass. A scan of the labels: for the checks before a run, not for every step.
    pub(crate) fn check_labels_fit(&self, outputs: usize, loss_name: &str, what: &str) -> Result<()> {
        let limit = outputs.max(2);
        if let Targets::Classes(y) = &self.y
            && let Some((i, &l)) = y.iter().enumerate().find(|&(_, &l)| l >= limit)
        {
            return Err(Error::Label(format!(
                "label {l} of sample {i} of the {what} data is not a class of the {loss_name} loss on the model's \
                 {outputs} output(s), which takes labels 0..{limit} (the data set has {} classes)",
                self.classes
            )));
        }
        Ok(())
    }

    /// Whether the data set has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of features per sample (the product of [`sample_dims`](Self::sample_dims)).
    pub fn sample_len(&self) -> usize {
        self.sample_dims.iter().product()
    }

    /// The shape of one sample, e.g. `[1, 28, 28]` for Fashion-MNIST or `[20]` for a feature vector.
    pub fn sample_dims(&self) -> &[usize] {
        &self.sample_dims
    }

    /// The number of classes: every label is below it (0 for real-valued targets).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// All features, row-major: sample `i` is `features()[i * sample_len()..(i + 1) * sample_len()]`.
    pub fn features(&self) -> &[f32] {
        &self.x
    }

    /// Every sample's features, mutably (the length and shape stay fixed).
    pub fn features_mut(&mut self) -> &mut [f32] {
        &mut self.x
    }

    /// All labels (class indices), one per sample; empty for real-valued targets (see
    /// [`values`](Self::values)).
    pub fn labels(&self) -> &[usize] {
        match &self.y {
            Targets::Classes(y) => y,
            Targets::Values(..) => &[],
        }
    }

    /// The features of sample `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn sample(&self, i: usize) -> &[f32] {
        assert!(i < self.len(), "sample index {i} out of range for a data set of {} samples", self.len());
        let n = self.sample_len();
        &self.x[i * n..(i + 1) * n]
    }

    /// A copy of the contiguous samples `range`.
    ///
    /// # Panics
    /// If the range is decreasing or ends past `len()`.
    pub fn slice(&self, range: Range<usize>) -> Dataset {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "slice {range:?} out of range for a data set of {} samples",
            self.len()
        );
        let n = self.sample_len();
        Dataset {
            x: self.x[range.start * n..range.end * n].to_vec(),
            y: self.y.pick(range),
            sample_dims: self.sample_dims.clone(),
            classes: self.classes,
        }
    }

    /// Splits into the first `n` samples and the rest (without copying the first part).
    ///
    /// # Panics
    /// If `n > len()`.
    pub fn split_at(mut self, n: usize) -> (Dataset, Dataset) {
        assert!(n <= self.len(), "split_at({n}) out of range for a data set of {} samples", self.len());
        let sl = self.sample_len();
        let x_rest = self.x.split_off(n * sl);
        let y_rest = self.y.split_off(n);
        let rest = Dataset { x: x_rest, y: y_rest, sample_dims: self.sample_dims.clone(), classes: self.classes };
        (self, rest)
    }

    /// A copy of the samples `idx` (in that order; indices may repeat).
    ///
    /// # Panics
    /// If an index is `>= len()`.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let n = self.sample_len();
        let mut x = Vec::with_capacity(idx.len() * n);
        for &i in idx {
            x.extend_from_slice(self.sample(i));
        }
        let y = self.y.pick(idx.iter().copied());
        Dataset { x, y, sample_dims: self.sample_dims.clone(), classes: self.classes }
    }

    /// Multiplies every feature by `factor` (raw 0–255 pixels to [0, 1] is `scale(1.0 / 255.0)`).
    pub fn scale(&mut self, factor: f32) {
        for v in &mut self.x {
            *v *= factor;
        }
    }

    /// Holds out the LAST `len / fraction_den` samples (e.g. 10 => 1/10, rounded down) for
    /// validation: returns `(train, val)`.
    ///
    /// # Panics
    /// If `fraction_den` is zero.
    pub fn holdout(self, fraction_den: usize) -> (Dataset, Dataset) {
        assert!(fraction_den > 0, "holdout fraction denominator must be positive");
        let val = self.len() / fraction_den;
        let n = self.len() - val;
        self.split_at(n)
    }

    /// A seeded, shuffled split: holds out `val` samples (a fraction of `len()`, rounded down, or a
    /// count) chosen uniformly at random by a generator seeded with `seed`, and returns
    /// `(train, val)`. The two are disjoint and cover the data set; each keeps the original order
    /// of its samples. The same seed gives the same split.
    ///
    /// # Errors
    /// [`Error::Shape`] for a fraction outside `[0, 1]` or a count above `len()`.
    pub fn split_shuffled(&self, val: impl Into<Holdout>, seed: u64) -> Result<(Dataset, Dataset)> {
        use rand::SeedableRng;
        let n = self.len();
        let k = match val.into() {
            Holdout::Fraction(f) if (0.0..=1.0).contains(&f) => ((n as f64) * f).floor() as usize,
            Holdout::Count(c) if c <= n => c,
            Holdout::Fraction(f) => {
                return Err(Error::Shape(format!("a validation fraction of {f} is not within [0, 1]")));
            }
            Holdout::Count(c) => {
                return Err(Error::Shape(format!("cannot hold out {c} samples of a data set of {n}")));
            }
        };
        let mut order = Vec::new();
        shuffle_order(&mut order, n, &mut rand::rngs::StdRng::seed_from_u64(seed));
        let (val_idx, train_idx) = order.split_at_mut(k);
        val_idx.sort_unstable();
        train_idx.sort_unstable();
        Ok((self.subset(train_idx), self.subset(val_idx)))
    }

    /// A 64-bit digest of the content: sample dimensions, classes, every feature's bits and every
    /// label (FNV-1a over 32-bit words, with a final mix). Equal data sets have equal digests;
    /// any change to a value, a label, the order or the length changes it (up to the odds of a
    /// 64-bit collision). It is what a resumable checkpoint records to recognise its data: about
    /// 50 ms for Fashion-MNIST's 47 million features.
    pub fn digest(&self) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let fnv = |h: u64, w: u64| (h ^ w).wrapping_mul(PRIME);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        h = fnv(h, self.sample_dims.len() as u64);
        h = self.sample_dims.iter().fold(h, |h, &d| fnv(h, d as u64));
        h = fnv(h, self.classes as u64);
        h = fnv(h, self.len() as u64);
        // Four independent lanes over the features (a single FNV chain is latency-bound).
        let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
        let mut chunks = self.x.chunks_exact(4);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l = (*l ^ u64::from(v.to_bits())).wrapping_mul(PRIME);
            }
        }
        h = chunks.remainder().iter().fold(h, |h, v| fnv(h, u64::from(v.to_bits())));
        h = lanes.iter().fold(h, |h, &l| fnv(h, l));
        h = match &self.y {
            Targets::Classes(y) => y.iter().fold(h, |h, &l| fnv(h, l as u64)),
            Targets::Values(v, w) => v.iter().fold(fnv(h, *w as u64 | 1 << 63), |h, v| fnv(h, u64::from(v.to_bits()))),
        };
        // Final avalanche (splitmix64's), so that nearby inputs give unrelated digests.
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An error naming `what` (the split: "training", "validation", "test") unless the data set
    /// has samples and they fit the model input `S`; use it to check every split before training.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty split or samples of another size than `S`'s.
    pub fn check_input<S: Shape>(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Shape(format!("the {what} set is empty: every split needs at least one sample")));
        }
        self.check_fits::<S>(what)
    }

    /// An error naming the mismatch unless this data set's samples have the size of one sample of
    /// the model input `S`; `what` names the data set in the message ("training", "validation").
    pub(crate) fn check_fits<S: Shape>(&self, what: &str) -> Result<()> {
        if self.sample_len() != S::SAMPLE_NUMEL {
            return Err(Error::Shape(format!(
                "the {what} data has samples of {} values ({:?}), but the model takes {} per sample",
                self.sample_len(),
                self.sample_dims(),
                S::SAMPLE_NUMEL
            )));
        }
        Ok(())
    }

    /// An error naming the mismatch unless the samples `order` can make a batch for the model
    /// input `S`: samples of `S`'s size, indices below `len()`.
    pub(crate) fn check_batch<S: Shape>(&self, order: &[usize]) -> Result<()> {
        self.check_fits::<S>("batch's")?;
        // (The maximum first: a vectorised pass, as this runs in every training step.)
        if order.iter().copied().max().is_some_and(|k| k >= self.len()) {
            let (i, k) = order.iter().copied().enumerate().find(|&(_, k)| k >= self.len()).expect("found above");
            return Err(Error::Shape(format!(
                "sample index {k} at position {i} of the batch is out of range for a data set of {} samples",
                self.len()
            )));
        }
        Ok(())
    }

    /// The samples `order` as a batch tensor of the model input shape `S`, with their labels: a
    /// batch prepared once, outside a hot loop, for
    /// [`TrainStep::step_batch`](crate::step::TrainStep::step_batch).
    ///
    /// # Errors
    /// [`Error::Shape`] if the samples do not have the size of one sample of `S`, or if an index
    /// is `>= len()`.
    pub fn batch<S: Shape<Batch = Dyn>>(&self, order: &[usize]) -> Result<(Tensor<S, f32>, Vec<usize>)> {
        self.check_batch::<S>(order)?;
        let (mut x, mut y) = (Tensor::zeros(Dyn(order.len())), vec![0; order.len()]);
        self.gather_into(order, x.as_mut_slice(), &mut y);
        Ok((x, y))
    }

    /// The samples `order` as a batch tensor of the model input shape `S`, with their real-valued
    /// targets ([`target_width`](Self::target_width) per sample): the [`Dataset::batch`] of a
    /// regression data set.
    ///
    /// # Errors
    /// As [`Dataset::batch`], and [`Error::Label`] if the data set holds class labels.
    pub fn batch_values<S: Shape<Batch = Dyn>>(&self, order: &[usize]) -> Result<(Tensor<S, f32>, Vec<f32>)> {
        self.check_batch::<S>(order)?;
        let w = match &self.y {
            Targets::Values(_, w) => *w,
            Targets::Classes(_) => return Err(Error::Label("the data set holds class labels, not values".into())),
        };
        let (mut x, mut y) = (Tensor::zeros(Dyn(order.len())), vec![0.0; order.len() * w]);
        self.gather_values_into(order, x.as_mut_slice(), &mut y);
        Ok((x, y))
    }

    /// Copies the features and labels of the samples `order` (typically
    /// `epoch_order[start..start + batch]`) into the caller's buffers, without allocating:
    /// `x_out` must hold `order.len() * sample_len()` values and `y_out` `order.len()` labels.
    /// Used by mini-batching.
    ///
    /// # Panics
    /// If a buffer has the wrong length, an index is `>= len()`, or the data set holds real-valued
    /// targets (see [`gather_values_into`](Self::gather_values_into)).
    pub fn gather_into(&self, order: &[usize], x_out: &mut [f32], y_out: &mut [usize]) {
        let Targets::Classes(y) = &self.y else {
            panic!("gather_into: the data set holds real-valued targets; use gather_values_into")
        };
        self.gather(order, x_out, y_out, 1, |i, out| out[0] = y[i]);
    }

    /// As [`gather_into`](Self::gather_into) for a data set of real-valued targets: `y_out` must
    /// hold `order.len() * target_width()` values.
    ///
    /// # Panics
    /// If a buffer has the wrong length, an index is `>= len()`, or the data set holds class labels.
    pub fn gather_values_into(&self, order: &[usize], x_out: &mut [f32], y_out: &mut [f32]) {
        let Targets::Values(v, w) = &self.y else {
            panic!("gather_values_into: the data set holds class labels; use gather_into")
        };
        let w = *w;
        self.gather(order, x_out, y_out, w, |i, out| out.copy_from_slice(&v[i * w..(i + 1) * w]));
    }

    /// The gather behind both: features by row, `w` targets per sample copied by `target`.
    fn gather<T: Send>(
        &self,
        order: &[usize],
        x_out: &mut [f32],
        y_out: &mut [T],
        w: usize,
        target: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let n = self.sample_len();
        assert_eq!(
            x_out.len(),
            order.len() * n,
            "gather_into: x_out holds {} values, a batch of {} samples of {n} needs {}",
            x_out.len(),
            order.len(),
            order.len() * n
        );
        assert_eq!(
            y_out.len(),
            order.len() * w,
            "gather_into: y_out holds {} targets, the batch of {} samples needs {}",
            y_out.len(),
            order.len(),
            order.len() * w
        );
        let gather = |(order, x_out, y_out): (&[usize], &mut [f32], &mut [T])| {
            for ((&i, xs), y) in order.iter().zip(x_out.chunks_exact_mut(n.max(1))).zip(y_out.chunks_exact_mut(w)) {
                // Short rows (the 20-feature data) in fixed-size moves: a `memcpy` call per row
                // costs more than the copy.
                if n <= 64 {
                    crate::kernels::copy_short(xs, self.sample(i));
                } else {
                    xs.copy_from_slice(self.sample(i));
                }
                target(i, y);
            }
        };
        // A large batch is gathered by the kernel threads (the copy is memory-bound work).
        let parts = crate::kernels::split_batch(order.len(), n * 8);
        if parts <= 1 {
            return gather((order, x_out, y_out));
        }
        let per = order.len().div_ceil(parts);
        let pieces = order.chunks(per).zip(x_out.chunks_mut(per * n)).zip(y_out.chunks_mut(per * w));
        crate::threads::run_parts(pieces.map(|((o, x), y)| (o, x, y)), gather);
    }
}

/// The compressed or archive format that `head` (a file's first bytes) starts with, in words
/// ("an xz-compressed file"), if it is one of the common ones: readers name it instead of
/// reporting a wrong magic number.
pub(crate) fn compressed_format(head: &[u8]) -> Option<&'static str> {
    const FORMATS: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "a gzip-compressed file"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "an xz-compressed file"),
        (b"BZh", "a bzip2-compressed file"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "a zstd-compressed file"),
        (&[0x04, 0x22, 0x4d, 0x18], "an lz4-compressed file"),
        (&[0x5d, 0x00, 0x00], "an lzma-compressed file"),
        (&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c], "a 7-zip archive"),
        (&[b'P', b'K', 0x03, 0x04], "a zip archive"),
        (&[0x1f, 0x9d], "a compress (.Z) file"),
    ];
    // A header shorter than a magic number (IDX's first 4 bytes) matches its start.
    let matches = |magic: &[u8]| head.starts_with(magic) || (head.len() >= 4 && magic.starts_with(head));
    FORMATS.iter().find(|(magic, _)| matches(magic)).map(|&(_, name)| name)
}

/// Pixel scaling of image loaders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pixels {
    /// Bytes 0..=255 as f32 unchanged: what the homework's hyper-parameters need.
    #[default]
    Raw,
    /// Bytes divided by 255 into [0, 1].
    Unit,
}

impl Pixels {
    /// The factor a byte is multiplied by: 1 for [`Pixels::Raw`], 1/255 for [`Pixels::Unit`].
    pub fn factor(self) -> f32 {
        match self {
            Pixels::Raw => 1.0,
            Pixels::Unit => 1.0 / 255.0,
        }
    }

    /// Converts pixel bytes to f32 features with this scaling (`Unit` divides by 255, so 255
    /// becomes exactly 1.0).
    pub fn convert(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Pixels::Raw => bytes.iter().map(|&b| f32::from(b)).collect(),
            Pixels::Unit => bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        }
    }

    /// As [`convert`](Self::convert), but `None` instead of aborting when the memory for the
    /// features cannot be allocated.
    pub fn try_convert(self, bytes: &[u8]) -> Option<Vec<f32>> {
        let mut out = Vec::new();
        out.try_reserve_exact(bytes.len()).ok()?;
        match self {
            Pixels::Raw => out.extend(bytes.iter().map(|&b| f32::from(b))),
            Pixels::Unit => out.extend(bytes.iter().map(|&b| f32::from(b) / 255.0)),
        }
        Some(out)
    }

    /// The mode's name on the command line and in checkpoints: `raw` or `unit`.
    pub fn name(self) -> &'static str {
        match self {
            Pixels::Raw => "raw",
            Pixels::Unit => "unit",
        }
    }
}

/// A seeded shuffled epoch order: fills `order` with a permutation of `0..n` using `rng` (reuses
/// the Vec's capacity).
pub fn shuffle_order(order: &mut Vec<usize>, n: usize, rng: &mut impl rand::Rng) {
    use rand::seq::SliceRandom;
    order.clear();
    order.extend(0..n);
    order.shuffle(rng);
}
