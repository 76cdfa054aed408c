// pipeline: the one evaluation pipeline: backends on one chip, Monte Carlo trials, paired comparison, result files, provenance
#include "pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"
#include "mpi_exec.h"
#include "ngspice.h"
#include "energy_plot.h"
#include "plot.h"
#include "progress.h"
#include "unitstore.h"
#include "weights.h"

void xb_eval_spec_defaults(xb_eval_spec *s)
{
    memset(s, 0, sizeof *s);
    s->hidden_activation = -1;
    s->dataset = "mnist";
    s->backend = XB_EVAL_IDEAL;
    s->seed = 1;
    xb_chip_spec_defaults(&s->chip);
    const char *texts[5] = {"none", "maxabs", "differential", "row", "64x64"};
    memcpy(s->chip_text, texts, sizeof texts);
    xb_behav_defaults(&s->bo);
    s->bo.adc_calibrate = 1;
    xb_pool_defaults(&s->pool);
    xb_energy_defaults(&s->energy);
}

void xb_eval_result_free(xb_eval_result *r)
{
    free(r->acc);
    r->acc = NULL;
    xb_circuit_free(&r->circ);
    xb_energy_free(&r->energy);
}

static int ask_version(struct xb_spice *sp, void *ctx, void *result, xb_error *err)
{
    (void)ctx, (void)err;
    *(int *)result = xb_spice_version(sp);
    return XB_OK;
}

int xb_eval_ngspice_linked(char *why, size_t why_len)
{
    xb_pool_options o;
    xb_pool_defaults(&o);
    xb_error err = {0};
    int v = 0;
    if (xb_pool_run_one(&o, ask_version, NULL, &v, sizeof v, &err) != XB_OK || v <= 0) {
        snprintf(why, why_len, "%s", err.msg[0] ? err.msg : "libngspice started but did not print its version");
        v = 0;
    }
    return v;
}

void xb_eval_fault_hook(xb_pool_options *po)
{
    const char *fault = getenv("XBARSIM_FAULT_UNIT");
    if (fault)
        po->fault_unit = atoi(fault);
    const char *quit = getenv("XBARSIM_FAULT_QUIT_UNIT");
    if (quit)
        po->fault_quit_unit = atoi(quit);
}

int xb_eval_chip_build(const char *device, const xb_chip_spec *spec, const xb_mlp *m, const char *dataset,
                       xb_device *dev, xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err)
{
    *chip = NULL;
    int rc = xb_device_load(device, NULL, dev, err);
    if (rc)
        return rc;
    xb_dataset *cal = NULL;
    if (xb_chip_spec_needs_calib(m) && !(rc = xb_dataset_load(dataset, XB_SPLIT_TRAIN, &cal, err)))
        xb_dataset_truncate(cal, spec->calib);
    if (!rc)
        rc = xb_chip_build(spec, dev, m, cal ? cal->x : NULL, cal ? cal->n : 0, chip, levels_used, levels_len, err);
    xb_dataset_free(&cal);
    return rc;
}

int xb_eval_circuit(const xb_chip *c, const xb_device *dev, const xb_pool_options *po, const xb_behav_options *bo,
                    const double *adc_fs_A, const xb_dataset *test, size_t sample_inputs, gsl_rng *rng,
                    const int *pred_behav, int *pred_spice, xb_circuit *circ, xb_paired *pair, xb_provenance *prov,
                    xb_error *err)
{
    xb_pool_options o = *po;
    xb_eval_fault_hook(&o);
    int rc = xb_circuit_classify_fs(c, dev, &o, bo, adc_fs_A, test->x, test->n, sample_inputs, "spice", rng,
                                    pred_spice, circ, err);
    if (rc)
        return rc;
    /* The run's own statistics say which library solved it (no second start to ask). */
    if (prov)
        xb_provenance_set_spice(prov, circ->pool.stats.ngspice_version, circ->pool.stats.solver);
    xb_paired_compare(pred_behav, pred_spice, test->y, test->n, pair);
    return XB_OK;
}

/* energy.csv (per tile) and the energy-plot figure. The figure's data and script must be written; the
 * pictures are a convenience: without gnuplot, or when gnuplot fails on them, say so and go on. */
/* The cell kind as --cells names it: linear resistors, the 1T1R cell of rram.lib, or 1T1R with the gap
 * compact model of the device's <rram> group. */
static const char *cells_kind(const xb_netlist_options *o)
{
    return o->linear_cells ? "linear" : o->gap_cells ? "gap" : "1t1r";
}

static int write_energy(const char *dir, const xb_energy *e, xb_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/energy.csv", dir);
    int rc = xb_energy_write_csv(e, path, err);
    if (rc || !e->n_tiles)
        return rc;
    int render = xb_plot_can_render();
    xb_error perr = {0};
    rc = xb_energy_plot(e, dir, "energy-plot", render, &perr);
    int drew = !rc;
    rc = xb_plot_tolerate(rc, render, &perr, "xbarsim eval", "energy-plot", dir, err);
    if (drew && !render)
        fprintf(stderr, "xbarsim eval: gnuplot (with svg and pngcairo) was not found: energy-plot in %s/ has its data "
                "and script but no pictures\n", dir);
    return rc;
}

static int write_trials(const char *dir, const double *acc, size_t trials, double acc_ideal, xb_error *err)
{
    char path[4200];
    xb_atomic_file f;
    snprintf(path, sizeof path, "%s/trials.csv", dir);
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "trial,accuracy,delta_accuracy\n");
    for (size_t t = 0; t < trials; t++)
        fprintf(f.fp, "%zu,%.17g,%.17g\n", t, acc[t], acc[t] - acc_ideal);
    if ((rc = xb_atomic_commit(&f, err)))
        return rc;
    double *d = malloc(trials * sizeof *d);
    if (!d)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t t = 0; t < trials; t++)
        d[t] = acc[t] - acc_ideal;
    xb_mc_stats s[2];
    xb_mc_stats_of(acc, trials, &s[0]);
    xb_mc_stats_of(d, trials, &s[1]);
    xb_mc_stats_clamp(&s[0], 0, 1);
    xb_mc_stats_clamp(&s[1], -1, 1);
    free(d);
    snprintf(path, sizeof path, "%s/mc_summary.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "metric,trials,mean,std,ci95_lo,ci95_hi,min,max\n");
    const char *names[2] = {"accuracy", "delta_accuracy"};
    for (int i = 0; i < 2; i++)
        fprintf(f.fp, "%s,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", names[i], s[i].n, s[i].mean, s[i].std,
                s[i].ci95_lo, s[i].ci95_hi, s[i].min, s[i].max);
    return xb_atomic_commit(&f, err);
}

static int write_run_json(const char *dir, const xb_provenance *prov, const xb_mlp *m, const xb_eval_spec *job,
                          const xb_class_result *r, int n_backends, const double *acc, size_t trials,
                          const char *levels, double seconds, const xb_circuit *circ,
                          const xb_paired *pair, const xb_energy *energy, xb_error *err)
{
    char path[4200], desc[256];
    snprintf(path, sizeof path, "%s/run.json", dir);
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_string(&j, "network", xb_mlp_describe(m, desc, sizeof desc));
    xb_json_string(&j, "dataset", job->dataset);
    xb_json_string(&j, "split", "test");
    if (job->backend == XB_EVAL_BEHAVIORAL) {
        xb_json_object_begin(&j, "chip");
        xb_json_string(&j, "conductance_map", job->chip_path);
        xb_json_string(&j, "device", job->chip_path ? NULL : job->device);
        xb_json_string(&j, "levels", job->chip_path ? NULL : levels);
        xb_json_string(&j, "norm", job->chip_path ? NULL : job->chip_text[1]);
        xb_json_string(&j, "mapping", job->chip_path ? NULL : job->chip_text[2]);
        xb_json_string(&j, "bias", job->chip_path ? NULL : job->chip_text[3]);
        xb_json_string(&j, "tile", job->chip_path ? NULL : job->chip_text[4]);
        xb_json_int(&j, "dac_bits", job->bo.dac_bits);
        xb_json_int(&j, "adc_bits", job->bo.adc_bits);
        xb_json_string(&j, "adc_range", job->bo.adc_calibrate ? "calibrate" : "levels");
        xb_json_number(&j, "read_noise", job->bo.sigma_read);
        xb_json_array_begin(&j, "perturbations");
        for (int i = 0; i < job->n_perturb; i++)
            xb_json_string(&j, NULL, job->perturb_text[i]);
        xb_json_array_end(&j);
        xb_json_int(&j, "trials", (long long)trials);
        xb_json_object_end(&j);
    }
    xb_json_array_begin(&j, "results");
    for (int b = 0; b < n_backends; b++) {
        xb_json_object_begin(&j, NULL);
        xb_json_string(&j, "backend", r[b].backend);
        xb_json_int(&j, "samples", (long long)r[b].n);
        xb_json_int(&j, "correct", (long long)r[b].correct);
        xb_json_number(&j, "accuracy", r[b].accuracy);
        xb_json_number(&j, "accuracy_ci95_lo", r[b].ci95_lo);
        xb_json_number(&j, "accuracy_ci95_hi", r[b].ci95_hi);
        xb_json_number(&j, "delta_accuracy_vs_ideal", xb_class_result_delta(r, b));
        xb_json_object_end(&j);
    }
    xb_json_array_end(&j);
    if (trials) {
        xb_mc_stats s;
        xb_mc_stats_of(acc, trials, &s);
        xb_mc_stats_clamp(&s, 0, 1);
        xb_json_object_begin(&j, "monte_carlo");
        xb_json_int(&j, "trials", (long long)trials);
        xb_json_number(&j, "accuracy_mean", s.mean);
        xb_json_number(&j, "accuracy_std", s.std);
        xb_json_number(&j, "accuracy_mean_ci95_lo", s.ci95_lo);
        xb_json_number(&j, "accuracy_mean_ci95_hi", s.ci95_hi);
        xb_json_number(&j, "delta_accuracy_mean", s.mean - r[0].accuracy);
        xb_json_object_end(&j);
    }
    if (circ) {
        const xb_pool *pool = &circ->pool;
        xb_json_object_begin(&j, "spice");
        xb_json_int(&j, "ngspice_version", pool->stats.ngspice_version);
        xb_json_string(&j, "solver", pool->stats.solver);
        xb_json_int(&j, "jobs", pool->o.jobs); /* per MPI rank */
        xb_json_int(&j, "mpi_ranks", xb_mpi_size());
        xb_json_int(&j, "chunk", (long long)pool->o.chunk);
        xb_json_string(&j, "cells", cells_kind(&pool->o.net));
        xb_json_number(&j, "r_row_ohm", pool->o.net.r_row_ohm);
        xb_json_number(&j, "r_col_ohm", pool->o.net.r_col_ohm);
        xb_json_number(&j, "rram_v0_V", pool->o.net.rram_v0_V);
        xb_json_int(&j, "units", (long long)pool->stats.units);
        xb_json_int(&j, "units_loaded", (long long)pool->stats.units_loaded);
        xb_json_int(&j, "units_rejected", (long long)pool->stats.units_rejected);
        xb_json_int(&j, "units_retried", (long long)pool->stats.unit_retries);
        xb_json_int(&j, "workers_started", (long long)pool->stats.workers_started);
        xb_json_int(&j, "workers_lost", (long long)pool->stats.workers_lost);
        xb_json_int(&j, "solves_retried", (long long)pool->stats.inputs_retried);
        xb_json_int(&j, "solves_failed", (long long)pool->stats.inputs_failed);
        xb_json_int(&j, "peak_worker_rss_kB", pool->stats.peak_rss_kb);
        xb_json_int(&j, "newton_iterations", (long long)pool->stats.newton_iterations);
        xb_json_number(&j, "newton_iterations_per_input",
                       pool->stats.newton_inputs ? (double)pool->stats.newton_iterations / (double)pool->stats.newton_inputs
                                                 : NAN);
        xb_json_number(&j, "seconds", pool->stats.seconds);
        xb_json_string(&j, "row_sources", pool->stats.row_sources);
        xb_json_string(&j, "mode", pool->o.linear ? "linear" : "exact");
        if (pool->o.linear) {
            xb_json_int(&j, "linear_sampled_inputs", (long long)pool->stats.linear_sampled);
            xb_json_string(&j, "linear_sample_rng", "mt19937");
            xb_json_int(&j, "linear_sample_seed", (long long)pool->o.linear_seed);
            xb_json_int(&j, "linear_currents_checked", (long long)pool->stats.linear_checked);
            xb_json_number(&j, "linear_err_max", pool->stats.linear_err_max);
            xb_json_number(&j, "linear_err_mean", pool->stats.linear_checked
                                                      ? pool->stats.linear_err_sum / (double)pool->stats.linear_checked
                                                      : NAN);
        }
        double mean, worst;
        xb_compare_totals(&circ->cc, &mean, &worst);
        xb_json_number(&j, "column_current_rel_err_mean", mean);
        xb_json_number(&j, "column_current_rel_err_max", worst);
        if (n_backends >= 3) {
            xb_json_object_begin(&j, "delta_accuracy");
            xb_json_number(&j, "behavioral_vs_ideal", r[1].accuracy - r[0].accuracy);
            xb_json_number(&j, "spice_vs_ideal", r[2].accuracy - r[0].accuracy);
            xb_json_number(&j, "spice_vs_behavioral", r[2].accuracy - r[1].accuracy);
            xb_json_object_end(&j);
        }
        if (energy)
            xb_energy_json(energy, &j, (int)m->n_layers);
        xb_json_object_begin(&j, "mcnemar_behavioral_vs_spice");
        xb_json_int(&j, "only_behavioral_correct", (long long)pair->only_a);
        xb_json_int(&j, "only_spice_correct", (long long)pair->only_b);
        xb_json_number(&j, "chi2", pair->stat);
        xb_json_number(&j, "p_value", pair->p);
        xb_json_object_end(&j);
        xb_json_object_end(&j);
    }
    xb_json_number(&j, "seconds", seconds);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

int xb_eval_run(const xb_eval_spec *s, xb_eval_result *res, xb_error *err)
{
    memset(res, 0, sizeof *res);
    res->pair = (xb_paired){0, 0, 0, NAN, NAN};
    int spice = s->backend == XB_EVAL_SPICE, behavioral = s->backend != XB_EVAL_IDEAL;
    /* The trials' additive models set bo.sigma_out: a copy, so the spec stays as given. */
    xb_behav_options bo = s->bo;
    xb_layer_perturb perturb[XB_MC_MAX_PERTURB];
    xb_provenance prov;
    xb_provenance_init(&prov, s->argc, s->argv);
    xb_provenance_set_seed(&prov, s->seed);
    xb_mlp *m = NULL;
    xb_dataset *test = NULL, *cal = NULL;
    xb_confusion *conf = NULL;
    xb_chip *base = NULL, *chip = NULL;
    xb_behav *bm = NULL;
    double adc_fs[XB_BEHAV_MAX_LAYERS];
    gsl_rng *rng = NULL;
    int *pred[3] = {NULL, NULL, NULL};
    xb_circuit *circ = &res->circ;
    double *acc = NULL;
    char levels[512] = "none";
    xb_device dev;
    xb_net_desc d = s->net;
    d.hidden = s->hidden_activation;
    int rc = xb_weights_load_desc(s->weights, &d, &m, err);
    if (!rc)
        rc = xb_dataset_load(s->dataset, XB_SPLIT_TEST, &test, err);
    if (rc)
        goto done;
    if (s->limit)
        xb_dataset_truncate(test, s->limit);
    if (m->sizes[0] != test->dim) {
        rc = xb_fail(err, XB_EINPUT, "%s: the network takes %zu inputs (W1 has %zu rows) but %s images have "
                     "%zu pixels", s->weights, m->sizes[0], m->sizes[0], s->dataset, test->dim);
        goto done;
    }
    if (m->sizes[m->n_layers] < (size_t)test->n_classes) {
        rc = xb_fail(err, XB_EINPUT, "%s: the network has %zu outputs but %s has %d classes", s->weights,
                     m->sizes[m->n_layers], s->dataset, test->n_classes);
        goto done;
    }
    if ((rc = xb_provenance_add_weights(&prov, s->weights, err)))
        goto done;
    xb_provenance_add_input(&prov, "test_images", test->images_path, test->images_sha256, err);
    xb_provenance_add_input(&prov, "test_labels", test->labels_path, test->labels_sha256, err);
    for (int i = 0; i < s->n_perturb; i++)
        if ((rc = xb_layer_perturb_parse(s->perturb_text[i], m->n_layers, &perturb[i], err))) {
            xb_error_prefix(err, "--perturb");
            goto done;
        }

    size_t classes = m->sizes[m->n_layers];
    for (int b = 0; b < 3; b++)
        if (!(pred[b] = malloc(test->n * sizeof *pred[b]))) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
            goto done;
        }
    double t0 = xb_now();
    if ((rc = xb_mlp_predict(m, test->x, test->n, pred[0], err)))
        goto done;
    xb_class_result r[3] = {{.backend = "ideal"}, {.backend = "behavioral"}, {.backend = "spice"}};
    int n_backends = 1;
    xb_confusion *conf_ideal = xb_confusion_new((int)classes);
    if (!conf_ideal) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
        goto done;
    }
    xb_class_result_tally(&r[0], conf_ideal, test->y, pred[0], test->n);
    conf = conf_ideal;

    if (behavioral) {
        if (s->chip_path) {
            if ((rc = xb_chip_load(s->chip_path, &base, err)))
                goto done;
            if (xb_layer_in_values(&base->layers[0]) != m->sizes[0] || base->n_layers != m->n_layers ||
                base->layers[base->n_layers - 1].fan_out != classes) {
                rc = xb_fail(err, XB_EINPUT, "%s: the chip holds a different network than %s", s->chip_path,
                             s->weights);
                goto done;
            }
            xb_provenance_add_input(&prov, "conductance_map", s->chip_path, NULL, err);
            if (spice && (rc = xb_device_load(s->device, NULL, &dev, err)))
                goto done;
        } else {
            if ((rc = xb_eval_chip_build(s->device, &s->chip, m, s->dataset, &dev, &base, levels, sizeof levels, err)))
                goto done;
            xb_provenance_add_input(&prov, "device", s->device, NULL, err);
        }
        if (s->bo.adc_bits && s->bo.adc_calibrate) {
            if ((rc = xb_dataset_load(s->dataset, XB_SPLIT_TRAIN, &cal, err)))
                goto done;
            xb_dataset_truncate(cal, s->chip.calib);
        }
        chip = xb_chip_clone(base);
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!chip || !rng) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
            goto done;
        }
        gsl_rng_set(rng, s->seed);
        /* The nominal chip's ADC full scales, once: for its behavioral model and for the circuit. */
        if ((rc = xb_behav_adc_calibrate(chip, &bo, cal ? cal->x : NULL, cal ? cal->n : 0, adc_fs, err)) ||
            (rc = xb_behav_new_fs(chip, &bo, adc_fs, &bm, err)))
            goto done;
        /* The nominal run: the chip as programmed, no trial perturbations. */
        if ((rc = xb_behav_forward(bm, test->x, test->n, rng, NULL, pred[1], err)))
            goto done;
        conf = xb_confusion_new((int)classes);
        if (!conf) {
            conf = conf_ideal;
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
            goto done;
        }
        xb_confusion_free(&conf_ideal);
        xb_class_result_tally(&r[1], conf, test->y, pred[1], test->n);
        n_backends = 2;
        if (s->trials) {
            acc = malloc(s->trials * sizeof *acc);
            int *tp = malloc(test->n * sizeof *tp);
            if (!acc || !tp) {
                free(tp);
                rc = xb_fail(err, XB_ENOMEM, "out of memory");
                goto done;
            }
            xb_progress bar;
            xb_progress_start(&bar, stderr, "trials", s->trials, s->quiet);
            for (size_t t = 0; t < s->trials && !rc; t++) {
                rc = xb_mc_perturb_chip(base, perturb, s->n_perturb, rng, chip, &bo, err);
                if (!rc) {
                    /* sigma_out may have changed: rebuild the model's options. */
                    xb_behav_free(&bm);
                    rc = xb_behav_new(chip, &bo, cal ? cal->x : NULL, cal ? cal->n : 0, &bm, err);
                }
                if (!rc)
                    rc = xb_behav_forward(bm, test->x, test->n, rng, NULL, tp, err);
                acc[t] = (double)xb_count_correct(tp, test->y, test->n) / (double)test->n;
                char status[64];
                snprintf(status, sizeof status, "last %.2f%%", 100 * acc[t]);
                xb_progress_update(&bar, t + 1, status);
            }
            free(tp);
            if (rc)
                goto done;
            xb_mc_stats st;
            xb_mc_stats_of(acc, s->trials, &st);
            char status[96];
            snprintf(status, sizeof status, "mean %.2f%% std %.2f%%", 100 * st.mean, 100 * st.std);
            xb_progress_finish(&bar, status);
        }
    }
    if (spice) {
        /* The circuit: the chip as programmed, every tile through libngspice, the same digital path. */
        xb_pool_options po = s->pool;
        po.quiet = s->quiet;
        po.linear_seed = s->seed;
        snprintf(po.log_dir, sizeof po.log_dir, "%s/logs", s->out);
        if ((rc = xb_mkdir_p(po.log_dir, err)))
            goto done;
        /* Finished units go to OUT/.units as they come: the same command run again after a stop solves only
         * the rest (every unit is keyed by its inputs, conductances and options, so nothing stale is used). */
        snprintf(po.unit_dir, sizeof po.unit_dir, "%s/.units", s->out);
        snprintf(po.unit_key, sizeof po.unit_key, "eval");
        if (!s->quiet)
            fprintf(stderr, "spice: %zu inputs, %d worker%s, %s cells, wires %g/%g ohm per segment\n", test->n,
                    po.jobs, po.jobs == 1 ? "" : "s", cells_kind(&po.net), po.net.r_row_ohm,
                    po.net.r_col_ohm);
        /* Energy and settling time: measured on each layer's first inputs as the circuit runs. */
        xb_energy_free(&res->energy);
        xb_energy_init(&res->energy, &s->energy);
        po.energy = s->energy.on ? &res->energy : NULL;
        if (s->energy.on && (rc = xb_energy_check(&s->energy, err)))
            goto done;
        if ((rc = xb_eval_circuit(base, &dev, &po, &bo, adc_fs, test, 0, rng,
                                  pred[1], pred[2], circ, &res->pair, &prov, err)))
            goto done;
        circ->pool.o.energy = NULL; /* the result keeps no pointer between its own parts */
        if (!s->quiet && circ->pool.stats.units_loaded)
            fprintf(stderr, "spice: resumed: %zu units loaded from %s, %zu solved\n", circ->pool.stats.units_loaded,
                    po.unit_dir, circ->pool.stats.units);
        xb_confusion_free(&conf);
        conf = xb_confusion_new((int)classes);
        if (!conf) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
            goto done;
        }
        xb_class_result_tally(&r[2], conf, test->y, pred[2], test->n);
        n_backends = 3;
        char path[4200];
        snprintf(path, sizeof path, "%s/tile_errors.csv", s->out);
        if ((rc = xb_compare_write_csv(&circ->cc, path, err)))
            goto done;
        xb_irdrop ir;
        if ((rc = xb_circuit_irdrop(circ, &ir, err)))
            goto done;
        snprintf(path, sizeof path, "%s/ir_drop.csv", s->out);
        if (isnan(ir.v_row_node_V[0]))
            fprintf(stderr, "spice: the IR-drop map's operating point did not converge; ir_drop.csv holds NaN "
                            "(see %s)\n", po.log_dir);
        rc = xb_irdrop_write_csv(&ir, path, err);
        xb_irdrop_free(&ir);
        if (rc)
            goto done;
        if (s->energy.on && (rc = write_energy(s->out, &res->energy, err)))
            goto done;
    }
    double seconds = xb_now() - t0;
    if ((rc = xb_results_write_classification(s->out, r, n_backends, conf, test->y, (const int *const *)pred,
                                              test->n, err)))
        goto done;
    if (s->trials && (rc = write_trials(s->out, acc, s->trials, r[0].accuracy, err)))
        goto done;
    if ((rc = write_run_json(s->out, &prov, m, s, r, n_backends, acc, s->trials, levels, seconds,
                             spice ? circ : NULL, &res->pair, spice && s->energy.on ? &res->energy : NULL, err)))
        goto done;
    if (spice) {
        /* Every result file is written: the finished units are not needed any more. */
        char units[4200];
        snprintf(units, sizeof units, "%s/.units", s->out);
        if ((rc = xb_unit_store_remove(units, err)))
            goto done;
    }
    res->n_backends = n_backends;
    memcpy(res->r, r, sizeof r);
    res->n_test = test->n;
    xb_mlp_describe(m, res->network, sizeof res->network);
    res->acc = acc;
    acc = NULL;
    res->trials = s->trials;
done:
    free(acc);
    free(pred[0]);
    free(pred[1]);
    free(pred[2]);
    gsl_rng_free(rng);
    xb_behav_free(&bm);
    xb_chip_free(&chip);
    xb_chip_free(&base);
    xb_confusion_free(&conf);
    xb_mlp_free(&m);
    xb_dataset_free(&test);
    xb_dataset_free(&cal);
    return rc;
}
