// sched: work units of (layer, tile, input chunk), their queue, retries, and the fault and time-limit policy
//
// The scheduler hands units to an executor's workers (executor.h) and decides what happens when things
// go wrong; it knows nothing of what a unit computes (a worker type does) nor of how workers run (the
// executor does). Its policy:
//   - Every unit is done exactly once: its result reaches the client's accept once, in the parent, and is
//     placed there by the unit's coordinates, so results never depend on the executor, the number of
//     workers or the order units finish in.
//   - A worker lost while holding a unit (killed, a solver's fatal exit) is replaced and the unit handed
//     out again; a unit that has ended 3 workers stops the run with the last worker's message. More lost
//     workers than 4 x workers + 8 in one run also stop it.
//   - A worker that failed in a way any worker would (XB_EVENT_REFUSED: a solver rejecting its input)
//     stops the run at once with that worker's message.
//   - Time limits: a unit of n inputs may run xb_sched_unit_limit_s(per_input_s, n) seconds after its
//     worker takes it. Past that its worker is stopped (not counted as lost) and its inputs handed out
//     again one at a time, each with the limit of a one-input unit; a one-input unit past its limit is
//     given to the client's fail_input (the client marks the input failed) and the run goes on.
// Buffers: units is read only; results are the executor's until accept returns; accept copies them.
#ifndef XB_SCHED_H
#define XB_SCHED_H

#include <stddef.h>

#include "error.h"
#include "executor.h"

/* Default seconds per input of a unit's time limit. */
#define XB_SCHED_PER_INPUT_S 20.0
/* A unit may end this many workers before the run stops. */
#define XB_SCHED_MAX_DEATHS 3

typedef struct xb_sched_options {
    int workers;          /* slots (default 1; at most one per unit) */
    double per_input_s;   /* time limit per input (<= 0: XB_SCHED_PER_INPUT_S) */
    int quiet;            /* no progress bar, no time-out notices */
    const char *label;    /* progress label ("work"); the bar reads "LABEL layer L" */
    const char *lost_hint; /* appended to give-up messages, e.g. "ngspice logs in DIR" (may be NULL) */
    long fault_lose_unit;   /* test hook: the first worker to take this unit id is lost (-1: off) */
    long fault_worker_unit; /* test hook: the first worker to take it gets XB_HOOK_WORKER (-1: off) */
    int fault_repeat;       /* the hooks fire for every worker that takes the unit */
} xb_sched_options;

void xb_sched_defaults(xb_sched_options *o);

typedef struct xb_sched_stats {
    size_t units, unit_retries;          /* units done; units handed out again after a lost worker */
    size_t workers_started, workers_lost;
    size_t units_timed_out;              /* units of several inputs stopped at their limit */
    size_t inputs_timed_out;             /* one-input units stopped at their limit (given to fail_input) */
} xb_sched_stats;

/* The parent's side: where results go. */
typedef struct xb_sched_client {
    void *ctx;
    int (*accept)(void *ctx, const xb_unit *u, const void *result, xb_error *err);
    void (*fail_input)(void *ctx, const xb_unit *u); /* u->k1 == u->k0 + 1 */
} xb_sched_client;

/* The time limit of a unit of n inputs: per_input_s x (n + 2) seconds (the 2 for a solver's start on a
 * unit: loading and a first, full solve). */
double xb_sched_unit_limit_s(double per_input_s, size_t n_inputs);

/* The units of one layer in their canonical order (numbering): row tile, column tile, then chunks of
 * `chunk` inputs of n. *units is malloc'ed (free it). XB_ENOMEM or XB_OK. */
int xb_sched_layer_units(int layer, size_t n_row_tiles, size_t n_col_tiles, size_t n, size_t chunk,
                         xb_unit **units, size_t *n_units, xb_error *err);

/* Run every unit on executor ex with workers of type wt (ctx, result_bytes: executor.h) and give each
 * result to the client. Statistics are added to *stats (may be NULL). Errors: the run's own (give-up
 * messages name the unit), a worker's (XB_EVENT_REFUSED), the executor's. Workers never outlive it. */
int xb_sched_run(const xb_executor_type *ex, const xb_sched_options *o, const xb_worker_type *wt, void *ctx,
                 size_t result_bytes, const xb_unit *units, size_t n_units, const xb_sched_client *client,
                 xb_sched_stats *stats, xb_error *err);

#endif
