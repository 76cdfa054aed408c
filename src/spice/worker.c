// worker: the ngspice worker type: open a solver, turn units into tile solves, write result blocks
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ngspice.h"

/* The most inputs ordered as one path: the greedy search costs block x n distances. */
#define ORDER_BLOCK 1000

static double dist2(const double *a, const double *b, size_t nr)
{
    double d = 0;
    for (size_t i = 0; i < nr; i++)
        d += (a[i] - b[i]) * (a[i] - b[i]);
    return d;
}

void xb_spice_chunk_order(const double *v_tile, size_t n, size_t nr, size_t *order)
{
    for (size_t q = 0; q < n; q++)
        order[q] = q;
    if (n < 3)
        return;
    /* The path starts at the input with the smallest sum of row voltages (the first of them). */
    size_t first = 0;
    double low = INFINITY;
    for (size_t q = 0; q < n; q++) {
        double sum = 0;
        for (size_t i = 0; i < nr; i++)
            sum += v_tile[q * nr + i];
        if (sum < low)
            low = sum, first = q;
    }
    order[0] = first, order[first] = 0;
    /* order[q..n) are the inputs not yet on the path: each step takes the nearest to the last one (the
     * first found of equals), looking at most ORDER_BLOCK inputs ahead. */
    for (size_t q = 1; q < n; q++) {
        const double *last = v_tile + order[q - 1] * nr;
        size_t pick = q, end = n - q > ORDER_BLOCK ? q + ORDER_BLOCK : n;
        double best = INFINITY;
        for (size_t r = q; r < end && best > 0; r++) {
            double d = dist2(last, v_tile + order[r] * nr, nr);
            if (d < best)
                best = d, pick = r;
        }
        size_t t = order[q];
        order[q] = order[pick], order[pick] = t;
    }
}

int xb_spice_solve_chunk(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                         const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                         xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    size_t *order = malloc((n + 1) * sizeof *order), *slot = malloc((n + 1) * sizeof *slot);
    double *v_path = malloc((n * nr + 1) * sizeof *v_path), *i_path = malloc((n * nc + 1) * sizeof *i_path);
    int *st_path = malloc((n + 1) * sizeof *st_path);
    int rc = XB_OK;
    if (!order || !slot || !v_path || !i_path || !st_path)
        rc = xb_fail(err, XB_ENOMEM, "out of memory for a unit of %zu inputs", n);
    else /* before the inputs move: a bad row voltage is named by its place in the caller's order */
        rc = xb_netlist_check(c, l, rt, ct, dev, o, v_tile, n, err);
    size_t m = 0; /* distinct inputs, in path order */
    if (!rc) {
        xb_spice_chunk_order(v_tile, n, nr, order);
        for (size_t q = 0; q < n; q++) {
            const double *v = v_tile + order[q] * nr;
            /* The path puts equal inputs next to each other: one solve serves them all. */
            if (m > 0 && !memcmp(v, v_path + (m - 1) * nr, nr * sizeof *v)) {
                slot[q] = m - 1;
                continue;
            }
            memcpy(v_path + m * nr, v, nr * sizeof *v_path);
            slot[q] = m++;
        }
        rc = xb_spice_solve_tile(s, c, l, rt, ct, dev, o, v_path, m, i_path, st_path, err);
    }
    if (!rc)
        for (size_t q = 0; q < n; q++) {
            memcpy(i_cols + order[q] * nc, i_path + slot[q] * nc, nc * sizeof *i_cols);
            if (status)
                status[order[q]] = st_path[slot[q]];
        }
    free(order), free(slot), free(v_path), free(i_path), free(st_path);
    return rc;
}

void xb_spice_worker_log_dir(const char *log_dir, char *out, size_t cap)
{
    char cwd[4096];
    if (!log_dir[0])
        out[0] = '\0';
    else if (log_dir[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(out, cap, "%s/%s", cwd, log_dir);
    else
        snprintf(out, cap, "%s", log_dir);
}

size_t xb_spice_worker_result_bytes(const xb_spice_worker_ctx *w)
{
    size_t nc = w->chip->opt.tile_cols, k = w->chunk;
    return XB_SPICE_RESULT_CURRENTS + k * nc * sizeof(double) + k;
}

const double *xb_spice_result_currents(const void *result)
{
    return (const double *)((const char *)result + XB_SPICE_RESULT_CURRENTS);
}

const unsigned char *xb_spice_result_status(const void *result, size_t k, size_t nc)
{
    return (const unsigned char *)result + XB_SPICE_RESULT_CURRENTS + k * nc * sizeof(double);
}

typedef struct state {
    xb_spice *s;
    double *v_tile;
    int *status;
} state;

static int open_solver(const char *log_dir, const char *file, xb_spice **s, xb_error *err)
{
    char log[8400];
    if (log_dir[0])
        snprintf(log, sizeof log, "%s/%s", log_dir, file);
    return xb_spice_open(log_dir[0] ? log : NULL, s, err);
}

static int worker_open(void *ctx, int index, void **out, xb_error *err)
{
    const xb_spice_worker_ctx *w = ctx;
    *out = NULL;
    state *st = calloc(1, sizeof *st);
    if (!st)
        return xb_fail(err, XB_ENOMEM, "a worker is out of memory");
    char name[64];
    if (w->process > 0) /* an MPI rank's workers: their own names in a shared log folder */
        snprintf(name, sizeof name, "ngspice-rank-%d-worker-%d.log", w->process, index);
    else
        snprintf(name, sizeof name, "ngspice-worker-%d.log", index);
    int rc = open_solver(w->log_dir, name, &st->s, err);
    if (rc) {
        xb_error_prefix(err, "a worker could not start libngspice");
        free(st);
        return rc;
    }
    size_t max_nr = w->chip->opt.tile_rows;
    st->v_tile = malloc(w->chunk * max_nr * sizeof *st->v_tile);
    st->status = malloc(w->chunk * sizeof *st->status);
    if (!st->v_tile || !st->status) {
        xb_spice_close(&st->s);
        free(st->v_tile), free(st->status), free(st);
        return xb_fail(err, XB_ENOMEM, "a worker is out of memory for a unit of %zu inputs", w->chunk);
    }
    *out = st;
    return XB_OK;
}

static int worker_run(void *ctx, void *sp, const xb_unit *u, int hook, void *result, int *repeatable, xb_error *err)
{
    const xb_spice_worker_ctx *w = ctx;
    state *st = sp;
    const xb_chip *c = w->chip;
    const xb_layer_map *L = &c->layers[w->layer];
    if (hook & XB_HOOK_WORKER)
        xb_spice_command(st->s, "quit"); /* ngspice calls ControlledExit: this library is done */
    size_t r0, nr, c0, nc, k = u->k1 - u->k0;
    xb_chip_tile_bounds(c, w->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    xb_netlist_tile_rows(c, w->layer, r0, nr, w->V + u->k0 * L->rows, k, st->v_tile);
    double *i_tile = (double *)((char *)result + XB_SPICE_RESULT_CURRENTS);
    long iter0 = xb_spice_newton_iterations(st->s);
    int rc = xb_spice_solve_chunk(st->s, c, w->layer, u->rt, u->ct, w->dev, w->net, st->v_tile, k, i_tile,
                                  st->status, err);
    if (rc || xb_spice_dead(st->s)) {
        /* A dead library is this process's problem: a fresh worker takes the unit. A live one that
         * refused the deck would refuse it in any worker: the run stops. */
        *repeatable = !xb_spice_dead(st->s) || xb_spice_deck_rejected(st->s);
        if (!rc)
            xb_fail(err, XB_ERUNTIME, "ngspice ended in a worker");
        return rc ? rc : XB_ERUNTIME;
    }
    unsigned char *status = (unsigned char *)result + XB_SPICE_RESULT_CURRENTS + k * nc * sizeof(double);
    for (size_t q = 0; q < k; q++)
        status[q] = (unsigned char)st->status[q];
    xb_spice_unit_result *h = result;
    h->ngspice_version = xb_spice_version(st->s);
    h->klu = xb_spice_klu(st->s);
    h->rows_path = xb_spice_rows_path(st->s, w->net);
    h->peak_rss_kb = xb_spice_peak_rss_kb();
    h->newton_iterations = xb_spice_newton_iterations(st->s) - iter0;
    return XB_OK;
}

static void worker_close(void *ctx, void **sp)
{
    (void)ctx;
    state *st = *sp;
    if (!st)
        return;
    xb_spice_close(&st->s);
    free(st->v_tile), free(st->status), free(st);
    *sp = NULL;
}

const xb_worker_type xb_spice_worker = {"ngspice",
                                        worker_open,
                                        worker_run,
                                        worker_close,
                                        xb_spice_worker_pack,
                                        xb_spice_worker_unpack,
                                        xb_spice_worker_unpack_free};

static int oneoff_open(void *ctx, int index, void **out, xb_error *err)
{
    (void)index;
    const xb_spice_oneoff_ctx *o = ctx;
    xb_spice *s = NULL;
    *out = NULL;
    int rc = open_solver(o->log_dir, "ngspice-single.log", &s, err);
    *out = s;
    return rc;
}

static int oneoff_run(void *ctx, void *sp, const xb_unit *u, int hook, void *result, int *repeatable, xb_error *err)
{
    (void)u, (void)hook;
    const xb_spice_oneoff_ctx *o = ctx;
    *repeatable = 1; /* one try only */
    return o->fn(sp, o->ctx, result, err);
}

static void oneoff_close(void *ctx, void **sp)
{
    (void)ctx;
    xb_spice *s = *sp;
    xb_spice_close(&s);
    *sp = NULL;
}

const xb_worker_type xb_spice_oneoff_worker = {
    .name = "ngspice one-off", .open = oneoff_open, .run = oneoff_run, .close = oneoff_close};
