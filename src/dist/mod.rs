//! Data-parallel training over several processes (ranks): the communicator interface, how a
//! global batch is split into shards, and the checks that keep ranks in step.
//!
//! # How it works
//!
//! Every rank holds the whole model and the whole data set. All ranks shuffle with the shared
//! seed, so they agree on every global batch without moving data; rank `r` of `N` trains on its
//! [`shard`] of each batch (a contiguous slice of `⌊b·r/N⌋..⌊b·(r+1)/N⌋`, so a batch of `b` not
//! divisible by `N`, and the last partial batch, are split as evenly as possible). After the
//! backward pass each rank copies its gradients, scaled by its shard's weight `n_r/b`, into one
//! contiguous buffer allocated once, together with its weighted loss and batch-norm running
//! statistics; **one** all-reduce (sum) per step over that buffer gives every rank the gradient
//! of the global batch's mean loss, the global loss and the averaged statistics. Every rank then
//! clips and applies the same update, so the parameters stay identical: with `N` ranks and batch
//! `B` the run follows the trajectory of one process with batch `B`, up to the order of
//! floating-point sums (`tests/mpi.rs` checks the per-step losses to a relative 1e-5).
//!
//! The all-reduce is not overlapped with the backward pass: measured on one 2-core machine it is
//! 0.6–2 % of a step (15 µs for 4a, 130 µs for the VGG), and a communication thread would take a
//! core from the computation; across machines the alpha-beta projection in `BENCHMARKS.md` puts
//! the VGG's at 0.4–24 % of a step (InfiniBand to 10 GbE, 4 to 64 nodes). Overlap would need
//! gradient buckets and `MPI_THREAD_MULTIPLE`.
//!
//! # Batch norm and dropout
//!
//! Batch norm normalises each shard with its **own statistics** (PyTorch DDP's default, no
//! communication in the forward pass): with batch norm a run with `N` ranks is therefore not the
//! run of one process, as in PyTorch. The running mean and variance (the inference statistics)
//! are averaged over the ranks, weighted by shard size, inside the step's single all-reduce, so
//! they too stay identical on every rank (the running mean then equals the one-process value).
//! Synchronised statistics (SyncBatchNorm) are not offered: they need a collective inside every
//! batch-norm layer's forward and backward pass. Dropout masks are seeded per rank
//! ([`rank_seed`]), so ranks drop different units.
//!
//! # Keeping ranks in step
//!
//! * **At start-up** [`check_agreement`] compares, across ranks, digests of the model type, its
//!   parameter count, the loss, every hyper-parameter and the training and validation data; a
//!   difference is refused with an error naming the ranks and what differs.
//! * **Once per epoch** [`check_in_step`] compares a 64-bit hash of every parameter's bits; ranks
//!   that drifted apart stop the run with an error naming them.
//! * **Failures.** An error or panic on one rank cannot be recovered by the others (they would
//!   wait in the next collective forever): [`Comm::abort`] prints `rank R failed: cause` and ends
//!   the whole job; the MPI implementation installs a panic hook that does this
//!   (`Mpi::init`, feature `mpi`).
//!
//! The solver's distributed mode is [`Solver::train_distributed`](crate::solver::Solver::train_distributed);
//! `hw1 --distributed` runs it under `mpirun`.

#[cfg(feature = "mpi")]
mod mpi;
mod step;
mod threads;

#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
pub use threads::ThreadComm;

use crate::error::{Error, Result};
use crate::layer::{ParamTree, Path, mix_seed};

/// The collective operations data-parallel training needs, over the ranks `0..size()` of one
/// job. Every rank must call the same collectives in the same order with buffers of the same
/// length; a call blocks until every rank has made it.
///
/// [`Local`] is the one-process implementation, [`ThreadComm`] an in-process one whose ranks are
/// threads (tests), and `Mpi` (feature `mpi`) the MPI one.
pub trait Comm {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replaces `buf` on every rank by the element-wise sum of all ranks' `buf`s (the same bits
    /// on every rank).
    fn allreduce_sum_f32(&self, buf: &mut [f32]);
    /// [`Comm::allreduce_sum_f32`] in `f64`.
    fn allreduce_sum_f64(&self, buf: &mut [f64]);
    /// Gathers every rank's `send` (the same length on every rank) into `recv`, rank after rank:
    /// `recv.len() == send.len() · size()`.
    fn all_gather_u64(&self, send: &[u64], recv: &mut [u64]);
    /// Copies rank 0's `buf` into every other rank's.
    fn broadcast_f32(&self, buf: &mut [f32]);
    /// Waits until every rank has called it.
    fn barrier(&self);
    /// Ends the whole job after printing `rank R failed: {cause}` to stderr; never returns.
    fn abort(&self, cause: &str) -> !;
}

/// The communicator of a job with one rank: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Comm for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn allreduce_sum_f32(&self, _: &mut [f32]) {}
    fn allreduce_sum_f64(&self, _: &mut [f64]) {}
    fn all_gather_u64(&self, send: &[u64], recv: &mut [u64]) {
        recv.copy_from_slice(send);
    }
    fn broadcast_f32(&self, _: &mut [f32]) {}
    fn barrier(&self) {}
    fn abort(&self, cause: &str) -> ! {
        eprintln!("rank 0 failed: {cause}");
        std::process::exit(1)
    }
}

/// Rank `rank`'s shard of a global batch of `len` examples over `size` ranks: the index range
/// `⌊len·rank/size⌋..⌊len·(rank+1)/size⌋`. The shards are contiguous, disjoint, cover the batch
/// in rank order and differ in length by at most one (a rank's shard is empty when `len < size`).
pub fn shard(len: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    (len * rank / size)..(len * (rank + 1) / size)
}

/// The dropout seed of rank `rank` for the epoch seed `seed`: `seed` itself on rank 0 (so one
/// rank reproduces the one-process run) and a different stream on every other rank.
pub fn rank_seed(seed: u64, rank: usize) -> u64 {
    if rank == 0 { seed } else { mix_seed(seed, 0xd157_0000 + rank as u64) }
}

/// A 64-bit FNV-1a hash of `bytes` (with a final mix): the digests compared across ranks.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix_seed(h, bytes.len() as u64)
}

/// A 64-bit hash of the bits of every parameter and buffer of `model`, in visit order (four
/// FNV lanes over the 32-bit words, then the lanes and the count mixed). Equal models have equal
/// checksums; a change to any bit of any value changes it (up to a 64-bit collision).
pub fn param_checksum(model: &dyn ParamTree<f32>) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut lanes = [0xcbf2_9ce4_8422_2325u64, 1, 2, 3];
    let mut n = 0u64;
    model.visit(&Path::ROOT, &mut |_, d| {
        for (i, v) in d.iter().enumerate() {
            let l = &mut lanes[i & 3];
            *l = (*l ^ u64::from(v.to_bits())).wrapping_mul(PRIME);
        }
        n += d.len() as u64;
    });
    lanes.iter().fold(n, |h, &l| mix_seed(h, l))
}

/// Refuses to go on unless every rank holds the same `facts` (what each is, its value), compared
/// by hash: the first all-gather compares their number, the second every fact's hash.
///
/// # Errors
/// [`Error::Training`] naming each fact that differs, the ranks whose value differs from rank
/// 0's, and this rank's value. Every rank returns the error (they all see every hash).
pub fn check_agreement(comm: &dyn Comm, facts: &[(String, String)]) -> Result<()> {
    let size = comm.size();
    let mut counts = vec![0u64; size];
    comm.all_gather_u64(&[facts.len() as u64], &mut counts);
    if let Some(r) = (1..size).find(|&r| counts[r] != counts[0]) {
        return Err(Error::Training(format!(
            "distributed run refused: rank {r} describes its run with {} settings and rank 0 with {} (a \
             different version of the program or different options on different ranks)",
            counts[r], counts[0]
        )));
    }
    let mine: Vec<u64> = facts.iter().map(|(what, v)| hash_bytes(format!("{what}={v}").as_bytes())).collect();
    let mut all = vec![0u64; mine.len() * size];
    comm.all_gather_u64(&mine, &mut all);
    let k = mine.len();
    let mut diffs = Vec::new();
    for (i, (what, value)) in facts.iter().enumerate() {
        let ranks: Vec<String> = (1..size).filter(|&r| all[r * k + i] != all[i]).map(|r| r.to_string()).collect();
        if !ranks.is_empty() {
            diffs.push(format!(
                "{what} (rank{} {} differ{} from rank 0; rank {}'s is {value})",
                if ranks.len() > 1 { "s" } else { "" },
                ranks.join(", "),
                if ranks.len() > 1 { "" } else { "s" },
                comm.rank()
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Error::Training(format!(
            "distributed run refused: the ranks do not agree on {}; every rank must run the same model, \
             settings and data",
            diffs.join("; ")
        )))
    }
}

/// Checks that every rank holds the same parameters ([`param_checksum`], one all-gather of 8
/// bytes per rank), after `when` (e.g. "epoch 3").
///
/// # Errors
/// [`Error::Training`] naming the ranks whose parameters differ from rank 0's.
pub fn check_in_step(comm: &dyn Comm, model: &dyn ParamTree<f32>, when: &str) -> Result<()> {
    let mut all = vec![0u64; comm.size()];
    comm.all_gather_u64(&[param_checksum(model)], &mut all);
    let bad: Vec<String> = (1..all.len()).filter(|&r| all[r] != all[0]).map(|r| r.to_string()).collect();
    if bad.is_empty() {
        return Ok(());
    }
    let sums: Vec<String> = all.iter().enumerate().map(|(r, c)| format!("rank {r}: {c:016x}")).collect();
    Err(Error::Training(format!(
        "the ranks' parameters drifted apart after {when}: rank(s) {} differ from rank 0 (checksums {}); \
         the ranks no longer train the same model",
        bad.join(", "),
        sums.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Module;

    #[test]
    fn shards_cover_the_batch_evenly() {
        for len in 0..40 {
            for size in 1..6 {
                let mut next = 0;
                for r in 0..size {
                    let s = shard(len, r, size);
                    assert_eq!(s.start, next);
                    assert!(s.len() == len / size || s.len() == len / size + 1, "{len} {size} {r}");
                    next = s.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn rank_seeds_differ_and_rank_0_keeps_the_seed() {
        assert_eq!(rank_seed(7, 0), 7);
        assert_ne!(rank_seed(7, 1), rank_seed(7, 2));
        assert_ne!(rank_seed(7, 1), 7);
    }

    #[test]
    fn one_rank_agrees_with_itself() {
        let facts = vec![("seed".to_string(), "1".to_string())];
        check_agreement(&Local, &facts).unwrap();
        let m = crate::layers::Linear::<3, 2>::zeros();
        check_in_step(&Local, &m, "epoch 1").unwrap();
    }

    #[test]
    fn the_checksum_sees_one_bit() {
        let mut m = crate::layers::Linear::<3, 2>::zeros();
        let a = param_checksum(&m);
        m.visit_params_mut(&Path::ROOT, &mut |_, d| {
            if d.len() == 2 {
                d[1] = f32::from_bits(1);
            }
        });
        assert_ne!(a, param_checksum(&m));
    }
}
