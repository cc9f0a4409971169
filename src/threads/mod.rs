//! The number of threads the kernels may use (default 1), and the persistent workers that run the
//! parts of a split batch.
//!
//! A kernel splits its batch into at most [`num_threads`] parts and calls `run_parts`: the calling
//! thread runs the last part itself while workers run the others. Most kernels cut their batch
//! finer, into a few chunks per thread (`run_chunks`): each thread starts on the chunks a static
//! split would give it and, once done, takes the last chunks of a thread that is behind (a core
//! slowed down by a neighbour on a shared host no longer holds the step back). The workers are
//! threads created once (on the first split that needs them) and kept for the life of the process. A part is handed
//! to a worker through its own slot (a generation counter and a pointer to the part, no queue and
//! no allocation), and the caller waits by spinning: the parts are tens to hundreds of microseconds
//! long, and on these virtual machines a sleeping thread takes tens of microseconds to wake. Between
//! splits a worker spins for a short grace period, and for as long as an [`install`] is running (a
//! training step), before it parks.

mod chunks;
pub(crate) mod group;

#[allow(unused_imports)] // used by tests and the kernels' docs
pub(crate) use chunks::{CHUNKS_PER_THREAD, MAX_CHUNKS};
pub(crate) use chunks::{chunk_count, for_chunks, run_chunks, run_chunks_on, split_runs, split_unit_runs, unit_runs};

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The most threads the kernels use: the caller and 63 workers.
pub const MAX_THREADS: usize = 64;

static THREADS: AtomicUsize = AtomicUsize::new(1);
static SPLITS: AtomicUsize = AtomicUsize::new(0);
/// How many [`install`] calls are running (workers do not park while one is).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Whether a split is using the workers (a second caller, on another thread, runs its parts itself).
static BUSY: AtomicBool = AtomicBool::new(false);

/// How long a worker spins for its next part, outside an [`install`], before it parks.
const GRACE: Duration = Duration::from_micros(200);
/// After spinning this long (a step's thread descheduled, or a long part), spinners also yield
/// their core to the scheduler now and then.
const PATIENCE: Duration = Duration::from_millis(2);

/// Sets the number of threads the kernels may use (1 to [`MAX_THREADS`]). Kernels split the batch
/// across them where a layer's work is large enough to pay for it.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

/// The number of threads the kernels may use.
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// How many times kernels have split work over the worker threads so far (in any thread).
pub(crate) fn splits() -> usize {
    SPLITS.load(Ordering::Relaxed)
}

/// Whether an [`install`] is running: the workers are spinning, so a split costs only the hand-over
/// of its parts, not a wake-up.
pub(crate) fn workers_awake() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
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

/// Runs `f` marked as a part (see [`in_part`]).
fn as_part<R>(f: impl FnOnce() -> R) -> R {
    // Restored however `f` ends: a panicking part must not leave the thread marked for good.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_PART.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(IN_PART.with(|c| c.replace(true)));
    f()
}

/// A part handed to a worker: `call(ctx, index)`.
#[derive(Clone, Copy)]
struct Job {
    ctx: *const (),
    index: usize,
    call: unsafe fn(*const (), usize),
}

/// One worker's slot. The poster writes `job`, then bumps `posted`; the worker reads `job` after
/// seeing the bump, runs it, then sets `done` to the same count.
struct Worker {
    posted: AtomicUsize,
    done: AtomicUsize,
    sleeping: AtomicBool,
    job: UnsafeCell<Job>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` is written only by the one poster (holding `BUSY`) while the worker is idle
// (`done == posted`), and read by the worker only after it has seen the new `posted` (Release /
// Acquire), before it publishes `done`; the other fields are atomics or locks.
unsafe impl Sync for Worker {}

unsafe fn no_job(_: *const (), _: usize) {}

#[allow(clippy::declare_interior_mutable_const)] // only the array initialiser below uses it
const IDLE: Worker = Worker {
    posted: AtomicUsize::new(0),
    done: AtomicUsize::new(0),
    sleeping: AtomicBool::new(false),
    job: UnsafeCell::new(Job { ctx: core::ptr::null(), index: 0, call: no_job }),
    panic: Mutex::new(None),
    thread: OnceLock::new(),
};

static WORKERS: [Worker; MAX_THREADS - 1] = [IDLE; MAX_THREADS - 1];
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Starts workers until `want` run (or the system refuses a thread); returns how many run.
fn start_workers(want: usize) -> usize {
    let have = STARTED.load(Ordering::Acquire);
    if have >= want {
        return have;
    }
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut have = STARTED.load(Ordering::Acquire);
    while have < want {
        let w: &'static Worker = &WORKERS[have];
        let spawned =
            std::thread::Builder::new().name(format!("shaped-kernel-{}", have + 1)).spawn(move || worker_main(w));
        match spawned {
            Ok(handle) => {
                let _ = w.thread.set(handle.thread().clone());
            }
            Err(_) => break, // run with the workers there are
        }
        have += 1;
        STARTED.store(have, Ordering::Release);
    }
    have
}

/// Whether more kernel threads are set than the process has CPUs (`available_parallelism`: its
/// affinity and quota): a spinning thread may then hold the CPU of the thread it waits for.
fn oversubscribed() -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    num_threads() > *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Spins (with a CPU hint) until `ready()`; after [`PATIENCE`] (at once when there are more kernel
/// threads than CPUs: [`oversubscribed`]), yields the core now and then.
/// Returns early, with `false`, when `give_up(spun)` says so.
fn spin_until(ready: impl Fn() -> bool, give_up: impl Fn(Duration) -> bool) -> bool {
    let start = Instant::now();
    let mut i = 0u32;
    while !ready() {
        i = i.wrapping_add(1);
        if i.is_multiple_of(64) {
            let spun = start.elapsed();
            if give_up(spun) {
                return false;
            }
            if spun > PATIENCE || oversubscribed() {
                std::thread::yield_now();
            }
        }
        std::hint::spin_loop();
    }
    true
}

fn worker_main(w: &'static Worker) {
    let mut seen = 0usize;
    loop {
        let new = || w.posted.load(Ordering::Acquire) != seen;
        while !spin_until(new, |spun| ACTIVE.load(Ordering::Relaxed) == 0 && spun > GRACE) {
            // Park (until a part is posted, or an `install` wakes the workers to spin). The poster
            // bumps `posted` and then looks at `sleeping` (both SeqCst), and this thread sets
            // `sleeping` and then looks at `posted`: one of them sees the other.
            w.sleeping.store(true, Ordering::SeqCst);
            if w.posted.load(Ordering::SeqCst) == seen {
                std::thread::park();
            }
            w.sleeping.store(false, Ordering::Relaxed);
        }
        seen = w.posted.load(Ordering::Acquire);
        // Before any part: this thread's scratch as large as any thread's (no growth mid-step).
        crate::kernels::presize_scratch();
        // SAFETY: the poster wrote the job before publishing `seen` and leaves it alone until `done`.
        let job = unsafe { *w.job.get() };
        // SAFETY: the poster keeps `job.ctx` alive until it sees `done == seen`.
        let run = catch_unwind(AssertUnwindSafe(|| as_part(|| unsafe { (job.call)(job.ctx, job.index) })));
        if let Err(p) = run {
            *w.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
        w.done.store(seen, Ordering::Release);
    }
}

/// Unparks worker `w` if it is parked (or about to park).
fn wake(w: &Worker) {
    if w.sleeping.load(Ordering::SeqCst)
        && let Some(t) = w.thread.get()
    {
        t.unpark();
    }
}

/// Runs part `i` of a posted split: `ctx` points to the split's `&(dyn Fn(usize) + Sync)`.
///
/// # Safety
/// `ctx` points to a live `&(dyn Fn(usize) + Sync)`.
unsafe fn call_part(ctx: *const (), i: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let f = &*(ctx as *const &(dyn Fn(usize) + Sync));
        f(i);
    }
}

/// Waits, however the split ends (even by a panic), until every posted worker is done: the parts
/// borrow the caller's frame.
struct Waiter {
    posted: usize,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        for w in &WORKERS[..self.posted] {
            let target = w.posted.load(Ordering::Relaxed);
            spin_until(|| w.done.load(Ordering::Acquire) == target, |_| false);
        }
        BUSY.store(false, Ordering::Release);
    }
}

/// Runs `f(p)` for every payload `p` of `parts`: the last one on this thread, the others on the
/// workers (one each), all finished when this returns. Every payload is processed whole by one call
/// of `f`, so results do not depend on which thread ran which part. When the workers are busy with
/// another caller's split, or this thread is itself running a part, the parts run here one after
/// the other. A panic in a part is resumed here, after every part has finished.
pub(crate) fn run_parts<P: Send, F: Fn(P) + Sync>(parts: impl IntoIterator<Item = P>, f: F) {
    run_parts_on(num_threads(), parts, f)
}

/// The payloads of one [`run_parts_on`] (or `group::run_together`) call, each taken by the one
/// call of the split that runs its index.
struct Staged<P>([UnsafeCell<Option<P>>; MAX_THREADS]);

// SAFETY: `run_indexed` and `run_posted` call their function once per index, so each cell is
// taken by one thread only; the payloads are `Send`.
unsafe impl<P: Send> Sync for Staged<P> {}

/// [`run_parts`] with `threads` threads (the caller and `threads − 1` workers): stages the payloads
/// and hands their indices to [`run_indexed`], which is compiled once.
fn run_parts_on<P: Send, F: Fn(P) + Sync>(threads: usize, parts: impl IntoIterator<Item = P>, f: F) {
    let mut staged = Staged([const { UnsafeCell::new(None) }; MAX_THREADS]);
    let mut n = 0;
    let mut overflow = Vec::new(); // more payloads than threads: not the kernels' way, but allowed
    for p in parts {
        if n < MAX_THREADS {
            *staged.0[n].get_mut() = Some(p);
            n += 1;
        } else {
            overflow.push(p);
        }
    }
    if n == 1 && overflow.is_empty() {
        // One part: not a split (the caller's thread runs it as if called directly).
        return f(staged.0[0].get_mut().take().expect("a staged payload"));
    }
    let staged = &staged;
    run_indexed(threads, n, &|i| {
        // SAFETY: `run_indexed` runs index `i` once (see `Staged`).
        let p = unsafe { (*staged.0[i].get()).take() }.expect("a staged payload runs once");
        f(p)
    });
    if !overflow.is_empty() {
        as_part(|| overflow.into_iter().for_each(&f));
    }
}

/// Runs `f(i)` once for every `i < n`: the first ones on the workers (one each, up to `threads − 1`),
/// the rest on this thread, all finished when this returns. When the workers are busy with another
/// caller's split, or this thread is itself running a part, every index runs here in order. A
/// panic in a part is resumed here, after every part has finished.
fn run_indexed(threads: usize, n: usize, f: &(dyn Fn(usize) + Sync)) {
    if n == 0 {
        return;
    }
    let want = threads.clamp(1, MAX_THREADS) - 1;
    if want == 0 || n == 1 || in_part() || BUSY.swap(true, Ordering::Acquire) {
        return as_part(|| (0..n).for_each(f));
    }
    run_posted(start_workers(want).min(want).min(n - 1), n, f)
}

/// With `BUSY` taken by the caller (released here): runs `f(i)` for `i < workers` on the workers
/// (which must have been started) and the rest on this thread, all finished when this returns; a
/// panic in a part is resumed here, after every part has finished.
fn run_posted(workers: usize, n: usize, f: &(dyn Fn(usize) + Sync)) {
    // Declared before the `Waiter`, so it outlives the wait for the workers that read it.
    let ctx: &(dyn Fn(usize) + Sync) = f;
    let mut waiter = Waiter { posted: 0 };
    SPLITS.fetch_add(1, Ordering::Relaxed);
    for (i, w) in WORKERS[..workers].iter().enumerate() {
        // SAFETY: worker i is idle (its previous part finished before the last `Waiter` returned);
        // the write is published by the `posted` store below, and `ctx` outlives the split (the
        // `Waiter` waits for the worker before this frame ends).
        unsafe {
            *w.job.get() = Job { ctx: &ctx as *const &(dyn Fn(usize) + Sync) as *const (), index: i, call: call_part };
        }
        waiter.posted += 1;
        w.posted.fetch_add(1, Ordering::SeqCst);
        wake(w);
    }
    // (It can fail only by running out of memory, which aborts: a panic here would leave a group
    // of `group::run_together`'s parts waiting for this thread's part.)
    crate::kernels::presize_scratch();
    let mine = catch_unwind(AssertUnwindSafe(|| as_part(|| (workers..n).for_each(f))));
    let posted = waiter.posted;
    drop(waiter);
    if let Err(p) = mine {
        resume_unwind(p);
    }
    for w in &WORKERS[..posted] {
        if let Some(p) = w.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            resume_unwind(p);
        }
    }
}

/// Runs `f(offset, piece)` on the consecutive `piece`-long pieces of `out` (the last may be shorter),
/// one part each (see [`run_parts`]).
pub(crate) fn for_pieces<T: Send>(out: &mut [T], piece: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let piece = piece.max(1);
    run_parts(out.chunks_mut(piece).enumerate(), |(i, p)| f(i * piece, p));
}

/// Runs `f` with the workers kept awake: between the splits of the kernels `f` calls, the workers
/// spin for their next part instead of parking (on these virtual machines a parked thread takes
/// tens of microseconds to wake, more than many parts take to run). A training step is the intended
/// unit: the workers spin, using their cores, for as long as `f` runs. With one thread this is just
/// `f()`.
pub fn install<R>(f: impl FnOnce() -> R) -> R {
    struct Active;
    impl Drop for Active {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    if num_threads() <= 1 {
        return f();
    }
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    let _active = Active;
    // Wake parked workers now, so that the first split does not wait for them.
    for w in &WORKERS[..STARTED.load(Ordering::Acquire).min(num_threads() - 1)] {
        wake(w);
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::chunks::Block;
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Each part adds its payload to `sum` and records which thread ran it.
    fn sum_parts(threads: usize, n: u64) -> (u64, bool) {
        let sum = AtomicU64::new(0);
        let me = std::thread::current().id();
        let elsewhere = AtomicBool::new(false);
        run_parts_on(threads, 1..=n, |v| {
            // (A single part is not a split: it runs as a direct call would.)
            assert_eq!(in_part(), n > 1, "a part of a split runs marked as a part");
            sum.fetch_add(v, Ordering::Relaxed);
            if std::thread::current().id() != me {
                elsewhere.store(true, Ordering::Relaxed);
            }
        });
        assert!(!in_part(), "the caller is unmarked after the split");
        (sum.into_inner(), elsewhere.into_inner())
    }

    #[test]
    fn a_block_hands_out_each_chunk_once_from_both_ends() {
        let b = Block::new(3, 7);
        assert_eq!(b.take(true), Some(3));
        assert_eq!(b.take(false), Some(6));
        assert_eq!(b.take(false), Some(5));
        assert_eq!(b.take(true), Some(4));
        assert_eq!((b.take(true), b.take(false)), (None, None));
        // An owner and a thief racing over one block: every chunk taken once.
        for _ in 0..50 {
            let b = Block::new(0, 1000);
            let taken: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
            std::thread::scope(|s| {
                for own in [true, false] {
                    let (b, taken) = (&b, &taken);
                    s.spawn(move || {
                        while let Some(c) = b.take(own) {
                            taken[c].fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
            assert!(taken.iter().all(|t| t.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn every_chunk_runs_once_with_one_scratch_per_thread() {
        for threads in [1, 2, 3, 8] {
            for n in [0usize, 1, 2, 5, 16, MAX_CHUNKS] {
                let ran: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                // Each scratch counts its chunks; a scratch used by two threads at once would need
                // `&mut` twice, which the types forbid: here the count must add up.
                let mut scratch = vec![0usize; threads];
                run_chunks(&mut scratch, 0..n, |count, c| {
                    *count += 1;
                    ran[c].fetch_add(1, Ordering::Relaxed);
                });
                assert!(ran.iter().all(|r| r.load(Ordering::Relaxed) == 1), "{threads} threads, {n} chunks");
                assert_eq!(scratch.iter().sum::<usize>(), n);
            }
        }
        // even_runs: consecutive, lengths differing by at most one, covering 0..n
        for (n, c) in [(100, 8), (7, 3), (0, 4), (5, 5), (3, 1)] {
            let runs: Vec<_> = chunks::even_runs(n, c).collect();
            assert_eq!(runs.len(), c);
            assert!(runs.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
            assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), n);
            let (lo, hi) = (runs.iter().map(|r| r.1).min(), runs.iter().map(|r| r.1).max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{n} in {c}: {runs:?}");
        }
        // unit_runs: consecutive, covering 0..n, every run but the last whole units
        for (n, c, u) in [(100, 7, 16), (100, 2, 16), (37, 3, 16), (5, 4, 1), (16, 1, 16)] {
            let runs: Vec<_> = unit_runs(n, c, u).collect();
            assert!(runs.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0), "{runs:?}");
            assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), n);
            assert!(runs.iter().all(|r| r.0 % u == 0), "{n} in {c} of {u}: {runs:?}");
        }
    }

    #[test]
    fn a_slow_threads_last_chunks_go_to_the_others() {
        // Two threads, eight chunks: the first thread owns chunks 0-3. Its first chunk waits until
        // chunk 3 has run, which only the other thread can then do (by taking it from the back).
        // The pool may be busy with another test's split (then everything runs on this thread, the
        // wait times out): retried until a run had both threads. The other thread's first chunk
        // (4) waits until chunk 0 has started, so that a worker slow to wake cannot find all the
        // chunks already taken by the caller.
        for _ in 0..50 {
            let done3 = AtomicBool::new(false);
            let started0 = AtomicBool::new(false);
            let who: Vec<Mutex<Option<std::thread::ThreadId>>> = (0..8).map(|_| Mutex::new(None)).collect();
            let mut scratch = [(); 2];
            run_chunks(&mut scratch, 0..8, |_, c| {
                let start = Instant::now();
                if c == 0 {
                    started0.store(true, Ordering::Release);
                    while !done3.load(Ordering::Acquire) && start.elapsed() < Duration::from_millis(500) {
                        std::hint::spin_loop();
                    }
                }
                if c == 4 {
                    while !started0.load(Ordering::Acquire) && start.elapsed() < Duration::from_millis(500) {
                        std::hint::spin_loop();
                    }
                }
                *who[c].lock().unwrap() = Some(std::thread::current().id());
                if c == 3 {
                    done3.store(true, Ordering::Release);
                }
            });
            let who: Vec<_> = who.into_iter().map(|m| m.into_inner().unwrap().expect("every chunk ran")).collect();
            if who.iter().all(|t| *t == who[0]) {
                continue; // ran on one thread
            }
            assert_ne!(who[3], who[0], "chunk 3 was taken by the thread that was not stuck in chunk 0");
            assert_eq!(who[4], who[3], "the other thread ran its own block first");
            return;
        }
        panic!("in 50 tries, no run of the split used two threads");
    }

    #[test]
    fn every_part_runs_once_whatever_the_count() {
        for threads in [1, 2, 3, 8] {
            for n in [0u64, 1, 2, 3, 7, 20] {
                let (sum, _) = sum_parts(threads, n);
                assert_eq!(sum, n * (n + 1) / 2, "{threads} threads, {n} parts");
            }
        }
        // One thread: everything runs on the caller.
        assert!(!sum_parts(1, 4).1);
        // A single part runs on the caller (unmarked: checked in `sum_parts`).
        assert!(!sum_parts(2, 1).1);
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_workers_stay_usable() {
        for bad in [0u64, 1] {
            // Part 0 goes to a worker, part 1 (the last) runs on the caller.
            let r = catch_unwind(|| run_parts_on(2, [0u64, 1], |v| assert_ne!(v, bad, "part {v} fails")));
            let msg = r.expect_err("the panic is resumed");
            let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(text.contains(&format!("part {bad} fails")), "{text}");
        }
        assert_eq!(sum_parts(2, 2).0, 3);
    }

    #[test]
    fn concurrent_callers_each_get_all_their_parts() {
        // Several threads split at once: one holds the workers, the others run their parts
        // themselves; every caller's sums come out right.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for n in 0..200u64 {
                        assert_eq!(sum_parts(2, n % 5).0, (n % 5) * (n % 5 + 1) / 2);
                    }
                });
            }
        });
    }

    #[test]
    fn parts_reach_a_worker_inside_and_outside_install() {
        // Outside `install` the workers park after their grace period; a posted part wakes them.
        std::thread::sleep(Duration::from_millis(5));
        // (Another test may hold the workers for a while: retry for up to a second.)
        let start = Instant::now();
        while !sum_parts(2, 2).1 {
            assert!(start.elapsed() < Duration::from_secs(1), "no part ever ran on a worker");
        }
        let inside = install(|| sum_parts(2, 2).0);
        assert_eq!(inside, 3);
    }
}
