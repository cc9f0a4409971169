//! The number of threads the kernels may use (default 1), and a helper that splits a batch over them.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads the kernels may use (at least 1). Kernels split the batch across
/// them where a layer's work is large enough to pay for it.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The number of threads the kernels may use.
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}
