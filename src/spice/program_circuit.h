// program_circuit: IGVVA write-verify as ngspice transients of the 1T1R cell with the gap compact model
//
// One cell deck is loaded once into this process's libngspice (xb_spice) and driven by commands: per
// SET pulse the gate voltage of the staircase, the gap the pulse starts from and the pulse's cycle-to-cycle
// activation-energy draw are set (`alter`), a `tran` of the pulse runs (top electrode 0 -> v_set_V ->
// 0 in t_rise_s, t_set_s, t_rise_s; the access transistor limits the current to the compliance its gate
// sets), and the gap the pulse leaves is read from the state node. The verify read is an `op` of a second
// copy of the cell whose gap is held at that value (a source, not a capacitor), top electrode at
// v_read_V and gate at vg_read_V. The algorithm and its options are those of xb_igvva_program_cell
// (src/device/igvva.h): the staircase vg_start_V + k vg_step_V up to vg_max_V and max_pulses, the window
// i_trg_A +- tolerance_A, RESET and restart after an overshoot up to max_retries times; a RESET is a
// transient too (top electrode at -v_reset_V for t_set_s, gate at vg_read_V). Every cell starts at the
// RESET gap gap_max_m. The variation: each pulse's ea is ea_eV + sigma_ea_eV N(0,1), and each verify read is
// multiplied by 1 + sigma_read N(0,1), drawn from the caller's generator in that order (one gaussian per
// pulse and one per read when the sigma is non-zero). docs/device-circuit.md describes the model.
#ifndef XB_PROGRAM_CIRCUIT_H
#define XB_PROGRAM_CIRCUIT_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "device.h"
#include "error.h"
#include "igvva.h"
#include "ngspice.h"
#include "program.h"

typedef struct xb_circuit_prog xb_circuit_prog;

/* Start: opens the process's libngspice (log_path: ngspice's output, NULL discards it) and loads the cell
 * deck of device d (copied). XB_EINPUT when the device's model files are missing or ngspice rejects them,
 * XB_ERUNTIME when libngspice cannot start. Only one per process (libngspice is a singleton). */
int xb_circuit_prog_new(const xb_device *d, const char *log_path, xb_circuit_prog **out, xb_error *err);
void xb_circuit_prog_free(xb_circuit_prog **p);

/* The ngspice context (its version, solver, dead flag), borrowed. */
xb_spice *xb_circuit_prog_spice(xb_circuit_prog *p);

/* What one pulse did. */
typedef struct xb_circuit_pulse_result {
    double gap_end_m;  /* the gap the pulse leaves, within [gap_min_m, gap_max_m] */
    double i_peak_A;   /* the largest current into the top electrode during the pulse's flat top, from one
                          t_rise_s after the rising edge (signed: RESET < 0; the edges add the transistor's
                          capacitive currents) */
    double i_plateau_A;/* the current at the end of the flat top */
    long n_points;     /* time points of the transient */
} xb_circuit_pulse_result;

/* One pulse: top electrode 0 -> v_te_V (> 0: SET, < 0: RESET) -> 0, gate at vg_V, starting from gap_m,
 * with activation-energy offset d_ea_eV. t (may be NULL) and i_te (may be NULL) receive up to cap samples
 * of the transient's time and top-electrode current. XB_ERUNTIME when the transient does not finish (after a
 * retry with smaller steps) or ngspice ended. */
int xb_circuit_pulse(xb_circuit_prog *p, double gap_m, double v_te_V, double vg_V, double d_ea_eV,
                     xb_circuit_pulse_result *r, double *t, double *i_te, size_t cap, xb_error *err);

/* Verify read of a held gap: the cell current at v_read_V, gate at vg_read_V (no noise). */
int xb_circuit_read(xb_circuit_prog *p, double gap_m, double *i_read_A, xb_error *err);

/* Program cells i_trg_A[n] in order, into out[n] (g_S = the noise-free last read / v_read_V), and the
 * final gaps into gap_m[n] (may be NULL). rng may be NULL only without variation (sigma_ea_eV and sigma_read
 * zero): XB_EINPUT otherwise, as xb_igvva_program. progress (may be NULL) gets a line on stderr every
 * 64 cells. */
int xb_circuit_program_cells(xb_circuit_prog *p, const double *i_trg_A, size_t n, gsl_rng *rng,
                             xb_igvva_result *out, double *gap_m, int progress, xb_error *err);

/* Counters since xb_circuit_prog_new: pulses (SET and RESET transients), reads, seconds in ngspice. */
void xb_circuit_prog_counts(const xb_circuit_prog *p, long *pulses, long *reads, double *seconds);

/* The strategy table for xb_program_options.circuit (program.h), bound to p. progress: as above. */
void xb_circuit_programmer_bind(xb_circuit_prog *p, int progress, xb_cell_programmer *out);

#endif
