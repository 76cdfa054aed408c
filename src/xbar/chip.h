// chip: a network mapped onto crossbar tiles: normalized weights, conductances, tile map, map files
//
// A layer computes z = x W + b. The crossbar sees x' = x / in_scale in [0, 1] as row voltages
// x' * v_read, and bias rows driven at v_read. Its normalized weight matrix is
//     Wn = [in_scale * W ; b / r ; ... ; b / r] / w_scale      (r bias rows, entries in [-1, 1])
// with w_scale = max |in_scale * W| (or a clipping range), so that z = w_scale * (x'_aug . Wn).
// Differential mapping: Wn_ij = (G+ - G-) / (g_max - g_min), G+ and G- on adjacent columns, the
// unused side of the pair at g_min. Single-ended: G = g_mid + Wn_ij (g_max - g_min) / 2 with one
// reference column of g_mid cells per column tile; the output is I_col - I_ref.
// Column currents back to weight units: z_j = w_scale / (v_read (g_max - g_min)) * dI_j (x2 single-ended).
#ifndef XB_CHIP_H
#define XB_CHIP_H

#include <stddef.h>

#include "error.h"
#include "mlp.h"

typedef enum { XB_MAP_DIFFERENTIAL = 0, XB_MAP_SINGLE_ENDED = 1 } xb_map_scheme;
typedef enum { XB_BIAS_ROW = 0, XB_BIAS_DIGITAL = 1 } xb_bias_mode;

typedef struct xb_map_options {
    xb_map_scheme scheme;
    xb_bias_mode bias;
    size_t tile_rows, tile_cols; /* 64 x 64 default (the 4-kbit array) */
    double clip;                 /* > 0: clip in_scale*W to [-clip*in_scale, clip*in_scale]; 0: max-abs */
    double v_read_V;
    double g_min_S, g_max_S;     /* conductance range of the mapping */
    double g_lrs_S, g_hrs_S;     /* the device's LRS / HRS conductances: where stuck-at cells sit (NaN:
                                    unknown, from a map of format 1) */
    char range_source[4096];     /* the file the range came from, for messages ("" when set by hand) */
} xb_map_options;

void xb_map_defaults(xb_map_options *o);

/* The device's read voltage, its conductance range (the HRS to the top level target) and its LRS and
 * HRS conductances (g_lrs_S, g_hrs_S: the values of stuck-at cells). */
struct xb_device;
void xb_map_options_from_device(xb_map_options *o, const struct xb_device *d);

/* A network is a list of layers; a layer is an optional digital pre-step, one weight matrix mapped onto
 * tiles, and a digital post-step. The digital path (behavioral.c) runs every layer as
 *     pre-step -> DAC -> tile currents (any backend, backend.h) -> ADC -> pair subtraction, scaling -> post-step
 * and the backends see only row voltages and tile currents, so a new layer type adds a pre- or
 * post-step kind here and its case in behavioral.c (layer_pre / layer_post) without touching them. */
typedef enum {
    XB_PRE_NONE = 0,  /* dense: the layer's inputs drive its rows as they are */
    XB_PRE_IM2COL = 1 /* convolutional: each input becomes its out_h out_w patches, one row vector each
                         (xb_conv_im2col); the programmed tiles serve every patch */
} xb_pre_step;
typedef enum {
    XB_POST_ACTIVATION = 0,     /* apply act to every output */
    XB_POST_ACTIVATION_POOL = 1 /* convolutional: act on every patch's outputs, then the layer's pooling,
                                   giving each input's pool_h pool_w out_c values */
} xb_post_step;

/* Column roles. */
enum { XB_COL_REF = 0, XB_COL_POS = 1, XB_COL_NEG = -1 };

typedef struct xb_layer_map {
    size_t fan_in, fan_out;
    size_t n_bias_rows;      /* 0 with digital bias */
    size_t rows, cols;       /* crossbar rows (fan_in + n_bias_rows) and physical columns */
    xb_pre_step pre;         /* digital step before the DAC (XB_PRE_NONE for dense layers) */
    xb_post_step post;       /* digital step after scaling (XB_POST_ACTIVATION: act) */
    xb_activation act;       /* the post-step's activation */
    double in_scale;         /* activation value that maps to v_read */
    double w_scale;          /* weight units per normalized unit */
    double *wn;              /* rows x fan_out normalized weights (quantized / perturbed in place) */
    double *bias;            /* fan_out digital biases (zeros with bias rows) */
    double *g_target_S;      /* rows x cols conductances the mapping asks for */
    double *g_S;             /* rows x cols conductances in the cells (programmed, perturbed) */
    int *col_neuron;         /* cols: output neuron of each column (-1: reference) */
    signed char *col_role;   /* cols: XB_COL_POS, XB_COL_NEG or XB_COL_REF */
    size_t *col_ref;         /* cols: index of the reference column of this column's tile (single-ended) */
    size_t n_row_tiles, n_col_tiles;
    xb_conv conv;            /* a convolutional layer's geometry (conv.k 0: dense) */
} xb_layer_map;

/* Values one network input gives layer L (its input grid for a conv layer), row vectors (patches) it
 * drives per network input, and values it hands the next layer per network input. */
static inline size_t xb_layer_in_values(const xb_layer_map *L)
{
    return L->conv.k ? L->conv.in_h * L->conv.in_w * L->conv.in_c : L->fan_in;
}
static inline size_t xb_layer_patches(const xb_layer_map *L) { return L->conv.k ? L->conv.out_h * L->conv.out_w : 1; }
static inline size_t xb_layer_out_values(const xb_layer_map *L)
{
    return L->conv.k ? L->conv.pool_h * L->conv.pool_w * L->conv.out_c : L->fan_out;
}

typedef struct xb_chip {
    int n_layers;
    xb_map_options opt;
    xb_layer_map *layers;
} xb_chip;

/* Plan the mapping of m: scales, bias rows, normalized weights, column layout; g_target_S and g_S are
 * set from the normalized weights (call xb_chip_update_targets after changing wn).
 * calib (n_calib x sizes[0], may be NULL) sets in_scale of layers after ReLU (max activation seen);
 * sigmoid and input layers use 1. */
int xb_chip_map(const xb_mlp *m, const xb_map_options *o, const double *calib, size_t n_calib,
                xb_chip **out, xb_error *err);
void xb_chip_free(xb_chip **c);
xb_chip *xb_chip_clone(const xb_chip *c);

/* Quantize each layer's normalized weights onto its level set (ls[l]; NULL or a "none" set leaves the
 * layer as it is), then recompute the targets. Levels are in normalized units: [-1, 1] is the mapping's
 * full conductance range. An "abits:B" set (XB_LEVELS_AFFINE, unmaterialized) gets its levels from each
 * layer's own normalized weights (xb_levelset_affine_materialize); when its outermost level falls
 * beyond [-1, 1] (by < scale/2, from the rounded zero point) that layer's wn is divided and its
 * w_scale multiplied by max |wn|, so the quantized weights keep their values in weight units. */
struct xb_levelset;
int xb_chip_quantize(xb_chip *c, const struct xb_levelset *const *ls, xb_error *err);

/* Level sets per layer from spec: one set for every layer, or one per layer separated by '/'
 * ("bits:8/bits:4"). Each is a xb_levelset_parse spec or "device": the device's own differential-pair
 * levels, {+-(G_l - G_hrs)} over its targets (d may be NULL when no layer asks for it).
 * ls[n_layers] receive new sets the caller frees one by one; used (may be NULL) receives the canonical
 * names joined by '/' (one name when one set serves every layer). */
int xb_levelsets_parse(const char *spec, int n_layers, const struct xb_device *d, struct xb_levelset **ls,
                       char *used, size_t used_len, xb_error *err);

/* Recompute g_target_S from wn and copy it into g_S (an exact programming). */
void xb_chip_update_targets(xb_chip *c);

/* The network the chip's normalized weights represent (for checks: equals m up to quantization). */
xb_mlp *xb_chip_effective_mlp(const xb_chip *c, int use_programmed_g);

/* The chip as bytes and back, for a process that shares none of this one's memory (an MPI rank running
 * the same build): xb_chip_unpack returns NULL for a short or garbled buffer, or without memory. */
struct xb_pack;
struct xb_unpack;
void xb_chip_pack(const xb_chip *c, struct xb_pack *p);
xb_chip *xb_chip_unpack(struct xb_unpack *u);
/* Tile (row tile rt, column tile ct) of layer l: rows [r0, r0+nr), columns [c0, c0+nc). */
void xb_chip_tile_bounds(const xb_chip *c, int l, size_t rt, size_t ct, size_t *r0, size_t *nr, size_t *c0,
                         size_t *nc);

/* Conductance map files (.npz, see docs/conductance-map.md). */
int xb_chip_save(const xb_chip *c, const char *path, xb_error *err);
int xb_chip_load(const char *path, xb_chip **out, xb_error *err);

/* Tile map CSV: one row per tile: which layer, rows and columns it holds. */
int xb_chip_write_tile_map(const xb_chip *c, const char *path, xb_error *err);

#endif
