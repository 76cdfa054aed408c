// mlp: multi-layer perceptrons (the single-layer perceptron is the 0-hidden-layer case)
#include "mlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>

int xb_activation_parse(const char *s)
{
    if (!strcmp(s, "sigmoid"))
        return XB_ACT_SIGMOID;
    if (!strcmp(s, "relu"))
        return XB_ACT_RELU;
    if (!strcmp(s, "identity") || !strcmp(s, "linear"))
        return XB_ACT_IDENTITY;
    return -1;
}

const char *xb_activation_name(xb_activation a)
{
    switch (a) {
    case XB_ACT_SIGMOID: return "sigmoid";
    case XB_ACT_RELU: return "relu";
    default: return "identity";
    }
}

xb_mlp *xb_mlp_new(int n_layers, const size_t *sizes, xb_activation hidden)
{
    if (n_layers < 1)
        return NULL;
    for (int k = 0; k <= n_layers; k++)
        if (sizes[k] == 0)
            return NULL;
    xb_mlp *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_layers = n_layers;
    m->sizes = malloc((size_t)(n_layers + 1) * sizeof *m->sizes);
    m->act = malloc((size_t)n_layers * sizeof *m->act);
    m->W = calloc((size_t)n_layers, sizeof *m->W);
    m->b = calloc((size_t)n_layers, sizeof *m->b);
    if (!m->sizes || !m->act || !m->W || !m->b) {
        xb_mlp_free(&m);
        return NULL;
    }
    memcpy(m->sizes, sizes, (size_t)(n_layers + 1) * sizeof *sizes);
    for (int k = 0; k < n_layers; k++) {
        m->act[k] = k == n_layers - 1 ? XB_ACT_IDENTITY : hidden;
        m->W[k] = calloc(sizes[k] * sizes[k + 1], sizeof **m->W);
        m->b[k] = calloc(sizes[k + 1], sizeof **m->b);
        if (!m->W[k] || !m->b[k]) {
            xb_mlp_free(&m);
            return NULL;
        }
    }
    return m;
}

xb_mlp *xb_mlp_clone(const xb_mlp *m)
{
    xb_mlp *c = xb_mlp_new(m->n_layers, m->sizes, XB_ACT_IDENTITY);
    if (!c)
        return NULL;
    for (int k = 0; k < m->n_layers; k++) {
        c->act[k] = m->act[k];
        memcpy(c->W[k], m->W[k], m->sizes[k] * m->sizes[k + 1] * sizeof **m->W);
        memcpy(c->b[k], m->b[k], m->sizes[k + 1] * sizeof **m->b);
    }
    return c;
}

void xb_mlp_free(xb_mlp **mp)
{
    if (!mp || !*mp)
        return;
    xb_mlp *m = *mp;
    for (int k = 0; k < m->n_layers; k++) {
        if (m->W)
            free(m->W[k]);
        if (m->b)
            free(m->b[k]);
    }
    free(m->W);
    free(m->b);
    free(m->sizes);
    free(m->act);
    free(m);
    *mp = NULL;
}

void xb_mlp_init(xb_mlp *m, gsl_rng *rng)
{
    for (int k = 0; k < m->n_layers; k++) {
        size_t fi = m->sizes[k], fo = m->sizes[k + 1], n = fi * fo;
        if (m->act[k] == XB_ACT_RELU) {
            double sd = sqrt(2.0 / (double)fi);
            for (size_t i = 0; i < n; i++)
                m->W[k][i] = gsl_ran_gaussian(rng, sd);
        } else {
            double a = sqrt(6.0 / (double)(fi + fo));
            for (size_t i = 0; i < n; i++)
                m->W[k][i] = gsl_ran_flat(rng, -a, a);
        }
        memset(m->b[k], 0, fo * sizeof **m->b);
    }
}

size_t xb_mlp_param_count(const xb_mlp *m)
{
    size_t n = 0;
    for (int k = 0; k < m->n_layers; k++)
        n += m->sizes[k] * m->sizes[k + 1] + m->sizes[k + 1];
    return n;
}

const char *xb_mlp_describe(const xb_mlp *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k <= m->n_layers && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", k ? "-" : "", m->sizes[k]);
    if (m->n_layers > 1 && used < len)
        snprintf(buf + used, len - used, " %s", xb_activation_name(m->act[0]));
    return buf;
}

void xb_activation_apply(xb_activation a, double *z, size_t n)
{
    switch (a) {
    case XB_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            z[i] = 1.0 / (1.0 + exp(-z[i]));
        break;
    case XB_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            z[i] = z[i] > 0 ? z[i] : 0;
        break;
    default:
        break;
    }
}

size_t xb_argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

struct xb_mlp_work {
    size_t max_batch;
    int n_layers;
    double **A;   /* A[k]: output of layer k, max_batch x sizes[k+1] */
    double *D;    /* gradient with respect to the current layer's pre-activation */
    double *D2;   /* the next one down */
    double **P;   /* P[k]: hidden layer k's activations before on_act and dropout (training passes) */
    double **M;   /* M[k]: its dropout multipliers, 0 or 1 / (1 - p) */
};

xb_mlp_work *xb_mlp_work_new(const xb_mlp *m, size_t max_batch)
{
    xb_mlp_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->max_batch = max_batch;
    w->n_layers = m->n_layers;
    w->A = calloc((size_t)m->n_layers, sizeof *w->A);
    w->P = calloc((size_t)m->n_layers, sizeof *w->P);
    w->M = calloc((size_t)m->n_layers, sizeof *w->M);
    size_t widest = 0;
    for (int k = 0; k <= m->n_layers; k++)
        if (m->sizes[k] > widest)
            widest = m->sizes[k];
    w->D = malloc(max_batch * widest * sizeof *w->D);
    w->D2 = malloc(max_batch * widest * sizeof *w->D2);
    if (!w->A || !w->P || !w->M || !w->D || !w->D2) {
        xb_mlp_work_free(&w);
        return NULL;
    }
    for (int k = 0; k < m->n_layers; k++) {
        w->A[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->A);
        /* The output layer has neither on_act nor dropout. */
        if (k + 1 < m->n_layers) {
            w->P[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->P);
            w->M[k] = malloc(max_batch * m->sizes[k + 1] * sizeof **w->M);
        }
        if (!w->A[k] || (k + 1 < m->n_layers && (!w->P[k] || !w->M[k]))) {
            xb_mlp_work_free(&w);
            return NULL;
        }
    }
    return w;
}

void xb_mlp_work_free(xb_mlp_work **wp)
{
    if (!wp || !*wp)
        return;
    xb_mlp_work *w = *wp;
    for (int k = 0; k < w->n_layers; k++) {
        if (w->A)
            free(w->A[k]);
        if (w->P)
            free(w->P[k]);
        if (w->M)
            free(w->M[k]);
    }
    free(w->A);
    free(w->P);
    free(w->M);
    free(w->D);
    free(w->D2);
    free(w);
    *wp = NULL;
}

/* 1 if hidden layer k of a pass keeps its pre-dropout activations in w->P[k]. */
static int keeps_p(const xb_mlp *m, int k, const xb_mlp_pass *pass)
{
    return pass && k + 1 < m->n_layers && (pass->on_act || pass->dropout > 0);
}

/* Fill w->A[*] for n inputs (and w->P, w->M for a training pass). */
static void forward_all(const xb_mlp *m, const double *X, size_t n, xb_mlp_work *w, const xb_mlp_pass *pass)
{
    const double *in = X;
    for (int k = 0; k < m->n_layers; k++) {
        size_t fi = m->sizes[k], fo = m->sizes[k + 1], cnt = n * fo;
        double *out = w->A[k];
        for (size_t r = 0; r < n; r++)
            memcpy(out + r * fo, m->b[k], fo * sizeof *out);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)fo, (int)fi, 1.0, in, (int)fi,
                    m->W[k], (int)fo, 1.0, out, (int)fo);
        if (pass && pass->on_preact)
            pass->on_preact(pass->ctx, k, out, n, fo);
        xb_activation_apply(m->act[k], out, cnt);
        if (keeps_p(m, k, pass)) {
            memcpy(w->P[k], out, cnt * sizeof *out);
            if (pass->on_act)
                pass->on_act(pass->ctx, k, out, n, fo);
            if (pass->dropout > 0) {
                double keep = 1.0 / (1.0 - pass->dropout), *mask = w->M[k];
                for (size_t i = 0; i < cnt; i++) {
                    mask[i] = gsl_rng_uniform(pass->rng) < pass->dropout ? 0.0 : keep;
                    out[i] *= mask[i];
                }
            }
        }
        in = out;
    }
}

void xb_mlp_forward(const xb_mlp *m, const double *X, size_t n, double *logits, xb_mlp_work *w)
{
    forward_all(m, X, n, w, NULL);
    memcpy(logits, w->A[m->n_layers - 1], n * m->sizes[m->n_layers] * sizeof *logits);
}

const double *xb_mlp_work_layer(const xb_mlp_work *w, int k) { return w->A[k]; }

int xb_mlp_predict(const xb_mlp *m, const double *X, size_t n, int *pred, xb_error *err)
{
    const size_t batch = 256;
    xb_mlp_work *w = xb_mlp_work_new(m, batch);
    if (!w)
        return xb_fail(err, XB_ENOMEM, "out of memory for a forward pass");
    size_t in = m->sizes[0], out = m->sizes[m->n_layers];
    for (size_t s = 0; s < n; s += batch) {
        size_t nb = n - s < batch ? n - s : batch;
        forward_all(m, X + s * in, nb, w, NULL);
        const double *L = w->A[m->n_layers - 1];
        for (size_t r = 0; r < nb; r++)
            pred[s + r] = (int)xb_argmax(L + r * out, out);
    }
    xb_mlp_work_free(&w);
    return XB_OK;
}

double xb_mlp_loss_grad(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                        xb_mlp *grad, size_t *n_correct, xb_mlp_work *w)
{
    return xb_mlp_loss_grad_pass(m, X, labels, n, grad, n_correct, w, NULL);
}

double xb_mlp_loss_grad_pass(const xb_mlp *m, const double *X, const unsigned char *labels, size_t n,
                             xb_mlp *grad, size_t *n_correct, xb_mlp_work *w, const xb_mlp_pass *pass)
{
    forward_all(m, X, n, w, pass);
    int L = m->n_layers;
    size_t C = m->sizes[L];
    const double *logits = w->A[L - 1];
    double loss = 0;
    size_t correct = 0;
    /* Softmax with the max subtracted for stability; D = (softmax - onehot) / n. */
    for (size_t r = 0; r < n; r++) {
        const double *z = logits + r * C;
        double *d = w->D + r * C;
        size_t top = xb_argmax(z, C);
        correct += top == labels[r];
        double zmax = z[top], sum = 0;
        for (size_t c = 0; c < C; c++) {
            d[c] = exp(z[c] - zmax);
            sum += d[c];
        }
        loss += log(sum) - (z[labels[r]] - zmax);
        for (size_t c = 0; c < C; c++)
            d[c] = d[c] / sum / (double)n;
        d[labels[r]] -= 1.0 / (double)n;
    }
    loss /= (double)n;
    if (n_correct)
        *n_correct = correct;
    if (!grad)
        return loss;

    double *D = w->D, *D2 = w->D2;
    for (int k = L - 1; k >= 0; k--) {
        size_t fi = m->sizes[k], fo = m->sizes[k + 1];
        const double *in = k ? w->A[k - 1] : X;
        /* dW = in^T D, db = column sums of D */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)fi, (int)fo, (int)n, 1.0, in, (int)fi, D,
                    (int)fo, 0.0, grad->W[k], (int)fo);
        double *gb = grad->b[k];
        memset(gb, 0, fo * sizeof *gb);
        for (size_t r = 0; r < n; r++)
            for (size_t c = 0; c < fo; c++)
                gb[c] += D[r * fo + c];
        if (k == 0)
            break;
        /* Back through the weights and the hidden activation: D2 = (D W^T) * f'(A[k-1]). */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)fi, (int)fo, 1.0, D, (int)fo,
                    m->W[k], (int)fo, 0.0, D2, (int)fi);
        int kp = keeps_p(m, k - 1, pass);
        const double *a = kp ? w->P[k - 1] : w->A[k - 1];
        size_t cnt = n * fi;
        if (kp && pass->dropout > 0)
            for (size_t i = 0; i < cnt; i++)
                D2[i] *= w->M[k - 1][i];
        switch (m->act[k - 1]) {
        case XB_ACT_SIGMOID:
            for (size_t i = 0; i < cnt; i++)
                D2[i] *= a[i] * (1.0 - a[i]);
            break;
        case XB_ACT_RELU:
            for (size_t i = 0; i < cnt; i++)
                if (a[i] <= 0)
                    D2[i] = 0;
            break;
        default:
            break;
        }
        double *t = D;
        D = D2;
        D2 = t;
    }
    return loss;
}
