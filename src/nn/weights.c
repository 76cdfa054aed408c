// weights: MLP weights to and from NumPy .npz / .npy files
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npz.h"

#define MAX_LAYERS 64

int xb_weights_save_npz(const xb_mlp *m, const char *path, xb_dtype out_type, xb_error *err)
{
    int L = m->n_layers, n = 0, rc = XB_OK;
    xb_ndarray *arr[2 * MAX_LAYERS + 1] = {0};
    if (L > MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "%s: %d layers, at most %d supported", path, L, MAX_LAYERS);
    for (int k = 0; k < L; k++) {
        char name[16];
        size_t wshape[2] = {m->sizes[k], m->sizes[k + 1]}, bshape[1] = {m->sizes[k + 1]};
        snprintf(name, sizeof name, "W%d", k + 1);
        xb_ndarray *W = arr[n++] = xb_ndarray_new(name, 2, wshape);
        snprintf(name, sizeof name, "b%d", k + 1);
        xb_ndarray *b = arr[n++] = xb_ndarray_new(name, 1, bshape);
        if (!W || !b) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory saving %s", path);
            goto done;
        }
        memcpy(W->data, m->W[k], W->count * sizeof *W->data);
        memcpy(b->data, m->b[k], b->count * sizeof *b->data);
    }
    if (L > 1) {
        const char *names[MAX_LAYERS];
        for (int k = 0; k < L - 1; k++)
            names[k] = xb_activation_name(m->act[k]);
        if (!(arr[n++] = xb_ndarray_new_strings("activation", (size_t)(L - 1), names))) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory saving %s", path);
            goto done;
        }
    }
    rc = xb_npz_write(path, (const xb_ndarray *const *)arr, (size_t)n, out_type, err);
done:
    for (int i = 0; i < n; i++)
        xb_ndarray_free(&arr[i]);
    return rc;
}

/* Where array W_k (is_b 0) or b_k (is_b 1) came from, for messages: its own file in an .npy list
 * (paths, in the order W1, b1, W2, ...), else the archive. */
static const char *origin(const char *src, const char *const *paths, int k, int is_b)
{
    return paths ? paths[2 * k + is_b] : src;
}

/* Weights must be real numbers as trained: integer or bool arrays are refused rather than converted,
 * because they are almost always the wrong file (labels, masks, indices) saved under a weight name. */
static int check_float(const char *where, const char *what, const xb_ndarray *a, xb_error *err)
{
    if (a->dtype == XB_DT_F4 || a->dtype == XB_DT_F8)
        return XB_OK;
    return xb_fail(err, XB_EINPUT,
                   "%s: %s has dtype '%s', expected float32 ('<f4') or float64 ('<f8'); save it with "
                   "numpy as %s.astype(numpy.float32)",
                   where, what, xb_dtype_name(a->dtype), what);
}

/* Largest weight or bias magnitude accepted: far beyond any trained network, small enough that the
 * mapping's scales (max |in_scale W|) and every layer's sums stay finite. */
#define WEIGHT_MAX_ABS 1e30

/* Every element finite and within +-WEIGHT_MAX_ABS: one NaN would be programmed as a full negative pair
 * and one Inf makes the layer's scale infinite, so they are refused, naming the first one. */
static int check_values(const char *where, const char *what, const xb_ndarray *a, xb_error *err)
{
    for (size_t i = 0; i < a->count; i++) {
        double v = a->data[i];
        if (isfinite(v) && fabs(v) <= WEIGHT_MAX_ABS)
            continue;
        if (a->ndim == 2 && a->shape[1] > 0)
            return xb_fail(err, XB_EINPUT, "%s: %s[%zu] (row %zu, column %zu) is %g; allowed: finite numbers "
                           "within +-%g", where, what, i, i / a->shape[1], i % a->shape[1], v, WEIGHT_MAX_ABS);
        return xb_fail(err, XB_EINPUT, "%s: %s[%zu] is %g; allowed: finite numbers within +-%g", where, what, i,
                       v, WEIGHT_MAX_ABS);
    }
    return XB_OK;
}

/* Build a network from arrays W[k], b[k] (k < L) and optional activation names. src names the source
 * in messages; paths (NULL for an archive) gives each array's own file. */
static int assemble(const char *src, const char *const *paths, const xb_ndarray *const *W,
                    const xb_ndarray *const *b, int L, const xb_ndarray *act, int hidden, xb_mlp **out,
                    xb_error *err)
{
    char s1[64], s2[64], wn[16], bn[16];
    size_t sizes[MAX_LAYERS + 1] = {0};
    for (int k = 0; k < L; k++) {
        const char *wsrc = origin(src, paths, k, 0), *bsrc = origin(src, paths, k, 1);
        snprintf(wn, sizeof wn, "W%d", k + 1);
        snprintf(bn, sizeof bn, "b%d", k + 1);
        int rc = check_float(wsrc, wn, W[k], err);
        if (!rc)
            rc = check_float(bsrc, bn, b[k], err);
        if (rc)
            return rc;
        if (W[k]->ndim != 2) {
            xb_shape_str(W[k]->ndim, W[k]->shape, s1, sizeof s1);
            return xb_fail(err, XB_EINPUT, "%s: W%d has shape %s, expected 2 dimensions (fan_in, fan_out)",
                           wsrc, k + 1, s1);
        }
        size_t fi = W[k]->shape[0], fo = W[k]->shape[1];
        if (fi == 0 || fo == 0) {
            xb_shape_str(W[k]->ndim, W[k]->shape, s1, sizeof s1);
            return xb_fail(err, XB_EINPUT, "%s: W%d has shape %s, an empty layer; allowed: (fan_in, fan_out) "
                           "with both at least 1", wsrc, k + 1, s1);
        }
        if (k > 0 && fi != sizes[k]) {
            xb_shape_str(W[k]->ndim, W[k]->shape, s1, sizeof s1);
            xb_shape_str(W[k - 1]->ndim, W[k - 1]->shape, s2, sizeof s2);
            return xb_fail(err, XB_EINPUT,
                           "%s: W%d has shape %s, expected (%zu, N) to follow W%d %s%s%s "
                           "(PyTorch nn.Linear weights are (fan_out, fan_in): save weight.T)",
                           wsrc, k + 1, s1, sizes[k], k, s2, paths ? " of " : "",
                           paths ? origin(src, paths, k - 1, 0) : "");
        }
        sizes[k] = fi;
        sizes[k + 1] = fo;
        int bias_ok = (b[k]->ndim == 1 && b[k]->shape[0] == fo) ||
                      (b[k]->ndim == 2 && b[k]->shape[0] == 1 && b[k]->shape[1] == fo);
        if (!bias_ok) {
            xb_shape_str(b[k]->ndim, b[k]->shape, s1, sizeof s1);
            xb_shape_str(W[k]->ndim, W[k]->shape, s2, sizeof s2);
            return xb_fail(err, XB_EINPUT, "%s: b%d has shape %s (%s), expected (%zu,) to match W%d %s", bsrc,
                           k + 1, s1, xb_dtype_name(b[k]->dtype), fo, k + 1, s2);
        }
        if ((rc = check_values(wsrc, wn, W[k], err)) || (rc = check_values(bsrc, bn, b[k], err)))
            return rc;
    }
    xb_activation acts[MAX_LAYERS];
    for (int k = 0; k < L - 1; k++) {
        if (act) {
            if (act->dtype != XB_DT_STR || act->count != (size_t)(L - 1))
                return xb_fail(err, XB_EINPUT,
                               "%s: 'activation' must be %d strings (one per hidden layer), found %zu %s",
                               src, L - 1, act->count, xb_dtype_name(act->dtype));
            int a = xb_activation_parse(act->str[k]);
            if (a < 0)
                return xb_fail(err, XB_EINPUT, "%s: activation '%s' of hidden layer %d is unknown "
                               "(use sigmoid, relu or identity)", src, act->str[k], k + 1);
            acts[k] = (xb_activation)a;
        } else if (hidden >= 0) {
            acts[k] = (xb_activation)hidden;
        } else if (paths) {
            return xb_fail(err, XB_EINPUT, "%s, ...: a list of .npy files cannot record the hidden "
                           "activation; give it with --activation sigmoid|relu", src);
        } else {
            return xb_fail(err, XB_EINPUT, "%s: the file does not say the hidden activation; "
                           "give it with --activation sigmoid|relu", src);
        }
    }
    xb_mlp *m = xb_mlp_new(L, sizes, XB_ACT_IDENTITY);
    if (!m)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory", src);
    for (int k = 0; k < L; k++) {
        m->act[k] = k < L - 1 ? acts[k] : XB_ACT_IDENTITY;
        memcpy(m->W[k], W[k]->data, W[k]->count * sizeof *m->W[k]);
        memcpy(m->b[k], b[k]->data, b[k]->count * sizeof *m->b[k]);
    }
    *out = m;
    return XB_OK;
}

int xb_weights_load_npz(const char *path, int hidden, xb_mlp **out, xb_error *err)
{
    *out = NULL;
    xb_npz *z = NULL;
    int rc = xb_npz_read(path, &z, err);
    if (rc)
        return rc;
    const xb_ndarray *W[MAX_LAYERS], *b[MAX_LAYERS];
    int L = 0;
    for (; L < MAX_LAYERS; L++) {
        char wn[16], bn[16];
        snprintf(wn, sizeof wn, "W%d", L + 1);
        snprintf(bn, sizeof bn, "b%d", L + 1);
        W[L] = xb_npz_get(z, wn);
        b[L] = xb_npz_get(z, bn);
        if (!W[L] && !b[L])
            break;
        if (!W[L] || !b[L]) {
            rc = xb_fail(err, XB_EINPUT, "%s: has %s but not %s; each layer needs both W%d and b%d", path,
                         W[L] ? wn : bn, W[L] ? bn : wn, L + 1, L + 1);
            goto done;
        }
    }
    if (L == 0) {
        rc = xb_fail(err, XB_EINPUT, "%s: no array named W1; expected W1, b1, W2, b2, ... "
                     "with W_k of shape (fan_in, fan_out)", path);
        goto done;
    }
    char next[16];
    snprintf(next, sizeof next, "W%d", L + 2);
    if (xb_npz_get(z, next)) {
        rc = xb_fail(err, XB_EINPUT, "%s: has %s but no W%d; layers must be numbered without gaps", path,
                     next, L + 1);
        goto done;
    }
    rc = assemble(path, NULL, W, b, L, xb_npz_get(z, "activation"), hidden, out, err);
done:
    xb_npz_free(&z);
    return rc;
}

int load_npy_list(const char *const *paths, size_t n, int hidden, xb_mlp **out, xb_error *err)
{
    *out = NULL;
    if (n == 0 || n % 2 || n / 2 > MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "%zu .npy files given; expected pairs W1,b1,W2,b2,... "
                       "(an even number, at most %d)", n, 2 * MAX_LAYERS);
    xb_ndarray *arr[2 * MAX_LAYERS] = {0};
    int rc = XB_OK;
    for (size_t i = 0; i < n && rc == XB_OK; i++)
        rc = xb_npy_read(paths[i], &arr[i], err);
    if (rc == XB_OK) {
        const xb_ndarray *W[MAX_LAYERS], *b[MAX_LAYERS];
        for (size_t k = 0; k < n / 2; k++) {
            W[k] = arr[2 * k];
            b[k] = arr[2 * k + 1];
        }
        /* Messages about the whole list (a missing activation) name its first file. */
        rc = assemble(paths[0], paths, W, b, (int)(n / 2), NULL, hidden, out, err);
    }
    for (size_t i = 0; i < n; i++)
        xb_ndarray_free(&arr[i]);
    return rc;
}

int xb_weights_load(const char *spec, int hidden, xb_mlp **out, xb_error *err)
{
    size_t len = strlen(spec);
    if (len >= 4 && !strcmp(spec + len - 4, ".npz"))
        return xb_weights_load_npz(spec, hidden, out, err);
    char *copy = strdup(spec);
    const char *paths[2 * MAX_LAYERS + 1];
    size_t n = 0;
    if (!copy)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 2 * MAX_LAYERS + 1)
            break;
        paths[n++] = tok;
    }
    int rc;
    if (n == 1 && !(len >= 4 && !strcmp(spec + len - 4, ".npy")))
        rc = xb_fail(err, XB_EINPUT, "%s: weights must be an .npz file or a comma-separated list of .npy "
                     "files (W1.npy,b1.npy,...)", spec);
    else
        rc = load_npy_list(paths, n, hidden, out, err);
    free(copy);
    return rc;
}
