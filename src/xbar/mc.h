// mc: Monte Carlo over perturbation draws of a programmed chip, and the statistics of the trials
#ifndef XB_MC_H
#define XB_MC_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "chip.h"
#include "perturb.h"

#define XB_MC_MAX_PERTURB 16

/* A perturbation model and the layers (bit k = layer k+1) it applies to. */
typedef struct xb_layer_perturb {
    xb_perturb model;
    unsigned long long layers;
} xb_layer_perturb;

/* Layer selector -> bit mask (bit l: layer l+1): "all", "first", "last", or 1-based numbers joined by
 * '+', e.g. "1+3". XB_EINPUT if a layer does not exist or the selector is malformed. */
int xb_layers_parse(const char *sel, int n_layers, unsigned long long *mask, xb_error *err);

/* Parse "SPEC" or "SPEC@LAYERS" where LAYERS is a selector as xb_layers_parse reads it. */
int xb_layer_perturb_parse(const char *text, int n_layers, xb_layer_perturb *out, xb_error *err);

/* One trial's chip: start from base, apply the weight-domain models to the normalized weights of the
 * layers they name, and move each cell's conductance by the change of its target, so programming
 * errors already in base->g_S are kept. Output-domain (additive) models set bo->sigma_out.
 * Then the conductance-domain models (d2d, stuck) act on the g_S of every cell (rows x cols, reference
 * and idle cells included) of the layers they name. Stuck cells take the device's LRS and HRS
 * conductances, chip->opt.g_lrs_S and g_hrs_S (xb_map_options_from_device; a conductance map carries
 * them), the values program's --stuck-lrs / --stuck-hrs use; a chip without them (NaN: a map of
 * format 1) makes a stuck model XB_EINPUT.
 * Draw order from rng (for reproducibility): layer by layer, the weight-domain models in the order
 * given; then layer by layer, the conductance-domain models in the order given.
 * chip must be a clone of base. */
int xb_mc_perturb_chip(const xb_chip *base, const xb_layer_perturb *p, int n_p, gsl_rng *rng, xb_chip *chip,
                       xb_behav_options *bo, xb_error *err);

/* Mean, sample standard deviation and a 95% Student-t interval of the mean of n values. */
typedef struct xb_mc_stats {
    size_t n;
    double mean, std, ci95_lo, ci95_hi, min, max;
} xb_mc_stats;
void xb_mc_stats_of(const double *v, size_t n, xb_mc_stats *s);
/* Clamp the interval to [lo, hi], the values the quantity can take: an accuracy's t-interval over
 * few trials otherwise reaches past 100 % (accuracy: [0, 1]; a difference of accuracies: [-1, 1]). */
void xb_mc_stats_clamp(xb_mc_stats *s, double lo, double hi);

#endif
