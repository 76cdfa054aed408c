// test_conv_chip: convolutional layers on the chip: the im2col mapping reproduces the network's own
// convolution exactly with every non-ideality off; each patch is one input of a tile's solve; spice with
// zero wires and linear cells equals the behavioral model within 1e-9; conductance maps keep the geometry
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "backend.h"
#include "backend_spice.h"
#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "device.h"
#include "mlp.h"
#include "npz.h"
#include "pool.h"

static char dir[] = "/tmp/xb_test_conv_chip_XXXXXX";

enum { N = 5, H = 8, W = 7 };

static double max_rel(const double *got, const double *want, size_t n)
{
    double d = 0, big = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs(got[i] - want[i])), big = fmax(big, fabs(want[i]));
    return d / (big > 0 ? big : 1);
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 21);
    xb_layer_spec spec[4] = {{.units = 3, .k = 3, .stride = 1, .pad = 1, .pool = XB_POOL_MAX, .pool_k = 2, .pool_stride = 2},
                             {.units = 4, .k = 2, .stride = 1, .pool = XB_POOL_AVG, .pool_k = 2, .pool_stride = 1},
                             {.units = 6},
                             {.units = 3}};
    xb_error err = {0};
    xb_mlp *m = xb_net_new(H, W, 2, 4, spec, XB_ACT_SIGMOID, &err);
    CHECK(m != NULL, "network: %s", err.msg);
    if (!m)
        return check_summary("test_conv_chip");
    xb_mlp_init(m, rng);
    for (int k = 0; k < m->n_layers; k++)
        for (size_t j = 0; j < xb_mlp_fan_out(m, k); j++)
            m->b[k][j] = gsl_ran_gaussian(rng, 0.3);
    size_t in = m->sizes[0], classes = 3;
    double X[N * H * W * 2];
    for (size_t i = 0; i < N * in; i++)
        X[i] = gsl_rng_uniform(rng);

    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_map_options_from_device(&mo, &dev);
    mo.tile_rows = 8; /* layer 2: 3 * 4 + 1 bias row = 13 rows in 2 row tiles */
    mo.tile_cols = 6;
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &mo, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    if (!c)
        return check_summary("test_conv_chip");
    const xb_layer_map *L0 = &c->layers[0], *L1 = &c->layers[1];
    /* each filter is a column pair, kernel x channels (+ bias) are rows */
    CHECK(L0->pre == XB_PRE_IM2COL && L0->post == XB_POST_ACTIVATION_POOL && L0->fan_in == 18 && L0->fan_out == 3 &&
              L0->rows == 18 + L0->n_bias_rows && L0->cols == 6 && xb_layer_patches(L0) == 56 && xb_layer_out_values(L0) == 4 * 3 * 3,
          "layer 1: %zu rows x %zu columns, %zu patches", L0->rows, L0->cols, xb_layer_patches(L0));
    CHECK(L1->fan_in == 12 && xb_layer_in_values(L1) == 36 && xb_layer_patches(L1) == 6 &&
              c->layers[2].fan_in == 2 * 1 * 4 && c->layers[2].pre == XB_PRE_NONE, "layer 2 and 3 shapes");

    /* ---- the mapping is exact: behavioral logits = the network's ---- */
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL;
    CHECK(xb_behav_new(c, &bo, NULL, 0, &b, &err) == XB_OK, "behav: %s", err.msg);
    double z_net[N * 3], z_b[N * 3];
    xb_mlp_work *wk = xb_mlp_work_new(m, N);
    xb_mlp_forward(m, X, N, z_net, wk);
    CHECK(xb_behav_forward(b, X, N, NULL, z_b, NULL, &err) == XB_OK, "forward: %s", err.msg);
    double e = max_rel(z_b, z_net, N * classes);
    printf("im2col mapping vs the network's convolution: max rel err %.3g\n", e);
    CHECK(e <= 1e-12, "exact chip vs network: %.3g", e);
    /* and the network the chip's conductances represent is the network */
    xb_mlp *eff = xb_chip_effective_mlp(c, 1);
    CHECK(eff && eff->conv && eff->conv[1].pool == XB_POOL_AVG, "effective network keeps the geometry");
    if (eff) {
        double z_eff[N * 3];
        xb_mlp_forward(eff, X, N, z_eff, wk);
        CHECK(max_rel(z_eff, z_net, N * classes) <= 1e-12, "effective network's logits");
    }
    xb_mlp_free(&eff);

    /* ---- the rows a layer drives: one per patch ---- */
    double *V = malloc(N * xb_layer_patches(L1) * L1->rows * sizeof *V);
    CHECK(xb_behav_layer_rows(b, 1, X, N, NULL, V, &err) == XB_OK, "rows: %s", err.msg);
    /* patch (input 2, position (1, 0)) of layer 2: its first kernel entry is layer 1's pooled output at
     * (1, 0), channel 0, over in_scale, times v_read; the bias row is at v_read */
    const double *A0 = xb_mlp_work_layer(wk, 0);
    size_t patch = 2 * 6 + 1 * 2 + 0;
    CHECK_REL(V[patch * L1->rows + 0], A0[2 * 36 + (1 * 3 + 0) * 3 + 0] / L1->in_scale * c->opt.v_read_V, 1e-12,
              "a patch's first row voltage");
    CHECK_REL(V[patch * L1->rows + 12], c->opt.v_read_V, 1e-15, "bias row");
    free(V);

    /* ---- conductance maps keep the geometry ---- */
    CHECK(xb_chip_save(c, "cnn_map.npz", &err) == XB_OK, "save: %s", err.msg);
    xb_chip *r = NULL;
    CHECK(xb_chip_load("cnn_map.npz", &r, &err) == XB_OK, "load: %s", err.msg);
    if (r) {
        CHECK(r->layers[0].conv.k == 3 && r->layers[0].conv.pad == 1 && r->layers[1].conv.pool == XB_POOL_AVG &&
                  r->layers[1].conv.pool_stride == 1 && r->layers[0].pre == XB_PRE_IM2COL && r->layers[2].conv.k == 0,
              "loaded geometry");
        xb_behav *br = NULL;
        double z_r[N * 3];
        xb_behav_new(r, &bo, NULL, 0, &br, &err);
        xb_behav_forward(br, X, N, NULL, z_r, NULL, &err);
        CHECK(!memcmp(z_r, z_b, sizeof z_r), "the loaded map gives the same logits");
        xb_behav_free(&br);
    }
    xb_chip_free(&r);
    /* a kernel that no longer matches the layer's rows is refused, naming the array */
    {
        xb_npz *z = NULL;
        xb_npz_read("cnn_map.npz", &z, &err);
        size_t na = xb_npz_count(z);
        const xb_ndarray **all = malloc(na * sizeof *all);
        for (size_t i = 0; i < na; i++) {
            all[i] = xb_npz_at(z, i);
            if (!strcmp(all[i]->name, "L1_conv"))
                ((xb_ndarray *)all[i])->data[3] = 2; /* kernel 2: 2 x 2 x 2 = 8 rows, not 18 */
        }
        CHECK(xb_npz_write("bad_map.npz", all, na, XB_DT_F8, &err) == XB_OK, "write: %s", err.msg);
        free(all);
        xb_npz_free(&z);
        CHECK(xb_chip_load("bad_map.npz", &r, &err) == XB_EINPUT && strstr(err.msg, "bad_map.npz") &&
                  strstr(err.msg, "L1_conv"), "bad kernel refused: %s", err.msg);
        xb_chip_free(&r);
    }

    /* ---- spice, zero wires and linear cells: the behavioral model within 1e-9 ---- */
    xb_pool pool = {.chip = c, .dev = &dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 0;
    xb_backend_params sp = {.pool = &pool};
    void *sx = NULL;
    CHECK(xb_backend_spice_exact->open(c, &sp, &sx, &err) == XB_OK, "open spice-exact: %s", err.msg);
    xb_behav *bs = NULL;
    xb_behav_new(c, &bo, NULL, 0, &bs, &err);
    xb_behav_set_backend(bs, xb_backend_spice_exact, sx);
    double z_s[N * 3];
    CHECK(xb_behav_forward(bs, X, N, NULL, z_s, NULL, &err) == XB_OK, "spice forward: %s", err.msg);
    e = max_rel(z_s, z_b, N * classes);
    printf("spice (zero wires, linear cells) vs behavioral, CNN logits: max rel err %.3g\n", e);
    CHECK(e <= 1e-9, "spice vs behavioral: %.3g > 1e-9", e);
    /* every patch was one input of the tile's dc sweep */
    xb_tile_stats ts;
    xb_backend_spice_exact->tile_stats(sx, 0, 0, 0, &ts);
    CHECK(ts.currents == N * xb_layer_patches(L0) * 6, "layer 1, tile (0, 0): %zu currents, want %zu", ts.currents,
          (size_t)N * xb_layer_patches(L0) * 6);
    /* with 50-ohm wires the circuit departs from V.G: the comparison can fail */
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 50;
    double z_w[N * 3];
    xb_behav_forward(bs, X, N, NULL, z_w, NULL, &err);
    CHECK(max_rel(z_w, z_b, N * classes) > 1e-6, "50-ohm wires change the logits (%.3g)", max_rel(z_w, z_b, N * classes));
    xb_backend_spice_exact->free(&sx);
    xb_behav_free(&bs);

    xb_mlp_work_free(&wk);
    xb_behav_free(&b);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
    remove("cnn_map.npz");
    remove("bad_map.npz");
    return check_summary("test_conv_chip");
}
