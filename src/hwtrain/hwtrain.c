// hwtrain: noised and quantization-aware training through the test-time perturbations and level sets
#include "hwtrain.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

/* OpenBLAS's thread count (the library BLAS calls go to). */
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

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
 * two 32-bit draws per forward pass; they seed (through splitmix64) ten xoshiro256** streams
 * (Blackman & Vigna 2018): a scalar one for c2c's selection sampling and the additive draws, eight
 * lanes for the multiplicative factors, value j of a layer's [W; b] from lane j mod 8, so that eight
 * draws run side by side in one vector, and one for the lanes' slow paths. Normals by the 256-layer
 * ziggurat (Marsaglia & Tsang 2000, with Doornik's 2005 correction: the layer index from the low 8
 * bits, the value from the top 52); the values that fail its fast test (1.5 %) are finished after the
 * vector loop, in value order, on the slow-path stream, so the loop never branches on a draw. The
 * lognormal factor exp(sigma N) by exp_table8 (a 2^(j/64) table and a degree-4 polynomial, within
 * 5e-14 relative of libm's exp). The eight-lane code is compiled three times, for the x86-64 baseline
 * (SSE2), AVX2 and AVX-512, and picked at run time; all do the same IEEE operations in the same order
 * (fused multiply-add contraction is off for that code: AVX-512 has FMA), so the draws are
 * bit-identical on every path, which test_hwtrain checks. The same seed gives the same stream on every
 * machine with IEEE doubles. */

#define ZIG_C 256 /* layers; Marsaglia & Tsang's R and V for 256 */
#define ZIG_R 3.6541528853610088
#define ZIG_V 4.92867323399e-3
#define HW_LANES 8
#define EXP_N 64 /* entries of the 2^(j/N) table */

typedef struct hw_rng {
    uint64_t s[4];                   /* the scalar stream */
    uint64_t v[4][HW_LANES];         /* the lanes' streams: word w of lane i is v[w][i] */
    uint64_t t[4];                   /* the stream of the lanes' ziggurat slow paths */
    double zx[ZIG_C + 1], zr[ZIG_C]; /* ziggurat tables (Doornik's ZIGNOR layout) */
    double zf[ZIG_C + 1];            /* the unnormalized density exp(-zx^2 / 2) at the layers' edges */
    double exp_tab[EXP_N];           /* 2^(j/64) */
    int simd;                        /* the widest path allowed: 2 AVX-512, 1 AVX2, 0 the baseline */
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
    for (int i = 0; i <= ZIG_C; i++)
        r->zf[i] = exp(-0.5 * r->zx[i] * r->zx[i]);
    for (int j = 0; j < EXP_N; j++)
        r->exp_tab[j] = exp2((double)j / EXP_N);
    r->simd = 2;
}

/* The seed word of one forward pass: two draws of the session's GSL generator. */
static uint64_t seed_word(gsl_rng *from) { return ((uint64_t)gsl_rng_get(from) << 32) ^ (uint64_t)gsl_rng_get(from); }

/* Seed the streams from a seed word. */
static void hw_rng_seed(hw_rng *r, uint64_t x)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    for (int lane = 0; lane < HW_LANES; lane++)
        for (int w = 0; w < 4; w++)
            r->v[w][lane] = splitmix64(&x);
    for (int i = 0; i < 4; i++)
        r->t[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The next draw of the stream whose four words are s[0], s[st], s[2 st], s[3 st]. */
static inline uint64_t hw_next_at(uint64_t *s, size_t st)
{
    uint64_t out = rotl(s[st] * 5, 7) * 9, t = s[st] << 17;
    s[2 * st] ^= s[0];
    s[3 * st] ^= s[st];
    s[st] ^= s[2 * st];
    s[0] ^= s[3 * st];
    s[2 * st] ^= t;
    s[3 * st] = rotl(s[3 * st], 45);
    return out;
}

static inline uint64_t hw_next(hw_rng *r) { return hw_next_at(r->s, 1); }

/* Uniform on (0, 1): 53 bits, never 0 (the ziggurat's tail takes its log). */
static inline double uniform_pos_at(uint64_t *s, size_t st)
{
    return ((double)(hw_next_at(s, st) >> 11) + 0.5) * 0x1.0p-53;
}

/* Uniform on [0, 1). */
static inline double uniform_at(uint64_t *s, size_t st) { return (double)(hw_next_at(s, st) >> 11) * 0x1.0p-53; }
static inline double hw_uniform(hw_rng *r) { return uniform_at(r->s, 1); }

/* The ziggurat's signed uniform on [-1, 1) from the top 52 bits of b: 2 m - 3 for m in [1, 2) with
 * those bits as its mantissa, exact (every result is a multiple of 2^-51). */
static inline double zig_u(uint64_t b)
{
    uint64_t bits = (b >> 12) | 0x3FF0000000000000ull;
    double m;
    memcpy(&m, &bits, sizeof m);
    return m * 2.0 - 3.0;
}

/* The ziggurat after its fast test failed for draw b, on the stream at s (stride st). Never inlined:
 * one copy, compiled for the baseline, serves every vector path, so its wedge test (an a + b c that a
 * path with FMA could contract) decides alike on all of them. */
static __attribute__((noinline)) double zig_slow(const hw_rng *r, uint64_t *s, size_t st, uint64_t b)
{
    for (;;) {
        int i = (int)(b & (ZIG_C - 1));
        double u = zig_u(b);
        if (fabs(u) < r->zr[i])
            return u * r->zx[i];
        if (i == 0) { /* the tail beyond R (Marsaglia 1964) */
            double x, y;
            do {
                x = log(uniform_pos_at(s, st)) / ZIG_R;
                y = log(uniform_pos_at(s, st));
            } while (-2 * y < x * x);
            return u < 0 ? x - ZIG_R : ZIG_R - x;
        }
        /* The wedge: accept x with the density's height at x, between the layer's edges' f(zx[i]) and
         * f(zx[i + 1]) (Marsaglia & Tsang's form: one exp per test, the edges from the table zf). */
        double x = u * r->zx[i];
        if (r->zf[i + 1] + uniform_at(s, st) * (r->zf[i] - r->zf[i + 1]) < exp(-0.5 * x * x))
            return x;
        b = hw_next_at(s, st);
    }
}

/* A standard normal deviate from the scalar stream. */
static inline double hw_normal(hw_rng *r)
{
    uint64_t b = hw_next(r);
    int i = (int)(b & (ZIG_C - 1));
    double u = zig_u(b);
    if (fabs(u) < r->zr[i])
        return u * r->zx[i];
    return zig_slow(r, r->s, 1, b);
}

/* The vector code below is compiled for three instruction sets; AVX-512 brings fused multiply-add,
 * which GCC would otherwise contract a * b + c into (c_std=gnu11 means -ffp-contract=fast), rounding
 * once instead of twice: contraction is off here so that every path rounds alike. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

typedef double v8d __attribute__((vector_size(8 * sizeof(double))));
typedef uint64_t v8u __attribute__((vector_size(8 * sizeof(uint64_t))));
typedef int64_t v8i __attribute__((vector_size(8 * sizeof(int64_t))));

#define ROTL8(x, k) (((x) << (k)) | ((x) >> (64 - (k))))
#define SPLAT8(c) {c, c, c, c, c, c, c, c}

/* The eight lanes' values of tab at the indices idx, loaded by lane (on this Zen 4 the AVX-512 gather
 * instruction was no faster). */
static inline __attribute__((always_inline)) void gather_lanes(const double *tab, const v8i *idx, v8d *out)
{
    v8i i = *idx;
    *out = (v8d){tab[i[0]], tab[i[1]], tab[i[2]], tab[i[3]], tab[i[4]], tab[i[5]], tab[i[6]], tab[i[7]]};
}

/* 1 if every lane of the comparison result m is true (-1); by lane in the generic code, one mask test
 * on the AVX-512 path (the body takes it as an argument that inlining makes a direct call). */
typedef int hw_all_fn(const v8i *m);

static inline __attribute__((always_inline)) int all_by_lane(const v8i *m)
{
    v8i v = *m;
    return (v[0] & v[1] & v[2] & v[3] & v[4] & v[5] & v[6] & v[7]) != 0;
}

/* exp over eight lanes: x = (64 k + j) ln 2 / 64 + r with |r| <= ln 2 / 128 (Cody-Waite, the two parts
 * of ln 2 / 64; k ln2_hi / 64 is exact), exp(r) by its degree-4 Taylor polynomial, times the table's
 * 2^(j/64) and 2^k built from its bits. The truncation r^5 / 120 e^|r| is below 3.9e-14 relative at
 * |r| = ln 2 / 128, and with the rounding of the few operations the result is within 5e-14 relative of
 * exp(x) (test_hwtrain checks it against libm): a noise factor exp(sigma N) needs far less than
 * the last bits, and one order fewer saves a multiply and an add per value. Arguments are clamped to
 * [-700, 700] (the noise arguments sigma N are far inside). exp(0) is exactly 1. */
static inline __attribute__((always_inline)) void exp_table8(const double *tab, v8d *xp)
{
    v8d x = *xp;
    const v8d lo = SPLAT8(-700.0), hi = SPLAT8(700.0);
    v8i m = x < lo; /* lanes: -1 where true */
    x = (v8d)(((v8i)lo & m) | ((v8i)x & ~m));
    m = x > hi;
    x = (v8d)(((v8i)hi & m) | ((v8i)x & ~m));
    const v8d magic = SPLAT8(0x1.8p52);
    v8d t = x * (EXP_N / 0.693147180559945309417) + magic; /* round(64 x / ln 2) in the low bits */
    v8d k = t - magic;
    v8d r = x - k * (6.93147180369123816490e-01 / EXP_N) - k * (1.90821492927058770002e-10 / EXP_N);
    v8d p = r * (1.0 / 24) + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    v8i ki = (v8i)t - (v8i)magic;
    v8i j = ki & (EXP_N - 1), e = ki >> 6; /* arithmetic shift: floor(k / 64) */
    v8d T;
    gather_lanes(tab, &j, &T);
    v8u scale = (v8u)((e + 1023) << 52);
    *xp = (p * T) * (v8d)scale;
}

/* exp_table8 on one value: the same operations in the same order, so the same result as a lane. */
static double exp_table1(const double *tab, double x)
{
    x = x < -700.0 ? -700.0 : x;
    x = x > 700.0 ? 700.0 : x;
    const double magic = 0x1.8p52;
    double t = x * (EXP_N / 0.693147180559945309417) + magic;
    double k = t - magic;
    double r = x - k * (6.93147180369123816490e-01 / EXP_N) - k * (1.90821492927058770002e-10 / EXP_N);
    double p = r * (1.0 / 24) + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t ti, mi;
    memcpy(&ti, &t, sizeof ti);
    memcpy(&mi, &magic, sizeof mi);
    int64_t ki = ti - mi, e = ki >> 6;
    uint64_t bits = (uint64_t)(e + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return (p * tab[ki & (EXP_N - 1)]) * scale;
}

/* The transform of one normal z into a factor, as the vector code does it (one copy for every path). */
static __attribute__((noinline)) double factor_of(const double *exp_tab, double z, int lognormal, double spread)
{
    return lognormal ? exp_table1(exp_tab, z * spread) : z * spread + 1.0;
}

#define HW_CHUNK 256 /* groups of eight values whose slow-path draws are finished together */

/* The multiplicative factors of n values (g must hold n rounded up to 8): value j from lane j mod 8,
 * a ziggurat normal z, then g = exp(spread z) (lognormal) or 1 + spread z. The lanes' last group is
 * drawn whole; its extra draws are dropped. One generic body (GCC/Clang vector extensions) compiled
 * for each instruction set: the same operations in the same order, so the same bits on each.
 * The loop has no branch on the draws: a group where some lane fails the ziggurat's fast test keeps
 * its draws aside, and after every HW_CHUNK groups those lanes are finished in order (value order) on
 * the slow-path stream r->t, by the scalar zig_slow and factor_of that every path shares. The lanes'
 * streams thus never wait for the slow path (1.5 % of values, one group in nine). */
static inline __attribute__((always_inline)) void mult_factors_body(hw_rng *r, double *g, size_t n, int lognormal,
                                                                    double spread, hw_all_fn *all_lanes)
{
    v8u s0, s1, s2, s3;
    memcpy(&s0, r->v[0], sizeof s0);
    memcpy(&s1, r->v[1], sizeof s1);
    memcpy(&s2, r->v[2], sizeof s2);
    memcpy(&s3, r->v[3], sizeof s3);
    const v8u abs_mask = SPLAT8(0x7FFFFFFFFFFFFFFFull), one_bits = SPLAT8(0x3FF0000000000000ull);
    const v8d vspread = SPLAT8(spread);
    const double *zr_tab = r->zr, *zx_tab = r->zx;
    v8u aside_b[HW_CHUNK];
    size_t aside_j[HW_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += HW_CHUNK * HW_LANES) {
        size_t j1 = n - j0 < HW_CHUNK * HW_LANES ? n : j0 + HW_CHUNK * HW_LANES, cnt = 0;
        for (size_t j = j0; j < j1; j += HW_LANES) {
            v8u b = ROTL8(s1 * 5, 7) * 9, t = s1 << 17;
            s2 ^= s0;
            s3 ^= s1;
            s1 ^= s2;
            s0 ^= s3;
            s2 ^= t;
            s3 = ROTL8(s3, 45);
            v8i idx = (v8i)(b & (ZIG_C - 1));
            v8d u = (v8d)((b >> 12) | one_bits) * 2.0 - 3.0;
            v8d zr, zx;
            gather_lanes(zr_tab, &idx, &zr);
            gather_lanes(zx_tab, &idx, &zx);
            v8i ok = (v8d)((v8u)u & abs_mask) < zr;
            v8d z = u * zx * vspread;
            if (lognormal)
                exp_table8(r->exp_tab, &z);
            else
                z = z + 1.0;
            memcpy(g + j, &z, sizeof z);
            aside_b[cnt] = b;
            aside_j[cnt] = j;
            cnt += !all_lanes(&ok);
        }
        for (size_t c = 0; c < cnt; c++)
            for (size_t lane = 0; lane < HW_LANES && aside_j[c] + lane < n; lane++) {
                uint64_t bl = aside_b[c][lane];
                int i = (int)(bl & (ZIG_C - 1));
                if (fabs(zig_u(bl)) < r->zr[i])
                    continue;
                g[aside_j[c] + lane] = factor_of(r->exp_tab, zig_slow(r, r->t, 1, bl), lognormal, spread);
            }
    }
    memcpy(r->v[0], &s0, sizeof s0);
    memcpy(r->v[1], &s1, sizeof s1);
    memcpy(r->v[2], &s2, sizeof s2);
    memcpy(r->v[3], &s3, sizeof s3);
}

static void mult_factors_base(hw_rng *r, double *g, size_t n, int lognormal, double spread)
{
    if (lognormal)
        mult_factors_body(r, g, n, 1, spread, all_by_lane);
    else
        mult_factors_body(r, g, n, 0, spread, all_by_lane);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HW_HAVE_X86_PATHS 1
__attribute__((target("avx2"))) static void mult_factors_avx2(hw_rng *r, double *g, size_t n, int lognormal,
                                                               double spread)
{
    if (lognormal)
        mult_factors_body(r, g, n, 1, spread, all_by_lane);
    else
        mult_factors_body(r, g, n, 0, spread, all_by_lane);
}

__attribute__((target("avx512f,avx512dq,avx512vl"), always_inline)) static inline int all_avx512(const v8i *m)
{
    __m512i v;
    memcpy(&v, m, sizeof v);
    return _mm512_movepi64_mask(v) == 0xFF;
}

__attribute__((target("avx512f,avx512dq,avx512vl"))) static void mult_factors_avx512(hw_rng *r, double *g,
                                                                                      size_t n, int lognormal,
                                                                                      double spread)
{
    if (lognormal)
        mult_factors_body(r, g, n, 1, spread, all_avx512);
    else
        mult_factors_body(r, g, n, 0, spread, all_avx512);
}
#else
#define HW_HAVE_X86_PATHS 0
#endif

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

/* The path that runs for r: 0 the baseline, 1 AVX2, 2 AVX-512 (the widest the CPU has, up to r->simd). */
static int hw_rng_path(const hw_rng *r)
{
#if HW_HAVE_X86_PATHS
    if (r->simd >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (r->simd >= 1 && __builtin_cpu_supports("avx2"))
        return 1;
#else
    (void)r;
#endif
    return 0;
}

static void mult_factors(hw_rng *r, double *g, size_t n, int lognormal, double spread)
{
#if HW_HAVE_X86_PATHS
    switch (hw_rng_path(r)) {
    case 2: mult_factors_avx512(r, g, n, lognormal, spread); return;
    case 1: mult_factors_avx2(r, g, n, lognormal, spread); return;
    default: break;
    }
#endif
    mult_factors_base(r, g, n, lognormal, spread);
}

/* ---- Drawing the next pass's multiplicative factors while this one trains ----------------------
 * The lanes' draws of a forward pass depend only on its seed word (the next two mt19937 draws, known
 * in advance) and on the models' spreads, not on the weights. So a helper thread draws the factors of
 * pass t + 1 while the caller runs pass t through BLAS, into one buffer per multiplicative model
 * ("slot"). The next forward pass takes them when they were drawn with its seed word and spreads (a
 * ramp's epoch boundary changes the spreads: then it draws them itself, from the same seed word), so
 * the values are those of drawing in place, bit for bit, whatever the threads' timing. */
typedef struct hw_slot {
    int layer;
    int lognormal; /* 1: exp(spread N); 0: 1 + spread N */
    double spread; /* sigma or alpha before the ramp */
    size_t n;      /* values: the layer's [W; b] */
    double *buf;   /* round_lanes(n) values */
} hw_slot;

typedef struct hw_prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;      /* the thread runs */
    int pending;      /* a job is posted and not finished */
    int quit;
    int ready;        /* the buffers hold the draws of (seed, ramp) */
    uint64_t seed;    /* the job's seed word */
    double ramp;      /* the job's ramp */
    hw_rng rng;       /* the helper's own lanes (tables copied) */
    int n_slots;
    hw_slot slot[XB_HW_MAX_LAYERS * XB_HW_MAX_MODELS];
} hw_prefetch;

/* Draw every slot's factors for seed word x at ramp on r, in the order a forward pass draws them. */
static void draw_slots(hw_rng *r, hw_slot *slot, int n_slots, uint64_t x, double ramp)
{
    hw_rng_seed(r, x);
    for (int k = 0; k < n_slots; k++)
        mult_factors(r, slot[k].buf, slot[k].n, slot[k].lognormal, slot[k].spread * ramp);
}

static void *prefetch_main(void *arg)
{
    hw_prefetch *pf = arg;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->pending && !pf->quit)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->quit)
            break;
        uint64_t x = pf->seed;
        double ramp = pf->ramp;
        pthread_mutex_unlock(&pf->mu);
        draw_slots(&pf->rng, pf->slot, pf->n_slots, x, ramp);
        pthread_mutex_lock(&pf->mu);
        pf->pending = 0;
        pf->ready = 1;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

/* Wait until the helper is idle (its buffers are then the caller's to read or swap). */
static void prefetch_wait(hw_prefetch *pf)
{
    if (!pf->started)
        return;
    pthread_mutex_lock(&pf->mu);
    while (pf->pending)
        pthread_cond_wait(&pf->cv, &pf->mu);
    pthread_mutex_unlock(&pf->mu);
}

/* Post the job (x, ramp): in the helper, or drawn here when no helper runs (then only on demand). */
static void prefetch_post(hw_prefetch *pf, uint64_t x, double ramp)
{
    if (!pf->started)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->seed = x;
    pf->ramp = ramp;
    pf->ready = 0;
    pf->pending = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

static void prefetch_stop(hw_prefetch *pf)
{
    if (!pf->started)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->quit = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
    pf->started = 0;
    pf->pending = pf->quit = pf->ready = 0;
}

static int prefetch_start(hw_prefetch *pf)
{
    if (pf->started || pf->n_slots == 0)
        return pf->started;
    if (pthread_mutex_init(&pf->mu, NULL))
        return 0;
    if (pthread_cond_init(&pf->cv, NULL)) {
        pthread_mutex_destroy(&pf->mu);
        return 0;
    }
    pf->pending = pf->quit = pf->ready = 0;
    if (pthread_create(&pf->thread, NULL, prefetch_main, pf)) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        return 0; /* no helper: every pass draws its own factors, the same values */
    }
    pf->started = 1;
    return 1;
}

struct xb_hwtrain_session {
    const xb_hwtrain *hw;
    int n_layers;
    gsl_rng *rng;     /* mt19937 seeded with seed + 2: two draws seed each forward pass's stream */
    uint64_t next_x;  /* the seed word of the next forward pass (drawn one pass ahead) */
    hw_rng fast;      /* the stream of the current forward pass (and its additive draws) */
    hw_prefetch *pf;  /* the multiplicative models' slots and the helper thread that fills them */
    double ramp;      /* the noise spreads' share in the current epoch */
    double **factor;  /* per layer: d fwd / d master for [W; b] (0 where the STE masks) */
    double *tmp;      /* widest layer's [W; b]: the draws of one model (factor and tmp hold a multiple
                         of HW_LANES values) */
    int *has_factor;  /* 0: every factor of the layer is 1 */
};

static size_t round_lanes(size_t n) { return (n + HW_LANES - 1) / HW_LANES * HW_LANES; }

void xb_hwtrain_session_free(xb_hwtrain_session **sp)
{
    if (!sp || !*sp)
        return;
    xb_hwtrain_session *s = *sp;
    if (s->pf) {
        prefetch_stop(s->pf);
        for (int k = 0; k < s->pf->n_slots; k++)
            free(s->pf->slot[k].buf);
        free(s->pf);
    }
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
        if (xb_mlp_n_weights(m, l) + xb_mlp_fan_out(m, l) > widest)
            widest = xb_mlp_n_weights(m, l) + xb_mlp_fan_out(m, l);
    s->tmp = malloc(round_lanes(widest) * sizeof *s->tmp);
    if (!s->rng || !s->factor || !s->has_factor || !s->tmp) {
        xb_hwtrain_session_free(&s);
        return NULL;
    }
    for (int l = 0; l < m->n_layers; l++) {
        size_t n = xb_mlp_n_weights(m, l) + xb_mlp_fan_out(m, l);
        s->factor[l] = malloc(round_lanes(n) * sizeof **s->factor);
        if (!s->factor[l]) {
            xb_hwtrain_session_free(&s);
            return NULL;
        }
    }
    s->pf = calloc(1, sizeof *s->pf);
    if (!s->pf) {
        xb_hwtrain_session_free(&s);
        return NULL;
    }
    for (int l = 0; l < m->n_layers; l++)
        for (int i = 0; i < hw->layer[l].n_models; i++) {
            const xb_perturb *p = &hw->layer[l].model[i];
            if (p->kind != XB_PERTURB_LOGNORMAL && p->kind != XB_PERTURB_MULT)
                continue;
            hw_slot *sl = &s->pf->slot[s->pf->n_slots++];
            sl->layer = l;
            sl->lognormal = p->kind == XB_PERTURB_LOGNORMAL;
            sl->spread = sl->lognormal ? p->sigma : p->alpha;
            sl->n = xb_mlp_n_weights(m, l) + xb_mlp_fan_out(m, l);
            sl->buf = malloc(round_lanes(sl->n) * sizeof *sl->buf);
            if (!sl->buf) {
                xb_hwtrain_session_free(&s);
                return NULL;
            }
        }
    gsl_rng_set(s->rng, seed + 2);
    hw_rng_tables(&s->fast);
    s->pf->rng = s->fast;
    hw_rng_seed(&s->fast, seed_word(s->rng)); /* the hooks may draw before the first forward pass */
    s->next_x = seed_word(s->rng);
    if (prefetch_start(s->pf))
        prefetch_post(s->pf, s->next_x, hw->noise_ramp ? 1.0 / (double)hw->noise_ramp : 1.0);
    return s;
}

int xb_hwtrain_session_prefetch(xb_hwtrain_session *s, int on)
{
    if (on < 0)
        return s->pf->started;
    if (!on) {
        prefetch_wait(s->pf);
        prefetch_stop(s->pf);
        return 0;
    }
    if (prefetch_start(s->pf))
        prefetch_post(s->pf, s->next_x, s->ramp);
    return s->pf->started;
}

int xb_hwtrain_session_lend_core(xb_hwtrain_session *s)
{
    /* The noise helper draws the next batch on a core of its own: when BLAS's threads would take every
     * core, BLAS runs with one fewer (at batch 32 on 2 cores one BLAS thread is also the faster:
     * results/README.md, "Throughput"). */
    int blas = openblas_get_num_threads(), cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (!xb_hwtrain_session_prefetch(s, -1) || blas < 2 || blas < cores)
        return 0;
    openblas_set_num_threads(blas - 1);
    return blas;
}

void xb_hwtrain_return_core(int lent)
{
    if (lent > 0)
        openblas_set_num_threads(lent);
}

int xb_hwtrain_session_simd(xb_hwtrain_session *s, int level)
{
    prefetch_wait(s->pf);
    s->fast.simd = s->pf->rng.simd = level < 0 ? 0 : level > 2 ? 2 : level;
    s->pf->ready = 0; /* drawn on the other path: drawn again, the same values */
    return hw_rng_path(&s->fast);
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
    uint64_t x = s->next_x;
    hw_prefetch *pf = s->pf;
    prefetch_wait(pf);
    if (pf->n_slots && !(pf->ready && pf->seed == x && pf->ramp == s->ramp)) {
        hw_rng r = s->fast; /* tables and path; the lanes come from x */
        draw_slots(&r, pf->slot, pf->n_slots, x, s->ramp);
    }
    pf->ready = 0; /* this pass takes the buffers */
    hw_rng_seed(&s->fast, x);
    s->next_x = seed_word(s->rng);
    int k = 0; /* the next slot */
    for (int l = 0; l < master->n_layers; l++) {
        const xb_hw_layer *L = &hw->layer[l];
        size_t nw = xb_mlp_n_weights(master, l), nb = xb_mlp_fan_out(master, l), n = nw + nb;
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
                /* Multiplicative: the factors g are also the derivative, drawn straight into f when
                 * they are the layer's only factors. */
                hw_slot *sl = &pf->slot[k++];
                if (!s->has_factor[l]) { /* the draws become the layer's factors: swap the buffers */
                    double *t = sl->buf;
                    sl->buf = f;
                    s->factor[l] = f = t;
                }
                g = s->has_factor[l] ? sl->buf : f;
                for (size_t j = 0; j < nw; j++)
                    W[j] = srcW[j] * g[j];
                for (size_t j = 0; j < nb; j++)
                    b[j] = srcb[j] * g[nw + j];
                srcW = W;
                srcb = b;
                if (g != f)
                    for (size_t j = 0; j < n; j++)
                        f[j] *= g[j];
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
    prefetch_post(pf, s->next_x, s->ramp); /* the next pass, drawn while this one trains */
    return XB_OK;
}

void xb_hwtrain_master_grad(xb_hwtrain_session *s, xb_mlp *grad)
{
    for (int l = 0; l < grad->n_layers; l++) {
        if (!s->has_factor[l])
            continue;
        size_t nw = xb_mlp_n_weights(grad, l), nb = xb_mlp_fan_out(grad, l);
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
        memcpy(out->W[l], master->W[l], xb_mlp_n_weights(master, l) * sizeof **out->W);
        memcpy(out->b[l], master->b[l], xb_mlp_fan_out(master, l) * sizeof **out->b);
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
        int rc = xb_quantize(ls, hw->norm, m->W[l], xb_mlp_n_weights(m, l), m->W[l], NULL, NULL, err);
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
    int lent = xb_hwtrain_session_lend_core(s);
    int rc = xb_train(m, d, &oo, stats, err);
    xb_hwtrain_return_core(lent);
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
    xb_json_string(j, "noise_rng", "mt19937+xoshiro256** (8 lanes)");
    xb_json_number(j, "noise_seed", (double)(seed + 2));
    xb_json_object_end(j);
}
