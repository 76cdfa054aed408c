// netlist: SPICE decks of crossbar tiles, for people to review and for the libngspice driver
//
// A tile with R rows and C columns. Row i is driven at its left end by a source Vrow<i> (node rin<i>);
// column j is held at virtual ground at its bottom end by a 0 V source Vsense<j>, whose branch current
// is the column current (positive into the sense amplifier). With wire resistance every cell segment of
// a row line (Rr<i>_<j>) and of a column line (Rc<i>_<j>) is a resistor; with zero resistance the lines
// are single nodes. Cell (i, j) connects row node r<i>_<j> to column node c<i>_<j>: a resistor of the
// programmed conductance (linear cells) or the 1T1R cell (RRAM top electrode on the row, NMOS drain at
// the RRAM bottom electrode, NMOS source on the column, gate on the word line wl at vg_read).
#ifndef XB_NETLIST_H
#define XB_NETLIST_H

#include <stdio.h>

#include "chip.h"
#include "device.h"

typedef enum {
    XB_DECK_OP,       /* one input: DC row sources, `op` and a print of the column currents */
    XB_DECK_SWEEP,    /* several inputs: rows follow pwl(v(idx)) tables, one `dc` sweep of Vidx */
    XB_DECK_EXTERNAL, /* for the library driver: row sources `external`, a Vidx source to sweep, no .control */
    XB_DECK_ALTER     /* for the library driver: DC row sources at 0 V (set by `alter`), no .control */
} xb_deck_kind;

typedef struct xb_netlist_options {
    double r_row_ohm;      /* wire resistance per cell segment of a row line (default 1 ohm) */
    double r_col_ohm;      /* per cell segment of a column line (default 1 ohm) */
    int linear_cells;      /* 1: a resistor per cell; 0: the 1T1R cell (default) */
    double rram_v0_V;      /* > 0: RRAM sinh I-V nonlinearity with this voltage; 0: linear RRAM */
    int compensate;        /* 1: size each RRAM so the whole 1T1R cell reads g_S * v_read at the read
                              point (exact for the level-1 card); 0: RRAM conductance = g_S */
    double reltol;         /* > 0: write `.options reltol abstol vntol` for tight golden runs */
    double abstol, vntol;
    int klu;               /* 1: `.options klu` (libngspice >= 43) */
} xb_netlist_options;

void xb_netlist_defaults(xb_netlist_options *o);

/* Row voltages (nr per input) of tile row range [r0, r0+nr) of layer l for n inputs, in volts.
 * v_layer_rows: n x L->rows voltages of the whole layer (input rows then bias rows). */
void xb_netlist_tile_rows(const xb_chip *c, int l, size_t r0, size_t nr, const double *v_layer_rows, size_t n,
                          double *v_tile);

/* Write the deck of tile (rt, ct) of layer l. v_rows: n x nr row voltages (XB_DECK_OP: n = 1;
 * XB_DECK_SWEEP: n inputs; XB_DECK_EXTERNAL: ignored). note: one line for the header (command line). */
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

#endif
