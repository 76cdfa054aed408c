// point: evaluating one point of a testbench: data, network, chip, then every trial's programming and inference
#include "run_private.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "build.h"
#include "compare.h"
#include "fileio.h"
#include "hwtrain.h"
#include "mc.h"
#include "metrics.h"
#include "perturb.h"
#include "pipeline.h"
#include "pool.h"
#include "progress.h"
#include "train.h"
#include "weights.h"

/* ------------------------------------------------------------------------------------------------ */
/* Small helpers */

/* splitmix64: trial t of a testbench seeded s draws from mt19937 seeded with mix(s, t), so trials are
 * independent streams and trial t sees the same stream at every point (common random numbers make
 * neighbouring points of a sweep comparable). */
unsigned long xb_run_trial_seed(unsigned long seed, size_t trial)
{
    uint64_t z = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + (uint64_t)trial + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (unsigned long)(z & 0xffffffffULL);
}

/* ------------------------------------------------------------------------------------------------ */
/* Data */

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
        xb_run_add_input(r, "test_images", slot->test->images_path, slot->test->images_sha256);
        xb_run_add_input(r, "test_labels", slot->test->labels_path, slot->test->labels_sha256);
        xb_run_add_input(r, "train_images", slot->train->images_path, slot->train->images_sha256);
        xb_run_add_input(r, "train_labels", slot->train->labels_path, slot->train->labels_sha256);
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
/* Networks */


/* A trained network from the state folder, or trained now (and saved there for later runs). */
static int get_network(run_ctx *r, const xb_tb_config *c, const xb_dataset *train, xb_mlp **out)
{
    char key[8400];
    xb_run_network_key(c, &r->in, key, sizeof key);
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
            xb_mlp *m = NULL;
            if (c->layers[0]) {
                xb_layer_spec ls[XB_MAX_LAYERS];
                int nl = 0;
                if ((rc = xb_layer_list_parse(c->layers, "network layers", ls, XB_MAX_LAYERS - 1, &nl, r->err)))
                    return rc;
                ls[nl++] = (xb_layer_spec){.units = (size_t)train->n_classes};
                if (!(m = xb_net_new(train->rows, train->cols, 1, nl, ls, (xb_activation)c->activation, r->err)))
                    return r->err->code ? r->err->code : XB_EINPUT;
            } else {
                size_t sizes[XB_TB_MAX_HIDDEN + 2];
                sizes[0] = train->dim;
                for (int i = 0; i < c->n_hidden; i++)
                    sizes[i + 1] = c->hidden[i];
                sizes[c->n_hidden + 1] = (size_t)train->n_classes;
                m = xb_mlp_new(c->n_hidden + 1, sizes, (xb_activation)c->activation);
                if (!m)
                    return xb_fail(r->err, XB_ENOMEM, "out of memory");
            }
            xb_train_options to;
            xb_train_defaults(&to);
            to.epochs = c->epochs;
            to.batch = c->batch;
            to.lr = isnan(c->lr) ? xb_train_default_lr(c->n_weight_layers - 1, (xb_activation)c->activation) : c->lr;
            to.momentum = c->momentum;
            to.weight_decay = c->weight_decay;
            to.seed = c->train_seed;
            to.init = 1;
            to.quiet = r->o->quiet;
            to.optimizer = (xb_optimizer)c->optimizer;
            to.dropout = c->dropout;
            to.grad_clip = c->grad_clip;
            to.lr_decay = c->lr_decay;
            to.lr_step = c->lr_step;
            /* Hardware-aware training: the level set "device" is the point's device, overrides included. */
            xb_hwtrain hw;
            xb_device dev;
            int want_device = strstr(c->train_levels, "device") != NULL;
            if ((want_device && (rc = xb_run_load_device(c, &dev, r->err))) ||
                (rc = xb_hwtrain_parse(&hw, c->n_weight_layers, c->train_noise, c->train_levels, c->train_norm,
                                       c->ste_threshold, c->noise_ramp, c->act_quant, want_device ? &dev : NULL,
                                       r->err))) {
                xb_mlp_free(&m);
                return xb_error_prefix(r->err, "the network's hardware-aware training");
            }
            xb_dataset part = head(train, c->train_images);
            char desc[128];
            xb_run_say(r->o, "training %s on %zu %s images (%zu epochs, seed %lu%s)", xb_mlp_describe(m, desc, sizeof desc),
                part.n, c->dataset, c->epochs, c->train_seed, xb_hwtrain_active(&hw) ? ", hardware-aware" : "");
            rc = xb_hwtrain_train(m, &part, &to, &hw, NULL, r->err);
            xb_hwtrain_clear(&hw);
            if (rc || (rc = xb_weights_save_npz(m, path, XB_DT_F8, r->err))) {
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

int xb_run_load_device(const xb_tb_config *c, xb_device *d, xb_error *err)
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
    xb_run_device_text(c, &r->in, dev, sizeof dev);
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
    if ((rc = xb_run_load_device(c, &r->dev, r->err)))
        return rc;
    xb_run_add_input(r, "device", c->device_file, NULL);
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
/* One point */

int xb_run_eval_point(run_ctx *r, size_t k, const xb_tb_config *c, point_result *pr, const char *pred_path)
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
    for (int l = 1; l < m->n_layers; l++) /* hidden units of the dense layers (a conv layer's maps are not) */
        if (!xb_mlp_is_conv(m, l - 1))
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
        tr->seed = xb_run_trial_seed(c->seed, t);
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
            rc = xb_run_example_programming(r, prres, prog, err);
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
            rc = xb_run_example_netlist(r, c, chip, bm, &test, err);
        xb_behav_free(&bm);
        if (rc)
            goto done;
        if (spice) {
            xb_pool_options pool = c->pool;
            if (r->o->jobs)
                pool.jobs = r->o->jobs;
            pool.quiet = r->o->quiet;
            snprintf(pool.log_dir, sizeof pool.log_dir, "%s", r->logs);
            /* Finished units are stored as they come, so a point stopped partway resumes where it was. */
            xb_run_point_units_dir(r, k, c, pool.unit_dir, sizeof pool.unit_dir);
            snprintf(pool.unit_key, sizeof pool.unit_key, "%s;trial=%zu;seed=%lu", strrchr(pool.unit_dir, '/') + 1, t,
                     tr->seed);
            xb_circuit circ;
            xb_paired pair;
            /* Energy and settling time (spice energy="on"): the first trial's, per tile. */
            xb_energy energy;
            xb_energy_init(&energy, &c->energy);
            int measure = c->energy.on && t == 0;
            pool.energy = measure ? &energy : NULL;
            if (measure && (rc = xb_energy_check(&c->energy, err))) {
                xb_energy_free(&energy);
                goto done;
            }
            rc = xb_eval_circuit(chip, &r->dev, &pool, &bo, adc_fs, &test, is_example && t == 0 ? 20 : 0, rng,
                                 pred[1], pred[2], &circ, &pair, &r->prov, err);
            circ.pool.o.energy = NULL;
            if (!rc && measure)
                rc = xb_run_write_energy(r, k, is_example, &energy, err);
            xb_energy_free(&energy);
            r->units_solved += circ.pool.stats.units;
            r->units_loaded += circ.pool.stats.units_loaded;
            r->units_rejected += circ.pool.stats.units_rejected;
            if (!rc) {
                tr->mcnemar_p = pair.p;
                tr->correct[2] = (double)xb_count_correct(pred[2], test.y, test.n);
                tr->agree = (double)pair.agree;
                tr->failed = (double)circ.n_failed;
                xb_compare_totals(&circ.cc, &tr->i_err_mean, &tr->i_err_max);
                if (is_example && t == 0)
                    rc = xb_run_example_circuit(r, &circ, err);
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

