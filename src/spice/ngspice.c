// ngspice: the libngspice driver: tiles loaded once, inputs streamed through one dc sweep
#define _GNU_SOURCE
#include <stdbool.h>

#include "ngspice.h"

#include <ngspice/sharedspice.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

/* The row-drive path used when the options do not choose one (XB_ROWS_AUTO): the faster of the two as
 * measured by bench/bench_spice on 64x64 tiles with wires, pwl by 3-9 % of CPU time per input
 * (docs/circuit.md has the numbers). */
#define XB_ROWS_MEASURED_FASTER XB_ROWS_PWL

struct xb_spice {
    FILE *log;
    int version;
    int has_klu;          /* the library carries KLU (>= 43) */
    int klu;              /* the last deck ran on KLU: as ngspice said ("Using KLU as Direct Linear Solver"),
                             else as the deck asked */
    int dead;             /* ControlledExit seen: the library must not be called again in this process */
    int init_done;        /* the banner has been read */
    char last_error[512]; /* the last line ngspice printed with "rror" in it */
    /* Loading a deck: ngSpice_Circ returns 0 even when an include file or a model is missing, so every
     * line ngspice writes to stderr meanwhile is kept, and one that reads like an error fails the load. */
    int loading, load_failed, no_circuit;
    int loaded;           /* a circuit is in the library (remcirc on an empty one only adds noise to the log) */
    int deck_rejected;    /* the last solve failed because ngspice could not load the deck */
    char load_msgs[480];  /* with the device's files and the fix, the message still fits an xb_error */
    /* The sweep in progress. */
    const double *v_tile; /* row voltages, n_points x nr (external sources), or NULL */
    size_t nr, nc, n_points;
    size_t base;          /* input index of the first point of the running `dc` */
    size_t points_done;   /* SendData calls of this analysis */
    double *i_cols;       /* n_points x nc results */
    int *vec_col;         /* vector number -> tile column, or -1 */
    int n_vecs;
    int ident;            /* ngspice keeps a pointer to this: it must outlive the library */
    /* Newton iterations: `rusage totiter` prints the loaded circuit's running total, read in on_char. */
    int reading_iter;
    long circuit_iter;    /* the total printed last, -1 when none was */
    long newton_iterations; /* over every solve_tile since the library opened */
    char *extra_lines;    /* energy block: lines load_deck puts before the deck's `.end` (NULL: none) */
    char *row_lines;      /* energy block: nr lines "Vrow<i> ..." load_deck writes instead of the deck's own */
};

static xb_spice *live; /* the library is a per-process singleton */

#define XB_ROW_LINE 160 /* bytes per line of xb_spice.row_lines */

/* Case-insensitive substring search (ngspice mixes "Error", "error" and "ERROR"). */
static int contains_ci(const char *text, const char *needle)
{
    size_t n = strlen(needle);
    for (; *text; text++)
        if (!strncasecmp(text, needle, n))
            return 1;
    return 0;
}

/* Messages ngspice prints while reading a deck it cannot simulate. */
static int is_load_error(const char *msg)
{
    static const char *const bad[] = {"error", "can't find", "cannot find", "could not", "unknown subckt",
                                      "unable to find", "not found", "no such file"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (contains_ci(msg, bad[k]))
            return 1;
    return 0;
}

/* Of what ngspice prints while it reads a deck, the lines that say what is wrong. It also echoes the
 * deck's and the included model files' lines around an error ("Error on line:", then the line): those
 * are left out, so a message names the problem, not pages of a PDK card. */
static int is_load_reason(const char *msg)
{
    static const char *const why[] = {"error", "warning", "can't", "cannot", "could not", "unknown", "unable",
                                      "not found", "no such", "undefined", "invalid", "missing"};
    static const char *const noise[] = {"error on line", "cannot recover", "please check", "netlist line no",
                                        "cannot compute substitute"};
    for (size_t k = 0; k < sizeof noise / sizeof noise[0]; k++)
        if (contains_ci(msg, noise[k]))
            return 0;
    for (size_t k = 0; k < sizeof why / sizeof why[0]; k++)
        if (contains_ci(msg, why[k]))
            return 1;
    return 0;
}

static int on_char(char *text, int id, void *ud)
{
    (void)id;
    xb_spice *s = ud;
    /* stdout/stderr prefixes come first: "stdout ..." / "stderr ..." */
    const char *msg = text;
    int is_stderr = !strncmp(msg, "stderr ", 7);
    if (is_stderr || !strncmp(msg, "stdout ", 7))
        msg += 7;
    if (s->log)
        fprintf(s->log, "%s\n", msg);
    const char *v = strstr(msg, "ngspice-");
    if (v && !s->version)
        s->version = atoi(v + 8);
    /* 43 and later say which solver each circuit uses: what is reported is what ran. */
    if (strstr(msg, "as Direct Linear Solver"))
        s->klu = strstr(msg, "KLU") != NULL;
    if (strstr(msg, "rror"))
        snprintf(s->last_error, sizeof s->last_error, "%s", msg);
    long iter;
    if (s->reading_iter && sscanf(msg, "Total iterations = %ld", &iter) == 1)
        s->circuit_iter = iter;
    if (s->loading && is_stderr) {
        /* ngspice repeats a message for every cell instance: keep each once, so the fix still fits. */
        size_t used = strlen(s->load_msgs);
        char one[128]; /* a reason that quotes a line is cut short */
        snprintf(one, sizeof one, "%s", msg);
        if (*msg && is_load_reason(msg) && !strstr(s->load_msgs, one) && used + 4 < sizeof s->load_msgs)
            snprintf(s->load_msgs + used, sizeof s->load_msgs - used, "%s%s", used ? " | " : "", one);
        if (is_load_error(msg))
            s->load_failed = 1;
    }
    /* After a load that silently failed, every analysis says so. */
    if (strstr(msg, "aren't any circuits loaded") || strstr(msg, "circuit not parsed"))
        s->no_circuit = 1;
    return 0;
}

static int on_stat(char *text, int id, void *ud)
{
    (void)text, (void)id, (void)ud;
    return 0;
}

/* ngspice wants to end the process (a fatal error, or a `quit`): the library may not be used again, so
 * the context is marked dead and the caller replaces the worker. */
static int on_controlled_exit(int status, NG_BOOL unload, NG_BOOL quit, int id, void *ud)
{
    (void)unload, (void)id;
    xb_spice *s = ud;
    s->dead = 1;
    if (!s->last_error[0] || quit)
        snprintf(s->last_error, sizeof s->last_error, "ngspice requested exit with status %d%s", status,
                 quit ? " (quit)" : "");
    if (s->log)
        fprintf(s->log, "xbarsim: ngspice requested exit with status %d; this worker must be replaced\n", status);
    return 0;
}

static int on_init_data(pvecinfoall info, int id, void *ud)
{
    (void)id;
    xb_spice *s = ud;
    free(s->vec_col);
    s->n_vecs = info->veccount;
    s->vec_col = malloc((size_t)(info->veccount > 0 ? info->veccount : 1) * sizeof *s->vec_col);
    if (!s->vec_col) {
        /* No map from vectors to columns: on_data cannot store this analysis's currents, so its points
         * must not count as solved. */
        s->n_vecs = -1;
        return 0;
    }
    for (int k = 0; k < info->veccount; k++) {
        unsigned j;
        char tail[16];
        s->vec_col[k] = -1;
        /* Branch currents are named "vsense<j>#branch". */
        if (sscanf(info->vecs[k]->vecname, "vsense%u%15s", &j, tail) == 2 && !strcmp(tail, "#branch") &&
            j < s->nc)
            s->vec_col[k] = (int)j;
    }
    return 0;
}

static int on_data(pvecvaluesall all, int count, int id, void *ud)
{
    (void)count, (void)id;
    xb_spice *s = ud;
    size_t k = s->base + s->points_done;
    if (s->n_vecs < 0)
        return 0; /* out of memory in on_init_data: the point is not done */
    if (s->i_cols && k < s->n_points && all->veccount == s->n_vecs)
        for (int v = 0; v < all->veccount; v++)
            if (s->vec_col[v] >= 0)
                s->i_cols[k * s->nc + (size_t)s->vec_col[v]] = all->vecsa[v]->creal;
    s->points_done++;
    return 0;
}

static int on_bg(NG_BOOL running, int id, void *ud)
{
    (void)running, (void)id, (void)ud;
    return 0;
}

/* Row voltage of the input being solved: the callback of the `external` sources. */
static int on_vsrc(double *voltage, double time, char *name, int id, void *ud)
{
    (void)time, (void)id;
    xb_spice *s = ud;
    unsigned i;
    size_t k = s->base + s->points_done;
    *voltage = 0;
    if (s->v_tile && k < s->n_points && sscanf(name, "vrow%u", &i) == 1 && i < s->nr)
        *voltage = s->v_tile[k * s->nr + i];
    return 0;
}

static int command(xb_spice *s, const char *cmd)
{
    /* After ControlledExit the library's state is gone: a `print` then dereferences freed plots. */
    if (s->dead)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", cmd);
    int rc = ngSpice_Command(buf);
    return rc || s->dead;
}

int xb_spice_command(xb_spice *s, const char *cmd)
{
    return command(s, cmd);
}

int xb_spice_rows_path(const xb_spice *s, const xb_netlist_options *o)
{
    if (o->row_drive == XB_ROWS_EXTERNAL || o->row_drive == XB_ROWS_PWL)
        return o->row_drive;
    (void)s;
    return XB_ROWS_MEASURED_FASTER;
}

const char *xb_spice_rows_name(int path)
{
    return path == XB_ROWS_PWL ? "pwl" : "external";
}

/* ngSpice_Init and ngSpice_Init_Sync with this context's callbacks. ngspice sources ./.spiceinit at
 * start-up, or else ~/.spiceinit from the password database's home (not $HOME), and a stray
 * `option temp=150` there changes every result. It never reads the second when the first exists, so it
 * starts in a scratch folder holding a harmless one. *moved: whether that worked. Non-zero: failed. */
static int start_library(xb_spice *s, int *moved_out)
{
    char scratch[4200], guard[4300];
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/xbarsim-init-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int made = here >= 0 && mkdtemp(scratch) != NULL;
    int moved = made && chdir(scratch) == 0;
    if (made && !moved)
        rmdir(scratch);
    if (moved) {
        snprintf(guard, sizeof guard, "%s/.spiceinit", scratch);
        FILE *g = fopen(guard, "w");
        if (g) {
            fputs("* xbarsim: stands in for any user .spiceinit, which must not change results\n"
                  "echo xbarsim: no user .spiceinit read\n", g);
            fclose(g);
        }
    }
    int bad = ngSpice_Init(on_char, on_stat, on_controlled_exit, on_data, on_init_data, on_bg, s) != 0 ||
              ngSpice_Init_Sync(on_vsrc, NULL, NULL, &s->ident, s) != 0;
    if (moved) {
        unlink(guard);
        if (fchdir(here) != 0 && !bad)
            bad = 1;
        rmdir(scratch);
    }
    if (here >= 0)
        close(here);
    *moved_out = moved;
    return bad;
}

int xb_spice_open(const char *log_path, xb_spice **out, xb_error *err)
{
    *out = NULL;
    if (live)
        return xb_fail(err, XB_ERUNTIME, "libngspice is already open in this process (one instance per process)");
    xb_spice *s = calloc(1, sizeof *s);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    if (log_path && !(s->log = fopen(log_path, "a"))) {
        free(s);
        return xb_fail(err, XB_ERUNTIME, "cannot write the ngspice log %s", log_path);
    }
    if (s->log)
        setvbuf(s->log, NULL, _IOLBF, 0);
    live = s;
    int moved = 0;
    int bad = start_library(s, &moved);
    if (bad) {
        xb_spice_close(&s);
        return xb_fail(err, XB_ERUNTIME, "libngspice failed to initialise (or the working folder was lost)");
    }
    if (!moved && s->log)
        fprintf(s->log, "xbarsim: could not start ngspice in a scratch folder; a user .spiceinit may have been read\n");
    if (!s->version) {
        /* The banner did not say; ask. */
        command(s, "version -s");
    }
    s->has_klu = s->version >= 43;
    s->klu = s->has_klu; /* what XB_SOLVER_AUTO takes */
    command(s, "set num_threads=1");
    s->init_done = 1;
    if (s->log) {
        xb_netlist_options d;
        xb_netlist_defaults(&d);
        fprintf(s->log, "xbarsim: ngspice %d, solver %s, row sources by default: %s\n", s->version,
                xb_spice_solver_name(s), xb_spice_rows_name(xb_spice_rows_path(s, &d)));
    }
    *out = s;
    return XB_OK;
}

void xb_spice_close(xb_spice **sp)
{
    if (!sp || !*sp)
        return;
    xb_spice *s = *sp;
    if (!s->dead && s->loaded) {
        command(s, "destroy all");
        command(s, "remcirc");
    }
    if (s->log)
        fclose(s->log);
    free(s->vec_col);
    free(s);
    live = NULL;
    *sp = NULL;
}

int xb_spice_version(const xb_spice *s) { return s->version; }
int xb_spice_klu(const xb_spice *s) { return s->klu; }
const char *xb_spice_solver_name(const xb_spice *s) { return s->klu ? "KLU" : "Sparse 1.3"; }
int xb_spice_dead(const xb_spice *s) { return s->dead; }
int xb_spice_deck_rejected(const xb_spice *s) { return s->deck_rejected; }
long xb_spice_newton_iterations(const xb_spice *s) { return s->newton_iterations; }

long xb_spice_peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void unload(xb_spice *s);

/* Write the deck to memory and hand it to ngspice line by line. v_rows, n: the inputs of a pwl deck. */
/* ngspice >= 46 refuses every command after a deck it rejected ("cannot recover and awaits to be reset
 * or detached") and reports it through ControlledExit; ngSpice_Reset brings it back, so the worker lives
 * on. Looked up at run time: a library built before 46 lacks it, and there the rejection is no exit. */
static void revive(xb_spice *s)
{
    int (*reset)(void);
    *(void **)&reset = dlsym(RTLD_DEFAULT, "ngSpice_Reset");
    if (!reset)
        return;
    if (s->log)
        fprintf(s->log, "xbarsim: ngspice rejected the deck and awaits a reset: ngSpice_Reset\n");
    int moved = 0;
    if (reset() != 0 || start_library(s, &moved) != 0)
        return;
    s->dead = 0;
    s->loaded = 0;
    command(s, "set num_threads=1");
}

/* Hand a deck's lines (NULL-terminated) to ngspice with the load state reset; 1 if it refused them (or
 * ended itself over them). */
static int circ_lines(xb_spice *s, char **lines)
{
    s->last_error[0] = '\0';
    s->load_msgs[0] = '\0';
    s->deck_rejected = 0;
    s->load_failed = s->no_circuit = 0;
    s->loading = 1;
    int bad = ngSpice_Circ(lines) != 0;
    s->loading = 0;
    s->loaded = 1;
    return bad || s->load_failed || s->dead;
}

static int load_deck(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                     const xb_netlist_options *o, xb_deck_kind kind, const double *v_rows, size_t n, xb_error *err)
{
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice ended in this process (%s); the worker must be replaced",
                       s->last_error[0] ? s->last_error : "ControlledExit");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return xb_fail(err, XB_ENOMEM, "out of memory for a deck");
    /* The solver: KLU where the library has it unless the options ask for Sparse 1.3; a library before 43
     * has only Sparse and its decks name none. */
    int want_klu = o->solver == XB_SOLVER_KLU || (o->solver == XB_SOLVER_AUTO && s->has_klu);
    if (want_klu && !s->has_klu)
        return xb_fail(err, XB_EINPUT, "solver KLU asked for, but libngspice %d has only Sparse 1.3; allowed: "
                       "Sparse, or KLU with libngspice 43 or later (scripts/setup installs 46 from bookworm-backports)",
                       s->version);
    xb_netlist_options oo = *o;
    oo.solver = !s->has_klu ? XB_SOLVER_AUTO : want_klu ? XB_SOLVER_KLU : XB_SOLVER_SPARSE;
    s->klu = want_klu;
    int rc = xb_netlist_write_tile(mem, c, l, rt, ct, dev, &oo, kind, v_rows, n, NULL, err);
    fclose(mem);
    if (rc) {
        free(buf);
        return rc;
    }
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        n_lines += buf[i] == '\n';
    size_t n_extra = 0;
    for (const char *x = s->extra_lines; x && *x; x++)
        n_extra += *x == '\n';
    char **lines = malloc((n_lines + n_extra + 2) * sizeof *lines);
    if (!lines) {
        free(buf);
        return xb_fail(err, XB_ENOMEM, "out of memory for a deck");
    }
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        unsigned row;
        if (s->row_lines && sscanf(t, "Vrow%u ", &row) == 1 && row < s->nr && strchr(t, ' '))
            t = s->row_lines + (size_t)row * XB_ROW_LINE; /* the settling transient's stepped rows */
        if (s->extra_lines && !strcmp(t, ".end"))
            for (char *xs = NULL, *x = strtok_r(s->extra_lines, "\n", &xs); x && k < n_lines + n_extra;
                 x = strtok_r(NULL, "\n", &xs))
                lines[k++] = x; /* the settling transient's wire capacitors (energy block below) */
        lines[k++] = t;
    }
    lines[k] = NULL;
    int bad = circ_lines(s, lines);
    free(lines);
    free(buf);
    if (bad) {
        /* Not a per-input failure: the same deck fails for every input and in every worker (ngspice may
         * even end itself over it). Our own part of the deck is tested; what varies is the model files
         * the device names. */
        s->deck_rejected = 1;
        const char *what = s->load_msgs[0] ? s->load_msgs : s->last_error[0] ? s->last_error : "see the ngspice log";
        if (s->dead)
            revive(s);
        unload(s);
        if (o->linear_cells)
            return xb_fail(err, XB_ERUNTIME, "ngspice could not load the deck of layer %d tile (%zu, %zu): %s", l + 1,
                           rt, ct, what);
        return xb_fail(err, XB_EINPUT,
                       "ngspice could not load the deck of layer %d tile (%zu, %zu): %s; the deck includes %s "
                       "(model %s) and %s (cells xb_1t1r, xb_1t1r_sinh): fix the <spice> models of device %s%s%s",
                       l + 1, rt, ct, what, dev->mosfet_model_file, dev->mosfet_model_name, dev->rram_model_file,
                       dev->name, dev->source_path[0] ? " in " : "", dev->source_path);
    }
    return XB_OK;
}

/* Add the loaded circuit's Newton iterations (every analysis run on it: ngspice keeps one total per
 * circuit) to the context's count. */
static void count_newton_iterations(xb_spice *s)
{
    s->circuit_iter = -1;
    s->reading_iter = 1;
    command(s, "rusage totiter");
    s->reading_iter = 0;
    if (s->circuit_iter > 0)
        s->newton_iterations += s->circuit_iter;
}

static void unload(xb_spice *s)
{
    if (s->dead)
        return;
    command(s, "destroy all");
    command(s, "remcirc");
    s->loaded = 0;
    /* A NULL command clears ngspice's command history, which otherwise grows with every alter. */
    ngSpice_Command(NULL);
}

/* Sweep the loaded deck over its points [from, to], which are inputs base .. base + (to - from) of the
 * call. A point that does not converge stops ngspice's sweep; it is solved again from a cold start (the
 * first point of a `dc` runs ngspice's whole operating-point homotopy: dynamic gmin stepping, source
 * stepping, transient op), then with the fixed-step spice3 gmin and source stepping, and if that fails
 * too it is reported per input as XB_SOLVE_FAILED (NaN currents) and the sweep goes on after it. */
static void sweep_with_retries(xb_spice *s, size_t from, size_t to, size_t base, double *i_cols, int *status)
{
    size_t k = from;
    int level = 0; /* 0: in the sweep; 1: cold start; 2: spice3 stepping */
    while (k <= to && !s->dead) {
        char cmd[96];
        if (level == 2)
            command(s, "option gminsteps=10 srcsteps=20");
        s->base = base + (k - from);
        s->points_done = 0;
        snprintf(cmd, sizeof cmd, "dc vidx %zu %zu 1", k, to);
        command(s, cmd);
        command(s, "destroy all");
        if (level == 2) /* back to ngspice's defaults: 1 selects the dynamic (adaptive) variants */
            command(s, "option gminsteps=1 srcsteps=1");
        if (s->dead || s->no_circuit)
            return;
        size_t done = s->points_done < to - k + 1 ? s->points_done : to - k + 1;
        if (done > 0) {
            if (level > 0 && status)
                status[s->base] = XB_SOLVE_RETRIED;
            k += done;
            level = 1; /* if points remain, the sweep stopped at k: retry it from a cold start */
            continue;
        }
        /* Point k failed as the first point of a dc, that is with ngspice's cold-start homotopy. */
        if (level < 2) {
            level = 2;
            continue;
        }
        if (status)
            status[s->base] = XB_SOLVE_FAILED;
        for (size_t j = 0; j < s->nc; j++)
            i_cols[s->base * s->nc + j] = NAN;
        k++;
        level = 0;
    }
}

int xb_spice_solve_tile(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                        xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice ended in this process (%s); the worker must be replaced",
                       s->last_error[0] ? s->last_error : "ControlledExit");
    for (size_t k = 0; k < n; k++)
        if (status)
            status[k] = XB_SOLVE_OK;
    if (n == 0)
        return XB_OK;
    /* The external path's row voltages never pass through the deck writer's check. */
    int crc = xb_netlist_check(c, l, rt, ct, dev, o, v_tile, n, err);
    if (crc)
        return crc;
    int pwl = xb_spice_rows_path(s, o) == XB_ROWS_PWL;
    size_t chunk = pwl ? (o->pwl_chunk ? o->pwl_chunk : 250) : n;
    s->nr = nr;
    s->nc = nc;
    s->n_points = n;
    s->i_cols = i_cols;
    int rc = XB_OK;
    for (size_t k0 = 0; k0 < n && !rc; k0 += chunk) {
        size_t m = n - k0 < chunk ? n - k0 : chunk;
        /* External sources read the row voltages of input base + points_done in on_vsrc; a pwl deck
         * carries its chunk's voltages as tables of the sweep index. */
        s->v_tile = pwl ? NULL : v_tile;
        rc = load_deck(s, c, l, rt, ct, dev, o, pwl ? XB_DECK_PWL : XB_DECK_EXTERNAL, v_tile + k0 * nr, m, err);
        if (rc)
            break;
        sweep_with_retries(s, 0, m - 1, k0, i_cols, status);
        count_newton_iterations(s);
        unload(s);
        if (s->no_circuit && !s->dead)
            rc = xb_fail(err, XB_ERUNTIME, "ngspice lost the circuit of layer %d tile (%zu, %zu): %s", l + 1, rt, ct,
                         s->last_error[0] ? s->last_error : "see the ngspice log");
    }
    s->v_tile = NULL;
    s->i_cols = NULL;
    if (!rc && s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error on layer %d tile (%zu, %zu): %s", l + 1,
                       rt, ct, s->last_error[0] ? s->last_error : "see the ngspice log");
    return rc;
}

int xb_spice_solve_tile_op(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols,
                           xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    int rc = xb_netlist_check(c, l, rt, ct, dev, o, v_tile, n, err);
    if (rc || (rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, NULL, 0, err)))
        return rc;
    s->v_tile = NULL;
    s->nr = nr;
    s->nc = nc;
    s->n_points = n;
    s->i_cols = i_cols;
    for (size_t k = 0; k < n && !s->dead; k++) {
        char cmd[128];
        for (size_t i = 0; i < nr; i++) {
            snprintf(cmd, sizeof cmd, "alter vrow%zu dc = %.17g", i, v_tile[k * nr + i]);
            command(s, cmd);
        }
        s->base = k;
        s->points_done = 0;
        command(s, "op");
        if (s->points_done == 0)
            for (size_t j = 0; j < nc; j++)
                i_cols[k * nc + j] = NAN;
        command(s, "destroy all");
        ngSpice_Command(NULL);
    }
    s->i_cols = NULL;
    unload(s);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error: %s", s->last_error);
    return XB_OK;
}

/* The voltage of node `name` in the current plot (0 for ground-tied names ngspice does not keep). */
static double node_voltage(const char *name)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    pvector_info v = ngGet_Vec_Info(buf);
    return v && v->v_realdata && v->v_length > 0 ? v->v_realdata[v->v_length - 1] : 0;
}

int xb_spice_tile_cell_voltages(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                                const xb_netlist_options *o, const double *v_rows, double *v_row_node,
                                double *v_col_node, xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    int rc = xb_netlist_check(c, l, rt, ct, dev, o, v_rows, 1, err);
    if (rc || (rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, NULL, 0, err)))
        return rc;
    char cmd[128], name[64];
    for (size_t i = 0; i < nr; i++) {
        snprintf(cmd, sizeof cmd, "alter vrow%zu dc = %.17g", i, v_rows[i]);
        command(s, cmd);
    }
    s->i_cols = NULL;
    s->points_done = 0;
    command(s, "op");
    if (s->points_done == 0 && !s->dead) {
        /* As for a sweep point that does not converge: once more with the fixed-step homotopy. */
        command(s, "destroy all");
        command(s, "option gminsteps=10 srcsteps=20");
        command(s, "op");
        command(s, "option gminsteps=1 srcsteps=1");
    }
    int converged = s->points_done > 0;
    if (!converged && s->log)
        fprintf(s->log, "xbarsim: the operating point of layer %d tile (%zu, %zu) did not converge; its node voltages "
                "are NaN\n", l + 1, rt, ct);
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            if (!converged) {
                v_row_node[i * nc + j] = v_col_node[i * nc + j] = NAN;
                continue;
            }
            if (o->r_row_ohm > 0)
                snprintf(name, sizeof name, "r%zu_%zu", i, j);
            else
                snprintf(name, sizeof name, "rin%zu", i);
            v_row_node[i * nc + j] = node_voltage(name);
            if (o->r_col_ohm > 0) {
                snprintf(name, sizeof name, "c%zu_%zu", i, j);
                v_col_node[i * nc + j] = node_voltage(name);
            } else {
                v_col_node[i * nc + j] = 0; /* the column is the sense node at virtual ground */
            }
        }
    unload(s);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error: %s", s->last_error);
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Decks of one's own (circuit-level programming): load a text, run commands, read vectors */

int xb_spice_load_text(xb_spice *s, const char *what, const char *deck, xb_error *err)
{
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice ended in this process (%s)",
                       s->last_error[0] ? s->last_error : "ControlledExit");
    if (s->loaded)
        unload(s);
    char *buf = strdup(deck);
    size_t n_lines = 1;
    for (const char *p = deck; *p; p++)
        n_lines += *p == '\n';
    char **lines = buf ? malloc((n_lines + 1) * sizeof *lines) : NULL;
    if (!lines) {
        free(buf);
        return xb_fail(err, XB_ENOMEM, "out of memory for the deck of %s", what);
    }
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        lines[k++] = t;
    lines[k] = NULL;
    int bad = circ_lines(s, lines);
    free(lines);
    free(buf);
    if (bad) {
        s->deck_rejected = 1;
        char why[sizeof s->last_error];
        snprintf(why, sizeof why, "%s", s->load_msgs[0] ? s->load_msgs : s->last_error[0] ? s->last_error
                                                                                           : "see the ngspice log");
        if (s->dead)
            revive(s);
        unload(s);
        return xb_fail(err, XB_EINPUT, "ngspice could not load the deck of %s: %s", what, why);
    }
    return XB_OK;
}

void xb_spice_unload(xb_spice *s)
{
    if (s->loaded)
        unload(s);
}

int xb_spice_run(xb_spice *s, const char *cmd)
{
    s->i_cols = NULL; /* SendData of this analysis stores nothing */
    s->points_done = 0;
    if (!cmd) { /* clears the command history */
        if (!s->dead)
            ngSpice_Command(NULL);
        return s->dead;
    }
    return command(s, cmd);
}

size_t xb_spice_points_done(const xb_spice *s) { return s->points_done; }

long xb_spice_vector(xb_spice *s, const char *name, double *buf, size_t cap)
{
    if (s->dead)
        return -1;
    char nm[128];
    snprintf(nm, sizeof nm, "%s", name);
    pvector_info v = ngGet_Vec_Info(nm);
    if (!v || !v->v_realdata || v->v_length < 0)
        return -1;
    size_t len = (size_t)v->v_length;
    for (size_t i = 0; i < len && i < cap; i++)
        buf[i] = v->v_realdata[i];
    return (long)len;
}

double xb_spice_vector_last(xb_spice *s, const char *name)
{
    if (s->dead)
        return NAN;
    char nm[128];
    snprintf(nm, sizeof nm, "%s", name);
    pvector_info v = ngGet_Vec_Info(nm);
    return v && v->v_realdata && v->v_length > 0 ? v->v_realdata[v->v_length - 1] : NAN;
}

/* ---- Energy and settling of a tile (src/spice/energy.h reports them) ------------------------------ */

/* The real data of vector `name` of the current plot with at least n points, or NULL. */
static const double *plot_vector(const char *name, size_t n)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    pvector_info v = ngGet_Vec_Info(buf);
    return v && v->v_realdata && v->v_length >= 0 && (size_t)v->v_length >= n ? v->v_realdata : NULL;
}

/* The vectors of a tile's dc plot, looked up once (ngGet_Vec_Info searches the plot by name). A node
 * ngspice does not keep (tied to ground) or a source the deck lacks is NULL and reads 0. */
typedef struct tile_plot {
    size_t nr, nc;
    const double **rin, **vrow, **cout, **vsense, **rn, **cn; /* rn, cn: nr x nc row / column line nodes */
    const double *wl, *vwl, *idx, *vidx;
} tile_plot;

static double at(const double *v, size_t k) { return v ? v[k] : 0; }

static int tile_plot_get(tile_plot *tp, size_t nr, size_t nc, size_t n, const xb_netlist_options *o)
{
    memset(tp, 0, sizeof *tp);
    tp->nr = nr, tp->nc = nc;
    tp->rin = calloc(nr, sizeof *tp->rin), tp->vrow = calloc(nr, sizeof *tp->vrow);
    tp->cout = calloc(nc, sizeof *tp->cout), tp->vsense = calloc(nc, sizeof *tp->vsense);
    tp->rn = calloc(nr * nc, sizeof *tp->rn), tp->cn = calloc(nr * nc, sizeof *tp->cn);
    if (!tp->rin || !tp->vrow || !tp->cout || !tp->vsense || !tp->rn || !tp->cn)
        return 1;
    char a[64];
    for (size_t i = 0; i < nr; i++) {
        snprintf(a, sizeof a, "rin%zu", i);
        tp->rin[i] = plot_vector(a, n);
        snprintf(a, sizeof a, "vrow%zu#branch", i);
        tp->vrow[i] = plot_vector(a, n);
        for (size_t j = 0; j < nc; j++) {
            snprintf(a, sizeof a, "r%zu_%zu", i, j);
            tp->rn[i * nc + j] = o->r_row_ohm > 0 ? plot_vector(a, n) : tp->rin[i];
            snprintf(a, sizeof a, "c%zu_%zu", i, j);
            tp->cn[i * nc + j] = o->r_col_ohm > 0 ? plot_vector(a, n) : NULL; /* set below */
        }
    }
    for (size_t j = 0; j < nc; j++) {
        snprintf(a, sizeof a, "cout%zu", j);
        tp->cout[j] = plot_vector(a, n);
        snprintf(a, sizeof a, "vsense%zu#branch", j);
        tp->vsense[j] = plot_vector(a, n);
        if (!(o->r_col_ohm > 0))
            for (size_t i = 0; i < nr; i++)
                tp->cn[i * nc + j] = tp->cout[j];
    }
    tp->wl = plot_vector("wl", n), tp->vwl = plot_vector("vwl#branch", n);
    tp->idx = plot_vector("idx", n), tp->vidx = plot_vector("vidx#branch", n);
    return 0;
}

static void tile_plot_free(tile_plot *tp)
{
    free(tp->rin), free(tp->vrow), free(tp->cout), free(tp->vsense), free(tp->rn), free(tp->cn);
}

/* The powers of point k of a tile's dc plot (wires as in o): every source's V.I, every wire segment's
 * V^2 / R, every cell's V.I with the cell current from Kirchhoff's current law. */
static void point_power(const xb_chip *c, int l, size_t r0, size_t c0, const tile_plot *tp,
                        const xb_netlist_options *o, size_t k, double *p_src, double *p_cell, double *p_wire)
{
    const xb_layer_map *L = &c->layers[l];
    size_t nr = tp->nr, nc = tp->nc;
    int row_wires = o->r_row_ohm > 0, col_wires = o->r_col_ohm > 0;
    /* Sources: ngspice's branch current flows from + through the source to -, so a source delivering
     * power has a negative branch current. */
    double row_src = 0, src;
    for (size_t i = 0; i < nr; i++)
        row_src += -at(tp->rin[i], k) * at(tp->vrow[i], k);
    src = row_src;
    for (size_t j = 0; j < nc; j++)
        src += -at(tp->cout[j], k) * at(tp->vsense[j], k);
    src += -at(tp->wl, k) * at(tp->vwl, k) - at(tp->idx, k) * at(tp->vidx, k);
    double wire = 0, cell = 0;
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            double vr = at(tp->rn[i * nc + j], k), vc = at(tp->cn[i * nc + j], k);
            double rin = j ? at(tp->rn[i * nc + j - 1], k) : at(tp->rin[i], k);
            double below = i + 1 < nr ? at(tp->cn[(i + 1) * nc + j], k) : at(tp->cout[j], k);
            if (row_wires)
                wire += (rin - vr) * (rin - vr) / o->r_row_ohm;
            if (col_wires)
                wire += (vc - below) * (vc - below) / o->r_col_ohm;
            double cur;
            if (row_wires) {
                /* row segment in, minus row segment out */
                double out = j + 1 < nc ? (vr - at(tp->rn[i * nc + j + 1], k)) / o->r_row_ohm : 0;
                cur = (rin - vr) / o->r_row_ohm - out;
            } else if (col_wires) {
                /* column segment down, minus column segment from above */
                double above = i > 0 ? (at(tp->cn[(i - 1) * nc + j], k) - vc) / o->r_col_ohm : 0;
                cur = (vc - below) / o->r_col_ohm - above;
            } else {
                cur = L->g_S[(r0 + i) * L->cols + c0 + j] * (vr - vc); /* linear cells, ideal wires */
            }
            cell += (vr - vc) * cur;
        }
    /* 1T1R cells with ideal wires: every row driver's current goes through its row's cells only. */
    if (!row_wires && !col_wires && !o->linear_cells)
        cell = row_src;
    *p_src = src;
    *p_cell = cell;
    *p_wire = wire;
}

int xb_spice_tile_power(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *p_src_W,
                        double *p_cell_W, double *p_wire_W, xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    for (size_t k = 0; k < n; k++)
        p_src_W[k] = p_cell_W[k] = p_wire_W[k] = NAN;
    if (n == 0)
        return XB_OK;
    int rc = xb_netlist_check(c, l, rt, ct, dev, o, v_tile, n, err);
    if (rc || (rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_EXTERNAL, NULL, 0, err)))
        return rc;
    s->v_tile = v_tile;
    s->nr = nr;
    s->nc = nc;
    s->n_points = n;
    s->i_cols = NULL;
    s->base = 0;
    s->points_done = 0;
    char cmd[96];
    snprintf(cmd, sizeof cmd, "dc vidx 0 %zu 1", n - 1);
    command(s, cmd);
    /* A sweep that stops early leaves the points after it NaN: they are not counted. */
    size_t done = s->points_done < n ? s->points_done : n;
    tile_plot tp = {0};
    if (done && !s->dead && tile_plot_get(&tp, nr, nc, done, o)) {
        tile_plot_free(&tp);
        s->v_tile = NULL;
        unload(s);
        return xb_fail(err, XB_ENOMEM, "out of memory for a tile's vectors");
    }
    for (size_t k = 0; k < done && !s->dead; k++)
        point_power(c, l, r0, c0, &tp, o, k, &p_src_W[k], &p_cell_W[k], &p_wire_W[k]);
    if (done && !s->dead)
        tile_plot_free(&tp);
    if (done < n && s->log)
        fprintf(s->log, "xbarsim: the energy sweep of layer %d tile (%zu, %zu) stopped after %zu of %zu inputs\n",
                l + 1, rt, ct, done, n);
    s->v_tile = NULL;
    command(s, "destroy all");
    unload(s);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error: %s", s->last_error);
    return XB_OK;
}

/* The Elmore delay of the tile's wires: a line of m segments of resistance r and capacitance cw driven
 * from one end settles in about r cw m (m + 1) / 2; row lines and column lines in series. */
static double wire_elmore_s(const xb_netlist_options *o, size_t nr, size_t nc, double cw)
{
    return cw * (o->r_row_ohm * (double)nc * (double)(nc + 1) / 2 + o->r_col_ohm * (double)nr * (double)(nr + 1) / 2);
}

int xb_spice_tile_settling(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_rows, double c_wire_F, double frac,
                           double *t_settle_s, double *t_stop_s, xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    *t_settle_s = NAN;
    *t_stop_s = 0;
    if (!(c_wire_F >= 0 && c_wire_F <= 1e-9) || !(frac > 0 && frac < 1))
        return xb_fail(err, XB_EINPUT, "settling: wire capacitance %g F per segment (allowed 0 to 1e-9 F) and "
                       "fraction %g of the final current (allowed: between 0 and 1)", c_wire_F, frac);
    int rc = xb_netlist_check(c, l, rt, ct, dev, o, v_rows, 1, err);
    if (rc)
        return rc;
    double tau = wire_elmore_s(o, nr, nc, c_wire_F);
    if (!(tau > 0)) {
        *t_settle_s = 0; /* no capacitor behind a resistor: the currents follow the drive at once */
        return XB_OK;
    }
    /* One capacitor to ground per wire segment, at its far node. */
    size_t cap = 64 + 2 * nr * nc * 48;
    char *caps = malloc(cap), *extra = malloc(cap), *rows = malloc(nr * XB_ROW_LINE), *w = caps;
    double *i_dc = calloc(nc, sizeof *i_dc);
    if (!caps || !extra || !rows || !i_dc) {
        free(caps), free(extra), free(rows), free(i_dc);
        return xb_fail(err, XB_ENOMEM, "out of memory for the settling deck");
    }
    w += snprintf(w, cap, "* wire capacitance for the settling transient: %.17g F per segment\n", c_wire_F);
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            if (o->r_row_ohm > 0)
                w += snprintf(w, cap - (size_t)(w - caps), "Cwr%zu_%zu r%zu_%zu 0 %.17g\n", i, j, i, j, c_wire_F);
            if (o->r_col_ohm > 0)
                w += snprintf(w, cap - (size_t)(w - caps), "Cwc%zu_%zu c%zu_%zu 0 %.17g\n", i, j, i, j, c_wire_F);
        }
    /* The final currents: the operating point at the input's row voltages (the plain deck). */
    rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, NULL, 0, err);
    if (rc) {
        free(caps), free(extra), free(rows), free(i_dc);
        return rc;
    }
    char cmd[200], name[64];
    for (size_t i = 0; i < nr; i++) {
        snprintf(cmd, sizeof cmd, "alter vrow%zu dc = %.17g", i, v_rows[i]);
        command(s, cmd);
    }
    s->i_cols = NULL;
    s->v_tile = NULL;
    s->points_done = 0;
    command(s, "op");
    int have_dc = s->points_done > 0;
    double big = 0;
    for (size_t j = 0; j < nc && have_dc; j++) {
        snprintf(name, sizeof name, "vsense%zu#branch", j);
        const double *v = plot_vector(name, 1);
        i_dc[j] = v ? v[0] : 0;
        big = fmax(big, fabs(i_dc[j]));
    }
    command(s, "destroy all");
    /* Then the deck with the capacitors, its rows a PULSE stepping at t = 0 from 0 V (the transient's
     * operating point: every node at 0) to the input's voltages with a rise of one step, 200 steps at most
     * apart. (Written into the deck: `alter @vrow[pulse]` on a DC source reads unset memory in ngspice
     * 46.) The transient
     * lasts 30 Elmore delays of the wires (at least 1 ps) and is made 10 times longer, up to 4 times, while
     * the currents are not settled by its first half: the cells' own capacitances (the access
     * transistor's gate capacitance behind a resistive RRAM) can be slower than the wires. (A `uic` start
     * from uncharged wires leaves the 1T1R cells' inner nodes with no consistent state and the timestep
     * collapses.) */
    double t_stop = fmax(30 * tau, 1e-12), thr = frac * big;
    for (int attempt = 0; attempt < 5 && have_dc && big > 0 && !s->dead && !rc; attempt++, t_stop *= 10) {
        double t_step = t_stop / 200, t_rise = t_step;
        for (size_t i = 0; i < nr; i++)
            snprintf(rows + i * XB_ROW_LINE, XB_ROW_LINE, "Vrow%zu rin%zu 0 DC 0 PULSE(0 %.17g 0 %.17g %.17g 1 2)", i, i,
                     v_rows[i], t_rise, t_rise);
        unload(s);
        s->extra_lines = extra;
        s->row_lines = rows;
        s->nr = nr;
        snprintf(extra, cap, "%s", caps);
        rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, NULL, 0, err);
        s->extra_lines = s->row_lines = NULL;
        if (rc)
            break;
        /* Newton's default reltol (1e-3) is as coarse as a settling fraction of 1e-3: the transient is
         * solved 100 times tighter than the fraction asked for. */
        snprintf(cmd, sizeof cmd, "option reltol=%.17g", fmin(1e-3, frac * 1e-2));
        command(s, cmd);
        s->points_done = 0;
        snprintf(cmd, sizeof cmd, "tran %.17g %.17g 0 %.17g", t_step, t_stop, t_step);
        command(s, cmd);
        size_t m = s->points_done;
        const double *t = m > 10 ? plot_vector("time", m) : NULL;
        if (!t || t[m - 1] < 0.999 * t_stop) { /* aborted (timestep too small): try a longer, coarser one */
            command(s, "destroy all");
            continue;
        }
        /* The last moment any column current is further than frac of the largest final current from its
         * final value, interpolated between the samples around it. */
        double t_set = 0;
        for (size_t j = 0; j < nc; j++) {
            snprintf(name, sizeof name, "vsense%zu#branch", j);
            const double *ij = plot_vector(name, m);
            if (!ij)
                continue;
            for (size_t q = m; q-- > 0;) {
                double d = fabs(ij[q] - i_dc[j]);
                if (d > thr) {
                    double d1 = q + 1 < m ? fabs(ij[q + 1] - i_dc[j]) : d;
                    double f = d > d1 ? (d - thr) / (d - d1) : 1;
                    t_set = fmax(t_set, q + 1 < m ? t[q] + f * (t[q + 1] - t[q]) : t[q]);
                    break;
                }
            }
        }
        double t_last = t[m - 1]; /* the plot's vectors are freed with it */
        *t_stop_s = t_last;
        command(s, "destroy all");
        if (t_set <= 0.5 * t_last) {
            *t_settle_s = t_set;
            break;
        }
    }
    free(i_dc), free(caps), free(extra), free(rows);
    if (rc)
        return rc;
    if (isnan(*t_settle_s) && s->log)
        fprintf(s->log, "xbarsim: the settling transient of layer %d tile (%zu, %zu) did not settle within %g s; its "
                "settling time is NaN\n", l + 1, rt, ct, *t_stop_s);
    if (!(big > 0) && have_dc)
        *t_settle_s = 0; /* no current to settle */
    snprintf(cmd, sizeof cmd, "option reltol=%.17g", o->reltol > 0 ? o->reltol : 1e-3);
    command(s, cmd);
    command(s, "destroy all");
    unload(s);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error: %s", s->last_error);
    return XB_OK;
}
