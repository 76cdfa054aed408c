// behavioral: the digital path of a chip: pre-step, DAC, tile currents from a backend, ADC, post-step
//
// Every layer runs pre-step -> DAC (row voltages) -> tile currents (backend.h: the model's own
// behavioral backend, I = V.G_S with ideal wires and read noise, unless another is set) -> ADC per tile
// -> partial sums, pair subtraction, scaling (mapping.h) -> output noise -> post-step (chip.h).
#ifndef XB_BEHAVIORAL_H
#define XB_BEHAVIORAL_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "backend.h"
#include "chip.h"

#define XB_BEHAV_MAX_LAYERS 64

typedef struct xb_behav_options {
    int dac_bits;            /* 0: ideal DAC; else row voltages take 2^bits evenly spaced values in [0, v_read] */
    int adc_bits;            /* 0: no ADC; else each tile's column currents quantized to 2^bits levels */
    int adc_calibrate;       /* 1: ADC full scale = largest column current on the calibration inputs;
                                0: full scale = rows_in_tile * v_read * g_max (the level range) */
    double sigma_read;       /* relative read noise of every cell, drawn anew at every inference */
    double sigma_out[XB_BEHAV_MAX_LAYERS]; /* additive Gaussian noise on each layer's outputs (weight units) */
} xb_behav_options;

void xb_behav_defaults(xb_behav_options *o);

typedef struct xb_behav xb_behav;

/* Prepare a behavioral model of chip c (not copied: c must outlive it; its g_S may change between calls).
 * calib (n_calib inputs, may be NULL) sets the ADC full scale when adc_calibrate is on. */
int xb_behav_new(const xb_chip *c, const xb_behav_options *o, const double *calib, size_t n_calib,
                 xb_behav **out, xb_error *err);
void xb_behav_free(xb_behav **b);

/* ADC full scales (A, one per layer, into adc_fs_A[c->n_layers]) as xb_behav_new would set them:
 * calibrated on calib when adc_bits > 0 and adc_calibrate (from the model's own noise-free currents),
 * else the level range rows_in_tile x v_read x g_max. Compute them once per chip (or Monte Carlo trial)
 * and hand them to every model of it with xb_behav_new_fs. */
int xb_behav_adc_calibrate(const xb_chip *c, const xb_behav_options *o, const double *calib, size_t n_calib,
                           double *adc_fs_A, xb_error *err);
/* A model with the given full scales (adc_fs_A[c->n_layers], copied; NULL: the level range). */
int xb_behav_new_fs(const xb_chip *c, const xb_behav_options *o, const double *adc_fs_A, xb_behav **out,
                    xb_error *err);

/* Take tile currents from backend t with its state (the caller's: opened on the same chip, it must
 * outlive the model or be replaced first). NULL t: the model's own behavioral backend again. The
 * read noise of o->sigma_read is then added to t's currents per tile (the model's own backend draws
 * it itself). */
void xb_behav_set_backend(xb_behav *b, const xb_backend_type *t, void *state);

/* Classify n inputs (n x fan_in of layer 1, values in [0, 1]). logits (n x classes) may be NULL.
 * rng is needed when sigma_read or sigma_out is non-zero. */
int xb_behav_forward(xb_behav *b, const double *X, size_t n, gsl_rng *rng, double *logits, int *pred,
                     xb_error *err);

/* The same through a bare function (kept for callers that have one; xb_behav_set_backend is the
 * general form). By default the model computes them (I = V.G, ideal wires); a
 * circuit solver can supply them instead: fill I_rt (n_row_tiles x n x cols, row tile by row tile) with
 * the column currents of each row tile of layer l for the n inputs' row voltages V (n x rows). The
 * forward pass works in batches: these n are inputs first .. first+n-1 of the call.
 * Non-zero return: the forward pass stops with that status (err filled). Everything after the column
 * currents (ADC per tile, partial sums, pair subtraction, scaling, activation) is shared. Calibration
 * of the ADC always uses the model's own currents. */
typedef int (*xb_tile_current_fn)(void *ctx, int l, size_t first, const double *V, size_t n, double *I_rt,
                                  xb_error *err);
void xb_behav_set_current_source(xb_behav *b, xb_tile_current_fn fn, void *ctx);

/* Row voltages of layer l (n patches x rows, volts; patches 1 for a dense layer) for n network inputs
 * (n <= xb_behav_chunk): earlier layers run through the model (or the current source, if set), then
 * layer l's pre-step, DAC and bias rows. */
int xb_behav_layer_rows(xb_behav *b, int l, const double *X, size_t n, gsl_rng *rng, double *V, xb_error *err);

/* Network inputs per pass: 1024 for dense networks; fewer, so that inputs x patches stays within 65536
 * row vectors, for convolutional ones. Backends see a conv layer's patches as its inputs: input
 * (first + i) of such a layer is patch i mod patches of network input (first + i) / patches. */
size_t xb_behav_chunk(const xb_behav *b);

/* ADC full scale (A) used for layer l, after calibration. */
double xb_behav_adc_full_scale(const xb_behav *b, int l);

#endif
