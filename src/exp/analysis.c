// analysis: a finished testbench's figures and statistics: sweep plots, midpoint noise level fits, Spearman and Kruskal-Wallis tables, McNemar between points
#include "analysis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "metrics.h"
#include "plot.h"
#include "stats.h"

double xb_accuracy_uncertainty(double mean, double std, size_t trials, size_t images)
{
    double t = trials ? (double)trials : 1, n = images ? (double)images : 1;
    return sqrt(std * std / t + mean * (1 - mean) / n);
}

/* The text of parameter name at a summary row: a swept column, a derived value or the backend. */
static void value_text(const xb_analysis_ctx *a, const xb_summary_row *s, const char *name, char *buf, size_t len)
{
    if (!strcmp(name, "backend"))
        snprintf(buf, len, "%s", xb_backend_name(s->backend));
    else if (!strcmp(name, "network.synapses"))
        snprintf(buf, len, "%.17g", s->synapses);
    else if (!strcmp(name, "network.layers"))
        snprintf(buf, len, "%.17g", s->layers);
    else if (!strcmp(name, "network.neurons"))
        snprintf(buf, len, "%.17g", s->neurons);
    else {
        int c = xb_tb_column_index(a->tb, name);
        snprintf(buf, len, "%s", c >= 0 ? xb_tb_value(a->tb, s->point, (size_t)c) : "");
    }
}

static int parse_number(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

/* "name=value, name=value" of a list of parameters at a row. */
static void key_of(const xb_analysis_ctx *a, const xb_summary_row *s, const char (*names)[128], int n, char *buf,
                   size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at < len; i++) {
        char v[256];
        value_text(a, s, names[i], v, sizeof v);
        at += (size_t)snprintf(buf + at, len - at, "%s%s=%s", i ? ", " : "", names[i], v);
    }
}

/* The values only, joined for a file name: characters other than A-Z a-z 0-9 . _ - become '_'. */
static void file_suffix(const xb_analysis_ctx *a, const xb_summary_row *s, const char (*names)[128], int n, char *buf,
                        size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && at + 1 < len; i++) {
        char v[256];
        value_text(a, s, names[i], v, sizeof v);
        at += (size_t)snprintf(buf + at, len - at, "-%s", v);
    }
    for (char *p = buf; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            *p = '_';
}

static int mentions_backend(const xb_tb_output *o)
{
    int m = !strcmp(o->x, "backend");
    for (int i = 0; i < o->n_series; i++)
        m |= !strcmp(o->series[i], "backend");
    for (int i = 0; i < o->n_by; i++)
        m |= !strcmp(o->by[i], "backend");
    return m;
}

/* The rows an output draws on: its grid, and its backend unless it spreads over backends. */
static size_t select_rows(const xb_analysis_ctx *a, const xb_tb_output *o, const xb_summary_row **sel)
{
    unsigned backend = o->backend;
    if (!backend)
        for (size_t i = 0; i < a->n_rows; i++)
            if (a->rows[i].backend > backend)
                backend = a->rows[i].backend;
    int all = mentions_backend(o);
    size_t n = 0;
    for (size_t i = 0; i < a->n_rows; i++) {
        const xb_summary_row *s = &a->rows[i];
        if (o->grid[0] && strcmp(xb_tb_grid(a->tb, s->point), o->grid))
            continue;
        if (!all && s->backend != backend)
            continue;
        sel[n++] = s;
    }
    return n;
}

/* Distinct keys in order of first appearance; group[i] receives the key index of row i. */
typedef struct keyset {
    char (*key)[512];
    size_t n;
} keyset;

static int group_rows(const xb_analysis_ctx *a, const xb_summary_row **rows, size_t n, const char (*names)[128],
                      int n_names, keyset *ks, size_t *group, xb_error *err)
{
    ks->n = 0;
    ks->key = calloc(n ? n : 1, sizeof *ks->key);
    if (!ks->key)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char k[512];
        key_of(a, rows[i], names, n_names, k, sizeof k);
        size_t j = 0;
        while (j < ks->n && strcmp(ks->key[j], k))
            j++;
        if (j == ks->n)
            snprintf(ks->key[ks->n++], sizeof ks->key[0], "%s", k);
        group[i] = j;
    }
    return XB_OK;
}

static const char *metric_label(const xb_tb_output *o)
{
    return o->metric_delta ? "dACC = ACC - ACC(software) (percentage points)" : "accuracy (%)";
}

/* Figures go to OUT/plots. */
static int write_figure(const xb_analysis_ctx *a, const xb_figure *fig, xb_error *err)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/plots", a->out);
    return xb_figure_write(fig, dir, a->render, err);
}

/* ------------------------------------------------------------------------------------------------ */
/* Sweep plots */

typedef struct xy {
    double x, y, lo, hi;
} xy;

static int cmp_xy(const void *p, const void *q)
{
    double a = ((const xy *)p)->x, b = ((const xy *)q)->x;
    return (a > b) - (a < b);
}

static int plot_group(const xb_analysis_ctx *a, const xb_tb_output *o, const xb_summary_row **rows, size_t n,
                      const char *by_key, const char *suffix, xb_error *err)
{
    /* Numeric x if every value reads as a number, else categories in order of appearance. */
    int numeric = 1;
    char (*cats)[256] = calloc(n ? n : 1, sizeof *cats);
    double *xv = calloc(n ? n : 1, sizeof *xv);
    size_t *series = calloc(n ? n : 1, sizeof *series);
    xy *pts = calloc(n ? n : 1, sizeof *pts);
    keyset ks = {0};
    size_t n_cats = 0;
    xb_figure *fig = NULL;
    int rc = cats && xv && series && pts ? XB_OK : xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        char v[256];
        value_text(a, rows[i], o->x, v, sizeof v);
        numeric &= parse_number(v, &xv[i]);
    }
    for (size_t i = 0; !rc && !numeric && i < n; i++) {
        char v[256];
        value_text(a, rows[i], o->x, v, sizeof v);
        size_t j = 0;
        while (j < n_cats && strcmp(cats[j], v))
            j++;
        if (j == n_cats)
            snprintf(cats[n_cats++], sizeof cats[0], "%s", v);
        xv[i] = (double)j;
    }
    if (!rc)
        rc = group_rows(a, rows, n, o->series, o->n_series, &ks, series, err);
    char name[256], title[600];
    snprintf(name, sizeof name, "%s%s", o->name, suffix);
    snprintf(title, sizeof title, "%s%s%s", o->title[0] ? o->title : xb_tb_title(a->tb)[0] ? xb_tb_title(a->tb)
                                                                                            : xb_tb_name(a->tb),
             by_key[0] ? " - " : "", by_key);
    if (!rc && !(fig = xb_figure_new(name, title, o->x, metric_label(o))))
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    if (!rc) {
        xb_figure_log_axes(fig, o->logx, o->logy);
        if (!numeric) {
            const char **labels = malloc((n_cats ? n_cats : 1) * sizeof *labels);
            if (!labels)
                rc = xb_fail(err, XB_ENOMEM, "out of memory");
            for (size_t j = 0; !rc && j < n_cats; j++)
                labels[j] = cats[j];
            if (!rc)
                rc = xb_figure_x_categories(fig, labels, n_cats);
            free(labels);
        }
    }
    for (size_t s = 0; !rc && s < ks.n; s++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (series[i] != s)
                continue;
            const xb_summary_row *r = rows[i];
            double scale = 100;
            pts[m++] = o->metric_delta ? (xy){xv[i], scale * r->dacc_mean, scale * r->dacc_lo, scale * r->dacc_hi}
                                       : (xy){xv[i], scale * r->acc_mean, scale * r->acc_lo, scale * r->acc_hi};
        }
        qsort(pts, m, sizeof *pts, cmp_xy);
        double *x = malloc(4 * (m ? m : 1) * sizeof *x);
        if (!x) {
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < m; i++) {
            x[i] = pts[i].x;
            x[m + i] = pts[i].y;
            x[2 * m + i] = pts[i].lo;
            x[3 * m + i] = pts[i].hi;
        }
        rc = xb_figure_add(fig, o->n_series ? ks.key[s] : (o->metric_delta ? "dACC" : "accuracy"), XB_PLOT_ERRORLINES, x,
                           x + m, x + 2 * m, x + 3 * m, m);
        free(x);
    }
    if (!rc)
        rc = write_figure(a, fig, err);
    xb_figure_free(&fig);
    free(ks.key);
    free(cats);
    free(xv);
    free(series);
    free(pts);
    return rc;
}

/* One figure per group of the by parameters. */
static int run_plot(const xb_analysis_ctx *a, const xb_tb_output *o, xb_error *err)
{
    const xb_summary_row **sel = malloc((a->n_rows ? a->n_rows : 1) * sizeof *sel);
    size_t *group = malloc((a->n_rows ? a->n_rows : 1) * sizeof *group);
    const xb_summary_row **sub = malloc((a->n_rows ? a->n_rows : 1) * sizeof *sub);
    keyset ks = {0};
    int rc = sel && group && sub ? XB_OK : xb_fail(err, XB_ENOMEM, "out of memory");
    size_t n = rc ? 0 : select_rows(a, o, sel);
    if (!rc)
        rc = group_rows(a, sel, n, o->by, o->n_by, &ks, group, err);
    for (size_t g = 0; !rc && g < ks.n; g++) {
        size_t m = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (group[i] == g) {
                if (!m)
                    first = i;
                sub[m++] = sel[i];
            }
        char suffix[256];
        file_suffix(a, sel[first], o->by, o->n_by, suffix, sizeof suffix);
        rc = plot_group(a, o, sub, m, ks.key[g], suffix, err);
    }
    free(ks.key);
    free(sel);
    free(group);
    free(sub);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* Statistics tables */

static int open_table(const xb_analysis_ctx *a, const xb_tb_output *o, xb_atomic_file *f, const char *columns,
                      xb_error *err)
{
    char file[128];
    snprintf(file, sizeof file, "%s.csv", o->name);
    int rc = xb_atomic_open_in(f, a->out, file, err);
    if (rc)
        return rc;
    for (int i = 0; i < o->n_by; i++)
        fprintf(f->fp, "%s,", o->by[i]);
    fprintf(f->fp, "backend,%s\n", columns);
    return XB_OK;
}

/* The group's by values as leading CSV fields. */
static void table_lead(const xb_analysis_ctx *a, const xb_tb_output *o, const xb_summary_row *s, FILE *fp)
{
    for (int i = 0; i < o->n_by; i++) {
        char v[256];
        value_text(a, s, o->by[i], v, sizeof v);
        xb_csv_field(fp, v); /* level-set lists and hidden sizes hold commas */
        fputc(',', fp);
    }
    fprintf(fp, "%s,", xb_backend_name(s->backend));
}

static double metric(const xb_tb_output *o, const xb_summary_row *s)
{
    return o->metric_delta ? s->dacc_mean : s->acc_mean;
}

static void num(FILE *fp, double v, int last)
{
    if (isfinite(v))
        fprintf(fp, "%.17g", v);
    fputc(last ? '\n' : ',', fp);
}

static int midpoint_group(const xb_analysis_ctx *a, const xb_tb_output *o, const xb_summary_row **rows, size_t n,
                          const char *key, FILE *fp, xb_figure *fig, xb_error *err)
{
    double *v = malloc(3 * (n ? n : 1) * sizeof *v);
    xy *pts = malloc((n ? n : 1) * sizeof *pts);
    if (!v || !pts) {
        free(v);
        free(pts);
        return xb_fail(err, XB_ENOMEM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char t[256];
        double x;
        value_text(a, rows[i], o->x, t, sizeof t);
        if (!parse_number(t, &x) || (o->fit_log && !(x > 0)))
            continue; /* a log-scale fit cannot place sigma = 0 */
        const xb_summary_row *s = rows[i];
        pts[m++] = (xy){x, s->acc_mean, xb_accuracy_uncertainty(s->acc_mean, s->acc_std, s->trials, s->images), 0};
    }
    qsort(pts, m, sizeof *pts, cmp_xy);
    for (size_t i = 0; i < m; i++) {
        v[i] = o->fit_log ? log(pts[i].x) : pts[i].x;
        v[m + i] = pts[i].y;
        v[2 * m + i] = pts[i].lo;
    }
    xb_logistic_fit fit, fit_u;
    xb_error ferr = {0};
    int frc = xb_logistic_fit_run(v, v + m, v + 2 * m, m, &fit, &ferr);
    fit_u = fit;
    if (!frc && o->fit_log) {
        /* Fitted in u = ln sigma: report mu in sigma's units (its error by the delta method); s stays in ln
         * units. */
        fit.mu = exp(fit_u.mu);
        fit.mu_err = fit.mu * fit_u.mu_err;
    }
    for (size_t i = 0; i < m; i++)
        v[i] = pts[i].x;
    table_lead(a, o, rows[0], fp);
    fprintf(fp, "%zu,%s,", m, o->fit_log ? "log" : "linear");
    double f[] = {fit.mu, fit.mu_err, fit.s, fit.s_err, fit.delta_a, fit.delta_a_err, fit.a_min, fit.a_min_err, fit.chi2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        num(fp, frc ? NAN : f[i], 0);
    fprintf(fp, "%zu,%d,", frc ? 0 : fit.dof, frc ? 0 : fit.converged);
    if (frc) {
        for (char *p = ferr.msg; *p; p++)
            if (*p == ',' || *p == '\n' || *p == '"')
                *p = ';';
        fprintf(fp, "%s\n", ferr.msg);
    } else
        fprintf(fp, "\n");
    if (!a->quiet) {
        if (frc)
            printf("midpoint %s%s: no fit: %s\n", o->name, key[0] ? key : "", ferr.msg);
        else
            printf("midpoint %s%s%s: mu = %.4g +- %.2g (s = %.3g, delta_a = %.4g, a_min = %.4g, %zu points)\n", o->name,
                   key[0] ? " " : "", key, fit.mu, fit.mu_err, fit.s, fit.delta_a, fit.a_min, m);
    }
    /* The figure: the data with their uncertainties, the fitted logistic and mu marked. */
    int rc = XB_OK;
    for (size_t i = 0; i < m; i++) {
        double y = v[m + i], d = v[2 * m + i];
        v[m + i] = 100 * y;
        v[2 * m + i] = 100 * (y - d);
        pts[i].y = 100 * (y + d);
    }
    double *hi = malloc((m ? m : 1) * sizeof *hi);
    if (!hi)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < m; i++)
        hi[i] = pts[i].y;
    char label[600];
    snprintf(label, sizeof label, "%s", key[0] ? key : "measured");
    if (!rc)
        rc = xb_figure_add(fig, label, XB_PLOT_POINTS, v, v + m, v + 2 * m, hi, m);
    if (!rc && !frc && m >= 2) {
        enum { K = 200 };
        double fx[K], fy[K];
        for (int i = 0; i < K; i++) {
            double u = o->fit_log ? log(v[0]) + (log(v[m - 1]) - log(v[0])) * i / (K - 1)
                                  : v[0] + (v[m - 1] - v[0]) * i / (K - 1);
            fx[i] = o->fit_log ? exp(u) : u;
            fy[i] = 100 * xb_logistic_eval(&fit_u, u);
        }
        snprintf(label, sizeof label, "%s%sfit", key, key[0] ? " " : "");
        rc = xb_figure_add(fig, label, XB_PLOT_LINES, fx, fy, NULL, NULL, K);
        xb_figure_same_colour(fig);
        snprintf(label, sizeof label, "mu = %.3g%s%s", fit.mu, key[0] ? " " : "", key);
        if (!rc && fit.mu >= v[0] && fit.mu <= v[m - 1])
            rc = xb_figure_vline(fig, fit.mu, label);
    }
    free(hi);
    free(v);
    free(pts);
    return rc;
}

static int stat_group(const xb_analysis_ctx *a, const xb_tb_output *o, const xb_summary_row **rows, size_t n,
                      const char *key, FILE *fp, xb_error *err)
{
    double *x = malloc(2 * (n ? n : 1) * sizeof *x);
    int *grp = malloc((n ? n : 1) * sizeof *grp);
    if (!x || !grp) {
        free(x);
        free(grp);
        return xb_fail(err, XB_ENOMEM, "out of memory");
    }
    double *y = x + n;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char t[256];
        double xv;
        value_text(a, rows[i], o->x, t, sizeof t);
        if (!parse_number(t, &xv) || !isfinite(metric(o, rows[i])))
            continue;
        if (o->kind == XB_OUT_KRUSKAL) {
            int b = -1;
            for (int e = 0; e + 1 < o->n_bins; e++)
                if (xv >= o->bins[e] && xv < o->bins[e + 1])
                    b = e;
            if (b < 0)
                continue; /* outside every bin */
            grp[m] = b;
        }
        x[m] = xv;
        y[m++] = metric(o, rows[i]);
    }
    xb_error serr = {0};
    table_lead(a, o, rows[0], fp);
    if (o->kind == XB_OUT_SPEARMAN) {
        double rho = NAN, p = NAN;
        int src = xb_spearman(x, y, m, &rho, &p, &serr);
        fprintf(fp, "%zu,", m);
        num(fp, src ? NAN : rho, 0);
        num(fp, src ? NAN : p, 0);
        fprintf(fp, "%s\n", src ? "too few points" : "");
        if (!a->quiet)
            printf("spearman %s%s%s: rho = %.3f, p = %.3g (%zu points)\n", o->name, key[0] ? " " : "", key, rho, p, m);
    } else {
        double H = NAN, p = NAN;
        int df = 0, k = o->n_bins - 1;
        int src = xb_kruskal_wallis(y, grp, m, k, &H, &p, &df, &serr);
        char counts[256] = "";
        size_t at = 0;
        for (int g = 0; g < k && at < sizeof counts; g++) {
            size_t c = 0;
            for (size_t i = 0; i < m; i++)
                c += grp[i] == g;
            at += (size_t)snprintf(counts + at, sizeof counts - at, "%s%zu", g ? " " : "", c);
        }
        fprintf(fp, "%s,", counts);
        num(fp, src ? NAN : H, 0);
        fprintf(fp, "%d,", src ? 0 : df);
        num(fp, src ? NAN : p, 0);
        fprintf(fp, "%s\n", src ? "fewer than two non-empty groups" : "");
        if (!a->quiet)
            printf("kruskal %s%s%s: H = %.4g, df = %d, p = %.3g (groups of %s)\n", o->name, key[0] ? " " : "", key, H, df,
                   p, counts);
    }
    free(x);
    free(grp);
    return XB_OK;
}

static int run_table(const xb_analysis_ctx *a, const xb_tb_output *o, xb_error *err)
{
    static const char *const columns[] = {
        [XB_OUT_MIDPOINT] = "points,fit_scale,mu,mu_err,s,s_err,delta_a,delta_a_err,a_min,a_min_err,chi2,dof,converged,"
                            "error",
        [XB_OUT_SPEARMAN] = "points,rho,p_value,note",
        [XB_OUT_KRUSKAL] = "n_per_group,H,df,p_value,note",
    };
    const xb_summary_row **sel = malloc((a->n_rows ? a->n_rows : 1) * sizeof *sel);
    const xb_summary_row **sub = malloc((a->n_rows ? a->n_rows : 1) * sizeof *sub);
    size_t *group = malloc((a->n_rows ? a->n_rows : 1) * sizeof *group);
    keyset ks = {0};
    xb_figure *fig = NULL;
    xb_atomic_file f;
    int open = 0;
    int rc = sel && sub && group ? XB_OK : xb_fail(err, XB_ENOMEM, "out of memory");
    size_t n = rc ? 0 : select_rows(a, o, sel);
    if (!rc)
        rc = group_rows(a, sel, n, o->by, o->n_by, &ks, group, err);
    if (!rc && !(rc = open_table(a, o, &f, columns[o->kind], err)))
        open = 1;
    if (!rc && o->kind == XB_OUT_MIDPOINT) {
        char title[700];
        snprintf(title, sizeof title, "%s: accuracy against %s, logistic fit and midpoint noise level",
                 o->title[0] ? o->title : xb_tb_title(a->tb)[0] ? xb_tb_title(a->tb) : xb_tb_name(a->tb), o->x);
        if (!(fig = xb_figure_new(o->name, title, o->x, "accuracy (%)")))
            rc = xb_fail(err, XB_ENOMEM, "out of memory");
        else
            xb_figure_log_axes(fig, o->logx, o->logy);
    }
    for (size_t g = 0; !rc && g < ks.n; g++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (group[i] == g)
                sub[m++] = sel[i];
        rc = o->kind == XB_OUT_MIDPOINT ? midpoint_group(a, o, sub, m, ks.key[g], f.fp, fig, err)
                                        : stat_group(a, o, sub, m, ks.key[g], f.fp, err);
    }
    if (open) {
        if (rc)
            xb_atomic_abort(&f);
        else
            rc = xb_atomic_commit(&f, err);
    }
    if (!rc && fig)
        rc = write_figure(a, fig, err);
    xb_figure_free(&fig);
    free(ks.key);
    free(sel);
    free(sub);
    free(group);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* McNemar between points: two networks (or chips) on the same inputs, from predictions.csv */

typedef struct point_preds {
    size_t n, cap;
    long trial;               /* the first trial's predictions only; -1: none read */
    unsigned char *label;
    int *pred[3];             /* ideal, behavioral, spice */
} point_preds;

static void preds_free(point_preds *pp, size_t n)
{
    for (size_t k = 0; pp && k < n; k++) {
        free(pp[k].label);
        for (int b = 0; b < 3; b++)
            free(pp[k].pred[b]);
    }
    free(pp);
}

/* OUT/predictions.csv: point,trial,index,label,pred_ideal,pred_behavioral,pred_spice (points 1-based). */
static int read_predictions(const xb_analysis_ctx *a, point_preds **out, xb_error *err)
{
    size_t n_points = xb_tb_n_points(a->tb);
    point_preds *pp = calloc(n_points ? n_points : 1, sizeof *pp);
    if (!pp)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t k = 0; k < n_points; k++)
        pp[k].trial = -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/predictions.csv", a->out);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        preds_free(pp, n_points);
        return xb_fail(err, XB_ERUNTIME, "%s: cannot read the per-input predictions", path);
    }
    char line[256];
    int rc = XB_OK;
    size_t lineno = 0;
    while (!rc && fgets(line, sizeof line, fp)) {
        if (++lineno == 1)
            continue;
        size_t point, index;
        long trial;
        int label, p[3];
        if (sscanf(line, "%zu,%ld,%zu,%d,%d,%d,%d", &point, &trial, &index, &label, &p[0], &p[1], &p[2]) != 7 ||
            point < 1 || point > n_points || label < 0 || label > 255) {
            rc = xb_fail(err, XB_ERUNTIME, "%s:%zu: not a prediction row", path, lineno);
            break;
        }
        point_preds *q = &pp[point - 1];
        if (q->trial < 0)
            q->trial = trial;
        if (trial != q->trial)
            continue;
        if (index != q->n) {
            rc = xb_fail(err, XB_ERUNTIME, "%s:%zu: input %zu of point %zu out of order", path, lineno, index, point);
            break;
        }
        if (q->n == q->cap) {
            size_t cap = q->cap ? 2 * q->cap : 1024;
            unsigned char *l = realloc(q->label, cap);
            if (l)
                q->label = l;
            int ok = l != NULL;
            for (int b = 0; b < 3 && ok; b++) {
                int *g = realloc(q->pred[b], cap * sizeof *g);
                if (g)
                    q->pred[b] = g;
                ok = g != NULL;
            }
            if (!ok) {
                rc = xb_fail(err, XB_ENOMEM, "out of memory");
                break;
            }
            q->cap = cap;
        }
        q->label[q->n] = (unsigned char)label;
        for (int b = 0; b < 3; b++)
            q->pred[b][q->n] = p[b];
        q->n++;
    }
    fclose(fp);
    if (rc) {
        preds_free(pp, n_points);
        return rc;
    }
    *out = pp;
    return XB_OK;
}

/* A summary row of point k (for the values of derived parameters); NULL if none. */
static const xb_summary_row *row_of(const xb_analysis_ctx *a, size_t k)
{
    for (size_t i = 0; i < a->n_rows; i++)
        if (a->rows[i].point == k)
            return &a->rows[i];
    return NULL;
}

/* Per group of by values, the first point (in point order) against each other point, per backend:
 * the inputs only one of the two classifies correctly and McNemar's test on them. */
static int run_mcnemar(const xb_analysis_ctx *a, const xb_tb_output *o, xb_error *err)
{
    const xb_tb *tb = a->tb;
    size_t n_points = xb_tb_n_points(tb);
    point_preds *pp = NULL;
    int rc = read_predictions(a, &pp, err);
    if (rc)
        return rc;
    xb_atomic_file f;
    if ((rc = open_table(a, o, &f, "x_a,x_b,point_a,point_b,trial,images,accuracy_a,accuracy_b,only_a,only_b,"
                                   "chi2,p_value", err))) {
        preds_free(pp, n_points);
        return rc;
    }
    unsigned backends[3] = {XB_BACKEND_IDEAL, XB_BACKEND_BEHAVIORAL, XB_BACKEND_SPICE};
    int xc = xb_tb_column_index(tb, o->x);
    char *done = calloc(n_points ? n_points : 1, 1);
    if (!done)
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
    for (size_t k0 = 0; !rc && k0 < n_points; k0++) {
        if (done[k0] || (o->grid[0] && strcmp(xb_tb_grid(tb, k0), o->grid)))
            continue;
        const xb_summary_row *s0 = row_of(a, k0);
        char key0[1024];
        key_of(a, s0, o->by, o->n_by, key0, sizeof key0);
        for (size_t k = k0; !rc && k < n_points; k++) {
            if (done[k] || (o->grid[0] && strcmp(xb_tb_grid(tb, k), o->grid)))
                continue;
            char key[1024];
            key_of(a, row_of(a, k), o->by, o->n_by, key, sizeof key);
            if (strcmp(key, key0))
                continue;
            done[k] = 1;
            if (k == k0)
                continue;
            const point_preds *pa = &pp[k0], *pb = &pp[k];
            if (!pa->n || !pb->n) {
                rc = xb_fail(err, XB_EINPUT, "point %zu has no per-input predictions; allowed: points whose backends "
                             "include spice (they keep them)", (pa->n ? k : k0) + 1);
                break;
            }
            if (pa->n != pb->n || memcmp(pa->label, pb->label, pa->n)) {
                rc = xb_fail(err, XB_EINPUT, "points %zu and %zu were tested on different inputs (%zu and %zu images); "
                             "allowed: points with the same dataset.images", k0 + 1, k + 1, pa->n, pb->n);
                break;
            }
            for (int b = 0; b < 3; b++) {
                if ((o->backend && o->backend != backends[b]) || pa->pred[b][0] < 0 || pb->pred[b][0] < 0)
                    continue;
                size_t right_a = 0, right_b = 0, only_a = 0, only_b = 0;
                for (size_t i = 0; i < pa->n; i++) {
                    int ra = pa->pred[b][i] == pa->label[i], rb = pb->pred[b][i] == pa->label[i];
                    right_a += (size_t)ra;
                    right_b += (size_t)rb;
                    only_a += (size_t)(ra && !rb);
                    only_b += (size_t)(rb && !ra);
                }
                double stat, p;
                xb_mcnemar(only_a, only_b, &stat, &p);
                xb_summary_row lead = *s0;
                lead.backend = backends[b];
                table_lead(a, o, &lead, f.fp);
                xb_csv_field(f.fp, xb_tb_value(tb, k0, (size_t)xc));
                fputc(',', f.fp);
                xb_csv_field(f.fp, xb_tb_value(tb, k, (size_t)xc));
                fprintf(f.fp, ",%zu,%zu,%ld,%zu,", k0 + 1, k + 1, pa->trial, pa->n);
                num(f.fp, (double)right_a / (double)pa->n, 0);
                num(f.fp, (double)right_b / (double)pa->n, 0);
                fprintf(f.fp, "%zu,%zu,", only_a, only_b);
                num(f.fp, stat, 0);
                num(f.fp, p, 1);
                if (!a->quiet)
                    printf("mcnemar %s%s%s, %s: %s=%s %.2f%% against %s=%s %.2f%% on %zu inputs: %zu / %zu discordant, "
                           "p = %.3g\n", o->name, key0[0] ? " " : "", key0, xb_backend_name(backends[b]), o->x,
                           xb_tb_value(tb, k0, (size_t)xc), 100.0 * (double)right_a / (double)pa->n, o->x,
                           xb_tb_value(tb, k, (size_t)xc), 100.0 * (double)right_b / (double)pa->n, pa->n, only_a,
                           only_b, p);
            }
        }
    }
    free(done);
    preds_free(pp, n_points);
    if (rc) {
        xb_atomic_abort(&f);
        return rc;
    }
    return xb_atomic_commit(&f, err);
}

int xb_analysis_run_all(const xb_analysis_ctx *a, xb_error *err)
{
    for (size_t i = 0; i < xb_tb_n_outputs(a->tb); i++) {
        const xb_tb_output *o = xb_tb_output_at(a->tb, i);
        int rc = XB_OK;
        if (o->kind == XB_OUT_PLOT)
            rc = run_plot(a, o, err);
        else if (o->kind == XB_OUT_MCNEMAR)
            rc = run_mcnemar(a, o, err);
        else if (o->kind != XB_OUT_EXAMPLE)
            rc = run_table(a, o, err);
        if (rc)
            return xb_error_prefix(err, "%s:%d: output %s", xb_tb_path(a->tb), o->line, o->name);
    }
    return XB_OK;
}
