// test_calib: measured read-current calibration: file checks, maximum-likelihood fits, KS statistic and
// p-value against known values, draws, and the IGVVA hook
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "calib.h"
#include "check.h"
#include "device.h"
#include "igvva.h"

static char dir[] = "/tmp/xb_test_calib_XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static double uniform_cdf(double x, const void *ctx)
{
    (void)ctx;
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

static void test_ks(void)
{
    /* D of {0.1, 0.5, 0.9} against U(0, 1): max over i of i/n - F, F - (i-1)/n = 0.2333... at 0.9 (1 - 0.9 = 0.1;
     * 0.9 - 2/3 = 0.2333) */
    double x[3] = {0.1, 0.5, 0.9};
    CHECK_ABS(xb_ks_one_sample(x, 3, uniform_cdf, NULL), 0.9 - 2.0 / 3.0, 1e-15, "KS D by hand");
    /* The Kolmogorov distribution: Q_KS(1) = 0.26999967, Q_KS(0.5) = 0.96394524, Q_KS(2) = 0.00067093
     * (tables of the limiting distribution); a huge ne makes the argument sqrt(ne) D. */
    double ne = 1e12, s = sqrt(ne) + 0.12 + 0.11 / sqrt(ne);
    CHECK_ABS(xb_ks_pvalue(1.0 / s, ne), 0.26999967, 1e-7, "Q_KS(1)");
    CHECK_ABS(xb_ks_pvalue(0.5 / s, ne), 0.96394524, 1e-7, "Q_KS(0.5)");
    CHECK_ABS(xb_ks_pvalue(2.0 / s, ne), 0.00067093, 1e-8, "Q_KS(2)");
    CHECK(xb_ks_pvalue(0, 10) == 1 && xb_ks_pvalue(1, 1000) < 1e-100 + 1e-300, "p at D = 0 and D = 1");
    double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[2] = {2.5, 10};
    CHECK(xb_ks_two_sample(a, 4, a, 4) == 0, "two samples: identical give D = 0");
    CHECK(xb_ks_two_sample(a, 4, b, 4) == 1, "two samples: disjoint give D = 1");
    CHECK_ABS(xb_ks_two_sample(a, 4, c, 2), 0.5, 1e-15, "two samples by hand (at 2: 2/4 - 0)");
}

static void test_load_and_fit(void)
{
    const char *p = write_file("ok.csv", "level,i_read_A\n0,1e-5\n0,2e-5\r\n0,3e-5\n2,4e-5\n2,4e-5\n\n");
    xb_calib *c = NULL;
    xb_error err = {0};
    CHECK(xb_calib_load(p, 3, XB_CALIB_NORMAL, &c, &err) == XB_OK, "load: %s", err.msg);
    if (!c)
        return;
    const xb_calib_fit *f = xb_calib_level_fit(c, 0);
    CHECK(f && f->n == 3, "level 0: 3 cells");
    CHECK(!xb_calib_level_fit(c, 1), "level 1: no data, not calibrated");
    CHECK_REL(f->mean_A, 2e-5, 1e-14, "normal MLE mean");
    CHECK_REL(f->sd_A, sqrt(2.0 / 3.0) * 1e-5, 1e-12, "normal MLE sd (divisor n)");
    double mu = (log(1e-5) + log(2e-5) + log(3e-5)) / 3, v = 0;
    for (int k = 1; k <= 3; k++)
        v += (log(k * 1e-5) - mu) * (log(k * 1e-5) - mu);
    CHECK_REL(f->mu_ln, mu, 1e-14, "lognormal MLE mu");
    CHECK_REL(f->sigma_ln, sqrt(v / 3), 1e-12, "lognormal MLE sigma");
    CHECK(xb_calib_level_fit(c, 2)->sd_A == 0, "level 2: equal cells, sd 0");
    /* Normal draws: mean and spread of 20000 draws within 5 standard errors. */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    double s = 0, s2 = 0;
    enum { N = 20000 };
    for (int k = 0; k < N; k++) {
        double d = xb_calib_draw(c, 0, rng);
        s += d, s2 += d * d;
    }
    double m = s / N, sd = sqrt(s2 / N - m * m);
    CHECK(fabs(m - f->mean_A) < 5 * f->sd_A / sqrt(N), "normal draws: mean %g (fit %g)", m, f->mean_A);
    CHECK(fabs(sd - f->sd_A) < 0.05 * f->sd_A, "normal draws: sd %g (fit %g)", sd, f->sd_A);
    /* Empirical: every draw is one of the measurements, each about a third of the time. */
    c->model = XB_CALIB_EMPIRICAL;
    int hits[3] = {0, 0, 0}, others = 0;
    for (int k = 0; k < 3000; k++) {
        double d = xb_calib_draw(c, 0, rng);
        int q = d == 1e-5 ? 0 : d == 2e-5 ? 1 : d == 3e-5 ? 2 : -1;
        if (q < 0)
            others++;
        else
            hits[q]++;
    }
    CHECK(others == 0 && hits[0] > 850 && hits[1] > 850 && hits[2] > 850, "empirical draws resample (%d %d %d, %d "
          "others)", hits[0], hits[1], hits[2], others);
    CHECK(isnan(xb_calib_draw(c, 1, rng)), "no data: NaN");
    CHECK_ABS(xb_calib_cdf(c, 0, 2e-5), 2.0 / 3, 1e-15, "empirical CDF");
    gsl_rng_free(rng);
    xb_calib_free(&c);
    CHECK(c == NULL, "free sets NULL");
}

static void test_bad_files(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"lvl,i\n0,1e-5\n", "line 1: header"},
        {"level,i_read_A\n0,1e-5\n\n3,1e-5\n", "line 4: level '3'; allowed: an integer 0 to 2"},
        {"level,i_read_A\n0,1e-5\n0,-1e-6\n", "line 3: i_read_A '-1e-6'; allowed: a finite read current above 0"},
        {"level,i_read_A\n0,nan\n", "line 2: i_read_A 'nan'"},
        {"level,i_read_A\n0,1e-5,7\n", "line 2: '0,1e-5,7'; expected two fields"},
        {"level,i_read_A\n0.5,1e-5\n", "line 2: level '0.5'"},
        {"level,i_read_A\n0,1e-5\n0,2e-5\n1,1e-5\n", "level 1 has a single measured cell"},
        {"level,i_read_A\n", "no measured cells"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = write_file("bad.csv", cases[k].text);
        xb_calib *c = NULL;
        xb_error err = {0};
        int rc = xb_calib_load(p, 3, XB_CALIB_EMPIRICAL, &c, &err);
        CHECK(rc == XB_EINPUT && c == NULL && strstr(err.msg, cases[k].want) && strstr(err.msg, p),
              "refused naming the file and '%s': %s", cases[k].want, err.msg);
        printf("  refused: %s\n", err.msg);
    }
    xb_calib *c = NULL;
    xb_error err = {0};
    CHECK(xb_calib_load("/nonexistent/reads.csv", 3, XB_CALIB_EMPIRICAL, &c, &err) != XB_OK, "a missing file");
}

/* The hook: with a calibration set, every cell on a measured level reads one of the measured currents
 * (empirical) and its conductance is that / v_read; cleared, programming is bit for bit as before. */
static void test_hook(void)
{
    xb_device d;
    xb_device_defaults(&d);
    char text[4096] = "level,i_read_A\n";
    for (int k = 0; k < 4; k++) {
        char row[64];
        snprintf(row, sizeof row, "1,%.17g\n", d.i_trg_A[1] * (1 + 0.01 * k));
        strcat(text, row);
    }
    xb_calib *c = NULL;
    xb_error err = {0};
    CHECK(xb_calib_load(write_file("hook.csv", text), d.n_levels, XB_CALIB_EMPIRICAL, &c, &err) == XB_OK, "%s",
          err.msg);
    enum { N = 40 };
    double trg[N];
    for (int i = 0; i < N; i++)
        trg[i] = d.i_trg_A[i % 2]; /* levels 0 and 1 */
    xb_igvva_result a[N], b[N], e[N];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    CHECK(xb_igvva_program(&d, trg, N, rng, a, NULL, &err) == XB_OK, "plain");
    size_t n_cal = 0;
    xb_igvva_set_calibration(c, &n_cal);
    gsl_rng_set(rng, 5);
    CHECK(xb_igvva_program(&d, trg, N, rng, b, NULL, &err) == XB_OK, "calibrated");
    xb_igvva_set_calibration(NULL, NULL);
    gsl_rng_set(rng, 5);
    CHECK(xb_igvva_program(&d, trg, N, rng, e, NULL, &err) == XB_OK, "cleared");
    CHECK(n_cal == N / 2, "cells on the measured level calibrated: %zu of %d", n_cal, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0)
            bad += memcmp(&a[i], &b[i], sizeof a[i]) != 0; /* level 0 has no data: the model's read */
        else {
            int member = 0;
            for (size_t k = 0; k < c->n[1]; k++)
                member |= b[i].i_read_A == c->i_A[1][k];
            bad += !member || b[i].g_S != b[i].i_read_A / d.v_read_V || b[i].pulses != a[i].pulses;
        }
        bad += memcmp(&a[i], &e[i], sizeof a[i]) != 0;
    }
    CHECK(bad == 0, "hook: measured reads on level 1, the model's elsewhere, nothing once cleared (%d bad)", bad);
    gsl_rng_free(rng);
    xb_calib_free(&c);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_ks();
    test_load_and_fit();
    test_bad_files();
    test_hook();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("calib");
}
