// mlp: multi-layer perceptrons (the single-layer perceptron is the 0-hidden-layer case)
#ifndef XB_MLP_H
#define XB_MLP_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "error.h"

typedef enum { XB_ACT_IDENTITY = 0, XB_ACT_SIGMOID, XB_ACT_RELU } xb_activation;

/* Parse "sigmoid" / "relu" / "identity"; -1 if unknown. */
int xb_activation_parse(const char *s);
const char *xb_activation_name(xb_activation a);

/* A layer k computes Z = A_{k-1} W_k + b_k (row vectors), then A_k = act[k](Z).
 * W_k is fan_in x fan_out, row-major: the layout of the .npz files (numpy shape (fan_in, fan_out)).
 * The last layer's activation is the identity: its outputs are logits; softmax lives in the loss. */
typedef enum { XB_POOL_NONE = 0, XB_POOL_MAX, XB_POOL_AVG } xb_pool_kind;

/* A convolutional layer: a k x k kernel over an (in_h, in_w, in_c) grid with stride and zero padding,
 * out_c filters, the activation, then an optional pooling window (pool_k, pool_stride; no padding, the
 * output size rounded down). Values are laid out (H, W, C): value (y, x, c) of a grid of width w and c
 * channels is element (y w + x) c + c. Its weight matrix has one row per kernel position and input
 * channel, row (ky k + kx) in_c + c, and one column per filter, so that the layer is a dense layer on
 * each of its out_h out_w patches (im2col): each patch is one crossbar input. */
typedef struct xb_conv {
    size_t k;                /* kernel size; 0: the layer is dense */
    size_t stride, pad;
    size_t in_h, in_w, in_c;
    size_t out_h, out_w, out_c; /* the convolution's output grid and filters */
    xb_pool_kind pool;
    size_t pool_k, pool_stride;
    size_t pool_h, pool_w;   /* the grid after pooling (out_h, out_w without pooling) */
} xb_conv;

typedef struct xb_mlp {
    int n_layers;       /* weight layers: 1 for the SLP */
    size_t *sizes;      /* n_layers + 1 entries: values each layer reads (input, hidden..., classes);
                           a convolutional layer's output counts pool_h pool_w out_c */
    xb_activation *act; /* n_layers entries; act[n_layers-1] is XB_ACT_IDENTITY */
    double **W;         /* W[k]: xb_mlp_fan_in x xb_mlp_fan_out (dense: sizes[k] x sizes[k+1]) */
    double **b;         /* b[k]: xb_mlp_fan_out */
    xb_conv *conv;      /* n_layers geometries (k 0 for dense layers), or NULL: every layer dense */
} xb_mlp;

/* 1 if layer k is convolutional. */
static inline int xb_mlp_is_conv(const xb_mlp *m, int k) { return m->conv && m->conv[k].k > 0; }
/* Patches of layer k per input: out_h out_w for a convolutional layer, 1 for a dense one. */
static inline size_t xb_mlp_patches(const xb_mlp *m, int k)
{
    return xb_mlp_is_conv(m, k) ? m->conv[k].out_h * m->conv[k].out_w : 1;
}

/* Layer k's weight matrix is xb_mlp_fan_in x xb_mlp_fan_out (its crossbar rows and columns, before bias
 * rows); sizes[k] and sizes[k + 1] are the values the layer reads and writes. */
static inline size_t xb_mlp_fan_in(const xb_mlp *m, int k)
{
    return xb_mlp_is_conv(m, k) ? m->conv[k].k * m->conv[k].k * m->conv[k].in_c : m->sizes[k];
}
static inline size_t xb_mlp_fan_out(const xb_mlp *m, int k)
{
    return xb_mlp_is_conv(m, k) ? m->conv[k].out_c : m->sizes[k + 1];
}
static inline size_t xb_mlp_n_weights(const xb_mlp *m, int k) { return xb_mlp_fan_in(m, k) * xb_mlp_fan_out(m, k); }

/* New network with zero weights. hidden: activation of every hidden layer. NULL on bad sizes. */
xb_mlp *xb_mlp_new(int n_layers, const size_t *sizes, xb_activation hidden);
xb_mlp *xb_mlp_clone(const xb_mlp *m);

/* One layer as a user writes it (xb_layer_list_parse): a dense layer of units outputs (k 0), or a
 * convolution of units filters with its pooling. */
typedef struct xb_layer_spec {
    size_t units;
    size_t k, stride, pad;
    xb_pool_kind pool;
    size_t pool_k, pool_stride;
} xb_layer_spec;

#define XB_MAX_LAYERS 64

/* Parse a comma-separated layer list: conv:F:K[:S[:P]] (F filters, K x K kernel, stride S (1), zero
 * padding P (0)), maxpool:K[:S] / avgpool:K[:S] (after a conv layer: window K, stride S (K)), flatten
 * (an optional marker between the conv and the dense layers), dense:N. what names the text in messages.
 * Fills spec[0 .. *n) (at most max). */
int xb_layer_list_parse(const char *text, const char *what, xb_layer_spec *spec, int max, int *n, xb_error *err);

/* A network on (h, w, c) inputs from n_layers specs (the last one's units: the classes), zero weights;
 * every hidden layer uses hidden. Conv layers must come first. Without conv layers it is the dense
 * network xb_mlp_new builds (conv NULL). */
xb_mlp *xb_net_new(size_t h, size_t w, size_t c, int n_layers, const xb_layer_spec *spec, xb_activation hidden,
                   xb_error *err);

/* The layer list of m in xb_layer_list_parse's syntax, every layer including the last (canonical: stride
 * and padding written only when not 1 and 0, a pooling stride only when not the window). */
const char *xb_mlp_layers_string(const xb_mlp *m, char *buf, size_t len);
void xb_mlp_free(xb_mlp **m);

/* Seeded initialisation: Glorot-uniform for sigmoid/identity layers, He-normal for ReLU; zero biases. */
void xb_mlp_init(xb_mlp *m, gsl_rng *rng);

/* Weights (crossbar cells of the weight matrices, without biases): the architecture-size paper's
 * synapse count. */
size_t xb_mlp_synapses(const xb_mlp *m);

/* Number of weights plus biases. */
size_t xb_mlp_param_count(const xb_mlp *m);

/* "784-100-10 sigmoid" style description into buf; with conv layers "28x28x1 conv:8:3,maxpool:2,...,dense:10 relu". */
const char *xb_mlp_describe(const xb_mlp *m, char *buf, size_t len);

/* Apply an activation in place to n values. */
void xb_activation_apply(xb_activation a, double *z, size_t n);

/* Check a conv layer's k, stride, pad, in_h, in_w, in_c, out_c and pooling (kind, window, stride) and
 * set its output grids; layer (1-based) names it in messages. */
int xb_conv_complete(xb_conv *g, int layer, xb_error *err);

/* The patches of n inputs of conv layer g (n x in_h in_w in_c values each) as rows: col receives
 * n out_h out_w rows of k k in_c values, row (i out_h + oy) out_w + ox, zeros where the kernel reaches
 * into the padding. */
void xb_conv_im2col(const xb_conv *g, const double *in, size_t n, double *col);
/* Pooling of n inputs' activations z (n x out_h out_w out_c) into out (n x pool_h pool_w out_c);
 * chosen (may be NULL) receives max pooling's element of z for each output (the first of equal ones). */
void xb_conv_pool(const xb_conv *g, const double *z, size_t n, double *out, size_t *chosen);

/* Scratch space for batched passes of up to max_batch rows. */
typedef struct xb_mlp_work xb_mlp_work;
xb_mlp_work *xb_mlp_work_new(const xb_mlp *m, size_t max_batch);
/* The same for forward passes only (xb_mlp_forward, xb_mlp_work_layer): no gradient arrays. */
xb_mlp_work *xb_mlp_work_new_forward(const xb_mlp *m, size_t max_batch);
void xb_mlp_work_free(xb_mlp_work **w);

/* Logits of n inputs (n <= max_batch): X is n x sizes[0], logits n x sizes[L]. */
void xb_mlp_forward(const xb_mlp *m, const double *X, size_t n, double *logits, xb_mlp_work *w);

/* Outputs of layer k (0-based; n x sizes[k+1], after its activation and pooling) of the last pass through w; owned
 * by w, valid until its next pass (the chip's mapping reads the ranges the hidden layers reach). */
const double *xb_mlp_work_layer(const xb_mlp_work *w, int k);

/* Predicted class (argmax of logits, first index on ties) of n inputs, any n. */
int xb_mlp_predict(const xb_mlp *m, const double *X, size_t n, int *pred, xb_error *err);

/* Index of the largest of n values (first on ties). */
size_t xb_argmax(const double *v, size_t n);

/* Mean softmax cross-entropy of a batch and, if grad is not NULL, its gradient with respect to
 * every weight and bias, written into grad (same shape as m). n <= max_batch.
 * n_correct (may be NULL) receives how many of the n inputs the network classifies right. */
double xb_mlp_loss_grad(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                        xb_mlp *grad, size_t *n_correct, xb_mlp_work *w);

/* What a training pass adds to the plain one: dropout on the hidden layers and two places where a
 * caller (the hardware-aware trainer, src/hwtrain) changes a layer's outputs. nn knows nothing of what
 * the callbacks do; the backward pass treats both as the identity (the straight-through estimator).
 *   layer k:  Z = A W + b;  on_preact(Z);  P = pool(f(Z));  on_act(P) (hidden layers);  A = P * mask
 * The derivative of f is taken at P before on_act, and the dropout mask multiplies the gradient.
 * A convolutional layer's Z has one row per patch (n out_h out_w rows x out_c filters) and its P one
 * row per pooled position (n pool_h pool_w rows x out_c). */
typedef struct xb_mlp_pass {
    double dropout; /* probability in [0, 1) of zeroing a hidden unit; survivors are scaled by 1 / (1 - p)
                       (inverted dropout, so evaluation uses the weights as they are) */
    gsl_rng *rng;   /* draws the dropout masks (one uniform per hidden unit and row); needed if dropout > 0 */
    /* Layer k's pre-activations z (n rows x fan_out, row-major), every layer; may be NULL. */
    void (*on_preact)(void *ctx, int k, double *z, size_t n, size_t fan_out);
    /* Hidden layer k's activations after f (n x fan_out); may be NULL. */
    void (*on_act)(void *ctx, int k, double *a, size_t n, size_t fan_out);
    void *ctx;
} xb_mlp_pass;

/* xb_mlp_loss_grad through a training pass; pass NULL is exactly xb_mlp_loss_grad. */
double xb_mlp_loss_grad_pass(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                             xb_mlp *grad, size_t *n_correct, xb_mlp_work *w, const xb_mlp_pass *pass);

#endif
