// train: mini-batch SGD with momentum, or Adam, for the MLPs in mlp.h
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
    o->optimizer = XB_OPT_SGD;
    o->momentum = 0.9;
    o->adam_beta1 = 0.9;
    o->adam_beta2 = 0.999;
    o->adam_eps = 1e-8;
    o->weight_decay = 0;
    o->lr_decay = 1.0;
    o->lr_step = 1;
    o->val_fraction = 0;
    o->seed = 1;
    o->init = 1;
    o->progress = stderr;
}

int xb_optimizer_parse(const char *s)
{
    if (!strcmp(s, "sgd"))
        return XB_OPT_SGD;
    if (!strcmp(s, "adam"))
        return XB_OPT_ADAM;
    return -1;
}

const char *xb_optimizer_name(xb_optimizer o) { return o == XB_OPT_ADAM ? "adam" : "sgd"; }

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

/* Scale every gradient down so that their joint L2 norm is at most max_norm. */
static void clip_gradient(xb_mlp *g, double max_norm)
{
    double ss = 0;
    for (int k = 0; k < g->n_layers; k++) {
        size_t nw = xb_mlp_n_weights(g, k), nb = xb_mlp_fan_out(g, k);
        for (size_t i = 0; i < nw; i++)
            ss += g->W[k][i] * g->W[k][i];
        for (size_t i = 0; i < nb; i++)
            ss += g->b[k][i] * g->b[k][i];
    }
    double norm = sqrt(ss);
    if (!(norm > max_norm))
        return;
    double f = max_norm / norm;
    for (int k = 0; k < g->n_layers; k++) {
        size_t nw = xb_mlp_n_weights(g, k), nb = xb_mlp_fan_out(g, k);
        for (size_t i = 0; i < nw; i++)
            g->W[k][i] *= f;
        for (size_t i = 0; i < nb; i++)
            g->b[k][i] *= f;
    }
}

/* One Adam update of n parameters x with gradient g, moments m1 and m2, at step t (1-based). */
static void adam_update(double *x, const double *g, double *m1, double *m2, size_t n, double decay,
                        const xb_train_options *o, double lr, double c1, double c2)
{
    double b1 = o->adam_beta1, b2 = o->adam_beta2;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + decay * x[i];
        m1[i] = b1 * m1[i] + (1 - b1) * gi;
        m2[i] = b2 * m2[i] + (1 - b2) * gi * gi;
        x[i] -= lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + o->adam_eps);
    }
}

/* Adam on every layer; weight decay (L2, added to the weight gradients as torch.optim.Adam does). */
static void adam_step(xb_mlp *m, const xb_mlp *g, xb_mlp *m1, xb_mlp *m2, const xb_train_options *o, double lr,
                      size_t t)
{
    double c1 = 1 - pow(o->adam_beta1, (double)t), c2 = 1 - pow(o->adam_beta2, (double)t);
    for (int k = 0; k < m->n_layers; k++) {
        adam_update(m->W[k], g->W[k], m1->W[k], m2->W[k], xb_mlp_n_weights(m, k), o->weight_decay, o, lr,
                    c1, c2);
        adam_update(m->b[k], g->b[k], m1->b[k], m2->b[k], xb_mlp_fan_out(m, k), 0.0, o, lr, c1, c2);
    }
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
    if (!(o->dropout >= 0 && o->dropout < 1))
        return xb_fail(err, XB_EINPUT, "dropout %g is outside [0, 1)", o->dropout);
    if (!(o->grad_clip >= 0) || !isfinite(o->grad_clip))
        return xb_fail(err, XB_EINPUT, "gradient clipping norm %g must be finite and >= 0 (0: none)", o->grad_clip);
    if (o->optimizer != XB_OPT_SGD && o->optimizer != XB_OPT_ADAM)
        return xb_fail(err, XB_EINPUT, "unknown optimizer %d; allowed: sgd, adam", (int)o->optimizer);
    if (o->optimizer == XB_OPT_ADAM && !(o->adam_beta1 >= 0 && o->adam_beta1 < 1 && o->adam_beta2 >= 0 &&
                                         o->adam_beta2 < 1 && o->adam_eps > 0))
        return xb_fail(err, XB_EINPUT, "Adam needs beta1, beta2 in [0, 1) and eps > 0 (got %g, %g, %g)",
                       o->adam_beta1, o->adam_beta2, o->adam_eps);

    size_t n_val = (size_t)floor(o->val_fraction * (double)d->n);
    size_t n_train = d->n - n_val;
    if (n_train == 0)
        return xb_fail(err, XB_EINPUT, "no training samples left after the validation split");

    int rc = XB_OK;
    const xb_train_hooks *hk = o->hooks;
    int adam = o->optimizer == XB_OPT_ADAM;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng *drop_rng = o->dropout > 0 ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    size_t *rows = malloc(d->n * sizeof *rows);
    double *X = malloc(o->batch * d->dim * sizeof *X);
    unsigned char *y = malloc(o->batch);
    xb_mlp *grad = xb_mlp_clone(m), *vel = xb_mlp_clone(m);
    xb_mlp *sq = adam ? xb_mlp_clone(m) : NULL;                  /* Adam's second moments */
    xb_mlp *fwd = hk ? xb_mlp_clone(m) : NULL;                   /* the forward network of a hooked pass */
    xb_mlp *dep = hk && hk->deployed && n_val ? xb_mlp_clone(m) : NULL;
    xb_mlp_work *w = xb_mlp_work_new(m, o->batch);
    if (!rng || !rows || !X || !y || !grad || !vel || !w || (o->dropout > 0 && !drop_rng) || (adam && !sq) ||
        (hk && !fwd) || (hk && hk->deployed && n_val && !dep)) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory setting up training");
        goto done;
    }
    gsl_rng_set(rng, o->seed);
    if (drop_rng)
        gsl_rng_set(drop_rng, o->seed + 1);
    if (o->init)
        xb_mlp_init(m, rng);
    for (int k = 0; k < vel->n_layers; k++) {
        memset(vel->W[k], 0, xb_mlp_n_weights(vel, k) * sizeof **vel->W);
        memset(vel->b[k], 0, xb_mlp_fan_out(vel, k) * sizeof **vel->b);
        if (sq) {
            memset(sq->W[k], 0, xb_mlp_n_weights(sq, k) * sizeof **sq->W);
            memset(sq->b[k], 0, xb_mlp_fan_out(sq, k) * sizeof **sq->b);
        }
    }
    xb_mlp_pass pass = {.dropout = o->dropout, .rng = drop_rng, .on_preact = hk ? hk->on_preact : NULL,
                        .on_act = hk ? hk->on_act : NULL, .ctx = hk ? hk->ctx : NULL};
    int plain_pass = !hk && !(o->dropout > 0);
    size_t adam_t = 0;
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
            double loss;
            if (plain_pass) {
                loss = xb_mlp_loss_grad(m, X, y, nb, grad, &ok, w);
            } else {
                const xb_mlp *net = m;
                if (hk && hk->forward_weights) {
                    if ((rc = hk->forward_weights(hk->ctx, m, fwd, ep, err)) != XB_OK)
                        goto done;
                    net = fwd;
                }
                loss = xb_mlp_loss_grad_pass(net, X, y, nb, grad, &ok, w, &pass);
                if (hk && hk->master_grad)
                    hk->master_grad(hk->ctx, m, net, grad);
            }
            if (!isfinite(loss)) {
                rc = xb_fail(err, XB_ERUNTIME,
                             "training diverged (loss %g) in epoch %zu; lower the learning rate (now %g)",
                             loss, ep + 1, lr);
                goto done;
            }
            loss_sum += loss * (double)nb;
            correct += ok;
            seen += nb;
            if (o->grad_clip > 0)
                clip_gradient(grad, o->grad_clip);
            if (adam)
                adam_step(m, grad, vel, sq, o, lr, ++adam_t);
            else
                for (int k = 0; k < m->n_layers; k++) {
                    size_t nw = xb_mlp_n_weights(m, k), nbias = xb_mlp_fan_out(m, k);
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
        if (dep && (rc = hk->deployed(hk->ctx, m, dep, err)) != XB_OK)
            goto done;
        if (n_val && (rc = xb_accuracy(dep ? dep : m, d, rows + n_train, n_val, &st.val_acc, err)) != XB_OK)
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
    xb_mlp_free(&sq);
    xb_mlp_free(&fwd);
    xb_mlp_free(&dep);
    gsl_rng_free(drop_rng);
    free(y);
    free(X);
    free(rows);
    gsl_rng_free(rng);
    return rc;
}
