// cmd_run: `xbarsim run TESTBENCH.xml`, run an experiment description and write its results folder
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"
#include "testbench.h"

static const char usage[] =
    "usage: xbarsim run TESTBENCH.xml [options]\n"
    "\n"
    "Run a testbench: an XML description of a study (testbenches/*.xml; the format is docs/testbench.md,\n"
    "the schema testbenches/testbench.xsd, checked before anything runs). It names the dataset, the\n"
    "network (trained here or loaded), the device, the chip mapping, level sets, backends, perturbations,\n"
    "Monte Carlo trials and a sweep over any of their parameters. Writes into the results folder:\n"
    "points.csv (one row per point and trial), summary.csv (per point and backend: mean, std, 95%\n"
    "intervals), predictions.csv (spice runs), the tables of <midpoint>, <spearman>, <kruskal>, <mcnemar>,\n"
    "plots/ (data, gnuplot script, SVG and PNG of every figure), example/ (one tile's netlist and, where\n"
    "they apply, the CDF of programmed read currents, circuit against behavioral currents and the IR-drop\n"
    "map), run.json (provenance) and testbench.xml. Finished points are kept in state/: a run that stops\n"
    "resumes where it stopped, and after an edit only points whose configuration changed are computed.\n"
    "A point's finished circuit units are kept too (state/units/), so a point stopped partway through\n"
    "resumes inside it, solving only the units not yet done.\n"
    "A programming study (a <programming> element) programs the device's levels by the statistical and/or\n"
    "the circuit write-verify instead and writes programming.csv (per point, trial, method and level),\n"
    "programming/point-K/ (cells, CDFs, pulse histograms) and plots/cdf-point-K.\n"
    "\n"
    "      --quick               few images, trials and training epochs (the testbench's <quick> element;\n"
    "                            default 500 images, 2 trials, 1 epoch on 5000 training images; 4 cells\n"
    "                            per level in a programming study)\n"
    "  -o, --out DIR             results folder (default results/NAME, or results/NAME-quick)\n"
    "      --fresh               recompute every point: discard finished points and trained networks\n"
    "      --jobs N              ngspice worker processes for spice backends (default: the testbench's;\n"
    "                            under mpirun, per rank: docs/cluster.md)\n"
    "      --no-render           write plot data and gnuplot scripts, but do not run gnuplot\n"
    "      --list                print the points and their parameters, run nothing\n"
    "  -j, --threads N           BLAS threads (default: the library's)\n"
    "  -q, --quiet               only the final lines\n"
    "\n"
    "examples:\n"
    "  xbarsim run testbenches/c2c-ar-sigma.xml --quick\n"
    "  xbarsim run testbenches/circuit-vs-behavioral.xml --jobs 2\n"
    "  xbarsim run testbenches/igvva-circuit-vs-statistical.xml --quick\n";

enum { O_QUICK = 1000, O_FRESH, O_JOBS, O_NO_RENDER, O_LIST };

static void list_points(const xb_tb *tb)
{
    printf("%s: %zu point%s\n", xb_tb_name(tb), xb_tb_n_points(tb), xb_tb_n_points(tb) == 1 ? "" : "s");
    printf("point\tgrid");
    for (size_t c = 0; c < xb_tb_n_columns(tb); c++)
        printf("\t%s", xb_tb_column(tb, c));
    putchar('\n');
    for (size_t k = 0; k < xb_tb_n_points(tb); k++) {
        printf("%zu\t%s", k + 1, xb_tb_grid(tb, k));
        for (size_t c = 0; c < xb_tb_n_columns(tb); c++)
            printf("\t%s", xb_tb_value(tb, k, c));
        putchar('\n');
    }
}

/* Append s to buf as one shell word. */
static void put_word(char *buf, size_t len, const char *s)
{
    size_t at = strlen(buf);
    int plain = s[0] != '\0';
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%", *p))
            plain = 0;
    if (at + 1 < len && at)
        buf[at++] = ' ';
    if (!plain && at + 1 < len)
        buf[at++] = '\'';
    for (const char *p = s; *p && at + 5 < len; p++) {
        if (*p == '\'') {
            memcpy(buf + at, "'\\''", 4);
            at += 4;
        } else {
            buf[at++] = *p;
        }
    }
    if (!plain && at + 1 < len)
        buf[at++] = '\'';
    buf[at < len ? at : len - 1] = '\0';
}

/* What a stopped run prints: the command that resumes it (this one without --fresh), runnable from
 * any folder. */
static void set_resume_hint(int argc, char **argv, const char *out)
{
    char cmd[8000] = "", cwd[4096];
    if (getcwd(cwd, sizeof cwd)) {
        put_word(cmd, sizeof cmd, "cd");
        put_word(cmd, sizeof cmd, cwd);
        size_t at = strlen(cmd);
        snprintf(cmd + at, sizeof cmd - at, " &&");
    }
    put_word(cmd, sizeof cmd, xb_cli_program());
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--fresh"))
            put_word(cmd, sizeof cmd, argv[i]);
    char hint[8192];
    snprintf(hint, sizeof hint, "the finished points and circuit units are kept in %s/state; resume with:\n  %s\n", out, cmd);
    xb_cli_set_resume_hint(hint);
}

static int run(int argc, char **argv)
{
    xb_run_options o;
    xb_run_defaults(&o);
    o.argc = argc;
    o.argv = argv;
    size_t jobs = 0, threads = 0;
    int list = 0;
    struct option opts[] = {{"quick", no_argument, 0, O_QUICK},     {"out", required_argument, 0, 'o'},
                            {"fresh", no_argument, 0, O_FRESH},     {"jobs", required_argument, 0, O_JOBS},
                            {"no-render", no_argument, 0, O_NO_RENDER}, {"list", no_argument, 0, O_LIST},
                            {"threads", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},
                            {0, 0, 0, 0}};
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":o:j:q", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case O_QUICK: o.quick = 1; break;
        case 'o': o.out = optarg; break;
        case O_FRESH: o.fresh = 1; break;
        case O_JOBS: bad = xb_cli_size("run", "--jobs", optarg, 1, 1024, &jobs); break;
        case O_NO_RENDER: o.render = 0; break;
        case O_LIST: list = 1; break;
        case 'j': bad = xb_cli_size("run", "--threads", optarg, 1, 1024, &threads); break;
        case 'q': o.quiet = 1; break;
        case ':': return xb_cli_usage_error("run", "option %s needs a value", opt);
        default: return xb_cli_usage_error("run", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind >= argc)
        return xb_cli_usage_error("run", "a testbench file is required, e.g. testbenches/c2c-ar-sigma.xml");
    if (optind + 1 < argc)
        return xb_cli_usage_error("run", "unexpected argument '%s' (one testbench per run)", argv[optind + 1]);
    o.jobs = (int)jobs;
    if (o.out && !list && xb_cli_out_dir("run", "--out", o.out))
        return 2;
    xb_cli_set_threads((int)threads);
    xb_error err = {0};
    xb_tb *tb = NULL;
    int rc = xb_tb_load(argv[optind], NULL, &tb, &err);
    if (!rc && list) {
        list_points(tb);
    } else if (!rc) {
        char out[4096];
        if (o.out)
            snprintf(out, sizeof out, "%s", o.out);
        else
            xb_run_default_out(tb, o.quick, out, sizeof out);
        set_resume_hint(argc, argv, out);
        rc = xb_run_testbench(tb, &o, &err);
    }
    xb_tb_free(&tb);
    return xb_cli_fail("run", rc, &err);
}

const xb_command xb_cmd_run = {"run", run, "run a testbench (XML study): sweeps, Monte Carlo, statistics, plots",
                               {usage}};
