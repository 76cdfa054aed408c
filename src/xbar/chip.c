// chip: a network mapped onto crossbar tiles: normalized weights, conductances, tile map, map files
#include "chip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "fileio.h"
#include "mapping.h"
#include "npz.h"
#include "pack.h"
#include "quant.h"

void xb_map_defaults(xb_map_options *o)
{
    memset(o, 0, sizeof *o);
    o->scheme = XB_MAP_DIFFERENTIAL;
    o->bias = XB_BIAS_ROW;
    o->tile_rows = 64;
    o->tile_cols = 64;
    o->clip = 0;
    o->v_read_V = 0.2;
    o->g_min_S = 1e-6;   /* overwritten from the device file by callers that have one */
    o->g_max_S = 400e-6;
    o->g_lrs_S = o->g_max_S; /* stuck-at values; overwritten from the device file likewise */
    o->g_hrs_S = o->g_min_S;
}

void xb_map_options_from_device(xb_map_options *o, const xb_device *d)
{
    o->v_read_V = d->v_read_V;
    o->g_min_S = d->g_hrs_S;
    o->g_max_S = xb_device_level_G(d, d->n_levels - 1);
    o->g_lrs_S = d->g_lrs_S;
    o->g_hrs_S = d->g_hrs_S;
    snprintf(o->range_source, sizeof o->range_source, "%s", d->source_path);
}

static int levelset_from_device(const xb_device *d, xb_levelset **out, xb_error *err)
{
    if (!d)
        return xb_fail(err, XB_EINPUT, "level set \"device\" needs a device file");
    double g[XB_DEVICE_MAX_LEVELS + 1];
    g[0] = d->g_hrs_S;
    for (int i = 0; i < d->n_levels; i++)
        g[i + 1] = xb_device_level_G(d, i);
    return xb_levelset_device(g, (size_t)d->n_levels + 1, out, err);
}

int xb_levelsets_parse(const char *spec, int n_layers, const xb_device *d, xb_levelset **ls, char *used,
                       size_t used_len, xb_error *err)
{
    for (int l = 0; l < n_layers; l++)
        ls[l] = NULL;
    int n_spec = 1;
    for (const char *p = spec; *p; p++)
        n_spec += *p == '/';
    if (n_spec != 1 && n_spec != n_layers)
        return xb_fail(err, XB_EINPUT, "level sets '%s': %d given for a network of %d layer%s; give one for all "
                       "layers or one per layer, separated by '/'", spec, n_spec, n_layers, n_layers == 1 ? "" : "s");
    int rc = XB_OK;
    const char *p = spec;
    for (int l = 0; l < n_layers && !rc; l++) {
        size_t len = strcspn(p, "/");
        char *tok = strndup(p, len); /* explicit level lists can be long */
        if (!tok)
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
        else
            rc = !strcmp(tok, "device") ? levelset_from_device(d, &ls[l], err) : xb_levelset_parse(tok, &ls[l], err);
        free(tok);
        if (n_spec > 1)
            p += len + (p[len] == '/');
    }
    if (rc) {
        for (int l = 0; l < n_layers; l++)
            xb_levelset_free(&ls[l]);
        return rc;
    }
    if (used) {
        size_t at = 0;
        used[0] = '\0';
        for (int l = 0; l < (n_spec == 1 ? 1 : n_layers) && at < used_len; l++)
            at += (size_t)snprintf(used + at, used_len - at, "%s%s", l ? "/" : "", ls[l]->name);
    }
    return XB_OK;
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

static void layer_free(xb_layer_map *L)
{
    free(L->wn);
    free(L->bias);
    free(L->g_target_S);
    free(L->g_S);
    free(L->col_neuron);
    free(L->col_role);
    free(L->col_ref);
}

void xb_chip_free(xb_chip **cp)
{
    if (!cp || !*cp)
        return;
    for (int l = 0; (*cp)->layers && l < (*cp)->n_layers; l++)
        layer_free(&(*cp)->layers[l]);
    free((*cp)->layers);
    free(*cp);
    *cp = NULL;
}

/* Allocate the arrays of a layer whose sizes are set, and lay out its columns. */
static int layer_alloc(xb_layer_map *L, const xb_map_options *o)
{
    size_t C = o->tile_cols;
    if (o->scheme == XB_MAP_DIFFERENTIAL) {
        L->cols = 2 * L->fan_out;
    } else {
        size_t per_tile = C - 1;
        L->cols = L->fan_out + ceil_div(L->fan_out, per_tile);
    }
    L->n_row_tiles = ceil_div(L->rows, o->tile_rows);
    L->n_col_tiles = ceil_div(L->cols, C);
    L->wn = calloc(L->rows * L->fan_out, sizeof *L->wn);
    L->bias = calloc(L->fan_out, sizeof *L->bias);
    L->g_target_S = calloc(L->rows * L->cols, sizeof *L->g_target_S);
    L->g_S = calloc(L->rows * L->cols, sizeof *L->g_S);
    L->col_neuron = calloc(L->cols, sizeof *L->col_neuron);
    L->col_role = calloc(L->cols, sizeof *L->col_role);
    L->col_ref = calloc(L->cols, sizeof *L->col_ref);
    if (!L->wn || !L->bias || !L->g_target_S || !L->g_S || !L->col_neuron || !L->col_role || !L->col_ref)
        return XB_ENOMEM;
    if (o->scheme == XB_MAP_DIFFERENTIAL) {
        for (size_t j = 0; j < L->fan_out; j++) {
            L->col_neuron[2 * j] = L->col_neuron[2 * j + 1] = (int)j;
            L->col_role[2 * j] = XB_COL_POS;
            L->col_role[2 * j + 1] = XB_COL_NEG;
        }
    } else {
        /* Each column tile: up to C-1 weight columns, then its reference column. */
        size_t col = 0, j = 0;
        while (j < L->fan_out) {
            size_t n = L->fan_out - j < C - 1 ? L->fan_out - j : C - 1, ref = col + n;
            for (size_t k = 0; k < n; k++, j++, col++) {
                L->col_neuron[col] = (int)j;
                L->col_role[col] = XB_COL_POS;
                L->col_ref[col] = ref;
            }
            L->col_neuron[ref] = -1;
            L->col_role[ref] = XB_COL_REF;
            L->col_ref[ref] = ref;
            col++;
        }
    }
    return XB_OK;
}

/* Largest input each layer sees on the calibration set (for ReLU layers' in_scale), from the network's
 * own forward pass over the whole set at once. */
static int calib_max_inputs(const xb_mlp *m, const double *calib, size_t n, double *max_in, xb_error *err)
{
    /* Dense networks in one pass over the whole set; convolutional ones (whose patches multiply the work
     * arrays) in batches. The maxima do not depend on the batching. */
    size_t batch = m->conv ? (n < 128 ? n : 128) : n;
    xb_mlp_work *w = xb_mlp_work_new_forward(m, batch);
    double *logits = malloc(batch * m->sizes[m->n_layers] * sizeof *logits);
    if (!w || !logits) {
        xb_mlp_work_free(&w);
        free(logits);
        return xb_fail(err, XB_ENOMEM, "out of memory for calibration");
    }
    for (int k = 0; k < m->n_layers; k++)
        max_in[k] = 0;
    for (size_t s = 0; s < n; s += batch) {
        size_t nb = n - s < batch ? n - s : batch;
        xb_mlp_forward(m, calib + s * m->sizes[0], nb, logits, w);
        for (int k = 0; k < m->n_layers; k++) {
            const double *a = k == 0 ? calib + s * m->sizes[0] : xb_mlp_work_layer(w, k - 1);
            double mx = max_in[k];
            for (size_t i = 0; i < nb * m->sizes[k]; i++)
                mx = a[i] > mx ? a[i] : mx;
            max_in[k] = mx;
        }
    }
    xb_mlp_work_free(&w);
    free(logits);
    return XB_OK;
}

int xb_chip_map(const xb_mlp *m, const xb_map_options *o, const double *calib, size_t n_calib, xb_chip **out,
                xb_error *err)
{
    *out = NULL;
    if (o->tile_rows < 1 || o->tile_cols < 2)
        return xb_fail(err, XB_EINPUT, "tile size %zux%zu: need at least 1 row and 2 columns", o->tile_rows,
                       o->tile_cols);
    if (o->scheme == XB_MAP_DIFFERENTIAL && o->tile_cols % 2)
        return xb_fail(err, XB_EINPUT, "tile width %zu is odd; differential pairs need an even tile width",
                       o->tile_cols);
    if (!(o->g_max_S > o->g_min_S && o->g_min_S >= 0))
        return o->range_source[0]
                   ? xb_fail(err, XB_EINPUT, "%s: empty conductance range [%g, %g] S: g_hrs_S is not below the top "
                             "level's target conductance (its i_trg_A / v_read_V); allowed: 0 <= g_hrs_S < "
                             "i_trg_A[last] / v_read_V", o->range_source, o->g_min_S, o->g_max_S)
                   : xb_fail(err, XB_EINPUT, "empty conductance range [%g, %g] S; allowed: 0 <= g_min < g_max",
                             o->g_min_S, o->g_max_S);
    if (!(o->v_read_V > 0))
        return xb_fail(err, XB_EINPUT, "read voltage %g V must be positive", o->v_read_V);
    double max_in[64];
    if (m->n_layers > 64)
        return xb_fail(err, XB_EINPUT, "%d layers: at most 64 supported", m->n_layers);
    for (int k = 0; k + 1 < m->n_layers; k++) {
        if (m->act[k] == XB_ACT_IDENTITY)
            return xb_fail(err, XB_EINPUT, "hidden layer %d has the identity activation: its outputs can be "
                           "negative, but crossbar rows take 0..v_read; use sigmoid or relu", k + 1);
        if (m->act[k] == XB_ACT_RELU && !calib)
            return xb_fail(err, XB_EINPUT, "ReLU layers need calibration inputs to set their input range");
    }
    if (calib && n_calib) {
        int rc = calib_max_inputs(m, calib, n_calib, max_in, err);
        if (rc)
            return rc;
    }
    xb_chip *c = calloc(1, sizeof *c);
    if (!c)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    c->n_layers = m->n_layers;
    c->opt = *o;
    c->layers = calloc((size_t)m->n_layers, sizeof *c->layers);
    if (!c->layers) {
        free(c);
        return xb_fail(err, XB_ENOMEM, "out of memory");
    }
    for (int k = 0; k < m->n_layers; k++) {
        xb_layer_map *L = &c->layers[k];
        size_t fi = xb_mlp_fan_in(m, k), fo = xb_mlp_fan_out(m, k);
        L->fan_in = fi;
        L->fan_out = fo;
        L->act = m->act[k];
        if (xb_mlp_is_conv(m, k)) {
            L->conv = m->conv[k];
            L->pre = XB_PRE_IM2COL;
            L->post = XB_POST_ACTIVATION_POOL;
        }
        L->in_scale = 1.0;
        if (k > 0 && m->act[k - 1] == XB_ACT_RELU)
            L->in_scale = max_in[k] > 0 ? max_in[k] : 1.0;
        double wmax = 0, bmax = 0;
        for (size_t i = 0; i < fi * fo; i++)
            wmax = fmax(wmax, fabs(m->W[k][i]));
        for (size_t j = 0; j < fo; j++)
            bmax = fmax(bmax, fabs(m->b[k][j]));
        L->w_scale = o->clip > 0 ? o->clip * L->in_scale : L->in_scale * wmax;
        if (!(L->w_scale > 0))
            L->w_scale = 1.0;
        /* Enough bias rows that each carries at most one normalized unit. */
        L->n_bias_rows = 0;
        if (o->bias == XB_BIAS_ROW) {
            L->n_bias_rows = (size_t)ceil(bmax / L->w_scale - 1e-12);
            if (L->n_bias_rows < 1)
                L->n_bias_rows = 1;
        }
        L->rows = fi + L->n_bias_rows;
        if (layer_alloc(L, o)) {
            xb_chip_free(&c);
            return xb_fail(err, XB_ENOMEM, "out of memory mapping layer %d", k + 1);
        }
        for (size_t i = 0; i < fi; i++)
            for (size_t j = 0; j < fo; j++)
                L->wn[i * fo + j] = xb_map_normalize_weight(L, m->W[k][i * fo + j]);
        for (size_t r = 0; r < L->n_bias_rows; r++)
            for (size_t j = 0; j < fo; j++)
                L->wn[(fi + r) * fo + j] = xb_map_normalize_bias(L, m->b[k][j]);
        if (o->bias == XB_BIAS_DIGITAL)
            memcpy(L->bias, m->b[k], fo * sizeof *L->bias);
    }
    xb_chip_update_targets(c);
    *out = c;
    return XB_OK;
}

int xb_chip_quantize(xb_chip *c, const xb_levelset *const *ls, xb_error *err)
{
    xb_norm none = {.kind = XB_NORM_NONE};
    for (int l = 0; l < c->n_layers; l++) {
        if (!ls[l] || ls[l]->kind == XB_LEVELS_NONE)
            continue;
        xb_layer_map *L = &c->layers[l];
        size_t n = L->rows * L->fan_out;
        /* abits:B takes this layer's levels from its own normalized weights (bias rows too, since they
         * share the layer's scale and its conductance range): xb_quantize builds them. */
        int rc = xb_quantize(ls[l], none, L->wn, n, L->wn, NULL, NULL, err);
        if (!rc && ls[l]->kind == XB_LEVELS_AFFINE) {
            /* The zero point is rounded so that 0 is a level, which can put the outermost level up to
             * scale/2 beyond [-1, 1], i.e. beyond the conductance range. Shrink the layer's normalized
             * weights into [-1, 1] and grow its weight scale by the same factor: every quantized weight
             * keeps its value in weight units, and the top level lands on the full conductance. */
            double top = xb_max_abs(L->wn, n);
            if (top > 1) {
                for (size_t i = 0; i < n; i++)
                    L->wn[i] /= top;
                L->w_scale *= top;
            }
        }
        if (rc)
            return xb_error_prefix(err, "quantizing layer %d onto %s", l + 1, ls[l]->name);
    }
    xb_chip_update_targets(c);
    return XB_OK;
}

void xb_chip_update_targets(xb_chip *c)
{
    for (int k = 0; k < c->n_layers; k++) {
        xb_layer_map *L = &c->layers[k];
        for (size_t i = 0; i < L->rows; i++) {
            const double *w = L->wn + i * L->fan_out;
            double *g = L->g_target_S + i * L->cols;
            for (size_t col = 0; col < L->cols; col++)
                g[col] = xb_map_cell_G(&c->opt, L->col_role[col],
                                       L->col_role[col] == XB_COL_REF ? 0 : w[L->col_neuron[col]]);
        }
        memcpy(L->g_S, L->g_target_S, L->rows * L->cols * sizeof *L->g_S);
    }
}

xb_mlp *xb_chip_effective_mlp(const xb_chip *c, int use_programmed_g)
{
    xb_layer_spec spec[XB_MAX_LAYERS];
    if (c->n_layers > XB_MAX_LAYERS)
        return NULL;
    for (int k = 0; k < c->n_layers; k++) {
        const xb_conv *g = &c->layers[k].conv;
        spec[k] = g->k ? (xb_layer_spec){.units = g->out_c, .k = g->k, .stride = g->stride, .pad = g->pad,
                                         .pool = g->pool, .pool_k = g->pool_k, .pool_stride = g->pool_stride}
                       : (xb_layer_spec){.units = c->layers[k].fan_out};
    }
    const xb_layer_map *L0 = &c->layers[0];
    xb_error err = {0};
    xb_mlp *m = L0->conv.k ? xb_net_new(L0->conv.in_h, L0->conv.in_w, L0->conv.in_c, c->n_layers, spec, XB_ACT_IDENTITY, &err)
                           : xb_net_new(L0->fan_in, 1, 1, c->n_layers, spec, XB_ACT_IDENTITY, &err);
    if (!m)
        return NULL;
    double unit = xb_map_G_unit(&c->opt);
    for (int k = 0; k < c->n_layers; k++) {
        const xb_layer_map *L = &c->layers[k];
        const double *G = use_programmed_g ? L->g_S : L->g_target_S;
        m->act[k] = L->act;
        memcpy(m->b[k], L->bias, L->fan_out * sizeof *m->b[k]);
        for (size_t i = 0; i < L->rows; i++) {
            const double *g = G + i * L->cols;
            for (size_t col = 0; col < L->cols; col++) {
                if (L->col_role[col] == XB_COL_REF)
                    continue;
                double q = (L->col_role[col] == XB_COL_NEG ? -g[col] : g[col]);
                if (c->opt.scheme == XB_MAP_SINGLE_ENDED)
                    q -= g[L->col_ref[col]];
                size_t j = (size_t)L->col_neuron[col];
                double w = xb_map_weight(L, i, q * unit);
                if (i < L->fan_in)
                    m->W[k][i * L->fan_out + j] += w;
                else
                    m->b[k][j] += w;
            }
        }
    }
    return m;
}

xb_chip *xb_chip_clone(const xb_chip *src)
{
    xb_chip *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n_layers = src->n_layers;
    c->opt = src->opt;
    c->layers = calloc((size_t)src->n_layers, sizeof *c->layers);
    if (!c->layers) {
        free(c);
        return NULL;
    }
    for (int k = 0; k < src->n_layers; k++) {
        const xb_layer_map *S = &src->layers[k];
        xb_layer_map *L = &c->layers[k];
        *L = *S;
        L->wn = NULL, L->bias = NULL, L->g_target_S = NULL, L->g_S = NULL;
        L->col_neuron = NULL, L->col_role = NULL, L->col_ref = NULL;
        if (layer_alloc(L, &src->opt)) {
            xb_chip_free(&c);
            return NULL;
        }
        memcpy(L->wn, S->wn, S->rows * S->fan_out * sizeof *L->wn);
        memcpy(L->bias, S->bias, S->fan_out * sizeof *L->bias);
        memcpy(L->g_target_S, S->g_target_S, S->rows * S->cols * sizeof *L->g_S);
        memcpy(L->g_S, S->g_S, S->rows * S->cols * sizeof *L->g_S);
    }
    return c;
}

void xb_chip_pack(const xb_chip *c, xb_pack *p)
{
    xb_pack_put(p, &c->n_layers, sizeof c->n_layers);
    xb_pack_put(p, &c->opt, sizeof c->opt);
    for (int k = 0; k < c->n_layers; k++) {
        const xb_layer_map *L = &c->layers[k];
        xb_pack_put(p, L, sizeof *L); /* sizes and scalars; the pointers are rebuilt on the other side */
        xb_pack_put_array(p, L->wn, L->rows * L->fan_out * sizeof *L->wn);
        xb_pack_put_array(p, L->bias, L->fan_out * sizeof *L->bias);
        xb_pack_put_array(p, L->g_target_S, L->rows * L->cols * sizeof *L->g_target_S);
        xb_pack_put_array(p, L->g_S, L->rows * L->cols * sizeof *L->g_S);
    }
}

xb_chip *xb_chip_unpack(xb_unpack *u)
{
    xb_chip *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    xb_unpack_get(u, &c->n_layers, sizeof c->n_layers);
    xb_unpack_get(u, &c->opt, sizeof c->opt);
    if (u->failed || c->n_layers < 1 || c->n_layers > 1024 || !c->opt.tile_rows || !c->opt.tile_cols ||
        !(c->layers = calloc((size_t)c->n_layers, sizeof *c->layers))) {
        free(c);
        return NULL;
    }
    for (int k = 0; k < c->n_layers; k++) {
        xb_layer_map *L = &c->layers[k], S;
        xb_unpack_get(u, &S, sizeof S);
        /* Sizes the bytes left could hold, before anything is allocated for them. */
        size_t doubles_left = (u->len - u->pos) / sizeof(double);
        if (u->failed || !S.rows || !S.fan_out || S.cols > doubles_left / S.rows ||
            S.fan_out > doubles_left / S.rows) {
            xb_chip_free(&c);
            return NULL;
        }
        *L = S;
        L->wn = L->bias = L->g_target_S = L->g_S = NULL;
        L->col_neuron = NULL, L->col_role = NULL, L->col_ref = NULL;
        /* The column layout follows from the sizes and options, as when the chip was mapped; the arrays are
         * read straight into the layer's own. */
        if (layer_alloc(L, &c->opt) || L->cols != S.cols ||
            xb_unpack_get_array_into(u, L->wn, S.rows * S.fan_out * sizeof *L->wn) ||
            xb_unpack_get_array_into(u, L->bias, S.fan_out * sizeof *L->bias) ||
            xb_unpack_get_array_into(u, L->g_target_S, S.rows * S.cols * sizeof *L->g_target_S) ||
            xb_unpack_get_array_into(u, L->g_S, S.rows * S.cols * sizeof *L->g_S)) {
            xb_chip_free(&c);
            return NULL;
        }
    }
    return c;
}

void xb_chip_tile_bounds(const xb_chip *c, int l, size_t rt, size_t ct, size_t *r0, size_t *nr, size_t *c0,
                         size_t *nc)
{
    const xb_layer_map *L = &c->layers[l];
    size_t R = c->opt.tile_rows, C = c->opt.tile_cols;
    *r0 = rt * R;
    *nr = L->rows - *r0 < R ? L->rows - *r0 : R;
    *c0 = ct * C;
    *nc = L->cols - *c0 < C ? L->cols - *c0 : C;
}

int xb_chip_write_tile_map(const xb_chip *c, const char *path, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "tile,layer,row_tile,col_tile,row_start,rows,col_start,cols,input_rows,bias_rows,"
                  "first_neuron,last_neuron\n");
    int tile = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        for (size_t rt = 0; rt < L->n_row_tiles; rt++)
            for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
                size_t r0, nr, c0, nc;
                xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
                size_t in_rows = r0 >= L->fan_in ? 0 : (L->fan_in - r0 < nr ? L->fan_in - r0 : nr);
                int first = -1, last = -1;
                for (size_t col = c0; col < c0 + nc; col++)
                    if (L->col_neuron[col] >= 0) {
                        if (first < 0)
                            first = L->col_neuron[col];
                        last = L->col_neuron[col];
                    }
                fprintf(f.fp, "%d,%d,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%d,%d\n", tile++, l + 1, rt, ct, r0, nr, c0,
                        nc, in_rows, nr - in_rows, first, last);
            }
    }
    return xb_atomic_commit(&f, err);
}

/* ---- conductance map files ---- */

/* Format 2: format_version, n_layers, scheme, bias, tile_rows, tile_cols, v_read, clip, g_min, g_max,
 * g_lrs, g_hrs. Format 1 lacks the last two (its stuck-at values are unknown, NaN). */
#define N_CHIP_PARAMS 12
#define N_CHIP_PARAMS_V1 10
#define N_LAYER_PARAMS 6  /* fan_in, fan_out, n_bias_rows, activation, in_scale, w_scale */
#define MAP_FORMAT_VERSION 2
/* L<k>_conv, convolutional layers only: in_h, in_w, in_c, kernel, stride, padding, pooling (0 none, 1 max,
 * 2 average), pooling window, pooling stride. */
#define N_CONV_PARAMS 9

int xb_chip_save(const xb_chip *c, const char *path, xb_error *err)
{
    size_t n_arr = 1 + 7 * (size_t)c->n_layers, n = 0;
    xb_ndarray **arr = calloc(n_arr, sizeof *arr);
    int rc = XB_OK;
    if (!arr)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    size_t s1[1] = {N_CHIP_PARAMS};
    xb_ndarray *p = arr[n++] = xb_ndarray_new("chip", 1, s1);
    if (!p)
        goto oom;
    double cp[N_CHIP_PARAMS] = {MAP_FORMAT_VERSION, c->n_layers, c->opt.scheme, c->opt.bias,
                                (double)c->opt.tile_rows, (double)c->opt.tile_cols, c->opt.v_read_V,
                                c->opt.clip, c->opt.g_min_S, c->opt.g_max_S, c->opt.g_lrs_S, c->opt.g_hrs_S};
    memcpy(p->data, cp, sizeof cp);
    for (int k = 0; k < c->n_layers; k++) {
        const xb_layer_map *L = &c->layers[k];
        char name[32];
        size_t sp[1] = {N_LAYER_PARAMS}, sg[2] = {L->rows, L->cols}, sw[2] = {L->rows, L->fan_out},
               sb[1] = {L->fan_out}, sc[1] = {L->cols};
        snprintf(name, sizeof name, "L%d_params", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 1, sp)))
            goto oom;
        double lp[N_LAYER_PARAMS] = {(double)L->fan_in, (double)L->fan_out, (double)L->n_bias_rows, L->act,
                                     L->in_scale, L->w_scale};
        memcpy(p->data, lp, sizeof lp);
        snprintf(name, sizeof name, "L%d_G", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 2, sg)))
            goto oom;
        memcpy(p->data, L->g_S, p->count * sizeof *p->data);
        snprintf(name, sizeof name, "L%d_Gtarget", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 2, sg)))
            goto oom;
        memcpy(p->data, L->g_target_S, p->count * sizeof *p->data);
        snprintf(name, sizeof name, "L%d_Wn", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 2, sw)))
            goto oom;
        memcpy(p->data, L->wn, p->count * sizeof *p->data);
        snprintf(name, sizeof name, "L%d_bias", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 1, sb)))
            goto oom;
        memcpy(p->data, L->bias, p->count * sizeof *p->data);
        snprintf(name, sizeof name, "L%d_colrole", k + 1);
        if (!(p = arr[n++] = xb_ndarray_new(name, 1, sc)))
            goto oom;
        for (size_t col = 0; col < L->cols; col++)
            p->data[col] = L->col_role[col];
        if (L->conv.k) {
            const xb_conv *g = &L->conv;
            size_t sv[1] = {N_CONV_PARAMS};
            snprintf(name, sizeof name, "L%d_conv", k + 1);
            if (!(p = arr[n++] = xb_ndarray_new(name, 1, sv)))
                goto oom;
            double cv[N_CONV_PARAMS] = {(double)g->in_h, (double)g->in_w, (double)g->in_c, (double)g->k,
                                        (double)g->stride, (double)g->pad, (double)g->pool, (double)g->pool_k,
                                        (double)g->pool_stride};
            memcpy(p->data, cv, sizeof cv);
        }
    }
    rc = xb_npz_write(path, (const xb_ndarray *const *)arr, n, XB_DT_F8, err);
    goto done;
oom:
    rc = xb_fail(err, XB_ENOMEM, "out of memory saving %s", path);
done:
    for (size_t i = 0; i < n; i++)
        xb_ndarray_free(&arr[i]);
    free(arr);
    return rc;
}

static const xb_ndarray *need(const xb_npz *z, const char *path, const char *name, int ndim, size_t d0,
                              size_t d1, xb_error *err)
{
    const xb_ndarray *a = xb_npz_get(z, name);
    char found[64];
    if (!a) {
        xb_fail(err, XB_EINPUT, "%s: array %s is missing; is this a conductance map written by xbarsim program?",
                path, name);
        return NULL;
    }
    if (a->dtype == XB_DT_STR || a->ndim != ndim || a->shape[0] != d0 || (ndim == 2 && a->shape[1] != d1)) {
        xb_shape_str(a->ndim, a->shape, found, sizeof found);
        if (ndim == 2)
            xb_fail(err, XB_EINPUT, "%s: %s has shape %s, expected (%zu, %zu)", path, name, found, d0, d1);
        else
            xb_fail(err, XB_EINPUT, "%s: %s has shape %s, expected (%zu,)", path, name, found, d0);
        return NULL;
    }
    return a;
}

/* Largest magnitude accepted for a unitless value of a map (scales, clip, normalized weights, biases):
 * far beyond any trained network, small enough that sums and products of them stay finite. */
#define MAP_MAX_ABS 1e30
/* Conductances are at most 1 S (a 1-ohm cell; RRAM cells are 1e-7 to 1e-3 S). */
#define MAP_MAX_G_S 1.0

/* Every element of a (rows x cols when 2-D) within [lo, hi] and finite; the message names the file,
 * the array, the first bad element (flat index and row/column) and what is allowed. */
static int check_range(const char *path, const char *name, const xb_ndarray *a, double lo, double hi,
                       const char *allowed, xb_error *err)
{
    for (size_t i = 0; i < a->count; i++) {
        double v = a->data[i];
        if (isfinite(v) && v >= lo && v <= hi)
            continue;
        if (a->ndim == 2 && a->shape[1] > 0)
            return xb_fail(err, XB_EINPUT, "%s: array %s[%zu] (row %zu, column %zu) is %g; allowed: %s", path,
                           name, i, i / a->shape[1], i % a->shape[1], v, allowed);
        return xb_fail(err, XB_EINPUT, "%s: array %s[%zu] is %g; allowed: %s", path, name, i, v, allowed);
    }
    return XB_OK;
}

/* One field of a parameter array: finite, within [lo, hi], and a whole number when integral. */
static int check_field(const char *path, const char *array, size_t i, const char *field, double v, double lo,
                       double hi, int integral, xb_error *err)
{
    if (isfinite(v) && v >= lo && v <= hi && (!integral || v == floor(v)))
        return XB_OK;
    if (integral)
        return xb_fail(err, XB_EINPUT, "%s: %s[%zu] (%s) is %g; allowed: a whole number from %g to %g", path,
                       array, i, field, v, lo, hi);
    return xb_fail(err, XB_EINPUT, "%s: %s[%zu] (%s) is %g; allowed: a finite number from %g to %g", path, array,
                   i, field, v, lo, hi);
}

/* Physical columns of a layer of fan_out neurons (as layer_alloc lays them out). */
static size_t layer_cols(size_t fan_out, const xb_map_options *o)
{
    return o->scheme == XB_MAP_DIFFERENTIAL ? 2 * fan_out : fan_out + ceil_div(fan_out, o->tile_cols - 1);
}

int xb_chip_load(const char *path, xb_chip **out, xb_error *err)
{
    *out = NULL;
    xb_npz *z = NULL;
    int rc = xb_npz_read(path, &z, err);
    if (rc)
        return rc;
    xb_chip *c = NULL;
    /* Format 1 maps (no stuck-at values) still load; their g_lrs_S / g_hrs_S are NaN. */
    const xb_ndarray *a = xb_npz_get(z, "chip");
    int v1 = a && a->dtype != XB_DT_STR && a->ndim == 1 && a->count >= 1 && a->data[0] == 1;
    a = need(z, path, "chip", 1, v1 ? N_CHIP_PARAMS_V1 : N_CHIP_PARAMS, 0, err);
    if (!a)
        goto bad;
    const double *cp = a->data;
    if (!v1 && cp[0] != MAP_FORMAT_VERSION) {
        xb_fail(err, XB_EINPUT, "%s: chip[0] (format version) is %g; allowed: 1 or %d, the formats this build reads",
                path, cp[0], MAP_FORMAT_VERSION);
        goto bad;
    }
    if (!v1 && (check_field(path, "chip", 10, "g_lrs [S]", cp[10], 0, MAP_MAX_G_S, 0, err) ||
                check_field(path, "chip", 11, "g_hrs [S]", cp[11], 0, MAP_MAX_G_S, 0, err)))
        goto bad;
    if (check_field(path, "chip", 1, "layers", cp[1], 1, 64, 1, err) ||
        check_field(path, "chip", 2, "scheme: 0 differential, 1 single-ended", cp[2], 0, 1, 1, err) ||
        check_field(path, "chip", 3, "bias: 0 rows, 1 digital", cp[3], 0, 1, 1, err) ||
        check_field(path, "chip", 4, "tile rows", cp[4], 1, 1e6, 1, err) ||
        check_field(path, "chip", 5, "tile columns", cp[5], 2, 1e6, 1, err) ||
        check_field(path, "chip", 6, "v_read [V]", cp[6], 1e-6, 100, 0, err) ||
        check_field(path, "chip", 7, "clip, 0: maxabs", cp[7], 0, MAP_MAX_ABS, 0, err) ||
        check_field(path, "chip", 8, "g_min [S]", cp[8], 0, MAP_MAX_G_S, 0, err) ||
        check_field(path, "chip", 9, "g_max [S]", cp[9], 0, MAP_MAX_G_S, 0, err))
        goto bad;
    if (!(cp[9] > cp[8])) {
        xb_fail(err, XB_EINPUT, "%s: empty conductance range: chip[9] (g_max) %g S is not above chip[8] (g_min) "
                "%g S; allowed: g_min < g_max", path, cp[9], cp[8]);
        goto bad;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->n_layers = (int)cp[1];
    c->opt.scheme = (xb_map_scheme)cp[2];
    c->opt.bias = (xb_bias_mode)cp[3];
    c->opt.tile_rows = (size_t)cp[4];
    c->opt.tile_cols = (size_t)cp[5];
    c->opt.v_read_V = cp[6];
    c->opt.clip = cp[7];
    c->opt.g_min_S = cp[8];
    c->opt.g_max_S = cp[9];
    c->opt.g_lrs_S = v1 ? NAN : cp[10];
    c->opt.g_hrs_S = v1 ? NAN : cp[11];
    snprintf(c->opt.range_source, sizeof c->opt.range_source, "%s", path);
    if (c->opt.scheme == XB_MAP_DIFFERENTIAL && c->opt.tile_cols % 2) {
        xb_fail(err, XB_EINPUT, "%s: chip[5] (tile columns) is %zu; allowed: an even width with differential "
                "mapping (chip[2] = 0)", path, c->opt.tile_cols);
        goto bad;
    }
    c->layers = calloc((size_t)c->n_layers, sizeof *c->layers);
    if (!c->layers)
        goto oom;
    for (int k = 0; k < c->n_layers; k++) {
        xb_layer_map *L = &c->layers[k];
        char name[32];
        snprintf(name, sizeof name, "L%d_params", k + 1);
        if (!(a = need(z, path, name, 1, N_LAYER_PARAMS, 0, err)))
            goto bad;
        const double *lp = a->data;
        if (check_field(path, name, 0, "fan_in", lp[0], 1, 1e7, 1, err) ||
            check_field(path, name, 1, "fan_out", lp[1], 1, 1e7, 1, err) ||
            check_field(path, name, 2, "bias rows", lp[2], 0, 1e4, 1, err) ||
            check_field(path, name, 3, "activation: 0 identity, 1 sigmoid, 2 relu", lp[3], 0, 2, 1, err) ||
            check_field(path, name, 4, "in_scale", lp[4], 1e-300, MAP_MAX_ABS, 0, err) ||
            check_field(path, name, 5, "w_scale", lp[5], 1e-300, MAP_MAX_ABS, 0, err))
            goto bad;
        char cn[32];
        snprintf(cn, sizeof cn, "L%d_conv", k + 1);
        if (xb_npz_get(z, cn)) {
            if (!(a = need(z, path, cn, 1, N_CONV_PARAMS, 0, err)))
                goto bad;
            const double *cv = a->data;
            const char *fields[N_CONV_PARAMS] = {"input height", "input width", "input channels", "kernel", "stride",
                                                 "padding", "pooling: 0 none, 1 max, 2 average", "pooling window",
                                                 "pooling stride"};
            for (int i = 0; i < N_CONV_PARAMS; i++)
                if (check_field(path, cn, (size_t)i, fields[i], cv[i], i < 5 && i != 5 ? 1 : 0, i == 6 ? 2 : 1e6, 1, err))
                    goto bad;
            xb_conv *g = &L->conv;
            *g = (xb_conv){.in_h = (size_t)cv[0], .in_w = (size_t)cv[1], .in_c = (size_t)cv[2], .k = (size_t)cv[3],
                           .stride = (size_t)cv[4], .pad = (size_t)cv[5], .pool = (xb_pool_kind)cv[6],
                           .pool_k = (size_t)cv[7], .pool_stride = (size_t)cv[8], .out_c = (size_t)lp[1]};
            if (xb_conv_complete(g, k + 1, err)) {
                xb_error_prefix(err, "%s: %s", path, cn);
                goto bad;
            }
            if (g->k * g->k * g->in_c != (size_t)lp[0]) {
                xb_fail(err, XB_EINPUT, "%s: %s[0] (fan_in) is %g; allowed: %zu, kernel x kernel x input channels of %s",
                        path, name, lp[0], g->k * g->k * g->in_c, cn);
                goto bad;
            }
            L->pre = XB_PRE_IM2COL;
            L->post = XB_POST_ACTIVATION_POOL;
        }
        L->fan_in = (size_t)lp[0];
        L->fan_out = (size_t)lp[1];
        if (k > 0 && xb_layer_in_values(L) != xb_layer_out_values(&c->layers[k - 1])) {
            xb_fail(err, XB_EINPUT, "%s: layer %d reads %zu values per input (%s[0]%s); allowed: %zu, what layer %d gives",
                    path, k + 1, xb_layer_in_values(L), name, L->conv.k ? " and its L_conv grid" : " (fan_in)",
                    xb_layer_out_values(&c->layers[k - 1]), k);
            goto bad;
        }
        L->fan_in = (size_t)lp[0];
        L->fan_out = (size_t)lp[1];
        L->n_bias_rows = (size_t)lp[2];
        L->act = (xb_activation)lp[3];
        L->in_scale = lp[4];
        L->w_scale = lp[5];
        L->rows = L->fan_in + L->n_bias_rows;
        /* The arrays in the file must have this layer's shapes before any memory is taken for it. */
        size_t cols = layer_cols(L->fan_out, &c->opt);
        const xb_ndarray *g, *gt, *wn, *b, *role;
        char gn[32], gtn[32], wnn[32], bn[32], rn[32];
        snprintf(gn, sizeof gn, "L%d_G", k + 1);
        snprintf(gtn, sizeof gtn, "L%d_Gtarget", k + 1);
        snprintf(wnn, sizeof wnn, "L%d_Wn", k + 1);
        snprintf(bn, sizeof bn, "L%d_bias", k + 1);
        snprintf(rn, sizeof rn, "L%d_colrole", k + 1);
        if (!(g = need(z, path, gn, 2, L->rows, cols, err)) || !(gt = need(z, path, gtn, 2, L->rows, cols, err)) ||
            !(wn = need(z, path, wnn, 2, L->rows, L->fan_out, err)) || !(b = need(z, path, bn, 1, L->fan_out, 0, err)) ||
            !(role = need(z, path, rn, 1, cols, 0, err)))
            goto bad;
        if (check_range(path, gn, g, 0, MAP_MAX_G_S, "finite conductances from 0 to 1 S", err) ||
            check_range(path, gtn, gt, 0, MAP_MAX_G_S, "finite conductances from 0 to 1 S", err) ||
            check_range(path, wnn, wn, -MAP_MAX_ABS, MAP_MAX_ABS, "finite numbers within +-1e30", err) ||
            check_range(path, bn, b, -MAP_MAX_ABS, MAP_MAX_ABS, "finite numbers within +-1e30", err))
            goto bad;
        if (layer_alloc(L, &c->opt))
            goto oom;
        for (size_t col = 0; col < L->cols; col++)
            if (role->data[col] != L->col_role[col]) {
                xb_fail(err, XB_EINPUT, "%s: array %s[%zu] is %g; allowed: %d, the role the layout implies "
                        "(+1 G+, -1 G-, 0 reference)", path, rn, col, role->data[col], L->col_role[col]);
                goto bad;
            }
        memcpy(L->g_S, g->data, g->count * sizeof *L->g_S);
        memcpy(L->g_target_S, gt->data, gt->count * sizeof *L->g_S);
        memcpy(L->wn, wn->data, wn->count * sizeof *L->wn);
        memcpy(L->bias, b->data, b->count * sizeof *L->bias);
    }
    xb_npz_free(&z);
    *out = c;
    return XB_OK;
oom:
    xb_fail(err, XB_ENOMEM, "out of memory reading %s", path);
bad:
    xb_chip_free(&c);
    xb_npz_free(&z);
    return err ? err->code : XB_EINPUT;
}
