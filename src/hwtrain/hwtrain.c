// hwtrain: noised and quantization-aware training through the test-time perturbations and level sets
#include "hwtrain.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

/* Count the '/'-separated parts of spec. */
static int count_parts(const char *spec)
{
    int n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == '/';
    return n;
}

/* Part l of a '/'-separated spec with n_parts parts (one part serves every layer) into buf. */
static int spec_part(const char *spec, int n_parts, int l, char *buf, size_t size)
{
    const char *p = spec;
    for (int i = 0; i < (n_parts == 1 ? 0 : l); i++)
        p = strchr(p, '/') + 1;
    size_t len = strcspn(p, "/");
    if (len >= size)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

static int parse_layer_noise(const char *opt, int l, char *text, xb_hw_layer *L, xb_error *err)
{
    L->n_models = 0;
    if (!strcmp(text, "none"))
        return XB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(text, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
        if (L->n_models == XB_HW_MAX_MODELS)
            return xb_fail(err, XB_EINPUT, "%s: layer %d joins more than %d models with '+'", opt, l + 1,
                           XB_HW_MAX_MODELS);
        xb_perturb p;
        int rc = xb_perturb_parse(tok, &p, err);
        if (rc)
            return xb_error_prefix(err, "%s, layer %d", opt, l + 1);
        if (xb_perturb_on_conductances(&p))
            return xb_fail(err, XB_EINPUT, "%s, layer %d: \"%s\" acts on programmed conductances, which training "
                           "does not have; allowed in training: lognormal, mult, c2c, c2c-level, additive, none "
                           "(the weight-domain form of d2d:sigma=S is mult:alpha=S)", opt, l + 1, tok);
        if (p.kind != XB_PERTURB_NONE)
            L->model[L->n_models++] = p;
    }
    return XB_OK;
}

static int levelset_for_layer(const char *text, const xb_device *dev, xb_levelset **out, xb_error *err)
{
    if (!strcmp(text, "device")) {
        if (!dev)
            return xb_fail(err, XB_EINPUT, "level set \"device\" needs a device file (--device FILE)");
        return xb_levelset_from_device(dev, out, err);
    }
    return xb_levelset_parse(text, out, err);
}

static int parse_act(xb_hwtrain *hw, const char *act, xb_error *err)
{
    hw->act_bits = 0;
    hw->act_scale = 0;
    if (!act || !strcmp(act, "none"))
        return XB_OK;
    char *end;
    errno = 0;
    long bits = strtol(act, &end, 10);
    int ok = end != act && *end == ':' && errno == 0 && bits >= 1 && bits <= 16;
    double s = 0;
    if (ok && strcmp(end + 1, "dynamic") != 0) {
        char *e2;
        s = strtod(end + 1, &e2);
        ok = e2 != end + 1 && *e2 == '\0' && isfinite(s) && s > 0;
    }
    if (!ok)
        return xb_fail(err, XB_EINPUT, "activation quantization \"%s\": expected none, B:dynamic or B:S with bits "
                       "B in 1..16 and a constant step S > 0, e.g. 4:dynamic or 8:0.01", act);
    hw->act_bits = (int)bits;
    hw->act_scale = s;
    return XB_OK;
}

int xb_hwtrain_parse(xb_hwtrain *hw, int n_layers, const char *noise, const char *levels, const char *norm,
                     double t_c, size_t noise_ramp, const char *act, const xb_device *dev, xb_error *err)
{
    memset(hw, 0, sizeof *hw);
    hw->t_c = INFINITY;
    if (n_layers < 1 || n_layers > XB_HW_MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "hardware-aware training: %d weight layers; allowed 1..%d", n_layers,
                       XB_HW_MAX_LAYERS);
    hw->n_layers = n_layers;
    noise = noise ? noise : "none";
    levels = levels ? levels : "none";
    norm = norm ? norm : "maxabs";
    act = act ? act : "none";
    snprintf(hw->noise_spec, sizeof hw->noise_spec, "%s", noise);
    snprintf(hw->levels_spec, sizeof hw->levels_spec, "%s", levels);
    snprintf(hw->norm_spec, sizeof hw->norm_spec, "%s", norm);
    snprintf(hw->act_spec, sizeof hw->act_spec, "%s", act);
    if (strlen(noise) >= sizeof hw->noise_spec || strlen(levels) >= sizeof hw->levels_spec)
        return xb_fail(err, XB_EINPUT, "hardware-aware training: a noise or level spec is longer than %zu characters",
                       sizeof hw->noise_spec - 1);
    int rc;
    if ((rc = xb_norm_parse(norm, &hw->norm, err)))
        return xb_error_prefix(err, "--train-norm");
    if (!(t_c > 0))
        return xb_fail(err, XB_EINPUT, "--ste-threshold %g: the gradient threshold t_c must be > 0 (inf: none)", t_c);
    hw->t_c = t_c;
    hw->noise_ramp = noise_ramp;
    if ((rc = parse_act(hw, act, err)))
        return rc;
    const char *specs[2] = {noise, levels}, *opts[2] = {"--train-noise", "--train-levels"};
    for (int which = 0; which < 2; which++) {
        int parts = count_parts(specs[which]);
        if (parts != 1 && parts != n_layers) {
            xb_hwtrain_clear(hw);
            return xb_fail(err, XB_EINPUT, "%s '%s': %d specs for a network of %d layer%s; give one for every layer "
                           "or one per layer, separated by '/'", opts[which], specs[which], parts, n_layers,
                           n_layers == 1 ? "" : "s");
        }
        for (int l = 0; l < n_layers; l++) {
            char buf[1024];
            spec_part(specs[which], parts, l, buf, sizeof buf);
            if (which == 0)
                rc = parse_layer_noise(opts[0], l, buf, &hw->layer[l], err);
            else if (strcmp(buf, "none") != 0) {
                rc = levelset_for_layer(buf, dev, &hw->layer[l].levels, err);
                if (rc)
                    xb_error_prefix(err, "%s, layer %d", opts[1], l + 1);
            }
            if (rc) {
                xb_hwtrain_clear(hw);
                return rc;
            }
        }
    }
    return XB_OK;
}

void xb_hwtrain_clear(xb_hwtrain *hw)
{
    if (!hw)
        return;
    for (int l = 0; l < XB_HW_MAX_LAYERS; l++) {
        xb_levelset_free(&hw->layer[l].levels);
        hw->layer[l].n_models = 0;
    }
    hw->act_bits = 0;
}

int xb_hwtrain_active(const xb_hwtrain *hw)
{
    if (!hw)
        return 0;
    for (int l = 0; l < hw->n_layers; l++)
        if (hw->layer[l].n_models || (hw->layer[l].levels && hw->layer[l].levels->kind != XB_LEVELS_NONE))
            return 1;
    return hw->act_bits > 0;
}

/* ---- The training noise generator ------------------------------------------------------------
 * Every batch draws one value per weight, so the generator and the transforms dominate the cost of
 * noised training unless they are cheap. The session's gsl_rng_mt19937 (seeded with seed + 2) gives
 * two 32-bit draws per forward pass; they seed (through splitmix64) a xoshiro256** stream
 * (Blackman & Vigna 2018) that draws the whole pass: normals by the 128-layer ziggurat (Marsaglia &
 * Tsang 2000, with Doornik's 2005 correction: the layer index and the value from disjoint bits),
 * uniforms as 53-bit doubles, and the lognormal factor exp(sigma N) by a polynomial exp over arrays.
 * The same seed gives the same stream on every machine with IEEE doubles (the code is plain C with
 * GCC/Clang vector types; no fused multiply-add is requested). */

#define ZIG_C 128
#define ZIG_R 3.442619855899
#define ZIG_V 9.91256303526217e-3

typedef struct hw_rng {
    uint64_t s[4];
    double zx[ZIG_C + 1], zr[ZIG_C]; /* ziggurat tables (Doornik's ZIGNOR layout) */
} hw_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void hw_rng_tables(hw_rng *r)
{
    double f = exp(-0.5 * ZIG_R * ZIG_R);
    r->zx[0] = ZIG_V / f;
    r->zx[1] = ZIG_R;
    r->zx[ZIG_C] = 0;
    for (int i = 2; i < ZIG_C; i++) {
        r->zx[i] = sqrt(-2 * log(ZIG_V / r->zx[i - 1] + f));
        f = exp(-0.5 * r->zx[i] * r->zx[i]);
    }
    for (int i = 0; i < ZIG_C; i++)
        r->zr[i] = r->zx[i + 1] / r->zx[i];
}

/* Seed the stream from two draws of the session's GSL generator. */
static void hw_rng_seed(hw_rng *r, gsl_rng *from)
{
    uint64_t x = ((uint64_t)gsl_rng_get(from) << 32) ^ (uint64_t)gsl_rng_get(from);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t hw_next(hw_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform on (0, 1): 53 bits, never 0 (the ziggurat's tail takes its log). */
static inline double hw_uniform_pos(hw_rng *r) { return ((double)(hw_next(r) >> 11) + 0.5) * 0x1.0p-53; }

/* Uniform on [0, 1). */
static inline double hw_uniform(hw_rng *r) { return (double)(hw_next(r) >> 11) * 0x1.0p-53; }

static double hw_normal_slow(hw_rng *r, uint64_t b)
{
    for (;;) {
        int i = (int)(b & 0x7F);
        double u = (double)((int64_t)b >> 11) * 0x1.0p-52; /* [-1, 1) from the top 53 bits */
        if (fabs(u) < r->zr[i])
            return u * r->zx[i];
        if (i == 0) { /* the tail beyond R (Marsaglia 1964) */
            double x, y;
            do {
                x = log(hw_uniform_pos(r)) / ZIG_R;
                y = log(hw_uniform_pos(r));
            } while (-2 * y < x * x);
            return u < 0 ? x - ZIG_R : ZIG_R - x;
        }
        double x = u * r->zx[i], x2 = x * x;
        double f0 = exp(-0.5 * (r->zx[i] * r->zx[i] - x2)), f1 = exp(-0.5 * (r->zx[i + 1] * r->zx[i + 1] - x2));
        if (f1 + hw_uniform(r) * (f0 - f1) < 1.0)
            return x;
        b = hw_next(r);
    }
}

/* A standard normal deviate. */
static inline double hw_normal(hw_rng *r)
{
    uint64_t b = hw_next(r);
    int i = (int)(b & 0x7F);
    double u = (double)((int64_t)b >> 11) * 0x1.0p-52;
    if (fabs(u) < r->zr[i])
        return u * r->zx[i];
    return hw_normal_slow(r, b);
}

static void hw_normals(hw_rng *r, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = hw_normal(r);
}

typedef double v2d __attribute__((vector_size(16)));
typedef uint64_t v2u __attribute__((vector_size(16)));
typedef int64_t v2i __attribute__((vector_size(16)));

/* exp over two lanes: Cody-Waite reduction x = k ln 2 + r, |r| <= ln 2 / 2, the degree-12 Taylor
 * polynomial of exp(r) (truncation below 2e-16 relative), times 2^k built from its bits. Arguments are
 * clamped to [-700, 700] (the noise arguments are sigma N, far inside). exp(0) is exactly 1. */
static inline v2d exp2v(v2d x)
{
    const v2d lo = {-700, -700}, hi = {700, 700};
    v2i m = x < lo; /* lanes: -1 where true */
    x = (v2d)(((v2i)lo & m) | ((v2i)x & ~m));
    m = x > hi;
    x = (v2d)(((v2i)hi & m) | ((v2i)x & ~m));
    const double magic = 0x1.8p52;
    v2d t = x * 1.4426950408889634 + magic; /* round(x / ln 2) in the low bits */
    v2d k = t - magic;
    v2d r = x - k * 6.93147180369123816490e-01 - k * 1.90821492927058770002e-10;
    v2d p = r * (1.0 / 479001600) + 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    v2i ki = (v2i)t - (v2i)(v2d){magic, magic};
    v2u scale = (v2u)((ki + 1023) << 52);
    return p * (v2d)scale;
}

/* g[i] = exp(sigma g[i]) for n values. Two lanes at a time; the compiler interleaves the
 * independent iterations of the unrolled loop. */
static void hw_exp_scaled(double *g, size_t n, double sigma)
{
    size_t i = 0;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
    for (; i + 2 <= n; i += 2) {
        v2d v;
        memcpy(&v, g + i, sizeof v);
        v = exp2v(v * sigma);
        memcpy(g + i, &v, sizeof v);
    }
    if (i < n) {
        v2d v = {g[i], 0};
        v = exp2v(v * sigma);
        g[i] = v[0];
    }
}

struct xb_hwtrain_session {
    const xb_hwtrain *hw;
    int n_layers;
    gsl_rng *rng;     /* mt19937 seeded with seed + 2: two draws seed each forward pass's stream */
    hw_rng fast;      /* the stream of the current forward pass (and its additive draws) */
    double ramp;      /* the noise spreads' share in the current epoch */
    double **factor;  /* per layer: d fwd / d master for [W; b] (0 where the STE masks) */
    double *tmp;      /* widest layer's [W; b]: the draws of one model */
    int *has_factor;  /* 0: every factor of the layer is 1 */
};

void xb_hwtrain_session_free(xb_hwtrain_session **sp)
{
    if (!sp || !*sp)
        return;
    xb_hwtrain_session *s = *sp;
    for (int l = 0; l < s->n_layers; l++)
        if (s->factor)
            free(s->factor[l]);
    free(s->factor);
    free(s->tmp);
    free(s->has_factor);
    gsl_rng_free(s->rng);
    free(s);
    *sp = NULL;
}

xb_hwtrain_session *xb_hwtrain_session_new(const xb_hwtrain *hw, const xb_mlp *m, unsigned long seed)
{
    if (hw->n_layers != m->n_layers)
        return NULL;
    xb_hwtrain_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hw = hw;
    s->n_layers = m->n_layers;
    s->ramp = 1.0;
    s->rng = gsl_rng_alloc(gsl_rng_mt19937);
    s->factor = calloc((size_t)m->n_layers, sizeof *s->factor);
    s->has_factor = calloc((size_t)m->n_layers, sizeof *s->has_factor);
    size_t widest = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1] > widest)
            widest = m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1];
    s->tmp = malloc(widest * sizeof *s->tmp);
    if (!s->rng || !s->factor || !s->has_factor || !s->tmp) {
        xb_hwtrain_session_free(&s);
        return NULL;
    }
    for (int l = 0; l < m->n_layers; l++) {
        size_t n = m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1];
        s->factor[l] = malloc(n * sizeof **s->factor);
        if (!s->factor[l]) {
            xb_hwtrain_session_free(&s);
            return NULL;
        }
    }
    gsl_rng_set(s->rng, seed + 2);
    hw_rng_tables(&s->fast);
    hw_rng_seed(&s->fast, s->rng); /* the hooks may draw before the first forward pass */
    return s;
}

/* The model with its spread scaled by the ramp. */
static xb_perturb ramped(const xb_perturb *p, double r)
{
    xb_perturb q = *p;
    q.sigma *= r;
    q.alpha *= r;
    return q;
}

/* Element j of a layer's [W; b]. */
static inline double *elem(double *W, double *b, size_t nw, size_t j) { return j < nw ? W + j : b + (j - nw); }

/* c2c (sigma relative to the scale max |w| of [W; b], held constant: derivative 1) and c2c-level
 * (w' = w + sigma |w| N: derivative 1 + sigma sign(w) N = w' / w, 1 where w = 0) on round(ar n) of the
 * n values, chosen by selection sampling as xb_perturb_c2c does; f (may be NULL) takes the derivative. */
static void noise_c2c(hw_rng *r, const xb_perturb *p, double *W, double *b, size_t nw, size_t nb, double *f)
{
    size_t n = nw + nb;
    double m_d = round(p->ar * (double)n);
    size_t need = !(m_d > 0) ? 0 : m_d >= (double)n ? n : (size_t)m_d;
    double sd = p->sigma;
    if (p->kind == XB_PERTURB_C2C) {
        double scale = fmax(xb_max_abs(W, nw), xb_max_abs(b, nb));
        sd *= scale;
    }
    for (size_t j = 0; j < n && need > 0; j++) {
        size_t left = n - j;
        if (need < left && (double)left * hw_uniform(r) >= (double)need)
            continue;
        double *x = elem(W, b, nw, j), old = *x;
        if (p->kind == XB_PERTURB_C2C)
            *x = old + sd * hw_normal(r);
        else {
            *x = old + sd * fabs(old) * hw_normal(r);
            if (f && old != 0)
                f[j] *= *x / old;
        }
        need--;
    }
}

int xb_hwtrain_forward(xb_hwtrain_session *s, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err)
{
    const xb_hwtrain *hw = s->hw;
    s->ramp = hw->noise_ramp ? fmin(1.0, (double)(epoch + 1) / (double)hw->noise_ramp) : 1.0;
    hw_rng_seed(&s->fast, s->rng);
    for (int l = 0; l < master->n_layers; l++) {
        const xb_hw_layer *L = &hw->layer[l];
        size_t nw = master->sizes[l] * master->sizes[l + 1], nb = master->sizes[l + 1], n = nw + nb;
        double *f = s->factor[l], *g = s->tmp, *W = fwd->W[l], *b = fwd->b[l];
        const double *srcW = master->W[l], *srcb = master->b[l]; /* where the values of fwd are now */
        s->has_factor[l] = 0;
        if (L->levels && L->levels->kind != XB_LEVELS_NONE) {
            double scale = 1;
            int rc = xb_quantize(L->levels, hw->norm, master->W[l], nw, W, NULL, &scale, err);
            if (rc)
                return xb_error_prefix(err, "quantization-aware training, layer %d", l + 1);
            srcW = W;
            if (isfinite(hw->t_c)) {
                /* The paper's STE (4): no gradient on weights beyond the threshold. */
                const double *mw = master->W[l];
                for (size_t i = 0; i < nw; i++)
                    f[i] = fabs(mw[i] / scale) <= hw->t_c ? 1.0 : 0.0;
                for (size_t i = nw; i < n; i++)
                    f[i] = 1.0;
                s->has_factor[l] = 1;
            }
        }
        for (int i = 0; i < L->n_models; i++) {
            if (xb_perturb_on_outputs(&L->model[i]))
                continue;
            xb_perturb p = ramped(&L->model[i], s->ramp);
            if (p.kind == XB_PERTURB_LOGNORMAL || p.kind == XB_PERTURB_MULT) {
                /* Multiplicative: the factors g are also the derivative. */
                hw_normals(&s->fast, g, n);
                if (p.kind == XB_PERTURB_LOGNORMAL)
                    hw_exp_scaled(g, n, p.sigma);
                else
                    for (size_t j = 0; j < n; j++)
                        g[j] = 1.0 + p.alpha * g[j];
                for (size_t j = 0; j < nw; j++)
                    W[j] = srcW[j] * g[j];
                for (size_t j = 0; j < nb; j++)
                    b[j] = srcb[j] * g[nw + j];
                srcW = W;
                srcb = b;
                if (s->has_factor[l])
                    for (size_t j = 0; j < n; j++)
                        f[j] *= g[j];
                else
                    memcpy(f, g, n * sizeof *f);
                s->has_factor[l] = 1;
                continue;
            }
            if (srcW != W)
                memcpy(W, srcW, nw * sizeof *W);
            if (srcb != b)
                memcpy(b, srcb, nb * sizeof *b);
            srcW = W;
            srcb = b;
            if (p.kind == XB_PERTURB_C2C_LEVEL && !s->has_factor[l]) {
                for (size_t j = 0; j < n; j++)
                    f[j] = 1.0;
                s->has_factor[l] = 1;
            }
            if (p.kind == XB_PERTURB_C2C || p.kind == XB_PERTURB_C2C_LEVEL)
                noise_c2c(&s->fast, &p, W, b, nw, nb, s->has_factor[l] ? f : NULL);
            else
                return xb_fail(err, XB_EINPUT, "noised training, layer %d: model kind %d is not a weight-domain "
                               "model", l + 1, (int)p.kind);
        }
        if (srcW != W)
            memcpy(W, srcW, nw * sizeof *W);
        if (srcb != b)
            memcpy(b, srcb, nb * sizeof *b);
    }
    return XB_OK;
}

void xb_hwtrain_master_grad(xb_hwtrain_session *s, xb_mlp *grad)
{
    for (int l = 0; l < grad->n_layers; l++) {
        if (!s->has_factor[l])
            continue;
        size_t nw = grad->sizes[l] * grad->sizes[l + 1], nb = grad->sizes[l + 1];
        const double *f = s->factor[l];
        for (size_t i = 0; i < nw; i++)
            grad->W[l][i] *= f[i];
        for (size_t i = 0; i < nb; i++)
            grad->b[l][i] *= f[nw + i];
    }
}

static int hook_forward(void *ctx, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err)
{
    return xb_hwtrain_forward(ctx, master, fwd, epoch, err);
}

static void hook_grad(void *ctx, const xb_mlp *master, const xb_mlp *fwd, xb_mlp *grad)
{
    (void)master;
    (void)fwd;
    xb_hwtrain_master_grad(ctx, grad);
}

static void hook_preact(void *ctx, int k, double *z, size_t n, size_t fan_out)
{
    xb_hwtrain_session *s = ctx;
    const xb_hw_layer *L = &s->hw->layer[k];
    for (int i = 0; i < L->n_models; i++) {
        if (!xb_perturb_on_outputs(&L->model[i]))
            continue;
        double sigma = L->model[i].sigma * s->ramp; /* additive, checked when parsed */
        for (size_t j = 0; j < n * fan_out; j++)
            z[j] += sigma * hw_normal(&s->fast);
    }
}

static void hook_act(void *ctx, int k, double *a, size_t n, size_t fan_out)
{
    (void)k;
    xb_hwtrain_session *s = ctx;
    int bits = s->hw->act_bits;
    if (!bits)
        return;
    size_t cnt = n * fan_out;
    double q_max = (double)((1L << bits) - 1), step = s->hw->act_scale;
    if (!(step > 0)) {
        double top = 0;
        for (size_t i = 0; i < cnt; i++)
            top = a[i] > top ? a[i] : top;
        if (!(top > 0))
            return;
        step = top / q_max;
    }
    for (size_t i = 0; i < cnt; i++) {
        double q = round(a[i] / step);
        a[i] = step * (q < 0 ? 0 : q > q_max ? q_max : q);
    }
}

static int hook_deployed(void *ctx, const xb_mlp *master, xb_mlp *out, xb_error *err)
{
    xb_hwtrain_session *s = ctx;
    for (int l = 0; l < master->n_layers; l++) {
        memcpy(out->W[l], master->W[l], master->sizes[l] * master->sizes[l + 1] * sizeof **out->W);
        memcpy(out->b[l], master->b[l], master->sizes[l + 1] * sizeof **out->b);
    }
    return xb_hwtrain_deploy(s->hw, out, err);
}

void xb_hwtrain_hooks(xb_hwtrain_session *s, xb_train_hooks *h)
{
    *h = (xb_train_hooks){.ctx = s, .forward_weights = hook_forward, .master_grad = hook_grad,
                          .on_preact = hook_preact, .on_act = s->hw->act_bits ? hook_act : NULL,
                          .deployed = hook_deployed};
}

int xb_hwtrain_deploy(const xb_hwtrain *hw, xb_mlp *m, xb_error *err)
{
    for (int l = 0; l < m->n_layers && l < hw->n_layers; l++) {
        const xb_levelset *ls = hw->layer[l].levels;
        if (!ls || ls->kind == XB_LEVELS_NONE)
            continue;
        int rc = xb_quantize(ls, hw->norm, m->W[l], m->sizes[l] * m->sizes[l + 1], m->W[l], NULL, NULL, err);
        if (rc)
            return xb_error_prefix(err, "deploying layer %d onto %s", l + 1, ls->name);
    }
    return XB_OK;
}

int xb_hwtrain_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, const xb_hwtrain *hw,
                     xb_epoch_stats *stats, xb_error *err)
{
    if (!xb_hwtrain_active(hw))
        return xb_train(m, d, o, stats, err);
    if (hw->n_layers != m->n_layers)
        return xb_fail(err, XB_EINPUT, "hardware-aware training settings are for %d layers, the network has %d",
                       hw->n_layers, m->n_layers);
    xb_hwtrain_session *s = xb_hwtrain_session_new(hw, m, o->seed);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "out of memory setting up hardware-aware training");
    xb_train_hooks hooks;
    xb_hwtrain_hooks(s, &hooks);
    xb_train_options oo = *o;
    oo.hooks = &hooks;
    int rc = xb_train(m, d, &oo, stats, err);
    if (!rc)
        rc = xb_hwtrain_deploy(hw, m, err);
    xb_hwtrain_session_free(&s);
    return rc;
}

void xb_hwtrain_write_json(const xb_hwtrain *hw, unsigned long seed, xb_json *j, const char *key)
{
    xb_json_object_begin(j, key);
    xb_json_string(j, "noise", hw->noise_spec);
    xb_json_array_begin(j, "noise_per_layer");
    for (int l = 0; l < hw->n_layers; l++) {
        char buf[XB_HW_MAX_MODELS * 64] = "none";
        size_t at = 0;
        for (int i = 0; i < hw->layer[l].n_models && at < sizeof buf; i++) {
            if (i)
                buf[at++] = '+';
            int w = xb_perturb_format(&hw->layer[l].model[i], buf + at, sizeof buf - at);
            at += w > 0 ? (size_t)w : 0;
        }
        xb_json_string(j, NULL, buf);
    }
    xb_json_array_end(j);
    xb_json_string(j, "levels", hw->levels_spec);
    xb_json_array_begin(j, "levels_per_layer");
    for (int l = 0; l < hw->n_layers; l++)
        xb_json_string(j, NULL, hw->layer[l].levels ? hw->layer[l].levels->name : "none");
    xb_json_array_end(j);
    xb_json_string(j, "normalization", hw->norm_spec);
    xb_json_number(j, "ste_threshold", hw->t_c); /* null: none */
    xb_json_int(j, "noise_ramp_epochs", (long long)hw->noise_ramp);
    xb_json_string(j, "activation_quantization", hw->act_spec);
    xb_json_string(j, "noise_rng", "mt19937+xoshiro256**");
    xb_json_number(j, "noise_seed", (double)(seed + 2));
    xb_json_object_end(j);
}
