// quant: level sets and the nearest-level, n-nary and affine quantizers
#include "quant.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

#define SPEC_HELP                                                                                  \
    "allowed: none, set1..set5, bits:B (B in 1..16, symmetric), abits:B (B in 1..16, asymmetric: "  \
    "scale and zero point from each layer's range), uniform:N (N in 2..65536), "                   \
    "nnary:K:DELTA:MU (K >= 1, DELTA > 0, MU > 0, K * MU <= 1), "                                  \
    "levels:L1,L2,... (finite, distinct, each in [-1, 1]); levels are in normalized units, where "  \
    "+-1 is the full conductance range g_min..g_max"

/* One allocation holds the struct and its levels, so a single free releases both. */
static int levelset_alloc(xb_levelset_kind kind, size_t n, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (n > (SIZE_MAX - sizeof(xb_levelset)) / sizeof(double))
        return xb_fail(err, XB_ENOMEM, "level set of %zu levels is too large", n);
    xb_levelset *ls = calloc(1, sizeof *ls + n * sizeof(double));
    if (!ls)
        return xb_fail(err, XB_ENOMEM, "out of memory allocating a level set of %zu levels", n);
    ls->kind = kind;
    ls->n = n;
    ls->levels = (double *)(ls + 1);
    *out = ls;
    return XB_OK;
}

void xb_levelset_free(xb_levelset **ls)
{
    if (!ls)
        return;
    free(*ls);
    *ls = NULL;
}

int xb_levelset_none(xb_levelset **out, xb_error *err)
{
    int rc = levelset_alloc(XB_LEVELS_NONE, 0, out, err);
    if (rc)
        return rc;
    snprintf((*out)->name, sizeof (*out)->name, "none");
    return XB_OK;
}

/* Levels i/den for i = -m..m: dividing integers gives the double nearest each decimal level. */
static int levelset_uniform(xb_levelset_kind kind, int m, double den, xb_levelset **out, xb_error *err)
{
    int rc = levelset_alloc(kind, (size_t)(2 * m + 1), out, err);
    if (rc)
        return rc;
    for (int i = -m; i <= m; i++)
        (*out)->levels[i + m] = (double)i / den;
    return XB_OK;
}

int xb_levelset_paper(int set, xb_levelset **out, xb_error *err)
{
    int rc;
    *out = NULL;
    switch (set) {
    case 1:
        rc = levelset_alloc(XB_LEVELS_PAPER, 2, out, err);
        if (rc)
            return rc;
        (*out)->levels[0] = -1.0;
        (*out)->levels[1] = 1.0;
        break;
    case 2: rc = levelset_uniform(XB_LEVELS_PAPER, 1, 1.0, out, err); break;
    case 3: rc = levelset_uniform(XB_LEVELS_PAPER, 4, 4.0, out, err); break;
    case 4: rc = levelset_uniform(XB_LEVELS_PAPER, 10, 10.0, out, err); break;
    case 5: rc = levelset_uniform(XB_LEVELS_PAPER, 20, 20.0, out, err); break;
    default:
        return xb_fail(err, XB_EINPUT, "quantization set %d does not exist: the paper's sets are 1..5",
                       set);
    }
    if (rc)
        return rc;
    snprintf((*out)->name, sizeof (*out)->name, "set%d", set);
    return XB_OK;
}

int xb_levelset_bits(int bits, xb_levelset **out, xb_error *err)
{
    int rc;
    *out = NULL;
    if (bits < 1 || bits > 16)
        return xb_fail(err, XB_EINPUT, "bits:%d: the number of bits must be in 1..16", bits);
    if (bits == 1) {
        rc = levelset_alloc(XB_LEVELS_BITS, 2, out, err);
        if (rc)
            return rc;
        (*out)->levels[0] = -1.0;
        (*out)->levels[1] = 1.0;
    } else {
        int m = (1 << (bits - 1)) - 1;
        rc = levelset_uniform(XB_LEVELS_BITS, m, (double)m, out, err);
        if (rc)
            return rc;
    }
    snprintf((*out)->name, sizeof (*out)->name, "bits:%d", bits);
    return XB_OK;
}

int xb_levelset_affine(int bits, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (bits < 1 || bits > 16)
        return xb_fail(err, XB_EINPUT, "abits:%d: the number of bits must be in 1..16", bits);
    int rc = levelset_alloc(XB_LEVELS_AFFINE, 0, out, err);
    if (rc)
        return rc;
    (*out)->affine_bits = bits;
    snprintf((*out)->name, sizeof (*out)->name, "abits:%d", bits);
    return XB_OK;
}

int xb_levelset_affine_materialize(const xb_levelset *ls, const double *x, size_t n, xb_levelset **out,
                                   xb_error *err)
{
    *out = NULL;
    if (ls->kind != XB_LEVELS_AFFINE)
        return xb_fail(err, XB_EINPUT, "level set %s: only an abits:B set takes its levels from data",
                       ls->name);
    int bits = ls->affine_bits;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return xb_fail(err, XB_EINPUT, "%s: value %zu is not a finite number (%g)", ls->name, i, x[i]);
        if (i == 0 || x[i] < lo)
            lo = x[i];
        if (i == 0 || x[i] > hi)
            hi = x[i];
    }
    /* The range always holds 0, so the zero point is a code and 0 a level (a weight of 0, an idle pair,
     * stays exactly 0); data of one sign, or all equal, widen towards it. */
    lo = fmin(lo, 0.0);
    hi = fmax(hi, 0.0);
    if (!(lo < hi))
        lo = -1.0, hi = 1.0;
    xb_affine_quant q;
    int rc = xb_affine_init(lo, hi, bits, &q, err);
    if (rc)
        return xb_error_prefix(err, "%s", ls->name);
    rc = levelset_alloc(XB_LEVELS_AFFINE, (size_t)q.q_max + 1, out, err);
    if (rc)
        return rc;
    xb_levelset *m = *out;
    /* The same product xb_affine_quantize forms, so a level equals the affine quantizer's output. */
    for (long c = 0; c <= q.q_max; c++)
        m->levels[c] = (double)(c - q.zero_point) * q.scale;
    m->affine_bits = bits;
    m->affine = q;
    snprintf(m->name, sizeof m->name, "abits:%d", bits);
    return XB_OK;
}

int xb_levelset_uniform(int n, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (n < 2 || n > 65536)
        return xb_fail(err, XB_EINPUT, "uniform:%d: the number of levels must be in 2..65536", n);
    int rc = levelset_alloc(XB_LEVELS_UNIFORM, (size_t)n, out, err);
    if (rc)
        return rc;
    /* (2i - (n-1)) / (n-1): integer numerators keep the symmetric levels exact negatives of each other. */
    for (int i = 0; i < n; i++)
        (*out)->levels[i] = (double)(2 * i - (n - 1)) / (double)(n - 1);
    snprintf((*out)->name, sizeof (*out)->name, "uniform:%d", n);
    return XB_OK;
}

int xb_levelset_nnary(int k, double delta, double mu, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (k < 1 || k > 32767 || !(delta > 0) || !isfinite(delta) || !(mu > 0) || !isfinite(mu))
        return xb_fail(err, XB_EINPUT,
                       "nnary:%d:%g:%g: need an order K in 1..32767, a threshold DELTA > 0 and a level "
                       "MU > 0",
                       k, delta, mu);
    /* Levels beyond +-1 would map above g_max (docs/device-layer.md, section 3): refused, not clipped. */
    if (!(k * mu <= 1.0))
        return xb_fail(err, XB_EINPUT,
                       "nnary:%d:%g:%g: the outermost levels +-K*MU = +-%.17g lie beyond +-1, which would map "
                       "above g_max; allowed: K * MU <= 1 (levels in normalized units, +-1 = g_max)",
                       k, delta, mu, k * mu);
    int rc = levelset_alloc(XB_LEVELS_NNARY, (size_t)(2 * k + 1), out, err);
    if (rc)
        return rc;
    xb_levelset *ls = *out;
    for (int i = -k; i <= k; i++)
        ls->levels[i + k] = i * mu;
    ls->nnary_k = k;
    ls->nnary_delta = delta;
    ls->nnary_mu = mu;
    snprintf(ls->name, sizeof ls->name, "nnary:%d:%.6g:%.6g", k, delta, mu);
    return XB_OK;
}

int xb_levelset_device(const double *g, size_t n, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (n < 2)
        return xb_fail(err, XB_EINPUT, "device levels: need at least 2 conductance values, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g[i]) || g[i] < 0)
            return xb_fail(err, XB_EINPUT,
                           "device levels: value %zu (%g) must be finite and non-negative", i, g[i]);
        if (i > 0 && !(g[i] > g[i - 1]))
            return xb_fail(err, XB_EINPUT,
                           "device levels: values must be strictly ascending, but g[%zu] = %g <= "
                           "g[%zu] = %g",
                           i, g[i], i - 1, g[i - 1]);
    }
    int rc = levelset_alloc(XB_LEVELS_DEVICE, 2 * n - 1, out, err);
    if (rc)
        return rc;
    xb_levelset *ls = *out;
    double range = g[n - 1] - g[0];
    for (size_t i = 0; i < n; i++) {
        double l = (g[i] - g[0]) / range;
        ls->levels[n - 1 + i] = l;
        ls->levels[n - 1 - i] = -l;
    }
    /* The top level is exactly 1 whatever the rounding of the division. */
    ls->levels[0] = -1.0;
    ls->levels[2 * n - 2] = 1.0;
    snprintf(ls->name, sizeof ls->name, "device[%zu]", n);
    return XB_OK;
}

int xb_levelset_from_device(const xb_device *d, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (!d)
        return xb_fail(err, XB_EINPUT, "level set \"device\" needs a device file");
    if (d->n_levels < 1 || d->n_levels > XB_DEVICE_MAX_LEVELS)
        return xb_fail(err, XB_EINPUT, "device %s: %d levels; allowed 1..%d", d->name, d->n_levels,
                       XB_DEVICE_MAX_LEVELS);
    double g[XB_DEVICE_MAX_LEVELS + 1];
    g[0] = d->g_hrs_S;
    for (int i = 0; i < d->n_levels; i++)
        g[i + 1] = xb_device_level_G(d, i);
    return xb_levelset_device(g, (size_t)d->n_levels + 1, out, err);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int xb_levelset_explicit(const double *levels, size_t n, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (n < 1)
        return xb_fail(err, XB_EINPUT, "explicit levels: the list is empty");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(levels[i]))
            return xb_fail(err, XB_EINPUT, "explicit levels: level %zu is not a finite number", i + 1);
        else if (!(fabs(levels[i]) <= 1.0)) /* would map above g_max: refused, not clipped */
            return xb_fail(err, XB_EINPUT,
                           "explicit levels: level %zu (%.17g) lies outside [-1, 1], which would map above "
                           "g_max; allowed: levels in [-1, 1] (normalized units, +-1 = g_max)",
                           i + 1, levels[i]);
    int rc = levelset_alloc(XB_LEVELS_EXPLICIT, n, out, err);
    if (rc)
        return rc;
    xb_levelset *ls = *out;
    memcpy(ls->levels, levels, n * sizeof *levels);
    qsort(ls->levels, n, sizeof *ls->levels, cmp_double);
    for (size_t i = 1; i < n; i++) {
        if (ls->levels[i] == ls->levels[i - 1]) {
            double dup = ls->levels[i];
            xb_levelset_free(out);
            return xb_fail(err, XB_EINPUT, "explicit levels: level %g appears more than once", dup);
        }
    }
    snprintf(ls->name, sizeof ls->name, "levels[%zu]", n);
    return XB_OK;
}

/* Parse a whole string as a finite double. */
static int parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, size_t len, int lo, int hi, int *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int xb_levelset_parse(const char *spec, xb_levelset **out, xb_error *err)
{
    *out = NULL;
    if (!spec)
        spec = "";
    if (strcmp(spec, "none") == 0)
        return xb_levelset_none(out, err);
    if (strncmp(spec, "set", 3) == 0) {
        int set;
        if (parse_int(spec + 3, strlen(spec + 3), 1, 5, &set) == 0)
            return xb_levelset_paper(set, out, err);
        return xb_fail(err, XB_EINPUT, "level set \"%s\": the paper's sets are set1..set5; " SPEC_HELP,
                       spec);
    }
    if (strncmp(spec, "bits:", 5) == 0) {
        int bits;
        if (parse_int(spec + 5, strlen(spec + 5), 1, 16, &bits) == 0)
            return xb_levelset_bits(bits, out, err);
        return xb_fail(err, XB_EINPUT, "level set \"%s\": bits must be an integer in 1..16; " SPEC_HELP,
                       spec);
    }
    if (strncmp(spec, "abits:", 6) == 0) {
        int bits;
        if (parse_int(spec + 6, strlen(spec + 6), 1, 16, &bits) == 0)
            return xb_levelset_affine(bits, out, err);
        return xb_fail(err, XB_EINPUT, "level set \"%s\": bits must be an integer in 1..16; " SPEC_HELP,
                       spec);
    }
    if (strncmp(spec, "uniform:", 8) == 0) {
        int n;
        if (parse_int(spec + 8, strlen(spec + 8), 2, 65536, &n) == 0)
            return xb_levelset_uniform(n, out, err);
        return xb_fail(err, XB_EINPUT, "level set \"%s\": the number of levels must be an integer in 2..65536; "
                       SPEC_HELP, spec);
    }
    if (strncmp(spec, "nnary:", 6) == 0) {
        const char *p = spec + 6;
        const char *c1 = strchr(p, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        int k;
        double delta, mu;
        if (!c1 || !c2 || strchr(c2 + 1, ':') || parse_int(p, (size_t)(c1 - p), 1, 32767, &k) ||
            parse_double(c1 + 1, (size_t)(c2 - c1 - 1), &delta) ||
            parse_double(c2 + 1, strlen(c2 + 1), &mu) || !(delta > 0) || !(mu > 0))
            return xb_fail(err, XB_EINPUT,
                           "level set \"%s\": expected nnary:K:DELTA:MU with an integer order K >= 1, a "
                           "threshold DELTA > 0 and a level MU > 0, e.g. nnary:2:0.01:0.01; " SPEC_HELP,
                           spec);
        xb_error sub = {0};
        int rc = xb_levelset_nnary(k, delta, mu, out, &sub);
        if (rc)
            return xb_fail(err, rc, "level set \"%s\": %s", spec, sub.msg);
        return XB_OK;
    }
    if (strncmp(spec, "levels:", 7) == 0) {
        const char *p = spec + 7;
        size_t cap = 1;
        for (const char *q = p; *q; q++)
            cap += *q == ',';
        double *vals = malloc(cap * sizeof *vals);
        if (!vals)
            return xb_fail(err, XB_ENOMEM, "out of memory parsing level set \"%s\"", spec);
        size_t n = 0;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (parse_double(p, len, &vals[n])) {
                free(vals);
                return xb_fail(err, XB_EINPUT,
                               "level set \"%s\": item %zu (\"%.*s\") is not a finite number; expected "
                               "levels:L1,L2,... e.g. levels:-1,-0.5,0,0.5,1; " SPEC_HELP,
                               spec, n + 1, (int)(len > 40 ? 40 : len), p);
            }
            n++;
            if (!comma)
                break;
            p = comma + 1;
        }
        xb_error sub = {0};
        int rc = xb_levelset_explicit(vals, n, out, &sub);
        free(vals);
        if (rc)
            return xb_fail(err, rc, "level set \"%s\": %s%s", spec, sub.msg,
                           strstr(sub.msg, "allowed:") ? "" : "; " SPEC_HELP);
        return XB_OK;
    }
    return xb_fail(err, XB_EINPUT, "level set \"%s\" is not understood; " SPEC_HELP, spec);
}

static int nnary_index(const xb_levelset *ls, double x)
{
    int k = ls->nnary_k;
    double d = ls->nnary_delta, a = fabs(x);
    double f = floor(a / d);
    int i = f >= k ? k : (int)f;
    /* The division can land one off at a threshold; the formula's comparisons decide. */
    while (i < k && (i + 1) * d <= a)
        i++;
    while (i > 0 && i * d > a)
        i--;
    return x < 0 ? k - i : k + i;
}

/* The nearest of n >= 2 sorted levels l to x (finite), as xb_levelset_nearest decides it: the bracket
 * l[lo] < x <= l[lo + 1] is guessed in O(1) from the mean spacing (inv = (n - 1) / (l[n-1] - l[0])),
 * exact for the uniform sets (bits, set2..5, uniform:N), confirmed by comparisons against the levels
 * themselves, and searched by bisection only when the guess and its neighbours miss (uneven sets such
 * as the device's). */
static size_t nearest_sorted(const double *l, size_t n, double x, double inv)
{
    if (x <= l[0])
        return 0;
    if (x >= l[n - 1])
        return n - 1;
    double g = (x - l[0]) * inv;
    size_t lo = g < (double)(n - 2) ? (size_t)g : n - 2;
    if (!(l[lo] < x && x <= l[lo + 1])) {
        if (lo > 0 && l[lo - 1] < x && x <= l[lo])
            lo--;
        else if (lo + 2 < n && l[lo + 1] < x && x <= l[lo + 2])
            lo++;
        else {
            size_t a = 0, b = n - 1;
            while (b - a > 1) {
                size_t mid = a + (b - a) / 2;
                if (l[mid] < x)
                    a = mid;
                else
                    b = mid;
            }
            lo = a;
        }
    }
    size_t hi = lo + 1;
    double d_lo = x - l[lo], d_hi = l[hi] - x;
    /* Which side is nearer is as random as the weights: chosen without a branch. */
    size_t pick = lo + (size_t)(d_hi < d_lo);
    if (d_lo == d_hi) /* tie: the level nearer zero; with equal magnitudes the positive one */
        pick = fabs(l[lo]) < fabs(l[hi]) ? lo : hi;
    return pick;
}

int xb_levelset_nearest(const xb_levelset *ls, double x)
{
    if (ls->kind == XB_LEVELS_NONE || ls->n == 0)
        return -1;
    if (ls->kind == XB_LEVELS_NNARY)
        return nnary_index(ls, x);
    const double *l = ls->levels;
    size_t n = ls->n;
    if (x <= l[0])
        return 0;
    if (x >= l[n - 1])
        return (int)(n - 1);
    /* l[lo] < x <= l[hi], hi = lo + 1 */
    size_t lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (l[mid] < x)
            lo = mid;
        else
            hi = mid;
    }
    double d_lo = x - l[lo], d_hi = l[hi] - x;
    if (d_lo < d_hi)
        return (int)lo;
    if (d_hi < d_lo)
        return (int)hi;
    /* Tie: the level nearer zero; with equal magnitudes the positive one. */
    if (fabs(l[lo]) < fabs(l[hi]))
        return (int)lo;
    return (int)hi;
}

int xb_norm_parse(const char *spec, xb_norm *out, xb_error *err)
{
    if (!spec)
        spec = "";
    if (strcmp(spec, "maxabs") == 0) {
        *out = (xb_norm){XB_NORM_MAXABS, 0.0};
        return XB_OK;
    }
    if (strcmp(spec, "none") == 0) {
        *out = (xb_norm){XB_NORM_NONE, 0.0};
        return XB_OK;
    }
    double c;
    if (strncmp(spec, "clip:", 5) == 0 && parse_double(spec + 5, strlen(spec + 5), &c) == 0 && c > 0) {
        *out = (xb_norm){XB_NORM_CLIP, c};
        return XB_OK;
    }
    return xb_fail(err, XB_EINPUT,
                   "normalization \"%s\" is not understood; allowed: maxabs (scale = max |w| of the "
                   "layer), clip:C (w clipped to [-C, C], C > 0), none (levels in weight units)",
                   spec);
}

double xb_max_abs(const double *w, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(w[i]);
        if (a > m)
            m = a;
    }
    return m;
}

/* One value of the evenly spaced case: the bracket [l0 + k step, l0 + (k + 1) step] from the guess,
 * the side from q' = x (1 / s) where it is clear by the margin, else the exact path. */
static inline size_t even_one(const double *l, size_t n, double x, double s, double inv_s, double inv, double step,
                              double top, double pad)
{
    double q = x * inv_s, g = (q - l[0]) * inv;
    g = g > 0 ? g : 0;
    g = g < top ? g : top;
    long k = (long)g;
    double d_lo = q - (l[0] + (double)k * step), d_hi = step - d_lo, margin = pad + 1e-12 * fabs(q);
    if (d_lo > margin && d_hi > margin && fabs(d_hi - d_lo) > margin)
        return (size_t)k + (size_t)(d_hi < d_lo);
    return nearest_sorted(l, n, x / s, inv);
}

typedef double q4d __attribute__((vector_size(32)));
typedef int64_t q4i __attribute__((vector_size(32)));

/* The evenly spaced case four values at a time (GCC/Clang vector types; compiled for the x86-64
 * baseline and for AVX2, chosen at run time). Every decision is exact, as even_one's, so the path
 * changes no output. */
static inline __attribute__((always_inline)) void even_body(const double *l, size_t n, const double *w, size_t n_w,
                                                            double s, int clip, double *w_q, int *index, double step,
                                                            double inv)
{
    double inv_s = 1.0 / s, top = (double)(n - 2), l0 = l[0], pad = 1e-12 * (fabs(l0) + (l[n - 1] - l0));
    const double magic = 0x1.8p52;
    const q4d vmagic = {magic, magic, magic, magic}, zero = {0, 0, 0, 0}, vtop = {top, top, top, top};
    const q4d hi = {s, s, s, s}, lo = -hi;
    const q4i abs_mask = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    size_t i = 0;
    for (; i + 4 <= n_w; i += 4) {
        q4d x;
        memcpy(&x, w + i, sizeof x);
        if (clip) {
            q4i m = x < lo;
            x = (q4d)(((q4i)lo & m) | ((q4i)x & ~m));
            m = x > hi;
            x = (q4d)(((q4i)hi & m) | ((q4i)x & ~m));
        }
        q4d q = x * inv_s, g = (q - l0) * inv;
        q4i m = g > zero;
        g = (q4d)((q4i)g & m);
        q4d kd = ((g - 0.5) + vmagic) - vmagic; /* round(g - 0.5) = floor(g) but where g is an integer */
        m = kd < vtop;
        kd = (q4d)(((q4i)kd & m) | ((q4i)vtop & ~m));
        q4i k = (q4i)(kd + vmagic) - (q4i)vmagic;
        q4d d_lo = q - (l0 + kd * step), d_hi = step - d_lo;
        q4d margin = pad + 1e-12 * (q4d)((q4i)q & abs_mask), diff = (q4d)((q4i)(d_hi - d_lo) & abs_mask);
        q4i ok = (d_lo > margin) & (d_hi > margin) & (diff > margin);
        q4i j = k - (q4i)(d_hi < d_lo); /* lanes: -1 where true */
        if (__builtin_expect((ok[0] & ok[1] & ok[2] & ok[3]) != 0, 1)) {
            /* every lane clear (almost always): the levels by lane, the products and stores whole */
            q4d lv = {l[j[0]], l[j[1]], l[j[2]], l[j[3]]}, out = lv * s;
            memcpy(w_q + i, &out, sizeof out);
            if (index) {
                int j4[4] = {(int)j[0], (int)j[1], (int)j[2], (int)j[3]};
                memcpy(index + i, j4, sizeof j4);
            }
            continue;
        }
        for (int lane = 0; lane < 4; lane++) {
            size_t jj = ok[lane] ? (size_t)j[lane] : nearest_sorted(l, n, x[lane] / s, inv);
            w_q[i + (size_t)lane] = s * l[jj];
            if (index)
                index[i + (size_t)lane] = (int)jj;
        }
    }
    for (; i < n_w; i++) {
        double x = w[i];
        if (clip)
            x = x < -s ? -s : x > s ? s : x;
        size_t jj = even_one(l, n, x, s, inv_s, inv, step, top, pad);
        w_q[i] = s * l[jj];
        if (index)
            index[i] = (int)jj;
    }
}

static void even_spaced_base(const double *l, size_t n, const double *w, size_t n_w, double s, int clip,
                             double *w_q, int *index, double step, double inv)
{
    even_body(l, n, w, n_w, s, clip, w_q, index, step, inv);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void even_spaced_avx2(const double *l, size_t n, const double *w, size_t n_w,
                                                              double s, int clip, double *w_q, int *index,
                                                              double step, double inv)
{
    even_body(l, n, w, n_w, s, clip, w_q, index, step, inv);
}
#endif

static void even_spaced_all(const double *l, size_t n, const double *w, size_t n_w, double s, int clip, double *w_q,
                            int *index, double step, double inv)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2")) {
        even_spaced_avx2(l, n, w, n_w, s, clip, w_q, index, step, inv);
        return;
    }
#endif
    even_spaced_base(l, n, w, n_w, s, clip, w_q, index, step, inv);
}

/* max |w[i]| (0 for none) and *finite = 0 if some w[i] is not finite, eight running maxima in vectors
 * (GCC/Clang vector types, compiled for the x86-64 baseline and for AVX2); a maximum is exact, so the
 * lanes' grouping changes no result. */
static inline __attribute__((always_inline)) double max_abs_body(const double *w, size_t n, int *finite)
{
    const q4d dmax = {DBL_MAX, DBL_MAX, DBL_MAX, DBL_MAX};
    const q4i abs_mask = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    q4d t0 = {0, 0, 0, 0}, t1 = t0;
    q4i bad = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        q4d a, b;
        memcpy(&a, w + i, sizeof a);
        memcpy(&b, w + i + 4, sizeof b);
        a = (q4d)((q4i)a & abs_mask);
        b = (q4d)((q4i)b & abs_mask);
        bad |= ~(a <= dmax) | ~(b <= dmax);
        q4i ma = a > t0, mb = b > t1;
        t0 = (q4d)(((q4i)a & ma) | ((q4i)t0 & ~ma));
        t1 = (q4d)(((q4i)b & mb) | ((q4i)t1 & ~mb));
    }
    double top = 0;
    for (int k = 0; k < 4; k++) {
        top = t0[k] > top ? t0[k] : top;
        top = t1[k] > top ? t1[k] : top;
    }
    int ok = !(bad[0] | bad[1] | bad[2] | bad[3]);
    for (; i < n; i++) {
        double a = fabs(w[i]);
        ok &= a <= DBL_MAX;
        top = a > top ? a : top;
    }
    *finite = ok;
    return top;
}

static double max_abs_finite_base(const double *w, size_t n, int *finite) { return max_abs_body(w, n, finite); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static double max_abs_finite_avx2(const double *w, size_t n, int *finite)
{
    return max_abs_body(w, n, finite);
}
#endif

static double max_abs_finite_all(const double *w, size_t n, int *finite)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx2"))
        return max_abs_finite_avx2(w, n, finite);
#endif
    return max_abs_finite_base(w, n, finite);
}

/* The nearest of n >= 2 sorted levels l to x / s for each of the n_w values (clipped to [-s, s] first
 * with clip), exactly as nearest_sorted(l, n, x / s, inv) decides it, without a division where the
 * answer is clear: with q' = x (1 / s), within 2 ulp of x / s, the guessed bracket, its side and the
 * nearer level are taken when q' is at least 1e-12 (1 + |q'|) inside the bracket and away from its
 * midpoint; the decision is monotone in q, so x / s, closer to q' than that, decides the same. The
 * values that are not clear (on a level, at a midpoint, beyond the outer levels) take the exact path. */
static void nearest_sorted_all(const double *l, size_t n, const double *w, size_t n_w, double s, int clip,
                               double *w_q, int *index)
{
    double inv = (double)(n - 1) / (l[n - 1] - l[0]), inv_s = 1.0 / s, top = (double)(n - 2);
    /* Evenly spaced levels (bits, set2..5, uniform:N): the bracket's ends from l[0] + k step instead
     * of two loads, close to the levels (checked here) far inside the margin. */
    double range = l[n - 1] - l[0], step = range / (double)(n - 1), dev = 0;
    if (n_w >= n)
        for (size_t k = 0; k < n; k++)
            dev = fmax(dev, fabs(l[k] - (l[0] + (double)k * step)));
    if (n_w >= n && dev <= 1e-15 * (fabs(l[0]) + range)) {
        even_spaced_all(l, n, w, n_w, s, clip, w_q, index, step, inv);
        return;
    }
    for (size_t i = 0; i < n_w; i++) {
        double x = w[i];
        if (clip)
            x = x < -s ? -s : x > s ? s : x;
        double q = x * inv_s, g = (q - l[0]) * inv;
        g = g > 0 ? g : 0;
        g = g < top ? g : top;
        size_t lo = (size_t)(long)g, j;
        double a = l[lo], b = l[lo + 1], margin = 1e-12 * (1 + fabs(q));
        double d_lo = q - a, d_hi = b - q;
        if (d_lo > margin && d_hi > margin && fabs(d_hi - d_lo) > margin)
            j = lo + (size_t)(d_hi < d_lo);
        else
            j = nearest_sorted(l, n, x / s, inv);
        w_q[i] = s * l[j];
        if (index)
            index[i] = (int)j;
    }
}

int xb_quantize(const xb_levelset *ls, xb_norm norm, const double *w, size_t n, double *w_q,
                int *index, double *scale, xb_error *err)
{
    /* max |w| and the finite check in one pass without a branch per value (vector lanes of running
     * maxima: one would chain every value's comparison to the last) */
    int finite = 1;
    double top = max_abs_finite_all(w, n, &finite);
    if (!finite)
        for (size_t i = 0; i < n; i++)
            if (!isfinite(w[i]))
                return xb_fail(err, XB_EINPUT, "quantize: weight %zu is not a finite number (%g)", i, w[i]);
    double s;
    switch (norm.kind) {
    case XB_NORM_MAXABS:
        s = top;
        if (s == 0)
            s = 1.0;
        break;
    case XB_NORM_CLIP:
        if (!(norm.clip > 0) || !isfinite(norm.clip))
            return xb_fail(err, XB_EINPUT, "quantize: the clipping range must be finite and > 0, got %g",
                           norm.clip);
        s = norm.clip;
        break;
    case XB_NORM_NONE: s = 1.0; break;
    default: return xb_fail(err, XB_EINPUT, "quantize: unknown normalization kind %d", (int)norm.kind);
    }
    if (scale)
        *scale = s;
    if (ls->kind == XB_LEVELS_NONE) {
        if (w_q != w)
            memmove(w_q, w, n * sizeof *w);
        if (index)
            for (size_t i = 0; i < n; i++)
                index[i] = -1;
        return XB_OK;
    }
    xb_levelset *own = NULL;
    if (ls->kind == XB_LEVELS_AFFINE && ls->n == 0) {
        /* The levels come from the normalized (clipped) values themselves. */
        double *x = malloc((n ? n : 1) * sizeof *x);
        if (!x)
            return xb_fail(err, XB_ENOMEM, "quantize: out of memory for %zu weights", n);
        for (size_t i = 0; i < n; i++)
            x[i] = (norm.kind == XB_NORM_CLIP ? (w[i] < -s ? -s : w[i] > s ? s : w[i]) : w[i]) / s;
        int rc = xb_levelset_affine_materialize(ls, x, n, &own, err);
        free(x);
        if (rc)
            return rc;
        ls = own;
    }
    if (ls->kind == XB_LEVELS_NNARY || ls->n < 2) {
        for (size_t i = 0; i < n; i++) {
            double x = w[i];
            if (norm.kind == XB_NORM_CLIP)
                x = x < -s ? -s : x > s ? s : x;
            int j = xb_levelset_nearest(ls, x / s);
            w_q[i] = s * ls->levels[j];
            if (index)
                index[i] = j;
        }
    } else {
        nearest_sorted_all(ls->levels, ls->n, w, n, s, norm.kind == XB_NORM_CLIP, w_q, index);
    }
    xb_levelset_free(&own);
    return XB_OK;
}

int xb_affine_init(double lo, double hi, int bits, xb_affine_quant *out, xb_error *err)
{
    if (bits < 1 || bits > 16)
        return xb_fail(err, XB_EINPUT, "affine quantization: bits must be in 1..16, got %d", bits);
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return xb_fail(err, XB_EINPUT,
                       "affine quantization: the range [%g, %g] must be finite with lo < hi", lo, hi);
    long q_max = (1L << bits) - 1;
    double scale = (hi - lo) / (double)q_max;
    if (!(scale > 0) || !isfinite(scale))
        return xb_fail(err, XB_EINPUT, "affine quantization: range [%g, %g] gives no usable scale", lo,
                       hi);
    double zp = round(-lo / scale);
    if (!(fabs(zp) < 1e15))
        return xb_fail(err, XB_EINPUT,
                       "affine quantization: range [%g, %g] is too far from 0 for its width", lo, hi);
    *out = (xb_affine_quant){
        .bits = bits, .lo = lo, .hi = hi, .scale = scale, .zero_point = (long)zp, .q_max = q_max};
    return XB_OK;
}

int xb_affine_from_data(const double *w, size_t n, int bits, xb_affine_quant *out, xb_error *err)
{
    if (n == 0)
        return xb_fail(err, XB_EINPUT, "affine quantization: no data to take the range from");
    double lo = w[0], hi = w[0];
    for (size_t i = 1; i < n; i++) {
        if (w[i] < lo)
            lo = w[i];
        if (w[i] > hi)
            hi = w[i];
    }
    return xb_affine_init(lo, hi, bits, out, err);
}

void xb_affine_quantize(const xb_affine_quant *p, const double *w, size_t n, double *w_q, long *q)
{
    double zp = (double)p->zero_point, q_max = (double)p->q_max;
    for (size_t i = 0; i < n; i++) {
        double t = round(w[i] / p->scale) + zp;
        if (!(t >= 0)) /* NaN lands on code 0 too */
            t = 0;
        else if (t > q_max)
            t = q_max;
        long c = (long)t;
        w_q[i] = (double)(c - p->zero_point) * p->scale;
        if (q)
            q[i] = c;
    }
}
