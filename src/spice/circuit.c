// circuit: classify inputs on a programmed chip whose tiles are solved through libngspice
#include "circuit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "ngspice.h"

int xb_circuit_classify(const xb_chip *c, const xb_device *d, const xb_pool_options *po, const xb_behav_options *bo,
                        const double *calib, size_t n_calib, const double *X, size_t n, size_t sample_inputs,
                        const char *label, gsl_rng *rng, int *pred, xb_circuit *r, xb_error *err)
{
    memset(r, 0, sizeof *r);
    double fs[XB_BEHAV_MAX_LAYERS];
    int rc = xb_behav_adc_calibrate(c, bo, calib, n_calib, fs, err);
    if (rc)
        return rc;
    return xb_circuit_classify_fs(c, d, po, bo, fs, X, n, sample_inputs, label, rng, pred, r, err);
}

int xb_circuit_classify_fs(const xb_chip *c, const xb_device *d, const xb_pool_options *po,
                           const xb_behav_options *bo, const double *adc_fs_A, const double *X, size_t n,
                           size_t sample_inputs, const char *label, gsl_rng *rng, int *pred, xb_circuit *r,
                           xb_error *err)
{
    memset(r, 0, sizeof *r);
    r->pool.chip = c;
    r->pool.dev = d;
    r->pool.o = *po;
    r->pool.label = label;
    r->pool.failed = calloc(n ? n : 1, 1);
    r->pool.failed_cap = n;
    if (!r->pool.failed)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    int rc = xb_compare_init(&r->cc, &r->pool, c, err);
    if (rc)
        return rc;
    r->cc.sample_inputs = sample_inputs;
    xb_behav_options so = *bo;
    for (int l = 0; l < XB_BEHAV_MAX_LAYERS; l++)
        so.sigma_out[l] = 0;
    xb_behav *b = NULL;
    if ((rc = xb_behav_new_fs(c, &so, adc_fs_A, &b, err)))
        return rc;
    xb_behav_set_current_source(b, xb_compare_source, &r->cc);
    rc = xb_behav_forward(b, X, n, rng, NULL, pred, err);
    xb_behav_free(&b);
    if (rc)
        return rc;
    for (size_t k = 0; k < n; k++)
        if (r->pool.failed[k]) {
            pred[k] = -1; /* never converged: counted wrong, and listed as such */
            r->n_failed++;
        }
    return XB_OK;
}

void xb_circuit_free(xb_circuit *r)
{
    free(r->pool.failed);
    xb_compare_free(&r->cc);
    memset(r, 0, sizeof *r);
}

typedef struct irdrop_job {
    const xb_chip *chip;
    const xb_device *dev;
    const xb_netlist_options *net;
    int l;
    size_t rt, ct;
} irdrop_job;

/* Row voltages of a tile with every row at v_read. */
static double *rows_at_read(const xb_chip *c, size_t nr)
{
    double *v = malloc(nr * sizeof *v);
    for (size_t i = 0; v && i < nr; i++)
        v[i] = c->opt.v_read_V;
    return v;
}

static int irdrop_solve(xb_spice *s, void *ctx, void *result, xb_error *err)
{
    irdrop_job *j = ctx;
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(j->chip, j->l, j->rt, j->ct, &r0, &nr, &c0, &nc);
    double *v = rows_at_read(j->chip, nr), *out = result;
    if (!v)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    int rc = xb_spice_tile_cell_voltages(s, j->chip, j->l, j->rt, j->ct, j->dev, j->net, v, out, out + nr * nc, err);
    free(v);
    return rc;
}

/* Kirchhoff's current law at each cell's row node, with the deck's topology (netlist.h): row segment
 * Rr<i>_<j> runs from the driver (j = 0) or the previous cell's node to cell j, the line ends at the
 * last cell; column segment Rc<i>_<j> runs from cell i down to cell i+1, or to the sense node at 0 V. */
static void cell_currents(xb_irdrop *m)
{
    size_t R = m->rows, C = m->cols;
    const double *vr = m->v_row_node_V, *vc = m->v_col_node_V;
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++) {
            size_t k = i * C + j;
            double cur;
            if (m->r_row_ohm > 0) {
                double left = j == 0 ? m->v_read_V : vr[k - 1];
                double in = (left - vr[k]) / m->r_row_ohm, out = j + 1 < C ? (vr[k] - vr[k + 1]) / m->r_row_ohm : 0;
                cur = in - out;
            } else if (m->r_col_ohm > 0) {
                double below = i + 1 < R ? vc[k + C] : 0;
                double down = (vc[k] - below) / m->r_col_ohm, above = i > 0 ? (vc[k - C] - vc[k]) / m->r_col_ohm : 0;
                cur = down - above;
            } else {
                cur = m->g_S[k] * m->v_read_V; /* ideal wires: the cell sees v_read, by definition of ideal */
            }
            m->i_cell_A[k] = cur;
        }
}

/* One block for the four maps; v_row_node_V is its start. */
static int irdrop_alloc(xb_irdrop *m, const xb_chip *c, int l, size_t rt, size_t ct, const xb_netlist_options *o,
                        xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    memset(m, 0, sizeof *m);
    double *block = malloc(4 * nr * nc * sizeof *block);
    if (!block)
        return xb_fail(err, XB_ENOMEM, "out of memory for an IR-drop map");
    const xb_layer_map *L = &c->layers[l];
    *m = (xb_irdrop){l, rt, ct, nr, nc, c->opt.v_read_V, block, block + nr * nc, o->r_row_ohm, o->r_col_ohm,
                     block + 2 * nr * nc, block + 3 * nr * nc};
    for (size_t i = 0; i < nr; i++)
        memcpy(m->g_S + i * nc, L->g_S + (r0 + i) * L->cols + c0, nc * sizeof *m->g_S);
    return XB_OK;
}

int xb_irdrop_solve(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                    const xb_netlist_options *o, xb_irdrop *out, xb_error *err)
{
    int rc = irdrop_alloc(out, c, l, rt, ct, o, err);
    if (rc)
        return rc;
    double *v = rows_at_read(c, out->rows);
    if (!v)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    else
        rc = xb_spice_tile_cell_voltages(s, c, l, rt, ct, dev, o, v, out->v_row_node_V, out->v_col_node_V, err);
    free(v);
    if (rc) {
        xb_irdrop_free(out);
        return rc;
    }
    cell_currents(out);
    return XB_OK;
}

int xb_circuit_irdrop(const xb_circuit *r, xb_irdrop *out, xb_error *err)
{
    memset(out, 0, sizeof *out);
    const xb_circuit_compare *cc = &r->cc;
    if (!cc->n_tiles)
        return xb_fail(err, XB_EINPUT, "no tiles to map");
    size_t best = 0;
    double worst = -1;
    for (size_t t = 0; t < cc->n_tiles; t++) {
        double m = cc->tiles[t].n ? cc->tiles[t].sum / (double)cc->tiles[t].n : -1;
        if (m > worst) {
            worst = m;
            best = t;
        }
    }
    const xb_tile_error *te = &cc->tiles[best];
    const xb_chip *c = r->pool.chip;
    irdrop_job job = {c, r->pool.dev, &r->pool.o.net, te->layer, te->rt, te->ct};
    int rc = irdrop_alloc(out, c, te->layer, te->rt, te->ct, &r->pool.o.net, err);
    if (rc)
        return rc;
    /* v_row_node_V and v_col_node_V are adjacent: the worker fills both. */
    int timed_out = 0;
    xb_error terr = {0};
    rc = xb_pool_run_one_timed(&r->pool.o, irdrop_solve, &job, out->v_row_node_V,
                               2 * out->rows * out->cols * sizeof(double), &timed_out, &terr);
    if (rc && timed_out) {
        /* As for an operating point that does not converge: the map holds NaN and the run goes on. */
        fprintf(stderr, "xbarsim: the IR-drop map of layer %d tile (%zu, %zu): %s; its voltages are NaN\n",
                te->layer + 1, te->rt, te->ct, terr.msg);
        for (size_t k = 0; k < 2 * out->rows * out->cols; k++)
            out->v_row_node_V[k] = NAN;
        rc = XB_OK;
    } else if (rc) {
        *err = terr;
        xb_irdrop_free(out);
        return rc;
    }
    cell_currents(out);
    return XB_OK;
}

void xb_irdrop_free(xb_irdrop *m)
{
    free(m->v_row_node_V); /* one block with the other maps */
    memset(m, 0, sizeof *m);
}

double xb_irdrop_deficit(const xb_irdrop *m, size_t i, size_t j)
{
    size_t k = i * m->cols + j;
    return 1 - (m->v_row_node_V[k] - m->v_col_node_V[k]) / m->v_read_V;
}

double xb_irdrop_current_deficit(const xb_irdrop *m, size_t i, size_t j)
{
    size_t k = i * m->cols + j;
    double ideal = m->g_S[k] * m->v_read_V;
    return ideal > 0 ? 1 - m->i_cell_A[k] / ideal : 0;
}

int xb_irdrop_write_csv(const xb_irdrop *m, const char *path, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "layer,row_tile,col_tile,row,col,v_drive_V,v_row_node_V,v_col_node_V,v_cell_V,deficit,g_S,i_cell_A,"
                  "i_cell_ideal_A,current_deficit\n");
    for (size_t i = 0; i < m->rows; i++)
        for (size_t j = 0; j < m->cols; j++) {
            size_t k = i * m->cols + j;
            double a = m->v_row_node_V[k], b = m->v_col_node_V[k];
            fprintf(f.fp, "%d,%zu,%zu,%zu,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", m->layer + 1,
                    m->rt, m->ct, i, j, m->v_read_V, a, b, a - b, xb_irdrop_deficit(m, i, j), m->g_S[k],
                    m->i_cell_A[k], m->g_S[k] * m->v_read_V, xb_irdrop_current_deficit(m, i, j));
        }
    return xb_atomic_commit(&f, err);
}
