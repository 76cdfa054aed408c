// mlp: multi-layer perceptrons (the single-layer perceptron is the 0-hidden-layer case)
#include "mlp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>

int xb_activation_parse(const char *s)
{
    if (!strcmp(s, "sigmoid"))
        return XB_ACT_SIGMOID;
    if (!strcmp(s, "relu"))
        return XB_ACT_RELU;
    if (!strcmp(s, "identity") || !strcmp(s, "linear"))
        return XB_ACT_IDENTITY;
    return -1;
}

const char *xb_activation_name(xb_activation a)
{
    switch (a) {
    case XB_ACT_SIGMOID: return "sigmoid";
    case XB_ACT_RELU: return "relu";
    default: return "identity";
    }
}

/* m's arrays for the geometry in conv (NULL: dense), sizes already set: weights and biases zeroed. */
static int alloc_layers(xb_mlp *m, const xb_conv *conv)
{
    if (conv) {
        m->conv = malloc((size_t)m->n_layers * sizeof *m->conv);
        if (!m->conv)
            return -1;
        memcpy(m->conv, conv, (size_t)m->n_layers * sizeof *conv);
    }
    for (int k = 0; k < m->n_layers; k++) {
        m->W[k] = calloc(xb_mlp_n_weights(m, k), sizeof **m->W);
        m->b[k] = calloc(xb_mlp_fan_out(m, k), sizeof **m->b);
        if (!m->W[k] || !m->b[k])
            return -1;
    }
    return 0;
}

static xb_mlp *net_alloc(int n_layers, const size_t *sizes, xb_activation hidden, const xb_conv *conv)
{
    if (n_layers < 1)
        return NULL;
    for (int k = 0; k <= n_layers; k++)
        if (sizes[k] == 0)
            return NULL;
    xb_mlp *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_layers = n_layers;
    m->sizes = malloc((size_t)(n_layers + 1) * sizeof *m->sizes);
    m->act = malloc((size_t)n_layers * sizeof *m->act);
    m->W = calloc((size_t)n_layers, sizeof *m->W);
    m->b = calloc((size_t)n_layers, sizeof *m->b);
    if (!m->sizes || !m->act || !m->W || !m->b) {
        xb_mlp_free(&m);
        return NULL;
    }
    memcpy(m->sizes, sizes, (size_t)(n_layers + 1) * sizeof *sizes);
    for (int k = 0; k < n_layers; k++)
        m->act[k] = k == n_layers - 1 ? XB_ACT_IDENTITY : hidden;
    if (alloc_layers(m, conv))
        xb_mlp_free(&m);
    return m;
}

xb_mlp *xb_mlp_new(int n_layers, const size_t *sizes, xb_activation hidden)
{
    return net_alloc(n_layers, sizes, hidden, NULL);
}

xb_mlp *xb_mlp_clone(const xb_mlp *m)
{
    xb_mlp *c = net_alloc(m->n_layers, m->sizes, XB_ACT_IDENTITY, m->conv);
    if (!c)
        return NULL;
    for (int k = 0; k < m->n_layers; k++) {
        c->act[k] = m->act[k];
        memcpy(c->W[k], m->W[k], xb_mlp_n_weights(m, k) * sizeof **m->W);
        memcpy(c->b[k], m->b[k], xb_mlp_fan_out(m, k) * sizeof **m->b);
    }
    return c;
}

void xb_mlp_free(xb_mlp **mp)
{
    if (!mp || !*mp)
        return;
    xb_mlp *m = *mp;
    for (int k = 0; k < m->n_layers; k++) {
        if (m->W)
            free(m->W[k]);
        if (m->b)
            free(m->b[k]);
    }
    free(m->W);
    free(m->b);
    free(m->sizes);
    free(m->act);
    free(m->conv);
    free(m);
    *mp = NULL;
}

void xb_mlp_init(xb_mlp *m, gsl_rng *rng)
{
    for (int k = 0; k < m->n_layers; k++) {
        size_t fi = xb_mlp_fan_in(m, k), fo = xb_mlp_fan_out(m, k), n = fi * fo;
        if (m->act[k] == XB_ACT_RELU) {
            double sd = sqrt(2.0 / (double)fi);
            for (size_t i = 0; i < n; i++)
                m->W[k][i] = gsl_ran_gaussian(rng, sd);
        } else {
            double a = sqrt(6.0 / (double)(fi + fo));
            for (size_t i = 0; i < n; i++)
                m->W[k][i] = gsl_ran_flat(rng, -a, a);
        }
        memset(m->b[k], 0, fo * sizeof **m->b);
    }
}

size_t xb_mlp_synapses(const xb_mlp *m)
{
    size_t n = 0;
    for (int k = 0; k < m->n_layers; k++)
        n += xb_mlp_n_weights(m, k);
    return n;
}

size_t xb_mlp_param_count(const xb_mlp *m)
{
    size_t n = 0;
    for (int k = 0; k < m->n_layers; k++)
        n += xb_mlp_n_weights(m, k) + xb_mlp_fan_out(m, k);
    return n;
}

/* ---- Layer lists -------------------------------------------------------------------------------- */

/* The size_t fields of one layer item (after its keyword): at least lo, at most hi, each >= min_v. */
static int item_numbers(const char *what, const char *item, const char *p, size_t *v, int lo, int hi,
                        size_t min_v, const char *form, xb_error *err)
{
    int n = 0;
    while (*p) {
        if (*p != ':' || n == hi)
            return xb_fail(err, XB_EINPUT, "%s: '%s': expected %s", what, item, form);
        p++;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p || *p == '-' || *p == '+' || errno || x > 1000000 || x < min_v)
            return xb_fail(err, XB_EINPUT, "%s: '%s': expected %s, with whole numbers from %zu to 1000000", what,
                           item, form, min_v);
        v[n++] = (size_t)x;
        p = end;
    }
    if (n < lo)
        return xb_fail(err, XB_EINPUT, "%s: '%s': expected %s", what, item, form);
    return XB_OK;
}

int xb_layer_list_parse(const char *text, const char *what, xb_layer_spec *spec, int max, int *n, xb_error *err)
{
    *n = 0;
    char buf[4096];
    if (strlen(text) >= sizeof buf)
        return xb_fail(err, XB_EINPUT, "%s: the layer list is longer than %zu characters", what, sizeof buf - 1);
    strcpy(buf, text);
    int seen_flat = 0, seen_dense = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        size_t v[4] = {0, 0, 0, 0};
        int rc;
        if (!strncmp(item, "conv:", 5) || !strcmp(item, "conv")) {
            if (seen_flat || seen_dense)
                return xb_fail(err, XB_EINPUT, "%s: '%s' after a dense layer or flatten; convolutional "
                               "layers come first", what, item);
            if ((rc = item_numbers(what, item, item + 4, v, 2, 4, 0, "conv:FILTERS:KERNEL[:STRIDE[:PADDING]]",
                                   err)))
                return rc;
            if (v[0] == 0 || v[1] == 0)
                return xb_fail(err, XB_EINPUT, "%s: '%s': filters and kernel size must be at least 1", what, item);
            size_t colons = 0;
            for (const char *q = item; *q; q++)
                colons += *q == ':';
            if (colons >= 3 && v[2] == 0)
                return xb_fail(err, XB_EINPUT, "%s: '%s': the stride must be at least 1", what, item);
            if (*n == max)
                return xb_fail(err, XB_EINPUT, "%s: more than %d layers", what, max);
            spec[(*n)++] = (xb_layer_spec){.units = v[0], .k = v[1], .stride = colons >= 3 ? v[2] : 1,
                                           .pad = colons >= 4 ? v[3] : 0};
        } else if (!strncmp(item, "maxpool", 7) || !strncmp(item, "avgpool", 7)) {
            if (*n == 0 || spec[*n - 1].k == 0 || seen_flat)
                return xb_fail(err, XB_EINPUT, "%s: '%s' must follow a conv layer", what, item);
            if (spec[*n - 1].pool != XB_POOL_NONE)
                return xb_fail(err, XB_EINPUT, "%s: '%s': the conv layer before it is pooled already", what, item);
            if ((rc = item_numbers(what, item, item + 7, v, 1, 2, 1, "maxpool:WINDOW[:STRIDE] or "
                                   "avgpool:WINDOW[:STRIDE]", err)))
                return rc;
            spec[*n - 1].pool = item[0] == 'm' ? XB_POOL_MAX : XB_POOL_AVG;
            spec[*n - 1].pool_k = v[0];
            spec[*n - 1].pool_stride = v[1] ? v[1] : v[0];
        } else if (!strcmp(item, "flatten")) {
            if (seen_flat)
                return xb_fail(err, XB_EINPUT, "%s: 'flatten' given twice", what);
            seen_flat = 1;
        } else if (!strncmp(item, "dense:", 6) || !strcmp(item, "dense")) {
            if ((rc = item_numbers(what, item, item + 5, v, 1, 1, 1, "dense:UNITS", err)))
                return rc;
            if (*n == max)
                return xb_fail(err, XB_EINPUT, "%s: more than %d layers", what, max);
            spec[(*n)++] = (xb_layer_spec){.units = v[0]};
            seen_dense = 1;
        } else {
            return xb_fail(err, XB_EINPUT, "%s: unknown layer '%s'; allowed: conv:F:K[:S[:P]], maxpool:K[:S], "
                           "avgpool:K[:S], flatten, dense:N (comma-separated)", what, item);
        }
    }
    if (*n == 0)
        return xb_fail(err, XB_EINPUT, "%s: no layers in '%s'", what, text);
    return XB_OK;
}

int xb_conv_complete(xb_conv *g, int layer, xb_error *err)
{
    if (!g->k || !g->stride || !g->in_h || !g->in_w || !g->in_c || !g->out_c)
        return xb_fail(err, XB_EINPUT, "layer %d: a conv layer needs a kernel, a stride, an input grid and filters", layer);
    if (g->in_h + 2 * g->pad < g->k || g->in_w + 2 * g->pad < g->k)
        return xb_fail(err, XB_EINPUT, "layer %d: a %zux%zu kernel does not fit its %zux%zu input (padding %zu)", layer,
                       g->k, g->k, g->in_h, g->in_w, g->pad);
    if (g->pad >= g->k)
        return xb_fail(err, XB_EINPUT, "layer %d: padding %zu must be smaller than the kernel (%zu)", layer, g->pad,
                       g->k);
    g->out_h = (g->in_h + 2 * g->pad - g->k) / g->stride + 1;
    g->out_w = (g->in_w + 2 * g->pad - g->k) / g->stride + 1;
    g->pool_h = g->out_h;
    g->pool_w = g->out_w;
    if (g->pool == XB_POOL_NONE) {
        g->pool_k = g->pool_stride = 0;
        return XB_OK;
    }
    if (g->pool != XB_POOL_MAX && g->pool != XB_POOL_AVG)
        return xb_fail(err, XB_EINPUT, "layer %d: pooling kind %d is unknown (1 max, 2 average)", layer, (int)g->pool);
    if (g->pool_k == 0 || g->pool_k > g->out_h || g->pool_k > g->out_w || g->pool_stride == 0)
        return xb_fail(err, XB_EINPUT, "layer %d: a %zux%zu pooling window (stride %zu) does not fit the %zux%zu "
                       "convolution output", layer, g->pool_k, g->pool_k, g->pool_stride, g->out_h, g->out_w);
    g->pool_h = (g->out_h - g->pool_k) / g->pool_stride + 1;
    g->pool_w = (g->out_w - g->pool_k) / g->pool_stride + 1;
    return XB_OK;
}

xb_mlp *xb_net_new(size_t h, size_t w, size_t c, int n_layers, const xb_layer_spec *spec, xb_activation hidden,
                   xb_error *err)
{
    if (n_layers < 1 || n_layers > XB_MAX_LAYERS) {
        xb_fail(err, XB_EINPUT, "a network needs 1 to %d layers, got %d", XB_MAX_LAYERS, n_layers);
        return NULL;
    }
    if (h == 0 || w == 0 || c == 0) {
        xb_fail(err, XB_EINPUT, "the input grid %zux%zux%zu is empty", h, w, c);
        return NULL;
    }
    xb_conv conv[XB_MAX_LAYERS];
    size_t sizes[XB_MAX_LAYERS + 1];
    memset(conv, 0, sizeof conv);
    sizes[0] = h * w * c;
    int any = 0;
    for (int k = 0; k < n_layers; k++) {
        const xb_layer_spec *sp = &spec[k];
        if (sp->units == 0) {
            xb_fail(err, XB_EINPUT, "layer %d has no outputs", k + 1);
            return NULL;
        }
        if (!sp->k) {
            sizes[k + 1] = sp->units;
            h = w = 1;
            c = 0;
            continue;
        }
        if (c == 0) {
            xb_fail(err, XB_EINPUT, "layer %d: a conv layer cannot follow a dense layer", k + 1);
            return NULL;
        }
        xb_conv *g = &conv[k];
        *g = (xb_conv){.k = sp->k, .stride = sp->stride ? sp->stride : 1, .pad = sp->pad, .in_h = h, .in_w = w,
                       .in_c = c, .out_c = sp->units, .pool = sp->pool, .pool_k = sp->pool_k,
                       .pool_stride = sp->pool_stride ? sp->pool_stride : sp->pool_k};
        if (xb_conv_complete(g, k + 1, err))
            return NULL;
        h = g->pool_h;
        w = g->pool_w;
        c = g->out_c;
        sizes[k + 1] = h * w * c;
        any = 1;
    }
    if (spec[n_layers - 1].k) {
        xb_fail(err, XB_EINPUT, "the last layer must be dense (it gives the class scores)");
        return NULL;
    }
    xb_mlp *m = net_alloc(n_layers, sizes, hidden, any ? conv : NULL);
    if (!m)
        xb_fail(err, XB_ENOMEM, "out of memory for a %d-layer network", n_layers);
    return m;
}

const char *xb_mlp_layers_string(const xb_mlp *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
#define PUT(...) (used += used < len ? (size_t)snprintf(buf + used, len - used, __VA_ARGS__) : 0)
    for (int k = 0; k < m->n_layers; k++) {
        if (k)
            PUT(",");
        if (!xb_mlp_is_conv(m, k)) {
            PUT("dense:%zu", m->sizes[k + 1]);
            continue;
        }
        const xb_conv *g = &m->conv[k];
        PUT("conv:%zu:%zu", g->out_c, g->k);
        if (g->stride != 1 || g->pad)
            PUT(":%zu", g->stride);
        if (g->pad)
            PUT(":%zu", g->pad);
        if (g->pool != XB_POOL_NONE) {
            PUT(",%s:%zu", g->pool == XB_POOL_MAX ? "maxpool" : "avgpool", g->pool_k);
            if (g->pool_stride != g->pool_k)
                PUT(":%zu", g->pool_stride);
        }
    }
#undef PUT
    return buf;
}

const char *xb_mlp_describe(const xb_mlp *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (m->conv) {
        char layers[1024];
        used = (size_t)snprintf(buf, len, "%zux%zux%zu %s", m->conv[0].in_h, m->conv[0].in_w, m->conv[0].in_c,
                                xb_mlp_layers_string(m, layers, sizeof layers));
        if (used < len)
            snprintf(buf + used, len - used, " %s", xb_activation_name(m->act[0]));
        return buf;
    }
    for (int k = 0; k <= m->n_layers && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", k ? "-" : "", m->sizes[k]);
    if (m->n_layers > 1 && used < len)
        snprintf(buf + used, len - used, " %s", xb_activation_name(m->act[0]));
    return buf;
}

void xb_activation_apply(xb_activation a, double *z, size_t n)
{
    switch (a) {
    case XB_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            z[i] = 1.0 / (1.0 + exp(-z[i]));
        break;
    case XB_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            z[i] = z[i] > 0 ? z[i] : 0;
        break;
    default:
        break;
    }
}

size_t xb_argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

struct xb_mlp_work {
    size_t max_batch;
    int n_layers;
    double **A;   /* A[k]: output of layer k, max_batch x sizes[k+1] */
    double *D;    /* gradient with respect to the current layer's pre-activation */
    double *D2;   /* the next one down */
    double *D3;   /* a pooled layer's gradient before unpooling */
    double *dcol; /* a conv layer's gradient with respect to its patches */
    double **P;   /* P[k]: hidden layer k's activations before on_act and dropout (training passes) */
    double **M;   /* M[k]: its dropout multipliers, 0 or 1 / (1 - p) */
    double **C;   /* C[k]: conv layer k's patches, max_batch out_h out_w x fan_in (im2col) */
    double **Z;   /* Z[k]: pooled conv layer k's activations before pooling, max_batch out_h out_w x out_c */
    size_t **I;   /* I[k]: max pooling's chosen element of Z[k] for each output */
};

/* Values of layer k before pooling (n = 1): its rows (patches) x fan_out. */
static size_t unpooled(const xb_mlp *m, int k) { return xb_mlp_patches(m, k) * xb_mlp_fan_out(m, k); }

static xb_mlp_work *work_new(const xb_mlp *m, size_t max_batch, int train);

xb_mlp_work *xb_mlp_work_new(const xb_mlp *m, size_t max_batch) { return work_new(m, max_batch, 1); }

xb_mlp_work *xb_mlp_work_new_forward(const xb_mlp *m, size_t max_batch) { return work_new(m, max_batch, 0); }

/* train 0: the forward pass's arrays only (no gradients, no dropout or on_act copies). */
static xb_mlp_work *work_new(const xb_mlp *m, size_t max_batch, int train)
{
    xb_mlp_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->max_batch = max_batch;
    w->n_layers = m->n_layers;
    w->A = calloc((size_t)m->n_layers, sizeof *w->A);
    w->P = calloc((size_t)m->n_layers, sizeof *w->P);
    w->M = calloc((size_t)m->n_layers, sizeof *w->M);
    w->C = calloc((size_t)m->n_layers, sizeof *w->C);
    w->Z = calloc((size_t)m->n_layers, sizeof *w->Z);
    w->I = calloc((size_t)m->n_layers, sizeof *w->I);
    size_t widest = 0, widest_col = 0;
    for (int k = 0; k <= m->n_layers; k++)
        if (m->sizes[k] > widest)
            widest = m->sizes[k];
    for (int k = 0; k < m->n_layers; k++) {
        if (unpooled(m, k) > widest)
            widest = unpooled(m, k);
        if (xb_mlp_is_conv(m, k) && xb_mlp_patches(m, k) * xb_mlp_fan_in(m, k) > widest_col)
            widest_col = xb_mlp_patches(m, k) * xb_mlp_fan_in(m, k);
    }
    if (train) {
        w->D = malloc(max_batch * widest * sizeof *w->D);
        w->D2 = malloc(max_batch * widest * sizeof *w->D2);
        w->D3 = malloc(max_batch * widest * sizeof *w->D3);
        w->dcol = widest_col ? malloc(max_batch * widest_col * sizeof *w->dcol) : NULL;
    }
    if (!w->A || !w->P || !w->M || !w->C || !w->Z || !w->I ||
        (train && (!w->D || !w->D2 || !w->D3 || (widest_col && !w->dcol)))) {
        xb_mlp_work_free(&w);
        return NULL;
    }
    for (int k = 0; k < m->n_layers; k++) {
        w->A[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->A);
        int bad = !w->A[k];
        /* The output layer has neither on_act nor dropout. */
        if (train && k + 1 < m->n_layers) {
            w->P[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->P);
            w->M[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->M);
            bad |= !w->P[k] || !w->M[k];
        }
        if (xb_mlp_is_conv(m, k)) {
            w->C[k] = malloc(max_batch * xb_mlp_patches(m, k) * xb_mlp_fan_in(m, k) * sizeof **w->C);
            bad |= !w->C[k];
            if (m->conv[k].pool != XB_POOL_NONE) {
                w->Z[k] = malloc(max_batch * unpooled(m, k) * sizeof **w->Z);
                w->I[k] = train ? malloc(max_batch * m->sizes[k + 1] * sizeof **w->I) : NULL;
                bad |= !w->Z[k] || (train && !w->I[k]);
            }
        }
        if (bad) {
            xb_mlp_work_free(&w);
            return NULL;
        }
    }
    return w;
}

void xb_mlp_work_free(xb_mlp_work **wp)
{
    if (!wp || !*wp)
        return;
    xb_mlp_work *w = *wp;
    for (int k = 0; k < w->n_layers; k++) {
        if (w->A)
            free(w->A[k]);
        if (w->P)
            free(w->P[k]);
        if (w->M)
            free(w->M[k]);
        if (w->C)
            free(w->C[k]);
        if (w->Z)
            free(w->Z[k]);
        if (w->I)
            free(w->I[k]);
    }
    free(w->A);
    free(w->P);
    free(w->M);
    free(w->C);
    free(w->Z);
    free(w->I);
    free(w->D);
    free(w->D2);
    free(w->D3);
    free(w->dcol);
    free(w);
    *wp = NULL;
}

/* ---- Convolution as patches, and pooling ---------------------------------------------------------- */

void xb_conv_im2col(const xb_conv *g, const double *in, size_t n, double *col)
{
    size_t in_size = g->in_h * g->in_w * g->in_c, fi = g->k * g->k * g->in_c, kc = g->k * g->in_c;
    for (size_t i = 0; i < n; i++) {
        const double *img = in + i * in_size;
        for (size_t oy = 0; oy < g->out_h; oy++)
            for (size_t ox = 0; ox < g->out_w; ox++) {
                double *row = col + ((i * g->out_h + oy) * g->out_w + ox) * fi;
                for (size_t ky = 0; ky < g->k; ky++) {
                    size_t iy = oy * g->stride + ky; /* + pad */
                    double *dst = row + ky * kc;
                    if (iy < g->pad || iy - g->pad >= g->in_h) {
                        memset(dst, 0, kc * sizeof *dst);
                        continue;
                    }
                    const double *src = img + (iy - g->pad) * g->in_w * g->in_c;
                    size_t ix0 = ox * g->stride; /* + pad */
                    if (ix0 >= g->pad && ix0 - g->pad + g->k <= g->in_w) { /* the kernel row lies inside */
                        memcpy(dst, src + (ix0 - g->pad) * g->in_c, kc * sizeof *dst);
                        continue;
                    }
                    for (size_t kx = 0; kx < g->k; kx++) {
                        size_t ix = ox * g->stride + kx;
                        if (ix < g->pad || ix - g->pad >= g->in_w)
                            memset(dst + kx * g->in_c, 0, g->in_c * sizeof *dst);
                        else
                            memcpy(dst + kx * g->in_c, src + (ix - g->pad) * g->in_c, g->in_c * sizeof *dst);
                    }
                }
            }
    }
}

/* The adjoint of xb_conv_im2col: every patch entry's gradient added to the input value it copied. */
static void col2im(const xb_conv *g, const double *col, size_t n, double *in)
{
    size_t in_size = g->in_h * g->in_w * g->in_c, fi = g->k * g->k * g->in_c;
    memset(in, 0, n * in_size * sizeof *in);
    for (size_t i = 0; i < n; i++) {
        double *img = in + i * in_size;
        for (size_t oy = 0; oy < g->out_h; oy++)
            for (size_t ox = 0; ox < g->out_w; ox++) {
                const double *row = col + ((i * g->out_h + oy) * g->out_w + ox) * fi;
                for (size_t ky = 0; ky < g->k; ky++) {
                    size_t iy = oy * g->stride + ky;
                    if (iy < g->pad || iy - g->pad >= g->in_h)
                        continue;
                    for (size_t kx = 0; kx < g->k; kx++) {
                        size_t ix = ox * g->stride + kx;
                        if (ix < g->pad || ix - g->pad >= g->in_w)
                            continue;
                        double *dst = img + ((iy - g->pad) * g->in_w + ix - g->pad) * g->in_c;
                        const double *src = row + (ky * g->k + kx) * g->in_c;
                        for (size_t c = 0; c < g->in_c; c++)
                            dst[c] += src[c];
                    }
                }
            }
    }
}

void xb_conv_pool(const xb_conv *g, const double *z, size_t n, double *out, size_t *chosen)
{
    size_t C = g->out_c, zs = g->out_h * g->out_w * C, os = g->pool_h * g->pool_w * C;
    double inv = 1.0 / (double)(g->pool_k * g->pool_k);
    /* Window by window, the channels innermost (contiguous in z and out); the window's elements in
     * row-major order, so max pooling keeps the first of equal values. */
    for (size_t i = 0; i < n; i++)
        for (size_t py = 0; py < g->pool_h; py++)
            for (size_t px = 0; px < g->pool_w; px++) {
                size_t o = i * os + (py * g->pool_w + px) * C;
                double *dst = out + o;
                for (size_t dy = 0; dy < g->pool_k; dy++)
                    for (size_t dx = 0; dx < g->pool_k; dx++) {
                        size_t at = i * zs + ((py * g->pool_stride + dy) * g->out_w + px * g->pool_stride + dx) * C;
                        const double *src = z + at;
                        if (dy == 0 && dx == 0) {
                            memcpy(dst, src, C * sizeof *dst);
                            if (chosen)
                                for (size_t c = 0; c < C; c++)
                                    chosen[o + c] = at + c;
                        } else if (g->pool == XB_POOL_AVG) {
                            for (size_t c = 0; c < C; c++)
                                dst[c] += src[c];
                        } else if (chosen) {
                            for (size_t c = 0; c < C; c++)
                                if (src[c] > dst[c]) {
                                    dst[c] = src[c];
                                    chosen[o + c] = at + c;
                                }
                        } else {
                            for (size_t c = 0; c < C; c++)
                                dst[c] = src[c] > dst[c] ? src[c] : dst[c];
                        }
                    }
                if (g->pool == XB_POOL_AVG)
                    for (size_t c = 0; c < C; c++)
                        dst[c] *= inv;
            }
}

/* The adjoint of pooling: d (n x pooled values) spread into dz (n x unpooled values). */
static void unpool(const xb_conv *g, const double *d, const size_t *chosen, size_t n, double *dz)
{
    size_t C = g->out_c, zs = g->out_h * g->out_w * C, os = g->pool_h * g->pool_w * C;
    memset(dz, 0, n * zs * sizeof *dz);
    if (g->pool == XB_POOL_MAX) {
        for (size_t o = 0; o < n * os; o++)
            dz[chosen[o]] += d[o];
        return;
    }
    double inv = 1.0 / (double)(g->pool_k * g->pool_k);
    for (size_t i = 0; i < n; i++)
        for (size_t py = 0; py < g->pool_h; py++)
            for (size_t px = 0; px < g->pool_w; px++)
                for (size_t c = 0; c < C; c++) {
                    double v = d[i * os + (py * g->pool_w + px) * C + c] * inv;
                    for (size_t dy = 0; dy < g->pool_k; dy++)
                        for (size_t dx = 0; dx < g->pool_k; dx++)
                            dz[i * zs + ((py * g->pool_stride + dy) * g->out_w + px * g->pool_stride + dx) * C + c] += v;
                }
}

/* 1 if hidden layer k of a pass keeps its pre-dropout activations in w->P[k]. */
static int keeps_p(const xb_mlp *m, int k, const xb_mlp_pass *pass)
{
    return pass && k + 1 < m->n_layers && (pass->on_act || pass->dropout > 0);
}

/* Fill w->A[*] for n inputs (and w->P, w->M for a training pass). */
static void forward_all(const xb_mlp *m, const double *X, size_t n, xb_mlp_work *w, const xb_mlp_pass *pass)
{
    const double *in = X;
    for (int k = 0; k < m->n_layers; k++) {
        size_t fi = xb_mlp_fan_in(m, k), fo = xb_mlp_fan_out(m, k), cnt = n * m->sizes[k + 1];
        size_t rows = n * xb_mlp_patches(m, k);
        int conv = xb_mlp_is_conv(m, k), pooled = conv && m->conv[k].pool != XB_POOL_NONE;
        double *out = w->A[k], *z = pooled ? w->Z[k] : out;
        const double *x = in;
        if (conv) {
            xb_conv_im2col(&m->conv[k], in, n, w->C[k]);
            x = w->C[k];
        }
        for (size_t r = 0; r < rows; r++)
            memcpy(z + r * fo, m->b[k], fo * sizeof *z);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)fo, (int)fi, 1.0, x, (int)fi,
                    m->W[k], (int)fo, 1.0, z, (int)fo);
        if (pass && pass->on_preact)
            pass->on_preact(pass->ctx, k, z, rows, fo);
        xb_activation_apply(m->act[k], z, rows * fo);
        if (pooled)
            xb_conv_pool(&m->conv[k], z, n, out, w->I[k]); /* NULL in a forward-only work */
        if (keeps_p(m, k, pass)) {
            memcpy(w->P[k], out, cnt * sizeof *out);
            if (pass->on_act)
                pass->on_act(pass->ctx, k, out, cnt / fo, fo);
            if (pass->dropout > 0) {
                double keep = 1.0 / (1.0 - pass->dropout), *mask = w->M[k];
                for (size_t i = 0; i < cnt; i++) {
                    mask[i] = gsl_rng_uniform(pass->rng) < pass->dropout ? 0.0 : keep;
                    out[i] *= mask[i];
                }
            }
        }
        in = out;
    }
}

void xb_mlp_forward(const xb_mlp *m, const double *X, size_t n, double *logits, xb_mlp_work *w)
{
    forward_all(m, X, n, w, NULL);
    memcpy(logits, w->A[m->n_layers - 1], n * m->sizes[m->n_layers] * sizeof *logits);
}

const double *xb_mlp_work_layer(const xb_mlp_work *w, int k) { return w->A[k]; }

int xb_mlp_predict(const xb_mlp *m, const double *X, size_t n, int *pred, xb_error *err)
{
    const size_t batch = n < 256 ? (n ? n : 1) : 256;
    xb_mlp_work *w = xb_mlp_work_new_forward(m, batch);
    if (!w)
        return xb_fail(err, XB_ENOMEM, "out of memory for a forward pass");
    size_t in = m->sizes[0], out = m->sizes[m->n_layers];
    for (size_t s = 0; s < n; s += batch) {
        size_t nb = n - s < batch ? n - s : batch;
        forward_all(m, X + s * in, nb, w, NULL);
        const double *L = w->A[m->n_layers - 1];
        for (size_t r = 0; r < nb; r++)
            pred[s + r] = (int)xb_argmax(L + r * out, out);
    }
    xb_mlp_work_free(&w);
    return XB_OK;
}

double xb_mlp_loss_grad(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                        xb_mlp *grad, size_t *n_correct, xb_mlp_work *w)
{
    return xb_mlp_loss_grad_pass(m, X, labels, n, grad, n_correct, w, NULL);
}

double xb_mlp_loss_grad_pass(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                             xb_mlp *grad, size_t *n_correct, xb_mlp_work *w, const xb_mlp_pass *pass)
{
    forward_all(m, X, n, w, pass);
    int L = m->n_layers;
    size_t C = m->sizes[L];
    const double *logits = w->A[L - 1];
    double loss = 0;
    size_t correct = 0;
    /* Softmax with the max subtracted for stability; D = (softmax - onehot) / n. */
    for (size_t r = 0; r < n; r++) {
        const double *z = logits + r * C;
        double *d = w->D + r * C;
        size_t top = xb_argmax(z, C);
        correct += top == labels[r];
        double zmax = z[top], sum = 0;
        for (size_t c = 0; c < C; c++) {
            d[c] = exp(z[c] - zmax);
            sum += d[c];
        }
        loss += log(sum) - (z[labels[r]] - zmax);
        for (size_t c = 0; c < C; c++)
            d[c] = d[c] / sum / (double)n;
        d[labels[r]] -= 1.0 / (double)n;
    }
    loss /= (double)n;
    if (n_correct)
        *n_correct = correct;
    if (!grad)
        return loss;

    double *D = w->D, *D2 = w->D2, *D3 = w->D3;
    for (int k = L - 1; k >= 0; k--) {
        size_t fi = xb_mlp_fan_in(m, k), fo = xb_mlp_fan_out(m, k), rows = n * xb_mlp_patches(m, k);
        int conv = xb_mlp_is_conv(m, k);
        const double *in = conv ? w->C[k] : k ? w->A[k - 1] : X;
        /* dW = in^T D, db = column sums of D (in: the patches of a conv layer) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)fi, (int)fo, (int)rows, 1.0, in, (int)fi, D,
                    (int)fo, 0.0, grad->W[k], (int)fo);
        double *gb = grad->b[k];
        memset(gb, 0, fo * sizeof *gb);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < fo; c++)
                gb[c] += D[r * fo + c];
        if (k == 0)
            break;
        /* Back through the weights (and a conv layer's patches) to layer k-1's outputs: D2 = D W^T. */
        if (conv) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)fi, (int)fo, 1.0, D, (int)fo,
                        m->W[k], (int)fo, 0.0, w->dcol, (int)fi);
            col2im(&m->conv[k], w->dcol, n, D2);
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)fi, (int)fo, 1.0, D, (int)fo,
                        m->W[k], (int)fo, 0.0, D2, (int)fi);
        }
        int kp = keeps_p(m, k - 1, pass);
        const double *a = kp ? w->P[k - 1] : w->A[k - 1];
        size_t cnt = n * m->sizes[k];
        if (kp && pass->dropout > 0)
            for (size_t i = 0; i < cnt; i++)
                D2[i] *= w->M[k - 1][i];
        if (xb_mlp_is_conv(m, k - 1) && m->conv[k - 1].pool != XB_POOL_NONE) {
            /* Back through the pooling: the derivative of f at the values pooling read. */
            unpool(&m->conv[k - 1], D2, w->I[k - 1], n, D3);
            double *t = D2;
            D2 = D3;
            D3 = t;
            a = w->Z[k - 1];
            cnt = n * unpooled(m, k - 1);
        }
        /* and the hidden activation: D2 *= f'(a) */
        switch (m->act[k - 1]) {
        case XB_ACT_SIGMOID:
            for (size_t i = 0; i < cnt; i++)
                D2[i] *= a[i] * (1.0 - a[i]);
            break;
        case XB_ACT_RELU:
            for (size_t i = 0; i < cnt; i++)
                if (a[i] <= 0)
                    D2[i] = 0;
            break;
        default:
            break;
        }
        double *t = D;
        D = D2;
        D2 = t;
    }
    return loss;
}
