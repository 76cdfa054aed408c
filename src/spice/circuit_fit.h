// circuit_fit: fit the compact model's spread (sigma_ea_eV, sigma_read) to measured read currents per level
//
// The measured currents are a calibration (src/device/calib.h): per level, the reads of an array's cells
// after programming. For each candidate (sigma_ea_eV, sigma_read) of the grids given (outer loop
// sigma_ea_eV ascending, inner sigma_read ascending), cells_per_level cells of every calibrated level are
// programmed by circuit IGVVA (src/spice/program_circuit.h) with a copy of the device whose two sigmas are
// the candidate's, and each programmed cell is then read once more, as a measurement reads it:
//   i_model = g_S v_read (1 + sigma_read z)     (g_S: the state programming left, noise-free)
// Common random numbers: cell j of the fit has its own generator, seeded with the same value for every
// candidate (drawn from seed once), and its own standard normal z for that last read; so candidates differ
// by their sigmas, not by their draws, up to where a cell's write-verify path branches. The score of a
// candidate is the mean over calibrated levels of the two-sample KS D between the measured and the modelled
// currents (calib.h's xb_ks_two_sample; p from xb_ks_pvalue with ne = n m / (n + m)). The best candidate has
// the smallest mean D; ties (within 1e-12) go to the earlier one (the smaller sigma_ea_eV, then the smaller
// sigma_read). With one of the grids a single value, the parabola through the best point and its two
// neighbours gives a refined value of the other when the best is inside the grid, the parabola opens
// upwards and its vertex lies between the neighbours (else NaN); it is reported, not programmed: the chip
// is programmed with a candidate that was simulated.
// libngspice is one per process: the fit opens its own xb_circuit_prog for each candidate and closes it,
// so the caller must hold none during the call. The caller's device is not modified.
#ifndef XB_CIRCUIT_FIT_H
#define XB_CIRCUIT_FIT_H

#include <stddef.h>

#include "calib.h"
#include "device.h"
#include "error.h"

#define XB_CIRCUIT_FIT_MAX_GRID 64         /* values per grid */
#define XB_CIRCUIT_FIT_MAX_CELLS 4096      /* cells per calibrated level */
#define XB_CIRCUIT_FIT_MAX_SIGMA_EA 1.0    /* eV, as the device file allows */
#define XB_CIRCUIT_FIT_MAX_SIGMA_READ 10.0 /* as the device file allows */

typedef struct xb_circuit_fit_options {
    const double *grid_ea;   /* sigma_ea_eV candidates (NULL or n_ea 0: the device's value alone) */
    int n_ea;
    const double *grid_read; /* sigma_read candidates (NULL or n_read 0: the device's value alone) */
    int n_read;
    int cells_per_level;     /* cells programmed per calibrated level and candidate, >= 2 */
    unsigned long seed;      /* of every draw of the fit */
    const char *log_path;    /* ngspice's output (appended), NULL discards it */
    int progress;            /* a line on stderr per candidate */
} xb_circuit_fit_options;

/* One calibrated level under one candidate. */
typedef struct xb_circuit_fit_level {
    int level;                  /* index into the device's targets */
    double i_trg_A;
    size_t n_measured, n_modelled, n_failed; /* n_failed: modelled cells whose write-verify did not land */
    double mean_measured_A, sd_measured_A;   /* sd with divisor n, as calib.h */
    double mean_modelled_A, sd_modelled_A;
    double ks_d, ks_p;
} xb_circuit_fit_level;

typedef struct xb_circuit_fit_candidate {
    double sigma_ea_eV, sigma_read;
    double mean_ks_d;                        /* over the calibrated levels */
    double seconds;
    long pulses;                             /* SET pulses of its cells */
    xb_circuit_fit_level level[XB_CALIB_MAX_LEVELS]; /* n_levels of them, ascending level */
    double *i_model_A;                       /* n_levels x cells_per_level modelled reads, each level ascending */
} xb_circuit_fit_candidate;

typedef struct xb_circuit_fit_result {
    int n_levels;                            /* calibrated levels */
    int cells_per_level;
    unsigned long seed;
    int n_candidates;
    xb_circuit_fit_candidate *cand;          /* n_candidates, in grid order */
    int best;                                /* index of the chosen candidate */
    double sigma_ea_eV, sigma_read;          /* its sigmas: the fitted values */
    const char *refined_param;               /* "sigma_ea_eV", "sigma_read" or NULL (both grids varied) */
    double refined;                          /* the parabola's vertex, or NaN (see above) */
    double seconds;
} xb_circuit_fit_result;

/* Check the options against dev and cal; XB_EINPUT naming the option (opt_ea, opt_read, opt_cells: the
 * names the caller's user knows them by) and what is allowed: grid values finite, within [0, max],
 * strictly ascending, at most XB_CIRCUIT_FIT_MAX_GRID; cells 2 to XB_CIRCUIT_FIT_MAX_CELLS; a calibration
 * with at least one level. */
int xb_circuit_fit_check(const xb_device *dev, const xb_calib *cal, const xb_circuit_fit_options *o,
                         const char *opt_ea, const char *opt_read, const char *opt_cells, xb_error *err);

/* Run the fit (above). inputs, not modified: dev, cal, o. *r is filled (free it with
 * xb_circuit_fit_result_free, also after a failure). XB_EINPUT as xb_circuit_fit_check (with the option
 * names "sigma_ea_eV grid", "sigma_read grid", "cells per level") or from the device's model files;
 * XB_ERUNTIME when ngspice fails; XB_ENOMEM. */
int xb_circuit_fit_spread(const xb_device *dev, const xb_calib *cal, const xb_circuit_fit_options *o,
                          xb_circuit_fit_result *r, xb_error *err);
void xb_circuit_fit_result_free(xb_circuit_fit_result *r);

/* The modelled reads of candidate k at its j-th calibrated level (cells_per_level of them, ascending). */
const double *xb_circuit_fit_reads(const xb_circuit_fit_result *r, int k, int j);

/* Parse a comma-separated list of numbers into v (at most cap): XB_EINPUT naming opt and what is allowed
 * (numbers finite, in [lo, hi], strictly ascending, at most cap). */
int xb_circuit_fit_parse_grid(const char *opt, const char *s, double lo, double hi, double *v, int cap, int *n,
                              xb_error *err);

#endif
