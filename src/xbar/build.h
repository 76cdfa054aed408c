// build: one chip from a specification (normalization, level sets per layer, mapping, tiles), shared by every command and testbench
//
// Every caller that puts a network on a chip fills an xb_chip_spec, through the one parser per option
// below (the CLI's --norm, --mapping, --bias, --tile and a testbench's <chip> attributes read the same
// way), and calls xb_chip_build. A trial's chip (programming, then the perturbation models) comes from
// xb_chip_build_trial. The device is loaded by the caller (a testbench applies its overrides first).
#ifndef XB_BUILD_H
#define XB_BUILD_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "chip.h"
#include "device.h"
#include "error.h"
#include "mc.h"
#include "mlp.h"
#include "program.h"
#include "quant.h"

typedef struct xb_chip_spec {
    char levels[2048];            /* level-set spec: one for all layers or '/'-separated per layer */
    xb_norm norm;                 /* maxabs or clip:C (never none: a chip's weights are normalized) */
    xb_map_scheme scheme;         /* differential pairs or single-ended against a reference column */
    xb_bias_mode bias;            /* bias rows at the read voltage, or added digitally */
    size_t tile_rows, tile_cols;  /* 64 x 64 default */
    size_t calib;                 /* calibration images (ReLU input ranges, the ADC); 256 default */
} xb_chip_spec;

void xb_chip_spec_defaults(xb_chip_spec *s);

/* One parser per option. Each returns XB_EINPUT with a message saying what is allowed (the caller
 * prefixes where the value came from) and leaves s unchanged on a bad value. */
int xb_chip_spec_set_levels(xb_chip_spec *s, const char *text, xb_error *err);
int xb_chip_spec_set_norm(xb_chip_spec *s, const char *text, xb_error *err);   /* maxabs | clip:C, C > 0 */
int xb_chip_spec_set_mapping(xb_chip_spec *s, const char *text, xb_error *err); /* differential | single-ended */
int xb_chip_spec_set_bias(xb_chip_spec *s, const char *text, xb_error *err);    /* row | digital */
int xb_chip_spec_set_tile(xb_chip_spec *s, const char *text, xb_error *err);    /* RxC, at least 1x2 */

/* Whether mapping m needs calibration inputs (a ReLU hidden layer: its input range is measured). */
int xb_chip_spec_needs_calib(const xb_mlp *m);

/* Map m onto tiles of dev's conductance range as s says and quantize it onto the level sets: the chip
 * before programming (g_S = the targets). cal_x (cal_n x m->sizes[0], may be NULL when no layer needs
 * it) sets the ReLU layers' input ranges. *chip receives a new chip the caller frees (NULL on failure);
 * levels_used (may be NULL) the canonical level-set names. XB_EINPUT for a spec that does not fit m (a
 * bad level-set spec: the message starts "levels (device: ...)"). */
int xb_chip_build(const xb_chip_spec *s, const xb_device *dev, const xb_mlp *m, const double *cal_x,
                  size_t cal_n, xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err);

/* One trial's chip. prog (in/out, a clone of the built chip) is programmed afresh from its targets with
 * po (NULL: exactly at the targets), then out (same shape) receives prog with the perturbation models lp
 * drawn from rng (bo's sigma_out set by additive models, as xb_mc_perturb_chip does). *result (may be
 * NULL) receives the programming outcome when po is given, which the caller frees. */
int xb_chip_build_trial(xb_chip *prog, const xb_device *dev, const xb_program_options *po,
                        const xb_layer_perturb *lp, int n_lp, gsl_rng *rng, xb_chip *out, xb_behav_options *bo,
                        xb_program_result **result, xb_error *err);

#endif
