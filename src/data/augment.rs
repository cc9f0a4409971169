//! Image preprocessing: per-channel normalisation, and augmentation applied per batch (random crop
//! with zero padding, horizontal flip), deterministic for a seed.

use super::Dataset;
use crate::error::{Error, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Per-channel normalisation `x ← (x − mean[c]) / std[c]` of `C×H×W` (or flat, one channel)
/// samples, with statistics measured on a training set and applied to every split.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelNorm {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel (population, at least 1e-12).
    pub std: Vec<f32>,
}

/// Channels and values per channel of a data set's samples (`C×H×W` → `(C, H·W)`; otherwise one
/// channel).
fn channels(dims: &[usize]) -> (usize, usize) {
    match dims {
        [c, h, w] => (*c, h * w),
        _ => (1, dims.iter().product()),
    }
}

impl ChannelNorm {
    /// Measures mean and standard deviation per channel over every sample of `data` (in f64).
    pub fn fit(data: &Dataset) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::Shape("cannot measure channel statistics of an empty data set".into()));
        }
        let (c, inner) = channels(data.sample_dims());
        let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
        for s in data.features().chunks_exact(c * inner) {
            for (ch, plane) in s.chunks_exact(inner).enumerate() {
                for &v in plane {
                    sum[ch] += v as f64;
                    sq[ch] += v as f64 * v as f64;
                }
            }
        }
        let n = (data.len() * inner) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(0.0).sqrt().max(1e-12)) as f32).collect();
        Ok(ChannelNorm { mean: mean.into_iter().map(|m| m as f32).collect(), std })
    }

    /// Normalises `data` in place; its samples must have as many channels as the statistics.
    pub fn apply(&self, data: &mut Dataset) -> Result<()> {
        let (c, inner) = channels(data.sample_dims());
        if self.mean.len() != self.std.len() {
            return Err(Error::Shape(format!(
                "channel statistics of {} means but {} deviations",
                self.mean.len(),
                self.std.len()
            )));
        }
        let bad =
            (0..self.mean.len()).find(|&i| !(self.mean[i].is_finite() && self.std[i].is_finite() && self.std[i] > 0.0));
        if let Some(i) = bad {
            return Err(Error::Shape(format!(
                "channel {i}: mean {} and deviation {} (the mean must be finite, the deviation finite and positive)",
                self.mean[i], self.std[i]
            )));
        }
        if c != self.mean.len() {
            return Err(Error::Shape(format!(
                "the statistics are of {} channels, the data's samples have {c}",
                self.mean.len()
            )));
        }
        for s in data.features_mut().chunks_exact_mut(c * inner) {
            for (ch, plane) in s.chunks_exact_mut(inner).enumerate() {
                let (m, inv) = (self.mean[ch], 1.0 / self.std[ch]);
                plane.iter_mut().for_each(|v| *v = (*v - m) * inv);
            }
        }
        Ok(())
    }
}

/// Augmentation of a batch of `C×H×W` images: each image is shifted by a random offset in
/// `−pad..=pad` along both axes with zeros filling in (a random crop of the zero-padded image, as
/// `torchvision`'s `RandomCrop(size, padding=pad)`), then mirrored left-right with probability ½
/// when `hflip`. The choices come from a generator seeded per batch, so a run is reproducible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment {
    /// Padding of the random crop (0: no crop).
    pub crop_pad: usize,
    /// Horizontal flips.
    pub hflip: bool,
}

impl Augment {
    /// A short description, e.g. `crop padding 4, horizontal flips` (`none` when it does nothing).
    pub fn describe(&self) -> String {
        match (self.crop_pad, self.hflip) {
            (0, false) => "none".to_string(),
            (0, true) => "horizontal flips".to_string(),
            (p, false) => format!("crop padding {p}"),
            (p, true) => format!("crop padding {p}, horizontal flips"),
        }
    }

    /// Checks that this augmentation can apply to samples of `dims` (`C×H×W`, the crop padding
    /// smaller than both sides); the error says why not.
    pub fn check_dims(&self, dims: &[usize]) -> Result<()> {
        if *self == Augment::default() {
            return Ok(());
        }
        let [_, h, w] = dims else {
            return Err(Error::Shape(format!(
                "augmentation needs C×H×W image samples, but the samples have {} dimensions",
                dims.len()
            )));
        };
        if self.crop_pad >= (*h).max(1) || self.crop_pad >= (*w).max(1) {
            return Err(Error::Shape(format!("crop padding {} is not smaller than the {h}×{w} image", self.crop_pad)));
        }
        Ok(())
    }

    /// Augments `batch` (`n` images of `c×h×w`, row-major) in place with choices drawn from `seed`;
    /// `scratch` holds one image (reused across calls: no allocation once grown).
    pub fn apply(&self, batch: &mut [f32], dims: [usize; 3], seed: u64, scratch: &mut Vec<f32>) -> Result<()> {
        let [c, h, w] = dims;
        let len = c * h * w;
        if len == 0 || !batch.len().is_multiple_of(len) {
            return Err(Error::Shape(format!(
                "a batch of {} values is not a whole number of {c}×{h}×{w} images",
                batch.len()
            )));
        }
        if self.crop_pad >= h.max(1) || self.crop_pad >= w.max(1) {
            return Err(Error::Shape(format!("crop padding {} is not smaller than the {h}×{w} image", self.crop_pad)));
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        scratch.resize(len, 0.0);
        let p = self.crop_pad as i64;
        for img in batch.chunks_exact_mut(len) {
            let (dy, dx) =
                if p > 0 { (rng.random_range(-p..=p) as isize, rng.random_range(-p..=p) as isize) } else { (0, 0) };
            let flip = self.hflip && rng.random_bool(0.5);
            if dy == 0 && dx == 0 && !flip {
                continue;
            }
            scratch.copy_from_slice(img);
            for ch in 0..c {
                for y in 0..h {
                    let sy = y as isize + dy;
                    let row = &mut img[(ch * h + y) * w..][..w];
                    if sy < 0 || sy >= h as isize {
                        row.fill(0.0);
                        continue;
                    }
                    let src = &scratch[(ch * h + sy as usize) * w..][..w];
                    for (x, out) in row.iter_mut().enumerate() {
                        let x = if flip { w - 1 - x } else { x };
                        let sx = x as isize + dx;
                        *out = if sx < 0 || sx >= w as isize { 0.0 } else { src[sx as usize] };
                    }
                }
            }
        }
        Ok(())
    }
}
