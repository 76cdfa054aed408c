// hwtrain: noised and quantization-aware training through the test-time perturbations and level sets
#include "hwtrain.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

/* Count the '/'-separated parts of spec. */
static int count_parts(const char *spec)
{
    int n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == '/';
    return n;
}

/* Part l of a '/'-separated spec with n_parts parts (one part serves every layer) into buf. */
static int spec_part(const char *spec, int n_parts, int l, char *buf, size_t size)
{
    const char *p = spec;
    for (int i = 0; i < (n_parts == 1 ? 0 : l); i++)
        p = strchr(p, '/') + 1;
    size_t len = strcspn(p, "/");
    if (len >= size)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

static int parse_layer_noise(const char *opt, int l, char *text, xb_hw_layer *L, xb_error *err)
{
    L->n_models = 0;
    if (!strcmp(text, "none"))
        return XB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(text, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
        if (L->n_models == XB_HW_MAX_MODELS)
            return xb_fail(err, XB_EINPUT, "%s: layer %d joins more than %d models with '+'", opt, l + 1,
                           XB_HW_MAX_MODELS);
        xb_perturb p;
        int rc = xb_perturb_parse(tok, &p, err);
        if (rc)
            return xb_error_prefix(err, "%s, layer %d", opt, l + 1);
        if (xb_perturb_on_conductances(&p))
            return xb_fail(err, XB_EINPUT, "%s, layer %d: \"%s\" acts on programmed conductances, which training "
                           "does not have; allowed in training: lognormal, mult, c2c, c2c-level, additive, none "
                           "(the weight-domain form of d2d:sigma=S is mult:alpha=S)", opt, l + 1, tok);
        if (p.kind != XB_PERTURB_NONE)
            L->model[L->n_models++] = p;
    }
    return XB_OK;
}

static int levelset_for_layer(const char *text, const xb_device *dev, xb_levelset **out, xb_error *err)
{
    if (!strcmp(text, "device")) {
        if (!dev)
            return xb_fail(err, XB_EINPUT, "level set \"device\" needs a device file (--device FILE)");
        return xb_levelset_from_device(dev, out, err);
    }
    return xb_levelset_parse(text, out, err);
}

static int parse_act(xb_hwtrain *hw, const char *act, xb_error *err)
{
    hw->act_bits = 0;
    hw->act_scale = 0;
    if (!act || !strcmp(act, "none"))
        return XB_OK;
    char *end;
    errno = 0;
    long bits = strtol(act, &end, 10);
    int ok = end != act && *end == ':' && errno == 0 && bits >= 1 && bits <= 16;
    double s = 0;
    if (ok && strcmp(end + 1, "dynamic") != 0) {
        char *e2;
        s = strtod(end + 1, &e2);
        ok = e2 != end + 1 && *e2 == '\0' && isfinite(s) && s > 0;
    }
    if (!ok)
        return xb_fail(err, XB_EINPUT, "activation quantization \"%s\": expected none, B:dynamic or B:S with bits "
                       "B in 1..16 and a constant step S > 0, e.g. 4:dynamic or 8:0.01", act);
    hw->act_bits = (int)bits;
    hw->act_scale = s;
    return XB_OK;
}

int xb_hwtrain_parse(xb_hwtrain *hw, int n_layers, const char *noise, const char *levels, const char *norm,
                     double t_c, size_t noise_ramp, const char *act, const xb_device *dev, xb_error *err)
{
    memset(hw, 0, sizeof *hw);
    hw->t_c = INFINITY;
    if (n_layers < 1 || n_layers > XB_HW_MAX_LAYERS)
        return xb_fail(err, XB_EINPUT, "hardware-aware training: %d weight layers; allowed 1..%d", n_layers,
                       XB_HW_MAX_LAYERS);
    hw->n_layers = n_layers;
    noise = noise ? noise : "none";
    levels = levels ? levels : "none";
    norm = norm ? norm : "maxabs";
    act = act ? act : "none";
    snprintf(hw->noise_spec, sizeof hw->noise_spec, "%s", noise);
    snprintf(hw->levels_spec, sizeof hw->levels_spec, "%s", levels);
    snprintf(hw->norm_spec, sizeof hw->norm_spec, "%s", norm);
    snprintf(hw->act_spec, sizeof hw->act_spec, "%s", act);
    if (strlen(noise) >= sizeof hw->noise_spec || strlen(levels) >= sizeof hw->levels_spec)
        return xb_fail(err, XB_EINPUT, "hardware-aware training: a noise or level spec is longer than %zu characters",
                       sizeof hw->noise_spec - 1);
    int rc;
    if ((rc = xb_norm_parse(norm, &hw->norm, err)))
        return xb_error_prefix(err, "--train-norm");
    if (!(t_c > 0))
        return xb_fail(err, XB_EINPUT, "--ste-threshold %g: the gradient threshold t_c must be > 0 (inf: none)", t_c);
    hw->t_c = t_c;
    hw->noise_ramp = noise_ramp;
    if ((rc = parse_act(hw, act, err)))
        return rc;
    const char *specs[2] = {noise, levels}, *opts[2] = {"--train-noise", "--train-levels"};
    for (int which = 0; which < 2; which++) {
        int parts = count_parts(specs[which]);
        if (parts != 1 && parts != n_layers) {
            xb_hwtrain_clear(hw);
            return xb_fail(err, XB_EINPUT, "%s '%s': %d specs for a network of %d layer%s; give one for every layer "
                           "or one per layer, separated by '/'", opts[which], specs[which], parts, n_layers,
                           n_layers == 1 ? "" : "s");
        }
        for (int l = 0; l < n_layers; l++) {
            char buf[1024];
            spec_part(specs[which], parts, l, buf, sizeof buf);
            if (which == 0)
                rc = parse_layer_noise(opts[0], l, buf, &hw->layer[l], err);
            else if (strcmp(buf, "none") != 0) {
                rc = levelset_for_layer(buf, dev, &hw->layer[l].levels, err);
                if (rc)
                    xb_error_prefix(err, "%s, layer %d", opts[1], l + 1);
            }
            if (rc) {
                xb_hwtrain_clear(hw);
                return rc;
            }
        }
    }
    return XB_OK;
}

void xb_hwtrain_clear(xb_hwtrain *hw)
{
    if (!hw)
        return;
    for (int l = 0; l < XB_HW_MAX_LAYERS; l++) {
        xb_levelset_free(&hw->layer[l].levels);
        hw->layer[l].n_models = 0;
    }
    hw->act_bits = 0;
}

int xb_hwtrain_active(const xb_hwtrain *hw)
{
    if (!hw)
        return 0;
    for (int l = 0; l < hw->n_layers; l++)
        if (hw->layer[l].n_models || (hw->layer[l].levels && hw->layer[l].levels->kind != XB_LEVELS_NONE))
            return 1;
    return hw->act_bits > 0;
}

struct xb_hwtrain_session {
    const xb_hwtrain *hw;
    int n_layers;
    gsl_rng *rng;
    double ramp;      /* the noise spreads' share in the current epoch */
    double **cat;     /* per layer: [W; b] of the forward pass being built */
    double **factor;  /* per layer: d fwd / d master for [W; b] (0 where the STE masks) */
    double *tmp;      /* widest layer */
    int *has_factor;  /* 0: every factor of the layer is 1 */
};

void xb_hwtrain_session_free(xb_hwtrain_session **sp)
{
    if (!sp || !*sp)
        return;
    xb_hwtrain_session *s = *sp;
    for (int l = 0; l < s->n_layers; l++) {
        if (s->cat)
            free(s->cat[l]);
        if (s->factor)
            free(s->factor[l]);
    }
    free(s->cat);
    free(s->factor);
    free(s->tmp);
    free(s->has_factor);
    gsl_rng_free(s->rng);
    free(s);
    *sp = NULL;
}

xb_hwtrain_session *xb_hwtrain_session_new(const xb_hwtrain *hw, const xb_mlp *m, unsigned long seed)
{
    if (hw->n_layers != m->n_layers)
        return NULL;
    xb_hwtrain_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hw = hw;
    s->n_layers = m->n_layers;
    s->ramp = 1.0;
    s->rng = gsl_rng_alloc(gsl_rng_mt19937);
    s->cat = calloc((size_t)m->n_layers, sizeof *s->cat);
    s->factor = calloc((size_t)m->n_layers, sizeof *s->factor);
    s->has_factor = calloc((size_t)m->n_layers, sizeof *s->has_factor);
    size_t widest = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1] > widest)
            widest = m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1];
    s->tmp = malloc(widest * sizeof *s->tmp);
    if (!s->rng || !s->cat || !s->factor || !s->has_factor || !s->tmp) {
        xb_hwtrain_session_free(&s);
        return NULL;
    }
    for (int l = 0; l < m->n_layers; l++) {
        size_t n = m->sizes[l] * m->sizes[l + 1] + m->sizes[l + 1];
        s->cat[l] = malloc(n * sizeof **s->cat);
        s->factor[l] = malloc(n * sizeof **s->factor);
        if (!s->cat[l] || !s->factor[l]) {
            xb_hwtrain_session_free(&s);
            return NULL;
        }
    }
    gsl_rng_set(s->rng, seed + 2);
    return s;
}

/* The model with its spread scaled by the ramp. */
static xb_perturb ramped(const xb_perturb *p, double r)
{
    xb_perturb q = *p;
    q.sigma *= r;
    q.alpha *= r;
    return q;
}

int xb_hwtrain_forward(xb_hwtrain_session *s, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err)
{
    const xb_hwtrain *hw = s->hw;
    s->ramp = hw->noise_ramp ? fmin(1.0, (double)(epoch + 1) / (double)hw->noise_ramp) : 1.0;
    for (int l = 0; l < master->n_layers; l++) {
        const xb_hw_layer *L = &hw->layer[l];
        size_t nw = master->sizes[l] * master->sizes[l + 1], nb = master->sizes[l + 1], n = nw + nb;
        double *cat = s->cat[l], *f = s->factor[l], *tmp = s->tmp;
        s->has_factor[l] = 0;
        memcpy(cat + nw, master->b[l], nb * sizeof *cat);
        if (L->levels && L->levels->kind != XB_LEVELS_NONE) {
            double scale = 1;
            int rc = xb_quantize(L->levels, hw->norm, master->W[l], nw, cat, NULL, &scale, err);
            if (rc)
                return xb_error_prefix(err, "quantization-aware training, layer %d", l + 1);
            if (isfinite(hw->t_c)) {
                /* The paper's STE (4): no gradient on weights beyond the threshold. */
                for (size_t i = 0; i < nw; i++)
                    f[i] = fabs(master->W[l][i] / scale) <= hw->t_c ? 1.0 : 0.0;
                for (size_t i = nw; i < n; i++)
                    f[i] = 1.0;
                s->has_factor[l] = 1;
            }
        } else {
            memcpy(cat, master->W[l], nw * sizeof *cat);
        }
        for (int i = 0; i < L->n_models; i++) {
            if (xb_perturb_on_outputs(&L->model[i]))
                continue;
            xb_perturb p = ramped(&L->model[i], s->ramp);
            if (!s->has_factor[l]) {
                for (size_t j = 0; j < n; j++)
                    f[j] = 1.0;
                s->has_factor[l] = 1;
            }
            int rc;
            switch (p.kind) {
            case XB_PERTURB_LOGNORMAL:
            case XB_PERTURB_MULT:
                /* Multiplicative: draw the factors themselves (1 * g = g exactly, so cat * g is the
                 * test-time product), and they are also the derivative. */
                for (size_t j = 0; j < n; j++)
                    tmp[j] = 1.0;
                rc = xb_perturb_apply(&p, s->rng, tmp, n, NULL, err);
                for (size_t j = 0; !rc && j < n; j++) {
                    cat[j] *= tmp[j];
                    f[j] *= tmp[j];
                }
                break;
            case XB_PERTURB_C2C_LEVEL:
                /* w' = w + sigma |w| N, so dw'/dw = 1 + sigma sign(w) N = w' / w (1 where w = 0). */
                memcpy(tmp, cat, n * sizeof *tmp);
                rc = xb_perturb_apply(&p, s->rng, cat, n, NULL, err);
                for (size_t j = 0; !rc && j < n; j++)
                    if (tmp[j] != 0)
                        f[j] *= cat[j] / tmp[j];
                break;
            default: /* c2c: additive with the scale held constant, derivative 1 */
                rc = xb_perturb_apply(&p, s->rng, cat, n, NULL, err);
                break;
            }
            if (rc)
                return xb_error_prefix(err, "noised training, layer %d", l + 1);
        }
        memcpy(fwd->W[l], cat, nw * sizeof *cat);
        memcpy(fwd->b[l], cat + nw, nb * sizeof *cat);
    }
    return XB_OK;
}

void xb_hwtrain_master_grad(xb_hwtrain_session *s, xb_mlp *grad)
{
    for (int l = 0; l < grad->n_layers; l++) {
        if (!s->has_factor[l])
            continue;
        size_t nw = grad->sizes[l] * grad->sizes[l + 1], nb = grad->sizes[l + 1];
        const double *f = s->factor[l];
        for (size_t i = 0; i < nw; i++)
            grad->W[l][i] *= f[i];
        for (size_t i = 0; i < nb; i++)
            grad->b[l][i] *= f[nw + i];
    }
}

static int hook_forward(void *ctx, const xb_mlp *master, xb_mlp *fwd, size_t epoch, xb_error *err)
{
    return xb_hwtrain_forward(ctx, master, fwd, epoch, err);
}

static void hook_grad(void *ctx, const xb_mlp *master, const xb_mlp *fwd, xb_mlp *grad)
{
    (void)master;
    (void)fwd;
    xb_hwtrain_master_grad(ctx, grad);
}

static void hook_preact(void *ctx, int k, double *z, size_t n, size_t fan_out)
{
    xb_hwtrain_session *s = ctx;
    const xb_hw_layer *L = &s->hw->layer[k];
    for (int i = 0; i < L->n_models; i++) {
        if (!xb_perturb_on_outputs(&L->model[i]))
            continue;
        xb_perturb p = ramped(&L->model[i], s->ramp);
        /* Checked when parsed: additive with a finite sigma >= 0 cannot fail. */
        xb_perturb_apply(&p, s->rng, z, n * fan_out, NULL, NULL);
    }
}

static void hook_act(void *ctx, int k, double *a, size_t n, size_t fan_out)
{
    (void)k;
    xb_hwtrain_session *s = ctx;
    int bits = s->hw->act_bits;
    if (!bits)
        return;
    size_t cnt = n * fan_out;
    double q_max = (double)((1L << bits) - 1), step = s->hw->act_scale;
    if (!(step > 0)) {
        double top = 0;
        for (size_t i = 0; i < cnt; i++)
            top = a[i] > top ? a[i] : top;
        if (!(top > 0))
            return;
        step = top / q_max;
    }
    for (size_t i = 0; i < cnt; i++) {
        double q = round(a[i] / step);
        a[i] = step * (q < 0 ? 0 : q > q_max ? q_max : q);
    }
}

static int hook_deployed(void *ctx, const xb_mlp *master, xb_mlp *out, xb_error *err)
{
    xb_hwtrain_session *s = ctx;
    for (int l = 0; l < master->n_layers; l++) {
        memcpy(out->W[l], master->W[l], master->sizes[l] * master->sizes[l + 1] * sizeof **out->W);
        memcpy(out->b[l], master->b[l], master->sizes[l + 1] * sizeof **out->b);
    }
    return xb_hwtrain_deploy(s->hw, out, err);
}

void xb_hwtrain_hooks(xb_hwtrain_session *s, xb_train_hooks *h)
{
    *h = (xb_train_hooks){.ctx = s, .forward_weights = hook_forward, .master_grad = hook_grad,
                          .on_preact = hook_preact, .on_act = s->hw->act_bits ? hook_act : NULL,
                          .deployed = hook_deployed};
}

int xb_hwtrain_deploy(const xb_hwtrain *hw, xb_mlp *m, xb_error *err)
{
    for (int l = 0; l < m->n_layers && l < hw->n_layers; l++) {
        const xb_levelset *ls = hw->layer[l].levels;
        if (!ls || ls->kind == XB_LEVELS_NONE)
            continue;
        int rc = xb_quantize(ls, hw->norm, m->W[l], m->sizes[l] * m->sizes[l + 1], m->W[l], NULL, NULL, err);
        if (rc)
            return xb_error_prefix(err, "deploying layer %d onto %s", l + 1, ls->name);
    }
    return XB_OK;
}

int xb_hwtrain_train(xb_mlp *m, const xb_dataset *d, const xb_train_options *o, const xb_hwtrain *hw,
                     xb_epoch_stats *stats, xb_error *err)
{
    if (!xb_hwtrain_active(hw))
        return xb_train(m, d, o, stats, err);
    if (hw->n_layers != m->n_layers)
        return xb_fail(err, XB_EINPUT, "hardware-aware training settings are for %d layers, the network has %d",
                       hw->n_layers, m->n_layers);
    xb_hwtrain_session *s = xb_hwtrain_session_new(hw, m, o->seed);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "out of memory setting up hardware-aware training");
    xb_train_hooks hooks;
    xb_hwtrain_hooks(s, &hooks);
    xb_train_options oo = *o;
    oo.hooks = &hooks;
    int rc = xb_train(m, d, &oo, stats, err);
    if (!rc)
        rc = xb_hwtrain_deploy(hw, m, err);
    xb_hwtrain_session_free(&s);
    return rc;
}

void xb_hwtrain_write_json(const xb_hwtrain *hw, unsigned long seed, xb_json *j, const char *key)
{
    xb_json_object_begin(j, key);
    xb_json_string(j, "noise", hw->noise_spec);
    xb_json_array_begin(j, "noise_per_layer");
    for (int l = 0; l < hw->n_layers; l++) {
        char buf[XB_HW_MAX_MODELS * 64] = "none";
        size_t at = 0;
        for (int i = 0; i < hw->layer[l].n_models && at < sizeof buf; i++) {
            if (i)
                buf[at++] = '+';
            int w = xb_perturb_format(&hw->layer[l].model[i], buf + at, sizeof buf - at);
            at += w > 0 ? (size_t)w : 0;
        }
        xb_json_string(j, NULL, buf);
    }
    xb_json_array_end(j);
    xb_json_string(j, "levels", hw->levels_spec);
    xb_json_array_begin(j, "levels_per_layer");
    for (int l = 0; l < hw->n_layers; l++)
        xb_json_string(j, NULL, hw->layer[l].levels ? hw->layer[l].levels->name : "none");
    xb_json_array_end(j);
    xb_json_string(j, "normalization", hw->norm_spec);
    xb_json_number(j, "ste_threshold", hw->t_c); /* null: none */
    xb_json_int(j, "noise_ramp_epochs", (long long)hw->noise_ramp);
    xb_json_string(j, "activation_quantization", hw->act_spec);
    xb_json_string(j, "noise_rng", "mt19937");
    xb_json_number(j, "noise_seed", (double)(seed + 2));
    xb_json_object_end(j);
}
