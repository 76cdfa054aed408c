// test_chipmap: conductance map files (chip.npz): a round trip, and every kind of bad field refused
#define _GNU_SOURCE
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "chip.h"
#include "device.h"
#include "mlp.h"
#include "npz.h"
#include "pack.h"

static char tmpdir[64];
static char good[4200];

/* A 2-layer network (3 -> 4 -> 2) mapped with 4 x 4 tiles and saved to tmpdir/good.npz. */
static void make_good(void)
{
    size_t sizes[3] = {3, 4, 2};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    for (int k = 0; m && k < 2; k++)
        for (size_t i = 0; i < sizes[k] * sizes[k + 1]; i++)
            m->W[k][i] = 0.1 * (double)(i % 7) - 0.3;
    xb_map_options o;
    xb_map_defaults(&o);
    o.tile_rows = o.tile_cols = 4;
    xb_chip *c = NULL;
    xb_error err = {0};
    snprintf(good, sizeof good, "%s/good.npz", tmpdir);
    CHECK(m && xb_chip_map(m, &o, NULL, 0, &c, &err) == XB_OK, "map: %s", err.msg);
    CHECK(c && xb_chip_save(c, good, &err) == XB_OK, "save: %s", err.msg);
    xb_chip_free(&c);
    xb_mlp_free(&m);
}

/* Copy good.npz to tmpdir/NAME.npz with member[index] = value; returns the new path (static). */
static const char *variant(const char *name, const char *member, size_t index, double value)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s.npz", tmpdir, name);
    xb_npz *z = NULL;
    xb_error err = {0};
    if (xb_npz_read(good, &z, &err) != XB_OK) {
        fprintf(stderr, "cannot read %s: %s\n", good, err.msg);
        return path;
    }
    size_t n = xb_npz_count(z);
    xb_ndarray **arr = calloc(n, sizeof *arr);
    for (size_t i = 0; arr && i < n; i++) {
        const xb_ndarray *a = xb_npz_at(z, i);
        arr[i] = xb_ndarray_new(a->name, a->ndim, a->shape);
        if (!arr[i])
            continue;
        memcpy(arr[i]->data, a->data, a->count * sizeof *a->data);
        if (strcmp(a->name, member) == 0 && index < a->count)
            arr[i]->data[index] = value;
    }
    CHECK(arr && xb_npz_write(path, (const xb_ndarray *const *)arr, n, XB_DT_F8, &err) == XB_OK, "write %s: %s",
          path, err.msg);
    for (size_t i = 0; arr && i < n; i++)
        xb_ndarray_free(&arr[i]);
    free(arr);
    xb_npz_free(&z);
    return path;
}

/* XB_EINPUT, no chip, the file named, and each of the needles in the message. */
static void expect_bad(const char *path, const char *what, const char *n1, const char *n2)
{
    xb_chip *c = (xb_chip *)1;
    xb_error err = {0};
    int rc = xb_chip_load(path, &c, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", what, rc, err.msg);
    CHECK(c == NULL, "%s: result not NULL", what);
    CHECK(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", what, err.msg);
    CHECK(!n1 || strstr(err.msg, n1), "%s: message lacks '%s': %s", what, n1, err.msg);
    CHECK(!n2 || strstr(err.msg, n2), "%s: message lacks '%s': %s", what, n2, err.msg);
    xb_chip_free(&c);
}

static void test_round_trip(void)
{
    xb_chip *c = NULL;
    xb_error err = {0};
    CHECK(xb_chip_load(good, &c, &err) == XB_OK, "good map loads: %s", err.msg);
    if (!c)
        return;
    CHECK(c->n_layers == 2 && c->layers[0].fan_in == 3 && c->layers[1].fan_out == 2, "layers");
    CHECK_REL(c->opt.g_max_S, 400e-6, 1e-15, "g_max");
    xb_chip_free(&c);
}

static void test_bad_values(void)
{
    /* layer 1 has rows 3 + bias rows and 8 columns (differential): element 9 is row 1, column 1 */
    expect_bad(variant("g-nan", "L1_G", 9, NAN), "NaN conductance", "L1_G[9] (row 1, column 1) is nan",
               "allowed: finite conductances from 0 to 1 S");
    expect_bad(variant("g-inf", "L1_G", 0, INFINITY), "Inf conductance", "L1_G[0] (row 0, column 0) is inf", NULL);
    expect_bad(variant("g-neg", "L1_G", 2, -1e-6), "negative conductance", "L1_G[2]", NULL);
    expect_bad(variant("gt-huge", "L2_Gtarget", 3, 1e300), "absurd target", "L2_Gtarget[3]", "1e+300");
    expect_bad(variant("wn-nan", "L2_Wn", 1, NAN), "NaN normalized weight", "L2_Wn[1] (row 0, column 1) is nan",
               "within +-1e30");
    expect_bad(variant("bias-inf", "L1_bias", 2, -INFINITY), "Inf bias", "L1_bias[2] is -inf", NULL);
    expect_bad(variant("layers-frac", "chip", 1, 1.5), "fractional layer count", "chip[1] (layers) is 1.5",
               "a whole number from 1 to 64");
    expect_bad(variant("layers-nan", "chip", 1, NAN), "NaN layer count", "chip[1] (layers) is nan", NULL);
    expect_bad(variant("tile-frac", "chip", 4, 4.25), "fractional tile", "chip[4] (tile rows) is 4.25", NULL);
    expect_bad(variant("vread-huge", "chip", 6, 1e300), "absurd v_read", "chip[6] (v_read [V]) is 1e+300",
               "from 1e-06 to 100");
    expect_bad(variant("clip-inf", "chip", 7, INFINITY), "Inf clip", "chip[7]", NULL);
    expect_bad(variant("gmin-nan", "chip", 8, NAN), "NaN g_min", "chip[8] (g_min [S]) is nan", NULL);
    expect_bad(variant("g-empty", "chip", 9, 1e-6), "empty range", "empty conductance range", "g_min < g_max");
    expect_bad(variant("fanin-frac", "L1_params", 0, 3.5), "fractional fan_in", "L1_params[0] (fan_in) is 3.5", NULL);
    expect_bad(variant("wscale-inf", "L2_params", 5, INFINITY), "Inf w_scale", "L2_params[5] (w_scale) is inf", NULL);
    expect_bad(variant("act-frac", "L1_params", 3, 1.5), "fractional activation", "L1_params[3]", NULL);
    expect_bad(variant("role", "L1_colrole", 1, 1), "wrong column role", "L1_colrole[1] is 1", NULL);
}

/* A layer declaring 1e7 x 1e7 is refused on the shapes in the file, before anything is allocated. */
static void test_huge_declared(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/huge1.npz", tmpdir);
    const char *p1 = variant("huge1", "L1_params", 0, 1e7);
    snprintf(path, sizeof path, "%s", p1);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", good);
    snprintf(good, sizeof good, "%s", path); /* stack the second change on the first */
    const char *p2 = variant("huge2", "L1_params", 1, 1e7);
    snprintf(good, sizeof good, "%s", tmp);
    xb_chip *c = NULL;
    xb_error err = {0};
    int rc = xb_chip_load(p2, &c, &err);
    CHECK(rc == XB_EINPUT, "1e7 x 1e7 layer: rc %d (%s)", rc, err.msg);
    CHECK(strstr(err.msg, "L1_G has shape") && strstr(err.msg, "expected (10000001, 20000000)"),
          "1e7 x 1e7: the shape check answers: %s", err.msg);
    xb_chip_free(&c);
}

/* A device whose HRS is not below its top level gives an empty range: the message names the device file. */
static void test_empty_range_names_device(void)
{
    xb_device d;
    xb_device_defaults(&d);
    snprintf(d.source_path, sizeof d.source_path, "/some/where/hot.xml");
    d.g_hrs_S = 1.0;
    xb_map_options o;
    xb_map_defaults(&o);
    xb_map_options_from_device(&o, &d);
    size_t sizes[2] = {2, 2};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_SIGMOID);
    xb_chip *c = NULL;
    xb_error err = {0};
    int rc = m ? xb_chip_map(m, &o, NULL, 0, &c, &err) : -1;
    CHECK(rc == XB_EINPUT && c == NULL, "empty range: rc %d", rc);
    CHECK(strstr(err.msg, "/some/where/hot.xml: empty conductance range") && strstr(err.msg, "g_hrs_S"),
          "empty range names the device file: %s", err.msg);
    xb_chip_free(&c);
    xb_mlp_free(&m);
}

/* The chip as bytes for an MPI rank: the same chip back, bit for bit; a short or garbled buffer is refused. */
static void test_pack(void)
{
    xb_chip *c = NULL, *back = NULL;
    xb_error err = {0};
    CHECK(xb_chip_load(good, &c, &err) == XB_OK, "good map loads: %s", err.msg);
    if (!c)
        return;
    c->layers[1].g_S[3] = 1.0 / 3; /* a programmed cell that is not its target */
    xb_pack p = {0};
    xb_chip_pack(c, &p);
    CHECK(!xb_pack_failed(&p) && p.len > 0, "packed");
    xb_unpack u;
    xb_unpack_init(&u, p.data, p.len);
    back = xb_chip_unpack(&u);
    CHECK(back && xb_unpack_ok(&u), "unpacked, every byte read");
    for (int l = 0; back && l < 2; l++) {
        const xb_layer_map *A = &c->layers[l], *B = &back->layers[l];
        CHECK(B->rows == A->rows && B->cols == A->cols && B->n_row_tiles == A->n_row_tiles, "layer %d sizes", l + 1);
        CHECK(!memcmp(A->g_S, B->g_S, A->rows * A->cols * sizeof *A->g_S) &&
                  !memcmp(A->g_target_S, B->g_target_S, A->rows * A->cols * sizeof *A->g_S) &&
                  !memcmp(A->wn, B->wn, A->rows * A->fan_out * sizeof *A->wn) &&
                  !memcmp(A->col_role, B->col_role, A->cols * sizeof *A->col_role),
              "layer %d arrays bit for bit", l + 1);
    }
    xb_chip_free(&back);
    for (size_t cut = 0; cut < p.len; cut += p.len / 7 + 1) {
        xb_unpack_init(&u, p.data, cut);
        back = xb_chip_unpack(&u);
        CHECK(!back, "a buffer cut at %zu of %zu bytes is refused", cut, p.len);
        xb_chip_free(&back);
    }
    /* A layer claiming absurd sizes: refused before anything is allocated for it. */
    size_t at = sizeof c->n_layers + sizeof c->opt + offsetof(xb_layer_map, rows);
    size_t huge = (size_t)1 << 40;
    memcpy(p.data + at, &huge, sizeof huge);
    xb_unpack_init(&u, p.data, p.len);
    back = xb_chip_unpack(&u);
    CHECK(!back, "a layer of 2^40 rows is refused");
    xb_chip_free(&back);
    xb_pack_free(&p);
    xb_chip_free(&c);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xb_test_chipmap_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_good();
    test_round_trip();
    test_pack();
    test_bad_values();
    test_huge_declared();
    test_empty_range_names_device();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    return check_summary("test_chipmap");
}
