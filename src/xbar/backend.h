// backend: where a layer's tile currents come from: one interface, a const table of functions per backend
//
// A backend answers one question for the digital path (behavioral.h) and for comparisons: given the
// row voltages of a batch of inputs on layer l of a chip, what current does every column of every row
// tile carry? Backends are published as const tables, in the way GSL publishes its solver methods
// (gsl_multifit_nlinear_method_lm); a caller picks one by pointer:
//     xb_backend_ideal       I = V.G_target: the mapping's own conductances, every non-ideality off
//     xb_backend_behavioral  I = V.G_S: the cells as programmed and perturbed, ideal wires, with the
//                            relative read noise of params.sigma_read (drawn from params.rng)
//     xb_backend_spice_exact every tile solved by libngspice through the worker pool (spice/backend_spice.c)
//     xb_backend_spice_linear the same pool in its SPICE-extracted linear mode
//
// Contract (every backend keeps it):
// - open(chip, params, &state, err) prepares a state for the chip. chip and everything params points to
//   (the rng, the pool) are the caller's: they are not copied and must outlive the state; the chip's
//   g_S may change between calls (a Monte Carlo trial) and the next call sees it. open may fail
//   (XB_ENOMEM; XB_EINPUT when params lack what the backend needs, e.g. no pool for a spice backend),
//   leaving *state NULL.
// - tile_currents(state, l, first, V, n, I_rt, err): V (n x rows of layer l, volts, row-major) is the
//   caller's, read only. I_rt is the caller's, n_row_tiles x n x cols (row tile by row tile, each block
//   n x cols with every column of the layer), and is overwritten entirely. first is the index of the
//   batch's first input in the caller's whole pass (a pool flags failed solves there). The ideal and
//   behavioral backends cannot fail; a spice backend returns XB_ERUNTIME (worker lost for good, ngspice
//   rejected a deck) or XB_ENOMEM with err filled, and I_rt is then undefined. A solve that never
//   converges is not a failure of the call: its currents are 0 and the pool flags its input.
// - column_currents (may be NULL) gives the sum over row tiles directly (n x cols, overwritten), for a
//   digital path with no per-tile step (no ADC); a backend that offers it returns exactly what summing
//   its tile currents would within rounding. NULL: the caller sums tile_currents.
// - tile_stats(state, l, rt, ct, out) copies what the state counted for one tile since open; it
//   cannot fail.
// - free(&state) releases the state (NULL-safe) and sets it to NULL; it never touches the caller's
//   buffers, chip or pool.
// A state serves one caller at a time (not thread-safe).
#ifndef XB_BACKEND_H
#define XB_BACKEND_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "chip.h"
#include "error.h"

/* What a backend may need besides the chip; each uses the fields it names and ignores the rest. */
typedef struct xb_backend_params {
    double sigma_read;  /* behavioral: relative read noise of every cell, drawn anew at every call */
    gsl_rng *rng;       /* behavioral with sigma_read > 0: the draws (the caller's; see xb_backend_set_rng) */
    void *pool;         /* spice backends: the worker pool (struct xb_pool, spice/pool.h), the caller's */
} xb_backend_params;

/* Per-tile counts since open. */
typedef struct xb_tile_stats {
    size_t calls;     /* tile_currents / column_currents calls that covered this tile */
    size_t currents;  /* column currents given (inputs x columns of the tile) */
    double i_max_A;   /* largest |I| given per tile (by tile_currents; column_currents gives sums only) */
    size_t nonfinite; /* currents that were NaN or infinite */
} xb_tile_stats;

typedef struct xb_backend_type {
    const char *name;
    int (*open)(const xb_chip *c, const xb_backend_params *p, void **state, xb_error *err);
    int (*tile_currents)(void *state, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err);
    int (*column_currents)(void *state, int l, size_t first, const double *V, size_t n, double *I, xb_error *err);
    void (*tile_stats)(const void *state, int l, size_t rt, size_t ct, xb_tile_stats *out);
    void (*set_rng)(void *state, gsl_rng *rng); /* may be NULL: the backend draws nothing */
    void (*free)(void **state);
} xb_backend_type;

extern const xb_backend_type *const xb_backend_ideal;
extern const xb_backend_type *const xb_backend_behavioral;

/* Backend by name ("ideal", "behavioral", "spice-exact", "spice-linear"), among the n given; NULL if none. */
const xb_backend_type *xb_backend_find(const xb_backend_type *const *types, size_t n, const char *name);

/* Point a state at a new random generator (no-op for backends that draw nothing). */
void xb_backend_set_rng(const xb_backend_type *t, void *state, gsl_rng *rng);

/* ---- for backend implementations ---- */

/* Per-tile statistics of a chip, tiles of all layers in order. */
typedef struct xb_tile_stats_table {
    const xb_chip *chip;
    size_t n_tiles;
    size_t first_tile[64]; /* index of layer l's first tile */
    xb_tile_stats *t;
} xb_tile_stats_table;

int xb_tile_stats_init(xb_tile_stats_table *s, const xb_chip *c, xb_error *err);
void xb_tile_stats_release(xb_tile_stats_table *s);
/* Count the tile currents I_rt (n_row_tiles x n x cols) of layer l. */
void xb_tile_stats_add(xb_tile_stats_table *s, int l, const double *I_rt, size_t n);
void xb_tile_stats_get(const xb_tile_stats_table *s, int l, size_t rt, size_t ct, xb_tile_stats *out);

/* Add the read noise of one row tile to its currents It (n x L->cols): each column current moves by a
 * Gaussian of standard deviation sigma sqrt(sum_i V_i^2 G_i^2) over the tile's rows [r0, r0 + nr)
 * (independent relative noise sigma on every cell, exactly). V2 (n x rows) and G2 (rows x cols) hold
 * the squared voltages and conductances; var (n x cols) is scratch. n x cols draws from rng, in order. */
void xb_read_noise_tile(const xb_layer_map *L, const double *V2, const double *G2, size_t r0, size_t nr, size_t n,
                        double sigma, gsl_rng *rng, double *var, double *It);

#endif
