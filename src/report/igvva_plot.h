// igvva_plot: figures of programming results (IGVVA outcomes of src/device/igvva.h) through plot.h
#ifndef XB_IGVVA_PLOT_H
#define XB_IGVVA_PLOT_H

#include <stddef.h>

#include "error.h"
#include "igvva.h"

/* Each writes DIR/NAME.csv (the figure's data), DIR/NAME.gp and, when render is 1, DIR/NAME.svg and
 * DIR/NAME.png (plot.h: pictures renamed into place only when complete). Inputs are not modified.
 * CDF: one step series per distinct target (at most XB_IGVVA_MAX_GROUPS, else XB_EINPUT), labelled
 * with the target in uA and its cell count; x is the final verify read in uA, y the fraction of the
 * level's cells at or below it (a leading (first read, 0) point draws the first step). */
int xb_plot_igvva_cdf(const char *dir, const char *name, const double *i_trg_A, const xb_igvva_result *res,
                      size_t n, int render, xb_error *err);
/* The CDFs of two programmings of the same cells (the statistical and the circuit write-verify): per level
 * the series of res_a (labelled label_a) and, in its colour and dashed, the series of res_b. */
int xb_plot_igvva_cdf_compare(const char *dir, const char *name, const double *i_trg_A, const xb_igvva_result *res_a,
                              const char *label_a, const xb_igvva_result *res_b, const char *label_b, size_t n,
                              int render, xb_error *err);
/* Pulses: one step outline over all cells, bin k (k pulses) drawn from k - 0.5 to k + 0.5 at its count. */
int xb_plot_igvva_pulses(const char *dir, const char *name, const xb_igvva_result *res, size_t n, int render,
                         xb_error *err);

#endif
