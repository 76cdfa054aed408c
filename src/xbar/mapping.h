// mapping: the one home of the weight -> normalized -> conductance -> current -> weight arithmetic
//
// Every formula that ties a network weight to a cell conductance or a column current lives here, so
// the mapping (chip.c), the digital path (behavioral.c) and the netlist's review comments (netlist.c)
// cannot drift apart. The derivation is at the top of chip.h; in short, for layer L:
//     normalized   wn = in_scale W / w_scale (input rows), b / (r w_scale) (each of r bias rows), in [-1, 1]
//     conductance  differential: G+ = g_min + max(wn, 0) dg, G- = g_min + max(-wn, 0) dg
//                  single-ended: G = g_mid + wn dg / 2, beside a reference column at g_mid
//     current      I_j = sum_i V_i G_ij  (xb_tile_currents_ideal, with ideal wires)
//     weight       z_j = xb_map_current_gain x (I_pos - I_neg or I_col - I_ref)
// with dg = g_max - g_min. The single-ended factor 2 appears once, in xb_map_side_factor.
#ifndef XB_MAPPING_H
#define XB_MAPPING_H

#include <stddef.h>

#include "chip.h"

/* Normalized units of weight per unit of (G_pos - G_neg) / dg: 1 differential, 2 single-ended (a
 * single-ended cell spans only half the range on either side of g_mid). */
double xb_map_side_factor(const xb_map_options *o);

/* Normalized weight of input-row weight w (clipped to [-1, 1]). */
double xb_map_normalize_weight(const xb_layer_map *L, double w);
/* Normalized weight of bias b spread over L->n_bias_rows rows (clipped to [-1, 1]). */
double xb_map_normalize_bias(const xb_layer_map *L, double b);

/* Target conductance (S, >= 0) of a cell of column role role (XB_COL_POS / NEG / REF) for normalized
 * weight wn (ignored for a reference column). */
double xb_map_cell_G(const xb_map_options *o, int role, double wn);

/* Normalized weight per siemens of conductance difference: side_factor / dg. */
double xb_map_G_unit(const xb_map_options *o);

/* Weight in weight units of normalized weight wn on layer row row: an input row's weight is
 * wn w_scale / in_scale; a bias row carries b / r = wn w_scale. */
double xb_map_weight(const xb_layer_map *L, size_t row, double wn);

/* Weight units per ampere of column-current difference: w_scale side_factor / (v_read dg). */
double xb_map_current_gain(const xb_map_options *o, const xb_layer_map *L);

/* THE ideal tile-current routine, I = V.G with ideal wires: I (n x L->cols, row-major, overwritten)
 * receives the column currents of rows [r0, r0 + nr) of layer L with conductances G (L->rows x
 * L->cols) for row voltages V (n x L->rows, volts; only columns r0 .. r0+nr-1 read). Every place that
 * needs I = V.G (the behavioral and ideal backends, the comparison, the worker pool's checks) calls
 * this one routine, so their currents agree to the last bit. */
void xb_tile_currents_ideal(const xb_layer_map *L, const double *G, size_t r0, size_t nr, const double *V,
                            size_t n, double *I);

#endif
