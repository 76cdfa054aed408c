// ngspice: the libngspice driver: tiles loaded once, inputs streamed through one dc sweep
#define _GNU_SOURCE
#include <stdbool.h>

#include "ngspice.h"

#include <ngspice/sharedspice.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct xb_spice {
    FILE *log;
    int version;
    int klu;
    int dead;             /* ControlledExit seen */
    int init_done;        /* the banner has been read */
    char last_error[512]; /* the last line ngspice printed with "rror" in it */
    /* The sweep in progress. */
    const double *v_tile; /* row voltages, n x nr */
    size_t nr, nc, offset, n_points;
    size_t points_done;   /* SendData calls of this analysis */
    double *i_cols;       /* n x nc results */
    int *vec_col;         /* vector number -> tile column, or -1 */
    int n_vecs;
    int ident;            /* ngspice keeps a pointer to this: it must outlive the library */
};

static xb_spice *live; /* the library is a per-process singleton */

static int on_char(char *text, int id, void *ud)
{
    (void)id;
    xb_spice *s = ud;
    /* stdout/stderr prefixes come first: "stdout ..." / "stderr ..." */
    const char *msg = text;
    if (!strncmp(msg, "stdout ", 7) || !strncmp(msg, "stderr ", 7))
        msg += 7;
    if (s->log)
        fprintf(s->log, "%s\n", msg);
    const char *v = strstr(msg, "ngspice-");
    if (v && !s->version)
        s->version = atoi(v + 8);
    if (strstr(msg, "rror"))
        snprintf(s->last_error, sizeof s->last_error, "%s", msg);
    return 0;
}

static int on_stat(char *text, int id, void *ud)
{
    (void)text, (void)id, (void)ud;
    return 0;
}

static int on_controlled_exit(int status, NG_BOOL unload, NG_BOOL quit, int id, void *ud)
{
    (void)unload, (void)quit, (void)id;
    xb_spice *s = ud;
    s->dead = 1;
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
        s->n_vecs = 0;
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
    size_t k = s->offset + s->points_done;
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
    size_t k = s->offset + s->points_done;
    *voltage = 0;
    if (s->v_tile && k < s->n_points && sscanf(name, "vrow%u", &i) == 1 && i < s->nr)
        *voltage = s->v_tile[k * s->nr + i];
    return 0;
}

static int command(xb_spice *s, const char *cmd)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", cmd);
    int rc = ngSpice_Command(buf);
    return rc || s->dead;
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
    if (ngSpice_Init(on_char, on_stat, on_controlled_exit, on_data, on_init_data, on_bg, s) != 0 ||
        ngSpice_Init_Sync(on_vsrc, NULL, NULL, &s->ident, s) != 0) {
        xb_spice_close(&s);
        return xb_fail(err, XB_ERUNTIME, "libngspice failed to initialise");
    }
    if (!s->version) {
        /* The banner did not say; ask. */
        command(s, "version -s");
    }
    s->klu = s->version >= 43;
    command(s, "set num_threads=1");
    s->init_done = 1;
    if (s->log)
        fprintf(s->log, "xbarsim: ngspice %d, solver %s\n", s->version, xb_spice_solver_name(s));
    *out = s;
    return XB_OK;
}

void xb_spice_close(xb_spice **sp)
{
    if (!sp || !*sp)
        return;
    xb_spice *s = *sp;
    if (!s->dead) {
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

long xb_spice_peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Write the deck to memory and hand it to ngspice line by line. */
static int load_deck(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                     const xb_netlist_options *o, xb_deck_kind kind, xb_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return xb_fail(err, XB_ENOMEM, "out of memory for a deck");
    xb_netlist_options oo = *o;
    oo.klu = s->klu;
    int rc = xb_netlist_write_tile(mem, c, l, rt, ct, dev, &oo, kind, NULL, 0, NULL, err);
    fclose(mem);
    if (rc) {
        free(buf);
        return rc;
    }
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        n_lines += buf[i] == '\n';
    char **lines = malloc((n_lines + 2) * sizeof *lines);
    if (!lines) {
        free(buf);
        return xb_fail(err, XB_ENOMEM, "out of memory for a deck");
    }
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
        lines[k++] = t;
    lines[k] = NULL;
    s->last_error[0] = '\0';
    int bad = ngSpice_Circ(lines) != 0 || s->dead;
    free(lines);
    free(buf);
    if (bad)
        return xb_fail(err, XB_ERUNTIME, "ngspice rejected the deck of layer %d tile (%zu, %zu): %s", l + 1, rt, ct,
                       s->last_error[0] ? s->last_error : "see the ngspice log");
    return XB_OK;
}

static void unload(xb_spice *s)
{
    if (s->dead)
        return;
    command(s, "destroy all");
    command(s, "remcirc");
    /* A NULL command clears ngspice's command history, which otherwise grows with every alter. */
    ngSpice_Command(NULL);
}

int xb_spice_solve_tile(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                        const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols, int *status,
                        xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice is dead in this process");
    int rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_EXTERNAL, err);
    if (rc)
        return rc;
    s->v_tile = v_tile;
    s->nr = nr;
    s->nc = nc;
    s->n_points = n;
    s->i_cols = i_cols;
    for (size_t k = 0; k < n; k++)
        if (status)
            status[k] = XB_SOLVE_OK;
    size_t start = 0;
    int retrying = 0;
    while (start < n && !s->dead) {
        char cmd[96];
        s->offset = start;
        s->points_done = 0;
        snprintf(cmd, sizeof cmd, "dc vidx 0 %zu 1", n - start - 1);
        command(s, cmd);
        command(s, "destroy all");
        size_t done = s->points_done < n - start ? s->points_done : n - start;
        if (retrying && done > 0 && status)
            status[start] = XB_SOLVE_RETRIED;
        start += done;
        if (start >= n || s->dead)
            break;
        if (done == 0 && retrying) {
            /* A cold start with gmin and source stepping failed too: report it and move on. */
            if (status)
                status[start] = XB_SOLVE_FAILED;
            for (size_t j = 0; j < nc; j++)
                i_cols[start * nc + j] = NAN;
            start++;
            retrying = 0;
            command(s, "option gminsteps=0 srcsteps=0");
            continue;
        }
        /* The sweep stopped at `start`: solve from there again from a cold start, with stepping. */
        retrying = 1;
        command(s, "option gminsteps=100 srcsteps=100");
    }
    s->v_tile = NULL;
    s->i_cols = NULL;
    unload(s);
    if (s->dead)
        return xb_fail(err, XB_ERUNTIME, "ngspice stopped with a fatal error on layer %d tile (%zu, %zu): %s", l + 1,
                       rt, ct, s->last_error[0] ? s->last_error : "see the ngspice log");
    return XB_OK;
}

int xb_spice_solve_tile_op(xb_spice *s, const xb_chip *c, int l, size_t rt, size_t ct, const xb_device *dev,
                           const xb_netlist_options *o, const double *v_tile, size_t n, double *i_cols,
                           xb_error *err)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
    int rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, err);
    if (rc)
        return rc;
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
        s->offset = k;
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
    int rc = load_deck(s, c, l, rt, ct, dev, o, XB_DECK_ALTER, err);
    if (rc)
        return rc;
    char cmd[128], name[64];
    for (size_t i = 0; i < nr; i++) {
        snprintf(cmd, sizeof cmd, "alter vrow%zu dc = %.17g", i, v_rows[i]);
        command(s, cmd);
    }
    s->i_cols = NULL;
    command(s, "op");
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
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
