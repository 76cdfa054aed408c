// stats: rank statistics (Spearman, Kruskal-Wallis) and the weighted logistic fit of accuracy against noise
#ifndef XB_STATS_H
#define XB_STATS_H

#include <stddef.h>

#include "error.h"

/* All arrays belong to the caller; nothing here keeps a pointer past the call or touches global state
 * (GSL's error handler included). */

/* Ranks 1..n of x (ties get the average of their ranks) into rank[n]; returns the tie term
 * sum over tie groups of (t^3 - t). x must not hold NaN. O(n log n) (stable merge sort); returns NaN,
 * with rank untouched, only if its n-element index scratch cannot be allocated. */
double xb_rank_average(const double *x, size_t n, double *rank);

/* Spearman's rank correlation of n >= 3 pairs (ties averaged: Pearson correlation of the ranks) and
 * its two-sided p-value from Student's t with n-2 degrees of freedom, t = rho sqrt((n-2)/(1-rho^2))
 * (the approximation scipy.stats.spearmanr uses; p = 0 when |rho| = 1). rho and p are NaN when x
 * or y is constant. XB_EINPUT for n < 3 or non-finite values, naming what is wrong. */
int xb_spearman(const double *x, const double *y, size_t n, double *rho, double *p, xb_error *err);

/* Kruskal-Wallis H test: n values x[i] in groups group[i] in 0..k-1. H with the tie correction
 * H / (1 - sum(t^3 - t) / (N^3 - N)), p from the chi-square distribution with (non-empty groups - 1)
 * degrees of freedom. *df receives that. XB_EINPUT for fewer than 2 non-empty groups, a group index out
 * of range, or non-finite values. All values equal: H = 0, p = 1 (scipy.stats.kruskal raises there).
 * Empty groups are allowed and ignored. */
int xb_kruskal_wallis(const double *x, const int *group, size_t n, int k, double *H, double *p, int *df,
                      xb_error *err);

/* The midpoint noise level of "On Hardening DNNs against noisy computations": fit
 *   F(sigma) = 2 delta_a / (1 + exp((sigma - mu) / s)) + a_min
 * to n >= 5 observations (sigma_i, y_i) with uncertainties dy_i > 0 by weighted nonlinear least squares
 * (GSL gsl_multifit_nlinear, trust region with Levenberg-Marquardt, weights 1/dy^2, analytic Jacobian).
 * Start: a_min = min y, delta_a = (max y - min y)/2, mu = the sigma where y first crosses
 * a_min + delta_a (linear interpolation, scanning in increasing sigma), s = (max sigma - min sigma)/10.
 *
 * s is constrained to s > 0 (accuracy falls with noise): the fit runs on log s. The minimum is the same
 * as an unconstrained fit's whenever that one has s > 0, and s_err = s * err(log s) equals the error a fit
 * on s itself would report there (the reparametrisation only rescales one Jacobian column). A curve that
 * rises with sigma comes out as delta_a < 0 with a_min its upper plateau.
 * Parameter errors: sqrt of the covariance diagonal (gsl_multifit_nlinear_covar) times
 * c = max(1, sqrt(chi2/dof)) as in GSL's documented example.
 *
 * Returns XB_EINPUT for n < 5, non-finite values, dy <= 0 or all sigma equal; XB_ERUNTIME when the fit
 * fails: the solver stops with an error, the result is not finite, or the Jacobian at the solution is
 * rank-deficient (parameters not identifiable, e.g. flat y or a step narrower than the sigma spacing).
 * If the solver stops without meeting its tolerances (iteration limit, no further progress) but the
 * result is finite and identifiable, it returns XB_OK with converged = 0. On error every double in
 * *fit is NaN. */
typedef struct xb_logistic_fit {
    double mu, s, delta_a, a_min;
    double mu_err, s_err, delta_a_err, a_min_err;
    double chi2;        /* weighted sum of squared residuals at the solution */
    size_t dof;         /* n - 4 */
    int iterations;
    int converged;      /* 1 if GSL reported convergence */
} xb_logistic_fit;
int xb_logistic_fit_run(const double *sigma, const double *y, const double *dy, size_t n, xb_logistic_fit *fit,
                        xb_error *err);

/* F(sigma) of a fit; finite for every finite sigma (no overflow far out in the tails). */
double xb_logistic_eval(const xb_logistic_fit *f, double sigma);

#endif
