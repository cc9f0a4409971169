//! How kernels cut their work over the kernel threads: the batch split and the elementwise split.

use super::Elem;

/// Into how many parts to split a batch of `n` samples whose per-sample work is about `work`
/// multiply-adds: one part per kernel thread, but only when each part has enough work to pay for a
/// thread (about 40 µs: the parts start on pool threads that are already running).
pub(crate) fn split_batch(n: usize, work_per_sample: usize) -> usize {
    let t = crate::threads::num_threads();
    if t <= 1 || n < 2 || crate::threads::in_part() {
        return 1;
    }
    let total = n.saturating_mul(work_per_sample);
    if total < 400_000 { 1 } else { t.min(n) }
}

/// Runs `f(range, out[range])` over `out`, split over the kernel threads when it is large enough to
/// pay for a split: `work` is the cost of 64 elements in [`split_batch`]'s units (128 for a few
/// operations per element).
pub(crate) fn split_elementwise<E: Elem>(
    out: &mut [E],
    work: usize,
    f: impl Fn(core::ops::Range<usize>, &mut [E]) + Sync,
) {
    let parts = split_batch(out.len().div_ceil(64), work);
    if parts <= 1 {
        return f(0..out.len(), out);
    }
    crate::threads::for_chunks(out, 64, parts, |at, piece| f(at..at + piece.len(), piece));
}
