//! The number of threads the kernels may use (default 1), and the persistent worker pool that runs
//! the parts of a split batch (threads are created once, not per layer call).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

thread_local! {
    /// Whether this thread is running a part of a split (kernels called inside do not split again).
    static IN_PART: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is running a part of a split: a kernel called from inside one (a GEMM
/// inside a convolution's part) runs whole, since the other threads have parts of their own.
pub(crate) fn in_part() -> bool {
    IN_PART.with(|c| c.get())
}

fn run_part(f: impl FnOnce()) {
    // Restored however `f` ends: a panicking part must not leave a pool thread marked for good.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_PART.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(IN_PART.with(|c| c.replace(true)));
    f();
}

/// Runs `f(offset, piece)` on the consecutive `piece`-long pieces of `out` (the last may be shorter),
/// each a part on the kernel threads, the last one on this thread.
pub(crate) fn for_pieces<T: Send>(out: &mut [T], piece: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (len, f) = (out.len(), &f);
    scope(|sc| {
        for (i, p) in out.chunks_mut(piece.max(1)).enumerate() {
            let start = i * piece;
            spawn_or_run(sc, start + p.len() >= len, move || f(start, p));
        }
    });
}

/// Runs `f` as a part of the scope, or right here for the last part of a split (so the worker running
/// the scope's body works instead of waiting).
pub(crate) fn spawn_or_run<'scope, F>(sc: &rayon::Scope<'scope>, inline: bool, f: F)
where
    F: FnOnce() + Send + 'scope,
{
    if inline {
        run_part(f)
    } else {
        sc.spawn(move |_| run_part(f));
    }
}

/// How many times kernels have split work over the kernel threads so far (in any thread).
pub(crate) fn splits() -> usize {
    SPLITS.load(Ordering::Relaxed)
}

/// Runs `f` on one of the kernel threads, so that the kernels it calls split their work with the
/// other kernel threads directly (without handing each split over from, and back to, a thread
/// outside the pool). While `f` runs, the other kernel threads stay awake, polling for parts instead
/// of going to sleep between two kernels: on these virtual machines a sleeping thread takes tens of
/// microseconds to wake, more than many parts take to run. A training step is the intended unit (the
/// other threads spin for as long as `f` runs). With one kernel thread, `f` runs right here.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let n = num_threads();
    if n <= 1 {
        return f();
    }
    pool().install(|| {
        let done = AtomicBool::new(false);
        let main = rayon::current_thread_index();
        rayon::scope(|s| {
            for _ in 1..n {
                s.spawn(|s| keep_awake(s, &done, main));
            }
            // Set `done` however `f` ends: a panic in it must not leave the pollers spinning (the
            // scope waits for them before it passes the panic on).
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _done = Done(&done);
            f()
        })
    })
}

/// Polls the pool for parts until `done`. On the thread running the step itself (which picks this
/// job up while waiting for a part of its own), hands the job back instead, for another thread.
fn keep_awake<'s>(s: &rayon::Scope<'s>, done: &'s AtomicBool, main: Option<usize>) {
    if rayon::current_thread_index() == main {
        if !done.load(Ordering::Acquire) {
            s.spawn(move |s| keep_awake(s, done, main));
        }
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}
