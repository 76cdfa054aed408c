// circuit_fit: fit the compact model's spread (sigma_ea_eV, sigma_read) to measured read currents per level
#include "circuit_fit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "program_circuit.h"
#include "progress.h"

int xb_circuit_fit_parse_grid(const char *opt, const char *s, double lo, double hi, double *v, int cap, int *n,
                              xb_error *err)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !isfinite(x) || (*end && *end != ','))
            return xb_fail(err, XB_EINPUT, "%s '%s': value %d is not a finite number; allowed: a comma-separated list of "
                           "finite numbers %g to %g, strictly ascending", opt, s, *n + 1, lo, hi);
        if (x < lo || x > hi)
            return xb_fail(err, XB_EINPUT, "%s '%s': value %d (%g) is out of range; allowed: %g to %g", opt, s, *n + 1,
                           x, lo, hi);
        if (*n > 0 && !(x > v[*n - 1]))
            return xb_fail(err, XB_EINPUT, "%s '%s': value %d (%g) does not exceed the one before (%g); allowed: "
                           "strictly ascending values, each once", opt, s, *n + 1, x, v[*n - 1]);
        if (*n == cap)
            return xb_fail(err, XB_EINPUT, "%s '%s': more than %d values; allowed: 1 to %d", opt, s, cap, cap);
        v[(*n)++] = x;
        if (!*end)
            return XB_OK;
        p = end + 1;
    }
}

static int check_grid(const char *opt, const double *v, int n, double hi, xb_error *err)
{
    if (n > XB_CIRCUIT_FIT_MAX_GRID)
        return xb_fail(err, XB_EINPUT, "%s: %d values; allowed: 1 to %d", opt, n, XB_CIRCUIT_FIT_MAX_GRID);
    for (int k = 0; k < n; k++) {
        if (!isfinite(v[k]) || v[k] < 0 || v[k] > hi)
            return xb_fail(err, XB_EINPUT, "%s: value %d is %g; allowed: finite, 0 to %g", opt, k + 1, v[k], hi);
        if (k > 0 && !(v[k] > v[k - 1]))
            return xb_fail(err, XB_EINPUT, "%s: value %d (%g) does not exceed the one before (%g); allowed: strictly "
                           "ascending values, each once", opt, k + 1, v[k], v[k - 1]);
    }
    return XB_OK;
}

int xb_circuit_fit_check(const xb_device *dev, const xb_calib *cal, const xb_circuit_fit_options *o,
                         const char *opt_ea, const char *opt_read, const char *opt_cells, xb_error *err)
{
    int rc;
    if (o->grid_ea && o->n_ea > 0 && (rc = check_grid(opt_ea, o->grid_ea, o->n_ea, XB_CIRCUIT_FIT_MAX_SIGMA_EA, err)))
        return rc;
    if (o->grid_read && o->n_read > 0 &&
        (rc = check_grid(opt_read, o->grid_read, o->n_read, XB_CIRCUIT_FIT_MAX_SIGMA_READ, err)))
        return rc;
    if (o->cells_per_level < 2 || o->cells_per_level > XB_CIRCUIT_FIT_MAX_CELLS)
        return xb_fail(err, XB_EINPUT, "%s: %d; allowed: 2 to %d cells per calibrated level", opt_cells,
                       o->cells_per_level, XB_CIRCUIT_FIT_MAX_CELLS);
    if (!cal || cal->n_levels != dev->n_levels)
        return xb_fail(err, XB_EINPUT, "spread fit: the calibration is for %d levels, the device has %d",
                       cal ? cal->n_levels : 0, dev->n_levels);
    for (int l = 0; l < dev->n_levels; l++)
        if (cal->n[l] >= 2)
            return XB_OK;
    return xb_fail(err, XB_EINPUT, "spread fit: %s measures no level; allowed: at least one level with 2 or more cells",
                   cal->path);
}

void xb_circuit_fit_result_free(xb_circuit_fit_result *r)
{
    if (!r)
        return;
    for (int k = 0; r->cand && k < r->n_candidates; k++)
        free(r->cand[k].i_model_A);
    free(r->cand);
    r->cand = NULL;
    r->n_candidates = 0;
}

const double *xb_circuit_fit_reads(const xb_circuit_fit_result *r, int k, int j)
{
    if (!r || k < 0 || k >= r->n_candidates || j < 0 || j >= r->n_levels || !r->cand[k].i_model_A)
        return NULL;
    return r->cand[k].i_model_A + (size_t)j * (size_t)r->cells_per_level;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void mean_sd(const double *x, size_t n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double m = n ? s / (double)n : NAN;
    for (size_t i = 0; i < n; i++)
        s2 += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n ? sqrt(s2 / (double)n) : NAN;
}

/* The vertex of the parabola through (x[b-1..b+1], y[...]) when it is well behaved, else NaN. */
static double parabola_vertex(const double *x, const double *y, int n, int b)
{
    if (b <= 0 || b >= n - 1)
        return NAN;
    double x0 = x[b - 1], x1 = x[b], x2 = x[b + 1], y0 = y[b - 1], y1 = y[b], y2 = y[b + 1];
    double d01 = (y1 - y0) / (x1 - x0), d12 = (y2 - y1) / (x2 - x1), a = (d12 - d01) / (x2 - x0);
    if (!(a > 0))
        return NAN;
    /* y = y0 + d01 (x - x0) + a (x - x0)(x - x1): the vertex where its derivative is 0. */
    double v = (x0 + x1) / 2 - d01 / (2 * a);
    return v > x0 && v < x2 ? v : NAN;
}

/* Program the fit's cells under one candidate (device d) and score them. */
static int run_candidate(const xb_device *d, const xb_calib *cal, const xb_circuit_fit_options *o, const int *lv,
                         int n_lv, const unsigned long *cell_seed, const double *z, gsl_rng *rng,
                         xb_circuit_fit_candidate *c, xb_error *err)
{
    xb_circuit_prog *p = NULL;
    int rc = xb_circuit_prog_new(d, o->log_path, &p, err);
    if (rc)
        return rc;
    size_t N = (size_t)o->cells_per_level;
    double sum_d = 0;
    for (int j = 0; j < n_lv && !rc; j++) {
        int l = lv[j];
        double *x = c->i_model_A + (size_t)j * N;
        xb_circuit_fit_level *fl = &c->level[j];
        memset(fl, 0, sizeof *fl);
        fl->level = l;
        fl->i_trg_A = d->i_trg_A[l];
        for (size_t i = 0; i < N && !rc; i++) {
            size_t cell = (size_t)j * N + i;
            xb_igvva_result res;
            gsl_rng_set(rng, cell_seed[cell]);
            if ((rc = xb_circuit_program_cells(p, &d->i_trg_A[l], 1, rng, &res, NULL, 0, err)))
                break;
            /* The measurement's read of the state programming left. */
            x[i] = res.g_S * d->v_read_V * (1 + d->sigma_read * z[cell]);
            c->pulses += res.pulses;
            fl->n_failed += res.status != XB_IGVVA_OK;
        }
        if (rc)
            break;
        qsort(x, N, sizeof *x, cmp_double);
        fl->n_measured = cal->n[l];
        fl->n_modelled = N;
        mean_sd(cal->i_A[l], cal->n[l], &fl->mean_measured_A, &fl->sd_measured_A);
        mean_sd(x, N, &fl->mean_modelled_A, &fl->sd_modelled_A);
        fl->ks_d = xb_ks_two_sample(cal->i_A[l], cal->n[l], x, N);
        fl->ks_p = xb_ks_pvalue(fl->ks_d, (double)cal->n[l] * (double)N / (double)(cal->n[l] + N));
        sum_d += fl->ks_d;
    }
    xb_circuit_prog_free(&p);
    c->mean_ks_d = sum_d / n_lv;
    return rc;
}

int xb_circuit_fit_spread(const xb_device *dev, const xb_calib *cal, const xb_circuit_fit_options *o,
                          xb_circuit_fit_result *r, xb_error *err)
{
    memset(r, 0, sizeof *r);
    r->refined = NAN;
    int rc = xb_circuit_fit_check(dev, cal, o, "sigma_ea_eV grid", "sigma_read grid", "cells per level", err);
    if (rc)
        return rc;
    double own_ea = dev->rram.sigma_ea_eV, own_read = dev->sigma_read;
    const double *ge = o->grid_ea && o->n_ea > 0 ? o->grid_ea : &own_ea;
    const double *gr = o->grid_read && o->n_read > 0 ? o->grid_read : &own_read;
    int ne = o->grid_ea && o->n_ea > 0 ? o->n_ea : 1, nr = o->grid_read && o->n_read > 0 ? o->n_read : 1;
    int lv[XB_CALIB_MAX_LEVELS], n_lv = 0;
    for (int l = 0; l < dev->n_levels; l++)
        if (cal->n[l] >= 2)
            lv[n_lv++] = l;
    size_t N = (size_t)o->cells_per_level, n_cells = (size_t)n_lv * N;
    r->n_levels = n_lv;
    r->cells_per_level = o->cells_per_level;
    r->seed = o->seed;
    r->n_candidates = ne * nr;
    r->cand = calloc((size_t)r->n_candidates, sizeof *r->cand);
    unsigned long *cell_seed = malloc(n_cells * sizeof *cell_seed);
    double *z = malloc(n_cells * sizeof *z), *score = malloc((size_t)r->n_candidates * sizeof *score);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *cell_rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r->cand || !cell_seed || !z || !score || !rng || !cell_rng) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the spread fit");
        goto done;
    }
    /* The common random numbers: a generator seed and a last-read normal per cell, the same for all. */
    gsl_rng_set(rng, o->seed);
    for (size_t i = 0; i < n_cells; i++) {
        cell_seed[i] = gsl_rng_get(rng);
        z[i] = gsl_ran_gaussian(rng, 1.0);
    }
    double t0 = xb_now();
    for (int a = 0; a < ne && !rc; a++)
        for (int b = 0; b < nr && !rc; b++) {
            int k = a * nr + b;
            xb_circuit_fit_candidate *c = &r->cand[k];
            c->sigma_ea_eV = ge[a];
            c->sigma_read = gr[b];
            if (!(c->i_model_A = malloc(n_cells * sizeof *c->i_model_A))) {
                rc = xb_fail(err, XB_ENOMEM, "out of memory for the spread fit");
                break;
            }
            xb_device d = *dev;
            d.rram.sigma_ea_eV = ge[a];
            d.sigma_read = gr[b];
            double tc = xb_now();
            if ((rc = run_candidate(&d, cal, o, lv, n_lv, cell_seed, z, cell_rng, c, err))) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                rc = xb_fail(err, rc, "spread fit, candidate %d of %d (sigma_ea_eV %g, sigma_read %g): %.900s", k + 1,
                             r->n_candidates, ge[a], gr[b], msg);
                break;
            }
            c->seconds = xb_now() - tc;
            score[k] = c->mean_ks_d;
            if (o->progress)
                fprintf(stderr, "spread fit: candidate %d of %d (sigma_ea_eV %g, sigma_read %g): mean KS D %.4f, "
                        "%ld pulses, %.1f s (%.1f s in all)\n", k + 1, r->n_candidates, ge[a], gr[b], c->mean_ks_d,
                        c->pulses, c->seconds, xb_now() - t0);
        }
    r->seconds = xb_now() - t0;
    if (rc)
        goto done;
    r->best = 0;
    for (int k = 1; k < r->n_candidates; k++)
        if (score[k] < score[r->best] - 1e-12)
            r->best = k;
    r->sigma_ea_eV = r->cand[r->best].sigma_ea_eV;
    r->sigma_read = r->cand[r->best].sigma_read;
    if (nr == 1 && ne >= 3) {
        r->refined_param = "sigma_ea_eV";
        r->refined = parabola_vertex(ge, score, ne, r->best);
    } else if (ne == 1 && nr >= 3) {
        r->refined_param = "sigma_read";
        r->refined = parabola_vertex(gr, score, nr, r->best);
    }
done:
    free(cell_seed);
    free(z);
    free(score);
    gsl_rng_free(rng);
    gsl_rng_free(cell_rng);
    return rc;
}
