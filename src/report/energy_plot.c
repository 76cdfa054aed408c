// energy_plot: the figure of energy per input per tile (sources split into cells and wires, ADC, DAC)
#include "energy_plot.h"

#include <stdio.h>
#include <stdlib.h>

#include "plot.h"

int xb_energy_plot(const xb_energy *e, const char *dir, const char *name, int render, xb_error *err)
{
    size_t n = e->n_tiles;
    if (!n)
        return xb_fail(err, XB_EINPUT, "no tile energies to plot");
    xb_figure *f = xb_figure_new(name, "energy per input per tile", "tile", "energy per input (J)");
    double *x = malloc(n * sizeof *x), *y = malloc(5 * n * sizeof *y);
    char (*lab)[48] = malloc(n * sizeof *lab);
    const char **labels = malloc(n * sizeof *labels);
    int rc = XB_OK;
    if (!f || !x || !y || !lab || !labels)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for the energy figure");
    for (size_t k = 0; k < n && !rc; k++) {
        const xb_tile_energy *t = &e->tiles[k];
        snprintf(lab[k], sizeof lab[k], "L%d T%zu,%zu", t->layer + 1, t->rt, t->ct);
        labels[k] = lab[k];
        x[k] = (double)k;
        y[k] = t->e_cell_J;
        y[n + k] = t->e_wire_J;
        y[2 * n + k] = t->e_adc_J;
        y[3 * n + k] = t->e_dac_J;
        y[4 * n + k] = xb_energy_tile_total_J(t);
    }
    static const char *const series[5] = {"cells", "wires", "ADC", "DAC", "total (sources + ADC + DAC)"};
    if (!rc) {
        xb_figure_log_axes(f, 0, 1);
        rc = xb_figure_x_categories(f, labels, n);
        if (rc)
            xb_fail(err, rc, "the energy figure's tile labels");
    }
    for (int s = 0; s < 5 && !rc; s++)
        rc = xb_figure_add(f, series[s], XB_PLOT_ERRORLINES, x, y + (size_t)s * n, NULL, NULL, n);
    if (!rc)
        rc = xb_figure_write(f, dir, render, err);
    xb_figure_free(&f);
    free(x), free(y), free(lab), free(labels);
    return rc;
}
