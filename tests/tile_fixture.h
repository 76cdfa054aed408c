// tile_fixture: the one-tile chip the circuit tests solve (test_spice, test_energy, test_newton)
#ifndef XB_TILE_FIXTURE_H
#define XB_TILE_FIXTURE_H

#include <string.h>

#include "chip.h"
#include "mlp.h"

/* A chip of one R x C tile (digital bias, differential columns) with conductances g[R * C] (NULL: those
 * of the mapped weights, all 0.1, for the caller to set). */
static inline xb_chip *make_tile(size_t R, size_t C, const double *g)
{
    size_t sizes[2] = {R, C / 2};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    for (size_t i = 0; i < R * C / 2; i++)
        m->W[0][i] = 0.1;
    xb_map_options o;
    xb_map_defaults(&o);
    o.bias = XB_BIAS_DIGITAL;
    o.tile_rows = R;
    o.tile_cols = C;
    xb_chip *c = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, NULL);
    xb_mlp_free(&m);
    if (g)
        memcpy(c->layers[0].g_S, g, R * C * sizeof *g);
    return c;
}

#endif
