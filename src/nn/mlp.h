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
typedef struct xb_mlp {
    int n_layers;       /* weight layers: 1 for the SLP */
    size_t *sizes;      /* n_layers + 1 entries: input, hidden..., classes */
    xb_activation *act; /* n_layers entries; act[n_layers-1] is XB_ACT_IDENTITY */
    double **W;         /* W[k]: sizes[k] x sizes[k+1] */
    double **b;         /* b[k]: sizes[k+1] */
} xb_mlp;

/* Layer k's weight matrix is xb_mlp_fan_in x xb_mlp_fan_out (its crossbar rows and columns, before bias
 * rows); sizes[k] and sizes[k + 1] are the values the layer reads and writes. */
static inline size_t xb_mlp_fan_in(const xb_mlp *m, int k) { return m->sizes[k]; }
static inline size_t xb_mlp_fan_out(const xb_mlp *m, int k) { return m->sizes[k + 1]; }
static inline size_t xb_mlp_n_weights(const xb_mlp *m, int k) { return xb_mlp_fan_in(m, k) * xb_mlp_fan_out(m, k); }

/* New network with zero weights. hidden: activation of every hidden layer. NULL on bad sizes. */
xb_mlp *xb_mlp_new(int n_layers, const size_t *sizes, xb_activation hidden);
xb_mlp *xb_mlp_clone(const xb_mlp *m);
void xb_mlp_free(xb_mlp **m);

/* Seeded initialisation: Glorot-uniform for sigmoid/identity layers, He-normal for ReLU; zero biases. */
void xb_mlp_init(xb_mlp *m, gsl_rng *rng);

/* Number of weights plus biases. */
size_t xb_mlp_param_count(const xb_mlp *m);

/* "784-100-10 sigmoid" style description into buf. */
const char *xb_mlp_describe(const xb_mlp *m, char *buf, size_t len);

/* Apply an activation in place to n values. */
void xb_activation_apply(xb_activation a, double *z, size_t n);

/* Scratch space for batched passes of up to max_batch rows. */
typedef struct xb_mlp_work xb_mlp_work;
xb_mlp_work *xb_mlp_work_new(const xb_mlp *m, size_t max_batch);
void xb_mlp_work_free(xb_mlp_work **w);

/* Logits of n inputs (n <= max_batch): X is n x sizes[0], logits n x sizes[L]. */
void xb_mlp_forward(const xb_mlp *m, const double *X, size_t n, double *logits, xb_mlp_work *w);

/* Outputs of layer k (0-based; n x sizes[k+1], after its activation) of the last pass through w; owned
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
 *   layer k:  Z = A W + b;  on_preact(Z);  P = f(Z);  on_act(P) (hidden layers);  A = P * mask
 * The derivative of f is taken at P before on_act, and the dropout mask multiplies the gradient. */
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
