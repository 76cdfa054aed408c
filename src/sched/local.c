// local: the fork-based executor: worker processes on this machine, results in shared memory
#define _GNU_SOURCE
#include "executor.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "progress.h"

/* A worker runs in a folder of its own, with HOME and TMPDIR pointing there. The parent makes it before
 * the fork and removes it after reaping the worker, so a worker that was killed leaves nothing behind.
 * The folder's name carries the parent's PID: folders of a parent that is gone (killed with SIGKILL
 * before its workers could clean up) are removed when the next executor starts. A worker dies with its
 * parent (PR_SET_PDEATHSIG), removing its folder first; on SIGINT/SIGTERM the parent's handler stops the
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

static void remove_worker_dir(char *dir)
{
    if (!dir[0])
        return;
    xb_remove_tree_signal_safe(dir, 2);
    xb_cleanup_untrack_worker(dir);
    dir[0] = '\0';
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
    setenv("TMPDIR", dir, 1); /* a solver's own scratch folders too, for a worker killed while it starts */
    return 0;
}

/* What the parent sends a worker: the unit itself (units made after the fork, such as the one-input
 * retries of a unit past its time limit, exist only in the parent), its number and hook. Under PIPE_BUF
 * bytes, so a write is whole. */
typedef struct job {
    long id;
    int hook;
    xb_unit u;
} job;

/* Messages from workers on the shared result pipe. */
typedef struct msg {
    int worker;
    long unit; /* -1: opened (status: its result), >= 0: unit done */
    int status;
} msg;

/* Why a worker ended, written by the worker before it exits and read by the parent when it reaps it. */
typedef struct report {
    xb_error err;
    int repeatable;
} report;

/* Each slot's part of the shared mapping: its report, then its result block (64-byte aligned). */
#define REPORT_BYTES ((sizeof(report) + 63) / 64 * 64)

typedef struct slot {
    pid_t pid;       /* 0: no worker */
    int cmd_fd;      /* parent writes jobs here */
    int index;
    int ready;       /* opened: jobs may be sent */
    long unit;       /* the unit it holds (sent or pending), -1 if none */
    job pending;     /* held until the worker is ready */
    int sent;
    double limit_s, deadline;
    int killed;      /* stopped by the parent for its time */
    char dir[WORKER_DIR_MAX];
} slot;

typedef struct local {
    xb_executor_config cfg;
    slot *s;
    int res[2];
    void *shm;
    size_t stride, bytes;
    int next_index;
    struct sigaction old_pipe;
} local;

static report *slot_report(local *x, int i) { return (report *)((char *)x->shm + (size_t)i * x->stride); }
static void *slot_result(local *x, int i) { return (char *)x->shm + (size_t)i * x->stride + REPORT_BYTES; }

static void worker_main(local *x, int i, int cmd_fd)
{
    const xb_worker_type *wt = x->cfg.worker;
    report *me = slot_report(x, i);
    int index = x->s[i].index;
    if (enter_worker_dir(x->s[i].dir) != 0) {
        xb_fail(&me->err, XB_ERUNTIME, "a worker cannot enter its folder %s: %s", x->s[i].dir, strerror(errno));
        me->repeatable = 1;
        _exit(3);
    }
    xb_error err = {0};
    void *state = NULL;
    int rc = wt->open(x->cfg.ctx, index, &state, &err);
    if (rc) {
        me->err = err;
        me->repeatable = 1;
    }
    msg m = {index, -1, rc};
    if (write(x->res[1], &m, sizeof m) != sizeof m || rc)
        _exit(4);
    job jb;
    while (read(cmd_fd, &jb, sizeof jb) == sizeof jb) {
        if (jb.hook & XB_HOOK_LOSE)
            raise(SIGKILL);
        int repeatable = 0;
        rc = wt->run(x->cfg.ctx, state, &jb.u, jb.hook & XB_HOOK_WORKER, slot_result(x, i), &repeatable, &err);
        if (rc) {
            /* The worker's state may be broken (a dead solver): it ends without touching it again. */
            me->err = err;
            me->repeatable = repeatable;
            _exit(6);
        }
        m = (msg){index, jb.id, 0};
        if (write(x->res[1], &m, sizeof m) != sizeof m)
            break;
    }
    wt->close(x->cfg.ctx, &state);
    _exit(0);
}

static int start_worker(local *x, int i)
{
    slot *w = &x->s[i];
    memset(slot_report(x, i), 0, sizeof(report));
    int cmd[2];
    if (make_worker_dir(w->dir) != 0)
        return -1;
    if (pipe(cmd) != 0) {
        remove_worker_dir(w->dir);
        return -1;
    }
    w->index = x->next_index++;
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        close(cmd[0]);
        close(cmd[1]);
        remove_worker_dir(w->dir);
        return -1;
    }
    if (pid == 0) {
        worker_guard(w->dir, parent);
        close(cmd[1]);
        close(x->res[0]);
        worker_main(x, i, cmd[0]);
    }
    close(cmd[0]);
    xb_cleanup_track_worker(w->dir, pid);
    w->pid = pid;
    w->cmd_fd = cmd[1];
    w->ready = 0;
    w->unit = -1;
    w->sent = 0;
    w->killed = 0;
    if (x->cfg.workers_started)
        (*x->cfg.workers_started)++;
    return 0;
}

static void send_job(slot *w)
{
    w->sent = 1;
    w->deadline = xb_now() + w->limit_s;
    /* A failed write means it died: its reaping reports the unit lost. (From a copy: GCC's sanitizer
     * build otherwise takes the pointer for one to the struct's first member and warns.) */
    job j = w->pending;
    (void)!write(w->cmd_fd, &j, sizeof j);
}

static void local_stop(void **state, int abort);

static int local_start(const xb_executor_config *cfg, void **state, xb_error *err)
{
    *state = NULL;
    if (cfg->slots < 1)
        return xb_fail(err, XB_ERUNTIME, "no worker slots");
    local *x = calloc(1, sizeof *x);
    if (!x)
        return xb_fail(err, XB_ENOMEM, "out of memory for workers");
    x->cfg = *cfg;
    x->res[0] = x->res[1] = -1;
    x->stride = REPORT_BYTES + (cfg->result_bytes + 63) / 64 * 64;
    x->bytes = x->stride * (size_t)cfg->slots;
    x->s = calloc((size_t)cfg->slots, sizeof *x->s);
    x->shm = mmap(NULL, x->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (x->shm == MAP_FAILED)
        x->shm = NULL;
    if (!x->s || !x->shm) {
        size_t bytes = x->bytes;
        if (x->shm)
            munmap(x->shm, bytes);
        free(x->s);
        free(x);
        return xb_fail(err, XB_ENOMEM, "cannot map %zu bytes of shared memory for workers", bytes);
    }
    for (int i = 0; i < cfg->slots; i++)
        x->s[i].cmd_fd = -1, x->s[i].unit = -1; /* slots never started hold no pipe (not stdin) */
    /* A worker that dies must not take the parent down with SIGPIPE. */
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &x->old_pipe);
    *state = x;
    if (pipe(x->res) != 0) {
        x->res[0] = x->res[1] = -1;
        local_stop(state, 1);
        return xb_fail(err, XB_ERUNTIME, "cannot set up worker pipes: %s", strerror(errno));
    }
    for (int i = 0; i < cfg->slots; i++)
        if (start_worker(x, i) != 0) {
            int e = errno;
            local_stop(state, 1);
            return xb_fail(err, XB_ERUNTIME, "cannot start worker processes: %s", strerror(e));
        }
    return XB_OK;
}

static int local_submit(void *state, int i, long id, const xb_unit *u, int hook, double limit_s, xb_error *err)
{
    local *x = state;
    slot *w = &x->s[i];
    if (w->pid <= 0 && start_worker(x, i) != 0)
        return xb_fail(err, XB_ERUNTIME, "cannot restart a worker: %s", strerror(errno));
    w->unit = id;
    w->pending = (job){id, hook, *u};
    w->limit_s = limit_s;
    w->sent = 0;
    if (w->ready)
        send_job(w);
    return XB_OK;
}

/* A reaped worker: the event it makes, if any (0: none). */
static int reaped(local *x, int i, int status, xb_event *ev)
{
    slot *w = &x->s[i];
    w->pid = 0;
    remove_worker_dir(w->dir);
    if (w->cmd_fd >= 0)
        close(w->cmd_fd);
    w->cmd_fd = -1;
    long held = w->unit;
    w->unit = -1;
    w->ready = 0;
    memset(ev, 0, sizeof *ev);
    ev->slot = i;
    ev->worker = w->index;
    ev->unit = held;
    if (w->killed) {
        /* Stopped for its time; if it finished the unit first, nothing was lost. */
        w->killed = 0;
        ev->kind = XB_EVENT_TIMED_OUT;
        return held >= 0;
    }
    const report *rep = slot_report(x, i);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && held < 0)
        return 0;
    if (rep->repeatable && rep->err.code) {
        ev->kind = XB_EVENT_REFUSED;
        ev->err = rep->err;
        return 1;
    }
    ev->kind = XB_EVENT_LOST;
    if (rep->err.msg[0])
        ev->err = rep->err;
    else if (WIFSIGNALED(status))
        xb_fail(&ev->err, XB_ERUNTIME, "worker %d was killed by signal %d (%s)", w->index, WTERMSIG(status),
                strsignal(WTERMSIG(status)));
    else
        xb_fail(&ev->err, XB_ERUNTIME, "worker %d exited with status %d", w->index,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 1;
}

/* Events within timeout_ms (< 0: until one comes): 1 with *ev filled, 0 at the timeout. */
static int local_poll(void *state, xb_event *ev, int timeout_ms, xb_error *err)
{
    local *x = state;
    (void)err;
    double end = timeout_ms < 0 ? 0 : xb_now() + timeout_ms / 1000.0;
    for (int first = 1;; first = 0) {
        int wait_ms = 200;
        if (timeout_ms >= 0) {
            double left_ms = (end - xb_now()) * 1000;
            if (!first && left_ms <= 0)
                return 0;
            wait_ms = left_ms < 0 ? 0 : left_ms < 200 ? (int)left_ms : 200;
        }
        struct pollfd pfd = {.fd = x->res[0], .events = POLLIN};
        msg m;
        if (poll(&pfd, 1, wait_ms) > 0 && read(x->res[0], &m, sizeof m) == sizeof m) {
            int i = 0;
            while (i < x->cfg.slots && !(x->s[i].pid > 0 && x->s[i].index == m.worker))
                i++;
            slot *w = i < x->cfg.slots ? &x->s[i] : NULL;
            if (w && m.unit < 0 && m.status != 0) {
                memset(ev, 0, sizeof *ev);
                ev->kind = XB_EVENT_REFUSED;
                ev->slot = i;
                ev->worker = w->index;
                ev->unit = w->unit;
                ev->err = slot_report(x, i)->err;
                if (!ev->err.code)
                    xb_fail(&ev->err, XB_ERUNTIME, "worker %d could not open", w->index);
                return 1;
            }
            if (w && m.unit < 0) {
                w->ready = 1;
                if (w->unit >= 0 && !w->sent)
                    send_job(w);
            } else if (w && m.unit >= 0 && m.unit == w->unit && w->sent) {
                /* Done just as it was stopped for its time: the result is whole, so it counts. */
                memset(ev, 0, sizeof *ev);
                ev->kind = XB_EVENT_DONE;
                ev->slot = i;
                ev->worker = w->index;
                ev->unit = m.unit;
                ev->result = slot_result(x, i);
                w->unit = -1;
                return 1;
            }
        }
        /* Units past their time: the worker is stuck (a solver spinning in an analysis that will not end). */
        double now = xb_now();
        for (int i = 0; i < x->cfg.slots; i++)
            if (x->s[i].pid > 0 && x->s[i].unit >= 0 && x->s[i].sent && !x->s[i].killed && now > x->s[i].deadline) {
                x->s[i].killed = 1;
                kill(x->s[i].pid, SIGKILL);
            }
        for (int i = 0; i < x->cfg.slots; i++) {
            int status;
            if (x->s[i].pid > 0 && waitpid(x->s[i].pid, &status, WNOHANG) == x->s[i].pid && reaped(x, i, status, ev))
                return 1;
        }
    }
}

static int local_wait(void *state, xb_event *ev, xb_error *err)
{
    return local_poll(state, ev, -1, err) < 0 ? XB_ERUNTIME : XB_OK;
}

static void local_stop(void **state, int abort)
{
    local *x = *state;
    if (!x)
        return;
    for (int i = 0; i < x->cfg.slots; i++)
        if (x->s[i].cmd_fd >= 0) {
            close(x->s[i].cmd_fd); /* nothing more for it: it finishes */
            x->s[i].cmd_fd = -1;
        }
    for (int i = 0; i < x->cfg.slots; i++)
        if (abort && x->s[i].pid > 0)
            kill(x->s[i].pid, SIGKILL);
    for (int i = 0; i < x->cfg.slots; i++) {
        if (x->s[i].pid > 0) {
            while (waitpid(x->s[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
            x->s[i].pid = 0;
        }
        remove_worker_dir(x->s[i].dir);
    }
    if (x->res[0] >= 0)
        close(x->res[0]);
    if (x->res[1] >= 0)
        close(x->res[1]);
    sigaction(SIGPIPE, &x->old_pipe, NULL);
    munmap(x->shm, x->bytes);
    free(x->s);
    free(x);
    *state = NULL;
}

const xb_executor_type xb_executor_local = {
    .name = "local",
    .start = local_start,
    .submit = local_submit,
    .wait = local_wait,
    .poll = local_poll,
    .stop = local_stop,
};
