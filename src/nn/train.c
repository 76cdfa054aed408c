// train: mini-batch SGD with momentum for the MLPs in mlp.h
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "progress.h"

void xb_train_defaults(xb_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 15;
    o->batch = 32;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->weight_decay = 0;
    o->lr_decay = 1.0;
    o->lr_step = 1;
    o->val_fraction = 0;
    o->seed = 1;
    o->init = 1;
    o->progress = stderr;
}

double xb_train_default_lr(int n_hidden, xb_activation act)
{
    if (n_hidden == 0)
        return 0.01;
    return act == XB_ACT_RELU ? 0.01 : 0.1;
}

/* Copy the listed rows of d into a contiguous batch. */
static void gather(const xb_dataset *d, const size_t *rows, size_t n, double *X, unsigned char *y)
{
    for (size_t r = 0; r < n; r++) {
        memcpy(X + r * d->dim, d->x + rows[r] * d->dim, d->dim * sizeof *X);
        y[r] = d->y[rows[r]];
    }
}

int xb_accuracy(const xb_mlp *m, const xb_dataset *d, const size_t *rows, size_t n, double *acc,
                xb_error *err)
{
    const size_t batch = 256;
    double *X = malloc(batch * d->dim * sizeof *X);
    unsigned char *y = malloc(batch);
    int *pred = malloc(batch * sizeof *pred);
    if (!X || !y || !pred) {
        free(X), free(y), free(pred);
        return xb_fail(err, XB_ENOMEM, "out of memory for an accuracy pass");
    }
    size_t correct = 0;
    int rc = XB_OK;
    for (size_t s = 0; s < n && rc == XB_OK; s += batch) {
        size_t nb = n - s < batch ? n - s : batch;
        gather(d, rows + s, nb, X, y);
        rc = xb_mlp_predict(m, X, nb, pred, err);
        for (size_t r = 0; r < nb; r++)
            correct += pred[r] == y[r];
    }
    free(X), free(y), free(pred);
    *acc = n ? (double)correct / (double)n : NAN;
    return rc;
}

int xb_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, xb_epoch_stats *stats,
             xb_error *err)
{
    if (m->sizes[0] != d->dim)
        return xb_fail(err, XB_EINPUT, "the network takes %zu inputs but the data has %zu features",
                       m->sizes[0], d->dim);
    if (m->sizes[m->n_layers] < (size_t)d->n_classes)
        return xb_fail(err, XB_EINPUT, "the network has %zu outputs but the data has %d classes",
                       m->sizes[m->n_layers], d->n_classes);
    if (o->batch == 0 || o->epochs == 0)
        return xb_fail(err, XB_EINPUT, "epochs and batch size must be at least 1");
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return xb_fail(err, XB_EINPUT, "validation fraction %g is outside [0, 1)", o->val_fraction);

    size_t n_val = (size_t)floor(o->val_fraction * (double)d->n);
    size_t n_train = d->n - n_val;
    if (n_train == 0)
        return xb_fail(err, XB_EINPUT, "no training samples left after the validation split");

    int rc = XB_OK;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    size_t *rows = malloc(d->n * sizeof *rows);
    double *X = malloc(o->batch * d->dim * sizeof *X);
    unsigned char *y = malloc(o->batch);
    xb_mlp *grad = xb_mlp_clone(m), *vel = xb_mlp_clone(m);
    xb_mlp_work *w = xb_mlp_work_new(m, o->batch);
    if (!rng || !rows || !X || !y || !grad || !vel || !w) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory setting up training");
        goto done;
    }
    gsl_rng_set(rng, o->seed);
    if (o->init)
        xb_mlp_init(m, rng);
    for (int k = 0; k < vel->n_layers; k++) {
        memset(vel->W[k], 0, vel->sizes[k] * vel->sizes[k + 1] * sizeof **vel->W);
        memset(vel->b[k], 0, vel->sizes[k + 1] * sizeof **vel->b);
    }
    /* One shuffle fixes the validation split; later shuffles touch only the training part. */
    for (size_t i = 0; i < d->n; i++)
        rows[i] = i;
    if (n_val)
        gsl_ran_shuffle(rng, rows, d->n, sizeof *rows);

    double lr = o->lr;
    size_t n_batches = (n_train + o->batch - 1) / o->batch;
    for (size_t ep = 0; ep < o->epochs; ep++) {
        if (ep > 0 && o->lr_step && ep % o->lr_step == 0)
            lr *= o->lr_decay;
        gsl_ran_shuffle(rng, rows, n_train, sizeof *rows);
        xb_progress bar;
        char label[48], status[96];
        snprintf(label, sizeof label, "epoch %zu/%zu", ep + 1, o->epochs);
        xb_progress_start(&bar, o->progress ? o->progress : stderr, label, n_batches, o->quiet);
        double t0 = xb_now(), loss_sum = 0;
        size_t correct = 0, seen = 0;
        for (size_t bi = 0; bi < n_batches; bi++) {
            size_t s = bi * o->batch, nb = n_train - s < o->batch ? n_train - s : o->batch;
            gather(d, rows + s, nb, X, y);
            size_t ok = 0;
            double loss = xb_mlp_loss_grad(m, X, y, nb, grad, &ok, w);
            if (!isfinite(loss)) {
                rc = xb_fail(err, XB_ERUNTIME,
                             "training diverged (loss %g) in epoch %zu; lower the learning rate (now %g)",
                             loss, ep + 1, lr);
                goto done;
            }
            loss_sum += loss * (double)nb;
            correct += ok;
            seen += nb;
            for (int k = 0; k < m->n_layers; k++) {
                size_t nw = m->sizes[k] * m->sizes[k + 1], nbias = m->sizes[k + 1];
                double *W = m->W[k], *gW = grad->W[k], *vW = vel->W[k];
                for (size_t i = 0; i < nw; i++) {
                    vW[i] = o->momentum * vW[i] - lr * (gW[i] + o->weight_decay * W[i]);
                    W[i] += vW[i];
                }
                double *bb = m->b[k], *gb = grad->b[k], *vb = vel->b[k];
                for (size_t i = 0; i < nbias; i++) {
                    vb[i] = o->momentum * vb[i] - lr * gb[i];
                    bb[i] += vb[i];
                }
            }
            if (!o->quiet) {
                snprintf(status, sizeof status, "loss %.4f acc %.2f%%", loss_sum / (double)seen,
                         100.0 * (double)correct / (double)seen);
                xb_progress_update(&bar, bi + 1, status);
            }
        }
        xb_epoch_stats st = {.epoch = ep + 1, .lr = lr, .loss = loss_sum / (double)seen,
                             .train_acc = (double)correct / (double)seen, .val_acc = NAN};
        if (n_val && (rc = xb_accuracy(m, d, rows + n_train, n_val, &st.val_acc, err)) != XB_OK)
            goto done;
        st.seconds = xb_now() - t0;
        if (n_val)
            snprintf(status, sizeof status, "loss %.4f acc %.2f%% val %.2f%%", st.loss, 100 * st.train_acc,
                     100 * st.val_acc);
        else
            snprintf(status, sizeof status, "loss %.4f acc %.2f%%", st.loss, 100 * st.train_acc);
        xb_progress_finish(&bar, status);
        if (stats)
            stats[ep] = st;
    }
done:
    xb_mlp_work_free(&w);
    xb_mlp_free(&grad);
    xb_mlp_free(&vel);
    free(y);
    free(X);
    free(rows);
    gsl_rng_free(rng);
    return rc;
}
