// run: execute a testbench: train or load networks, program chips, evaluate every point and trial, write the results folder
#define _GNU_SOURCE
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "analysis.h"
#include "behavioral.h"
#include "build.h"
#include "chip.h"
#include "circuit.h"
#include "config.h"
#include "dataset.h"
#include "device.h"
#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "json.h"
#include "mc.h"
#include "metrics.h"
#include "mlp.h"
#include "netlist.h"
#include "pipeline.h"
#include "plot.h"
#include "program.h"
#include "progress.h"
#include "provenance.h"
#include "quant.h"
#include "train.h"
#include "weights.h"

void xb_run_defaults(xb_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->render = 1;
}

void xb_run_default_out(const xb_tb *tb, int quick, char *buf, size_t len)
{
    snprintf(buf, len, "results/%s%s", xb_tb_name(tb), quick ? "-quick" : "");
}

/* ------------------------------------------------------------------------------------------------ */
/* Small helpers */

/* splitmix64: trial t of a testbench seeded s draws from mt19937 seeded with mix(s, t), so trials are
 * independent streams and trial t sees the same stream at every point (common random numbers make
 * neighbouring points of a sweep comparable). */
static unsigned long trial_seed(unsigned long seed, size_t trial)
{
    uint64_t z = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + (uint64_t)trial + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (unsigned long)(z & 0xffffffffULL);
}

/* %.17g, or an empty field for a value that does not apply. */
static void csv_num(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, ",%.17g", v);
    else
        fputc(',', fp);
}

static int join_path(char *buf, size_t len, const char *dir, const char *name, xb_error *err)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len)
        return xb_fail(err, XB_EINPUT, "%s/%s: path too long", dir, name);
    return XB_OK;
}

static void say(const xb_run_options *o, const char *fmt, ...) XB_PRINTF(2, 3);
static void say(const xb_run_options *o, const char *fmt, ...)
{
    if (o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("[run] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------------------ */
/* What one point's trials measured (the state file's numbers) */

#define N_BACKENDS 3 /* ideal, behavioral, spice: index b is backend bit 1 << b */

typedef struct trial_result {
    unsigned long seed;
    double correct[N_BACKENDS]; /* NAN where the backend did not run */
    double agree;               /* behavioral and spice predictions equal (count) */
    double mcnemar_p;
    double i_err_mean, i_err_max, failed;
    double seconds;
} trial_result;

typedef struct point_result {
    size_t images, synapses, layers, neurons, trials;
    unsigned long seed; /* montecarlo seed of the point (trial seeds derive from it) */
    trial_result *t;
} point_result;

static const char state_header[] = "trial,seed,images,synapses,layers,neurons,correct_ideal,correct_behavioral,correct_spice,"
                                   "agree_behavioral_spice,mcnemar_p,current_rel_err_mean,current_rel_err_max,"
                                   "inputs_failed,seconds";

/* ------------------------------------------------------------------------------------------------ */
/* The run's state: caches of what points share */

typedef struct data_slot {
    char spec[4096];
    xb_dataset *train, *test;
    unsigned long use; /* for least-recently-used replacement */
} data_slot;

typedef struct run_ctx {
    const xb_tb *tb;
    const xb_run_options *o;
    xb_error *err;
    char out[4000], state[4096], logs[4096];
    data_slot data[2];
    unsigned long clock;
    char net_key[8400];
    char weights_recorded[4096]; /* the last weights spec written into the provenance */
    xb_mlp *net;
    char chip_key[32768];
    xb_chip *chip;     /* mapped and quantized, g_S at the targets */
    xb_device dev;     /* the device of chip_key, overrides applied */
    xb_provenance prov;
    int render;
    struct hash_entry {
        char path[4096], sha256[65];
    } *hashes;             /* SHA-256 of input files, each read once */
    size_t n_hashes;
    struct point_inputs {
        char data[65], weights[65], device[65];
    } in;                  /* what the current point reads, by content */
    size_t example_point; /* 0-based */
    const xb_tb_output *example;
    int any_spice;
} run_ctx;

static void ctx_free(run_ctx *r)
{
    free(r->hashes);
    for (int i = 0; i < 2; i++) {
        xb_dataset_free(&r->data[i].train);
        xb_dataset_free(&r->data[i].test);
    }
    xb_mlp_free(&r->net);
    xb_chip_free(&r->chip);
}

/* Record an input file in the provenance once, however many points use it. */
static void add_input(run_ctx *r, const char *role, const char *path, const char *sha256)
{
    for (int i = 0; i < r->prov.n_inputs; i++)
        if (!strcmp(r->prov.inputs[i].path, path))
            return;
    xb_error ignored = {0}; /* a file that cannot be hashed fails later where it is read */
    xb_provenance_add_input(&r->prov, role, path, sha256, &ignored);
}

/* The training and test splits of a dataset, loaded once (two data sets stay in memory). */
static int get_data(run_ctx *r, const char *spec, xb_dataset **train, xb_dataset **test)
{
    data_slot *slot = NULL;
    for (int i = 0; i < 2; i++)
        if (r->data[i].test && !strcmp(r->data[i].spec, spec))
            slot = &r->data[i];
    if (!slot) {
        slot = r->data[0].use <= r->data[1].use ? &r->data[0] : &r->data[1];
        xb_dataset_free(&slot->train);
        xb_dataset_free(&slot->test);
        snprintf(slot->spec, sizeof slot->spec, "%s", spec);
        int rc = xb_dataset_load(spec, XB_SPLIT_TEST, &slot->test, r->err);
        if (!rc)
            rc = xb_dataset_load(spec, XB_SPLIT_TRAIN, &slot->train, r->err);
        if (rc) {
            xb_dataset_free(&slot->test);
            return rc;
        }
        add_input(r, "test_images", slot->test->images_path, slot->test->images_sha256);
        add_input(r, "test_labels", slot->test->labels_path, slot->test->labels_sha256);
        add_input(r, "train_images", slot->train->images_path, slot->train->images_sha256);
        add_input(r, "train_labels", slot->train->labels_path, slot->train->labels_sha256);
    }
    slot->use = ++r->clock;
    *train = slot->train;
    *test = slot->test;
    return XB_OK;
}

/* The first n samples of d without copying (n = 0 or n >= d->n: all of them). */
static xb_dataset head(const xb_dataset *d, size_t n)
{
    xb_dataset h = *d;
    if (n && n < h.n)
        h.n = n;
    return h;
}

/* ------------------------------------------------------------------------------------------------ */
/* Inputs by content: a finished point is reused only while the files it read are unchanged */

/* SHA-256 of a file into out, computed once per run; "?" when it cannot be read (loading it fails
 * later, with the reason). Copied out: the cache moves as it grows. */
static void file_hash(run_ctx *r, const char *path, char out[65])
{
    for (size_t i = 0; i < r->n_hashes; i++)
        if (!strcmp(r->hashes[i].path, path)) {
            memcpy(out, r->hashes[i].sha256, 65);
            return;
        }
    xb_error ignored = {0};
    if (xb_sha256_file(path, out, &ignored)) {
        snprintf(out, 65, "?");
        return;
    }
    struct hash_entry *grown = realloc(r->hashes, (r->n_hashes + 1) * sizeof *grown);
    if (!grown)
        return;
    r->hashes = grown;
    snprintf(grown[r->n_hashes].path, sizeof grown[0].path, "%s", path);
    memcpy(grown[r->n_hashes++].sha256, out, 65);
}

/* Append the hash of a file to joined (at most len characters in all). */
static void add_hash(run_ctx *r, const char *path, char *joined, size_t len)
{
    char h[65];
    file_hash(r, path, h);
    size_t at = strlen(joined);
    snprintf(joined + at, len > at ? len - at : 0, "%s", h);
}

static void hash_inputs(run_ctx *r, const xb_tb_config *c, struct point_inputs *in)
{
    char joined[4096] = "", folder[4096], img[4200], lab[4200];
    xb_error ignored = {0};
    if (!xb_dataset_resolve(c->dataset, folder, sizeof folder, &ignored))
        for (int split = 0; split < 2; split++)
            if (!xb_dataset_find_files(folder, split ? XB_SPLIT_TEST : XB_SPLIT_TRAIN, img, lab, sizeof img, &ignored)) {
                add_hash(r, img, joined, sizeof joined);
                add_hash(r, lab, joined, sizeof joined);
            }
    xb_sha256_hex(joined, strlen(joined), in->data);
    /* Weights: every file of a comma list. */
    joined[0] = '\0';
    for (const char *p = c->weights; *p;) {
        size_t len = strcspn(p, ",");
        char path[4096];
        snprintf(path, sizeof path, "%.*s", (int)(len < sizeof path ? len : sizeof path - 1), p);
        add_hash(r, path, joined, sizeof joined);
        p += len + (p[len] == ',');
    }
    xb_sha256_hex(joined, strlen(joined), in->weights);
    /* The device file and the model files it names (or the testbench's overrides). */
    xb_device d;
    joined[0] = '\0';
    if (!xb_device_load(c->device_file, NULL, &d, &ignored)) {
        add_hash(r, c->device_file, joined, sizeof joined);
        add_hash(r, c->mosfet_file[0] ? c->mosfet_file : d.mosfet_model_file, joined, sizeof joined);
        add_hash(r, c->rram_file[0] ? c->rram_file : d.rram_model_file, joined, sizeof joined);
    }
    xb_sha256_hex(joined, strlen(joined), in->device);
}

/* ------------------------------------------------------------------------------------------------ */
/* Networks */

static void network_key(const xb_tb_config *c, const struct point_inputs *in, char *key, size_t len)
{
    if (c->weights[0]) {
        snprintf(key, len, "weights=%s;sha=%s;activation=%d", c->weights, in->weights, c->activation);
        return;
    }
    size_t at = (size_t)snprintf(key, len, "train;dataset=%s;sha=%s;hidden=", c->dataset, in->data);
    for (int i = 0; i < c->n_hidden && at < len; i++)
        at += (size_t)snprintf(key + at, len - at, "%s%zu", i ? "," : "", c->hidden[i]);
    if (at < len)
        snprintf(key + at, len - at, ";act=%d;epochs=%zu;batch=%zu;lr=%.17g;momentum=%.17g;wd=%.17g;seed=%lu;train=%zu",
                 c->activation, c->epochs, c->batch, c->lr, c->momentum, c->weight_decay, c->train_seed,
                 c->train_images);
}

/* A trained network from the state folder, or trained now (and saved there for later runs). */
static int get_network(run_ctx *r, const xb_tb_config *c, const xb_dataset *train, xb_mlp **out)
{
    char key[8400];
    network_key(c, &r->in, key, sizeof key);
    if (r->net && !strcmp(key, r->net_key)) {
        *out = r->net;
        return XB_OK;
    }
    xb_mlp_free(&r->net);
    int rc;
    if (c->weights[0]) {
        if ((rc = xb_weights_load(c->weights, c->activation, &r->net, r->err)))
            return rc;
        if (strcmp(r->weights_recorded, c->weights)) {
            xb_error ignored = {0}; /* an unreadable file failed to load above */
            xb_provenance_add_weights(&r->prov, c->weights, &ignored);
            snprintf(r->weights_recorded, sizeof r->weights_recorded, "%s", c->weights);
        }
    } else {
        char hex[65], path[4400];
        xb_sha256_hex(key, strlen(key), hex);
        snprintf(path, sizeof path, "%s/networks/%.16s.npz", r->state, hex);
        if (xb_is_file(path)) {
            if ((rc = xb_weights_load(path, -1, &r->net, r->err)))
                return rc;
        } else {
            size_t sizes[XB_TB_MAX_HIDDEN + 2];
            sizes[0] = train->dim;
            for (int i = 0; i < c->n_hidden; i++)
                sizes[i + 1] = c->hidden[i];
            sizes[c->n_hidden + 1] = (size_t)train->n_classes;
            xb_mlp *m = xb_mlp_new(c->n_hidden + 1, sizes, (xb_activation)c->activation);
            if (!m)
                return xb_fail(r->err, XB_ENOMEM, "out of memory");
            xb_train_options to;
            xb_train_defaults(&to);
            to.epochs = c->epochs;
            to.batch = c->batch;
            to.lr = isnan(c->lr) ? xb_train_default_lr(c->n_hidden, (xb_activation)c->activation) : c->lr;
            to.momentum = c->momentum;
            to.weight_decay = c->weight_decay;
            to.seed = c->train_seed;
            to.init = 1;
            to.quiet = r->o->quiet;
            xb_dataset part = head(train, c->train_images);
            char desc[128];
            say(r->o, "training %s on %zu %s images (%zu epochs, seed %lu)", xb_mlp_describe(m, desc, sizeof desc),
                part.n, c->dataset, c->epochs, c->train_seed);
            if ((rc = xb_train(m, &part, &to, NULL, r->err)) || (rc = xb_weights_save_npz(m, path, XB_DT_F8, r->err))) {
                xb_mlp_free(&m);
                return rc;
            }
            r->net = m;
        }
    }
    snprintf(r->net_key, sizeof r->net_key, "%s", key);
    *out = r->net;
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Devices and chips */

static int load_device(const xb_tb_config *c, xb_device *d, xb_error *err)
{
    int rc = xb_device_load(c->device_file, NULL, d, err);
    if (rc)
        return rc;
    if (!isnan(c->v_read_V))
        d->v_read_V = c->v_read_V;
    if (!isnan(c->vg_read_V))
        d->vg_read_V = c->vg_read_V;
    if (!isnan(c->sigma_d2d))
        d->sigma_d2d = c->sigma_d2d;
    if (!isnan(c->p_stuck_lrs))
        d->p_stuck_lrs = c->p_stuck_lrs;
    if (!isnan(c->p_stuck_hrs))
        d->p_stuck_hrs = c->p_stuck_hrs;
    if (!isnan(c->sigma_c2c))
        d->igvva.sigma_c2c = c->sigma_c2c;
    if (c->mosfet_file[0])
        snprintf(d->mosfet_model_file, sizeof d->mosfet_model_file, "%s", c->mosfet_file);
    if (c->mosfet_model[0])
        snprintf(d->mosfet_model_name, sizeof d->mosfet_model_name, "%s", c->mosfet_model);
    if (c->rram_file[0])
        snprintf(d->rram_model_file, sizeof d->rram_model_file, "%s", c->rram_file);
    if ((rc = xb_device_check(d, err)) || (rc = xb_device_check_models(d, err)))
        return xb_error_prefix(err, "%s with the testbench's overrides", c->device_file);
    return XB_OK;
}

/* The level-set spec per layer: for each layer the last <levels> element that selects it, else none. */
static int levels_spec(const xb_tb_config *c, int n_layers, char *spec, size_t len, xb_error *err)
{
    size_t at = 0;
    spec[0] = '\0';
    for (int l = 0; l < n_layers; l++) {
        const char *s = "none";
        for (int i = 0; i < c->n_levels; i++) {
            unsigned long long mask;
            int rc = xb_layers_parse(c->levels[i].layers, n_layers, &mask, err);
            if (rc)
                return xb_error_prefix(err, "levels %s", c->levels[i].id);
            if (mask >> l & 1)
                s = c->levels[i].spec;
        }
        at += (size_t)snprintf(spec + at, at < len ? len - at : 0, "%s%s", l ? "/" : "", s);
    }
    return at < len ? XB_OK : xb_fail(err, XB_EINPUT, "level-set specs too long");
}

/* The device part of a point's identity: the file, its contents and every override. */
static void device_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len)
{
    snprintf(buf, len, "%s;%s;%.17g;%.17g;%.17g;%.17g;%.17g;%.17g;%s;%s;%s", c->device_file, in->device, c->v_read_V,
             c->vg_read_V, c->sigma_d2d, c->p_stuck_lrs, c->p_stuck_hrs, c->sigma_c2c, c->mosfet_file, c->mosfet_model,
             c->rram_file);
}

/* The chip of network m as c maps it, before programming; kept while points share it. */
static int get_chip(run_ctx *r, const xb_tb_config *c, const xb_mlp *m, const xb_dataset *train, xb_chip **out)
{
    char spec[2048];
    int rc = levels_spec(c, m->n_layers, spec, sizeof spec, r->err);
    if (rc)
        return rc;
    size_t klen = sizeof r->chip_key;
    char *key = malloc(klen);
    if (!key)
        return xb_fail(r->err, XB_ENOMEM, "out of memory");
    char dev[13000];
    device_text(c, &r->in, dev, sizeof dev);
    snprintf(key, klen, "%s|dev=%s|%s;%d;%d;%zux%zu;calib=%zu|%s", r->net_key, dev, c->norm, c->single_ended,
             c->digital_bias, c->tile_rows, c->tile_cols, c->calib, spec);
    if (r->chip && !strcmp(key, r->chip_key)) {
        free(key);
        *out = r->chip;
        return XB_OK;
    }
    snprintf(r->chip_key, sizeof r->chip_key, "%s", key);
    free(key);
    xb_chip_free(&r->chip);
    if ((rc = load_device(c, &r->dev, r->err)))
        return rc;
    add_input(r, "device", c->device_file, NULL);
    xb_chip_spec cs = c->chip;
    if ((rc = xb_chip_spec_set_levels(&cs, spec, r->err)))
        return rc;
    xb_dataset cal = head(train, c->calib);
    rc = xb_chip_build(&cs, &r->dev, m, cal.x, cal.n, &r->chip, NULL, 0, r->err);
    if (rc) {
        r->chip_key[0] = '\0';
        return rc;
    }
    *out = r->chip;
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Planning: every point checked against its data and network before anything runs */

static int plan(run_ctx *r)
{
    const xb_tb *tb = r->tb;
    char last_weights[4096] = "";
    int last_layers = 0;
    for (size_t k = 0; k < xb_tb_n_points(tb); k++) {
        xb_tb_config c;
        int rc = xb_tb_config_of(tb, k, r->o->quick, &c, r->err);
        if (rc)
            return rc;
        char folder[4096], where[4200];
        if (xb_dataset_resolve(c.dataset, folder, sizeof folder, r->err)) {
            xb_tb_where(tb, k, "dataset.name", where, sizeof where);
            return xb_error_prefix(r->err, "%s: point %zu", where, k + 1);
        }
        int n_layers = c.n_hidden + 1;
        if (c.weights[0]) {
            if (strcmp(c.weights, last_weights)) {
                xb_mlp *m = NULL;
                if ((rc = xb_weights_load(c.weights, c.activation, &m, r->err))) {
                    xb_tb_where(tb, k, "network.weights", where, sizeof where);
                    return xb_error_prefix(r->err, "%s", where);
                }
                last_layers = m->n_layers;
                xb_mlp_free(&m);
                snprintf(last_weights, sizeof last_weights, "%s", c.weights);
            }
            n_layers = last_layers;
        }
        if (!xb_is_file(c.device_file)) {
            xb_tb_where(tb, k, "device.file", where, sizeof where);
            return xb_fail(r->err, XB_EINPUT, "%s: device file %s does not exist; allowed: a device XML such as "
                           "models/hfo2_1t1r.xml (relative paths start at the testbench's folder)", where, c.device_file);
        }
        unsigned long long mask;
        char param[128];
        for (int i = 0; i < c.n_levels; i++) {
            xb_levelset *ls = NULL;
            if (xb_layers_parse(c.levels[i].layers, n_layers, &mask, r->err) ||
                (strcmp(c.levels[i].spec, "device") && xb_levelset_parse(c.levels[i].spec, &ls, r->err))) {
                snprintf(param, sizeof param, "%s.%s", c.levels[i].id, ls ? "layers" : "spec");
                xb_tb_where(tb, k, param, where, sizeof where);
                return xb_error_prefix(r->err, "%s: point %zu, levels %s", where, k + 1, c.levels[i].id);
            }
            xb_levelset_free(&ls);
        }
        for (int i = 0; i < c.n_perturb; i++)
            if (xb_layers_parse(c.perturb[i].layers, n_layers, &mask, r->err)) {
                snprintf(param, sizeof param, "%s.layers", c.perturb[i].id);
                xb_tb_where(tb, k, param, where, sizeof where);
                return xb_error_prefix(r->err, "%s: point %zu, perturbation %s", where, k + 1, c.perturb[i].id);
            }
        if (r->example && k == r->example_point && r->example->layer > (size_t)n_layers)
            return xb_fail(r->err, XB_EINPUT, "%s:%d: element <example>: layer %zu; point %zu's network has %d layer%s",
                           xb_tb_path(tb), r->example->line, r->example->layer, k + 1, n_layers,
                           n_layers == 1 ? "" : "s");
        r->any_spice |= (c.backends & XB_BACKEND_SPICE) != 0;
    }
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* The state folder: one file per finished point, named by a hash of its configuration */

static void config_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "xbarsim %s state 3|%s|%s|%zu|%zu|", XB_VERSION, c->dataset, in->data,
                                 c->images, c->calib);
    char key[8400], dev[13000];
    network_key(c, in, key, sizeof key);
    device_text(c, in, dev, sizeof dev);
#define PUT(...) at += (size_t)snprintf(buf + (at < len ? at : len), at < len ? len - at : 0, __VA_ARGS__)
    PUT("%s|%s|", key, dev);
    PUT("%s;%d;%d;%zux%zu;%d|", c->norm, c->single_ended, c->digital_bias, c->tile_rows, c->tile_cols, c->program);
    for (int i = 0; i < c->n_levels; i++)
        PUT("L%s@%s;", c->levels[i].spec, c->levels[i].layers);
    PUT("|%d;%d;%d;%.17g|", c->dac_bits, c->adc_bits, c->adc_calibrate, c->read_noise);
    PUT("%d;%.17g;%.17g;%.17g;%d;%zu|", c->pool.net.linear_cells, c->pool.net.r_row_ohm, c->pool.net.r_col_ohm,
        c->pool.net.rram_v0_V, c->pool.linear, c->pool.linear_sample);
    if (c->pool.net.row_drive != XB_ROWS_AUTO) /* absent for the default: earlier state files stay valid */
        PUT("rows=%d|", c->pool.net.row_drive);
    for (int i = 0; i < c->n_perturb; i++) {
        char spec[256];
        xb_perturb_format(&c->perturb[i].model, spec, sizeof spec);
        PUT("P%s@%s;", spec, c->perturb[i].layers);
    }
    PUT("|%u;%zu;%lu", c->backends, c->trials, c->seed);
#undef PUT
}

/* The example point's state also depends on what its example draws. */
static void example_text(const run_ctx *r, char *buf, size_t len)
{
    const xb_tb_output *e = r->example;
    snprintf(buf, len, "|example %zu %zu %zu %zu", e ? e->layer : 1, e ? e->row_tile : 0, e ? e->col_tile : 0,
             e ? e->input : 0);
}

static void point_file(const run_ctx *r, size_t k, const xb_tb_config *c, char *path, size_t len, const char *suffix)
{
    char text[32768], hex[65];
    config_text(c, &r->in, text, sizeof text);
    if (k == r->example_point)
        example_text(r, text + strlen(text), sizeof text - strlen(text));
    xb_sha256_hex(text, strlen(text), hex);
    snprintf(path, len, "%s/points/%.24s%s", r->state, hex, suffix);
}

static int write_point_state(const char *path, const xb_tb_config *c, const struct point_inputs *in,
                             const point_result *pr, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    char text[32768];
    config_text(c, in, text, sizeof text);
    fprintf(f.fp, "# %s\n%s\n", text, state_header);
    for (size_t t = 0; t < pr->trials; t++) {
        const trial_result *tr = &pr->t[t];
        fprintf(f.fp, "%zu,%lu,%zu,%zu,%zu,%zu", t, tr->seed, pr->images, pr->synapses, pr->layers, pr->neurons);
        for (int b = 0; b < N_BACKENDS; b++)
            csv_num(f.fp, tr->correct[b]);
        csv_num(f.fp, tr->agree);
        csv_num(f.fp, tr->mcnemar_p);
        csv_num(f.fp, tr->i_err_mean);
        csv_num(f.fp, tr->i_err_max);
        csv_num(f.fp, tr->failed);
        csv_num(f.fp, tr->seconds);
        fputc('\n', f.fp);
    }
    return xb_atomic_commit(&f, err);
}

/* Parse a state file back (the numbers were written with %.17g, so they read back exactly). Every field
 * is checked: a state file is a result of an earlier run that anyone may have edited or truncated, and a
 * wrong number in it would pass silently into every table and plot. */
static const char *const state_fields[15] = {"trial", "seed", "images", "synapses", "layers", "neurons",
                                             "correct_ideal", "correct_behavioral", "correct_spice",
                                             "agree_behavioral_spice", "mcnemar_p", "current_rel_err_mean",
                                             "current_rel_err_max", "inputs_failed", "seconds"};

static int state_bad(xb_error *err, const char *path, size_t line, const char *what)
{
    return xb_fail(err, XB_EINPUT, "%s:%zu: %s; this state file of a finished point is damaged: delete it (or run "
                   "with --fresh) to recompute the point", path, line, what);
}

static int read_point_state(const char *path, size_t trials_expected, point_result *pr, xb_error *err)
{
    memset(pr, 0, sizeof *pr);
    unsigned char *data = NULL;
    size_t len;
    int rc = xb_read_file(path, (size_t)1 << 30, &data, &len, err);
    if (rc)
        return rc;
    char *text = (char *)data, what[300];
    size_t cap = 0, line_no = 0;
    if (len == 0 || text[len - 1] != '\n') {
        size_t last = 1;
        for (size_t i = 0; i < len; i++)
            last += text[i] == '\n';
        rc = state_bad(err, path, last, "the file is empty or its last line is cut short (no line end)");
    }
    if (!rc && strlen(text) != len)
        rc = state_bad(err, path, 1, "the file holds a NUL byte");
    for (char *line = text, *nl; !rc && line < text + len; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        line_no++;
        if (line_no == 1 && line[0] == '#')
            continue;
        if (line_no <= 2 && !strcmp(line, state_header))
            continue;
        if (line_no <= 2) {
            rc = state_bad(err, path, line_no, line_no == 1 ? "expected the configuration comment (# ...)"
                                                            : "expected the column header");
            break;
        }
        double v[15];
        int nf = 0;
        const char *p = line;
        for (;;) {
            const char *end_field = p + strcspn(p, ",");
            if (nf == 15) {
                rc = state_bad(err, path, line_no, "more than 15 fields");
                break;
            }
            const char *name = state_fields[nf];
            if (end_field == p) {
                v[nf] = NAN; /* a backend that did not run */
            } else {
                char *end;
                errno = 0;
                v[nf] = strtod(p, &end);
                if (end != end_field || errno == ERANGE || !isfinite(v[nf])) {
                    snprintf(what, sizeof what, "field %d (%s) is '%.*s', not a finite number", nf + 1, name,
                             (int)(end_field - p < 40 ? end_field - p : 40), p);
                    rc = state_bad(err, path, line_no, what);
                    break;
                }
            }
            nf++;
            if (!*end_field)
                break;
            p = end_field + 1;
        }
        if (rc)
            break;
        if (nf != 15) {
            snprintf(what, sizeof what, "a line with %d fields, expected 15", nf);
            rc = state_bad(err, path, line_no, what);
            break;
        }
        /* What each field may hold. Counts are whole numbers; the correct-prediction counts and the
         * failed inputs are at most the images. */
        double images = v[2];
        for (int f = 0; f < 15 && !rc; f++) {
            int optional = f >= 7 && f <= 13, whole = f <= 9 || f == 13;
            double hi = f == 1 ? 4294967295.0 : (f >= 6 && f <= 9) || f == 13 ? images : f == 10 ? 1.0
                      : f == 0 ? (double)(trials_expected ? trials_expected - 1 : 0) : 9007199254740992.0;
            if (f == 11 || f == 12)
                hi = 1e12; /* a relative current error: large when a column current is near zero */
            if (f == 14)
                hi = 1e9;
            double x = v[f];
            if (isnan(x)) {
                if (!optional) {
                    snprintf(what, sizeof what, "field %d (%s) is empty; it must hold a number", f + 1,
                             state_fields[f]);
                    rc = state_bad(err, path, line_no, what);
                }
                continue;
            }
            if (x < 0 || x > hi || (whole && x != floor(x)) || (f == 2 && x < 1)) {
                snprintf(what, sizeof what, "field %d (%s) is %.15g; allowed: %s from %g to %.15g", f + 1,
                         state_fields[f], x, whole ? "a whole number" : "a number", f == 2 ? 1.0 : 0.0, hi);
                rc = state_bad(err, path, line_no, what);
            }
        }
        if (rc)
            break;
        if ((size_t)v[0] != pr->trials) {
            snprintf(what, sizeof what, "trial %.0f where trial %zu was expected", v[0], pr->trials);
            rc = state_bad(err, path, line_no, what);
            break;
        }
        if (pr->trials && ((size_t)v[2] != pr->images || (size_t)v[3] != pr->synapses ||
                           (size_t)v[4] != pr->layers || (size_t)v[5] != pr->neurons)) {
            rc = state_bad(err, path, line_no, "images, synapses, layers or neurons differ from the first trial's");
            break;
        }
        if (pr->trials == cap) {
            cap = cap ? 2 * cap : 16;
            trial_result *grown = realloc(pr->t, cap * sizeof *grown);
            if (!grown) {
                rc = xb_fail(err, XB_ENOMEM, "out of memory");
                break;
            }
            pr->t = grown;
        }
        trial_result *tr = &pr->t[pr->trials++];
        tr->seed = (unsigned long)v[1];
        pr->images = (size_t)v[2];
        pr->synapses = (size_t)v[3];
        pr->layers = (size_t)v[4];
        pr->neurons = (size_t)v[5];
        for (int b = 0; b < N_BACKENDS; b++)
            tr->correct[b] = v[6 + b];
        tr->agree = v[9];
        tr->mcnemar_p = v[10];
        tr->i_err_mean = v[11];
        tr->i_err_max = v[12];
        tr->failed = v[13];
        tr->seconds = v[14];
    }
    free(data);
    if (!rc && pr->trials != trials_expected) {
        snprintf(what, sizeof what, "%zu trial%s, the point has %zu", pr->trials, pr->trials == 1 ? "" : "s",
                 trials_expected);
        rc = state_bad(err, path, line_no, what);
    }
    if (rc) {
        free(pr->t);
        memset(pr, 0, sizeof *pr);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* The example folder: one tile's netlist, and the circuit's pictures */

static int example_programming(run_ctx *r, const xb_program_result *pr, const xb_chip *chip, xb_error *err)
{
    /* The writers create the folders they write into. */
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    int rc = join_path(path, sizeof path, dir, "cells.csv", err);
    if (!rc)
        rc = xb_program_write_cells_csv(path, chip, pr, err);
    if (!rc && (rc = join_path(path, sizeof path, dir, "pulses.csv", err)) == XB_OK)
        rc = xb_igvva_write_pulse_hist_csv(path, pr->res, pr->n_programmed, err);
    if (rc || !pr->grouped)
        return rc;
    if ((rc = join_path(path, sizeof path, dir, "cdf.csv", err)) ||
        (rc = xb_igvva_write_cdf_csv(path, pr->i_trg_A, pr->res, pr->n_programmed, err)))
        return rc;
    /* The picture device engineers know: per level, the CDF of the final verify reads. */
    snprintf(dir, sizeof dir, "%s/example/plots", r->out);
    return xb_plot_igvva_cdf(dir, "cdf-read-currents", pr->i_trg_A, pr->res, pr->n_programmed, r->render, err);
}

static int example_circuit(run_ctx *r, const xb_circuit *circ, xb_error *err)
{
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    int rc = join_path(path, sizeof path, dir, "tile_errors.csv", err);
    if (!rc)
        rc = xb_compare_write_csv(&circ->cc, path, err);
    if (!rc && !(rc = join_path(path, sizeof path, dir, "currents.csv", err)))
        rc = xb_compare_write_samples_csv(&circ->cc, path, err);
    if (rc)
        return rc;
    size_t n = circ->cc.n_samples;
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y);
    xb_figure *fig = xb_figure_new("currents-circuit-vs-behavioral", "Column currents: circuit (ngspice) against "
                                   "behavioral (ideal wires)", "behavioral column current (uA)",
                                   "circuit column current (uA)");
    if (!x || !y || !fig)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (int l = 0; !rc && l < r->chip->n_layers; l++) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (circ->cc.samples[k].layer == l) {
                x[m] = circ->cc.samples[k].i_model_A * 1e6;
                y[m++] = circ->cc.samples[k].i_spice_A * 1e6;
            }
        char label[32];
        snprintf(label, sizeof label, "layer %d", l + 1);
        if (m)
            rc = xb_figure_add(fig, label, XB_PLOT_POINTS, x, y, NULL, NULL, m);
    }
    char plots[4400];
    snprintf(plots, sizeof plots, "%s/example/plots", r->out);
    if (!rc) {
        xb_figure_diagonal(fig);
        rc = xb_figure_write(fig, plots, r->render, err);
    }
    free(x);
    free(y);
    xb_figure_free(&fig);
    if (rc)
        return rc;
    xb_irdrop ir;
    if ((rc = xb_circuit_irdrop(circ, &ir, err)))
        return rc;
    if (!(rc = join_path(path, sizeof path, dir, "ir_drop.csv", err)))
        rc = xb_irdrop_write_csv(&ir, path, err);
    double *z = malloc(ir.rows * ir.cols * sizeof *z);
    if (!rc && !z)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < ir.rows; i++)
        for (size_t j = 0; j < ir.cols; j++)
            z[i * ir.cols + j] = xb_irdrop_current_deficit(&ir, i, j);
    char title[160];
    snprintf(title, sizeof title, "IR drop: layer %d, tile (%zu, %zu), every row at %.3g V", ir.layer + 1, ir.rt, ir.ct,
             ir.v_read_V);
    if (!rc)
        rc = xb_heatmap_write(plots, "ir-drop", title, "column", "row",
                              "cell current lost to IR drop (fraction of ideal wires)", z, ir.rows, ir.cols, r->render,
                              err);
    free(z);
    xb_irdrop_free(&ir);
    return rc;
}

static int example_netlist(run_ctx *r, const xb_tb_config *c, const xb_chip *chip, const xb_behav *bm,
                           const xb_dataset *test, xb_error *err)
{
    const xb_tb_output *e = r->example;
    int l = e ? (int)e->layer - 1 : 0;
    size_t rt = e ? e->row_tile : 0, ct = e ? e->col_tile : 0, input = e ? e->input : 0;
    /* plan() checked the layer; the tiles and images are known only now. */
    const xb_layer_map *L = &chip->layers[l];
    if (rt >= L->n_row_tiles || ct >= L->n_col_tiles || input >= test->n)
        return xb_fail(err, XB_EINPUT, "%s:%d: element <example>: tile (%zu, %zu) of layer %d, test image %zu: layer %d "
                       "has %zu x %zu tiles (row tiles 0..%zu, column tiles 0..%zu) and there are %zu test images",
                       xb_tb_path(r->tb), e ? e->line : 1, rt, ct, l + 1, input, l + 1, L->n_row_tiles, L->n_col_tiles,
                       L->n_row_tiles - 1, L->n_col_tiles - 1, test->n);
    double *V = malloc(L->rows * sizeof *V);
    if (!V)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    char dir[4300], path[4400], note[512];
    snprintf(dir, sizeof dir, "%s/example", r->out);
    snprintf(path, sizeof path, "%s/L%d_T%zu_%zu.cir", dir, l + 1, rt, ct);
    snprintf(note, sizeof note, "xbarsim run %s: point %zu, test image %zu", xb_tb_path(r->tb), r->example_point + 1,
             input);
    int rc = xb_behav_layer_rows((xb_behav *)bm, l, test->x + input * test->dim, 1, NULL, V, err);
    if (!rc)
        rc = xb_netlist_write_file(path, chip, l, rt, ct, &r->dev, &c->pool.net, V, 1, note, err);
    free(V);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* One point */

static int eval_point(run_ctx *r, size_t k, const xb_tb_config *c, point_result *pr, const char *pred_path)
{
    xb_error *err = r->err;
    xb_dataset *train, *test_all;
    int rc = get_data(r, c->dataset, &train, &test_all);
    if (rc)
        return rc;
    xb_dataset test = head(test_all, c->images);
    xb_mlp *m = NULL;
    if ((rc = get_network(r, c, train, &m)))
        return rc;
    if (m->sizes[0] != test.dim || m->sizes[m->n_layers] < (size_t)test.n_classes) {
        char where[4200];
        xb_tb_where(r->tb, k, "network.weights", where, sizeof where);
        return xb_fail(err, XB_EINPUT, "%s: the network takes %zu inputs and has %zu outputs; %s has %zu pixels and %d "
                       "classes", where, m->sizes[0], m->sizes[m->n_layers], c->dataset, test.dim, test.n_classes);
    }
    xb_chip *base = NULL;
    if ((rc = get_chip(r, c, m, train, &base)))
        return rc;
    xb_dataset cal = head(train, c->calib);
    memset(pr, 0, sizeof *pr);
    pr->images = test.n;
    pr->synapses = xb_mlp_param_count(m);
    pr->layers = (size_t)m->n_layers;
    for (int l = 1; l < m->n_layers; l++)
        pr->neurons += m->sizes[l];
    pr->trials = c->trials;
    pr->t = calloc(c->trials, sizeof *pr->t);
    int *pred[N_BACKENDS] = {malloc(test.n * sizeof(int)), malloc(test.n * sizeof(int)), malloc(test.n * sizeof(int))};
    xb_chip *prog = xb_chip_clone(base), *chip = xb_chip_clone(base);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    xb_atomic_file pf = {0};
    int pf_open = 0;
    if (!pr->t || !pred[0] || !pred[1] || !pred[2] || !prog || !chip || !rng) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
        goto done;
    }
    /* The software reference of every trial: the trained network itself. */
    if ((rc = xb_mlp_predict(m, test.x, test.n, pred[0], err)))
        goto done;
    double correct_ideal = (double)xb_count_correct(pred[0], test.y, test.n);

    xb_layer_perturb lp[XB_TB_MAX_PERTURB];
    int n_lp = 0;
    for (int i = 0; i < c->n_perturb; i++) {
        if (c->perturb[i].model.kind == XB_PERTURB_NONE)
            continue;
        lp[n_lp].model = c->perturb[i].model;
        if ((rc = xb_layers_parse(c->perturb[i].layers, m->n_layers, &lp[n_lp].layers, err)))
            goto done;
        n_lp++;
    }
    xb_program_options po;
    xb_program_defaults(&r->dev, &po);
    po.method = c->program == XB_TB_PROGRAM_IGVVA ? XB_PROGRAM_IGVVA : XB_PROGRAM_EXACT;
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    bo.dac_bits = c->dac_bits;
    bo.adc_bits = c->adc_bits;
    bo.adc_calibrate = c->adc_calibrate;
    bo.sigma_read = c->read_noise;
    int spice = (c->backends & XB_BACKEND_SPICE) != 0, behavioral = (c->backends & XB_BACKEND_BEHAVIORAL) != 0;
    int is_example = k == r->example_point;
    if (spice) {
        if ((rc = xb_atomic_open(&pf, pred_path, err)))
            goto done;
        pf_open = 1;
        fprintf(pf.fp, "trial,index,label,pred_ideal,pred_behavioral,pred_spice\n");
    }

    xb_progress bar;
    char label[64];
    snprintf(label, sizeof label, "point %zu/%zu", k + 1, xb_tb_n_points(r->tb));
    xb_progress_start(&bar, stderr, label, c->trials, r->o->quiet || spice);
    for (size_t t = 0; t < c->trials; t++) {
        double t0 = xb_now();
        trial_result *tr = &pr->t[t];
        tr->seed = trial_seed(c->seed, t);
        gsl_rng_set(rng, tr->seed);
        tr->correct[0] = correct_ideal;
        tr->correct[1] = tr->correct[2] = tr->agree = tr->mcnemar_p = NAN;
        tr->i_err_mean = tr->i_err_max = tr->failed = NAN;
        /* Programming (a fresh chip each trial), then the perturbation models, then inference. */
        xb_program_result *prres = NULL;
        if ((rc = xb_chip_build_trial(prog, &r->dev, c->program != XB_TB_PROGRAM_IDEAL ? &po : NULL, lp, n_lp, rng,
                                      chip, &bo, &prres, err)))
            goto done;
        if (is_example && t == 0 && prres)
            rc = example_programming(r, prres, prog, err);
        xb_program_result_free(&prres);
        if (rc)
            goto done;
        /* The ADC full scales of this trial's chip, once, for the behavioral model and the circuit alike. */
        double adc_fs[XB_BEHAV_MAX_LAYERS];
        xb_behav *bm = NULL;
        if ((rc = xb_behav_adc_calibrate(chip, &bo, cal.x, cal.n, adc_fs, err)) ||
            (rc = xb_behav_new_fs(chip, &bo, adc_fs, &bm, err)))
            goto done;
        if (behavioral || spice) {
            rc = xb_behav_forward(bm, test.x, test.n, rng, NULL, pred[1], err);
            tr->correct[1] = (double)xb_count_correct(pred[1], test.y, test.n);
        }
        if (!rc && is_example && t == 0)
            rc = example_netlist(r, c, chip, bm, &test, err);
        xb_behav_free(&bm);
        if (rc)
            goto done;
        if (spice) {
            xb_pool_options pool = c->pool;
            if (r->o->jobs)
                pool.jobs = r->o->jobs;
            pool.quiet = r->o->quiet;
            snprintf(pool.log_dir, sizeof pool.log_dir, "%s", r->logs);
            xb_circuit circ;
            xb_paired pair;
            rc = xb_eval_circuit(chip, &r->dev, &pool, &bo, adc_fs, &test, is_example && t == 0 ? 20 : 0, rng,
                                 pred[1], pred[2], &circ, &pair, &r->prov, err);
            if (!rc) {
                tr->mcnemar_p = pair.p;
                tr->correct[2] = (double)xb_count_correct(pred[2], test.y, test.n);
                tr->agree = (double)pair.agree;
                tr->failed = (double)circ.n_failed;
                xb_compare_totals(&circ.cc, &tr->i_err_mean, &tr->i_err_max);
                if (is_example && t == 0)
                    rc = example_circuit(r, &circ, err);
            }
            xb_circuit_free(&circ);
            if (rc)
                goto done;
            for (size_t i = 0; i < test.n; i++)
                fprintf(pf.fp, "%zu,%zu,%d,%d,%d,%d\n", t, i, test.y[i], pred[0][i], pred[1][i], pred[2][i]);
        }
        if (!behavioral)
            tr->correct[1] = NAN;
        tr->seconds = xb_now() - t0;
        xb_progress_update(&bar, t + 1, "trials");
    }
    xb_progress_clear(&bar);
    if (pf_open) {
        pf_open = 0;
        rc = xb_atomic_commit(&pf, err);
    }
done:
    if (pf_open)
        xb_atomic_abort(&pf);
    gsl_rng_free(rng);
    xb_chip_free(&prog);
    xb_chip_free(&chip);
    for (int b = 0; b < N_BACKENDS; b++)
        free(pred[b]);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* Results */

static void write_columns_header(FILE *fp, const xb_tb *tb)
{
    for (size_t c = 0; c < xb_tb_n_columns(tb); c++) {
        fputc(',', fp);
        xb_csv_field(fp, xb_tb_column(tb, c));
    }
}

static void write_columns(FILE *fp, const xb_tb *tb, size_t k)
{
    for (size_t c = 0; c < xb_tb_n_columns(tb); c++) {
        fputc(',', fp);
        xb_csv_field(fp, xb_tb_value(tb, k, c));
    }
}

static int write_points_csv(run_ctx *r, const point_result *pr, xb_error *err)
{
    const xb_tb *tb = r->tb;
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "points.csv", err);
    if (rc)
        return rc;
    fprintf(f.fp, "point,grid,trial,seed");
    write_columns_header(f.fp, tb);
    fprintf(f.fp, ",network.synapses,network.layers,network.neurons,images,accuracy_ideal,accuracy_behavioral,accuracy_spice,"
                  "delta_accuracy_behavioral,delta_accuracy_spice,agreement_behavioral_spice,mcnemar_p,"
                  "current_rel_err_mean,current_rel_err_max,inputs_failed,seconds\n");
    for (size_t k = 0; k < xb_tb_n_points(tb); k++)
        for (size_t t = 0; t < pr[k].trials; t++) {
            const trial_result *tr = &pr[k].t[t];
            double n = (double)pr[k].images, a[N_BACKENDS];
            for (int b = 0; b < N_BACKENDS; b++)
                a[b] = tr->correct[b] / n;
            fprintf(f.fp, "%zu,", k + 1);
            xb_csv_field(f.fp, xb_tb_grid(tb, k));
            fprintf(f.fp, ",%zu,%lu", t, tr->seed);
            write_columns(f.fp, tb, k);
            fprintf(f.fp, ",%zu,%zu,%zu,%zu", pr[k].synapses, pr[k].layers, pr[k].neurons, pr[k].images);
            for (int b = 0; b < N_BACKENDS; b++)
                csv_num(f.fp, a[b]);
            csv_num(f.fp, a[1] - a[0]);
            csv_num(f.fp, a[2] - a[0]);
            csv_num(f.fp, tr->agree / n);
            csv_num(f.fp, tr->mcnemar_p);
            csv_num(f.fp, tr->i_err_mean);
            csv_num(f.fp, tr->i_err_max);
            csv_num(f.fp, tr->failed);
            csv_num(f.fp, tr->seconds);
            fputc('\n', f.fp);
        }
    return xb_atomic_commit(&f, err);
}

/* Summary statistics of each point and backend, for the summary CSV, plots and analyses. */
static int summarize(const run_ctx *r, const point_result *pr, xb_summary_row **out, size_t *n_out, xb_error *err)
{
    const xb_tb *tb = r->tb;
    size_t n_points = xb_tb_n_points(tb), n = 0;
    xb_summary_row *rows = calloc(n_points * N_BACKENDS, sizeof *rows);
    double *acc = NULL, *dacc = NULL;
    size_t cap = 0;
    if (!rows)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t k = 0; k < n_points; k++) {
        const point_result *p = &pr[k];
        if (p->trials > cap) {
            free(acc);
            free(dacc);
            cap = p->trials;
            acc = malloc(cap * sizeof *acc);
            dacc = malloc(cap * sizeof *dacc);
            if (!acc || !dacc) {
                free(acc);
                free(dacc);
                free(rows);
                return xb_fail(err, XB_ENOMEM, "out of memory");
            }
        }
        for (int b = 0; b < N_BACKENDS; b++) {
            if (!isfinite(p->t[0].correct[b]))
                continue;
            xb_summary_row *s = &rows[n++];
            s->point = k;
            s->backend = 1u << b;
            s->trials = b == 0 ? 1 : p->trials; /* the software reference does not vary between trials */
            s->images = p->images;
            s->synapses = (double)p->synapses;
            s->layers = (double)p->layers;
            s->neurons = (double)p->neurons;
            s->seed = p->seed;
            double total = 0;
            for (size_t t = 0; t < s->trials; t++) {
                acc[t] = p->t[t].correct[b] / (double)p->images;
                dacc[t] = acc[t] - p->t[t].correct[0] / (double)p->images;
                total += p->t[t].correct[b];
            }
            xb_mc_stats a, d;
            xb_mc_stats_of(acc, s->trials, &a);
            xb_mc_stats_of(dacc, s->trials, &d);
            xb_mc_stats_clamp(&a, 0, 1);
            xb_mc_stats_clamp(&d, -1, 1);
            s->acc_mean = a.mean;
            s->acc_std = a.std;
            s->dacc_mean = d.mean;
            s->dacc_std = d.std;
            xb_wilson_ci((size_t)total, s->trials * p->images, XB_Z95, &s->wilson_lo, &s->wilson_hi);
            if (s->trials > 1) {
                s->acc_lo = a.ci95_lo;
                s->acc_hi = a.ci95_hi;
                s->dacc_lo = d.ci95_lo;
                s->dacc_hi = d.ci95_hi;
            } else {
                /* One trial: the interval of the accuracy itself, from the images. */
                s->acc_lo = s->wilson_lo;
                s->acc_hi = s->wilson_hi;
                s->dacc_lo = fmax(-1.0, s->wilson_lo - (a.mean - d.mean));
                s->dacc_hi = fmin(1.0, s->wilson_hi - (a.mean - d.mean));
            }
        }
    }
    free(acc);
    free(dacc);
    *out = rows;
    *n_out = n;
    return XB_OK;
}

static int write_summary_csv(const run_ctx *r, const xb_summary_row *rows, size_t n, xb_error *err)
{
    const xb_tb *tb = r->tb;
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "summary.csv", err);
    if (rc)
        return rc;
    fprintf(f.fp, "point,grid");
    write_columns_header(f.fp, tb);
    fprintf(f.fp, ",network.synapses,network.layers,network.neurons,backend,montecarlo_seed,trials,images,accuracy_mean,accuracy_std,"
                  "accuracy_ci95_lo,accuracy_ci95_hi,accuracy_wilson_lo,accuracy_wilson_hi,delta_accuracy_mean,"
                  "delta_accuracy_std,delta_accuracy_ci95_lo,delta_accuracy_ci95_hi\n");
    for (size_t i = 0; i < n; i++) {
        const xb_summary_row *s = &rows[i];
        fprintf(f.fp, "%zu,", s->point + 1);
        xb_csv_field(f.fp, xb_tb_grid(tb, s->point));
        write_columns(f.fp, tb, s->point);
        fprintf(f.fp, ",%.17g,%.17g,%.17g,%s,%lu,%zu,%zu", s->synapses, s->layers, s->neurons,
                xb_backend_name(s->backend), s->seed, s->trials, s->images);
        double v[] = {s->acc_mean, s->acc_std, s->acc_lo, s->acc_hi, s->wilson_lo, s->wilson_hi,
                      s->dacc_mean, s->dacc_std, s->dacc_lo, s->dacc_hi};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            csv_num(f.fp, v[j]);
        fputc('\n', f.fp);
    }
    return xb_atomic_commit(&f, err);
}

/* predictions.csv: the points' per-input files, one after the other. */
static int write_predictions(run_ctx *r, char (*pred_paths)[4400], xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "predictions.csv", err);
    if (rc)
        return rc;
    fprintf(f.fp, "point,trial,index,label,pred_ideal,pred_behavioral,pred_spice\n");
    for (size_t k = 0; k < xb_tb_n_points(r->tb) && !rc; k++) {
        if (!pred_paths[k][0])
            continue;
        FILE *in = fopen(pred_paths[k], "r");
        if (!in) {
            rc = xb_fail(err, XB_ERUNTIME, "%s: %s", pred_paths[k], strerror(errno));
            break;
        }
        char line[256];
        int first = 1;
        while (fgets(line, sizeof line, in)) {
            if (!first)
                fprintf(f.fp, "%zu,%s", k + 1, line);
            first = 0;
        }
        fclose(in);
    }
    if (rc) {
        xb_atomic_abort(&f);
        return rc;
    }
    return xb_atomic_commit(&f, err);
}

static int write_run_json(run_ctx *r, const point_result *pr, size_t n_computed, double seconds, xb_error *err)
{
    const xb_tb *tb = r->tb;
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "run.json", err);
    if (rc)
        return rc;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(&r->prov, &j);
    xb_json_string(&j, "testbench", xb_tb_name(tb));
    xb_json_string(&j, "title", xb_tb_title(tb));
    xb_json_string(&j, "testbench_sha256", xb_tb_sha256(tb));
    xb_json_string(&j, "mode", r->o->quick ? "quick" : "full");
    xb_json_int(&j, "points", (long long)xb_tb_n_points(tb));
    xb_json_int(&j, "points_computed", (long long)n_computed);
    xb_json_int(&j, "points_reused", (long long)(xb_tb_n_points(tb) - n_computed));
    xb_json_string(&j, "trial_seeds", "trial t of a point with montecarlo seed s draws from gsl_rng_mt19937 seeded with "
                   "splitmix64(s, t) (the seed column of points.csv)");
    xb_json_array_begin(&j, "point_seeds");
    for (size_t k = 0; k < xb_tb_n_points(tb); k++) {
        xb_tb_config c;
        if (xb_tb_config_of(tb, k, r->o->quick, &c, err) == XB_OK) {
            xb_json_object_begin(&j, NULL);
            xb_json_int(&j, "point", (long long)k + 1);
            xb_json_int(&j, "montecarlo_seed", (long long)c.seed);
            xb_json_int(&j, "training_seed", c.weights[0] ? -1 : (long long)c.train_seed);
            xb_json_int(&j, "trials", (long long)pr[k].trials);
            xb_json_object_end(&j);
        }
    }
    xb_json_array_end(&j);
    xb_json_number(&j, "seconds", seconds);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

/* ------------------------------------------------------------------------------------------------ */

/* The results folder, checked before anything runs: a run must not compute for an hour and then
 * find it cannot write. */
static int choose_out(run_ctx *r, xb_error *err)
{
    const xb_run_options *o = r->o;
    if (o->out && strlen(o->out) >= sizeof r->out)
        return xb_fail(err, XB_EINPUT, "--out %.100s...: path too long", o->out);
    if (o->out)
        snprintf(r->out, sizeof r->out, "%s", o->out);
    else
        xb_run_default_out(r->tb, o->quick, r->out, sizeof r->out);
    snprintf(r->state, sizeof r->state, "%.4000s/state", r->out);
    snprintf(r->logs, sizeof r->logs, "%.4000s/logs", r->out);
    return xb_check_out_dir(r->out, o->out ? "--out" : "the results folder (change it with --out)", err);
}

static int prepare_out(run_ctx *r, xb_error *err)
{
    const xb_run_options *o = r->o;
    /* What a killed run left: temporaries of processes that are gone (plots/, example/plots/ and
     * state/points/ are the deepest folders a run writes). */
    size_t stale = xb_remove_stale_temps(r->out, 2);
    if (stale)
        say(o, "removed %zu temporar%s left by a stopped run in %s/", stale, stale == 1 ? "y" : "ies", r->out);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/points", r->state);
    int rc = xb_mkdir_p(dir, err);
    if (!rc) {
        snprintf(dir, sizeof dir, "%s/networks", r->state);
        rc = xb_mkdir_p(dir, err);
    }
    if (!rc && r->any_spice)
        rc = xb_mkdir_p(r->logs, err);
    if (rc)
        return rc;
    if (o->fresh) {
        /* Only what a run writes there: finished points and trained networks. */
        const char *sub[2] = {"points", "networks"};
        for (int i = 0; i < 2; i++) {
            snprintf(dir, sizeof dir, "%s/%s", r->state, sub[i]);
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                char p[4700];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
            if (d)
                closedir(d);
        }
    }
    /* The testbench as run, beside its results. */
    unsigned char *data = NULL;
    size_t len;
    if ((rc = xb_read_file(xb_tb_path(r->tb), (size_t)1 << 20, &data, &len, err)))
        return rc;
    xb_atomic_file f;
    if (!(rc = xb_atomic_open_in(&f, r->out, "testbench.xml", err))) {
        fwrite(data, 1, len, f.fp);
        rc = xb_atomic_commit(&f, err);
    }
    free(data);
    return rc;
}

int xb_run_testbench(const xb_tb *tb, const xb_run_options *o, xb_error *err)
{
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.tb = tb;
    r.o = o;
    r.err = err;
    r.render = o->render && xb_plot_can_render();
    xb_provenance_init(&r.prov, o->argc, o->argv);
    add_input(&r, "testbench", xb_tb_path(tb), xb_tb_sha256(tb));
    for (size_t i = 0; i < xb_tb_n_outputs(tb); i++)
        if (xb_tb_output_at(tb, i)->kind == XB_OUT_EXAMPLE) {
            r.example = xb_tb_output_at(tb, i);
            r.example_point = r.example->point - 1;
        }
    size_t n_points = xb_tb_n_points(tb);
    point_result *pr = calloc(n_points, sizeof *pr);
    char (*pred_paths)[4400] = calloc(n_points, sizeof *pred_paths);
    xb_summary_row *rows = NULL;
    size_t n_rows = 0, n_computed = 0, trials_total = 0;
    double t_start = xb_now();
    int rc = pr && pred_paths ? XB_OK : xb_fail(err, XB_ENOMEM, "out of memory");
    if (!rc)
        rc = choose_out(&r, err);
    if (!rc)
        rc = plan(&r);
    if (!rc)
        rc = prepare_out(&r, err);
    if (!rc && o->render && !r.render)
        say(o, "gnuplot (with the svg and pngcairo terminals) is not installed: plots/ gets the data and gnuplot "
               "scripts, not the pictures (Debian: apt-get install gnuplot-nox)");
    if (!rc)
        say(o, "%s: %zu point%s -> %s/", xb_tb_name(tb), n_points, n_points == 1 ? "" : "s", r.out);
    for (size_t k = 0; k < n_points && !rc; k++) {
        xb_tb_config c;
        if ((rc = xb_tb_config_of(tb, k, o->quick, &c, err)))
            break;
        char path[4400];
        hash_inputs(&r, &c, &r.in);
        point_file(&r, k, &c, path, sizeof path, ".csv");
        if (c.backends & XB_BACKEND_SPICE)
            point_file(&r, k, &c, pred_paths[k], sizeof pred_paths[k], "-predictions.csv");
        /* The example point is computed again when its example folder is gone. */
        char deck[4400];
        const xb_tb_output *e = r.example;
        snprintf(deck, sizeof deck, "%s/example/L%zu_T%zu_%zu.cir", r.out, e ? e->layer : 1, e ? e->row_tile : 0,
                 e ? e->col_tile : 0);
        int example_ok = k != r.example_point || xb_is_file(deck);
        if (example_ok && xb_is_file(path) && (!pred_paths[k][0] || xb_is_file(pred_paths[k]))) {
            rc = read_point_state(path, c.trials, &pr[k], err);
            pr[k].seed = c.seed;
            continue;
        }
        double t0 = xb_now();
        if ((rc = eval_point(&r, k, &c, &pr[k], pred_paths[k])) || (rc = write_point_state(path, &c, &r.in, &pr[k], err)))
            break;
        pr[k].seed = c.seed;
        n_computed++;
        trials_total += pr[k].trials;
        if (!o->quiet) {
            char vals[512] = "";
            size_t at = 0;
            for (size_t col = 0; col < xb_tb_n_columns(tb) && at < sizeof vals; col++)
                at += (size_t)snprintf(vals + at, sizeof vals - at, " %s=%s", xb_tb_column(tb, col), xb_tb_value(tb, k, col));
            double a[N_BACKENDS] = {0};
            for (int b = 0; b < N_BACKENDS; b++) {
                for (size_t t = 0; t < pr[k].trials; t++)
                    a[b] += pr[k].t[t].correct[b];
                a[b] /= (double)(pr[k].trials * pr[k].images) / 100;
            }
            char accs[160];
            size_t aa = (size_t)snprintf(accs, sizeof accs, "ideal %.2f%%", a[0]);
            if (isfinite(a[1]))
                aa += (size_t)snprintf(accs + aa, sizeof accs - aa, ", behavioral %.2f%%", a[1]);
            if (isfinite(a[2]))
                snprintf(accs + aa, sizeof accs - aa, ", spice %.2f%%", a[2]);
            say(o, "point %zu/%zu%s: %s (%zu trial%s, %.1f s)", k + 1, n_points, vals, accs, pr[k].trials,
                pr[k].trials == 1 ? "" : "s", xb_now() - t0);
        }
    }
    if (!rc && n_computed < n_points)
        say(o, "%zu of %zu points reused from %s/points", n_points - n_computed, n_points, r.state);
    if (!rc)
        rc = write_points_csv(&r, pr, err);
    if (!rc)
        rc = summarize(&r, pr, &rows, &n_rows, err);
    if (!rc)
        rc = write_summary_csv(&r, rows, n_rows, err);
    if (!rc && r.any_spice)
        rc = write_predictions(&r, pred_paths, err);
    if (!rc) {
        xb_analysis_ctx ac = {tb, r.out, rows, n_rows, r.render, o->quiet};
        rc = xb_analysis_run_all(&ac, err);
    }
    if (!rc)
        rc = write_run_json(&r, pr, n_computed, xb_now() - t_start, err);
    if (!rc)
        printf("%s: %zu points (%zu computed, %zu trials) in %.1f s -> %s/\n", xb_tb_name(tb), n_points, n_computed,
               trials_total, xb_now() - t_start, r.out);
    for (size_t k = 0; pr && k < n_points; k++)
        free(pr[k].t);
    free(pr);
    free(pred_paths);
    free(rows);
    ctx_free(&r);
    return rc;
}
