// program_out: `xbarsim program` after its options: program a built chip and write its results folder
#include <stdio.h>
#include <string.h>

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
    if ((rc = xb_chip_program(chip, dev, po, rng, pr, err)))
        return rc;
    return xb_program_write_results(out, s, chip, dev, po, *pr, prov, err);
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
