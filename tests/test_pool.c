// test_pool: the circuit backend's worker pool against the behavioral model and against itself
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "device.h"
#include "pool.h"

static double max_rel(const double *a, const double *b, size_t n)
{
    double big = 0, w = 0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / big);
    return w;
}

int main(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    size_t sizes[3] = {40, 12, 6};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    xb_mlp_init(m, rng);
    for (size_t j = 0; j < 12; j++)
        m->b[0][j] = gsl_ran_gaussian(rng, 0.5);
    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    mo.tile_rows = 16;
    mo.tile_cols = 8;
    mo.g_min_S = dev.g_hrs_S;
    mo.g_max_S = xb_device_level_G(&dev, dev.n_levels - 1);
    xb_error err = {0};
    xb_chip *c = NULL;
    xb_chip_map(m, &mo, NULL, 0, &c, &err);
    const size_t n = 30;
    double *X = malloc(n * 40 * sizeof *X), *z_b = malloc(n * 6 * sizeof *X), *z_s = malloc(n * 6 * sizeof *X);
    for (size_t i = 0; i < n * 40; i++)
        X[i] = gsl_rng_uniform(rng);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL, *s = NULL;
    xb_behav_new(c, &bo, NULL, 0, &b, &err);
    xb_behav_forward(b, X, n, NULL, z_b, NULL, &err);

    /* Zero wire resistance and linear cells: the circuit is I = V.G, so the logits match the model's. */
    xb_pool pool = {.chip = c, .dev = &dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.chunk = 7;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 0;
    xb_behav_new(c, &bo, NULL, 0, &s, &err);
    xb_behav_set_current_source(s, xb_pool_layer_currents, &pool);
    CHECK(xb_behav_forward(s, X, n, NULL, z_s, NULL, &err) == XB_OK, "spice forward: %s", err.msg);
    double d = max_rel(z_s, z_b, n * 6);
    CHECK(d < 1e-6, "zero wires, linear cells: logits differ from the behavioral model by %.3g", d);
    /* layer 1: 41 rows (40 + 1 bias row) in 3 row tiles x 24 columns in 3 column tiles, 5 chunks of 7;
     * layer 2: 13 rows in 1 row tile x 12 columns in 2 column tiles, 5 chunks */
    CHECK(pool.stats.units == 3 * 3 * 5 + 1 * 2 * 5, "units solved: %zu", pool.stats.units);

    /* Wires make the circuit differ from I = V.G; chunking and the number of workers must not. */
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 2;
    double *z1 = malloc(n * 6 * sizeof *z1), *z2 = malloc(n * 6 * sizeof *z2), *z3 = malloc(n * 6 * sizeof *z3);
    xb_behav_forward(s, X, n, NULL, z1, NULL, &err);
    pool.o.jobs = 1;
    pool.o.chunk = 250;
    xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    double dw = max_rel(z1, z_b, n * 6), dc = max_rel(z1, z2, n * 6);
    CHECK(dw > 1e-6, "2-ohm wires change the logits (by %.3g)", dw);
    CHECK(dc < 1e-12, "2 workers in chunks of 7 vs 1 worker in one chunk: %.3g", dc);

    /* The linear mode reproduces exact solves of linear cells to round-off, and says so. */
    pool.o.linear = 1;
    pool.o.linear_sample = 10;
    xb_behav_forward(s, X, n, NULL, z3, NULL, &err);
    double dl = max_rel(z3, z1, n * 6);
    CHECK(dl < 1e-10, "linear mode vs exact: %.3g", dl);
    CHECK(pool.stats.linear_checked > 0 && pool.stats.linear_err_max < 1e-10, "measured linear error %.3g over %zu",
          pool.stats.linear_err_max, pool.stats.linear_checked);

    /* A worker killed while holding a unit: the unit is solved by a fresh worker, results unchanged. */
    pool.o.linear = 0;
    pool.o.jobs = 2;
    pool.o.chunk = 7;
    pool.o.fault_unit = 3;
    size_t lost = pool.stats.workers_lost;
    xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    CHECK(pool.stats.workers_lost > lost, "the fault hook killed a worker");
    CHECK(max_rel(z2, z1, n * 6) < 1e-12, "results after a lost worker");

    xb_behav_free(&b);
    xb_behav_free(&s);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    free(X), free(z_b), free(z_s), free(z1), free(z2), free(z3);
    gsl_rng_free(rng);
    return check_summary("test_pool");
}
