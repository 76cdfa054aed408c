// test_newton: ngspice's Newton iterations per input: counted by the driver and the pool, and fewer of them
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "device.h"
#include "netlist.h"
#include "ngspice.h"
#include "pool.h"

static char dir[] = "/tmp/xb_test_newton_XXXXXX";

/* A chip of one R x C tile (digital bias, differential columns) at the device's levels, drawn by rng. */
static xb_chip *make_tile(size_t R, size_t C, const xb_device *dev, gsl_rng *rng)
{
    size_t sizes[2] = {R, C / 2};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    for (size_t i = 0; i < R * C / 2; i++)
        m->W[0][i] = 0.1;
    xb_map_options o;
    xb_map_defaults(&o);
    o.bias = XB_BIAS_DIGITAL;
    o.tile_rows = R;
    o.tile_cols = C;
    xb_chip *c = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, NULL);
    xb_mlp_free(&m);
    for (size_t i = 0; i < R * C; i++)
        c->layers[0].g_S[i] = xb_device_level_G(dev, (int)gsl_rng_uniform_int(rng, (unsigned long)dev->n_levels));
    return c;
}

/* The driver counts ngspice's Newton iterations of every solve: at least 2 per sweep point (ngspice
 * checks convergence from its second iteration on), a few for a 1T1R tile, and the same count again for
 * the same solve. */
static void test_count(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    const size_t R = 8, C = 8, n = 30;
    xb_chip *c = make_tile(R, C, dev, rng);
    double v[30 * 8], cur[30 * 8];
    for (size_t i = 0; i < n * R; i++)
        v[i] = dev->v_read_V * gsl_rng_uniform(rng);
    for (int path = XB_ROWS_EXTERNAL; path <= XB_ROWS_PWL; path++) {
        xb_netlist_options o;
        xb_netlist_defaults(&o);
        o.row_drive = path;
        o.pwl_chunk = 12; /* three decks on the pwl path: each deck's count is added */
        xb_error err = {0};
        long it0 = xb_spice_newton_iterations(s);
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, cur, NULL, &err) == XB_OK, "solve: %s", err.msg);
        long it1 = xb_spice_newton_iterations(s);
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, cur, NULL, &err) == XB_OK, "solve: %s", err.msg);
        long it2 = xb_spice_newton_iterations(s);
        double per = (double)(it1 - it0) / (double)n;
        printf("%s rows: %ld Newton iterations for %zu inputs of an 8x8 1T1R tile (%.2f per input)\n",
               xb_spice_rows_name(path), it1 - it0, n, per);
        CHECK(per >= 2 && per <= 10, "%s rows: %.2f Newton iterations per input (2..10 expected)",
              xb_spice_rows_name(path), per);
        CHECK(it2 - it1 == it1 - it0, "%s rows: the same solve counts %ld, then %ld", xb_spice_rows_name(path),
              it1 - it0, it2 - it1);
    }
    xb_chip_free(&c);
}

/* The pool adds the workers' counts up: every input x tile solve is counted once, whatever the jobs. */
static void test_pool_stats(const xb_device *dev, gsl_rng *rng)
{
    size_t sizes[2] = {20, 6};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    xb_mlp_init(m, rng);
    xb_map_options mo;
    xb_map_defaults(&mo);
    mo.tile_rows = 8;
    mo.tile_cols = 8;
    mo.g_min_S = dev->g_hrs_S;
    mo.g_max_S = xb_device_level_G(dev, dev->n_levels - 1);
    xb_error err = {0};
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &mo, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    const size_t n = 17;
    double *X = malloc(n * 20 * sizeof *X), *z = malloc(n * 6 * sizeof *z);
    for (size_t i = 0; i < n * 20; i++)
        X[i] = gsl_rng_uniform(rng);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL;
    xb_behav_new(c, &bo, NULL, 0, &b, &err);
    xb_pool pool = {.chip = c, .dev = dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.chunk = 5;
    pool.o.quiet = 1;
    xb_behav_set_current_source(b, xb_pool_layer_currents, &pool);
    CHECK(xb_behav_forward(b, X, n, NULL, z, NULL, &err) == XB_OK, "forward: %s", err.msg);
    const xb_layer_map *L = &c->layers[0];
    size_t tiles = L->n_row_tiles * L->n_col_tiles;
    CHECK(pool.stats.newton_inputs == tiles * n, "input x tile solves counted: %zu of %zu", pool.stats.newton_inputs,
          tiles * n);
    double per = (double)pool.stats.newton_iterations / (double)pool.stats.newton_inputs;
    printf("pool: %zu Newton iterations over %zu input x tile solves (%.2f per input)\n", pool.stats.newton_iterations,
           pool.stats.newton_inputs, per);
    CHECK(per >= 2 && per <= 10, "pool: %.2f Newton iterations per input (2..10 expected)", per);
    xb_behav_free(&b);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    free(X), free(z);
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    xb_device dev;
    xb_device_defaults(&dev);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    xb_error err = {0};
    xb_spice *s = NULL;
    char log_path[600];
    snprintf(log_path, sizeof log_path, "%s/ngspice.log", dir);
    if (xb_spice_open(log_path, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_count(s, &dev, rng);
    xb_spice_close(&s);
    /* The pool forks workers with their own libngspice: none may be open here. */
    test_pool_stats(&dev, rng);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_newton");
}
