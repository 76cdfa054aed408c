// programming: a programming study: per point the device's levels written by IGVVA, statistically and as circuit transients, compared level by level
//
// A testbench with a <programming> element trains and classifies nothing. Each point loads its device (file
// and overrides) and, per Monte Carlo trial, programs prog_cells cells per level of the device's IGVVA
// targets (cell i has level i mod L) by each method: the statistical write-verify (src/device/igvva.c) and
// the circuit one (src/spice/program_circuit.c, ngspice transients of the 1T1R cell with the gap compact
// model). Cell i of trial t draws from its own stream, gsl_rng_mt19937 seeded with splitmix64(trial seed,
// i), in both methods: a cell's outcome depends on neither the other method nor how the cells are shared
// out. The circuit cells are shared among worker processes (each its own libngspice; jobs: the point's
// setting, else the cores), which send each finished cell back through a pipe. Per trial, method and
// level one row: landed cells and the other outcomes, pulse statistics, the read-current spread, the
// method's seconds. The rows of a finished point are its state file (state/points/HASH.programming.csv);
// the first trial's cells, CDFs and pulse histograms go to programming/point-K/ and its figures to plots/.
#include "run_private.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "ngspice.h"
#include "plot.h"
#include "program_circuit.h"
#include "progress.h"

enum { N_METHODS = 2 };
static const char *const method_names[N_METHODS] = {"statistical", "circuit"};

/* One trial, method and level. */
typedef struct prog_row {
    size_t trial;
    unsigned long seed;
    int method, level;
    double v[16]; /* the numeric fields after level, in the order of row_fields */
} prog_row;

static const char *const row_fields[16] = {"i_trg_A", "cells", "ok", "undershoot", "overshoot", "max_pulses_reached",
                                           "mean_pulses", "std_pulses", "max_pulses", "mean_attempts",
                                           "mean_i_read_A", "std_i_read_A", "min_i_read_A", "max_i_read_A",
                                           "mean_abs_err_ok_A", "seconds"};
enum { COL_TRG, COL_CELLS, COL_OK, COL_UNDER, COL_OVER, COL_MAXP, COL_MEANP, COL_STDP, COL_MAXPULSES, COL_ATT, COL_MEANI, COL_STDI, COL_MINI,
       COL_MAXI, COL_MAE, COL_SECONDS, N_COLS };

static void write_header(FILE *fp)
{
    fputs("trial,seed,method,level", fp);
    for (int i = 0; i < N_COLS; i++)
        fprintf(fp, ",%s", row_fields[i]);
    fputc('\n', fp);
}

static void write_row(FILE *fp, const prog_row *w)
{
    fprintf(fp, "%zu,%lu,%s,%d", w->trial, w->seed, method_names[w->method], w->level);
    for (int i = 0; i < N_COLS; i++)
        xb_run_csv_num(fp, w->v[i]);
    fputc('\n', fp);
}

/* The row of level l (cells i with i mod n_levels == l): the level's statistics g (xb_igvva_summarize's
 * group l: the targets ascend) and what they leave out, the pulses' spread and the reads' range. */
static void level_row(const xb_device *d, const xb_igvva_result *res, size_t n, int l, const xb_igvva_group_stats *g,
                      prog_row *w)
{
    size_t L = (size_t)d->n_levels;
    double q = 0, mini = INFINITY, maxi = -INFINITY;
    for (size_t i = (size_t)l; i < n; i += L) {
        double dp = res[i].pulses - g->mean_pulses;
        q += dp * dp;
        mini = res[i].i_read_A < mini ? res[i].i_read_A : mini;
        maxi = res[i].i_read_A > maxi ? res[i].i_read_A : maxi;
    }
    double nc = (double)g->n_cells;
    w->level = l;
    w->v[COL_TRG] = g->i_trg_A;
    w->v[COL_CELLS] = nc;
    w->v[COL_OK] = (double)g->n_status[XB_IGVVA_OK];
    w->v[COL_UNDER] = (double)g->n_status[XB_IGVVA_UNDERSHOOT];
    w->v[COL_OVER] = (double)g->n_status[XB_IGVVA_OVERSHOOT];
    w->v[COL_MAXP] = (double)g->n_status[XB_IGVVA_MAX_PULSES];
    w->v[COL_MEANP] = g->mean_pulses;
    w->v[COL_STDP] = g->n_cells > 1 ? sqrt(q / (nc - 1)) : NAN;
    w->v[COL_MAXPULSES] = g->max_pulses;
    w->v[COL_ATT] = g->mean_attempts;
    w->v[COL_MEANI] = g->mean_i_read_A;
    w->v[COL_STDI] = g->n_cells > 1 ? g->std_i_read_A : NAN;
    w->v[COL_MINI] = mini;
    w->v[COL_MAXI] = maxi;
    w->v[COL_MAE] = g->mean_abs_err_ok_A;
}

/* ------------------------------------------------------------------------------------------------ */
/* A finished point's state file: the config text, the header, the rows (read back checked) */

/* The methods of an XB_PROG_* set. */
static int n_methods(unsigned methods)
{
    return (int)((methods & 1u) + ((methods >> 1) & 1u));
}

/* Rows come trial by trial, each method's levels in order: row i's trial, method and level. */
static void expected_key(size_t i, int n_levels, unsigned methods, size_t *trial, int *method, int *level)
{
    int nm = n_methods(methods), per_trial = nm * n_levels;
    int m = (int)(i % (size_t)per_trial) / n_levels;
    *trial = i / (size_t)per_trial;
    *method = nm == 2 ? m : (methods & 1u) ? 0 : 1;
    *level = (int)(i % (size_t)n_levels);
}

static int read_state(const char *path, size_t expect_rows, int n_levels, unsigned methods, prog_row *rows,
                      xb_error *err)
{
    unsigned char *data = NULL;
    size_t len;
    int rc = xb_read_file(path, (size_t)1 << 26, &data, &len, err);
    if (rc)
        return rc;
    if (!len || data[len - 1] != '\n' || memchr(data, '\0', len)) {
        free(data);
        return xb_fail(err, XB_EINPUT, "%s: does not end in a line break (or holds a NUL byte): this state file of a "
                       "finished point is damaged: delete it (or run with --fresh) to recompute the point", path);
    }
    char *save = NULL, *line = strtok_r((char *)data, "\n", &save);
    size_t ln = 1, got = 0;
    if (line && line[0] == '#') {
        line = strtok_r(NULL, "\n", &save);
        ln++;
    }
    char header[1024];
    size_t hn = (size_t)snprintf(header, sizeof header, "trial,seed,method,level");
    for (int i = 0; i < N_COLS && hn < sizeof header; i++)
        hn += (size_t)snprintf(header + hn, sizeof header - hn, ",%s", row_fields[i]);
    if (!line || strcmp(line, header))
        rc = xb_fail(err, XB_EINPUT, "%s:%zu: not the header of a programming point's state file", path, ln);
    for (line = strtok_r(NULL, "\n", &save); !rc && line; line = strtok_r(NULL, "\n", &save)) {
        ln++;
        if (got == expect_rows) {
            rc = xb_fail(err, XB_EINPUT, "%s:%zu: more rows than the point's %zu", path, ln, expect_rows);
            break;
        }
        prog_row *w = &rows[got];
        char *f = line, *end;
        int field = 0, ok = 1;
        for (char *next; ok && f; f = next, field++) {
            next = strchr(f, ',');
            if (next)
                *next++ = '\0';
            if (field == 0)
                w->trial = (size_t)strtoul(f, &end, 10), ok = end != f && !*end;
            else if (field == 1)
                w->seed = strtoul(f, &end, 10), ok = end != f && !*end;
            else if (field == 2) {
                w->method = -1;
                for (int m = 0; m < N_METHODS; m++)
                    if (!strcmp(f, method_names[m]))
                        w->method = m;
                ok = w->method >= 0;
            } else if (field == 3)
                w->level = (int)strtol(f, &end, 10), ok = end != f && !*end;
            else if (field - 4 < N_COLS) {
                w->v[field - 4] = *f ? strtod(f, &end) : NAN;
                ok = !*f || (end != f && !*end && isfinite(w->v[field - 4]));
            } else
                ok = 0;
        }
        size_t et;
        int em, el;
        expected_key(got, n_levels, methods, &et, &em, &el);
        if (!ok || field != 4 + N_COLS)
            rc = xb_fail(err, XB_EINPUT, "%s:%zu: field %d is damaged; this state file of a finished point is damaged: "
                         "delete it (or run with --fresh) to recompute the point", path, ln, field);
        else if (w->trial != et || w->method != em || w->level != el || !(w->v[COL_CELLS] >= 1))
            rc = xb_fail(err, XB_EINPUT, "%s:%zu: row of trial %zu, %s, level %d where trial %zu, %s, level %d belongs "
                         "(or no cells); this state file of a finished point is damaged: delete it (or run with "
                         "--fresh) to recompute the point", path, ln, w->trial, method_names[w->method], w->level, et,
                         method_names[em], el);
        got++;
    }
    if (!rc && got != expect_rows)
        rc = xb_fail(err, XB_EINPUT, "%s: %zu rows, the point has %zu; delete it (or run with --fresh) to recompute "
                     "the point", path, got, expect_rows);
    free(data);
    return rc;
}

static int write_state(const char *path, const char *config, const prog_row *rows, size_t n, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "# %s\n", config);
    write_header(f.fp);
    for (size_t i = 0; i < n; i++)
        write_row(f.fp, &rows[i]);
    return xb_atomic_commit(&f, err);
}

/* ------------------------------------------------------------------------------------------------ */
/* The first trial's files of a point */

static int write_cells(const char *dir, const xb_device *d, const double *trg, xb_igvva_result *const res[N_METHODS],
                       size_t n, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open_in(&f, dir, "cells.csv", err);
    if (rc)
        return rc;
    fputs("cell,level,i_trg_A", f.fp);
    for (int m = 0; m < N_METHODS; m++)
        if (res[m])
            fprintf(f.fp, ",i_read_A_%s,g_S_%s,pulses_%s,attempts_%s,status_%s", method_names[m], method_names[m],
                    method_names[m], method_names[m], method_names[m]);
    fputc('\n', f.fp);
    for (size_t i = 0; i < n; i++) {
        fprintf(f.fp, "%zu,%zu,%.17g", i, i % (size_t)d->n_levels, trg[i]);
        for (int m = 0; m < N_METHODS; m++)
            if (res[m])
                fprintf(f.fp, ",%.17g,%.17g,%d,%d,%s", res[m][i].i_read_A, res[m][i].g_S, res[m][i].pulses,
                        res[m][i].attempts, xb_igvva_status_name(res[m][i].status));
        fputc('\n', f.fp);
    }
    return xb_atomic_commit(&f, err);
}

static int write_point_files(run_ctx *r, size_t k, const xb_device *d, const double *trg,
                             xb_igvva_result *const res[N_METHODS], size_t n)
{
    char dir[4200], plots[4200], path[4400], name[128];
    snprintf(dir, sizeof dir, "%s/programming/point-%zu", r->out, k + 1);
    snprintf(plots, sizeof plots, "%s/plots", r->out);
    int rc = xb_mkdir_p(dir, r->err);
    if (!rc)
        rc = xb_mkdir_p(plots, r->err);
    if (!rc)
        rc = write_cells(dir, d, trg, res, n, r->err);
    for (int m = 0; m < N_METHODS && !rc; m++) {
        if (!res[m])
            continue;
        snprintf(path, sizeof path, "%s/cdf-%s.csv", dir, method_names[m]);
        if ((rc = xb_igvva_write_cdf_csv(path, trg, res[m], n, r->err)))
            break;
        snprintf(path, sizeof path, "%s/pulses-%s.csv", dir, method_names[m]);
        if ((rc = xb_igvva_write_pulse_hist_csv(path, res[m], n, r->err)))
            break;
        xb_error perr = {0};
        snprintf(name, sizeof name, "pulses-%s-point-%zu", method_names[m], k + 1);
        rc = xb_plot_tolerate(xb_plot_igvva_pulses(plots, name, res[m], n, r->render, &perr), r->render, &perr,
                              "xbarsim run", name, plots, r->err);
    }
    if (rc)
        return rc;
    xb_error perr = {0};
    snprintf(name, sizeof name, "cdf-point-%zu", k + 1);
    if (res[0] && res[1])
        rc = xb_plot_igvva_cdf_compare(plots, name, trg, res[0], method_names[0], res[1], method_names[1], n,
                                       r->render, &perr);
    else
        rc = xb_plot_igvva_cdf(plots, name, trg, res[0] ? res[0] : res[1], n, r->render, &perr);
    return xb_plot_tolerate(rc, r->render, &perr, "xbarsim run", name, plots, r->err);
}

/* ------------------------------------------------------------------------------------------------ */
/* One point */

/* The stream of cell i of a trial seeded s. */
static void seed_cell(gsl_rng *rng, unsigned long s, size_t i)
{
    gsl_rng_set(rng, xb_run_trial_seed(s, i));
}

/* What a worker sends per cell: its index and result; index UINT64_MAX: an error message follows. */
typedef struct cell_msg {
    uint64_t cell;
    xb_igvva_result res;
} cell_msg;

static int write_all(int fd, const void *buf, size_t len)
{
    for (const char *p = buf; len;) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Worker j of jobs: the cells i = j, j + jobs, ... by circuit, each result written to fd as it lands. */
static void circuit_worker(run_ctx *r, const xb_device *d, const double *trg, size_t n, unsigned long seed, int j,
                           int jobs, int fd)
{
    /* The driver's stop handlers are not a worker's: a signal ends it, and so does the driver's end. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char log[4300];
    snprintf(log, sizeof log, "%s/programming-%d.log", r->logs, j + 1);
    xb_error err = {0};
    xb_circuit_prog *p = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    int rc = rng ? xb_circuit_prog_new(d, log, &p, &err) : xb_fail(&err, XB_ENOMEM, "out of memory");
    for (size_t i = (size_t)j; i < n && !rc; i += (size_t)jobs) {
        cell_msg m = {.cell = i};
        seed_cell(rng, seed, i);
        if (!(rc = xb_circuit_program_cells(p, &trg[i], 1, rng, &m.res, NULL, 0, &err)) && write_all(fd, &m, sizeof m))
            rc = XB_ERUNTIME; /* the driver has gone */
    }
    if (rc && err.msg[0]) {
        cell_msg m = {.cell = UINT64_MAX, .res.status = rc};
        if (!write_all(fd, &m, sizeof m))
            (void)write_all(fd, err.msg, sizeof err.msg);
    }
    xb_circuit_prog_free(&p);
    gsl_rng_free(rng);
    close(fd);
    _exit(rc ? 1 : 0);
}

/* The circuit method on every cell, shared among jobs workers; progress every 64 cells. */
static int program_circuit(run_ctx *r, const xb_device *d, const double *trg, size_t n, unsigned long seed,
                           int jobs, xb_igvva_result *res)
{
    if (jobs > (int)n)
        jobs = (int)n;
    pid_t pid[256];
    struct pollfd fds[256];
    int rc = xb_mkdir_p(r->logs, r->err), started = 0;
    fflush(NULL);
    for (int j = 0; j < jobs && !rc; j++) {
        int pp[2];
        if (pipe(pp)) {
            rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: cannot make a pipe (%s)", strerror(errno));
            break;
        }
        pid[j] = fork();
        if (pid[j] < 0) {
            close(pp[0]);
            close(pp[1]);
            rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: cannot start a worker (%s)", strerror(errno));
            break;
        }
        if (pid[j] == 0) {
            close(pp[0]);
            for (int k = 0; k < j; k++)
                close(fds[k].fd);
            circuit_worker(r, d, trg, n, seed, j, jobs, pp[1]);
        }
        close(pp[1]);
        fds[j] = (struct pollfd){.fd = pp[0], .events = POLLIN};
        started++;
    }
    size_t done = 0;
    double t0 = xb_now();
    int open_fds = started;
    while (!rc && open_fds > 0) {
        if (poll(fds, (nfds_t)started, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: poll failed (%s)", strerror(errno));
            break;
        }
        for (int j = 0; j < started && !rc; j++) {
            if (fds[j].fd < 0 || !fds[j].revents)
                continue;
            cell_msg m;
            ssize_t got = read(fds[j].fd, &m, sizeof m); /* pipes deliver writes up to PIPE_BUF whole */
            if (got == 0 || (got < 0 && errno != EINTR)) {
                close(fds[j].fd);
                fds[j].fd = -1;
                open_fds--;
            } else if (got == (ssize_t)sizeof m && m.cell == UINT64_MAX) {
                char msg[sizeof r->err->msg] = "";
                size_t at = 0;
                for (ssize_t g; at < sizeof msg && (g = read(fds[j].fd, msg + at, sizeof msg - at)) > 0;)
                    at += (size_t)g;
                msg[sizeof msg - 1] = '\0';
                rc = xb_fail(r->err, m.res.status == XB_EINPUT ? XB_EINPUT : XB_ERUNTIME, "circuit programming "
                             "(worker %d; ngspice's output: %s/programming-%d.log): %s", j + 1, r->logs, j + 1, msg);
            } else if (got == (ssize_t)sizeof m && m.cell < n) {
                res[m.cell] = m.res;
                if (++done % 64 == 0 && !r->o->quiet)
                    fprintf(stderr, "circuit IGVVA: %zu of %zu cells, %d workers, %.1f s\n", done, n, started,
                            xb_now() - t0);
            } else if (got > 0)
                rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: worker %d sent a damaged record", j + 1);
        }
    }
    for (int j = 0; j < started; j++) {
        if (rc)
            kill(pid[j], SIGTERM);
        if (fds[j].fd >= 0)
            close(fds[j].fd);
        int status = 0;
        while (waitpid(pid[j], &status, 0) < 0 && errno == EINTR)
            ;
        if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: worker %d ended without finishing its cells "
                         "(ngspice's output: %s/programming-%d.log)", j + 1, r->logs, j + 1);
    }
    if (!rc && done != n)
        rc = xb_fail(r->err, XB_ERUNTIME, "circuit programming: %zu of %zu cells came back", done, n);
    return rc;
}

/* The point's worker count: spice.jobs is not a programming parameter; --jobs, else the cores. */
static int point_jobs(const run_ctx *r)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = r->o->jobs > 0 ? r->o->jobs : cores > 0 ? (int)cores : 1;
    return jobs > 256 ? 256 : jobs;
}

static int program_point(run_ctx *r, size_t k, const xb_tb_config *c, prog_row *rows)
{
    xb_device d;
    int rc = xb_run_load_device(c, &d, r->err); /* checked by xb_run_programming_plan */
    if (rc)
        return rc;
    size_t L = (size_t)d.n_levels, n = c->prog_cells * L, at = 0;
    double *trg = malloc(n * sizeof *trg);
    xb_igvva_result *res[N_METHODS] = {NULL, NULL};
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!trg || !rng)
        rc = xb_fail(r->err, XB_ENOMEM, "out of memory");
    for (int m = 0; m < N_METHODS && !rc; m++)
        if ((c->prog_methods & (1u << m)) && !(res[m] = calloc(n, sizeof *res[m])))
            rc = xb_fail(r->err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        trg[i] = d.i_trg_A[i % L];
    for (size_t t = 0; t < c->trials && !rc; t++) {
        unsigned long seed = xb_run_trial_seed(c->seed, t);
        for (int m = 0; m < N_METHODS && !rc; m++) {
            if (!res[m])
                continue;
            double t0 = xb_now();
            if (m == 0)
                for (size_t i = 0; i < n && !rc; i++) {
                    seed_cell(rng, seed, i);
                    rc = xb_igvva_program(&d, &trg[i], 1, rng, &res[m][i], NULL, r->err);
                }
            else {
                int jobs = point_jobs(r);
                if (!r->o->quiet)
                    xb_run_say(r->o, "point %zu, trial %zu: %zu cells by circuit transients, %d worker%s", k + 1,
                               t + 1, n, jobs, jobs == 1 ? "" : "s");
                rc = program_circuit(r, &d, trg, n, seed, jobs, res[m]);
            }
            double secs = xb_now() - t0;
            xb_igvva_stats st;
            if (!rc)
                rc = xb_igvva_summarize(trg, res[m], n, &st, r->err);
            for (size_t l = 0; l < L && !rc; l++) {
                prog_row *w = &rows[at++];
                w->trial = t;
                w->seed = seed;
                w->method = m;
                level_row(&d, res[m], n, (int)l, &st.group[l], w);
                w->v[COL_SECONDS] = secs;
            }
        }
        if (!rc && t == 0)
            rc = write_point_files(r, k, &d, trg, res, n);
    }
    if (rc)
        xb_error_prefix(r->err, "point %zu", k + 1);
    free(trg);
    for (int m = 0; m < N_METHODS; m++)
        free(res[m]);
    gsl_rng_free(rng);
    return rc;
}

/* Rows of point c: trials x methods x levels. */
static size_t n_rows_of(const xb_tb_config *c, int n_levels)
{
    return c->trials * (size_t)n_methods(c->prog_methods) * (size_t)n_levels;
}

/* ------------------------------------------------------------------------------------------------ */

/* The device of point k, with a message naming where the testbench set it. */
static int point_device(run_ctx *r, size_t k, const xb_tb_config *c, xb_device *d)
{
    int rc = xb_run_load_device(c, d, r->err);
    if (rc) {
        char where[4200];
        xb_tb_where(r->tb, k, "device.file", where, sizeof where);
        rc = xb_error_prefix(r->err, "%s: point %zu", where, k + 1);
    }
    return rc;
}

int xb_run_programming_plan(run_ctx *r)
{
    for (size_t k = 0; k < xb_tb_n_points(r->tb); k++) {
        xb_tb_config c;
        xb_device d;
        int rc = xb_tb_config_of(r->tb, k, r->o->quick, &c, r->err);
        if (rc || (rc = point_device(r, k, &c, &d)))
            return rc;
    }
    return XB_OK;
}

int xb_run_programming(run_ctx *r, point_result *pr, size_t *n_computed)
{
    const xb_tb *tb = r->tb;
    size_t n_points = xb_tb_n_points(tb);
    prog_row **rows = calloc(n_points, sizeof *rows);
    size_t *n_rows = calloc(n_points, sizeof *n_rows);
    int rc = rows && n_rows ? XB_OK : xb_fail(r->err, XB_ENOMEM, "out of memory");
    *n_computed = 0;
    for (size_t k = 0; k < n_points && !rc; k++) {
        xb_tb_config c;
        if ((rc = xb_tb_config_of(tb, k, r->o->quick, &c, r->err)))
            break;
        xb_device d;
        if ((rc = point_device(r, k, &c, &d)))
            break;
        xb_run_add_input(r, "device", c.device_file, NULL);
        xb_run_add_input(r, "mosfet_model", c.mosfet_file[0] ? c.mosfet_file : d.mosfet_model_file, NULL);
        xb_run_add_input(r, "rram_model", d.rram.model_file, NULL);
        n_rows[k] = n_rows_of(&c, d.n_levels);
        if (!(rows[k] = calloc(n_rows[k], sizeof *rows[k]))) {
            rc = xb_fail(r->err, XB_ENOMEM, "out of memory");
            break;
        }
        pr[k].trials = c.trials;
        pr[k].seed = c.seed;
        xb_run_hash_inputs(r, &c, &r->in);
        char state[4400], cells[4400];
        xb_run_point_file(r, k, &c, state, sizeof state, ".programming.csv");
        snprintf(cells, sizeof cells, "%s/programming/point-%zu/cells.csv", r->out, k + 1);
        if (xb_is_file(state) && xb_is_file(cells)) {
            rc = read_state(state, n_rows[k], d.n_levels, c.prog_methods, rows[k], r->err);
            continue;
        }
        double t0 = xb_now();
        if ((rc = program_point(r, k, &c, rows[k])))
            break;
        char config[32768];
        xb_run_point_config_text(&c, &r->in, config, sizeof config);
        if ((rc = write_state(state, config, rows[k], n_rows[k], r->err)))
            break;
        (*n_computed)++;
        if (!r->o->quiet) {
            char line[1024];
            size_t at = (size_t)snprintf(line, sizeof line, "point %zu/%zu:", k + 1, n_points);
            for (size_t col = 0; col < xb_tb_n_columns(tb) && at < sizeof line; col++)
                at += (size_t)snprintf(line + at, sizeof line - at, " %s=%s", xb_tb_column(tb, col),
                                       xb_tb_value(tb, k, col));
            for (size_t i = 0; i < n_rows[k] && at < sizeof line; i += (size_t)d.n_levels) {
                /* the first trial of each method: landed cells and mean pulses over its levels */
                const prog_row *w = &rows[k][i];
                if (w->trial)
                    continue;
                double ok = 0, cellsn = 0, pulses = 0;
                for (int l = 0; l < d.n_levels; l++) {
                    ok += w[l].v[COL_OK];
                    cellsn += w[l].v[COL_CELLS];
                    pulses += w[l].v[COL_MEANP] * w[l].v[COL_CELLS];
                }
                at += (size_t)snprintf(line + at, sizeof line - at, " %s %.0f/%.0f landed, %.1f pulses, %.3g s/cell;",
                                       method_names[w->method], ok, cellsn, pulses / cellsn,
                                       w->v[COL_SECONDS] / cellsn);
            }
            xb_run_say(r->o, "%s (%.1f s)", line, xb_now() - t0);
        }
    }
    /* programming.csv: every point's rows with its swept values */
    xb_atomic_file f;
    if (!rc && !(rc = xb_atomic_open_in(&f, r->out, "programming.csv", r->err))) {
        fputs("point,grid", f.fp);
        xb_run_csv_columns_header(f.fp, tb);
        fputc(',', f.fp);
        write_header(f.fp);
        for (size_t k = 0; k < n_points; k++)
            for (size_t i = 0; i < n_rows[k]; i++) {
                fprintf(f.fp, "%zu,", k + 1);
                xb_csv_field(f.fp, xb_tb_grid(tb, k));
                xb_run_csv_columns(f.fp, tb, k);
                fputc(',', f.fp);
                write_row(f.fp, &rows[k][i]);
            }
        rc = xb_atomic_commit(&f, r->err);
    }
    for (size_t k = 0; rows && k < n_points; k++)
        free(rows[k]);
    free(rows);
    free(n_rows);
    return rc;
}
