// program: write a mapped chip's conductance targets into simulated 1T1R cells, then D2D spread and stuck-at faults
#include "program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "perturb.h"
#include "progress.h"

void xb_program_defaults(const xb_device *dev, xb_program_options *o)
{
    o->method = XB_PROGRAM_IGVVA;
    o->sigma_d2d = dev->sigma_d2d;
    o->p_stuck_lrs = dev->p_stuck_lrs;
    o->p_stuck_hrs = dev->p_stuck_hrs;
    o->circuit = NULL;
}

int xb_program_method_parse(const char *s)
{
    return !strcmp(s, "igvva") ? XB_PROGRAM_IGVVA : !strcmp(s, "exact") ? XB_PROGRAM_EXACT
         : !strcmp(s, "circuit") ? XB_PROGRAM_CIRCUIT : -1;
}


void xb_program_result_free(xb_program_result **r)
{
    if (!r || !*r)
        return;
    free((*r)->cells);
    free((*r)->i_trg_A);
    free((*r)->res);
    free(*r);
    *r = NULL;
}

int xb_chip_program(xb_chip *c, const xb_device *d, const xb_program_options *o, gsl_rng *rng,
                    xb_program_result **out, xb_error *err)
{
    if (out)
        *out = NULL;
    if (o->p_stuck_lrs + o->p_stuck_hrs > 1)
        return xb_fail(err, XB_EINPUT, "stuck-at probabilities %g (LRS) + %g (HRS) exceed 1", o->p_stuck_lrs,
                       o->p_stuck_hrs);
    if (o->method == XB_PROGRAM_CIRCUIT && (!o->circuit || !o->circuit->program))
        return xb_fail(err, XB_EINPUT, "circuit programming needs a cell programmer (src/spice/program_circuit.h)");
    xb_program_result *r = calloc(1, sizeof *r);
    if (!r)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        r->n_cells += c->layers[l].rows * c->layers[l].cols;
    r->cells = malloc(r->n_cells * sizeof *r->cells);
    r->i_trg_A = malloc(r->n_cells * sizeof *r->i_trg_A);
    r->res = calloc(r->n_cells, sizeof *r->res);
    if (!r->cells || !r->i_trg_A || !r->res) {
        size_t cells = r->n_cells;
        xb_program_result_free(&r);
        return xb_fail(err, XB_ENOMEM, "out of memory for %zu cells", cells);
    }

    /* Cells above the HRS need programming; the rest stay RESET at their target. */
    double g_floor = d->g_hrs_S * (1 + 1e-9);
    for (int l = 0; l < c->n_layers; l++) {
        xb_layer_map *L = &c->layers[l];
        memcpy(L->g_S, L->g_target_S, L->rows * L->cols * sizeof *L->g_S);
        for (size_t i = 0; i < L->rows; i++)
            for (size_t col = 0; col < L->cols; col++) {
                double g = L->g_target_S[i * L->cols + col];
                if (g > g_floor) {
                    r->cells[r->n_programmed] = (xb_cell_ref){l, i, col};
                    r->i_trg_A[r->n_programmed++] = g * d->v_read_V;
                }
            }
    }
    size_t n = r->n_programmed;
    double t0 = xb_now();
    int rc = XB_OK;
    if (o->method == XB_PROGRAM_IGVVA) {
        r->grouped = 1;
        rc = xb_igvva_program(d, r->i_trg_A, n, rng, r->res, &r->stats, err);
        if (rc == XB_EINPUT && strstr(err->msg, "distinct")) {
            /* Unquantized targets are all different: program them, skip the per-level statistics. */
            r->grouped = 0;
            rc = xb_igvva_program(d, r->i_trg_A, n, rng, r->res, NULL, err);
        }
        if (rc) {
            xb_program_result_free(&r);
            return rc;
        }
        for (size_t k = 0; k < n; k++) {
            xb_layer_map *L = &c->layers[r->cells[k].layer];
            L->g_S[r->cells[k].row * L->cols + r->cells[k].col] = r->res[k].g_S;
        }
    } else if (o->method == XB_PROGRAM_CIRCUIT) {
        /* The same cells in the same order as the statistical write-verify, through the circuit. */
        if ((rc = o->circuit->program(o->circuit->ctx, d, r->i_trg_A, n, rng, r->res, err))) {
            xb_program_result_free(&r);
            return rc;
        }
        r->grouped = xb_igvva_summarize(r->i_trg_A, r->res, n, &r->stats, NULL) == XB_OK;
        for (size_t k = 0; k < n; k++) {
            xb_layer_map *L = &c->layers[r->cells[k].layer];
            L->g_S[r->cells[k].row * L->cols + r->cells[k].col] = r->res[k].g_S;
        }
    } else {
        for (size_t k = 0; k < n; k++)
            r->res[k] = (xb_igvva_result){.g_S = r->i_trg_A[k] / d->v_read_V, .i_read_A = r->i_trg_A[k]};
        r->grouped = xb_igvva_summarize(r->i_trg_A, r->res, n, &r->stats, NULL) == XB_OK;
    }
    r->seconds = xb_now() - t0;
    for (size_t k = 0; k < n; k++) {
        r->n_failed += r->res[k].status != XB_IGVVA_OK;
        r->n_pulses += (size_t)r->res[k].pulses;
    }
    for (int l = 0; l < c->n_layers; l++) {
        xb_layer_map *L = &c->layers[l];
        size_t cells = L->rows * L->cols, a = 0, b = 0;
        if (o->sigma_d2d > 0)
            xb_perturb_d2d(rng, L->g_S, cells, o->sigma_d2d);
        if ((rc = xb_perturb_stuck_at(rng, L->g_S, cells, o->p_stuck_lrs, d->g_lrs_S, o->p_stuck_hrs, d->g_hrs_S, &a,
                                      &b, err))) {
            xb_program_result_free(&r);
            return rc;
        }
        r->n_stuck_lrs += a;
        r->n_stuck_hrs += b;
    }
    if (out)
        *out = r;
    else
        xb_program_result_free(&r);
    return XB_OK;
}

int xb_program_write_cells_csv(const char *path, const xb_chip *c, const xb_program_result *r, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "layer,row,col,row_tile,col_tile,input,neuron,role,weight_normalized,g_target_S,g_S,"
                  "i_trg_A,i_read_A,pulses,attempts,status\n");
    for (size_t k = 0; k < r->n_programmed; k++) {
        const xb_layer_map *L = &c->layers[r->cells[k].layer];
        size_t row = r->cells[k].row, col = r->cells[k].col;
        int neuron = L->col_neuron[col];
        const char *role = L->col_role[col] == XB_COL_POS ? "+" : L->col_role[col] == XB_COL_NEG ? "-" : "ref";
        char input[32];
        if (row < L->fan_in)
            snprintf(input, sizeof input, "%zu", row);
        else
            snprintf(input, sizeof input, "bias%zu", row - L->fan_in);
        double wn = neuron >= 0 ? L->wn[row * L->fan_out + (size_t)neuron] : 0;
        /* g_S is the cell after programming alone: D2D and stuck-at faults act on the map afterwards. */
        fprintf(f.fp, "%d,%zu,%zu,%zu,%zu,%s,%d,%s,%.17g,%.17g,%.17g,%.17g,%.17g,%d,%d,%s\n", r->cells[k].layer + 1,
                row, col, row / c->opt.tile_rows, col / c->opt.tile_cols, input, neuron, role, wn,
                L->g_target_S[row * L->cols + col], r->res[k].g_S, r->i_trg_A[k], r->res[k].i_read_A, r->res[k].pulses,
                r->res[k].attempts, xb_igvva_status_name(r->res[k].status));
    }
    return xb_atomic_commit(&f, err);
}
