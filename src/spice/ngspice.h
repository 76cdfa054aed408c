// ngspice: the libngspice driver: tiles loaded once, inputs streamed through one dc sweep
//
// libngspice keeps global state and is not thread-safe: one xb_spice per process (the workers of
// worker.h, run by the executors of src/sched, are processes). The solver knows nothing of scheduling:
// it solves what it is given and says whether it is dead (replace the process) or rejected the deck. After a fatal ngspice error (ControlledExit) the context is dead and the process must
// end; its work unit is retried by a fresh worker. An error ngspice reports while reading a deck (a
// missing include file, an unknown model or subcircuit) fails the whole call with ngspice's message:
// it would fail the same way for every input and in every worker. docs/circuit.md has the design.
#ifndef XB_NGSPICE_H
#define XB_NGSPICE_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "netlist.h"

typedef struct xb_spice xb_spice;

/* Start the library: callbacks, `set num_threads=1`, version detection. ngspice's own output goes to
 * log_path (NULL: discarded). No user .spiceinit is read: ngspice starts in a scratch folder holding a
 * harmless one (the call changes the working folder for its duration; one thread only). */
int xb_spice_open(const char *log_path, xb_spice **out, xb_error *err);
void xb_spice_close(xb_spice **s);

/* ngspice version number (e.g. 39) and whether the last deck ran on KLU: as ngspice itself said while it
 * ran it ("Using KLU as Direct Linear Solver", 43 and later), else as the deck asked; before any deck,
 * what xb_netlist_options.solver XB_SOLVER_AUTO takes (KLU from 43 on). */
int xb_spice_version(const xb_spice *s);
int xb_spice_klu(const xb_spice *s);
/* "Sparse 1.3" or "KLU". */
const char *xb_spice_solver_name(const xb_spice *s);

/* Has ngspice reported a fatal error? Then the process must be replaced. */
int xb_spice_dead(const xb_spice *s);

/* Newton iterations of every xb_spice_solve_tile of this context so far (ngspice's `rusage totiter` of
 * each deck after its sweep: the deck's first, full operating point, every sweep point and every retry;
 * Newton iterations are refactorizations, the cost of a solve). */
long xb_spice_newton_iterations(const xb_spice *s);

/* Did the last solve fail because ngspice could not load the deck (a missing include file, an unknown
 * model or subcircuit, a bad parameter)? Then any process would fail the same way. */
int xb_spice_deck_rejected(const xb_spice *s);

/* Send one command to ngspice (tests, hooks); refused (returns 1) once the context is dead. A `quit`
 * makes ngspice call ControlledExit, after which xb_spice_dead is true. */
int xb_spice_command(xb_spice *s, const char *cmd);

/* The row-drive path (XB_ROWS_EXTERNAL or XB_ROWS_PWL) a solve with options o takes: o->row_drive, or
 * for XB_ROWS_AUTO the measured faster one. Only the options choose: the library reads no environment. */
int xb_spice_rows_path(const xb_spice *s, const xb_netlist_options *o);
const char *xb_spice_rows_name(int path);

/* Per-input outcome of a solve. */
enum { XB_SOLVE_OK = 0, XB_SOLVE_RETRIED = 1, XB_SOLVE_FAILED = 2 };

/* Solve n inputs of tile (rt, ct) of layer l (v_tile: n x nr row voltages) and collect the column
 * currents (i_cols: n x nc, amperes) through SendData, in one `dc` sweep of the index source Vidx:
 *   external: the deck is loaded once with `external` row sources that read v_tile (GetVSRCData);
 *   pwl:      one deck per chunk of o->pwl_chunk inputs whose rows are pwl(v(idx)) tables.
 * An input whose point does not converge is retried from a cold start (ngspice's operating-point
 * homotopy) and then with fixed-step gmin and source stepping; status[k] (may be NULL) says what
 * happened, and a failed input's currents are NaN. XB_EINPUT when ngspice rejects the deck (the device's
 * model files), XB_ERUNTIME when ngspice ended (ControlledExit): replace the process. */
int xb_spice_solve_tile(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                        xb_error *err);

/* The slow reference: the same deck with DC row sources, `alter` + `op` for every input (each op
 * re-orders and re-factors the matrix). For benchmarks and tests. */
int xb_spice_solve_tile_op(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols,
                           xb_error *err);

/* Node voltages of one input (v_rows: nr volts): v_row_node and v_col_node (nr x nc) are the voltages
 * of the row line and of the column line at each cell; their difference is what the cell sees. An
 * operating point that does not converge (after a retry with stepping) gives NaN voltages, not an error. */
int xb_spice_tile_cell_voltages(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                                const xb_netlist_options *o, const double *v_rows, double *v_row_node,
                                double *v_col_node, xb_error *err);

/* Decks of one's own (circuit-level programming, src/spice/program_circuit.h): one circuit at a time.
 * xb_spice_load_text replaces the loaded circuit with deck (SPICE text, lines separated by newlines; the
 * caller keeps it); what names it in messages. XB_EINPUT with ngspice's reasons when it rejects the deck,
 * XB_ERUNTIME when ngspice has ended. xb_spice_run sends one analysis or command (0: accepted; non-zero:
 * refused or ngspice ended, see xb_spice_dead); xb_spice_points_done counts the points the last analysis
 * delivered (0 after an `op` that did not converge); a NULL cmd clears ngspice's command history. xb_spice_vector copies up to cap values of a vector of
 * the current plot (`time`, a node name such as `xd.gap`, `vis#branch`) into buf and returns its length,
 * or -1 when there is none; xb_spice_vector_last returns its last value or NaN. xb_spice_unload removes
 * the circuit (`destroy all`, `remcirc`). */
int xb_spice_load_text(xb_spice *s, const char *what, const char *deck, xb_error *err);
int xb_spice_run(xb_spice *s, const char *cmd);
size_t xb_spice_points_done(const xb_spice *s);
long xb_spice_vector(xb_spice *s, const char *name, double *buf, size_t cap);
double xb_spice_vector_last(xb_spice *s, const char *name);
void xb_spice_unload(xb_spice *s);

/* Peak resident memory of this process (kB), from getrusage. */
long xb_spice_peak_rss_kb(void);

/* ---- Energy and settling of a tile (energy.h reports them) ----
 * Powers of n inputs of tile (rt, ct) of layer l (v_tile: n x nr row voltages), from one `dc` sweep of the
 * tile's deck with `external` row sources, all node voltages and source currents saved: p_src_W[k] is
 * every source's V.I (row drivers, sense sources, word line), p_wire_W[k] every wire segment's V^2 / R
 * from the node voltages, p_cell_W[k] every cell's V.I, the cell current by Kirchhoff's current law at its
 * row node (from the column segments when rows have no wire resistance; g V^2 for linear cells with no
 * wires; the row drivers' power for 1T1R cells with no wires). By Tellegen's theorem p_src = p_cell +
 * p_wire within the solver's tolerance. An input the sweep could not solve stays NaN. Arrays: the
 * caller's, n each. Errors as xb_spice_solve_tile. */
int xb_spice_tile_power(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *p_src_W,
                        double *p_cell_W, double *p_wire_W, xb_error *err);

/* Settling time of tile (rt, ct) of layer l for row voltages v_rows (nr): a capacitor of c_wire_F to
 * ground at the far node of every wire segment, the rows stepped at t = 0 from 0 V (a rise of one of the
 * transient's 200 steps) for 30 Elmore delays of the wires (at least 1 ps; made 10 times longer, up to 4
 * times, until the currents settle within its first half, since the cells' own capacitances can be
 * slower than the wires); *t_settle_s is the last time any column current is further than frac of the
 * largest column current from its operating-point value (linear between samples), NaN if it never
 * settled, and *t_stop_s the transient's length. The transient runs at reltol frac / 100. With no wire
 * resistance (nothing to charge through) it is 0. XB_EINPUT for c_wire_F outside [0, 1e-9] F or frac
 * outside (0, 1). */
int xb_spice_tile_settling(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_rows, double c_wire_F, double frac,
                           double *t_settle_s, double *t_stop_s, xb_error *err);

#endif
