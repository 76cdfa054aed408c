// test_circuit_fit: the compact model's spread fitted to "measurements" made by the circuit itself at a
// known sigma (other seed) is recovered; the option checks; the caller's device is left as it was
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "calib.h"
#include "check.h"
#include "circuit_fit.h"
#include "device.h"
#include "program_circuit.h"

static char dir[] = "/tmp/xb_test_circuit_fit_XXXXXX";

/* "Measured" reads of n cells per level in lv[] made independently of the fit: circuit IGVVA of device d
 * (its own sigmas) with generator seed, then each state read once more with read noise, as an array is
 * read after programming. Written as a calibration file and loaded. */
static xb_calib *measure(const xb_device *d, const int *lv, int n_lv, int n, unsigned long seed, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    xb_circuit_prog *p = NULL;
    xb_error err = {0};
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *noise = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    gsl_rng_set(noise, seed + 1);
    int rc = xb_circuit_prog_new(d, NULL, &p, &err);
    CHECK(rc == XB_OK && f, "circuit for the measurements: %s", err.msg);
    if (rc || !f)
        exit(1);
    fprintf(f, "level,i_read_A\n");
    for (int j = 0; j < n_lv; j++)
        for (int i = 0; i < n; i++) {
            xb_igvva_result r;
            rc = xb_circuit_program_cells(p, &d->i_trg_A[lv[j]], 1, rng, &r, NULL, 0, &err);
            CHECK(rc == XB_OK, "measured cell: %s", err.msg);
            fprintf(f, "%d,%.9e\n", lv[j], r.g_S * d->v_read_V * (1 + d->sigma_read * gsl_ran_gaussian(noise, 1)));
        }
    fclose(f);
    xb_circuit_prog_free(&p);
    gsl_rng_free(rng);
    gsl_rng_free(noise);
    xb_calib *c = NULL;
    rc = xb_calib_load(path, d->n_levels, XB_CALIB_EMPIRICAL, &c, &err);
    CHECK(rc == XB_OK, "load %s: %s", path, err.msg);
    if (rc)
        exit(1);
    return c;
}

static void print_fit(const char *what, const xb_circuit_fit_result *r)
{
    for (int k = 0; k < r->n_candidates; k++) {
        const xb_circuit_fit_candidate *c = &r->cand[k];
        printf("%s: sigma_ea_eV %-6g sigma_read %-6g mean KS D %.3f |", what, c->sigma_ea_eV, c->sigma_read,
               c->mean_ks_d);
        for (int j = 0; j < r->n_levels; j++)
            printf(" L%d sd %.2f/%.2f uA D %.2f", c->level[j].level, c->level[j].sd_measured_A * 1e6,
                   c->level[j].sd_modelled_A * 1e6, c->level[j].ks_d);
        printf("%s\n", k == r->best ? "  <- fitted" : "");
    }
}

/* The checks of the options, and the grid parser: no ngspice needed. */
static void test_options(const xb_device *d)
{
    xb_error err = {0};
    double v[8];
    int n = 0;
    CHECK(xb_circuit_fit_parse_grid("--g", "0,0.005,0.04", 0, 1, v, 8, &n, &err) == XB_OK && n == 3 && v[2] == 0.04,
          "grid parsed: %s", err.msg);
    CHECK(xb_circuit_fit_parse_grid("--g", "0.01,0.01", 0, 1, v, 8, &n, &err) == XB_EINPUT &&
              strstr(err.msg, "strictly ascending"), "a repeated value is refused: %s", err.msg);
    CHECK(xb_circuit_fit_parse_grid("--g", "0.02,0.01", 0, 1, v, 8, &n, &err) == XB_EINPUT, "descending refused");
    CHECK(xb_circuit_fit_parse_grid("--g", "-0.01", 0, 1, v, 8, &n, &err) == XB_EINPUT &&
              strstr(err.msg, "out of range; allowed: 0 to 1"), "negative refused: %s", err.msg);
    CHECK(xb_circuit_fit_parse_grid("--g", "0,nan", 0, 1, v, 8, &n, &err) == XB_EINPUT, "nan refused");
    CHECK(xb_circuit_fit_parse_grid("--g", "0,", 0, 1, v, 8, &n, &err) == XB_EINPUT, "empty value refused");
    CHECK(xb_circuit_fit_parse_grid("--g", "0,1,2", 0, 5, v, 2, &n, &err) == XB_EINPUT &&
              strstr(err.msg, "more than 2"), "too many refused: %s", err.msg);

    char path[600];
    snprintf(path, sizeof path, "%s/one.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("level,i_read_A\n0,1e-5\n0,1.1e-5\n", f);
    fclose(f);
    xb_calib *c = NULL;
    CHECK(xb_calib_load(path, d->n_levels, XB_CALIB_EMPIRICAL, &c, &err) == XB_OK, "load: %s", err.msg);
    double g[2] = {0.01, 0.005};
    xb_circuit_fit_options o = {.grid_ea = g, .n_ea = 2, .cells_per_level = 4};
    CHECK(xb_circuit_fit_check(d, c, &o, "--ea", "--rd", "--cells", &err) == XB_EINPUT && strstr(err.msg, "--ea"),
          "descending grid refused, naming the option: %s", err.msg);
    o.n_ea = 1;
    o.cells_per_level = 1;
    CHECK(xb_circuit_fit_check(d, c, &o, "--ea", "--rd", "--cells", &err) == XB_EINPUT &&
              strstr(err.msg, "--cells: 1; allowed: 2 to"), "one cell refused: %s", err.msg);
    o.cells_per_level = 2;
    double gr[1] = {INFINITY};
    o.grid_read = gr;
    o.n_read = 1;
    CHECK(xb_circuit_fit_check(d, c, &o, "--ea", "--rd", "--cells", &err) == XB_EINPUT && strstr(err.msg, "--rd"),
          "infinite sigma_read refused: %s", err.msg);
    o.n_read = 0;
    CHECK(xb_circuit_fit_check(d, c, &o, "--ea", "--rd", "--cells", &err) == XB_OK, "good options: %s", err.msg);
    xb_circuit_fit_result r;
    o.cells_per_level = 0;
    CHECK(xb_circuit_fit_spread(d, c, &o, &r, &err) == XB_EINPUT && r.n_candidates == 0,
          "the fit checks its options itself");
    xb_circuit_fit_result_free(&r);
    xb_calib_free(&c);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    xb_device d;
    xb_error err = {0};
    if (xb_device_load(XB_SOURCE_DIR "/models/hfo2_1t1r.xml", NULL, &d, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_options(&d);

    /* sigma_ea_eV: measured at 0.04 eV (seed 11), fitted with seed 22 over a grid holding it. The spread of
     * the reads grows with sigma_ea_eV from the staircase's own landing spread (about 0.5 uA at 0 and
     * 5 meV) to the width of the verify window (+-2 uA, sd 1.15 uA uniform) and then stays there, so
     * 0.04 and 0.08 eV read alike: the fit must land on 0.04 or its upper neighbour, and must tell them
     * from the small spreads 0 and 0.01 eV. */
    {
        xb_device t = d;
        t.rram.sigma_ea_eV = 0.04;
        int lv[2] = {0, 2};
        xb_calib *cal = measure(&t, lv, 2, 24, 11, "ea.csv");
        double grid[4] = {0, 0.01, 0.04, 0.08};
        xb_device before = d;
        xb_circuit_fit_options o = {.grid_ea = grid, .n_ea = 4, .cells_per_level = 12, .seed = 22};
        xb_circuit_fit_result r;
        int rc = xb_circuit_fit_spread(&d, cal, &o, &r, &err);
        CHECK(rc == XB_OK, "fit: %s", err.msg);
        if (!rc) {
            print_fit("sigma_ea", &r);
            CHECK(r.n_candidates == 4 && r.n_levels == 2 && r.cells_per_level == 12, "4 candidates x 2 levels");
            CHECK(r.sigma_ea_eV == 0.04 || r.sigma_ea_eV == 0.08, "fitted sigma_ea_eV %g; want 0.04 (or 0.08)",
                  r.sigma_ea_eV);
            CHECK(r.sigma_read == d.sigma_read, "sigma_read not in the fit: the device's %g (got %g)", d.sigma_read,
                  r.sigma_read);
            CHECK(r.cand[r.best].mean_ks_d <= r.cand[0].mean_ks_d, "the best candidate's D is the smallest");
            for (int k = 0; k < r.n_candidates; k++)
                for (int j = 0; j < r.n_levels; j++) {
                    const xb_circuit_fit_level *l = &r.cand[k].level[j];
                    CHECK(l->n_measured == 24 && l->n_modelled == 12 && l->ks_d >= 0 && l->ks_d <= 1 &&
                              l->ks_p >= 0 && l->ks_p <= 1 && l->level == lv[j],
                          "candidate %d level %d: counts and KS in range", k, j);
                    const double *x = xb_circuit_fit_reads(&r, k, j);
                    for (int i = 1; x && i < 12; i++)
                        CHECK(x[i] >= x[i - 1], "modelled reads ascending");
                }
        }
        CHECK(!memcmp(&before, &d, sizeof d), "the caller's device is not modified");
        xb_circuit_fit_result_free(&r);
        xb_calib_free(&cal);
    }

    /* sigma_read: measured at 0.03 (seed 33) on level 5, fitted with seed 44 over {0.01, 0.03, 0.06}. At
     * 60 uA the last read's noise is sigma_read x 60 uA = 0.6, 1.8, 3.6 uA against the programmed states'
     * ~0.5 uA: the fit must find 0.03 itself. */
    {
        xb_device t = d;
        t.sigma_read = 0.03;
        int lv[1] = {5};
        xb_calib *cal = measure(&t, lv, 1, 24, 33, "read.csv");
        double ge[1] = {d.rram.sigma_ea_eV}, gr[3] = {0.01, 0.03, 0.06};
        xb_circuit_fit_options o = {.grid_ea = ge, .n_ea = 1, .grid_read = gr, .n_read = 3, .cells_per_level = 10,
                                    .seed = 44};
        xb_circuit_fit_result r;
        int rc = xb_circuit_fit_spread(&d, cal, &o, &r, &err);
        CHECK(rc == XB_OK, "fit: %s", err.msg);
        if (!rc) {
            print_fit("sigma_read", &r);
            CHECK(r.sigma_read == 0.03, "fitted sigma_read %g; want 0.03", r.sigma_read);
            CHECK(r.refined_param && !strcmp(r.refined_param, "sigma_read"), "the refined parameter is sigma_read");
            CHECK(isnan(r.refined) || (r.refined > 0.01 && r.refined < 0.06), "the parabola's vertex %g lies "
                  "between the best's neighbours, or is not given", r.refined);
        }
        xb_circuit_fit_result_free(&r);
        xb_calib_free(&cal);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("circuit_fit");
}
