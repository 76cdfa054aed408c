// run: the driver of a testbench run (xb_run_testbench): plan every point, compute or reuse each, write the results
#include "run_private.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis.h"
#include "fileio.h"
#include "mc.h"
#include "plot.h"
#include "progress.h"
#include "quant.h"
#include "unitstore.h"
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

void xb_run_say(const xb_run_options *o, const char *fmt, ...)
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
void xb_run_add_input(run_ctx *r, const char *role, const char *path, const char *sha256)
{
    for (int i = 0; i < r->prov.n_inputs; i++)
        if (!strcmp(r->prov.inputs[i].path, path))
            return;
    xb_error ignored = {0}; /* a file that cannot be hashed fails later where it is read */
    xb_provenance_add_input(&r->prov, role, path, sha256, &ignored);
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
        int n_layers = c.n_weight_layers;
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

int xb_run_testbench(const xb_tb *tb, const xb_run_options *o, xb_error *err)
{
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.tb = tb;
    r.o = o;
    r.err = err;
    r.render = o->render && xb_plot_can_render();
    xb_provenance_init(&r.prov, o->argc, o->argv);
    xb_run_add_input(&r, "testbench", xb_tb_path(tb), xb_tb_sha256(tb));
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
    int programming = xb_tb_is_programming(tb);
    if (!rc)
        rc = programming ? xb_run_programming_plan(&r) : plan(&r);
    if (!rc)
        rc = xb_run_prepare_out(&r, err);
    if (!rc && o->render && !r.render)
        xb_run_say(o, "gnuplot (with the svg and pngcairo terminals) is not installed: plots/ gets the data and gnuplot "
               "scripts, not the pictures (Debian: apt-get install gnuplot-nox)");
    if (!rc)
        xb_run_say(o, "%s: %zu point%s -> %s/", xb_tb_name(tb), n_points, n_points == 1 ? "" : "s", r.out);
    if (!rc && programming) {
        /* A programming study: its own points and programming.csv (programming.c). */
        if (!(rc = xb_run_programming(&r, pr, &n_computed)))
            for (size_t k = 0; k < n_points; k++)
                trials_total += pr[k].trials;
        if (!rc && n_computed < n_points)
            xb_run_say(o, "%zu of %zu points reused from %s/points", n_points - n_computed, n_points, r.state);
        goto provenance; /* the inference points and their files do not apply */
    }
    for (size_t k = 0; k < n_points && !rc; k++) {
        xb_tb_config c;
        if ((rc = xb_tb_config_of(tb, k, o->quick, &c, err)))
            break;
        char path[4400];
        xb_run_hash_inputs(&r, &c, &r.in);
        xb_run_point_file(&r, k, &c, path, sizeof path, ".csv");
        if (c.backends & XB_BACKEND_SPICE)
            xb_run_point_file(&r, k, &c, pred_paths[k], sizeof pred_paths[k], "-predictions.csv");
        /* The example point is computed again when its example folder is gone. */
        char deck[4400];
        const xb_tb_output *e = r.example;
        snprintf(deck, sizeof deck, "%s/example/L%zu_T%zu_%zu.cir", r.out, e ? e->layer : 1, e ? e->row_tile : 0,
                 e ? e->col_tile : 0);
        int example_ok = k != r.example_point || xb_is_file(deck);
        if (example_ok && xb_is_file(path) && (!pred_paths[k][0] || xb_is_file(pred_paths[k]))) {
            rc = xb_run_read_point_state(path, c.trials, &pr[k], err);
            pr[k].seed = c.seed;
            continue;
        }
        double t0 = xb_now();
        size_t solved0 = r.units_solved, loaded0 = r.units_loaded;
        if ((rc = xb_run_eval_point(&r, k, &c, &pr[k], pred_paths[k])) || (rc = xb_run_write_point_state(path, &c, &r.in, &pr[k], err)))
            break;
        /* The point is safe in its state file: its finished units are not needed any more. */
        char units[4400];
        xb_run_point_units_dir(&r, k, &c, units, sizeof units);
        if ((rc = xb_unit_store_remove(units, err)))
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
                aa += (size_t)snprintf(accs + aa, sizeof accs - aa, ", spice %.2f%%; circuit units %zu solved, %zu "
                                       "loaded", a[2], r.units_solved - solved0, r.units_loaded - loaded0);
            xb_run_say(o, "point %zu/%zu%s: %s (%zu trial%s, %.1f s)", k + 1, n_points, vals, accs, pr[k].trials,
                pr[k].trials == 1 ? "" : "s", xb_now() - t0);
        }
    }
    if (!rc && n_computed < n_points)
        xb_run_say(o, "%zu of %zu points reused from %s/points", n_points - n_computed, n_points, r.state);
    if (!rc && r.units_loaded)
        xb_run_say(o, "resumed inside a point: %zu circuit units loaded from %s/units, %zu solved", r.units_loaded,
                   r.state, r.units_solved);
    if (!rc) {
        /* Every point is finished: unit stores of points this testbench no longer has are stale. */
        char units[4400];
        snprintf(units, sizeof units, "%s/units", r.state);
        DIR *d = opendir(units);
        for (struct dirent *e; d && (e = readdir(d));) {
            char p[4700];
            snprintf(p, sizeof p, "%s/%s", units, e->d_name);
            if (e->d_name[0] != '.' && xb_is_dir(p))
                rc = xb_unit_store_remove(p, err);
        }
        if (d)
            closedir(d);
        if (!rc)
            rmdir(units);
    }
    if (!rc)
        rc = xb_run_write_points_csv(&r, pr, err);
    if (!rc)
        rc = xb_run_summarize(&r, pr, &rows, &n_rows, err);
    if (!rc)
        rc = xb_run_write_summary_csv(&r, rows, n_rows, err);
    if (!rc && r.any_spice)
        rc = xb_run_write_predictions(&r, pred_paths, err);
    if (!rc) {
        xb_analysis_ctx ac = {tb, r.out, rows, n_rows, r.render, o->quiet};
        rc = xb_analysis_run_all(&ac, err);
    }
provenance:
    if (!rc)
        rc = xb_run_write_run_json(&r, pr, n_computed, xb_now() - t_start, err);
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
