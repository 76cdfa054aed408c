// compare: circuit-level column currents beside the behavioral model's, tile by tile
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static int compare_setup(xb_circuit_compare *cc, const xb_chip *chip, xb_error *err)
{
    cc->chip = chip;
    for (int l = 0; l < chip->n_layers; l++)
        cc->n_tiles += chip->layers[l].n_row_tiles * chip->layers[l].n_col_tiles;
    cc->tiles = calloc(cc->n_tiles, sizeof *cc->tiles);
    if (!cc->tiles)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    size_t t = 0;
    for (int l = 0; l < chip->n_layers; l++)
        for (size_t rt = 0; rt < chip->layers[l].n_row_tiles; rt++)
            for (size_t ct = 0; ct < chip->layers[l].n_col_tiles; ct++)
                cc->tiles[t++] = (xb_tile_error){.layer = l, .rt = rt, .ct = ct};
    return XB_OK;
}

int xb_compare_init(xb_circuit_compare *cc, xb_pool *pool, const xb_chip *chip, xb_error *err)
{
    memset(cc, 0, sizeof *cc);
    cc->pool = pool;
    xb_backend_params quiet = {0};
    int rc = xb_backend_behavioral->open(chip, &quiet, &cc->own_ref, err);
    if (rc)
        return rc;
    cc->ref_t = xb_backend_behavioral;
    cc->ref_state = cc->own_ref;
    return compare_setup(cc, chip, err);
}

int xb_compare_init_pair(xb_circuit_compare *cc, const xb_chip *chip, const xb_backend_type *meas_t,
                         void *meas_state, const xb_backend_type *ref_t, void *ref_state, xb_error *err)
{
    memset(cc, 0, sizeof *cc);
    if (!meas_t || !ref_t)
        return xb_fail(err, XB_EINPUT, "a comparison needs two backends");
    cc->meas_t = meas_t;
    cc->meas_state = meas_state;
    cc->ref_t = ref_t;
    cc->ref_state = ref_state;
    return compare_setup(cc, chip, err);
}

void xb_compare_free(xb_circuit_compare *cc)
{
    free(cc->tiles);
    free(cc->ref_rt);
    xb_backend_behavioral->free(&cc->own_ref);
    free(cc->samples);
    memset(cc, 0, sizeof *cc);
}

static void add_error(xb_tile_error *t, double e)
{
    t->n++;
    t->sum += e;
    if (e > t->max)
        t->max = e;
    int bin = e <= 1e-12 ? 0 : (int)ceil(100 * (log10(e) + 12));
    if (bin < 0)
        bin = 0;
    if (bin > XB_ERR_BINS + 1)
        bin = XB_ERR_BINS + 1;
    t->hist[bin]++;
}

/* Percentile q (0..1) of a tile's relative errors, from the histogram (bin upper edge). */
static double tile_error_percentile(const xb_tile_error *t, double q)
{
    if (!t->n)
        return NAN;
    size_t want = (size_t)ceil(q * (double)t->n), seen = 0;
    for (int b = 0; b <= XB_ERR_BINS + 1; b++) {
        seen += t->hist[b];
        if (seen >= want)
            return fmin(pow(10, (double)b / 100 - 12), t->max);
    }
    return t->max;
}

int xb_compare_source(void *ctx, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err)
{
    xb_circuit_compare *cc = ctx;
    int rc = cc->meas_t ? cc->meas_t->tile_currents(cc->meas_state, l, first, V, n, I_rt, err)
                        : xb_pool_layer_currents(cc->pool, l, first, V, n, I_rt, err);
    if (rc)
        return rc;
    const xb_chip *c = cc->chip;
    const xb_layer_map *L = &c->layers[l];
    size_t need = L->n_row_tiles * n * L->cols;
    if (need > cc->ref_cap) {
        free(cc->ref_rt);
        cc->ref_cap = 0;
        if (!(cc->ref_rt = malloc(need * sizeof *cc->ref_rt)))
            return xb_fail(err, XB_ENOMEM, "out of memory");
        cc->ref_cap = need;
    }
    if ((rc = cc->ref_t->tile_currents(cc->ref_state, l, first, V, n, cc->ref_rt, err)))
        return rc;
    int sample = cc->sample_inputs && l < 64 && !(cc->sampled_layers >> l & 1);
    if (sample) {
        cc->sampled_layers |= 1ULL << l;
        size_t k_max = n < cc->sample_inputs ? n : cc->sample_inputs, more = L->n_row_tiles * k_max * L->cols;
        xb_current_sample *grown = realloc(cc->samples, (cc->n_samples + more) * sizeof *grown);
        if (!grown)
            return xb_fail(err, XB_ENOMEM, "out of memory");
        cc->samples = grown;
        cc->samples_cap = cc->n_samples + more;
    }
    size_t t0 = 0;
    for (int k = 0; k < l; k++)
        t0 += c->layers[k].n_row_tiles * c->layers[k].n_col_tiles;
    for (size_t rt = 0; rt < L->n_row_tiles; rt++) {
        size_t r0, nr, c0, nc;
        xb_chip_tile_bounds(c, l, rt, 0, &r0, &nr, &c0, &nc);
        const double *Ib = cc->ref_rt + rt * n * L->cols;
        const double *Is = I_rt + rt * n * L->cols;
        for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
            xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
            xb_tile_error *te = &cc->tiles[t0 + rt * L->n_col_tiles + ct];
            double big = 0;
            for (size_t k = 0; k < n; k++)
                for (size_t j = c0; j < c0 + nc; j++)
                    big = fmax(big, fabs(Ib[k * L->cols + j]));
            for (size_t k = 0; k < n; k++)
                for (size_t j = c0; j < c0 + nc; j++) {
                    double b = Ib[k * L->cols + j];
                    if (fabs(b) > 1e-3 * big)
                        add_error(te, fabs(Is[k * L->cols + j] - b) / fabs(b));
                    if (sample && k < cc->sample_inputs && cc->n_samples < cc->samples_cap)
                        cc->samples[cc->n_samples++] = (xb_current_sample){l, rt, ct, k, j, b, Is[k * L->cols + j]};
                }
        }
    }
    return XB_OK;
}

int xb_compare_write_csv(const xb_circuit_compare *cc, const char *path, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "tile,layer,row_tile,col_tile,currents,rel_err_mean,rel_err_p99,rel_err_max\n");
    for (size_t t = 0; t < cc->n_tiles; t++) {
        const xb_tile_error *te = &cc->tiles[t];
        fprintf(f.fp, "%zu,%d,%zu,%zu,%zu,%.17g,%.17g,%.17g\n", t, te->layer + 1, te->rt, te->ct, te->n,
                te->n ? te->sum / (double)te->n : NAN, tile_error_percentile(te, 0.99), te->max);
    }
    return xb_atomic_commit(&f, err);
}

int xb_compare_write_samples_csv(const xb_circuit_compare *cc, const char *path, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "layer,row_tile,col_tile,input,col,i_behavioral_A,i_spice_A\n");
    for (size_t k = 0; k < cc->n_samples; k++) {
        const xb_current_sample *s = &cc->samples[k];
        fprintf(f.fp, "%d,%zu,%zu,%zu,%zu,%.17g,%.17g\n", s->layer + 1, s->rt, s->ct, s->input, s->col, s->i_model_A,
                s->i_spice_A);
    }
    return xb_atomic_commit(&f, err);
}

void xb_compare_totals(const xb_circuit_compare *cc, double *mean, double *max)
{
    double worst = 0, sum = 0;
    size_t cnt = 0;
    for (size_t t = 0; t < cc->n_tiles; t++) {
        worst = fmax(worst, cc->tiles[t].max);
        sum += cc->tiles[t].sum;
        cnt += cc->tiles[t].n;
    }
    *mean = cnt ? sum / (double)cnt : NAN;
    *max = worst;
}
