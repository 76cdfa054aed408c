// tb_config: one testbench point's configuration (xb_tb_config_of): each parameter's value read, checked and resolved
#define _GNU_SOURCE
#include "tb_private.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hwtrain.h"
#include "mc.h"
#include "mlp.h"
#include "train.h"

typedef struct cfg_reader {
    const xb_tb *tb;
    const setting **v;
    size_t n;
    xb_error *err;
} cfg_reader;

/* The setting for key.attr and where it came from, or NULL for the default. */
static const setting *get(cfg_reader *r, const char *key, const char *attr)
{
    return tb_lookup(r->v, r->n, key, attr);
}

static int bad_value(cfg_reader *r, const setting *s, const char *what)
{
    return xb_fail(r->err, XB_EINPUT, "%s:%d: parameter %s.%s = '%s': %s", r->tb->path, s->line, s->key, s->attr,
                   s->value, what);
}

static int get_double(cfg_reader *r, const char *key, const char *attr, double def, double lo, double hi, double *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    char *end;
    errno = 0;
    double x = strtod(s->value, &end);
    if (errno || end == s->value || *end || !isfinite(x) || x < lo || x > hi) {
        char what[128];
        snprintf(what, sizeof what, "allowed: a number from %g to %g", lo, hi);
        return bad_value(r, s, what);
    }
    *out = x;
    return XB_OK;
}

/* A count; "all" (when all_ok) gives 0. */
static int get_size(cfg_reader *r, const char *key, const char *attr, size_t def, size_t lo, size_t hi, int all_ok,
                    size_t *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    if (all_ok && !strcmp(s->value, "all")) {
        *out = 0;
        return XB_OK;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s->value, &end, 10);
    if (errno || end == s->value || *end || s->value[0] == '-' || x < lo || x > hi) {
        char what[128];
        snprintf(what, sizeof what, "allowed: a whole number from %zu to %zu%s", lo, hi, all_ok ? ", or all" : "");
        return bad_value(r, s, what);
    }
    *out = (size_t)x;
    return XB_OK;
}

static int get_choice(cfg_reader *r, const char *key, const char *attr, const char *const *choices, int def, int *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    char allowed[256] = "allowed: ";
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(s->value, choices[i])) {
            *out = i;
            return XB_OK;
        }
        size_t at = strlen(allowed);
        snprintf(allowed + at, sizeof allowed - at, "%s%s", i ? ", " : "", choices[i]);
    }
    return bad_value(r, s, allowed);
}

/* A path from the file: relative paths are relative to the testbench's folder. */
static int get_path(cfg_reader *r, const char *key, const char *attr, const char *def, char *out, size_t len)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        snprintf(out, len, "%s", def);
        return XB_OK;
    }
    int n = s->value[0] == '/' ? snprintf(out, len, "%s", s->value) : snprintf(out, len, "%s/%s", r->tb->dir, s->value);
    if (n < 0 || (size_t)n >= len)
        return bad_value(r, s, "allowed: a shorter path");
    /* Without . and .. where the path exists (tb->dir is absolute, so the path is too). */
    char *real = realpath(out, NULL);
    if (real && strlen(real) < len)
        snprintf(out, len, "%s", real);
    free(real);
    return XB_OK;
}

static int get_text(cfg_reader *r, const char *key, const char *attr, const char *def, char *out, size_t len)
{
    const setting *s = get(r, key, attr);
    const char *v = s ? s->value : def;
    if (strlen(v) >= len)
        return bad_value(r, s, "allowed: a shorter value");
    snprintf(out, len, "%s", v);
    return XB_OK;
}

/* Check a layer selector's form (which layers exist is checked once the network is known). */
static int check_layers_form(cfg_reader *r, const char *key, char *out, size_t len)
{
    int rc = get_text(r, key, "layers", "all", out, len);
    if (rc)
        return rc;
    unsigned long long mask;
    xb_error tmp = {0};
    if (xb_layers_parse(out, 64, &mask, &tmp)) {
        const setting *s = get(r, key, "layers");
        return bad_value(r, s, "allowed: all, first, last, or layer numbers joined by '+', e.g. 1 or 1+2");
    }
    return XB_OK;
}


static int read_hidden(cfg_reader *r, xb_tb_config *c)
{
    const setting *s = get(r, "network", "hidden");
    const char *v = s ? s->value : "100";
    c->n_hidden = 0;
    if (!strcmp(v, "none") || !strcmp(v, "0"))
        return XB_OK;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < 1 || x > 100000 || (*end && *end != ',') || c->n_hidden == XB_TB_MAX_HIDDEN)
            return bad_value(r, s, "allowed: hidden sizes like 100 or 300,100 (each 1..100000), or none for the SLP");
        c->hidden[c->n_hidden++] = (size_t)x;
        p = *end ? end + 1 : end;
    }
    return XB_OK;
}

/* A convolutional network's hidden layers: network.arch as written, or conv-layers repetitions of
 * conv:FILTERS:KERNEL and its pooling, then the dense hidden layers. */
static int read_arch(cfg_reader *r, xb_tb_config *c)
{
    char arch[1024];
    int rc = get_text(r, "network", "arch", "none", arch, sizeof arch);
    if (rc)
        return rc;
    size_t n_conv, filters, kernel, pool;
    static const char *const kinds[] = {"max", "avg", NULL};
    int kind;
    if ((rc = get_size(r, "network", "conv-layers", 0, 0, 16, 0, &n_conv)) ||
        (rc = get_size(r, "network", "filters", 8, 1, 4096, 0, &filters)) ||
        (rc = get_size(r, "network", "kernel", 3, 1, 64, 0, &kernel)) ||
        (rc = get_size(r, "network", "pool", 2, 0, 64, 0, &pool)) ||
        (rc = get_choice(r, "network", "pool-kind", kinds, 0, &kind)))
        return rc;
    c->layers[0] = '\0';
    c->n_weight_layers = c->n_hidden + 1;
    size_t at = 0;
    if (strcmp(arch, "none")) {
        if (n_conv || get(r, "network", "hidden"))
            return bad_value(r, get(r, "network", "arch"), "network.arch gives every hidden layer: leave out hidden and "
                             "conv-layers, or drop arch");
        snprintf(c->layers, sizeof c->layers, "%s", arch);
    } else if (n_conv) {
        for (size_t i = 0; i < n_conv && at < sizeof c->layers; i++) {
            at += (size_t)snprintf(c->layers + at, sizeof c->layers - at, "%sconv:%zu:%zu", i ? "," : "", filters, kernel);
            if (pool > 1 && at < sizeof c->layers)
                at += (size_t)snprintf(c->layers + at, sizeof c->layers - at, ",%spool:%zu", kinds[kind], pool);
        }
        for (int i = 0; i < c->n_hidden && at < sizeof c->layers; i++)
            at += (size_t)snprintf(c->layers + at, sizeof c->layers - at, ",dense:%zu", c->hidden[i]);
    } else {
        return XB_OK;
    }
    xb_layer_spec ls[XB_MAX_LAYERS];
    int n = 0;
    xb_error why = {0};
    if (xb_layer_list_parse(c->layers, "layers", ls, XB_MAX_LAYERS - 1, &n, &why)) {
        const setting *s = get(r, "network", strcmp(arch, "none") ? "arch" : "conv-layers");
        char what[1400];
        snprintf(what, sizeof what, "allowed: a layer list conv:F:K[:S[:P]], maxpool:K[:S], avgpool:K[:S], flatten, "
                 "dense:N (%s)", why.msg);
        return s ? bad_value(r, s, what) : xb_fail(r->err, XB_EINPUT, "%s: network: %s", r->tb->path, why.msg);
    }
    c->n_weight_layers = n + 1;
    return XB_OK;
}

static int read_perturb(cfg_reader *r, const char *key, xb_tb_config *c)
{
    static const char *const models[] = {"none", "c2c", "c2c-level", "mult", "lognormal", "additive", "d2d", "stuck",
                                         NULL};
    static const xb_perturb_kind kinds[] = {XB_PERTURB_NONE, XB_PERTURB_C2C, XB_PERTURB_C2C_LEVEL, XB_PERTURB_MULT,
                                            XB_PERTURB_LOGNORMAL, XB_PERTURB_ADDITIVE, XB_PERTURB_D2D,
                                            XB_PERTURB_STUCK};
    int m, rc;
    if ((rc = get_choice(r, key, "model", models, 0, &m)))
        return rc;
    xb_tb_perturb *p = &c->perturb[c->n_perturb++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", key);
    p->model.kind = kinds[m];
    double ar = 1, sigma = 0, alpha = 0, lrs = 0, hrs = 0;
    if ((rc = get_double(r, key, "ar", 1, 0, 1, &ar)) || (rc = get_double(r, key, "sigma", 0, 0, 1e6, &sigma)) ||
        (rc = get_double(r, key, "alpha", 0, 0, 1e6, &alpha)) || (rc = get_double(r, key, "lrs", 0, 0, 1, &lrs)) ||
        (rc = get_double(r, key, "hrs", 0, 0, 1, &hrs)))
        return rc;
    /* Parameters a model does not use stay 0, as xb_perturb_parse leaves them. */
    switch (p->model.kind) {
    case XB_PERTURB_C2C:
    case XB_PERTURB_C2C_LEVEL: p->model.ar = ar; p->model.sigma = sigma; break;
    case XB_PERTURB_MULT: p->model.alpha = alpha; break;
    case XB_PERTURB_LOGNORMAL:
    case XB_PERTURB_ADDITIVE:
    case XB_PERTURB_D2D: p->model.sigma = sigma; break;
    case XB_PERTURB_STUCK: p->model.p_lrs = lrs; p->model.p_hrs = hrs; break;
    default: break;
    }
    xb_error why = {0};
    if (xb_perturb_check(&p->model, &why)) {
        const setting *s = get(r, key, "hrs");
        if (!s)
            s = get(r, key, "lrs");
        if (!s)
            s = get(r, key, "model");
        return xb_fail(r->err, XB_EINPUT, "%s:%d: perturbation %s: %s", r->tb->path, s ? s->line : 1, key, why.msg);
    }
    return check_layers_form(r, key, p->layers, sizeof p->layers);
}

/* A copy of a '/'-separated level spec with each part "device" made "none": the device's own levels
 * are read with the point's device (point.c); here only the form of the rest is checked. */
static void without_device(const char *spec, char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (const char *p = spec;;) {
        size_t n = strcspn(p, "/");
        int dev = n == 6 && !strncmp(p, "device", 6);
        at += (size_t)snprintf(out + at, at < len ? len - at : 0, "%s%.*s", p == spec ? "" : "/", dev ? 4 : (int)n,
                               dev ? "none" : p);
        if (!p[n])
            break;
        p += n + 1;
    }
}

static int count_parts(const char *spec)
{
    int n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == '/';
    return n;
}

/* Hardware-aware training (`xbarsim train`'s options, checked by the same parsers: xb_optimizer_parse,
 * xb_hwtrain_parse). Each spec is checked on its own so that a message names the attribute at fault. */
static int read_hwtrain(cfg_reader *r, xb_tb_config *c)
{
    static const char *const optimizers[] = {"sgd", "adam", NULL};
    int rc, choice;
    if ((rc = get_choice(r, "network", "optimizer", optimizers, 0, &choice)))
        return rc;
    c->optimizer = xb_optimizer_parse(optimizers[choice]);
    if ((rc = get_double(r, "network", "dropout", 0, 0, 0.95, &c->dropout)) ||
        (rc = get_double(r, "network", "grad-clip", 0, 0, 1e12, &c->grad_clip)) ||
        (rc = get_double(r, "network", "lr-decay", 1, 1e-6, 1, &c->lr_decay)) ||
        (rc = get_size(r, "network", "lr-step", 1, 1, 100000, 0, &c->lr_step)) ||
        (rc = get_size(r, "network", "noise-ramp", 0, 0, 100000, 0, &c->noise_ramp)) ||
        (rc = get_text(r, "network", "train-noise", "none", c->train_noise, sizeof c->train_noise)) ||
        (rc = get_text(r, "network", "train-levels", "none", c->train_levels, sizeof c->train_levels)) ||
        (rc = get_text(r, "network", "train-norm", "maxabs", c->train_norm, sizeof c->train_norm)) ||
        (rc = get_text(r, "network", "act-quant", "none", c->act_quant, sizeof c->act_quant)))
        return rc;
    const setting *tc = get(r, "network", "ste-threshold");
    c->ste_threshold = INFINITY;
    if (tc && strcmp(tc->value, "none") && strcmp(tc->value, "inf")) {
        char *end;
        errno = 0;
        double x = strtod(tc->value, &end);
        if (errno || end == tc->value || *end || !isfinite(x) || !(x > 0))
            return bad_value(r, tc, "allowed: a gradient threshold t_c > 0 in level-set units, or none");
        c->ste_threshold = x;
    }
    /* The layer count of the network trained here; a loaded network is not trained (the settings are
     * only checked for their form). */
    int n_layers = c->n_weight_layers;
    if (c->weights[0]) {
        n_layers = count_parts(c->train_noise);
        if (count_parts(c->train_levels) > n_layers)
            n_layers = count_parts(c->train_levels);
    }
    char levels[sizeof c->train_levels];
    without_device(c->train_levels, levels, sizeof levels);
    struct {
        const char *attr, *noise, *levels, *norm, *act, *allowed;
    } checks[] = {
        {"train-noise", c->train_noise, NULL, NULL, NULL,
         "allowed: none, or '+'-joined lognormal:sigma=S, mult:alpha=A, c2c:ar=A,sigma=S, c2c-level:ar=A,sigma=S, "
         "additive:sigma=S; one for every layer or one per layer separated by '/'"},
        {"train-levels", NULL, levels, NULL, NULL,
         "allowed: none, device, set1..set5, bits:B, abits:B, uniform:N, nnary:K:DELTA:MU, levels:...; one for every "
         "layer or one per layer separated by '/'"},
        {"train-norm", NULL, NULL, c->train_norm, NULL, "allowed: maxabs, clip:C with C > 0, none"},
        {"act-quant", NULL, NULL, NULL, c->act_quant, "allowed: none, B:dynamic or B:S (bits B in 1..16, step S > 0)"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        xb_hwtrain hw;
        xb_error why = {0};
        rc = xb_hwtrain_parse(&hw, n_layers, checks[i].noise, checks[i].levels, checks[i].norm, INFINITY, 0,
                              checks[i].act, NULL, &why);
        xb_hwtrain_clear(&hw);
        if (rc) {
            const setting *s = get(r, "network", checks[i].attr);
            if (!s)
                return xb_fail(r->err, XB_EINPUT, "%s: network.%s: %s", r->tb->path, checks[i].attr, why.msg);
            char what[1536];
            snprintf(what, sizeof what, "%s (%s)", checks[i].allowed, why.msg);
            return bad_value(r, s, what);
        }
    }
    return XB_OK;
}

static int read_config(cfg_reader *r, int quick, xb_tb_config *c)
{
    const xb_tb *tb = r->tb;
    memset(c, 0, sizeof *c);
    int rc, choice;
    /* dataset */
    const setting *ds = get(r, "dataset", "name");
    if (!ds || !strcmp(ds->value, "mnist") || !strcmp(ds->value, "fashion-mnist"))
        snprintf(c->dataset, sizeof c->dataset, "%s", ds ? ds->value : "mnist");
    else if ((rc = get_path(r, "dataset", "name", "", c->dataset, sizeof c->dataset)))
        return rc;
    if ((rc = get_size(r, "dataset", "images", 0, 1, 1000000000, 1, &c->images)) ||
        (rc = get_size(r, "dataset", "calib", 256, 1, 1000000000, 0, &c->calib)))
        return rc;
    /* network */
    if ((rc = get_path(r, "network", "weights", "", c->weights, sizeof c->weights)) || (rc = read_hidden(r, c)) ||
        (rc = read_arch(r, c)))
        return rc;
    static const char *const acts[] = {"sigmoid", "relu", NULL};
    const setting *act = get(r, "network", "activation");
    if ((rc = get_choice(r, "network", "activation", acts, 0, &choice)))
        return rc;
    c->activation = choice == 1 ? XB_ACT_RELU : XB_ACT_SIGMOID;
    if (c->weights[0] && !act)
        c->activation = -1;
    const setting *lr = get(r, "network", "lr");
    c->lr = NAN;
    if (lr && strcmp(lr->value, "auto") && (rc = get_double(r, "network", "lr", NAN, 1e-12, 1e3, &c->lr)))
        return rc;
    /* Training defaults are `xbarsim train`'s, from the one place that holds them. */
    xb_train_options td;
    xb_train_defaults(&td);
    if ((rc = get_size(r, "network", "epochs", td.epochs, 1, 100000, 0, &c->epochs)) ||
        (rc = get_size(r, "network", "batch", td.batch, 1, 1000000, 0, &c->batch)) ||
        (rc = get_size(r, "network", "train-images", 0, 1, 1000000000, 1, &c->train_images)) ||
        (rc = get_double(r, "network", "momentum", td.momentum, 0, 0.999999, &c->momentum)) ||
        (rc = get_double(r, "network", "weight-decay", td.weight_decay, 0, 1e3, &c->weight_decay)))
        return rc;
    size_t seed;
    if ((rc = get_size(r, "network", "seed", td.seed, 0, 4294967295u, 0, &seed)))
        return rc;
    c->train_seed = (unsigned long)seed;
    if ((rc = read_hwtrain(r, c)))
        return rc;
    /* device */
    if ((rc = get_path(r, "device", "file", XB_SOURCE_DIR "/models/hfo2_1t1r.xml", c->device_file,
                       sizeof c->device_file)) ||
        (rc = get_double(r, "device", "v-read", NAN, 1e-6, 100, &c->v_read_V)) ||
        (rc = get_double(r, "device", "vg-read", NAN, 1e-6, 100, &c->vg_read_V)) ||
        (rc = get_double(r, "device", "d2d", NAN, 0, 10, &c->sigma_d2d)) ||
        (rc = get_double(r, "device", "stuck-lrs", NAN, 0, 1, &c->p_stuck_lrs)) ||
        (rc = get_double(r, "device", "stuck-hrs", NAN, 0, 1, &c->p_stuck_hrs)) ||
        (rc = get_double(r, "device", "sigma-c2c", NAN, 0, 10, &c->sigma_c2c)) ||
        (rc = get_path(r, "device", "mosfet-file", "", c->mosfet_file, sizeof c->mosfet_file)) ||
        (rc = get_text(r, "device", "mosfet-model", "", c->mosfet_model, sizeof c->mosfet_model)) ||
        (rc = get_path(r, "device", "rram-file", "", c->rram_file, sizeof c->rram_file)))
        return rc;
    /* chip */
    static const char *const mappings[] = {"differential", "single-ended", NULL}, *const biases[] = {"row", "digital", NULL},
                             *const programs[] = {"ideal", "exact", "igvva", NULL};
    if ((rc = get_text(r, "chip", "norm", "maxabs", c->norm, sizeof c->norm)) ||
        (rc = get_choice(r, "chip", "mapping", mappings, 0, &c->single_ended)) ||
        (rc = get_choice(r, "chip", "bias", biases, 0, &c->digital_bias)) ||
        (rc = get_choice(r, "chip", "program", programs, 0, &choice)))
        return rc;
    c->program = (xb_tb_program)choice;
    /* The chip build's own parsers, as the CLI's --norm, --mapping, --bias and --tile. */
    xb_chip_spec_defaults(&c->chip);
    c->chip.scheme = c->single_ended ? XB_MAP_SINGLE_ENDED : XB_MAP_DIFFERENTIAL;
    c->chip.bias = c->digital_bias ? XB_BIAS_DIGITAL : XB_BIAS_ROW;
    c->chip.calib = c->calib;
    xb_error ignored = {0};
    if (xb_chip_spec_set_norm(&c->chip, c->norm, &ignored))
        return bad_value(r, get(r, "chip", "norm"), "allowed: maxabs or clip:C with C > 0");
    const setting *tile = get(r, "chip", "tile");
    if (tile && (xb_chip_spec_set_tile(&c->chip, tile->value, &ignored) || (!c->single_ended && c->chip.tile_cols % 2)))
        return bad_value(r, tile, "allowed: ROWSxCOLS such as 64x64, at least 1x2, an even width for differential pairs");
    c->tile_rows = c->chip.tile_rows;
    c->tile_cols = c->chip.tile_cols;
    /* levels and perturbations, in the order written */
    for (size_t i = 0; i < tb->n_elements; i++) {
        const element *e = &tb->elements[i];
        if (e->k == K_LEVELS) {
            xb_tb_levels *L = &c->levels[c->n_levels++];
            snprintf(L->id, sizeof L->id, "%s", e->key);
            if ((rc = get_text(r, e->key, "spec", "none", L->spec, sizeof L->spec)) ||
                (rc = check_layers_form(r, e->key, L->layers, sizeof L->layers)))
                return rc;
            if (strchr(L->spec, '/'))
                return bad_value(r, get(r, e->key, "spec"), "allowed: one level set; choose layers with the layers "
                                 "attribute or one <levels> element per layer");
        } else if (e->k == K_PERTURB && (rc = read_perturb(r, e->key, c))) {
            return rc;
        }
    }
    /* behavioral */
    static const char *const ranges[] = {"calibrate", "levels", NULL};
    size_t dac, adc;
    if ((rc = get_size(r, "behavioral", "dac-bits", 0, 0, 24, 0, &dac)) ||
        (rc = get_size(r, "behavioral", "adc-bits", 0, 0, 24, 0, &adc)) ||
        (rc = get_choice(r, "behavioral", "adc-range", ranges, 0, &choice)) ||
        (rc = get_double(r, "behavioral", "read-noise", 0, 0, 10, &c->read_noise)))
        return rc;
    c->dac_bits = (int)dac;
    c->adc_bits = (int)adc;
    c->adc_calibrate = choice == 0;
    /* spice */
    static const char *const cells[] = {"1t1r", "linear", "gap", NULL}, *const modes[] = {"exact", "linear", NULL};
    xb_pool_defaults(&c->pool);
    int linear_cells, linear_mode;
    size_t jobs = 0;
    const setting *js = get(r, "spice", "jobs");
    if ((rc = get_choice(r, "spice", "cells", cells, 0, &linear_cells)) ||
        (rc = get_choice(r, "spice", "mode", modes, 0, &linear_mode)) ||
        (rc = get_double(r, "spice", "r-row", 1, 0, 1e6, &c->pool.net.r_row_ohm)) ||
        (rc = get_double(r, "spice", "r-col", 1, 0, 1e6, &c->pool.net.r_col_ohm)) ||
        (rc = get_double(r, "spice", "rram-v0", 0, 0, 100, &c->pool.net.rram_v0_V)) ||
        (rc = get_size(r, "spice", "linear-sample", 20, 0, 100000, 0, &c->pool.linear_sample)) ||
        (rc = get_size(r, "spice", "chunk", 250, 1, 1000000, 0, &c->pool.chunk)) ||
        (js && strcmp(js->value, "auto") && (rc = get_size(r, "spice", "jobs", 0, 1, 1024, 0, &jobs))))
        return rc;
    static const char *const rows[] = {"auto", "external", "pwl", NULL};
    int row_drive;
    if ((rc = get_choice(r, "spice", "rows", rows, 0, &row_drive)))
        return rc;
    c->pool.net.row_drive = row_drive == 1 ? XB_ROWS_EXTERNAL : row_drive == 2 ? XB_ROWS_PWL : XB_ROWS_AUTO;
    c->pool.net.linear_cells = linear_cells == 1;
    c->pool.net.gap_cells = linear_cells == 2; /* the device's gap compact model (docs/device-circuit.md) */
    c->pool.linear = linear_mode;
    static const char *const onoff[] = {"off", "on", NULL};
    xb_energy_defaults(&c->energy);
    int energy_on;
    if ((rc = get_choice(r, "spice", "energy", onoff, 0, &energy_on)) ||
        (rc = get_double(r, "spice", "read-time", XB_ENERGY_T_READ_S, 1e-15, 1, &c->energy.t_read_s)) ||
        (rc = get_double(r, "spice", "c-wire", XB_ENERGY_C_WIRE_F, 0, 1e-9, &c->energy.c_wire_F)))
        return rc;
    c->energy.on = energy_on;
    if (jobs)
        c->pool.jobs = (int)jobs;
    if (c->pool.linear && !c->pool.net.linear_cells)
        return bad_value(r, get(r, "spice", "mode"), "the linear mode needs linear cells (spice cells=\"linear\"): "
                         "superposition does not hold for 1T1R cells");
    /* backends and Monte Carlo */
    const setting *be = get(r, "backends", "use");
    c->backends = XB_BACKEND_IDEAL | (be ? 0 : XB_BACKEND_BEHAVIORAL);
    if (be) {
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", be->value);
        for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
            c->backends |= !strcmp(t, "spice") ? XB_BACKEND_SPICE : !strcmp(t, "behavioral") ? XB_BACKEND_BEHAVIORAL : 0;
    }
    if ((rc = get_size(r, "montecarlo", "trials", 1, 1, 1000000, 0, &c->trials)) ||
        (rc = get_size(r, "montecarlo", "seed", 1, 0, 4294967295u, 0, &seed)))
        return rc;
    c->seed = (unsigned long)seed;
    /* programming */
    c->programming = tb->programming;
    if ((rc = get_size(r, "programming", "cells", 128, 2, 100000, 0, &c->prog_cells)))
        return rc;
    const setting *pm = get(r, "programming", "methods");
    c->prog_methods = XB_PROG_STATISTICAL | XB_PROG_CIRCUIT;
    if (pm) {
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", pm->value);
        c->prog_methods = 0;
        for (char *t = strtok_r(copy, " \t\n,", &save); t; t = strtok_r(NULL, " \t\n,", &save)) {
            unsigned bit = !strcmp(t, "statistical") ? XB_PROG_STATISTICAL : !strcmp(t, "circuit") ? XB_PROG_CIRCUIT : 0;
            if (!bit || (c->prog_methods & bit))
                return bad_value(r, pm, "allowed: statistical and/or circuit, each once, separated by spaces");
            c->prog_methods |= bit;
        }
        if (!c->prog_methods)
            return bad_value(r, pm, "allowed: statistical and/or circuit, separated by spaces");
    }
    if (quick) {
        if (c->prog_cells > tb->quick_cells)
            c->prog_cells = tb->quick_cells;
        if (!c->images || c->images > tb->quick_images)
            c->images = tb->quick_images;
        if (c->trials > tb->quick_trials)
            c->trials = tb->quick_trials;
        if (c->epochs > tb->quick_epochs)
            c->epochs = tb->quick_epochs;
        if (!c->train_images || c->train_images > tb->quick_train)
            c->train_images = tb->quick_train;
        if (c->calib > c->train_images)
            c->calib = c->train_images;
    }
    c->chip.calib = c->calib;
    return XB_OK;
}

int xb_tb_config_of(const xb_tb *tb, size_t k, int quick, xb_tb_config *cfg, xb_error *err)
{
    if (k >= tb->n_points)
        return xb_fail(err, XB_EINPUT, "%s: point %zu does not exist (%zu points)", tb->path, k + 1, tb->n_points);
    cfg_reader r = {tb, NULL, 0, err};
    if (!(r.v = tb_point_settings(tb, k, &r.n)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    int rc = read_config(&r, quick, cfg);
    free(r.v);
    return rc;
}
