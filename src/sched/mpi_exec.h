// mpi_exec: one job over many processes (MPI ranks), each running local workers; rank 0 schedules and writes
//
// Under an MPI launcher (`mpirun -np N xbarsim eval ...`, `srun xbarsim run ...`) every rank starts the
// same command line. Rank 0 runs the command; every other rank serves it (xb_mpi_serve) and runs nothing
// else: it reads no data and writes no results. When the command's scheduler runs a set of units on
// xb_executor_mpi, the executor packs the worker type's context (xb_worker_type.pack: the chip, the device,
// the layer's row voltages) and sends it to each serving rank, which rebuilds it (unpack) and starts its
// own local workers (xb_executor_local). The scheduler's slots are spread round robin over the ranks
// (slot i on rank i mod N; rank 0 runs its share on its own local workers), so the same scheduler policy
// (retries, time limits, lost workers) holds across machines, and results, placed by unit, are the same
// bytes as a single-process run's.
//
// A rank that dies ends the job: the MPI launcher stops every rank (rank 0's SIGTERM handler removes
// its temporaries and prints how to resume), results are written atomically, so none is half-written,
// and `run` resumes from its finished points and work units. A worker lost inside a rank is the
// scheduler's usual case: replaced, its unit handed out again.
//
// A build without MPI (meson_options.txt: mpi) has the same functions: one process, rank 0 of 1; started
// by a launcher with more than one rank it refuses to run (every copy would run the whole job).
#ifndef XB_MPI_EXEC_H
#define XB_MPI_EXEC_H

#include <stddef.h>

#include "error.h"
#include "executor.h"

/* Join the MPI job when an MPI launcher started this process (its environment says so); otherwise, and in
 * a build without MPI, one process of one. XB_EINPUT when launched as several ranks by a build without
 * MPI, XB_ERUNTIME when MPI fails to start. */
int xb_mpi_init(int *argc, char ***argv, xb_error *err);
int xb_mpi_rank(void);
int xb_mpi_size(void);
/* Whether this build has MPI, and the library's version line (a static string). */
int xb_mpi_built(void);
const char *xb_mpi_library(void);

/* On a serving rank (rank > 0): run units for rank 0 until it ends the job, with workers of the given
 * types (found by name). Returns the process's exit code. */
int xb_mpi_serve(const xb_worker_type *const *types, size_t n_types);

/* End the job: rank 0 releases the serving ranks; every rank leaves MPI. Safe to call more than once
 * and without MPI. */
void xb_mpi_finalize(void);

/* The executor over every rank (rank 0 only; size 1 runs everything on local workers). */
extern const xb_executor_type xb_executor_mpi;

#endif
