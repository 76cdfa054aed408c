// igvva: behavioral simulation of the Incremental Gate Voltage with Verify write algorithm on 1T1R cells
#define _POSIX_C_SOURCE 200809L
#include "igvva.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "calib.h"

#include "fileio.h"

const char *xb_igvva_status_name(int status)
{
    switch (status) {
    case XB_IGVVA_OK: return "ok";
    case XB_IGVVA_UNDERSHOOT: return "undershoot";
    case XB_IGVVA_OVERSHOOT: return "overshoot";
    case XB_IGVVA_MAX_PULSES: return "max_pulses";
    case XB_IGVVA_BAD_ARGS: return "bad_args";
    default: return "unknown";
    }
}

static int noisy(const xb_device *d)
{
    return d->igvva.sigma_c2c > 0 || d->sigma_read > 0;
}

int xb_igvva_write_verify(const xb_device *d, double i_trg_A, gsl_rng *rng, int noisy, const xb_igvva_cell_ops *ops,
                          void *ctx, xb_igvva_result *r, xb_error *err)
{
    const xb_igvva_params *p = &d->igvva;
    const double sigma_read = d->sigma_read;
    const double lo = i_trg_A - p->tolerance_A, hi = i_trg_A + p->tolerance_A;
    /* Round-off in vg_start + k*step must not drop the last step that lands on vg_max. */
    const double vg_limit = p->vg_max_V + 1e-9 * p->vg_step_V;

    double g = 0, i_nf = 0; /* the cell's noise-free conductance and read */
    int rc = ops->reset(ctx, 0, &g, &i_nf, err);
    if (rc)
        return rc;
    r->g_S = g;
    r->i_read_A = i_nf;
    r->vg_final_V = 0.0;
    r->pulses = 0;
    r->attempts = 0;
    if ((noisy && !rng) || !isfinite(i_trg_A)) {
        r->status = XB_IGVVA_BAD_ARGS;
        return XB_OK;
    }

    int pulses = 0, status = XB_IGVVA_OK;
    double i_read = i_nf, vg = 0.0;
    for (int attempt = 1;; attempt++) {
        r->attempts = attempt;
        if ((rc = ops->reset(ctx, attempt, &g, &i_nf, err)))
            return rc;
        int overshot = 0;
        for (int k = 0;; k++) {
            double vg_k = p->vg_start_V + k * p->vg_step_V;
            if (vg_k > vg_limit) {
                status = XB_IGVVA_UNDERSHOOT;
                goto finish;
            }
            if (k >= p->max_pulses) {
                status = XB_IGVVA_MAX_PULSES;
                goto finish;
            }
            vg = vg_k;
            if ((rc = ops->set(ctx, vg, rng, &g, &i_nf, err)))
                return rc;
            pulses++;
            i_read = i_nf;
            if (sigma_read > 0)
                i_read *= 1.0 + sigma_read * gsl_ran_gaussian(rng, 1.0);
            if (i_read < lo)
                continue;
            if (i_read <= hi) {
                status = XB_IGVVA_OK;
                goto finish;
            }
            overshot = 1;
            break;
        }
        if (overshot && attempt > p->max_retries) {
            status = XB_IGVVA_OVERSHOOT;
            goto finish;
        }
    }
finish:
    r->g_S = g;
    r->i_read_A = i_read;
    r->vg_final_V = vg;
    r->pulses = pulses;
    r->status = status;
    return XB_OK;
}

/* The statistical cell: RESET to the HRS; a SET pulse at gate voltage vg sets the compliance
 * conductance k_n (vg - v_th)^2 / (2 v_c) with its cycle-to-cycle spread, and only grows the filament. */
static int stat_reset(void *ctx, int attempt, double *g, double *i, xb_error *err)
{
    (void)attempt;
    (void)err;
    const xb_device *d = ctx;
    *g = d->g_hrs_S; /* the first attempt starts from HRS as well */
    *i = *g * d->v_read_V;
    return XB_OK;
}

static int stat_set(void *ctx, double vg, gsl_rng *rng, double *g, double *i, xb_error *err)
{
    (void)err;
    const xb_device *d = ctx;
    const xb_igvva_params *p = &d->igvva;
    double ov = vg - p->v_th_V;
    double g_set = ov > 0 ? 0.5 * p->k_n_A_per_V2 / p->v_c_V * ov * ov : 0.0;
    if (p->sigma_c2c > 0)
        g_set *= 1.0 + p->sigma_c2c * gsl_ran_gaussian(rng, 1.0);
    if (g_set < d->g_hrs_S)
        g_set = d->g_hrs_S;
    if (g_set > *g)
        *g = g_set; /* a SET only grows the filament */
    *i = *g * d->v_read_V;
    return XB_OK;
}

void xb_igvva_program_cell(const xb_device *d, double i_trg_A, gsl_rng *rng, xb_igvva_result *r)
{
    static const xb_igvva_cell_ops stat_ops = {.reset = stat_reset, .set = stat_set};
    xb_error unused = {0}; /* the statistical cell cannot fail */
    xb_igvva_write_verify(d, i_trg_A, rng, noisy(d), &stat_ops, (void *)d, r, &unused);
}

/* ---- Calibration hook (calib.h): the programmed read current drawn from measurements ---------- */
static const xb_calib *calib_in_use;
static size_t *calib_count;

void xb_igvva_set_calibration(const xb_calib *c, size_t *n_calibrated)
{
    calib_in_use = c;
    calib_count = n_calibrated;
}

static void calibrate_reads(const xb_device *d, const double *i_trg_A, size_t n, gsl_rng *rng, xb_igvva_result *out)
{
    if (!calib_in_use || !rng)
        return;
    for (size_t i = 0; i < n; i++)
        for (int l = 0; l < d->n_levels; l++)
            if (fabs(i_trg_A[i] - d->i_trg_A[l]) <= 1e-9 * fabs(d->i_trg_A[l]) && xb_calib_level_fit(calib_in_use, l)) {
                out[i].i_read_A = xb_calib_draw(calib_in_use, l, rng);
                out[i].g_S = out[i].i_read_A / d->v_read_V;
                if (calib_count)
                    (*calib_count)++;
                break;
            }
}
/* ---- end of the calibration hook ---------------------------------------------------------------- */

int xb_igvva_program(const xb_device *d, const double *i_trg_A, size_t n, gsl_rng *rng, xb_igvva_result *out,
                     xb_igvva_stats *stats, xb_error *err)
{
    if (noisy(d) && !rng)
        return xb_fail(err, XB_EINPUT,
                       "IGVVA: sigma_c2c = %g and sigma_read = %g need a random generator; allowed: an rng, or zero noise",
                       d->igvva.sigma_c2c, d->sigma_read);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(i_trg_A[i]))
            return xb_fail(err, XB_EINPUT, "IGVVA: target of cell %zu is %g; allowed: a finite read current", i,
                           i_trg_A[i]);
    for (size_t i = 0; i < n; i++)
        xb_igvva_program_cell(d, i_trg_A[i], rng, &out[i]);
    calibrate_reads(d, i_trg_A, n, rng, out);
    if (stats)
        return xb_igvva_summarize(i_trg_A, out, n, stats, err);
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Running sums of one group; Welford for the spread of the reads. */
typedef struct accum {
    size_t n, n_ok;
    double sum_pulses, sum_attempts, mean, m2, sum_abs_err_ok, max_abs_err_ok;
} accum;

static void accum_add(accum *a, xb_igvva_group_stats *g, double trg, const xb_igvva_result *r)
{
    a->n++;
    g->n_cells++;
    if (r->status >= 0 && r->status < XB_IGVVA_N_STATUS)
        g->n_status[r->status]++;
    a->sum_pulses += r->pulses;
    a->sum_attempts += r->attempts;
    if (r->pulses > g->max_pulses)
        g->max_pulses = r->pulses;
    double delta = r->i_read_A - a->mean;
    a->mean += delta / (double)a->n;
    a->m2 += delta * (r->i_read_A - a->mean);
    if (r->status == XB_IGVVA_OK) {
        double e = fabs(r->i_read_A - trg);
        a->n_ok++;
        a->sum_abs_err_ok += e;
        if (e > a->max_abs_err_ok)
            a->max_abs_err_ok = e;
    }
}

static void accum_finish(const accum *a, xb_igvva_group_stats *g)
{
    double n = (double)a->n;
    g->mean_pulses = a->n ? a->sum_pulses / n : NAN;
    g->mean_attempts = a->n ? a->sum_attempts / n : NAN;
    g->mean_i_read_A = a->n ? a->mean : NAN;
    g->std_i_read_A = a->n > 1 ? sqrt(a->m2 / (n - 1)) : (a->n ? 0.0 : NAN);
    g->mean_abs_err_ok_A = a->n_ok ? a->sum_abs_err_ok / (double)a->n_ok : NAN;
    g->max_abs_err_ok_A = a->n_ok ? a->max_abs_err_ok : NAN;
}

/* Sorted distinct values of x[n] in a malloc'd array (*n_out of them). */
static double *distinct_sorted(const double *x, size_t n, size_t *n_out)
{
    double *u = malloc((n ? n : 1) * sizeof *u);
    if (!u)
        return NULL;
    memcpy(u, x, n * sizeof *u);
    qsort(u, n, sizeof *u, cmp_double);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || u[i] != u[m - 1])
            u[m++] = u[i];
    *n_out = m;
    return u;
}

static size_t find_sorted(const double *u, size_t m, double x)
{
    size_t lo = 0, hi = m;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (u[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int xb_igvva_summarize(const double *i_trg_A, const xb_igvva_result *res, size_t n, xb_igvva_stats *stats,
                       xb_error *err)
{
    memset(stats, 0, sizeof *stats);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(i_trg_A[i]))
            return xb_fail(err, XB_EINPUT, "IGVVA statistics: target of cell %zu is %g; allowed: finite", i, i_trg_A[i]);
    size_t m = 0;
    double *u = distinct_sorted(i_trg_A, n, &m);
    if (!u)
        return xb_fail(err, XB_ENOMEM, "IGVVA statistics: out of memory for %zu cells", n);
    if (m > XB_IGVVA_MAX_GROUPS) {
        free(u);
        return xb_fail(err, XB_EINPUT, "IGVVA statistics: %zu distinct targets; allowed: at most %d (quantize first)", m,
                       XB_IGVVA_MAX_GROUPS);
    }
    accum acc[XB_IGVVA_MAX_GROUPS], all;
    memset(acc, 0, sizeof acc);
    memset(&all, 0, sizeof all);
    stats->n_groups = (int)m;
    for (size_t g = 0; g < m; g++)
        stats->group[g].i_trg_A = u[g];
    stats->all.i_trg_A = NAN;
    for (size_t i = 0; i < n; i++) {
        size_t g = find_sorted(u, m, i_trg_A[i]);
        accum_add(&acc[g], &stats->group[g], i_trg_A[i], &res[i]);
        accum_add(&all, &stats->all, i_trg_A[i], &res[i]);
        stats->n_pulses_total += (size_t)(res[i].pulses > 0 ? res[i].pulses : 0);
    }
    for (size_t g = 0; g < m; g++)
        accum_finish(&acc[g], &stats->group[g]);
    accum_finish(&all, &stats->all);
    free(u);
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* CSV output */

static int cmp_cdf_row(const void *a, const void *b)
{
    const xb_igvva_cdf_row *x = a, *y = b;
    if (x->trg_A != y->trg_A)
        return (x->trg_A > y->trg_A) - (x->trg_A < y->trg_A);
    return (x->i_read_A > y->i_read_A) - (x->i_read_A < y->i_read_A);
}

int xb_igvva_cdf_rows(const char *what, const double *i_trg_A, const xb_igvva_result *res, size_t n,
                      xb_igvva_cdf_row **out, xb_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(i_trg_A[i]) || !isfinite(res[i].i_read_A))
            return xb_fail(err, XB_EINPUT, "%s: cell %zu has target %g A and read %g A; allowed: finite values", what, i,
                           i_trg_A[i], res[i].i_read_A);
    xb_igvva_cdf_row *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu cells", what, n);
    for (size_t i = 0; i < n; i++) {
        rows[i].trg_A = i_trg_A[i];
        rows[i].i_read_A = res[i].i_read_A;
    }
    qsort(rows, n, sizeof *rows, cmp_cdf_row);
    *out = rows;
    return XB_OK;
}

int xb_igvva_write_cdf_csv(const char *path, const double *i_trg_A, const xb_igvva_result *res, size_t n,
                           xb_error *err)
{
    xb_igvva_cdf_row *rows;
    int rc = xb_igvva_cdf_rows(path, i_trg_A, res, n, &rows, err);
    if (rc)
        return rc;

    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, err))) {
        free(rows);
        return rc;
    }
    fprintf(f.fp, "level,i_trg_A,i_read_A,cdf\n");
    long level = -1;
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && rows[end].trg_A == rows[start].trg_A)
            end++;
        level++;
        double count = (double)(end - start);
        for (size_t i = start; i < end; i++)
            fprintf(f.fp, "%ld,%.17g,%.17g,%.17g\n", level, rows[i].trg_A, rows[i].i_read_A,
                    (double)(i - start + 1) / count);
        start = end;
    }
    free(rows);
    return xb_atomic_commit(&f, err);
}

int xb_igvva_pulse_range(const char *what, const xb_igvva_result *res, size_t n, int *lo_out, int *hi_out,
                         xb_error *err)
{
    int lo = 0, hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (res[i].pulses < 0)
            return xb_fail(err, XB_EINPUT, "%s: cell %zu has %d pulses; allowed: >= 0", what, i, res[i].pulses);
        if (hi < lo || res[i].pulses < lo)
            lo = res[i].pulses;
        if (res[i].pulses > hi)
            hi = res[i].pulses;
    }
    *lo_out = lo;
    *hi_out = hi;
    return XB_OK;
}

int xb_igvva_write_pulse_hist_csv(const char *path, const xb_igvva_result *res, size_t n, xb_error *err)
{
    int lo, hi;
    int rc = xb_igvva_pulse_range(path, res, n, &lo, &hi, err);
    if (rc)
        return rc;
    size_t bins = hi >= lo ? (size_t)(hi - lo + 1) : 0;
    size_t *count = calloc(bins ? bins : 1, sizeof *count);
    if (!count)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu bins", path, bins);
    for (size_t i = 0; i < n; i++)
        count[res[i].pulses - lo]++;

    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, err))) {
        free(count);
        return rc;
    }
    fprintf(f.fp, "pulses,count\n");
    for (size_t b = 0; b < bins; b++)
        fprintf(f.fp, "%d,%zu\n", lo + (int)b, count[b]);
    free(count);
    return xb_atomic_commit(&f, err);
}
