// program_out: `xbarsim program` after its options: program a built chip and write its results folder
#ifndef XB_PROGRAM_OUT_H
#define XB_PROGRAM_OUT_H

#include <gsl/gsl_rng.h>

#include "calib.h"
#include "chip.h"
#include "circuit_fit.h"
#include "device.h"
#include "error.h"
#include "json.h"
#include "program.h"
#include "provenance.h"

/* What was asked, as given: the texts go into program.json. Strings are borrowed for the call. */
typedef struct xb_program_spec {
    const char *weights;                      /* the weights file, recorded in the provenance */
    const char *device;                       /* the device file, recorded in the provenance */
    const char *method;                       /* igvva | exact */
    const char *levels;                       /* the level sets used (xb_chip_build's text) */
    const char *norm, *mapping, *bias, *tile; /* the chip options as given */
    double sigma_d2d, p_stuck_lrs, p_stuck_hrs; /* < 0: the device file's */
    unsigned long seed;                       /* said in the progress line; rng must be seeded with it */
    int quiet;                                /* no progress line on stderr */
    const char *calib;                        /* measured read currents (calib.h) replacing the model's
                                                 spread of each level's final read (NULL: none) */
    const char *calib_model;                  /* empirical | normal | lognormal (NULL: empirical) */
} xb_program_spec;

/* Program chip (built, g_S = targets) with dev's write-verify and the spec's faults, drawing from rng,
 * then write under the existing folder out: chip.npz, tiles.csv, cells.csv, cdf.csv (when the targets
 * fall on levels), pulses.csv, the figures cdf-plot and pulses-plot (pictures only with gnuplot; a
 * missing or failing gnuplot is said once on stderr) and program.json (prov, which gains the weights
 * and device inputs, the spec and the statistics). *pr receives the result (caller frees it with
 * xb_program_result_free, also after a failure) and *po the options used. With s->calib: the IGVVA
 * reads of the levels it measures are drawn from it, and calib_fit.csv, calib_cdf.csv, the figure
 * calib-plot (measured against programmed CDFs per level) and calib.json (the fits) are written. */
int xb_program_run_spec(const xb_program_spec *s, xb_chip *chip, const xb_device *dev, gsl_rng *rng,
                        xb_provenance *prov, const char *out, xb_program_options *po, xb_program_result **pr,
                        xb_error *err);

/* The results files of one programmed chip under out (the second half of xb_program_run_spec). */
int xb_program_write_results(const char *out, const xb_program_spec *s, const xb_chip *chip, const xb_device *dev,
                             const xb_program_options *po, const xb_program_result *pr, const xb_provenance *prov,
                             xb_error *err);

/* After `program --method circuit --calib-reads`: the spread fit's report under out. calib_spread.csv (one
 * row per candidate and calibrated level: the sigmas, the level, its target, cells measured, modelled and
 * failed, mean and sd of both, KS D and p, the candidate's mean D, 1 on the chosen candidate's rows), the
 * figure calib-spread-plot (mean KS D against the candidate; pictures only with gnuplot, a failure said on
 * stderr as the other figures), and calib_fit.csv, calib_cdf.csv, calib-plot and calib.json as with the
 * statistical method, with the fit's modelled cells at the fitted sigmas in place of the programmed ones
 * and the fit in calib.json's "spread_fit". */
int xb_program_write_spread_fit(const char *out, const xb_calib *cal, const xb_device *dev,
                                const xb_circuit_fit_result *fit, xb_error *err);

/* The "spread_fit" object (the same as calib.json's) into an open JSON object, for circuit.json. */
void xb_program_json_spread_fit(xb_json *j, const xb_circuit_fit_result *fit);

#endif
