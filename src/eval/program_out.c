// program_out: `xbarsim program` after its options: program a built chip and write its results folder
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
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
static int write_calibration(const char *out, const xb_calib *cal, const xb_device *dev, const xb_program_result *pr,
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
    xb_figure *f = xb_figure_new("calib-plot", "read currents per level: measured (steps) against programmed",
                                 "read current (A)", "CDF");
    if (!f)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the calibration figure");
    for (int l = 0; l < dev->n_levels && !rc; l++) {
        const xb_calib_fit *ft = xb_calib_level_fit(cal, l);
        if (!ft)
            continue;
        size_t np = 0, nm = cal->n[l];
        double *xp = level_reads(dev, pr, l, &np);
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
        rc = write_calibration(out, cal, dev, *pr, n_cal, err);
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
