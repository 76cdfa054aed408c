// netlist: SPICE decks of crossbar tiles, for people to review and for the libngspice driver
//
// A tile with R rows and C columns. Row i is driven at its left end by a source Vrow<i> (node rin<i>);
// column j is held at virtual ground at its bottom end by a 0 V source Vsense<j>, whose branch current
// is the column current (positive into the sense amplifier). With wire resistance every cell segment of
// a row line (Rr<i>_<j>, from r<i>_<j-1> or rin<i> to r<i>_<j>) and of a column line (Rc<i>_<j>, from
// c<i>_<j> to c<i+1>_<j> or cout<j>) is a resistor; with zero resistance the lines are single nodes
// (rin<i>, cout<j>). Cell (i, j) connects row node r<i>_<j> to column node c<i>_<j>: a resistor Rx<i>_<j>
// of the programmed conductance (linear cells) or an instance Xc<i>_<j> of the 1T1R cell subcircuit of
// the RRAM model file (xb_1t1r / xb_1t1r_sinh: RRAM top electrode on the row, NMOS drain at the RRAM
// bottom electrode, NMOS source on the column, gate on the word line wl at vg_read). The cell calls
// subcircuit xb_access (d g s), which each deck defines from the device file: the MOSFET model name and
// the transistor's W and L, so a PDK card plugs in by name. docs/circuit.md describes the conventions.
#ifndef XB_NETLIST_H
#define XB_NETLIST_H

#include <stdio.h>

#include "chip.h"
#include "device.h"

typedef enum {
    XB_DECK_OP,       /* one input: DC row sources, `op` and a print of the column currents */
    XB_DECK_SWEEP,    /* several inputs: rows follow pwl(v(idx)) tables, one `dc` sweep of Vidx */
    XB_DECK_EXTERNAL, /* for the library driver: row sources `external`, a Vidx source to sweep, no .control */
    XB_DECK_ALTER,    /* for the library driver: DC row sources at 0 V (set by `alter`), no .control */
    XB_DECK_PWL       /* for the library driver: rows follow pwl(v(idx)) tables of n inputs, no .control */
} xb_deck_kind;

/* How the library driver feeds row voltages to a tile (xb_netlist_options.row_drive). */
enum {
    XB_ROWS_AUTO = 0,     /* the measured faster path (docs/circuit.md) */
    XB_ROWS_EXTERNAL = 1, /* `external` sources (GetVSRCData), the deck loaded once per work unit */
    XB_ROWS_PWL = 2       /* pwl(v(idx)) tables, one deck per chunk of pwl_chunk inputs */
};

/* Which libngspice linear solver a deck asks for (xb_netlist_options.solver). libngspice >= 43 carries
 * both KLU and Sparse 1.3 and selects one per deck (`.options klu` / `.options sparse`; without a line
 * 43-46 use Sparse); earlier libraries have only Sparse 1.3 and the driver writes no line for them. */
enum {
    XB_SOLVER_AUTO = 0,  /* the library driver: KLU where the library has it; a review deck: no line */
    XB_SOLVER_KLU = 1,   /* `.options klu` */
    XB_SOLVER_SPARSE = 2 /* `.options sparse` */
};

typedef struct xb_netlist_options {
    double r_row_ohm;      /* wire resistance per cell segment of a row line (default 1 ohm) */
    double r_col_ohm;      /* per cell segment of a column line (default 1 ohm) */
    int linear_cells;      /* 1: a resistor per cell; 0: the 1T1R cell (default) */
    int gap_cells;         /* 1 (with linear_cells 0): the 1T1R cell with the gap compact model, xb_1t1r_gap of
                              the device's <rram> model file, each cell at the gap that reads g_S * v_read at the
                              read point (xb_netlist_cell_gap_m); rram_v0_V and compensate do not apply */
    double rram_v0_V;      /* > 0: RRAM sinh I-V nonlinearity with this voltage; 0: linear RRAM */
    int compensate;        /* 1: size each RRAM so the whole 1T1R cell reads g_S * v_read at the read
                              point (exact for the level-1 card, models/README.md); 0: RRAM conductance = g_S */
    double reltol;         /* > 0: write `.options reltol abstol vntol` for tight golden runs */
    double abstol, vntol;
    int solver;            /* XB_SOLVER_AUTO (default), XB_SOLVER_KLU or XB_SOLVER_SPARSE */
    int row_drive;         /* XB_ROWS_AUTO (default), XB_ROWS_EXTERNAL or XB_ROWS_PWL */
    size_t pwl_chunk;      /* inputs per pwl deck (default 250) */
} xb_netlist_options;

void xb_netlist_defaults(xb_netlist_options *o);

/* Row voltages (nr per input) of tile row range [r0, r0+nr) of layer l for n inputs, in volts.
 * v_layer_rows: n x L->rows voltages of the whole layer (input rows then bias rows). */
void xb_netlist_tile_rows(const xb_chip *c, int l, size_t r0, size_t nr, const double *v_layer_rows, size_t n,
                          double *v_tile);

/* Can the deck of tile (rt, ct) of layer l be written and solved? Every number it would hold is finite and
 * in range: the chip's read voltage (0, 100] V, every cell conductance of the tile 0..1e3 S (and the RRAM
 * conductance derived from it finite), wire resistances 0..1e9 ohm, rram_v0 0..1e3 V, the gate voltage and
 * the row voltages v_rows (n x nr, may be NULL) within +-100 V, the access transistor's W and L in (0, 1] m.
 * XB_EINPUT naming the value and its place otherwise: ngspice handed a NaN or an infinity does not fail
 * cleanly (a `DC -nan` source overflows its stack). xb_netlist_write_tile and the solvers of ngspice.h
 * call it. */
int xb_netlist_check(const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                     const xb_netlist_options *o, const double *v_rows, size_t n, xb_error *err);

/* Write the deck of tile (rt, ct) of layer l. v_rows: n x nr row voltages (XB_DECK_OP: n = 1;
 * XB_DECK_SWEEP and XB_DECK_PWL: n inputs; XB_DECK_EXTERNAL, XB_DECK_ALTER: ignored). note: one line
 * for the header (command line). */
int xb_netlist_write_tile(FILE *fp, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                          const xb_netlist_options *o, xb_deck_kind kind, const double *v_rows, size_t n,
                          const char *note, xb_error *err);

/* Write the deck of tile (rt, ct) of layer l to path, atomically: an `op` deck for one input, a `dc`
 * sweep for several. v_layer_rows: n x rows voltages of the whole layer; NULL writes a review deck with
 * every row at v_read. */
int xb_netlist_write_file(const char *path, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                          const xb_netlist_options *o, const double *v_layer_rows, size_t n, const char *note,
                          xb_error *err);

/* The RRAM conductance that makes a 1T1R cell (level-1 access transistor with transconductance k_n and
 * threshold v_th at gate voltage vg) read i_cell = g_cell * v_read: solves the triode equation for the
 * drain-source voltage. Returns NaN if the transistor cannot carry i_cell. */
double xb_netlist_rram_g(double g_cell, double v_read, double vg, double k_n, double v_th);

/* The gap (m) of the compact model (dev->rram) at which a 1T1R gap cell reads g_S * v_read at the read
 * point: the level-1 triode equation gives the transistor's share of v_read (as xb_netlist_rram_g), and
 * I = i0 exp(-gap/g0) sinh(V/v0) is solved for the gap at the RRAM's share V. Exact for the level-1 card
 * at the device's k_n_A_per_V2 and v_th_V; a cell the transistor cannot carry gets gap_min_m. NaN for
 * g_S <= 0 or not finite. A circuit-programmed chip's g_S is its cells' verify reads / v_read, so the gap is
 * the one programming left (docs/device-circuit.md). */
double xb_netlist_cell_gap_m(const xb_device *dev, double g_S);

/* The conductance written for the RRAM of cell g_S in a deck with options o (compensated or not). */
double xb_netlist_cell_rram_g(const xb_device *dev, const xb_netlist_options *o, double g_S);

#endif
