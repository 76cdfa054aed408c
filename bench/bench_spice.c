// bench_spice: per-input solve of a 64x64 1T1R tile with wire parasitics, five ways, in one run
//
// usage: bench_spice [inputs] [cells: 1t1r|linear] [pwl chunk]   (defaults: 100, 1t1r, 250)
//   a) a fresh `ngspice -b` process per input on a generated `op` deck (the baseline)
//   b) libngspice: `alter` + `op` per input (re-orders and re-factors every time)
//   c) one `ngspice -b` process: pwl(v(idx)) row sources and one `dc` sweep over all inputs
//   d) libngspice, `external` row sources (GetVSRCData), the deck loaded once, one `dc` sweep
//   e) libngspice, pwl(v(idx)) row sources, one deck and one `dc` sweep per chunk of inputs
// Prints wall and CPU seconds per input and each way's speed-up over (a), and the ratio of the two
// library paths (d, e) on the same tile and inputs, which decides the driver's default (ngspice.c).
// CPU seconds are this process's (b, d, e) or its children's (a, c): steadier than wall time on a busy
// machine. Target: the driver's default path at least 10x faster than (a).
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
    return (timing){xb_now() - t0, cpu_seconds(RUSAGE_CHILDREN) - c0};
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
    return (timing){(xb_now() - t0) / (double)n, (cpu_seconds(RUSAGE_SELF) - c0) / (double)n};
}

static double worst_rel(const double *a, const double *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / fmax(fabs(a[i]), 1e-30));
    return w;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 100;
    int linear = argc > 2 && !strcmp(argv[2], "linear");
    size_t chunk = argc > 3 ? (size_t)atoi(argv[3]) : 250;
    if (n < 1 || chunk < 1) {
        fprintf(stderr, "usage: bench_spice [inputs >= 1] [1t1r|linear] [pwl chunk >= 1]\n");
        return 2;
    }
    size_t n_slow = n < 20 ? n : 20; /* the slow ways on a sample of the inputs */
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
    double *v = malloc(n * 64 * sizeof *v), *ib = malloc(n * 64 * sizeof *ib), *id = malloc(n * 64 * sizeof *id),
           *ie = malloc(n * 64 * sizeof *ie);
    for (size_t i = 0; i < n * 64; i++)
        v[i] = dev.v_read_V * gsl_rng_uniform(rng);

    timing ta = {0, 0};
    for (size_t k = 0; k < n_slow; k++) {
        timing t = write_and_run("op.cir", c, &dev, &o, XB_DECK_OP, v + k * 64, 1);
        ta.wall += t.wall / (double)n_slow;
        ta.cpu += t.cpu / (double)n_slow;
    }
    timing tc = write_and_run("sweep.cir", c, &dev, &o, XB_DECK_SWEEP, v, n);
    tc.wall /= (double)n;
    tc.cpu /= (double)n;

    xb_error err = {0};
    xb_spice *s = NULL;
    if (xb_spice_open("ngspice.log", &s, &err)) {
        fprintf(stderr, "bench_spice: %s\n", err.msg);
        return 1;
    }
    timing tb = library(s, c, &dev, &o, v, n_slow, ib, 1);
    o.row_drive = XB_ROWS_EXTERNAL;
    timing td = library(s, c, &dev, &o, v, n, id, 0);
    o.row_drive = XB_ROWS_PWL;
    timing te = library(s, c, &dev, &o, v, n, ie, 0);
    /* The other order too, so neither path always runs on a warmer cache. */
    timing te2 = library(s, c, &dev, &o, v, n, ie, 0);
    o.row_drive = XB_ROWS_EXTERNAL;
    timing td2 = library(s, c, &dev, &o, v, n, id, 0);
    td = (timing){(td.wall + td2.wall) / 2, (td.cpu + td2.cpu) / 2};
    te = (timing){(te.wall + te2.wall) / 2, (te.cpu + te2.cpu) / 2};
    /* What one pwl deck costs to parse and load: a one-input solve is mostly that. */
    o.row_drive = XB_ROWS_PWL;
    timing t1 = library(s, c, &dev, &o, v, 1, ie + 0, 0);
    o.row_drive = XB_ROWS_EXTERNAL;
    timing t1x = library(s, c, &dev, &o, v, 1, id + 0, 0);
    xb_netlist_options def;
    xb_netlist_defaults(&def);
    int dflt = xb_spice_rows_path(s, &def);
    timing tdef = dflt == XB_ROWS_PWL ? te : td;

    printf("bench_spice: 64x64 %s tile, 1 ohm per wire segment, ngspice %d (%s), %zu inputs (%zu for a, b), "
           "pwl chunks of %zu\n",
           linear ? "linear-cell" : "1T1R", xb_spice_version(s), xb_spice_solver_name(s), n, n_slow, chunk);
    printf("                                          wall s/input  CPU s/input  speed-up over a (CPU)\n");
    printf("  a) ngspice -b process per input          %9.4f   %9.4f      1.0x\n", ta.wall, ta.cpu);
    printf("  b) library alter + op per input          %9.4f   %9.4f   %6.1fx\n", tb.wall, tb.cpu, ta.cpu / tb.cpu);
    printf("  c) ngspice -b, pwl rows, one dc          %9.4f   %9.4f   %6.1fx\n", tc.wall, tc.cpu, ta.cpu / tc.cpu);
    printf("  d) library external rows, one dc         %9.4f   %9.4f   %6.1fx\n", td.wall, td.cpu, ta.cpu / td.cpu);
    printf("  e) library pwl rows, one dc per chunk    %9.4f   %9.4f   %6.1fx\n", te.wall, te.cpu, ta.cpu / te.cpu);
    printf("  d vs e on the same tile: pwl / external = %.3f (CPU), %.3f (wall); the faster: %s\n", te.cpu / td.cpu,
           te.wall / td.wall, te.cpu < td.cpu ? "pwl" : "external");
    printf("  one-input solve (mostly loading the deck): external %.4f s, pwl %.4f s\n", t1x.wall, t1.wall);
    printf("  the driver's default: %s rows, %.1fx faster than a (target >= 10x: %s)\n", xb_spice_rows_name(dflt),
           ta.cpu / tdef.cpu, ta.cpu / tdef.cpu >= 10 ? "met" : "missed");
    printf("  column currents: b vs d largest relative difference %.2g, d vs e %.2g\n", worst_rel(ib, id, n_slow * 64),
           worst_rel(id + 64, ie + 64, (n - 1) * 64));
    printf("  peak memory of this process: %.1f MB\n", xb_spice_peak_rss_kb() / 1024.0);
    xb_spice_close(&s);
    xb_chip_free(&c);
    free(v), free(ib), free(id), free(ie);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
