// train: mini-batch SGD with momentum for the MLPs in mlp.h
#ifndef XB_TRAIN_H
#define XB_TRAIN_H

#include <stdio.h>

#include "dataset.h"
#include "mlp.h"

typedef struct xb_train_options {
    size_t epochs;        /* passes over the training part */
    size_t batch;         /* mini-batch size */
    double lr;            /* initial learning rate */
    double momentum;      /* classical momentum: v = mu v - lr g; w += v */
    double weight_decay;  /* L2 penalty coefficient added to the weight gradients (not biases) */
    double lr_decay;      /* learning rate multiplied by this every lr_step epochs */
    size_t lr_step;
    double val_fraction;  /* share of the training set held out for validation, 0 for none */
    unsigned long seed;   /* seeds initialisation and shuffling (gsl_rng_mt19937) */
    int init;             /* initialise the weights from the seed (0: fine-tune m as given) */
    int quiet;            /* no progress output */
    FILE *progress;       /* where progress goes (stderr usually) */
} xb_train_options;

/* Defaults: 15 epochs, batch 32, lr 0.1, momentum 0.9, no decay, no validation, seed 1. Callers set
 * lr from xb_train_default_lr for their architecture. */
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
 * same seed, options, data and BLAS thread count. */
int xb_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, xb_epoch_stats *stats,
             xb_error *err);

/* Accuracy of m on rows [first, first+n) of d. */
int xb_accuracy(const xb_mlp *m, const xb_dataset *d, const size_t *rows, size_t n, double *acc,
                xb_error *err);

#endif
