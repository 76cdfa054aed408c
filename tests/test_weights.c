// test_weights: weight files refuse non-finite and absurd values and empty layers, naming the position
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "npz.h"
#include "weights.h"

static char path[64];

/* Weights: non-finite and absurd values and empty layers, each named with its position. */
static void expect_weights_bad(const char *label, const xb_ndarray *W, const xb_ndarray *b, const char *kw1,
                               const char *kw2)
{
    const xb_ndarray *arr[2] = {W, b};
    xb_error err = {0};
    CHECK(xb_npz_write(path, arr, 2, XB_DT_F8, &err) == XB_OK, "%s: write: %s", label, err.msg);
    xb_mlp *m = (xb_mlp *)1;
    int rc = xb_weights_load_npz(path, XB_ACT_SIGMOID, &m, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", label, rc, err.msg);
    CHECK(m == NULL, "%s: out not cleared", label);
    CHECK(strstr(err.msg, path) != NULL, "%s: message lacks the path: %s", label, err.msg);
    CHECK(strstr(err.msg, kw1) != NULL, "%s: message lacks '%s': %s", label, kw1, err.msg);
    if (kw2)
        CHECK(strstr(err.msg, kw2) != NULL, "%s: message lacks '%s': %s", label, kw2, err.msg);
    if (m != (xb_mlp *)1)
        xb_mlp_free(&m);
}

static void test_weight_values(void)
{
    size_t ws[2] = {4, 3}, bs[1] = {3}, w0[2] = {4, 0}, b0[1] = {0};
    xb_ndarray *W = xb_ndarray_new("W1", 2, ws), *b = xb_ndarray_new("b1", 1, bs);
    if (!W || !b)
        return;
    for (size_t i = 0; i < W->count; i++)
        W->data[i] = 0.25 * (double)i - 1;
    W->data[7] = INFINITY;
    expect_weights_bad("Inf weight", W, b, "W1[7] (row 2, column 1) is inf", "allowed: finite numbers");
    W->data[7] = NAN;
    expect_weights_bad("NaN weight", W, b, "W1[7] (row 2, column 1) is nan", NULL);
    W->data[7] = 1e300;
    expect_weights_bad("absurd weight", W, b, "W1[7] (row 2, column 1) is 1e+300", "+-1e+30");
    W->data[7] = 0.5;
    b->data[2] = NAN;
    expect_weights_bad("NaN bias", W, b, "b1[2] is nan", NULL);
    b->data[2] = 0;
    xb_ndarray *Wz = xb_ndarray_new("W1", 2, w0), *bz = xb_ndarray_new("b1", 1, b0);
    if (Wz && bz)
        expect_weights_bad("empty layer", Wz, bz, "W1 has shape (4, 0), an empty layer", "at least 1");
    xb_ndarray_free(&Wz);
    xb_ndarray_free(&bz);
    /* the same arrays, all finite, load */
    const xb_ndarray *arr[2] = {W, b};
    xb_error err = {0};
    xb_mlp *m = NULL;
    CHECK(xb_npz_write(path, arr, 2, XB_DT_F8, &err) == XB_OK && xb_weights_load_npz(path, -1, &m, &err) == XB_OK,
          "finite weights load: %s", err.msg);
    CHECK(m && m->W[0][7] == 0.5, "weight kept");
    xb_mlp_free(&m);
    xb_ndarray_free(&W);
    xb_ndarray_free(&b);
}

int main(void)
{
    char dir[] = "/tmp/test_weights.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/w.npz", dir);
    test_weight_values();
    remove(path);
    rmdir(dir);
    return check_summary("test_weights");
}
