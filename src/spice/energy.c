// energy: energy per input of every tile from the solved circuit, ADC/DAC energy, and settling time
#include "energy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "ngspice.h"
#include "pool.h"

void xb_energy_defaults(xb_energy_options *o)
{
    *o = (xb_energy_options){0, XB_ENERGY_INPUTS, XB_ENERGY_T_READ_S, XB_ENERGY_ADC_J, XB_ENERGY_DAC_J,
                             XB_ENERGY_C_WIRE_F, XB_ENERGY_SETTLE_FRAC};
}

int xb_energy_check(const xb_energy_options *o, xb_error *err)
{
    if (o->inputs < 1 || o->inputs > 100000)
        return xb_fail(err, XB_EINPUT, "--energy-inputs %zu: allowed 1 to 100000 inputs per layer", o->inputs);
    if (!(o->t_read_s > 0 && o->t_read_s <= 1))
        return xb_fail(err, XB_EINPUT, "--read-time %g s: allowed above 0, at most 1 s", o->t_read_s);
    if (!(o->adc_J >= 0 && o->adc_J <= 1e-6))
        return xb_fail(err, XB_EINPUT, "--adc-energy %g J per conversion: allowed 0 to 1e-6 J", o->adc_J);
    if (!(o->dac_J >= 0 && o->dac_J <= 1e-6))
        return xb_fail(err, XB_EINPUT, "--dac-energy %g J per conversion: allowed 0 to 1e-6 J", o->dac_J);
    if (!(o->c_wire_F >= 0 && o->c_wire_F <= 1e-9))
        return xb_fail(err, XB_EINPUT, "--c-wire %g F per segment: allowed 0 to 1e-9 F", o->c_wire_F);
    if (!(o->settle_frac > 0 && o->settle_frac < 1))
        return xb_fail(err, XB_EINPUT, "--settle-fraction %g: allowed between 0 and 1 (exclusive)", o->settle_frac);
    return XB_OK;
}

void xb_energy_init(xb_energy *e, const xb_energy_options *o)
{
    memset(e, 0, sizeof *e);
    e->o = *o;
}

void xb_energy_free(xb_energy *e)
{
    if (!e)
        return;
    free(e->tiles);
    e->tiles = NULL;
    e->n_tiles = e->cap = 0;
}

/* One tile's measurement in a fresh worker: the powers of every input, then the settling transient of
 * the first. The result block: n_in x 3 powers, then t_settle, t_stop. */
typedef struct tile_job {
    const xb_chip *c;
    const xb_device *dev;
    const xb_netlist_options *net;
    int l;
    size_t rt, ct, n;
    const double *v_tile; /* n x nr */
    double c_wire_F, frac;
} tile_job;

static int measure_tile(struct xb_spice *s, void *ctx, void *result, xb_error *err)
{
    tile_job *j = ctx;
    double *out = result;
    int rc = xb_spice_tile_power(s, j->c, j->l, j->rt, j->ct, j->dev, j->net, j->v_tile, j->n, out, out + j->n,
                                 out + 2 * j->n, err);
    if (rc)
        return rc;
    /* Settling: every row of the tile driven at v_read, the tile's largest currents (an input's own
     * voltages leave border-pixel tiles at no current at all). */
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(j->c, j->l, j->rt, j->ct, &r0, &nr, &c0, &nc);
    double *v = malloc(nr * sizeof *v);
    if (!v)
        return xb_fail(err, XB_ENOMEM, "out of memory for the settling transient");
    for (size_t i = 0; i < nr; i++)
        v[i] = j->c->opt.v_read_V;
    rc = xb_spice_tile_settling(s, j->c, j->l, j->rt, j->ct, j->dev, j->net, v, j->c_wire_F, j->frac, &out[3 * j->n],
                                &out[3 * j->n + 1], err);
    free(v);
    return rc;
}

int xb_energy_layer(xb_energy *e, const xb_pool_options *po, const xb_chip *c, const xb_device *dev, int l,
                    const double *V, size_t n, xb_error *err)
{
    if (l < 0 || l >= 64 || e->done[l] || n == 0)
        return XB_OK;
    const xb_layer_map *L = &c->layers[l];
    size_t m = n < e->o.inputs ? n : e->o.inputs, R = c->opt.tile_rows;
    double *vt = malloc(m * R * sizeof *vt), *res = malloc((3 * m + 2) * sizeof *res);
    size_t need = e->n_tiles + L->n_row_tiles * L->n_col_tiles;
    if (need > e->cap) {
        xb_tile_energy *t = realloc(e->tiles, need * sizeof *t);
        if (t)
            e->tiles = t, e->cap = need;
    }
    int rc = XB_OK;
    if (!vt || !res || need > e->cap)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the energy of layer %d", l + 1);
    for (size_t rt = 0; rt < L->n_row_tiles && !rc; rt++)
        for (size_t ct = 0; ct < L->n_col_tiles && !rc; ct++) {
            size_t r0, nr, c0, nc;
            xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
            xb_netlist_tile_rows(c, l, r0, nr, V, m, vt);
            tile_job job = {c, dev, &po->net, l, rt, ct, m, vt, e->o.c_wire_F, e->o.settle_frac};
            rc = xb_pool_run_one(po, measure_tile, &job, res, (3 * m + 2) * sizeof *res, err);
            if (rc)
                break;
            xb_tile_energy t = {l, rt, ct, nr, nc, 0, 0, 0, 0, (double)nc * e->o.adc_J, (double)nr * e->o.dac_J,
                                res[3 * m], res[3 * m + 1]};
            for (size_t k = 0; k < m; k++)
                if (isfinite(res[k]) && isfinite(res[m + k]) && isfinite(res[2 * m + k])) {
                    t.e_src_J += res[k] * e->o.t_read_s;
                    t.e_cell_J += res[m + k] * e->o.t_read_s;
                    t.e_wire_J += res[2 * m + k] * e->o.t_read_s;
                    t.inputs++;
                }
            if (t.inputs) {
                t.e_src_J /= (double)t.inputs;
                t.e_cell_J /= (double)t.inputs;
                t.e_wire_J /= (double)t.inputs;
            } else {
                t.e_src_J = t.e_cell_J = t.e_wire_J = NAN;
            }
            e->tiles[e->n_tiles++] = t;
        }
    if (!rc)
        e->done[l] = 1;
    free(vt);
    free(res);
    return rc;
}

double xb_energy_tile_total_J(const xb_tile_energy *t)
{
    return t->e_src_J + t->e_adc_J + t->e_dac_J;
}

double xb_energy_total_J(const xb_energy *e, int l)
{
    double sum = 0;
    for (size_t k = 0; k < e->n_tiles; k++)
        if (l < 0 || e->tiles[k].layer == l)
            sum += xb_energy_tile_total_J(&e->tiles[k]);
    return sum;
}

double xb_energy_settle_s(const xb_energy *e, int l)
{
    if (l >= 0) {
        double worst = 0;
        for (size_t k = 0; k < e->n_tiles; k++)
            if (e->tiles[k].layer == l)
                worst = fmax(worst, e->tiles[k].t_settle_s);
        return worst;
    }
    double sum = 0;
    for (int q = 0; q < 64; q++)
        if (e->done[q])
            sum += xb_energy_settle_s(e, q);
    return sum;
}

int xb_energy_write_csv(const xb_energy *e, const char *path, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "layer,row_tile,col_tile,rows,cols,inputs,t_read_s,e_sources_J,e_cells_J,e_wires_J,e_adc_J,e_dac_J,"
                  "e_total_J,c_wire_F,settle_fraction,t_settle_s,t_transient_s\n");
    for (size_t k = 0; k < e->n_tiles; k++) {
        const xb_tile_energy *t = &e->tiles[k];
        fprintf(f.fp, "%d,%zu,%zu,%zu,%zu,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n",
                t->layer + 1, t->rt, t->ct, t->rows, t->cols, t->inputs, e->o.t_read_s, t->e_src_J, t->e_cell_J,
                t->e_wire_J, t->e_adc_J, t->e_dac_J, xb_energy_tile_total_J(t), e->o.c_wire_F, e->o.settle_frac,
                t->t_settle_s, t->t_stop_s);
    }
    return xb_atomic_commit(&f, err);
}

void xb_energy_json(const xb_energy *e, xb_json *j, int n_layers)
{
    xb_json_object_begin(j, "energy");
    xb_json_int(j, "inputs_per_layer", (long long)e->o.inputs);
    xb_json_number(j, "t_read_s", e->o.t_read_s);
    xb_json_number(j, "adc_J_per_conversion", e->o.adc_J);
    xb_json_number(j, "dac_J_per_conversion", e->o.dac_J);
    xb_json_number(j, "c_wire_F_per_segment", e->o.c_wire_F);
    xb_json_number(j, "settle_fraction", e->o.settle_frac);
    xb_json_array_begin(j, "layers");
    for (int l = 0; l < n_layers && l < 64; l++) {
        double src = 0, cell = 0, wire = 0, adc = 0, dac = 0;
        size_t tiles = 0;
        for (size_t k = 0; k < e->n_tiles; k++)
            if (e->tiles[k].layer == l) {
                const xb_tile_energy *t = &e->tiles[k];
                src += t->e_src_J, cell += t->e_cell_J, wire += t->e_wire_J, adc += t->e_adc_J, dac += t->e_dac_J;
                tiles++;
            }
        xb_json_object_begin(j, NULL);
        xb_json_int(j, "layer", l + 1);
        xb_json_int(j, "tiles", (long long)tiles);
        xb_json_number(j, "e_sources_J", src);
        xb_json_number(j, "e_cells_J", cell);
        xb_json_number(j, "e_wires_J", wire);
        xb_json_number(j, "e_adc_J", adc);
        xb_json_number(j, "e_dac_J", dac);
        xb_json_number(j, "e_total_J", xb_energy_total_J(e, l));
        xb_json_number(j, "t_settle_s", xb_energy_settle_s(e, l));
        xb_json_object_end(j);
    }
    xb_json_array_end(j);
    xb_json_number(j, "e_per_inference_J", xb_energy_total_J(e, -1));
    xb_json_number(j, "t_settle_per_inference_s", xb_energy_settle_s(e, -1));
    xb_json_object_end(j);
}
