// circuit: classify inputs on a programmed chip whose tiles are solved through libngspice
//
// The circuit backend is the digital path (behavioral.h) with its tile currents supplied by the
// worker pool (pool.h; the spice backends of backend_spice.h): DAC, bias rows, ADC per tile, digital pair subtraction, partial sums,
// activations and argmax are the same code, so any difference between the two backends comes from
// the circuit: wire IR drop, the access transistors, RRAM nonlinearity, solver tolerance.
#ifndef XB_CIRCUIT_H
#define XB_CIRCUIT_H

#include <stddef.h>

#include "behavioral.h"
#include "compare.h"
#include "pool.h"

typedef struct xb_circuit {
    xb_pool pool;             /* options in pool.o; statistics in pool.stats after a run */
    xb_circuit_compare cc;    /* per-tile errors against I = V.G, and sampled currents */
    size_t n_failed;          /* inputs with a solve that never converged (their prediction is -1) */
} xb_circuit;

/* Classify n inputs X (n x fan_in, values in [0, 1]) on chip c (its g_S as programmed) with the device
 * d. po: worker pool and netlist options (po->log_dir must exist if set). bo: DAC / ADC / read-noise
 * options of the digital path (output noise is ignored: the circuit is the chip as built).
 * calib: ADC calibration inputs (may be NULL). sample_inputs: column currents of this many inputs per
 * tile are kept in r->cc.samples. label: progress label. pred[n]: predictions, -1 for failed inputs.
 * r is filled in; release it with xb_circuit_free. */
int xb_circuit_classify(const xb_chip *c, const xb_device *d, const xb_pool_options *po, const xb_behav_options *bo,
                        const double *calib, size_t n_calib, const double *X, size_t n, size_t sample_inputs,
                        const char *label, gsl_rng *rng, int *pred, xb_circuit *r, xb_error *err);
/* The same with the ADC full scales already computed (xb_behav_adc_calibrate, once per chip or trial;
 * adc_fs_A[c->n_layers], NULL: the level range). xb_circuit_classify calibrates and calls this. */
int xb_circuit_classify_fs(const xb_chip *c, const xb_device *d, const xb_pool_options *po,
                           const xb_behav_options *bo, const double *adc_fs_A, const double *X, size_t n,
                           size_t sample_inputs, const char *label, gsl_rng *rng, int *pred, xb_circuit *r,
                           xb_error *err);
void xb_circuit_free(xb_circuit *r);

/* The IR-drop map of one tile: every row driven at v_read, what each cell actually sees and carries.
 * v_row_node, v_col_node (rows x cols) are the row- and column-line voltages at each cell; i_cell_A is
 * each cell's current, from the node voltages and the wire resistances by Kirchhoff's current law at
 * the cell's row node (the row-segment current in minus the current out; from the column segments when
 * rows have no wire resistance; with no wire resistance at all the cells see v_read and carry exactly
 * g_S v_read). The arrays live in one block released by xb_irdrop_free. */
struct xb_spice;
typedef struct xb_irdrop {
    int layer;
    size_t rt, ct, rows, cols;
    double v_read_V;
    double *v_row_node_V, *v_col_node_V;
    double r_row_ohm, r_col_ohm; /* wire resistance per cell segment of the solve */
    double *g_S;                 /* rows x cols programmed conductances of the tile */
    double *i_cell_A;            /* rows x cols cell currents */
} xb_irdrop;

/* Solve the IR-drop map of the tile whose currents strayed furthest from I = V.G on average in a
 * finished classification r, in a fresh worker. */
int xb_circuit_irdrop(const xb_circuit *r, xb_irdrop *out, xb_error *err);
/* The IR-drop map of tile (l, rt, ct) through this process's libngspice (tests, tools). */
int xb_irdrop_solve(struct xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                    const xb_netlist_options *o, xb_irdrop *out, xb_error *err);
void xb_irdrop_free(xb_irdrop *m);
/* Voltage deficit of cell (i, j): 1 - (v_row - v_col) / v_read, the share of the read voltage the wires
 * took before the cell (what the IR-drop plots show). */
double xb_irdrop_deficit(const xb_irdrop *m, size_t i, size_t j);
/* Current deficit of cell (i, j): 1 - I_cell / I_cell_ideal with I_cell_ideal = g_S v_read, the current
 * with ideal wires (linear cells, and 1T1R cells compensated to read g_S v_read at the read point; with
 * the sinh RRAM or compensation off it includes the cell's own departure from g_S v_read). 0 for an
 * open cell. */
double xb_irdrop_current_deficit(const xb_irdrop *m, size_t i, size_t j);
/* CSV: layer,row_tile,col_tile,row,col,v_drive_V,v_row_node_V,v_col_node_V,v_cell_V,deficit,g_S,i_cell_A,
 * i_cell_ideal_A,current_deficit (deficit is the voltage deficit). */
int xb_irdrop_write_csv(const xb_irdrop *m, const char *path, xb_error *err);

#endif
