// bench_spice: per-input solve of a 64x64 1T1R tile with wire parasitics, five ways, on each solver, in one run
//
// usage: bench_spice [inputs] [cells: 1t1r|linear] [pwl chunk]   (defaults: 40, 1t1r, 250)
//   a) a fresh `ngspice -b` process per input on a generated `op` deck (the baseline)
//   b) libngspice: `alter` + `op` per input (re-orders and re-factors every time)
//   c) one `ngspice -b` process: pwl(v(idx)) row sources and one `dc` sweep over all inputs
//   d) libngspice, `external` row sources (GetVSRCData), the deck loaded once, one `dc` sweep
//   e) libngspice, pwl(v(idx)) row sources, one deck and one `dc` sweep per chunk of inputs
// Each way runs on KLU and on Sparse 1.3 where the library has both (43 and later: `.options klu` /
// `.options sparse` in the same library; before 43 Sparse 1.3 only), the solver checked against what
// ngspice says it ran. Prints wall and CPU seconds per input, each way's speed-up over (a) of the same
// solver, the ratio of the two library paths (d, e), which decides the driver's default (ngspice.c), and
// the KLU / Sparse ratio of the default path. CPU seconds are this process's (b, d, e) or its children's
// (a, c): steadier than wall time on a busy machine. Target: the driver's default path at least 10x faster
// than (a).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "chip.h"
#include "device.h"
#include "netlist.h"
#include "ngspice.h"
#include "progress.h"

static xb_chip *random_tile(gsl_rng *rng, const xb_device *dev)
{
    size_t sizes[2] = {64, 32};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    xb_map_options o;
    xb_map_defaults(&o);
    o.bias = XB_BIAS_DIGITAL;
    o.g_min_S = dev->g_hrs_S;
    o.g_max_S = xb_device_level_G(dev, dev->n_levels - 1);
    xb_chip *c = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, NULL);
    xb_mlp_free(&m);
    /* Every cell at one of the device's levels. */
    for (size_t i = 0; i < 64 * 64; i++)
        c->layers[0].g_S[i] = xb_device_level_G(dev, (int)gsl_rng_uniform_int(rng, (unsigned long)dev->n_levels));
    return c;
}

/* CPU seconds of this process (self) or of its waited-for children. */
static double cpu_seconds(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

typedef struct timing {
    double wall, cpu; /* seconds per input */
} timing;

static timing write_and_run(const char *path, const xb_chip *c, const xb_device *dev, const xb_netlist_options *o,
                            xb_deck_kind kind, const double *v, size_t n)
{
    FILE *fp = fopen(path, "w");
    if (!fp || xb_netlist_write_tile(fp, c, 0, 0, 0, dev, o, kind, v, n, "bench_spice", NULL) != XB_OK)
        fprintf(stderr, "bench_spice: cannot write %s\n", path);
    if (fp)
        fclose(fp);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ngspice -b %s > %s.out 2>&1", path, path);
    double t0 = xb_now(), c0 = cpu_seconds(RUSAGE_CHILDREN);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_spice: ngspice -b %s failed\n", path);
    timing t = {xb_now() - t0, cpu_seconds(RUSAGE_CHILDREN) - c0};
    /* 43 and later say which solver they ran: it must be the one the deck names. */
    if (o->solver != XB_SOLVER_AUTO) {
        snprintf(cmd, sizeof cmd, "grep -q 'Using %s as Direct Linear Solver' %s.out", o->solver == XB_SOLVER_KLU ?
                 "KLU" : "SPARSE 1.3", path);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_spice: ngspice -b %s did not run the solver its deck names\n", path);
    }
    return t;
}

/* One library solve of n inputs, timed. */
static timing library(xb_spice *s, const xb_chip *c, const xb_device *dev, const xb_netlist_options *o,
                      const double *v, size_t n, double *out, int op)
{
    xb_error err = {0};
    double t0 = xb_now(), c0 = cpu_seconds(RUSAGE_SELF);
    int rc = op ? xb_spice_solve_tile_op(s, c, 0, 0, 0, dev, o, v, n, out, &err)
                : xb_spice_solve_tile(s, c, 0, 0, 0, dev, o, v, n, out, NULL, &err);
    if (rc)
        fprintf(stderr, "bench_spice: %s\n", err.msg);
    if (o->solver != XB_SOLVER_AUTO && xb_spice_klu(s) != (o->solver == XB_SOLVER_KLU))
        fprintf(stderr, "bench_spice: ngspice ran %s, not the solver asked for\n", xb_spice_solver_name(s));
    return (timing){(xb_now() - t0) / (double)n, (cpu_seconds(RUSAGE_SELF) - c0) / (double)n};
}

static double worst_rel(const double *a, const double *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / fmax(fabs(a[i]), 1e-30));
    return w;
}

/* The five ways on one solver. */
typedef struct ways {
    timing a, b, c, d, e, one_ext, one_pwl;
    double *ib, *id, *ie; /* column currents of b, d, e */
} ways;

static void run_ways(xb_spice *s, const xb_chip *c, const xb_device *dev, xb_netlist_options o, const double *v,
                     size_t n, size_t n_slow, int solver, int pwl_first, ways *w)
{
    o.solver = solver;
    w->a = (timing){0, 0};
    for (size_t k = 0; k < n_slow; k++) {
        timing t = write_and_run("op.cir", c, dev, &o, XB_DECK_OP, v + k * 64, 1);
        w->a.wall += t.wall / (double)n_slow;
        w->a.cpu += t.cpu / (double)n_slow;
    }
    w->c = write_and_run("sweep.cir", c, dev, &o, XB_DECK_SWEEP, v, n);
    w->c.wall /= (double)n;
    w->c.cpu /= (double)n;
    w->b = library(s, c, dev, &o, v, n_slow, w->ib, 1);
    /* One order on one solver, the other on the other, so neither path always runs on a warmer cache. */
    for (int q = 0; q < 2; q++) {
        o.row_drive = (q == 0) == (pwl_first != 0) ? XB_ROWS_PWL : XB_ROWS_EXTERNAL;
        timing t = library(s, c, dev, &o, v, n, o.row_drive == XB_ROWS_PWL ? w->ie : w->id, 0);
        *(o.row_drive == XB_ROWS_PWL ? &w->e : &w->d) = t;
    }
    /* What one deck costs to parse and load: a one-input solve is mostly that. */
    double first[64];
    o.row_drive = XB_ROWS_PWL;
    w->one_pwl = library(s, c, dev, &o, v, 1, first, 0);
    o.row_drive = XB_ROWS_EXTERNAL;
    w->one_ext = library(s, c, dev, &o, v, 1, first, 0);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 40;
    int linear = argc > 2 && !strcmp(argv[2], "linear");
    size_t chunk = argc > 3 ? (size_t)atoi(argv[3]) : 250;
    if (n < 1 || chunk < 1) {
        fprintf(stderr, "usage: bench_spice [inputs >= 1] [1t1r|linear] [pwl chunk >= 1]\n");
        return 2;
    }
    size_t n_slow = n < 5 ? n : 5; /* the slow ways (a, b: seconds per input on Sparse) on a sample */
    char dir[] = "/tmp/xb_bench_spice_XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    setenv("HOME", dir, 1);
    xb_device dev;
    xb_device_defaults(&dev);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    xb_chip *c = random_tile(rng, &dev);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = linear;
    o.pwl_chunk = chunk;
    double *v = malloc(n * 64 * sizeof *v);
    for (size_t i = 0; i < n * 64; i++)
        v[i] = dev.v_read_V * gsl_rng_uniform(rng);

    xb_error err = {0};
    xb_spice *s = NULL;
    if (xb_spice_open("ngspice.log", &s, &err)) {
        fprintf(stderr, "bench_spice: %s\n", err.msg);
        return 1;
    }
    /* [0] KLU, [1] Sparse 1.3; a library before 43 has only the second. */
    int has_klu = xb_spice_version(s) >= 43;
    static const int solver[2] = {XB_SOLVER_KLU, XB_SOLVER_SPARSE};
    static const char *const name[2] = {"KLU", "Sparse 1.3"};
    ways w[2];
    for (int q = 0; q < 2; q++) {
        w[q].ib = malloc(n * 64 * sizeof(double));
        w[q].id = malloc(n * 64 * sizeof(double));
        w[q].ie = malloc(n * 64 * sizeof(double));
        if (q == 0 && !has_klu)
            continue;
        run_ways(s, c, &dev, o, v, n, n_slow, solver[q], q, &w[q]);
    }
    xb_netlist_options def;
    xb_netlist_defaults(&def);
    int dflt = xb_spice_rows_path(s, &def);

    printf("bench_spice: 64x64 %s tile, 1 ohm per wire segment, ngspice %d, %zu inputs (%zu for a, b), "
           "pwl chunks of %zu; seconds per input, speed-up over a of the same solver (CPU)\n",
           linear ? "linear-cell" : "1T1R", xb_spice_version(s), n, n_slow, chunk);
    printf("                                       ");
    for (int q = has_klu ? 0 : 1; q < 2; q++)
        printf("  %-10s  wall      CPU   speed-up", name[q]);
    printf("\n");
    static const char *const label[5] = {"a) ngspice -b process per input", "b) library alter + op per input",
                                         "c) ngspice -b, pwl rows, one dc", "d) library external rows, one dc",
                                         "e) library pwl rows, one dc per chunk"};
    for (int k = 0; k < 5; k++) {
        printf("  %-37s", label[k]);
        for (int q = has_klu ? 0 : 1; q < 2; q++) {
            const timing *t = k == 0 ? &w[q].a : k == 1 ? &w[q].b : k == 2 ? &w[q].c : k == 3 ? &w[q].d : &w[q].e;
            printf("  %10s %8.4f %8.4f %8.1fx", "", t->wall, t->cpu, w[q].a.cpu / t->cpu);
        }
        printf("\n");
    }
    for (int q = has_klu ? 0 : 1; q < 2; q++) {
        const ways *x = &w[q];
        const timing *tdef = dflt == XB_ROWS_PWL ? &x->e : &x->d;
        printf("  %s: pwl / external = %.3f (CPU), %.3f (wall), the faster: %s; one-input solve (mostly loading "
               "the deck): external %.4f s, pwl %.4f s\n", name[q], x->e.cpu / x->d.cpu, x->e.wall / x->d.wall,
               x->e.cpu < x->d.cpu ? "pwl" : "external", x->one_ext.wall, x->one_pwl.wall);
        printf("  %s: the driver's default, %s rows, %.1fx faster than a process per input (target >= 10x: %s)\n",
               name[q], xb_spice_rows_name(dflt), x->a.cpu / tdef->cpu, x->a.cpu / tdef->cpu >= 10 ? "met" : "missed");
        printf("  %s: column currents, b vs d largest relative difference %.2g, d vs e %.2g\n", name[q],
               worst_rel(x->ib, x->id, n_slow * 64), worst_rel(x->id + 64, x->ie + 64, (n - 1) * 64));
    }
    if (has_klu) {
        const timing *k = dflt == XB_ROWS_PWL ? &w[0].e : &w[0].d, *sp = dflt == XB_ROWS_PWL ? &w[1].e : &w[1].d;
        printf("  KLU / Sparse 1.3 on the default path (%s rows): %.3f CPU, %.3f wall (KLU %.1fx faster); "
               "currents differ by %.2g relative at most\n", xb_spice_rows_name(dflt), k->cpu / sp->cpu,
               k->wall / sp->wall, sp->cpu / k->cpu,
               worst_rel(dflt == XB_ROWS_PWL ? w[0].ie : w[0].id, dflt == XB_ROWS_PWL ? w[1].ie : w[1].id, n * 64));
    }
    printf("  peak memory of this process: %.1f MB\n", xb_spice_peak_rss_kb() / 1024.0);
    xb_spice_close(&s);
    xb_chip_free(&c);
    free(v);
    for (int q = 0; q < 2; q++)
        free(w[q].ib), free(w[q].id), free(w[q].ie);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
