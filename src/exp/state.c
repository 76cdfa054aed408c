// state: a run's state folder: point keys by input content, point state files written and read back checked, stale temporaries
#include "run_private.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "netlist.h"
#include "perturb.h"
#include "unitstore.h"

static const char state_header[] = "trial,seed,images,synapses,layers,neurons,correct_ideal,correct_behavioral,correct_spice,"
                                   "agree_behavioral_spice,mcnemar_p,current_rel_err_mean,current_rel_err_max,"
                                   "inputs_failed,seconds";

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

void xb_run_hash_inputs(run_ctx *r, const xb_tb_config *c, struct point_inputs *in)
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
        /* The gap compact model, where a point uses it (kept out of the others' keys: their state files
         * stay valid). */
        if (c->programming || c->pool.net.gap_cells)
            add_hash(r, d.rram.model_file, joined, sizeof joined);
    }
    xb_sha256_hex(joined, strlen(joined), in->device);
}

/* ------------------------------------------------------------------------------------------------ */
/* Keys: what a point's network and device are made of */

void xb_run_network_key(const xb_tb_config *c, const struct point_inputs *in, char *key, size_t len)
{
    if (c->weights[0]) {
        snprintf(key, len, "weights=%s;sha=%s;activation=%d", c->weights, in->weights, c->activation);
        return;
    }
    size_t at = (size_t)snprintf(key, len, "train;dataset=%s;sha=%s;hidden=", c->dataset, in->data);
    for (int i = 0; i < c->n_hidden && at < len; i++)
        at += (size_t)snprintf(key + at, len - at, "%s%zu", i ? "," : "", c->hidden[i]);
    if (at < len && c->layers[0]) /* convolutional: the layer list replaces the hidden sizes */
        at += (size_t)snprintf(key + at, len - at, ";layers=%s", c->layers);
    if (at < len)
        snprintf(key + at, len - at, ";act=%d;epochs=%zu;batch=%zu;lr=%.17g;momentum=%.17g;wd=%.17g;seed=%lu;train=%zu",
                 c->activation, c->epochs, c->batch, c->lr, c->momentum, c->weight_decay, c->train_seed,
                 c->train_images);
    /* The training recipe beyond plain SGD, only when it differs from plain training, so that plain
     * networks keep their earlier keys (and cached files). The level set "device" adds the device's
     * identity (file contents and overrides), whose levels the network was trained onto. */
    int plain = c->optimizer == 0 && c->dropout == 0 && c->grad_clip == 0 && c->lr_decay == 1 && c->lr_step == 1 &&
                !strcmp(c->train_noise, "none") && !strcmp(c->train_levels, "none") &&
                !strcmp(c->train_norm, "maxabs") && !strcmp(c->act_quant, "none") && isinf(c->ste_threshold) &&
                c->noise_ramp == 0;
    at = strlen(key);
    if (!plain && at < len)
        at += (size_t)snprintf(key + at, len - at,
                               ";opt=%d;dropout=%.17g;clip=%.17g;decay=%.17g/%zu;noise=%s;ramp=%zu;levels=%s;"
                               "tnorm=%s;tc=%.17g;actq=%s",
                               c->optimizer, c->dropout, c->grad_clip, c->lr_decay, c->lr_step, c->train_noise,
                               c->noise_ramp, c->train_levels, c->train_norm, c->ste_threshold, c->act_quant);
    if (!plain && strstr(c->train_levels, "device") && at < len) {
        char dev[13000], hex[65];
        xb_run_device_text(c, in, dev, sizeof dev);
        xb_sha256_hex(dev, strlen(dev), hex);
        snprintf(key + at, len - at, ";device=%s", hex);
    }
}

/* The device part of a point's identity: the file, its contents and every override. */
void xb_run_device_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len)
{
    snprintf(buf, len, "%s;%s;%.17g;%.17g;%.17g;%.17g;%.17g;%.17g;%s;%s;%s", c->device_file, in->device, c->v_read_V,
             c->vg_read_V, c->sigma_d2d, c->p_stuck_lrs, c->p_stuck_hrs, c->sigma_c2c, c->mosfet_file, c->mosfet_model,
             c->rram_file);
}

/* ------------------------------------------------------------------------------------------------ */
/* The state folder: one file per finished point, named by a hash of its configuration */

void xb_run_point_config_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "xbarsim %s state 3|%s|%s|%zu|%zu|", XB_VERSION, c->dataset, in->data,
                                 c->images, c->calib);
    char key[8400], dev[13000];
    xb_run_network_key(c, in, key, sizeof key);
    xb_run_device_text(c, in, dev, sizeof dev);
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
    if (c->pool.net.gap_cells) /* gap cells are not 1T1R cells of rram.lib; absent otherwise, as rows= */
        PUT("cells=gap|");
    for (int i = 0; i < c->n_perturb; i++) {
        char spec[256];
        xb_perturb_format(&c->perturb[i].model, spec, sizeof spec);
        PUT("P%s@%s;", spec, c->perturb[i].layers);
    }
    PUT("|%u;%zu;%lu", c->backends, c->trials, c->seed);
    if (c->programming) /* absent for inference studies: their state files stay valid */
        PUT("|programming %zu %u", c->prog_cells, c->prog_methods);
#undef PUT
}

/* The example point's state also depends on what its example draws. */
static void example_text(const run_ctx *r, char *buf, size_t len)
{
    const xb_tb_output *e = r->example;
    snprintf(buf, len, "|example %zu %zu %zu %zu", e ? e->layer : 1, e ? e->row_tile : 0, e ? e->col_tile : 0,
             e ? e->input : 0);
}

void xb_run_point_file(const run_ctx *r, size_t k, const xb_tb_config *c, char *path, size_t len, const char *suffix)
{
    char text[32768], hex[65];
    xb_run_point_config_text(c, &r->in, text, sizeof text);
    if (k == r->example_point)
        example_text(r, text + strlen(text), sizeof text - strlen(text));
    xb_sha256_hex(text, strlen(text), hex);
    snprintf(path, len, "%s/points/%.24s%s", r->state, hex, suffix);
}

void xb_run_point_units_dir(const run_ctx *r, size_t k, const xb_tb_config *c, char *path, size_t len)
{
    char points[4400];
    xb_run_point_file(r, k, c, points, sizeof points, "");
    const char *hash = strrchr(points, '/');
    snprintf(path, len, "%s/units/%s", r->state, hash ? hash + 1 : points);
}

int xb_run_write_point_state(const char *path, const xb_tb_config *c, const struct point_inputs *in,
                             const point_result *pr, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    char text[32768];
    xb_run_point_config_text(c, in, text, sizeof text);
    fprintf(f.fp, "# %s\n%s\n", text, state_header);
    for (size_t t = 0; t < pr->trials; t++) {
        const trial_result *tr = &pr->t[t];
        fprintf(f.fp, "%zu,%lu,%zu,%zu,%zu,%zu", t, tr->seed, pr->images, pr->synapses, pr->layers, pr->neurons);
        for (int b = 0; b < N_BACKENDS; b++)
            xb_run_csv_num(f.fp, tr->correct[b]);
        xb_run_csv_num(f.fp, tr->agree);
        xb_run_csv_trial_tail(f.fp, tr);
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

int xb_run_read_point_state(const char *path, size_t trials_expected, point_result *pr, xb_error *err)
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
/* The results folder, made ready before any point runs */

int xb_run_prepare_out(run_ctx *r, xb_error *err)
{
    const xb_run_options *o = r->o;
    /* What a killed run left: temporaries of processes that are gone (plots/, example/plots/,
     * state/points/ and state/units/POINT/ are the deepest folders a run writes). */
    size_t stale = xb_remove_stale_temps(r->out, 3);
    if (stale)
        xb_run_say(o, "removed %zu temporar%s left by a stopped run in %s/", stale, stale == 1 ? "y" : "ies", r->out);
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
        /* Only what a run writes there: finished points, trained networks, the unit stores of points
         * that were stopped partway through. */
        const char *sub[3] = {"points", "networks", "units"};
        for (int i = 0; i < 3; i++) {
            snprintf(dir, sizeof dir, "%s/%s", r->state, sub[i]);
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                char p[4700];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                if (i == 2) {
                    xb_error ignored = {0}; /* a unit store left behind only costs its space */
                    xb_unit_store_remove(p, &ignored);
                } else
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
