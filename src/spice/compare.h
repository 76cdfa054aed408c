// compare: the tile currents of two backends on the same chip and inputs, side by side, tile by tile
#ifndef XB_COMPARE_H
#define XB_COMPARE_H

#include <stddef.h>

#include "backend.h"
#include "chip.h"
#include "pool.h"

#define XB_ERR_BINS 1300 /* log-spaced histogram of relative errors, 1e-12 .. 1e1, 100 bins per decade */

typedef struct xb_tile_error {
    int layer;
    size_t rt, ct;
    size_t n;          /* currents compared */
    double sum, max;   /* of relative errors */
    size_t hist[XB_ERR_BINS + 2];
} xb_tile_error;

/* One column current seen by both models, for scatter plots of circuit against behavioral currents. */
typedef struct xb_current_sample {
    int layer;
    size_t rt, ct, input, col; /* input: index within the first batch the layer saw; col: within the layer */
    double i_model_A, i_spice_A;
} xb_current_sample;

/* A current source for the behavioral pipeline (xb_tile_current_fn) that takes every tile's currents
 * from a measured backend and, for the same row voltages, records the relative difference of each
 * column current from a reference backend: |I_measured - I_ref| / |I_ref| over currents above 1e-3 of
 * the tile's largest reference current. Any pair of backends opened on the same chip will do
 * (xb_compare_init_pair); xb_compare_init is the pair of today's circuit runs: the worker pool as
 * its options say (exact or linear) against the behavioral backend without noise (I = V.G_S).
 * In the samples, i_model_A is the reference's current and i_spice_A the measured one's. */
typedef struct xb_circuit_compare {
    xb_pool *pool;              /* xb_compare_init's pool (NULL with init_pair) */
    const xb_chip *chip;
    const xb_backend_type *meas_t, *ref_t; /* meas_t NULL: the pool, through xb_pool_layer_currents */
    void *meas_state, *ref_state;
    void *own_ref;              /* the reference state xb_compare_init opened (freed with cc) */
    double *ref_rt;             /* n_row_tiles x n x cols reference currents */
    size_t ref_cap;
    size_t n_tiles;
    xb_tile_error *tiles; /* per tile, layers in order */
    size_t sample_inputs;       /* record every column current of this many inputs per tile (0: none) */
    size_t n_samples, samples_cap;
    xb_current_sample *samples; /* from the first batch of each layer */
    unsigned long long sampled_layers; /* bit l: layer l already sampled */
} xb_circuit_compare;

int xb_compare_init(xb_circuit_compare *cc, xb_pool *pool, const xb_chip *chip, xb_error *err);
/* Compare backend meas (state meas_state) against ref (ref_state), both opened on chip and the
 * caller's: they must outlive cc. */
int xb_compare_init_pair(xb_circuit_compare *cc, const xb_chip *chip, const xb_backend_type *meas_t,
                         void *meas_state, const xb_backend_type *ref_t, void *ref_state, xb_error *err);
void xb_compare_free(xb_circuit_compare *cc);
int xb_compare_source(void *ctx, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err);

/* CSV: tile,layer,row_tile,col_tile,currents,rel_err_mean,rel_err_p99,rel_err_max. */
int xb_compare_write_csv(const xb_circuit_compare *cc, const char *path, xb_error *err);

/* CSV of the recorded samples: layer,row_tile,col_tile,input,col,i_behavioral_A,i_spice_A. */
int xb_compare_write_samples_csv(const xb_circuit_compare *cc, const char *path, xb_error *err);

/* Mean and largest relative error over every tile. */
void xb_compare_totals(const xb_circuit_compare *cc, double *mean, double *max);

#endif
