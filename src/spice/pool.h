// pool: worker processes that solve (layer, tile, input chunk) units through libngspice in parallel
//
// Layers run one after the other; within a layer every tile x input-chunk unit goes to the next free
// worker. Workers are forked per layer, so they share the chip and the row voltages copy-on-write, and
// write column currents straight into shared memory. Each worker runs in its own empty folder (HOME and
// TMPDIR point there; the parent makes and removes it), with its own libngspice and log. A worker that dies (killed,
// or ngspice's fatal error) is replaced and its unit handed out again; a unit that has ended three
// workers stops the run with the last worker's message. An error that a fresh worker would meet again
// (ngspice rejecting a deck: a missing include file, an unknown model) stops the run at once, with
// ngspice's message.
#ifndef XB_POOL_H
#define XB_POOL_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "netlist.h"

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
} xb_pool_options;

void xb_pool_defaults(xb_pool_options *o);

/* Totals over every call, for the run log. */
typedef struct xb_pool_stats {
    size_t units, unit_retries;          /* units solved; units handed out again after a worker died */
    size_t workers_started, workers_lost;
    size_t inputs_retried, inputs_failed; /* input x tile solves that needed stepping / never converged */
    long peak_rss_kb;                    /* largest peak resident memory of a worker */
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

/* Run fn once in a fresh worker process (clean folder, its own libngspice); fn may write up to
 * result_bytes into result, which the caller then reads. */
struct xb_spice;
int xb_pool_run_one(const xb_pool_options *o, int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err),
                    void *ctx, void *result, size_t result_bytes, xb_error *err);

#endif
