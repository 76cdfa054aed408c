// example: a run's example folder: one tile's netlist, the programmed-current CDF, the circuit's pictures
#include "run_private.h"

#include <stdio.h>
#include <stdlib.h>

#include "compare.h"
#include "energy_plot.h"
#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "netlist.h"
#include "plot.h"

static int join_path(char *buf, size_t len, const char *dir, const char *name, xb_error *err)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len)
        return xb_fail(err, XB_EINPUT, "%s/%s: path too long", dir, name);
    return XB_OK;
}

int xb_run_example_programming(run_ctx *r, const xb_program_result *pr, const xb_chip *chip, xb_error *err)
{
    /* The writers create the folders they write into. */
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    int rc = join_path(path, sizeof path, dir, "cells.csv", err);
    if (!rc)
        rc = xb_program_write_cells_csv(path, chip, pr, err);
    if (!rc && (rc = join_path(path, sizeof path, dir, "pulses.csv", err)) == XB_OK)
        rc = xb_igvva_write_pulse_hist_csv(path, pr->res, pr->n_programmed, err);
    if (rc || !pr->grouped)
        return rc;
    if ((rc = join_path(path, sizeof path, dir, "cdf.csv", err)) ||
        (rc = xb_igvva_write_cdf_csv(path, pr->i_trg_A, pr->res, pr->n_programmed, err)))
        return rc;
    /* The picture device engineers know: per level, the CDF of the final verify reads. */
    snprintf(dir, sizeof dir, "%s/example/plots", r->out);
    return xb_plot_igvva_cdf(dir, "cdf-read-currents", pr->i_trg_A, pr->res, pr->n_programmed, r->render, err);
}

int xb_run_example_circuit(run_ctx *r, const xb_circuit *circ, xb_error *err)
{
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    int rc = join_path(path, sizeof path, dir, "tile_errors.csv", err);
    if (!rc)
        rc = xb_compare_write_csv(&circ->cc, path, err);
    if (!rc && !(rc = join_path(path, sizeof path, dir, "currents.csv", err)))
        rc = xb_compare_write_samples_csv(&circ->cc, path, err);
    if (rc)
        return rc;
    size_t n = circ->cc.n_samples;
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y);
    xb_figure *fig = xb_figure_new("currents-circuit-vs-behavioral", "Column currents: circuit (ngspice) against "
                                   "behavioral (ideal wires)", "behavioral column current (uA)",
                                   "circuit column current (uA)");
    if (!x || !y || !fig)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (int l = 0; !rc && l < r->chip->n_layers; l++) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (circ->cc.samples[k].layer == l) {
                x[m] = circ->cc.samples[k].i_model_A * 1e6;
                y[m++] = circ->cc.samples[k].i_spice_A * 1e6;
            }
        char label[32];
        snprintf(label, sizeof label, "layer %d", l + 1);
        if (m)
            rc = xb_figure_add(fig, label, XB_PLOT_POINTS, x, y, NULL, NULL, m);
    }
    char plots[4400];
    snprintf(plots, sizeof plots, "%s/example/plots", r->out);
    if (!rc) {
        xb_figure_diagonal(fig);
        rc = xb_figure_write(fig, plots, r->render, err);
    }
    free(x);
    free(y);
    xb_figure_free(&fig);
    if (rc)
        return rc;
    xb_irdrop ir;
    if ((rc = xb_circuit_irdrop(circ, &ir, err)))
        return rc;
    if (!(rc = join_path(path, sizeof path, dir, "ir_drop.csv", err)))
        rc = xb_irdrop_write_csv(&ir, path, err);
    double *z = malloc(ir.rows * ir.cols * sizeof *z);
    if (!rc && !z)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < ir.rows; i++)
        for (size_t j = 0; j < ir.cols; j++)
            z[i * ir.cols + j] = xb_irdrop_current_deficit(&ir, i, j);
    char title[160];
    snprintf(title, sizeof title, "IR drop: layer %d, tile (%zu, %zu), every row at %.3g V", ir.layer + 1, ir.rt, ir.ct,
             ir.v_read_V);
    if (!rc)
        rc = xb_heatmap_write(plots, "ir-drop", title, "column", "row",
                              "cell current lost to IR drop (fraction of ideal wires)", z, ir.rows, ir.cols, r->render,
                              err);
    free(z);
    xb_irdrop_free(&ir);
    return rc;
}

int xb_run_example_netlist(run_ctx *r, const xb_tb_config *c, const xb_chip *chip, const xb_behav *bm,
                           const xb_dataset *test, xb_error *err)
{
    const xb_tb_output *e = r->example;
    int l = e ? (int)e->layer - 1 : 0;
    size_t rt = e ? e->row_tile : 0, ct = e ? e->col_tile : 0, input = e ? e->input : 0;
    /* plan() checked the layer; the tiles and images are known only now. */
    const xb_layer_map *L = &chip->layers[l];
    if (rt >= L->n_row_tiles || ct >= L->n_col_tiles || input >= test->n)
        return xb_fail(err, XB_EINPUT, "%s:%d: element <example>: tile (%zu, %zu) of layer %d, test image %zu: layer %d "
                       "has %zu x %zu tiles (row tiles 0..%zu, column tiles 0..%zu) and there are %zu test images",
                       xb_tb_path(r->tb), e ? e->line : 1, rt, ct, l + 1, input, l + 1, L->n_row_tiles, L->n_col_tiles,
                       L->n_row_tiles - 1, L->n_col_tiles - 1, test->n);
    size_t P = xb_layer_patches(L); /* a conv layer's deck sweeps the image's patches */
    double *V = malloc(P * L->rows * sizeof *V);
    if (!V)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    char dir[4300], path[4400], note[512];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    snprintf(path, sizeof path, "%s/L%d_T%zu_%zu.cir", dir, l + 1, rt, ct);
    snprintf(note, sizeof note, "xbarsim run %s: point %zu, test image %zu", xb_tb_path(r->tb), r->example_point + 1,
             input);
    int rc = xb_behav_layer_rows((xb_behav *)bm, l, test->x + input * test->dim, 1, NULL, V, err);
    if (!rc)
        rc = xb_netlist_write_file(path, chip, l, rt, ct, &r->dev, &c->pool.net, V, P, note, err);
    free(V);
    return rc;
}

int xb_run_write_energy(run_ctx *r, size_t k, int is_example, const xb_energy *e, xb_error *err)
{
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/energy", r->out);
    int rc = xb_mkdir_p(dir, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/point-%zu.csv", dir, k + 1);
        rc = xb_energy_write_csv(e, path, err);
    }
    if (rc || !is_example)
        return rc;
    /* The example point's figure of energy per input per tile. */
    snprintf(dir, sizeof dir, "%s/example/plots", r->out);
    if ((rc = xb_mkdir_p(dir, err)))
        return rc;
    xb_error perr = {0};
    return xb_plot_tolerate(xb_energy_plot(e, dir, "energy-per-tile", r->render, &perr), r->render, &perr, "xbarsim run",
                            "energy-per-tile", dir, err);
}
