// cmd_program: `xbarsim program`, write a network into simulated 1T1R cells with IGVVA write-verify
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "chipopts.h"
#include "calib.h"
#include "cli.h"
#include "program_out.h"
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
    "      --calib-reads FILE    measured read currents per level (CSV level,i_read_A: docs/device-layer.md)\n"
    "                            replace the IGVVA reads' spread of the levels they cover; writes\n"
    "                            calib_fit.csv, calib_cdf.csv, calib-plot and calib.json (KS D and p per level)\n"
    "      --calib-model M       empirical (resample the measurements, default), normal or lognormal (fitted)\n"
    "  -s, --seed N              seed of every random draw (default 1)\n"
    "  -o, --out DIR             output folder (default results/program/WEIGHTS)\n"
    "  -q, --quiet               print only the summary\n"
    XB_CLI_CHIP_USAGE
    "\n"
    "examples:\n"
    "  xbarsim program --weights results/reference/mnist-slp-f32.npz --levels device -o results/program/slp\n"
    "  xbarsim eval --weights results/reference/mnist-slp-f32.npz --backend behavioral \\\n"
    "               --chip results/program/slp/chip.npz\n";

enum { O_PROGRAM = 1000, O_D2D, O_STUCK_LRS, O_STUCK_HRS, O_CALIB_READS, O_CALIB_MODEL };

static int run(int argc, char **argv)
{
    const char *weights = NULL, *spec = "mnist", *act_s = NULL, *out = NULL, *method = "igvva";
    double d2d = -1, p_lrs = -1, p_hrs = -1;
    unsigned long seed = 1;
    int quiet = 0;
    const char *calib_reads = NULL, *calib_model = NULL; /* measured read currents (calib.h) */
    xb_cli_chip copt;
    xb_cli_chip_defaults(&copt);
    struct option opts[32] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"activation", required_argument, 0, 'a'}, {"program", required_argument, 0, O_PROGRAM},
        {"d2d", required_argument, 0, O_D2D}, {"stuck-lrs", required_argument, 0, O_STUCK_LRS},
        {"stuck-hrs", required_argument, 0, O_STUCK_HRS}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'},
        {"calib-reads", required_argument, 0, O_CALIB_READS}, {"calib-model", required_argument, 0, O_CALIB_MODEL}};
    int n_opts = 12;
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
        case O_CALIB_READS: calib_reads = optarg; break;
        case O_CALIB_MODEL:
            if (xb_calib_model_parse(optarg) < 0)
                bad = xb_cli_usage_error("program", "--calib-model '%s': expected empirical, normal or lognormal", optarg);
            calib_model = optarg;
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
    if ((rc = xb_program_run_spec(&ps, chip, &dev, rng, &prov, out, &po, &pr, &err)))
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
                                   "program a network into simulated 1T1R cells (IGVVA write-verify)", {usage, XB_CLI_NET_USAGE}};
