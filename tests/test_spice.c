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
#include "device.h"
#include "netlist.h"
#include "ngspice.h"

/* A chip of one R x C tile (digital bias, differential columns) with the given conductances. */
static xb_chip *make_tile(size_t R, size_t C, const double *g)
{
    size_t sizes[2] = {R, C / 2};
    xb_mlp *m = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    for (size_t i = 0; i < R * C / 2; i++)
        m->W[0][i] = 0.1;
    xb_map_options o;
    xb_map_defaults(&o);
    o.bias = XB_BIAS_DIGITAL;
    o.tile_rows = R;
    o.tile_cols = C;
    xb_chip *c = NULL;
    xb_chip_map(m, &o, NULL, 0, &c, NULL);
    xb_mlp_free(&m);
    memcpy(c->layers[0].g_S, g, R * C * sizeof *g);
    return c;
}

/* Kirchhoff by hand: nodal analysis of the resistive crossbar, solved with an LU factorization.
 * Unknowns: row nodes r(i,j) and column nodes c(i,j); drivers at the left of rows through the first
 * segment, sense (0 V) at the bottom of columns through the last segment. */
static void nodal(size_t R, size_t C, const double *g, double rr, double rc, const double *v, double *i_col)
{
    size_t N = 2 * R * C;
    gsl_matrix *A = gsl_matrix_calloc(N, N);
    gsl_vector *b = gsl_vector_calloc(N), *x = gsl_vector_alloc(N);
    gsl_permutation *p = gsl_permutation_alloc(N);
#define RN(i, j) ((i) * C + (j))
#define CN(i, j) (R * C + (i) * C + (j))
#define STAMP(a, bb, gg)                                                                                     \
    do {                                                                                                   \
        *gsl_matrix_ptr(A, a, a) += gg;                                                                    \
        *gsl_matrix_ptr(A, bb, bb) += gg;                                                                  \
        *gsl_matrix_ptr(A, a, bb) -= gg;                                                                   \
        *gsl_matrix_ptr(A, bb, a) -= gg;                                                                   \
    } while (0)
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++) {
            if (j == 0) {
                *gsl_matrix_ptr(A, RN(i, 0), RN(i, 0)) += 1 / rr;
                *gsl_vector_ptr(b, RN(i, 0)) += v[i] / rr;
            } else {
                STAMP(RN(i, j - 1), RN(i, j), 1 / rr);
            }
            if (i + 1 < R)
                STAMP(CN(i, j), CN(i + 1, j), 1 / rc);
            else
                *gsl_matrix_ptr(A, CN(i, j), CN(i, j)) += 1 / rc;
            STAMP(RN(i, j), CN(i, j), g[i * C + j]);
        }
    int sign;
    gsl_linalg_LU_decomp(A, p, &sign);
    gsl_linalg_LU_solve(A, p, b, x);
    for (size_t j = 0; j < C; j++)
        i_col[j] = gsl_vector_get(x, CN(R - 1, j)) / rc;
    gsl_matrix_free(A);
    gsl_vector_free(b);
    gsl_vector_free(x);
    gsl_permutation_free(p);
}

static double worst_rel(const double *a, const double *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-30));
    return w;
}

static void test_hand_solved(xb_spice *s, const xb_device *dev, gsl_rng *rng, size_t R, size_t C)
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
    xb_error err = {0};
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, got, NULL, &err) == XB_OK, "solve: %s", err.msg);
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        nodal(R, C, g, o.r_row_ohm, o.r_col_ohm, v + k * R, want);
        worst = fmax(worst, worst_rel(got + k * C, want, C));
    }
    /* A linear circuit: ngspice's LU and ours agree to round-off of a well-conditioned system. */
    char what[64];
    snprintf(what, sizeof what, "%zux%zu crossbar with wires vs nodal analysis", R, C);
    CHECK(worst < 1e-9, "%s: worst relative difference %.3g", what, worst);

    /* Without wires the column currents are V.G exactly. */
    o.r_row_ohm = o.r_col_ohm = 0;
    xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, got, NULL, &err);
    worst = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < C; j++) {
            double sum = 0;
            for (size_t i = 0; i < R; i++)
                sum += v[k * R + i] * g[i * C + j];
            worst = fmax(worst, fabs(got[k * C + j] - sum) / sum);
        }
    CHECK(worst < 1e-9, "%zux%zu without wires vs V.G: %.3g", R, C, worst);
    xb_chip_free(&c);
    free(g);
}

/* One sweep over many inputs against one op per input. */
static void test_sweep_vs_op(xb_spice *s, const xb_device *dev, gsl_rng *rng, int linear)
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
    /* Tight Newton tolerances for the nonlinear cells: a warm-started sweep point and a cold op then
     * agree to about reltol (1e-9), far below the 3e-9 they differ by at the defaults. */
    o.reltol = 1e-9;
    o.abstol = 1e-18;
    o.vntol = 1e-12;
    xb_error err = {0};
    int st[12];
    CHECK(xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, n, a, st, &err) == XB_OK, "sweep: %s", err.msg);
    CHECK(xb_spice_solve_tile_op(s, c, 0, 0, 0, dev, &o, v, n, b, &err) == XB_OK, "op: %s", err.msg);
    double w = worst_rel(a, b, n * C);
    double tol = linear ? 1e-11 : 1e-7; /* round-off; 100 x reltol for the Newton-converged 1T1R cells */
    CHECK(w < tol, "%s cells: sweep vs op per input differ by %.3g (tolerance %.1g)", linear ? "linear" : "1T1R", w,
          tol);
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
        xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, full, 1, out, NULL, &err);
        double ww = 0;
        for (size_t j = 0; j < C; j++) {
            double sum = 0;
            for (size_t i = 0; i < R; i++)
                sum += dev->v_read_V * g[i * C + j];
            ww = fmax(ww, fabs(out[j] - sum) / sum);
        }
        CHECK(ww < 1e-6, "compensated 1T1R cells at the read point vs G.v_read: %.3g", ww);
    }
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
    for (int t = 0; t < 50; t++)
        xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 4, out, NULL, &err);
    long before = rss_kb();
    const int tiles = 1000;
    for (int t = 0; t < tiles; t++)
        xb_spice_solve_tile(s, c, 0, 0, 0, dev, &o, v, 4, out, NULL, &err);
    long after = rss_kb();
    printf("memory: %ld kB before, %ld kB after %d more tile loads (%.2f kB per tile)\n", before, after, tiles,
           (double)(after - before) / tiles);
    /* Leaking a tile's circuit would cost tens of kB per load; allow 2 kB per tile of allocator noise. */
    CHECK(after - before < 2 * tiles, "resident memory grew %ld kB over %d tiles", after - before, tiles);
    xb_chip_free(&c);
}

int main(void)
{
    char dir[] = "/tmp/xb_test_spice_XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    xb_device dev;
    xb_device_defaults(&dev);
    xb_error err = {0};
    xb_spice *s = NULL;
    char log[600];
    snprintf(log, sizeof log, "%s/ngspice.log", dir);
    if (xb_spice_open(log, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("ngspice %d, solver %s\n", xb_spice_version(s), xb_spice_solver_name(s));
    CHECK(xb_spice_version(s) >= 30, "version detected: %d", xb_spice_version(s));
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    test_hand_solved(s, &dev, rng, 2, 2);
    test_hand_solved(s, &dev, rng, 4, 4);
    test_hand_solved(s, &dev, rng, 8, 8);
    test_sweep_vs_op(s, &dev, rng, 1);
    test_sweep_vs_op(s, &dev, rng, 0);
    test_memory_flat(s, &dev);
    xb_spice_close(&s);
    gsl_rng_free(rng);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_spice");
}
