// executor: the interface through which the scheduler runs work units on workers, and what a worker is
//
// Three parties, each knowing only the next one's table:
//   - a worker type (xb_worker_type) does the work of one unit in a worker: it opens what it needs once
//     (a solver), runs units one after the other into a result block, and closes;
//   - an executor (xb_executor_type) owns the workers: it starts them, hands a unit to one, reports what
//     happened (unit done, worker lost, unit past its time limit) and stops them. xb_executor_local forks
//     processes on this machine; xb_executor_mpi (mpi_exec.h) hands units to MPI ranks, each running local
//     workers;
//   - the scheduler (sched.h) decides which unit goes where, retries, and when to give up.
//
// Contracts:
//   - Buffers. The executor owns every result block. A worker's run writes the result of its unit into
//     the block it is given (cfg.result_bytes bytes, 64-byte aligned), and the block reaches the parent
//     in the XB_EVENT_DONE event (ev.result), valid until the next submit to the same slot or stop. The
//     parent copies what it keeps. ctx (the worker's inputs: a chip, row voltages) belongs to the caller,
//     is read-only for workers and must stay valid until stop; the local executor's workers inherit it by
//     fork, the MPI executor's get a copy through the worker type's pack and unpack. A worker's state
//     (open .. close) lives in the worker only.
//   - Results never depend on the executor: a unit's result is a function of (ctx, unit) alone, whichever
//     worker, slot, executor or retry computes it, and the scheduler places results by unit, not by
//     arrival order. So 1 worker and N workers, local or remote, give byte-identical results.
//   - Failures. A worker's run that fails ends that worker (its process may be broken: a dead solver),
//     saying in *repeatable whether a fresh worker would fail the same way (a rejected input): the
//     executor reports XB_EVENT_REFUSED for those and XB_EVENT_LOST for the rest and for workers that died
//     (a signal, an exit). open failing is always XB_EVENT_REFUSED. A unit is never reported done twice
//     for one submit, and a lost or timed-out unit's partial result is never delivered.
//   - Time limits. submit gives each unit limit_s seconds from the moment its worker takes it (after the
//     worker has opened); past it the executor stops the worker and reports XB_EVENT_TIMED_OUT.
//   - Slots. cfg.slots workers run at once, one per slot; a slot's worker that ended is replaced by the
//     next submit to that slot (counted in *cfg.workers_started).
#ifndef XB_EXECUTOR_H
#define XB_EXECUTOR_H

#include <stddef.h>

#include "error.h"

/* A work unit: inputs [k0, k1) of tile (rt, ct) of layer `layer` (0-based). */
typedef struct xb_unit {
    int layer;
    size_t rt, ct, k0, k1;
} xb_unit;

/* Test hooks on one submit: the executor loses the worker taking the unit (the local executor: SIGKILL
 * before it runs), or the worker type is asked to fail in its own way (the ngspice worker: `quit`). */
enum { XB_HOOK_NONE = 0, XB_HOOK_LOSE = 1, XB_HOOK_WORKER = 2 };

struct xb_pack;

typedef struct xb_worker_type {
    const char *name;
    /* In the worker: open its resources into *state. index numbers the workers of one start, in the
     * order they start (replacements get new numbers): for log names. Fill err on failure. */
    int (*open)(void *ctx, int index, void **state, xb_error *err);
    /* In the worker: run unit u into result. hook: XB_HOOK_WORKER or 0. On failure fill err and set
     * *repeatable when a fresh worker would fail the same way. */
    int (*run)(void *ctx, void *state, const xb_unit *u, int hook, void *result, int *repeatable, xb_error *err);
    /* In the worker, after its last unit; also NULLs *state. */
    void (*close)(void *ctx, void **state);
    /* For executors whose workers run in processes that share none of the caller's memory (MPI ranks,
     * mpi_exec.h); NULL where a type runs on the local executor only. pack writes ctx as bytes (xb_pack, pack.h;
     * XB_ENOMEM), unpack rebuilds a ctx from them in the other process (XB_ERUNTIME for bytes that do not
     * parse), telling it which process it is in (its MPI rank, for log names), and unpack_free frees it. */
    int (*pack)(const void *ctx, struct xb_pack *out, xb_error *err);
    int (*unpack)(const void *bytes, size_t len, int process, void **ctx, xb_error *err);
    void (*unpack_free)(void **ctx);
} xb_worker_type;

typedef struct xb_executor_config {
    int slots;                    /* workers at once (>= 1) */
    const xb_worker_type *worker;
    void *ctx;                    /* the worker's inputs: see the contracts above */
    size_t result_bytes;          /* the largest result block of a unit */
    size_t *workers_started;      /* incremented for every worker started (may be NULL) */
} xb_executor_config;

enum {
    XB_EVENT_DONE = 1,      /* unit done; ev.result holds its result */
    XB_EVENT_LOST = 2,      /* a worker ended (ev.unit: the unit it held, or -1); ev.err says how */
    XB_EVENT_TIMED_OUT = 3, /* ev.unit ran past its limit; its worker was stopped */
    XB_EVENT_REFUSED = 4    /* a worker failed in a way any worker would (ev.err): stop the run */
};

typedef struct xb_event {
    int kind;
    int slot;
    long unit;          /* the id given to submit, or -1 */
    int worker;         /* the worker's index (see open) */
    const void *result; /* XB_EVENT_DONE only */
    xb_error err;       /* XB_EVENT_LOST, XB_EVENT_REFUSED: the worker's last words */
} xb_event;

typedef struct xb_executor_type {
    const char *name;
    /* Start cfg->slots workers. XB_ERUNTIME / XB_ENOMEM; nothing is left running on failure. */
    int (*start)(const xb_executor_config *cfg, void **state, xb_error *err);
    /* Give unit u (id: the caller's number for it) to slot's worker, which must hold none. */
    int (*submit)(void *state, int slot, long id, const xb_unit *u, int hook, double limit_s, xb_error *err);
    /* Block until the next event. XB_ERUNTIME only if the executor itself broke. */
    int (*wait)(void *state, xb_event *ev, xb_error *err);
    /* The same, waiting at most timeout_ms: 1 with an event in *ev, 0 without one, or -1 with err filled
     * (for executors that serve other sources too; may be NULL). */
    int (*poll)(void *state, xb_event *ev, int timeout_ms, xb_error *err);
    /* End every worker (abort: at once, else after their units) and free state; NULLs *state. */
    void (*stop)(void **state, int abort);
} xb_executor_type;

/* Forked worker processes on this machine, each in an empty folder of its own (HOME and TMPDIR point
 * there), removed when it ends; workers end with their parent; results travel through shared memory. */
extern const xb_executor_type xb_executor_local;

#endif
