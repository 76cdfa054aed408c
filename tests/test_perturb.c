// test_perturb: sample moments of every perturbation model, exact C2C counts, stuck-at rates and
// counts replayed from the same seed, reproducibility and the spec parser
//
// Tolerances: a sample mean of m draws with standard deviation sd lies within 5 sd/sqrt(m) of its
// expectation, and a sample variance within 5 var sqrt(2/(m-1)) (normal data); a binomial count within
// 5 sqrt(m p (1-p)). Each check fails by chance with probability < 1e-6, and the seeds are fixed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "chip.h"
#include "check.h"
#include "device.h"
#include "error.h"
#include "mc.h"
#include "npz.h"
#include "perturb.h"

#define N 200000
#define Z 5.0

typedef struct moments {
    double mean, var;
    size_t m;
} moments;

static moments moments_of(const double *x, size_t m)
{
    double s = 0, ss = 0;
    for (size_t i = 0; i < m; i++)
        s += x[i];
    double mean = s / (double)m;
    for (size_t i = 0; i < m; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return (moments){mean, ss / (double)(m - 1), m};
}

/* Mean within Z standard errors of want_mean, variance within Z standard errors of want_var. */
static void check_moments(moments mo, double want_mean, double want_var, const char *what)
{
    double se_mean = sqrt(want_var / (double)mo.m);
    double se_var = want_var * sqrt(2.0 / (double)(mo.m - 1));
    CHECK(fabs(mo.mean - want_mean) <= Z * se_mean, "%s: mean %.6g want %.6g (se %.3g)", what, mo.mean,
          want_mean, se_mean);
    CHECK(fabs(mo.var - want_var) <= Z * se_var, "%s: var %.6g want %.6g (se %.3g)", what, mo.var,
          want_var, se_var);
}

static gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    gsl_rng_set(r, seed);
    return r;
}

/* Weights uniform in [-1, 1] with one at 2 so that max |w| = 2. */
static void fill_weights(gsl_rng *r, double *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = 2.0 * gsl_rng_uniform(r) - 1.0;
    w[n / 3] = 2.0;
}

static void test_c2c(void)
{
    gsl_rng *r = rng_new(11);
    double *w = malloc(N * sizeof *w), *w0 = malloc(N * sizeof *w0), *d = malloc(N * sizeof *d);
    fill_weights(r, w0, N);
    const double ar = 0.3, sigma = 0.1, s = 2.0;
    memcpy(w, w0, N * sizeof *w);
    xb_perturb p;
    xb_error err = {0};
    CHECK(xb_perturb_parse("c2c:ar=0.3,sigma=0.1", &p, &err) == XB_OK, "parse: %s", err.msg);
    size_t changed = 0;
    CHECK(xb_perturb_apply(&p, r, w, N, &changed, &err) == XB_OK, "apply: %s", err.msg);
    size_t m = (size_t)round(ar * N), diff = 0, first_half = 0;
    for (size_t i = 0; i < N; i++) {
        if (w[i] != w0[i]) {
            d[diff++] = w[i] - w0[i];
            first_half += i < N / 2;
        }
    }
    CHECK(changed == m, "c2c reports %zu changed, want %zu", changed, m);
    CHECK(diff == m, "c2c changed %zu weights, want exactly %zu", diff, m);
    check_moments(moments_of(d, diff), 0.0, sigma * sigma * s * s, "c2c uniform changes");
    /* The selection is uniform: the first half holds a hypergeometric share of the m. */
    double sd_half = sqrt((double)m * 0.25 * (double)(N - m) / (double)(N - 1));
    CHECK(fabs((double)first_half - m / 2.0) <= Z * sd_half, "c2c first half has %zu of %zu", first_half, m);

    /* Counts: round(AR n), half away from zero; AR = 0 and 1. */
    double small[10];
    for (int i = 0; i < 10; i++)
        small[i] = 1.0;
    CHECK(xb_perturb_c2c(r, small, 3, 0.5, 0.1, 1.0) == 2, "round(1.5) = 2");
    CHECK(xb_perturb_c2c(r, small, 10, 0.25, 0.1, 1.0) == 3, "round(2.5) = 3");
    CHECK(xb_perturb_c2c(r, small, 10, 0.0, 0.1, 1.0) == 0, "ar 0");
    memcpy(w, w0, N * sizeof *w);
    CHECK(xb_perturb_c2c(r, w, N, 1.0, 0.1, 2.0) == N, "ar 1 count");
    diff = 0;
    for (size_t i = 0; i < N; i++)
        diff += w[i] != w0[i];
    CHECK(diff == N, "ar 1 changes every weight (%zu)", diff);
    memcpy(w, w0, N * sizeof *w);
    CHECK(xb_perturb_c2c(r, w, N, 0.1, 0.0, 2.0) == (size_t)(0.1 * N + 0.5) &&
              memcmp(w, w0, N * sizeof *w) == 0,
          "sigma 0 leaves the weights");
    CHECK(xb_perturb_c2c(r, w, 0, 0.5, 0.1, 1.0) == 0, "n = 0");

    /* Level-dependent: (w' - w) / |w| ~ N(0, sigma^2) on the chosen ones. */
    memcpy(w, w0, N * sizeof *w);
    CHECK(xb_perturb_parse("c2c-level:ar=0.5,sigma=0.2", &p, &err) == XB_OK, "parse level");
    CHECK(xb_perturb_apply(&p, r, w, N, &changed, &err) == XB_OK && changed == N / 2, "apply level");
    diff = 0;
    for (size_t i = 0; i < N; i++)
        if (w[i] != w0[i])
            d[diff++] = (w[i] - w0[i]) / fabs(w0[i]);
    CHECK(diff == N / 2, "c2c-level changed %zu", diff);
    check_moments(moments_of(d, diff), 0.0, 0.04, "c2c-level relative changes");
    /* Variance proportional to w^2: weights of 0.5 and of 0.05 in one layer. */
    for (size_t i = 0; i < N; i++)
        w[i] = w0[i] = i % 2 ? 0.5 : 0.05;
    xb_perturb_c2c_level(r, w, N, 1.0, 0.2);
    size_t n_big = 0, n_small = 0;
    double *d_small = malloc(N / 2 * sizeof *d_small);
    for (size_t i = 0; i < N; i++) {
        if (i % 2)
            d[n_big++] = w[i] - w0[i];
        else
            d_small[n_small++] = w[i] - w0[i];
    }
    check_moments(moments_of(d, n_big), 0.0, 0.2 * 0.2 * 0.25, "c2c-level w = 0.5");
    check_moments(moments_of(d_small, n_small), 0.0, 0.2 * 0.2 * 0.0025, "c2c-level w = 0.05");
    double zero[4] = {0, 0, 0, 0};
    xb_perturb_c2c_level(r, zero, 4, 1.0, 0.5);
    CHECK(zero[0] == 0 && zero[3] == 0, "c2c-level leaves w = 0");
    free(d_small);
    free(w);
    free(w0);
    free(d);
    gsl_rng_free(r);
}

static void test_mult_lognormal_additive(void)
{
    gsl_rng *r = rng_new(23);
    double *x = malloc(N * sizeof *x), *d = malloc(N * sizeof *d);
    xb_perturb p;
    xb_error err = {0};

    const double alpha = 0.1;
    static const double ws[] = {0.7, -2.0};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < N; i++)
            x[i] = ws[k];
        CHECK(xb_perturb_parse("mult:alpha=0.1", &p, &err) == XB_OK, "parse mult");
        CHECK(xb_perturb_apply(&p, r, x, N, NULL, &err) == XB_OK, "apply mult");
        check_moments(moments_of(x, N), ws[k], alpha * alpha * ws[k] * ws[k], "mult");
    }

    const double sigma = 0.3;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < N; i++)
            x[i] = ws[k];
        CHECK(xb_perturb_parse("lognormal:sigma=0.3", &p, &err) == XB_OK, "parse lognormal");
        CHECK(xb_perturb_apply(&p, r, x, N, NULL, &err) == XB_OK, "apply lognormal");
        int same_sign = 1;
        for (size_t i = 0; i < N; i++) {
            same_sign &= (x[i] > 0) == (ws[k] > 0);
            d[i] = log(x[i] / ws[k]);
        }
        CHECK(same_sign, "lognormal keeps the sign");
        check_moments(moments_of(d, N), 0.0, sigma * sigma, "lognormal log ratio");
        /* E[w'] = w exp(sigma^2 / 2) */
        moments mo = moments_of(x, N);
        double want = ws[k] * exp(sigma * sigma / 2);
        double sd = fabs(ws[k]) * sqrt((exp(sigma * sigma) - 1) * exp(sigma * sigma));
        CHECK(fabs(mo.mean - want) <= Z * sd / sqrt((double)N), "lognormal mean %g want %g", mo.mean, want);
    }

    for (size_t i = 0; i < N; i++)
        x[i] = 1.5;
    CHECK(xb_perturb_parse("additive:sigma=0.05", &p, &err) == XB_OK, "parse additive");
    CHECK(xb_perturb_on_outputs(&p) == 1, "additive acts on outputs");
    size_t changed = 0;
    CHECK(xb_perturb_apply(&p, r, x, N, &changed, &err) == XB_OK && changed == N, "apply additive");
    check_moments(moments_of(x, N), 1.5, 0.05 * 0.05, "additive");

    CHECK(xb_perturb_parse("none", &p, &err) == XB_OK && p.kind == XB_PERTURB_NONE, "parse none");
    x[0] = 3;
    CHECK(xb_perturb_apply(&p, r, x, 1, &changed, &err) == XB_OK && changed == 0 && x[0] == 3, "none");
    free(x);
    free(d);
    gsl_rng_free(r);
}

static void test_device_helpers(void)
{
    gsl_rng *r = rng_new(5);
    double *g = malloc(N * sizeof *g);
    const double g0 = 1e-5;
    for (size_t i = 0; i < N; i++)
        g[i] = g0;
    xb_perturb_d2d(r, g, N, 0.1);
    check_moments(moments_of(g, N), g0, (0.1 * g0) * (0.1 * g0), "d2d");

    /* Wide spread: clamped at 0, P(1 + 2 N < 0) = P(N < -0.5). */
    for (size_t i = 0; i < N; i++)
        g[i] = g0;
    xb_perturb_d2d(r, g, N, 2.0);
    size_t zeros = 0, negative = 0;
    for (size_t i = 0; i < N; i++) {
        zeros += g[i] == 0.0;
        negative += g[i] < 0.0;
    }
    double pz = 0.5 * erfc(0.5 / sqrt(2.0));
    CHECK(negative == 0, "d2d clamps: %zu negative", negative);
    CHECK(fabs((double)zeros - N * pz) <= Z * sqrt(N * pz * (1 - pz)), "d2d zeros %zu want %.0f", zeros,
          N * pz);

    /* Stuck-at: initial values differ from g_lrs and g_hrs. */
    const double p_lrs = 0.02, p_hrs = 0.05, g_lrs = 1e-4, g_hrs = 1e-7;
    for (size_t i = 0; i < N; i++)
        g[i] = 3e-5 + 1e-10 * (double)(i % 7);
    size_t n_lrs = 0, n_hrs = 0;
    xb_error err = {0};
    CHECK(xb_perturb_stuck_at(r, g, N, p_lrs, g_lrs, p_hrs, g_hrs, &n_lrs, &n_hrs, &err) == XB_OK,
          "stuck-at: %s", err.msg);
    size_t c_lrs = 0, c_hrs = 0, c_kept = 0;
    for (size_t i = 0; i < N; i++) {
        c_lrs += g[i] == g_lrs;
        c_hrs += g[i] == g_hrs;
        c_kept += g[i] == 3e-5 + 1e-10 * (double)(i % 7);
    }
    CHECK(c_lrs == n_lrs && c_hrs == n_hrs && c_kept == N - n_lrs - n_hrs, "stuck-at counts agree");
    CHECK(fabs((double)n_lrs - N * p_lrs) <= Z * sqrt(N * p_lrs * (1 - p_lrs)), "stuck LRS %zu", n_lrs);
    CHECK(fabs((double)n_hrs - N * p_hrs) <= Z * sqrt(N * p_hrs * (1 - p_hrs)), "stuck HRS %zu", n_hrs);
    CHECK(xb_perturb_stuck_at(r, g, N, 0, g_lrs, 0, g_hrs, &n_lrs, &n_hrs, &err) == XB_OK && n_lrs == 0 &&
              n_hrs == 0,
          "no faults");
    CHECK(xb_perturb_stuck_at(r, g, 100, 1, g_lrs, 0, g_hrs, &n_lrs, NULL, &err) == XB_OK && n_lrs == 100 &&
              g[99] == g_lrs,
          "all LRS");
    CHECK(xb_perturb_stuck_at(r, g, N, 0.6, g_lrs, 0.5, g_hrs, NULL, NULL, &err) == XB_EINPUT,
          "p sum > 1");
    CHECK(xb_perturb_stuck_at(r, g, N, -0.1, g_lrs, 0.5, g_hrs, NULL, NULL, &err) == XB_EINPUT, "p < 0");
    CHECK(xb_perturb_stuck_at(r, g, N, NAN, g_lrs, 0.5, g_hrs, NULL, NULL, &err) == XB_EINPUT, "p NaN");
    free(g);
    gsl_rng_free(r);
}

/* The conductance-domain kinds through the spec interface: parse, apply_g, and refusals. */
static void test_conductance_kinds(void)
{
    xb_perturb p;
    xb_error err = {0};
    CHECK(xb_perturb_parse("d2d:sigma=0.1", &p, &err) == XB_OK && p.kind == XB_PERTURB_D2D && p.sigma == 0.1 &&
              xb_perturb_on_conductances(&p) && !xb_perturb_on_outputs(&p),
          "d2d: %s", err.msg);
    CHECK(xb_perturb_parse("stuck:lrs=0.02,hrs=0.05", &p, &err) == XB_OK && p.kind == XB_PERTURB_STUCK &&
              p.p_lrs == 0.02 && p.p_hrs == 0.05,
          "stuck: %s", err.msg);
    CHECK(xb_perturb_parse("stuck:hrs=0.3", &p, &err) == XB_OK && p.p_lrs == 0 && p.p_hrs == 0.3, "lrs defaults to 0");
    CHECK(xb_perturb_parse("stuck:lrs=0.7,hrs=0.3", &p, &err) == XB_OK, "P + Q = 1 whatever its rounding: %s",
          err.msg);
    xb_error e = {0};
    CHECK(xb_perturb_parse("stuck:lrs=0.6,hrs=0.5", &p, &e) == XB_EINPUT && strstr(e.msg, "exceeds 1") &&
              strstr(e.msg, "stuck:lrs=0.6,hrs=0.5"),
          "P + Q > 1 refused with the reason: %s", e.msg);

    gsl_rng *r = rng_new(77), *replay = rng_new(77);
    double *g = malloc(N * sizeof *g), *h = malloc(N * sizeof *h);
    const double g0 = 2e-5;

    /* d2d through apply_g: g' / g0 - 1 ~ N(0, S^2) (S = 0.05: P(clamp) = P(N < -20), never). */
    for (size_t i = 0; i < N; i++)
        g[i] = g0;
    CHECK(xb_perturb_parse("d2d:sigma=0.05", &p, &err) == XB_OK, "parse d2d");
    size_t changed = 0;
    CHECK(xb_perturb_apply_g(&p, r, g, N, 1.0, 0.0, &changed, &err) == XB_OK && changed == N, "apply_g d2d");
    for (size_t i = 0; i < N; i++)
        h[i] = g[i] / g0 - 1.0;
    check_moments(moments_of(h, N), 0.0, 0.05 * 0.05, "d2d relative change");
    double zero_before = 0.0;
    CHECK(xb_perturb_apply_g(&p, r, &zero_before, 1, 1.0, 0.0, NULL, &err) == XB_OK && zero_before == 0.0,
          "d2d keeps g = 0 at 0");

    /* stuck through apply_g, replayed: the counts equal those of the same uniforms drawn by hand. */
    const double P = 0.03, Q = 0.07, g_lrs = 4e-4, g_hrs = 5e-6;
    gsl_rng_set(r, 2024);
    gsl_rng_set(replay, 2024);
    for (size_t i = 0; i < N; i++)
        g[i] = h[i] = 1e-4 + 1e-11 * (double)(i % 13);
    CHECK(xb_perturb_parse("stuck:lrs=0.03,hrs=0.07", &p, &err) == XB_OK, "parse stuck");
    CHECK(xb_perturb_apply_g(&p, r, g, N, g_lrs, g_hrs, &changed, &err) == XB_OK, "apply_g stuck: %s", err.msg);
    size_t want_lrs = 0, want_hrs = 0, mismatch = 0;
    for (size_t i = 0; i < N; i++) {
        double u = gsl_rng_uniform(replay), want = h[i];
        if (u < P)
            want = g_lrs, want_lrs++;
        else if (u < P + Q)
            want = g_hrs, want_hrs++;
        mismatch += g[i] != want;
    }
    printf("  stuck:lrs=0.03,hrs=0.07 on %d cells, seed 2024: %zu at LRS, %zu at HRS\n", N, want_lrs, want_hrs);
    CHECK(mismatch == 0, "%zu cells differ from the hand replay of the same uniforms", mismatch);
    CHECK(changed == want_lrs + want_hrs, "apply_g reports %zu stuck, replay %zu", changed, want_lrs + want_hrs);
    CHECK(fabs((double)want_lrs - N * P) <= Z * sqrt(N * P * (1 - P)), "LRS count %zu near %g", want_lrs, N * P);
    CHECK(fabs((double)want_hrs - N * Q) <= Z * sqrt(N * Q * (1 - Q)), "HRS count %zu near %g", want_hrs, N * Q);

    /* Each interface refuses the other domain's kinds, leaving the data alone. */
    double x[2] = {1, 2};
    CHECK(xb_perturb_apply(&p, r, x, 2, NULL, &e) == XB_EINPUT && strstr(e.msg, "xb_perturb_apply_g") &&
              x[0] == 1 && x[1] == 2,
          "apply refuses stuck: %s", e.msg);
    CHECK(xb_perturb_parse("mult:alpha=0.1", &p, &err) == XB_OK, "parse mult");
    CHECK(xb_perturb_apply_g(&p, r, x, 2, g_lrs, g_hrs, NULL, &e) == XB_EINPUT && x[0] == 1 && x[1] == 2,
          "apply_g refuses mult: %s", e.msg);
    xb_perturb hand = {.kind = XB_PERTURB_STUCK, .p_lrs = 0.9, .p_hrs = 0.2};
    CHECK(xb_perturb_apply_g(&hand, r, x, 2, g_lrs, g_hrs, NULL, &e) == XB_EINPUT && x[0] == 1,
          "apply_g checks a hand-built P + Q > 1");
    free(g);
    free(h);
    gsl_rng_free(r);
    gsl_rng_free(replay);
}

static void test_reproducible(void)
{
    static const char *const specs[] = {"c2c:ar=0.5,sigma=0.1", "c2c-level:ar=0.3,sigma=0.2", "mult:alpha=0.1",
                                        "lognormal:sigma=0.3", "additive:sigma=0.05", "d2d:sigma=0.1",
                                        "stuck:lrs=0.2,hrs=0.2"};
    enum { M = 1000 };
    double a[M], b[M], c[M];
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        xb_perturb p;
        xb_error err = {0};
        xb_perturb_parse(specs[k], &p, &err);
        gsl_rng *r1 = rng_new(42), *r2 = rng_new(42), *r3 = rng_new(43);
        for (int i = 0; i < M; i++)
            a[i] = b[i] = c[i] = 0.5 + 0.001 * i;
        if (xb_perturb_on_conductances(&p)) {
            xb_perturb_apply_g(&p, r1, a, M, 1.0, 0.0, NULL, &err);
            xb_perturb_apply_g(&p, r2, b, M, 1.0, 0.0, NULL, &err);
            xb_perturb_apply_g(&p, r3, c, M, 1.0, 0.0, NULL, &err);
        } else {
            xb_perturb_apply(&p, r1, a, M, NULL, &err);
            xb_perturb_apply(&p, r2, b, M, NULL, &err);
            xb_perturb_apply(&p, r3, c, M, NULL, &err);
        }
        CHECK(memcmp(a, b, sizeof a) == 0, "%s: same seed, same draws", specs[k]);
        CHECK(memcmp(a, c, sizeof a) != 0, "%s: another seed, other draws", specs[k]);
        gsl_rng_free(r1);
        gsl_rng_free(r2);
        gsl_rng_free(r3);
    }
}

static void test_parse(void)
{
    xb_perturb p;
    xb_error err = {0};
    CHECK(xb_perturb_parse("c2c:ar=0.5,sigma=0.1", &p, &err) == XB_OK && p.kind == XB_PERTURB_C2C &&
              p.ar == 0.5 && p.sigma == 0.1,
          "c2c");
    CHECK(xb_perturb_parse("c2c-level:ar=1,sigma=0.2", &p, &err) == XB_OK && p.kind == XB_PERTURB_C2C_LEVEL &&
              p.ar == 1 && p.sigma == 0.2,
          "c2c-level");
    CHECK(xb_perturb_parse("c2c:sigma=0.1", &p, &err) == XB_OK && p.ar == 1.0, "c2c ar defaults to 1");
    CHECK(xb_perturb_parse("c2c:sigma=0.1,ar=0.25", &p, &err) == XB_OK && p.ar == 0.25 && p.sigma == 0.1,
          "c2c keys in any order");
    CHECK(xb_perturb_parse("mult:alpha=0.1", &p, &err) == XB_OK && p.kind == XB_PERTURB_MULT &&
              p.alpha == 0.1 && p.sigma == 0 && p.ar == 0,
          "mult");
    CHECK(xb_perturb_parse("lognormal:sigma=0.3", &p, &err) == XB_OK && p.kind == XB_PERTURB_LOGNORMAL &&
              p.sigma == 0.3,
          "lognormal");
    CHECK(xb_perturb_parse("additive:sigma=0.05", &p, &err) == XB_OK && p.kind == XB_PERTURB_ADDITIVE &&
              p.sigma == 0.05 && xb_perturb_on_outputs(&p),
          "additive");
    CHECK(xb_perturb_parse("c2c:ar=0,sigma=0", &p, &err) == XB_OK, "zeros allowed");

    /* Format and parse back. */
    static const char *const good[] = {"none", "c2c:ar=0.3,sigma=0.1", "c2c-level:ar=1,sigma=0.2",
                                       "mult:alpha=0.1", "lognormal:sigma=0.3", "additive:sigma=0.05",
                                       "d2d:sigma=0.03", "stuck:lrs=0.01,hrs=0.02", "stuck:lrs=0,hrs=1"};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        xb_perturb a, b;
        char buf[128];
        xb_perturb_parse(good[k], &a, &err);
        int len = xb_perturb_format(&a, buf, sizeof buf);
        CHECK(len > 0 && (size_t)len < sizeof buf, "format %s", good[k]);
        CHECK(xb_perturb_parse(buf, &b, &err) == XB_OK && a.kind == b.kind && a.ar == b.ar &&
                  a.sigma == b.sigma && a.alpha == b.alpha && a.p_lrs == b.p_lrs && a.p_hrs == b.p_hrs,
              "round trip %s -> %s", good[k], buf);
        CHECK(strcmp(buf, good[k]) == 0, "canonical %s -> %s", good[k], buf);
        CHECK(xb_perturb_on_outputs(&a) == (a.kind == XB_PERTURB_ADDITIVE), "on_outputs %s", good[k]);
        CHECK(xb_perturb_on_conductances(&a) == (a.kind == XB_PERTURB_D2D || a.kind == XB_PERTURB_STUCK),
              "on_conductances %s", good[k]);
    }

    static const char *const bad[] = {"",
                                      "c2c",
                                      "c2c:",
                                      "c2c:ar=0.5",
                                      "c2c:ar=1.5,sigma=0.1",
                                      "c2c:ar=-0.1,sigma=0.1",
                                      "c2c:sigma=-1",
                                      "c2c:sigma=0.1,sigma=0.2",
                                      "c2c:sigma=abc",
                                      "c2c:sigma=",
                                      "c2c:sigma",
                                      "c2c:foo=1,sigma=0.1",
                                      "c2c:sigma=0.1,",
                                      "C2C:sigma=0.1",
                                      "mult:sigma=0.1",
                                      "mult:alpha=nan",
                                      "mult:alpha=-0.1",
                                      "lognormal:alpha=0.1",
                                      "lognormal:sigma=1e999",
                                      "additive:sigma=inf",
                                      "gauss:sigma=1",
                                      "none:sigma=1",
                                      "d2d:",
                                      "d2d:sigma=-0.1",
                                      "d2d:alpha=0.1",
                                      "stuck:lrs=0.6,hrs=0.5",
                                      "stuck:lrs=1.5",
                                      "stuck:hrs=-0.01",
                                      "stuck:lrs=0.1,lrs=0.2",
                                      "stuck:p=0.1",
                                      "stuck"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        xb_perturb q = {.kind = XB_PERTURB_MULT, .alpha = 0.123};
        xb_error e = {0};
        CHECK(xb_perturb_parse(bad[k], &q, &e) == XB_EINPUT && e.code == XB_EINPUT, "\"%s\" should fail", bad[k]);
        CHECK(strstr(e.msg, "allowed") != NULL, "\"%s\": message says what is allowed: %s", bad[k], e.msg);
        CHECK(strstr(e.msg, bad[k]) != NULL, "\"%s\": message names the spec: %s", bad[k], e.msg);
        CHECK(q.kind == XB_PERTURB_MULT && q.alpha == 0.123, "\"%s\": output untouched on failure", bad[k]);
    }
    xb_error e = {0};
    CHECK(xb_perturb_parse(NULL, &p, &e) == XB_EINPUT, "NULL spec");

    /* Hand-built structs are checked by apply. */
    gsl_rng *r = rng_new(1);
    double x[4] = {1, 2, 3, 4};
    xb_perturb h = {.kind = XB_PERTURB_C2C, .ar = 2.0, .sigma = 0.1};
    CHECK(xb_perturb_apply(&h, r, x, 4, NULL, &e) == XB_EINPUT && x[0] == 1, "apply checks ar");
    h = (xb_perturb){.kind = (xb_perturb_kind)99};
    CHECK(xb_perturb_check(&h, &e) == XB_EINPUT, "unknown kind");
    gsl_rng_free(r);
}

/* Per-trial stuck faults (xb_mc_perturb_chip) put a cell at the device's g_lrs_S / g_hrs_S, the values
 * program's --stuck-lrs / --stuck-hrs use, not at the mapping's g_max_S (the top level, below g_lrs_S),
 * also for a chip read back from its conductance map; a map of format 1 (no such values) is refused. */
static int all_equal(const xb_chip *c, double v)
{
    for (int l = 0; l < c->n_layers; l++)
        for (size_t i = 0; i < c->layers[l].rows * c->layers[l].cols; i++)
            if (c->layers[l].g_S[i] != v)
                return 0;
    return 1;
}

static void test_trial_stuck_device_values(void)
{
    xb_error err = {0};
    xb_device d;
    xb_device_defaults(&d);
    size_t sizes[3] = {12, 6, 4};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    xb_mlp_init(m, rng);
    xb_map_options o;
    xb_map_defaults(&o);
    xb_map_options_from_device(&o, &d);
    CHECK(o.g_lrs_S == d.g_lrs_S && o.g_hrs_S == d.g_hrs_S, "map options carry the device's LRS/HRS");
    CHECK(d.g_lrs_S > o.g_max_S * 1.01, "the test discriminates: g_lrs %g S above g_max %g S", d.g_lrs_S, o.g_max_S);
    xb_chip *base = NULL;
    CHECK(xb_chip_map(m, &o, NULL, 0, &base, &err) == XB_OK, "map: %s", err.msg);
    xb_chip *chip = xb_chip_clone(base);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_layer_perturb p;

    CHECK(xb_layer_perturb_parse("stuck:lrs=1", 2, &p, &err) == XB_OK, "parse: %s", err.msg);
    CHECK(xb_mc_perturb_chip(base, &p, 1, rng, chip, &bo, &err) == XB_OK, "trial: %s", err.msg);
    CHECK(all_equal(chip, d.g_lrs_S), "stuck:lrs=1: every cell at the device's g_lrs_S = %g S", d.g_lrs_S);
    CHECK(xb_layer_perturb_parse("stuck:hrs=1", 2, &p, &err) == XB_OK, "parse: %s", err.msg);
    CHECK(xb_mc_perturb_chip(base, &p, 1, rng, chip, &bo, &err) == XB_OK, "trial: %s", err.msg);
    CHECK(all_equal(chip, d.g_hrs_S), "stuck:hrs=1: every cell at the device's g_hrs_S = %g S", d.g_hrs_S);

    /* The conductance map records them: a chip read back sticks its cells at the same values. */
    char dir[] = "/tmp/test_perturb_XXXXXX", path[64], path1[64];
    CHECK(mkdtemp(dir) != NULL, "temporary folder");
    snprintf(path, sizeof path, "%s/chip.npz", dir);
    snprintf(path1, sizeof path1, "%s/chip-v1.npz", dir);
    xb_chip *loaded = NULL;
    CHECK(xb_chip_save(base, path, &err) == XB_OK && xb_chip_load(path, &loaded, &err) == XB_OK, "round trip: %s",
          err.msg);
    if (loaded) {
        CHECK(loaded->opt.g_lrs_S == d.g_lrs_S && loaded->opt.g_hrs_S == d.g_hrs_S, "map keeps g_lrs/g_hrs");
        xb_chip *lc = xb_chip_clone(loaded);
        CHECK(xb_layer_perturb_parse("stuck:lrs=1", 2, &p, &err) == XB_OK, "parse: %s", err.msg);
        CHECK(xb_mc_perturb_chip(loaded, &p, 1, rng, lc, &bo, &err) == XB_OK, "trial: %s", err.msg);
        CHECK(all_equal(lc, d.g_lrs_S), "loaded chip: stuck-at-LRS at g_lrs_S");
        xb_chip_free(&lc);
        xb_chip_free(&loaded);
    }

    /* A format-1 map (10 chip parameters, no LRS/HRS) still loads, but a stuck model is refused. */
    xb_npz *z = NULL;
    CHECK(xb_npz_read(path, &z, &err) == XB_OK, "read map: %s", err.msg);
    if (z) {
        size_t n = 0;
        while (xb_npz_at(z, n))
            n++;
        const xb_ndarray **arr = calloc(n, sizeof *arr);
        size_t s10[1] = {10};
        xb_ndarray *v1 = xb_ndarray_new("chip", 1, s10);
        for (size_t i = 0; i < n; i++)
            arr[i] = strcmp(xb_npz_at(z, i)->name, "chip") ? xb_npz_at(z, i) : v1;
        memcpy(v1->data, xb_npz_get(z, "chip")->data, 10 * sizeof(double));
        v1->data[0] = 1;
        CHECK(xb_npz_write(path1, arr, n, XB_DT_F8, &err) == XB_OK, "write v1 map: %s", err.msg);
        CHECK(xb_chip_load(path1, &loaded, &err) == XB_OK, "format 1 loads: %s", err.msg);
        if (loaded) {
            xb_chip *lc = xb_chip_clone(loaded);
            CHECK(xb_mc_perturb_chip(loaded, &p, 1, rng, lc, &bo, &err) == XB_EINPUT &&
                      strstr(err.msg, "xbarsim program"),
                  "format 1: stuck refused: %s", err.msg);
            CHECK(xb_layer_perturb_parse("d2d:sigma=0.1", 2, &p, &err) == XB_OK &&
                      xb_mc_perturb_chip(loaded, &p, 1, rng, lc, &bo, &err) == XB_OK,
                  "format 1: d2d still runs: %s", err.msg);
            xb_chip_free(&lc);
            xb_chip_free(&loaded);
        }
        xb_ndarray_free(&v1);
        free(arr);
        xb_npz_free(&z);
    }
    remove(path);
    remove(path1);
    remove(dir);
    xb_chip_free(&chip);
    xb_chip_free(&base);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

int main(void)
{
    test_c2c();
    test_mult_lognormal_additive();
    test_device_helpers();
    test_conductance_kinds();
    test_reproducible();
    test_parse();
    test_trial_stuck_device_values();
    return check_summary("test_perturb");
}
