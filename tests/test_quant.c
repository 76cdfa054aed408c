// test_quant: level sets, nearest-level / n-nary / affine quantizers and the spec parsers, by hand values
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "check.h"
#include "chip.h"
#include "error.h"
#include "quant.h"

static const xb_norm NORM_NONE = {XB_NORM_NONE, 0.0};

/* Quantize one normalized value against a set (s = 1). */
static double q1(const xb_levelset *ls, double x)
{
    double out;
    int idx;
    xb_error err = {0};
    int rc = xb_quantize(ls, NORM_NONE, &x, 1, &out, &idx, NULL, &err);
    CHECK(rc == XB_OK, "quantize %g: %s", x, err.msg);
    return out;
}

static void test_paper_sets(void)
{
    static const size_t want_n[] = {0, 2, 3, 9, 21, 41};
    static const double den[] = {0, 1, 1, 4, 10, 20};
    xb_error err = {0};
    for (int s = 1; s <= 5; s++) {
        xb_levelset *ls = NULL;
        CHECK(xb_levelset_paper(s, &ls, &err) == XB_OK, "set %d: %s", s, err.msg);
        if (!ls)
            continue;
        char name[16];
        snprintf(name, sizeof name, "set%d", s);
        CHECK(strcmp(ls->name, name) == 0, "name %s", ls->name);
        CHECK(ls->kind == XB_LEVELS_PAPER, "kind");
        CHECK(ls->n == want_n[s], "set %d has %zu levels, want %zu", s, ls->n, want_n[s]);
        CHECK(ls->levels[0] == -1.0 && ls->levels[ls->n - 1] == 1.0, "set %d ends", s);
        for (size_t i = 1; i < ls->n; i++)
            CHECK(ls->levels[i] > ls->levels[i - 1], "set %d ascending at %zu", s, i);
        if (s >= 2) {
            int m = (int)(ls->n / 2);
            for (int i = -m; i <= m; i++)
                CHECK(ls->levels[i + m] == i / den[s], "set %d level %d: %.17g", s, i, ls->levels[i + m]);
        }
        xb_levelset_free(&ls);
        CHECK(ls == NULL, "free sets NULL");
    }
    /* Decimal values the paper lists, as the nearest doubles. */
    xb_levelset *s3 = NULL, *s4 = NULL, *s5 = NULL;
    xb_levelset_paper(3, &s3, &err);
    xb_levelset_paper(4, &s4, &err);
    xb_levelset_paper(5, &s5, &err);
    CHECK(s3->levels[1] == -0.75 && s3->levels[2] == -0.5 && s3->levels[6] == 0.5 && s3->levels[7] == 0.75,
          "set 3 values");
    CHECK(s4->levels[1] == -0.9 && s4->levels[2] == -0.8 && s4->levels[11] == 0.1 && s4->levels[19] == 0.9,
          "set 4 values");
    CHECK(s5->levels[1] == -0.95 && s5->levels[2] == -0.9 && s5->levels[21] == 0.05 &&
              s5->levels[39] == 0.95,
          "set 5 values");
    xb_levelset_free(&s3);
    CHECK(xb_levelset_paper(0, &s3, &err) == XB_EINPUT && s3 == NULL, "set 0");
    CHECK(xb_levelset_paper(6, &s3, &err) == XB_EINPUT, "set 6");
    xb_levelset_free(&s4);
    xb_levelset_free(&s5);

    /* Nearest level, ties toward zero (and +1 for the 0 tie of Set 1). */
    xb_levelset *ls = NULL;
    xb_levelset_paper(1, &ls, &err);
    CHECK(q1(ls, 0.0) == 1.0, "set1 0 -> +1 (tie)");
    CHECK(q1(ls, -0.0) == 1.0, "set1 -0 -> +1 (tie)");
    CHECK(q1(ls, 0.3) == 1.0, "set1 0.3");
    CHECK(q1(ls, -0.01) == -1.0, "set1 -0.01");
    CHECK(q1(ls, -7) == -1.0, "set1 -7");
    xb_levelset_free(&ls);
    xb_levelset_paper(2, &ls, &err);
    CHECK(q1(ls, 0.5) == 0.0, "set2 0.5 -> 0 (tie)");
    CHECK(q1(ls, -0.5) == 0.0, "set2 -0.5 -> 0 (tie)");
    CHECK(q1(ls, 0.51) == 1.0, "set2 0.51");
    CHECK(q1(ls, -0.51) == -1.0, "set2 -0.51");
    xb_levelset_free(&ls);
    xb_levelset_paper(3, &ls, &err);
    CHECK(q1(ls, 0.13) == 0.25, "set3 0.13 -> 0.25");
    CHECK(q1(ls, 0.12) == 0.0, "set3 0.12 -> 0");
    CHECK(q1(ls, 0.125) == 0.0, "set3 0.125 -> 0 (tie)");
    CHECK(q1(ls, -0.125) == 0.0, "set3 -0.125 -> 0 (tie)");
    CHECK(q1(ls, 0.375) == 0.25, "set3 0.375 -> 0.25 (tie)");
    CHECK(q1(ls, -0.375) == -0.25, "set3 -0.375 -> -0.25 (tie)");
    CHECK(q1(ls, 0.875) == 0.75, "set3 0.875 -> 0.75 (tie)");
    CHECK(q1(ls, 0.9) == 1.0, "set3 0.9");
    CHECK(q1(ls, 1.7) == 1.0, "set3 1.7");
    CHECK(q1(ls, -3) == -1.0, "set3 -3");
    CHECK(xb_levelset_nearest(ls, 0.13) == 5 && xb_levelset_nearest(ls, -1) == 0 &&
              xb_levelset_nearest(ls, 1) == 8,
          "set3 indices");
    xb_levelset_free(&ls);
    xb_levelset_paper(4, &ls, &err);
    CHECK(q1(ls, 0.16) == 0.2, "set4 0.16");
    CHECK(q1(ls, 0.14) == 0.1, "set4 0.14");
    CHECK(q1(ls, 0.05) == 0.0, "set4 0.05 -> 0 (tie)");
    CHECK(q1(ls, -0.97) == -1.0, "set4 -0.97");
    xb_levelset_free(&ls);
    xb_levelset_paper(5, &ls, &err);
    CHECK(q1(ls, 0.06) == 0.05, "set5 0.06");
    CHECK(q1(ls, 0.08) == 0.1, "set5 0.08");
    CHECK(q1(ls, -0.93) == -0.95, "set5 -0.93");
    xb_levelset_free(&ls);
}

static void test_bits(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    CHECK(xb_levelset_bits(1, &ls, &err) == XB_OK, "bits 1");
    CHECK(ls->n == 2 && ls->levels[0] == -1 && ls->levels[1] == 1, "bits 1 = {-1, 1}");
    CHECK(strcmp(ls->name, "bits:1") == 0, "name %s", ls->name);
    xb_levelset_free(&ls);
    xb_levelset_bits(2, &ls, &err);
    CHECK(ls->n == 3 && ls->levels[0] == -1 && ls->levels[1] == 0 && ls->levels[2] == 1, "bits 2");
    xb_levelset_free(&ls);
    xb_levelset_bits(3, &ls, &err);
    CHECK(ls->n == 7, "bits 3 count %zu", ls->n);
    for (int i = -3; i <= 3; i++)
        CHECK(ls->levels[i + 3] == i / 3.0, "bits 3 level %d", i);
    CHECK(q1(ls, 0.5) == 2 / 3.0, "bits 3: 0.5 -> 2/3");
    CHECK(q1(ls, 0.16) == 0.0, "bits 3: 0.16 -> 0");
    xb_levelset_free(&ls);
    xb_levelset_bits(4, &ls, &err);
    CHECK(ls->n == 15, "bits 4 count %zu", ls->n);
    for (int i = -7; i <= 7; i++)
        CHECK(ls->levels[i + 7] == i / 7.0, "bits 4 level %d", i);
    CHECK(ls->levels[7] == 0.0, "bits 4 has 0");
    xb_levelset_free(&ls);
    xb_levelset_bits(16, &ls, &err);
    CHECK(ls->n == 65535 && ls->levels[0] == -1 && ls->levels[65534] == 1, "bits 16");
    CHECK(xb_levelset_nearest(ls, 0.0) == 32767, "bits 16 zero index");
    xb_levelset_free(&ls);
    CHECK(xb_levelset_bits(0, &ls, &err) == XB_EINPUT && ls == NULL, "bits 0");
    CHECK(xb_levelset_bits(17, &ls, &err) == XB_EINPUT, "bits 17");
}

/* uniform:N: N evenly spaced levels over [-1, 1]; uniform:3 and uniform:9 are the paper's Sets 2 and 3. */
static void test_uniform(void)
{
    xb_error err = {0};
    xb_levelset *u = NULL, *p = NULL;
    CHECK(xb_levelset_parse("uniform:4", &u, &err) == XB_OK, "uniform:4 parses: %s", err.msg);
    if (u) {
        CHECK(u->n == 4 && !strcmp(u->name, "uniform:4"), "uniform:4 has 4 levels, got %zu (%s)", u->n, u->name);
        double want[4] = {-1, -1.0 / 3, 1.0 / 3, 1};
        for (size_t i = 0; i < 4 && i < u->n; i++)
            CHECK_REL(u->levels[i], want[i], 1e-15, "uniform:4 level");
        CHECK(xb_levelset_nearest(u, 0.1) == 2, "0.1 goes to 1/3 in uniform:4");
        CHECK(xb_levelset_nearest(u, -0.7) == 0, "-0.7 goes to -1 in uniform:4");
    }
    xb_levelset_free(&u);
    for (int set = 2; set <= 3; set++) {
        int n = set == 2 ? 3 : 9;
        xb_levelset_uniform(n, &u, &err);
        xb_levelset_paper(set, &p, &err);
        CHECK(u && p && u->n == p->n, "uniform:%d has as many levels as set%d", n, set);
        for (size_t i = 0; u && p && i < u->n && i < p->n; i++)
            CHECK(u->levels[i] == p->levels[i], "uniform:%d level %zu = set%d's: %.17g vs %.17g", n, i, set,
                  u->levels[i], p->levels[i]);
        xb_levelset_free(&u);
        xb_levelset_free(&p);
    }
    CHECK(xb_levelset_parse("uniform:1", &u, &err) == XB_EINPUT && strstr(err.msg, "2..65536"),
          "uniform:1 is refused: %s", err.msg);
    CHECK(xb_levelset_parse("uniform:x", &u, &err) == XB_EINPUT, "uniform:x is refused");
}

/* Asymmetric levels of data of one sign still hold 0: the range widens to include it. */
static void test_abits_one_sign(void)
{
    xb_levelset *a = NULL, *m = NULL;
    xb_error err = {0};
    double x[3] = {0.2, 0.5, 1.0};
    CHECK(xb_levelset_parse("abits:2", &a, &err) == XB_OK, "abits:2 parses: %s", err.msg);
    CHECK(a && xb_levelset_affine_materialize(a, x, 3, &m, &err) == XB_OK, "materialize: %s", err.msg);
    if (m) {
        double want[4] = {0, 1.0 / 3, 2.0 / 3, 1};
        CHECK(m->n == 4, "4 levels, got %zu", m->n);
        for (size_t i = 0; i < 4 && i < m->n; i++)
            CHECK_REL(m->levels[i], want[i], 1e-15, "abits:2 on [0.2, 1]");
    }
    xb_levelset_free(&a);
    xb_levelset_free(&m);
}

/* A level list longer than any fixed buffer reaches the parser whole, for every layer. */
static void test_long_spec(void)
{
    char spec[4096];
    size_t at = (size_t)snprintf(spec, sizeof spec, "levels:");
    for (int i = 0; i < 100; i++)
        at += (size_t)snprintf(spec + at, sizeof spec - at, "%s%.6f", i ? "," : "", -1 + 2.0 * i / 99);
    xb_levelset *ls[2] = {0};
    xb_error err = {0};
    CHECK(strlen(spec) > 900, "the spec is long (%zu characters)", strlen(spec));
    CHECK(xb_levelsets_parse(spec, 2, NULL, ls, NULL, 0, &err) == XB_OK, "long spec parses: %s", err.msg);
    CHECK(ls[0] && ls[1] && ls[0]->n == 100 && ls[1]->n == 100, "100 levels on both layers, got %zu",
          ls[0] ? ls[0]->n : 0);
    xb_levelset_free(&ls[0]);
    xb_levelset_free(&ls[1]);
}

static void test_normalization(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    xb_levelset_paper(3, &ls, &err);

    double w[] = {2, -1, 0.26, 0.24, 0};
    double wq[5], s = 0;
    int idx[5];
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, 5, wq, idx, &s, &err) == XB_OK, "maxabs");
    static const double want[] = {2, -1, 0.5, 0, 0};
    static const int want_i[] = {8, 2, 5, 4, 4};
    CHECK(s == 2, "maxabs scale %g", s);
    for (int i = 0; i < 5; i++)
        CHECK(wq[i] == want[i] && idx[i] == want_i[i], "maxabs %d: %g (%d)", i, wq[i], idx[i]);

    /* Clipping range c = 0.5: clip, then x = w / 0.5. */
    double wc[] = {0.9, -0.7, 0.2, 0.0624, 0.07};
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_CLIP, 0.5}, wc, 5, wc, idx, &s, &err) == XB_OK, "clip");
    static const double want_c[] = {0.5, -0.5, 0.25, 0, 0.125};
    static const int want_ci[] = {8, 0, 6, 4, 5};
    CHECK(s == 0.5, "clip scale %g", s);
    for (int i = 0; i < 5; i++)
        CHECK(wc[i] == want_c[i] && idx[i] == want_ci[i], "clip %d: %g (%d)", i, wc[i], idx[i]);

    /* All-zero layer: scale 1, stays at 0. */
    double z[3] = {0, 0, 0};
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, z, 3, z, NULL, &s, &err) == XB_OK && s == 1 &&
              z[0] == 0 && z[2] == 0,
          "all-zero layer");

    /* Bad inputs. */
    double bad[2] = {0.1, NAN};
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, bad, 2, bad, NULL, NULL, &err) == XB_EINPUT,
          "NaN weight");
    CHECK(err.code == XB_EINPUT && strstr(err.msg, "weight 1"), "NaN message: %s", err.msg);
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_CLIP, 0}, w, 5, wq, NULL, NULL, &err) == XB_EINPUT, "clip 0");
    xb_levelset_free(&ls);

    /* "none": copy, index -1. */
    xb_levelset_none(&ls, &err);
    double wn[] = {0.3, -2};
    double wnq[2];
    int in[2];
    CHECK(xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, wn, 2, wnq, in, &s, &err) == XB_OK, "none");
    CHECK(wnq[0] == 0.3 && wnq[1] == -2 && in[0] == -1 && in[1] == -1 && s == 2, "none copies");
    xb_levelset_free(&ls);

    xb_norm nm;
    CHECK(xb_norm_parse("maxabs", &nm, &err) == XB_OK && nm.kind == XB_NORM_MAXABS, "norm maxabs");
    CHECK(xb_norm_parse("clip:0.25", &nm, &err) == XB_OK && nm.kind == XB_NORM_CLIP && nm.clip == 0.25,
          "norm clip");
    CHECK(xb_norm_parse("none", &nm, &err) == XB_OK && nm.kind == XB_NORM_NONE, "norm none");
    CHECK(xb_norm_parse("clip:-1", &nm, &err) == XB_EINPUT, "norm clip:-1");
    CHECK(xb_norm_parse("clip:", &nm, &err) == XB_EINPUT, "norm clip:");
    CHECK(xb_norm_parse("max", &nm, &err) == XB_EINPUT && strstr(err.msg, "allowed"), "norm max: %s",
          err.msg);
}

static void test_affine(void)
{
    xb_error err = {0};
    xb_affine_quant p;
    CHECK(xb_affine_init(-1, 3, 2, &p, &err) == XB_OK, "affine init");
    CHECK_REL(p.scale, 4.0 / 3.0, 1e-15, "scale");
    CHECK(p.zero_point == 1 && p.q_max == 3, "zp %ld qmax %ld", p.zero_point, p.q_max);
    double w[] = {-1, 0, 0.6, 0.7, 2, 3, 10, -5, -2.0 / 3.0};
    static const long want_q[] = {0, 1, 1, 2, 3, 3, 3, 0, 0};
    double wq[9];
    long q[9];
    xb_affine_quantize(&p, w, 9, wq, q);
    for (int i = 0; i < 9; i++) {
        CHECK(q[i] == want_q[i], "affine w=%g: q %ld want %ld", w[i], q[i], want_q[i]);
        CHECK_ABS(wq[i], (want_q[i] - 1) * (4.0 / 3.0), 1e-15, "affine w_q");
    }
    CHECK(xb_affine_init(0, 1, 8, &p, &err) == XB_OK && p.zero_point == 0 && p.q_max == 255, "8 bit");
    double h = 0.5, hq;
    long c;
    xb_affine_quantize(&p, &h, 1, &hq, &c);
    CHECK(c == 128, "8 bit 0.5 -> 128 (half away from zero), got %ld", c);
    CHECK_REL(hq, 128.0 / 255.0, 1e-15, "8 bit w_q");

    double d[] = {0.5, -1, 3};
    CHECK(xb_affine_from_data(d, 3, 2, &p, &err) == XB_OK && p.lo == -1 && p.hi == 3 && p.zero_point == 1,
          "from data");
    double same[] = {2, 2};
    CHECK(xb_affine_from_data(same, 2, 4, &p, &err) == XB_EINPUT, "constant data");
    CHECK(xb_affine_init(3, -1, 2, &p, &err) == XB_EINPUT, "lo > hi");
    CHECK(xb_affine_init(-1, 1, 0, &p, &err) == XB_EINPUT, "0 bits");
    CHECK(xb_affine_init(-1, 1, 17, &p, &err) == XB_EINPUT, "17 bits");
    CHECK(xb_affine_init(-1, INFINITY, 4, &p, &err) == XB_EINPUT, "infinite range");
}

/* Quantize x[n] onto ls (normalization norm) and compare with hand-worked levels and indices. */
static void check_hand(const char *what, const xb_levelset *ls, xb_norm norm, const double *x, size_t n,
                       const double *want, const int *want_idx)
{
    double out[8];
    int idx[8];
    xb_error err = {0};
    CHECK(xb_quantize(ls, norm, x, n, out, idx, NULL, &err) == XB_OK, "%s: %s", what, err.msg);
    for (size_t i = 0; i < n; i++) {
        CHECK_ABS(out[i], want[i], 1e-15, what);
        CHECK(idx[i] == want_idx[i], "%s: x = %g index %d want %d", what, x[i], idx[i], want_idx[i]);
    }
}

/* abits:B: levels (q - zp) * scale from the data's own range, then nearest level. Worked by hand:
 *  A  B=2, x {-1, 3, 0.5}: scale 4/3, zp round(0.75) = 1, levels {-4/3, 0, 4/3, 8/3};
 *     -1 -> -4/3 (1/3 away, 0 is 1 away), 3 -> 8/3, 0.5 -> 0 (0.5 away, 4/3 is 0.83 away).
 *  B  B=1, x {-0.2, 1}: scale 1.2, zp round(1/6) = 0, levels {0, 1.2}: -0.2 -> 0, 1 -> 1.2.
 *  C  B=3, x {-1, -0.25, 0.13, 0.4}: scale 0.2, zp 5, levels -1, -0.8, ..., 0.4:
 *     -0.25 -> -0.2, 0.13 -> 0.2, 0.4 -> 0.4.
 *  D  maxabs normalization, B=2, w {-2, 1, 0.5}: s 2, x {-1, 0.5, 0.25}: scale 0.5, zp 2, levels
 *     {-1, -0.5, 0, 0.5}; 0.25 is an exact tie of 0 and 0.5 and goes to the level nearer zero:
 *     w_q {-2, 1, 0}. */
static void test_abits(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL, *m = NULL;
    CHECK(xb_levelset_parse("abits:2", &ls, &err) == XB_OK && ls->kind == XB_LEVELS_AFFINE && ls->n == 0 &&
              ls->affine_bits == 2 && strcmp(ls->name, "abits:2") == 0,
          "abits:2 parses to an unmaterialized set: %s", err.msg);

    const double xa[] = {-1, 3, 0.5}, wa[] = {-4.0 / 3.0, 8.0 / 3.0, 0};
    const int ia[] = {0, 3, 1};
    check_hand("abits A", ls, NORM_NONE, xa, 3, wa, ia);
    CHECK(xb_levelset_affine_materialize(ls, xa, 3, &m, &err) == XB_OK, "materialize: %s", err.msg);
    if (m) {
        CHECK(m->kind == XB_LEVELS_AFFINE && m->n == 4 && m->affine.zero_point == 1 && m->affine.lo == -1 &&
                  m->affine.hi == 3,
              "materialized A: n %zu zp %ld", m->n, m->affine.zero_point);
        CHECK_REL(m->affine.scale, 4.0 / 3.0, 1e-15, "A scale");
        static const double lv[] = {-4.0 / 3.0, 0, 4.0 / 3.0, 8.0 / 3.0};
        for (int i = 0; i < 4; i++)
            CHECK_ABS(m->levels[i], lv[i], 1e-15, "A levels");
        check_hand("abits A, materialized set", m, NORM_NONE, xa, 3, wa, ia);
        xb_levelset_free(&m);
    }
    xb_levelset_free(&ls);

    xb_levelset_affine(1, &ls, &err);
    const double xb[] = {-0.2, 1}, wb[] = {0, 1.2};
    const int ib[] = {0, 1};
    check_hand("abits B", ls, NORM_NONE, xb, 2, wb, ib);
    xb_levelset_free(&ls);

    xb_levelset_affine(3, &ls, &err);
    const double xc[] = {-1, -0.25, 0.13, 0.4}, wc[] = {-1, -0.2, 0.2, 0.4};
    const int ic[] = {0, 4, 6, 7};
    check_hand("abits C", ls, NORM_NONE, xc, 4, wc, ic);
    xb_levelset_free(&ls);

    xb_levelset_affine(2, &ls, &err);
    const double xd[] = {-2, 1, 0.5}, wd[] = {-2, 1, 0};
    const int id[] = {0, 3, 2};
    xb_norm maxabs = {XB_NORM_MAXABS, 0};
    check_hand("abits D (maxabs)", ls, maxabs, xd, 3, wd, id);

    /* Equal values: the range widens to include 0; all zeros use [-1, 1]. Either way every value is a
     * level (within rounding of the products). */
    const double same[] = {0.3, 0.3}, zeros[] = {0, 0};
    double out[2];
    CHECK(xb_quantize(ls, NORM_NONE, same, 2, out, NULL, NULL, &err) == XB_OK, "constant: %s", err.msg);
    CHECK_ABS(out[0], 0.3, 1e-15, "constant data land on a level");
    CHECK(xb_quantize(ls, NORM_NONE, zeros, 2, out, NULL, NULL, &err) == XB_OK && out[0] == 0 && out[1] == 0,
          "zeros stay 0");
    const double bad[] = {0, NAN};
    CHECK(xb_levelset_affine_materialize(ls, bad, 2, &m, &err) == XB_EINPUT && m == NULL, "NaN refused");
    xb_levelset_free(&ls);

    /* Nearest level equals the affine quantizer xb_affine_quantize (round(w / scale) + zp, clamped) on
     * random data, whose values are never at a midpoint: both give (q - zp) * scale, bit for bit. */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    enum { M = 20000 };
    double *w = malloc(M * sizeof *w), *a = malloc(M * sizeof *a), *b = malloc(M * sizeof *b);
    int *idx = malloc(M * sizeof *idx);
    long *q = malloc(M * sizeof *q);
    for (int bits = 1; bits <= 8; bits++) {
        for (int i = 0; i < M; i++)
            w[i] = -0.7 + 1.9 * gsl_rng_uniform(r);
        xb_affine_quant p;
        xb_affine_from_data(w, M, bits, &p, &err);
        xb_affine_quantize(&p, w, M, a, q);
        xb_levelset_affine(bits, &ls, &err);
        CHECK(xb_quantize(ls, NORM_NONE, w, M, b, idx, NULL, &err) == XB_OK, "abits:%d: %s", bits, err.msg);
        int differ = 0;
        for (int i = 0; i < M; i++)
            differ += a[i] != b[i] || idx[i] != q[i];
        CHECK(differ == 0, "abits:%d: %d of %d values differ from xb_affine_quantize", bits, differ, (int)M);
        xb_levelset_free(&ls);
    }
    free(w), free(a), free(b), free(idx), free(q);
    gsl_rng_free(r);

    /* Only abits sets materialize. */
    xb_levelset_bits(2, &ls, &err);
    CHECK(xb_levelset_affine_materialize(ls, xa, 3, &m, &err) == XB_EINPUT && m == NULL, "bits:2 refused");
    xb_levelset_free(&ls);
}

/* The formula, directly: i = largest 0..k with i*delta <= |x|. */
static double nnary_ref(double x, int k, double delta, double mu)
{
    int i = 0;
    while (i < k && (i + 1) * delta <= fabs(x))
        i++;
    return x < 0 ? -i * mu : i * mu;
}

static void test_nnary(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    CHECK(xb_levelset_nnary(1, 0.5, 0.3, &ls, &err) == XB_OK, "nnary k=1");
    CHECK(ls->n == 3 && ls->levels[0] == -0.3 && ls->levels[1] == 0 && ls->levels[2] == 0.3, "k=1 levels");
    CHECK(q1(ls, 0.5) == 0.3, "k=1: delta -> mu");
    CHECK(q1(ls, nextafter(0.5, 0)) == 0.0, "k=1: just below delta -> 0");
    CHECK(q1(ls, -0.5) == -0.3, "k=1: -delta -> -mu");
    CHECK(q1(ls, nextafter(-0.5, 0)) == 0.0, "k=1: just above -delta -> 0");
    CHECK(q1(ls, 0.0) == 0.0, "k=1: 0");
    CHECK(q1(ls, 0.49) == 0.0 && q1(ls, 0.26) == 0.0, "k=1: inside the dead zone (not nearest-level)");
    CHECK(q1(ls, 7.0) == 0.3 && q1(ls, -7.0) == -0.3, "k=1: beyond k delta");
    xb_levelset_free(&ls);

    CHECK(xb_levelset_nnary(2, 0.1, 0.25, &ls, &err) == XB_OK, "nnary k=2");
    CHECK(ls->n == 5 && ls->levels[0] == -0.5 && ls->levels[4] == 0.5, "k=2 levels");
    CHECK(q1(ls, 0.1) == 0.25, "k=2: delta");
    CHECK(q1(ls, nextafter(0.1, 0)) == 0.0, "k=2: below delta");
    CHECK(q1(ls, 2 * 0.1) == 0.5, "k=2: 2 delta");
    CHECK(q1(ls, nextafter(0.2, 0)) == 0.25, "k=2: below 2 delta");
    CHECK(q1(ls, 0.35) == 0.5, "k=2: beyond");
    CHECK(q1(ls, -0.2) == -0.5, "k=2: -2 delta");
    CHECK(q1(ls, -0.1) == -0.25, "k=2: -delta");
    CHECK(q1(ls, nextafter(-0.2, 0)) == -0.25, "k=2: above -2 delta");
    CHECK(q1(ls, nextafter(-0.1, 0)) == 0.0, "k=2: above -delta");
    CHECK(xb_levelset_nearest(ls, 0.15) == 3 && xb_levelset_nearest(ls, -0.15) == 1, "k=2 indices");

    /* Normalized by max |w|: s = 2, x = {1, 0.3, -0.6} with k=2, delta=0.25, mu=0.5. */
    xb_levelset_free(&ls);
    xb_levelset_nnary(2, 0.25, 0.5, &ls, &err);
    double w[] = {2, 0.6, -1.2};
    double s;
    xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, 3, w, NULL, &s, &err);
    CHECK(s == 2 && w[0] == 2 && w[1] == 1 && w[2] == -2, "nnary maxabs: %g %g %g", w[0], w[1], w[2]);
    xb_levelset_free(&ls);

    /* Thresholds where the division rounds the wrong way (0.3 / 0.1 = 2.9999999999999996). */
    /* mu = 1/16 keeps every level i * mu exact and the outermost, 10/16, inside [-1, 1]. */
    CHECK(xb_levelset_nnary(10, 0.1, 0.0625, &ls, &err) == XB_OK, "nnary k=10: %s", err.msg);
    CHECK(q1(ls, 0.3) == 2 * 0.0625, "0.3 < 3*0.1 as doubles");
    CHECK(q1(ls, 3 * 0.1) == 3 * 0.0625, "3*0.1 itself");
    CHECK(q1(ls, 0.7) == 6 * 0.0625, "0.7 < 7*0.1 as doubles");
    int mismatches = 0;
    srand(7);
    for (int t = 0; t < 20000; t++) {
        double x = (rand() / (double)RAND_MAX - 0.5) * 2.4;
        if (t % 4 == 0) /* exactly on thresholds and their neighbours */
            x = (rand() % 25 - 12) * 0.1;
        if (t % 4 == 1)
            x = nextafter((rand() % 25 - 12) * 0.1, t % 8 < 4 ? 0 : 2);
        if (q1(ls, x) != nnary_ref(x, 10, 0.1, 0.0625))
            mismatches++;
    }
    CHECK(mismatches == 0, "n-nary vs formula: %d mismatches", mismatches);
    xb_levelset_free(&ls);

    /* Levels beyond +-1 would sit above g_max: refused, with the set, its K*MU and the allowed range. */
    CHECK(xb_levelset_nnary(3, 0.1, 0.5, &ls, &err) == XB_EINPUT && ls == NULL && strstr(err.msg, "1.5") &&
              strstr(err.msg, "K * MU <= 1"),
          "nnary k*mu = 1.5 refused: %s", err.msg);
    CHECK(xb_levelset_nnary(4, 0.1, 0.25, &ls, &err) == XB_OK && ls->levels[8] == 1.0, "nnary k*mu = 1 exactly");
    xb_levelset_free(&ls);
    CHECK(xb_levelset_nnary(4, 0.1, nextafter(0.25, 1), &ls, &err) == XB_EINPUT && ls == NULL,
          "nnary k*mu one ulp above 1 refused");
    CHECK(xb_levelset_nnary(0, 0.1, 0.1, &ls, &err) == XB_EINPUT, "k=0");
    CHECK(xb_levelset_nnary(1, 0, 0.1, &ls, &err) == XB_EINPUT, "delta=0");
    CHECK(xb_levelset_nnary(1, 0.1, -1, &ls, &err) == XB_EINPUT, "mu<0");
}

static void test_device(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    const double g[] = {1, 2, 3, 5};
    CHECK(xb_levelset_device(g, 4, &ls, &err) == XB_OK, "device: %s", err.msg);
    static const double want[] = {-1, -0.5, -0.25, 0, 0.25, 0.5, 1};
    CHECK(ls->n == 7, "device count %zu", ls->n);
    for (int i = 0; i < 7; i++)
        CHECK(ls->levels[i] == want[i], "device level %d: %g", i, ls->levels[i]);
    CHECK(ls->kind == XB_LEVELS_DEVICE && strcmp(ls->name, "device[4]") == 0, "device name %s", ls->name);
    CHECK(q1(ls, 0.3) == 0.25 && q1(ls, 0.8) == 1.0 && q1(ls, -0.375) == -0.25, "device quantize");
    xb_levelset_free(&ls);
    const double g2[] = {1e-6, 4e-5, 7e-5};
    CHECK(xb_levelset_device(g2, 3, &ls, &err) == XB_OK && ls->n == 5 && ls->levels[4] == 1.0 &&
              ls->levels[0] == -1.0 && ls->levels[2] == 0.0,
          "device real conductances");
    xb_levelset_free(&ls);
    const double one[] = {1};
    const double flat[] = {1, 2, 2};
    const double neg[] = {-1, 2};
    CHECK(xb_levelset_device(one, 1, &ls, &err) == XB_EINPUT, "device n=1");
    CHECK(xb_levelset_device(flat, 3, &ls, &err) == XB_EINPUT && strstr(err.msg, "ascending"),
          "device not ascending: %s", err.msg);
    CHECK(xb_levelset_device(neg, 2, &ls, &err) == XB_EINPUT, "device negative");
    CHECK(ls == NULL, "no set after failure");
}

static void parse_ok(const char *spec, size_t n, double first, double last)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    int rc = xb_levelset_parse(spec, &ls, &err);
    CHECK(rc == XB_OK, "parse \"%s\": %s", spec, err.msg);
    if (ls) {
        CHECK(ls->n == n, "\"%s\": %zu levels, want %zu", spec, ls->n, n);
        if (n)
            CHECK(ls->levels[0] == first && ls->levels[n - 1] == last, "\"%s\" ends %g %g", spec,
                  ls->levels[0], ls->levels[n - 1]);
    }
    xb_levelset_free(&ls);
}

static void parse_bad(const char *spec)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    int rc = xb_levelset_parse(spec, &ls, &err);
    CHECK(rc == XB_EINPUT && err.code == XB_EINPUT && ls == NULL, "\"%s\" should fail", spec ? spec : "(null)");
    CHECK(strstr(err.msg, "allowed") != NULL, "\"%s\" message says what is allowed: %s", spec ? spec : "(null)",
          err.msg);
    if (spec)
        CHECK(strstr(err.msg, spec) != NULL, "\"%s\" message names the spec: %s", spec, err.msg);
    xb_levelset_free(&ls);
}

static void test_parse(void)
{
    parse_ok("none", 0, 0, 0);
    parse_ok("set1", 2, -1, 1);
    parse_ok("set2", 3, -1, 1);
    parse_ok("set3", 9, -1, 1);
    parse_ok("set4", 21, -1, 1);
    parse_ok("set5", 41, -1, 1);
    parse_ok("bits:1", 2, -1, 1);
    parse_ok("bits:4", 15, -1, 1);
    parse_ok("bits:16", 65535, -1, 1);
    parse_ok("nnary:2:0.01:0.02", 5, -0.04, 0.04);
    parse_ok("abits:1", 0, 0, 0);
    parse_ok("abits:16", 0, 0, 0);
    parse_ok("levels:-1,-0.5,0,0.5,1", 5, -1, 1);
    parse_ok("levels:1,0,-1", 3, -1, 1);
    parse_ok("levels:0.5", 1, 0.5, 0.5);

    xb_error err = {0};
    xb_levelset *ls = NULL;
    xb_levelset_parse("levels:-1,-0.5,0,0.5,1", &ls, &err);
    CHECK(ls->kind == XB_LEVELS_EXPLICIT && ls->levels[1] == -0.5 && ls->levels[2] == 0 &&
              ls->levels[3] == 0.5,
          "explicit values");
    xb_levelset_free(&ls);
    xb_levelset_parse("nnary:3:0.1:0.2", &ls, &err);
    CHECK(ls->kind == XB_LEVELS_NNARY && ls->nnary_k == 3 && ls->nnary_delta == 0.1 && ls->nnary_mu == 0.2,
          "nnary fields");
    xb_levelset_free(&ls);
    xb_levelset_parse("bits:3", &ls, &err);
    CHECK(strcmp(ls->name, "bits:3") == 0 && ls->kind == XB_LEVELS_BITS, "bits name");
    xb_levelset_free(&ls);

    static const char *const bad[] = {"",          "set",          "set0",          "set6",
                                      "set3x",     "Set3",         "bits:",         "bits:0",
                                      "bits:17",   "bits:4.5",     "bits:x",        "nnary:2:0.1",
                                      "nnary:0:0.1:0.1", "nnary:2:-0.1:0.1", "nnary:2:0.1:0",
                                      "nnary:2:0.1:0.1:4", "nnary:x:0.1:0.1", "levels:", "levels:1,,2",
                                      "levels:1,1", "levels:nan", "levels:inf", "levels:1,2,", "levels:abc",
                                      "nonee",     "uniform",      "abits:",        "abits:0",
                                      "abits:17",  "abits:2.5",    "abits:x",       "abits"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i]);
    parse_bad(NULL);

    /* Levels beyond +-1 map above g_max: refused (exit 2), naming the spec, the value and [-1, 1]. */
    static const char *const beyond[] = {"levels:-1,0,1.5", "levels:-1.0000001,1", "levels:2", "nnary:3:0.1:0.5",
                                         "nnary:1:0.1:1.01", "levels:0,0.5,1,-3"};
    static const char *const value[] = {"1.5", "-1.0000001", "2", "1.5", "1.01", "-3"};
    for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++) {
        parse_bad(beyond[i]);
        xb_levelset_parse(beyond[i], &ls, &err);
        CHECK(strstr(err.msg, value[i]) && (strstr(err.msg, "[-1, 1]") || strstr(err.msg, "K * MU <= 1")) &&
                  strstr(err.msg, "g_max"),
              "\"%s\": message names the value %s and the range: %s", beyond[i], value[i], err.msg);
        xb_levelset_free(&ls);
    }
    parse_ok("levels:-1,1", 2, -1, 1);
    parse_ok("nnary:4:0.1:0.25", 9, -1, 1);
}

/* xb_quantize's O(1) bracket (guessed from the mean spacing, confirmed against the levels, bisection
 * when it misses) picks the same level as xb_levelset_nearest's bisection for every kind of sorted set:
 * random values, the levels themselves, the exact midpoints (ties) and their neighbouring doubles;
 * unscaled and scaled (its division-free decision against the bisection of w / s). */
static void test_fast_nearest(void)
{
    const char *specs[] = {"set1", "set2", "set3", "set5", "bits:1", "bits:4", "bits:8", "uniform:2", "uniform:7",
                           "uniform:1000", "levels:-1,-0.9,-0.1,0,0.05,0.3,1", "levels:-0.2,0.7"};
    xb_error err = {0};
    unsigned long long st = 12345;
    for (size_t c = 0; c < sizeof specs / sizeof *specs; c++) {
        xb_levelset *ls = NULL;
        CHECK(xb_levelset_parse(specs[c], &ls, &err) == XB_OK, "%s: %s", specs[c], err.msg);
        size_t n = 7 * (4000 + 6 * ls->n);
        double *x = malloc(n * sizeof *x), *q = malloc(n * sizeof *q), *xs = malloc(n * sizeof *xs);
        int *idx = malloc(n * sizeof *idx);
        size_t k = 0;
        for (size_t i = 0; i < 4000; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            x[k++] = 2.4 * ((double)(st >> 11) * 0x1.0p-53) - 1.2; /* beyond both ends too */
        }
        for (size_t j = 0; j < ls->n; j++) {
            x[k++] = ls->levels[j];
            double mid = j + 1 < ls->n ? 0.5 * (ls->levels[j] + ls->levels[j + 1]) : ls->levels[j] + 0.1;
            x[k++] = mid;
            x[k++] = nextafter(mid, -2);
            x[k++] = nextafter(mid, 2);
            x[k++] = -mid;
            x[k++] = nextafter(ls->levels[j], 2);
        }
        CHECK(xb_quantize(ls, (xb_norm){XB_NORM_NONE, 0}, x, k, q, idx, NULL, &err) == XB_OK, "%s", err.msg);
        size_t bad = 0;
        for (size_t i = 0; i < k; i++)
            bad += idx[i] != xb_levelset_nearest(ls, x[i]) || q[i] != ls->levels[idx[i]];
        CHECK(bad == 0, "%s: the fast bracket disagrees with the bisection on %zu of %zu values", specs[c], bad, k);
        /* Scaled: xb_quantize decides without dividing where the answer is clear; it must still pick
         * what the bisection picks for w / s, on the doubles next to s times every level and midpoint,
         * where w (1 / s) and w / s can round to different sides. clip:C, and maxabs with one value at
         * the largest magnitude. */
        const double scales[] = {0.37, 2.9, 1e-3, 7.0 / 3.0};
        for (size_t sc = 0; sc < sizeof scales / sizeof *scales; sc++) {
            double sv = scales[sc];
            size_t kk = 0;
            for (size_t i = 4000; i < k && kk + 7 <= n; i++) { /* the levels, midpoints and neighbours */
                double w0 = x[i] * sv;
                for (int step = -3; step <= 3; step++) {
                    double w = w0;
                    for (int t = 0; t < (step < 0 ? -step : step); t++)
                        w = nextafter(w, step < 0 ? -INFINITY : INFINITY);
                    xs[kk++] = w;
                }
            }
            for (size_t i = 0; i < 1000 && kk < n; i++)
                xs[kk++] = x[i] * sv;
            for (int kind = 0; kind < 2; kind++) {
                xb_norm nm = kind == 0 ? (xb_norm){XB_NORM_CLIP, sv} : (xb_norm){XB_NORM_MAXABS, 0};
                if (kind == 1)
                    xs[kk - 1] = 1.2 * sv; /* the scale of maxabs: 1.2 sv */
                double s_used = 0;
                CHECK(xb_quantize(ls, nm, xs, kk, q, idx, &s_used, &err) == XB_OK, "%s", err.msg);
                size_t wrong = 0;
                for (size_t i = 0; i < kk; i++) {
                    double w = kind == 0 ? (xs[i] < -sv ? -sv : xs[i] > sv ? sv : xs[i]) : xs[i];
                    wrong += idx[i] != xb_levelset_nearest(ls, w / s_used) || q[i] != s_used * ls->levels[idx[i]];
                }
                CHECK(wrong == 0, "%s, %s scale %g: the quantizer disagrees with the bisection of w / s on %zu of %zu",
                      specs[c], kind == 0 ? "clip" : "maxabs", s_used, wrong, kk);
            }
        }
        free(x), free(q), free(idx), free(xs);
        xb_levelset_free(&ls);
    }
}

/* The scale pass (max |w| and the finite check, eight values at a time with a scalar tail) finds the
 * largest magnitude and a non-finite value at every position of layers of 1..19 values; and the
 * evenly spaced path's whole-vector stores give the values and indices of the bisection with and
 * without the index array, on lengths that end inside a group of four. */
static void test_scale_pass(void)
{
    xb_error err = {0};
    xb_levelset *ls = NULL;
    xb_levelset_parse("bits:4", &ls, &err);
    double w[19], q[19];
    int idx[19];
    size_t wrong_scale = 0, missed_bad = 0, wrong_msg = 0;
    for (size_t n = 1; n <= 19; n++)
        for (size_t at = 0; at < n; at++) {
            for (size_t i = 0; i < n; i++)
                w[i] = 0.01 * (double)(i % 5) - 0.02;
            w[at] = at % 2 ? -0.75 : 0.75;
            double s = 0;
            if (xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, n, q, NULL, &s, &err) != XB_OK || s != 0.75)
                wrong_scale++;
            const double nonfinite[3] = {NAN, INFINITY, -INFINITY};
            for (int k = 0; k < 3; k++) {
                w[at] = nonfinite[k];
                err.msg[0] = '\0';
                if (xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, n, q, NULL, &s, &err) != XB_EINPUT)
                    missed_bad++;
                char want[32];
                snprintf(want, sizeof want, "weight %zu ", at);
                wrong_msg += strstr(err.msg, want) == NULL;
            }
        }
    CHECK(wrong_scale == 0, "maxabs scale wrong on %zu of the layers", wrong_scale);
    CHECK(missed_bad == 0, "a non-finite weight passed on %zu of the layers", missed_bad);
    CHECK(wrong_msg == 0, "the message named another weight on %zu of the layers", wrong_msg);
    unsigned long long st = 99;
    size_t bad = 0;
    for (size_t n = 16; n <= 19; n++) {
        for (size_t i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            w[i] = 2.0 * ((double)(st >> 11) * 0x1.0p-53) - 1.0;
        }
        double q2[19], s = 0;
        xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, n, q, idx, &s, &err);
        xb_quantize(ls, (xb_norm){XB_NORM_MAXABS, 0}, w, n, q2, NULL, NULL, &err);
        for (size_t i = 0; i < n; i++)
            bad += idx[i] != xb_levelset_nearest(ls, w[i] / s) || q[i] != s * ls->levels[idx[i]] || q2[i] != q[i];
    }
    CHECK(bad == 0, "the evenly spaced path disagrees with the bisection on %zu values", bad);
    xb_levelset_free(&ls);
}

int main(void)
{
    test_paper_sets();
    test_bits();
    test_uniform();
    test_long_spec();
    test_abits_one_sign();
    test_normalization();
    test_affine();
    test_abits();
    test_nnary();
    test_device();
    test_parse();
    test_fast_nearest();
    test_scale_pass();
    return check_summary("test_quant");
}
