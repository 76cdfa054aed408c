// cmd_eval: `xbarsim eval`, classify a test split in software and on a (simulated) chip, write the results
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "chipopts.h"
#include "circuit.h"
#include "ngspice.h"
#include "cli.h"
#include "dataset.h"
#include "fileio.h"
#include "json.h"
#include "mc.h"
#include "mlp.h"
#include "pool.h"
#include "progress.h"
#include "provenance.h"
#include "results.h"
#include "weights.h"

static const char usage[] =
    "usage: xbarsim eval --weights FILE [options]\n"
    "\n"
    "Classify the test split with trained weights, in software (ideal) and, with --backend behavioral,\n"
    "on a crossbar chip through the behavioral model: row voltages from a DAC, column currents I = V.G per\n"
    "tile with ideal wires, an ADC per tile, digital pair subtraction, scaling and partial sums. The chip\n"
    "is a conductance map from `xbarsim program` (--chip) or is mapped here from the weights (exact\n"
    "programming at the targets). Writes under the output folder: summary.csv (accuracy and 95% Wilson\n"
    "interval per backend), predictions.csv (per input, a column per backend), per_class.csv and\n"
    "confusion.csv (last backend), run.json (provenance); with --trials also trials.csv and\n"
    "mc_summary.csv (mean, std and 95% t-interval of accuracy and of dACC = ACC - ACC_ideal).\n"
    "\n"
    "  -w, --weights FILE        weights.npz, or W1.npy,b1.npy,W2.npy,b2.npy,... (W_k: (fan_in, fan_out))\n"
    "  -d, --dataset NAME|PATH   mnist (default), fashion-mnist, or a folder with the four IDX files\n"
    "  -B, --backend NAME        ideal (default), behavioral, or spice (runs ideal, behavioral and the\n"
    "                            circuit through libngspice on the same chip and inputs, and compares them)\n"
    "  -a, --activation NAME     hidden activation when the weights file does not record it\n"
    "      --limit N             only the first N test images\n"
    "  -o, --out DIR             output folder (default results/eval/WEIGHTS-BACKEND)\n"
    "  -j, --threads N           BLAS threads (default: the library's)\n"
    "  -q, --quiet               print only the result lines\n"
    "  behavioral backend:\n"
    "      --chip FILE           conductance map written by `xbarsim program` (else map the weights here)\n"
    "      --dac-bits N          input DAC resolution (default 0: ideal)\n"
    "      --adc-bits N          ADC resolution per tile column (default 0: no ADC)\n"
    "      --adc-range calibrate|levels  ADC full scale from calibration images (default) or from the\n"
    "                            largest current the levels allow\n"
    "      --read-noise X        relative read noise of every cell, drawn at every inference (default 0)\n"
    "      --perturb SPEC[@L]    perturbation drawn afresh in every trial; repeatable. SPEC: c2c:ar=A,sigma=S,\n"
    "                            c2c-level:ar=A,sigma=S, mult:alpha=A, lognormal:sigma=S, additive:sigma=S\n"
    "                            (layer outputs); on the programmed conductances, after the weight models:\n"
    "                            d2d:sigma=S (g = max(0, g (1 + S N(0,1)))), stuck:lrs=P,hrs=Q (each cell at\n"
    "                            the device's g_lrs_S with probability P, at its g_hrs_S with Q, P + Q <= 1,\n"
    "                            as program's --stuck-lrs/--stuck-hrs); @L: layers, e.g. @1, @2, @1+2 (default @all)\n"
    "      --trials N            Monte Carlo trials (default 0: one nominal run)\n"
    "  -s, --seed N              seed of every random draw (default 1)\n";

static const char usage_spice[] =
    "  spice backend (the chip as programmed; --trials apply to the behavioral model only):\n"
    "      --jobs N              worker processes, each with its own libngspice (default: the core count)\n"
    "      --chunk N             inputs per work unit (default 250)\n"
    "      --cells 1t1r|linear   1T1R cells with the device's MOSFET card (default) or linear resistors\n"
    "      --r-row OHM           wire resistance per cell segment of a row line (default 1)\n"
    "      --r-col OHM           wire resistance per cell segment of a column line (default 1)\n"
    "      --rram-v0 V           RRAM sinh I-V nonlinearity voltage (default 0: linear RRAM)\n"
    "      --spice-mode exact|linear  exact: every input solved by ngspice (default); linear: per tile, R\n"
    "                            unit-input solves give the transfer matrix (IR drop included) and each\n"
    "                            input is one product; exact only for linear cells (--cells linear)\n"
    "      --linear-sample N     inputs per layer, drawn at random (mt19937, --seed), re-solved exactly to\n"
    "                            measure the linear mode's error (default 20)\n"
    XB_CLI_SPICE_USAGE
    "      writes also tile_errors.csv (per tile: relative error of the circuit's column currents\n"
    "      against I = V.G, mean, p99, max), ir_drop.csv (the tile that strays most, every row at v_read:\n"
    "      per cell the row and column line voltages, the voltage deficit, the cell current from Kirchhoff's\n"
    "      law and the current deficit 1 - I_cell / (g_S v_read)), logs/ (ngspice output per worker), dACC of\n"
    "      behavioral and spice against ideal and of spice against behavioral (stdout, summary.csv's\n"
    "      delta_accuracy, run.json) and a McNemar test of behavioral against spice predictions (run.json);\n"
    "      docs/circuit.md describes them\n"
    XB_CLI_CHIP_USAGE
    "\n"
    "examples:\n"
    "  xbarsim eval --weights results/reference/mnist-slp-f32.npz\n"
    "  xbarsim eval --weights mlp.npz --backend behavioral --levels set3 --adc-bits 8\n"
    "  xbarsim eval --weights slp.npz --backend behavioral --perturb c2c:ar=1,sigma=0.2 --trials 100\n";

enum { O_LIMIT = 1000, O_CHIP, O_DAC, O_ADC, O_ADC_RANGE, O_READ_NOISE, O_PERTURB, O_TRIALS, O_JOBS, O_CHUNK,
       O_CELLS, O_RROW, O_RCOL, O_V0, O_MODE, O_SAMPLE };

typedef struct eval_job {
    const char *spec, *weights, *backend, *out, *chip_path;
    xb_cli_chip chip_opt;
    xb_behav_options bo;
    xb_layer_perturb perturb[XB_MC_MAX_PERTURB];
    const char *perturb_text[XB_MC_MAX_PERTURB];
    int n_perturb;
    size_t trials, limit;
    unsigned long seed;
    int quiet;
    xb_pool_options pool;
} eval_job;

static int write_trials(const char *dir, const double *acc, size_t trials, double acc_ideal, xb_error *err)
{
    char path[4200];
    xb_atomic_file f;
    snprintf(path, sizeof path, "%s/trials.csv", dir);
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "trial,accuracy,delta_accuracy\n");
    for (size_t t = 0; t < trials; t++)
        fprintf(f.fp, "%zu,%.17g,%.17g\n", t, acc[t], acc[t] - acc_ideal);
    if ((rc = xb_atomic_commit(&f, err)))
        return rc;
    double *d = malloc(trials * sizeof *d);
    if (!d)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t t = 0; t < trials; t++)
        d[t] = acc[t] - acc_ideal;
    xb_mc_stats s[2];
    xb_mc_stats_of(acc, trials, &s[0]);
    xb_mc_stats_of(d, trials, &s[1]);
    xb_mc_stats_clamp(&s[0], 0, 1);
    xb_mc_stats_clamp(&s[1], -1, 1);
    free(d);
    snprintf(path, sizeof path, "%s/mc_summary.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "metric,trials,mean,std,ci95_lo,ci95_hi,min,max\n");
    const char *names[2] = {"accuracy", "delta_accuracy"};
    for (int i = 0; i < 2; i++)
        fprintf(f.fp, "%s,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", names[i], s[i].n, s[i].mean, s[i].std,
                s[i].ci95_lo, s[i].ci95_hi, s[i].min, s[i].max);
    return xb_atomic_commit(&f, err);
}

static int write_run_json(const char *dir, const xb_provenance *prov, const xb_mlp *m, const eval_job *job,
                          const xb_class_result *r, int n_backends, const double *acc, size_t trials,
                          const char *levels, double seconds, const xb_circuit *circ,
                          const xb_paired *pair, xb_error *err)
{
    char path[4200], desc[256];
    snprintf(path, sizeof path, "%s/run.json", dir);
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_string(&j, "network", xb_mlp_describe(m, desc, sizeof desc));
    xb_json_string(&j, "dataset", job->spec);
    xb_json_string(&j, "split", "test");
    if (!strcmp(job->backend, "behavioral")) {
        xb_json_object_begin(&j, "chip");
        xb_json_string(&j, "conductance_map", job->chip_path);
        xb_json_string(&j, "device", job->chip_path ? NULL : job->chip_opt.device);
        xb_json_string(&j, "levels", job->chip_path ? NULL : levels);
        xb_json_string(&j, "norm", job->chip_path ? NULL : job->chip_opt.norm);
        xb_json_string(&j, "mapping", job->chip_path ? NULL : job->chip_opt.mapping);
        xb_json_string(&j, "bias", job->chip_path ? NULL : job->chip_opt.bias);
        xb_json_string(&j, "tile", job->chip_path ? NULL : job->chip_opt.tile);
        xb_json_int(&j, "dac_bits", job->bo.dac_bits);
        xb_json_int(&j, "adc_bits", job->bo.adc_bits);
        xb_json_string(&j, "adc_range", job->bo.adc_calibrate ? "calibrate" : "levels");
        xb_json_number(&j, "read_noise", job->bo.sigma_read);
        xb_json_array_begin(&j, "perturbations");
        for (int i = 0; i < job->n_perturb; i++)
            xb_json_string(&j, NULL, job->perturb_text[i]);
        xb_json_array_end(&j);
        xb_json_int(&j, "trials", (long long)trials);
        xb_json_object_end(&j);
    }
    xb_json_array_begin(&j, "results");
    for (int b = 0; b < n_backends; b++) {
        xb_json_object_begin(&j, NULL);
        xb_json_string(&j, "backend", r[b].backend);
        xb_json_int(&j, "samples", (long long)r[b].n);
        xb_json_int(&j, "correct", (long long)r[b].correct);
        xb_json_number(&j, "accuracy", r[b].accuracy);
        xb_json_number(&j, "accuracy_ci95_lo", r[b].ci95_lo);
        xb_json_number(&j, "accuracy_ci95_hi", r[b].ci95_hi);
        xb_json_number(&j, "delta_accuracy_vs_ideal", xb_class_result_delta(r, b));
        xb_json_object_end(&j);
    }
    xb_json_array_end(&j);
    if (trials) {
        xb_mc_stats s;
        xb_mc_stats_of(acc, trials, &s);
        xb_mc_stats_clamp(&s, 0, 1);
        xb_json_object_begin(&j, "monte_carlo");
        xb_json_int(&j, "trials", (long long)trials);
        xb_json_number(&j, "accuracy_mean", s.mean);
        xb_json_number(&j, "accuracy_std", s.std);
        xb_json_number(&j, "accuracy_mean_ci95_lo", s.ci95_lo);
        xb_json_number(&j, "accuracy_mean_ci95_hi", s.ci95_hi);
        xb_json_number(&j, "delta_accuracy_mean", s.mean - r[0].accuracy);
        xb_json_object_end(&j);
    }
    if (circ) {
        const xb_pool *pool = &circ->pool;
        xb_json_object_begin(&j, "spice");
        xb_json_int(&j, "ngspice_version", pool->stats.ngspice_version);
        xb_json_string(&j, "solver", pool->stats.solver);
        xb_json_int(&j, "jobs", pool->o.jobs);
        xb_json_int(&j, "chunk", (long long)pool->o.chunk);
        xb_json_string(&j, "cells", pool->o.net.linear_cells ? "linear" : "1t1r");
        xb_json_number(&j, "r_row_ohm", pool->o.net.r_row_ohm);
        xb_json_number(&j, "r_col_ohm", pool->o.net.r_col_ohm);
        xb_json_number(&j, "rram_v0_V", pool->o.net.rram_v0_V);
        xb_json_int(&j, "units", (long long)pool->stats.units);
        xb_json_int(&j, "units_retried", (long long)pool->stats.unit_retries);
        xb_json_int(&j, "workers_started", (long long)pool->stats.workers_started);
        xb_json_int(&j, "workers_lost", (long long)pool->stats.workers_lost);
        xb_json_int(&j, "solves_retried", (long long)pool->stats.inputs_retried);
        xb_json_int(&j, "solves_failed", (long long)pool->stats.inputs_failed);
        xb_json_int(&j, "peak_worker_rss_kB", pool->stats.peak_rss_kb);
        xb_json_number(&j, "seconds", pool->stats.seconds);
        xb_json_string(&j, "row_sources", pool->stats.row_sources);
        xb_json_string(&j, "mode", pool->o.linear ? "linear" : "exact");
        if (pool->o.linear) {
            xb_json_int(&j, "linear_sampled_inputs", (long long)pool->stats.linear_sampled);
            xb_json_string(&j, "linear_sample_rng", "mt19937");
            xb_json_int(&j, "linear_sample_seed", (long long)pool->o.linear_seed);
            xb_json_int(&j, "linear_currents_checked", (long long)pool->stats.linear_checked);
            xb_json_number(&j, "linear_err_max", pool->stats.linear_err_max);
            xb_json_number(&j, "linear_err_mean", pool->stats.linear_checked
                                                      ? pool->stats.linear_err_sum / (double)pool->stats.linear_checked
                                                      : NAN);
        }
        double mean, worst;
        xb_compare_totals(&circ->cc, &mean, &worst);
        xb_json_number(&j, "column_current_rel_err_mean", mean);
        xb_json_number(&j, "column_current_rel_err_max", worst);
        if (n_backends >= 3) {
            xb_json_object_begin(&j, "delta_accuracy");
            xb_json_number(&j, "behavioral_vs_ideal", r[1].accuracy - r[0].accuracy);
            xb_json_number(&j, "spice_vs_ideal", r[2].accuracy - r[0].accuracy);
            xb_json_number(&j, "spice_vs_behavioral", r[2].accuracy - r[1].accuracy);
            xb_json_object_end(&j);
        }
        xb_json_object_begin(&j, "mcnemar_behavioral_vs_spice");
        xb_json_int(&j, "only_behavioral_correct", (long long)pair->only_a);
        xb_json_int(&j, "only_spice_correct", (long long)pair->only_b);
        xb_json_number(&j, "chi2", pair->stat);
        xb_json_number(&j, "p_value", pair->p);
        xb_json_object_end(&j);
        xb_json_object_end(&j);
    }
    xb_json_number(&j, "seconds", seconds);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

static int run(int argc, char **argv)
{
    eval_job job = {.spec = "mnist", .backend = "ideal", .seed = 1};
    const char *act_s = NULL;
    size_t threads = 0;
    xb_cli_chip_defaults(&job.chip_opt);
    xb_behav_defaults(&job.bo);
    job.bo.adc_calibrate = 1;
    xb_pool_defaults(&job.pool);
    size_t jobs_n = (size_t)job.pool.jobs;
    struct option opts[40] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"backend", required_argument, 0, 'B'}, {"activation", required_argument, 0, 'a'},
        {"limit", required_argument, 0, O_LIMIT}, {"out", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},
        {"chip", required_argument, 0, O_CHIP}, {"dac-bits", required_argument, 0, O_DAC},
        {"adc-bits", required_argument, 0, O_ADC}, {"adc-range", required_argument, 0, O_ADC_RANGE},
        {"read-noise", required_argument, 0, O_READ_NOISE}, {"perturb", required_argument, 0, O_PERTURB},
        {"trials", required_argument, 0, O_TRIALS}, {"seed", required_argument, 0, 's'},
        {"jobs", required_argument, 0, O_JOBS}, {"chunk", required_argument, 0, O_CHUNK},
        {"cells", required_argument, 0, O_CELLS}, {"r-row", required_argument, 0, O_RROW},
        {"r-col", required_argument, 0, O_RCOL}, {"rram-v0", required_argument, 0, O_V0},
        {"spice-mode", required_argument, 0, O_MODE}, {"linear-sample", required_argument, 0, O_SAMPLE}};
    int n_opts = 24;
    for (int i = 0; i < XB_CLI_CHIP_N_OPTIONS; i++)
        opts[n_opts++] = xb_cli_chip_options[i];
    for (int i = 0; i < XB_CLI_SPICE_N_OPTIONS; i++)
        opts[n_opts++] = xb_cli_spice_options[i];
    memset(&opts[n_opts], 0, sizeof opts[0]);
    int c, bad = 0;
    size_t bits;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":w:d:B:a:o:j:qs:", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        if (xb_cli_chip_option("eval", c, optarg, &job.chip_opt, &bad) ||
            xb_cli_spice_option("eval", c, optarg, &job.pool, &bad))
            continue;
        switch (c) {
        case 'w': job.weights = optarg; break;
        case 'd': job.spec = optarg; break;
        case 'B': job.backend = optarg; break;
        case 'a': act_s = optarg; break;
        case O_LIMIT: bad = xb_cli_size("eval", "--limit", optarg, 1, (size_t)1 << 40, &job.limit); break;
        case 'o': job.out = optarg; break;
        case 'j': bad = xb_cli_size("eval", "--threads", optarg, 1, 1024, &threads); break;
        case 'q': job.quiet = 1; break;
        case O_CHIP: job.chip_path = optarg; break;
        case O_DAC:
            bad = xb_cli_size("eval", "--dac-bits", optarg, 0, 24, &bits);
            job.bo.dac_bits = (int)bits;
            break;
        case O_ADC:
            bad = xb_cli_size("eval", "--adc-bits", optarg, 0, 24, &bits);
            job.bo.adc_bits = (int)bits;
            break;
        case O_ADC_RANGE:
            if (strcmp(optarg, "calibrate") && strcmp(optarg, "levels"))
                bad = xb_cli_usage_error("eval", "--adc-range '%s': expected calibrate or levels", optarg);
            job.bo.adc_calibrate = !strcmp(optarg, "calibrate");
            break;
        case O_READ_NOISE: bad = xb_cli_double("eval", "--read-noise", optarg, 0, 10, &job.bo.sigma_read); break;
        case O_PERTURB:
            if (job.n_perturb == XB_MC_MAX_PERTURB)
                bad = xb_cli_usage_error("eval", "at most %d --perturb options", XB_MC_MAX_PERTURB);
            else
                job.perturb_text[job.n_perturb++] = optarg;
            break;
        case O_TRIALS: bad = xb_cli_size("eval", "--trials", optarg, 0, 1000000, &job.trials); break;
        case 's': bad = xb_cli_ulong("eval", "--seed", optarg, &job.seed); break;
        case O_JOBS: bad = xb_cli_size("eval", "--jobs", optarg, 1, 1024, &jobs_n); break;
        case O_CHUNK: bad = xb_cli_size("eval", "--chunk", optarg, 1, 1000000, &job.pool.chunk); break;
        case O_CELLS:
            if (strcmp(optarg, "1t1r") && strcmp(optarg, "linear"))
                bad = xb_cli_usage_error("eval", "--cells '%s': expected 1t1r or linear", optarg);
            job.pool.net.linear_cells = !strcmp(optarg, "linear");
            break;
        case O_RROW: bad = xb_cli_double("eval", "--r-row", optarg, 0, 1e6, &job.pool.net.r_row_ohm); break;
        case O_RCOL: bad = xb_cli_double("eval", "--r-col", optarg, 0, 1e6, &job.pool.net.r_col_ohm); break;
        case O_V0: bad = xb_cli_double("eval", "--rram-v0", optarg, 0, 100, &job.pool.net.rram_v0_V); break;
        case O_MODE:
            if (strcmp(optarg, "exact") && strcmp(optarg, "linear"))
                bad = xb_cli_usage_error("eval", "--spice-mode '%s': expected exact or linear", optarg);
            job.pool.linear = !strcmp(optarg, "linear");
            break;
        case O_SAMPLE:
            bad = xb_cli_size("eval", "--linear-sample", optarg, 0, 100000, &job.pool.linear_sample);
            break;
        case ':': return xb_cli_usage_error("eval", "option %s needs a value", opt);
        default: return xb_cli_usage_error("eval", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind < argc)
        return xb_cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!job.weights)
        return xb_cli_usage_error("eval", "--weights is required (an .npz file or W1.npy,b1.npy,...)");
    job.pool.jobs = (int)jobs_n;
    int spice = !strcmp(job.backend, "spice");
    int behavioral = spice || !strcmp(job.backend, "behavioral");
    if (!behavioral && strcmp(job.backend, "ideal"))
        return xb_cli_usage_error("eval", "--backend '%s': expected ideal, behavioral or spice", job.backend);
    if (!behavioral && (job.trials || job.n_perturb || job.chip_path))
        return xb_cli_usage_error("eval", "--trials, --perturb and --chip need --backend behavioral or spice");
    int hidden = -1;
    if (act_s && (hidden = xb_activation_parse(act_s)) < 0)
        return xb_cli_usage_error("eval", "--activation '%s': expected sigmoid, relu or identity", act_s);
    xb_cli_set_threads((int)threads);

    char out_buf[4096];
    if (!job.out) {
        char wcopy[4096];
        snprintf(wcopy, sizeof wcopy, "%s", job.weights);
        char *comma = strchr(wcopy, ',');
        if (comma)
            *comma = '\0';
        char *base = basename(wcopy), *dot = strrchr(base, '.');
        if (dot)
            *dot = '\0';
        snprintf(out_buf, sizeof out_buf, "results/eval/%s-%s", base, job.backend);
        job.out = out_buf;
    }
    if (xb_cli_out_dir("eval", "--out", job.out))
        return 2;

    xb_error err = {0};
    xb_provenance prov;
    xb_provenance_init(&prov, argc, argv);
    xb_provenance_set_seed(&prov, job.seed);
    xb_mlp *m = NULL;
    xb_dataset *test = NULL, *cal = NULL;
    xb_confusion *conf = NULL;
    xb_chip *base = NULL, *chip = NULL;
    xb_behav *bm = NULL;
    gsl_rng *rng = NULL;
    int *pred[3] = {NULL, NULL, NULL};
    xb_circuit circ = {0};
    xb_paired pair = {0, 0, 0, NAN, NAN};
    double *acc = NULL;
    char levels[512] = "none";
    xb_device dev;
    int rc = xb_weights_load(job.weights, hidden, &m, &err);
    if (!rc)
        rc = xb_dataset_load(job.spec, XB_SPLIT_TEST, &test, &err);
    if (rc)
        goto done;
    if (job.limit)
        xb_dataset_truncate(test, job.limit);
    if (m->sizes[0] != test->dim) {
        rc = xb_fail(&err, XB_EINPUT, "%s: the network takes %zu inputs (W1 has %zu rows) but %s images have "
                     "%zu pixels", job.weights, m->sizes[0], m->sizes[0], job.spec, test->dim);
        goto done;
    }
    if (m->sizes[m->n_layers] < (size_t)test->n_classes) {
        rc = xb_fail(&err, XB_EINPUT, "%s: the network has %zu outputs but %s has %d classes", job.weights,
                     m->sizes[m->n_layers], job.spec, test->n_classes);
        goto done;
    }
    if ((rc = xb_provenance_add_weights(&prov, job.weights, &err)))
        goto done;
    xb_provenance_add_input(&prov, "test_images", test->images_path, test->images_sha256, &err);
    xb_provenance_add_input(&prov, "test_labels", test->labels_path, test->labels_sha256, &err);
    for (int i = 0; i < job.n_perturb; i++)
        if ((rc = xb_layer_perturb_parse(job.perturb_text[i], m->n_layers, &job.perturb[i], &err))) {
            xb_error_prefix(&err, "--perturb");
            goto done;
        }

    size_t classes = m->sizes[m->n_layers];
    for (int b = 0; b < 3; b++)
        if (!(pred[b] = malloc(test->n * sizeof *pred[b]))) {
            rc = xb_fail(&err, XB_ENOMEM, "out of memory");
            goto done;
        }
    double t0 = xb_now();
    if ((rc = xb_mlp_predict(m, test->x, test->n, pred[0], &err)))
        goto done;
    xb_class_result r[3] = {{.backend = "ideal"}, {.backend = "behavioral"}, {.backend = "spice"}};
    int n_backends = 1;
    xb_confusion *conf_ideal = xb_confusion_new((int)classes);
    if (!conf_ideal) {
        rc = xb_fail(&err, XB_ENOMEM, "out of memory");
        goto done;
    }
    xb_class_result_tally(&r[0], conf_ideal, test->y, pred[0], test->n);
    conf = conf_ideal;

    if (behavioral) {
        if (job.chip_path) {
            if ((rc = xb_chip_load(job.chip_path, &base, &err)))
                goto done;
            if (base->layers[0].fan_in != m->sizes[0] || base->n_layers != m->n_layers ||
                base->layers[base->n_layers - 1].fan_out != classes) {
                rc = xb_fail(&err, XB_EINPUT, "%s: the chip holds a different network than %s", job.chip_path,
                             job.weights);
                goto done;
            }
            xb_provenance_add_input(&prov, "conductance_map", job.chip_path, NULL, &err);
            if (spice && (rc = xb_device_load(job.chip_opt.device, NULL, &dev, &err)))
                goto done;
        } else {
            if ((rc = xb_cli_chip_build(&job.chip_opt, m, job.spec, &dev, &base, levels, sizeof levels, &err)))
                goto done;
            xb_provenance_add_input(&prov, "device", job.chip_opt.device, NULL, &err);
        }
        if (job.bo.adc_bits && job.bo.adc_calibrate) {
            if ((rc = xb_dataset_load(job.spec, XB_SPLIT_TRAIN, &cal, &err)))
                goto done;
            xb_dataset_truncate(cal, job.chip_opt.calib);
        }
        chip = xb_chip_clone(base);
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!chip || !rng) {
            rc = xb_fail(&err, XB_ENOMEM, "out of memory");
            goto done;
        }
        gsl_rng_set(rng, job.seed);
        if ((rc = xb_behav_new(chip, &job.bo, cal ? cal->x : NULL, cal ? cal->n : 0, &bm, &err)))
            goto done;
        /* The nominal run: the chip as programmed, no trial perturbations. */
        if ((rc = xb_behav_forward(bm, test->x, test->n, rng, NULL, pred[1], &err)))
            goto done;
        conf = xb_confusion_new((int)classes);
        if (!conf) {
            conf = conf_ideal;
            rc = xb_fail(&err, XB_ENOMEM, "out of memory");
            goto done;
        }
        xb_confusion_free(&conf_ideal);
        xb_class_result_tally(&r[1], conf, test->y, pred[1], test->n);
        n_backends = 2;
        if (job.trials) {
            acc = malloc(job.trials * sizeof *acc);
            int *tp = malloc(test->n * sizeof *tp);
            if (!acc || !tp) {
                free(tp);
                rc = xb_fail(&err, XB_ENOMEM, "out of memory");
                goto done;
            }
            xb_progress bar;
            xb_progress_start(&bar, stderr, "trials", job.trials, job.quiet);
            for (size_t t = 0; t < job.trials && !rc; t++) {
                rc = xb_mc_perturb_chip(base, job.perturb, job.n_perturb, rng, chip, &job.bo, &err);
                if (!rc) {
                    /* sigma_out may have changed: rebuild the model's options. */
                    xb_behav_free(&bm);
                    rc = xb_behav_new(chip, &job.bo, cal ? cal->x : NULL, cal ? cal->n : 0, &bm, &err);
                }
                if (!rc)
                    rc = xb_behav_forward(bm, test->x, test->n, rng, NULL, tp, &err);
                acc[t] = (double)xb_count_correct(tp, test->y, test->n) / (double)test->n;
                char status[64];
                snprintf(status, sizeof status, "last %.2f%%", 100 * acc[t]);
                xb_progress_update(&bar, t + 1, status);
            }
            free(tp);
            if (rc)
                goto done;
            xb_mc_stats s;
            xb_mc_stats_of(acc, job.trials, &s);
            char status[96];
            snprintf(status, sizeof status, "mean %.2f%% std %.2f%%", 100 * s.mean, 100 * s.std);
            xb_progress_finish(&bar, status);
        }
    }
    if (spice) {
        /* The circuit: the chip as programmed, every tile through libngspice, the same digital path. */
        xb_pool_options po = job.pool;
        po.quiet = job.quiet;
        /* Fault injection for tests: the first worker to take this unit kills itself. */
        const char *fault = getenv("XBARSIM_FAULT_UNIT");
        if (fault)
            po.fault_unit = atoi(fault);
        /* ... and the first worker to take this one sends ngspice `quit` (ControlledExit). */
        const char *quit = getenv("XBARSIM_FAULT_QUIT_UNIT");
        if (quit)
            po.fault_quit_unit = atoi(quit);
        po.linear_seed = job.seed;
        snprintf(po.log_dir, sizeof po.log_dir, "%s/logs", job.out);
        if ((rc = xb_mkdir_p(po.log_dir, &err)))
            goto done;
        if (!job.quiet)
            fprintf(stderr, "spice: %zu inputs, %d worker%s, %s cells, wires %g/%g ohm per segment\n", test->n,
                    po.jobs, po.jobs == 1 ? "" : "s", po.net.linear_cells ? "linear" : "1T1R", po.net.r_row_ohm,
                    po.net.r_col_ohm);
        if ((rc = xb_circuit_classify(base, &dev, &po, &job.bo, cal ? cal->x : NULL, cal ? cal->n : 0, test->x,
                                      test->n, 0, "spice", rng, pred[2], &circ, &err)))
            goto done;
        xb_versions_note_ngspice(circ.pool.stats.ngspice_version); /* run.json names the library that ran */
        xb_confusion_free(&conf);
        conf = xb_confusion_new((int)classes);
        if (!conf) {
            rc = xb_fail(&err, XB_ENOMEM, "out of memory");
            goto done;
        }
        xb_class_result_tally(&r[2], conf, test->y, pred[2], test->n);
        n_backends = 3;
        xb_paired_compare(pred[1], pred[2], test->y, test->n, &pair);
        char path[4200];
        snprintf(path, sizeof path, "%s/tile_errors.csv", job.out);
        if ((rc = xb_compare_write_csv(&circ.cc, path, &err)))
            goto done;
        xb_irdrop ir;
        if ((rc = xb_circuit_irdrop(&circ, &ir, &err)))
            goto done;
        snprintf(path, sizeof path, "%s/ir_drop.csv", job.out);
        if (isnan(ir.v_row_node_V[0]))
            fprintf(stderr, "spice: the IR-drop map's operating point did not converge; ir_drop.csv holds NaN "
                            "(see %s)\n", po.log_dir);
        rc = xb_irdrop_write_csv(&ir, path, &err);
        xb_irdrop_free(&ir);
        if (rc)
            goto done;
    }
    double seconds = xb_now() - t0;
    if ((rc = xb_results_write_classification(job.out, r, n_backends, conf, test->y, (const int *const *)pred,
                                              test->n, &err)))
        goto done;
    if (job.trials && (rc = write_trials(job.out, acc, job.trials, r[0].accuracy, &err)))
        goto done;
    if ((rc = write_run_json(job.out, &prov, m, &job, r, n_backends, acc, job.trials, levels, seconds,
                             spice ? &circ : NULL, &pair, &err)))
        goto done;
    char desc[256];
    if (!job.quiet)
        fprintf(stderr, "%s, %zu test images of %s\n", xb_mlp_describe(m, desc, sizeof desc), test->n, job.spec);
    for (int b = 0; b < n_backends; b++)
        printf("%-10s accuracy %.2f%% (%zu/%zu, 95%% CI %.2f-%.2f%%)\n", r[b].backend, 100 * r[b].accuracy,
               r[b].correct, r[b].n, 100 * r[b].ci95_lo, 100 * r[b].ci95_hi);
    if (spice) {
        printf("behavioral vs spice: %zu of %zu predictions agree; McNemar p = %.3g (%zu/%zu discordant); "
               "%zu solves retried, %zu failed; %s, peak worker memory %.1f MB\n",
               pair.agree, test->n, pair.p, pair.only_a, pair.only_b, circ.pool.stats.inputs_retried, circ.pool.stats.inputs_failed,
               circ.pool.stats.solver, circ.pool.stats.peak_rss_kb / 1024.0);
        printf("dACC: behavioral %+.2f%%, spice %+.2f%% against ideal; spice %+.2f%% against behavioral\n",
               100 * (r[1].accuracy - r[0].accuracy), 100 * (r[2].accuracy - r[0].accuracy),
               100 * (r[2].accuracy - r[1].accuracy));
        const xb_pool_stats *ps = &circ.pool.stats;
        if (circ.pool.o.linear)
            printf("linear mode: error against exact solves of %zu column currents (%zu random inputs, seed %lu): "
                   "max %.3g, mean %.3g (of each tile's largest current)\n",
                   ps->linear_checked, ps->linear_sampled, circ.pool.o.linear_seed, ps->linear_err_max,
                   ps->linear_checked ? ps->linear_err_sum / (double)ps->linear_checked : NAN);
    }
    if (job.trials) {
        xb_mc_stats s;
        xb_mc_stats_of(acc, job.trials, &s);
        xb_mc_stats_clamp(&s, 0, 1);
        printf("%zu trials: accuracy %.2f%% +- %.2f%% (95%% CI of the mean %.2f-%.2f%%), dACC %+.2f%%\n",
               job.trials, 100 * s.mean, 100 * s.std, 100 * s.ci95_lo, 100 * s.ci95_hi,
               100 * (s.mean - r[0].accuracy));
    }
    printf("results -> %s/\n", job.out);
done:
    free(acc);
    free(pred[0]);
    free(pred[1]);
    free(pred[2]);
    xb_circuit_free(&circ);
    gsl_rng_free(rng);
    xb_behav_free(&bm);
    xb_chip_free(&chip);
    xb_chip_free(&base);
    xb_confusion_free(&conf);
    xb_mlp_free(&m);
    xb_dataset_free(&test);
    xb_dataset_free(&cal);
    return xb_cli_fail("eval", rc, &err);
}

const xb_command xb_cmd_eval = {"eval", run,
                                "classify the test split: ideal software, behavioral crossbar model, or ngspice circuit",
                                {usage, usage_spice}};
