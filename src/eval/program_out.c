// program_out: `xbarsim program` after its options: program a built chip and write its results folder
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "circuit_fit.h"
#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "json.h"
#include "plot.h"
#include "program_out.h"

static void json_group(xb_json *j, const char *key, const xb_igvva_group_stats *g)
{
    xb_json_object_begin(j, key);
    xb_json_number(j, "i_trg_A", g->i_trg_A);
    xb_json_int(j, "cells", (long long)g->n_cells);
    for (int s = 0; s < XB_IGVVA_N_STATUS; s++)
        xb_json_int(j, xb_igvva_status_name(s), (long long)g->n_status[s]);
    xb_json_number(j, "mean_pulses", g->mean_pulses);
    xb_json_int(j, "max_pulses", g->max_pulses);
    xb_json_number(j, "mean_attempts", g->mean_attempts);
    xb_json_number(j, "mean_i_read_A", g->mean_i_read_A);
    xb_json_number(j, "std_i_read_A", g->std_i_read_A);
    xb_json_number(j, "mean_abs_err_ok_A", g->mean_abs_err_ok_A);
    xb_json_number(j, "max_abs_err_ok_A", g->max_abs_err_ok_A);
    xb_json_object_end(j);
}

/* The CDF (when the targets fall on levels) and the pulse histogram as figures. Their data and scripts
 * are results and must be written; the pictures are a convenience: without gnuplot, or when gnuplot
 * fails on them, say so once on stderr and succeed. */
static int write_plots(const char *out, const xb_program_result *pr, xb_error *err)
{
    int render = xb_plot_can_render();
    const char *names[2] = {"cdf-plot", "pulses-plot"};
    char failed[sizeof err->msg] = "", written[64] = "";
    for (int k = pr->grouped ? 0 : 1; k < 2; k++) {
        xb_error perr = {0};
        char csv[4300], gp[4300];
        snprintf(csv, sizeof csv, "%s/%s.csv", out, names[k]);
        snprintf(gp, sizeof gp, "%s/%s.gp", out, names[k]);
        /* An earlier run's files would pass for this run's below. */
        remove(csv);
        remove(gp);
        int rc = k == 0 ? xb_plot_igvva_cdf(out, names[k], pr->i_trg_A, pr->res, pr->n_programmed, render, &perr)
                        : xb_plot_igvva_pulses(out, names[k], pr->res, pr->n_programmed, render, &perr);
        if (rc == XB_ERUNTIME && render && xb_is_file(csv) && xb_is_file(gp)) {
            /* gnuplot itself failed: the data and the script are in place. */
            if (!failed[0])
                snprintf(failed, sizeof failed, "%s", perr.msg);
            rc = XB_OK;
        }
        if (rc) {
            *err = perr;
            return rc;
        }
        size_t at = strlen(written);
        snprintf(written + at, sizeof written - at, "%s%s", at ? " and " : "", names[k]);
    }
    if (!render)
        fprintf(stderr, "xbarsim program: gnuplot (with svg and pngcairo) was not found: %s in %s/ have their data "
                "(.csv) and gnuplot scripts (.gp) but no pictures; install gnuplot-nox and run `gnuplot NAME.gp` "
                "there\n", written, out);
    else if (failed[0])
        fprintf(stderr, "xbarsim program: warning: gnuplot could not draw %s (%s); their data (.csv) and scripts "
                "(.gp) are in %s/\n", written, failed, out);
    return XB_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The programmed cells' reads of device level l, ascending (*n of them; the caller frees). */
static double *level_reads(const xb_device *dev, const xb_program_result *pr, int l, size_t *n)
{
    double *x = malloc((pr->n_programmed + 1) * sizeof *x);
    *n = 0;
    for (size_t k = 0; x && k < pr->n_programmed; k++)
        if (fabs(pr->i_trg_A[k] - dev->i_trg_A[l]) <= 1e-9 * fabs(dev->i_trg_A[l]))
            x[(*n)++] = pr->res[k].i_read_A;
    if (x)
        qsort(x, *n, sizeof *x, cmp_double);
    return x;
}

/* calib_fit.csv (per level: the fits, KS of measured against each fit and against the programmed
 * cells), calib_cdf.csv (measured and programmed ECDFs, the fitted model's CDF at the measured points),
 * the figure calib-plot and calib.json. */
/* The compared cells of each device level: the programmed chip's reads (statistical method), or the
 * spread fit's modelled reads at the fitted sigmas (circuit method, fit not NULL). */
typedef struct calib_cells {
    const xb_program_result *pr;        /* the chip's cells, or NULL */
    const xb_circuit_fit_result *fit;   /* the fit's cells at its best candidate, or NULL */
} calib_cells;

static double *compared_reads(const xb_device *dev, const calib_cells *cc, int l, size_t *n)
{
    if (cc->pr)
        return level_reads(dev, cc->pr, l, n);
    *n = 0;
    for (int j = 0; j < cc->fit->n_levels; j++)
        if (cc->fit->cand[cc->fit->best].level[j].level == l) {
            size_t m = (size_t)cc->fit->cells_per_level;
            double *x = malloc(m * sizeof *x);
            if (x) {
                memcpy(x, xb_circuit_fit_reads(cc->fit, cc->fit->best, j), m * sizeof *x);
                *n = m;
            }
            return x;
        }
    return calloc(1, sizeof(double));
}

static void json_spread_fit(xb_json *j, const xb_circuit_fit_result *fit);

static int write_calibration(const char *out, const xb_calib *cal, const xb_device *dev, const calib_cells *cc,
                             size_t n_cal, xb_error *err)
{
    char path[4200];
    xb_atomic_file fit, cdf;
    snprintf(path, sizeof path, "%s/calib_fit.csv", out);
    int rc = xb_atomic_open(&fit, path, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/calib_cdf.csv", out);
    if ((rc = xb_atomic_open(&cdf, path, err))) {
        xb_atomic_abort(&fit);
        return rc;
    }
    fprintf(fit.fp, "level,i_trg_A,n_measured,mean_A,sd_A,mu_ln,sigma_ln,ks_d_normal,ks_p_normal,ks_d_lognormal,"
                    "ks_p_lognormal,model,n_programmed,ks_d_programmed,ks_p_programmed\n");
    fprintf(cdf.fp, "level,source,i_read_A,cdf\n");
    xb_figure *f = xb_figure_new("calib-plot",
                                 cc->fit ? "read currents per level: measured (steps) against the circuit model at "
                                           "the fitted spread"
                                         : "read currents per level: measured (steps) against programmed",
                                 "read current (A)", "CDF");
    if (!f)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the calibration figure");
    for (int l = 0; l < dev->n_levels && !rc; l++) {
        const xb_calib_fit *ft = xb_calib_level_fit(cal, l);
        if (!ft)
            continue;
        size_t np = 0, nm = cal->n[l];
        double *xp = compared_reads(dev, cc, l, &np);
        double *ym = malloc(nm * sizeof *ym), *yp = malloc((np + 1) * sizeof *yp);
        if (!xp || !ym || !yp) {
            free(xp), free(ym), free(yp);
            rc = xb_fail(err, XB_ENOMEM, "out of memory for the calibration report");
            break;
        }
        double d2 = np ? xb_ks_two_sample(cal->i_A[l], nm, xp, np) : NAN;
        double p2 = np ? xb_ks_pvalue(d2, (double)nm * (double)np / (double)(nm + np)) : NAN;
        fprintf(fit.fp, "%d,%.17g,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%s,%zu,%.17g,%.17g\n", l,
                dev->i_trg_A[l], nm, ft->mean_A, ft->sd_A, ft->mu_ln, ft->sigma_ln, ft->ks_d_normal, ft->ks_p_normal,
                ft->ks_d_lognormal, ft->ks_p_lognormal, xb_calib_model_name(cal->model), np, d2, p2);
        for (size_t k = 0; k < nm; k++) {
            ym[k] = (double)(k + 1) / (double)nm;
            fprintf(cdf.fp, "%d,measured,%.17g,%.17g\n", l, cal->i_A[l][k], ym[k]);
        }
        for (size_t k = 0; k < np; k++) {
            yp[k] = (double)(k + 1) / (double)np;
            fprintf(cdf.fp, "%d,programmed,%.17g,%.17g\n", l, xp[k], yp[k]);
        }
        if (cal->model != XB_CALIB_EMPIRICAL)
            for (size_t k = 0; k < nm; k++)
                fprintf(cdf.fp, "%d,fitted,%.17g,%.17g\n", l, cal->i_A[l][k], xb_calib_cdf(cal, l, cal->i_A[l][k]));
        char label[96];
        snprintf(label, sizeof label, "level %d measured", l);
        xb_figure_add(f, label, XB_PLOT_STEPS, cal->i_A[l], ym, NULL, NULL, nm);
        snprintf(label, sizeof label, "level %d programmed (KS D %.3f, p %.2g)", l, d2, p2);
        xb_figure_add(f, label, XB_PLOT_STEPS, xp, yp, NULL, NULL, np);
        xb_figure_same_colour(f);
        free(xp), free(ym), free(yp);
    }
    if (rc) {
        xb_atomic_abort(&fit);
        xb_atomic_abort(&cdf);
        xb_figure_free(&f);
        return rc;
    }
    if ((rc = xb_atomic_commit(&fit, err))) {
        xb_atomic_abort(&cdf);
        xb_figure_free(&f);
        return rc;
    }
    if ((rc = xb_atomic_commit(&cdf, err))) {
        xb_figure_free(&f);
        return rc;
    }
    int render = xb_plot_can_render();
    xb_error perr = {0};
    rc = xb_figure_write(f, out, render, &perr);
    xb_figure_free(&f);
    if ((rc = xb_plot_tolerate(rc, render, &perr, "xbarsim program", "calib-plot", out, err)))
        return rc;
    snprintf(path, sizeof path, "%s/calib.json", out);
    xb_atomic_file jf;
    if ((rc = xb_atomic_open(&jf, path, err)))
        return rc;
    xb_json j;
    xb_json_init(&j, jf.fp);
    xb_json_object_begin(&j, NULL);
    xb_json_string(&j, "measurements", cal->path);
    xb_json_string(&j, "model", xb_calib_model_name(cal->model));
    xb_json_int(&j, "cells_calibrated", (long long)n_cal);
    if (cc->fit)
        json_spread_fit(&j, cc->fit);
    xb_json_string(&j, "ks_p_value", "asymptotic (Stephens); one-sample p-values against fitted parameters are "
                                     "optimistic (Lilliefors)");
    xb_json_array_begin(&j, "levels");
    for (int l = 0; l < dev->n_levels; l++) {
        const xb_calib_fit *ft = xb_calib_level_fit(cal, l);
        if (!ft)
            continue;
        xb_json_object_begin(&j, NULL);
        xb_json_int(&j, "level", l);
        xb_json_number(&j, "i_trg_A", dev->i_trg_A[l]);
        xb_json_int(&j, "n_measured", (long long)ft->n);
        xb_json_number(&j, "normal_mean_A", ft->mean_A);
        xb_json_number(&j, "normal_sd_A", ft->sd_A);
        xb_json_number(&j, "lognormal_mu", ft->mu_ln);
        xb_json_number(&j, "lognormal_sigma", ft->sigma_ln);
        xb_json_number(&j, "ks_d_normal", ft->ks_d_normal);
        xb_json_number(&j, "ks_p_normal", ft->ks_p_normal);
        xb_json_number(&j, "ks_d_lognormal", ft->ks_d_lognormal);
        xb_json_number(&j, "ks_p_lognormal", ft->ks_p_lognormal);
        xb_json_object_end(&j);
    }
    xb_json_array_end(&j);
    xb_json_object_end(&j);
    return xb_atomic_commit(&jf, err);
}

/* The spread fit in calib.json and circuit.json: its settings, the fitted sigmas and each candidate's
 * mean KS D. */
static void json_spread_fit(xb_json *j, const xb_circuit_fit_result *fit)
{
    const xb_circuit_fit_candidate *b = &fit->cand[fit->best];
    xb_json_object_begin(j, "spread_fit");
    xb_json_string(j, "score", "mean over calibrated levels of the two-sample KS D, measured against "
                               "g_S v_read (1 + sigma_read z) of cells programmed by circuit IGVVA");
    xb_json_int(j, "cells_per_level", fit->cells_per_level);
    xb_json_int(j, "levels", fit->n_levels);
    xb_json_int(j, "seed", (long long)fit->seed);
    xb_json_string(j, "rng", "mt19937, common random numbers per cell");
    xb_json_number(j, "sigma_ea_eV", fit->sigma_ea_eV);
    xb_json_number(j, "sigma_read", fit->sigma_read);
    xb_json_number(j, "mean_ks_d", b->mean_ks_d);
    if (fit->refined_param) {
        xb_json_string(j, "refined_param", fit->refined_param);
        xb_json_number(j, "refined", fit->refined);
    }
    xb_json_number(j, "seconds", fit->seconds);
    xb_json_array_begin(j, "candidates");
    for (int k = 0; k < fit->n_candidates; k++) {
        const xb_circuit_fit_candidate *c = &fit->cand[k];
        xb_json_object_begin(j, NULL);
        xb_json_number(j, "sigma_ea_eV", c->sigma_ea_eV);
        xb_json_number(j, "sigma_read", c->sigma_read);
        xb_json_number(j, "mean_ks_d", c->mean_ks_d);
        xb_json_int(j, "pulses", c->pulses);
        xb_json_number(j, "seconds", c->seconds);
        xb_json_object_end(j);
    }
    xb_json_array_end(j);
    xb_json_object_end(j);
}

void xb_program_json_spread_fit(xb_json *j, const xb_circuit_fit_result *fit)
{
    json_spread_fit(j, fit);
}

/* calib_spread.csv: one row per candidate and calibrated level. */
static int write_spread_csv(const char *out, const xb_circuit_fit_result *fit, xb_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/calib_spread.csv", out);
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "sigma_ea_eV,sigma_read,level,i_trg_A,n_measured,n_modelled,n_failed,mean_measured_A,sd_measured_A,"
                  "mean_modelled_A,sd_modelled_A,ks_d,ks_p,mean_ks_d,best\n");
    for (int k = 0; k < fit->n_candidates; k++) {
        const xb_circuit_fit_candidate *c = &fit->cand[k];
        for (int j = 0; j < fit->n_levels; j++) {
            const xb_circuit_fit_level *l = &c->level[j];
            fprintf(f.fp, "%.17g,%.17g,%d,%.17g,%zu,%zu,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%d\n",
                    c->sigma_ea_eV, c->sigma_read, l->level, l->i_trg_A, l->n_measured, l->n_modelled, l->n_failed,
                    l->mean_measured_A, l->sd_measured_A, l->mean_modelled_A, l->sd_modelled_A, l->ks_d, l->ks_p,
                    c->mean_ks_d, k == fit->best);
        }
    }
    return xb_atomic_commit(&f, err);
}

/* calib-spread-plot: the mean KS D against the candidate, one series per value of the other sigma. */
static int write_spread_plot(const char *out, const xb_circuit_fit_result *fit, xb_error *err)
{
    int nk = fit->n_candidates, nr = 1;
    while (nr < nk && fit->cand[nr].sigma_ea_eV == fit->cand[0].sigma_ea_eV)
        nr++;
    int ne = nk / nr, by_ea = ne >= 2;
    xb_figure *f = xb_figure_new("calib-spread-plot", "spread fit: measured against circuit-modelled reads",
                                 by_ea ? "sigma_ea_eV (eV)" : "sigma_read", "mean KS D over levels");
    double *x = malloc((size_t)nk * sizeof *x), *y = malloc((size_t)nk * sizeof *y);
    int rc = XB_OK;
    if (!f || !x || !y)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the spread-fit figure");
    for (int s = 0; !rc && s < (by_ea ? nr : 1); s++) {
        int n = 0;
        for (int k = 0; k < nk; k++)
            if (!by_ea || k % nr == s) {
                x[n] = by_ea ? fit->cand[k].sigma_ea_eV : fit->cand[k].sigma_read;
                y[n++] = fit->cand[k].mean_ks_d;
            }
        char label[96];
        if (by_ea)
            snprintf(label, sizeof label, "sigma_read %g", fit->cand[s].sigma_read);
        else
            snprintf(label, sizeof label, "sigma_ea_eV %g", fit->cand[0].sigma_ea_eV);
        xb_figure_add(f, label, XB_PLOT_ERRORLINES, x, y, NULL, NULL, (size_t)n);
    }
    if (!rc) {
        char label[96];
        snprintf(label, sizeof label, "fitted: %g", by_ea ? fit->sigma_ea_eV : fit->sigma_read);
        xb_figure_vline(f, by_ea ? fit->sigma_ea_eV : fit->sigma_read, label);
        int render = xb_plot_can_render();
        xb_error perr = {0};
        rc = xb_figure_write(f, out, render, &perr);
        rc = xb_plot_tolerate(rc, render, &perr, "xbarsim program", "calib-spread-plot", out, err);
    }
    xb_figure_free(&f);
    free(x);
    free(y);
    return rc;
}

int xb_program_write_spread_fit(const char *out, const xb_calib *cal, const xb_device *dev,
                                const xb_circuit_fit_result *fit, xb_error *err)
{
    int rc = write_spread_csv(out, fit, err);
    if (!rc)
        rc = write_spread_plot(out, fit, err);
    calib_cells cc = {.pr = NULL, .fit = fit};
    if (!rc)
        rc = write_calibration(out, cal, dev, &cc, 0, err);
    return rc;
}

int xb_program_run_spec(const xb_program_spec *s, xb_chip *chip, const xb_device *dev, gsl_rng *rng,
                        xb_provenance *prov, const char *out, xb_program_options *po, xb_program_result **pr,
                        xb_error *err)
{
    int rc;
    xb_program_defaults(dev, po);
    po->method = (xb_program_method)xb_program_method_parse(s->method);
    if (s->sigma_d2d >= 0)
        po->sigma_d2d = s->sigma_d2d;
    if (s->p_stuck_lrs >= 0)
        po->p_stuck_lrs = s->p_stuck_lrs;
    if (s->p_stuck_hrs >= 0)
        po->p_stuck_hrs = s->p_stuck_hrs;
    if ((rc = xb_provenance_add_weights(prov, s->weights, err)) ||
        (rc = xb_provenance_add_input(prov, "device", s->device, NULL, err)))
        return rc;

    if (!s->quiet && po->method == XB_PROGRAM_IGVVA)
        fprintf(stderr, "programming %s with IGVVA (%s levels), seed %lu\n", s->weights, s->levels, s->seed);
    xb_calib *cal = NULL;
    size_t n_cal = 0;
    if (s->calib) {
        int model = xb_calib_model_parse(s->calib_model ? s->calib_model : "empirical");
        if (model < 0)
            return xb_fail(err, XB_EINPUT, "--calib-model '%s': expected empirical, normal or lognormal", s->calib_model);
        if (po->method != XB_PROGRAM_IGVVA)
            return xb_fail(err, XB_EINPUT, "--calib %s needs --program igvva (it replaces the IGVVA reads' spread)",
                           s->calib);
        if ((rc = xb_calib_load(s->calib, dev->n_levels, (xb_calib_model)model, &cal, err)) ||
            (rc = xb_provenance_add_input(prov, "calibration", s->calib, NULL, err))) {
            xb_calib_free(&cal);
            return rc;
        }
        xb_igvva_set_calibration(cal, &n_cal);
    }
    rc = xb_chip_program(chip, dev, po, rng, pr, err);
    xb_igvva_set_calibration(NULL, NULL);
    if (!rc)
        rc = xb_program_write_results(out, s, chip, dev, po, *pr, prov, err);
    if (!rc && cal) {
        calib_cells cc = {.pr = *pr, .fit = NULL};
        rc = write_calibration(out, cal, dev, &cc, n_cal, err);
        if (!s->quiet && !rc)
            fprintf(stderr, "calibration %s (%s): %zu cells' reads drawn from the measurements; calib_fit.csv, "
                    "calib_cdf.csv, calib-plot in %s/\n", s->calib, xb_calib_model_name(cal->model), n_cal, out);
    }
    xb_calib_free(&cal);
    return rc;
}

int xb_program_write_results(const char *out, const xb_program_spec *s, const xb_chip *chip, const xb_device *dev,
                             const xb_program_options *po, const xb_program_result *pr, const xb_provenance *prov,
                             xb_error *err)
{
    int rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/chip.npz", out);
    if ((rc = xb_chip_save(chip, path, err)))
        return rc;
    snprintf(path, sizeof path, "%s/tiles.csv", out);
    if ((rc = xb_chip_write_tile_map(chip, path, err)))
        return rc;
    snprintf(path, sizeof path, "%s/cells.csv", out);
    if ((rc = xb_program_write_cells_csv(path, chip, pr, err)))
        return rc;
    if (pr->grouped) {
        snprintf(path, sizeof path, "%s/cdf.csv", out);
        if ((rc = xb_igvva_write_cdf_csv(path, pr->i_trg_A, pr->res, pr->n_programmed, err)))
            return rc;
    }
    snprintf(path, sizeof path, "%s/pulses.csv", out);
    if ((rc = xb_igvva_write_pulse_hist_csv(path, pr->res, pr->n_programmed, err)))
        return rc;
    if (pr->n_programmed > 0 && (rc = write_plots(out, pr, err)))
        return rc;

    snprintf(path, sizeof path, "%s/program.json", out);
    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_string(&j, "method", s->method);
    xb_json_string(&j, "levels", s->levels);
    xb_json_string(&j, "norm", s->norm);
    xb_json_string(&j, "mapping", s->mapping);
    xb_json_string(&j, "bias", s->bias);
    xb_json_string(&j, "tile", s->tile);
    xb_json_number(&j, "v_read_V", dev->v_read_V);
    xb_json_number(&j, "g_min_S", chip->opt.g_min_S);
    xb_json_number(&j, "g_max_S", chip->opt.g_max_S);
    xb_json_int(&j, "cells", (long long)pr->n_cells);
    xb_json_int(&j, "cells_programmed", (long long)pr->n_programmed);
    xb_json_int(&j, "cells_failed", (long long)pr->n_failed);
    xb_json_int(&j, "pulses", (long long)pr->n_pulses);
    xb_json_number(&j, "sigma_d2d", po->sigma_d2d);
    xb_json_int(&j, "stuck_lrs", (long long)pr->n_stuck_lrs);
    xb_json_int(&j, "stuck_hrs", (long long)pr->n_stuck_hrs);
    xb_json_number(&j, "seconds_programming", pr->seconds);
    if (pr->grouped) {
        xb_json_array_begin(&j, "levels_stats");
        for (int g = 0; g < pr->stats.n_groups; g++)
            json_group(&j, NULL, &pr->stats.group[g]);
        xb_json_array_end(&j);
    }
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}
