// pool: the spice backends' layer solves: (layer, tile, input chunk) units through the scheduler
#include "pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "energy.h"
#include "mpi_exec.h"
#include "ngspice.h"
#include "progress.h"
#include "sched.h"
#include "unitstore.h"
#include "worker.h"

/* The executor of one-off solves: forked local workers (executor.h). Layer solves run on the MPI
 * executor when the job has several ranks (mpi_exec.h), on local workers otherwise. */
static const xb_executor_type *const pool_executor = &xb_executor_local;

static const xb_executor_type *layer_executor(void)
{
    return xb_mpi_size() > 1 ? &xb_executor_mpi : &xb_executor_local;
}

void xb_pool_defaults(xb_pool_options *o)
{
    memset(o, 0, sizeof *o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->jobs = cores > 0 ? (int)cores : 1;
    o->chunk = 250;
    xb_netlist_defaults(&o->net);
    o->fault_unit = -1;
    o->fault_quit_unit = -1;
    o->linear_sample = 20;
    o->linear_seed = 1;
    o->solve_timeout_s = XB_POOL_SOLVE_TIMEOUT_S;
}

double xb_pool_unit_timeout_s(const xb_pool_options *o, size_t n_inputs)
{
    return xb_sched_unit_limit_s(o->solve_timeout_s > 0 ? o->solve_timeout_s : XB_POOL_SOLVE_TIMEOUT_S, n_inputs);
}

/* The scheduler's settings for a pool's run. hint: room for the give-up messages' pointer to the logs. */
static void sched_options(const xb_pool_options *o, int jobs, const char *label, char *hint, size_t cap,
                          xb_sched_options *so)
{
    xb_sched_defaults(so);
    so->workers = jobs;
    so->per_input_s = o->solve_timeout_s > 0 ? o->solve_timeout_s : XB_POOL_SOLVE_TIMEOUT_S;
    so->quiet = o->quiet;
    so->label = label;
    snprintf(hint, cap, "ngspice logs in %s", o->log_dir[0] ? o->log_dir : "the run folder");
    so->lost_hint = hint;
    so->fault_lose_unit = o->fault_unit;
    so->fault_worker_unit = o->fault_quit_unit;
    so->fault_repeat = o->fault_repeat;
}

int xb_pool_run_one(const xb_pool_options *o, int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err),
                    void *ctx, void *result, size_t result_bytes, xb_error *err)
{
    return xb_pool_run_one_timed(o, fn, ctx, result, result_bytes, NULL, err);
}

int xb_pool_run_one_timed(const xb_pool_options *o,
                          int (*fn)(struct xb_spice *s, void *ctx, void *result, xb_error *err), void *ctx,
                          void *result, size_t result_bytes, int *timed_out_out, xb_error *err)
{
    if (timed_out_out)
        *timed_out_out = 0;
    xb_spice_oneoff_ctx oc = {fn, ctx, ""};
    xb_spice_worker_log_dir(o->log_dir, oc.log_dir, sizeof oc.log_dir);
    xb_executor_config cfg = {1, &xb_spice_oneoff_worker, &oc, result_bytes, NULL};
    void *state = NULL;
    int rc = pool_executor->start(&cfg, &state, err);
    if (rc)
        return rc;
    /* One solve, one input's time limit: a model card that sends ngspice into an endless loop must not
     * hang the command. */
    double limit = xb_pool_unit_timeout_s(o, 1);
    xb_unit u = {0, 0, 0, 0, 1};
    xb_event ev = {0};
    if (!(rc = pool_executor->submit(state, 0, 0, &u, XB_HOOK_NONE, limit, err)))
        rc = pool_executor->wait(state, &ev, err);
    if (!rc && ev.kind == XB_EVENT_DONE)
        memcpy(result, ev.result, result_bytes);
    else if (!rc && ev.kind == XB_EVENT_TIMED_OUT) {
        if (timed_out_out)
            *timed_out_out = 1;
        rc = xb_fail(err, XB_ERUNTIME, "the ngspice solve ran past its time limit of %g s (solve_timeout_s %g s x 3) "
                     "and was stopped; the device's model cards may send ngspice into an endless loop (see the ngspice "
                     "log%s%s)", limit, limit / 3, o->log_dir[0] ? " in " : "", o->log_dir);
    } else if (!rc)
        rc = xb_fail(err, ev.err.code ? ev.err.code : XB_ERUNTIME, "%s",
                     ev.err.msg[0] ? ev.err.msg : "the ngspice worker died");
    pool_executor->stop(&state, rc != XB_OK);
    return rc;
}

/* The parent's side of one layer's exact run: results land in cur (n_row_tiles x n x cols) and fail. */
typedef struct exact_run {
    const xb_chip *chip;
    int layer;
    size_t n;
    double *cur;
    unsigned char *fail;
    size_t inputs_retried, inputs_failed;
    long peak_rss_kb;
    int seen, ngspice_version, klu, rows_path;
    size_t newton_iterations, newton_inputs;
} exact_run;

static int exact_accept(void *ctx, const xb_unit *u, const void *result, xb_error *err)
{
    (void)err;
    exact_run *r = ctx;
    const xb_layer_map *L = &r->chip->layers[r->layer];
    size_t r0, nr, c0, nc, k = u->k1 - u->k0;
    xb_chip_tile_bounds(r->chip, r->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    const double *I = xb_spice_result_currents(result);
    const unsigned char *status = xb_spice_result_status(result, k, nc);
    for (size_t q = 0; q < k; q++) {
        double *dst = r->cur + (u->rt * r->n + u->k0 + q) * L->cols + c0;
        memcpy(dst, I + q * nc, nc * sizeof *dst);
        r->inputs_retried += status[q] == XB_SOLVE_RETRIED;
        if (status[q] == XB_SOLVE_FAILED) {
            r->inputs_failed++;
            r->fail[u->k0 + q] = 1;
            for (size_t j = 0; j < nc; j++)
                dst[j] = 0; /* reported per input; the current is unknown */
        }
    }
    const xb_spice_unit_result *h = result;
    if (h->peak_rss_kb > r->peak_rss_kb)
        r->peak_rss_kb = h->peak_rss_kb;
    r->newton_iterations += h->newton_iterations > 0 ? (size_t)h->newton_iterations : 0;
    r->newton_inputs += k;
    r->seen = 1;
    r->ngspice_version = h->ngspice_version;
    r->klu = h->klu;
    r->rows_path = h->rows_path;
    return XB_OK;
}

/* An input past its own time limit: failed like a point that never converges. */
static void exact_fail_input(void *ctx, const xb_unit *u)
{
    exact_run *r = ctx;
    const xb_layer_map *L = &r->chip->layers[r->layer];
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(r->chip, r->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    r->fail[u->k0] = 1; /* counted in inputs_failed through the scheduler's inputs_timed_out */
    for (size_t j = 0; j < nc; j++)
        r->cur[(u->rt * r->n + u->k0) * L->cols + c0 + j] = 0; /* unknown, as for a failed solve */
}

/* The unit store's hooks around exact_run: accepted units are saved as they arrive. */
typedef struct stored_run {
    exact_run *r;
    xb_unit_store *store; /* NULL: off (or off since a save failed) */
    int quiet;
} stored_run;

static int stored_accept(void *ctx, const xb_unit *u, const void *result, xb_error *err)
{
    stored_run *sr = ctx;
    int rc = exact_accept(sr->r, u, result, err);
    if (!rc && sr->store) {
        xb_error serr = {0};
        if (xb_unit_store_save(sr->store, u, result, &serr)) {
            /* The results are right without the store; only a later resume would solve more. */
            if (!sr->quiet)
                fprintf(stderr, "\nxbarsim: a finished unit could not be stored (%s); the run goes on without "
                        "storing units\n", serr.msg);
            xb_unit_store_free(&sr->store);
        }
    }
    return rc;
}

static void stored_fail_input(void *ctx, const xb_unit *u)
{
    exact_fail_input(((stored_run *)ctx)->r, u);
}

/* Units of the store accepted directly; the rest (*todo, *n_todo: a subset of units, in order) are to be
 * solved. */
static int load_stored_units(xb_pool *p, xb_unit_store *store, exact_run *r, const xb_unit *units, size_t n_units,
                             size_t result_bytes, xb_unit *todo, size_t *n_todo, xb_error *err)
{
    *n_todo = 0;
    void *buf = malloc(result_bytes);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "out of memory for a stored unit");
    int rc = XB_OK;
    for (size_t q = 0; q < n_units && !rc; q++) {
        if (xb_unit_store_result_bytes(store, &units[q]) <= result_bytes &&
            xb_unit_store_load(store, &units[q], buf, result_bytes, &p->stats.units_rejected)) {
            rc = exact_accept(r, &units[q], buf, err);
            p->stats.units_loaded++;
        } else
            todo[(*n_todo)++] = units[q];
    }
    free(buf);
    return rc;
}

static int exact_layer_currents(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *failed,
                                xb_error *err)
{
    const xb_layer_map *L = &p->chip->layers[l];
    size_t chunk = p->o.chunk ? p->o.chunk : 250;
    double t0 = xb_now();
    xb_unit *units = NULL;
    size_t n_units = 0;
    int rc = xb_sched_layer_units(l, L->n_row_tiles, L->n_col_tiles, n, chunk, &units, &n_units, err);
    exact_run r = {p->chip, l, n, calloc(L->n_row_tiles * n * L->cols + 1, sizeof(double)), calloc(n + 1, 1),
                   0, 0, 0, 0, 0, 0, 0, 0, 0};
    xb_spice_worker_ctx *w = malloc(sizeof *w);
    if (!rc && (!r.cur || !r.fail || !w))
        rc = xb_fail(err, XB_ENOMEM, "out of memory for a layer's currents");
    if (!rc) {
        *w = (xb_spice_worker_ctx){p->chip, p->dev, &p->o.net, l, V, n, chunk < n ? chunk : n, "", 0};
        xb_spice_worker_log_dir(p->o.log_dir, w->log_dir, sizeof w->log_dir);
        xb_sched_options so;
        char hint[4200];
        /* --jobs workers on every rank. */
        sched_options(&p->o, (p->o.jobs > 0 ? p->o.jobs : 1) * xb_mpi_size(), p->label ? p->label : "spice", hint,
                      sizeof hint, &so);
        /* Resume: units already stored are accepted as they are; only the others go to the workers. */
        stored_run sr = {&r, NULL, p->o.quiet};
        size_t n_todo = n_units;
        xb_error serr = {0};
        if (p->o.unit_dir[0] && xb_unit_store_open(p->o.unit_dir, p->o.unit_key, p->chip, p->dev, &p->o.net, l, V, n,
                                                   w->chunk, p->o.quiet, &sr.store, &serr) && !p->o.quiet)
            fprintf(stderr, "xbarsim: no unit store (%s); layer %d is solved without one\n", serr.msg, l + 1);
        if (sr.store)
            rc = load_stored_units(p, sr.store, &r, units, n_units, xb_spice_worker_result_bytes(w), units, &n_todo,
                                   err);
        xb_sched_client client = {&sr, stored_accept, stored_fail_input};
        xb_sched_stats st = {0};
        if (!rc)
            rc = xb_sched_run(layer_executor(), &so, &xb_spice_worker, w, xb_spice_worker_result_bytes(w), units, n_todo,
                              &client, &st, err);
        xb_unit_store_free(&sr.store);
        p->stats.units += st.units;
        p->stats.unit_retries += st.unit_retries;
        p->stats.workers_started += st.workers_started;
        p->stats.workers_lost += st.workers_lost;
        p->stats.units_timed_out += st.units_timed_out;
        p->stats.inputs_timed_out += st.inputs_timed_out;
        p->stats.inputs_failed += st.inputs_timed_out;
    }
    if (!rc) {
        memcpy(I_rt, r.cur, L->n_row_tiles * n * L->cols * sizeof *I_rt);
        for (size_t k = 0; failed && k < n; k++)
            failed[k] |= r.fail[k];
        p->stats.inputs_retried += r.inputs_retried;
        p->stats.inputs_failed += r.inputs_failed;
        p->stats.newton_iterations += r.newton_iterations;
        p->stats.newton_inputs += r.newton_inputs;
        if (r.peak_rss_kb > p->stats.peak_rss_kb)
            p->stats.peak_rss_kb = r.peak_rss_kb;
        if (r.seen) {
            p->stats.ngspice_version = r.ngspice_version;
            snprintf(p->stats.solver, sizeof p->stats.solver, "%s", r.klu ? "KLU" : "Sparse 1.3");
            snprintf(p->stats.row_sources, sizeof p->stats.row_sources, "%s", xb_spice_rows_name(r.rows_path));
        }
    }
    free(units), free(r.cur), free(r.fail), free(w);
    p->stats.seconds += xb_now() - t0;
    return rc;
}

int xb_pool_linear_sample(size_t n, size_t ns, unsigned long seed, int l, size_t *pick, xb_error *err)
{
    if (ns > n)
        return xb_fail(err, XB_EINPUT, "a sample of %zu from %zu inputs", ns, n);
    if (!ns)
        return XB_OK;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    size_t *all = malloc(n * sizeof *all);
    if (!rng || !all) {
        gsl_rng_free(rng);
        free(all);
        return xb_fail(err, XB_ENOMEM, "out of memory for the linear mode's sample");
    }
    gsl_rng_set(rng, seed + (unsigned long)l);
    for (size_t k = 0; k < n; k++)
        all[k] = k;
    gsl_ran_choose(rng, pick, ns, all, n, sizeof *all); /* ascending, without repeats */
    gsl_rng_free(rng);
    free(all);
    return XB_OK;
}

/* Linear mode: transfer matrices from unit inputs, products for every input, an exact sample to check. */
static int linear_layer_currents(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *failed,
                                 xb_error *err)
{
    const xb_chip *c = p->chip;
    const xb_layer_map *L = &c->layers[l];
    size_t R = c->opt.tile_rows < L->rows ? c->opt.tile_rows : L->rows, rows = L->rows, cols = L->cols;
    double vr = c->opt.v_read_V;
    /* Input k drives local row k of every row tile at v_read: one call extracts all the tiles. */
    double *U = calloc(R * rows, sizeof *U), *T = malloc(L->n_row_tiles * R * cols * sizeof *T);
    size_t ns = n < p->o.linear_sample ? n : p->o.linear_sample;
    double *Vs = malloc((ns ? ns : 1) * rows * sizeof *Vs);
    double *Is = malloc(L->n_row_tiles * (ns ? ns : 1) * cols * sizeof *Is);
    size_t *pick = malloc((ns ? ns : 1) * sizeof *pick);
    unsigned char *fail = calloc(R > ns ? R : (ns ? ns : 1), 1);
    int rc = XB_OK;
    if (!U || !T || !Vs || !Is || !pick || !fail) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory for transfer matrices");
        goto done;
    }
    for (size_t k = 0; k < R; k++)
        for (size_t i = k; i < rows; i += R)
            U[k * rows + i] = vr;
    if ((rc = exact_layer_currents(p, l, U, R, T, fail, err)))
        goto done;
    for (size_t k = 0; k < R; k++)
        if (fail[k]) {
            /* Every input of the layer would inherit the bad column of the transfer matrix. */
            rc = xb_fail(err, XB_ERUNTIME, "layer %d: the unit-input solve of local row %zu did not converge, so the "
                         "transfer matrices cannot be extracted; use --spice-mode exact", l + 1, k);
            goto done;
        }
    for (size_t rt = 0; rt < L->n_row_tiles; rt++) {
        size_t r0, nr, c0, nc;
        xb_chip_tile_bounds(c, l, rt, 0, &r0, &nr, &c0, &nc);
        /* I = (V / v_read) T: row k of T is the tile's column currents for its row k at v_read. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)cols, (int)nr, 1.0 / vr, V + r0,
                    (int)rows, T + rt * R * cols, (int)cols, 0.0, I_rt + rt * n * cols, (int)cols);
    }
    /* Measure the error on a seeded random sample of the inputs, solved exactly: evenly spaced inputs
     * would follow any ordering of the test set (by class, by source). */
    if (ns) {
        if ((rc = xb_pool_linear_sample(n, ns, p->o.linear_seed, l, pick, err)))
            goto done;
        for (size_t q = 0; q < ns; q++)
            memcpy(Vs + q * rows, V + pick[q] * rows, rows * sizeof *Vs);
        memset(fail, 0, ns);
        if ((rc = exact_layer_currents(p, l, Vs, ns, Is, fail, err)))
            goto done;
        for (size_t q = 0; failed && q < ns; q++)
            failed[pick[q]] |= fail[q];
        p->stats.linear_sampled += ns;
        for (size_t rt = 0; rt < L->n_row_tiles; rt++)
            for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
                size_t r0, nr, c0, nc;
                xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
                double big = 0;
                for (size_t q = 0; q < ns; q++)
                    for (size_t j = c0; j < c0 + nc; j++)
                        big = fmax(big, fabs(Is[(rt * ns + q) * cols + j]));
                if (!(big > 0))
                    continue;
                for (size_t q = 0; q < ns; q++)
                    for (size_t j = c0; j < c0 + nc; j++) {
                        double e = fabs(I_rt[(rt * n + pick[q]) * cols + j] - Is[(rt * ns + q) * cols + j]) / big;
                        p->stats.linear_err_max = fmax(p->stats.linear_err_max, e);
                        p->stats.linear_err_sum += e;
                        p->stats.linear_checked++;
                    }
            }
    }
done:
    free(U), free(T), free(Vs), free(Is), free(pick), free(fail);
    return rc;
}

int xb_pool_layer_currents(void *ctx, int l, size_t first, const double *V, size_t n, double *I_rt, xb_error *err)
{
    xb_pool *p = ctx;
    /* Failed solves are flagged at the inputs' places in the whole forward call. */
    unsigned char *failed = p->failed && first + n <= p->failed_cap ? p->failed + first : NULL;
    if (p->o.energy && p->o.energy->o.on && first == 0) {
        int erc = xb_energy_layer(p->o.energy, &p->o, p->chip, p->dev, l, V, n, err);
        if (erc)
            return erc;
    }
    return p->o.linear ? linear_layer_currents(p, l, V, n, I_rt, failed, err)
                       : exact_layer_currents(p, l, V, n, I_rt, failed, err);
}

