//! Parts that run at the same time and meet: a training step split in parts, one per kernel
//! thread, for a model whose layers need the whole batch in a few places (batch norm's statistics
//! and the sums of its backward pass, dropout's masks drawn for the whole batch).
//!
//! [`run_together`] runs every part on a thread of its own, all at once (it refuses, running
//! nothing, when the threads cannot all be had), each as a member of one [`Group`]. A layer that
//! needs the batch asks for the running part's [`Member`] ([`member`]) and calls
//! [`Member::exchange`]: every part publishes up to two slices, waits for the others, reads all of
//! them (in part order, so a sum over them is the one a whole step would make over its samples)
//! and waits again before any part may change what it published. Every part must make the same
//! exchanges in the same order, which holds when they run the same model's passes; a part that
//! panics poisons the group, so the others leave their next wait before an exchange (with a panic
//! of their own, an echo that is not reported) instead of waiting for ever, and the first panic
//! that is not an echo is resumed in the caller. A panic while reading an exchange waits for the
//! other parts to finish reading before it unwinds (what it published stays alive until then).

use super::{BUSY, MAX_THREADS, Staged, in_part, run_posted, spin_until, start_workers};
use std::any::{Any, TypeId};
use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// What one part published for an exchange: two slices (pointer and length) and their type.
#[repr(align(64))] // one cache line per part: parts publish at the same moment
struct Slot {
    ptr: [AtomicPtr<()>; 2],
    len: [AtomicUsize; 2],
    ty: Mutex<Option<TypeId>>,
}

/// Parts running together (see the module docs): a barrier, the parts' published slices and the
/// first panic.
pub(crate) struct Group {
    parts: usize,
    total: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
    first_panic: Mutex<Option<Box<dyn Any + Send>>>,
    slots: [Slot; MAX_THREADS],
}

/// The payload of the panic a part raises when it leaves a wait because another part failed (its
/// own panic is then not the one reported).
struct Poisoned;

impl Group {
    fn new(parts: usize, total: usize) -> Self {
        #[allow(clippy::declare_interior_mutable_const)] // only the array initialiser below uses it
        const EMPTY: Slot = Slot {
            ptr: [const { AtomicPtr::new(core::ptr::null_mut()) }; 2],
            len: [const { AtomicUsize::new(0) }; 2],
            ty: Mutex::new(None),
        };
        Group {
            parts,
            total,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            first_panic: Mutex::new(None),
            slots: [EMPTY; MAX_THREADS],
        }
    }

    /// Waits until every part has arrived here; with `poisonable`, panics (with [`Poisoned`])
    /// instead when a part failed before arriving.
    fn wait(&self, poisonable: bool) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parts {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation + 1, Ordering::Release);
            return;
        }
        let moved = || self.generation.load(Ordering::Acquire) != generation;
        spin_until(|| moved() || (poisonable && self.poisoned.load(Ordering::Acquire)), |_| false);
        if !moved() {
            resume_unwind(Box::new(Poisoned));
        }
    }

    /// Records a part's panic (the first one that is not a [`Poisoned`] echo) and releases the
    /// parts waiting for it.
    fn fail(&self, p: Box<dyn Any + Send>) {
        if !p.is::<Poisoned>() {
            let mut first = self.first_panic.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(p);
        }
        self.poisoned.store(true, Ordering::Release);
    }
}

/// The running part of a [`Group`]: which part it is and which samples of the batch it has.
/// Valid only on the part's own thread while the part runs ([`member`] hands it out there).
#[derive(Clone, Copy)]
pub(crate) struct Member {
    group: *const Group,
    index: usize,
    lo: usize,
    n: usize,
}

thread_local! {
    static CURRENT: Cell<Option<Member>> = const { Cell::new(None) };
}

/// The part of a [`run_together`] call this thread is running, if any.
pub(crate) fn member() -> Option<Member> {
    CURRENT.with(|c| c.get())
}

impl Member {
    fn group(&self) -> &Group {
        // SAFETY: a `Member` is handed out (by `member`) only on the thread running its part,
        // while `run_together`, which owns the group, waits for that part to end.
        unsafe { &*self.group }
    }

    /// This part's index (the parts hold consecutive samples in index order).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// How many parts run together.
    pub(crate) fn parts(&self) -> usize {
        self.group().parts
    }

    /// The first sample of this part, in the whole batch.
    pub(crate) fn lo(&self) -> usize {
        self.lo
    }

    /// How many samples this part has.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// How many samples the whole batch has.
    pub(crate) fn total(&self) -> usize {
        self.group().total
    }

    /// Publishes `mine`, waits for every part, calls `read` with each part's published slices
    /// (`read(|p| [a, b])` for part `p`), waits again (so no part changes what it published while
    /// another reads it) and returns what `read` returned. Every part must call this with the same
    /// `T`, at the same point of its passes.
    pub(crate) fn exchange<T: Sync + 'static, R>(
        &self,
        mine: [&[T]; 2],
        read: impl for<'a> FnOnce(&'a dyn Fn(usize) -> [&'a [T]; 2]) -> R,
    ) -> R {
        let g = self.group();
        let slot = &g.slots[self.index];
        for (k, s) in mine.iter().enumerate() {
            slot.ptr[k].store(s.as_ptr() as *mut (), Ordering::Relaxed);
            slot.len[k].store(s.len(), Ordering::Relaxed);
        }
        *slot.ty.lock().unwrap_or_else(|e| e.into_inner()) = Some(TypeId::of::<T>());
        g.wait(true);
        let get = |p: usize| -> [&[T]; 2] {
            let s = &g.slots[p];
            let ty = *s.ty.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(ty, Some(TypeId::of::<T>()), "parts exchanged different types");
            core::array::from_fn(|k| {
                let (ptr, len) = (s.ptr[k].load(Ordering::Relaxed), s.len[k].load(Ordering::Relaxed));
                // SAFETY: part `p` published a live `&[T]` of this length (the type checked just
                // above) before the wait, and keeps it borrowed, unchanged, until the wait below,
                // which every part reaches only after its `read` has returned.
                unsafe { core::slice::from_raw_parts(ptr as *const T, len) }
            })
        };
        // Every part has passed the wait above, so every part reaches this one, even one whose
        // `read` panicked (its panic is held until then: others may still read its slices).
        let r = catch_unwind(AssertUnwindSafe(|| read(&get)));
        g.wait(false);
        r.unwrap_or_else(|p| resume_unwind(p))
    }

    /// Whether `ok` holds in every part (each part calls this at the same point).
    pub(crate) fn all(&self, ok: bool) -> bool {
        let mine = [u8::from(ok)];
        self.exchange([&mine[..], &[]], |get| (0..self.parts()).all(|p| get(p)[0] == [1]))
    }
}

/// Runs `f(payload)` for every payload of `parts`, each on a thread of its own (the last on this
/// one) and all at once, as the members of one group whose part `i` holds the samples
/// `spans[i].0 .. spans[i].0 + spans[i].1` of a batch of `total`. Returns `false`, having run
/// nothing, when that many threads cannot run together (this thread is itself a part, another
/// split holds the workers, or the system refused a worker). A panic in a part ends the others
/// at their next exchange and is resumed here once every part has ended.
pub(crate) fn run_together<P: Send, F: Fn(P) + Sync>(
    total: usize,
    spans: &[(usize, usize)],
    parts: impl IntoIterator<Item = P>,
    f: F,
) -> bool {
    let n = spans.len();
    assert!((2..=MAX_THREADS).contains(&n), "parts run together: {n} parts");
    // Staged (and counted) before `BUSY` is taken: nothing below may fail while it is held, except
    // inside the parts, where a panic is caught.
    let mut staged = Staged([const { UnsafeCell::new(None) }; MAX_THREADS]);
    let mut parts = parts.into_iter();
    let mut count = 0;
    for (cell, p) in staged.0.iter_mut().zip(parts.by_ref().take(n)) {
        *cell.get_mut() = Some(p);
        count += 1;
    }
    assert!(count == n && parts.next().is_none(), "parts run together: one payload per span");
    if in_part() || start_workers(n - 1) < n - 1 || BUSY.swap(true, Ordering::Acquire) {
        return false;
    }
    let group = Group::new(n, total);
    let (staged, group_ref) = (&staged, &group);
    let body = |i: usize| {
        let me = Member { group: group_ref, index: i, lo: spans[i].0, n: spans[i].1 };
        let run = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `run_posted` runs index `i` once (see `Staged`).
            let p = unsafe { (*staged.0[i].get()).take() }.expect("a staged payload runs once");
            CURRENT.with(|c| c.set(Some(me)));
            f(p)
        }));
        CURRENT.with(|c| c.set(None));
        if let Err(e) = run {
            group_ref.fail(e);
        }
    };
    run_posted(n - 1, n, &body);
    if let Some(p) = group.first_panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        resume_unwind(p);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`run_together`], retried while another test's split holds the workers.
    fn together<P: Send + Clone, F: Fn(P) + Sync>(total: usize, spans: &[(usize, usize)], parts: &[P], f: F) {
        let start = std::time::Instant::now();
        while !run_together(total, spans, parts.iter().cloned(), &f) {
            assert!(start.elapsed().as_secs() < 60, "the workers never came free");
            std::thread::yield_now();
        }
    }

    /// Sums each part's rows in part order through exchanges, many times over.
    #[test]
    fn parts_meet_and_sum_in_order() {
        crate::threads::set_num_threads(2);
        let data: Vec<f32> = (0..10).map(|i| 0.1 * i as f32 + 1e-7).collect();
        let spans = [(0, 4), (4, 6)];
        let outs: [Mutex<Vec<f32>>; 2] = [Mutex::new(Vec::new()), Mutex::new(Vec::new())];
        together(10, &spans, &[0usize, 1], |i| {
            let me = member().expect("a member inside its part");
            assert_eq!((me.index(), me.parts(), me.total()), (i, 2, 10));
            let mine = &data[me.lo()..][..me.n()];
            for round in 0..200 {
                let sum = me.exchange([mine, &[]], |get| {
                    (0..me.parts()).flat_map(|p| get(p)[0].iter()).fold(0.0f32, |s, v| s + v)
                });
                let whole = data.iter().fold(0.0f32, |s, v| s + v);
                assert_eq!(sum.to_bits(), whole.to_bits(), "round {round}");
                assert!(me.all(true) && !me.all(i == 0));
            }
            outs[i].lock().unwrap().push(1.0);
        });
        assert!(member().is_none(), "no member outside the parts");
        assert!(outs.iter().all(|o| o.lock().unwrap().len() == 1));
        crate::threads::set_num_threads(1);
    }

    /// A panic in one part ends the other at its next exchange, and the first panic is resumed.
    #[test]
    fn a_failing_part_releases_the_others() {
        crate::threads::set_num_threads(2);
        let r = catch_unwind(|| {
            together(4, &[(0, 2), (2, 2)], &[0usize, 1], |i| {
                let me = member().unwrap();
                if i == 0 {
                    panic!("part zero failed");
                }
                me.all(true); // would wait for ever without the poison
            })
        });
        let msg = r.expect_err("the panic is resumed").downcast::<&str>().map(|s| *s);
        assert_eq!(msg.ok(), Some("part zero failed"));
        // The workers are free again: a second group runs.
        together(4, &[(0, 2), (2, 2)], &[0usize, 1], |_| assert!(member().unwrap().all(true)));
        crate::threads::set_num_threads(1);
    }

    /// A part whose `read` panics leaves the exchange only once the others have read what it
    /// published.
    #[test]
    fn a_panic_while_reading_waits_for_the_other_readers() {
        crate::threads::set_num_threads(2);
        let read_done = AtomicBool::new(false);
        let r = catch_unwind(AssertUnwindSafe(|| {
            together(4, &[(0, 2), (2, 2)], &[0usize, 1], |i| {
                let me = member().unwrap();
                let mine = [i as u64 + 7; 64];
                if i == 0 {
                    // (`resume_unwind`: no panic hook, whose message would take long enough for
                    // the other part to finish reading.)
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        me.exchange([&mine[..], &[]], |_| -> () { resume_unwind(Box::new("read failed")) })
                    }));
                    assert!(read_done.load(Ordering::Acquire), "left the exchange while the other part read");
                    resume_unwind(r.expect_err("the read panics"));
                } else {
                    me.exchange([&mine[..], &[]], |get| {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        assert_eq!(get(0)[0], [7; 64]);
                        read_done.store(true, Ordering::Release);
                    });
                }
            })
        }));
        let msg = r.expect_err("the panic is resumed").downcast::<&str>().map(|s| *s);
        assert_eq!(msg.ok(), Some("read failed"));
        crate::threads::set_num_threads(1);
    }
}
