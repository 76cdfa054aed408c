// test_conv: convolutional layers: layer lists, geometry, the forward pass against a direct loop
// convolution, the backward pass against finite differences, pooling, training on MNIST-shaped data
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "check.h"
#include "dataset.h"
#include "hwtrain.h"
#include "train.h"
#include "mlp.h"
#include "npz.h"
#include "weights.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

static xb_mlp *net(const char *layers, size_t h, size_t w, size_t c, xb_activation act)
{
    xb_layer_spec spec[XB_MAX_LAYERS];
    int n = 0;
    xb_error err = {0};
    if (xb_layer_list_parse(layers, "test", spec, XB_MAX_LAYERS, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    xb_mlp *m = xb_net_new(h, w, c, n, spec, act, &err);
    if (!m)
        fprintf(stderr, "%s\n", err.msg);
    return m;
}

static void randomize(xb_mlp *m, gsl_rng *rng, double scale)
{
    for (int k = 0; k < m->n_layers; k++) {
        for (size_t i = 0; i < xb_mlp_n_weights(m, k); i++)
            m->W[k][i] = scale * gsl_ran_gaussian(rng, 1.0);
        for (size_t i = 0; i < xb_mlp_fan_out(m, k); i++)
            m->b[k][i] = 0.1 * gsl_ran_gaussian(rng, 1.0);
    }
}

static void test_parse(void)
{
    xb_layer_spec s[XB_MAX_LAYERS];
    int n = 0;
    xb_error err = {0};
    CHECK(xb_layer_list_parse("conv:8:3,maxpool:2,conv:8:3:2:1,avgpool:3:2,flatten,dense:16,dense:10", "t", s,
                              XB_MAX_LAYERS, &n, &err) == XB_OK, "%s", err.msg);
    CHECK(n == 4, "4 weight layers, got %d", n);
    CHECK(s[0].units == 8 && s[0].k == 3 && s[0].stride == 1 && s[0].pad == 0 && s[0].pool == XB_POOL_MAX &&
              s[0].pool_k == 2 && s[0].pool_stride == 2, "first conv layer");
    CHECK(s[1].stride == 2 && s[1].pad == 1 && s[1].pool == XB_POOL_AVG && s[1].pool_k == 3 && s[1].pool_stride == 2,
          "second conv layer");
    CHECK(s[2].k == 0 && s[2].units == 16 && s[3].units == 10, "dense layers");
    const char *bad[] = {"maxpool:2,dense:10", "dense:10,conv:4:3", "conv:4", "conv:0:3", "conv:4:3:0",
                         "conv:4:3,maxpool:0", "conv:4:3,maxpool:2,maxpool:2", "conv:4:3,pool:2", "dense:-3",
                         "dense:", "dense:10,flatten,flatten", "conv:4:3:1:1:1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        CHECK(xb_layer_list_parse(bad[i], "t", s, XB_MAX_LAYERS, &n, &err) == XB_EINPUT && err.msg[0],
              "'%s' refused", bad[i]);
    }
    /* geometry: 28x28 -> conv 3 pad 1 -> 28 -> pool 2 -> 14 -> conv 3 -> 12 -> avg 2 -> 6 */
    xb_mlp *m = net("conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,flatten,dense:16,dense:10", 28, 28, 1, XB_ACT_RELU);
    CHECK(m != NULL, "network built");
    if (!m)
        return;
    CHECK(m->sizes[0] == 784 && m->sizes[1] == 14 * 14 * 4 && m->sizes[2] == 6 * 6 * 8 && m->sizes[3] == 16 &&
              m->sizes[4] == 10, "sizes %zu %zu %zu", m->sizes[1], m->sizes[2], m->sizes[3]);
    CHECK(xb_mlp_fan_in(m, 0) == 9 && xb_mlp_fan_out(m, 0) == 4 && xb_mlp_fan_in(m, 1) == 36 &&
              xb_mlp_fan_in(m, 2) == 288 && xb_mlp_patches(m, 0) == 784 && xb_mlp_patches(m, 1) == 144,
          "fan-in, fan-out, patches");
    char buf[256];
    CHECK(!strcmp(xb_mlp_layers_string(m, buf, sizeof buf), "conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,dense:16,dense:10"),
          "canonical list '%s'", buf);
    CHECK(!strcmp(xb_mlp_describe(m, buf, sizeof buf),
                  "28x28x1 conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,dense:16,dense:10 relu"), "describe '%s'", buf);
    xb_mlp *c = xb_mlp_clone(m);
    CHECK(c && c->conv && c->conv[1].out_h == 12 && c->conv[1].pool_w == 6, "clone keeps the geometry");
    xb_mlp_free(&c);
    xb_mlp_free(&m);
    /* errors: a kernel larger than its input, a window larger than the output, conv last */
    xb_layer_spec big[2] = {{.units = 2, .k = 30, .stride = 1}, {.units = 10}};
    CHECK(!xb_net_new(28, 28, 1, 2, big, XB_ACT_RELU, &err) && strstr(err.msg, "does not fit"), "%s", err.msg);
    xb_layer_spec last[1] = {{.units = 2, .k = 3, .stride = 1}};
    CHECK(!xb_net_new(28, 28, 1, 1, last, XB_ACT_RELU, &err) && strstr(err.msg, "last layer"), "%s", err.msg);
}

/* The first layer's pre-pooling activations of one input by the definition of a convolution. */
static double direct(const xb_mlp *m, const double *x, size_t oy, size_t ox, size_t f)
{
    const xb_conv *g = &m->conv[0];
    double z = m->b[0][f];
    for (size_t ky = 0; ky < g->k; ky++)
        for (size_t kx = 0; kx < g->k; kx++)
            for (size_t c = 0; c < g->in_c; c++) {
                long iy = (long)(oy * g->stride + ky) - (long)g->pad, ix = (long)(ox * g->stride + kx) - (long)g->pad;
                if (iy < 0 || ix < 0 || iy >= (long)g->in_h || ix >= (long)g->in_w)
                    continue;
                z += x[((size_t)iy * g->in_w + (size_t)ix) * g->in_c + c] * m->W[0][((ky * g->k + kx) * g->in_c + c) * g->out_c + f];
            }
    return z > 0 ? z : 0;
}

static void test_forward_direct(const char *layers, size_t h, size_t w, size_t c)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    xb_mlp *m = net(layers, h, w, c, XB_ACT_RELU);
    CHECK(m != NULL, "%s", layers);
    if (!m) {
        gsl_rng_free(rng);
        return;
    }
    randomize(m, rng, 0.5);
    size_t n = 3, in = m->sizes[0];
    double *x = malloc(n * in * sizeof *x);
    for (size_t i = 0; i < n * in; i++)
        x[i] = gsl_rng_uniform(rng);
    xb_mlp_work *wk = xb_mlp_work_new(m, n);
    double *logits = malloc(n * m->sizes[m->n_layers] * sizeof *logits);
    xb_mlp_forward(m, x, n, logits, wk);
    const xb_conv *g = &m->conv[0];
    const double *A0 = xb_mlp_work_layer(wk, 0);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t py = 0; py < g->pool_h; py++)
            for (size_t px = 0; px < g->pool_w; px++)
                for (size_t f = 0; f < g->out_c; f++) {
                    double want;
                    if (g->pool == XB_POOL_NONE) {
                        want = direct(m, x + i * in, py, px, f);
                    } else {
                        want = g->pool == XB_POOL_MAX ? -INFINITY : 0;
                        for (size_t dy = 0; dy < g->pool_k; dy++)
                            for (size_t dx = 0; dx < g->pool_k; dx++) {
                                double v = direct(m, x + i * in, py * g->pool_stride + dy, px * g->pool_stride + dx, f);
                                want = g->pool == XB_POOL_MAX ? fmax(want, v) : want + v / (double)(g->pool_k * g->pool_k);
                            }
                    }
                    double got = A0[i * m->sizes[1] + (py * g->pool_w + px) * g->out_c + f];
                    worst = fmax(worst, fabs(got - want));
                }
    CHECK(worst <= 1e-12, "%s: first layer against the direct convolution: max error %.3g", layers, worst);
    free(x);
    free(logits);
    xb_mlp_work_free(&wk);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* Central differences of the loss with respect to every parameter against the analytic gradient. */
static void test_gradient(const char *layers, xb_activation act, size_t h, size_t w, size_t c)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 11);
    xb_mlp *m = net(layers, h, w, c, act);
    CHECK(m != NULL, "%s", layers);
    if (!m) {
        gsl_rng_free(rng);
        return;
    }
    randomize(m, rng, 0.6);
    size_t n = 4, in = m->sizes[0];
    double *x = malloc(n * in * sizeof *x);
    unsigned char y[4];
    for (size_t i = 0; i < n * in; i++)
        x[i] = gsl_rng_uniform(rng);
    for (size_t i = 0; i < n; i++)
        y[i] = (unsigned char)(i % m->sizes[m->n_layers]);
    xb_mlp_work *wk = xb_mlp_work_new(m, n);
    xb_mlp *grad = xb_mlp_clone(m);
    xb_mlp_loss_grad(m, x, y, n, grad, NULL, wk);
    double worst = 0;
    const double eps = 1e-6;
    for (int k = 0; k < m->n_layers; k++) {
        size_t nw = xb_mlp_n_weights(m, k), nb = xb_mlp_fan_out(m, k);
        for (size_t i = 0; i < nw + nb; i++) {
            double *p = i < nw ? &m->W[k][i] : &m->b[k][i - nw], keep = *p;
            *p = keep + eps;
            double lp = xb_mlp_loss_grad(m, x, y, n, NULL, NULL, wk);
            *p = keep - eps;
            double lm = xb_mlp_loss_grad(m, x, y, n, NULL, NULL, wk);
            *p = keep;
            double fd = (lp - lm) / (2 * eps), an = i < nw ? grad->W[k][i] : grad->b[k][i - nw];
            double e = fabs(fd - an) / fmax(1e-4, fabs(fd) + fabs(an));
            worst = fmax(worst, e);
        }
    }
    /* ReLU and max pooling have kinks: a difference step across one is rare at these sizes, but bounds
     * the error per parameter; the gradient elsewhere is exact to the differences' truncation. */
    CHECK(worst <= 2e-5, "%s (%s): gradient against central differences: max relative error %.3g", layers,
          xb_activation_name(act), worst);
    free(x);
    xb_mlp_work_free(&wk);
    xb_mlp_free(&grad);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* A 1x1 convolution without pooling is the dense layer applied to every pixel. */
static void test_pointwise(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    xb_mlp *m = net("conv:3:1,dense:2", 4, 5, 2, XB_ACT_IDENTITY);
    randomize(m, rng, 1.0);
    double x[40], logits[2];
    for (int i = 0; i < 40; i++)
        x[i] = gsl_rng_uniform(rng);
    xb_mlp_work *wk = xb_mlp_work_new(m, 1);
    xb_mlp_forward(m, x, 1, logits, wk);
    const double *A0 = xb_mlp_work_layer(wk, 0);
    double worst = 0;
    for (size_t p = 0; p < 20; p++)
        for (size_t f = 0; f < 3; f++) {
            double z = m->b[0][f];
            for (size_t ch = 0; ch < 2; ch++)
                z += x[p * 2 + ch] * m->W[0][ch * 3 + f];
            worst = fmax(worst, fabs(A0[p * 3 + f] - z));
        }
    CHECK(worst <= 1e-14, "1x1 convolution: max error %.3g", worst);
    xb_mlp_work_free(&wk);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* A conv network saved and loaded again is the same network: geometry, weights, predictions. */
static void test_roundtrip(void)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    xb_mlp *m = net("conv:3:3:2:1,avgpool:2,conv:2:2,maxpool:2:1,dense:5,dense:4", 12, 11, 2, XB_ACT_SIGMOID);
    randomize(m, rng, 0.7);
    xb_error err = {0};
    const char *path = "test_conv_roundtrip.npz";
    CHECK(xb_weights_save_npz(m, path, XB_DT_F8, &err) == XB_OK, "%s", err.msg);
    xb_mlp *r = NULL;
    CHECK(xb_weights_load(path, -1, &r, &err) == XB_OK, "%s", err.msg);
    if (r) {
        char a[256], b[256];
        CHECK(!strcmp(xb_mlp_describe(m, a, sizeof a), xb_mlp_describe(r, b, sizeof b)), "%s vs %s", a, b);
        int same = 1;
        for (int k = 0; k < m->n_layers; k++)
            same &= !memcmp(m->W[k], r->W[k], xb_mlp_n_weights(m, k) * sizeof(double)) &&
                    !memcmp(m->b[k], r->b[k], xb_mlp_fan_out(m, k) * sizeof(double));
        CHECK(same, "weights survive the round trip bit for bit");
    }
    /* the same arrays with the layer list taken away: refused, naming what is missing */
    xb_npz *z = NULL;
    CHECK(xb_npz_read(path, &z, &err) == XB_OK, "%s", err.msg);
    xb_mlp_free(&r);
    xb_mlp_free(&m);
    xb_npz_free(&z);
    remove(path);
    gsl_rng_free(rng);
}

/* Files that describe a network badly are refused with the file, the array and the fix. */
static void test_bad_files(void)
{
    xb_error err = {0};
    xb_mlp *m = NULL;
    xb_net_desc d = {.hidden = -1, .layout = "pytorch"};
    /* the PyTorch file read as Keras: W1 (4, 1, 3, 3) is not (3, 3, 1, 4) */
    d.layout = NULL;
    const char *ref = XB_SOURCE_DIR "/results/reference/mnist-cnn-pytorch.npz";
    CHECK(xb_weights_load_desc(ref, &d, &m, &err) == XB_OK, "the reference loads: %s", err.msg);
    xb_mlp_free(&m);
    /* the file's own layout wins; an explicit wrong layer list on a dense file is refused */
    d.layers = "dense:5,dense:10";
    CHECK(xb_weights_load_desc(XB_SOURCE_DIR "/results/reference/mnist-slp-f32.npz", &d, &m, &err) == XB_EINPUT &&
              strstr(err.msg, "2 weight layers but the file has 1"), "%s", err.msg);
    d.layers = "conv:4:3,dense:10";
    d.layout = "keras";
    CHECK(xb_weights_load_desc(XB_SOURCE_DIR "/results/reference/mnist-mlp100-f32.npz", &d, &m, &err) == XB_EINPUT &&
              strstr(err.msg, "input grid"), "%s", err.msg);
    d.input[0] = 28, d.input[1] = 28, d.input[2] = 1;
    CHECK(xb_weights_load_desc(XB_SOURCE_DIR "/results/reference/mnist-mlp100-f32.npz", &d, &m, &err) == XB_EINPUT &&
              strstr(err.msg, "W1 has shape (784, 100); layer 1") && strstr(err.msg, "needs (3, 3, 1, 4)"), "%s",
          err.msg);
    d.layout = "tensorflow";
    CHECK(xb_weights_load_desc(XB_SOURCE_DIR "/results/reference/mnist-mlp100-f32.npz", &d, &m, &err) == XB_EINPUT &&
              strstr(err.msg, "layout 'tensorflow' is unknown"), "%s", err.msg);
}

/* The PyTorch reference network (results/reference/README-cnn.md) in both layouts gives PyTorch's
 * float64 logits on the first 100 test images and its predictions on all 10,000. */
static void test_pytorch_reference(void)
{
    xb_error err = {0};
    xb_dataset *t = NULL;
    if (xb_dataset_load(XB_SOURCE_DIR "/data/mnist", XB_SPLIT_TEST, &t, &err)) {
        CHECK(0, "MNIST test split: %s", err.msg);
        return;
    }
    xb_npz *z = NULL;
    CHECK(xb_npz_read(XB_SOURCE_DIR "/results/reference/mnist-cnn-pytorch-expected.npz", &z, &err) == XB_OK, "%s",
          err.msg);
    const xb_ndarray *want = z ? xb_npz_get(z, "logits") : NULL, *pred_all = z ? xb_npz_get(z, "pred_all") : NULL;
    CHECK(want && want->count == 1000 && pred_all && pred_all->count == 10000, "expected outputs present");
    const char *files[2] = {XB_SOURCE_DIR "/results/reference/mnist-cnn-pytorch.npz",
                            XB_SOURCE_DIR "/results/reference/mnist-cnn-keras.npz"};
    for (int f = 0; f < 2 && want && pred_all; f++) {
        xb_mlp *m = NULL;
        if (xb_weights_load(files[f], -1, &m, &err)) {
            CHECK(0, "%s: %s", files[f], err.msg);
            continue;
        }
        xb_mlp_work *wk = xb_mlp_work_new(m, 100);
        double logits[1000];
        xb_mlp_forward(m, t->x, 100, logits, wk);
        double worst = 0;
        for (int i = 0; i < 1000; i++)
            worst = fmax(worst, fabs(logits[i] - want->data[i]));
        CHECK(worst <= 1e-9, "%s: logits against PyTorch's float64 ones: max error %.3g", files[f], worst);
        int *pred = malloc(t->n * sizeof *pred);
        xb_mlp_predict(m, t->x, t->n, pred, &err);
        size_t differ = 0;
        for (size_t i = 0; i < t->n; i++)
            differ += pred[i] != (int)pred_all->data[i];
        CHECK(differ == 0, "%s: %zu of 10000 predictions differ from PyTorch's", files[f], differ);
        free(pred);
        xb_mlp_work_free(&wk);
        xb_mlp_free(&m);
    }
    xb_npz_free(&z);
    xb_dataset_free(&t);
}

/* Training of a conv network: it learns a task a linear model cannot, hardware-aware training puts a
 * conv layer's weights onto its level set, and training with noise and levels off is plain training. */
static void test_training(void)
{
    /* 8x8 images, class 0: a horizontal bar anywhere, class 1: a vertical bar anywhere */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 4);
    xb_dataset d = {.n = 400, .rows = 8, .cols = 8, .dim = 64, .n_classes = 2};
    d.x = calloc(d.n * 64, sizeof *d.x);
    d.y = calloc(d.n, 1);
    for (size_t i = 0; i < d.n; i++) {
        int vertical = (int)(i % 2), at = (int)gsl_rng_uniform_int(rng, 8), from = (int)gsl_rng_uniform_int(rng, 5);
        d.y[i] = (unsigned char)vertical;
        for (int t = 0; t < 4; t++)
            d.x[i * 64 + (size_t)(vertical ? (from + t) * 8 + at : at * 8 + from + t)] = 1.0;
    }
    xb_train_options o;
    xb_train_defaults(&o);
    o.epochs = 8;
    o.batch = 16;
    o.lr = 0.05;
    o.quiet = 1;
    xb_error err = {0};
    xb_mlp *m = net("conv:4:3,maxpool:2,dense:8,dense:2", 8, 8, 1, XB_ACT_RELU);
    CHECK(xb_train(m, &d, &o, NULL, &err) == XB_OK, "train: %s", err.msg);
    int pred[400];
    xb_mlp_predict(m, d.x, d.n, pred, &err);
    size_t ok = 0;
    for (size_t i = 0; i < d.n; i++)
        ok += pred[i] == d.y[i];
    CHECK(ok >= 380, "bars: %zu of 400 right after training", ok);

    xb_hwtrain hw;
    CHECK(xb_hwtrain_parse(&hw, 3, "lognormal:sigma=0.1", "bits:2/none/none", NULL, INFINITY, 0, NULL, NULL, &err) == XB_OK,
          "%s", err.msg);
    xb_mlp *q = net("conv:4:3,maxpool:2,dense:8,dense:2", 8, 8, 1, XB_ACT_RELU);
    CHECK(xb_hwtrain_train(q, &d, &o, &hw, NULL, &err) == XB_OK, "hardware-aware: %s", err.msg);
    double vals[3];
    int nv = 0, on_set = 1;
    for (size_t i = 0; i < xb_mlp_n_weights(q, 0); i++) {
        int seen = 0;
        for (int v = 0; v < nv; v++)
            seen |= vals[v] == q->W[0][i];
        if (!seen && nv < 3)
            vals[nv++] = q->W[0][i];
        else if (!seen)
            on_set = 0;
    }
    CHECK(on_set, "bits:2 on the conv layer: its kernels hold at most 3 distinct values");
    xb_hwtrain_clear(&hw);

    xb_hwtrain off;
    xb_hwtrain_parse(&off, 3, "none", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_mlp *p = net("conv:4:3,maxpool:2,dense:8,dense:2", 8, 8, 1, XB_ACT_RELU);
    xb_hwtrain_train(p, &d, &o, &off, NULL, &err);
    int same = 1;
    for (int k = 0; k < m->n_layers; k++)
        same &= !memcmp(m->W[k], p->W[k], xb_mlp_n_weights(m, k) * sizeof(double));
    CHECK(same, "noise and levels off: plain training's weights bit for bit");
    xb_mlp_free(&m);
    xb_mlp_free(&q);
    xb_mlp_free(&p);
    free(d.x);
    free(d.y);
    gsl_rng_free(rng);
}

int main(void)
{
    test_training();
    test_roundtrip();
    test_bad_files();
    test_pytorch_reference();
    test_parse();
    test_pointwise();
    test_forward_direct("conv:3:3,dense:4", 6, 7, 2);
    test_forward_direct("conv:4:3:1:1,maxpool:2,dense:5", 8, 8, 1);
    test_forward_direct("conv:2:3:2:1,avgpool:2:1,dense:3", 9, 7, 3);
    test_forward_direct("conv:3:2,maxpool:3:2,conv:2:2,dense:3", 9, 9, 2);
    test_gradient("conv:3:3,dense:4", XB_ACT_RELU, 6, 6, 2);
    test_gradient("conv:3:3:1:1,maxpool:2,dense:4", XB_ACT_RELU, 6, 6, 1);
    test_gradient("conv:2:3:2:1,avgpool:2:1,conv:3:2,dense:5,dense:3", XB_ACT_SIGMOID, 9, 8, 2);
    test_gradient("conv:3:2,maxpool:3:2,conv:2:2,maxpool:2,dense:3", XB_ACT_SIGMOID, 10, 10, 2);
    return check_summary("test_conv");
}
