// test_energy: a tile's energy and settling time from the solved circuit, against closed forms
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "check.h"
#include "chip.h"
#include "device.h"
#include "energy.h"
#include "netlist.h"
#include "ngspice.h"
#include "tile_fixture.h"

static char dir[] = "/tmp/xb_test_energy_XXXXXX";

/* Linear cells, ideal wires: the sources' energy is sum(V_i^2 G_ij) t_read, to round-off; the cells take
 * all of it and the wires none. */
static void test_linear_no_wires(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    enum { R = 6, C = 8, N = 3 };
    double g[R * C], v[N * R], ps[N], pc[N], pw[N];
    for (size_t i = 0; i < R * C; i++)
        g[i] = (i % 7 == 3) ? 0 : 5e-6 + 200e-6 * gsl_rng_uniform(rng); /* some open cells */
    for (size_t k = 0; k < N * R; k++)
        v[k] = 0.2 * gsl_rng_uniform(rng);
    xb_chip *c = make_tile(R, C, g);
    xb_netlist_options o;
    xb_netlist_defaults(&o);
    o.linear_cells = 1;
    o.r_row_ohm = o.r_col_ohm = 0;
    xb_error err = {0};
    CHECK(xb_spice_tile_power(s, c, 0, 0, 0, dev, &o, v, N, ps, pc, pw, &err) == XB_OK, "power: %s", err.msg);
    const double t = 100e-9;
    double worst_s = 0, worst_c = 0;
    for (size_t k = 0; k < N; k++) {
        double want = 0;
        for (size_t i = 0; i < R; i++)
            for (size_t j = 0; j < C; j++)
                want += v[k * R + i] * v[k * R + i] * g[i * C + j];
        want *= t;
        worst_s = fmax(worst_s, fabs(ps[k] * t - want) / want);
        worst_c = fmax(worst_c, fabs(pc[k] * t - want) / want);
        CHECK(pw[k] == 0, "no wires, no wire energy (%g W)", pw[k]);
    }
    printf("linear cells, ideal wires: sources' energy vs sum(V^2 G) t: %.3g relative, cells' %.3g\n", worst_s,
           worst_c);
    CHECK(worst_s < 1e-12, "sources' energy = sum(V^2 G) t to round-off (%.3g relative)", worst_s);
    CHECK(worst_c < 1e-14, "cells' energy = sum(V^2 G) t to round-off (%.3g relative)", worst_c);
    xb_chip_free(&c);
}

/* With wires: cells + wires = sources (Tellegen; the three are computed independently: source currents,
 * segment voltages, Kirchhoff cell currents), for linear and 1T1R cells and each wiring, and the wires
 * take a share that grows with their resistance. */
static void test_balance(xb_spice *s, const xb_device *dev, gsl_rng *rng)
{
    enum { R = 8, C = 6, N = 4 };
    double g[R * C], v[N * R], ps[N], pc[N], pw[N];
    static const double wires[4][2] = {{2, 3}, {0, 3}, {2, 0}, {20, 30}};
    for (int cells = 0; cells < 2; cells++)
        for (int w = 0; w < 4; w++) {
            for (size_t i = 0; i < R * C; i++)
                g[i] = cells ? xb_device_level_G(dev, (int)(i % (size_t)dev->n_levels))
                             : 5e-6 + 300e-6 * gsl_rng_uniform(rng);
            for (size_t k = 0; k < N * R; k++)
                v[k] = dev->v_read_V * gsl_rng_uniform(rng);
            xb_chip *c = make_tile(R, C, g);
            c->opt.v_read_V = dev->v_read_V;
            xb_netlist_options o;
            xb_netlist_defaults(&o);
            o.linear_cells = !cells;
            o.r_row_ohm = wires[w][0];
            o.r_col_ohm = wires[w][1];
            o.reltol = 1e-9;
            o.abstol = 1e-18;
            o.vntol = 1e-12;
            xb_error err = {0};
            int rc = xb_spice_tile_power(s, c, 0, 0, 0, dev, &o, v, N, ps, pc, pw, &err);
            CHECK(rc == XB_OK, "power: %s", err.msg);
            double worst = 0, share = 0;
            for (size_t k = 0; k < N && !rc; k++) {
                worst = fmax(worst, fabs(pc[k] + pw[k] - ps[k]) / ps[k]);
                share = fmax(share, pw[k] / ps[k]);
                CHECK(ps[k] > 0 && pc[k] > 0 && pw[k] > 0, "%s cells, wires %g/%g: all powers positive (%g %g %g W)",
                      cells ? "1T1R" : "linear", o.r_row_ohm, o.r_col_ohm, ps[k], pc[k], pw[k]);
            }
            printf("%s cells, wires %g/%g ohm: |cells + wires - sources| / sources %.3g, wires' share up to %.3g\n",
                   cells ? "1T1R" : "linear", o.r_row_ohm, o.r_col_ohm, worst, share);
            /* Linear: round-off of a direct solve. 1T1R: Newton's tolerance (reltol 1e-9 above). */
            CHECK(worst < (cells ? 1e-7 : 1e-11), "cells + wires = sources (%.3g relative)", worst);
            CHECK(share > 1e-6 && share < 0.5, "wires take a nonzero share (%.3g)", share);
            xb_chip_free(&c);
        }
}

/* Settling: the settling time shrinks with the wire capacitance (linear cells: an RC network, so it is
 * proportional to it; 1T1R cells add their own, slower inner node) and is 0 without wires. */
static void test_settling(xb_spice *s, const xb_device *dev)
{
    enum { R = 16, C = 16 };
    double g[R * C], v[R];
    for (size_t i = 0; i < R * C; i++)
        g[i] = xb_device_level_G(dev, (int)(i % (size_t)dev->n_levels));
    for (size_t i = 0; i < R; i++)
        v[i] = dev->v_read_V;
    xb_chip *c = make_tile(R, C, g);
    c->opt.v_read_V = dev->v_read_V;
    for (int cells = 0; cells < 2; cells++) {
        xb_netlist_options o;
        xb_netlist_defaults(&o);
        o.linear_cells = !cells;
        o.r_row_ohm = 5;
        o.r_col_ohm = 5;
        double t[3], stop[3];
        static const double cw[3] = {1e-15, 1e-16, 1e-17};
        xb_error err = {0};
        for (int q = 0; q < 3; q++) {
            t[q] = stop[q] = NAN;
            CHECK(xb_spice_tile_settling(s, c, 0, 0, 0, dev, &o, v, cw[q], 1e-3, &t[q], &stop[q], &err) == XB_OK,
                  "settling: %s", err.msg);
        }
        printf("%s cells, 5/5 ohm wires: settling to 0.1%% in %.4g / %.4g / %.4g s with 1 / 0.1 / 0.01 fF per segment "
               "(transients of %.3g / %.3g / %.3g s)\n", cells ? "1T1R" : "linear", t[0], t[1], t[2], stop[0], stop[1],
               stop[2]);
        CHECK(t[0] > 0 && t[0] < stop[0], "settles inside the transient (%g of %g s)", t[0], stop[0]);
        CHECK(t[1] < t[0] && t[2] < t[1], "smaller wire capacitance settles sooner (%g, %g, %g s)", t[0], t[1], t[2]);
        /* RC scaling: 10x less capacitance is 10x faster, within the sampling (400 steps over 30 Elmore
         * delays, interpolated). */
        if (!cells)
            CHECK(fabs(t[0] / t[1] - 10) < 1 && fabs(t[1] / t[2] - 10) < 1, "settling scales with C (%.3g, %.3g)",
                  t[0] / t[1], t[1] / t[2]);
        else /* the access transistors' gate capacitance behind the RRAM sets a floor the wires add to */
            CHECK(t[2] > 1e-12 && t[0] - t[2] > 1e-13, "1T1R: a cell-limited floor plus the wires' share (%g, %g s)",
                  t[2], t[0] - t[2]);
        o.r_row_ohm = o.r_col_ohm = 0;
        double t0 = NAN, s0 = NAN;
        CHECK(xb_spice_tile_settling(s, c, 0, 0, 0, dev, &o, v, cw[0], 1e-3, &t0, &s0, &err) == XB_OK && t0 == 0,
              "no wires: settled at once (%g s)", t0);
        CHECK(xb_spice_tile_settling(s, c, 0, 0, 0, dev, &o, v, -1, 1e-3, &t0, &s0, &err) == XB_EINPUT,
              "a negative capacitance is refused");
        printf("  refused: %s\n", err.msg);
    }
    xb_chip_free(&c);
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    xb_device dev;
    xb_device_defaults(&dev);
    xb_error err = {0};
    xb_spice *s = NULL;
    if (xb_spice_open("ngspice.log", &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    test_linear_no_wires(s, &dev, rng);
    test_balance(s, &dev, rng);
    test_settling(s, &dev);
    gsl_rng_free(rng);
    xb_spice_close(&s);
    return check_summary("energy");
}
