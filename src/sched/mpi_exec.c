// mpi_exec: the MPI executor (rank 0) and the serving loop of the other ranks
#define _GNU_SOURCE
#include "mpi_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "pack.h"
#include "progress.h"

/* Launchers announce the job size in the environment: Open MPI's mpirun, PMI (MPICH, Slurm's srun
 * --mpi=pmi2) and PMIx (srun --mpi=pmix, Open MPI 5). */
static int launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return getenv("PMIX_RANK") ? 2 : 0; /* PMIx without its size: a launcher, size unknown */
}

#if XB_HAVE_MPI

#include <mpi.h>

static int g_rank, g_size = 1, g_active, g_finalized;

/* Messages. Rank 0 -> serving rank: START (then the packed context in CTX pieces), SUBMIT, STOP, QUIT.
 * Serving rank -> rank 0: STARTED, EVENT (with the result block of a unit done), STOPPED. */
enum { TAG_START = 1, TAG_CTX, TAG_SUBMIT, TAG_STOP, TAG_QUIT, TAG_STARTED, TAG_EVENT, TAG_STOPPED };

#define CTX_PIECE ((size_t)1 << 28) /* bytes per message of a context (MPI counts are int) */

typedef struct start_msg {
    char type[64];
    size_t result_bytes, ctx_len;
    int slots;
} start_msg;

typedef struct submit_msg {
    int slot, hook;
    long id;
    xb_unit u;
    double limit_s;
} submit_msg;

typedef struct reply_msg { /* STARTED, STOPPED and the head of EVENT */
    int rc;
    xb_event ev;          /* ev.result is not sent; a DONE event's block follows the header */
    size_t workers_started;
} reply_msg;

int xb_mpi_built(void) { return 1; }

const char *xb_mpi_library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    if (!v[0]) {
        int len = 0;
        MPI_Get_library_version(v, &len);
        v[strcspn(v, "\n,")] = '\0';
    }
    return v;
}

int xb_mpi_init(int *argc, char ***argv, xb_error *err)
{
    if (g_active || launcher_size() < 1)
        return XB_OK;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return xb_fail(err, XB_ERUNTIME, "MPI_Init failed: the MPI launcher's job could not be joined");
    g_active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return XB_OK;
}

int xb_mpi_rank(void) { return g_rank; }
int xb_mpi_size(void) { return g_size; }

static void nap(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* A message from `from` with `tag`, if one is waiting. */
static int probe(int from, int tag, MPI_Status *st)
{
    int flag = 0;
    MPI_Iprobe(from, tag, MPI_COMM_WORLD, &flag, st);
    return flag;
}

/* Wait for a message without spinning a core (MPI_Probe busy-polls). */
static void probe_wait(int from, int tag, MPI_Status *st)
{
    while (!probe(from, tag, st))
        nap(2000);
}

static void send_bytes(const void *data, size_t len, int to, int tag)
{
    const char *p = data;
    do {
        size_t n = len < CTX_PIECE ? len : CTX_PIECE;
        MPI_Send(p, (int)n, MPI_BYTE, to, tag, MPI_COMM_WORLD);
        p += n, len -= n;
    } while (len);
}

static void recv_bytes(void *data, size_t len, int from, int tag)
{
    char *p = data;
    do {
        size_t n = len < CTX_PIECE ? len : CTX_PIECE;
        MPI_Recv(p, (int)n, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        p += n, len -= n;
    } while (len);
}

void xb_mpi_finalize(void)
{
    if (!g_active || g_finalized)
        return;
    g_finalized = 1;
    if (g_rank == 0)
        for (int r = 1; r < g_size; r++)
            MPI_Send(NULL, 0, MPI_BYTE, r, TAG_QUIT, MPI_COMM_WORLD);
    MPI_Finalize();
}

/* ---- rank 0: the executor ---- */

typedef struct mpx {
    xb_executor_config cfg;
    int size;
    void *local;             /* rank 0's own local executor (NULL when it has no slot) */
    int *remote_started;     /* per rank: START sent and acknowledged */
    size_t *remote_workers;  /* per rank: workers it has started, as last reported */
    unsigned char *results;  /* per slot: the block of its last unit done */
    size_t stride;
    unsigned char *msg;      /* receive buffer: a reply header and a result block */
} mpx;

/* Slot i runs on rank i mod size as that rank's local slot i / size; rank r holds slots_of(r) slots. */
static int slots_of(int slots, int size, int r) { return r < slots ? (slots - r + size - 1) / size : 0; }

static void mpx_stop(void **state, int abort);

static int mpx_start(const xb_executor_config *cfg, void **state, xb_error *err)
{
    *state = NULL;
    if (cfg->slots < 1)
        return xb_fail(err, XB_ERUNTIME, "no worker slots");
    int size = g_size;
    mpx *x = calloc(1, sizeof *x);
    if (!x)
        return xb_fail(err, XB_ENOMEM, "out of memory for the MPI executor");
    x->cfg = *cfg;
    x->size = size;
    x->stride = (cfg->result_bytes + 63) / 64 * 64;
    x->remote_started = calloc((size_t)size, sizeof *x->remote_started);
    x->remote_workers = calloc((size_t)size, sizeof *x->remote_workers);
    x->results = malloc(x->stride * (size_t)cfg->slots + 1);
    x->msg = malloc(sizeof(reply_msg) + cfg->result_bytes);
    if (!x->remote_started || !x->remote_workers || !x->results || !x->msg) {
        *state = x;
        mpx_stop(state, 1);
        return xb_fail(err, XB_ENOMEM, "out of memory for the MPI executor");
    }
    *state = x;
    int rc = XB_OK;
    xb_pack ctx = {0};
    if (size > 1) {
        const xb_worker_type *wt = cfg->worker;
        if (!wt->pack || !wt->unpack) {
            mpx_stop(state, 1);
            return xb_fail(err, XB_ERUNTIME, "the %s workers cannot run on other MPI ranks", wt->name);
        }
        if ((rc = wt->pack(cfg->ctx, &ctx, err)) || (xb_pack_failed(&ctx) && (rc = XB_ENOMEM))) {
            if (rc == XB_ENOMEM && !err->msg[0])
                xb_fail(err, XB_ENOMEM, "out of memory packing the workers' inputs for the MPI ranks");
            xb_pack_free(&ctx);
            mpx_stop(state, 1);
            return rc;
        }
        for (int r = 1; r < size; r++) {
            start_msg sm = {{0}, cfg->result_bytes, ctx.len, slots_of(cfg->slots, size, r)};
            if (!sm.slots)
                continue;
            snprintf(sm.type, sizeof sm.type, "%s", wt->name);
            MPI_Send(&sm, sizeof sm, MPI_BYTE, r, TAG_START, MPI_COMM_WORLD);
            if (ctx.len)
                send_bytes(ctx.data, ctx.len, r, TAG_CTX);
        }
        xb_pack_free(&ctx);
        /* Every rank says whether its workers started; the first failure is the run's. */
        for (int r = 1; r < size; r++) {
            if (!slots_of(cfg->slots, size, r))
                continue;
            reply_msg rep;
            MPI_Recv(&rep, sizeof rep, MPI_BYTE, r, TAG_STARTED, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            x->remote_started[r] = 1;
            if (rep.rc && !rc)
                rc = xb_fail(err, rep.rc, "MPI rank %d: %s", r, rep.ev.err.msg);
            x->remote_workers[r] = rep.workers_started;
            if (cfg->workers_started)
                *cfg->workers_started += rep.workers_started;
        }
        if (rc) {
            mpx_stop(state, 1);
            return rc;
        }
    }
    int own = slots_of(cfg->slots, size, 0);
    if (own) {
        xb_executor_config lc = *cfg;
        lc.slots = own;
        if ((rc = xb_executor_local.start(&lc, &x->local, err))) {
            mpx_stop(state, 1);
            return rc;
        }
    }
    return XB_OK;
}

static int mpx_submit(void *state, int slot, long id, const xb_unit *u, int hook, double limit_s, xb_error *err)
{
    mpx *x = state;
    int r = slot % x->size, ls = slot / x->size;
    if (r == 0)
        return xb_executor_local.submit(x->local, ls, id, u, hook, limit_s, err);
    submit_msg m = {ls, hook, id, *u, limit_s};
    MPI_Send(&m, sizeof m, MPI_BYTE, r, TAG_SUBMIT, MPI_COMM_WORLD);
    return XB_OK;
}

/* An event from a serving rank, if one is waiting: 1 with *ev filled. */
static int mpx_remote_event(mpx *x, xb_event *ev)
{
    MPI_Status st;
    if (x->size < 2 || !probe(MPI_ANY_SOURCE, TAG_EVENT, &st))
        return 0;
    int r = st.MPI_SOURCE, n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    MPI_Recv(x->msg, n, MPI_BYTE, r, TAG_EVENT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    reply_msg rep;
    memcpy(&rep, x->msg, sizeof rep);
    *ev = rep.ev;
    ev->slot = rep.ev.slot * x->size + r;
    ev->result = NULL;
    if (x->cfg.workers_started && rep.workers_started > x->remote_workers[r])
        *x->cfg.workers_started += rep.workers_started - x->remote_workers[r];
    x->remote_workers[r] = rep.workers_started;
    if (ev->kind == XB_EVENT_DONE) {
        unsigned char *dst = x->results + (size_t)ev->slot * x->stride;
        memcpy(dst, x->msg + sizeof rep, (size_t)n - sizeof rep);
        ev->result = dst;
    }
    if (ev->kind == XB_EVENT_LOST || ev->kind == XB_EVENT_REFUSED)
        xb_error_prefix(&ev->err, "MPI rank %d", r);
    return 1;
}

static int mpx_poll(void *state, xb_event *ev, int timeout_ms, xb_error *err)
{
    mpx *x = state;
    double t0 = xb_now();
    for (;;) {
        if (mpx_remote_event(x, ev))
            return 1;
        if (x->local) {
            int got = xb_executor_local.poll(x->local, ev, 5, err);
            if (got < 0)
                return -1;
            if (got) {
                ev->slot = ev->slot * x->size;
                return 1;
            }
        } else
            nap(2000);
        if (timeout_ms >= 0 && (xb_now() - t0) * 1000 >= timeout_ms)
            return 0;
    }
}

static int mpx_wait(void *state, xb_event *ev, xb_error *err)
{
    return mpx_poll(state, ev, -1, err) < 0 ? XB_ERUNTIME : XB_OK;
}

static void mpx_stop(void **state, int abort)
{
    mpx *x = *state;
    if (!x)
        return;
    if (x->local)
        xb_executor_local.stop(&x->local, abort);
    for (int r = 1; x->remote_started && r < x->size; r++) {
        if (!x->remote_started[r])
            continue;
        MPI_Send(&abort, sizeof abort, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        /* Events it sent before the stop are dropped: the next run must not see them. */
        for (;;) {
            MPI_Status st;
            probe_wait(r, MPI_ANY_TAG, &st);
            int n = 0;
            MPI_Get_count(&st, MPI_BYTE, &n);
            unsigned char *sink = malloc(n ? (size_t)n : 1);
            MPI_Recv(sink, n, MPI_BYTE, r, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            free(sink);
            if (st.MPI_TAG == TAG_STOPPED)
                break;
        }
    }
    free(x->remote_started);
    free(x->remote_workers);
    free(x->results);
    free(x->msg);
    free(x);
    *state = NULL;
}

/* ---- serving ranks ---- */

typedef struct server {
    const xb_worker_type *wt;
    void *ctx;
    void *local;
    size_t result_bytes, workers_started;
    unsigned char *out; /* a reply header and a result block */
} server;

static void serve_reply(server *s, int tag, int rc, const xb_event *ev, const void *result)
{
    reply_msg rep;
    memset(&rep, 0, sizeof rep);
    rep.rc = rc;
    if (ev)
        rep.ev = *ev;
    rep.ev.result = NULL;
    rep.workers_started = s->workers_started;
    size_t n = sizeof rep;
    memcpy(s->out, &rep, sizeof rep);
    if (result) {
        memcpy(s->out + sizeof rep, result, s->result_bytes);
        n += s->result_bytes;
    }
    MPI_Send(s->out, (int)n, MPI_BYTE, 0, tag, MPI_COMM_WORLD);
}

static void serve_end_run(server *s, int abort)
{
    if (s->local)
        xb_executor_local.stop(&s->local, abort);
    if (s->ctx && s->wt && s->wt->unpack_free)
        s->wt->unpack_free(&s->ctx);
    s->ctx = NULL;
    s->wt = NULL;
}

static void serve_start(server *s, const xb_worker_type *const *types, size_t n_types)
{
    start_msg sm;
    MPI_Recv(&sm, sizeof sm, MPI_BYTE, 0, TAG_START, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    unsigned char *bytes = malloc(sm.ctx_len ? sm.ctx_len : 1);
    xb_error err = {0};
    int rc = XB_OK;
    if (!bytes) {
        /* The pieces must still be taken off the wire. */
        unsigned char *piece = malloc(CTX_PIECE);
        for (size_t left = sm.ctx_len; piece && left;) {
            size_t n = left < CTX_PIECE ? left : CTX_PIECE;
            MPI_Recv(piece, (int)n, MPI_BYTE, 0, TAG_CTX, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            left -= n;
        }
        free(piece);
        rc = xb_fail(&err, XB_ENOMEM, "out of memory for %zu bytes of workers' inputs", sm.ctx_len);
    } else if (sm.ctx_len)
        recv_bytes(bytes, sm.ctx_len, 0, TAG_CTX);
    sm.type[sizeof sm.type - 1] = '\0';
    s->wt = NULL;
    for (size_t i = 0; !rc && i < n_types; i++)
        if (!strcmp(types[i]->name, sm.type))
            s->wt = types[i];
    if (!rc && !s->wt)
        rc = xb_fail(&err, XB_ERUNTIME, "no worker type named '%s' on this rank", sm.type);
    if (!rc)
        rc = s->wt->unpack(bytes, sm.ctx_len, g_rank, &s->ctx, &err);
    free(bytes);
    if (!rc) {
        free(s->out);
        s->result_bytes = sm.result_bytes;
        s->out = malloc(sizeof(reply_msg) + sm.result_bytes);
        if (!s->out)
            rc = xb_fail(&err, XB_ENOMEM, "out of memory for result blocks");
    }
    if (!rc) {
        xb_executor_config cfg = {sm.slots, s->wt, s->ctx, sm.result_bytes, &s->workers_started};
        rc = xb_executor_local.start(&cfg, &s->local, &err);
    }
    if (rc) {
        serve_end_run(s, 1);
        if (!s->out)
            s->out = malloc(sizeof(reply_msg));
    }
    xb_event ev = {0};
    ev.err = err;
    if (s->out)
        serve_reply(s, TAG_STARTED, rc, &ev, NULL);
    else {
        reply_msg rep = {rc, ev, 0};
        MPI_Send(&rep, sizeof rep, MPI_BYTE, 0, TAG_STARTED, MPI_COMM_WORLD);
    }
}

int xb_mpi_serve(const xb_worker_type *const *types, size_t n_types)
{
    server s = {0};
    for (;;) {
        if (s.local) {
            xb_event ev;
            xb_error err = {0};
            int got = xb_executor_local.poll(s.local, &ev, 5, &err);
            if (got > 0)
                serve_reply(&s, TAG_EVENT, 0, &ev, ev.kind == XB_EVENT_DONE ? ev.result : NULL);
            else if (got < 0) {
                memset(&ev, 0, sizeof ev);
                ev.kind = XB_EVENT_REFUSED;
                ev.err = err;
                serve_reply(&s, TAG_EVENT, 0, &ev, NULL);
            }
        } else
            nap(2000);
        MPI_Status st;
        if (!probe(0, MPI_ANY_TAG, &st))
            continue;
        if (st.MPI_TAG == TAG_START) {
            serve_start(&s, types, n_types);
        } else if (st.MPI_TAG == TAG_SUBMIT) {
            submit_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, 0, TAG_SUBMIT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            xb_error err = {0};
            if (s.local && xb_executor_local.submit(s.local, m.slot, m.id, &m.u, m.hook, m.limit_s, &err)) {
                xb_event ev = {0};
                ev.kind = XB_EVENT_REFUSED;
                ev.slot = m.slot;
                ev.unit = m.id;
                ev.err = err;
                serve_reply(&s, TAG_EVENT, 0, &ev, NULL);
            }
        } else if (st.MPI_TAG == TAG_STOP) {
            int abort = 1;
            MPI_Recv(&abort, sizeof abort, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            serve_end_run(&s, abort);
            MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_STOPPED, MPI_COMM_WORLD);
        } else if (st.MPI_TAG == TAG_QUIT) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_QUIT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            break;
        } else { /* nothing else is sent to a serving rank: drop it */
            MPI_Recv(NULL, 0, MPI_BYTE, 0, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
    serve_end_run(&s, 1);
    free(s.out);
    g_finalized = 1;
    MPI_Finalize();
    return 0;
}

#else /* no MPI in this build */

int xb_mpi_built(void) { return 0; }
const char *xb_mpi_library(void) { return "none (built without MPI)"; }

int xb_mpi_init(int *argc, char ***argv, xb_error *err)
{
    (void)argc, (void)argv;
    int n = launcher_size();
    if (n > 1)
        return xb_fail(err, XB_EINPUT, "an MPI launcher started %d copies of xbarsim, but this build has no MPI, so "
                       "each would run the whole job: install libopenmpi-dev and rebuild (meson setup --reconfigure "
                       "-Dmpi=enabled), or run without mpirun", n);
    return XB_OK;
}

int xb_mpi_rank(void) { return 0; }
int xb_mpi_size(void) { return 1; }
int xb_mpi_serve(const xb_worker_type *const *types, size_t n_types)
{
    (void)types, (void)n_types;
    return 0;
}
void xb_mpi_finalize(void) {}

static int mpx_start(const xb_executor_config *cfg, void **state, xb_error *err)
{
    return xb_executor_local.start(cfg, state, err);
}
static int mpx_submit(void *state, int slot, long id, const xb_unit *u, int hook, double limit_s, xb_error *err)
{
    return xb_executor_local.submit(state, slot, id, u, hook, limit_s, err);
}
static int mpx_wait(void *state, xb_event *ev, xb_error *err) { return xb_executor_local.wait(state, ev, err); }
static int mpx_poll(void *state, xb_event *ev, int timeout_ms, xb_error *err)
{
    return xb_executor_local.poll(state, ev, timeout_ms, err);
}
static void mpx_stop(void **state, int abort) { xb_executor_local.stop(state, abort); }

#endif

const xb_executor_type xb_executor_mpi = {
    .name = "mpi",
    .start = mpx_start,
    .submit = mpx_submit,
    .wait = mpx_wait,
    .poll = mpx_poll,
    .stop = mpx_stop,
};
