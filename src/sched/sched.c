// sched: the work-unit queue, retries and the fault and time-limit policy, over any executor
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"

void xb_sched_defaults(xb_sched_options *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->per_input_s = XB_SCHED_PER_INPUT_S;
    o->fault_lose_unit = -1;
    o->fault_worker_unit = -1;
}

double xb_sched_unit_limit_s(double per_input_s, size_t n_inputs)
{
    double t = per_input_s > 0 ? per_input_s : XB_SCHED_PER_INPUT_S;
    return t * ((double)n_inputs + 2);
}

int xb_sched_layer_units(int layer, size_t n_row_tiles, size_t n_col_tiles, size_t n, size_t chunk,
                         xb_unit **units, size_t *n_units, xb_error *err)
{
    if (!chunk)
        chunk = 1;
    size_t n_chunks = (n + chunk - 1) / chunk, total = n_row_tiles * n_col_tiles * n_chunks, q = 0;
    *units = malloc((total ? total : 1) * sizeof **units);
    *n_units = 0;
    if (!*units)
        return xb_fail(err, XB_ENOMEM, "out of memory for work units");
    for (size_t rt = 0; rt < n_row_tiles; rt++)
        for (size_t ct = 0; ct < n_col_tiles; ct++)
            for (size_t k0 = 0; k0 < n; k0 += chunk)
                (*units)[q++] = (xb_unit){layer, rt, ct, k0, k0 + chunk < n ? k0 + chunk : n};
    *n_units = q;
    return XB_OK;
}

/* The run's units: the given ones, then one-input retries of units past their time limit. Grows. */
typedef struct unit_list {
    xb_unit *u;
    unsigned char *deaths; /* workers each unit has ended */
    size_t n, cap;
    long *queue;           /* units to hand out: queue[head..tail) */
    size_t head, tail, qcap;
    unsigned char *hooked; /* per unit: a hook has fired for it */
} unit_list;

static int units_grow(unit_list *ul, size_t more)
{
    if (ul->n + more > ul->cap) {
        size_t cap = (ul->n + more) * 2;
        xb_unit *u = realloc(ul->u, cap * sizeof *u);
        if (!u)
            return -1;
        ul->u = u;
        unsigned char *d = realloc(ul->deaths, cap);
        if (!d)
            return -1;
        memset(d + ul->cap, 0, cap - ul->cap);
        ul->deaths = d;
        unsigned char *h = realloc(ul->hooked, cap);
        if (!h)
            return -1;
        memset(h + ul->cap, 0, cap - ul->cap);
        ul->hooked = h;
        ul->cap = cap;
    }
    if (ul->tail + more > ul->qcap) {
        size_t cap = (ul->tail + more) * 2;
        long *q = realloc(ul->queue, cap * sizeof *q);
        if (!q)
            return -1;
        ul->queue = q;
        ul->qcap = cap;
    }
    return 0;
}

static int units_add(unit_list *ul, xb_unit u)
{
    if (units_grow(ul, 1))
        return -1;
    ul->u[ul->n] = u;
    ul->queue[ul->tail++] = (long)ul->n++;
    return 0;
}

static int units_requeue(unit_list *ul, long id)
{
    if (units_grow(ul, 1))
        return -1;
    ul->queue[ul->tail++] = id;
    return 0;
}

/* The test hooks of handing unit id out now. */
static int hook_for(const xb_sched_options *o, unit_list *ul, long id)
{
    int hook = 0;
    if (id == o->fault_lose_unit && (!(ul->hooked[id] & 1) || o->fault_repeat))
        hook |= XB_HOOK_LOSE, ul->hooked[id] |= 1;
    if (id == o->fault_worker_unit && (!(ul->hooked[id] & 2) || o->fault_repeat))
        hook |= XB_HOOK_WORKER, ul->hooked[id] |= 2;
    return hook;
}

/* Time-out notices on stderr: a few, then a count in the statistics only. */
#define TIMEOUT_NOTICES 10

int xb_sched_run(const xb_executor_type *ex, const xb_sched_options *o, const xb_worker_type *wt, void *ctx,
                 size_t result_bytes, const xb_unit *units, size_t n_units, const xb_sched_client *client,
                 xb_sched_stats *stats_out, xb_error *err)
{
    xb_sched_stats st = {0};
    if (!n_units)
        return XB_OK;
    int slots = o->workers > 0 ? o->workers : 1;
    if ((size_t)slots > n_units)
        slots = (int)n_units;
    size_t max_lost = (size_t)slots * 4 + 8;
    const char *hint = o->lost_hint ? o->lost_hint : "";
    unit_list ul = {0};
    long *held = calloc((size_t)slots, sizeof *held);
    int rc = XB_OK;
    void *state = NULL;
    if (!held || units_grow(&ul, n_units)) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory for work units");
        goto done;
    }
    for (size_t q = 0; q < n_units; q++)
        units_add(&ul, units[q]);
    for (int i = 0; i < slots; i++)
        held[i] = -1;
    xb_executor_config cfg = {slots, wt, ctx, result_bytes, &st.workers_started};
    if ((rc = ex->start(&cfg, &state, err)))
        goto done;
    /* Units finished (or failed for their time) out of ul.n: a unit split into one-input retries counts
     * as finished, its retries as units of their own. */
    size_t done = 0, notices = 0, lost = 0;
    char last_words[1100] = "";
    xb_progress bar;
    char label[64];
    snprintf(label, sizeof label, "%s layer %d", o->label ? o->label : "work", units[0].layer + 1);
    xb_progress_start(&bar, stderr, label, n_units, o->quiet);
    while (done < ul.n) {
        for (int i = 0; i < slots && ul.head < ul.tail; i++)
            if (held[i] < 0) {
                long id = ul.queue[ul.head++];
                const xb_unit *u = &ul.u[id];
                held[i] = id;
                rc = ex->submit(state, i, id, u, hook_for(o, &ul, id),
                                xb_sched_unit_limit_s(o->per_input_s, u->k1 - u->k0), err);
                if (rc)
                    goto stop;
            }
        xb_event ev;
        if ((rc = ex->wait(state, &ev, err)))
            goto stop;
        long id = ev.slot >= 0 && ev.slot < slots ? held[ev.slot] : -1;
        if (ev.kind == XB_EVENT_REFUSED) {
            rc = xb_fail(err, ev.err.code ? ev.err.code : XB_ERUNTIME, "%s", ev.err.msg);
            goto stop;
        }
        if (id < 0 || ev.unit != id)
            id = -1; /* an event about no unit of ours (a worker lost while idle) */
        held[ev.slot] = -1;
        if (ev.kind == XB_EVENT_DONE && id >= 0) {
            if ((rc = client->accept(client->ctx, &ul.u[id], ev.result, err)))
                goto stop;
            done++;
            st.units++;
            xb_progress_update(&bar, done < n_units ? done : n_units, "");
        } else if (ev.kind == XB_EVENT_TIMED_OUT && id >= 0) {
            /* Not the worker's fault, so no death is counted. A unit of several inputs is run again one
             * input at a time; a single input is failed. */
            const xb_unit lu = ul.u[id];
            double limit = xb_sched_unit_limit_s(o->per_input_s, lu.k1 - lu.k0);
            done++;
            if (lu.k1 - lu.k0 > 1) {
                st.units_timed_out++;
                if (!o->quiet && notices++ < TIMEOUT_NOTICES)
                    fprintf(stderr, "\nxbarsim: layer %d tile (%zu, %zu), inputs %zu..%zu ran past the time limit of "
                            "%g s; solving them one at a time\n", lu.layer + 1, lu.rt, lu.ct, lu.k0, lu.k1 - 1, limit);
                for (size_t k = lu.k0; k < lu.k1; k++)
                    if (units_add(&ul, (xb_unit){lu.layer, lu.rt, lu.ct, k, k + 1})) {
                        rc = xb_fail(err, XB_ENOMEM, "out of memory for work units");
                        goto stop;
                    }
            } else {
                st.inputs_timed_out++;
                client->fail_input(client->ctx, &lu);
                if (!o->quiet && notices++ < TIMEOUT_NOTICES)
                    fprintf(stderr, "\nxbarsim: layer %d tile (%zu, %zu), input %zu ran past its time limit of %g s "
                            "(solve_timeout_s, --solve-timeout): failed\n", lu.layer + 1, lu.rt, lu.ct, lu.k0, limit);
            }
        } else if (ev.kind == XB_EVENT_LOST) {
            snprintf(last_words, sizeof last_words, "%s", ev.err.msg[0] ? ev.err.msg : "no message");
            st.workers_lost++;
            lost++;
            if (id >= 0) {
                const xb_unit *lu = &ul.u[id];
                /* The same unit ending worker after worker is no bad luck: say what its workers said. */
                if (++ul.deaths[id] >= XB_SCHED_MAX_DEATHS) {
                    rc = xb_fail(err, XB_ERUNTIME, "layer %d tile (%zu, %zu), inputs %zu..%zu ended %d workers; the "
                                 "last: %s%s%s%s", lu->layer + 1, lu->rt, lu->ct, lu->k0, lu->k1 - 1, ul.deaths[id],
                                 last_words, hint[0] ? " (" : "", hint, hint[0] ? ")" : "");
                    goto stop;
                }
                if (units_requeue(&ul, id)) {
                    rc = xb_fail(err, XB_ENOMEM, "out of memory for work units");
                    goto stop;
                }
                st.unit_retries++;
            }
            if (lost > max_lost) {
                rc = xb_fail(err, XB_ERUNTIME, "%zu workers died in layer %d; giving up; the last: %s%s%s%s", lost,
                             units[0].layer + 1, last_words, hint[0] ? " (see the " : "", hint, hint[0] ? ")" : "");
                goto stop;
            }
        }
    }
    xb_progress_finish(&bar, "");
stop:
    ex->stop(&state, rc != XB_OK);
done:
    free(held);
    free(ul.u);
    free(ul.deaths);
    free(ul.hooked);
    free(ul.queue);
    if (stats_out) {
        stats_out->units += st.units;
        stats_out->unit_retries += st.unit_retries;
        stats_out->workers_started += st.workers_started;
        stats_out->workers_lost += st.workers_lost;
        stats_out->units_timed_out += st.units_timed_out;
        stats_out->inputs_timed_out += st.inputs_timed_out;
    }
    return rc;
}
