// test_backends: every tile-current backend on one small chip, and comparisons of any pair
//
// Bounds (each check states its own):
//   ideal == behavioral exactly (bit for bit) with every non-ideality off (g_S = g_target, no noise);
//   spice-exact with zero wire resistance and linear cells == behavioral within 1e-9 relative;
//   spice-linear == spice-exact within 1e-9 relative for linear cells, wires on.
// Relative errors are per column current over currents above 1e-3 of their tile's largest (the rule
// of compare.h), so a bound cannot hide behind a large neighbour.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <unistd.h>

#include "backend.h"
#include "backend_spice.h"
#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "compare.h"
#include "device.h"
#include "mapping.h"
#include "pool.h"

static char dir[] = "/tmp/xb_test_backends_XXXXXX";

enum { N_IN = 20, N_HID = 9, N_OUT = 4, N = 12 };

/* Largest relative error of measured against reference backend on every layer of c, for the row
 * voltages the digital path gives each layer (from the ideal model). */
static double pair_error(const xb_chip *c, xb_behav *rows, const double *X, const xb_backend_type *mt, void *ms,
                         const xb_backend_type *rt, void *rs, const char *what)
{
    xb_error err = {0};
    xb_circuit_compare cc;
    CHECK(xb_compare_init_pair(&cc, c, mt, ms, rt, rs, &err) == XB_OK, "%s: init_pair: %s", what, err.msg);
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        double *V = malloc(N * L->rows * sizeof *V), *I = malloc(L->n_row_tiles * N * L->cols * sizeof *I);
        CHECK(xb_behav_layer_rows(rows, l, X, N, NULL, V, &err) == XB_OK, "%s: rows: %s", what, err.msg);
        CHECK(xb_compare_source(&cc, l, 0, V, N, I, &err) == XB_OK, "%s: layer %d: %s", what, l + 1, err.msg);
        free(V), free(I);
    }
    double mean, max;
    xb_compare_totals(&cc, &mean, &max);
    size_t counted = 0;
    for (size_t t = 0; t < cc.n_tiles; t++)
        counted += cc.tiles[t].n;
    CHECK(counted > 0, "%s: no current compared", what);
    xb_compare_free(&cc);
    return max;
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    size_t sizes[3] = {N_IN, N_HID, N_OUT};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    xb_mlp_init(m, rng);
    for (size_t j = 0; j < N_HID; j++)
        m->b[0][j] = gsl_ran_gaussian(rng, 0.5);
    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_map_options_from_device(&mo, &dev);
    mo.tile_rows = 8;
    mo.tile_cols = 6;
    xb_error err = {0};
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &mo, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    /* layer 1: 21 rows in 3 row tiles x 18 columns in 3 column tiles; layer 2: 10 rows in 2 x 8 in 2 */
    CHECK(c->layers[0].n_row_tiles == 3 && c->layers[0].n_col_tiles == 3 && c->layers[1].n_row_tiles == 2 &&
              c->layers[1].n_col_tiles == 2, "tile layout %zux%zu, %zux%zu", c->layers[0].n_row_tiles,
          c->layers[0].n_col_tiles, c->layers[1].n_row_tiles, c->layers[1].n_col_tiles);
    CHECK(c->layers[0].pre == XB_PRE_NONE && c->layers[1].post == XB_POST_ACTIVATION, "dense layers' steps");
    double X[N * N_IN];
    for (size_t i = 0; i < N * N_IN; i++)
        X[i] = gsl_rng_uniform(rng);

    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *rows = NULL;
    CHECK(xb_behav_new(c, &bo, NULL, 0, &rows, &err) == XB_OK, "behav: %s", err.msg);

    /* ---- ideal == behavioral exactly, every non-ideality off ---- */
    void *si = NULL, *sb = NULL;
    xb_backend_params none = {0};
    CHECK(xb_backend_ideal->open(c, &none, &si, &err) == XB_OK, "open ideal: %s", err.msg);
    CHECK(xb_backend_behavioral->open(c, &none, &sb, &err) == XB_OK, "open behavioral: %s", err.msg);
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t nI = L->n_row_tiles * N * L->cols;
        double *V = malloc(N * L->rows * sizeof *V), *Ii = malloc(nI * sizeof *Ii), *Ib = malloc(nI * sizeof *Ib);
        xb_behav_layer_rows(rows, l, X, N, NULL, V, &err);
        xb_backend_ideal->tile_currents(si, l, 0, V, N, Ii, &err);
        xb_backend_behavioral->tile_currents(sb, l, 0, V, N, Ib, &err);
        CHECK(!memcmp(Ii, Ib, nI * sizeof *Ii), "layer %d: ideal and behavioral tile currents differ", l + 1);
        /* The tile currents are I = V.G of each row tile: check one against a plain sum. */
        size_t r0, nr, c0, nc;
        xb_chip_tile_bounds(c, l, 1, 0, &r0, &nr, &c0, &nc);
        double want = 0;
        for (size_t i = r0; i < r0 + nr; i++)
            want += V[3 * L->rows + i] * L->g_target_S[i * L->cols + 1];
        CHECK_REL(Ii[1 * N * L->cols + 3 * L->cols + 1], want, 1e-13, "row tile 1, input 3, column 1: V.G");
        xb_tile_stats ts;
        xb_backend_ideal->tile_stats(si, l, 1, 0, &ts);
        CHECK(ts.calls == 1 && ts.currents == N * nc && ts.i_max_A > 0 && !ts.nonfinite,
              "tile stats: %zu calls, %zu currents, max %g A", ts.calls, ts.currents, ts.i_max_A);
        free(V), free(Ii), free(Ib);
    }
    /* The digital path through either backend gives the same logits, bit for bit. */
    double z_own[N * N_OUT], z_ideal[N * N_OUT], z_b[N * N_OUT];
    xb_behav *bi = NULL;
    xb_behav_new(c, &bo, NULL, 0, &bi, &err);
    xb_behav_forward(rows, X, N, NULL, z_own, NULL, &err);
    xb_behav_set_backend(bi, xb_backend_ideal, si);
    CHECK(xb_behav_forward(bi, X, N, NULL, z_ideal, NULL, &err) == XB_OK, "ideal forward: %s", err.msg);
    xb_behav_set_backend(bi, xb_backend_behavioral, sb);
    xb_behav_forward(bi, X, N, NULL, z_b, NULL, &err);
    CHECK(!memcmp(z_own, z_ideal, sizeof z_own), "digital path: ideal backend != the model's own");
    CHECK(!memcmp(z_own, z_b, sizeof z_own), "digital path: behavioral backend != the model's own");
    /* ... and the logits are the network's: the chip is exact here. */
    double dz = 0;
    {
        xb_mlp_work *w = xb_mlp_work_new(m, N);
        double zm[N * N_OUT];
        xb_mlp_forward(m, X, N, zm, w);
        for (size_t i = 0; i < N * N_OUT; i++)
            dz = fmax(dz, fabs(zm[i] - z_own[i]));
        xb_mlp_work_free(&w);
    }
    CHECK(dz < 1e-9, "exact chip vs float network: logits differ by %.3g", dz);
    CHECK(pair_error(c, rows, X, xb_backend_ideal, si, xb_backend_behavioral, sb, "ideal/behavioral") == 0,
          "ideal vs behavioral: non-zero error");

    /* Once the cells move off their targets the two part: the comparison sees it. */
    xb_chip *p = xb_chip_clone(c);
    for (size_t i = 0; i < p->layers[0].rows * p->layers[0].cols; i++)
        p->layers[0].g_S[i] *= 1 + 0.05 * gsl_ran_gaussian(rng, 1.0);
    void *spi = NULL, *spb = NULL;
    xb_backend_ideal->open(p, &none, &spi, &err);
    xb_backend_behavioral->open(p, &none, &spb, &err);
    double e = pair_error(p, rows, X, xb_backend_behavioral, spb, xb_backend_ideal, spi, "perturbed");
    CHECK(e > 1e-3, "perturbed cells: behavioral against ideal differs by only %.3g", e);
    xb_backend_ideal->free(&spi);
    xb_backend_behavioral->free(&spb);
    CHECK(spi == NULL && spb == NULL, "free NULLs the state");
    xb_chip_free(&p);

    /* ---- the spice backends, on real libngspice ---- */
    void *sx = NULL, *sl = NULL;
    CHECK(xb_backend_spice_exact->open(c, &none, &sx, &err) == XB_EINPUT && !sx, "spice without a pool");
    xb_pool pool = {.chip = c, .dev = &dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.chunk = 5;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 0;
    pool.o.linear_sample = 4;
    xb_backend_params sp = {.pool = &pool};
    CHECK(xb_backend_spice_exact->open(c, &sp, &sx, &err) == XB_OK, "open spice-exact: %s", err.msg);
    CHECK(xb_backend_spice_linear->open(c, &sp, &sl, &err) == XB_OK, "open spice-linear: %s", err.msg);
    double ex = pair_error(c, rows, X, xb_backend_spice_exact, sx, xb_backend_behavioral, sb, "exact/behavioral");
    printf("spice-exact vs behavioral, zero wires, linear cells: max rel err %.3g\n", ex);
    CHECK(ex < 1e-9, "spice-exact, zero wires, linear cells vs behavioral: %.3g > 1e-9", ex);
    CHECK(pool.o.linear == 0, "the backend restores the pool's linear option");
    xb_tile_stats ts;
    xb_backend_spice_exact->tile_stats(sx, 0, 2, 2, &ts);
    CHECK(ts.calls == 1 && ts.currents == N * 6, "spice tile stats: %zu calls, %zu currents", ts.calls, ts.currents);

    /* Wires on: the circuit leaves I = V.G (so the bound above could fail), the linear mode does not
     * leave the exact solves. One worker this time. */
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 2;
    pool.o.jobs = 1;
    double ew = pair_error(c, rows, X, xb_backend_spice_exact, sx, xb_backend_behavioral, sb, "wires/behavioral");
    CHECK(ew > 1e-6, "2-ohm wires: spice-exact vs behavioral differ by only %.3g", ew);
    double el = pair_error(c, rows, X, xb_backend_spice_linear, sl, xb_backend_spice_exact, sx, "linear/exact");
    printf("spice-linear vs spice-exact, 2-ohm wires, linear cells: max rel err %.3g\n", el);
    CHECK(el < 1e-9, "spice-linear vs spice-exact with wires: %.3g > 1e-9", el);
    CHECK(pool.stats.linear_checked > 0, "the linear mode measured its own error");

    /* The digital path takes a spice backend like any other. */
    double z_x[N * N_OUT], z_wb[N * N_OUT];
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 0;
    xb_behav_set_backend(bi, xb_backend_spice_exact, sx);
    CHECK(xb_behav_forward(bi, X, N, NULL, z_x, NULL, &err) == XB_OK, "spice forward: %s", err.msg);
    xb_behav_set_backend(bi, NULL, NULL);
    xb_behav_forward(bi, X, N, NULL, z_wb, NULL, &err);
    double dx = 0, big = 0;
    for (size_t i = 0; i < N * N_OUT; i++)
        dx = fmax(dx, fabs(z_x[i] - z_wb[i])), big = fmax(big, fabs(z_wb[i]));
    CHECK(dx <= 1e-9 * big, "digital path, spice-exact vs own: logits differ by %.3g (scale %.3g)", dx, big);

    /* ---- ADC full scales computed once and handed on ---- */
    xb_behav_options ao = bo;
    ao.adc_bits = 6;
    ao.adc_calibrate = 1;
    double fs[2], z1[N * N_OUT], z2[N * N_OUT];
    xb_behav *b1 = NULL, *b2 = NULL;
    CHECK(xb_behav_adc_calibrate(c, &ao, X, N, fs, &err) == XB_OK, "calibrate: %s", err.msg);
    xb_behav_new(c, &ao, X, N, &b1, &err);
    CHECK(xb_behav_new_fs(c, &ao, fs, &b2, &err) == XB_OK, "new_fs: %s", err.msg);
    for (int l = 0; l < 2; l++)
        CHECK(fs[l] == xb_behav_adc_full_scale(b1, l) && fs[l] == xb_behav_adc_full_scale(b2, l) && fs[l] > 0,
              "layer %d full scale %g vs %g", l + 1, fs[l], xb_behav_adc_full_scale(b1, l));
    xb_behav_forward(b1, X, N, NULL, z1, NULL, &err);
    xb_behav_forward(b2, X, N, NULL, z2, NULL, &err);
    CHECK(!memcmp(z1, z2, sizeof z1), "calibrated once and handed on: logits differ");
    CHECK(xb_behav_adc_calibrate(c, &ao, NULL, 0, fs, &err) == XB_EINPUT, "calibration without inputs");

    /* ---- the mapping arithmetic round trip: weight -> normalized -> G -> weight ---- */
    const xb_layer_map *L0 = &c->layers[0];
    double w = m->W[0][3 * N_HID + 2], wn = xb_map_normalize_weight(L0, w);
    double gp = xb_map_cell_G(&c->opt, XB_COL_POS, wn), gn = xb_map_cell_G(&c->opt, XB_COL_NEG, wn);
    CHECK_REL(xb_map_weight(L0, 3, (gp - gn) * xb_map_G_unit(&c->opt)), w, 1e-12, "weight round trip");
    xb_map_options se = c->opt;
    se.scheme = XB_MAP_SINGLE_ENDED;
    double gs = xb_map_cell_G(&se, XB_COL_POS, wn), gr = xb_map_cell_G(&se, XB_COL_REF, wn);
    CHECK_REL((gs - gr) * xb_map_G_unit(&se), wn, 1e-12, "single-ended round trip");
    CHECK_REL(xb_map_current_gain(&se, L0), 2 * xb_map_current_gain(&c->opt, L0), 1e-15, "single-ended gain");

    xb_backend_spice_exact->free(&sx);
    xb_backend_spice_linear->free(&sl);
    xb_backend_ideal->free(&si);
    xb_backend_behavioral->free(&sb);
    xb_behav_free(&b1), xb_behav_free(&b2), xb_behav_free(&bi), xb_behav_free(&rows);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
    CHECK(xb_backend_find((const xb_backend_type *const[]){xb_backend_ideal, xb_backend_spice_linear}, 2,
                          "spice-linear") == xb_backend_spice_linear, "find by name");
    return check_summary("test_backends");
}
