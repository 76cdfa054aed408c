// test_hwtrain: noised and quantization-aware training: gradients against finite differences, weights on
// their level sets, noise off is plain training bit for bit, noise draws with their distributions' moments,
// Adam, dropout and gradient clipping, and the settings' parse errors
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "chip.h"
#include "check.h"
#include "device.h"
#include "hwtrain.h"
#include "mlp.h"
#include "quant.h"
#include "train.h"

/* Three Gaussian blobs in 4-D (the last two features noise): small and fast to train. */
static xb_dataset *blobs(size_t n, unsigned long seed)
{
    xb_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->rows = 1;
    d->cols = 4;
    d->dim = 4;
    d->n_classes = 3;
    d->x = malloc(n * 4 * sizeof *d->x);
    d->y = malloc(n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    const double cx[3] = {0.2, 0.8, 0.5}, cy[3] = {0.2, 0.2, 0.8};
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        d->y[i] = (unsigned char)c;
        d->x[4 * i] = cx[c] + gsl_ran_gaussian(rng, 0.07);
        d->x[4 * i + 1] = cy[c] + gsl_ran_gaussian(rng, 0.07);
        d->x[4 * i + 2] = gsl_rng_uniform(rng);
        d->x[4 * i + 3] = gsl_rng_uniform(rng);
    }
    gsl_rng_free(rng);
    return d;
}

static const size_t SIZES[3] = {4, 12, 3};

static xb_mlp *net(xb_activation act, unsigned long seed)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    xb_mlp *m = xb_mlp_new(2, SIZES, act);
    xb_mlp_init(m, rng);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < SIZES[k + 1]; i++)
            m->b[k][i] = gsl_ran_gaussian(rng, 0.2);
    gsl_rng_free(rng);
    return m;
}

static int same_weights(const xb_mlp *a, const xb_mlp *b)
{
    for (int k = 0; k < a->n_layers; k++) {
        if (memcmp(a->W[k], b->W[k], a->sizes[k] * a->sizes[k + 1] * sizeof **a->W))
            return 0;
        if (memcmp(a->b[k], b->b[k], a->sizes[k + 1] * sizeof **a->b))
            return 0;
    }
    return 1;
}

static void defaults(xb_train_options *o)
{
    xb_train_defaults(o);
    o->epochs = 3;
    o->batch = 16;
    o->lr = 0.1;
    o->quiet = 1;
    o->seed = 5;
}

/* Noise "none" through the hooks, and lognormal with sigma = 0 (an active model whose factors are
 * exp(0) = 1 exactly), give the plain trainer's weights bit for bit. */
static void test_noise_off_is_plain(void)
{
    xb_dataset *d = blobs(300, 1);
    xb_train_options o;
    defaults(&o);
    xb_error err = {0};
    xb_mlp *plain = xb_mlp_new(2, SIZES, XB_ACT_RELU), *hooked = xb_mlp_new(2, SIZES, XB_ACT_RELU),
           *zero = xb_mlp_new(2, SIZES, XB_ACT_RELU);
    CHECK(xb_train(plain, d, &o, NULL, &err) == XB_OK, "plain: %s", err.msg);

    xb_hwtrain hw;
    CHECK(xb_hwtrain_parse(&hw, 2, "none", "none", NULL, INFINITY, 0, NULL, NULL, &err) == XB_OK, "%s", err.msg);
    CHECK(!xb_hwtrain_active(&hw), "noise none is inactive");
    xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, hooked, o.seed);
    xb_train_hooks hooks;
    xb_hwtrain_hooks(s, &hooks);
    xb_train_options oh = o;
    oh.hooks = &hooks;
    CHECK(xb_train(hooked, d, &oh, NULL, &err) == XB_OK, "hooked: %s", err.msg);
    CHECK(same_weights(plain, hooked), "training through the hooks with noise none is bit-identical");
    xb_hwtrain_session_free(&s);

    xb_hwtrain hz;
    CHECK(xb_hwtrain_parse(&hz, 2, "lognormal:sigma=0+additive:sigma=0", "none", NULL, INFINITY, 0, NULL, NULL,
                           &err) == XB_OK, "%s", err.msg);
    CHECK(xb_hwtrain_active(&hz), "a zero-spread model is active");
    CHECK(xb_hwtrain_train(zero, d, &o, &hz, NULL, &err) == XB_OK, "zero noise: %s", err.msg);
    CHECK(same_weights(plain, zero), "noised training with zero spread is bit-identical to plain training");
    xb_hwtrain_clear(&hz);

    /* A real spread changes the result, and the same seed reproduces it. */
    xb_hwtrain hn;
    xb_hwtrain_parse(&hn, 2, "lognormal:sigma=0.3", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_mlp *n1 = xb_mlp_new(2, SIZES, XB_ACT_RELU), *n2 = xb_mlp_new(2, SIZES, XB_ACT_RELU);
    xb_hwtrain_train(n1, d, &o, &hn, NULL, &err);
    xb_hwtrain_train(n2, d, &o, &hn, NULL, &err);
    CHECK(same_weights(n1, n2), "noised training: same seed, same weights");
    CHECK(!same_weights(n1, plain), "noised training with sigma 0.3 differs from plain training");
    xb_mlp_free(&n1);
    xb_mlp_free(&n2);
    xb_mlp_free(&plain);
    xb_mlp_free(&hooked);
    xb_mlp_free(&zero);
    xb_dataset_free(&d);
}

/* A fixed batch of n = 8 inputs. */
static void batch(double *X, unsigned char *y)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 3);
    for (size_t i = 0; i < 8 * 4; i++)
        X[i] = gsl_rng_uniform(rng);
    for (size_t i = 0; i < 8; i++)
        y[i] = (unsigned char)gsl_rng_uniform_int(rng, 3);
    gsl_rng_free(rng);
}

static double *param(xb_mlp *m, int k, size_t i)
{
    size_t nw = m->sizes[k] * m->sizes[k + 1];
    return i < nw ? &m->W[k][i] : &m->b[k][i - nw];
}

/* The STE: with a level set and no noise, the master gradient equals the float gradient at the
 * quantized weights (central differences of the float loss there: no level boundary is crossed since
 * the float network is probed, not re-quantized), and is 0 where |w / s| > t_c. Returns the worst
 * relative error; *n_masked counts the weights t_c silenced. */
static double check_ste(const char *levels, const char *norm, double t_c, int *n_masked)
{
    xb_error err = {0};
    xb_mlp *m = net(XB_ACT_SIGMOID, 11);
    xb_hwtrain hw;
    CHECK(xb_hwtrain_parse(&hw, 2, "none", levels, norm, t_c, 0, NULL, NULL, &err) == XB_OK, "%s", err.msg);
    double X[32];
    unsigned char y[8];
    batch(X, y);
    xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 9);
    xb_mlp *fwd = xb_mlp_clone(m), *g = xb_mlp_clone(m), *q = xb_mlp_clone(m);
    CHECK(xb_hwtrain_forward(s, m, fwd, 0, &err) == XB_OK, "%s", err.msg);
    xb_mlp_work *w = xb_mlp_work_new(m, 8);
    xb_mlp_loss_grad(fwd, X, y, 8, g, NULL, w);
    xb_hwtrain_master_grad(s, g);
    CHECK(xb_hwtrain_deploy(&hw, q, &err) == XB_OK, "%s", err.msg);
    CHECK(same_weights(q, fwd), "%s: the forward network without noise is the deployed one", levels);
    xb_norm nm;
    xb_norm_parse(norm ? norm : "maxabs", &nm, &err);
    const double h = 1e-6;
    double worst = 0;
    *n_masked = 0;
    for (int k = 0; k < 2; k++) {
        size_t nw = SIZES[k] * SIZES[k + 1];
        double sc = nm.kind == XB_NORM_MAXABS ? xb_max_abs(m->W[k], nw) : nm.kind == XB_NORM_CLIP ? nm.clip : 1;
        for (size_t i = 0; i < nw + SIZES[k + 1]; i++) {
            double *p = param(q, k, i), keep = *p;
            *p = keep + h;
            double lp = xb_mlp_loss_grad(q, X, y, 8, NULL, NULL, w);
            *p = keep - h;
            double lm = xb_mlp_loss_grad(q, X, y, 8, NULL, NULL, w);
            *p = keep;
            double num = (lp - lm) / (2 * h);
            if (i < nw && fabs(m->W[k][i] / sc) > t_c) {
                (*n_masked)++;
                num = 0;
            }
            double an = *param(g, k, i);
            worst = fmax(worst, fabs(num - an) / fmax(1e-4, fabs(num) + fabs(an)));
        }
    }
    xb_mlp_work_free(&w);
    xb_mlp_free(&q);
    xb_mlp_free(&fwd);
    xb_mlp_free(&g);
    xb_mlp_free(&m);
    xb_hwtrain_session_free(&s);
    xb_hwtrain_clear(&hw);
    return worst;
}

/* Noised training's gradient is the derivative of the perturbed loss with the draw held fixed: central
 * differences over a master weight, each side drawn by a fresh session with the same seed. For c2c,
 * whose scale max |w| is held constant, the weight that sets the scale is skipped. */
static double check_noise_gradient(const char *noise)
{
    xb_error err = {0};
    xb_mlp *m = net(XB_ACT_SIGMOID, 11);
    xb_hwtrain hw;
    CHECK(xb_hwtrain_parse(&hw, 2, noise, "none", NULL, INFINITY, 0, NULL, NULL, &err) == XB_OK, "%s", err.msg);
    double X[32];
    unsigned char y[8];
    batch(X, y);
    xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 9);
    xb_mlp *fwd = xb_mlp_clone(m), *g = xb_mlp_clone(m), *probe = xb_mlp_clone(m);
    xb_hwtrain_forward(s, m, fwd, 0, &err);
    xb_mlp_work *w = xb_mlp_work_new(m, 8);
    xb_mlp_loss_grad(fwd, X, y, 8, g, NULL, w);
    xb_hwtrain_master_grad(s, g);
    xb_hwtrain_session_free(&s);
    const double h = 1e-6;
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        size_t n = SIZES[k] * SIZES[k + 1] + SIZES[k + 1], top = 0;
        for (size_t i = 0; i < n; i++)
            if (fabs(*param(m, k, i)) > fabs(*param(m, k, top)))
                top = i;
        for (size_t i = 0; i < n; i++) {
            if (strstr(noise, "c2c:") && i == top)
                continue;
            double *p = param(m, k, i), keep = *p, l[2];
            for (int side = 0; side < 2; side++) {
                *p = keep + (side ? -h : h);
                xb_hwtrain_session *t = xb_hwtrain_session_new(&hw, m, 9);
                xb_hwtrain_forward(t, m, probe, 0, &err);
                l[side] = xb_mlp_loss_grad(probe, X, y, 8, NULL, NULL, w);
                xb_hwtrain_session_free(&t);
            }
            *p = keep;
            double num = (l[0] - l[1]) / (2 * h), an = *param(g, k, i);
            worst = fmax(worst, fabs(num - an) / fmax(1e-4, fabs(num) + fabs(an)));
        }
    }
    xb_mlp_work_free(&w);
    xb_mlp_free(&fwd);
    xb_mlp_free(&g);
    xb_mlp_free(&probe);
    xb_mlp_free(&m);
    xb_hwtrain_clear(&hw);
    return worst;
}

static void test_gradients(void)
{
    int masked;
    double e = check_ste("bits:3", NULL, INFINITY, &masked);
    CHECK(e < 1e-5, "STE on bits:3: worst relative error %.3g >= 1e-5", e);
    CHECK(masked == 0, "no threshold masks nothing (%d masked)", masked);
    e = check_ste("nnary:2:0.3:0.4", NULL, 0.5, &masked);
    CHECK(e < 1e-5, "STE on nnary:2 with t_c 0.5: worst relative error %.3g >= 1e-5", e);
    CHECK(masked > 0, "t_c = 0.5 of max |w| silences some weights (%d masked)", masked);
    e = check_ste("nnary:1:0.2:0.2", "none", 0.6, &masked);
    CHECK(e < 1e-5, "STE on ternary in weight units with t_c 0.6: worst relative error %.3g >= 1e-5", e);
    CHECK(masked > 0, "t_c = 0.6 in weight units silences some weights (%d masked)", masked);
    const char *noises[] = {"lognormal:sigma=0.5", "mult:alpha=0.2", "c2c-level:ar=0.5,sigma=0.2",
                            "c2c:ar=0.7,sigma=0.1", "mult:alpha=0.1+lognormal:sigma=0.3+additive:sigma=0.05"};
    for (size_t i = 0; i < sizeof noises / sizeof *noises; i++) {
        e = check_noise_gradient(noises[i]);
        CHECK(e < 1e-5, "%s: gradient through the perturbed pass, worst relative error %.3g >= 1e-5", noises[i], e);
    }
}

/* Index of v in the level set scaled by s, or -1. */
static int on_levels(const xb_levelset *ls, double s, double v)
{
    for (size_t j = 0; j < ls->n; j++)
        if (s * ls->levels[j] == v)
            return (int)j;
    return -1;
}

/* A network trained onto a level set has every weight exactly on it (scale s = max |W| of the layer
 * for maxabs, 1 for none), and mapping it onto the chip with the same set changes nothing: what
 * `program` writes is what was trained. */
static void test_trained_on_levels(void)
{
    xb_dataset *d = blobs(300, 2);
    xb_train_options o;
    defaults(&o);
    xb_error err = {0};
    xb_device dev;
    xb_device_defaults(&dev);
    const char *specs[][2] = {{"bits:3", "maxabs"}, {"nnary:2:0.2:0.25", "none"}, {"device", "maxabs"},
                              {"set3/bits:2", "maxabs"}};
    for (size_t c = 0; c < sizeof specs / sizeof *specs; c++) {
        xb_hwtrain hw;
        CHECK(xb_hwtrain_parse(&hw, 2, "mult:alpha=0.05", specs[c][0], specs[c][1], INFINITY, 2, NULL, &dev, &err) ==
                  XB_OK, "%s: %s", specs[c][0], err.msg);
        xb_mlp *m = xb_mlp_new(2, SIZES, XB_ACT_RELU);
        CHECK(xb_hwtrain_train(m, d, &o, &hw, NULL, &err) == XB_OK, "%s: %s", specs[c][0], err.msg);
        size_t off = 0;
        for (int k = 0; k < 2; k++) {
            size_t nw = SIZES[k] * SIZES[k + 1];
            double s = strcmp(specs[c][1], "none") ? xb_max_abs(m->W[k], nw) : 1;
            for (size_t i = 0; i < nw; i++)
                off += on_levels(hw.layer[k].levels, s, m->W[k][i]) < 0;
        }
        CHECK(off == 0, "%s: %zu trained weights lie off the level set", specs[c][0], off);
        if (!strcmp(specs[c][0], "device")) {
            xb_map_options mo;
            xb_map_defaults(&mo);
            xb_map_options_from_device(&mo, &dev);
            mo.bias = XB_BIAS_DIGITAL;
            xb_chip *chip = NULL, *requant = NULL;
            CHECK(xb_chip_map(m, &mo, d->x, 50, &chip, &err) == XB_OK, "map: %s", err.msg);
            requant = xb_chip_clone(chip);
            xb_levelset *ls[2] = {NULL, NULL};
            CHECK(xb_levelsets_parse("device", 2, &dev, ls, NULL, 0, &err) == XB_OK, "%s", err.msg);
            CHECK(ls[0]->n == hw.layer[0].levels->n &&
                      !memcmp(ls[0]->levels, hw.layer[0].levels->levels, ls[0]->n * sizeof(double)),
                  "training's device levels are program's");
            CHECK(xb_chip_quantize(requant, (const xb_levelset *const *)ls, &err) == XB_OK, "%s", err.msg);
            size_t moved = 0;
            for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < chip->layers[k].rows * chip->layers[k].fan_out; i++)
                    moved += chip->layers[k].wn[i] != requant->layers[k].wn[i] &&
                             on_levels(ls[k], 1, chip->layers[k].wn[i]) < 0 &&
                             fabs(chip->layers[k].wn[i] - requant->layers[k].wn[i]) > 1e-15;
            CHECK(moved == 0, "device: %zu normalized weights move when the chip quantizes them again", moved);
            xb_levelset_free(&ls[0]);
            xb_levelset_free(&ls[1]);
            xb_chip_free(&chip);
            xb_chip_free(&requant);
        }
        xb_mlp_free(&m);
        xb_hwtrain_clear(&hw);
    }
    xb_dataset_free(&d);
}

/* Moments of the drawn forward weights: master weights all 1 (biases 1) in a 200 x 100 layer. */
static void test_noise_moments(void)
{
    const size_t sz[2] = {200, 100};
    xb_mlp *m = xb_mlp_new(1, sz, XB_ACT_IDENTITY), *fwd = xb_mlp_new(1, sz, XB_ACT_IDENTITY);
    size_t nw = 200 * 100, n = nw + 100;
    for (size_t i = 0; i < nw; i++)
        m->W[0][i] = 1;
    for (size_t i = 0; i < 100; i++)
        m->b[0][i] = 1;
    xb_error err = {0};
    struct { const char *spec; int log; double mean, var; } cases[] = {
        {"lognormal:sigma=0.5", 1, 0.0, 0.25},  /* ln w' ~ N(0, sigma^2) */
        {"mult:alpha=0.3", 0, 1.0, 0.09},       /* w' = 1 + alpha N */
        {"c2c:ar=1,sigma=0.2", 0, 1.0, 0.04},   /* w' = 1 + sigma max|w| N */
        {"c2c-level:ar=1,sigma=0.1", 0, 1.0, 0.01},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        xb_hwtrain hw;
        xb_hwtrain_parse(&hw, 1, cases[c].spec, "none", NULL, INFINITY, 0, NULL, NULL, &err);
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 17);
        CHECK(xb_hwtrain_forward(s, m, fwd, 0, &err) == XB_OK, "%s", err.msg);
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) {
            double v = i < nw ? fwd->W[0][i] : fwd->b[0][i - nw];
            v = cases[c].log ? log(v) : v;
            sum += v;
            sq += v * v;
        }
        double mean = sum / (double)n, var = sq / (double)n - mean * mean;
        /* n = 20100 draws: the mean's standard error is sqrt(var / n) < 0.0036; 5 of them. The sample
         * variance's relative standard error is sqrt(2 / n) = 1 %; 5 % allowed. */
        CHECK_ABS(mean, cases[c].mean, 5 * sqrt(cases[c].var / (double)n), cases[c].spec);
        CHECK_REL(var, cases[c].var, 0.05, cases[c].spec);
        xb_hwtrain_session_free(&s);
        xb_hwtrain_clear(&hw);
    }
    /* c2c with ar = 0.3 changes exactly round(0.3 n) values. */
    xb_hwtrain hw;
    xb_hwtrain_parse(&hw, 1, "c2c:ar=0.3,sigma=0.2", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 17);
    xb_hwtrain_forward(s, m, fwd, 0, &err);
    size_t changed = 0;
    for (size_t i = 0; i < n; i++)
        changed += (i < nw ? fwd->W[0][i] : fwd->b[0][i - nw]) != 1.0;
    CHECK(changed == (size_t)round(0.3 * (double)n), "c2c ar 0.3 changed %zu of %zu", changed, n);
    /* A fresh draw in every forward pass. */
    xb_mlp *again = xb_mlp_clone(fwd);
    xb_hwtrain_forward(s, m, again, 0, &err);
    CHECK(!same_weights(again, fwd), "a second forward pass draws afresh");
    xb_mlp_free(&again);
    xb_hwtrain_session_free(&s);
    xb_hwtrain_clear(&hw);

    /* Additive output noise, through the training hook on zero pre-activations: N(0, sigma^2). */
    xb_hwtrain_parse(&hw, 1, "additive:sigma=0.2", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    s = xb_hwtrain_session_new(&hw, m, 17);
    xb_train_hooks hk;
    xb_hwtrain_hooks(s, &hk);
    double *z = calloc(n, sizeof *z);
    hk.on_preact(hk.ctx, 0, z, n / 100, 100);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++)
        sum += z[i], sq += z[i] * z[i];
    double mean = sum / (double)n, var = sq / (double)n - mean * mean;
    CHECK_ABS(mean, 0.0, 5 * 0.2 / sqrt((double)n), "additive mean");
    CHECK_REL(var, 0.04, 0.05, "additive variance");
    /* Two passes draw differently. */
    double z0 = z[0];
    hk.on_preact(hk.ctx, 0, z, 1, 100);
    CHECK(z[0] != z0, "a fresh additive draw in every pass");
    free(z);
    xb_hwtrain_session_free(&s);
    xb_hwtrain_clear(&hw);

    /* The noise ramp: epoch 1 of a 4-epoch ramp draws with a quarter of the spread. */
    xb_hwtrain_parse(&hw, 1, "mult:alpha=0.4", "none", NULL, INFINITY, 4, NULL, NULL, &err);
    s = xb_hwtrain_session_new(&hw, m, 17);
    xb_hwtrain_forward(s, m, fwd, 0, &err);
    sum = sq = 0;
    for (size_t i = 0; i < nw; i++)
        sum += fwd->W[0][i], sq += fwd->W[0][i] * fwd->W[0][i];
    mean = sum / (double)nw;
    CHECK_REL(sq / (double)nw - mean * mean, 0.01, 0.05, "ramp: variance (0.4 / 4)^2 in epoch 1");
    xb_hwtrain_session_free(&s);
    xb_hwtrain_clear(&hw);
    xb_mlp_free(&m);
    xb_mlp_free(&fwd);
}

/* The training noise generator (xoshiro256** seeded per forward pass from mt19937, ziggurat normals,
 * the polynomial exp): standard normal moments up to the fourth and the ziggurat's tail beyond R =
 * 3.6542 at its probability; exp accurate to a few ulp (with the same seed, sigma 2s draws the squares
 * of the factors of sigma s); the same seed reproduces the draws and another seed changes them. */
static void test_noise_generator(void)
{
    const size_t sz[2] = {1000, 200};
    xb_mlp *m = xb_mlp_new(1, sz, XB_ACT_IDENTITY), *f1 = xb_mlp_new(1, sz, XB_ACT_IDENTITY),
           *f2 = xb_mlp_new(1, sz, XB_ACT_IDENTITY);
    size_t nw = 1000 * 200;
    for (size_t i = 0; i < nw; i++)
        m->W[0][i] = 1;
    xb_error err = {0};
    xb_hwtrain h1, h2;
    xb_hwtrain_parse(&h1, 1, "lognormal:sigma=0.25", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_hwtrain_parse(&h2, 1, "lognormal:sigma=0.5", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_hwtrain_session *s1 = xb_hwtrain_session_new(&h1, m, 3), *s2 = xb_hwtrain_session_new(&h2, m, 3);
    double m1 = 0, m2 = 0, m4 = 0, worst = 0;
    size_t tail = 0, n = 0;
    for (int pass = 0; pass < 5; pass++) {
        CHECK(xb_hwtrain_forward(s1, m, f1, 0, &err) == XB_OK, "%s", err.msg);
        CHECK(xb_hwtrain_forward(s2, m, f2, 0, &err) == XB_OK, "%s", err.msg);
        for (size_t i = 0; i < nw; i++, n++) {
            double z = log(f1->W[0][i]) / 0.25;
            m1 += z, m2 += z * z, m4 += z * z * z * z;
            tail += fabs(z) > 3.6541528853610088;
            double e = fabs(f2->W[0][i] / (f1->W[0][i] * f1->W[0][i]) - 1);
            worst = e > worst ? e : worst;
        }
    }
    double N = (double)n;
    /* 1e6 draws: the mean's standard error 1e-3, the variance's 1.4e-3, the fourth moment's 1e-2; the
     * tail count beyond the 256-layer ziggurat's R = 3.6542 is Poisson with mean 258 (2 (1 - Phi(R))),
     * sd 16. */
    CHECK_ABS(m1 / N, 0.0, 5e-3, "normal mean");
    CHECK_ABS(m2 / N, 1.0, 7e-3, "normal variance");
    CHECK_ABS(m4 / N, 3.0, 5e-2, "normal fourth moment");
    CHECK_ABS((double)tail, 2.5803e-4 * N, 5 * 16.0, "draws beyond the ziggurat's base R");
    /* Each factor within 5e-14 of exp (the degree-4 polynomial's bound): the identity to 1.5e-13. */
    CHECK(worst < 1.5e-13, "exp(2a) = exp(a)^2 to %.3g (want < 1.5e-13)", worst);
    /* Same seed, same draws; another seed, others. */
    xb_hwtrain_session *s3 = xb_hwtrain_session_new(&h1, m, 3), *s4 = xb_hwtrain_session_new(&h1, m, 4);
    xb_hwtrain_forward(s3, m, f1, 0, &err);
    xb_hwtrain_forward(s4, m, f2, 0, &err);
    xb_mlp *again = xb_mlp_clone(f1);
    xb_hwtrain_session_free(&s3);
    s3 = xb_hwtrain_session_new(&h1, m, 3);
    xb_hwtrain_forward(s3, m, again, 0, &err);
    CHECK(same_weights(again, f1), "the same seed draws the same noise");
    CHECK(!same_weights(f2, f1), "another seed draws other noise");
    xb_mlp_free(&again);
    xb_hwtrain_session_free(&s1);
    xb_hwtrain_session_free(&s2);
    xb_hwtrain_session_free(&s3);
    xb_hwtrain_session_free(&s4);
    xb_hwtrain_clear(&h1);
    xb_hwtrain_clear(&h2);
    xb_mlp_free(&m);
    xb_mlp_free(&f1);
    xb_mlp_free(&f2);
}

/* Dropout's gradient against central differences with the same mask (the generator re-seeded before
 * every pass), and the mask's keep rate. */
static void test_dropout_gradient(void)
{
    xb_mlp *m = net(XB_ACT_SIGMOID, 4);
    double X[32];
    unsigned char y[8];
    batch(X, y);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    xb_mlp_pass pass = {.dropout = 0.4, .rng = rng};
    xb_mlp *g = xb_mlp_clone(m);
    xb_mlp_work *w = xb_mlp_work_new(m, 8);
    gsl_rng_set(rng, 8);
    xb_mlp_loss_grad_pass(m, X, y, 8, g, NULL, w, &pass);
    const double h = 1e-6;
    double worst = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < SIZES[k] * SIZES[k + 1] + SIZES[k + 1]; i++) {
            double *p = param(m, k, i), keep = *p;
            *p = keep + h;
            gsl_rng_set(rng, 8);
            double lp = xb_mlp_loss_grad_pass(m, X, y, 8, NULL, NULL, w, &pass);
            *p = keep - h;
            gsl_rng_set(rng, 8);
            double lm = xb_mlp_loss_grad_pass(m, X, y, 8, NULL, NULL, w, &pass);
            *p = keep;
            double num = (lp - lm) / (2 * h), an = *param(g, k, i);
            worst = fmax(worst, fabs(num - an) / fmax(1e-4, fabs(num) + fabs(an)));
        }
    CHECK(worst < 1e-5, "dropout gradient: worst relative error %.3g >= 1e-5", worst);
    /* pass NULL is the plain pass. */
    double a = xb_mlp_loss_grad(m, X, y, 8, NULL, NULL, w), b = xb_mlp_loss_grad_pass(m, X, y, 8, NULL, NULL, w, NULL);
    CHECK(a == b, "a NULL pass is the plain pass (%.17g vs %.17g)", a, b);
    xb_mlp_work_free(&w);
    xb_mlp_free(&g);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* Adam, dropout and clipping train the blobs; each is deterministic for a seed. */
static void test_optimizers(void)
{
    xb_dataset *d = blobs(600, 4);
    xb_error err = {0};
    struct { const char *what; int adam; double dropout, clip, lr; } cases[] = {
        {"adam", 1, 0, 0, 0.01}, {"sgd + dropout 0.2", 0, 0.2, 0, 0.1}, {"adam + clip 0.5", 1, 0, 0.5, 0.01}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        xb_train_options o;
        defaults(&o);
        o.epochs = 8;
        o.optimizer = cases[c].adam ? XB_OPT_ADAM : XB_OPT_SGD;
        o.dropout = cases[c].dropout;
        o.grad_clip = cases[c].clip;
        o.lr = cases[c].lr;
        xb_mlp *a = xb_mlp_new(2, SIZES, XB_ACT_RELU), *b = xb_mlp_new(2, SIZES, XB_ACT_RELU);
        CHECK(xb_train(a, d, &o, NULL, &err) == XB_OK, "%s: %s", cases[c].what, err.msg);
        xb_train(b, d, &o, NULL, &err);
        CHECK(same_weights(a, b), "%s: same seed, same weights", cases[c].what);
        size_t *rows = malloc(d->n * sizeof *rows);
        for (size_t i = 0; i < d->n; i++)
            rows[i] = i;
        double acc = 0;
        xb_accuracy(a, d, rows, d->n, &acc, &err);
        /* The blobs are 3 sigma apart: a working trainer gets nearly all; chance is 1/3. */
        CHECK(acc > 0.95, "%s: training accuracy %.3f <= 0.95", cases[c].what, acc);
        free(rows);
        xb_mlp_free(&a);
        xb_mlp_free(&b);
    }
    xb_train_options o;
    defaults(&o);
    o.dropout = 1.0;
    xb_mlp *m = xb_mlp_new(2, SIZES, XB_ACT_RELU);
    CHECK(xb_train(m, d, &o, NULL, &err) == XB_EINPUT && strstr(err.msg, "dropout"), "dropout 1 refused: %s",
          err.msg);
    xb_mlp_free(&m);
    xb_dataset_free(&d);
}

static void test_parse_errors(void)
{
    xb_error err = {0};
    xb_hwtrain hw;
    struct { const char *noise, *levels, *norm, *act, *want; } bad[] = {
        {"d2d:sigma=0.1", "none", NULL, NULL, "programmed conductances"},
        {"stuck:lrs=0.1", "none", NULL, NULL, "programmed conductances"},
        {"lognormal:sigma=-1", "none", NULL, NULL, "--train-noise, layer 1"},
        {"none/none/none", "none", NULL, NULL, "3 specs for a network of 2 layers"},
        {"none", "bits:99", NULL, NULL, "--train-levels, layer 1"},
        {"none", "none/device", NULL, NULL, "needs a device file"},
        {"none", "none", "clip:-1", NULL, "--train-norm"},
        {"none", "none", NULL, "4:fast", "B:dynamic"},
        {"none", "none", NULL, "0:dynamic", "bits B in 1..16"},
        {"lognormal:sigma=0.1+mult:alpha=0.1+mult:alpha=0.1+mult:alpha=0.1+mult:alpha=0.1", "none", NULL, NULL,
         "more than 4"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        err.msg[0] = '\0';
        int rc = xb_hwtrain_parse(&hw, 2, bad[c].noise, bad[c].levels, bad[c].norm, INFINITY, 0, bad[c].act, NULL,
                                  &err);
        CHECK(rc == XB_EINPUT && strstr(err.msg, bad[c].want), "%s / %s: rc %d, message \"%s\" lacks \"%s\"",
              bad[c].noise, bad[c].levels, rc, err.msg, bad[c].want);
        xb_hwtrain_clear(&hw);
    }
    CHECK(xb_hwtrain_parse(&hw, 2, "none", "none", NULL, 0, 0, NULL, NULL, &err) == XB_EINPUT, "t_c 0 refused");
    CHECK(xb_hwtrain_parse(&hw, 2, "lognormal:sigma=0.5/additive:sigma=0.1", "nnary:3:0.1:0.1/none", "none", 1.0, 3,
                           "4:dynamic", NULL, &err) == XB_OK, "per-layer settings: %s", err.msg);
    CHECK(hw.layer[0].n_models == 1 && hw.layer[1].n_models == 1 && hw.layer[0].levels && !hw.layer[1].levels &&
              hw.act_bits == 4 && hw.act_scale == 0, "per-layer settings parsed");
    xb_hwtrain_clear(&hw);
}

/* Activation quantization: constant step and dynamic (per-batch) scaling put every hidden activation
 * on its grid. */
static void test_act_quant(void)
{
    xb_error err = {0};
    xb_mlp *m = net(XB_ACT_SIGMOID, 2);
    const char *specs[] = {"3:0.1", "4:dynamic"};
    for (int c = 0; c < 2; c++) {
        xb_hwtrain hw;
        CHECK(xb_hwtrain_parse(&hw, 2, "none", "none", NULL, INFINITY, 0, specs[c], NULL, &err) == XB_OK, "%s",
              err.msg);
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 1);
        xb_train_hooks hk;
        xb_hwtrain_hooks(s, &hk);
        double a[40];
        for (int i = 0; i < 40; i++)
            a[i] = 0.025 * i;
        hk.on_act(hk.ctx, 0, a, 4, 10);
        double step = c == 0 ? 0.1 : 0.975 / 15, worst = 0, top = 0;
        for (int i = 0; i < 40; i++) {
            double q = a[i] / step;
            worst = fmax(worst, fabs(q - round(q)));
            top = fmax(top, a[i]);
        }
        CHECK(worst < 1e-9, "%s: activations on the grid of step %g (off by %.3g steps)", specs[c], step, worst);
        CHECK(c == 0 ? fabs(top - 0.7) < 1e-12 : fabs(top - 0.975) < 1e-12,
              "%s: the top code (constant: 7 x 0.1 clamps; dynamic: the batch maximum) got %g", specs[c], top);
        xb_hwtrain_session_free(&s);
        xb_hwtrain_clear(&hw);
    }
    xb_mlp_free(&m);
}

/* The three code paths of the multiplicative draws (AVX-512, AVX2 and the x86-64 baseline) give
 * bit-identical forward networks, on a layer whose 380 values end inside a group of eight lanes, over
 * enough passes that every lane takes the ziggurat's slow path; and the lognormal factor is exp of sigma
 * times the same normal as mult's: with alpha = 1 mult draws 1 + z, so exp(sigma ((1 + z) - 1))
 * recovers the lognormal factor to the rounding of 1 + z (|z| < 15: 1.8e-15 absolute, times sigma =
 * 0.25) and the table exp's own error (its degree-4 polynomial: below 5e-14 relative of libm's exp). */
static void test_noise_paths(void)
{
    const size_t sz[2] = {37, 10};
    xb_mlp *m = xb_mlp_new(1, sz, XB_ACT_IDENTITY), *a = xb_mlp_new(1, sz, XB_ACT_IDENTITY),
           *b = xb_mlp_new(1, sz, XB_ACT_IDENTITY);
    for (size_t i = 0; i < 370; i++)
        m->W[0][i] = 0.5 + 0.01 * (double)i;
    for (size_t i = 0; i < 10; i++)
        m->b[0][i] = -1.0 + 0.1 * (double)i;
    xb_error err = {0};
    const char *specs[] = {"lognormal:sigma=0.6", "mult:alpha=0.3", "lognormal:sigma=0.3+mult:alpha=0.1"};
    int widest = 0;
    for (size_t c = 0; c < sizeof specs / sizeof *specs; c++) {
        xb_hwtrain hw;
        xb_hwtrain_parse(&hw, 1, specs[c], "none", NULL, INFINITY, 0, NULL, NULL, &err);
        xb_hwtrain_session *s0 = xb_hwtrain_session_new(&hw, m, 5);
        CHECK(xb_hwtrain_session_simd(s0, 0) == 0, "the baseline path can be forced");
        for (int level = 1; level <= 2; level++) {
            xb_hwtrain_session *s1 = xb_hwtrain_session_new(&hw, m, 5), *sb = xb_hwtrain_session_new(&hw, m, 5);
            int path = xb_hwtrain_session_simd(s1, level);
            xb_hwtrain_session_simd(sb, 0);
            CHECK(path >= 0 && path <= level, "path %d runs for level %d", path, level);
            widest = path > widest ? path : widest;
            int same = 1;
            for (int pass = 0; pass < 50 && same; pass++) { /* 19000 draws: the slow path on every lane */
                xb_hwtrain_forward(s1, m, a, 0, &err);
                xb_hwtrain_forward(sb, m, b, 0, &err);
                same = same_weights(a, b);
            }
            CHECK(same, "%s: the path %d (asked %d) and the baseline draw the same values", specs[c], path, level);
            xb_hwtrain_session_free(&s1);
            xb_hwtrain_session_free(&sb);
        }
        xb_hwtrain_session_free(&s0);
        xb_hwtrain_clear(&hw);
    }
    printf("test_noise_paths: the widest path here: %s\n", widest == 2 ? "AVX-512" : widest == 1 ? "AVX2" : "baseline");

    const size_t big[2] = {1000, 100};
    xb_mlp *one = xb_mlp_new(1, big, XB_ACT_IDENTITY), *fl = xb_mlp_new(1, big, XB_ACT_IDENTITY),
           *fm = xb_mlp_new(1, big, XB_ACT_IDENTITY);
    for (size_t i = 0; i < 100000; i++)
        one->W[0][i] = 1;
    for (size_t i = 0; i < 100; i++)
        one->b[0][i] = 1;
    xb_hwtrain hl, hm;
    xb_hwtrain_parse(&hl, 1, "lognormal:sigma=0.25", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_hwtrain_parse(&hm, 1, "mult:alpha=1", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    xb_hwtrain_session *sl = xb_hwtrain_session_new(&hl, one, 9), *sm = xb_hwtrain_session_new(&hm, one, 9);
    xb_hwtrain_forward(sl, one, fl, 0, &err);
    xb_hwtrain_forward(sm, one, fm, 0, &err);
    double worst = 0, zmax = 0;
    for (size_t i = 0; i < 100100; i++) {
        double gl = i < 100000 ? fl->W[0][i] : fl->b[0][i - 100000];
        double z = (i < 100000 ? fm->W[0][i] : fm->b[0][i - 100000]) - 1.0;
        worst = fmax(worst, fabs(gl / exp(0.25 * z) - 1));
        zmax = fmax(zmax, fabs(z));
    }
    CHECK(worst < 6e-14, "lognormal factor = exp(sigma z) of the mult draw z to %.3g (want < 6e-14)", worst);
    CHECK(worst > 1e-16, "the factors are not libm's exp itself (worst %.3g): the test compares two computations",
          worst);
    CHECK(zmax > 3.5 && zmax < 15, "normals reach past the ziggurat's base and stay below 15 (max |z| %g)", zmax);
    xb_hwtrain_session_free(&sl);
    xb_hwtrain_session_free(&sm);
    xb_hwtrain_clear(&hl);
    xb_hwtrain_clear(&hm);
    xb_mlp_free(&one);
    xb_mlp_free(&fl);
    xb_mlp_free(&fm);
    xb_mlp_free(&m);
    xb_mlp_free(&a);
    xb_mlp_free(&b);
}

/* The helper thread that draws the next pass's multiplicative factors changes no value: sessions with
 * and without it give bit-identical forward networks and master gradients, pass after pass, across the
 * epochs of a noise ramp (whose spreads change at each epoch boundary: the guessed draws are redrawn),
 * with two models on a layer, quantization with the STE threshold and an additive model beside them. */
static void test_noise_prefetch(void)
{
    const size_t sz[3] = {30, 7, 3};
    xb_mlp *m = xb_mlp_new(2, sz, XB_ACT_RELU);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 4);
    xb_mlp_init(m, rng);
    xb_mlp *fa = xb_mlp_clone(m), *fb = xb_mlp_clone(m), *ga = xb_mlp_clone(m), *gb = xb_mlp_clone(m);
    xb_error err = {0};
    xb_hwtrain hw;
    CHECK(xb_hwtrain_parse(&hw, 2, "lognormal:sigma=0.4+mult:alpha=0.1+additive:sigma=0.01/mult:alpha=0.2",
                           "bits:4/none", NULL, 0.9, 2, NULL, NULL, &err) == XB_OK, "%s", err.msg);
    xb_hwtrain_session *a = xb_hwtrain_session_new(&hw, m, 11), *b = xb_hwtrain_session_new(&hw, m, 11);
    int helper = xb_hwtrain_session_prefetch(a, 1);
    CHECK(xb_hwtrain_session_prefetch(b, 0) == 0, "the helper can be switched off");
    CHECK(xb_hwtrain_session_prefetch(b, -1) == 0 && xb_hwtrain_session_prefetch(a, -1) == helper,
          "asking (-1) tells whether the helper runs and changes nothing");
    const size_t epochs[] = {0, 0, 0, 1, 1, 2, 2, 2, 0};
    int same = 1;
    for (size_t t = 0; t < sizeof epochs / sizeof *epochs; t++) {
        CHECK(xb_hwtrain_forward(a, m, fa, epochs[t], &err) == XB_OK, "%s", err.msg);
        CHECK(xb_hwtrain_forward(b, m, fb, epochs[t], &err) == XB_OK, "%s", err.msg);
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < sz[k] * sz[k + 1]; i++)
                ga->W[k][i] = gb->W[k][i] = 1.0 + (double)i;
            for (size_t i = 0; i < sz[k + 1]; i++)
                ga->b[k][i] = gb->b[k][i] = -1.0 - (double)i;
        }
        xb_hwtrain_master_grad(a, ga);
        xb_hwtrain_master_grad(b, gb);
        same &= same_weights(fa, fb) && same_weights(ga, gb);
        for (int k = 0; k < 2; k++) /* the master weights move between passes, as in training */
            for (size_t i = 0; i < sz[k] * sz[k + 1]; i++)
                m->W[k][i] *= 0.999;
    }
    CHECK(same, "with the helper thread (%s) and without: the same forward networks and gradients",
          helper ? "running" : "not started");
    xb_hwtrain_session_free(&a);
    xb_hwtrain_session_free(&b);
    xb_hwtrain_clear(&hw);
    gsl_rng_free(rng);
    xb_mlp_free(&m);
    xb_mlp_free(&fa);
    xb_mlp_free(&fb);
    xb_mlp_free(&ga);
    xb_mlp_free(&gb);
}

int main(void)
{
    test_noise_off_is_plain();
    test_gradients();
    test_trained_on_levels();
    test_noise_moments();
    test_noise_generator();
    test_noise_paths();
    test_noise_prefetch();
    test_dropout_gradient();
    test_optimizers();
    test_parse_errors();
    test_act_quant();
    return check_summary("test_hwtrain");
}
