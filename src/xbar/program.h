// program: write a mapped chip's conductance targets into simulated 1T1R cells, then D2D spread and stuck-at faults
#ifndef XB_PROGRAM_H
#define XB_PROGRAM_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "chip.h"
#include "device.h"
#include "igvva.h"

typedef enum { XB_PROGRAM_IGVVA = 0, XB_PROGRAM_EXACT = 1, XB_PROGRAM_CIRCUIT = 2 } xb_program_method;

/* Who programs the cells of XB_PROGRAM_CIRCUIT: a strategy from a higher layer (src/spice/program_circuit.h
 * publishes the circuit transient one). program: cells i_trg_A[n] in order, into out[n], drawing from rng;
 * an xb_igvva_result each, as xb_igvva_program fills them. ctx is the strategy's, borrowed. */
typedef struct xb_cell_programmer {
    const char *name;
    int (*program)(void *ctx, const xb_device *d, const double *i_trg_A, size_t n, gsl_rng *rng,
                   xb_igvva_result *out, xb_error *err);
    void *ctx;
} xb_cell_programmer;

typedef struct xb_program_options {
    xb_program_method method; /* IGVVA write-verify (statistical or circuit), or every cell exactly at its target */
    double sigma_d2d;         /* relative device-to-device spread applied after programming */
    double p_stuck_lrs;       /* probability of a cell stuck at LRS (g = the device's g_lrs_S) */
    double p_stuck_hrs;       /* probability of a cell stuck at HRS (g = g_hrs_S) */
    const xb_cell_programmer *circuit; /* XB_PROGRAM_CIRCUIT: the programmer (NULL: refused as XB_EINPUT) */
} xb_program_options;

/* IGVVA, and the device file's D2D spread and stuck-at rates. */
void xb_program_defaults(const xb_device *dev, xb_program_options *o);

/* "igvva" / "exact" / "circuit" -> method; -1 if unknown. */
int xb_program_method_parse(const char *s);

/* Where a programmed cell sits. */
typedef struct xb_cell_ref {
    int layer;
    size_t row, col;
} xb_cell_ref;

/* What programming did. Cells whose target is the HRS stay RESET and take no pulse; the arrays hold
 * the others, in layer / row / column order. */
typedef struct xb_program_result {
    size_t n_cells;        /* every cell of the chip */
    size_t n_programmed;   /* cells above the HRS */
    xb_cell_ref *cells;    /* n_programmed */
    double *i_trg_A;       /* n_programmed read-current targets */
    xb_igvva_result *res;  /* n_programmed outcomes (exact programming: on target, 0 pulses) */
    int grouped;           /* 1: targets fall on at most XB_IGVVA_MAX_GROUPS levels and stats holds them */
    xb_igvva_stats stats;
    size_t n_failed, n_pulses, n_stuck_lrs, n_stuck_hrs;
    double seconds;        /* programming alone */
} xb_program_result;

/* Program chip c (its g_S is overwritten from g_target_S) with the device d. Draws, in this order,
 * from rng: the IGVVA pulses cell by cell, then per layer the D2D spread and the stuck-at faults.
 *   out (may be NULL): a new result the caller frees with xb_program_result_free.
 * XB_EINPUT for stuck-at probabilities above 1 together; XB_ENOMEM. */
int xb_chip_program(xb_chip *c, const xb_device *d, const xb_program_options *o, gsl_rng *rng,
                    xb_program_result **out, xb_error *err);
void xb_program_result_free(xb_program_result **r);

/* Per-cell CSV: layer,row,col,row_tile,col_tile,input,neuron,role,weight_normalized,g_target_S,g_S,
 * i_trg_A,i_read_A,pulses,attempts,status (one row per programmed cell). Written atomically. */
int xb_program_write_cells_csv(const char *path, const xb_chip *c, const xb_program_result *r, xb_error *err);

#endif
