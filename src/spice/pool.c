// pool: worker processes that solve (layer, tile, input chunk) units through libngspice in parallel
#define _GNU_SOURCE
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "fileio.h"
#include "ngspice.h"
#include "progress.h"

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

/* LOG_DIR/file as an absolute path: a worker changes into its own folder before it opens its log. */
static void worker_log_path(const char *log_dir, const char *file, char *out, size_t cap)
{
    char cwd[4096];
    if (!log_dir[0])
        out[0] = '\0';
    else if (log_dir[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(out, cap, "%s/%s/%s", cwd, log_dir, file);
    else
        snprintf(out, cap, "%s/%s", log_dir, file);
}

/* A worker runs in a folder of its own, with HOME pointing there. The parent makes it before the fork
 * and removes it after reaping the worker, so a worker that was killed leaves nothing behind. The
 * folder's name carries the parent's PID: folders of a parent that is gone (killed with SIGKILL before
 * its workers could clean up) are removed when the next pool starts. A worker dies with its parent
 * (PR_SET_PDEATHSIG), removing its folder first; on SIGINT/SIGTERM the parent's handler stops the
 * workers and removes their folders (xb_cleanup_now). */
#define WORKER_DIR_PREFIX "xbarsim-worker-"
#define WORKER_DIR_MAX 64

/* Folders of workers whose parent process is gone. */
static void remove_orphan_worker_dirs(void)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    char path[4200];
    for (struct dirent *e; (e = readdir(d));) {
        size_t np = sizeof WORKER_DIR_PREFIX - 1;
        if (strncmp(e->d_name, WORKER_DIR_PREFIX, np))
            continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        if (end == e->d_name + np || *end != '-' || pid <= 0 || xb_pid_alive(pid))
            continue;
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
            xb_remove_tree_signal_safe(path, 2);
    }
    closedir(d);
}

static int make_worker_dir(char dir[WORKER_DIR_MAX])
{
    static int swept;
    if (!swept) {
        swept = 1;
        remove_orphan_worker_dirs();
    }
    snprintf(dir, WORKER_DIR_MAX, "/tmp/" WORKER_DIR_PREFIX "%ld-XXXXXX", (long)getpid());
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        return -1;
    }
    xb_cleanup_track_worker(dir, 0);
    return 0;
}

/* In a worker: its own folder, removed on the signals that end it (its parent's handler has its own). */
static char worker_own_dir[WORKER_DIR_MAX];

static void on_worker_signal(int sig)
{
    xb_remove_tree_signal_safe(worker_own_dir, 2);
    _exit(128 + sig);
}

/* First thing in a forked worker: end with the parent, cleaning up. */
static void worker_guard(const char *dir, pid_t parent)
{
    snprintf(worker_own_dir, sizeof worker_own_dir, "%s", dir);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_worker_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) /* the parent died before the line above */
        on_worker_signal(SIGTERM);
}

static int enter_worker_dir(const char *dir)
{
    if (chdir(dir) != 0)
        return -1;
    setenv("HOME", dir, 1);
    setenv("TMPDIR", dir, 1); /* xb_spice_open's scratch folder too, for a worker killed while it starts */
    return 0;
}

static void remove_worker_dir(char *dir)
{
    if (!dir[0])
        return;
    xb_remove_tree_signal_safe(dir, 2);
    xb_cleanup_untrack_worker(dir);
    dir[0] = '\0';
}

/* Where the result starts in a one-off worker's shared block: after the error record, aligned for any
 * type the callback stores there (doubles, from xb_spice_tile_cell_voltages). */
#define RUN_ONE_RESULT_OFFSET ((sizeof(xb_error) + 63) / 64 * 64)

double xb_pool_unit_timeout_s(const xb_pool_options *o, size_t n_inputs)
{
    double t = o->solve_timeout_s > 0 ? o->solve_timeout_s : XB_POOL_SOLVE_TIMEOUT_S;
    return t * ((double)n_inputs + 2);
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
    size_t bytes = RUN_ONE_RESULT_OFFSET + result_bytes;
    void *shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        return xb_fail(err, XB_ENOMEM, "cannot map shared memory");
    xb_error *child_err = shm;
    memset(child_err, 0, sizeof *child_err);
    char dir[WORKER_DIR_MAX];
    if (make_worker_dir(dir) != 0) {
        munmap(shm, bytes);
        return xb_fail(err, XB_ERUNTIME, "cannot create a worker folder in /tmp: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        munmap(shm, bytes);
        remove_worker_dir(dir);
        return xb_fail(err, XB_ERUNTIME, "cannot start a worker: %s", strerror(errno));
    }
    if (pid == 0) {
        worker_guard(dir, parent);
        char log[8400];
        worker_log_path(o->log_dir, "ngspice-single.log", log, sizeof log);
        if (enter_worker_dir(dir) != 0) {
            xb_fail(child_err, XB_ERUNTIME, "a worker cannot enter its folder %s: %s", dir, strerror(errno));
            _exit(3);
        }
        xb_spice *s = NULL;
        int rc = xb_spice_open(log[0] ? log : NULL, &s, child_err);
        if (!rc)
            rc = fn(s, ctx, (char *)shm + RUN_ONE_RESULT_OFFSET, child_err);
        xb_spice_close(&s);
        _exit(rc ? 1 : 0);
    }
    xb_cleanup_track_worker(dir, pid);
    /* One solve, one input's time limit: a model card that sends ngspice into an endless loop must not
     * hang the command. */
    double limit = xb_pool_unit_timeout_s(o, 1), deadline = xb_now() + limit;
    int status = 0, timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        if (xb_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    remove_worker_dir(dir);
    int rc = XB_OK;
    if (timed_out_out)
        *timed_out_out = timed_out;
    if (timed_out)
        rc = xb_fail(err, XB_ERUNTIME, "the ngspice solve ran past its time limit of %g s (solve_timeout_s %g s x 3) and "
                     "was stopped; the device's model cards may send ngspice into an endless loop (see the ngspice log"
                     "%s%s)", limit, limit / 3, o->log_dir[0] ? " in " : "", o->log_dir);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = xb_fail(err, child_err->code ? child_err->code : XB_ERUNTIME, "%s",
                     child_err->msg[0] ? child_err->msg : "the ngspice worker died");
    else
        memcpy(result, (char *)shm + RUN_ONE_RESULT_OFFSET, result_bytes);
    munmap(shm, bytes);
    return rc;
}

typedef struct unit {
    size_t rt, ct, k0, k1;
} unit;

/* What the parent sends a worker: the unit itself (units made after the fork, the one-input retries of
 * a unit that ran past its time limit, exist only in the parent) and its number. Under PIPE_BUF bytes,
 * so a write is whole. */
typedef struct job {
    long id;
    unit u;
} job;

/* Why a worker ended, written by the worker before it exits and read by the parent when it reaps it. */
typedef struct worker_report {
    xb_error err;
    int repeatable; /* 1: ngspice is alive and refused the work (a bad deck): a fresh worker fails the same way */
} worker_report;

/* What the workers write and the parent reads: in a MAP_SHARED mapping, followed by one worker_report
 * per worker slot (a replacement reuses its slot's report once the parent has read it). */
typedef struct shared_hdr {
    int fault_fired, quit_fired;
    int ngspice_version;
    int klu;
    int rows_path;
    long peak_rss_kb;
    size_t inputs_retried, inputs_failed;
} shared_hdr;

typedef struct worker {
    pid_t pid;
    int cmd_fd;   /* parent writes jobs here */
    long unit;    /* the unit it holds, -1 if idle */
    double deadline; /* when the unit it holds runs out of time (xb_now) */
    long killed_unit; /* the unit it held when the parent killed it for its time, else -1 */
    int index;
    char dir[WORKER_DIR_MAX]; /* its folder, removed by the parent when it ends */
} worker;

/* Messages from workers on the shared result pipe. */
typedef struct msg {
    int worker;
    long unit; /* -1: ready, >= 0: unit done */
    int status;
} msg;

static void worker_main(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *fail,
                        shared_hdr *hdr, worker_report *me, int index, const char *dir, int cmd_fd, int res_fd)
{
    const xb_chip *c = p->chip;
    const xb_layer_map *L = &c->layers[l];
    char log[8400], name[64];
    snprintf(name, sizeof name, "ngspice-worker-%d.log", index);
    worker_log_path(p->o.log_dir, name, log, sizeof log);
    if (enter_worker_dir(dir) != 0) {
        xb_fail(&me->err, XB_ERUNTIME, "a worker cannot enter its folder %s: %s", dir, strerror(errno));
        me->repeatable = 1;
        _exit(3);
    }
    xb_error err = {0};
    xb_spice *s = NULL;
    int rc = xb_spice_open(log[0] ? log : NULL, &s, &err);
    if (rc) {
        me->err = err;
        me->repeatable = 1;
    }
    msg m = {index, -1, rc};
    if (write(res_fd, &m, sizeof m) != sizeof m || rc)
        _exit(4);
    __atomic_store_n(&hdr->ngspice_version, xb_spice_version(s), __ATOMIC_RELAXED);
    __atomic_store_n(&hdr->klu, xb_spice_klu(s), __ATOMIC_RELAXED);
    __atomic_store_n(&hdr->rows_path, xb_spice_rows_path(s, &p->o.net), __ATOMIC_RELAXED);
    size_t max_nr = c->opt.tile_rows, max_nc = c->opt.tile_cols, chunk = p->o.chunk;
    double *v_tile = malloc(chunk * max_nr * sizeof *v_tile), *i_tile = malloc(chunk * max_nc * sizeof *i_tile);
    int *status = malloc(chunk * sizeof *status);
    if (!v_tile || !i_tile || !status) {
        xb_fail(&me->err, XB_ENOMEM, "a worker is out of memory for a unit of %zu inputs", chunk);
        me->repeatable = 1;
        _exit(5);
    }
    job jb;
    while (read(cmd_fd, &jb, sizeof jb) == sizeof jb) {
        long u = jb.id;
        if (u == p->o.fault_unit &&
            (!__atomic_exchange_n(&hdr->fault_fired, 1, __ATOMIC_SEQ_CST) || p->o.fault_repeat))
            raise(SIGKILL);
        if (u == p->o.fault_quit_unit &&
            (!__atomic_exchange_n(&hdr->quit_fired, 1, __ATOMIC_SEQ_CST) || p->o.fault_repeat))
            xb_spice_command(s, "quit"); /* ngspice calls ControlledExit: this library is done */
        const unit *w = &jb.u;
        size_t r0, nr, c0, nc, k = w->k1 - w->k0;
        xb_chip_tile_bounds(c, l, w->rt, w->ct, &r0, &nr, &c0, &nc);
        xb_netlist_tile_rows(c, l, r0, nr, V + w->k0 * L->rows, k, v_tile);
        rc = xb_spice_solve_tile(s, c, l, w->rt, w->ct, p->dev, &p->o.net, v_tile, k, i_tile, status, &err);
        if (rc || xb_spice_dead(s)) {
            /* A dead library is this process's problem: a fresh worker takes the unit. A live one that
             * refused the deck would refuse it in any worker: the parent stops the run. */
            me->err = err;
            me->repeatable = !xb_spice_dead(s) || xb_spice_deck_rejected(s);
            _exit(6);
        }
        size_t retried = 0, failed = 0;
        for (size_t q = 0; q < k; q++) {
            double *dst = I_rt + (w->rt * n + w->k0 + q) * L->cols + c0;
            memcpy(dst, i_tile + q * nc, nc * sizeof *dst);
            retried += status[q] == XB_SOLVE_RETRIED;
            if (status[q] == XB_SOLVE_FAILED) {
                failed++;
                fail[w->k0 + q] = 1;
                for (size_t j = 0; j < nc; j++)
                    dst[j] = 0; /* reported per input; the current is unknown */
            }
        }
        __atomic_add_fetch(&hdr->inputs_retried, retried, __ATOMIC_RELAXED);
        __atomic_add_fetch(&hdr->inputs_failed, failed, __ATOMIC_RELAXED);
        m = (msg){index, u, 0};
        if (write(res_fd, &m, sizeof m) != sizeof m)
            break;
    }
    long rss = xb_spice_peak_rss_kb();
    long prev = __atomic_load_n(&hdr->peak_rss_kb, __ATOMIC_RELAXED);
    while (rss > prev && !__atomic_compare_exchange_n(&hdr->peak_rss_kb, &prev, rss, 0, __ATOMIC_SEQ_CST,
                                                       __ATOMIC_SEQ_CST))
        ;
    xb_spice_close(&s);
    _exit(0);
}

static int start_worker(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *fail,
                        shared_hdr *hdr, worker_report *report, worker *wk, int index, int res_pipe[2])
{
    memset(report, 0, sizeof *report);
    int cmd[2];
    if (make_worker_dir(wk->dir) != 0)
        return -1;
    if (pipe(cmd) != 0) {
        remove_worker_dir(wk->dir);
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        close(cmd[0]);
        close(cmd[1]);
        remove_worker_dir(wk->dir);
        return -1;
    }
    if (pid == 0) {
        worker_guard(wk->dir, parent);
        close(cmd[1]);
        close(res_pipe[0]);
        worker_main(p, l, V, n, I_rt, fail, hdr, report, index, wk->dir, cmd[0], res_pipe[1]);
    }
    close(cmd[0]);
    xb_cleanup_track_worker(wk->dir, pid);
    wk->pid = pid;
    wk->cmd_fd = cmd[1];
    wk->unit = -1;
    wk->killed_unit = -1;
    wk->index = index;
    p->stats.workers_started++;
    return 0;
}

static int exact_layer_currents(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *failed,
                                xb_error *err);

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
    return p->o.linear ? linear_layer_currents(p, l, V, n, I_rt, failed, err)
                       : exact_layer_currents(p, l, V, n, I_rt, failed, err);
}

/* The parent's list of units: the layer's (tile, chunk) units, then one-input retries of units that ran
 * past their time limit. Grows; only the parent reads it. */
typedef struct unit_list {
    unit *u;
    unsigned char *deaths; /* workers each unit has ended */
    size_t n, cap;
    long *queue;           /* units to hand out: queue[head..tail) */
    size_t head, tail, qcap;
} unit_list;

static int units_grow(unit_list *ul, size_t more)
{
    if (ul->n + more > ul->cap) {
        size_t cap = (ul->n + more) * 2;
        unit *u = realloc(ul->u, cap * sizeof *u);
        if (!u)
            return -1;
        ul->u = u;
        unsigned char *d = realloc(ul->deaths, cap);
        if (!d)
            return -1;
        memset(d + ul->cap, 0, cap - ul->cap);
        ul->deaths = d;
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

static int units_add(unit_list *ul, unit u)
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

/* Time-out notices on stderr: a few, then a count in the statistics only. */
#define TIMEOUT_NOTICES 10

static int exact_layer_currents(xb_pool *p, int l, const double *V, size_t n, double *I_rt, unsigned char *failed,
                                xb_error *err)
{
    const xb_layer_map *L = &p->chip->layers[l];
    size_t chunk = p->o.chunk ? p->o.chunk : 250;
    size_t n_chunks = (n + chunk - 1) / chunk, n_units = L->n_row_tiles * L->n_col_tiles * n_chunks;
    double t0 = xb_now();
    int jobs = p->o.jobs > 0 ? p->o.jobs : 1;
    if ((size_t)jobs > n_units)
        jobs = (int)n_units;
    size_t max_restarts = (size_t)jobs * 4 + 8;
    unit_list ul = {0};
    if (units_grow(&ul, n_units)) {
        free(ul.u), free(ul.deaths), free(ul.queue);
        return xb_fail(err, XB_ENOMEM, "out of memory for work units");
    }
    for (size_t rt = 0; rt < L->n_row_tiles; rt++)
        for (size_t ct = 0; ct < L->n_col_tiles; ct++)
            for (size_t k0 = 0; k0 < n; k0 += chunk)
                units_add(&ul, (unit){rt, ct, k0, k0 + chunk < n ? k0 + chunk : n});
    /* Units finished (or failed for their time) out of ul.n: a unit split into one-input retries counts
     * as finished, its retries as units of their own. */
    size_t done = 0, notices = 0;

    /* Results, failure flags, counters and the workers' last words live in shared memory. */
    size_t cur_bytes = L->n_row_tiles * n * L->cols * sizeof(double);
    size_t rep_bytes = (size_t)jobs * sizeof(worker_report);
    size_t bytes = sizeof(shared_hdr) + rep_bytes + cur_bytes + n;
    void *shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        free(ul.u), free(ul.deaths), free(ul.queue);
        return xb_fail(err, XB_ENOMEM, "cannot map %zu bytes of shared memory", bytes);
    }
    shared_hdr *hdr = shm;
    worker_report *reports = (worker_report *)((char *)shm + sizeof(shared_hdr));
    double *cur = (double *)((char *)reports + rep_bytes);
    unsigned char *fail = (unsigned char *)cur + cur_bytes;
    char last_words[1100] = "";

    worker *wk = calloc((size_t)jobs, sizeof *wk);
    int res[2] = {-1, -1};
    int rc = XB_OK, live = 0, next_index = 0;
    size_t lost = 0; /* in this call: the restart budget is per layer call */
    for (int i = 0; wk && i < jobs; i++)
        wk[i].cmd_fd = -1; /* slots never started hold no pipe (not stdin) */
    struct sigaction sa = {0}, old_sa;
    if (!wk || pipe(res) != 0) {
        rc = xb_fail(err, XB_ERUNTIME, "cannot set up worker pipes: %s", strerror(errno));
        goto done;
    }
    /* A worker that dies must not take the parent down with SIGPIPE. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_sa);
    for (int i = 0; i < jobs; i++) {
        if (start_worker(p, l, V, n, cur, fail, hdr, &reports[i], &wk[i], next_index++, res) != 0) {
            rc = xb_fail(err, XB_ERUNTIME, "cannot start worker processes: %s", strerror(errno));
            goto stop;
        }
        live++;
    }
    xb_progress bar;
    char label[64];
    snprintf(label, sizeof label, "%s layer %d", p->label ? p->label : "spice", l + 1);
    xb_progress_start(&bar, stderr, label, n_units, p->o.quiet);
    while (done < ul.n) {
        struct pollfd pfd = {.fd = res[0], .events = POLLIN};
        msg m;
        if (poll(&pfd, 1, 200) > 0 && read(res[0], &m, sizeof m) == sizeof m) {
            worker *w = NULL;
            for (int i = 0; i < jobs; i++)
                if (wk[i].pid > 0 && wk[i].index == m.worker)
                    w = &wk[i];
            if (w && m.unit < 0 && m.status != 0) {
                const xb_error *we = &reports[w - wk].err;
                rc = xb_fail(err, we->code ? we->code : XB_ERUNTIME, "a worker could not start libngspice: %s",
                             we->msg[0] ? we->msg : "no message");
                goto stop;
            }
            if (w && m.unit >= 0 && m.unit == w->unit) {
                w->unit = -1;
                done++;
                p->stats.units++;
                xb_progress_update(&bar, done < n_units ? done : n_units, "");
            }
            if (w && w->killed_unit >= 0) {
                /* Killed for its time: it takes nothing more; the reaping below starts its successor. */
            } else if (w && w->unit < 0 && ul.head < ul.tail) {
                w->unit = ul.queue[ul.head++];
                const unit *u = &ul.u[w->unit];
                job jb = {w->unit, *u};
                w->deadline = xb_now() + xb_pool_unit_timeout_s(&p->o, u->k1 - u->k0);
                /* A failed write means it died: the reaping below hands the unit out again. */
                (void)!write(w->cmd_fd, &jb, sizeof jb);
            } else if (w && w->unit < 0 && w->cmd_fd >= 0) {
                close(w->cmd_fd); /* nothing left for it: it finishes */
                w->cmd_fd = -1;
            }
        }
        /* Units past their time: ngspice is spinning in an analysis that will not end. */
        double now = xb_now();
        for (int i = 0; i < jobs; i++)
            if (wk[i].pid > 0 && wk[i].unit >= 0 && wk[i].killed_unit < 0 && now > wk[i].deadline) {
                wk[i].killed_unit = wk[i].unit;
                kill(wk[i].pid, SIGKILL);
            }
        /* Reap ended workers; a unit held by a dead one goes back in the queue for a fresh worker. */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < jobs; i++) {
                if (wk[i].pid != pid)
                    continue;
                wk[i].pid = 0;
                live--;
                remove_worker_dir(wk[i].dir);
                if (wk[i].cmd_fd >= 0)
                    close(wk[i].cmd_fd);
                wk[i].cmd_fd = -1;
                long timed = wk[i].killed_unit;
                wk[i].killed_unit = -1;
                int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                if (timed >= 0 && wk[i].unit == timed) {
                    /* Killed for its time: not the worker's fault, so no death is counted. A unit of several
                     * inputs is solved again one input at a time; a single input is failed. */
                    const unit lu = ul.u[timed];
                    double limit = xb_pool_unit_timeout_s(&p->o, lu.k1 - lu.k0);
                    size_t r0, nr, c0, nc;
                    xb_chip_tile_bounds(p->chip, l, lu.rt, lu.ct, &r0, &nr, &c0, &nc);
                    wk[i].unit = -1;
                    done++;
                    if (lu.k1 - lu.k0 > 1) {
                        p->stats.units_timed_out++;
                        if (!p->o.quiet && notices++ < TIMEOUT_NOTICES)
                            fprintf(stderr, "\nxbarsim: layer %d tile (%zu, %zu), inputs %zu..%zu ran past the time "
                                    "limit of %g s; solving them one at a time\n", l + 1, lu.rt, lu.ct, lu.k0,
                                    lu.k1 - 1, limit);
                        for (size_t k = lu.k0; k < lu.k1; k++)
                            if (units_add(&ul, (unit){lu.rt, lu.ct, k, k + 1})) {
                                rc = xb_fail(err, XB_ENOMEM, "out of memory for work units");
                                goto stop;
                            }
                    } else {
                        p->stats.inputs_timed_out++;
                        p->stats.inputs_failed++;
                        fail[lu.k0] = 1;
                        for (size_t j = 0; j < nc; j++)
                            cur[(lu.rt * n + lu.k0) * L->cols + c0 + j] = 0; /* unknown, as for a failed solve */
                        if (!p->o.quiet && notices++ < TIMEOUT_NOTICES)
                            fprintf(stderr, "\nxbarsim: layer %d tile (%zu, %zu), input %zu ran past its time limit "
                                    "of %g s (solve_timeout_s, --solve-timeout): failed\n", l + 1, lu.rt, lu.ct,
                                    lu.k0, limit);
                    }
                } else {
                    if (clean && wk[i].unit < 0 && timed < 0)
                        break;
                    const worker_report *rep = &reports[i];
                    if (timed < 0 && rep->repeatable && rep->err.code) {
                        /* ngspice refused the work with the library alive: every worker would. */
                        rc = xb_fail(err, rep->err.code, "%s", rep->err.msg);
                        goto stop;
                    }
                    if (timed < 0) {
                        if (rep->err.msg[0])
                            snprintf(last_words, sizeof last_words, "%s", rep->err.msg);
                        else if (WIFSIGNALED(status))
                            snprintf(last_words, sizeof last_words, "worker %d was killed by signal %d (%s)",
                                     wk[i].index, WTERMSIG(status), strsignal(WTERMSIG(status)));
                        else
                            snprintf(last_words, sizeof last_words, "worker %d exited with status %d", wk[i].index,
                                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                        p->stats.workers_lost++;
                        lost++;
                    }
                    if (wk[i].unit >= 0) {
                        const unit *lu = &ul.u[wk[i].unit];
                        /* The same unit ending worker after worker is no bad luck: say what its workers said. */
                        if (++ul.deaths[wk[i].unit] >= 3) {
                            rc = xb_fail(err, XB_ERUNTIME, "layer %d tile (%zu, %zu), inputs %zu..%zu ended %d "
                                         "workers; the last: %s (ngspice logs in %s)", l + 1, lu->rt, lu->ct, lu->k0,
                                         lu->k1 - 1, ul.deaths[wk[i].unit], last_words,
                                         p->o.log_dir[0] ? p->o.log_dir : "the run folder");
                            goto stop;
                        }
                        if (units_requeue(&ul, wk[i].unit)) {
                            rc = xb_fail(err, XB_ENOMEM, "out of memory for work units");
                            goto stop;
                        }
                        p->stats.unit_retries++;
                        wk[i].unit = -1;
                    }
                    if (lost > max_restarts) {
                        rc = xb_fail(err, XB_ERUNTIME, "%zu workers died in layer %d; giving up; the last: %s (see "
                                     "the ngspice logs in %s)", lost, l + 1, last_words,
                                     p->o.log_dir[0] ? p->o.log_dir : "the run folder");
                        goto stop;
                    }
                }
                if (done >= ul.n)
                    break; /* nothing left: no successor */
                if (start_worker(p, l, V, n, cur, fail, hdr, &reports[i], &wk[i], next_index++, res) != 0) {
                    rc = xb_fail(err, XB_ERUNTIME, "cannot restart a worker: %s", strerror(errno));
                    goto stop;
                }
                live++;
                break;
            }
        }
        if (live == 0 && done < ul.n) {
            rc = xb_fail(err, XB_ERUNTIME, "every worker ended with %zu of %zu units left%s%s", ul.n - done, ul.n,
                         last_words[0] ? "; the last: " : "", last_words);
            goto stop;
        }
    }
    xb_progress_finish(&bar, "");
stop:
    for (int i = 0; i < jobs; i++)
        if (wk && wk[i].cmd_fd >= 0)
            close(wk[i].cmd_fd);
    if (rc)
        for (int i = 0; i < jobs; i++)
            if (wk && wk[i].pid > 0)
                kill(wk[i].pid, SIGKILL);
    while (live > 0) {
        pid_t pid = waitpid(-1, NULL, 0);
        if (pid <= 0)
            break;
        for (int i = 0; i < jobs; i++)
            if (wk && wk[i].pid == pid) {
                wk[i].pid = 0;
                remove_worker_dir(wk[i].dir);
                live--;
            }
    }
    for (int i = 0; i < jobs; i++)
        if (wk)
            remove_worker_dir(wk[i].dir);
    close(res[0]);
    close(res[1]);
    sigaction(SIGPIPE, &old_sa, NULL);
    if (!rc) {
        memcpy(I_rt, cur, cur_bytes);
        for (size_t k = 0; failed && k < n; k++)
            failed[k] |= fail[k];
        p->stats.inputs_retried += hdr->inputs_retried;
        p->stats.inputs_failed += hdr->inputs_failed;
        if (hdr->peak_rss_kb > p->stats.peak_rss_kb)
            p->stats.peak_rss_kb = hdr->peak_rss_kb;
        p->stats.ngspice_version = hdr->ngspice_version;
        snprintf(p->stats.solver, sizeof p->stats.solver, "%s", hdr->klu ? "KLU" : "Sparse 1.3");
        snprintf(p->stats.row_sources, sizeof p->stats.row_sources, "%s", xb_spice_rows_name(hdr->rows_path));
    }
done:
    munmap(shm, bytes);
    free(wk);
    free(ul.u);
    free(ul.deaths);
    free(ul.queue);
    p->stats.seconds += xb_now() - t0;
    return rc;
}
