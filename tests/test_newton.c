// test_newton: ngspice's Newton iterations per input: counted by the driver and the pool; the sweep order
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "device.h"
#include "netlist.h"
#include "ngspice.h"
#include "pool.h"
#include "tile_fixture.h"
#include "worker.h"

static char dir[] = "/tmp/xb_test_newton_XXXXXX";

/* A chip of one R x C tile (digital bias, differential columns) at the device's levels, drawn by rng. */
static xb_chip *make_level_tile(size_t R, size_t C, const xb_device *dev, gsl_rng *rng)
{
    xb_chip *c = make_tile(R, C, NULL);
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
    xb_chip *c = make_level_tile(R, C, dev, rng);
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

static double worst_rel(const double *a, const double *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-30));
    return w;
}

/* The sweep order: a permutation, a walk that starts at the smallest sum of row voltages, and for inputs
 * on a line (scrambled), the walk along the line. */
static void test_order(gsl_rng *rng)
{
    const size_t n = 40, nr = 6;
    double v[40 * 6], t[40];
    size_t order[40];
    for (size_t k = 0; k < n; k++) {
        t[k] = gsl_rng_uniform(rng);
        for (size_t i = 0; i < nr; i++)
            v[k * nr + i] = 0.2 * t[k] * (double)(i + 1) / (double)nr;
    }
    xb_spice_chunk_order(v, n, nr, order);
    int seen[40] = {0}, perm = 1, along = 1;
    for (size_t q = 0; q < n; q++)
        perm &= order[q] < n && !seen[order[q]]++;
    CHECK(perm, "the order is a permutation of the inputs");
    size_t low = 0;
    for (size_t k = 1; k < n; k++)
        low = t[k] < t[low] ? k : low;
    CHECK(order[0] == low, "the walk starts at the smallest sum: input %zu, not %zu", order[0], low);
    for (size_t q = 1; q < n; q++)
        along &= t[order[q]] > t[order[q - 1]];
    CHECK(along, "inputs on a line are visited along it");
    /* Fewer than 3 inputs stay as they are. */
    size_t two[2];
    xb_spice_chunk_order(v, 2, nr, two);
    CHECK(two[0] == 0 && two[1] == 1, "two inputs keep their order");
}

/* A chunk solved along the walk gives the currents of the chunk solved as given, within the tolerance
 * test_spice states for 1T1R cells (1e-7 relative at reltol 1e-9; at ngspice's default reltol of 1e-3
 * both are within 1e-3 of the tight solve), in fewer Newton iterations. Inputs given in a scrambled order come back in that order bit for bit (the
 * walk depends only on the inputs), and repeated inputs are solved once. */
static void test_solve_chunk(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    const size_t R = 16, C = 16, n = 40;
    xb_chip *c = make_level_tile(R, C, dev, rng);
    /* A family of inputs that varies smoothly with one parameter, given in random order, as MNIST images
     * of one kind would come, plus a little independent noise. */
    double *v = malloc(n * R * sizeof *v), *base = malloc(R * sizeof *base);
    for (size_t i = 0; i < R; i++)
        base[i] = dev->v_read_V * gsl_rng_uniform(rng);
    for (size_t k = 0; k < n; k++) {
        double t = gsl_rng_uniform(rng);
        for (size_t i = 0; i < R; i++)
            v[k * R + i] = fmin(dev->v_read_V, base[i] * (0.2 + 0.8 * t) + 0.002 * gsl_rng_uniform(rng));
    }
    double *a = malloc(n * C * sizeof *a), *b = malloc(n * C * sizeof *b), *d = malloc(n * C * sizeof *d);
    double *ref = malloc(n * C * sizeof *ref);
    int *sa = malloc(n * sizeof *sa), *sb = malloc(n * sizeof *sb), *sd = malloc(n * sizeof *sd);
    /* tight = 1 first: its solve as given is the reference for the defaults' accuracy. */
    for (int tight = 1; tight >= 0; tight--) {
        xb_netlist_options o;
        xb_netlist_defaults(&o);
        if (tight) {
            o.reltol = 1e-9;
            o.abstol = 1e-18;
            o.vntol = 1e-12;
        }
        const char *what = tight ? "reltol 1e-9" : "default tolerances";
        xb_error err = {0};
        long i0 = xb_spice_newton_iterations(s);
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, a, sa, &err) == XB_OK, "as given: %s", err.msg);
        long i1 = xb_spice_newton_iterations(s);
        CHECK(xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, v, n, b, sb, &err) == XB_OK, "ordered: %s", err.msg);
        long i2 = xb_spice_newton_iterations(s);
        int ok = 1;
        for (size_t k = 0; k < n; k++)
            ok &= sa[k] == XB_SOLVE_OK && sb[k] == XB_SOLVE_OK;
        CHECK(ok, "%s: every input converged both ways", what);
        double w = worst_rel(b, a, n * C);
        printf("%s: ordered vs as given: largest relative difference %.3g; Newton iterations %ld -> %ld (%.2f -> "
               "%.2f per input)\n", what, w, i1 - i0, i2 - i1, (double)(i1 - i0) / (double)n,
               (double)(i2 - i1) / (double)n);
        CHECK(i2 - i1 < i1 - i0, "%s: the ordered chunk takes fewer Newton iterations (%ld vs %ld)", what, i2 - i1,
              i1 - i0);
        if (tight) {
            /* test_spice's bound for Newton-converged 1T1R cells: 100 x reltol */
            CHECK(w < 1e-7, "%s: ordered vs as given differ by %.3g (tolerance 1e-7)", what, w);
            memcpy(ref, a, n * C * sizeof *ref);
        } else {
            /* At ngspice's default reltol (1e-3) the answer depends on where Newton starts, by up to
             * reltol either way: both orders are within it of the tight solve. */
            double wa = worst_rel(a, ref, n * C), wb = worst_rel(b, ref, n * C);
            printf("%s: against the reltol 1e-9 solve: as given %.3g, ordered %.3g (tolerance 1e-3, the "
                   "default reltol)\n", what, wa, wb);
            CHECK(wb < 1e-3 && wa < 1e-3, "%s: against the tight solve: as given %.3g, ordered %.3g", what, wa, wb);
        }
    }

    /* Scrambled inputs give the same currents in the same scrambled order, bit for bit. */
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    xb_error err = {0};
    size_t perm[40];
    for (size_t k = 0; k < n; k++)
        perm[k] = k;
    gsl_ran_shuffle(rng, perm, n, sizeof *perm);
    double *vs = malloc(n * R * sizeof *vs);
    for (size_t k = 0; k < n; k++)
        memcpy(vs + k * R, v + perm[k] * R, R * sizeof *vs);
    CHECK(xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, v, n, b, sb, &err) == XB_OK, "ordered: %s", err.msg);
    CHECK(xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, vs, n, d, sd, &err) == XB_OK, "scrambled: %s", err.msg);
    int same = 1;
    for (size_t k = 0; k < n; k++) {
        same &= sd[k] == sb[perm[k]];
        for (size_t j = 0; j < C; j++)
            same &= d[k * C + j] == b[perm[k] * C + j];
    }
    CHECK(same, "scrambled inputs: currents and statuses come back in the scrambled order, bit for bit");

    /* Repeats: inputs 0..9 each three times, shuffled. One solve per distinct input (the iterations of
     * the 10 distinct ones), and every copy carries its input's currents. */
    const size_t nd = 10, nrep = 30;
    double *vr = malloc(nrep * R * sizeof *vr), *ir = malloc(nrep * C * sizeof *ir);
    int *sr = malloc(nrep * sizeof *sr);
    size_t which[30];
    for (size_t k = 0; k < nrep; k++)
        which[k] = k % nd;
    gsl_ran_shuffle(rng, which, nrep, sizeof *which);
    for (size_t k = 0; k < nrep; k++)
        memcpy(vr + k * R, v + which[k] * R, R * sizeof *vr);
    long i0 = xb_spice_newton_iterations(s);
    CHECK(xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, v, nd, a, sa, &err) == XB_OK, "distinct: %s", err.msg);
    long i1 = xb_spice_newton_iterations(s);
    CHECK(xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, vr, nrep, ir, sr, &err) == XB_OK, "repeats: %s", err.msg);
    long i2 = xb_spice_newton_iterations(s);
    CHECK(i2 - i1 == i1 - i0, "30 inputs, 10 distinct: %ld Newton iterations, the 10 alone %ld", i2 - i1, i1 - i0);
    same = 1;
    for (size_t k = 0; k < nrep; k++) {
        same &= sr[k] == sa[which[k]];
        for (size_t j = 0; j < C; j++)
            same &= ir[k * C + j] == a[which[k] * C + j];
    }
    CHECK(same, "each repeated input carries the currents and status of its one solve");

    /* A bad row voltage is named by its place in the caller's order. */
    vs[7 * R + 3] = NAN;
    int rc = xb_spice_solve_chunk(s, c, 0, 0, 0, dev, &o, vs, n, d, sd, &err);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "input 7, row 3"), "a NaN row voltage: rc %d %s", rc, err.msg);
    free(v), free(base), free(ref), free(a), free(b), free(d), free(sa), free(sb), free(sd), free(vs), free(vr), free(ir), free(sr);
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
    test_order(rng);
    test_solve_chunk(s, &dev, rng);
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
