//! `hw1 --distributed`: the process is one rank of a data-parallel MPI job (feature `mpi`); in a
//! build without MPI the flag is a usage error that says how to get it. (A module of
//! `examples/hw1.rs`; this directory holds no example of its own.)

use super::Args;
#[cfg(feature = "mpi")]
use super::{check_outputs, experiment, finish};
#[cfg(feature = "mpi")]
use shaped::dist::Comm;
use std::process::ExitCode;

/// `--distributed`: this process is one rank of an MPI job; the other ranks stay quiet, and a
/// rank that fails ends the whole job (`rank R failed: cause`) instead of leaving the others
/// waiting.
#[cfg(feature = "mpi")]
pub(super) fn main(mut args: Args) -> ExitCode {
    let mpi = match shaped::dist::Mpi::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: --distributed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if mpi.rank() != 0 {
        (args.quiet, args.json) = (true, false);
    }
    match check_outputs(&args).and_then(|()| experiment(&args, Some(&mpi))) {
        Ok(r) if mpi.rank() == 0 => finish(&args, Ok(r)),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if mpi.size() > 1 => mpi.abort(&e.to_string()),
        Err(e) => finish(&args, Err(e)),
    }
}

/// `--distributed` in a build without MPI: a usage error that says how to get it.
#[cfg(not(feature = "mpi"))]
pub(super) fn main(_: Args) -> ExitCode {
    eprintln!(
        "error: --distributed needs MPI: build hw1 with `--features mpi` (Debian: apt-get install openmpi-bin \
         libopenmpi-dev libclang-dev) and start it with `mpirun -np N`"
    );
    ExitCode::from(2)
}
