// test_rram_model: the gap compact model in ngspice, circuit IGVVA and reading a circuit-programmed chip
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "check.h"
#include "chip.h"
#include "device.h"
#include "netlist.h"
#include "ngspice.h"
#include "program.h"
#include "program_circuit.h"

#define KB_EV 8.617333262e-5 /* Boltzmann constant in eV/K, as models/rram_gap.lib */

static char dir[] = "/tmp/xb_test_rram_XXXXXX";

/* 1. The state equation against its closed form. With beta = 0 and r_th = 0 the gap velocity depends on
 * the voltage alone, dg/dt = -A sinh(c V) with A = vel0 exp(-ea/(kB t0)), c = gamma0 a0 / (t_ox kB t0).
 * The top electrode ramps linearly to V in t_r and holds it, so
 *   g(T) = g(0) - A [ t_r (cosh(c V) - 1) / (c V) + (T - t_r) sinh(c V) ],
 * for SET (V > 0, the gap shrinks) and RESET (V < 0, it grows), while the gap stays clear of the windows. */
static void test_closed_form(xb_spice *s, const xb_device *d)
{
    const xb_rram_params *m = &d->rram;
    const double t_r = 10e-9, T = 1e-6, g_start = 1.2; /* nm */
    double A = m->vel0_m_per_s * 1e9 * exp(-m->ea_eV / (KB_EV * m->t0_K)); /* nm/s */
    double c = m->gamma0 * m->a0_m / m->t_ox_m / (KB_EV * m->t0_K);         /* 1/V */
    /* A voltage that moves the gap by about 0.4 nm in T. */
    double V = asinh(0.4 / (A * T)) / c;
    for (int sign = 1; sign >= -1; sign -= 2) {
        double v = sign * V;
        char deck[8192];
        snprintf(deck, sizeof deck,
                 "* closed form\n.include \"%s\"\n"
                 "Vte te 0 PWL(0 0 %.12g %.17g %.12g %.17g)\nVgi gi 0 DC %.17g\nVdea dea 0 DC 0\n"
                 "Xd te 0 gi dea rram_gap_dyn i0=%.17g g0=%.17g v0=%.17g vel0=%.17g ea=%.17g a0=%.17g tox=%.17g "
                 "gamma0=%.17g beta=0 t0=%.17g rth=0 gmin=%.17g gmax=%.17g\n.end\n",
                 m->model_file, t_r, v, T, v, g_start, m->i0_A, m->g0_m * 1e9, m->v0_V, m->vel0_m_per_s, m->ea_eV,
                 m->a0_m * 1e9, m->t_ox_m * 1e9, m->gamma0, m->t0_K, m->gap_min_m * 1e9, m->gap_max_m * 1e9);
        xb_error err = {0};
        int rc = xb_spice_load_text(s, "closed-form test", deck, &err);
        CHECK(rc == XB_OK, "closed-form deck loads: %s", err.msg);
        if (rc)
            return;
        CHECK(xb_spice_run(s, "tran 1n 1u") == 0, "transient runs");
        double g_end = xb_spice_vector_last(s, "xd.gap");
        double cv = c * v;
        double want = g_start - sign * A * (t_r * (cosh(cv) - 1) / fabs(cv) + (T - t_r) * sinh(fabs(cv)));
        double change = fabs(want - g_start);
        printf("closed form, %s at %+.4f V: gap %.6f nm -> %.6f nm (closed form %.6f nm)\n", sign > 0 ? "SET" : "RESET",
               v, g_start, g_end, want);
        CHECK(change > 0.3 && change < 0.5, "the test moves the gap by %g nm", change);
        /* The integration tolerance of ngspice (reltol 1e-3 of the charge): 0.2 % of the change. */
        CHECK_ABS(g_end, want, 2e-3 * change, sign > 0 ? "SET gap against the closed form"
                                                        : "RESET gap against the closed form");
        xb_spice_unload(s);
    }
}

/* 2. A SET pulse through the access transistor: the current plateaus at the compliance the gate sets,
 * I_c = 0.5 k_n (V_g - V_th)^2 (level-1 card in saturation: exact), never above it, and the gap shrinks. */
static void test_compliance(xb_circuit_prog *p, const xb_device *d)
{
    static double t[20000], i[20000];
    const double vgs[3] = {0.8, 1.0, 1.2};
    double prev_gap = INFINITY;
    for (int k = 0; k < 3; k++) {
        xb_circuit_pulse_result r;
        xb_error err = {0};
        int rc = xb_circuit_pulse(p, d->rram.gap_max_m, d->igvva.v_set_V, vgs[k], 0, &r, t, i, 20000, &err);
        CHECK(rc == XB_OK, "SET pulse at %g V: %s", vgs[k], err.msg);
        if (rc)
            return;
        double ov = vgs[k] - d->igvva.v_th_V, ic = 0.5 * d->igvva.k_n_A_per_V2 * ov * ov;
        printf("SET at V_g = %.2f V: compliance %.4g uA, peak %.6g uA, end of pulse %.6g uA, gap %.4f nm (%ld points)\n",
               vgs[k], ic * 1e6, r.i_peak_A * 1e6, r.i_plateau_A * 1e6, r.gap_end_m * 1e9, r.n_points);
        CHECK(r.i_peak_A <= ic * (1 + 1e-6), "peak %g A above the compliance %g A", r.i_peak_A, ic);
        CHECK_REL(r.i_plateau_A, ic, 1e-3, "current at the end of the pulse = compliance");
        CHECK(r.gap_end_m < d->rram.gap_max_m - 0.2e-9, "the SET shrank the gap: %g m", r.gap_end_m);
        CHECK(r.gap_end_m < prev_gap, "a higher gate voltage leaves a smaller gap: %g m after %g m", r.gap_end_m,
              prev_gap);
        prev_gap = r.gap_end_m;
    }
}

/* 3. Circuit IGVVA without variation lands every cell on its target; 4. a chip of those cells read by
 * the spice backend with gap cells reads each cell's verify read. */
static void test_igvva_and_read(xb_circuit_prog **pp, const xb_device *d)
{
    xb_circuit_prog *p = *pp;
    const int n = 8;
    double trg[8], gap[8];
    xb_igvva_result res[8];
    for (int l = 0; l < n; l++)
        trg[l] = d->i_trg_A[l];
    xb_error err = {0};
    int rc = xb_circuit_program_cells(p, trg, (size_t)n, NULL, res, gap, 0, &err);
    CHECK(rc == XB_OK, "circuit IGVVA without variation: %s", err.msg);
    if (rc)
        return;
    for (int l = 0; l < n; l++) {
        printf("level %d: target %.1f uA, read %.4f uA after %d pulses (V_g %.2f V), gap %.4f nm, %s\n", l,
               trg[l] * 1e6, res[l].i_read_A * 1e6, res[l].pulses, res[l].vg_final_V, gap[l] * 1e9,
               xb_igvva_status_name(res[l].status));
        CHECK(res[l].status == XB_IGVVA_OK, "level %d lands: %s", l, xb_igvva_status_name(res[l].status));
        CHECK(fabs(res[l].i_read_A - trg[l]) <= d->igvva.tolerance_A, "level %d read %g A outside %g +- %g A", l,
              res[l].i_read_A, trg[l], d->igvva.tolerance_A);
        CHECK_REL(res[l].g_S * d->v_read_V, res[l].i_read_A, 1e-12, "g_S is the noise-free verify read / v_read");
        if (l > 0)
            CHECK(res[l].pulses > res[l - 1].pulses, "higher targets take more pulses: %d after %d", res[l].pulses,
                  res[l - 1].pulses);
    }
    /* The gap a cell's g_S maps to is the gap programming left. */
    for (int l = 0; l < n; l++)
        CHECK_ABS(xb_netlist_cell_gap_m(d, res[l].g_S), gap[l], 1e-4 * d->rram.g0_m, "gap recovered from g_S");

    /* A 1 x 8 tile, one programmed cell per column, ideal wires: each column current is that cell's read. */
    size_t sizes[2] = {1, 4};
    xb_mlp *mlp = xb_mlp_new(1, sizes, XB_ACT_IDENTITY);
    for (size_t i = 0; i < 4; i++)
        mlp->W[0][i] = 0.1;
    xb_map_options mo;
    xb_map_defaults(&mo);
    mo.bias = XB_BIAS_DIGITAL;
    mo.tile_rows = 1;
    mo.tile_cols = 8;
    xb_chip *c = NULL;
    CHECK(xb_chip_map(mlp, &mo, NULL, 0, &c, NULL) == XB_OK && c, "chip");
    xb_mlp_free(&mlp);
    if (!c)
        return;
    c->opt.v_read_V = d->v_read_V;
    for (int l = 0; l < n; l++)
        c->layers[0].g_S[l] = res[l].g_S;
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.r_row_ohm = o.r_col_ohm = 0;
    o.gap_cells = 1;
    o.reltol = 1e-9;
    o.abstol = 1e-15;
    o.vntol = 1e-12;
    /* The same library: the programming deck goes, the tile deck comes. */
    xb_spice *s = xb_circuit_prog_spice(p);
    xb_spice_unload(s);
    double v_row = d->v_read_V, i_cols[8];
    rc = xb_spice_solve_tile(s, c, 0, 0, 0, d, &o, &v_row, 1, i_cols, NULL, &err);
    CHECK(rc == XB_OK, "gap-cell tile solves: %s", err.msg);
    for (int l = 0; !rc && l < n; l++) {
        printf("cell %d: verify read %.9g uA, spice read with gap cells %.9g uA\n", l, res[l].i_read_A * 1e6,
               i_cols[l] * 1e6);
        /* Newton's tolerance of the two operating points (default reltol 1e-3 in the verify read). */
        CHECK_REL(i_cols[l], res[l].i_read_A, 1e-6, "spice read of the circuit-programmed cell = its verify read");
    }
    /* The device's own non-linearity: at half the read voltage a gap cell reads less than half (sinh I-V
     * and the transistor), unlike a linear cell. */
    double v_half = d->v_read_V / 2, i_half[8];
    if (!rc && xb_spice_solve_tile(s, c, 0, 0, 0, d, &o, &v_half, 1, i_half, NULL, &err) == XB_OK) {
        CHECK(i_half[7] < 0.5 * i_cols[7] * (1 - 1e-3) || i_half[7] > 0.5 * i_cols[7] * (1 + 1e-3),
              "half the read voltage is not half the current: %g vs %g", i_half[7], i_cols[7]);
    }
    /* The review deck names the model. */
    char path[600];
    snprintf(path, sizeof path, "%s/gap.cir", dir);
    CHECK(xb_netlist_write_file(path, c, 0, 0, 0, d, &o, NULL, 0, "test", &err) == XB_OK, "review deck: %s", err.msg);
    FILE *fp = fopen(path, "r");
    char text[20000] = "";
    size_t len = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    text[len] = '\0';
    if (fp)
        fclose(fp);
    CHECK(strstr(text, "xb_1t1r_gap gap=") && strstr(text, "rram_gap.lib"), "deck uses the gap cells");
    xb_chip_free(&c);
    xb_circuit_prog_free(pp);
}

/* The device file's <rram> group: read, checked, and its model file checked where it is used. */
static void test_device_rram(void)
{
    xb_device d, f;
    xb_device_defaults(&d);
    xb_error err = {0};
    int rc = xb_device_load(XB_SOURCE_DIR "/models/hfo2_1t1r.xml", NULL, &f, &err);
    CHECK(rc == XB_OK, "default device file: %s", err.msg);
    CHECK(f.rram.i0_A == d.rram.i0_A && f.rram.g0_m == d.rram.g0_m && f.rram.v0_V == d.rram.v0_V &&
              f.rram.vel0_m_per_s == d.rram.vel0_m_per_s && f.rram.ea_eV == d.rram.ea_eV &&
              f.rram.a0_m == d.rram.a0_m && f.rram.t_ox_m == d.rram.t_ox_m && f.rram.gamma0 == d.rram.gamma0 &&
              f.rram.beta == d.rram.beta && f.rram.t0_K == d.rram.t0_K && f.rram.r_th_K_per_W == d.rram.r_th_K_per_W &&
              f.rram.gap_min_m == d.rram.gap_min_m && f.rram.gap_max_m == d.rram.gap_max_m &&
              f.rram.sigma_ea_eV == d.rram.sigma_ea_eV && f.rram.v_reset_V == d.rram.v_reset_V &&
              f.rram.t_rise_s == d.rram.t_rise_s,
          "<rram> of models/hfo2_1t1r.xml equals xb_device_defaults");
    CHECK(xb_device_check_rram_model(&f, &err) == XB_OK, "model file: %s", err.msg);
    xb_device bad = d;
    bad.rram.gap_max_m = 0.05e-9;
    CHECK(xb_device_check(&bad, &err) == XB_EINPUT && strstr(err.msg, "gap_max_m"), "gap_max below gap_min: %s",
          err.msg);
    bad = d;
    bad.rram.t_rise_s = 2e-6;
    CHECK(xb_device_check(&bad, &err) == XB_EINPUT && strstr(err.msg, "t_rise_s"), "rise longer than the pulse: %s",
          err.msg);
    bad = d;
    snprintf(bad.rram.model_file, sizeof bad.rram.model_file, "%s", XB_SOURCE_DIR "/models/rram.lib");
    CHECK(xb_device_check_rram_model(&bad, &err) == XB_EINPUT && strstr(err.msg, "rram_gap_dyn"),
          "a model file without the gap subcircuits: %s", err.msg);
    /* A file with a broken value names its line. */
    char path[600], text[16384];
    snprintf(path, sizeof path, "%s/bad_rram.xml", dir);
    FILE *in = fopen(XB_SOURCE_DIR "/models/hfo2_1t1r.xml", "r");
    size_t len = in ? fread(text, 1, sizeof text - 1, in) : 0;
    text[len] = '\0';
    if (in)
        fclose(in);
    char *at = strstr(text, "<ea_eV>0.38</ea_eV>");
    CHECK(at != NULL, "the default file has ea_eV 0.38");
    if (at) {
        memcpy(at, "<ea_eV>9.99</ea_eV>", 19);
        FILE *out = fopen(path, "w");
        if (out) {
            fputs(text, out);
            fclose(out);
        }
        int line = 1;
        for (char *q = text; q < at; q++)
            line += *q == '\n';
        char want[700];
        snprintf(want, sizeof want, "bad_rram.xml:%d: element <ea_eV>", line);
        rc = xb_device_load(path, XB_SOURCE_DIR "/models/device.xsd", &f, &err);
        CHECK(rc == XB_EINPUT && strstr(err.msg, want) && strstr(err.msg, "allowed"), "bad ea_eV: %s", err.msg);
    }
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    test_device_rram();
    xb_device d;
    xb_device_defaults(&d);
    char log_path[700];
    snprintf(log_path, sizeof log_path, "%s/ngspice.log", dir);
    xb_error err = {0};
    xb_circuit_prog *p = NULL;
    if (xb_circuit_prog_new(&d, log_path, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_closed_form(xb_circuit_prog_spice(p), &d);
    /* The closed-form decks replaced the programming deck: start again. */
    xb_circuit_prog_free(&p);
    xb_device quiet = d;
    quiet.rram.sigma_ea_eV = 0;
    quiet.sigma_read = 0;
    if (xb_circuit_prog_new(&quiet, log_path, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_compliance(p, &quiet);
    test_igvva_and_read(&p, &quiet);
    xb_circuit_prog_free(&p);
    return check_summary("rram_model");
}
