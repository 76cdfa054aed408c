// worker: the ngspice worker type: a worker opens one libngspice solver and solves (layer, tile, chunk) units
//
// The scheduler's side of a worker (executor.h) with the solver's side (ngspice.h): it knows how to turn a
// unit into tile row voltages, a solve and a result block, and nothing of queues, retries or processes.
// Buffers: the context (chip, device, options, the layer's row voltages V) is the caller's, read only, and
// must outlive the run; the result block is the executor's, laid out as xb_spice_unit_result below.
#ifndef XB_SPICE_WORKER_H
#define XB_SPICE_WORKER_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "executor.h"
#include "netlist.h"

struct xb_spice;

/* What the workers of one layer's run read. */
typedef struct xb_spice_worker_ctx {
    const xb_chip *chip;
    const xb_device *dev;
    const xb_netlist_options *net;
    int layer;
    const double *V;       /* n x rows row voltages of the layer */
    size_t n;
    size_t chunk;          /* the most inputs in a unit */
    char log_dir[4200];    /* absolute; ngspice logs go to LOG_DIR/ngspice-worker-K.log ("": discarded) */
    int process;           /* the MPI rank the workers run on (0: this process): rank R's logs are
                              LOG_DIR/ngspice-rank-R-worker-K.log */
} xb_spice_worker_ctx;

/* A unit's result block: this header, then k x nc column currents (amperes; at XB_SPICE_RESULT_CURRENTS
 * bytes), then k per-input statuses (XB_SOLVE_*; one byte each). A failed input's currents are NaN. */
typedef struct xb_spice_unit_result {
    int ngspice_version, klu, rows_path;
    long peak_rss_kb;
    long newton_iterations; /* ngspice's Newton iterations for the unit (xb_spice_newton_iterations) */
} xb_spice_unit_result;
#define XB_SPICE_RESULT_CURRENTS ((sizeof(xb_spice_unit_result) + 63) / 64 * 64)

/* The largest result block of the units of ctx. */
size_t xb_spice_worker_result_bytes(const xb_spice_worker_ctx *ctx);
/* The unit's k x nc currents and k statuses inside a result block. */
const double *xb_spice_result_currents(const void *result);
const unsigned char *xb_spice_result_status(const void *result, size_t k, size_t nc);

/* The order a unit's inputs are swept in (order[q]: the input solved q-th). Each point of a sweep starts
 * Newton from the previous point's solution, so close neighbours converge in fewer iterations: the path
 * starts at the input with the smallest sum of row voltages and goes on to the nearest input not yet
 * visited (Euclidean distance of the n x nr row voltages v_tile), a greedy walk that looks at most 1,000
 * inputs ahead. Deterministic: the same inputs give the same order. */
void xb_spice_chunk_order(const double *v_tile, size_t n, size_t nr, size_t *order);

/* xb_spice_solve_tile of a unit's inputs in the order above, identical inputs (equal row voltages, bit
 * for bit) solved once; i_cols (n x nc) and status (n, may be NULL) come back in the caller's order.
 * Currents differ from a solve in the given order only within Newton's tolerance (docs/circuit.md,
 * "Newton iterations per input"). Errors as xb_spice_solve_tile, and XB_ENOMEM. */
int xb_spice_solve_chunk(struct xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                         const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                         xb_error *err);

/* The worker type: ctx is an xb_spice_worker_ctx. The test hook XB_HOOK_WORKER sends ngspice `quit`
 * before the solve, so ngspice calls ControlledExit and the unit fails (the worker is lost). */
extern const xb_worker_type xb_spice_worker;

/* The worker type's context as bytes and back (xb_worker_type.pack/unpack, for MPI ranks): the chip, the
 * device, the netlist options and the layer's row voltages travel; the rebuilt context owns its copies. */
struct xb_pack;
int xb_spice_worker_pack(const void *ctx, struct xb_pack *out, xb_error *err);
int xb_spice_worker_unpack(const void *bytes, size_t len, int process, void **ctx, xb_error *err);
void xb_spice_worker_unpack_free(void **ctx);

/* A worker type running one callback on a fresh solver (logs to LOG_DIR/ngspice-single.log). */
typedef struct xb_spice_oneoff_ctx {
    int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err);
    void *ctx;
    char log_dir[4200];    /* absolute, or "" */
} xb_spice_oneoff_ctx;
extern const xb_worker_type xb_spice_oneoff_worker;

/* LOG_DIR made absolute against the working folder ("" stays ""). */
void xb_spice_worker_log_dir(const char *log_dir, char *out, size_t cap);

#endif
