// stats: rank statistics (Spearman, Kruskal-Wallis) and the weighted logistic fit of accuracy against noise
#include "stats.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_vector.h>

/* ---- ranks ---- */

/* Stable bottom-up merge sort of the indices 0..n-1 by x into idx, using tmp (n elements) as scratch.
 * Equal keys keep their index order, so the result does not depend on the sort's internals. */
static void sort_index(const double *x, size_t n, size_t *idx, size_t *tmp)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    size_t *src = idx, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = n - lo > width ? lo + width : n;
            size_t hi = n - mid > width ? mid + width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                dst[o++] = x[src[b]] < x[src[a]] ? src[b++] : src[a++];
            while (a < mid)
                dst[o++] = src[a++];
            while (b < hi)
                dst[o++] = src[b++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof *idx);
}

/* Average ranks of x into rank and the tie term into *tie; XB_ENOMEM if the scratch cannot be had. */
static int rank_average(const double *x, size_t n, double *rank, double *tie)
{
    *tie = 0;
    if (n == 0)
        return XB_OK;
    if (n > SIZE_MAX / (2 * sizeof(size_t)))
        return XB_ENOMEM;
    size_t *idx = malloc(2 * n * sizeof *idx);
    if (!idx)
        return XB_ENOMEM;
    sort_index(x, n, idx, idx + n);
    double tie_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && x[idx[j]] == x[idx[i]])
            j++;
        /* Sorted positions i..j-1 hold ranks i+1..j; their mean is exact in double for n < 2^52. */
        double r = 0.5 * ((double)(i + 1) + (double)j);
        for (size_t m = i; m < j; m++)
            rank[idx[m]] = r;
        double t = (double)(j - i);
        tie_sum += t * t * t - t;
        i = j;
    }
    free(idx);
    *tie = tie_sum;
    return XB_OK;
}

double xb_rank_average(const double *x, size_t n, double *rank)
{
    double tie;
    return rank_average(x, n, rank, &tie) == XB_OK ? tie : NAN;
}

static int check_finite(const double *v, size_t n, const char *what, const char *fn, xb_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return xb_fail(err, XB_EINPUT, "%s: %s[%zu] = %g is not finite; drop or fix that observation", fn,
                           what, i, v[i]);
    return XB_OK;
}

/* ---- Spearman ---- */

int xb_spearman(const double *x, const double *y, size_t n, double *rho, double *p, xb_error *err)
{
    if (n < 3)
        return xb_fail(err, XB_EINPUT, "spearman: %zu pairs given, at least 3 are needed for a p-value", n);
    int rc = check_finite(x, n, "x", "spearman", err);
    if (!rc)
        rc = check_finite(y, n, "y", "spearman", err);
    if (rc)
        return rc;
    double *rx = malloc(2 * n * sizeof *rx);
    if (!rx)
        return xb_fail(err, XB_ENOMEM, "spearman: out of memory ranking %zu pairs", n);
    double *ry = rx + n, tx, ty;
    if (rank_average(x, n, rx, &tx) || rank_average(y, n, ry, &ty)) {
        free(rx);
        return xb_fail(err, XB_ENOMEM, "spearman: out of memory ranking %zu pairs", n);
    }
    /* Ranks average (n + 1) / 2 exactly, whatever the ties. */
    double mean = 0.5 * ((double)n + 1), sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = rx[i] - mean, dy = ry[i] - mean;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    free(rx);
    if (sxx == 0 || syy == 0) {
        *rho = NAN;
        *p = NAN;
        return XB_OK;
    }
    /* sqrt(sxx syy) rather than sqrt(sxx) sqrt(syy): for a perfect ranking sxy = sxx = syy and
     * sqrt(fl(a * a)) = a exactly, so |rho| = 1 comes out exactly (scipy's form gives 1 - 1e-16). */
    double r = sxy / sqrt(sxx * syy);
    r = fmax(-1.0, fmin(1.0, r));
    *rho = r;
    if (fabs(r) == 1) {
        *p = 0;
        return XB_OK;
    }
    double dof = (double)(n - 2);
    /* (1 + r)(1 - r) rather than 1 - r^2: no cancellation near |r| = 1, and it is scipy's form. */
    double t = r * sqrt(dof / ((1 + r) * (1 - r)));
    *p = fmin(1.0, 2 * gsl_cdf_tdist_Q(fabs(t), dof));
    return XB_OK;
}

/* ---- Kruskal-Wallis ---- */

int xb_kruskal_wallis(const double *x, const int *group, size_t n, int k, double *H, double *p, int *df,
                      xb_error *err)
{
    if (k < 2)
        return xb_fail(err, XB_EINPUT, "kruskal-wallis: %d groups declared, at least 2 are needed", k);
    int rc = check_finite(x, n, "x", "kruskal-wallis", err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (group[i] < 0 || group[i] >= k)
            return xb_fail(err, XB_EINPUT, "kruskal-wallis: group[%zu] = %d is outside 0..%d", i, group[i], k - 1);
    double *rank = malloc(n * sizeof *rank);
    double *rank_sum = calloc((size_t)k, sizeof *rank_sum);
    size_t *count = calloc((size_t)k, sizeof *count);
    double tie = 0;
    if (!rank || !rank_sum || !count || rank_average(x, n, rank, &tie)) {
        free(rank);
        free(rank_sum);
        free(count);
        return xb_fail(err, XB_ENOMEM, "kruskal-wallis: out of memory ranking %zu values in %d groups", n, k);
    }
    for (size_t i = 0; i < n; i++) {
        rank_sum[group[i]] += rank[i];
        count[group[i]]++;
    }
    int nonempty = 0;
    for (int g = 0; g < k; g++)
        nonempty += count[g] > 0;
    if (nonempty < 2) {
        free(rank);
        free(rank_sum);
        free(count);
        return xb_fail(err, XB_EINPUT, "kruskal-wallis: the %zu values fall in %d non-empty group%s, at least 2 "
                       "are needed", n, nonempty, nonempty == 1 ? "" : "s");
    }
    /* 12 / (N (N+1)) sum n_g (mean rank_g - (N+1)/2)^2 equals the textbook
     * 12 / (N (N+1)) sum R_g^2 / n_g - 3 (N+1) without its cancellation, and is never negative. */
    double N = (double)n, centre = 0.5 * (N + 1), ss = 0;
    for (int g = 0; g < k; g++) {
        if (!count[g])
            continue;
        double d = rank_sum[g] / (double)count[g] - centre;
        ss += (double)count[g] * d * d;
    }
    free(rank);
    free(rank_sum);
    free(count);
    *df = nonempty - 1;
    double correction = 1 - tie / (N * N * N - N);
    if (correction <= 0) {
        /* Every value equal: no rank differs from another, so no evidence of a difference. */
        *H = 0;
        *p = 1;
        return XB_OK;
    }
    *H = 12 / (N * (N + 1)) * ss / correction;
    *p = gsl_cdf_chisq_Q(*H, (double)*df);
    return XB_OK;
}

/* ---- logistic fit ---- */

enum { P_MU, P_LOG_S, P_DELTA_A, P_A_MIN, N_PARAMS };

/* g = 1 / (1 + exp(z)) and g (1 - g), from exp(-|z|) so that nothing overflows for any z. */
static void logistic_parts(double z, double *g, double *gg)
{
    double e = exp(-fabs(z));
    *g = z > 0 ? e / (1 + e) : 1 / (1 + e);
    *gg = e / ((1 + e) * (1 + e));
}

/* log s is kept where exp() neither overflows nor underflows; the fit never needs more. */
static double s_of(double log_s)
{
    return exp(fmax(-700.0, fmin(700.0, log_s)));
}

typedef struct logistic_data {
    const double *sigma, *y;
} logistic_data;

static int params_finite(const gsl_vector *x)
{
    for (size_t j = 0; j < N_PARAMS; j++)
        if (!isfinite(gsl_vector_get(x, j)))
            return 0;
    return 1;
}

/* Unweighted residuals F(sigma_i) - y_i; GSL applies the weights set by winit. */
static int logistic_f(const gsl_vector *x, void *data, gsl_vector *f)
{
    const logistic_data *d = data;
    if (!params_finite(x))
        return GSL_EDOM;
    double mu = gsl_vector_get(x, P_MU), s = s_of(gsl_vector_get(x, P_LOG_S));
    double da = gsl_vector_get(x, P_DELTA_A), a_min = gsl_vector_get(x, P_A_MIN);
    for (size_t i = 0; i < f->size; i++) {
        double g, gg;
        logistic_parts((d->sigma[i] - mu) / s, &g, &gg);
        gsl_vector_set(f, i, 2 * da * g + a_min - d->y[i]);
    }
    return GSL_SUCCESS;
}

/* dF/dmu = 2 da g(1-g) / s, dF/dlog s = 2 da g(1-g) z, dF/dda = 2 g, dF/da_min = 1 (z = (sigma - mu)/s). */
static int logistic_df(const gsl_vector *x, void *data, gsl_matrix *J)
{
    const logistic_data *d = data;
    if (!params_finite(x))
        return GSL_EDOM;
    double mu = gsl_vector_get(x, P_MU), s = s_of(gsl_vector_get(x, P_LOG_S));
    double da = gsl_vector_get(x, P_DELTA_A);
    for (size_t i = 0; i < J->size1; i++) {
        double z = (d->sigma[i] - mu) / s, g, gg;
        logistic_parts(z, &g, &gg);
        /* Far in a tail gg underflows to 0 while z may be infinite: the derivative is 0, not NaN. */
        double zgg = gg > 0 ? z * gg : 0;
        gsl_matrix_set(J, i, P_MU, 2 * da * gg / s);
        gsl_matrix_set(J, i, P_LOG_S, 2 * da * zgg);
        gsl_matrix_set(J, i, P_DELTA_A, 2 * g);
        gsl_matrix_set(J, i, P_A_MIN, 1);
    }
    return GSL_SUCCESS;
}

double xb_logistic_eval(const xb_logistic_fit *f, double sigma)
{
    double g, gg;
    logistic_parts((sigma - f->mu) / f->s, &g, &gg);
    return 2 * f->delta_a * g + f->a_min;
}

static void fit_clear(xb_logistic_fit *fit, size_t n)
{
    fit->mu = fit->s = fit->delta_a = fit->a_min = NAN;
    fit->mu_err = fit->s_err = fit->delta_a_err = fit->a_min_err = NAN;
    fit->chi2 = NAN;
    fit->dof = n >= N_PARAMS ? n - N_PARAMS : 0;
    fit->iterations = 0;
    fit->converged = 0;
}

/* The starting point documented in the header; idx is scratch for n indices sorted by sigma. */
static void logistic_start(const double *sigma, const double *y, size_t n, size_t *idx, double start[N_PARAMS])
{
    double y_min = y[0], y_max = y[0], s_min = sigma[0], s_max = sigma[0];
    for (size_t i = 1; i < n; i++) {
        y_min = fmin(y_min, y[i]);
        y_max = fmax(y_max, y[i]);
        s_min = fmin(s_min, sigma[i]);
        s_max = fmax(s_max, sigma[i]);
    }
    double da = 0.5 * (y_max - y_min), half = y_min + da;
    sort_index(sigma, n, idx, idx + n);
    double mu = sigma[idx[0]];
    for (size_t m = 0; m + 1 < n; m++) {
        size_t a = idx[m], b = idx[m + 1];
        double ya = y[a] - half, yb = y[b] - half;
        if (ya == 0) {
            mu = sigma[a];
            break;
        }
        if ((ya < 0) != (yb < 0) || yb == 0) {
            mu = sigma[a] + (half - y[a]) * (sigma[b] - sigma[a]) / (y[b] - y[a]);
            break;
        }
    }
    start[P_MU] = mu;
    start[P_LOG_S] = log((s_max - s_min) / 10);
    start[P_DELTA_A] = da;
    start[P_A_MIN] = y_min;
}

int xb_logistic_fit_run(const double *sigma, const double *y, const double *dy, size_t n, xb_logistic_fit *fit,
                        xb_error *err)
{
    static const char *fn = "logistic fit";
    fit_clear(fit, n);
    if (n < 5)
        return xb_fail(err, XB_EINPUT, "%s: %zu observations given, at least 5 are needed for 4 parameters and "
                       "an error estimate", fn, n);
    int rc = check_finite(sigma, n, "sigma", fn, err);
    if (!rc)
        rc = check_finite(y, n, "y", fn, err);
    if (!rc)
        rc = check_finite(dy, n, "dy", fn, err);
    if (rc)
        return rc;
    int spread = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(dy[i] > 0))
            return xb_fail(err, XB_EINPUT, "%s: uncertainty dy[%zu] = %g must be > 0", fn, i, dy[i]);
        spread |= sigma[i] != sigma[0];
    }
    if (!spread)
        return xb_fail(err, XB_EINPUT, "%s: all %zu noise levels equal %g; a curve needs at least two", fn, n,
                       sigma[0]);
    if (n > SIZE_MAX / (2 * sizeof(size_t)))
        return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu observations", fn, n);

    size_t *idx = malloc(2 * n * sizeof *idx);
    gsl_vector *x0 = gsl_vector_alloc(N_PARAMS), *wts = gsl_vector_alloc(n);
    gsl_matrix *covar = gsl_matrix_alloc(N_PARAMS, N_PARAMS);
    const gsl_multifit_nlinear_type *T = gsl_multifit_nlinear_trust;
    gsl_multifit_nlinear_parameters params = gsl_multifit_nlinear_default_parameters();
    params.trs = gsl_multifit_nlinear_trs_lm;
    gsl_multifit_nlinear_workspace *w = gsl_multifit_nlinear_alloc(T, &params, n, N_PARAMS);
    if (!idx || !x0 || !wts || !covar || !w) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu observations", fn, n);
        goto done;
    }
    double start[N_PARAMS];
    logistic_start(sigma, y, n, idx, start);
    for (size_t j = 0; j < N_PARAMS; j++)
        gsl_vector_set(x0, j, start[j]);
    for (size_t i = 0; i < n; i++)
        gsl_vector_set(wts, i, 1 / (dy[i] * dy[i]));

    logistic_data data = {sigma, y};
    gsl_multifit_nlinear_fdf fdf = {
        .f = logistic_f, .df = logistic_df, .fvv = NULL, .n = n, .p = N_PARAMS, .params = &data};
    int status = gsl_multifit_nlinear_winit(x0, wts, &fdf, w);
    if (status) {
        rc = xb_fail(err, XB_ERUNTIME, "%s: GSL could not start from mu = %g, s = %g: %s", fn, start[P_MU],
                     exp(start[P_LOG_S]), gsl_strerror(status));
        goto done;
    }
    /* xtol: relative step size; gtol: scaled gradient. Tight enough for ~1e-8 relative parameters. */
    const double xtol = 1e-10, gtol = 1e-10, ftol = 0;
    const size_t max_iter = 500;
    int info = 0;
    int solved = gsl_multifit_nlinear_driver(max_iter, xtol, gtol, ftol, NULL, NULL, &info, w);
    fit->iterations = (int)gsl_multifit_nlinear_niter(w);
    if (solved != GSL_SUCCESS && solved != GSL_EMAXITER && solved != GSL_ENOPROG) {
        rc = xb_fail(err, XB_ERUNTIME, "%s: the solver failed after %d iterations: %s", fn, fit->iterations,
                     gsl_strerror(solved));
        goto done;
    }
    const gsl_vector *x = gsl_multifit_nlinear_position(w);
    double mu = gsl_vector_get(x, P_MU), log_s = gsl_vector_get(x, P_LOG_S);
    double da = gsl_vector_get(x, P_DELTA_A), a_min = gsl_vector_get(x, P_A_MIN);
    if (!params_finite(x) || fabs(log_s) >= 700) {
        rc = xb_fail(err, XB_ERUNTIME, "%s: the solver ran off to mu = %g, log s = %g, delta_a = %g, a_min = %g; "
                     "the data do not look like a logistic step", fn, mu, log_s, da, a_min);
        goto done;
    }
    /* chi2 from the model itself rather than GSL's stored residual, so it means exactly what the header says. */
    xb_logistic_fit sol = {.mu = mu, .s = exp(log_s), .delta_a = da, .a_min = a_min};
    double chi2 = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (xb_logistic_eval(&sol, sigma[i]) - y[i]) / dy[i];
        chi2 += r * r;
    }
    /* A small relative tolerance so that an exactly or numerically vanishing Jacobian column (flat data,
     * a step between two sigma points) shows up as a zero variance instead of a huge one. */
    status = gsl_multifit_nlinear_covar(gsl_multifit_nlinear_jac(w), 1e-12, covar);
    double var[N_PARAMS];
    for (size_t j = 0; j < N_PARAMS; j++)
        var[j] = gsl_matrix_get(covar, j, j);
    if (status || !isfinite(chi2)) {
        rc = xb_fail(err, XB_ERUNTIME, "%s: no covariance at the solution: %s", fn,
                     status ? gsl_strerror(status) : "chi2 is not finite");
        goto done;
    }
    for (size_t j = 0; j < N_PARAMS; j++) {
        static const char *names[N_PARAMS] = {"mu", "s", "delta_a", "a_min"};
        if (!(var[j] > 0) || !isfinite(var[j])) {
            rc = xb_fail(err, XB_ERUNTIME, "%s: the Jacobian is rank-deficient at mu = %g, s = %g, delta_a = %g, "
                         "a_min = %g (%s is not determined by the data); the data show no resolvable step", fn,
                         mu, sol.s, da, a_min, names[j]);
            goto done;
        }
    }
    size_t dof = n - N_PARAMS;
    double c = fmax(1.0, sqrt(chi2 / (double)dof));
    fit->mu = mu;
    fit->s = sol.s;
    fit->delta_a = da;
    fit->a_min = a_min;
    fit->mu_err = c * sqrt(var[P_MU]);
    fit->s_err = sol.s * c * sqrt(var[P_LOG_S]);
    fit->delta_a_err = c * sqrt(var[P_DELTA_A]);
    fit->a_min_err = c * sqrt(var[P_A_MIN]);
    fit->chi2 = chi2;
    fit->dof = dof;
    fit->converged = solved == GSL_SUCCESS;
    rc = XB_OK;
done:
    if (rc) {
        int it = fit->iterations;
        fit_clear(fit, n);
        fit->iterations = it;
    }
    gsl_multifit_nlinear_free(w);
    gsl_matrix_free(covar);
    gsl_vector_free(wts);
    gsl_vector_free(x0);
    free(idx);
    return rc;
}
