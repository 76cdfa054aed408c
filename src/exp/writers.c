// writers: a run's result files: points.csv, summary.csv, predictions.csv, run.json
#include "run_private.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "fileio.h"
#include "json.h"
#include "mc.h"
#include "mpi_exec.h"
#include "metrics.h"

/* %.17g, or an empty field for a value that does not apply. */
void xb_run_csv_num(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, ",%.17g", v);
    else
        fputc(',', fp);
}

void xb_run_csv_columns_header(FILE *fp, const xb_tb *tb)
{
    for (size_t c = 0; c < xb_tb_n_columns(tb); c++) {
        fputc(',', fp);
        xb_csv_field(fp, xb_tb_column(tb, c));
    }
}

void xb_run_csv_columns(FILE *fp, const xb_tb *tb, size_t k)
{
    for (size_t c = 0; c < xb_tb_n_columns(tb); c++) {
        fputc(',', fp);
        xb_csv_field(fp, xb_tb_value(tb, k, c));
    }
}

void xb_run_csv_trial_tail(FILE *fp, const trial_result *tr)
{
    xb_run_csv_num(fp, tr->mcnemar_p);
    xb_run_csv_num(fp, tr->i_err_mean);
    xb_run_csv_num(fp, tr->i_err_max);
    xb_run_csv_num(fp, tr->failed);
    xb_run_csv_num(fp, tr->seconds);
    fputc('\n', fp);
}

int xb_run_write_points_csv(run_ctx *r, const point_result *pr, xb_error *err)
{
    const xb_tb *tb = r->tb;
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "points.csv", err);
    if (rc)
        return rc;
    fprintf(f.fp, "point,grid,trial,seed");
    xb_run_csv_columns_header(f.fp, tb);
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
            xb_run_csv_columns(f.fp, tb, k);
            fprintf(f.fp, ",%zu,%zu,%zu,%zu", pr[k].synapses, pr[k].layers, pr[k].neurons, pr[k].images);
            for (int b = 0; b < N_BACKENDS; b++)
                xb_run_csv_num(f.fp, a[b]);
            xb_run_csv_num(f.fp, a[1] - a[0]);
            xb_run_csv_num(f.fp, a[2] - a[0]);
            xb_run_csv_num(f.fp, tr->agree / n);
            xb_run_csv_trial_tail(f.fp, tr);
        }
    return xb_atomic_commit(&f, err);
}

/* Summary statistics of each point and backend, for the summary CSV, plots and analyses. */
int xb_run_summarize(const run_ctx *r, const point_result *pr, xb_summary_row **out, size_t *n_out, xb_error *err)
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

int xb_run_write_summary_csv(const run_ctx *r, const xb_summary_row *rows, size_t n, xb_error *err)
{
    const xb_tb *tb = r->tb;
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, r->out, "summary.csv", err);
    if (rc)
        return rc;
    fprintf(f.fp, "point,grid");
    xb_run_csv_columns_header(f.fp, tb);
    fprintf(f.fp, ",network.synapses,network.layers,network.neurons,backend,montecarlo_seed,trials,images,accuracy_mean,accuracy_std,"
                  "accuracy_ci95_lo,accuracy_ci95_hi,accuracy_wilson_lo,accuracy_wilson_hi,delta_accuracy_mean,"
                  "delta_accuracy_std,delta_accuracy_ci95_lo,delta_accuracy_ci95_hi\n");
    for (size_t i = 0; i < n; i++) {
        const xb_summary_row *s = &rows[i];
        fprintf(f.fp, "%zu,", s->point + 1);
        xb_csv_field(f.fp, xb_tb_grid(tb, s->point));
        xb_run_csv_columns(f.fp, tb, s->point);
        fprintf(f.fp, ",%.17g,%.17g,%.17g,%s,%lu,%zu,%zu", s->synapses, s->layers, s->neurons,
                xb_backend_name(s->backend), s->seed, s->trials, s->images);
        double v[] = {s->acc_mean, s->acc_std, s->acc_lo, s->acc_hi, s->wilson_lo, s->wilson_hi,
                      s->dacc_mean, s->dacc_std, s->dacc_lo, s->dacc_hi};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            xb_run_csv_num(f.fp, v[j]);
        fputc('\n', f.fp);
    }
    return xb_atomic_commit(&f, err);
}

/* predictions.csv: the points' per-input files, one after the other. */
int xb_run_write_predictions(run_ctx *r, char (*pred_paths)[4400], xb_error *err)
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

int xb_run_write_run_json(run_ctx *r, const point_result *pr, size_t n_computed, double seconds, xb_error *err)
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
    xb_json_int(&j, "mpi_ranks", xb_mpi_size()); /* circuit solves spread over this many processes */
    xb_json_int(&j, "points", (long long)xb_tb_n_points(tb));
    xb_json_int(&j, "points_computed", (long long)n_computed);
    xb_json_int(&j, "points_reused", (long long)(xb_tb_n_points(tb) - n_computed));
    int programming = xb_tb_is_programming(tb);
    xb_json_string(&j, "study", programming ? "programming" : "inference");
    xb_json_string(&j, "trial_seeds", programming ? "trial t of a point with montecarlo seed s seeds gsl_rng_mt19937 with "
                   "splitmix64(s, t) for each method (the seed column of programming.csv)"
                   : "trial t of a point with montecarlo seed s draws from gsl_rng_mt19937 seeded with "
                   "splitmix64(s, t) (the seed column of points.csv)");
    xb_json_array_begin(&j, "point_seeds");
    for (size_t k = 0; k < xb_tb_n_points(tb); k++) {
        xb_tb_config c;
        if (xb_tb_config_of(tb, k, r->o->quick, &c, err) == XB_OK) {
            xb_json_object_begin(&j, NULL);
            xb_json_int(&j, "point", (long long)k + 1);
            xb_json_int(&j, "montecarlo_seed", (long long)c.seed);
            if (!programming)
                xb_json_int(&j, "training_seed", c.weights[0] ? -1 : (long long)c.train_seed);
            xb_json_int(&j, "trials", (long long)pr[k].trials);
            xb_json_object_end(&j);
        }
    }
    xb_json_array_end(&j);
    if (r->any_spice) {
        /* The circuit's work units of the points computed by this command (a resumed point's earlier units
         * are loaded from its unit store, not solved again). */
        xb_json_int(&j, "circuit_units_solved", (long long)r->units_solved);
        xb_json_int(&j, "circuit_units_loaded", (long long)r->units_loaded);
        xb_json_int(&j, "circuit_units_rejected", (long long)r->units_rejected);
    }
    xb_json_number(&j, "seconds", seconds);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}
