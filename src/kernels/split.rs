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

/// How many parts a memory-bound pass over `elements` values splits into: every kernel thread
/// from 16,384 values up (such a pass takes over 5 µs, a hand-over to a spinning worker 1–2 µs),
/// else one. For the per-layer passes of a step that would otherwise run on one thread while the
/// others wait: weight transforms, gradient folds, chunk reductions, optimizer updates.
pub(crate) fn split_pass(elements: usize) -> usize {
    let t = crate::threads::num_threads();
    if t <= 1 || elements < 16_384 || crate::threads::in_part() { 1 } else { t }
}

/// A block of columns `lo..hi` of a row-major matrix of `n` columns, its rows reached one at a
/// time: the views [`split_columns`] gives are disjoint, so kernel threads can each fill their own
/// columns of every row (a transform that writes one row per point, 16 points far apart).
pub(crate) struct Columns<'a, E> {
    ptr: *mut E,
    n: usize,
    rows: usize,
    lo: usize,
    hi: usize,
    _borrow: core::marker::PhantomData<&'a mut [E]>,
}

// SAFETY: a `Columns` is a unique borrow of its own entries (disjoint from every other view of the
// same split, see `split_columns`), as `&mut [E]` is; it can move to another thread if `E` can.
unsafe impl<E: Send> Send for Columns<'_, E> {}

impl<E> Columns<'_, E> {
    /// The first column of the block.
    pub(crate) fn lo(&self) -> usize {
        self.lo
    }

    /// The columns of the block.
    pub(crate) fn width(&self) -> usize {
        self.hi - self.lo
    }

    /// Row `r`'s entries in the block's columns.
    pub(crate) fn row(&mut self, r: usize) -> &mut [E] {
        assert!(r < self.rows, "columns: row {r} of {}", self.rows);
        // SAFETY: `split_columns` asserted `rows·n ≤ len` of the borrowed slice and `lo ≤ hi ≤ n`,
        // so `r·n + lo .. r·n + hi` is inside it; no other view of the split holds these columns,
        // and `&mut self` keeps this view from lending the same row twice at once.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(r * self.n + self.lo), self.hi - self.lo) }
    }
}

/// The first `rows·n` values of `m` (`rows` rows of `n`) as `parts` blocks of columns, cut at
/// multiples of `unit` (the last block takes the rest): disjoint views, one per thread.
pub(crate) fn split_columns<E>(
    m: &mut [E],
    (rows, n): (usize, usize),
    parts: usize,
    unit: usize,
) -> impl Iterator<Item = Columns<'_, E>> {
    assert!(rows.checked_mul(n).is_some_and(|len| len <= m.len()), "columns: {rows} × {n} in {}", m.len());
    let (units, ptr) = (n.div_ceil(unit.max(1)), m.as_mut_ptr());
    let parts = parts.clamp(1, units.max(1));
    (0..parts).map(move |i| {
        let (lo, hi) = ((i * units / parts * unit).min(n), ((i + 1) * units / parts * unit).min(n));
        assert!(lo <= hi && hi <= n);
        Columns { ptr, n, rows, lo, hi, _borrow: core::marker::PhantomData }
    })
}
