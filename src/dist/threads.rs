//! [`ThreadComm`]: an in-process [`Comm`] whose ranks are threads of one process, for tests and
//! for trying data-parallel training without MPI.

use super::Comm;
use std::sync::{Arc, Barrier, Mutex};

/// What the ranks of one [`ThreadComm::group`] share: a barrier and one slot per rank.
#[derive(Debug)]
struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
}

/// One rank of a group of threads acting as an MPI job (`ThreadComm::group(n)` gives the `n`
/// ranks; move each into its own thread). Collectives go through shared memory behind a barrier;
/// every rank sums the contributions in rank order, so all ranks get the same bits, as from MPI.
/// Values travel as `f64` (exact for `f32` and `u64` up to 2⁵³; the hashes travel as two halves).
#[derive(Clone, Debug)]
pub struct ThreadComm {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl ThreadComm {
    /// The `n` ranks (`n ≥ 1`) of a new group, rank 0 first.
    pub fn group(n: usize) -> Vec<ThreadComm> {
        let n = n.max(1);
        let shared = Arc::new(Shared { barrier: Barrier::new(n), slots: Mutex::new(vec![Vec::new(); n]) });
        (0..n).map(|rank| ThreadComm { rank, size: n, shared: shared.clone() }).collect()
    }

    /// Publishes `mine` as this rank's contribution and waits for every rank's.
    fn publish(&self, mine: impl Iterator<Item = f64>) {
        {
            let mut slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = &mut slots[self.rank];
            slot.clear();
            slot.extend(mine);
        }
        self.shared.barrier.wait();
    }

    /// Hands every rank's contribution (in rank order) to `read`, then waits for every rank, so
    /// that no slot is overwritten while another rank reads.
    fn collect(&self, read: impl FnOnce(&[Vec<f64>])) {
        {
            let slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
            read(&slots);
        }
        self.shared.barrier.wait();
    }
}

impl Comm for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn allreduce_sum_f32(&self, buf: &mut [f32]) {
        self.publish(buf.iter().map(|&v| f64::from(v)));
        self.collect(|all| {
            for (i, v) in buf.iter_mut().enumerate() {
                // Summed in f32, in rank order (what an MPI sum of f32 does, in some fixed order).
                *v = all.iter().fold(0.0f32, |s, slot| s + slot[i] as f32);
            }
        });
    }
    fn allreduce_sum_f64(&self, buf: &mut [f64]) {
        self.publish(buf.iter().copied());
        self.collect(|all| {
            for (i, v) in buf.iter_mut().enumerate() {
                *v = all.iter().fold(0.0, |s, slot| s + slot[i]);
            }
        });
    }
    fn all_gather_u64(&self, send: &[u64], recv: &mut [u64]) {
        assert_eq!(recv.len(), send.len() * self.size, "all_gather_u64: the receive buffer holds size() sends");
        self.publish(send.iter().flat_map(|&v| [(v >> 32) as f64, (v & 0xffff_ffff) as f64]));
        self.collect(|all| {
            for (r, slot) in all.iter().enumerate() {
                for (j, pair) in slot.chunks_exact(2).enumerate() {
                    recv[r * send.len() + j] = ((pair[0] as u64) << 32) | pair[1] as u64;
                }
            }
        });
    }
    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.publish(buf.iter().map(|&v| f64::from(v)));
        self.collect(|all| {
            for (v, &r0) in buf.iter_mut().zip(&all[0]) {
                *v = r0 as f32;
            }
        });
    }
    fn barrier(&self) {
        self.shared.barrier.wait();
    }
    /// Panics with `rank R failed: cause` (the other ranks of a thread group would wait forever:
    /// tests use it only where every rank fails).
    fn abort(&self, cause: &str) -> ! {
        panic!("rank {} failed: {cause}", self.rank)
    }
}
