// test_behavioral: crossbar mapping round trips, the behavioral model against the ideal network, abits
// level sets on a chip, and the Monte Carlo trial perturbations of conductances (d2d, stuck)
//
// Statistical tolerances: a sample mean of m draws with standard deviation sd lies within 5 sd/sqrt(m)
// of its expectation, a sample variance within 5 var sqrt(2/(m-1)), a binomial count within
// 5 sqrt(m p (1-p)); each fails by chance with probability < 1e-6, and the seeds are fixed.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "mc.h"
#include "mlp.h"
#include "npz.h"
#include "perturb.h"
#include "quant.h"

static xb_mlp *random_mlp(gsl_rng *rng, int n_layers, const size_t *sizes, xb_activation act)
{
    xb_mlp *m = xb_mlp_new(n_layers, sizes, act);
    xb_mlp_init(m, rng);
    for (int k = 0; k < n_layers; k++)
        for (size_t j = 0; j < sizes[k + 1]; j++)
            m->b[k][j] = gsl_ran_gaussian(rng, 0.8); /* large enough to need several bias rows */
    return m;
}

static double max_rel_diff(const double *a, const double *b, size_t n)
{
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / scale);
    return worst;
}

/* With quantization, noise, DAC and ADC off, the crossbar computes exactly the ideal network. */
static void test_equals_ideal(gsl_rng *rng, xb_activation act, xb_map_scheme scheme, xb_bias_mode bias,
                              size_t tr, size_t tc)
{
    size_t sizes[4] = {50, 40, 30, 10};
    xb_mlp *m = random_mlp(rng, 3, sizes, act);
    const size_t n = 300;
    double *X = malloc(n * 50 * sizeof *X), *z_ideal = malloc(n * 10 * sizeof *X), *z = malloc(n * 10 * sizeof *X);
    int *p_ideal = malloc(n * sizeof *p_ideal), *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n * 50; i++)
        X[i] = gsl_rng_uniform(rng);
    xb_mlp_work *w = xb_mlp_work_new(m, n);
    xb_mlp_forward(m, X, n, z_ideal, w);
    xb_error err = {0};
    xb_mlp_predict(m, X, n, p_ideal, &err);

    xb_map_options o;
    xb_map_defaults(&o);
    o.scheme = scheme;
    o.bias = bias;
    o.tile_rows = tr;
    o.tile_cols = tc;
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &o, X, n, &c, &err) == XB_OK, "map: %s", err.msg);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL;
    CHECK(xb_behav_new(c, &bo, NULL, 0, &b, &err) == XB_OK, "behav: %s", err.msg);
    CHECK(xb_behav_forward(b, X, n, NULL, z, p, &err) == XB_OK, "forward: %s", err.msg);
    char what[128];
    snprintf(what, sizeof what, "%s scheme %d bias %d tiles %zux%zu", xb_activation_name(act), scheme, bias, tr, tc);
    double d = max_rel_diff(z, z_ideal, n * 10);
    /* Only the order of floating-point sums differs: round-off, far below 1e-9. */
    CHECK(d < 1e-9, "%s: logits differ by %.3g relative", what, d);
    CHECK(!memcmp(p, p_ideal, n * sizeof *p), "%s: predictions differ from the ideal backend", what);

    /* The network the conductances represent is the original one. */
    xb_mlp *e = xb_chip_effective_mlp(c, 1);
    double dw = 0;
    for (int k = 0; k < 3; k++) {
        dw = fmax(dw, max_rel_diff(e->W[k], m->W[k], sizes[k] * sizes[k + 1]));
        dw = fmax(dw, max_rel_diff(e->b[k], m->b[k], sizes[k + 1]));
    }
    CHECK(dw < 1e-12, "%s: effective weights differ by %.3g", what, dw);

    /* Each row tile through its own ADC: with 20 bits the result stays within 1e-4 of ideal. */
    xb_behav_free(&b);
    bo.adc_bits = 20;
    bo.adc_calibrate = 1;
    CHECK(xb_behav_new(c, &bo, X, n, &b, &err) == XB_OK, "behav adc: %s", err.msg);
    xb_behav_forward(b, X, n, NULL, z, p, &err);
    d = max_rel_diff(z, z_ideal, n * 10);
    CHECK(d < 1e-4 && d > 0, "%s: 20-bit ADC changes logits by %.3g", what, d);
    /* A 2-bit ADC must visibly change them. */
    xb_behav_free(&b);
    bo.adc_bits = 2;
    xb_behav_new(c, &bo, X, n, &b, &err);
    xb_behav_forward(b, X, n, NULL, z, p, &err);
    CHECK(max_rel_diff(z, z_ideal, n * 10) > 1e-2, "%s: 2-bit ADC left logits unchanged", what);

    xb_mlp_free(&e);
    xb_behav_free(&b);
    xb_chip_free(&c);
    xb_mlp_work_free(&w);
    xb_mlp_free(&m);
    free(X), free(z_ideal), free(z), free(p_ideal), free(p);
}

/* Differential pairs on a level grid: G+ - G- reproduces the quantized weight exactly. */
static void test_pairs_on_grid(void)
{
    size_t sizes[2] = {4, 3};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    const double w[12] = {1, -1, 0.5, -0.5, 0.25, 0, 0.75, -0.25, 1, 0, -0.75, 0.5};
    memcpy(m->W[0], w, sizeof w);
    xb_map_options o;
    xb_map_defaults(&o);
    o.g_min_S = 5e-6;
    o.g_max_S = 405e-6; /* dg = 400 uS: every level k/4 lands on a whole 100 uS step */
    xb_error err = {0};
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    const xb_layer_map *L = &c->layers[0];
    CHECK(L->w_scale == 1.0 && L->n_bias_rows == 1 && L->rows == 5 && L->cols == 6, "layout %g %zu %zu %zu",
          L->w_scale, L->n_bias_rows, L->rows, L->cols);
    int exact = 1, one_side = 1;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++) {
            double gp = L->g_S[i * 6 + 2 * j], gn = L->g_S[i * 6 + 2 * j + 1];
            exact &= fabs((gp - gn) / 400e-6 - w[i * 3 + j]) < 1e-15;
            one_side &= gp == 5e-6 || gn == 5e-6;
        }
    CHECK(exact, "G+ - G- reproduces w on the grid");
    CHECK(one_side, "one side of every pair stays at g_min");
    xb_chip_free(&c);

    /* Single-ended with a reference column: 3 weight columns and 1 reference per 4-wide tile. */
    o.scheme = XB_MAP_SINGLE_ENDED;
    o.tile_cols = 4;
    CHECK(xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    L = &c->layers[0];
    CHECK(L->cols == 4 && L->col_role[3] == XB_COL_REF, "single-ended layout: %zu columns", L->cols);
    exact = 1;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++)
            exact &= fabs(2 * (L->g_S[i * 4 + j] - L->g_S[i * 4 + 3]) / 400e-6 - w[i * 3 + j]) < 1e-15;
    CHECK(exact, "single-ended: 2 (G - G_ref) / dG reproduces w");
    xb_chip_free(&c);

    /* Odd tile width with differential pairs is a usage error. */
    o.scheme = XB_MAP_DIFFERENTIAL;
    o.tile_cols = 5;
    CHECK(xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_EINPUT && strstr(err.msg, "odd"), "odd width: %s", err.msg);
    xb_mlp_free(&m);
}

static void test_map_files(gsl_rng *rng, const char *dir)
{
    size_t sizes[3] = {70, 20, 10};
    xb_mlp *m = random_mlp(rng, 2, sizes, XB_ACT_SIGMOID);
    xb_map_options o;
    xb_map_defaults(&o);
    o.tile_rows = 32;
    o.tile_cols = 16;
    xb_error err = {0};
    xb_chip *c = NULL, *r = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, &err);
    c->layers[1].g_S[5] *= 1.1; /* programmed differs from target */
    char path[512];
    snprintf(path, sizeof path, "%s/chip.npz", dir);
    CHECK(xb_chip_save(c, path, &err) == XB_OK, "save: %s", err.msg);
    CHECK(xb_chip_load(path, &r, &err) == XB_OK, "load: %s", err.msg);
    if (r) {
        int same = r->n_layers == 2 && r->opt.tile_rows == 32 && r->opt.tile_cols == 16;
        for (int k = 0; same && k < 2; k++) {
            const xb_layer_map *a = &c->layers[k], *b = &r->layers[k];
            same &= a->rows == b->rows && a->cols == b->cols && a->w_scale == b->w_scale &&
                    a->in_scale == b->in_scale && a->act == b->act &&
                    !memcmp(a->g_S, b->g_S, a->rows * a->cols * sizeof(double)) &&
                    !memcmp(a->g_target_S, b->g_target_S, a->rows * a->cols * sizeof(double)) &&
                    !memcmp(a->wn, b->wn, a->rows * a->fan_out * sizeof(double));
        }
        CHECK(same, "conductance map round trip is exact");
        xb_chip_free(&r);
    }
    snprintf(path, sizeof path, "%s/tiles.csv", dir);
    CHECK(xb_chip_write_tile_map(c, path, &err) == XB_OK, "tile map: %s", err.msg);
    FILE *fp = fopen(path, "r");
    int lines = 0;
    char buf[512];
    while (fp && fgets(buf, sizeof buf, fp))
        lines++;
    if (fp)
        fclose(fp);
    /* layer 1: 71 rows+bias -> 3 row tiles x 40 cols -> 3 col tiles; layer 2: 1 x 2 (20 cols) */
    size_t want = c->layers[0].n_row_tiles * c->layers[0].n_col_tiles + c->layers[1].n_row_tiles * c->layers[1].n_col_tiles;
    CHECK((size_t)lines == want + 1 && want == 3 * 3 + 1 * 2, "tile map has %d lines, want %zu + header", lines, want);

    /* A weights file is not a conductance map; a tampered map is refused. */
    snprintf(path, sizeof path, "%s/other.npz", dir);
    size_t s[1] = {3};
    xb_ndarray *a = xb_ndarray_new("W1", 1, s);
    const xb_ndarray *arr[1] = {a};
    xb_npz_write(path, arr, 1, XB_DT_F8, &err);
    CHECK(xb_chip_load(path, &r, &err) == XB_EINPUT && strstr(err.msg, "chip"), "not a map: %s", err.msg);
    xb_ndarray_free(&a);
    c->layers[0].g_S[3] = -1;
    snprintf(path, sizeof path, "%s/neg.npz", dir);
    xb_chip_save(c, path, &err);
    CHECK(xb_chip_load(path, &r, &err) == XB_EINPUT && strstr(err.msg, "L1_G[3]"), "negative G: %s", err.msg);
    xb_chip_free(&c);
    xb_mlp_free(&m);
}

/* Read noise: the column current's spread matches sigma * sqrt(sum V^2 G^2). */
static void test_read_noise(gsl_rng *rng)
{
    size_t sizes[2] = {8, 1};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    for (int i = 0; i < 8; i++)
        m->W[0][i] = (i % 2 ? -1.0 : 1.0) * (i + 1) / 8.0;
    xb_map_options o;
    xb_map_defaults(&o);
    xb_error err = {0};
    xb_chip *c = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, &err);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    bo.sigma_read = 0.05;
    xb_behav *b = NULL;
    xb_behav_new(c, &bo, NULL, 0, &b, &err);
    const size_t n = 20000;
    double *X = malloc(n * 8 * sizeof *X), *z = malloc(n * sizeof *z), z0;
    for (size_t i = 0; i < n * 8; i++)
        X[i] = 1.0;
    int p;
    xb_behav_options quiet = bo;
    quiet.sigma_read = 0;
    xb_behav *b0 = NULL;
    xb_behav_new(c, &quiet, NULL, 0, &b0, &err);
    xb_behav_forward(b0, X, 1, NULL, &z0, &p, &err);
    xb_behav_forward(b, X, n, rng, z, NULL, &err);
    /* Expected spread of z: the two columns of the pair are independent. */
    const xb_layer_map *L = &c->layers[0];
    double var = 0, k = L->w_scale / (o.v_read_V * (o.g_max_S - o.g_min_S));
    for (size_t i = 0; i < L->rows; i++)
        for (size_t col = 0; col < 2; col++) {
            double g = L->g_S[i * 2 + col];
            var += pow(bo.sigma_read * o.v_read_V * g * k, 2);
        }
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < n; i++)
        mean += z[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        m2 += (z[i] - mean) * (z[i] - mean);
    m2 /= (double)(n - 1);
    /* Standard errors: mean sqrt(var/n); variance var*sqrt(2/n). Five of them. */
    CHECK_ABS(mean, z0, 5 * sqrt(var / (double)n), "read-noise mean");
    CHECK_ABS(m2, var, 5 * var * sqrt(2.0 / (double)n), "read-noise variance");
    free(X), free(z);
    xb_behav_free(&b);
    xb_behav_free(&b0);
    xb_chip_free(&c);
    xb_mlp_free(&m);
}

/* abits:B on a chip, worked by hand. One layer, digital bias, max |W| = 1 so wn = W. Range
 * [-0.9, 1], B = 2: scale 1.9/3, zero point round(0.9 / (1.9/3)) = round(1.42) = 1, levels
 * {-0.633, 0, 0.633, 1.267}. The top level is past 1 (the rounded zero point), so the layer's wn is
 * divided by 1.267 and w_scale grows to 1.267: the effective weights are the levels themselves, and the
 * largest target is g_max exactly. */
static void test_abits_chip(void)
{
    size_t sizes[2] = {4, 3};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    static const double w[12] = {-0.9, 1, 0.3, -0.2, 0.5, 0.7, 0.9, -0.6, 0.1, 0.0, -0.35, 0.62};
    const double u = 1.9 / 3;
    /* nearest of {-u, 0, u, 2u}: -0.35 is past the -u/2 midpoint, 0.3 short of u/2 */
    const double want[12] = {-u, 2 * u, 0, 0, u, u, u, -u, 0, 0, -u, u};
    memcpy(m->W[0], w, sizeof w);
    xb_map_options o;
    xb_map_defaults(&o);
    o.bias = XB_BIAS_DIGITAL;
    xb_error err = {0};
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    xb_levelset *ls[2] = {NULL, NULL};
    char used[64];
    CHECK(xb_levelsets_parse("abits:2", 1, NULL, ls, used, sizeof used, &err) == XB_OK && !strcmp(used, "abits:2"),
          "levelsets: %s", err.msg);
    CHECK(xb_chip_quantize(c, (const xb_levelset *const *)ls, &err) == XB_OK, "quantize: %s", err.msg);
    const xb_layer_map *L = &c->layers[0];
    CHECK_REL(L->w_scale, 2 * u, 1e-15, "w_scale grew by the top level");
    xb_mlp *e = xb_chip_effective_mlp(c, 0);
    for (int i = 0; i < 12; i++)
        CHECK_ABS(e->W[0][i], want[i], 1e-12, "abits effective weight");
    double gmax = 0;
    for (size_t i = 0; i < L->rows * L->cols; i++)
        gmax = fmax(gmax, L->g_target_S[i]);
    CHECK_REL(gmax, o.g_max_S, 1e-12, "the top level is the full conductance");
    xb_mlp_free(&e);
    xb_chip_free(&c);
    xb_levelset_free(&ls[0]);
    xb_mlp_free(&m);

    /* Two layers, one abits:3 spec: each layer's levels come from its own range (layer 2 all positive). */
    size_t s2[3] = {6, 5, 4};
    m = xb_mlp_new(2, s2, XB_ACT_SIGMOID);
    for (int i = 0; i < 30; i++)
        m->W[0][i] = -1 + 2.0 * i / 29.0;
    for (int i = 0; i < 20; i++)
        m->W[1][i] = 0.2 + 0.8 * i / 19.0;
    CHECK(xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_OK, "map 2: %s", err.msg);
    xb_chip *before = xb_chip_clone(c);
    CHECK(xb_levelsets_parse("abits:3", 2, NULL, ls, NULL, 0, &err) == XB_OK, "levelsets 2: %s", err.msg);
    CHECK(xb_chip_quantize(c, (const xb_levelset *const *)ls, &err) == XB_OK, "quantize 2: %s", err.msg);
    for (int l = 0; l < 2; l++) {
        const xb_layer_map *B = &before->layers[l], *A = &c->layers[l];
        size_t n = B->rows * B->fan_out;
        xb_levelset *own = NULL;
        xb_levelset_affine_materialize(ls[l], B->wn, n, &own, &err);
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            double lv = own->levels[xb_levelset_nearest(own, B->wn[i])];
            bad += fabs(A->wn[i] * A->w_scale - lv * B->w_scale) > 1e-12 * B->w_scale;
        }
        CHECK(bad == 0, "layer %d: %d weights off the levels of its own range [%g, %g]", l + 1, bad, own->affine.lo,
              own->affine.hi);
        xb_levelset_free(&own);
        xb_levelset_free(&ls[l]);
    }
    CHECK(c->layers[1].wn[0] > 0, "layer 2 keeps its all-positive range");
    xb_chip_free(&before);
    xb_chip_free(&c);
    xb_mlp_free(&m);
}

static gsl_rng *seeded(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    return r;
}

/* The Monte Carlo trial perturbations of conductances: d2d and stuck act on g_S of the layers they
 * name, after the weight-domain models; replayed draw for draw from the same seed. */
static void test_mc_conductance(gsl_rng *rng)
{
    size_t sizes[3] = {150, 40, 10};
    xb_mlp *m = random_mlp(rng, 2, sizes, XB_ACT_SIGMOID);
    xb_map_options o;
    xb_map_defaults(&o);
    xb_error err = {0};
    xb_chip *base = NULL;
    CHECK(xb_chip_map(m, &o, NULL, 0, &base, &err) == XB_OK, "map: %s", err.msg);
    /* Programming errors the trials must keep. */
    for (size_t i = 0; i < base->layers[0].rows * base->layers[0].cols; i += 7)
        base->layers[0].g_S[i] *= 1.01;
    xb_chip *chip = xb_chip_clone(base);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    const xb_layer_map *B1 = &base->layers[0], *B2 = &base->layers[1];
    size_t n1 = B1->rows * B1->cols, n2 = B2->rows * B2->cols;
    double *g = malloc(n1 * sizeof *g);

    /* d2d on layer 1 only: layer 2 untouched, layer 1 moved by exactly the replayed draws, with the
     * relative moments of N(0, 0.1^2). */
    xb_layer_perturb p[2];
    CHECK(xb_layer_perturb_parse("d2d:sigma=0.1@1", 2, &p[0], &err) == XB_OK, "parse d2d@1: %s", err.msg);
    gsl_rng *r = seeded(31), *replay = seeded(31);
    CHECK(xb_mc_perturb_chip(base, p, 1, r, chip, &bo, &err) == XB_OK, "trial: %s", err.msg);
    CHECK(!memcmp(chip->layers[1].g_S, B2->g_S, n2 * sizeof *g), "layer 2 not selected, not touched");
    memcpy(g, B1->g_S, n1 * sizeof *g);
    xb_perturb_d2d(replay, g, n1, 0.1);
    CHECK(!memcmp(chip->layers[0].g_S, g, n1 * sizeof *g), "layer 1 equals the replayed d2d draws");
    double mean = 0, var = 0;
    for (size_t i = 0; i < n1; i++)
        mean += chip->layers[0].g_S[i] / B1->g_S[i] - 1;
    mean /= (double)n1;
    for (size_t i = 0; i < n1; i++)
        var += pow(chip->layers[0].g_S[i] / B1->g_S[i] - 1 - mean, 2);
    var /= (double)(n1 - 1);
    CHECK_ABS(mean, 0, 5 * 0.1 / sqrt((double)n1), "d2d relative mean");
    CHECK_ABS(var, 0.01, 5 * 0.01 * sqrt(2.0 / (double)(n1 - 1)), "d2d relative variance");
    CHECK(!memcmp(chip->layers[0].wn, B1->wn, B1->rows * B1->fan_out * sizeof *g), "d2d leaves the weights");
    gsl_rng_free(r);
    gsl_rng_free(replay);

    /* stuck on layer 2 only: every cell is base, g_max or g_min exactly as the replayed uniforms say. */
    CHECK(xb_layer_perturb_parse("stuck:lrs=0.05,hrs=0.1@2", 2, &p[0], &err) == XB_OK, "parse stuck@2: %s",
          err.msg);
    r = seeded(32);
    replay = seeded(32);
    CHECK(xb_mc_perturb_chip(base, p, 1, r, chip, &bo, &err) == XB_OK, "trial: %s", err.msg);
    CHECK(!memcmp(chip->layers[0].g_S, B1->g_S, n1 * sizeof *g), "layer 1 not selected, not touched");
    size_t n_lrs = 0, n_hrs = 0, mismatch = 0;
    for (size_t i = 0; i < n2; i++) {
        double u = gsl_rng_uniform(replay), want = B2->g_S[i];
        if (u < 0.05)
            want = o.g_max_S, n_lrs++;
        else if (u < 0.15)
            want = o.g_min_S, n_hrs++;
        mismatch += chip->layers[1].g_S[i] != want;
    }
    printf("  stuck:lrs=0.05,hrs=0.1 on layer 2 (%zu cells), seed 32: %zu at g_max, %zu at g_min\n", n2, n_lrs,
           n_hrs);
    CHECK(mismatch == 0, "%zu cells differ from the replay", mismatch);
    CHECK(fabs((double)n_lrs - 0.05 * (double)n2) <= 5 * sqrt(0.05 * 0.95 * (double)n2), "LRS count %zu", n_lrs);
    CHECK(fabs((double)n_hrs - 0.1 * (double)n2) <= 5 * sqrt(0.1 * 0.9 * (double)n2), "HRS count %zu", n_hrs);
    gsl_rng_free(r);
    gsl_rng_free(replay);

    /* Order: listed first, d2d still acts after the weight-domain mult has moved the targets. */
    CHECK(xb_layer_perturb_parse("d2d:sigma=0.05@1", 2, &p[0], &err) == XB_OK &&
              xb_layer_perturb_parse("mult:alpha=0.1@1", 2, &p[1], &err) == XB_OK,
          "parse pair: %s", err.msg);
    r = seeded(33);
    replay = seeded(33);
    CHECK(xb_mc_perturb_chip(base, p, 2, r, chip, &bo, &err) == XB_OK, "trial: %s", err.msg);
    xb_chip *ref = xb_chip_clone(base);
    xb_perturb_mult(replay, ref->layers[0].wn, B1->rows * B1->fan_out, 0.1);
    xb_chip_update_targets(ref);
    for (size_t i = 0; i < n1; i++) {
        double v = ref->layers[0].g_target_S[i] + (B1->g_S[i] - B1->g_target_S[i]);
        g[i] = v > 0 ? v : 0;
    }
    xb_perturb_d2d(replay, g, n1, 0.05);
    CHECK(!memcmp(chip->layers[0].g_S, g, n1 * sizeof *g), "mult, then targets, then d2d");
    CHECK(!memcmp(chip->layers[1].g_S, B2->g_S, n2 * sizeof *g), "layer 2 untouched by @1 models");
    xb_chip_free(&ref);
    gsl_rng_free(r);
    gsl_rng_free(replay);

    /* P + Q > 1 is refused with the reason. */
    xb_error e = {0};
    CHECK(xb_layer_perturb_parse("stuck:lrs=0.6,hrs=0.5@1", 2, &p[0], &e) == XB_EINPUT && strstr(e.msg, "exceeds 1"),
          "P + Q > 1: %s", e.msg);

    free(g);
    xb_chip_free(&chip);
    xb_chip_free(&base);
    xb_mlp_free(&m);
}

int main(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    test_equals_ideal(rng, XB_ACT_SIGMOID, XB_MAP_DIFFERENTIAL, XB_BIAS_ROW, 64, 64);
    test_equals_ideal(rng, XB_ACT_RELU, XB_MAP_DIFFERENTIAL, XB_BIAS_ROW, 16, 8);
    test_equals_ideal(rng, XB_ACT_SIGMOID, XB_MAP_SINGLE_ENDED, XB_BIAS_ROW, 20, 7);
    test_equals_ideal(rng, XB_ACT_RELU, XB_MAP_SINGLE_ENDED, XB_BIAS_DIGITAL, 64, 64);
    test_equals_ideal(rng, XB_ACT_SIGMOID, XB_MAP_DIFFERENTIAL, XB_BIAS_DIGITAL, 7, 4);
    test_pairs_on_grid();
    char dir[] = "/tmp/xb_test_behav_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    test_map_files(rng, dir);
    test_read_noise(rng);
    test_abits_chip();
    test_mc_conductance(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    gsl_rng_free(rng);
    return check_summary("test_behavioral");
}
