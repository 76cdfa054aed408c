// test_sched: the work-unit scheduler and the local executor with a trivial worker (no ngspice)
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "progress.h"
#include "sched.h"

/* The toy problem: layer 0 of R x C tiles, N inputs; a unit's result is one value per input, a function
 * of (tile, input) alone, so results must not depend on who computes them. */
enum { R = 2, C = 3, N = 10 };

typedef struct toy {
    long hang_input;     /* a unit holding this input never ends (-1: none) */
    long refuse_input;   /* a unit holding it fails as any worker would (-1: none) */
    int fail_open;       /* open fails */
} toy;

static double value(const xb_unit *u, size_t k)
{
    return sin((double)(u->rt * 131 + u->ct * 17 + k)) * 1e-6 + (double)k;
}

static int toy_open(void *ctx, int index, void **state, xb_error *err)
{
    const toy *t = ctx;
    (void)index;
    *state = NULL;
    return t->fail_open ? xb_fail(err, XB_EINPUT, "the toy cannot open") : XB_OK;
}

static int toy_run(void *ctx, void *state, const xb_unit *u, int hook, void *result, int *repeatable, xb_error *err)
{
    const toy *t = ctx;
    (void)state;
    if (hook & XB_HOOK_WORKER) {
        *repeatable = 0;
        return xb_fail(err, XB_ERUNTIME, "the toy worker broke on purpose");
    }
    for (size_t k = u->k0; k < u->k1; k++) {
        if ((long)k == t->refuse_input) {
            *repeatable = 1;
            return xb_fail(err, XB_EINPUT, "the toy refuses input %zu", k);
        }
        if ((long)k == t->hang_input)
            for (;;)
                pause();
    }
    double *out = result;
    for (size_t k = u->k0; k < u->k1; k++)
        out[k - u->k0] = value(u, k);
    return XB_OK;
}

static void toy_close(void *ctx, void **state)
{
    (void)ctx;
    *state = NULL;
}

static const xb_worker_type toy_worker = {.name = "toy", .open = toy_open, .run = toy_run, .close = toy_close};

typedef struct sink {
    double out[R][C][N];
    int count[R][C][N];  /* accepted results per input */
    int failed[R][C][N]; /* fail_input calls per input */
} sink;

static int accept(void *ctx, const xb_unit *u, const void *result, xb_error *err)
{
    (void)err;
    sink *s = ctx;
    const double *r = result;
    for (size_t k = u->k0; k < u->k1; k++) {
        s->out[u->rt][u->ct][k] = r[k - u->k0];
        s->count[u->rt][u->ct][k]++;
    }
    return XB_OK;
}

static void fail_input(void *ctx, const xb_unit *u)
{
    sink *s = ctx;
    s->failed[u->rt][u->ct][u->k0]++;
}

static int run(const xb_sched_options *o, const toy *t, size_t chunk, sink *s, xb_sched_stats *st, xb_error *err)
{
    memset(s, 0, sizeof *s);
    memset(st, 0, sizeof *st);
    xb_unit *units = NULL;
    size_t n_units = 0;
    int rc = xb_sched_layer_units(0, R, C, N, chunk, &units, &n_units, err);
    xb_sched_client client = {s, accept, fail_input};
    if (!rc)
        rc = xb_sched_run(&xb_executor_local, o, &toy_worker, (void *)t, chunk * sizeof(double), units, n_units,
                          &client, st, err);
    free(units);
    return rc;
}

/* Every input of every tile accepted exactly once, with its own value. */
static int all_once(const sink *s)
{
    for (size_t rt = 0; rt < R; rt++)
        for (size_t ct = 0; ct < C; ct++)
            for (size_t k = 0; k < N; k++) {
                xb_unit u = {0, rt, ct, k, k + 1};
                if (s->count[rt][ct][k] != 1 || s->out[rt][ct][k] != value(&u, k) || s->failed[rt][ct][k])
                    return 0;
            }
    return 1;
}

int main(void)
{
    xb_error err = {0};
    static sink s1, s3, s;
    xb_sched_stats st;
    xb_sched_options o;
    xb_sched_defaults(&o);
    o.quiet = 1;
    toy t = {-1, -1, 0};

    /* The canonical units: tile by tile, chunks of 4 of 10 inputs. */
    xb_unit *units = NULL;
    size_t nu = 0;
    CHECK(xb_sched_layer_units(0, R, C, N, 4, &units, &nu, &err) == XB_OK && nu == R * C * 3, "units: %zu", nu);
    CHECK(units && units[0].k0 == 0 && units[0].k1 == 4 && units[2].k0 == 8 && units[2].k1 == 10 &&
              units[3].ct == 1 && units[3].k0 == 0 && units[nu - 1].rt == R - 1 && units[nu - 1].ct == C - 1,
          "unit order: row tile, column tile, chunk");
    free(units);
    CHECK(fabs(xb_sched_unit_limit_s(0.5, 4) - 3.0) < 1e-12 && fabs(xb_sched_unit_limit_s(0, 1) - 60.0) < 1e-12,
          "limits: 0.5 x (4 + 2) = %g; default 20 x 3 = %g", xb_sched_unit_limit_s(0.5, 4), xb_sched_unit_limit_s(0, 1));

    /* Every unit done once; 1 and 3 workers give identical results. */
    o.workers = 1;
    CHECK(run(&o, &t, 4, &s1, &st, &err) == XB_OK, "1 worker: %s", err.msg);
    CHECK(all_once(&s1) && st.units == R * C * 3 && st.workers_started == 1, "1 worker: every unit once (%zu units, "
          "%zu workers)", st.units, st.workers_started);
    o.workers = 3;
    CHECK(run(&o, &t, 4, &s3, &st, &err) == XB_OK, "3 workers: %s", err.msg);
    CHECK(all_once(&s3) && st.units == R * C * 3 && st.workers_started == 3 && st.workers_lost == 0,
          "3 workers: every unit once (%zu units, %zu workers)", st.units, st.workers_started);
    CHECK(!memcmp(s1.out, s3.out, sizeof s1.out), "1 and 3 workers: identical results");
    /* More workers than units: one per unit. */
    o.workers = 50;
    CHECK(run(&o, &t, 10, &s, &st, &err) == XB_OK && all_once(&s) && st.workers_started == R * C,
          "50 workers for %d units: %zu started (%s)", R * C, st.workers_started, err.msg);

    /* A lost worker: replaced, its unit done again, nothing done twice. */
    o.workers = 3;
    o.fault_lose_unit = 4;
    CHECK(run(&o, &t, 4, &s, &st, &err) == XB_OK, "a lost worker: %s", err.msg);
    CHECK(all_once(&s) && !memcmp(s.out, s1.out, sizeof s.out), "after a lost worker: every unit once, same results");
    /* The lost worker's slot starts a replacement only if units are still queued when it is free. */
    CHECK(st.workers_lost == 1 && st.unit_retries == 1 && st.workers_started >= 3 && st.workers_started <= 4,
          "lost %zu, retried %zu, started %zu (want 1, 1, 3 or 4)", st.workers_lost, st.unit_retries, st.workers_started);
    /* ... also when the worker type itself fails in a way a fresh worker would not. */
    o.fault_lose_unit = -1;
    o.fault_worker_unit = 0;
    CHECK(run(&o, &t, 4, &s, &st, &err) == XB_OK && all_once(&s) && st.workers_lost == 1 && st.unit_retries == 1,
          "a worker that broke: lost %zu retried %zu (%s)", st.workers_lost, st.unit_retries, err.msg);

    /* Give up: a unit that ends every worker stops the run after 3, with the worker's words and the hint. */
    o.fault_repeat = 1;
    o.lost_hint = "toy logs nowhere";
    int rc = run(&o, &t, 4, &s, &st, &err);
    printf("a unit that ends every worker -> %s\n", err.msg);
    CHECK(rc == XB_ERUNTIME && strstr(err.msg, "layer 1 tile (0, 0), inputs 0..3 ended 3 workers") &&
              strstr(err.msg, "broke on purpose") && strstr(err.msg, "(toy logs nowhere)"),
          "give up after 3 deaths: rc %d %s", rc, err.msg);
    CHECK(st.workers_lost == 3, "3 workers lost: %zu", st.workers_lost);
    o.fault_worker_unit = -1;
    o.fault_lose_unit = 2;
    rc = run(&o, &t, 4, &s, &st, &err);
    CHECK(rc == XB_ERUNTIME && strstr(err.msg, "ended 3 workers") && strstr(err.msg, "signal 9"),
          "a killed worker's words name the signal: %s", err.msg);
    o.fault_repeat = 0;
    o.fault_lose_unit = -1;
    /* A failure any worker would meet stops the run at once, with its code, and costs no worker. */
    t.refuse_input = 6;
    rc = run(&o, &t, 4, &s, &st, &err);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "refuses input 6") && st.workers_lost == 0 && st.unit_retries == 0,
          "a refused unit stops the run: rc %d, %s, lost %zu", rc, err.msg, st.workers_lost);
    t.refuse_input = -1;
    t.fail_open = 1;
    rc = run(&o, &t, 4, &s, &st, &err);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "cannot open"), "a worker that cannot open: rc %d, %s", rc, err.msg);
    t.fail_open = 0;

    /* Time limits: the chunk holding input 5 of each tile runs past 0.1 x (4 + 2) s, is split, and input
     * 5 alone runs past 0.1 x 3 s and is failed; everything else is done once, no worker counted lost. */
    t.hang_input = 5;
    o.per_input_s = 0.1;
    double t0 = xb_now();
    rc = run(&o, &t, 4, &s, &st, &err);
    double took = xb_now() - t0;
    printf("time limits: %.2f s, %zu units and %zu inputs timed out\n", took, st.units_timed_out, st.inputs_timed_out);
    CHECK(rc == XB_OK, "time limits: %s", err.msg);
    CHECK(st.units_timed_out == R * C && st.inputs_timed_out == R * C && st.workers_lost == 0,
          "%zu units, %zu inputs timed out (want %d each), %zu lost", st.units_timed_out, st.inputs_timed_out, R * C,
          st.workers_lost);
    int ok = 1;
    for (size_t rt = 0; rt < R; rt++)
        for (size_t ct = 0; ct < C; ct++)
            for (size_t k = 0; k < N; k++)
                ok &= k == 5 ? s.failed[rt][ct][k] == 1 && s.count[rt][ct][k] == 0
                             : s.failed[rt][ct][k] == 0 && s.count[rt][ct][k] == 1 && s.out[rt][ct][k] == s1.out[rt][ct][k];
    CHECK(ok, "input 5 failed once per tile, every other input done once with its value");
    /* 6 chunks of 0.6 s and 6 inputs of 0.3 s on 3 workers, plus starts: well under 10 s. */
    CHECK(took >= 0.6 && took < 10, "bounded time: %.2f s", took);

    return check_summary("test_sched");
}
