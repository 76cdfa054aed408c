// mapping: the one home of the weight -> normalized -> conductance -> current -> weight arithmetic
#include "mapping.h"

#include <math.h>

#include <gsl/gsl_cblas.h>

double xb_map_side_factor(const xb_map_options *o) { return o->scheme == XB_MAP_SINGLE_ENDED ? 2.0 : 1.0; }

double xb_map_normalize_weight(const xb_layer_map *L, double w)
{
    return fmin(1.0, fmax(-1.0, L->in_scale * w / L->w_scale));
}

double xb_map_normalize_bias(const xb_layer_map *L, double b)
{
    return fmin(1.0, fmax(-1.0, b / (double)L->n_bias_rows / L->w_scale));
}

double xb_map_cell_G(const xb_map_options *o, int role, double wn)
{
    double gmin = o->g_min_S, dg = o->g_max_S - o->g_min_S, q = role == XB_COL_REF ? 0 : wn, v;
    if (o->scheme == XB_MAP_DIFFERENTIAL)
        v = gmin + (role == XB_COL_POS ? fmax(q, 0) : fmax(-q, 0)) * dg;
    else
        v = (gmin + dg / 2) + q * dg / 2;
    return v > 0 ? v : 0;
}

double xb_map_G_unit(const xb_map_options *o) { return xb_map_side_factor(o) / (o->g_max_S - o->g_min_S); }

double xb_map_weight(const xb_layer_map *L, size_t row, double wn)
{
    return row < L->fan_in ? wn * L->w_scale / L->in_scale : wn * L->w_scale;
}

double xb_map_current_gain(const xb_map_options *o, const xb_layer_map *L)
{
    return L->w_scale / (o->v_read_V * (o->g_max_S - o->g_min_S)) * xb_map_side_factor(o);
}

void xb_tile_currents_ideal(const xb_layer_map *L, const double *G, size_t r0, size_t nr, const double *V,
                            size_t n, double *I)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)L->cols, (int)nr, 1.0, V + r0,
                (int)L->rows, G + r0 * L->cols, (int)L->cols, 0.0, I, (int)L->cols);
}
