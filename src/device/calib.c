// calib: calibration of the programmed read currents from measurements: per-level empirical or fitted distributions
#include "calib.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>

#include "fileio.h"

#define CALIB_MAX_BYTES (64u << 20)

int xb_calib_model_parse(const char *s)
{
    return !strcmp(s, "empirical") ? XB_CALIB_EMPIRICAL
           : !strcmp(s, "normal")  ? XB_CALIB_NORMAL
           : !strcmp(s, "lognormal") ? XB_CALIB_LOGNORMAL
                                     : -1;
}

const char *xb_calib_model_name(xb_calib_model m)
{
    return m == XB_CALIB_NORMAL ? "normal" : m == XB_CALIB_LOGNORMAL ? "lognormal" : "empirical";
}

void xb_calib_free(xb_calib **c)
{
    if (!c || !*c)
        return;
    for (int l = 0; l < XB_CALIB_MAX_LEVELS; l++)
        free((*c)->i_A[l]);
    free(*c);
    *c = NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double xb_ks_pvalue(double d, double ne)
{
    if (!(ne > 0) || !(d >= 0))
        return NAN;
    double sq = sqrt(ne), t = (sq + 0.12 + 0.11 / sq) * d;
    if (t < 0.2)
        return 1.0; /* the series converges slowly there, and Q_KS is 1 to 1e-9 */
    double sum = 0, sign = 1;
    for (int k = 1; k <= 100; k++) {
        double term = sign * exp(-2.0 * k * k * t * t);
        sum += term;
        if (fabs(term) < 1e-16 * fabs(sum))
            break;
        sign = -sign;
    }
    double q = 2 * sum;
    return q < 0 ? 0 : q > 1 ? 1 : q;
}

double xb_ks_one_sample(const double *x, size_t n, double (*cdf)(double x, const void *ctx), const void *ctx)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double f = cdf(x[i], ctx);
        d = fmax(d, fmax((double)(i + 1) / (double)n - f, f - (double)i / (double)n));
    }
    return d;
}

double xb_ks_two_sample(const double *x, size_t n, const double *y, size_t m)
{
    size_t i = 0, j = 0;
    double d = 0;
    while (i < n && j < m) {
        double v = x[i] < y[j] ? x[i] : y[j];
        while (i < n && x[i] <= v)
            i++;
        while (j < m && y[j] <= v)
            j++;
        d = fmax(d, fabs((double)i / (double)n - (double)j / (double)m));
    }
    return d;
}

typedef struct two_par {
    double a, b;
} two_par;

static double normal_cdf(double x, const void *ctx)
{
    const two_par *p = ctx;
    return p->b > 0 ? gsl_cdf_gaussian_P(x - p->a, p->b) : (x >= p->a);
}

static double lognormal_cdf(double x, const void *ctx)
{
    const two_par *p = ctx;
    return x <= 0 ? 0 : p->b > 0 ? gsl_cdf_gaussian_P(log(x) - p->a, p->b) : (log(x) >= p->a);
}

static void fit_level(const double *x, size_t n, xb_calib_fit *f)
{
    double s = 0, s2 = 0, l = 0, l2 = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i], l += log(x[i]);
    f->n = n;
    f->mean_A = s / (double)n;
    f->mu_ln = l / (double)n;
    for (size_t i = 0; i < n; i++) {
        s2 += (x[i] - f->mean_A) * (x[i] - f->mean_A);
        l2 += (log(x[i]) - f->mu_ln) * (log(x[i]) - f->mu_ln);
    }
    f->sd_A = sqrt(s2 / (double)n);
    f->sigma_ln = sqrt(l2 / (double)n);
    two_par pn = {f->mean_A, f->sd_A}, pl = {f->mu_ln, f->sigma_ln};
    f->ks_d_normal = xb_ks_one_sample(x, n, normal_cdf, &pn);
    f->ks_p_normal = xb_ks_pvalue(f->ks_d_normal, (double)n);
    f->ks_d_lognormal = xb_ks_one_sample(x, n, lognormal_cdf, &pl);
    f->ks_p_lognormal = xb_ks_pvalue(f->ks_d_lognormal, (double)n);
}

/* One field of a CSV line: [*p, comma or end), copied into buf (trimmed of a trailing \r). */
static int next_field(const char **p, char *buf, size_t cap)
{
    const char *s = *p, *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len && s[len - 1] == '\r')
        len--;
    if (len >= cap)
        return 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *p = e ? e + 1 : s + strlen(s);
    return e == NULL ? 2 : 0; /* 2: the last field */
}

int xb_calib_load(const char *path, int n_levels, xb_calib_model model, xb_calib **out, xb_error *err)
{
    *out = NULL;
    if (n_levels < 1 || n_levels > XB_CALIB_MAX_LEVELS)
        return xb_fail(err, XB_EINPUT, "%s: the device has %d levels; a calibration allows 1 to %d", path, n_levels,
                       XB_CALIB_MAX_LEVELS);
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = xb_read_file(path, CALIB_MAX_BYTES, &data, &len, err);
    if (rc)
        return rc;
    xb_calib *c = calloc(1, sizeof *c);
    char *text = malloc(len + 1);
    size_t cap[XB_CALIB_MAX_LEVELS] = {0};
    if (!c || !text) {
        free(data), free(c), free(text);
        return xb_fail(err, XB_ENOMEM, "out of memory for %s", path);
    }
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->model = model;
    c->n_levels = n_levels;
    if (memchr(text, '\0', len)) {
        rc = xb_fail(err, XB_EINPUT, "%s: a NUL byte; expected a text CSV with header level,i_read_A", path);
        goto done;
    }
    size_t line_no = 0, rows = 0;
    for (char *line = text, *next; line && *line && !rc; line = next) {
        /* Line by line (not strtok: an empty line must still count in the line numbers). */
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line_no++;
        if (line_no == 1) {
            size_t ll = strlen(line);
            if (ll && line[ll - 1] == '\r')
                line[--ll] = '\0';
            if (strcmp(line, "level,i_read_A"))
                rc = xb_fail(err, XB_EINPUT, "%s line 1: header '%.60s'; expected exactly level,i_read_A (one row per "
                             "measured cell follows)", path, line);
            continue;
        }
        if (!strcmp(line, "") || !strcmp(line, "\r"))
            continue;
        if (++rows > XB_CALIB_MAX_ROWS) {
            rc = xb_fail(err, XB_EINPUT, "%s line %zu: more than %d measured cells; allowed at most %d rows", path,
                         line_no, XB_CALIB_MAX_ROWS, XB_CALIB_MAX_ROWS);
            break;
        }
        const char *p = line;
        char f1[64], f2[64];
        int a = next_field(&p, f1, sizeof f1), b = a == 0 ? next_field(&p, f2, sizeof f2) : 1;
        if (a != 0 || b != 2) {
            rc = xb_fail(err, XB_EINPUT, "%s line %zu: '%.60s'; expected two fields level,i_read_A", path, line_no, line);
            break;
        }
        char *end;
        errno = 0;
        long lv = strtol(f1, &end, 10);
        if (!*f1 || *end || errno || lv < 0 || lv >= n_levels) {
            rc = xb_fail(err, XB_EINPUT, "%s line %zu: level '%s'; allowed: an integer 0 to %d (the device's IGVVA "
                         "levels, 0-based, ascending)", path, line_no, f1, n_levels - 1);
            break;
        }
        errno = 0;
        double i = strtod(f2, &end);
        if (!*f2 || *end || errno || !isfinite(i) || !(i > 0) || i > 1) {
            rc = xb_fail(err, XB_EINPUT, "%s line %zu: i_read_A '%s'; allowed: a finite read current above 0 A and at "
                         "most 1 A", path, line_no, f2);
            break;
        }
        if (c->n[lv] == cap[lv]) {
            size_t nc = cap[lv] ? 2 * cap[lv] : 64;
            double *t = realloc(c->i_A[lv], nc * sizeof *t);
            if (!t) {
                rc = xb_fail(err, XB_ENOMEM, "out of memory for %s", path);
                break;
            }
            c->i_A[lv] = t, cap[lv] = nc;
        }
        c->i_A[lv][c->n[lv]++] = i;
    }
    if (!rc && rows == 0)
        rc = xb_fail(err, XB_EINPUT, "%s: no measured cells; expected a header level,i_read_A and one row per cell", path);
    for (int l = 0; l < n_levels && !rc; l++) {
        if (c->n[l] == 1)
            rc = xb_fail(err, XB_EINPUT, "%s: level %d has a single measured cell; allowed: none, or at least 2", path,
                         l);
        else if (c->n[l]) {
            qsort(c->i_A[l], c->n[l], sizeof *c->i_A[l], cmp_double);
            fit_level(c->i_A[l], c->n[l], &c->fit[l]);
        }
    }
done:
    free(text);
    if (rc)
        xb_calib_free(&c);
    *out = c;
    return rc;
}

const xb_calib_fit *xb_calib_level_fit(const xb_calib *c, int l)
{
    return c && l >= 0 && l < c->n_levels && c->n[l] ? &c->fit[l] : NULL;
}

double xb_calib_draw(const xb_calib *c, int l, gsl_rng *rng)
{
    const xb_calib_fit *f = xb_calib_level_fit(c, l);
    if (!f || !rng)
        return NAN;
    switch (c->model) {
    case XB_CALIB_NORMAL:
        for (int k = 0; k < 1000; k++) {
            double v = f->mean_A + gsl_ran_gaussian(rng, f->sd_A);
            if (v > 0)
                return v;
        }
        return c->i_A[l][0]; /* a level whose normal fit is almost all below 0 A: its smallest cell */
    case XB_CALIB_LOGNORMAL: return exp(f->mu_ln + gsl_ran_gaussian(rng, f->sigma_ln));
    default: return c->i_A[l][gsl_rng_uniform_int(rng, c->n[l])];
    }
}

double xb_calib_cdf(const xb_calib *c, int l, double i_A)
{
    const xb_calib_fit *f = xb_calib_level_fit(c, l);
    if (!f)
        return NAN;
    two_par pn = {f->mean_A, f->sd_A}, pl = {f->mu_ln, f->sigma_ln};
    switch (c->model) {
    case XB_CALIB_NORMAL: return normal_cdf(i_A, &pn);
    case XB_CALIB_LOGNORMAL: return lognormal_cdf(i_A, &pl);
    default: {
        size_t k = 0;
        while (k < c->n[l] && c->i_A[l][k] <= i_A)
            k++;
        return (double)k / (double)c->n[l];
    }
    }
}
