// test_spice: tile solves through the real libngspice against hand-solvable circuits and each other
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_rng.h>

#include "check.h"
#include "chip.h"
#include "circuit.h"
#include "device.h"
#include "netlist.h"
#include "ngspice.h"
#include "tile_fixture.h"

#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer keeps freed blocks resident in its quarantine (256 MB by default), which test_memory_flat
 * would count as growth (33 kB per deck with 46); without it the resident memory measures what it should.
 * Leaks are LeakSanitizer's to find in this build. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=0"; }
#endif

static char dir[] = "/tmp/xb_test_spice_XXXXXX";
static char log_path[600];

/* The two ways the driver feeds row voltages; every solve test runs both. */
static const int paths[2] = {XB_ROWS_EXTERNAL, XB_ROWS_PWL};

/* A node of the hand-solved circuit: an unknown (idx >= 0) or a known voltage. */
typedef struct nref {
    long idx;
    double v;
} nref;

static void stamp(gsl_matrix *A, gsl_vector *b, nref p, nref q, double g)
{
    if (p.idx >= 0) {
        *gsl_matrix_ptr(A, (size_t)p.idx, (size_t)p.idx) += g;
        if (q.idx >= 0)
            *gsl_matrix_ptr(A, (size_t)p.idx, (size_t)q.idx) -= g;
        else
            *gsl_vector_ptr(b, (size_t)p.idx) += g * q.v;
    }
    if (q.idx >= 0) {
        *gsl_matrix_ptr(A, (size_t)q.idx, (size_t)q.idx) += g;
        if (p.idx >= 0)
            *gsl_matrix_ptr(A, (size_t)q.idx, (size_t)p.idx) -= g;
        else
            *gsl_vector_ptr(b, (size_t)q.idx) += g * p.v;
    }
}

/* Kirchhoff by hand: nodal analysis of the resistive crossbar, solved with an LU factorization. The
 * unknowns are the row nodes r(i,j) when rows have wire resistance rr (else row i is one node at v_i)
 * and the column nodes c(i,j) when columns have rc (else column j is the sense node at 0 V). Drivers
 * feed the rows at the left through the first segment; the sense nodes are at the bottom, after the last
 * segment. i_col: column currents; vr, vc (may be NULL): the row and column line voltages at each cell. */
static void nodal(size_t R, size_t C, const double *g, double rr, double rc, const double *v, double *i_col,
                  double *vr, double *vc)
{
    size_t n_row = rr > 0 ? R * C : 0, n_col = rc > 0 ? R * C : 0, N = n_row + n_col;
    gsl_vector *x = NULL;
    if (N) {
        gsl_matrix *A = gsl_matrix_calloc(N, N);
        gsl_vector *b = gsl_vector_calloc(N);
        gsl_permutation *p = gsl_permutation_alloc(N);
        x = gsl_vector_alloc(N);
        for (size_t i = 0; i < R; i++)
            for (size_t j = 0; j < C; j++) {
                nref rn = rr > 0 ? (nref){(long)(i * C + j), 0} : (nref){-1, v[i]};
                nref cn = rc > 0 ? (nref){(long)(n_row + i * C + j), 0} : (nref){-1, 0};
                if (rr > 0) {
                    nref left = j == 0 ? (nref){-1, v[i]} : (nref){(long)(i * C + j - 1), 0};
                    stamp(A, b, left, rn, 1 / rr);
                }
                if (rc > 0) {
                    nref below = i + 1 < R ? (nref){(long)(n_row + (i + 1) * C + j), 0} : (nref){-1, 0};
                    stamp(A, b, cn, below, 1 / rc);
                }
                stamp(A, b, rn, cn, g[i * C + j]);
            }
        int sign;
        gsl_linalg_LU_decomp(A, p, &sign);
        gsl_linalg_LU_solve(A, p, b, x);
        gsl_matrix_free(A);
        gsl_vector_free(b);
        gsl_permutation_free(p);
    }
    for (size_t j = 0; j < C; j++)
        i_col[j] = 0;
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++) {
            double a = rr > 0 ? gsl_vector_get(x, i * C + j) : v[i];
            double c = rc > 0 ? gsl_vector_get(x, n_row + i * C + j) : 0;
            if (vr)
                vr[i * C + j] = a;
            if (vc)
                vc[i * C + j] = c;
            if (rc <= 0)
                i_col[j] += g[i * C + j] * a;
        }
    if (rc > 0)
        for (size_t j = 0; j < C; j++)
            i_col[j] = gsl_vector_get(x, n_row + (R - 1) * C + j) / rc;
    gsl_vector_free(x);
}

static double worst_rel(const double *a, const double *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-30));
    return w;
}

static void test_hand_solved(xb_spice *s, const xb_device *dev, gsl_rng *rng, size_t R, size_t C, int path)
{
    double *g = malloc(R * C * sizeof *g);
    for (size_t i = 0; i < R * C; i++)
        g[i] = 10e-6 + 390e-6 * gsl_rng_uniform(rng);
    xb_chip *c = make_tile(R, C, g);
    const size_t n = 5;
    double v[5 * 8], got[5 * 8], want[8];
    for (size_t i = 0; i < n * R; i++)
        v[i] = 0.2 * gsl_rng_uniform(rng);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = 1;
    o.r_row_ohm = 2.5;
    o.r_col_ohm = 1.5;
    o.row_drive = path;
    o.pwl_chunk = 2; /* several decks per call on the pwl path */
    xb_error err = {0};
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, got, NULL, &err) == XB_OK, "solve: %s", err.msg);
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        nodal(R, C, g, o.r_row_ohm, o.r_col_ohm, v + k * R, want, NULL, NULL);
        worst = fmax(worst, worst_rel(got + k * C, want, C));
    }
    /* A linear circuit: ngspice's LU and ours agree to round-off of a well-conditioned system. */
    CHECK(worst < 1e-9, "%zux%zu crossbar with wires vs nodal analysis (%s rows): worst relative difference %.3g", R,
          C, xb_spice_rows_name(path), worst);

    /* Without wires the column currents are V.G exactly. */
    o.r_row_ohm = o.r_col_ohm = 0;
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, got, NULL, &err) == XB_OK, "solve: %s", err.msg);
    worst = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < C; j++) {
            double sum = 0;
            for (size_t i = 0; i < R; i++)
                sum += v[k * R + i] * g[i * C + j];
            worst = fmax(worst, fabs(got[k * C + j] - sum) / sum);
        }
    CHECK(worst < 1e-9, "%zux%zu without wires vs V.G (%s rows): %.3g", R, C, xb_spice_rows_name(path), worst);
    xb_chip_free(&c);
    free(g);
}

/* The solvers this library has: KLU (what XB_SOLVER_AUTO takes from 43 on) and Sparse 1.3, or Sparse 1.3
 * alone before 43. Every agreement test runs on each. */
static int n_solvers(const xb_spice *s) { return xb_spice_version(s) >= 43 ? 2 : 1; }
static const int solvers[2] = {XB_SOLVER_AUTO, XB_SOLVER_SPARSE};

/* How closely two solves of the same linear-cell tile agree, for the solver that ran (xb_spice_klu, from
 * ngspice's own "Using ... as Direct Linear Solver") and the row path. A linear circuit converges in one
 * Newton step, so this is the linear solve's own error, not Newton's tolerance:
 * - Sparse 1.3 (39 and 46), either path, and KLU with external rows: round-off, measured 7e-15 and 6e-16
 *   on the 16x16 tile of test_sweep_vs_op (worst of 12 inputs): 1e-11 leaves a condition-number margin.
 * - KLU with pwl rows: 9.4e-10 on the same tile, and the same at RELTOL 1e-3, 1e-6, 1e-9, 1e-12, 1e-14
 *   (so not Newton's tolerance). The pwl B sources change their slope (v_k+1 - v_k) from point to point
 *   while KLU refactors with the pivot order of the first point, and ngspice's Newton solves for the
 *   new solution rather than a correction, so that solve error is never refined away. 1e-8: ten times
 *   the measured error, a hundred below the 1e-6 of a wrong conductance or a lost cell. */
static double linear_agreement_tol(const xb_spice *s, int path)
{
    return xb_spice_klu(s) && path == XB_ROWS_PWL ? 1e-8 : 1e-11;
}

/* One sweep over many inputs against one op per input. */
static void test_sweep_vs_op(xb_spice *s, const xb_device *dev, gsl_rng *rng, int linear, int path, int solver)
{
    const size_t R = 16, C = 16, n = 12;
    double g[16 * 16], v[12 * 16], a[12 * 16], b[12 * 16];
    for (size_t i = 0; i < R * C; i++)
        g[i] = 10e-6 + 70e-6 * gsl_rng_uniform(rng);
    for (size_t i = 0; i < n * R; i++)
        v[i] = 0.2 * gsl_rng_uniform(rng);
    xb_chip *c = make_tile(R, C, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = linear;
    o.row_drive = path;
    o.solver = solver;
    /* Tight Newton tolerances for the nonlinear cells: a warm-started sweep point and a cold op then
     * agree to about reltol (1e-9), far below the 3e-9 they differ by at the defaults. */
    o.reltol = 1e-9;
    o.abstol = 1e-18;
    o.vntol = 1e-12;
    xb_error err = {0};
    int st[12];
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, a, st, &err) == XB_OK, "sweep: %s", err.msg);
    int sweep_klu = xb_spice_klu(s);
    CHECK(xb_spice_solve_tile_op(s, c, 0, 0, 0, dev, &o, v, n, b, &err) == XB_OK, "op: %s", err.msg);
    CHECK(xb_spice_klu(s) == sweep_klu && sweep_klu == (solver == XB_SOLVER_AUTO && xb_spice_version(s) >= 43),
          "ngspice ran the solver asked for (%s)", xb_spice_solver_name(s));
    double w = worst_rel(a, b, n * C);
    /* Linear cells: the solver's own error (linear_agreement_tol); 1T1R cells: 100 x reltol, the Newton
     * tolerance both solvers converge to (measured 2e-14 with KLU and Sparse at reltol 1e-9). */
    double tol = linear ? linear_agreement_tol(s, path) : 1e-7;
    CHECK(w < tol, "%s cells, %s rows, %s: sweep vs op per input differ by %.3g (tolerance %.1g)",
          linear ? "linear" : "1T1R", xb_spice_rows_name(path), xb_spice_solver_name(s), w, tol);
    int all_ok = 1;
    for (size_t k = 0; k < n; k++)
        all_ok &= st[k] == XB_SOLVE_OK;
    CHECK(all_ok, "every point converged in the sweep");
    if (!linear) {
        /* Compensated 1T1R cells read g * v_read when the whole row is at v_read and wires are ideal. */
        double full[16], out[16];
        for (size_t i = 0; i < R; i++)
            full[i] = dev->v_read_V;
        o.r_row_ohm = o.r_col_ohm = 0;
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, full, 1, out, NULL, &err) == XB_OK, "read point: %s",
              err.msg);
        double ww = 0;
        for (size_t j = 0; j < C; j++) {
            double sum = 0;
            for (size_t i = 0; i < R; i++)
                sum += dev->v_read_V * g[i * C + j];
            ww = fmax(ww, fabs(out[j] - sum) / sum);
        }
        CHECK(ww < 1e-6, "compensated 1T1R cells at the read point vs G.v_read (%s rows): %.3g",
              xb_spice_rows_name(path), ww);
    }
    xb_chip_free(&c);
}

/* The two row-drive paths solve the same circuit: the same column currents, to round-off for linear
 * cells, within the tightened Newton tolerance for 1T1R cells (as test_sweep_vs_op). The pwl path
 * runs in chunks that do not divide the inputs evenly. */
static void test_paths_agree(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    const size_t R = 16, C = 16, n = 23;
    double g[16 * 16], v[23 * 16], a[23 * 16], b[23 * 16];
    for (size_t i = 0; i < R * C; i++)
        g[i] = xb_device_level_G(dev, (int)gsl_rng_uniform_int(rng, (unsigned long)dev->n_levels));
    for (size_t i = 0; i < n * R; i++)
        v[i] = dev->v_read_V * gsl_rng_uniform(rng);
    xb_chip *c = make_tile(R, C, g);
    for (int q = 0; q < n_solvers(s); q++)
    for (int linear = 1; linear >= 0; linear--) {
        xb_netlist_options o;
        xb_netlist_defaults(&o);
        o.linear_cells = linear;
        o.solver = solvers[q];
        o.reltol = 1e-9;
        o.abstol = 1e-18;
        o.vntol = 1e-12;
        o.pwl_chunk = 10;
        xb_error err = {0};
        int sa[23], sb[23], ok = 1;
        o.row_drive = XB_ROWS_EXTERNAL;
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, a, sa, &err) == XB_OK, "external: %s", err.msg);
        o.row_drive = XB_ROWS_PWL;
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, b, sb, &err) == XB_OK, "pwl: %s", err.msg);
        for (size_t k = 0; k < n; k++)
            ok &= sa[k] == XB_SOLVE_OK && sb[k] == XB_SOLVE_OK;
        CHECK(ok, "every input converged on both paths");
        /* The pwl path's error bounds the difference (linear_agreement_tol; 1.2e-10 measured with KLU, 7e-15
         * with Sparse 1.3). */
        double w = worst_rel(b, a, n * C), tol = linear ? linear_agreement_tol(s, XB_ROWS_PWL) : 1e-7;
        printf("external vs pwl row sources, %s cells, %s: largest relative difference %.3g (tolerance %.0e)\n",
               linear ? "linear" : "1T1R", xb_spice_solver_name(s), w, tol);
        CHECK(w < tol, "%s cells, %s: external vs pwl rows differ by %.3g", linear ? "linear" : "1T1R",
              xb_spice_solver_name(s), w);
    }
    xb_chip_free(&c);
}

/* The IR-drop map: each cell's current from the node voltages and wire resistances (Kirchhoff at its row
 * node) against an independent nodal analysis of the same tile, and zero deficit with ideal wires. */
static void test_irdrop(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    const size_t R = 5, C = 6;
    double g[5 * 6], vr[5 * 6], vc[5 * 6], icol[6], v[5];
    for (size_t i = 0; i < R * C; i++)
        g[i] = 10e-6 + 390e-6 * gsl_rng_uniform(rng);
    for (size_t i = 0; i < R; i++)
        v[i] = dev->v_read_V;
    xb_chip *c = make_tile(R, C, g);
    c->opt.v_read_V = dev->v_read_V;
    static const double wires[3][2] = {{2.5, 1.5}, {0, 1.5}, {3, 0}}; /* row, column ohms per segment */
    for (int w = 0; w < 3; w++) {
        xb_netlist_options o;
        xb_netlist_defaults(&o);
        o.linear_cells = 1;
        o.r_row_ohm = wires[w][0];
        o.r_col_ohm = wires[w][1];
        xb_irdrop m;
        xb_error err = {0};
        int rc = xb_irdrop_solve(s, c, 0, 0, 0, dev, &o, &m, &err);
        CHECK(rc == XB_OK, "IR-drop map: %s", err.msg);
        if (rc)
            continue;
        nodal(R, C, g, o.r_row_ohm, o.r_col_ohm, v, icol, vr, vc);
        double worst_i = 0, worst_d = 0, worst_v = 0, largest = 0;
        for (size_t i = 0; i < R; i++)
            for (size_t j = 0; j < C; j++) {
                size_t k = i * C + j;
                double want = g[k] * (vr[k] - vc[k]), ideal = g[k] * dev->v_read_V;
                worst_i = fmax(worst_i, fabs(m.i_cell_A[k] - want) / want);
                worst_d = fmax(worst_d, fabs(xb_irdrop_current_deficit(&m, i, j) - (1 - want / ideal)));
                worst_v = fmax(worst_v, fmax(fabs(m.v_row_node_V[k] - vr[k]), fabs(m.v_col_node_V[k] - vc[k])));
                largest = fmax(largest, xb_irdrop_current_deficit(&m, i, j));
            }
        printf("IR drop, wires %g/%g ohm: cell currents vs nodal analysis %.3g relative, current deficit up to "
               "%.3g\n", o.r_row_ohm, o.r_col_ohm, worst_i, largest);
        CHECK(worst_i < 1e-9, "cell currents from node voltages vs nodal analysis: %.3g", worst_i);
        CHECK(worst_d < 1e-9, "current deficit vs nodal analysis: %.3g", worst_d);
        CHECK(worst_v < 1e-12, "node voltages vs nodal analysis: %.3g V", worst_v);
        CHECK(largest > 1e-5, "wires of %g/%g ohm leave a current deficit (%.3g)", o.r_row_ohm, o.r_col_ohm, largest);
        xb_irdrop_free(&m);
    }
    /* Ideal wires: every cell sees v_read and carries g_S v_read. */
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = 1;
    o.r_row_ohm = o.r_col_ohm = 0;
    xb_irdrop m;
    xb_error err = {0};
    CHECK(xb_irdrop_solve(s, c, 0, 0, 0, dev, &o, &m, &err) == XB_OK, "ideal wires: %s", err.msg);
    double worst = 0;
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++)
            worst = fmax(worst, fmax(fabs(xb_irdrop_current_deficit(&m, i, j)), fabs(xb_irdrop_deficit(&m, i, j))));
    CHECK(worst == 0, "ideal wires: current and voltage deficits are exactly 0 (largest %.3g)", worst);
    xb_irdrop_free(&m);

    /* 1T1R cells: the Kirchhoff currents of a column add up to its column current from a sweep. */
    xb_netlist_defaults(&o);
    o.r_row_ohm = 2;
    o.r_col_ohm = 2;
    o.reltol = 1e-9;
    o.abstol = 1e-18;
    o.vntol = 1e-12;
    for (size_t i = 0; i < R * C; i++)
        c->layers[0].g_S[i] = xb_device_level_G(dev, (int)(i % (size_t)dev->n_levels));
    CHECK(xb_irdrop_solve(s, c, 0, 0, 0, dev, &o, &m, &err) == XB_OK, "1T1R map: %s", err.msg);
    double cols[6];
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, cols, NULL, &err) == XB_OK, "1T1R sweep: %s", err.msg);
    worst = 0;
    for (size_t j = 0; j < C; j++) {
        double sum = 0;
        for (size_t i = 0; i < R; i++)
            sum += m.i_cell_A[i * C + j];
        worst = fmax(worst, fabs(sum - cols[j]) / cols[j]);
    }
    CHECK(worst < 1e-7, "1T1R: the cells' Kirchhoff currents add up to the column currents (%.3g)", worst);
    xb_irdrop_free(&m);
    xb_chip_free(&c);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int found = 0;
    while (fp && !found && fgets(line, sizeof line, fp))
        found = strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return found;
}

/* ngSpice_Circ returns 0 even when it could not read the deck: the driver must see the error messages
 * and fail the call with them (a failure of the deck, not of some inputs), and the library must stay
 * usable for the next deck. */
static void test_load_errors(xb_spice *s, const xb_device *dev0)
{
    const size_t R = 4, C = 4, n = 3;
    double g[16], v[12], good[12], got[12];
    for (size_t i = 0; i < R * C; i++)
        g[i] = 50e-6 + 10e-6 * (double)i;
    for (size_t i = 0; i < n * R; i++)
        v[i] = 0.05 * (double)(i % 4);
    xb_chip *c = make_tile(R, C, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    xb_error err = {0};
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev0, &o, v, n, good, NULL, &err) == XB_OK, "reference: %s", err.msg);

    char old_rram[700];
    snprintf(old_rram, sizeof old_rram, "%s/old_rram.lib", dir);
    FILE *fp = fopen(old_rram, "w");
    if (fp) {
        fputs("* an RRAM file without the 1T1R cells\n.subckt rram_lin te be g=1e-4\nRm te be {1/g}\n.ends\n", fp);
        fclose(fp);
    }
    struct {
        const char *what, *field, *value, *ngspice_says;
    } cases[] = {
        {"missing MOSFET card", "mosfet", "/nonexistent/xb_card.lib", "Could not find include file"},
        {"model not in the card", "name", "nmos_not_there", "can't find model"},
        {"RRAM file without the cells", "rram", old_rram, "unknown subckt"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        xb_device d = *dev0;
        if (!strcmp(cases[k].field, "mosfet"))
            snprintf(d.mosfet_model_file, sizeof d.mosfet_model_file, "%s", cases[k].value);
        else if (!strcmp(cases[k].field, "name"))
            snprintf(d.mosfet_model_name, sizeof d.mosfet_model_name, "%s", cases[k].value);
        else
            snprintf(d.rram_model_file, sizeof d.rram_model_file, "%s", cases[k].value);
        int st[3] = {-1, -1, -1};
        for (int p = 0; p < 2; p++) {
            o.row_drive = paths[p];
            int rc = xb_spice_solve_tile(s, c, 0, 0, 0, &d, &o, v, n, got, st, &err);
            CHECK(rc == XB_EINPUT, "%s (%s rows): rc %d, want XB_EINPUT", cases[k].what, xb_spice_rows_name(paths[p]),
                  rc);
            CHECK(strstr(err.msg, cases[k].ngspice_says) != NULL, "%s: ngspice's message is passed on: %s",
                  cases[k].what, err.msg);
            CHECK(strstr(err.msg, cases[k].value) != NULL, "%s: the message names %s: %s", cases[k].what,
                  cases[k].value, err.msg);
            CHECK(xb_spice_deck_rejected(s) && !xb_spice_dead(s), "%s: a rejected deck, the library alive",
                  cases[k].what);
            /* The reason, not ngspice's echo of the deck's or the card's lines around it. */
            CHECK(!strstr(err.msg, "w=1e-06 l=1e-06") && !strstr(err.msg, "Error on line"),
                  "%s: no echoed netlist lines: %s", cases[k].what, err.msg);
            if (p == 0)
                printf("  %-28s -> %s\n", cases[k].what, err.msg);
        }
        /* The library reads the next good deck as if nothing happened. */
        o.row_drive = XB_ROWS_AUTO;
        CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev0, &o, v, n, got, NULL, &err) == XB_OK &&
                  worst_rel(got, good, n * C) == 0 && !xb_spice_deck_rejected(s),
              "after %s: the next deck solves as before (%s)", cases[k].what, err.msg);
    }
    unlink(old_rram);
    xb_chip_free(&c);
}

/* NaN, infinities and absurd values never reach ngspice (a `DC -nan` source overflows its stack): the deck
 * writer and every solver refuse them with XB_EINPUT naming the value, and the library stays alive. */
static void test_bad_values(xb_spice *s, const xb_device *dev0)
{
    const size_t R = 2, C = 4, n = 2; /* C even: differential pairs */
    double g[8], v[4], got[8], vr[8], vc[8];
    for (size_t i = 0; i < R * C; i++)
        g[i] = 20e-6 + 5e-6 * (double)i;
    for (size_t i = 0; i < n * R; i++)
        v[i] = 0.1;
    enum { READ_V, COND, R_ROW, GATE, ROW_V, V0, N_CASES };
    static const char *const what[N_CASES] = {"read voltage", "conductance", "wire resistance", "gate voltage",
                                              "row voltage", "rram_v0"};
    static const char *const says[N_CASES] = {"read voltage", "conductance", "wire resistances", "gate voltage",
                                              "row voltage", "rram_v0"};
    const double bad[3] = {NAN, INFINITY, 1e30};
    for (int k = 0; k < N_CASES; k++)
        for (int b = 0; b < 3; b++) {
            xb_chip *c = make_tile(R, C, g);
            xb_device d = *dev0;
            xb_netlist_options o;
            xb_netlist_defaults(&o);
            double vv[4];
            memcpy(vv, v, sizeof vv);
            if (k == READ_V)
                c->opt.v_read_V = bad[b];
            else if (k == COND)
                c->layers[0].g_S[5] = bad[b];
            else if (k == R_ROW)
                o.r_row_ohm = bad[b];
            else if (k == GATE)
                d.vg_read_V = b == 0 ? NAN : -bad[b];
            else if (k == ROW_V)
                vv[3] = -bad[b];
            else
                o.rram_v0_V = bad[b];
            xb_error err = {0};
            char *buf = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&buf, &len);
            int rc = xb_netlist_write_tile(mem, c, 0, 0, 0, &d, &o, XB_DECK_SWEEP, vv, n, NULL, &err);
            fclose(mem);
            CHECK(rc == XB_EINPUT && strstr(err.msg, says[k]), "deck with a %s of %g: rc %d: %s", what[k], bad[b], rc,
                  err.msg);
            CHECK(!buf || !strstr(buf, "nan") , "%s %g: nothing of the deck written", what[k], bad[b]);
            free(buf);
            if (b == 0)
                printf("  %-16s -> %s\n", what[k], err.msg);
            for (int p = 0; p < 2; p++) {
                o.row_drive = paths[p];
                memset(&err, 0, sizeof err);
                rc = xb_spice_solve_tile(s, c, 0, 0, 0, &d, &o, vv, n, got, NULL, &err);
                CHECK(rc == XB_EINPUT && strstr(err.msg, says[k]), "solve (%s rows) with a %s of %g: rc %d: %s",
                      xb_spice_rows_name(paths[p]), what[k], bad[b], rc, err.msg);
            }
            rc = xb_spice_solve_tile_op(s, c, 0, 0, 0, &d, &o, vv, n, got, &err);
            CHECK(rc == XB_EINPUT, "alter + op with a %s of %g: rc %d", what[k], bad[b], rc);
            if (k != ROW_V) {
                rc = xb_spice_tile_cell_voltages(s, c, 0, 0, 0, &d, &o, vv, vr, vc, &err);
                CHECK(rc == XB_EINPUT, "cell voltages with a %s of %g: rc %d", what[k], bad[b], rc);
            }
            CHECK(!xb_spice_dead(s), "%s %g: the library is alive", what[k], bad[b]);
            xb_chip_free(&c);
        }
    /* A good tile afterwards solves. */
    xb_chip *c = make_tile(R, C, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    xb_error err = {0};
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev0, &o, v, n, got, NULL, &err) == XB_OK && isfinite(got[0]) &&
              got[0] > 0, "a good tile after the refusals: %s", err.msg);
    xb_chip_free(&c);
}

/* A point Newton cannot solve: an RRAM whose sinh nonlinearity voltage is absurdly small (1e-12 V: any
 * cell voltage above 1 nV overflows sinh). Every input with a driven row fails; inputs with all rows at
 * 0 V (the trivial solution) converge. Failures are retried with stepping, then reported per input,
 * with NaN currents, and the sweep goes on after them: no error, no crash, no exit. */
static void test_nonconvergence(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    const size_t R = 8, C = 8, n = 12;
    double g[64], v[12 * 8], cur[12 * 8];
    for (size_t i = 0; i < R * C; i++)
        g[i] = 10e-6 + 390e-6 * gsl_rng_uniform(rng);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < R; i++)
            v[k * R + i] = k % 3 == 0 ? 0 : 0.2 * gsl_rng_uniform(rng);
    xb_chip *c = make_tile(R, C, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.rram_v0_V = 1e-12;
    o.row_drive = XB_ROWS_EXTERNAL;
    int st[12];
    xb_error err = {0};
    int rc = xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, cur, st, &err);
    CHECK(rc == XB_OK && !xb_spice_dead(s), "non-converging inputs are no error: rc %d %s", rc, err.msg);
    int as_expected = 1, nan_iff_failed = 1;
    for (size_t k = 0; k < n; k++) {
        as_expected &= st[k] == (k % 3 == 0 ? XB_SOLVE_OK : XB_SOLVE_FAILED);
        for (size_t j = 0; j < C; j++)
            nan_iff_failed &= (st[k] == XB_SOLVE_FAILED) == (isnan(cur[k * C + j]) != 0);
        printf("%d", st[k]);
    }
    printf("  <- statuses of 12 inputs with rram_v0 = 1e-12 V (0 ok, 1 retried, 2 failed)\n");
    CHECK(as_expected, "inputs at 0 V converge (XB_SOLVE_OK), driven inputs fail (XB_SOLVE_FAILED)");
    CHECK(nan_iff_failed, "exactly the failed inputs have NaN currents");
    /* Both retries ran before giving up: ngspice's cold-start homotopy and the fixed-step one. */
    CHECK(file_contains(log_path, "dynamic gmin stepping"), "the log shows a cold start with dynamic gmin stepping");
    CHECK(file_contains(log_path, "spice3 gmin stepping"), "the log shows the fixed-step (spice3) gmin stepping");
    /* The IR-drop map of such a tile: NaN voltages and currents, no error. */
    xb_irdrop m;
    rc = xb_irdrop_solve(s, c, 0, 0, 0, dev, &o, &m, &err);
    CHECK(rc == XB_OK && isnan(m.v_row_node_V[0]) && isnan(m.i_cell_A[R * C - 1]) &&
              isnan(xb_irdrop_current_deficit(&m, 0, 0)),
          "a map whose operating point does not converge is NaN: rc %d %s", rc, err.msg);
    if (!rc)
        xb_irdrop_free(&m);

    /* A milder case where a point that stops the warm sweep converges from a cold start: reported as
     * XB_SOLVE_RETRIED with finite currents. Run twice: the retry options are restored after each
     * retry, so the second run repeats the first exactly. */
    const size_t n2 = 30;
    double *v2 = malloc(n2 * R * sizeof *v2), *c1 = malloc(n2 * C * sizeof *c1), *c2 = malloc(n2 * C * sizeof *c2);
    int s1[30], s2[30];
    gsl_rng *r2 = gsl_rng_alloc(gsl_rng_mt19937); /* its own draws: this case was picked for its retries */
    for (size_t i = 0; i < R * C; i++)
        c->layers[0].g_S[i] = 10e-6 + 390e-6 * gsl_rng_uniform(r2);
    for (size_t k = 0; k < n2; k++)
        for (size_t i = 0; i < R; i++)
            v2[k * R + i] = 0.2 * gsl_rng_uniform(r2) * (k % 3 != 0);
    gsl_rng_free(r2);
    o.rram_v0_V = 1e-10;
    /* On Sparse 1.3, which every library has (`.options sparse` from 43 on): with KLU no input of this family
     * converges on a retry (rram_v0 1e-11 to 1e-6 V, both row paths, measured on 46: a point that stops
     * KLU's warm sweep fails its cold starts too), while Sparse retries some of these 30 on 39 and 46. The
     * retry logic is the driver's, the same for both solvers. */
    o.solver = XB_SOLVER_SPARSE;
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v2, n2, c1, s1, &err) == XB_OK, "v0 1e-10: %s", err.msg);
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v2, n2, c2, s2, &err) == XB_OK, "again: %s", err.msg);
    size_t retried = 0, failed = 0, same = 1, finite = 1;
    for (size_t k = 0; k < n2; k++) {
        retried += s1[k] == XB_SOLVE_RETRIED;
        failed += s1[k] == XB_SOLVE_FAILED;
        same &= s1[k] == s2[k];
        for (size_t j = 0; j < C; j++) {
            if (s1[k] != XB_SOLVE_FAILED)
                finite &= isfinite(c1[k * C + j]) != 0;
            same &= s1[k] == XB_SOLVE_FAILED || c1[k * C + j] == c2[k * C + j];
        }
        printf("%d", s1[k]);
    }
    printf("  <- rram_v0 = 1e-10 V: %zu retried, %zu failed of %zu\n", retried, failed, n2);
    CHECK(retried > 0, "some inputs converge on a retry (XB_SOLVE_RETRIED)");
    CHECK(finite, "retried and converged inputs have finite currents");
    CHECK(same, "a second run repeats the first (retry options restored)");
    free(v2), free(c1), free(c2);
    xb_chip_free(&c);
}

/* The solver is chosen per deck, and what is reported is what ngspice said it ran: KLU by default where the
 * library has it (43 and later), Sparse 1.3 on request or before 43; KLU asked of an older library is refused
 * (XB_EINPUT naming the version), as is a solver number that is none. */
static void test_solver_choice(xb_spice *s, const xb_device *dev)
{
    double g[4] = {1e-4, 2e-4, 3e-4, 4e-4}, v[2] = {0.1, 0.2}, out[2], ref[2];
    xb_chip *c = make_tile(2, 2, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = 1;
    xb_error err = {0};
    int has_klu = xb_spice_version(s) >= 43;
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, ref, NULL, &err) == XB_OK, "auto: %s", err.msg);
    CHECK(xb_spice_klu(s) == has_klu, "the default solver of ngspice %d: %s", xb_spice_version(s),
          xb_spice_solver_name(s));
    if (has_klu)
        CHECK(file_contains(log_path, "Using KLU as Direct Linear Solver"), "ngspice says it runs KLU");
    o.solver = XB_SOLVER_SPARSE;
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, out, NULL, &err) == XB_OK, "sparse: %s", err.msg);
    CHECK(!xb_spice_klu(s) && !strcmp(xb_spice_solver_name(s), "Sparse 1.3"), "Sparse asked for: %s ran",
          xb_spice_solver_name(s));
    if (has_klu)
        CHECK(file_contains(log_path, "Using SPARSE 1.3 as Direct Linear Solver"), "ngspice says it runs Sparse 1.3");
    CHECK(fabs(out[0] - ref[0]) <= 1e-11 * fabs(ref[0]), "2x2 linear tile, KLU and Sparse: %.17g vs %.17g", out[0],
          ref[0]);
    o.solver = XB_SOLVER_KLU;
    int rc = xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, out, NULL, &err);
    if (has_klu)
        CHECK(rc == XB_OK && xb_spice_klu(s), "KLU asked for: rc %d, %s ran", rc, xb_spice_solver_name(s));
    else
        CHECK(rc == XB_EINPUT && strstr(err.msg, "only Sparse 1.3"), "KLU asked of ngspice %d: rc %d %s",
              xb_spice_version(s), rc, err.msg);
    o.solver = 7;
    rc = xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, out, NULL, &err);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "solver 7"), "solver 7 refused: rc %d %s", rc, err.msg);
    CHECK(!xb_spice_dead(s), "the library is alive after the refusals");
    xb_chip_free(&c);
}

/* Memory stays flat across many tile loads (destroy, remcirc and history clearing work). */
static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(fp);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_memory_flat(xb_spice *s, const xb_device *dev)
{
    double g[8 * 8], v[4 * 8], out[4 * 8];
    for (int i = 0; i < 64; i++)
        g[i] = 20e-6 + 1e-6 * i;
    for (int i = 0; i < 32; i++)
        v[i] = 0.1;
    xb_chip *c = make_tile(8, 8, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    xb_error err = {0};
    for (int p = 0; p < 2; p++) {
        o.row_drive = paths[p];
        size_t bad = 0;
        for (int t = 0; t < 50; t++)
            bad += xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 4, out, NULL, &err) != XB_OK;
        long before = rss_kb();
        const int tiles = 1000;
        for (int t = 0; t < tiles; t++)
            bad += xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 4, out, NULL, &err) != XB_OK;
        long after = rss_kb();
        printf("memory, %s rows: %ld kB before, %ld kB after %d more tile loads (%.2f kB per tile)\n",
               xb_spice_rows_name(paths[p]), before, after, tiles, (double)(after - before) / tiles);
        CHECK(bad == 0, "%zu of %d solves failed (%s)", bad, tiles + 50, err.msg);
        /* Leaking a tile's circuit would cost tens of kB per load; allow 2 kB per tile of allocator noise
         * (8 kB under AddressSanitizer, whose quarantine holds freed blocks back: the growth it shows moves
         * between -5 and +2 kB per tile from run to run). */
#if defined(__SANITIZE_ADDRESS__)
        const long per_tile_kb = 8;
#else
        const long per_tile_kb = 2;
#endif
        CHECK(after - before < per_tile_kb * tiles, "resident memory grew %ld kB over %d tiles", after - before,
              tiles);
    }
    xb_chip_free(&c);
}

/* ngspice's `quit` calls ControlledExit: the context is dead from then on, every call refuses cleanly
 * (the library is not touched again) and closing it is safe. Runs last: this process's ngspice is gone. */
static void test_controlled_exit(xb_spice *s, const xb_device *dev)
{
    double g[4] = {1e-4, 2e-4, 3e-4, 4e-4}, v[2] = {0.1, 0.2}, out[2];
    xb_chip *c = make_tile(2, 2, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    CHECK(!xb_spice_dead(s), "alive before quit");
    xb_spice_command(s, "quit");
    CHECK(xb_spice_dead(s), "ControlledExit marks the context dead");
    xb_error err = {0};
    int rc = xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 1, out, NULL, &err);
    CHECK(rc == XB_ERUNTIME && strstr(err.msg, "replaced"), "a solve on a dead context: rc %d, %s", rc, err.msg);
    CHECK(xb_spice_command(s, "print all") != 0, "commands are refused after ControlledExit");
    xb_chip_free(&c);
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    /* A stray .spiceinit in the working folder (and $HOME pointing at it) that would heat every circuit
     * to 150 C and loosen Newton: the 1T1R golden tests below fail if ngspice reads it. */
    FILE *init = fopen(".spiceinit", "w");
    if (init) {
        fputs("option temp=150 reltol=0.5\n", init);
        fclose(init);
    }
    setenv("HOME", dir, 1);
    xb_device dev;
    xb_device_defaults(&dev);
    xb_error err = {0};
    xb_spice *s = NULL;
    snprintf(log_path, sizeof log_path, "%s/ngspice.log", dir);
    if (xb_spice_open(log_path, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("ngspice %d, solver %s\n", xb_spice_version(s), xb_spice_solver_name(s));
    CHECK(xb_spice_version(s) >= 30, "version detected: %d", xb_spice_version(s));
    CHECK(file_contains(log_path, "no user .spiceinit read"), "ngspice read xbarsim's stand-in .spiceinit");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    for (int p = 0; p < 2; p++) {
        test_hand_solved(s, &dev, rng, 2, 2, paths[p]);
        test_hand_solved(s, &dev, rng, 4, 4, paths[p]);
        test_hand_solved(s, &dev, rng, 8, 8, paths[p]);
        for (int q = 0; q < n_solvers(s); q++) {
            test_sweep_vs_op(s, &dev, rng, 1, paths[p], solvers[q]);
            test_sweep_vs_op(s, &dev, rng, 0, paths[p], solvers[q]);
        }
    }
    test_solver_choice(s, &dev);
    test_paths_agree(s, &dev, rng);
    test_irdrop(s, &dev, rng);
    printf("decks ngspice rejects (messages shown):\n");
    test_load_errors(s, &dev);
    printf("values refused before ngspice sees them (messages shown):\n");
    test_bad_values(s, &dev);
    test_nonconvergence(s, &dev, rng);
    test_memory_flat(s, &dev);
    test_controlled_exit(s, &dev);
    xb_spice_close(&s);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_spice");
}
