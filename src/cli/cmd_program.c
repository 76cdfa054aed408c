// cmd_program: `xbarsim program`, write a network into simulated 1T1R cells with IGVVA write-verify
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "chipopts.h"
#include "cli.h"
#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "json.h"
#include "plot.h"
#include "program.h"
#include "progress.h"
#include "provenance.h"
#include "weights.h"

static const char usage[] =
    "usage: xbarsim program --weights FILE [options]\n"
    "\n"
    "Quantize a network's weights, map them onto 1T1R conductance targets in tiles, and program every\n"
    "cell with the IGVVA write-verify of the device file (gate-voltage staircase, stochastic SET outcomes,\n"
    "verify reads, RESET-and-retry on overshoot). Then apply device-to-device spread and stuck-at faults,\n"
    "drawn once into the map (stuck-at-LRS cells at the device file's g_lrs_S); for draws renewed in every\n"
    "Monte Carlo trial use `eval --perturb d2d:sigma=S` / `stuck:lrs=P,hrs=Q` instead.\n"
    "Cells whose target is the HRS stay RESET and take no pulse. Writes under the output folder:\n"
    "chip.npz (the conductance map, input to `eval --chip`), cells.csv (one row per programmed cell),\n"
    "tiles.csv (the tile map), cdf.csv (per level, the cumulative distribution of final read currents),\n"
    "pulses.csv (histogram of pulses per cell) and program.json (provenance and statistics). The CDF and\n"
    "the histogram are also drawn: cdf-plot.{csv,gp,svg,png} and pulses-plot.{csv,gp,svg,png} (the .csv is\n"
    "the figure's data, the .gp a gnuplot script; without gnuplot only these two are written).\n"
    "\n"
    "  -w, --weights FILE        weights.npz, or W1.npy,b1.npy,... (W_k: (fan_in, fan_out))\n"
    "  -d, --dataset NAME|PATH   data for calibration of ReLU networks (default mnist)\n"
    "  -a, --activation NAME     hidden activation when the weights file does not record it\n"
    "      --program igvva|exact IGVVA write-verify (default), or cells exactly at their targets\n"
    "      --d2d X               device-to-device spread (default: the device file's)\n"
    "      --stuck-lrs P         probability of a cell stuck at LRS (default: the device file's)\n"
    "      --stuck-hrs P         probability of a cell stuck at HRS (default: the device file's)\n"
    "  -s, --seed N              seed of every random draw (default 1)\n"
    "  -o, --out DIR             output folder (default results/program/WEIGHTS)\n"
    "  -q, --quiet               print only the summary\n"
    XB_CLI_CHIP_USAGE
    "\n"
    "examples:\n"
    "  xbarsim program --weights results/reference/mnist-slp-f32.npz --levels device -o results/program/slp\n"
    "  xbarsim eval --weights results/reference/mnist-slp-f32.npz --backend behavioral \\\n"
    "               --chip results/program/slp/chip.npz\n";

enum { O_PROGRAM = 1000, O_D2D, O_STUCK_LRS, O_STUCK_HRS };

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

static int run(int argc, char **argv)
{
    const char *weights = NULL, *spec = "mnist", *act_s = NULL, *out = NULL, *method = "igvva";
    double d2d = -1, p_lrs = -1, p_hrs = -1;
    unsigned long seed = 1;
    int quiet = 0;
    xb_cli_chip copt;
    xb_cli_chip_defaults(&copt);
    struct option opts[32] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"activation", required_argument, 0, 'a'}, {"program", required_argument, 0, O_PROGRAM},
        {"d2d", required_argument, 0, O_D2D}, {"stuck-lrs", required_argument, 0, O_STUCK_LRS},
        {"stuck-hrs", required_argument, 0, O_STUCK_HRS}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'}};
    int n_opts = 10;
    for (int i = 0; i < XB_CLI_CHIP_N_OPTIONS; i++)
        opts[n_opts++] = xb_cli_chip_options[i];
    memset(&opts[n_opts], 0, sizeof opts[0]);
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":w:d:a:s:o:q", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        if (xb_cli_chip_option("program", c, optarg, &copt, &bad))
            continue;
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': spec = optarg; break;
        case 'a': act_s = optarg; break;
        case O_PROGRAM:
            if (strcmp(optarg, "igvva") && strcmp(optarg, "exact"))
                bad = xb_cli_usage_error("program", "--program '%s': expected igvva or exact", optarg);
            method = optarg;
            break;
        case O_D2D: bad = xb_cli_double("program", "--d2d", optarg, 0, 10, &d2d); break;
        case O_STUCK_LRS: bad = xb_cli_double("program", "--stuck-lrs", optarg, 0, 1, &p_lrs); break;
        case O_STUCK_HRS: bad = xb_cli_double("program", "--stuck-hrs", optarg, 0, 1, &p_hrs); break;
        case 's': bad = xb_cli_ulong("program", "--seed", optarg, &seed); break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case ':': return xb_cli_usage_error("program", "option %s needs a value", opt);
        default: return xb_cli_usage_error("program", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind < argc)
        return xb_cli_usage_error("program", "unexpected argument '%s'", argv[optind]);
    if (!weights)
        return xb_cli_usage_error("program", "--weights is required (an .npz file or W1.npy,b1.npy,...)");
    int hidden = -1;
    if (act_s && (hidden = xb_activation_parse(act_s)) < 0)
        return xb_cli_usage_error("program", "--activation '%s': expected sigmoid, relu or identity", act_s);
    char out_buf[4096];
    if (!out) {
        const char *slash = strrchr(weights, '/'), *base = slash ? slash + 1 : weights;
        size_t len = strcspn(base, ".,");
        snprintf(out_buf, sizeof out_buf, "results/program/%.*s", (int)len, base);
        out = out_buf;
    }
    if (xb_cli_out_dir("program", "--out", out))
        return 2;

    xb_error err = {0};
    xb_provenance prov;
    xb_provenance_init(&prov, argc, argv);
    xb_provenance_set_seed(&prov, seed);
    xb_mlp *m = NULL;
    xb_chip *chip = NULL;
    xb_device dev;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    xb_program_result *pr = NULL;
    char levels[512];
    if (!rng)
        return xb_cli_fail("program", xb_fail(&err, XB_ENOMEM, "out of memory"), &err);
    gsl_rng_set(rng, seed);
    int rc = xb_weights_load(weights, hidden, &m, &err);
    if (!rc)
        rc = xb_cli_chip_build(&copt, m, spec, &dev, &chip, levels, sizeof levels, &err);
    if (rc)
        goto done;
    xb_program_options po;
    xb_program_defaults(&dev, &po);
    po.method = (xb_program_method)xb_program_method_parse(method);
    if (d2d >= 0)
        po.sigma_d2d = d2d;
    if (p_lrs >= 0)
        po.p_stuck_lrs = p_lrs;
    if (p_hrs >= 0)
        po.p_stuck_hrs = p_hrs;
    if ((rc = xb_provenance_add_weights(&prov, weights, &err)) ||
        (rc = xb_provenance_add_input(&prov, "device", copt.device, NULL, &err)))
        goto done;

    if (!quiet && po.method == XB_PROGRAM_IGVVA)
        fprintf(stderr, "programming %s with IGVVA (%s levels), seed %lu\n", weights, levels, seed);
    if ((rc = xb_chip_program(chip, &dev, &po, rng, &pr, &err)))
        goto done;

    char path[4200];
    snprintf(path, sizeof path, "%s/chip.npz", out);
    if ((rc = xb_chip_save(chip, path, &err)))
        goto done;
    snprintf(path, sizeof path, "%s/tiles.csv", out);
    if ((rc = xb_chip_write_tile_map(chip, path, &err)))
        goto done;
    snprintf(path, sizeof path, "%s/cells.csv", out);
    if ((rc = xb_program_write_cells_csv(path, chip, pr, &err)))
        goto done;
    if (pr->grouped) {
        snprintf(path, sizeof path, "%s/cdf.csv", out);
        if ((rc = xb_igvva_write_cdf_csv(path, pr->i_trg_A, pr->res, pr->n_programmed, &err)))
            goto done;
    }
    snprintf(path, sizeof path, "%s/pulses.csv", out);
    if ((rc = xb_igvva_write_pulse_hist_csv(path, pr->res, pr->n_programmed, &err)))
        goto done;
    if (pr->n_programmed > 0 && (rc = write_plots(out, pr, &err)))
        goto done;

    snprintf(path, sizeof path, "%s/program.json", out);
    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, &err)))
        goto done;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(&prov, &j);
    xb_json_string(&j, "method", method);
    xb_json_string(&j, "levels", levels);
    xb_json_string(&j, "norm", copt.norm);
    xb_json_string(&j, "mapping", copt.mapping);
    xb_json_string(&j, "bias", copt.bias);
    xb_json_string(&j, "tile", copt.tile);
    xb_json_number(&j, "v_read_V", dev.v_read_V);
    xb_json_number(&j, "g_min_S", chip->opt.g_min_S);
    xb_json_number(&j, "g_max_S", chip->opt.g_max_S);
    xb_json_int(&j, "cells", (long long)pr->n_cells);
    xb_json_int(&j, "cells_programmed", (long long)pr->n_programmed);
    xb_json_int(&j, "cells_failed", (long long)pr->n_failed);
    xb_json_int(&j, "pulses", (long long)pr->n_pulses);
    xb_json_number(&j, "sigma_d2d", po.sigma_d2d);
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
    if ((rc = xb_atomic_commit(&f, &err)))
        goto done;
    printf("programmed %zu of %zu cells (%s, %s levels) in %.2f s: %zu pulses, %zu failed, "
           "%zu stuck at LRS, %zu at HRS -> %s/\n",
           pr->n_programmed, pr->n_cells, method, levels, pr->seconds, pr->n_pulses, pr->n_failed, pr->n_stuck_lrs,
           pr->n_stuck_hrs, out);
done:
    xb_program_result_free(&pr);
    gsl_rng_free(rng);
    xb_chip_free(&chip);
    xb_mlp_free(&m);
    return xb_cli_fail("program", rc, &err);
}

const xb_command xb_cmd_program = {"program", run,
                                   "program a network into simulated 1T1R cells (IGVVA write-verify)", {usage}};
