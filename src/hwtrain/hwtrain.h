// hwtrain: hardware-aware training: noised and quantization-aware training of the MLPs in nn
//
// Why an area of its own, between device and xbar: training must draw the SAME perturbations as test
// time (device/perturb.c) and quantize onto the SAME level sets as `program` (device/quant.c), while
// the training loop and the backward pass live in nn, below device. Moving the perturbation formulas
// below nn would split device's models in two; putting the trainer inside device would make device
// depend on nn and datasets. So nn offers generic hooks (xb_train_hooks, xb_mlp_pass) and knows nothing
// of devices, device keeps its models, and this area joins the two.
//
// The scheme ("Bridging the gap: multinary quantization and noised training", section II, Fig. 1):
// full-precision master weights are kept throughout; in every mini-batch a forward network is made
// from them, per layer
//     fwd = noise(q(W)),  biases: noise(b)   (q: the layer's level set, identity without one)
// the batch runs forward and backward through fwd, and the master weights are updated with
//     dL/dW = dL/dfwd * f * [|W / s| <= t_c]
// where f is the derivative of the noise with the draw held fixed (the reparameterization gradient:
// exp(sigma N) for lognormal, 1 + alpha N for mult, 1 + sigma sign(w) N for c2c-level, 1 for c2c,
// whose scale s = max |w| is held constant) and the bracket is the paper's straight-through estimator
// (4) with its gradient threshold t_c, in level-set units (w / s, s the layer's normalization scale).
// A fresh draw is made in every forward pass, of the test-time models' distributions (the formulas of
// device/perturb.c), on the layer's weights and biases as one array as the chip's trials do on its
// normalized rows.
// Additive noise (the hardening paper's activation noise) is added to each layer's pre-activations.
// Activation quantization (hidden layers, after f): unsigned b-bit uniform, a = s clamp(round(a / s),
// 0, 2^b - 1) with a constant step s or, dynamic scaling, s = max a / (2^b - 1) over the batch and
// layer ("On Hardening DNNs" (3)-(5) with alpha = 0); straight-through in the backward pass.
//
// Randomness: a gsl_rng_mt19937 seeded with seed + 2 (seed: the training seed; seed + 1 draws dropout
// masks) gives two 32-bit draws per forward pass, which seed (splitmix64) that pass's xoshiro256**
// streams: eight lanes for the multiplicative factors (value j of a layer's [W; b] from lane j mod 8:
// ziggurat normals, exp(sigma N) by a table exp within 5e-14 relative), one for the ziggurat's slow
// path of those lanes, and a scalar one for c2c's selection sampling and the additive draws
// (hwtrain.c). It is faster than drawing each value from GSL, which dominated the cost, and keeps the
// run reproducible: the same seed gives the same weights, on the AVX-512, AVX2 and x86-64 baseline
// paths alike. The shuffles and the initialisation are those of plain training, and noise "none"
// gives bit-identical weights to it.
#ifndef XB_HWTRAIN_H
#define XB_HWTRAIN_H

#include <stddef.h>

#include "dataset.h"
#include "device.h"
#include "error.h"
#include "json.h"
#include "mlp.h"
#include "perturb.h"
#include "quant.h"
#include "train.h"

#define XB_HW_MAX_LAYERS 33 /* the CLI's 32 hidden layers + the output layer */
#define XB_HW_MAX_MODELS 4  /* perturbation models joined with '+' on one layer */

typedef struct xb_hw_layer {
    int n_models;
    xb_perturb model[XB_HW_MAX_MODELS]; /* weight-domain models and additive (outputs) */
    xb_levelset *levels;                /* owned; NULL: full-precision forward weights */
} xb_hw_layer;

/* The settings of hardware-aware training. Fill with xb_hwtrain_parse, free with xb_hwtrain_clear. */
typedef struct xb_hwtrain {
    int n_layers;
    xb_hw_layer layer[XB_HW_MAX_LAYERS];
    xb_norm norm;      /* how W is scaled onto the levels: maxabs (s = max |W|, recomputed from the master
                          weights every batch: dynamic), clip:C (s = C, constant), none (weight units, as the
                          multinary paper's mu and Delta) */
    double t_c;        /* STE gradient threshold in level-set units; INFINITY: none */
    size_t noise_ramp; /* noise spreads (sigma, alpha) grow linearly over the first noise_ramp epochs, from
                          1/noise_ramp of their value in epoch 1 to full; 0: full from the start */
    int act_bits;      /* activation quantization of hidden layers, 1..16; 0: none */
    double act_scale;  /* its constant step; 0: dynamic (per batch) */
    /* The specs as given, for the training log. */
    char noise_spec[1024], levels_spec[1024], norm_spec[64], act_spec[64];
} xb_hwtrain;

/* Parse the settings for a network of n_layers weight layers (all strings may be NULL: none).
 *   noise   "none", or one spec for every layer, or one per layer separated by '/'; a layer's spec is
 *           xb_perturb_parse specs joined by '+': "lognormal:sigma=0.5", "mult:alpha=0.1+additive:sigma=0.05",
 *           "c2c:ar=0.5,sigma=0.1/none". Conductance-domain models (d2d, stuck) are refused: they act on
 *           programmed cells; their weight-domain form is mult:alpha=S.
 *   levels  "none", or one xb_levelset_parse spec or "device" (needs dev: the device's own
 *           differential-pair levels, as `xbarsim program --levels device`) for every layer, or one per
 *           layer separated by '/'
 *   norm    xb_norm_parse spec (NULL: maxabs)
 *   act     "none", "B:dynamic" or "B:S" (bits B in 1..16, constant step S > 0)
 * t_c > 0 (INFINITY for none). XB_EINPUT names the option, the layer and what is allowed. */
int xb_hwtrain_parse(xb_hwtrain *hw, int n_layers, const char *noise, const char *levels, const char *norm,
                     double t_c, size_t noise_ramp, const char *act, const xb_device *dev, xb_error *err);

/* Free the level sets; hw is then empty (no noise, no quantization). Accepts NULL. */
void xb_hwtrain_clear(xb_hwtrain *hw);

/* 1 if hw changes training at all (noise, levels or activation quantization). */
int xb_hwtrain_active(const xb_hwtrain *hw);

/* One training run's state: the noise generator and the per-weight noise derivatives. */
typedef struct xb_hwtrain_session xb_hwtrain_session;

/* For master networks shaped like m; seed as the training seed (the noise generator gets seed + 2). */
xb_hwtrain_session *xb_hwtrain_session_new(const xb_hwtrain *hw, const xb_mlp *m, unsigned long seed);
void xb_hwtrain_session_free(xb_hwtrain_session **s);

/* Which code path draws the multiplicative noise: the widest the CPU has up to level, 2 (the default)
 * AVX-512 (F, DQ, VL), 1 AVX2, 0 the x86-64 baseline. Every path draws bit-identical values (the choice
 * only changes the speed); returns the path that now runs (0, 1 or 2). For tests and benchmarks. */
int xb_hwtrain_session_simd(xb_hwtrain_session *s, int level);

/* Whether a helper thread draws the next forward pass's multiplicative factors (lognormal, mult) while
 * the caller trains on this one: on 1 (the default, where the thread can be started) or off 0. The
 * draws are the same either way, bit for bit; returns 1 if the helper now runs (on -1: only that,
 * changing nothing). For tests and benchmarks. */
int xb_hwtrain_session_prefetch(xb_hwtrain_session *s, int on);
/* While the helper thread runs and BLAS's threads take every core: BLAS to one thread fewer, so that
 * the helper has a core; returns the count to give back (0: nothing changed). xb_hwtrain_train does
 * this around training; xb_hwtrain_return_core(lent) restores the count. */
int xb_hwtrain_session_lend_core(xb_hwtrain_session *s);
void xb_hwtrain_return_core(int lent);

/* The forward network of one batch in epoch (0-based): fwd = noise(q(master)), a fresh draw. */
int xb_hwtrain_forward(xb_hwtrain_session *s, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err);

/* grad (dL/dfwd of the last xb_hwtrain_forward) into the master weights' gradient, in place. */
void xb_hwtrain_master_grad(xb_hwtrain_session *s, xb_mlp *grad);

/* The hooks that run a session inside xb_train (ctx = s). */
void xb_hwtrain_hooks(xb_hwtrain_session *s, xb_train_hooks *hooks);

/* The deployed network: each layer's W quantized onto its level set (no noise), in place. */
int xb_hwtrain_deploy(const xb_hwtrain *hw, xb_mlp *m, xb_error *err);

/* Train m on d with hw (xb_train with the session's hooks), then deploy m: the weights left in m are
 * exactly on the level sets, what `program` writes. hw NULL or inactive: exactly xb_train. */
int xb_hwtrain_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, const xb_hwtrain *hw,
                     xb_epoch_stats *stats, xb_error *err);

/* The settings as a JSON object named key (the training log). */
void xb_hwtrain_write_json(const xb_hwtrain *hw, unsigned long seed, xb_json *j, const char *key);

#endif
