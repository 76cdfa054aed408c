// ngspice: the libngspice driver: tiles loaded once, inputs streamed through one dc sweep
//
// libngspice keeps global state and is not thread-safe: one xb_spice per process (the workers in
// spice_eval.h are processes). After a fatal ngspice error (ControlledExit) the context is dead and the
// process must end; its work unit is retried by a fresh worker.
#ifndef XB_NGSPICE_H
#define XB_NGSPICE_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "netlist.h"

typedef struct xb_spice xb_spice;

/* Start the library: callbacks, `set num_threads=1`, version detection. ngspice's own output goes to
 * log_path (NULL: discarded). Call from a clean working directory (no .spiceinit). */
int xb_spice_open(const char *log_path, xb_spice **out, xb_error *err);
void xb_spice_close(xb_spice **s);

/* ngspice version number (e.g. 39) and whether its KLU solver is used (>= 43). */
int xb_spice_version(const xb_spice *s);
int xb_spice_klu(const xb_spice *s);
/* "Sparse 1.3" or "KLU". */
const char *xb_spice_solver_name(const xb_spice *s);

/* Has ngspice reported a fatal error? Then the process must be replaced. */
int xb_spice_dead(const xb_spice *s);

/* Per-input outcome of a solve. */
enum { XB_SOLVE_OK = 0, XB_SOLVE_RETRIED = 1, XB_SOLVE_FAILED = 2 };

/* Solve n inputs of tile (rt, ct) of layer l: the deck is loaded once with `external` row sources,
 * one `dc` sweep of the index source streams the inputs (v_tile: n x nr row voltages), SendData
 * collects the column currents (i_cols: n x nc, amperes). An input whose point does not converge is
 * retried alone with gmin and source stepping; status[k] says what happened (may be NULL). */
int xb_spice_solve_tile(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                        xb_error *err);

/* The slow reference: the same deck with DC row sources, `alter` + `op` for every input (each op
 * re-orders and re-factors the matrix). For benchmarks and tests. */
int xb_spice_solve_tile_op(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols,
                           xb_error *err);

/* Node voltages of one input (v_rows: nr volts): v_row_node and v_col_node (nr x nc) are the voltages
 * of the row line and of the column line at each cell; their difference is what the cell sees. */
int xb_spice_tile_cell_voltages(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                                const xb_netlist_options *o, const double *v_rows, double *v_row_node,
                                double *v_col_node, xb_error *err);

/* Peak resident memory of this process (kB), from getrusage. */
long xb_spice_peak_rss_kb(void);

#endif
