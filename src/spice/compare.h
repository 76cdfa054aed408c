// compare: circuit-level column currents beside the behavioral model's, tile by tile
#ifndef XB_COMPARE_H
#define XB_COMPARE_H

#include <stddef.h>

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

/* A current source for the behavioral pipeline (xb_tile_current_fn) that solves every tile through the
 * worker pool and, for the same row voltages, records the relative difference of each column current
 * from the ideal-wire model I = V.G: |I_spice - I_model| / |I_model| over currents above 1e-3 of the
 * tile's largest. */
typedef struct xb_circuit_compare {
    xb_pool *pool;
    const xb_chip *chip;
    size_t n_tiles;
    xb_tile_error *tiles; /* per tile, layers in order */
    double *scratch;
    size_t scratch_cap;
    size_t sample_inputs;       /* record every column current of this many inputs per tile (0: none) */
    size_t n_samples, samples_cap;
    xb_current_sample *samples; /* from the first batch of each layer */
    unsigned long long sampled_layers; /* bit l: layer l already sampled */
} xb_circuit_compare;

int xb_compare_init(xb_circuit_compare *cc, xb_pool *pool, const xb_chip *chip, xb_error *err);
void xb_compare_free(xb_circuit_compare *cc);
int xb_compare_source(void *ctx, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err);

/* Percentile q (0..1) of a tile's relative errors, from the histogram (bin upper edge). */
double xb_tile_error_percentile(const xb_tile_error *t, double q);

/* CSV: tile,layer,row_tile,col_tile,currents,rel_err_mean,rel_err_p99,rel_err_max. */
int xb_compare_write_csv(const xb_circuit_compare *cc, const char *path, xb_error *err);

/* CSV of the recorded samples: layer,row_tile,col_tile,input,col,i_behavioral_A,i_spice_A. */
int xb_compare_write_samples_csv(const xb_circuit_compare *cc, const char *path, xb_error *err);

/* Mean and largest relative error over every tile. */
void xb_compare_totals(const xb_circuit_compare *cc, double *mean, double *max);

#endif
