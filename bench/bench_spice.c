// bench_spice: per-input solve of a 64x64 1T1R tile with wire parasitics, four ways, in one run
//
// usage: bench_spice [inputs] [cells: 1t1r|linear]   (defaults: 100, 1t1r)
//   a) a fresh `ngspice -b` process per input on a generated `op` deck (the baseline)
//   b) libngspice: `alter` + `op` per input (re-orders and re-factors every time)
//   c) one `ngspice -b` process: pwl(v(idx)) row sources and one `dc` sweep over all inputs
//   d) libngspice, the tool's path: `external` row sources and one `dc` sweep over all inputs
// Prints seconds per input and each way's speed-up over (a). Target: (d) at least 10x faster than (a).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static double write_and_run(const char *path, const xb_chip *c, const xb_device *dev, const xb_netlist_options *o,
                            xb_deck_kind kind, const double *v, size_t n)
{
    FILE *fp = fopen(path, "w");
    xb_netlist_write_tile(fp, c, 0, 0, 0, dev, o, kind, v, n, "bench_spice", NULL);
    fclose(fp);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ngspice -b %s > %s.out 2>&1", path, path);
    double t0 = xb_now();
    if (system(cmd) != 0)
        fprintf(stderr, "bench_spice: ngspice -b %s failed\n", path);
    return xb_now() - t0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 100;
    int linear = argc > 2 && !strcmp(argv[2], "linear");
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
    double *v = malloc(n * 64 * sizeof *v), *ia = malloc(n * 64 * sizeof *ia), *ib = malloc(n * 64 * sizeof *ib);
    for (size_t i = 0; i < n * 64; i++)
        v[i] = dev.v_read_V * gsl_rng_uniform(rng);

    double t_proc = 0;
    for (size_t k = 0; k < n_slow; k++)
        t_proc += write_and_run("op.cir", c, &dev, &o, XB_DECK_OP, v + k * 64, 1);
    t_proc /= (double)n_slow;
    double t_pwl = write_and_run("sweep.cir", c, &dev, &o, XB_DECK_SWEEP, v, n) / (double)n;

    xb_error err = {0};
    xb_spice *s = NULL;
    if (xb_spice_open("ngspice.log", &s, &err)) {
        fprintf(stderr, "bench_spice: %s\n", err.msg);
        return 1;
    }
    double t0 = xb_now();
    xb_spice_solve_tile_op(s, c, 0, 0, 0, &dev, &o, v, n_slow, ia, &err);
    double t_alter = (xb_now() - t0) / (double)n_slow;
    t0 = xb_now();
    xb_spice_solve_tile(s, c, 0, 0, 0, &dev, &o, v, n, ib, NULL, &err);
    double t_batch = (xb_now() - t0) / (double)n;
    double worst = 0;
    for (size_t i = 0; i < n_slow * 64; i++)
        worst = fmax(worst, fabs(ia[i] - ib[i]) / fmax(fabs(ia[i]), 1e-30));

    printf("bench_spice: 64x64 %s tile, 1 ohm per wire segment, ngspice %d (%s), %zu inputs (%zu for a, b)\n",
           linear ? "linear-cell" : "1T1R", xb_spice_version(s), xb_spice_solver_name(s), n, n_slow);
    printf("  a) ngspice -b process per input     %9.4f s/input   1.0x\n", t_proc);
    printf("  b) library alter + op per input     %9.4f s/input  %5.1fx\n", t_alter, t_proc / t_alter);
    printf("  c) ngspice -b, pwl rows, one dc     %9.4f s/input  %5.1fx\n", t_pwl, t_proc / t_pwl);
    printf("  d) library external rows, one dc    %9.4f s/input  %5.1fx  (target >= 10x: %s)\n", t_batch,
           t_proc / t_batch, t_proc / t_batch >= 10 ? "met" : "missed");
    printf("  b vs d column currents: largest relative difference %.2g\n", worst);
    printf("  peak memory of this process: %.1f MB\n", xb_spice_peak_rss_kb() / 1024.0);
    xb_spice_close(&s);
    xb_chip_free(&c);
    free(v), free(ia), free(ib);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
