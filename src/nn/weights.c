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
    xb_ndarray *arr[2 * MAX_LAYERS + 4] = {0};
    if (L > MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "%s: %d layers, at most %d supported", path, L, MAX_LAYERS);
    for (int k = 0; k < L; k++) {
        char name[16];
        size_t wshape[4] = {xb_mlp_fan_in(m, k), xb_mlp_fan_out(m, k)}, bshape[1] = {xb_mlp_fan_out(m, k)};
        int wdim = 2;
        if (xb_mlp_is_conv(m, k)) { /* the Keras layout (kh, kw, in, out): the weight matrix's own order */
            const xb_conv *g = &m->conv[k];
            wshape[0] = wshape[1] = g->k;
            wshape[2] = g->in_c;
            wshape[3] = g->out_c;
            wdim = 4;
        }
        snprintf(name, sizeof name, "W%d", k + 1);
        xb_ndarray *W = arr[n++] = xb_ndarray_new(name, wdim, wshape);
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
    if (m->conv) {
        char layers[4096];
        const char *text[1] = {xb_mlp_layers_string(m, layers, sizeof layers)}, *keras[1] = {"keras"};
        size_t three[1] = {3};
        xb_ndarray *in = arr[n++] = xb_ndarray_new("input", 1, three);
        if (!in || !(arr[n++] = xb_ndarray_new_strings("layers", 1, text)) ||
            !(arr[n++] = xb_ndarray_new_strings("layout", 1, keras))) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory saving %s", path);
            goto done;
        }
        in->data[0] = (double)m->conv[0].in_h;
        in->data[1] = (double)m->conv[0].in_w;
        in->data[2] = (double)m->conv[0].in_c;
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

/* The hidden layers' activations: the file's "activation" array, else hidden (-1: none given). */
static int hidden_acts(const char *src, const char *const *paths, int L, const xb_ndarray *act, int hidden,
                       xb_activation *acts, xb_error *err)
{
    for (int k = 0; k < L - 1; k++) {
        if (act) {
            if (act->dtype != XB_DT_STR || (act->count != (size_t)(L - 1) && act->count != 1))
                return xb_fail(err, XB_EINPUT,
                               "%s: 'activation' must be %d strings (one per hidden layer) or one for all, found %zu %s",
                               src, L - 1, act->count, xb_dtype_name(act->dtype));
            const char *name = act->str[act->count == 1 ? 0 : k];
            int a = xb_activation_parse(name);
            if (a < 0)
                return xb_fail(err, XB_EINPUT, "%s: activation '%s' of hidden layer %d is unknown "
                               "(use sigmoid, relu or identity)", src, name, k + 1);
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
        if (W[k]->ndim == 4) {
            xb_shape_str(W[k]->ndim, W[k]->shape, s1, sizeof s1);
            return xb_fail(err, XB_EINPUT, "%s: W%d has shape %s, a convolution kernel, but the file does not describe "
                           "the network: add its 'layers', 'input' and 'layout' arrays or give --layers, --input-shape "
                           "and --layout (docs/cnn.md)", wsrc, k + 1, s1);
        }
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
    int rc = hidden_acts(src, paths, L, act, hidden, acts, err);
    if (rc)
        return rc;
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

/* One string from a 1-element string array of the file (name), or NULL with err filled. */
static const char *file_string(const char *src, const char *name, const xb_ndarray *a, xb_error *err)
{
    if (a->dtype != XB_DT_STR || a->count != 1) {
        xb_fail(err, XB_EINPUT, "%s: '%s' must be one string, found %zu %s", src, name, a->count,
                xb_dtype_name(a->dtype));
        return NULL;
    }
    return a->str[0];
}

/* The layout of a network's arrays: 0 keras (conv (kh, kw, in, out), dense (in, out), flatten (H, W,
 * C)), 1 pytorch (conv (out, in, kh, kw), dense (out, in), flatten (C, H, W)); -1 unknown. */
static int layout_parse(const char *s)
{
    if (!strcmp(s, "keras") || !strcmp(s, "xbarsim"))
        return 0;
    if (!strcmp(s, "pytorch") || !strcmp(s, "torch"))
        return 1;
    return -1;
}

/* A network with a layer list (the file's "layers" or the caller's), an input grid and a layout: each
 * W_k checked against its layer's shape in that layout and stored in the project's order. */
static int assemble_net(const char *src, const char *const *paths, const xb_ndarray *const *W,
                        const xb_ndarray *const *b, int L, const xb_ndarray *act, const xb_net_desc *d,
                        const xb_ndarray *layers_a, const xb_ndarray *input_a, const xb_ndarray *layout_a,
                        xb_mlp **out, xb_error *err)
{
    char s1[64], wn[16], bn[16], derived[4096];
    int rc;
    /* the layout */
    const char *layout_s = layout_a ? file_string(src, "layout", layout_a, err) : d && d->layout ? d->layout : NULL;
    if (layout_a && !layout_s)
        return XB_EINPUT;
    int torch = 0;
    if (layout_s && (torch = layout_parse(layout_s)) < 0)
        return xb_fail(err, XB_EINPUT, "%s: layout '%s' is unknown; allowed: keras (conv kernels (kh, kw, in, out), "
                       "dense (in, out)) or pytorch (conv (out, in, kh, kw), dense (out, in))", src, layout_s);
    for (int k = 0; k < L; k++) {
        snprintf(wn, sizeof wn, "W%d", k + 1);
        snprintf(bn, sizeof bn, "b%d", k + 1);
        if ((rc = check_float(origin(src, paths, k, 0), wn, W[k], err)) ||
            (rc = check_float(origin(src, paths, k, 1), bn, b[k], err)))
            return rc;
    }
    /* the layer list */
    const char *text = layers_a ? file_string(src, "layers", layers_a, err) : d && d->layers ? d->layers : NULL;
    if (layers_a && !text)
        return XB_EINPUT;
    if (!text) { /* dense layers from the shapes */
        size_t used = 0;
        derived[0] = '\0';
        for (int k = 0; k < L; k++) {
            if (W[k]->ndim != 2)
                return xb_fail(err, XB_EINPUT, "%s: W%d has %d dimensions but no layer list says what it is; add a "
                               "'layers' string array (e.g. \"conv:8:3,maxpool:2,dense:10\") or give --layers",
                               origin(src, paths, k, 0), k + 1, W[k]->ndim);
            used += (size_t)snprintf(derived + used, sizeof derived - used, "%sdense:%zu", k ? "," : "",
                                     W[k]->shape[torch ? 0 : 1]);
        }
        text = derived;
    }
    xb_layer_spec spec[XB_MAX_LAYERS];
    int n = 0;
    char what[4200];
    snprintf(what, sizeof what, "%s: layers", src);
    if ((rc = xb_layer_list_parse(text, what, spec, XB_MAX_LAYERS, &n, err)))
        return rc;
    if (n != L)
        return xb_fail(err, XB_EINPUT, "%s: the layer list '%s' has %d weight layers but the file has %d (W1..W%d)",
                       src, text, n, L, L);
    int has_conv = 0;
    for (int k = 0; k < n; k++)
        has_conv |= spec[k].k > 0;
    if (has_conv && !layout_s)
        return xb_fail(err, XB_EINPUT, "%s: convolutional weights need their layout: add a string array "
                       "layout=\"pytorch\" (Conv2d.weight as is, (out, in, kh, kw)) or layout=\"keras\" ((kh, kw, in, "
                       "out)), or give --layout", src);
    /* the input grid */
    size_t hwc[3] = {0, 0, 0};
    if (input_a) {
        if (input_a->dtype == XB_DT_STR || input_a->count != 3)
            return xb_fail(err, XB_EINPUT, "%s: 'input' must be 3 numbers (height, width, channels), found %zu %s", src,
                           input_a->count, xb_dtype_name(input_a->dtype));
        for (int i = 0; i < 3; i++) {
            double v = input_a->data[i];
            if (!(v >= 1 && v <= 1e6 && v == floor(v)))
                return xb_fail(err, XB_EINPUT, "%s: input[%d] is %g; allowed: whole numbers from 1 to 1000000", src, i, v);
            hwc[i] = (size_t)v;
        }
    } else if (d && d->input[0]) {
        memcpy(hwc, d->input, sizeof hwc);
    } else if (!has_conv) {
        hwc[0] = W[0]->ndim == 2 ? W[0]->shape[torch ? 1 : 0] : 1;
        hwc[1] = hwc[2] = 1;
    } else {
        return xb_fail(err, XB_EINPUT, "%s: a convolutional network needs its input grid: add an array "
                       "input=[height, width, channels] (MNIST: [28, 28, 1]) or give --input-shape", src);
    }
    xb_activation acts[MAX_LAYERS];
    if ((rc = hidden_acts(src, paths, L, act, d ? d->hidden : -1, acts, err)))
        return rc;
    xb_mlp *m = xb_net_new(hwc[0], hwc[1], hwc[2], n, spec, XB_ACT_IDENTITY, err);
    if (!m)
        return err->code ? err->code : XB_EINPUT;
    for (int k = 0; k < L; k++) {
        const char *wsrc = origin(src, paths, k, 0), *bsrc = origin(src, paths, k, 1);
        snprintf(wn, sizeof wn, "W%d", k + 1);
        snprintf(bn, sizeof bn, "b%d", k + 1);
        m->act[k] = k < L - 1 ? acts[k] : XB_ACT_IDENTITY;
        size_t fi = xb_mlp_fan_in(m, k), fo = xb_mlp_fan_out(m, k), want[4];
        int ndim;
        const xb_conv *g = xb_mlp_is_conv(m, k) ? &m->conv[k] : NULL;
        if (g) {
            size_t kk = g->k;
            ndim = 4;
            if (torch)
                want[0] = g->out_c, want[1] = g->in_c, want[2] = kk, want[3] = kk;
            else
                want[0] = kk, want[1] = kk, want[2] = g->in_c, want[3] = g->out_c;
        } else {
            ndim = 2;
            want[0] = torch ? fo : fi;
            want[1] = torch ? fi : fo;
        }
        int ok = W[k]->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++)
            ok = W[k]->shape[i] == want[i];
        if (!ok) {
            char s2[64];
            xb_shape_str(W[k]->ndim, W[k]->shape, s1, sizeof s1);
            xb_shape_str(ndim, want, s2, sizeof s2);
            xb_mlp_free(&m);
            return xb_fail(err, XB_EINPUT, "%s: %s has shape %s; layer %d of '%s' in the %s layout needs %s", wsrc, wn, s1,
                           k + 1, text, torch ? "pytorch" : "keras", s2);
        }
        int bias_ok = (b[k]->ndim == 1 && b[k]->shape[0] == fo) ||
                      (b[k]->ndim == 2 && b[k]->shape[0] == 1 && b[k]->shape[1] == fo);
        if (!bias_ok) {
            xb_shape_str(b[k]->ndim, b[k]->shape, s1, sizeof s1);
            xb_mlp_free(&m);
            return xb_fail(err, XB_EINPUT, "%s: %s has shape %s, expected (%zu,) for layer %d", bsrc, bn, s1, fo, k + 1);
        }
        if ((rc = check_values(wsrc, wn, W[k], err)) || (rc = check_values(bsrc, bn, b[k], err))) {
            xb_mlp_free(&m);
            return rc;
        }
        const double *src_w = W[k]->data;
        double *dst = m->W[k];
        if (g && torch) { /* (out, in, kh, kw) -> row (ky k + kx) in_c + c, column f */
            size_t kk = g->k, C = g->in_c, F = g->out_c;
            for (size_t f = 0; f < F; f++)
                for (size_t c = 0; c < C; c++)
                    for (size_t ky = 0; ky < kk; ky++)
                        for (size_t kx = 0; kx < kk; kx++)
                            dst[((ky * kk + kx) * C + c) * F + f] = src_w[((f * C + c) * kk + ky) * kk + kx];
        } else if (!g && torch) { /* (out, in) transposed; after a conv layer, inputs from (C, H, W) order */
            const xb_conv *prev = k > 0 && xb_mlp_is_conv(m, k - 1) ? &m->conv[k - 1] : NULL;
            size_t HW = prev ? prev->pool_h * prev->pool_w : fi, C = prev ? prev->out_c : 1;
            for (size_t o = 0; o < fo; o++)
                for (size_t c = 0; c < C; c++)
                    for (size_t p = 0; p < HW; p++)
                        dst[(p * C + c) * fo + o] = src_w[o * fi + c * HW + p];
        } else {
            memcpy(dst, src_w, fi * fo * sizeof *dst);
        }
        memcpy(m->b[k], b[k]->data, fo * sizeof *m->b[k]);
    }
    *out = m;
    return XB_OK;
}

int xb_weights_load_npz_desc(const char *path, const xb_net_desc *d, xb_mlp **out, xb_error *err)
{
    int hidden = d ? d->hidden : -1;
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
    const xb_ndarray *layers = xb_npz_get(z, "layers"), *input = xb_npz_get(z, "input"), *layout = xb_npz_get(z, "layout");
    if (layers || input || layout || (d && (d->layers || d->layout || d->input[0])))
        rc = assemble_net(path, NULL, W, b, L, xb_npz_get(z, "activation"), d, layers, input, layout, out, err);
    else
        rc = assemble(path, NULL, W, b, L, xb_npz_get(z, "activation"), hidden, out, err);
done:
    xb_npz_free(&z);
    return rc;
}

static int load_npy_list(const char *const *paths, size_t n, const xb_net_desc *d, xb_mlp **out, xb_error *err)
{
    int hidden = d ? d->hidden : -1;
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
        if (d && (d->layers || d->layout || d->input[0]))
            rc = assemble_net(paths[0], paths, W, b, (int)(n / 2), NULL, d, NULL, NULL, NULL, out, err);
        else
            rc = assemble(paths[0], paths, W, b, (int)(n / 2), NULL, hidden, out, err);
    }
    for (size_t i = 0; i < n; i++)
        xb_ndarray_free(&arr[i]);
    return rc;
}

int xb_weights_load_npz(const char *path, int hidden, xb_mlp **out, xb_error *err)
{
    xb_net_desc d = {.hidden = hidden};
    return xb_weights_load_npz_desc(path, &d, out, err);
}

int xb_weights_load(const char *spec, int hidden, xb_mlp **out, xb_error *err)
{
    xb_net_desc d = {.hidden = hidden};
    return xb_weights_load_desc(spec, &d, out, err);
}

int xb_weights_load_desc(const char *spec, const xb_net_desc *d, xb_mlp **out, xb_error *err)
{
    size_t len = strlen(spec);
    if (len >= 4 && !strcmp(spec + len - 4, ".npz"))
        return xb_weights_load_npz_desc(spec, d, out, err);
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
        rc = load_npy_list(paths, n, d, out, err);
    free(copy);
    return rc;
}
