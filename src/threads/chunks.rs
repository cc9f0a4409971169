//! Splits in chunks: a kernel's batch cut into a few chunks per thread, each thread taking its own
//! block of chunks from the front and, once done, other threads' chunks from the back.

use super::{MAX_THREADS, run_parts_on};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Chunks a kernel's batch is cut into per thread for [`run_chunks`]: enough that a core slowed
/// down (by a neighbour on a shared host) hands a quarter of its share or more to the others,
/// few enough that a chunk stays tens of microseconds long.
pub(crate) const CHUNKS_PER_THREAD: usize = 4;

/// The most chunks one [`run_chunks`] call takes (its chunks are held on the stack; with more than
/// 16 threads a thread has fewer than [`CHUNKS_PER_THREAD`]).
pub(crate) const MAX_CHUNKS: usize = 64;

/// A thread's block of chunks, `front..back`, packed in one word (front in the low half) so that
/// its owner (taking from the front) and thieves (taking from the back) never take the same chunk.
pub(super) struct Block(AtomicU64);

impl Block {
    pub(super) fn new(front: usize, back: usize) -> Self {
        Block(AtomicU64::new(front as u64 | (back as u64) << 32))
    }

    /// Takes the first chunk (`own`) or the last one (a thief), if any is left.
    pub(super) fn take(&self, own: bool) -> Option<usize> {
        let mut v = self.0.load(Ordering::Acquire);
        loop {
            let (front, back) = (v & 0xffff_ffff, v >> 32);
            if front >= back {
                return None;
            }
            let (next, chunk) = if own { (v + 1, front) } else { (v - (1 << 32), back - 1) };
            match self.0.compare_exchange_weak(v, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(chunk as usize),
                Err(now) => v = now,
            }
        }
    }
}

/// The chunks of a [`run_chunks`] call and the threads' blocks of them.
struct Chunks<P> {
    cells: [UnsafeCell<Option<P>>; MAX_CHUNKS],
    blocks: [Block; MAX_THREADS],
}

// SAFETY: a cell is read (its payload taken) only by the one thread whose `Block::take` returned
// its index, and each index is returned once; the payloads are `Send`.
unsafe impl<P: Send> Sync for Chunks<P> {}

/// Runs `f(scratch, chunk)` for every payload of `chunks` (at most [`MAX_CHUNKS`], in batch order),
/// on up to `scratch.len()` threads (not [`num_threads`]: the caller has chosen), each with its own
/// `scratch` (the caller's thread included).
///
/// Thread `t` owns the `t`-th of `scratch.len()` consecutive blocks of chunks and takes them from
/// the front; once its block is empty it takes chunks from the back of the others' blocks. On
/// evenly fast cores every thread so runs the samples a static split would give it (the same
/// halves as [`run_parts`], so the layers around keep their data in that core's cache), while a
/// core slowed down by a neighbour hands its last chunks to the threads that are done. Which thread
/// runs a chunk is not fixed: results must not depend on it (a per-chunk partial sum, reduced in
/// chunk order, does not).
pub(crate) fn run_chunks<S: Send, P: Send, F: Fn(&mut S, P) + Sync>(
    scratch: &mut [S],
    chunks: impl IntoIterator<Item = P>,
    f: F,
) {
    let mut shared = Chunks {
        cells: [const { UnsafeCell::new(None) }; MAX_CHUNKS],
        blocks: core::array::from_fn(|_| Block::new(0, 0)),
    };
    let mut n = 0;
    for p in chunks {
        assert!(n < MAX_CHUNKS, "run_chunks takes at most {MAX_CHUNKS} chunks");
        *shared.cells[n].get_mut() = Some(p);
        n += 1;
    }
    let threads = scratch.len().min(n);
    if threads <= 1 {
        if let Some(s) = scratch.first_mut() {
            shared.cells[..n].iter_mut().for_each(|c| f(s, c.get_mut().take().expect("a payload")));
        }
        return;
    }
    for (t, b) in shared.blocks[..threads].iter_mut().enumerate() {
        *b = Block::new(t * n / threads, (t + 1) * n / threads);
    }
    let shared = &shared;
    let next = |t: usize| {
        let blocks = &shared.blocks[..threads];
        blocks[t].take(true).or_else(|| (1..threads).find_map(|i| blocks[(t + i) % threads].take(false)))
    };
    run_parts_on(threads, scratch[..threads].iter_mut().enumerate(), |(t, s)| {
        while let Some(c) = next(t) {
            // SAFETY: `next` returned chunk `c` to this thread alone (see `Chunks`).
            let p = unsafe { (*shared.cells[c].get()).take() }.expect("a chunk runs once");
            f(s, p);
        }
    });
}

/// [`run_chunks`] for kernels without per-thread scratch: `f(chunk)` on up to `parts` threads.
pub(crate) fn run_chunks_on<P: Send>(parts: usize, chunks: impl IntoIterator<Item = P>, f: impl Fn(P) + Sync) {
    let mut threads = [(); MAX_THREADS];
    run_chunks(&mut threads[..parts.clamp(1, MAX_THREADS)], chunks, |_, p| f(p));
}

/// Cuts `n` samples into `chunks` consecutive runs whose lengths differ by at most one: run `i` is
/// `i·n/chunks .. (i+1)·n/chunks`. Yields `(first sample, samples)`.
pub(crate) fn even_runs(n: usize, chunks: usize) -> impl Iterator<Item = (usize, usize)> {
    let c = chunks.max(1);
    (0..c).map(move |i| (i * n / c, (i + 1) * n / c - i * n / c))
}

/// [`even_runs`] of whole `unit`s of samples (the last unit may be short): `(first sample,
/// samples)` of `chunks` runs over `n` samples, at most one run per unit.
pub(crate) fn unit_runs(n: usize, chunks: usize, unit: usize) -> impl Iterator<Item = (usize, usize)> {
    even_runs(n.div_ceil(unit), chunks).map(move |(lo, m)| (lo * unit, ((lo + m) * unit).min(n) - lo * unit))
}

/// `s` (`n` samples of `len` values each) cut into the runs of [`even_runs`]`(n, chunks)`:
/// `(first sample, samples, their values)`.
pub(crate) fn split_runs<T>(
    s: &mut [T],
    n: usize,
    len: usize,
    chunks: usize,
) -> impl Iterator<Item = (usize, usize, &mut [T])> {
    split_unit_runs(s, n, len, chunks, 1)
}

/// [`split_runs`] over the runs of [`unit_runs`]`(n, chunks, unit)`.
pub(crate) fn split_unit_runs<T>(
    s: &mut [T],
    n: usize,
    len: usize,
    chunks: usize,
    unit: usize,
) -> impl Iterator<Item = (usize, usize, &mut [T])> {
    let mut rest = &mut s[..n * len];
    unit_runs(n, chunks, unit).map(move |(lo, m)| {
        let (head, tail) = core::mem::take(&mut rest).split_at_mut(m * len);
        rest = tail;
        (lo, m, head)
    })
}

/// How many chunks [`run_chunks`] gets for `n` samples (or other units) split `parts` ways: one
/// when not split, else [`CHUNKS_PER_THREAD`] a thread (at most one unit each, [`MAX_CHUNKS`] in all).
pub(crate) fn chunk_count(n: usize, parts: usize) -> usize {
    if parts <= 1 { 1 } else { (parts * CHUNKS_PER_THREAD).min(n).clamp(1, MAX_CHUNKS) }
}

/// Runs `f(offset, piece)` over `out` cut into [`chunk_count`] pieces of whole `unit`s (the last
/// unit may be short) spread over `parts` threads by [`run_chunks`]: the split of kernels whose
/// every output element is computed the same way wherever the cuts fall.
pub(crate) fn for_chunks<T: Send>(out: &mut [T], unit: usize, parts: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let unit = unit.max(1);
    let (units, len) = (out.len().div_ceil(unit), out.len());
    let mut rest = out;
    let pieces = even_runs(units, chunk_count(units, parts)).map(|(u, m)| {
        let take = (m * unit).min(len - u * unit);
        let (head, tail) = core::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        (u * unit, head)
    });
    run_chunks_on(parts, pieces, |(at, piece)| f(at, piece));
}
