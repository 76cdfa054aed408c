// quant: weight level sets (paper Sets 1-5, b-bit, n-nary, device levels) and the quantizers onto them
//
// A level set is a sorted ascending array of levels in normalized units. A layer's weights are
// normalized by a scale s (xb_norm), each w/s is mapped to a level l, and the quantized weight is
// w_q = s * l. The index of l in the set is returned too, so the mapping stage can turn indices into
// conductance targets.
//
// Sources:
//  - Sets 1-5: Table 1 of "Exploring variability and quantization effects" (variability-quantization-
//    mnist): Set 1 {-1, 1}; Set 2 {-1, 0, 1}; Set 3 step 0.25 over [-1, 1] (9 levels); Set 4 step 0.1
//    (21 levels); Set 5 step 0.05 (41 levels). Quantization there is nearest-level:
//    w_q = argmin_{l in L} |w - l|.
//  - b-bit uniform (per-layer bit quantization, "Investigating the Impact of Imprecise Computation"),
//    symmetric ("bits:B") and asymmetric with scale and zero point ("abits:B", the affine integer
//    quantization of inference engines: levels built from each layer's own range).
//  - n-nary (n = 2k+1) quantization with threshold Delta and level mu_G, formula (3) of "Bridging the
//    gap: multinary quantization and noised training".
#ifndef XB_QUANT_H
#define XB_QUANT_H

#include <stddef.h>

#include "error.h"

typedef enum xb_levelset_kind {
    XB_LEVELS_NONE = 0, /* no quantization: xb_quantize copies the weights, indices are -1 */
    XB_LEVELS_PAPER,    /* the paper's Set 1..5 */
    XB_LEVELS_BITS,     /* uniform symmetric b-bit */
    XB_LEVELS_UNIFORM,  /* N levels evenly spaced over [-1, 1] */
    XB_LEVELS_NNARY,    /* n-nary threshold quantizer (not nearest-level, see xb_levelset_nnary) */
    XB_LEVELS_DEVICE,   /* signed differential-pair set from device conductances */
    XB_LEVELS_EXPLICIT, /* a list given by the user */
    XB_LEVELS_AFFINE    /* asymmetric b-bit "abits:B": levels from the data's own range, see
                           xb_levelset_affine; n = 0 until materialized for one layer's data */
} xb_levelset_kind;

/* Uniform asymmetric b-bit quantization with scale and zero point, in weight units:
 *   scale = (hi - lo) / (2^b - 1), zero_point = round(-lo / scale),
 *   q = clamp(round(w / scale) + zero_point, 0, 2^b - 1), w_q = (q - zero_point) * scale,
 * with round() half away from zero (C round). */
typedef struct xb_affine_quant {
    int bits;        /* 1..16 */
    double lo, hi;   /* the data range it was built from, lo < hi */
    double scale;    /* (hi - lo) / (2^bits - 1) */
    long zero_point; /* round(-lo / scale) */
    long q_max;      /* 2^bits - 1 */
} xb_affine_quant;

/* A level set. Allocated by the xb_levelset_* constructors as one block (levels points inside it);
 * free with xb_levelset_free. Fields are read-only for callers. */
typedef struct xb_levelset {
    xb_levelset_kind kind;
    char name[64];       /* canonical short name: "set3", "bits:4", "nnary:2:0.1:0.5", "device[4]", ... */
    size_t n;            /* number of levels (0 for XB_LEVELS_NONE and an unmaterialized "abits:B") */
    double *levels;      /* n levels, strictly ascending, normalized units */
    /* XB_LEVELS_NNARY only: levels are i*nnary_mu for i = -k..k (index i + k). */
    int nnary_k;
    double nnary_delta;
    double nnary_mu;
    /* XB_LEVELS_AFFINE only: the bit count, and once materialized (n = 2^bits) the affine parameters
     * the levels came from (affine.bits = 0 before). */
    int affine_bits;
    xb_affine_quant affine;
} xb_levelset;

/* The paper's Set 1..5 (set in 1..5), levels exactly as in Table 1; built as i/4, i/10, i/20 so each
 * level is the double nearest its decimal value. */
int xb_levelset_paper(int set, xb_levelset **out, xb_error *err);

/* Uniform symmetric b-bit, bits in 1..16: 2^b - 1 levels evenly spaced over [-1, 1], 0 included
 * (levels i / (2^(b-1) - 1), i = -(2^(b-1) - 1) .. 2^(b-1) - 1; the code 2^b - 1 of a two's-complement
 * b-bit integer is left unused so the set is symmetric). bits = 1 gives {-1, 1}. */
int xb_levelset_bits(int bits, xb_levelset **out, xb_error *err);

/* N levels evenly spaced over [-1, 1], N in 2..65536: levels (2i - (N-1)) / (N-1), i = 0..N-1. The
 * "2..8 levels" of the architecture-size paper (quantized-hw-nn-architecture-size: memristor
 * conductance multilevels, 1 to 3 bits) read as signed weights: uniform:2 = {-1, 1} = Set 1,
 * uniform:3 = {-1, 0, 1} = Set 2, uniform:9 = Set 3. Even N has no zero level. */
int xb_levelset_uniform(int n, xb_levelset **out, xb_error *err);

/* n-nary (n = 2k+1) levels {-k mu, ..., -mu, 0, mu, ..., k mu}, k >= 1, delta > 0, mu > 0 and
 * k mu <= 1 (levels beyond +-1 would map above g_max: XB_EINPUT naming the set, its k mu and the
 * allowed range; they are refused, not clipped). Quantizing x
 * (normalized units; use XB_NORM_NONE to work in weight units as the paper does) follows formula (3):
 *   q(x) = 0            for -delta < x < delta
 *        = +i mu         for i delta <= x < (i+1) delta,       i = 1 .. k-1
 *        = -i mu         for -(i+1) delta < x <= -i delta
 *        = +k mu / -k mu for x >= k delta / x <= -k delta
 * evaluated with the comparisons i*delta <= |x| on doubles, so the thresholds are exact. */
int xb_levelset_nnary(int k, double delta, double mu, xb_levelset **out, xb_error *err);

/* Signed differential-pair levels from n >= 2 strictly ascending non-negative conductance-like values
 * g[0] < g[1] < ... < g[n-1] (g[0] the lowest state, shared by the idle side of the pair):
 * {±(g[i] - g[0]) / (g[n-1] - g[0])}, 2n-1 levels. Level index j maps to g_plus/g_minus indices
 * (j >= n-1: plus side i = j-(n-1), minus side 0; j < n-1: plus side 0, minus side i = n-1-j). */
int xb_levelset_device(const double *g, size_t n, xb_levelset **out, xb_error *err);

/* The device's own levels: xb_levelset_device over {g_hrs_S, G_0, ..., G_{n-1}} (G_l = i_trg_A[l] /
 * v_read_V), the set `--levels device` of program and eval quantizes onto ("device[N+1]"). */
struct xb_device;
int xb_levelset_from_device(const struct xb_device *d, xb_levelset **out, xb_error *err);

/* An explicit list of n >= 1 finite levels in [-1, 1] (any order; sorted here; duplicates are an
 * error). A level beyond +-1 would map above g_max and is XB_EINPUT naming its position and value
 * (refused, not clipped). */
int xb_levelset_explicit(const double *levels, size_t n, xb_levelset **out, xb_error *err);

/* Asymmetric b-bit quantization as a level set, bits in 1..16 ("abits:B"). The levels depend on the
 * data: for a layer whose (normalized) weights span [lo, hi], widened to include 0, they are the 2^B values
 *   l_q = (q - zero_point) * scale,  q = 0 .. 2^B - 1,
 *   scale = (hi - lo) / (2^B - 1),   zero_point = round(-lo / scale)   (C round, half away from 0)
 * (xb_affine_init's parameters), so 0 is always a level and the levels reach past [lo, hi] by less
 * than scale / 2 on one side. This makes the unmaterialized set (n = 0, levels empty): xb_quantize and
 * xb_chip_quantize build the levels from each layer's own data (xb_levelset_affine_materialize), then
 * quantize nearest-level like every other set. */
int xb_levelset_affine(int bits, xb_levelset **out, xb_error *err);

/* The levels of an "abits:B" set for the data x[n] (finite): [lo, hi] = [min(min x, 0), max(max x, 0)],
 * and [-1, 1] when every value is 0, so the set stays defined and each value still lands on a level. *out is a new
 * materialized set (kind XB_LEVELS_AFFINE, n = 2^B, affine filled in) the caller frees. */
int xb_levelset_affine_materialize(const xb_levelset *ls, const double *x, size_t n, xb_levelset **out,
                                   xb_error *err);

/* The "no quantization" set (kind XB_LEVELS_NONE, n = 0). */
int xb_levelset_none(xb_levelset **out, xb_error *err);

/* Parse a spec: "none", "set1".."set5", "bits:B" (B in 1..16, symmetric), "abits:B" (B in 1..16,
 * asymmetric with scale and zero point, levels from each layer's range), "uniform:N" (N in 2..65536),
 * "nnary:K:DELTA:MU",
 * "levels:L1,L2,..." (explicit list, each in [-1, 1]; nnary needs K*MU <= 1). Bad specs fail with XB_EINPUT naming the spec and what is
 * allowed. */
int xb_levelset_parse(const char *spec, xb_levelset **out, xb_error *err);

/* Free a level set and set *ls to NULL; accepts NULL and *ls == NULL. */
void xb_levelset_free(xb_levelset **ls);

/* Index of the level for a normalized value x: nearest level, or the n-nary formula for
 * XB_LEVELS_NNARY; -1 for XB_LEVELS_NONE. Ties (x exactly halfway between two levels, as doubles) go
 * to the level nearer zero; if both are equally near zero (x = 0 between -l and +l) to the positive
 * one, like sign(0) = +1 in binarized networks. x must not be NaN. */
int xb_levelset_nearest(const xb_levelset *ls, double x);

/* How a layer's weights are normalized before quantization. */
typedef enum xb_norm_kind {
    XB_NORM_MAXABS = 0, /* s = max |w| of the layer (s = 1 if all weights are 0) */
    XB_NORM_CLIP,       /* w clipped to [-clip, clip], s = clip */
    XB_NORM_NONE        /* s = 1: levels are in weight units */
} xb_norm_kind;

typedef struct xb_norm {
    xb_norm_kind kind;
    double clip; /* XB_NORM_CLIP: the clipping range c > 0 */
} xb_norm;

/* Parse "maxabs", "clip:C" (C > 0) or "none". */
int xb_norm_parse(const char *spec, xb_norm *out, xb_error *err);

/* Largest |w[i]| (0 for n = 0). */
double xb_max_abs(const double *w, size_t n);

/* Quantize one layer: w_q[i] = s * levels[index[i]], index[i] = xb_levelset_nearest(ls, w[i] / s)
 * (after clipping for XB_NORM_CLIP). For XB_LEVELS_NONE w_q is a copy of w and the indices are -1.
 * An unmaterialized XB_LEVELS_AFFINE set is materialized here from the normalized values w[i] / s;
 * the indices are then the codes q of xb_levelset_affine.
 *   inputs, not modified:  ls, norm, w[n] (finite; a NaN or Inf is XB_EINPUT)
 *   outputs:               w_q[n] (may be w itself: in place), index[n] (may be NULL),
 *                          *scale (may be NULL): the s used. */
int xb_quantize(const xb_levelset *ls, xb_norm norm, const double *w, size_t n, double *w_q,
                int *index, double *scale, xb_error *err);

/* Parameters from a range [lo, hi] (finite, lo < hi) and bits in 1..16. */
int xb_affine_init(double lo, double hi, int bits, xb_affine_quant *out, xb_error *err);

/* Parameters from the data's own range [min w, max w] (n >= 1, not all equal). */
int xb_affine_from_data(const double *w, size_t n, int bits, xb_affine_quant *out, xb_error *err);

/* Quantize n weights: w_q (may be w: in place) and q codes (may be NULL). */
void xb_affine_quantize(const xb_affine_quant *p, const double *w, size_t n, double *w_q, long *q);

#endif
