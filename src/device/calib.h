// calib: calibration of the programmed read currents from measurements: per-level empirical or fitted distributions
//
// A measured file (CSV, docs/device-layer.md "Calibration from measurements"): one header row
// `level,i_read_A`, then one row per measured cell: the level index (0-based, into the device's IGVVA
// read-current targets, ascending) and the cell's read current in amperes at the device's read voltage.
// Every level with data needs at least 2 cells; levels without data keep the model's own spread.
// With a calibration in use, IGVVA (igvva.c) still runs its write-verify for the pulse statistics, and
// then the cell's final read current is drawn from its level's calibrated distribution:
//   empirical: one of the measured currents of the level, uniformly at random (resampling);
//   normal:    N(mean, sd) with the maximum-likelihood mean and sd (divisor n), redrawn while <= 0;
//   lognormal: exp(N(mu, sigma)) with mu, sigma the maximum-likelihood mean and sd of ln I.
// Goodness of fit: the Kolmogorov-Smirnov statistic D (one sample against the fitted CDF, two samples
// against the programmed cells) and its asymptotic p-value (Stephens' form of the Kolmogorov
// distribution). With parameters fitted to the same data the one-sample p-value is optimistic
// (Lilliefors); it is reported as a guide. Ownership: xb_calib_load's result is the caller's
// (xb_calib_free); the igvva hook borrows it.
#ifndef XB_CALIB_H
#define XB_CALIB_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "error.h"

#define XB_CALIB_MAX_LEVELS 64
#define XB_CALIB_MAX_ROWS 1000000

typedef enum { XB_CALIB_EMPIRICAL = 0, XB_CALIB_NORMAL = 1, XB_CALIB_LOGNORMAL = 2 } xb_calib_model;

/* Fitted parameters of one level (what a compact model's spread can be fitted to). */
typedef struct xb_calib_fit {
    size_t n;                  /* measured cells */
    double mean_A, sd_A;       /* normal, maximum likelihood (sd with divisor n) */
    double mu_ln, sigma_ln;    /* lognormal: of ln(I / 1 A), maximum likelihood */
    double ks_d_normal, ks_p_normal;       /* measured against the fitted normal CDF */
    double ks_d_lognormal, ks_p_lognormal; /* measured against the fitted lognormal CDF */
} xb_calib_fit;

typedef struct xb_calib {
    char path[4096];
    xb_calib_model model;
    int n_levels;                          /* the device's levels */
    size_t n[XB_CALIB_MAX_LEVELS];         /* measured cells per level (0: not calibrated) */
    double *i_A[XB_CALIB_MAX_LEVELS];      /* the measured currents of each level, ascending */
    xb_calib_fit fit[XB_CALIB_MAX_LEVELS];
} xb_calib;

/* "empirical", "normal", "lognormal" -> model; -1 if unknown. */
int xb_calib_model_parse(const char *s);
const char *xb_calib_model_name(xb_calib_model m);

/* Read the measured file at path for a device of n_levels levels and fit every level. XB_EINPUT naming
 * the file, the line and the field and what is allowed (header, level index, current: finite, above 0,
 * at most 1 A; a level with a single cell; more than XB_CALIB_MAX_ROWS rows); XB_ENOMEM. */
int xb_calib_load(const char *path, int n_levels, xb_calib_model model, xb_calib **out, xb_error *err);
void xb_calib_free(xb_calib **c);

/* The fitted parameters of level l (NULL when l has no data): the function a compact model's spread is
 * fitted through. */
const xb_calib_fit *xb_calib_level_fit(const xb_calib *c, int l);

/* A read current of level l drawn from the calibrated distribution (NaN when l has no data). */
double xb_calib_draw(const xb_calib *c, int l, gsl_rng *rng);

/* The calibrated model's CDF at i_A for level l (empirical: the measured ECDF). */
double xb_calib_cdf(const xb_calib *c, int l, double i_A);

/* Kolmogorov-Smirnov: D of sorted x[n] against a continuous cdf(x, ctx); D of two sorted samples; and the
 * asymptotic p-value of D for an effective size ne (n, or n m / (n + m)): Q_KS((sqrt(ne) + 0.12 +
 * 0.11 / sqrt(ne)) D), Q_KS(t) = 2 sum_k (-1)^(k-1) exp(-2 k^2 t^2). */
double xb_ks_one_sample(const double *x, size_t n, double (*cdf)(double x, const void *ctx), const void *ctx);
double xb_ks_two_sample(const double *x, size_t n, const double *y, size_t m);
double xb_ks_pvalue(double d, double ne);

/* The hook in igvva.c: while a calibration is set (not NULL), xb_igvva_program runs the write-verify of
 * every cell as always (pulses, attempts, status) and then, cell by cell in order, replaces the final
 * read current of each cell whose target is level l of the device (within 1e-9 relative) and l has data
 * by xb_calib_draw(c, l, rng), and its conductance by that current / v_read; *n_calibrated (may be NULL)
 * counts those cells. One setting per process (the `program` command sets it around its run and clears
 * it); it borrows c. Defined in igvva.c. */
void xb_igvva_set_calibration(const xb_calib *c, size_t *n_calibrated);

#endif
