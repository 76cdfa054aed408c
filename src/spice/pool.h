// pool: the spice backends' layer solves: (layer, tile, input chunk) units through the scheduler
//
// Layers run one after the other; a layer's units (xb_sched_layer_units) go through the scheduler of
// src/sched (sched.h: queue, retries, fault and time-limit policy) on the local executor (executor.h:
// forked workers sharing the chip and the row voltages copy-on-write, each in its own empty folder) with
// the ngspice worker type (worker.h: one libngspice per worker). What that means here: a worker that dies
// (killed, or ngspice's fatal error) is replaced and its unit handed out again; a unit that has ended
// three workers stops the run with the last worker's message. An error that a fresh worker would meet
// again (ngspice rejecting a deck: a missing include file, an unknown model) stops the run at once, with
// ngspice's message. Results never depend on jobs or chunk beyond the solver's own arithmetic per unit.
//
// Resume inside a layer: with o.unit_dir set, every unit already in that unit store (unitstore.h: keyed by
// the caller's unit_key, the unit's coordinates, the row voltages and the tile's deck) is loaded and
// accepted before the scheduler runs, only the others are solved, and each solved unit is saved as it is
// accepted, so a run killed partway through a layer loses at most the units in flight. A loaded unit holds
// the bytes its solve produced, so a resumed run's results equal an uninterrupted run's byte for byte.
// A unit file that fails its checks is ignored (a notice) and solved again; a store folder that cannot be
// made, or a unit that cannot be saved (disk full), gives a notice and the run goes on without the store.
//
// Buffers: V and I_rt are the caller's (V read only; I_rt holds the currents once the call succeeds); failed
// is the caller's too (xb_pool.failed). run_one's result is the caller's, result_bytes long.
//
// Time limits: ngspice can spin for ever inside one analysis (a model card with absurd parameters, such
// as kp = 1e30). A unit of n inputs may run xb_pool_unit_timeout_s (solve_timeout_s x (n + 2): the 2 for
// the deck's load and its first, full operating point) after the worker takes it. Past that the parent
// kills the worker and hands the unit's inputs out again one at a time, each with the limit of a
// one-input unit (solve_timeout_s x 3); an input that overruns its own limit is failed like a point that
// never converges (NaN currents in the solver, 0 here, flagged in failed[], its prediction -1) and the
// run goes on. xb_pool_run_one gives its one solve the one-input limit and then fails with XB_ERUNTIME.
#ifndef XB_POOL_H
#define XB_POOL_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "netlist.h"

/* Default seconds per input of a unit's time limit: about 80 times a 64 x 64 1T1R tile's cost per input
 * in a sweep, and 8 times the first, full operating point of a deck (docs/circuit.md). */
#define XB_POOL_SOLVE_TIMEOUT_S 20.0

typedef struct xb_pool_options {
    int jobs;              /* worker processes (default: the core count) */
    size_t chunk;          /* inputs per work unit (default 250) */
    xb_netlist_options net;
    char log_dir[4096];    /* ngspice logs go to LOG_DIR/ngspice-worker-K.log ("" : discarded) */
    int quiet;             /* no progress bar */
    int fault_unit;        /* test hook: the first worker to take this unit number kills itself (-1: off) */
    int fault_quit_unit;   /* test hook: the first worker to take this unit sends ngspice `quit` before
                              solving it, so ngspice calls ControlledExit (-1: off) */
    int fault_repeat;      /* test hook: the hooks above fire for every worker that takes the unit */
    int linear;            /* SPICE-extracted linear mode: per tile, R unit-input solves give the exact
                              transfer matrix (IR drop included); every input is then one product */
    size_t linear_sample;  /* inputs re-solved exactly per layer to measure the linear mode's error (20) */
    unsigned long linear_seed; /* the sample is drawn at random (gsl_rng_mt19937 seeded with
                              linear_seed + layer index, 0-based) among the layer's inputs (default 1) */
    double solve_timeout_s;  /* seconds per input of a unit's time limit (default XB_POOL_SOLVE_TIMEOUT_S;
                              <= 0 also means the default): see the top of this file */
    char unit_dir[4096];   /* unit store (unitstore.h): finished units are saved here and units found here are
                              loaded instead of solved ("": off, the default). The caller removes the folder
                              (xb_unit_store_remove) once its results are complete */
    char unit_key[512];    /* the caller's part of every stored unit's key (a point's hash and trial) */
    struct xb_energy *energy; /* energy.h: when set (the caller's, and its o.on), the first batch of every layer
                              also measures each tile's energy and settling time into it (NULL: off) */
} xb_pool_options;

void xb_pool_defaults(xb_pool_options *o);

/* Totals over every call, for the run log. */
typedef struct xb_pool_stats {
    size_t units, unit_retries;          /* units solved; units handed out again after a worker died */
    size_t units_loaded;                 /* units taken from the unit store instead of solved */
    size_t units_rejected;               /* stored units that failed a check (damaged) and were solved again */
    size_t workers_started, workers_lost;
    size_t inputs_retried, inputs_failed; /* input x tile solves that needed stepping / never converged
                                            or ran past their time limit */
    size_t units_timed_out;              /* units stopped at their time limit (their inputs re-solved alone) */
    size_t inputs_timed_out;             /* input x tile solves stopped at their own limit (in inputs_failed) */
    long peak_rss_kb;                    /* largest peak resident memory of a worker */
    size_t newton_iterations;            /* ngspice's Newton iterations over the exact units solved */
    size_t newton_inputs;                /* the input x tile solves of those units */
    size_t linear_checked;               /* column currents compared in the linear mode's exact sample */
    size_t linear_sampled;               /* inputs in those samples, over every layer */
    double linear_err_max, linear_err_sum; /* |I_linear - I_exact| / largest |I_exact| of the tile */
    int ngspice_version;
    char solver[32];
    char row_sources[16];                /* "external" or "pwl": how the workers fed the row voltages */
    double seconds;
} xb_pool_stats;

typedef struct xb_pool {
    const xb_chip *chip;
    const xb_device *dev;
    xb_pool_options o;
    xb_pool_stats stats;
    unsigned char *failed; /* per input of the current forward call: 1 if any of its solves failed (input
                              first + k of a batch is failed[first + k]) */
    size_t failed_cap;
    const char *label;     /* progress label */
} xb_pool;

/* A xb_tile_current_fn (behavioral.h): solve every tile of layer l for n inputs with row voltages V
 * (exactly, or through the extracted transfer matrices in the linear mode). */
int xb_pool_layer_currents(void *pool, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err);

/* The inputs the linear mode re-solves exactly for layer l: ns of n (ns <= n), drawn without repeats by
 * gsl_rng_mt19937 seeded with seed + l, in ascending order. XB_ENOMEM or XB_OK. */
int xb_pool_linear_sample(size_t n, size_t ns, unsigned long seed, int l, size_t *pick, xb_error *err);

/* The time limit of a unit of n_inputs inputs: solve_timeout_s x (n_inputs + 2) seconds. */
double xb_pool_unit_timeout_s(const xb_pool_options *o, size_t n_inputs);

/* Run fn once in a fresh worker process (clean folder, its own libngspice); fn may write up to
 * result_bytes into result, which the caller then reads. Past the one-input time limit
 * (xb_pool_unit_timeout_s(o, 1)) the worker is killed and the call fails with XB_ERUNTIME. */
struct xb_spice;
int xb_pool_run_one(const xb_pool_options *o, int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err),
                    void *ctx, void *result, size_t result_bytes, xb_error *err);
/* The same; *timed_out (may be NULL) says whether it failed for its time limit. */
int xb_pool_run_one_timed(const xb_pool_options *o,
                          int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err), void *ctx,
                          void *result, size_t result_bytes, int *timed_out, xb_error *err);

#endif
