// test_stats: average ranks, Spearman and Kruskal-Wallis against hand values and scipy, and the logistic
// midpoint fit on exact and perturbed curves
//
// Reference values marked "scipy" came from scipy 1.10.1 (numpy 1.24.2, Debian python3-scipy) with the
// call quoted next to each. Tolerances: 1e-12 relative for values with a closed form, 1e-10 relative for
// scipy's p-values (both sides evaluate the same formula; only the special-function code differs),
// 1e-6 relative for fitted parameters (the optimisers stop at different points inside their tolerances).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"
#include "analysis.h"
#include "mc.h"
#include "metrics.h"
#include "stats.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_ranks(void)
{
    /* Sorted: 1 1 2 3 3 4 5 5 5 6 9 -> ranks 1.5 1.5 3 4.5 4.5 6 8 8 8 10 11. */
    const double x[] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
    const double want[] = {4.5, 1.5, 6, 1.5, 8, 11, 3, 10, 8, 4.5, 8};
    double r[NELEM(x)];
    double tie = xb_rank_average(x, NELEM(x), r);
    /* Two pairs and one triple: 2 (2^3 - 2) + (3^3 - 3) = 36. */
    CHECK(tie == 36, "tie term %g, want 36", tie);
    for (size_t i = 0; i < NELEM(x); i++)
        CHECK(r[i] == want[i], "rank[%zu] = %g, want %g", i, r[i], want[i]);

    double one = 7, r1 = 0;
    CHECK(xb_rank_average(&one, 1, &r1) == 0 && r1 == 1, "single value: rank %g", r1);
    CHECK(xb_rank_average(NULL, 0, NULL) == 0, "empty input");
    const double neg[] = {-0.0, 0.0, -1e300, 1e300};
    double rn[4];
    CHECK(xb_rank_average(neg, 4, rn) == 6 && rn[0] == 2.5 && rn[1] == 2.5 && rn[2] == 1 && rn[3] == 4,
          "-0 and +0 tie: %g %g %g %g", rn[0], rn[1], rn[2], rn[3]);

    /* 100000 values, each of 0..999 a hundred times in scrambled order: value v owns ranks
     * 100 v + 1 .. 100 v + 100, mean 100 v + 50.5; tie term 1000 (100^3 - 100). */
    const size_t n = 100000;
    double *big = malloc(n * sizeof *big), *rb = malloc(n * sizeof *rb);
    if (!big || !rb) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        big[i] = (double)((i * 7919) % 1000);
    double tb = xb_rank_average(big, n, rb);
    CHECK(tb == 1000.0 * (1e6 - 100), "big tie term %.17g", tb);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += rb[i] != 100 * big[i] + 50.5;
    CHECK(bad == 0, "%zu of %zu big ranks wrong", bad, n);
    free(big);
    free(rb);
}

static void test_spearman(void)
{
    double rho, p;
    xb_error err = {0};

    /* Adjacent pairs swapped: sum d^2 = 10, rho = 1 - 6 * 10 / (10 (100 - 1)). */
    const double x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const double y[] = {2, 1, 4, 3, 6, 5, 8, 7, 10, 9};
    CHECK(xb_spearman(x, y, 10, &rho, &p, &err) == XB_OK, "swap: %s", err.msg);
    CHECK_REL(rho, 1 - 60.0 / 990.0, 1e-14, "swap rho");
    /* scipy: stats.spearmanr(np.arange(1, 11.), [2,1,4,3,6,5,8,7,10,9]).pvalue */
    CHECK_REL(p, 5.484052998513666e-05, 1e-10, "swap p");

    /* scipy: stats.spearmanr([1,2,2,3,4,5,5,5,6,7], [2,1,3,3,5,4,6,7,7,9]) */
    const double xt[] = {1, 2, 2, 3, 4, 5, 5, 5, 6, 7};
    const double yt[] = {2, 1, 3, 3, 5, 4, 6, 7, 7, 9};
    CHECK(xb_spearman(xt, yt, 10, &rho, &p, &err) == XB_OK, "ties: %s", err.msg);
    CHECK_REL(rho, 0.9257365248800182, 1e-12, "ties rho");
    CHECK_REL(p, 0.00012157407536297871, 1e-10, "ties p");

    /* scipy: stats.spearmanr([0.5,0.5,1.0,2.0,2.0,2.0,3.5,4.0], [9,7,8,5,6,6,2,2]) */
    const double xn[] = {0.5, 0.5, 1.0, 2.0, 2.0, 2.0, 3.5, 4.0};
    const double yn[] = {9, 7, 8, 5, 6, 6, 2, 2};
    CHECK(xb_spearman(xn, yn, 8, &rho, &p, &err) == XB_OK, "negative: %s", err.msg);
    CHECK_REL(rho, -0.9318388040070494, 1e-12, "negative rho");
    CHECK_REL(p, 0.0007517636849106025, 1e-10, "negative p");

    /* Perfect order either way: |rho| = 1, p = 0 (scipy gives the same). */
    const double up[] = {0.1, 0.4, 0.5, 2.0, 7.0};
    const double down[] = {9, 8, 3, 2, -1};
    CHECK(xb_spearman(x, up, 5, &rho, &p, &err) == XB_OK && rho == 1 && p == 0, "monotone: %g %g", rho, p);
    CHECK(xb_spearman(x, down, 5, &rho, &p, &err) == XB_OK && rho == -1 && p == 0, "reversed: %g %g", rho, p);

    /* Constant input: no ranking, NaN rather than an error. */
    const double flat[] = {3, 3, 3, 3};
    CHECK(xb_spearman(x, flat, 4, &rho, &p, &err) == XB_OK && isnan(rho) && isnan(p), "constant y: %g %g", rho, p);
    CHECK(xb_spearman(flat, y, 4, &rho, &p, &err) == XB_OK && isnan(rho) && isnan(p), "constant x: %g %g", rho, p);

    xb_error e = {0};
    CHECK(xb_spearman(x, y, 2, &rho, &p, &e) == XB_EINPUT && e.code == XB_EINPUT, "n = 2 rejected");
    CHECK(strstr(e.msg, "at least 3") != NULL, "n = 2 message: %s", e.msg);
    const double withnan[] = {1, NAN, 3, 4};
    e = (xb_error){0};
    CHECK(xb_spearman(x, withnan, 4, &rho, &p, &e) == XB_EINPUT, "NaN rejected");
    CHECK(strstr(e.msg, "y[1]") != NULL, "NaN message names y[1]: %s", e.msg);
    const double withinf[] = {1, 2, INFINITY, 4};
    e = (xb_error){0};
    CHECK(xb_spearman(withinf, y, 4, &rho, &p, &e) == XB_EINPUT && strstr(e.msg, "x[2]") != NULL,
          "inf message names x[2]: %s", e.msg);
}

static void test_kruskal(void)
{
    double H, p;
    int df;
    xb_error err = {0};

    /* Architecture-size paper, Tables 4 and 5 (MNIST test accuracy of the FdNNs): below 4096 synapses
     * against 4096..8192. Fully separated, so ranks 1..4 and 5..8:
     * H = 12 / (8 * 9) (10^2 / 4 + 26^2 / 4) - 3 * 9 = 16/3. Table 6 reports p = 0.021. */
    const double acc[] = {0.87, 0.85, 0.83, 0.81, 0.914, 0.917, 0.918, 0.911};
    const int grp[] = {0, 0, 0, 0, 1, 1, 1, 1};
    CHECK(xb_kruskal_wallis(acc, grp, 8, 2, &H, &p, &df, &err) == XB_OK, "paper: %s", err.msg);
    CHECK_REL(H, 16.0 / 3.0, 1e-12, "paper H");
    CHECK(df == 1, "paper df %d", df);
    /* scipy: stats.kruskal([0.87,0.85,0.83,0.81], [0.914,0.917,0.918,0.911]).pvalue
     * (scipy's H is 5.333333333333329, its p 0.020921335337794052; chi2.sf(16/3, 1) = 0.020921335337794035) */
    CHECK_REL(p, 0.020921335337794035, 1e-10, "paper p");
    CHECK(round(p * 1000) == 21, "paper p %.4f rounds to Table 6's 0.021", p);

    /* The groups' order and labels do not matter. */
    const int swapped[] = {1, 1, 1, 1, 0, 0, 0, 0};
    double H2, p2;
    CHECK(xb_kruskal_wallis(acc, swapped, 8, 2, &H2, &p2, &df, &err) == XB_OK && H2 == H && p2 == p,
          "relabelled groups: H %g p %g", H2, p2);

    /* scipy: stats.kruskal([1,2,2,3,5], [2,3,3,4,6,6], [5,6,7,7,8]) */
    const double xt[] = {1, 2, 2, 3, 5, 2, 3, 3, 4, 6, 6, 5, 6, 7, 7, 8};
    const int gt[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    CHECK(xb_kruskal_wallis(xt, gt, NELEM(xt), 3, &H, &p, &df, &err) == XB_OK, "ties: %s", err.msg);
    CHECK_REL(H, 8.912912912912924, 1e-12, "ties H");
    CHECK_REL(p, 0.011603407703633302, 1e-10, "ties p");
    CHECK(df == 2, "ties df %d", df);

    /* An empty group is ignored: the same data declared with 5 groups, 1 and 4 unused. */
    int gt5[NELEM(gt)];
    for (size_t i = 0; i < NELEM(gt); i++)
        gt5[i] = gt[i] == 0 ? 0 : gt[i] + 1;
    CHECK(xb_kruskal_wallis(xt, gt5, NELEM(xt), 5, &H2, &p2, &df, &err) == XB_OK, "empty groups: %s", err.msg);
    CHECK_REL(H2, H, 1e-15, "empty groups H");
    CHECK_REL(p2, p, 1e-15, "empty groups p");
    CHECK(df == 2, "empty groups df %d", df);

    /* All values equal: nothing to rank, H = 0 and p = 1. */
    const double same[] = {0.5, 0.5, 0.5, 0.5, 0.5};
    const int gs[] = {0, 1, 0, 1, 2};
    CHECK(xb_kruskal_wallis(same, gs, 5, 3, &H, &p, &df, &err) == XB_OK && H == 0 && p == 1 && df == 2,
          "all equal: H %g p %g df %d", H, p, df);

    xb_error e = {0};
    const int out_of_range[] = {0, 0, 0, 0, 1, 1, 2, 1};
    CHECK(xb_kruskal_wallis(acc, out_of_range, 8, 2, &H, &p, &df, &e) == XB_EINPUT, "group 2 of k = 2");
    CHECK(strstr(e.msg, "group[6] = 2") != NULL, "message names group[6]: %s", e.msg);
    const int negative[] = {0, -1, 0, 0, 1, 1, 1, 1};
    e = (xb_error){0};
    CHECK(xb_kruskal_wallis(acc, negative, 8, 2, &H, &p, &df, &e) == XB_EINPUT && strstr(e.msg, "group[1]"),
          "negative group: %s", e.msg);
    const int one_group[] = {1, 1, 1, 1, 1, 1, 1, 1};
    e = (xb_error){0};
    CHECK(xb_kruskal_wallis(acc, one_group, 8, 3, &H, &p, &df, &e) == XB_EINPUT && strstr(e.msg, "non-empty"),
          "one non-empty group: %s", e.msg);
    e = (xb_error){0};
    CHECK(xb_kruskal_wallis(acc, grp, 8, 1, &H, &p, &df, &e) == XB_EINPUT, "k = 1: %s", e.msg);
    const double bad[] = {0.87, 0.85, NAN, 0.81, 0.914, 0.917, 0.918, 0.911};
    e = (xb_error){0};
    CHECK(xb_kruskal_wallis(bad, grp, 8, 2, &H, &p, &df, &e) == XB_EINPUT && strstr(e.msg, "x[2]"),
          "NaN value: %s", e.msg);
}

/* The model written out directly; fine where (sigma - mu) / s is moderate. */
static double logistic_plain(double sigma, double mu, double s, double da, double a_min)
{
    return 2 * da / (1 + exp((sigma - mu) / s)) + a_min;
}

#define MU 0.3
#define S 0.05
#define DA 0.44
#define AMIN 0.1
#define NPT 12

static void check_truth(const xb_logistic_fit *f, double tol, const char *what)
{
    char m[128];
    snprintf(m, sizeof m, "%s mu", what);
    CHECK_REL(f->mu, MU, tol, m);
    snprintf(m, sizeof m, "%s s", what);
    CHECK_REL(f->s, S, tol, m);
    snprintf(m, sizeof m, "%s delta_a", what);
    CHECK_REL(f->delta_a, DA, tol, m);
    snprintf(m, sizeof m, "%s a_min", what);
    CHECK_REL(f->a_min, AMIN, tol, m);
}

static void test_logistic_exact(void)
{
    double sigma[NPT + 2], y[NPT + 2], dy[NPT + 2];
    for (int i = 0; i < NPT; i++) {
        sigma[i] = 0.6 * i / (NPT - 1);
        y[i] = logistic_plain(sigma[i], MU, S, DA, AMIN);
        dy[i] = 0.01;
    }
    xb_logistic_fit f;
    xb_error err = {0};
    CHECK(xb_logistic_fit_run(sigma, y, dy, NPT, &f, &err) == XB_OK, "exact: %s", err.msg);
    check_truth(&f, 1e-6, "exact");
    CHECK(f.converged == 1, "exact fit converged (%d iterations)", f.iterations);
    CHECK(f.iterations > 0 && f.iterations < 100, "exact fit took %d iterations", f.iterations);
    CHECK(f.dof == NPT - 4, "dof %zu", f.dof);
    CHECK(f.chi2 >= 0 && f.chi2 < 1e-12, "exact chi2 %g", f.chi2);
    CHECK(isfinite(f.mu_err) && f.mu_err > 0 && isfinite(f.s_err) && f.s_err > 0 && isfinite(f.delta_a_err) &&
              f.delta_a_err > 0 && isfinite(f.a_min_err) && f.a_min_err > 0,
          "exact errors %g %g %g %g", f.mu_err, f.s_err, f.delta_a_err, f.a_min_err);
    CHECK_REL(xb_logistic_eval(&f, f.mu), f.a_min + f.delta_a, 1e-15, "F(mu) = a_min + delta_a");
    for (int i = 0; i < NPT; i++)
        CHECK_ABS(xb_logistic_eval(&f, sigma[i]), y[i], 1e-8, "exact curve reproduced");

    /* The same points in scrambled order: the start scans in sigma order, so the fit is the same. */
    double ps[NPT], py[NPT], pdy[NPT];
    for (int i = 0; i < NPT; i++) {
        int j = (i * 5) % NPT;
        ps[i] = sigma[j];
        py[i] = y[j];
        pdy[i] = dy[j];
    }
    xb_logistic_fit g;
    CHECK(xb_logistic_fit_run(ps, py, pdy, NPT, &g, &err) == XB_OK, "scrambled: %s", err.msg);
    check_truth(&g, 1e-6, "scrambled");

    /* Two points far in the tail, (sigma - mu) / s = 994 and 1994: the naive exp() overflows there. */
    sigma[NPT] = 50;
    sigma[NPT + 1] = 100;
    for (int i = NPT; i < NPT + 2; i++) {
        y[i] = AMIN;
        dy[i] = 0.01;
    }
    CHECK(xb_logistic_fit_run(sigma, y, dy, NPT + 2, &g, &err) == XB_OK, "tail: %s", err.msg);
    check_truth(&g, 1e-6, "tail");

    /* xb_logistic_eval far out in both tails stays finite and exact. */
    xb_logistic_fit t = {.mu = MU, .s = S, .delta_a = DA, .a_min = AMIN};
    CHECK(xb_logistic_eval(&t, MU + 1e6 * S) == AMIN, "right tail %.17g", xb_logistic_eval(&t, MU + 1e6 * S));
    CHECK_REL(xb_logistic_eval(&t, MU - 1e6 * S), AMIN + 2 * DA, 1e-15, "left tail");
    CHECK_REL(xb_logistic_eval(&t, 1e300), AMIN, 1e-15, "sigma 1e300");
    CHECK_REL(xb_logistic_eval(&t, MU), AMIN + DA, 1e-15, "eval at mu");
    CHECK_REL(xb_logistic_eval(&t, MU + S), logistic_plain(MU + S, MU, S, DA, AMIN), 1e-14, "eval at mu + s");
}

static void test_logistic_perturbed(void)
{
    /* Each point moved by e_i of its own uncertainty dy_i (sum e_i^2 = 7.39). */
    static const double e[NPT] = {0.3, -1.2, 0.8, 0.1, -0.5, 1.4, -0.9, 0.2, -0.3, 1.1, -0.7, 0.6};
    double sigma[NPT], y[NPT], dy[NPT], chi2_truth = 0;
    for (int i = 0; i < NPT; i++) {
        sigma[i] = 0.6 * i / (NPT - 1);
        dy[i] = 0.005 + 0.001 * i;
        y[i] = logistic_plain(sigma[i], MU, S, DA, AMIN) + dy[i] * e[i];
        chi2_truth += e[i] * e[i];
    }
    xb_logistic_fit f;
    xb_error err = {0};
    CHECK(xb_logistic_fit_run(sigma, y, dy, NPT, &f, &err) == XB_OK, "perturbed: %s", err.msg);
    CHECK(f.converged == 1, "perturbed fit converged");
    const double got[4] = {f.mu, f.s, f.delta_a, f.a_min}, se[4] = {f.mu_err, f.s_err, f.delta_a_err, f.a_min_err};
    const double truth[4] = {MU, S, DA, AMIN};
    const char *name[4] = {"mu", "s", "delta_a", "a_min"};
    for (int j = 0; j < 4; j++) {
        CHECK(isfinite(se[j]) && se[j] > 0, "%s error %g", name[j], se[j]);
        CHECK(fabs(got[j] - truth[j]) <= 3 * se[j], "%s = %g is %.2f errors from %g", name[j], got[j],
              fabs(got[j] - truth[j]) / se[j], truth[j]);
    }
    /* The minimum can be no worse than the truth, and chi2 is what the curve gives. */
    CHECK(f.chi2 <= chi2_truth, "chi2 %g above the truth's %g", f.chi2, chi2_truth);
    double chi2 = 0;
    for (int i = 0; i < NPT; i++) {
        double r = (xb_logistic_eval(&f, sigma[i]) - y[i]) / dy[i];
        chi2 += r * r;
    }
    CHECK_REL(f.chi2, chi2, 1e-12, "chi2 of the reported curve");

    /* scipy: p, pcov = optimize.curve_fit(F, sigma, y, p0=[0.3, 0.06, 0.4, 0.1], sigma=dy, absolute_sigma=True,
     * method='lm', xtol=1e-15, ftol=1e-15, gtol=1e-15, maxfev=100000) with F(x, mu, s, da, amin) =
     * 2 da / (1 + exp((x - mu) / s)) + amin on these points; errors max(1, sqrt(chi2/8)) sqrt(diag(pcov)),
     * here c = 1 (chi2 = 6.890388008619328). curve_fit fits s itself: the same minimum and errors. */
    CHECK_REL(f.mu, 0.2998516436708803, 1e-6, "scipy mu");
    CHECK_REL(f.s, 0.04889849675833593, 1e-6, "scipy s");
    CHECK_REL(f.delta_a, 0.43709351132681323, 1e-6, "scipy delta_a");
    CHECK_REL(f.a_min, 0.10427834514303168, 1e-6, "scipy a_min");
    CHECK_REL(f.chi2, 6.890388008619328, 1e-8, "scipy chi2");
    CHECK_REL(f.mu_err, 0.0021022775663813286, 1e-5, "scipy mu_err");
    CHECK_REL(f.s_err, 0.00175680513089249, 1e-5, "scipy s_err");
    CHECK_REL(f.delta_a_err, 0.005050236285783246, 1e-5, "scipy delta_a_err");
    CHECK_REL(f.a_min_err, 0.008663623955928467, 1e-5, "scipy a_min_err");

    /* Uncertainties 10x too small: chi2/dof > 1 inflates the errors by c = sqrt(chi2/dof). */
    double dys[NPT];
    for (int i = 0; i < NPT; i++)
        dys[i] = dy[i] / 10;
    xb_logistic_fit g;
    CHECK(xb_logistic_fit_run(sigma, y, dys, NPT, &g, &err) == XB_OK, "small dy: %s", err.msg);
    CHECK_REL(g.chi2, 100 * f.chi2, 1e-6, "small dy chi2");
    double c = sqrt(g.chi2 / (double)g.dof);
    CHECK(c > 1, "c = %g", c);
    /* Covariance scales by 1/100, c by 10: the errors come out as with the true dy times sqrt(chi2/dof). */
    CHECK_REL(g.mu_err, f.mu_err * c / 10, 1e-5, "scaled mu_err");
    CHECK_REL(g.a_min_err, f.a_min_err * c / 10, 1e-5, "scaled a_min_err");
}

static void test_logistic_bad(void)
{
    double sigma[NPT], y[NPT], dy[NPT];
    for (int i = 0; i < NPT; i++) {
        sigma[i] = 0.6 * i / (NPT - 1);
        y[i] = 0.55;
        dy[i] = 0.01;
    }
    xb_logistic_fit f;
    xb_error e = {0};
    /* Flat data: mu and s are not determined. Either an error or an unconverged fit is acceptable. */
    int rc = xb_logistic_fit_run(sigma, y, dy, NPT, &f, &e);
    CHECK(rc == XB_ERUNTIME || (rc == XB_OK && !f.converged), "flat data: rc %d converged %d", rc, f.converged);
    if (rc)
        CHECK(isnan(f.mu) && isnan(f.mu_err) && e.msg[0], "flat data: NaN result and a message (%s)", e.msg);

    for (int i = 0; i < NPT; i++)
        y[i] = logistic_plain(sigma[i], MU, S, DA, AMIN);
    e = (xb_error){0};
    CHECK(xb_logistic_fit_run(sigma, y, dy, 4, &f, &e) == XB_EINPUT && strstr(e.msg, "at least 5"),
          "n = 4: %s", e.msg);
    CHECK(isnan(f.mu) && isnan(f.s_err) && isnan(f.chi2), "inputs rejected: fit is NaN");
    dy[3] = 0;
    e = (xb_error){0};
    CHECK(xb_logistic_fit_run(sigma, y, dy, NPT, &f, &e) == XB_EINPUT && strstr(e.msg, "dy[3]"), "dy = 0: %s",
          e.msg);
    dy[3] = 0.01;
    y[5] = NAN;
    e = (xb_error){0};
    CHECK(xb_logistic_fit_run(sigma, y, dy, NPT, &f, &e) == XB_EINPUT && strstr(e.msg, "y[5]"), "NaN y: %s",
          e.msg);
    y[5] = 0.5;
    double same[NPT];
    for (int i = 0; i < NPT; i++)
        same[i] = 0.2;
    e = (xb_error){0};
    CHECK(xb_logistic_fit_run(same, y, dy, NPT, &f, &e) == XB_EINPUT && strstr(e.msg, "noise levels"),
          "one sigma: %s", e.msg);
}

/* The interval statistics of results files. References from scipy 1.10.1: Wilson's formula written out
 * in Python, scipy.stats.binomtest(k, n, 0.5).pvalue, scipy.stats.chi2.sf and scipy.stats.t.ppf. */
static void test_intervals(void)
{
    double lo, hi;
    xb_wilson_ci(8, 10, XB_Z95, &lo, &hi);
    CHECK_REL(lo, 0.49016247153664183, 1e-12, "Wilson 8/10 lower");
    CHECK_REL(hi, 0.9433178485456247, 1e-12, "Wilson 8/10 upper");
    xb_wilson_ci(0, 10, XB_Z95, &lo, &hi);
    CHECK_ABS(lo, 0, 1e-15, "Wilson 0/10 lower");
    CHECK_REL(hi, 0.2775327998628892, 1e-12, "Wilson 0/10 upper");
    xb_wilson_ci(9782, 10000, XB_Z95, &lo, &hi);
    CHECK_REL(lo, 0.9751489005590384, 1e-12, "Wilson 9782/10000 lower");
    CHECK_REL(hi, 0.9808838433992464, 1e-12, "Wilson 9782/10000 upper");

    /* McNemar: exact binomial below 25 discordant pairs, chi-square with continuity correction above. */
    double stat, p;
    xb_mcnemar(2, 8, &stat, &p);
    CHECK_REL(p, 0.109375, 1e-12, "McNemar exact 2/8 (= 2 * 56/1024)");
    xb_mcnemar(0, 5, &stat, &p);
    CHECK_REL(p, 0.0625, 1e-12, "McNemar exact 0/5");
    xb_mcnemar(30, 15, &stat, &p);
    CHECK_REL(stat, 4.355555555555555, 1e-12, "McNemar chi2 30/15 = (15-1)^2/45");
    CHECK_REL(p, 0.036888425707049914, 1e-9, "McNemar chi2 p 30/15");
    xb_mcnemar(0, 0, &stat, &p);
    CHECK(stat == 0 && p == 1, "McNemar without discordant pairs: p = 1");
    /* Two classifiers on the same inputs: input 1 only the first gets right, input 3 only the second. */
    const int pa[4] = {0, 1, 2, 1}, pb[4] = {0, 2, 2, 0};
    const unsigned char lab[4] = {0, 1, 2, 0};
    xb_paired pair;
    xb_paired_compare(pa, pb, lab, 4, &pair);
    CHECK(pair.agree == 2 && pair.only_a == 1 && pair.only_b == 1 && pair.p == 1, "paired: agree %zu, %zu/%zu, p %g",
          pair.agree, pair.only_a, pair.only_b, pair.p);
    CHECK(xb_count_correct(pa, lab, 4) == 3 && xb_count_correct(pb, lab, 4) == 3, "correct counts");

    /* Monte Carlo summary: mean, sample std, Student-t 95% interval of the mean. */
    double v[5] = {1, 2, 3, 4, 5};
    xb_mc_stats s;
    xb_mc_stats_of(v, 5, &s);
    CHECK_REL(s.mean, 3, 1e-15, "mean");
    CHECK_REL(s.std, sqrt(2.5), 1e-15, "sample std");
    CHECK_REL(s.ci95_lo, 1.0367568385224393, 1e-10, "t-interval lower (t = 2.7764451051977987)");
    CHECK_REL(s.ci95_hi, 6 - 1.0367568385224393, 1e-10, "t-interval upper");
    CHECK(s.min == 1 && s.max == 5 && s.n == 5, "min, max, n");
    xb_mc_stats_of(v, 1, &s);
    CHECK(s.std == 0 && s.ci95_lo == 1 && s.ci95_hi == 1, "one trial: no spread");

    /* The midpoint fit's weights: Monte Carlo spread of the mean plus the binomial error on N images. */
    CHECK_REL(xb_accuracy_uncertainty(0.9, 0.02, 4, 10000), sqrt(0.0004 / 4 + 0.09 / 10000), 1e-15,
              "accuracy uncertainty");
    CHECK(xb_accuracy_uncertainty(0.5, 0, 10, 100) > 0, "uncertainty stays positive when trials agree");
}

int main(void)
{
    test_intervals();
    test_ranks();
    test_spearman();
    test_kruskal();
    test_logistic_exact();
    test_logistic_perturbed();
    test_logistic_bad();
    return check_summary("test_stats");
}
