//! The number of threads the kernels may use (default 1), and the persistent worker pool that runs
//! the parts of a split batch (threads are created once, not per layer call).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

static THREADS: AtomicUsize = AtomicUsize::new(1);
static SPLITS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of threads the kernels may use (at least 1). Kernels split the batch across
/// them where a layer's work is large enough to pay for it.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The number of threads the kernels may use.
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The pool for the current thread count (`num_threads()` workers: a scope's body runs on a worker
/// while the calling thread waits). Rebuilt when the count changes.
fn pool() -> Arc<rayon::ThreadPool> {
    static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let want = num_threads().max(1);
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match &*guard {
        Some((n, p)) if *n == want => p.clone(),
        _ => {
            let p = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(want)
                    .thread_name(|i| format!("shaped-kernel-{i}"))
                    .build()
                    .expect("the kernel thread pool starts"),
            );
            *guard = Some((want, p.clone()));
            p
        }
    }
}

/// Runs `f` with a scope whose spawned parts run on the kernel pool; returns when all have finished.
pub(crate) fn scope<'scope, F>(f: F)
where
    F: FnOnce(&rayon::Scope<'scope>) + Send,
{
    SPLITS.fetch_add(1, Ordering::Relaxed);
    pool().scope(f)
}

/// Runs `f` as a part of the scope, or right here for the last part of a split (so the worker running
/// the scope's body works instead of waiting).
pub(crate) fn spawn_or_run<'scope, F>(sc: &rayon::Scope<'scope>, inline: bool, f: F)
where
    F: FnOnce() + Send + 'scope,
{
    if inline {
        f()
    } else {
        sc.spawn(move |_| f());
    }
}

/// How many times kernels have split work over the kernel threads so far (in any thread).
pub(crate) fn splits() -> usize {
    SPLITS.load(Ordering::Relaxed)
}

/// Runs `f` on one of the kernel threads, so that the kernels it calls split their work with the
/// other kernel threads directly (without handing each split over from, and back to, a thread
/// outside the pool, which costs a sleep and a wake-up per kernel call). A training step or a whole
/// epoch is a good unit. With one kernel thread, `f` runs right here.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if num_threads() <= 1 { f() } else { pool().install(f) }
}
