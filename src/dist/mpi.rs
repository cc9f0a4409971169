//! [`Comm`] over MPI (the `mpi` crate, rsmpi): `MPI_COMM_WORLD` of a job started by `mpirun`.

use super::Comm;
use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// This process's rank, for the panic hook (`usize::MAX` before [`Mpi::init`]).
static RANK: AtomicUsize = AtomicUsize::new(usize::MAX);

/// MPI's world communicator. Created once per process by [`Mpi::init`]; MPI is finalised when it
/// is dropped.
///
/// Only the thread that created it calls MPI (the kernel threads never do), which is what the
/// requested threading level, `MPI_THREAD_FUNNELED`, promises; the type is neither `Send` nor
/// `Sync`, so it cannot leave that thread.
pub struct Mpi {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// The all-reduce's receive buffers (MPI's sum reads one buffer and writes another), grown
    /// on first use and reused: a steady-state step allocates nothing.
    recv32: RefCell<Vec<f32>>,
    recv64: RefCell<Vec<f64>>,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

impl Mpi {
    /// Initialises MPI (threading level `MPI_THREAD_FUNNELED`) and installs a panic hook that
    /// prints `rank R failed: <panic message and location>` and aborts the whole job
    /// (`MPI_Abort`), so that a panicking rank does not leave the others waiting forever.
    ///
    /// # Errors
    /// A message when MPI was already initialised in this process, or when the library cannot
    /// give the threading level (the kernel threads exist even if they never call MPI).
    pub fn init() -> Result<Mpi, String> {
        let (universe, granted) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| "MPI is already initialised in this process (Mpi::init called twice)".to_string())?;
        if granted < Threading::Funneled {
            return Err(format!(
                "the MPI library grants threading level {granted:?}, below the Funneled level shaped's kernel \
                 threads need"
            ));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        RANK.store(rank, Ordering::Relaxed);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let cause = match info.payload().downcast_ref::<&str>() {
                Some(s) => (*s).to_string(),
                None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "panic".to_string()),
            };
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let rank = RANK.load(Ordering::Relaxed);
            if rank == usize::MAX || !mpi::is_initialized() || mpi::is_finalized() {
                previous(info);
                return;
            }
            eprintln!("rank {rank} failed: panicked: {cause}{at}");
            SimpleCommunicator::world().abort(1);
        }));
        Ok(Mpi {
            world,
            rank,
            size,
            recv32: RefCell::new(Vec::new()),
            recv64: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }

    /// Seconds on MPI's wall clock (`MPI_Wtime`).
    pub fn time(&self) -> f64 {
        mpi::time()
    }
}

impl Comm for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn allreduce_sum_f32(&self, buf: &mut [f32]) {
        if self.size == 1 {
            return;
        }
        let mut recv = self.recv32.borrow_mut();
        recv.resize(buf.len(), 0.0);
        self.world.all_reduce_into(&*buf, &mut recv[..], SystemOperation::sum());
        buf.copy_from_slice(&recv);
    }
    fn allreduce_sum_f64(&self, buf: &mut [f64]) {
        if self.size == 1 {
            return;
        }
        let mut recv = self.recv64.borrow_mut();
        recv.resize(buf.len(), 0.0);
        self.world.all_reduce_into(&*buf, &mut recv[..], SystemOperation::sum());
        buf.copy_from_slice(&recv);
    }
    fn all_gather_u64(&self, send: &[u64], recv: &mut [u64]) {
        assert_eq!(recv.len(), send.len() * self.size, "all_gather_u64: the receive buffer holds size() sends");
        self.world.all_gather_into(send, recv);
    }
    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.world.process_at_rank(0).broadcast_into(buf);
    }
    fn barrier(&self) {
        self.world.barrier();
    }
    fn abort(&self, cause: &str) -> ! {
        eprintln!("rank {} failed: {cause}", self.rank);
        self.world.abort(1)
    }
}
