// perturb: C2C, multiplicative, lognormal, additive, D2D and stuck-at perturbations, and their specs
#include "perturb.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#define PERTURB_HELP                                                                               \
    "allowed: none, c2c:ar=A,sigma=S, c2c-level:ar=A,sigma=S (A in [0,1], default 1; S >= 0), "     \
    "mult:alpha=A (A >= 0), lognormal:sigma=S, additive:sigma=S, d2d:sigma=S (S >= 0), "            \
    "stuck:lrs=P,hrs=Q (P, Q in [0,1], default 0, P + Q <= 1)"

/* Probabilities are read from decimal text: 0.7 + 0.3 must pass the P + Q <= 1 test whatever the
 * rounding of the sum. */
#define STUCK_SUM_SLACK 1e-12

static size_t c2c_count(size_t n, double ar)
{
    double m = round(ar * (double)n);
    if (!(m > 0))
        return 0;
    return m >= (double)n ? n : (size_t)m;
}

/* Selection sampling (Knuth's Algorithm S, as in gsl_ran_choose): element i is taken with probability
 * (still needed) / (still left), which picks exactly m of n, every m-subset equally likely, visiting
 * the array in order and needing no index buffer. When every remaining element is needed no uniform is
 * drawn, so ar = 1 costs only the normal draws. */
#define C2C_SELECT_LOOP(BODY)                                                                      \
    do {                                                                                           \
        size_t need_ = m;                                                                          \
        for (size_t i = 0; i < n && need_ > 0; i++) {                                              \
            size_t left_ = n - i;                                                                  \
            if (need_ < left_ && (double)left_ * gsl_rng_uniform(rng) >= (double)need_)            \
                continue;                                                                          \
            BODY;                                                                                  \
            need_--;                                                                               \
        }                                                                                          \
    } while (0)

size_t xb_perturb_c2c(gsl_rng *rng, double *x, size_t n, double ar, double sigma, double scale)
{
    size_t m = c2c_count(n, ar);
    double sd = sigma * scale;
    C2C_SELECT_LOOP(x[i] += sd * gsl_ran_gaussian_ziggurat(rng, 1.0));
    return m;
}

size_t xb_perturb_c2c_level(gsl_rng *rng, double *x, size_t n, double ar, double sigma)
{
    size_t m = c2c_count(n, ar);
    C2C_SELECT_LOOP(x[i] += sigma * fabs(x[i]) * gsl_ran_gaussian_ziggurat(rng, 1.0));
    return m;
}

void xb_perturb_mult(gsl_rng *rng, double *x, size_t n, double alpha)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= 1.0 + alpha * gsl_ran_gaussian_ziggurat(rng, 1.0);
}

void xb_perturb_lognormal(gsl_rng *rng, double *x, size_t n, double sigma)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= exp(sigma * gsl_ran_gaussian_ziggurat(rng, 1.0));
}

void xb_perturb_additive(gsl_rng *rng, double *x, size_t n, double sigma)
{
    for (size_t i = 0; i < n; i++)
        x[i] += sigma * gsl_ran_gaussian_ziggurat(rng, 1.0);
}

void xb_perturb_d2d(gsl_rng *rng, double *g, size_t n, double sigma)
{
    for (size_t i = 0; i < n; i++) {
        double v = g[i] * (1.0 + sigma * gsl_ran_gaussian_ziggurat(rng, 1.0));
        g[i] = v > 0 ? v : 0.0;
    }
}

int xb_perturb_stuck_at(gsl_rng *rng, double *g, size_t n, double p_lrs, double g_lrs, double p_hrs,
                        double g_hrs, size_t *n_lrs, size_t *n_hrs, xb_error *err)
{
    if (!(p_lrs >= 0) || !(p_hrs >= 0) || !(p_lrs + p_hrs <= 1 + STUCK_SUM_SLACK))
        return xb_fail(err, XB_EINPUT,
                       "stuck-at faults: probabilities p_lrs = %g and p_hrs = %g must be >= 0 with a sum "
                       "<= 1",
                       p_lrs, p_hrs);
    size_t c_lrs = 0, c_hrs = 0;
    double p_any = p_lrs + p_hrs;
    for (size_t i = 0; i < n; i++) {
        double u = gsl_rng_uniform(rng);
        if (u < p_lrs) {
            g[i] = g_lrs;
            c_lrs++;
        } else if (u < p_any) {
            g[i] = g_hrs;
            c_hrs++;
        }
    }
    if (n_lrs)
        *n_lrs = c_lrs;
    if (n_hrs)
        *n_hrs = c_hrs;
    return XB_OK;
}

static const char *kind_name(xb_perturb_kind k)
{
    switch (k) {
    case XB_PERTURB_NONE: return "none";
    case XB_PERTURB_C2C: return "c2c";
    case XB_PERTURB_C2C_LEVEL: return "c2c-level";
    case XB_PERTURB_MULT: return "mult";
    case XB_PERTURB_LOGNORMAL: return "lognormal";
    case XB_PERTURB_ADDITIVE: return "additive";
    case XB_PERTURB_D2D: return "d2d";
    case XB_PERTURB_STUCK: return "stuck";
    }
    return NULL;
}

int xb_perturb_check(const xb_perturb *p, xb_error *err)
{
    const char *name = kind_name(p->kind);
    if (!name)
        return xb_fail(err, XB_EINPUT, "perturbation: unknown kind %d; " PERTURB_HELP, (int)p->kind);
    switch (p->kind) {
    case XB_PERTURB_NONE: break;
    case XB_PERTURB_C2C:
    case XB_PERTURB_C2C_LEVEL:
        if (!(p->ar >= 0 && p->ar <= 1))
            return xb_fail(err, XB_EINPUT, "perturbation %s: ar = %g must be in [0, 1]; " PERTURB_HELP, name,
                           p->ar);
        /* fall through */
    case XB_PERTURB_LOGNORMAL:
    case XB_PERTURB_ADDITIVE:
    case XB_PERTURB_D2D:
        if (!(p->sigma >= 0) || !isfinite(p->sigma))
            return xb_fail(err, XB_EINPUT, "perturbation %s: sigma = %g must be finite and >= 0; " PERTURB_HELP,
                           name, p->sigma);
        break;
    case XB_PERTURB_MULT:
        if (!(p->alpha >= 0) || !isfinite(p->alpha))
            return xb_fail(err, XB_EINPUT, "perturbation %s: alpha = %g must be finite and >= 0; " PERTURB_HELP,
                           name, p->alpha);
        break;
    case XB_PERTURB_STUCK:
        if (!(p->p_lrs >= 0 && p->p_lrs <= 1) || !(p->p_hrs >= 0 && p->p_hrs <= 1))
            return xb_fail(err, XB_EINPUT, "perturbation %s: lrs = %g and hrs = %g must be probabilities in "
                           "[0, 1]; " PERTURB_HELP, name, p->p_lrs, p->p_hrs);
        if (!(p->p_lrs + p->p_hrs <= 1 + STUCK_SUM_SLACK))
            return xb_fail(err, XB_EINPUT, "perturbation %s: lrs + hrs = %g + %g exceeds 1 (a cell is stuck at "
                           "one state at most); lower one of them; " PERTURB_HELP, name, p->p_lrs, p->p_hrs);
        break;
    }
    return XB_OK;
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static const char *fmt_num(double v, char buf[32])
{
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, 32, "%.17g", v);
    return buf;
}

int xb_perturb_format(const xb_perturb *p, char *buf, size_t size)
{
    const char *name = kind_name(p->kind);
    char a[32], b[32];
    switch (p->kind) {
    case XB_PERTURB_C2C:
    case XB_PERTURB_C2C_LEVEL:
        return snprintf(buf, size, "%s:ar=%s,sigma=%s", name, fmt_num(p->ar, a), fmt_num(p->sigma, b));
    case XB_PERTURB_MULT: return snprintf(buf, size, "%s:alpha=%s", name, fmt_num(p->alpha, a));
    case XB_PERTURB_LOGNORMAL:
    case XB_PERTURB_ADDITIVE:
    case XB_PERTURB_D2D: return snprintf(buf, size, "%s:sigma=%s", name, fmt_num(p->sigma, a));
    case XB_PERTURB_STUCK:
        return snprintf(buf, size, "%s:lrs=%s,hrs=%s", name, fmt_num(p->p_lrs, a), fmt_num(p->p_hrs, b));
    case XB_PERTURB_NONE: return snprintf(buf, size, "none");
    }
    return snprintf(buf, size, "unknown");
}

int xb_perturb_on_outputs(const xb_perturb *p)
{
    return p->kind == XB_PERTURB_ADDITIVE;
}

int xb_perturb_on_conductances(const xb_perturb *p)
{
    return p->kind == XB_PERTURB_D2D || p->kind == XB_PERTURB_STUCK;
}

int xb_perturb_apply(const xb_perturb *p, gsl_rng *rng, double *x, size_t n, size_t *n_changed,
                     xb_error *err)
{
    int rc = xb_perturb_check(p, err);
    if (rc)
        return rc;
    if (xb_perturb_on_conductances(p))
        return xb_fail(err, XB_EINPUT, "perturbation %s acts on programmed conductances, not on weights or "
                       "outputs: apply it with xb_perturb_apply_g", kind_name(p->kind));
    size_t changed = n;
    switch (p->kind) {
    case XB_PERTURB_NONE: changed = 0; break;
    case XB_PERTURB_C2C: {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s = fabs(x[i]) > s ? fabs(x[i]) : s;
        changed = xb_perturb_c2c(rng, x, n, p->ar, p->sigma, s);
        break;
    }
    case XB_PERTURB_C2C_LEVEL: changed = xb_perturb_c2c_level(rng, x, n, p->ar, p->sigma); break;
    case XB_PERTURB_MULT: xb_perturb_mult(rng, x, n, p->alpha); break;
    case XB_PERTURB_LOGNORMAL: xb_perturb_lognormal(rng, x, n, p->sigma); break;
    case XB_PERTURB_ADDITIVE: xb_perturb_additive(rng, x, n, p->sigma); break;
    case XB_PERTURB_D2D:
    case XB_PERTURB_STUCK: break; /* refused above */
    }
    if (n_changed)
        *n_changed = changed;
    return XB_OK;
}

int xb_perturb_apply_g(const xb_perturb *p, gsl_rng *rng, double *g_S, size_t n, double g_lrs_S, double g_hrs_S,
                       size_t *n_changed, xb_error *err)
{
    int rc = xb_perturb_check(p, err);
    if (rc)
        return rc;
    size_t changed = 0;
    switch (p->kind) {
    case XB_PERTURB_NONE: break;
    case XB_PERTURB_D2D:
        xb_perturb_d2d(rng, g_S, n, p->sigma);
        changed = n;
        break;
    case XB_PERTURB_STUCK: {
        size_t a = 0, b = 0;
        if ((rc = xb_perturb_stuck_at(rng, g_S, n, p->p_lrs, g_lrs_S, p->p_hrs, g_hrs_S, &a, &b, err)))
            return rc;
        changed = a + b;
        break;
    }
    default:
        return xb_fail(err, XB_EINPUT, "perturbation %s acts on weights or outputs, not on conductances: apply "
                       "it with xb_perturb_apply", kind_name(p->kind));
    }
    if (n_changed)
        *n_changed = changed;
    return XB_OK;
}

/* Parse "key=value" items of a spec body. keys[] lists the allowed keys; vals[] receives values, seen[]
 * marks which were given. */
static int parse_params(const char *spec, const char *body, const char *const *keys, int nkeys,
                        double *vals, int *seen, xb_error *err)
{
    const char *p = body;
    if (*p == '\0')
        return xb_fail(err, XB_EINPUT, "perturbation \"%s\": no parameters after the ':'; " PERTURB_HELP,
                       spec);
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return xb_fail(err, XB_EINPUT,
                           "perturbation \"%s\": \"%.*s\" is not key=value; " PERTURB_HELP, spec,
                           (int)(len > 40 ? 40 : len), p);
        size_t klen = (size_t)(eq - p);
        int which = -1;
        for (int k = 0; k < nkeys; k++)
            if (strlen(keys[k]) == klen && strncmp(keys[k], p, klen) == 0)
                which = k;
        if (which < 0)
            return xb_fail(err, XB_EINPUT, "perturbation \"%s\": unknown parameter \"%.*s\"; " PERTURB_HELP,
                           spec, (int)(klen > 40 ? 40 : klen), p);
        if (seen[which])
            return xb_fail(err, XB_EINPUT, "perturbation \"%s\": parameter %s is given twice; " PERTURB_HELP,
                           spec, keys[which]);
        char buf[64];
        size_t vlen = len - klen - 1;
        char *end = NULL;
        double v = 0;
        int ok = vlen > 0 && vlen < sizeof buf;
        if (ok) {
            memcpy(buf, eq + 1, vlen);
            buf[vlen] = '\0';
            errno = 0;
            v = strtod(buf, &end);
            ok = end != buf && *end == '\0' && errno != ERANGE && isfinite(v);
        }
        if (!ok)
            return xb_fail(err, XB_EINPUT, "perturbation \"%s\": %s needs a finite number; " PERTURB_HELP,
                           spec, keys[which]);
        vals[which] = v;
        seen[which] = 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return XB_OK;
}

int xb_perturb_parse(const char *spec, xb_perturb *out, xb_error *err)
{
    if (!spec)
        spec = "";
    xb_perturb p = {.kind = XB_PERTURB_NONE};
    if (strcmp(spec, "none") == 0) {
        *out = p;
        return XB_OK;
    }
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    static const xb_perturb_kind kinds[] = {XB_PERTURB_C2C,       XB_PERTURB_C2C_LEVEL, XB_PERTURB_MULT,
                                            XB_PERTURB_LOGNORMAL, XB_PERTURB_ADDITIVE,  XB_PERTURB_D2D,
                                            XB_PERTURB_STUCK};
    int found = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *name = kind_name(kinds[k]);
        if (strlen(name) == nlen && strncmp(name, spec, nlen) == 0) {
            p.kind = kinds[k];
            found = 1;
        }
    }
    if (!found)
        return xb_fail(err, XB_EINPUT, "perturbation \"%s\": unknown model \"%.*s\"; " PERTURB_HELP, spec,
                       (int)(nlen > 40 ? 40 : nlen), spec);
    if (!colon)
        return xb_fail(err, XB_EINPUT, "perturbation \"%s\": parameters missing; " PERTURB_HELP, spec);
    static const char *const c2c_keys[] = {"ar", "sigma"};
    static const char *const sigma_keys[] = {"sigma"};
    static const char *const alpha_keys[] = {"alpha"};
    static const char *const stuck_keys[] = {"lrs", "hrs"};
    double vals[2] = {0, 0};
    int seen[2] = {0, 0};
    int rc;
    switch (p.kind) {
    case XB_PERTURB_C2C:
    case XB_PERTURB_C2C_LEVEL:
        rc = parse_params(spec, colon + 1, c2c_keys, 2, vals, seen, err);
        if (rc)
            return rc;
        if (!seen[1])
            return xb_fail(err, XB_EINPUT, "perturbation \"%s\": sigma is required; " PERTURB_HELP, spec);
        p.ar = seen[0] ? vals[0] : 1.0;
        p.sigma = vals[1];
        break;
    case XB_PERTURB_MULT:
        rc = parse_params(spec, colon + 1, alpha_keys, 1, vals, seen, err);
        if (rc)
            return rc;
        p.alpha = vals[0];
        break;
    case XB_PERTURB_STUCK:
        /* Either may be left out (a study of one fault kind), so both default to 0. */
        rc = parse_params(spec, colon + 1, stuck_keys, 2, vals, seen, err);
        if (rc)
            return rc;
        p.p_lrs = vals[0];
        p.p_hrs = vals[1];
        break;
    default:
        rc = parse_params(spec, colon + 1, sigma_keys, 1, vals, seen, err);
        if (rc)
            return rc;
        p.sigma = vals[0];
        break;
    }
    rc = xb_perturb_check(&p, err);
    if (rc)
        return xb_error_prefix(err, "perturbation \"%s\"", spec);
    *out = p;
    return XB_OK;
}
