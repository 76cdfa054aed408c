// behavioral: fast crossbar model: DAC, column currents I = V^T G with ideal wires, ADC, digital post-processing
#include "behavioral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>

#define CHUNK 1024 /* inputs per pass: bounds the work arrays, keeps GEMMs large */

struct xb_behav {
    const xb_chip *c;
    xb_behav_options o;
    double adc_fs[XB_BEHAV_MAX_LAYERS]; /* ADC full scale per layer */
    double *V, *V2, *I, *It, *G2, *A;   /* voltages, squared voltages, currents, tile currents, g^2, activations */
    xb_tile_current_fn source;          /* external column currents (a circuit solver), or NULL */
    void *source_ctx;
    double *Irt;                        /* n_row_tiles x CHUNK x cols from the source */
    int source_rc;
    size_t batch_first;                 /* index of the current batch's first input in the forward call */
    xb_error *source_err;
};

void xb_behav_set_current_source(xb_behav *b, xb_tile_current_fn fn, void *ctx)
{
    b->source = fn;
    b->source_ctx = ctx;
}

void xb_behav_defaults(xb_behav_options *o) { memset(o, 0, sizeof *o); }

void xb_behav_free(xb_behav **bp)
{
    if (!bp || !*bp)
        return;
    xb_behav *b = *bp;
    free(b->V), free(b->V2), free(b->I), free(b->It), free(b->G2), free(b->A), free(b->Irt);
    free(b);
    *bp = NULL;
}

double xb_behav_adc_full_scale(const xb_behav *b, int l) { return b->adc_fs[l]; }

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

/* Column currents of layer l for voltages V (n x rows) into I (n x cols). With tile effects on
 * (ADC or read noise), each row tile is solved on its own and the partial sums added digitally. */
static void column_currents(xb_behav *b, int l, const double *V, size_t n, gsl_rng *rng, int calibrating,
                            double *I)
{
    const xb_chip *c = b->c;
    const xb_layer_map *L = &c->layers[l];
    int adc = b->o.adc_bits > 0 && !calibrating;
    int noise = b->o.sigma_read > 0;
    int ncols = (int)L->cols, nrows = (int)L->rows;
    int external = b->source && !calibrating;
    if (external) {
        b->source_rc = b->source(b->source_ctx, l, b->batch_first, V, n, b->Irt, b->source_err);
        if (b->source_rc)
            return;
    }
    if (!adc && !noise && !calibrating && !external) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, ncols, nrows, 1.0, V, nrows, L->g_S,
                    ncols, 0.0, I, ncols);
        return;
    }
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
        if (external)
            memcpy(b->It, b->Irt + rt * n * L->cols, n * L->cols * sizeof *b->It);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, ncols, (int)nr, 1.0, V + r0, nrows,
                        L->g_S + r0 * L->cols, ncols, 0.0, b->It, ncols);
        if (noise) {
            /* Independent relative noise on every cell: each column current is Gaussian with variance
             * sigma^2 sum_i V_i^2 G_i^2, so one more product gives it exactly. */
            double *var = b->A; /* scratch of the same size */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, ncols, (int)nr, 1.0, b->V2 + r0, nrows,
                        b->G2 + r0 * L->cols, ncols, 0.0, var, ncols);
            for (size_t i = 0; i < n * L->cols; i++)
                b->It[i] += b->o.sigma_read * sqrt(var[i]) * gsl_ran_gaussian_ziggurat(rng, 1.0);
        }
        if (calibrating) {
            for (size_t i = 0; i < n * L->cols; i++)
                if (b->It[i] > b->adc_fs[l])
                    b->adc_fs[l] = b->It[i];
        }
        if (adc)
            for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
                xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
                quantize_adc(b->It, n, L->cols, c0, nc, b->adc_fs[l], b->o.adc_bits);
            }
        for (size_t i = 0; i < n * L->cols; i++)
            I[i] += b->It[i];
    }
}

/* Pre-activations z (n x fan_out) from column currents: pair subtraction and scaling to weight units. */
static void digital_out(const xb_behav *b, const xb_layer_map *L, const double *I, size_t n, double *z)
{
    const xb_map_options *o = &b->c->opt;
    double k = L->w_scale / (o->v_read_V * (o->g_max_S - o->g_min_S));
    if (o->scheme == XB_MAP_SINGLE_ENDED)
        k *= 2;
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
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        drive_rows(b, L, x, n, b->V);
        if (l == stop)
            return;
        column_currents(b, l, b->V, n, rng, calibrating, b->I);
        if (b->source_rc)
            return;
        double *z = l == c->n_layers - 1 ? out : b->A;
        digital_out(b, L, b->I, n, z);
        if (b->o.sigma_out[l] > 0 && rng)
            for (size_t i = 0; i < n * L->fan_out; i++)
                z[i] += gsl_ran_gaussian_ziggurat(rng, b->o.sigma_out[l]);
        xb_activation_apply(L->act, z, n * L->fan_out);
        x = z;
    }
}

static void run_layers(xb_behav *b, const double *X, size_t n, gsl_rng *rng, int calibrating, double *out)
{
    run_layers_until(b, X, n, rng, calibrating, out, -1);
}

int xb_behav_layer_rows(xb_behav *b, int l, const double *X, size_t n, gsl_rng *rng, double *V, xb_error *err)
{
    if (l < 0 || l >= b->c->n_layers || n > CHUNK)
        return xb_fail(err, XB_EINPUT, "layer %d / %zu inputs out of range", l + 1, n);
    b->source_rc = XB_OK;
    b->source_err = err;
    b->batch_first = 0;
    run_layers_until(b, X, n, rng, 0, NULL, l);
    if (b->source_rc)
        return b->source_rc;
    memcpy(V, b->V, n * b->c->layers[l].rows * sizeof *V);
    return XB_OK;
}

int xb_behav_new(const xb_chip *c, const xb_behav_options *o, const double *calib, size_t n_calib,
                 xb_behav **out, xb_error *err)
{
    *out = NULL;
    if (c->n_layers > XB_BEHAV_MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "%d layers: at most %d supported", c->n_layers, XB_BEHAV_MAX_LAYERS);
    if (o->dac_bits < 0 || o->dac_bits > 24 || o->adc_bits < 0 || o->adc_bits > 24)
        return xb_fail(err, XB_EINPUT, "DAC/ADC bits must be 0 (off) to 24");
    if (o->adc_bits > 0 && o->adc_calibrate && (!calib || !n_calib))
        return xb_fail(err, XB_EINPUT, "ADC calibration needs calibration inputs");
    xb_behav *b = calloc(1, sizeof *b);
    if (!b)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    b->c = c;
    b->o = *o;
    size_t max_rows = 0, max_cols = 0, max_out = 0, max_g = 0, max_rtc = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        max_rows = L->rows > max_rows ? L->rows : max_rows;
        max_cols = L->cols > max_cols ? L->cols : max_cols;
        max_out = L->fan_out > max_out ? L->fan_out : max_out;
        max_g = L->rows * L->cols > max_g ? L->rows * L->cols : max_g;
        max_rtc = L->n_row_tiles * L->cols > max_rtc ? L->n_row_tiles * L->cols : max_rtc;
    }
    size_t wide = max_cols > max_out ? max_cols : max_out;
    b->V = malloc(CHUNK * max_rows * sizeof *b->V);
    b->V2 = malloc(CHUNK * max_rows * sizeof *b->V2);
    b->I = malloc(CHUNK * max_cols * sizeof *b->I);
    b->It = malloc(CHUNK * max_cols * sizeof *b->It);
    b->A = malloc(CHUNK * wide * sizeof *b->A);
    b->G2 = malloc(max_g * sizeof *b->G2);
    b->Irt = malloc(CHUNK * max_rtc * sizeof *b->Irt);
    if (!b->V || !b->V2 || !b->I || !b->It || !b->A || !b->G2 || !b->Irt) {
        xb_behav_free(&b);
        return xb_fail(err, XB_ENOMEM, "out of memory for the behavioral model");
    }
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        size_t tile_rows = L->rows < c->opt.tile_rows ? L->rows : c->opt.tile_rows;
        b->adc_fs[l] = (double)tile_rows * c->opt.v_read_V * c->opt.g_max_S;
    }
    if (o->adc_bits > 0 && o->adc_calibrate) {
        /* Largest tile column current on the calibration set, noise-free, with an ideal ADC. */
        double *logits = malloc(CHUNK * max_out * sizeof *logits);
        if (!logits) {
            xb_behav_free(&b);
            return xb_fail(err, XB_ENOMEM, "out of memory");
        }
        for (int l = 0; l < c->n_layers; l++)
            b->adc_fs[l] = 0;
        double saved_sigma = b->o.sigma_read;
        b->o.sigma_read = 0;
        size_t in = c->layers[0].fan_in;
        for (size_t s = 0; s < n_calib; s += CHUNK) {
            size_t nb = n_calib - s < CHUNK ? n_calib - s : CHUNK;
            run_layers(b, calib + s * in, nb, NULL, 1, logits);
        }
        b->o.sigma_read = saved_sigma;
        free(logits);
        for (int l = 0; l < c->n_layers; l++)
            if (!(b->adc_fs[l] > 0))
                b->adc_fs[l] = c->opt.v_read_V * c->opt.g_max_S;
    }
    *out = b;
    return XB_OK;
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
    size_t classes = c->layers[c->n_layers - 1].fan_out, in = c->layers[0].fan_in;
    double *z = malloc(CHUNK * classes * sizeof *z);
    if (!z)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    b->source_rc = XB_OK;
    b->source_err = err;
    for (size_t s = 0; s < n; s += CHUNK) {
        size_t nb = n - s < CHUNK ? n - s : CHUNK;
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
