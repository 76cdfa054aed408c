// cmd_program: `xbarsim program`, write a network into simulated 1T1R cells with IGVVA write-verify
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "chipopts.h"
#include "calib.h"
#include "circuit_fit.h"
#include "cli.h"
#include "fileio.h"
#include "igvva_plot.h"
#include "json.h"
#include "plot.h"
#include "program_circuit.h"
#include "program_out.h"
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
    "      --method statistical|circuit\n"
    "                            how IGVVA runs: the statistical SET model (default), or every SET and RESET\n"
    "                            pulse and verify read as an ngspice analysis of the 1T1R cell with the gap\n"
    "                            compact model of the device file's <rram> group (slow: about 10 ms a pulse).\n"
    "                            circuit also programs the same cells statistically (same seed) and writes\n"
    "                            compare.csv, cdf-compare-plot.* and circuit.json; read the chip with\n"
    "                            `eval --backend spice --cells gap` for the device's own read I-V\n"
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

static const char usage_calib[] =
    "  calibration from measurements:\n"
    "      --calib-reads FILE    measured read currents per level (CSV level,i_read_A: docs/device-layer.md)\n"
    "                            replace the IGVVA reads' spread of the levels they cover; writes\n"
    "                            calib_fit.csv, calib_cdf.csv, calib-plot and calib.json (KS D and p per level)\n"
    "      --calib-model M       empirical (resample the measurements, default), normal or lognormal (fitted)\n"
    "  with --method circuit, --calib-reads instead fits the compact model's spread (docs/device-circuit.md):\n"
    "  per candidate, N cells of every measured level are programmed by circuit (the same seeds for all) and\n"
    "  read once more; the candidate with the smallest mean KS D against the measurements programs the chip.\n"
    "  Writes calib_spread.csv, calib-spread-plot, and calib_fit.csv, calib_cdf.csv, calib-plot, calib.json\n"
    "  against the fit's cells at the fitted values; circuit.json records the fit too.\n"
    "      --calib-fit-grid LIST sigma_ea_eV candidates, ascending, 0 to 1 eV (default 0,0.005,0.01,0.02,0.04)\n"
    "      --calib-fit-read-grid LIST\n"
    "                            sigma_read candidates, ascending, 0 to 10 (default: the device's value, not\n"
    "                            fitted); with both grids every pair is a candidate\n"
    "      --calib-fit-cells N   cells per measured level and candidate, 2 to 4096 (default 8)\n";

enum { O_PROGRAM = 1000, O_D2D, O_STUCK_LRS, O_STUCK_HRS, O_METHOD, O_CALIB_READS, O_CALIB_MODEL, O_FIT_GRID,
       O_FIT_READ_GRID, O_FIT_CELLS };

#define FIT_DEFAULT_GRID "0,0.005,0.01,0.02,0.04"

/* Per level, the two methods side by side: compare.csv. */
static int write_compare_csv(const char *path, const xb_igvva_stats *a, const xb_igvva_stats *b, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "level,i_trg_A,cells,ok_statistical,ok_circuit,mean_pulses_statistical,mean_pulses_circuit,"
                  "max_pulses_statistical,max_pulses_circuit,mean_attempts_statistical,mean_attempts_circuit,"
                  "mean_i_read_A_statistical,mean_i_read_A_circuit,std_i_read_A_statistical,std_i_read_A_circuit\n");
    for (int g = 0; g < a->n_groups && g < b->n_groups; g++) {
        const xb_igvva_group_stats *x = &a->group[g], *y = &b->group[g];
        fprintf(f.fp, "%d,%.17g,%zu,%zu,%zu,%.17g,%.17g,%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", g, x->i_trg_A,
                x->n_cells, x->n_status[XB_IGVVA_OK], y->n_status[XB_IGVVA_OK], x->mean_pulses, y->mean_pulses,
                x->max_pulses, y->max_pulses, x->mean_attempts, y->mean_attempts, x->mean_i_read_A, y->mean_i_read_A,
                x->std_i_read_A, y->std_i_read_A);
    }
    return xb_atomic_commit(&f, err);
}

/* After a circuit programming: the same cells programmed statistically with the same seed (what
 * `--method statistical` draws for them), compare.csv, the figure of both CDFs and circuit.json. */
static int write_circuit_extras(const char *out, unsigned long seed, const xb_device *dev, const xb_program_result *pr,
                                xb_circuit_prog *cp, const xb_circuit_fit_result *fit, const xb_provenance *prov,
                                xb_error *err)
{
    size_t n = pr->n_programmed;
    xb_igvva_result *stat = calloc(n ? n : 1, sizeof *stat);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    int rc = XB_OK;
    if (!stat || !rng) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, seed);
    xb_igvva_stats st;
    double t0 = xb_now();
    int grouped = pr->grouped;
    rc = xb_igvva_program(dev, pr->i_trg_A, n, rng, stat, grouped ? &st : NULL, err);
    double stat_s = xb_now() - t0;
    char path[4300];
    if (!rc && grouped) {
        snprintf(path, sizeof path, "%s/compare.csv", out);
        rc = write_compare_csv(path, &st, &pr->stats, err);
    }
    if (!rc && grouped && n > 0) {
        int render = xb_plot_can_render();
        xb_error perr = {0};
        rc = xb_plot_tolerate(xb_plot_igvva_cdf_compare(out, "cdf-compare-plot", pr->i_trg_A, stat, "statistical",
                                                        pr->res, "circuit", n, render, &perr),
                              render, &perr, "xbarsim program", "cdf-compare-plot", out, err);
    }
    if (rc)
        goto done;
    long pulses = 0, reads = 0;
    double spice_s = 0;
    xb_circuit_prog_counts(cp, &pulses, &reads, &spice_s);
    snprintf(path, sizeof path, "%s/circuit.json", out);
    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, err)))
        goto done;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_string(&j, "method", "circuit");
    xb_json_int(&j, "ngspice", xb_spice_version(xb_circuit_prog_spice(cp)));
    xb_json_string(&j, "rram_model_file", dev->rram.model_file);
    xb_json_int(&j, "cells_programmed", (long long)n);
    xb_json_int(&j, "transients", pulses);
    xb_json_int(&j, "verify_reads", reads);
    xb_json_number(&j, "seconds_circuit", pr->seconds);
    xb_json_number(&j, "seconds_circuit_per_cell", n ? pr->seconds / (double)n : NAN);
    xb_json_number(&j, "seconds_circuit_per_pulse", pulses ? spice_s / (double)pulses : NAN);
    xb_json_number(&j, "seconds_statistical", stat_s);
    xb_json_number(&j, "circuit_over_statistical", stat_s > 0 ? pr->seconds / stat_s : NAN);
    xb_json_object_begin(&j, "rram");
    const xb_rram_params *m = &dev->rram;
    xb_json_number(&j, "i0_A", m->i0_A);
    xb_json_number(&j, "g0_m", m->g0_m);
    xb_json_number(&j, "v0_V", m->v0_V);
    xb_json_number(&j, "vel0_m_per_s", m->vel0_m_per_s);
    xb_json_number(&j, "ea_eV", m->ea_eV);
    xb_json_number(&j, "a0_m", m->a0_m);
    xb_json_number(&j, "t_ox_m", m->t_ox_m);
    xb_json_number(&j, "gamma0", m->gamma0);
    xb_json_number(&j, "beta", m->beta);
    xb_json_number(&j, "t0_K", m->t0_K);
    xb_json_number(&j, "r_th_K_per_W", m->r_th_K_per_W);
    xb_json_number(&j, "gap_min_m", m->gap_min_m);
    xb_json_number(&j, "gap_max_m", m->gap_max_m);
    xb_json_number(&j, "sigma_ea_eV", m->sigma_ea_eV);
    xb_json_number(&j, "v_reset_V", m->v_reset_V);
    xb_json_number(&j, "t_rise_s", m->t_rise_s);
    xb_json_object_end(&j);
    xb_json_number(&j, "sigma_read", dev->sigma_read);
    if (fit)
        xb_program_json_spread_fit(&j, fit);
    xb_json_object_end(&j);
    rc = xb_atomic_commit(&f, err);
done:
    free(stat);
    gsl_rng_free(rng);
    return rc;
}

static int run(int argc, char **argv)
{
    const char *weights = NULL, *spec = "mnist", *act_s = NULL, *out = NULL, *method = "igvva";
    int circuit = 0;
    double d2d = -1, p_lrs = -1, p_hrs = -1;
    unsigned long seed = 1;
    int quiet = 0;
    const char *calib_reads = NULL, *calib_model = NULL; /* measured read currents (calib.h) */
    const char *fit_grid = NULL, *fit_read_grid = NULL;   /* the spread fit (circuit_fit.h) */
    size_t fit_cells = 8;
    int fit_cells_set = 0;
    xb_cli_chip copt;
    xb_cli_chip_defaults(&copt);
    struct option opts[32] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"activation", required_argument, 0, 'a'}, {"program", required_argument, 0, O_PROGRAM},
        {"d2d", required_argument, 0, O_D2D}, {"stuck-lrs", required_argument, 0, O_STUCK_LRS},
        {"stuck-hrs", required_argument, 0, O_STUCK_HRS}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'},
        {"method", required_argument, 0, O_METHOD},
        {"calib-reads", required_argument, 0, O_CALIB_READS}, {"calib-model", required_argument, 0, O_CALIB_MODEL},
        {"calib-fit-grid", required_argument, 0, O_FIT_GRID},
        {"calib-fit-read-grid", required_argument, 0, O_FIT_READ_GRID},
        {"calib-fit-cells", required_argument, 0, O_FIT_CELLS}};
    int n_opts = 16;
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
        case O_METHOD:
            if (strcmp(optarg, "statistical") && strcmp(optarg, "circuit"))
                bad = xb_cli_usage_error("program", "--method '%s': expected statistical or circuit", optarg);
            circuit = !strcmp(optarg, "circuit");
            break;
        case O_D2D: bad = xb_cli_double("program", "--d2d", optarg, 0, 10, &d2d); break;
        case O_STUCK_LRS: bad = xb_cli_double("program", "--stuck-lrs", optarg, 0, 1, &p_lrs); break;
        case O_STUCK_HRS: bad = xb_cli_double("program", "--stuck-hrs", optarg, 0, 1, &p_hrs); break;
        case 's': bad = xb_cli_ulong("program", "--seed", optarg, &seed); break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case O_CALIB_READS: calib_reads = optarg; break;
        case O_CALIB_MODEL:
            if (xb_calib_model_parse(optarg) < 0)
                bad = xb_cli_usage_error("program", "--calib-model '%s': expected empirical, normal or lognormal", optarg);
            calib_model = optarg;
            break;
        case O_FIT_GRID: fit_grid = optarg; break;
        case O_FIT_READ_GRID: fit_read_grid = optarg; break;
        case O_FIT_CELLS:
            bad = xb_cli_size("program", "--calib-fit-cells", optarg, 2, XB_CIRCUIT_FIT_MAX_CELLS, &fit_cells);
            fit_cells_set = 1;
            break;
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
    if (circuit && strcmp(method, "igvva"))
        return xb_cli_usage_error("program", "--method circuit runs the IGVVA write-verify; it cannot go with "
                                  "--program %s", method);
    if ((fit_grid || fit_read_grid || fit_cells_set) && !(circuit && calib_reads))
        return xb_cli_usage_error("program", "--calib-fit-grid, --calib-fit-read-grid and --calib-fit-cells set the "
                                  "spread fit of --method circuit --calib-reads FILE; give both");
    double grid_ea[XB_CIRCUIT_FIT_MAX_GRID], grid_read[XB_CIRCUIT_FIT_MAX_GRID];
    int n_ea = 0, n_read = 0;
    if (circuit && calib_reads) {
        xb_error gerr = {0};
        if (xb_circuit_fit_parse_grid("--calib-fit-grid", fit_grid ? fit_grid : FIT_DEFAULT_GRID, 0,
                                      XB_CIRCUIT_FIT_MAX_SIGMA_EA, grid_ea, XB_CIRCUIT_FIT_MAX_GRID, &n_ea, &gerr) ||
            (fit_read_grid && xb_circuit_fit_parse_grid("--calib-fit-read-grid", fit_read_grid, 0,
                                                        XB_CIRCUIT_FIT_MAX_SIGMA_READ, grid_read,
                                                        XB_CIRCUIT_FIT_MAX_GRID, &n_read, &gerr)))
            return xb_cli_usage_error("program", "%s", gerr.msg);
    }
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
    xb_circuit_prog *cp = NULL;
    xb_calib *cal = NULL;
    xb_circuit_fit_result fit = {0};
    int fitted = 0;
    char levels[512];
    if (!rng)
        return xb_cli_fail("program", xb_fail(&err, XB_ENOMEM, "out of memory"), &err);
    gsl_rng_set(rng, seed);
    copt.net.hidden = hidden;
    int rc = xb_weights_load_desc(weights, &copt.net, &m, &err);
    if (!rc)
        rc = xb_cli_chip_build(&copt, m, spec, &dev, &chip, levels, sizeof levels, &err);
    if (rc)
        goto done;
    xb_program_spec ps = {.weights = weights, .device = copt.device, .method = method, .levels = levels,
                          .norm = copt.norm, .mapping = copt.mapping, .bias = copt.bias, .tile = copt.tile,
                          .sigma_d2d = d2d, .p_stuck_lrs = p_lrs, .p_stuck_hrs = p_hrs, .seed = seed,
                          .quiet = quiet, .calib = calib_reads, .calib_model = calib_model};
    xb_program_options po;
    if (!circuit) {
        if ((rc = xb_program_run_spec(&ps, chip, &dev, rng, &prov, out, &po, &pr, &err)))
            goto done;
    } else {
        /* xb_program_run_spec's steps, with the circuit as the cell programmer. */
        char log_path[4300];
        snprintf(log_path, sizeof log_path, "%s/ngspice-program.log", out);
        xb_cell_programmer prog;
        method = ps.method = "circuit";
        xb_program_defaults(&dev, &po);
        po.method = XB_PROGRAM_CIRCUIT;
        po.circuit = &prog;
        if (d2d >= 0)
            po.sigma_d2d = d2d;
        if (p_lrs >= 0)
            po.p_stuck_lrs = p_lrs;
        if (p_hrs >= 0)
            po.p_stuck_hrs = p_hrs;
        if ((rc = xb_provenance_add_weights(&prov, weights, &err)) ||
            (rc = xb_provenance_add_input(&prov, "device", copt.device, NULL, &err)) ||
            (rc = xb_mkdir_p(out, &err)))
            goto done;
        if (calib_reads) {
            /* The spread fit first: it opens libngspice for each candidate, and the chip is programmed with
             * the fitted sigmas (dev is this command's copy of the device). */
            int model = xb_calib_model_parse(calib_model ? calib_model : "empirical");
            xb_circuit_fit_options fo = {.grid_ea = grid_ea, .n_ea = n_ea, .grid_read = grid_read, .n_read = n_read,
                                         .cells_per_level = (int)fit_cells, .seed = seed, .log_path = log_path,
                                         .progress = !quiet};
            if ((rc = xb_calib_load(calib_reads, dev.n_levels, (xb_calib_model)model, &cal, &err)) ||
                (rc = xb_provenance_add_input(&prov, "calibration", calib_reads, NULL, &err)) ||
                (rc = xb_circuit_fit_check(&dev, cal, &fo, "--calib-fit-grid", "--calib-fit-read-grid",
                                           "--calib-fit-cells", &err)))
                goto done;
            if (!quiet)
                fprintf(stderr, "spread fit to %s: %d x %d candidates, %zu cells per measured level, seed %lu\n",
                        calib_reads, n_ea, n_read ? n_read : 1, fit_cells, seed);
            fitted = 1;
            if ((rc = xb_circuit_fit_spread(&dev, cal, &fo, &fit, &err)))
                goto done;
            dev.rram.sigma_ea_eV = fit.sigma_ea_eV;
            dev.sigma_read = fit.sigma_read;
            if (!quiet) {
                fprintf(stderr, "spread fit: sigma_ea_eV %g, sigma_read %g (mean KS D %.4f) in %.1f s", fit.sigma_ea_eV,
                        fit.sigma_read, fit.cand[fit.best].mean_ks_d, fit.seconds);
                if (fit.refined_param && isfinite(fit.refined))
                    fprintf(stderr, "; parabola vertex %s %g (reported, not used)", fit.refined_param, fit.refined);
                fprintf(stderr, "\n");
            }
        }
        if ((rc = xb_circuit_prog_new(&dev, log_path, &cp, &err)))
            goto done;
        xb_circuit_programmer_bind(cp, !quiet, &prog);
        xb_provenance_set_spice(&prov, xb_spice_version(xb_circuit_prog_spice(cp)),
                                xb_spice_solver_name(xb_circuit_prog_spice(cp)));
        if (!quiet)
            fprintf(stderr, "programming %s with IGVVA as ngspice transients (libngspice %d, %s levels), seed %lu\n",
                    weights, xb_spice_version(xb_circuit_prog_spice(cp)), levels, seed);
        if ((rc = xb_chip_program(chip, &dev, &po, rng, &pr, &err)) ||
            (rc = xb_program_write_results(out, &ps, chip, &dev, &po, pr, &prov, &err)) ||
            (rc = write_circuit_extras(out, seed, &dev, pr, cp, fitted ? &fit : NULL, &prov, &err)) ||
            (fitted && (rc = xb_program_write_spread_fit(out, cal, &dev, &fit, &err))))
            goto done;
    }
    printf("programmed %zu of %zu cells (%s, %s levels) in %.2f s: %zu pulses, %zu failed, "
           "%zu stuck at LRS, %zu at HRS -> %s/\n",
           pr->n_programmed, pr->n_cells, method, levels, pr->seconds, pr->n_pulses, pr->n_failed, pr->n_stuck_lrs,
           pr->n_stuck_hrs, out);
done:
    xb_circuit_prog_free(&cp);
    xb_circuit_fit_result_free(&fit);
    xb_calib_free(&cal);
    xb_program_result_free(&pr);
    gsl_rng_free(rng);
    xb_chip_free(&chip);
    xb_mlp_free(&m);
    return xb_cli_fail("program", rc, &err);
}

const xb_command xb_cmd_program = {"program", run,
                                   "program a network into simulated 1T1R cells (IGVVA write-verify)", {usage, usage_calib, XB_CLI_NET_USAGE}};
