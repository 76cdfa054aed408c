// igvva_plot: figures of programming results: the CDF of final read currents per level, pulses per cell
#include "igvva_plot.h"

#include <stdio.h>
#include <stdlib.h>

#include "plot.h"

/* Rows [start, end) of one level as a step series from 0 (x in uA); method (NULL: none) leads its label. */
static int add_level(xb_figure *f, const xb_igvva_cdf_row *rows, size_t start, size_t end, const char *method,
                     double *x, double *y)
{
    size_t count = end - start;
    /* Steps hold each value until the next point: start at 0 so the first cell's jump shows. */
    x[0] = rows[start].i_read_A * 1e6;
    y[0] = 0;
    for (size_t i = start; i < end; i++) {
        x[i - start + 1] = rows[i].i_read_A * 1e6;
        y[i - start + 1] = (double)(i - start + 1) / (double)count;
    }
    char label[128];
    if (method)
        snprintf(label, sizeof label, "%s, I_trg = %.4g uA (%zu cells)", method, rows[start].trg_A * 1e6, count);
    else
        snprintf(label, sizeof label, "I_trg = %.4g uA (%zu cells)", rows[start].trg_A * 1e6, count);
    return xb_figure_add(f, label, XB_PLOT_STEPS, x, y, NULL, NULL, count + 1);
}

/* The CDF figure of one programming (res_b NULL) or of two methods on the same cells, level by level. */
static int cdf_figure(const char *dir, const char *name, const char *title, const double *i_trg_A,
                      const xb_igvva_result *res_a, const char *label_a, const xb_igvva_result *res_b,
                      const char *label_b, size_t n, int render, xb_error *err)
{
    char what[4400];
    snprintf(what, sizeof what, "%s/%s", dir, name);
    xb_igvva_cdf_row *ra = NULL, *rb = NULL;
    int rc = xb_igvva_cdf_rows(what, i_trg_A, res_a, n, &ra, err);
    if (rc || (res_b && (rc = xb_igvva_cdf_rows(what, i_trg_A, res_b, n, &rb, err)))) {
        free(ra);
        return rc;
    }
    /* One series at a time: its x (uA) and y, with room for the leading zero. */
    double *x = malloc((n + 1) * sizeof *x), *y = malloc((n + 1) * sizeof *y);
    xb_figure *f = xb_figure_new(name, title, "final verify read current (uA)", "fraction of the level's cells");
    if (!x || !y || !f) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu cells", what, n);
        goto done;
    }
    /* Sorted by target first: with two methods the levels' row ranges are the same in both. */
    size_t levels = 0;
    for (size_t start = 0; start < n && !rc;) {
        size_t end = start;
        while (end < n && ra[end].trg_A == ra[start].trg_A)
            end++;
        if (++levels > XB_IGVVA_MAX_GROUPS) {
            rc = xb_fail(err, XB_EINPUT, "%s: more than %d distinct targets; allowed: at most %d levels in one plot "
                         "(quantize first)", what, XB_IGVVA_MAX_GROUPS, XB_IGVVA_MAX_GROUPS);
            break;
        }
        rc = add_level(f, ra, start, end, label_a, x, y);
        if (!rc && rb && !(rc = add_level(f, rb, start, end, label_b, x, y))) {
            xb_figure_same_colour(f);
            xb_figure_dashed(f);
        }
        start = end;
    }
    if (!rc)
        rc = xb_figure_write(f, dir, render, err);
done:
    xb_figure_free(&f);
    free(ra);
    free(rb);
    free(x);
    free(y);
    return rc;
}

int xb_plot_igvva_cdf(const char *dir, const char *name, const double *i_trg_A, const xb_igvva_result *res,
                      size_t n, int render, xb_error *err)
{
    return cdf_figure(dir, name, "IGVVA: cumulative distribution of final read currents per level", i_trg_A, res, NULL,
                      NULL, NULL, n, render, err);
}

int xb_plot_igvva_cdf_compare(const char *dir, const char *name, const double *i_trg_A, const xb_igvva_result *res_a,
                              const char *label_a, const xb_igvva_result *res_b, const char *label_b, size_t n,
                              int render, xb_error *err)
{
    return cdf_figure(dir, name, "IGVVA: final read currents per level, two programming methods", i_trg_A, res_a,
                      label_a, res_b, label_b, n, render, err);
}

int xb_plot_igvva_pulses(const char *dir, const char *name, const xb_igvva_result *res, size_t n,
                                   int render, xb_error *err)
{
    char what[4400];
    snprintf(what, sizeof what, "%s/%s", dir, name);
    int lo, hi;
    int rc = xb_igvva_pulse_range(what, res, n, &lo, &hi, err);
    if (rc)
        return rc;
    size_t bins = hi >= lo ? (size_t)(hi - lo + 1) : 0;
    /* Outline: (lo - 0.5, 0), each bin's left edge at its count, then (hi + 0.5, 0) to close it. */
    double *x = malloc((bins + 2) * sizeof *x), *y = calloc(bins + 2, sizeof *y);
    xb_figure *f = xb_figure_new(name, "IGVVA: SET pulses per cell", "SET pulses (all attempts)", "cells");
    if (!x || !y || !f) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu bins", what, bins);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        y[(size_t)(res[i].pulses - lo) + 1] += 1;
    x[0] = lo - 0.5;
    y[0] = 0;
    for (size_t b = 0; b < bins; b++)
        x[b + 1] = lo + (double)b - 0.5;
    x[bins + 1] = hi + 0.5;
    y[bins + 1] = 0;
    char label[64];
    snprintf(label, sizeof label, "all programmed cells (%zu)", n);
    rc = xb_figure_add(f, label, XB_PLOT_STEPS, x, y, NULL, NULL, bins ? bins + 2 : 0);
    if (!rc)
        rc = xb_figure_write(f, dir, render, err);
done:
    xb_figure_free(&f);
    free(x);
    free(y);
    return rc;
}
