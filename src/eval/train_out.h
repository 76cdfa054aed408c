// train_out: `xbarsim train` after its options: train a network, test it, save its weights and sidecars
#ifndef XB_TRAIN_OUT_H
#define XB_TRAIN_OUT_H

#include <stddef.h>

#include "error.h"
#include "mlp.h"
#include "provenance.h"
#include "train.h"

/* What to train. Pointers are borrowed for the call. */
typedef struct xb_train_spec {
    const char *dataset;        /* mnist | fashion-mnist | a folder */
    size_t limit;               /* first N training images (0: all) */
    const size_t *hidden;       /* n_hidden hidden layer sizes */
    int n_hidden;               /* 0: the SLP; at most 32 */
    xb_activation act;          /* hidden activation */
    const char *layers;         /* hidden layers as a layer list (conv:..., pooling, dense:N; mlp.h), the
                                   dense output layer added; NULL: the hidden sizes */
    const xb_train_options *o;  /* o->epochs > 0 */
    const char *out;            /* the weights file, ending in .npz */
    int float32;                /* store the weights as float32 (else float64) */
    int blas_threads;           /* the BLAS thread count in force, for the sidecar */
    const struct xb_hwtrain *hw; /* hardware-aware training (src/hwtrain); NULL or inactive: plain */
} xb_train_spec;

/* What training measured, for printing. */
typedef struct xb_train_outcome {
    size_t n_train, n_test, correct; /* training images used; test images and how many were right */
    double test_acc, seconds;        /* test accuracy; seconds spent training */
} xb_train_outcome;

/* Load the dataset's training and test splits (prov gains the four IDX inputs), train a new network
 * (a progress line on stderr unless o->quiet), test it, and write out (the weights), STEM.train.csv
 * (one row per epoch) and STEM.json (prov, network, training options and results, test accuracy),
 * STEM being out without ".npz", each atomically. */
int xb_train_and_save(const xb_train_spec *s, xb_provenance *prov, xb_train_outcome *r, xb_error *err);

/* The two sidecars of a trained network: STEM.train.csv from st[0..o->epochs) and STEM.json (hw may be
 * NULL: plain training; its settings and the optimizer's are recorded only when they differ from plain
 * training, so a plain run's files stay as they were). */
struct xb_hwtrain;
int xb_train_write_results(const char *stem, const xb_provenance *prov, const xb_mlp *m,
                              const xb_train_options *o, const struct xb_hwtrain *hw, const char *dataset,
                              int blas_threads, const xb_epoch_stats *st, const xb_train_outcome *r, xb_error *err);

#endif
