// perturb: the weight, output and conductance perturbation (noise) models, drawn from a caller's gsl_rng
//
// Every model draws from the gsl_rng the caller passes (generator and seed are the caller's to record);
// same generator state in, same draws out. Normal deviates come from gsl_ran_gaussian_ziggurat. The
// models (N = an independent N(0,1) draw per element):
//
//  c2c        "Exploring variability and quantization effects" (C2C, uniform sigma): exactly
//             m = round(AR * n) of the n weights (C round: half away from zero), chosen uniformly at
//             random without replacement, get  w += sigma * s * N,  s = max |w| of the layer as it was
//             before the call, so sigma is in normalized units (a fraction of the layer's largest
//             weight). The others are untouched. AR in [0, 1], sigma >= 0.
//  c2c-level  same selection, level-dependent spread:  w += sigma * |w| * N.
//  mult       "Investigating the Impact of Imprecise Computation":  w = (1 + alpha * N) * w, alpha >= 0.
//  lognormal  "Bridging the gap" (BayesFT drift):  w = w * exp(sigma * N), i.e. ln(w'/w) ~ N(0, sigma^2).
//  additive   "On Hardening DNNs": on a layer's outputs,  y += sigma * N. The caller applies it to the
//             layer outputs (pre-activation), not to the weights.
//
// Conductance-domain models act on programmed conductances g (siemens), per cell:
//  d2d        device-to-device spread, "Investigating the Impact of Imprecise Computation" (device-to-
//             device variability as the reason programmed parameters are imperfect), in its
//             multiplicative form on conductances:  g = max(0, g (1 + sigma N)), sigma >= 0.
//  stuck      stuck-at faults ("faulty devices" in the same study; stuck-at-LRS/HRS of DESIGN.md): one
//             uniform u per cell; u < P: g = g_lrs; P <= u < P + Q: g = g_hrs; else unchanged.
//             P, Q >= 0, P + Q <= 1.
// As trial perturbations (xb_mc_perturb_chip) they are drawn afresh in every Monte Carlo trial; at
// program time (program.h) they are drawn once. Both times g_lrs / g_hrs are the device file's
// g_lrs_S / g_hrs_S (a trial reads them from the chip's options, which a conductance map records).
#ifndef XB_PERTURB_H
#define XB_PERTURB_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "error.h"

typedef enum xb_perturb_kind {
    XB_PERTURB_NONE = 0,  /* "none": leaves the array as it is */
    XB_PERTURB_C2C,       /* "c2c:ar=A,sigma=S" */
    XB_PERTURB_C2C_LEVEL, /* "c2c-level:ar=A,sigma=S" */
    XB_PERTURB_MULT,      /* "mult:alpha=A" */
    XB_PERTURB_LOGNORMAL, /* "lognormal:sigma=S" */
    XB_PERTURB_ADDITIVE,  /* "additive:sigma=S" (layer outputs) */
    XB_PERTURB_D2D,       /* "d2d:sigma=S" (conductances) */
    XB_PERTURB_STUCK      /* "stuck:lrs=P,hrs=Q" (conductances) */
} xb_perturb_kind;

/* A parsed perturbation model. Parameters a kind does not use are 0. */
typedef struct xb_perturb {
    xb_perturb_kind kind;
    double ar;    /* c2c, c2c-level: adjustment rate, fraction of weights perturbed, in [0, 1] */
    double sigma; /* c2c, c2c-level, lognormal, additive: spread, >= 0 */
    double alpha; /* mult: relative spread, >= 0 */
    double p_lrs; /* stuck: probability of a cell stuck at LRS, in [0, 1] */
    double p_hrs; /* stuck: probability of a cell stuck at HRS, in [0, 1]; p_lrs + p_hrs <= 1 */
} xb_perturb;

/* Parse "none" or "KIND:key=value,...":
 *   c2c:ar=A,sigma=S  c2c-level:ar=A,sigma=S  (ar optional, default 1; sigma required)
 *   mult:alpha=A  lognormal:sigma=S  additive:sigma=S  d2d:sigma=S
 *   stuck:lrs=P,hrs=Q  (each optional, default 0; P + Q <= 1)
 * Bad specs (unknown kind or key, repeated or missing key, value out of range) fail with XB_EINPUT
 * naming the spec and what is allowed. */
int xb_perturb_parse(const char *spec, xb_perturb *out, xb_error *err);

/* Check the parameters of a perturbation built by hand (the parser already does): XB_EINPUT if bad. */
int xb_perturb_check(const xb_perturb *p, xb_error *err);

/* The canonical spec string for provenance records (every kind's parameters, each number with the
 * fewest of 15 or 17 significant digits that read back exactly); returns snprintf's count. */
int xb_perturb_format(const xb_perturb *p, char *buf, size_t size);

/* 1 if the model acts on layer outputs (additive), 0 if on weights. */
int xb_perturb_on_outputs(const xb_perturb *p);

/* 1 if the model acts on programmed conductances (d2d, stuck), 0 otherwise. */
int xb_perturb_on_conductances(const xb_perturb *p);

/* Apply a model to n values in place (a layer's weights, or its outputs for additive). For c2c the
 * scale s is xb_max_abs of this array, so pass one whole layer per call. *n_changed (may be NULL)
 * receives the number of values drawn for (n for every kind except c2c/c2c-level, 0 for none).
 * Conductance-domain kinds (d2d, stuck) are XB_EINPUT here: use xb_perturb_apply_g. */
int xb_perturb_apply(const xb_perturb *p, gsl_rng *rng, double *x, size_t n, size_t *n_changed,
                     xb_error *err);

/* Apply a conductance-domain model (d2d, stuck; "none" does nothing) to n conductances g_S in place.
 * g_lrs_S / g_hrs_S: the values of stuck cells (unused by d2d). *n_changed (may be NULL): n for d2d,
 * the number of stuck cells for stuck. Other kinds are XB_EINPUT: use xb_perturb_apply. */
int xb_perturb_apply_g(const xb_perturb *p, gsl_rng *rng, double *g_S, size_t n, double g_lrs_S, double g_hrs_S,
                       size_t *n_changed, xb_error *err);

/* The building blocks; parameters are the caller's to validate (see xb_perturb_check). */

/* C2C uniform: exactly round(ar * n) values, chosen without replacement by selection sampling (the
 * algorithm of gsl_ran_choose, without its copy), get x += sigma * scale * N. Returns the count. */
size_t xb_perturb_c2c(gsl_rng *rng, double *x, size_t n, double ar, double sigma, double scale);

/* C2C level-dependent: the same selection, x += sigma * |x| * N. Returns the count. */
size_t xb_perturb_c2c_level(gsl_rng *rng, double *x, size_t n, double ar, double sigma);

/* x = (1 + alpha N) x */
void xb_perturb_mult(gsl_rng *rng, double *x, size_t n, double alpha);

/* x = x exp(sigma N) */
void xb_perturb_lognormal(gsl_rng *rng, double *x, size_t n, double sigma);

/* x += sigma N */
void xb_perturb_additive(gsl_rng *rng, double *x, size_t n, double sigma);

/* Device-to-device spread of programmed conductances: g *= (1 + sigma N), then g = max(g, 0). */
void xb_perturb_d2d(gsl_rng *rng, double *g, size_t n, double sigma);

/* Stuck-at faults: each cell independently is stuck at LRS with probability p_lrs (g = g_lrs), else at
 * HRS with probability p_hrs (g = g_hrs), else keeps its value; one uniform draw u per cell decides
 * (u < p_lrs: LRS; p_lrs <= u < p_lrs + p_hrs: HRS). p_lrs, p_hrs >= 0 and p_lrs + p_hrs <= 1 (up to
 * 1e-12, so 0.7 + 0.3 passes whatever its rounding), else XB_EINPUT. *n_lrs, *n_hrs (may be NULL)
 * receive the counts. */
int xb_perturb_stuck_at(gsl_rng *rng, double *g, size_t n, double p_lrs, double g_lrs, double p_hrs,
                        double g_hrs, size_t *n_lrs, size_t *n_hrs, xb_error *err);

#endif
