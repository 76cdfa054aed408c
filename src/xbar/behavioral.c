// behavioral: the digital path: pre-step, DAC, tile currents from any backend, ADC, pair subtraction, post-step
#include "behavioral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "mapping.h"

#define CHUNK 1024       /* inputs per pass: bounds the work arrays, keeps GEMMs large */
#define CHUNK_ROWS 65536 /* row vectors per pass of a convolutional network (inputs x patches) */

struct xb_behav {
    const xb_chip *c;
    xb_behav_options o;
    double adc_fs[XB_BEHAV_MAX_LAYERS]; /* ADC full scale per layer */
    size_t chunk;                       /* network inputs per pass: CHUNK, fewer when layers have patches */
    double *V, *V2, *I, *G2, *A, *var;  /* voltages, squared voltages, currents, g^2, activations, scratch */
    double *col, *pooled;               /* a conv layer's patches; its pooled outputs */
    double *Irt;                        /* n_row_tiles x CHUNK x cols: tile currents from the backend */
    const xb_backend_type *bt;          /* where tile currents come from */
    void *bstate;                       /* its state: own_state, or the caller's */
    void *own_state;                    /* the model's own behavioral backend (read noise on) */
    void *cal_state;                    /* behavioral, noise-free: ADC calibration uses the model's currents */
    xb_tile_current_fn source;          /* legacy current source (xb_behav_set_current_source) */
    void *source_ctx;
    int source_rc;
    size_t batch_first;                 /* index of the current batch's first input in the forward call */
    xb_error *source_err;
};

/* The legacy current source as a backend: its state is the xb_behav itself. */
static int source_tile_currents(void *state, int l, size_t first, const double *V, size_t n, double *I_rt,
                                xb_error *err)
{
    xb_behav *b = state;
    return b->source(b->source_ctx, l, first, V, n, I_rt, err);
}
static const xb_backend_type source_type = {.name = "current-source", .tile_currents = source_tile_currents};

void xb_behav_set_current_source(xb_behav *b, xb_tile_current_fn fn, void *ctx)
{
    b->source = fn;
    b->source_ctx = ctx;
    if (fn)
        xb_behav_set_backend(b, &source_type, b);
    else
        xb_behav_set_backend(b, NULL, NULL);
}

void xb_behav_set_backend(xb_behav *b, const xb_backend_type *t, void *state)
{
    b->bt = t ? t : xb_backend_behavioral;
    b->bstate = t ? state : b->own_state;
}

void xb_behav_defaults(xb_behav_options *o) { memset(o, 0, sizeof *o); }

void xb_behav_free(xb_behav **bp)
{
    if (!bp || !*bp)
        return;
    xb_behav *b = *bp;
    free(b->V), free(b->V2), free(b->I), free(b->G2), free(b->A), free(b->var), free(b->Irt);
    free(b->col), free(b->pooled);
    xb_backend_behavioral->free(&b->own_state);
    xb_backend_behavioral->free(&b->cal_state);
    free(b);
    *bp = NULL;
}

double xb_behav_adc_full_scale(const xb_behav *b, int l) { return b->adc_fs[l]; }

/* The layer's digital pre-step for n network inputs x: the values that drive its rows, n patches(L)
 * row vectors of fan_in. Dense layers take their inputs as they are; a conv layer's patches go into
 * b->col. */
static const double *layer_pre(xb_behav *b, const xb_layer_map *L, const double *x, size_t n)
{
    switch (L->pre) {
    case XB_PRE_IM2COL:
        xb_conv_im2col(&L->conv, x, n, b->col);
        return b->col;
    case XB_PRE_NONE:
    default:
        return x;
    }
}

/* The layer's digital post-step on its outputs z (n network inputs: n patches(L) rows x fan_out), in
 * place, or into b->pooled for a pooled conv layer; returns where the n x out_values(L) results are. */
static double *layer_post(xb_behav *b, const xb_layer_map *L, double *z, size_t n)
{
    switch (L->post) {
    case XB_POST_ACTIVATION_POOL:
        xb_activation_apply(L->act, z, n * xb_layer_patches(L) * L->fan_out);
        if (L->conv.pool == XB_POOL_NONE)
            return z;
        xb_conv_pool(&L->conv, z, n, b->pooled, NULL);
        return b->pooled;
    case XB_POST_ACTIVATION:
    default:
        xb_activation_apply(L->act, z, n * L->fan_out);
        return z;
    }
}

/* Row voltages of n inputs x (n x fan_in): DAC of x / in_scale, then the bias rows at v_read. */
static void drive_rows(const xb_behav *b, const xb_layer_map *L, const double *x, size_t n, double *V)
{
    double vr = b->c->opt.v_read_V, inv = 1.0 / L->in_scale;
    double steps = b->o.dac_bits > 0 ? (double)((1u << b->o.dac_bits) - 1) : 0;
    for (size_t r = 0; r < n; r++) {
        const double *xi = x + r * L->fan_in;
        double *v = V + r * L->rows;
        for (size_t i = 0; i < L->fan_in; i++) {
            double u = xi[i] * inv;
            u = u < 0 ? 0 : (u > 1 ? 1 : u);
            if (steps > 0)
                u = nearbyint(u * steps) / steps;
            v[i] = u * vr;
        }
        for (size_t i = L->fan_in; i < L->rows; i++)
            v[i] = vr;
    }
}

static void quantize_adc(double *I, size_t n, size_t ld, size_t c0, size_t nc, double fs, int bits)
{
    double steps = (double)((1u << bits) - 1), lsb = fs / steps;
    for (size_t r = 0; r < n; r++)
        for (size_t c = c0; c < c0 + nc; c++) {
            double *p = I + r * ld + c;
            double q = nearbyint(*p / lsb);
            *p = (q < 0 ? 0 : (q > steps ? steps : q)) * lsb;
        }
}

/* Column currents of layer l for voltages V (n x rows) into I (n x cols), from the backend's tile
 * currents: per row tile, read noise on top of a backend that has none of its own, the ADC, and the
 * partial sums added digitally. With no per-tile step the backend may sum the tiles itself. Calibrating:
 * the model's own noise-free currents, each tile's largest raising the layer's full scale. */
static int column_currents(xb_behav *b, int l, const double *V, size_t n, gsl_rng *rng, int calibrating,
                           double *I)
{
    const xb_chip *c = b->c;
    const xb_layer_map *L = &c->layers[l];
    const xb_backend_type *t = calibrating ? xb_backend_behavioral : b->bt;
    void *st = calibrating ? b->cal_state : b->bstate;
    int adc = b->o.adc_bits > 0 && !calibrating;
    /* The model's own backend draws read noise itself; any other gets it added here, per tile. */
    int noise = b->o.sigma_read > 0 && !calibrating && st != b->own_state;
    if (!adc && !noise && !calibrating && t->column_currents)
        return t->column_currents(st, l, b->batch_first, V, n, I, b->source_err);
    int rc = t->tile_currents(st, l, b->batch_first, V, n, b->Irt, b->source_err);
    if (rc)
        return rc;
    memset(I, 0, n * L->cols * sizeof *I);
    if (noise) {
        for (size_t i = 0; i < n * L->rows; i++)
            b->V2[i] = V[i] * V[i];
        for (size_t i = 0; i < L->rows * L->cols; i++)
            b->G2[i] = L->g_S[i] * L->g_S[i];
    }
    for (size_t rt = 0; rt < L->n_row_tiles; rt++) {
        size_t r0, nr, c0, nc;
        xb_chip_tile_bounds(c, l, rt, 0, &r0, &nr, &c0, &nc);
        double *It = b->Irt + rt * n * L->cols;
        if (noise)
            xb_read_noise_tile(L, b->V2, b->G2, r0, nr, n, b->o.sigma_read, rng, b->var, It);
        if (calibrating) {
            for (size_t i = 0; i < n * L->cols; i++)
                if (It[i] > b->adc_fs[l])
                    b->adc_fs[l] = It[i];
        }
        if (adc)
            for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
                xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
                quantize_adc(It, n, L->cols, c0, nc, b->adc_fs[l], b->o.adc_bits);
            }
        for (size_t i = 0; i < n * L->cols; i++)
            I[i] += It[i];
    }
    return XB_OK;
}

size_t xb_behav_chunk(const xb_behav *b) { return b->chunk; }

/* Pre-activations z (n x fan_out) from column currents: pair subtraction and scaling to weight units. */
static void digital_out(const xb_behav *b, const xb_layer_map *L, const double *I, size_t n, double *z)
{
    const xb_map_options *o = &b->c->opt;
    double k = xb_map_current_gain(o, L);
    for (size_t r = 0; r < n; r++) {
        const double *i = I + r * L->cols;
        double *zr = z + r * L->fan_out;
        memcpy(zr, L->bias, L->fan_out * sizeof *zr);
        for (size_t col = 0; col < L->cols; col++) {
            int role = L->col_role[col];
            if (role == XB_COL_REF)
                continue;
            size_t j = (size_t)L->col_neuron[col];
            zr[j] += role == XB_COL_NEG ? -k * i[col] : k * (o->scheme == XB_MAP_SINGLE_ENDED ? i[col] - i[L->col_ref[col]] : i[col]);
        }
    }
}

/* Run n inputs through layers [0, stop); out receives the last layer's pre-activations (n x classes)
 * when stop is n_layers; otherwise b->V holds the row voltages of layer stop. */
static void run_layers_until(xb_behav *b, const double *X, size_t n, gsl_rng *rng, int calibrating, double *out,
                             int stop)
{
    const xb_chip *c = b->c;
    const double *x = X;
    size_t first = b->batch_first;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t rows = n * xb_layer_patches(L); /* row vectors: one per input, or per patch */
        drive_rows(b, L, layer_pre(b, L, x, n), rows, b->V);
        if (l == stop)
            return;
        b->batch_first = first * xb_layer_patches(L);
        b->source_rc = column_currents(b, l, b->V, rows, rng, calibrating, b->I);
        b->batch_first = first;
        if (b->source_rc)
            return;
        double *z = l == c->n_layers - 1 ? out : b->A;
        digital_out(b, L, b->I, rows, z);
        if (b->o.sigma_out[l] > 0 && rng)
            for (size_t i = 0; i < rows * L->fan_out; i++)
                z[i] += gsl_ran_gaussian_ziggurat(rng, b->o.sigma_out[l]);
        x = layer_post(b, L, z, n);
    }
}

static void run_layers(xb_behav *b, const double *X, size_t n, gsl_rng *rng, int calibrating, double *out)
{
    run_layers_until(b, X, n, rng, calibrating, out, -1);
}

int xb_behav_layer_rows(xb_behav *b, int l, const double *X, size_t n, gsl_rng *rng, double *V, xb_error *err)
{
    if (l < 0 || l >= b->c->n_layers || n > b->chunk)
        return xb_fail(err, XB_EINPUT, "layer %d / %zu inputs out of range (at most %zu)", l + 1, n, b->chunk);
    b->source_rc = XB_OK;
    b->source_err = err;
    b->batch_first = 0;
    xb_backend_set_rng(xb_backend_behavioral, b->own_state, rng);
    run_layers_until(b, X, n, rng, 0, NULL, l);
    if (b->source_rc)
        return b->source_rc;
    memcpy(V, b->V, n * xb_layer_patches(&b->c->layers[l]) * b->c->layers[l].rows * sizeof *V);
    return XB_OK;
}

/* The model without its full scales: validated options, work arrays, its own backends. */
static int behav_alloc(const xb_chip *c, const xb_behav_options *o, xb_behav **out, xb_error *err)
{
    *out = NULL;
    if (c->n_layers > XB_BEHAV_MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "%d layers: at most %d supported", c->n_layers, XB_BEHAV_MAX_LAYERS);
    if (o->dac_bits < 0 || o->dac_bits > 24 || o->adc_bits < 0 || o->adc_bits > 24)
        return xb_fail(err, XB_EINPUT, "DAC/ADC bits must be 0 (off) to 24");
    xb_behav *b = calloc(1, sizeof *b);
    if (!b)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    b->c = c;
    b->o = *o;
    size_t max_rows = 0, max_cols = 0, max_out = 0, max_g = 0, max_rtc = 0, max_p = 1, max_col = 0, max_pool = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t p = xb_layer_patches(L);
        max_p = p > max_p ? p : max_p;
        if (L->conv.k) {
            max_col = p * L->fan_in > max_col ? p * L->fan_in : max_col;
            max_pool = xb_layer_out_values(L) > max_pool ? xb_layer_out_values(L) : max_pool;
        }
    }
    /* Dense networks: CHUNK inputs per pass. Patches multiply a layer's row vectors: fewer inputs. */
    b->chunk = max_p > 1 ? (CHUNK_ROWS / max_p > CHUNK ? CHUNK : CHUNK_ROWS / max_p) : CHUNK;
    if (b->chunk < 1)
        b->chunk = 1;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t p = xb_layer_patches(L);
        max_rows = p * L->rows > max_rows ? p * L->rows : max_rows;
        max_cols = p * L->cols > max_cols ? p * L->cols : max_cols;
        max_out = p * L->fan_out > max_out ? p * L->fan_out : max_out;
        max_g = L->rows * L->cols > max_g ? L->rows * L->cols : max_g;
        max_rtc = p * L->n_row_tiles * L->cols > max_rtc ? p * L->n_row_tiles * L->cols : max_rtc;
    }
    size_t wide = max_cols > max_out ? max_cols : max_out, ch = b->chunk;
    b->V = malloc(ch * max_rows * sizeof *b->V);
    b->V2 = malloc(ch * max_rows * sizeof *b->V2);
    b->I = malloc(ch * max_cols * sizeof *b->I);
    b->var = malloc(ch * max_cols * sizeof *b->var);
    b->A = malloc(ch * wide * sizeof *b->A);
    b->G2 = malloc(max_g * sizeof *b->G2);
    b->Irt = malloc(ch * max_rtc * sizeof *b->Irt);
    b->col = max_col ? malloc(ch * max_col * sizeof *b->col) : NULL;
    b->pooled = max_pool ? malloc(ch * max_pool * sizeof *b->pooled) : NULL;
    if (!b->V || !b->V2 || !b->I || !b->var || !b->A || !b->G2 || !b->Irt || (max_col && !b->col) ||
        (max_pool && !b->pooled)) {
        xb_behav_free(&b);
        return xb_fail(err, XB_ENOMEM, "out of memory for the behavioral model");
    }
    xb_backend_params own = {.sigma_read = o->sigma_read}, quiet = {0};
    int rc = xb_backend_behavioral->open(c, &own, &b->own_state, err);
    if (!rc)
        rc = xb_backend_behavioral->open(c, &quiet, &b->cal_state, err);
    if (rc) {
        xb_behav_free(&b);
        return rc;
    }
    xb_behav_set_backend(b, NULL, NULL);
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t tile_rows = L->rows < c->opt.tile_rows ? L->rows : c->opt.tile_rows;
        b->adc_fs[l] = (double)tile_rows * c->opt.v_read_V * c->opt.g_max_S;
    }
    *out = b;
    return XB_OK;
}

/* Largest tile column current on the calibration set, noise-free, with an ideal ADC. */
static int calibrate(xb_behav *b, const double *calib, size_t n_calib, xb_error *err)
{
    const xb_chip *c = b->c;
    size_t classes = c->layers[c->n_layers - 1].fan_out;
    double *logits = malloc(b->chunk * classes * sizeof *logits);
    if (!logits)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        b->adc_fs[l] = 0;
    size_t in = xb_layer_in_values(&c->layers[0]), ch = b->chunk;
    b->source_rc = XB_OK;
    b->source_err = err;
    for (size_t s = 0; s < n_calib && !b->source_rc; s += ch) {
        size_t nb = n_calib - s < ch ? n_calib - s : ch;
        b->batch_first = s;
        run_layers(b, calib + s * in, nb, NULL, 1, logits);
    }
    free(logits);
    for (int l = 0; l < c->n_layers; l++)
        if (!(b->adc_fs[l] > 0))
            b->adc_fs[l] = c->opt.v_read_V * c->opt.g_max_S;
    return b->source_rc;
}

int xb_behav_adc_calibrate(const xb_chip *c, const xb_behav_options *o, const double *calib, size_t n_calib,
                           double *adc_fs_A, xb_error *err)
{
    xb_behav *b = NULL;
    int rc = behav_alloc(c, o, &b, err);
    if (!rc && o->adc_bits > 0 && o->adc_calibrate && (!calib || !n_calib))
        rc = xb_fail(err, XB_EINPUT, "ADC calibration needs calibration inputs");
    if (!rc && o->adc_bits > 0 && o->adc_calibrate)
        rc = calibrate(b, calib, n_calib, err);
    if (!rc)
        memcpy(adc_fs_A, b->adc_fs, (size_t)c->n_layers * sizeof *adc_fs_A);
    xb_behav_free(&b);
    return rc;
}

int xb_behav_new_fs(const xb_chip *c, const xb_behav_options *o, const double *adc_fs_A, xb_behav **out,
                    xb_error *err)
{
    int rc = behav_alloc(c, o, out, err);
    if (!rc && adc_fs_A)
        memcpy((*out)->adc_fs, adc_fs_A, (size_t)c->n_layers * sizeof *adc_fs_A);
    return rc;
}

int xb_behav_new(const xb_chip *c, const xb_behav_options *o, const double *calib, size_t n_calib,
                 xb_behav **out, xb_error *err)
{
    int rc = behav_alloc(c, o, out, err);
    if (!rc && o->adc_bits > 0 && o->adc_calibrate && (!calib || !n_calib))
        rc = xb_fail(err, XB_EINPUT, "ADC calibration needs calibration inputs");
    if (!rc && o->adc_bits > 0 && o->adc_calibrate)
        rc = calibrate(*out, calib, n_calib, err);
    if (rc)
        xb_behav_free(out);
    return rc;
}

int xb_behav_forward(xb_behav *b, const double *X, size_t n, gsl_rng *rng, double *logits, int *pred,
                     xb_error *err)
{
    const xb_chip *c = b->c;
    int needs_rng = b->o.sigma_read > 0;
    for (int l = 0; l < c->n_layers; l++)
        needs_rng |= b->o.sigma_out[l] > 0;
    if (needs_rng && !rng)
        return xb_fail(err, XB_ERUNTIME, "behavioral model with noise needs a random generator");
    size_t classes = c->layers[c->n_layers - 1].fan_out, in = xb_layer_in_values(&c->layers[0]), ch = b->chunk;
    double *z = malloc(ch * classes * sizeof *z);
    if (!z)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    b->source_rc = XB_OK;
    b->source_err = err;
    xb_backend_set_rng(xb_backend_behavioral, b->own_state, rng);
    for (size_t s = 0; s < n; s += ch) {
        size_t nb = n - s < ch ? n - s : ch;
        b->batch_first = s;
        run_layers(b, X + s * in, nb, rng, 0, z);
        if (b->source_rc) {
            free(z);
            return b->source_rc;
        }
        for (size_t r = 0; r < nb; r++) {
            if (pred)
                pred[s + r] = (int)xb_argmax(z + r * classes, classes);
            if (logits)
                memcpy(logits + (s + r) * classes, z + r * classes, classes * sizeof *z);
        }
    }
    free(z);
    return XB_OK;
}
