// cmd_eval: `xbarsim eval`, classify a test split in software and on a (simulated) chip, write the results
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chipopts.h"
#include "cli.h"
#include "mlp.h"
#include "mpi_exec.h"
#include "pipeline.h"

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
    "      --jobs N              worker processes, each with its own libngspice (default: the core count;\n"
    "                            under mpirun, per rank: docs/cluster.md)\n"
    "      --chunk N             inputs per work unit (default 250); done units wait in OUT/.units\n"
    "                            for a rerun to resume\n"
    "      --cells 1t1r|linear|gap  1T1R cells (default), linear resistors, or 1T1R with the <rram> gap model\n"
    "      --r-row OHM           wire resistance per cell segment of a row line (default 1)\n"
    "      --r-col OHM           wire resistance per cell segment of a column line (default 1)\n"
    "      --rram-v0 V           RRAM sinh I-V nonlinearity voltage (default 0: linear RRAM)\n"
    "      --spice-mode exact|linear  exact: every input solved by ngspice (default); linear: per tile, R\n"
    "                            unit-input solves give the transfer matrix (IR drop included) and each\n"
    "                            input is one product; exact only for linear cells (--cells linear)\n"
    "      --linear-sample N     inputs per layer, drawn at random (mt19937, --seed), re-solved exactly to\n"
    "                            measure the linear mode's error (default 20)\n"
    "      --spice-rows external|pwl  how the library driver feeds the row voltages: external sources\n"
    "                            through a callback, or a piecewise-linear source per row (default: the\n"
    "                            faster as measured, docs/circuit.md); run.json records which one ran\n"
    ;
static const char usage_spice2[] =
    "      --energy              also measure each tile's energy per input and settling time on each\n"
    "                            layer's first inputs (energy.csv, energy-plot, run.json; docs/circuit.md)\n"
    "      --energy-inputs N     inputs per layer measured (default 8); each option below implies --energy\n"
    "      --read-time S         read time: energy = power x S (default 100e-9, ISAAC's read cycle)\n"
    "      --adc-energy J        energy per ADC conversion (default 1.5625e-12: ISAAC's 8-bit ADC)\n"
    "      --dac-energy J        energy per DAC conversion (default 3.05e-15: ISAAC's 1-bit DAC)\n"
    "      --c-wire F            capacitance per wire segment of the settling transient (default 0.2e-15)\n"
    "      --settle-fraction F   settled: column currents within F of the final one (default 1e-3)\n"
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
       O_CELLS, O_RROW, O_RCOL, O_V0, O_MODE, O_SAMPLE, O_ROWS, O_ENERGY, O_E_INPUTS, O_T_READ, O_E_ADC, O_E_DAC,
       O_C_WIRE, O_SETTLE };

/* A sum over the tiles of e: 0 sources, 1 cells, 2 wires, 3 ADC, 4 DAC; 5: the longest settling time. */
static double energy_part(const xb_energy *e, int what)
{
    double sum = 0;
    for (size_t k = 0; k < e->n_tiles; k++) {
        const xb_tile_energy *t = &e->tiles[k];
        double v[6] = {t->e_src_J, t->e_cell_J, t->e_wire_J, t->e_adc_J, t->e_dac_J, t->t_settle_s};
        sum = what == 5 ? fmax(sum, v[5]) : sum + v[what];
    }
    return sum;
}

/* The result lines on stdout (the files hold the same numbers). */
static void print_result(const xb_eval_spec *job, const xb_eval_result *res)
{
    const xb_class_result *r = res->r;
    if (!job->quiet)
        fprintf(stderr, "%s, %zu test images of %s\n", res->network, res->n_test, job->dataset);
    for (int b = 0; b < res->n_backends; b++)
        printf("%-10s accuracy %.2f%% (%zu/%zu, 95%% CI %.2f-%.2f%%)\n", r[b].backend, 100 * r[b].accuracy,
               r[b].correct, r[b].n, 100 * r[b].ci95_lo, 100 * r[b].ci95_hi);
    if (job->backend == XB_EVAL_SPICE) {
        const xb_pool_stats *ps = &res->circ.pool.stats;
        const xb_paired *pair = &res->pair;
        printf("behavioral vs spice: %zu of %zu predictions agree; McNemar p = %.3g (%zu/%zu discordant); "
               "%zu solves retried, %zu failed; %s, peak worker memory %.1f MB\n",
               pair->agree, res->n_test, pair->p, pair->only_a, pair->only_b, ps->inputs_retried, ps->inputs_failed,
               ps->solver, ps->peak_rss_kb / 1024.0);
        if (xb_mpi_size() > 1)
            printf("circuit solves on %d MPI ranks x %d workers (%s)\n", xb_mpi_size(), res->circ.pool.o.jobs,
                   xb_mpi_library());
        printf("dACC: behavioral %+.2f%%, spice %+.2f%% against ideal; spice %+.2f%% against behavioral\n",
               100 * (r[1].accuracy - r[0].accuracy), 100 * (r[2].accuracy - r[0].accuracy),
               100 * (r[2].accuracy - r[1].accuracy));
        if (job->energy.on && res->energy.n_tiles)
            printf("energy per inference: %.4g J (circuit %.4g J: cells %.4g J, wires %.4g J; ADC %.4g J, DAC %.4g J) "
                   "over %zu tiles, read time %g s; settling %.4g s per inference (longest tile %.4g s)\n",
                   xb_energy_total_J(&res->energy, -1), energy_part(&res->energy, 0), energy_part(&res->energy, 1),
                   energy_part(&res->energy, 2), energy_part(&res->energy, 3), energy_part(&res->energy, 4),
                   res->energy.n_tiles, res->energy.o.t_read_s, xb_energy_settle_s(&res->energy, -1),
                   energy_part(&res->energy, 5));
        if (res->circ.pool.o.linear)
            printf("linear mode: error against exact solves of %zu column currents (%zu random inputs, seed %lu): "
                   "max %.3g, mean %.3g (of each tile's largest current)\n",
                   ps->linear_checked, ps->linear_sampled, res->circ.pool.o.linear_seed, ps->linear_err_max,
                   ps->linear_checked ? ps->linear_err_sum / (double)ps->linear_checked : NAN);
    }
    if (res->trials) {
        xb_mc_stats s;
        xb_mc_stats_of(res->acc, res->trials, &s);
        xb_mc_stats_clamp(&s, 0, 1);
        printf("%zu trials: accuracy %.2f%% +- %.2f%% (95%% CI of the mean %.2f-%.2f%%), dACC %+.2f%%\n",
               res->trials, 100 * s.mean, 100 * s.std, 100 * s.ci95_lo, 100 * s.ci95_hi,
               100 * (s.mean - r[0].accuracy));
    }
    printf("results -> %s/\n", job->out);
}

static int run(int argc, char **argv)
{
    xb_eval_spec job;
    xb_eval_spec_defaults(&job);
    xb_cli_chip chip_opt;
    xb_cli_chip_defaults(&chip_opt);
    const char *act_s = NULL, *backend = "ideal";
    size_t threads = 0;
    size_t jobs_n = (size_t)job.pool.jobs;
    struct option opts[48] = {
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
        {"spice-mode", required_argument, 0, O_MODE}, {"linear-sample", required_argument, 0, O_SAMPLE},
        {"spice-rows", required_argument, 0, O_ROWS}, {"energy", no_argument, 0, O_ENERGY},
        {"energy-inputs", required_argument, 0, O_E_INPUTS}, {"read-time", required_argument, 0, O_T_READ},
        {"adc-energy", required_argument, 0, O_E_ADC}, {"dac-energy", required_argument, 0, O_E_DAC},
        {"c-wire", required_argument, 0, O_C_WIRE}, {"settle-fraction", required_argument, 0, O_SETTLE}};
    int n_opts = 32;
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
        if (xb_cli_chip_option("eval", c, optarg, &chip_opt, &bad) ||
            xb_cli_spice_option("eval", c, optarg, &job.pool, &bad))
            continue;
        switch (c) {
        case 'w': job.weights = optarg; break;
        case 'd': job.dataset = optarg; break;
        case 'B': backend = optarg; break;
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
            if (strcmp(optarg, "1t1r") && strcmp(optarg, "linear") && strcmp(optarg, "gap"))
                bad = xb_cli_usage_error("eval", "--cells '%s': expected 1t1r, linear or gap", optarg);
            job.pool.net.linear_cells = !strcmp(optarg, "linear");
            job.pool.net.gap_cells = !strcmp(optarg, "gap");
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
        case O_ROWS:
            if (strcmp(optarg, "external") && strcmp(optarg, "pwl"))
                bad = xb_cli_usage_error("eval", "--spice-rows '%s': expected external or pwl", optarg);
            job.pool.net.row_drive = !strcmp(optarg, "pwl") ? XB_ROWS_PWL : XB_ROWS_EXTERNAL;
            break;
        case O_ENERGY: job.energy.on = 1; break;
        case O_E_INPUTS:
            bad = xb_cli_size("eval", "--energy-inputs", optarg, 1, 100000, &job.energy.inputs);
            job.energy.on = 1;
            break;
        case O_T_READ:
            bad = xb_cli_double("eval", "--read-time", optarg, 1e-15, 1, &job.energy.t_read_s);
            job.energy.on = 1;
            break;
        case O_E_ADC:
            bad = xb_cli_double("eval", "--adc-energy", optarg, 0, 1e-6, &job.energy.adc_J);
            job.energy.on = 1;
            break;
        case O_E_DAC:
            bad = xb_cli_double("eval", "--dac-energy", optarg, 0, 1e-6, &job.energy.dac_J);
            job.energy.on = 1;
            break;
        case O_C_WIRE:
            bad = xb_cli_double("eval", "--c-wire", optarg, 0, 1e-9, &job.energy.c_wire_F);
            job.energy.on = 1;
            break;
        case O_SETTLE:
            bad = xb_cli_double("eval", "--settle-fraction", optarg, 1e-9, 0.5, &job.energy.settle_frac);
            job.energy.on = 1;
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
    int spice = !strcmp(backend, "spice");
    int behavioral = spice || !strcmp(backend, "behavioral");
    if (!behavioral && strcmp(backend, "ideal"))
        return xb_cli_usage_error("eval", "--backend '%s': expected ideal, behavioral or spice", backend);
    if (!behavioral && (job.trials || job.n_perturb || job.chip_path))
        return xb_cli_usage_error("eval", "--trials, --perturb and --chip need --backend behavioral or spice");
    job.backend = spice ? XB_EVAL_SPICE : behavioral ? XB_EVAL_BEHAVIORAL : XB_EVAL_IDEAL;
    if (act_s && (job.hidden_activation = xb_activation_parse(act_s)) < 0)
        return xb_cli_usage_error("eval", "--activation '%s': expected sigmoid, relu or identity", act_s);
    xb_cli_set_threads((int)threads);
    job.device = chip_opt.device;
    job.chip = chip_opt.spec;
    job.net = chip_opt.net;
    const char *texts[5] = {chip_opt.levels, chip_opt.norm, chip_opt.mapping, chip_opt.bias, chip_opt.tile};
    memcpy(job.chip_text, texts, sizeof texts);
    job.argc = argc;
    job.argv = argv;

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
        snprintf(out_buf, sizeof out_buf, "results/eval/%s-%s", base, backend);
        job.out = out_buf;
    }
    if (xb_cli_out_dir("eval", "--out", job.out))
        return 2;

    xb_error err = {0};
    xb_eval_result res;
    int rc = xb_eval_run(&job, &res, &err);
    if (!rc)
        print_result(&job, &res);
    xb_eval_result_free(&res);
    return xb_cli_fail("eval", rc, &err);
}

const xb_command xb_cmd_eval = {"eval", run,
                                "classify the test split: ideal software, behavioral crossbar model, or ngspice circuit",
                                {usage, usage_spice, usage_spice2, XB_CLI_NET_USAGE}};
