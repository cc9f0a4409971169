//! Resumable checkpoints: what a run records after every epoch, and the checks and restore of
//! [`Solver::resume_from`]; the parameter snapshots of the best epoch.

use super::run::Trainee;
use super::{History, Solver};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::{self, ExtraTensor};
use crate::layer::{ParamTree, Path};
use crate::loss::TargetKind;
use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::str::FromStr;

impl Solver {
    /// Writes the resumable checkpoint after `epoch`.
    pub(super) fn save_resume(
        &self,
        job: &dyn Trainee,
        hist: &History,
        best: &[f32],
        epoch: usize,
        facts: &[Fact],
        path: &FsPath,
    ) -> Result<()> {
        let list = |v: &[f64]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let lrs = hist.lr.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let mut meta: Vec<(String, String)> = [
            (RESUME_EPOCH, epoch.to_string()),
            (RESUME_EPOCHS, self.epochs.to_string()),
            (RESUME_BEST_EPOCH, hist.best_epoch.to_string()),
            (RESUME_BEST_VAL, hist.best_val_acc.to_string()),
            (RESUME_TRAIN_ACC, list(&hist.train_acc)),
            (RESUME_VAL_ACC, list(&hist.val_acc)),
            (RESUME_VAL_LOSS, list(&hist.val_loss)),
            (RESUME_BEST_VAL_LOSS, hist.best_val_loss.to_string()),
            (RESUME_LR, lrs),
            (RESUME_SECONDS, hist.train_seconds.to_string()),
            (RESUME_SAMPLES, hist.train_samples.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        meta.extend(facts.iter().map(|f| (f.key.clone(), f.value.clone())));
        let extra: Vec<ExtraTensor<f32>> = vec![
            (RESUME_LOSS.to_string(), vec![hist.loss.len()], hist.loss.clone()),
            (RESUME_BEST.to_string(), vec![best.len()], best.to_vec()),
        ];
        job.save_checkpoint(&extra, &meta, path)
    }

    /// What determines this run's result besides the initial parameters: recorded in the resumable
    /// checkpoint and compared on resume.
    pub(super) fn run_facts(&self, train: &Dataset, val: &Dataset) -> Vec<Fact> {
        let digest = |d: &Dataset| format!("{:016x}", d.digest());
        let mut facts = vec![
            Fact::new(RESUME_SEED, "seed", self.seed.to_string()),
            Fact::new(RESUME_BATCH, "batch size", self.batch_size.to_string()),
            Fact::new(RESUME_TRAIN_LEN, "number of training samples", train.len().to_string()),
            Fact::new(RESUME_TRAIN_DIGEST, "training data digest", digest(train)),
            Fact::new(RESUME_VAL_LEN, "number of validation samples", val.len().to_string()),
            Fact::new(RESUME_VAL_DIGEST, "validation data digest", digest(val)),
            Fact::new(RESUME_RULE, "update rule", self.rule.name().to_string()),
            Fact::new(RESUME_LR0, "learning rate", self.lr.to_string()),
            Fact::new(RESUME_DECAY, "learning-rate decay", self.lr_decay.to_string()),
            Fact::new(RESUME_SCHEDULE, "learning-rate schedule", {
                let s = self.schedule_in_effect();
                let over = if s.depends_on_epochs() { format!(" over {} epochs", self.epochs) } else { String::new() };
                format!("{}{over}", s.describe())
            }),
            Fact::new(RESUME_OPTIM, "optimizer hyper-parameters", self.optim.describe(self.rule)),
            Fact::new(
                RESUME_CLIP,
                "gradient clipping (max norm)",
                self.clip.map_or_else(|| "off".to_string(), |c| c.to_string()),
            ),
            Fact::new(RESUME_REG, "L2 strength (reg)", self.reg.to_string()),
            Fact::new(RESUME_AUGMENT, "augmentation", self.augment.map_or_else(|| "off".to_string(), |a| a.describe())),
            Fact::new(RESUME_TRAIN_SAMPLE, "training-accuracy sample", self.train_sample.to_string()),
        ];
        facts.extend(self.tags.iter().map(|(k, v)| Fact {
            key: format!("{RESUME_TAG}{k}"),
            what: k.clone(),
            value: v.clone(),
        }));
        facts
    }

    /// Reads a resumable checkpoint into the job's model and optimizer; on any error neither is changed.
    pub(super) fn load_resume(&self, job: &mut dyn Trainee, path: &FsPath, facts: &[Fact]) -> Result<Resumed> {
        let err = |msg: String| Error::checkpoint(path, msg);
        let meta = io::read_metadata(path)?;
        if !meta.contains_key(RESUME_EPOCH) {
            return Err(err(format!(
                "not a resumable checkpoint (no `{RESUME_EPOCH}` metadata): resume from the file the solver \
                 writes after every epoch (`<name>.last.safetensors` next to the best-parameters checkpoint)"
            )));
        }
        let epoch: usize = meta_value(&meta, RESUME_EPOCH, path)?;
        if epoch > self.epochs {
            return Err(err(format!(
                "the checkpoint has already trained {epoch} epochs, more than the {} this run asks for: nothing to \
                 resume (ask for more than {epoch} epochs to train further)",
                self.epochs
            )));
        }
        let mut differences = Vec::new();
        for f in facts {
            if f.key == RESUME_LR0 && self.allow_lr_change {
                continue;
            }
            let theirs = meta.get(&f.key).map(String::as_str).unwrap_or("(not recorded)");
            if theirs != f.value {
                differences.push(format!("{}: {theirs} in the checkpoint, {} in this run", f.what, f.value));
            }
        }
        // Tags of the saved run that this run does not set.
        for (k, v) in meta.range(RESUME_TAG.to_string()..) {
            let Some(tag) = k.strip_prefix(RESUME_TAG) else { break };
            if !facts.iter().any(|f| f.key == *k) {
                differences.push(format!("{tag}: {v} in the checkpoint, not set in this run"));
            }
        }
        if !differences.is_empty() {
            return Err(err(format!(
                "the checkpoint was written by another run; {}. A resumed run needs the same data and settings \
                 to continue where it stopped (only the number of epochs may change{})",
                differences.join("; "),
                if self.allow_lr_change { ", and the learning rate" } else { "" }
            )));
        }
        let ck = job.stage_checkpoint(self.rule, &self.optim, path)?;
        let m = job.staged().expect("a checkpoint was just staged");
        let list = |key: &str| -> Result<&str> {
            meta.get(key).map(String::as_str).ok_or_else(|| err(format!("the metadata `{key}` is missing")))
        };
        let tensor = |name: &str| -> Result<Vec<f32>> {
            ck.extra(name)
                .map(|(_, d)| d.to_vec())
                .ok_or_else(|| err(format!("tensor `{name}` is missing from the resumable checkpoint")))
        };
        let hist = History {
            loss: tensor(RESUME_LOSS)?,
            train_acc: parse_list(list(RESUME_TRAIN_ACC)?, RESUME_TRAIN_ACC, path)?,
            val_acc: parse_list(list(RESUME_VAL_ACC)?, RESUME_VAL_ACC, path)?,
            val_loss: parse_list(list(RESUME_VAL_LOSS)?, RESUME_VAL_LOSS, path)?,
            lr: parse_list(list(RESUME_LR)?, RESUME_LR, path)?,
            best_epoch: meta_value(&meta, RESUME_BEST_EPOCH, path)?,
            best_val_acc: meta_value(&meta, RESUME_BEST_VAL, path)?,
            best_val_loss: meta_value(&meta, RESUME_BEST_VAL_LOSS, path)?,
            stopped_early: 0,
            train_seconds: meta_value(&meta, RESUME_SECONDS, path)?,
            train_samples: meta_value(&meta, RESUME_SAMPLES, path)?,
        };
        // Classification records both accuracies, regression the validation loss.
        let measured = if job.kind() == TargetKind::Classes {
            hist.train_acc.len() == epoch && hist.val_acc.len() == epoch && hist.val_loss.is_empty()
        } else {
            hist.train_acc.is_empty() && hist.val_acc.is_empty() && hist.val_loss.len() == epoch
        };
        if !measured || hist.lr.len() != epoch {
            return Err(err(format!(
                "the history holds {} / {} / {} / {} epochs of training accuracy / validation accuracy / validation \
                 loss / learning rate, but the checkpoint is at epoch {epoch} of a {} run",
                hist.train_acc.len(),
                hist.val_acc.len(),
                hist.val_loss.len(),
                hist.lr.len(),
                if job.kind() == TargetKind::Classes { "classification" } else { "regression" }
            )));
        }
        let best = tensor(RESUME_BEST)?;
        let numel = count_values(m);
        if best.len() != numel && !(best.is_empty() && hist.best_epoch == 0) {
            return Err(err(format!(
                "tensor `{RESUME_BEST}` has shape [{}] in the file, but the model expects [{numel}]",
                best.len()
            )));
        }
        if let Some(i) = best.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "tensor `{RESUME_BEST}` (the best epoch's parameters) holds {} at index {i}, in `{}`: parameters \
                 must be finite",
                best[i],
                param_at(m, i)
            )));
        }
        job.commit_staged();
        Ok(Resumed { epoch, hist, best })
    }
}

/// A fact about a run recorded in its resumable checkpoint: metadata key, what it is in words,
/// value.
pub(super) struct Fact {
    key: String,
    pub(super) what: String,
    pub(super) value: String,
}

impl Fact {
    fn new(key: &str, what: &str, value: String) -> Self {
        Fact { key: key.to_string(), what: what.to_string(), value }
    }
}

/// What [`Solver::resume_from`] restores besides the model and the optimizer.
pub(super) struct Resumed {
    pub(super) epoch: usize,
    pub(super) hist: History,
    pub(super) best: Vec<f32>,
}

pub(super) const RESUME_EPOCH: &str = "solver.epoch";
pub(super) const RESUME_AUGMENT: &str = "solver.augment";
pub(super) const RESUME_EPOCHS: &str = "solver.epochs";
pub(super) const RESUME_SEED: &str = "solver.seed";
pub(super) const RESUME_BATCH: &str = "solver.batch_size";
pub(super) const RESUME_TRAIN_LEN: &str = "solver.train_len";
pub(super) const RESUME_RULE: &str = "solver.rule";
pub(super) const RESUME_TRAIN_DIGEST: &str = "solver.train_digest";
pub(super) const RESUME_VAL_LEN: &str = "solver.val_len";
pub(super) const RESUME_VAL_DIGEST: &str = "solver.val_digest";
pub(super) const RESUME_LR0: &str = "solver.initial_lr";
pub(super) const RESUME_DECAY: &str = "solver.lr_decay";
pub(super) const RESUME_SCHEDULE: &str = "solver.schedule";
pub(super) const RESUME_OPTIM: &str = "solver.optim";
pub(super) const RESUME_CLIP: &str = "solver.clip_grad_norm";
pub(super) const RESUME_REG: &str = "solver.reg";
pub(super) const RESUME_TRAIN_SAMPLE: &str = "solver.train_sample";
/// Prefix of the caller's [tags](Solver::tag).
pub(super) const RESUME_TAG: &str = "solver.tag.";
pub(super) const RESUME_BEST_EPOCH: &str = "solver.best_epoch";
pub(super) const RESUME_BEST_VAL: &str = "solver.best_val_acc";
pub(super) const RESUME_TRAIN_ACC: &str = "solver.train_acc";
pub(super) const RESUME_VAL_ACC: &str = "solver.val_acc";
pub(super) const RESUME_VAL_LOSS: &str = "solver.val_loss";
pub(super) const RESUME_BEST_VAL_LOSS: &str = "solver.best_val_loss";
pub(super) const RESUME_LR: &str = "solver.lr";
pub(super) const RESUME_SECONDS: &str = "solver.train_seconds";
pub(super) const RESUME_SAMPLES: &str = "solver.train_samples";
/// The loss of every step so far.
pub(super) const RESUME_LOSS: &str = "solver.loss";
/// The best epoch's parameters and buffers, concatenated in visiting order.
pub(super) const RESUME_BEST: &str = "solver.best";

/// A metadata value parsed as `T`.
fn meta_value<T: FromStr>(meta: &BTreeMap<String, String>, key: &str, path: &FsPath) -> Result<T> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::checkpoint(path, format!("the metadata `{key}` is missing or not a number")))
}

/// A comma-separated list of numbers (empty for none), exactly as `to_string` wrote them.
fn parse_list<T: FromStr>(v: &str, key: &str, path: &FsPath) -> Result<Vec<T>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                Error::checkpoint(path, format!("the metadata `{key}` holds {s:?}, which is not a number"))
            })
        })
        .collect()
}

/// The path of the parameter or buffer that holds value `i` of the concatenation of all of them.
pub(super) fn param_at(model: &dyn ParamTree<f32>, i: usize) -> String {
    let (mut at, mut name) = (0, String::new());
    model.visit(&Path::ROOT, &mut |info, d| {
        if name.is_empty() && i < at + d.len() {
            name = info.path.to_string();
        }
        at += d.len();
    });
    name
}

/// The path of the first parameter or buffer holding a NaN or infinity.
pub(super) fn first_non_finite(model: &dyn ParamTree<f32>) -> Option<String> {
    let mut bad = None;
    model.visit(&Path::ROOT, &mut |info, d| {
        if bad.is_none() && d.iter().any(|v| !v.is_finite()) {
            bad = Some(info.path.to_string());
        }
    });
    bad
}

/// The number of parameter and buffer values of `model`.
pub(super) fn count_values(model: &dyn ParamTree<f32>) -> usize {
    let mut n = 0;
    model.visit(&Path::ROOT, &mut |_, d| n += d.len());
    n
}

/// Copies every parameter and buffer of `model` into `out` (reusing its capacity).
pub(super) fn snapshot(model: &dyn ParamTree<f32>, out: &mut Vec<f32>) {
    out.clear();
    model.visit(&Path::ROOT, &mut |_, d| out.extend_from_slice(d));
}

/// The inverse of [`snapshot`].
pub(super) fn restore(model: &mut dyn ParamTree<f32>, from: &[f32]) {
    let mut at = 0;
    model.visit_mut(&Path::ROOT, &mut |_, d| {
        d.copy_from_slice(&from[at..at + d.len()]);
        at += d.len();
    });
}
