// netlist: SPICE decks of crossbar tiles, for people to review and for the libngspice driver
#include "netlist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fileio.h"
#include "mapping.h"

void xb_netlist_defaults(xb_netlist_options *o)
{
    memset(o, 0, sizeof *o);
    o->r_row_ohm = 1.0;
    o->r_col_ohm = 1.0;
    o->linear_cells = 0;
    o->rram_v0_V = 0;
    o->compensate = 1;
    o->row_drive = XB_ROWS_AUTO;
    o->pwl_chunk = 250;
}

double xb_netlist_rram_g(double g_cell, double v_read, double vg, double k_n, double v_th)
{
    double i = g_cell * v_read, vov = vg - v_th;
    if (!(i > 0))
        return g_cell;
    /* Triode: i = k_n (vov vds - vds^2 / 2), the smaller root; it must leave voltage for the RRAM. */
    double disc = vov * vov - 2 * i / k_n;
    if (vov <= 0 || disc < 0)
        return NAN;
    double vds = vov - sqrt(disc);
    if (vds >= v_read)
        return NAN;
    return i / (v_read - vds);
}

double xb_netlist_cell_rram_g(const xb_device *dev, const xb_netlist_options *o, double g)
{
    if (!o->compensate)
        return g;
    double g_rram = xb_netlist_rram_g(g, dev->v_read_V, dev->vg_read_V, dev->igvva.k_n_A_per_V2, dev->igvva.v_th_V);
    /* The transistor alone cannot carry the current (a stuck-at-LRS cell): a 1 ohm RRAM leaves the access
     * transistor to limit it, as it would on the chip. */
    return isfinite(g_rram) ? g_rram : 1.0;
}

double xb_netlist_cell_gap_m(const xb_device *dev, double g_S)
{
    const xb_rram_params *m = &dev->rram;
    if (!(g_S > 0) || !isfinite(g_S))
        return NAN;
    double i = g_S * dev->v_read_V;
    double g_rram = xb_netlist_rram_g(g_S, dev->v_read_V, dev->vg_read_V, dev->igvva.k_n_A_per_V2, dev->igvva.v_th_V);
    if (!isfinite(g_rram))
        return m->gap_min_m;
    double v = i / g_rram;
    return m->g0_m * log(m->i0_A * sinh(v / m->v0_V) / i);
}

void xb_netlist_tile_rows(const xb_chip *c, int l, size_t r0, size_t nr, const double *v_layer_rows, size_t n,
                          double *v_tile)
{
    size_t rows = c->layers[l].rows;
    for (size_t k = 0; k < n; k++)
        memcpy(v_tile + k * nr, v_layer_rows + k * rows + r0, nr * sizeof *v_tile);
}

/* Node names of the row line at cell column j and of the column line at cell row i. */
static void row_node(char *buf, size_t len, int wires, size_t i, size_t j)
{
    if (wires)
        snprintf(buf, len, "r%zu_%zu", i, j);
    else
        snprintf(buf, len, "rin%zu", i);
}

static void col_node(char *buf, size_t len, int wires, size_t i, size_t j)
{
    if (wires)
        snprintf(buf, len, "c%zu_%zu", i, j);
    else
        snprintf(buf, len, "cout%zu", j);
}

static const char *side_name(int role)
{
    return role == XB_COL_POS ? "+" : role == XB_COL_NEG ? "-" : "ref";
}

/* One comment line that ties cell (i, j) of the tile to the network: layer-level row and column, the
 * input or bias row, the output neuron and side, the weight in weight units and normalized, and the
 * conductance the mapping asked for beside the one the cell holds. */
static void cell_comment(FILE *fp, const xb_chip *c, int l, size_t row, size_t col, size_t i, size_t j)
{
    const xb_layer_map *L = &c->layers[l];
    int role = L->col_role[col], neuron = L->col_neuron[col];
    fprintf(fp, "* cell %zu,%zu = L%d row %zu col %zu: ", i, j, l + 1, row, col);
    if (row < L->fan_in && L->conv.k) { /* row (ky k + kx) in_c + c of the patch */
        size_t kk = L->conv.k, ch = L->conv.in_c;
        fprintf(fp, "input %zu (kernel %zu,%zu channel %zu)", row, row / ch / kk, row / ch % kk, row % ch);
    } else if (row < L->fan_in)
        fprintf(fp, "input %zu", row);
    else
        fprintf(fp, "bias row %zu", row - L->fan_in);
    if (role == XB_COL_REF || neuron < 0) {
        fprintf(fp, " -> reference (ref)");
    } else {
        double wn = L->wn[row * L->fan_out + (size_t)neuron];
        fprintf(fp, " -> %s %d (%s); ", L->conv.k ? "filter" : "neuron", neuron, side_name(role));
        if (row < L->fan_in)
            fprintf(fp, "w %.6g", xb_map_weight(L, row, wn));
        else
            fprintf(fp, "b/%zu %.6g", L->n_bias_rows, xb_map_weight(L, row, wn));
        fprintf(fp, " (wn %.6g)", wn);
    }
    size_t k = row * L->cols + col;
    fprintf(fp, "; G target %.6g S, programmed %.6g S\n", L->g_target_S[k], L->g_S[k]);
}

/* What a deck may hold (netlist.h, xb_netlist_check). */
#define DECK_V_MAX 100.0    /* volts on a row or the word line */
#define DECK_G_MAX 1e3      /* siemens per cell (1 mOhm) */
#define DECK_R_MAX 1e9      /* ohms per wire segment */
#define DECK_V0_MAX 1e3     /* volts: the sinh RRAM's nonlinearity voltage */

static int finite_in(double x, double lo, double hi) { return isfinite(x) && x >= lo && x <= hi; }

int xb_netlist_check(const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                     const xb_netlist_options *o, const double *v_rows, size_t n, xb_error *err)
{
    if (l < 0 || l >= c->n_layers)
        return xb_fail(err, XB_EINPUT, "layer %d: the chip has %d layers", l + 1, c->n_layers);
    const xb_layer_map *L = &c->layers[l];
    if (rt >= L->n_row_tiles || ct >= L->n_col_tiles)
        return xb_fail(err, XB_EINPUT, "layer %d tile (%zu, %zu): the layer has %zu x %zu tiles", l + 1, rt, ct,
                       L->n_row_tiles, L->n_col_tiles);
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    if (!finite_in(c->opt.v_read_V, 1e-12, DECK_V_MAX))
        return xb_fail(err, XB_EINPUT, "layer %d tile (%zu, %zu): the chip's read voltage %g V; allowed: a finite "
                       "voltage in (0, %g] V", l + 1, rt, ct, c->opt.v_read_V, DECK_V_MAX);
    if (!finite_in(o->r_row_ohm, 0, DECK_R_MAX) || !finite_in(o->r_col_ohm, 0, DECK_R_MAX))
        return xb_fail(err, XB_EINPUT, "wire resistances %g ohm (row), %g ohm (column) per segment; allowed: 0 to %g "
                       "ohm", o->r_row_ohm, o->r_col_ohm, DECK_R_MAX);
    if (!finite_in(o->rram_v0_V, 0, DECK_V0_MAX))
        return xb_fail(err, XB_EINPUT, "RRAM nonlinearity voltage rram_v0 %g V; allowed: 0 (linear) to %g V",
                       o->rram_v0_V, DECK_V0_MAX);
    if (o->reltol > 0 && (!finite_in(o->reltol, 0, 1) || !finite_in(o->abstol, 0, 1) || !finite_in(o->vntol, 0, 1)))
        return xb_fail(err, XB_EINPUT, "solver tolerances reltol %g, abstol %g, vntol %g; allowed: 0 to 1",
                       o->reltol, o->abstol, o->vntol);
    if (o->solver != XB_SOLVER_AUTO && o->solver != XB_SOLVER_KLU && o->solver != XB_SOLVER_SPARSE)
        return xb_fail(err, XB_EINPUT, "solver %d; allowed: %d (auto), %d (KLU), %d (Sparse 1.3)", o->solver,
                       XB_SOLVER_AUTO, XB_SOLVER_KLU, XB_SOLVER_SPARSE);
    if (!o->linear_cells && o->gap_cells) {
        int rc = xb_device_check_rram_model(dev, err);
        if (rc)
            return rc;
    }
    if (!o->linear_cells) {
        if (!finite_in(dev->vg_read_V, -DECK_V_MAX, DECK_V_MAX))
            return xb_fail(err, XB_EINPUT, "device %s: gate voltage vg_read_V %g V; allowed: a finite voltage within "
                           "+-%g V", dev->name, dev->vg_read_V, DECK_V_MAX);
        if (!finite_in(dev->access_w_m, 1e-12, 1) || !finite_in(dev->access_l_m, 1e-12, 1))
            return xb_fail(err, XB_EINPUT, "device %s: access transistor W = %g m, L = %g m; allowed: finite sizes in "
                           "(0, 1] m", dev->name, dev->access_w_m, dev->access_l_m);
    }
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            size_t row = r0 + i, col = c0 + j;
            double g = L->g_S[row * L->cols + col];
            if (!finite_in(g, 0, DECK_G_MAX))
                return xb_fail(err, XB_EINPUT, "layer %d row %zu col %zu: conductance %g S; allowed: a finite value "
                               "from 0 to %g S", l + 1, row, col, g, DECK_G_MAX);
            if (g > 0 && !o->linear_cells && o->gap_cells) {
                double gap = xb_netlist_cell_gap_m(dev, g);
                if (!finite_in(gap, -1e-6, 1e-6))
                    return xb_fail(err, XB_EINPUT, "layer %d row %zu col %zu: the RRAM gap for %g S is %g m; allowed: "
                                   "a finite gap within +-1 um (check the device's <rram> model)", l + 1, row, col, g,
                                   gap);
            } else if (g > 0 && !o->linear_cells) {
                double gr = xb_netlist_cell_rram_g(dev, o, g);
                if (!finite_in(gr, 1e-300, 1e300))
                    return xb_fail(err, XB_EINPUT, "layer %d row %zu col %zu: the RRAM conductance for %g S is %g S; "
                                   "allowed: a finite positive value (check the device's read point)", l + 1, row, col,
                                   g, gr);
            }
        }
    for (size_t k = 0; v_rows && k < n; k++)
        for (size_t i = 0; i < nr; i++)
            if (!finite_in(v_rows[k * nr + i], -DECK_V_MAX, DECK_V_MAX))
                return xb_fail(err, XB_EINPUT, "layer %d tile (%zu, %zu), input %zu, row %zu: row voltage %g V; "
                               "allowed: a finite voltage within +-%g V", l + 1, rt, ct, k, r0 + i,
                               v_rows[k * nr + i], DECK_V_MAX);
    return XB_OK;
}

int xb_netlist_write_tile(FILE *fp, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                          const xb_netlist_options *o, xb_deck_kind kind, const double *v_rows, size_t n,
                          const char *note, xb_error *err)
{
    int has_rows = kind == XB_DECK_OP || kind == XB_DECK_SWEEP || kind == XB_DECK_PWL;
    int crc = xb_netlist_check(c, l, rt, ct, dev, o, has_rows ? v_rows : NULL, kind == XB_DECK_OP ? 1 : n, err);
    if (crc)
        return crc;
    if (has_rows && !v_rows)
        return xb_fail(err, XB_EINPUT, "a deck with row voltages needs them");
    const xb_layer_map *L = &c->layers[l];
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    int row_wires = o->r_row_ohm > 0, col_wires = o->r_col_ohm > 0;
    int review = kind == XB_DECK_OP || kind == XB_DECK_SWEEP; /* comments for people; library decks stay lean */
    int pwl_rows = kind == XB_DECK_SWEEP || kind == XB_DECK_PWL;
    double vg = dev->vg_read_V;
    if (pwl_rows && n == 0)
        return xb_fail(err, XB_EINPUT, "a pwl deck needs at least one input");

    fprintf(fp, "* xbarsim %s crossbar tile deck\n", XB_VERSION);
    fprintf(fp, "* layer %d, tile row %zu col %zu: rows %zu..%zu and columns %zu..%zu of a %zu x %zu layer\n",
            l + 1, rt, ct, r0, r0 + nr - 1, c0, c0 + nc - 1, L->rows, L->cols);
    fprintf(fp, "* cells: %s; wires %g ohm per row segment, %g ohm per column segment\n",
            o->linear_cells ? "linear resistors at the programmed conductance"
                            : o->gap_cells ? "1T1R with the gap compact model, each RRAM at the gap that reads g_S*v_read"
                            : (o->compensate ? "1T1R, RRAM sized so each cell reads g_S*v_read at the read point"
                                             : "1T1R, RRAM at the programmed conductance"),
            o->r_row_ohm, o->r_col_ohm);
    if (note && *note)
        fprintf(fp, "* made by: %s\n", note);
    if (review) {
        fprintf(fp, "* run: ngspice -b THIS_FILE   (prints the column currents i(vsense<j>) in amperes;\n"
                    "*      vsense<j> holds tile column j at virtual ground, its current flows into the sense amp;\n"
                    "*      THIS_FILE.expected.csv, when present, holds what xbarsim's libngspice driver computed)\n");
        fprintf(fp, "* nodes: rin<i> row driver, r<i>_<j> / c<i>_<j> row / column line at cell (i,j), cout<j> sense\n"
                    "*   node, wl word line; i, j are tile-local (layer row = %zu + i, layer column = %zu + j)\n",
                r0, c0);
        fprintf(fp, "* cell comments: \"cell i,j = L<layer> row <layer row> col <layer column>: input <k>\n"
                    "*   (conv layers: kernel <ky>,<kx> channel <c>: the patch entry the row carries)\n"
                    "*   or bias row <b> -> neuron <n> (conv layers: filter <f>) (+ or - side of the pair) or\n"
                    "*   reference (ref); w <weight>\n"
                    "*   or b/<r> <bias share of each of r bias rows> in weight units (wn <normalized, -1..1>);\n"
                    "*   G target <mapping> S, programmed <cell> S\"%s\n",
                o->linear_cells ? "" : o->gap_cells ? "; gap= on a cell instance is its RRAM's gap in nm"
                                                    : "; g= on a cell instance is its RRAM's conductance");
    }
    if (o->reltol > 0)
        fprintf(fp, ".options reltol=%g abstol=%g vntol=%g\n", o->reltol, o->abstol, o->vntol);
    if (o->solver == XB_SOLVER_KLU || o->solver == XB_SOLVER_SPARSE)
        fprintf(fp, ".options %s\n", o->solver == XB_SOLVER_KLU ? "klu" : "sparse");
    if (!o->linear_cells) {
        fprintf(fp, ".include \"%s\"\n", dev->mosfet_model_file);
        fprintf(fp, ".include \"%s\"\n", dev->rram_model_file);
        if (review)
            fprintf(fp, "* the access transistor of the cells in %s: the device file's MOSFET model and size\n",
                    dev->rram_model_file);
        fprintf(fp, ".subckt xb_access d g s\nM1 d g s 0 %s W=%.12g L=%.12g\n.ends xb_access\n", dev->mosfet_model_name,
                dev->access_w_m, dev->access_l_m);
        if (o->gap_cells) {
            const xb_rram_params *m = &dev->rram;
            if (review)
                fprintf(fp, "* the RRAM of the gap cells: the device's <rram> read I-V, i0 (A), g0 (nm), v0 (V)\n");
            fprintf(fp, ".include \"%s\"\n", m->model_file);
            fprintf(fp, ".subckt xb_rram_gap te be gap=%.17g\nXg te be rram_gap gap={gap} i0=%.17g g0=%.17g v0=%.17g\n"
                        ".ends xb_rram_gap\n", m->gap_max_m * 1e9, m->i0_A, m->g0_m * 1e9, m->v0_V);
        }
        fprintf(fp, "Vwl wl 0 DC %.17g\n", vg);
    }

    /* Row drivers. */
    if (review)
        fprintf(fp, "* row drivers (row voltage = input / in_scale * v_read; bias rows at v_read)\n");
    if (pwl_rows || kind == XB_DECK_EXTERNAL)
        fprintf(fp, "Vidx idx 0 DC 0\n");
    for (size_t i = 0; i < nr; i++) {
        size_t row = r0 + i;
        if (review) {
            if (row < L->fan_in)
                fprintf(fp, "* row %zu = layer row %zu: input %zu\n", i, row, row);
            else
                fprintf(fp, "* row %zu = layer row %zu: bias row %zu of %zu\n", i, row, row - L->fan_in,
                        L->n_bias_rows);
        }
        if (kind == XB_DECK_OP) {
            fprintf(fp, "Vrow%zu rin%zu 0 DC %.17g\n", i, i, v_rows[i]);
        } else if (kind == XB_DECK_EXTERNAL) {
            fprintf(fp, "Vrow%zu rin%zu 0 external\n", i, i); /* ngspice 39 crashes on "DC 0 external" */
        } else if (kind == XB_DECK_ALTER) {
            fprintf(fp, "Vrow%zu rin%zu 0 DC 0\n", i, i);
        } else {
            fprintf(fp, "Brow%zu rin%zu 0 V=pwl(v(idx)", i, i);
            for (size_t k = 0; k < n; k++)
                fprintf(fp, ",%zu,%.17g", k, v_rows[k * nr + i]);
            if (n == 1) /* a table needs two points; the sweep only visits index 0 */
                fprintf(fp, ",1,%.17g", v_rows[i]);
            fprintf(fp, ")\n");
        }
    }
    /* Wires. */
    char a[48], b[48];
    if (row_wires) {
        if (review)
            fprintf(fp, "* row lines: one resistor per cell segment, driver at the left\n");
        for (size_t i = 0; i < nr; i++)
            for (size_t j = 0; j < nc; j++) {
                if (j == 0)
                    snprintf(a, sizeof a, "rin%zu", i);
                else
                    row_node(a, sizeof a, 1, i, j - 1);
                row_node(b, sizeof b, 1, i, j);
                fprintf(fp, "Rr%zu_%zu %s %s %.17g\n", i, j, a, b, o->r_row_ohm);
            }
    }
    if (review)
        fprintf(fp, "* column lines%s, sense sources at the bottom\n",
                col_wires ? ": one resistor per cell segment" : "");
    for (size_t j = 0; j < nc; j++) {
        size_t col = c0 + j;
        if (review) {
            int role = L->col_role[col];
            if (role == XB_COL_REF || L->col_neuron[col] < 0)
                fprintf(fp, "* column %zu = layer column %zu: reference column\n", j, col);
            else
                fprintf(fp, "* column %zu = layer column %zu: neuron %d, G%s side\n", j, col, L->col_neuron[col],
                        side_name(role));
        }
        if (col_wires) {
            for (size_t i = 0; i < nr; i++) {
                col_node(a, sizeof a, 1, i, j);
                if (i + 1 < nr)
                    col_node(b, sizeof b, 1, i + 1, j);
                else
                    snprintf(b, sizeof b, "cout%zu", j);
                fprintf(fp, "Rc%zu_%zu %s %s %.17g\n", i, j, a, b, o->r_col_ohm);
            }
        }
        fprintf(fp, "Vsense%zu cout%zu 0 DC 0\n", j, j);
    }
    /* Cells. */
    if (review)
        fprintf(fp, "* cells, row by row\n");
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            size_t row = r0 + i, col = c0 + j;
            double g = L->g_S[row * L->cols + col];
            row_node(a, sizeof a, row_wires, i, j);
            col_node(b, sizeof b, col_wires, i, j);
            if (review)
                cell_comment(fp, c, l, row, col, i, j);
            if (!(g > 0)) {
                if (review)
                    fprintf(fp, "*   open cell: no element\n");
                continue;
            }
            if (o->linear_cells) {
                fprintf(fp, "Rx%zu_%zu %s %s %.17g\n", i, j, a, b, 1.0 / g);
                continue;
            }
            if (o->gap_cells) {
                fprintf(fp, "Xc%zu_%zu %s %s wl xb_1t1r_gap gap=%.17g\n", i, j, a, b, xb_netlist_cell_gap_m(dev, g) * 1e9);
                continue;
            }
            double g_rram = xb_netlist_cell_rram_g(dev, o, g);
            if (o->rram_v0_V > 0)
                fprintf(fp, "Xc%zu_%zu %s %s wl xb_1t1r_sinh g=%.17g v0=%.17g\n", i, j, a, b, g_rram, o->rram_v0_V);
            else
                fprintf(fp, "Xc%zu_%zu %s %s wl xb_1t1r g=%.17g\n", i, j, a, b, g_rram);
        }
    if (kind == XB_DECK_OP || kind == XB_DECK_SWEEP) {
        fprintf(fp, ".control\nset numdgt=12\n");
        if (kind == XB_DECK_OP)
            fprintf(fp, "op\n");
        else
            fprintf(fp, "dc vidx 0 %zu 1\n", n - 1);
        for (size_t j = 0; j < nc; j++)
            fprintf(fp, "print i(vsense%zu)\n", j);
        /* Without it `ngspice -b` exits 1 ("no simulations run": the analysis lives in .control). */
        fprintf(fp, "quit 0\n.endc\n");
    }
    fprintf(fp, ".end\n");
    if (ferror(fp))
        return xb_fail(err, XB_ERUNTIME, "writing the deck of layer %d tile (%zu, %zu) failed", l + 1, rt, ct);
    return XB_OK;
}

int xb_netlist_write_file(const char *path, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                          const xb_netlist_options *o, const double *V, size_t n, const char *note, xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    double *vt = NULL;
    xb_deck_kind kind = XB_DECK_SWEEP;
    if (V) {
        vt = malloc(n * nr * sizeof *vt);
        if (!vt)
            return xb_fail(err, XB_ENOMEM, "out of memory");
        xb_netlist_tile_rows(c, l, r0, nr, V, n, vt);
        kind = n == 1 ? XB_DECK_OP : XB_DECK_SWEEP;
    } else {
        /* Review decks without inputs: every row at v_read. */
        n = 1;
        kind = XB_DECK_OP;
        vt = malloc(nr * sizeof *vt);
        if (!vt)
            return xb_fail(err, XB_ENOMEM, "out of memory");
        for (size_t i = 0; i < nr; i++)
            vt[i] = c->opt.v_read_V;
    }
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (!rc) {
        rc = xb_netlist_write_tile(f.fp, c, l, rt, ct, dev, o, kind, vt, n, note, err);
        if (rc)
            xb_atomic_abort(&f);
        else
            rc = xb_atomic_commit(&f, err);
    }
    free(vt);
    return rc;
}
