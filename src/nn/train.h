// train: mini-batch SGD with momentum, or Adam, for the MLPs in mlp.h
#ifndef XB_TRAIN_H
#define XB_TRAIN_H

#include <stdio.h>

#include "dataset.h"
#include "mlp.h"

typedef enum { XB_OPT_SGD = 0, XB_OPT_ADAM } xb_optimizer;

/* Parse "sgd" / "adam"; -1 if unknown. */
int xb_optimizer_parse(const char *s);
const char *xb_optimizer_name(xb_optimizer o);

/* How a caller changes training without nn knowing the device: the hardware-aware trainer
 * (src/hwtrain) fills this in. Every callback may be NULL. The master weights stay the ones the
 * optimizer updates; each batch runs forward and backward through a separate forward network.
 *   forward_weights  before each batch: write the weights of this forward pass into fwd (shape of
 *                    master; quantized and/or perturbed). epoch is 0-based. NULL: fwd = master.
 *   master_grad      after the backward pass: grad holds dL/d(fwd); turn it in place into the
 *                    gradient applied to master (straight-through estimator, noise factors).
 *   on_preact/on_act the layer-output callbacks of xb_mlp_pass, in every training forward pass.
 *   deployed         the network validation is scored on (quantized, noise-free); NULL: master.
 * A callback's error ends training with its code. */
typedef struct xb_train_hooks {
    void *ctx;
    int (*forward_weights)(void *ctx, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err);
    void (*master_grad)(void *ctx, const xb_mlp *master, const xb_mlp *fwd, xb_mlp *grad);
    void (*on_preact)(void *ctx, int k, double *z, size_t n, size_t fan_out);
    void (*on_act)(void *ctx, int k, double *a, size_t n, size_t fan_out);
    int (*deployed)(void *ctx, const xb_mlp *master, xb_mlp *out, xb_error *err);
} xb_train_hooks;

typedef struct xb_train_options {
    size_t epochs;        /* passes over the training part */
    size_t batch;         /* mini-batch size */
    double lr;            /* initial learning rate */
    xb_optimizer optimizer; /* XB_OPT_SGD (default) or XB_OPT_ADAM */
    double momentum;      /* SGD, classical momentum: v = mu v - lr g; w += v */
    double adam_beta1;    /* Adam (Kingma & Ba, as torch.optim.Adam): m = b1 m + (1-b1) g, */
    double adam_beta2;    /*   v = b2 v + (1-b2) g^2, w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) */
    double adam_eps;
    double dropout;       /* inverted dropout on every hidden layer during training, in [0, 1); 0: none */
    double grad_clip;     /* a batch's gradient (all weights and biases) is scaled down to this L2 norm
                             when longer; 0: no clipping */
    const xb_train_hooks *hooks; /* NULL: plain training */
    double weight_decay;  /* L2 penalty coefficient added to the weight gradients (not biases) */
    double lr_decay;      /* learning rate multiplied by this every lr_step epochs */
    size_t lr_step;
    double val_fraction;  /* share of the training set held out for validation, 0 for none */
    unsigned long seed;   /* seeds initialisation and shuffling (gsl_rng_mt19937); dropout masks draw
                             from a second mt19937 seeded with seed + 1 */
    int init;             /* initialise the weights from the seed (0: fine-tune m as given) */
    int quiet;            /* no progress output */
    FILE *progress;       /* where progress goes (stderr usually) */
} xb_train_options;

/* Defaults: 15 epochs, batch 32, lr 0.1, SGD with momentum 0.9 (Adam: beta1 0.9, beta2 0.999,
 * eps 1e-8), no decay, no dropout, no clipping, no hooks, no validation, seed 1. Callers set lr from
 * xb_train_default_lr for their architecture. */
void xb_train_defaults(xb_train_options *o);

/* The default learning rate of a network with n_hidden hidden layers of activation act (momentum 0.9,
 * batch 32, the initialisation of xb_mlp_init):
 *   SLP (n_hidden = 0)  0.01   softmax regression; a larger step only oscillates
 *   sigmoid MLP         0.1    bounded activations, derivatives <= 1/4 damp the backward pass
 *   ReLU MLP            0.01   unbounded activations under He init: at 0.1 (an effective step
 *                              lr / (1 - momentum) = 1) the 784-300-100-10 net's hidden units die and
 *                              the loss sticks at ln 10 (10 % on Fashion-MNIST); 0.01 trains it to 88 %
 * One place for `xbarsim train` and testbenches (network lr="auto"). */
double xb_train_default_lr(int n_hidden, xb_activation act);

typedef struct xb_epoch_stats {
    size_t epoch;         /* 1-based */
    double lr;
    double loss;          /* mean training loss over the epoch's batches */
    double train_acc;     /* running accuracy over the epoch's batches */
    double val_acc;       /* NaN without a validation split */
    double seconds;       /* wall time of the epoch */
} xb_epoch_stats;

/* Train m on d. stats (may be NULL) receives o->epochs entries. The result is bit-identical for the
 * same seed, options, data and BLAS thread count. With the defaults (SGD, no dropout, clipping or
 * hooks) it runs exactly the plain loop, whatever the new options' existence. */
int xb_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, xb_epoch_stats *stats,
             xb_error *err);

/* Accuracy of m on rows [first, first+n) of d. */
int xb_accuracy(const xb_mlp *m, const xb_dataset *d, const size_t *rows, size_t n, double *acc,
                xb_error *err);

#endif
