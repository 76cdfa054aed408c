// plot: figures (data CSV + gnuplot script + SVG/PNG) for experiment results
#define _GNU_SOURCE
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

/* gnuplot draws one of these figures in well under a second; two minutes means it is stuck. */
#define RENDER_TIMEOUT_S 120
/* How much of gnuplot's output is kept: the tail, because its error message comes last. */
#define OUTPUT_KEEP 65536
/* Colours and point shapes cycle so that neighbouring series differ in both (colour-blind readers). */
#define N_COLOURS 8
static const int point_types[] = {7, 5, 9, 11, 13, 15, 6, 4};

typedef struct series {
    char *label;
    xb_plot_style style;
    double *x, *y, *y_lo, *y_hi; /* y_lo and y_hi are NULL when absent */
    size_t n;
    size_t slot;                 /* picks the colour and point type */
} series;

typedef struct vline {
    double x;
    char *label;
} vline;

struct xb_figure {
    char *name, *title, *xlabel, *ylabel;
    int logx, logy, diagonal;
    char **categories;
    size_t n_categories;
    series *series;
    size_t n_series, n_slots;
    vline *vlines;
    size_t n_vlines;
    /* The first failed call: callers may add series without checking each return, and the failure
     * must still surface, with its reason, when the figure is written. */
    xb_error first_error;
};

/* --- small helpers --- */

static char *copy_str(const char *s)
{
    return strdup(s ? s : "");
}

static int figure_fail(xb_figure *f, int code, const char *fmt, ...) XB_PRINTF(3, 4);
static int figure_fail(xb_figure *f, int code, const char *fmt, ...)
{
    if (f->first_error.code)
        return code;
    char msg[sizeof f->first_error.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return xb_fail(&f->first_error, code, "figure %s: %s", f->name, msg);
}

static double *copy_doubles(const double *v, size_t n, int *ok)
{
    *ok = 1;
    if (!v || n == 0)
        return NULL;
    if (n > SIZE_MAX / sizeof *v) {
        *ok = 0;
        return NULL;
    }
    double *c = malloc(n * sizeof *c);
    if (!c)
        *ok = 0;
    else
        memcpy(c, v, n * sizeof *c);
    return c;
}

/* The name becomes a file name and sits unquoted on gnuplot's command line, so it is kept to
 * characters that need no quoting anywhere, and cannot look like an option or a hidden file. */
static int check_name(const char *name, xb_error *err)
{
    if (!name || !name[0])
        return xb_fail(err, XB_EINPUT, "figure name is empty");
    size_t n = strlen(name);
    if (n > XB_PLOT_NAME_MAX)
        return xb_fail(err, XB_EINPUT, "figure name '%.40s...' is longer than %d characters", name,
                       XB_PLOT_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return xb_fail(err, XB_EINPUT, "figure name '%s' starts with '%c': start it with a letter or digit",
                       name, name[0]);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '_' || c == '.';
        if (!ok)
            return xb_fail(err, XB_EINPUT,
                           "figure name '%s' has the character '%c' at position %zu: use only letters, digits, "
                           "'-', '_' and '.'",
                           name, c, i + 1);
    }
    return XB_OK;
}

static const char *dir_or_here(const char *dir)
{
    return dir && dir[0] ? dir : ".";
}

/* DIR/NAME.EXT */
static int figure_path(char *out, size_t cap, const char *dir, const char *name, const char *ext, xb_error *err)
{
    int k = snprintf(out, cap, "%s/%s.%s", dir_or_here(dir), name, ext);
    if (k < 0 || (size_t)k >= cap)
        return xb_fail(err, XB_EINPUT, "%s: folder path too long", dir_or_here(dir));
    return XB_OK;
}

/* User text goes on a single line: a newline inside a label would end a gnuplot command or a CSV
 * comment early. */
static void put_text(FILE *fp, const char *s)
{
    char last = '\0';
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        last = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        fputc(last, fp);
    }
    /* gnuplot continues a line that ends in a backslash, comments included, which would swallow the
     * next command; a space after it stops that. */
    if (last == '\\')
        fputc(' ', fp);
}

static void put_comment(FILE *fp, const char *s)
{
    put_text(fp, s);
    fputc('\n', fp);
}

/* A gnuplot single-quoted string: no backslash escapes, no `command` or @macro substitution; only the
 * quote itself is doubled. */
static void put_gp_string(FILE *fp, const char *s)
{
    fputc('\'', fp);
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\'')
            fputs("''", fp);
        else
            fputc((c < 0x20 || c == 0x7f) ? ' ' : (char)c, fp);
    }
    fputc('\'', fp);
}

/* Non-finite values become empty fields: missing to gnuplot and to CSV readers. */
static void put_num(FILE *fp, double v)
{
    if (isfinite(v))
        fprintf(fp, "%.17g", v);
}

/* The opening of every script: what it shows, how to re-run it, and how to read the data. */
static void put_script_head(FILE *fp, const char *name, const char *title, const char *data_desc)
{
    fputs("# ", fp);
    put_text(fp, name);
    if (title && title[0]) {
        fputs(": ", fp);
        put_text(fp, title);
    }
    fputc('\n', fp);
    fprintf(fp, "# Reads %s.csv (%s) and writes %s.svg and %s.png.\n", name, data_desc, name, name);
    fprintf(fp, "# To restyle, edit this file and run it again in its folder:  gnuplot %s.gp\n", name);
    fputs("set encoding utf8\n", fp);
    fputs("set datafile separator ','\n", fp);
}

static void put_label_cmd(FILE *fp, const char *cmd, const char *text)
{
    if (!text || !text[0])
        return;
    fprintf(fp, "%s ", cmd);
    put_gp_string(fp, text);
    fputc('\n', fp);
}

/* Labels are plain text (noenhanced): names such as i_col_A must not turn into subscripts. */
/* xbarsim renders under temporary names, which it passes in xbarsim_svg and xbarsim_png, and renames
 * the pictures into place once both are complete; run by hand, the script writes NAME.svg and NAME.png. */
static void put_svg_terminal(FILE *fp, const char *name)
{
    fputs("\nset terminal svg size 800,560 dynamic background rgb 'white' noenhanced\n", fp);
    fprintf(fp, "if (!exists('xbarsim_svg')) xbarsim_svg = '%s.svg'\n", name);
    fputs("set output xbarsim_svg\n", fp);
}

static void put_png_terminal(FILE *fp, const char *name)
{
    fputs("\nset terminal pngcairo size 1000,700 noenhanced\n", fp);
    fprintf(fp, "if (!exists('xbarsim_png')) xbarsim_png = '%s.png'\n", name);
    fputs("set output xbarsim_png\n", fp);
    fputs("replot\n", fp);
    fputs("unset output\n", fp);
}

/* --- figure building --- */

xb_figure *xb_figure_new(const char *name, const char *title, const char *xlabel, const char *ylabel)
{
    xb_figure *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->name = copy_str(name);
    f->title = copy_str(title);
    f->xlabel = copy_str(xlabel);
    f->ylabel = copy_str(ylabel);
    if (!f->name || !f->title || !f->xlabel || !f->ylabel)
        xb_figure_free(&f);
    return f;
}

static void free_categories(xb_figure *f)
{
    for (size_t i = 0; i < f->n_categories; i++)
        free(f->categories[i]);
    free(f->categories);
    f->categories = NULL;
    f->n_categories = 0;
}

void xb_figure_free(xb_figure **fp)
{
    if (!fp || !*fp)
        return;
    xb_figure *f = *fp;
    for (size_t i = 0; i < f->n_series; i++) {
        series *s = &f->series[i];
        free(s->label);
        free(s->x);
        free(s->y);
        free(s->y_lo);
        free(s->y_hi);
    }
    free(f->series);
    for (size_t i = 0; i < f->n_vlines; i++)
        free(f->vlines[i].label);
    free(f->vlines);
    free_categories(f);
    free(f->name);
    free(f->title);
    free(f->xlabel);
    free(f->ylabel);
    free(f);
    *fp = NULL;
}

void xb_figure_log_axes(xb_figure *f, int logx, int logy)
{
    if (!f)
        return;
    f->logx = logx != 0;
    f->logy = logy != 0;
}

void xb_figure_diagonal(xb_figure *f)
{
    if (f)
        f->diagonal = 1;
}

int xb_figure_x_categories(xb_figure *f, const char *const *labels, size_t n)
{
    if (!f)
        return XB_EINPUT;
    free_categories(f);
    if (n == 0)
        return XB_OK;
    if (!labels)
        return figure_fail(f, XB_EINPUT, "%zu categories but no labels", n);
    f->categories = calloc(n, sizeof *f->categories);
    if (!f->categories)
        return figure_fail(f, XB_ENOMEM, "out of memory for %zu categories", n);
    f->n_categories = n;
    for (size_t i = 0; i < n; i++) {
        f->categories[i] = copy_str(labels[i]);
        if (!f->categories[i]) {
            free_categories(f);
            return figure_fail(f, XB_ENOMEM, "out of memory copying category labels");
        }
    }
    return XB_OK;
}

int xb_figure_add(xb_figure *f, const char *label, xb_plot_style style, const double *x, const double *y,
                  const double *y_lo, const double *y_hi, size_t n)
{
    if (!f)
        return XB_EINPUT;
    const char *shown = label ? label : "";
    if ((int)style < XB_PLOT_ERRORLINES || (int)style > XB_PLOT_STEPS)
        return figure_fail(f, XB_EINPUT, "series '%s': unknown plot style %d", shown, (int)style);
    if (n > 0 && (!x || !y))
        return figure_fail(f, XB_EINPUT, "series '%s': %zu points but no x or y values", shown, n);
    if ((y_lo == NULL) != (y_hi == NULL))
        return figure_fail(f, XB_EINPUT, "series '%s': give both ends of the error bars (y_lo and y_hi) or neither",
                           shown);
    series *grown = realloc(f->series, (f->n_series + 1) * sizeof *grown);
    if (!grown)
        return figure_fail(f, XB_ENOMEM, "out of memory adding series '%s'", shown);
    f->series = grown;
    series s = {.style = style, .n = n, .slot = f->n_slots};
    int ok_x, ok_y, ok_lo, ok_hi;
    s.label = copy_str(label);
    s.x = copy_doubles(x, n, &ok_x);
    s.y = copy_doubles(y, n, &ok_y);
    s.y_lo = copy_doubles(y_lo, n, &ok_lo);
    s.y_hi = copy_doubles(y_hi, n, &ok_hi);
    if (!s.label || !ok_x || !ok_y || !ok_lo || !ok_hi) {
        free(s.label);
        free(s.x);
        free(s.y);
        free(s.y_lo);
        free(s.y_hi);
        return figure_fail(f, XB_ENOMEM, "out of memory copying %zu points of series '%s'", n, shown);
    }
    f->series[f->n_series++] = s;
    f->n_slots++;
    return XB_OK;
}

void xb_figure_same_colour(xb_figure *f)
{
    if (!f || f->n_series < 2 || f->series[f->n_series - 1].slot != f->n_slots - 1)
        return;
    f->series[f->n_series - 1].slot = f->series[f->n_series - 2].slot;
    f->n_slots--;
}

int xb_figure_vline(xb_figure *f, double x, const char *label)
{
    if (!f)
        return XB_EINPUT;
    if (!isfinite(x))
        return figure_fail(f, XB_EINPUT, "vertical marker '%s' at non-finite x", label ? label : "");
    vline *grown = realloc(f->vlines, (f->n_vlines + 1) * sizeof *grown);
    if (!grown)
        return figure_fail(f, XB_ENOMEM, "out of memory adding a vertical marker");
    f->vlines = grown;
    char *copy = copy_str(label);
    if (!copy)
        return figure_fail(f, XB_ENOMEM, "out of memory adding a vertical marker");
    f->vlines[f->n_vlines++] = (vline){x, copy};
    return XB_OK;
}

/* --- figure output --- */

/* Is there any point gnuplot can place? With none, autoscaling fails and gnuplot stops with
 * "x range is invalid", so the script then fixes the ranges instead. */
static int has_drawable_point(const xb_figure *f)
{
    for (size_t k = 0; k < f->n_series; k++) {
        const series *s = &f->series[k];
        for (size_t i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]) && (!f->logx || s->x[i] > 0) && (!f->logy || s->y[i] > 0))
                return 1;
    }
    return 0;
}

static int write_figure_csv(const xb_figure *f, const char *path, xb_error *err)
{
    xb_atomic_file af;
    int rc = xb_atomic_open(&af, path, err);
    if (rc)
        return rc;
    FILE *fp = af.fp;
    fputs("# ", fp);
    put_text(fp, f->name);
    fputs(": ", fp);
    put_text(fp, f->title);
    fputs(" | x: ", fp);
    put_text(fp, f->xlabel);
    fputs(" | y: ", fp);
    put_text(fp, f->ylabel);
    fputs(" | columns x,y,y_lo,y_hi (error bar ends; empty when absent or non-finite) | one block per series, "
          "two blank lines apart\n",
          fp);
    for (size_t i = 0; i < f->n_categories; i++) {
        fprintf(fp, "# x category %zu: ", i);
        put_comment(fp, f->categories[i]);
    }
    for (size_t k = 0; k < f->n_series; k++) {
        const series *s = &f->series[k];
        if (k > 0)
            fputs("\n\n", fp);
        fprintf(fp, "# series %zu: ", k);
        put_comment(fp, s->label);
        /* gnuplot does not count a block without data lines, which would shift every later `index`. */
        if (s->n == 0)
            fputs(",,,\n", fp);
        for (size_t i = 0; i < s->n; i++) {
            put_num(fp, s->x[i]);
            fputc(',', fp);
            put_num(fp, s->y[i]);
            fputc(',', fp);
            if (s->y_lo)
                put_num(fp, s->y_lo[i]);
            fputc(',', fp);
            if (s->y_hi)
                put_num(fp, s->y_hi[i]);
            fputc('\n', fp);
        }
    }
    return xb_atomic_commit(&af, err);
}

static void put_series_clause(FILE *fp, const xb_figure *f, size_t k)
{
    const series *s = &f->series[k];
    int colour = (int)(s->slot % N_COLOURS) + 1;
    int pt = point_types[s->slot % (sizeof point_types / sizeof point_types[0])];
    int bars = s->y_lo != NULL;
    /* A missing error-bar end falls back to y, so the point itself is still drawn. */
    const char *lo_hi = "(valid(3) ? $3 : $2):(valid(4) ? $4 : $2)";
    fprintf(fp, "'%s.csv' index %zu ", f->name, k);
    switch (s->style) {
    case XB_PLOT_ERRORLINES:
        if (bars)
            fprintf(fp, "using 1:2:%s with yerrorlines lc %d lw 1.5 pt %d ps 0.8", lo_hi, colour, pt);
        else
            fprintf(fp, "using 1:2 with linespoints lc %d lw 1.5 pt %d ps 0.8", colour, pt);
        break;
    case XB_PLOT_LINES:
        if (bars) {
            fprintf(fp, "using 1:%s with filledcurves fillstyle transparent solid 0.2 noborder lc %d notitle, \\\n"
                        "     '%s.csv' index %zu ",
                    lo_hi, colour, f->name, k);
        }
        fprintf(fp, "using 1:2 with lines lc %d lw 2", colour);
        break;
    case XB_PLOT_POINTS:
        if (bars)
            fprintf(fp, "using 1:2:%s with yerrorbars lc %d pt %d ps 0.7", lo_hi, colour, pt);
        else
            fprintf(fp, "using 1:2 with points lc %d pt %d ps 0.7", colour, pt);
        break;
    case XB_PLOT_STEPS:
        fprintf(fp, "using 1:2 with steps lc %d lw 1.5", colour);
        break;
    }
    fputs(" title ", fp);
    put_gp_string(fp, s->label);
}

static int write_figure_script(const xb_figure *f, const char *path, xb_error *err)
{
    xb_atomic_file af;
    int rc = xb_atomic_open(&af, path, err);
    if (rc)
        return rc;
    FILE *fp = af.fp;
    put_script_head(fp, f->name, f->title,
                    "columns x,y,y_lo,y_hi; series K is data block K, selected with index K");
    put_label_cmd(fp, "set title", f->title);
    put_label_cmd(fp, "set xlabel", f->xlabel);
    put_label_cmd(fp, "set ylabel", f->ylabel);
    fputs("set grid\n", fp);
    fputs("set key outside right top\n", fp);
    if (f->logx)
        fputs("set logscale x\n", fp);
    if (f->logy)
        fputs("set logscale y\n", fp);
    /* A margin keeps points and error bars at the ends off the frame; log axes already end on whole
     * decades, where a margin would add a decade. */
    fprintf(fp, "set offsets graph %s, graph %s, graph %s, graph %s\n", f->logx ? "0" : "0.02",
            f->logx ? "0" : "0.02", f->logy ? "0" : "0.05", f->logy ? "0" : "0.05");
    if (f->n_categories) {
        size_t longest = 0;
        for (size_t i = 0; i < f->n_categories; i++)
            if (strlen(f->categories[i]) > longest)
                longest = strlen(f->categories[i]);
        fputs("# Categorical x: the data's x values index these labels.\n", fp);
        fprintf(fp, "set xrange [-0.5:%zu.5]\n", f->n_categories - 1);
        fputs("set xtics (", fp);
        for (size_t i = 0; i < f->n_categories; i++) {
            if (i > 0)
                fputs(", ", fp);
            put_gp_string(fp, f->categories[i]);
            fprintf(fp, " %zu", i);
        }
        fputs(")", fp);
        /* Long or many labels would run into each other side by side. */
        if (longest > 8 || f->n_categories > 10)
            fputs(" rotate by 30 right", fp);
        fputs("\n", fp);
    }
    for (size_t i = 0; i < f->n_vlines; i++) {
        const vline *v = &f->vlines[i];
        fprintf(fp, "set arrow from %.17g, graph 0 to %.17g, graph 1 nohead dashtype 2 lc rgb 'gray30'\n", v->x,
                v->x);
        if (v->label[0]) {
            /* Labels of several markers are staggered so they do not print over each other. */
            fputs("set label ", fp);
            put_gp_string(fp, v->label);
            fprintf(fp, " at %.17g, graph %.2f left offset character 0.5, 0\n", v->x, 0.95 - 0.05 * (double)(i % 10));
        }
    }
    if (!has_drawable_point(f)) {
        fputs("# No point can be drawn (all non-finite, or not positive on a log axis): fixed ranges let\n"
              "# gnuplot draw the empty frame instead of stopping with 'x range is invalid'.\n",
              fp);
        if (!f->n_categories)
            fprintf(fp, "set xrange [%s]\n", f->logx ? "1:10" : "0:1");
        fprintf(fp, "set yrange [%s]\n", f->logy ? "1:10" : "0:1");
        fputs("set label 'no data points to draw' at graph 0.5, graph 0.5 center\n", fp);
    }
    put_svg_terminal(fp, f->name);
    fputs("plot ", fp);
    for (size_t k = 0; k < f->n_series; k++) {
        if (k > 0)
            fputs(", \\\n     ", fp);
        put_series_clause(fp, f, k);
    }
    if (f->diagonal)
        fputs(", \\\n     x with lines dashtype 2 lc rgb 'gray40' title 'y = x'", fp);
    fputs("\n", fp);
    put_png_terminal(fp, f->name);
    return xb_atomic_commit(&af, err);
}

/* Checks that need the whole figure, made before anything is written. */
static int check_figure(const xb_figure *f, xb_error *err)
{
    if (f->first_error.code)
        return xb_fail(err, f->first_error.code, "%s", f->first_error.msg);
    if (f->n_series == 0)
        return xb_fail(err, XB_EINPUT, "figure %s has no series to plot", f->name);
    if (f->n_categories && f->logx)
        return xb_fail(err, XB_EINPUT, "figure %s: a categorical x axis cannot be logarithmic", f->name);
    if (f->n_categories) {
        for (size_t k = 0; k < f->n_series; k++) {
            const series *s = &f->series[k];
            for (size_t i = 0; i < s->n; i++) {
                double x = s->x[i];
                if (isfinite(x) && (x != floor(x) || x < 0 || x >= (double)f->n_categories))
                    return xb_fail(err, XB_EINPUT,
                                   "figure %s, series '%s', point %zu: x = %.17g is not a category index 0..%zu",
                                   f->name, s->label, i, x, f->n_categories - 1);
            }
        }
    }
    return XB_OK;
}

int xb_figure_write(const xb_figure *f, const char *dir, int render, xb_error *err)
{
    if (!f)
        return xb_fail(err, XB_EINPUT, "no figure to write");
    int rc = check_name(f->name, err);
    if (!rc)
        rc = check_figure(f, err);
    if (rc)
        return rc;
    char csv[4200], gp[4200];
    if ((rc = figure_path(csv, sizeof csv, dir, f->name, "csv", err)) ||
        (rc = figure_path(gp, sizeof gp, dir, f->name, "gp", err)))
        return rc;
    if ((rc = xb_mkdir_p(dir_or_here(dir), err)) || (rc = write_figure_csv(f, csv, err)) ||
        (rc = write_figure_script(f, gp, err)))
        return rc;
    return render ? xb_plot_render(dir, f->name, err) : XB_OK;
}

/* --- heat maps --- */

/* A tic step of 1, 2, 5, 10, 20, ... giving at most about ten labels on an axis of n cells. */
static size_t tic_step(size_t n)
{
    size_t step = 1;
    static const size_t mult[] = {2, 5, 10};
    for (size_t base = 1; (n - 1) / step > 10; base *= 10)
        for (size_t m = 0; m < 3 && (n - 1) / step > 10; m++)
            step = base * mult[m];
    return step;
}

int xb_heatmap_write(const char *dir, const char *name, const char *title, const char *xlabel, const char *ylabel,
                     const char *cblabel, const double *z, size_t rows, size_t cols, int render, xb_error *err)
{
    int rc = check_name(name, err);
    if (rc)
        return rc;
    if (rows == 0 || cols == 0 || !z)
        return xb_fail(err, XB_EINPUT, "heat map %s: empty matrix (%zu x %zu)", name, rows, cols);
    char csv[4200], gp[4200];
    if ((rc = figure_path(csv, sizeof csv, dir, name, "csv", err)) ||
        (rc = figure_path(gp, sizeof gp, dir, name, "gp", err)) || (rc = xb_mkdir_p(dir_or_here(dir), err)))
        return rc;

    xb_atomic_file af;
    if ((rc = xb_atomic_open(&af, csv, err)))
        return rc;
    fputs("# ", af.fp);
    put_text(af.fp, name);
    fputs(": ", af.fp);
    put_text(af.fp, title);
    fprintf(af.fp, " | %zu rows (y: ", rows);
    put_text(af.fp, ylabel);
    fprintf(af.fp, "; row 0 first) x %zu columns (x: ", cols);
    put_text(af.fp, xlabel);
    fputs(") | values: ", af.fp);
    put_text(af.fp, cblabel);
    fputs(" | non-finite values are NaN\n", af.fp);
    int finite_seen = 0;
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            double v = z[r * cols + c];
            if (c > 0)
                fputc(',', af.fp);
            /* NaN rather than an empty field: a one-column row would otherwise be a blank line, which
             * gnuplot reads as the end of the matrix. */
            if (isfinite(v)) {
                fprintf(af.fp, "%.17g", v);
                finite_seen = 1;
            } else {
                fputs("NaN", af.fp);
            }
        }
        fputc('\n', af.fp);
    }
    if ((rc = xb_atomic_commit(&af, err)))
        return rc;

    if ((rc = xb_atomic_open(&af, gp, err)))
        return rc;
    FILE *fp = af.fp;
    char desc[160];
    snprintf(desc, sizeof desc, "a %zu x %zu matrix, one line per row, row 0 first", rows, cols);
    put_script_head(fp, name, title, desc);
    put_label_cmd(fp, "set title", title);
    put_label_cmd(fp, "set xlabel", xlabel);
    put_label_cmd(fp, "set ylabel", ylabel);
    if (cblabel && cblabel[0]) {
        /* gnuplot leaves no room for the colour-box label beside wide tic labels: move it out and
         * widen the right margin to hold it. */
        fputs("set cblabel ", fp);
        put_gp_string(fp, cblabel);
        fputs(" offset character 3, 0\nset rmargin 18\n", fp);
    }
    fputs("# Row 0 at the top, like the array layout: the y axis runs downwards.\n", fp);
    fprintf(fp, "set xrange [-0.5:%zu.5]\n", cols - 1);
    fprintf(fp, "set yrange [%zu.5:-0.5]\n", rows - 1);
    fprintf(fp, "set xtics 0, %zu\n", tic_step(cols));
    fprintf(fp, "set ytics 0, %zu\n", tic_step(rows));
    fputs("set tics out\n", fp);
    /* Conductances are ~1e-6 S: gnuplot's default colour-box format would print them all as 0.00000. */
    fputs("set format cb '%.3g'\n", fp);
    /* Square cells when the shape allows it, so a tile looks like the array; a long thin matrix
     * (784 inputs x 100 outputs) fills the frame instead of becoming a sliver. */
    if (rows <= 4 * cols && cols <= 4 * rows)
        fputs("set size ratio -1\n", fp);
    fputs("# viridis: perceptually uniform and readable in grey scale\n", fp);
    fputs("set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')\n", fp);
    if (!finite_seen)
        fputs("# No finite value: a fixed colour range stands in for the autoscaled one.\nset cbrange [0:1]\n", fp);
    put_svg_terminal(fp, name);
    fprintf(fp, "plot '%s.csv' matrix with image notitle\n", name);
    put_png_terminal(fp, name);
    if ((rc = xb_atomic_commit(&af, err)))
        return rc;
    return render ? xb_plot_render(dir, name, err) : XB_OK;
}

/* --- running gnuplot --- */

/* Keep the last OUTPUT_KEEP bytes of what gnuplot printed; a chunk is always shorter than that. */
static void keep_tail(char *buf, size_t *len, const char *chunk, size_t k)
{
    if (*len + k > OUTPUT_KEEP) {
        size_t drop = *len + k - OUTPUT_KEEP;
        memmove(buf, buf + drop, *len - drop);
        *len -= drop;
    }
    memcpy(buf + *len, chunk, k);
    *len += k;
}

static void child_say(const char *msg)
{
    ssize_t w = write(2, msg, strlen(msg));
    (void)w;
}

/* Run gnuplot with argv in dir (NULL: the current folder), with stdin from /dev/null so that it can
 * never wait for input. *out (malloc'd, NUL-terminated) gets the tail of its stdout and stderr;
 * *exit_code its exit status, or -1 when it was killed or timed out. */
static int run_gnuplot(const char *dir, char *const argv[], char **out, size_t *out_len, int *exit_code,
                       xb_error *err)
{
    *out = NULL;
    *out_len = 0;
    *exit_code = -1;
    char *buf = malloc(OUTPUT_KEEP + 1);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "out of memory for gnuplot's output");
    size_t len = 0;
    int fds[2];
    /* Close-on-exec, so that processes started by other threads do not hold the pipe open. */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        free(buf);
        return xb_fail(err, XB_ERUNTIME, "cannot create a pipe for gnuplot: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        free(buf);
        return xb_fail(err, XB_ERUNTIME, "cannot start gnuplot: %s", strerror(saved));
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        if (dir && chdir(dir) != 0) {
            child_say("cannot enter the figure folder\n");
            _exit(126);
        }
        execvp("gnuplot", argv);
        child_say("cannot start gnuplot: it is not on PATH (install gnuplot-nox) or cannot be executed\n");
        _exit(127);
    }
    close(fds[1]);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int timed_out = 0;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0) {
            char chunk[4096]; /* < OUTPUT_KEEP, as keep_tail assumes */
            ssize_t k = read(fds[0], chunk, sizeof chunk);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break; /* end of output: gnuplot has exited or is about to */
            keep_tail(buf, &len, chunk, (size_t)k);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > RENDER_TIMEOUT_S) {
            kill(pid, SIGKILL);
            timed_out = 1;
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    if (timed_out)
        return xb_fail(err, XB_ERUNTIME, "gnuplot did not finish within %d s and was stopped", RENDER_TIMEOUT_S);
    if (WIFEXITED(status))
        *exit_code = WEXITSTATUS(status);
    return XB_OK;
}

/* gnuplot's message in one line: its last line that is not blank and not the ^ pointing into the
 * command (that command, above it, goes to the log). */
static void last_message_line(const char *out, char *line, size_t cap)
{
    line[0] = '\0';
    const char *end = out + strlen(out);
    while (end > out) {
        const char *start = end;
        while (start > out && start[-1] != '\n')
            start--;
        int useful = 0;
        for (const char *p = start; p < end; p++)
            if (*p != ' ' && *p != '\t' && *p != '^' && *p != '\n' && *p != '\r')
                useful = 1;
        if (useful) {
            size_t n = (size_t)(end - start);
            while (n > 0 && (start[n - 1] == '\n' || start[n - 1] == '\r'))
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, start, n);
            line[n] = '\0';
            return;
        }
        end = start > out ? start - 1 : out;
    }
}

static int write_log(const char *path, const char *text, size_t len, xb_error *err)
{
    xb_atomic_file af;
    int rc = xb_atomic_open(&af, path, err);
    if (rc)
        return rc;
    fwrite(text, 1, len, af.fp);
    return xb_atomic_commit(&af, err);
}

/* Is the file a whole picture? An SVG ends with </svg>, a PNG with its IEND chunk: gnuplot on a full
 * disk can exit 0 with a truncated file. */
static int picture_complete(const char *path, int png)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    unsigned char head[8] = {0}, tail[64];
    size_t nh = fread(head, 1, sizeof head, fp);
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    size_t nt = 0;
    if (size > 0 && fseek(fp, size > (long)sizeof tail ? size - (long)sizeof tail : 0, SEEK_SET) == 0)
        nt = fread(tail, 1, sizeof tail, fp);
    fclose(fp);
    if (png) {
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
        return nh == 8 && !memcmp(head, sig, 8) && nt >= 12 && !memcmp(tail + nt - 12, iend, 12);
    }
    while (nt > 0 && (tail[nt - 1] == '\n' || tail[nt - 1] == '\r' || tail[nt - 1] == ' ' || tail[nt - 1] == '\t'))
        nt--;
    return nh > 0 && nt >= 6 && !memcmp(tail + nt - 6, "</svg>", 6);
}

int xb_plot_render(const char *dir, const char *name, xb_error *err)
{
    int rc = check_name(name, err);
    if (rc)
        return rc;
    char gp[4200], svg[4200], png[4200], log[4200], svg_tmp[4300], png_tmp[4300];
    if ((rc = figure_path(gp, sizeof gp, dir, name, "gp", err)) ||
        (rc = figure_path(svg, sizeof svg, dir, name, "svg", err)) ||
        (rc = figure_path(png, sizeof png, dir, name, "png", err)) ||
        (rc = figure_path(log, sizeof log, dir, name, "log", err)))
        return rc;
    if (!xb_is_file(gp))
        return xb_fail(err, XB_EINPUT, "%s does not exist", gp);
    /* gnuplot draws to temporaries in the same folder (the script's xbarsim_svg and xbarsim_png),
     * renamed into place only when it succeeded and both pictures are complete. Old pictures go
     * first, so that a picture present afterwards is always this run's. */
    long pid = (long)getpid();
    snprintf(svg_tmp, sizeof svg_tmp, "%s.tmp.%ld", svg, pid);
    snprintf(png_tmp, sizeof png_tmp, "%s.tmp.%ld", png, pid);
    remove(svg);
    remove(png);
    xb_cleanup_track_file(svg_tmp);
    xb_cleanup_track_file(png_tmp);
    char prog[] = "gnuplot", e[] = "-e", script[XB_PLOT_NAME_MAX + 8], vars[2 * XB_PLOT_NAME_MAX + 96];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(vars, sizeof vars, "xbarsim_svg = '%s.svg.tmp.%ld'; xbarsim_png = '%s.png.tmp.%ld'", name, pid, name,
             pid);
    char *argv[] = {prog, e, vars, script, NULL};
    char *out = NULL;
    size_t out_len = 0;
    int code = -1;
    rc = run_gnuplot(dir_or_here(dir), argv, &out, &out_len, &code, err);
    if (rc == XB_ENOMEM)
        goto finish;
    /* The log holds gnuplot's warnings (points skipped, ranges adjusted) even when it succeeds; an old
     * log would describe an older run. */
    xb_error log_err = {0}; /* a log that cannot be written does not make the pictures wrong */
    if (out_len > 0)
        write_log(log, out, out_len, &log_err);
    else
        remove(log);
    if (!rc && code != 0) {
        char line[700];
        last_message_line(out, line, sizeof line);
        if (code == 126 || code == 127) /* our child's own exits: gnuplot never ran */
            rc = xb_fail(err, XB_ERUNTIME, "cannot render %s: %s", gp, line[0] ? line : "gnuplot did not start");
        else
            rc = xb_fail(err, XB_ERUNTIME, "gnuplot failed on %s (exit status %d): %s%s%s", gp, code,
                         line[0] ? line : "no message", out_len ? "; its full output is in " : "",
                         out_len ? log : "");
    }
    /* A hand-edited script may name its outputs itself: then it wrote the pictures in place. */
    const char *got_svg = xb_is_file(svg_tmp) ? svg_tmp : svg, *got_png = xb_is_file(png_tmp) ? png_tmp : png;
    if (!rc && (!xb_is_file(got_svg) || !xb_is_file(got_png)))
        rc = xb_fail(err, XB_ERUNTIME, "gnuplot ran %s but did not write both %s.svg and %s.png", gp, name, name);
    if (!rc && (!picture_complete(got_svg, 0) || !picture_complete(got_png, 1)))
        rc = xb_fail(err, XB_ERUNTIME, "gnuplot ran %s but %s is incomplete (a full disk?); no picture was kept", gp,
                     !picture_complete(got_svg, 0) ? got_svg : got_png);
    if (!rc && got_svg == svg_tmp && rename(svg_tmp, svg) != 0)
        rc = xb_fail(err, XB_ERUNTIME, "cannot rename %s to %s: %s", svg_tmp, svg, strerror(errno));
    if (!rc && got_png == png_tmp && rename(png_tmp, png) != 0)
        rc = xb_fail(err, XB_ERUNTIME, "cannot rename %s to %s: %s", png_tmp, png, strerror(errno));
finish:
    remove(svg_tmp);
    remove(png_tmp);
    xb_cleanup_untrack_file(svg_tmp);
    xb_cleanup_untrack_file(png_tmp);
    if (rc) {
        remove(svg);
        remove(png);
    }
    free(out);
    return rc;
}

int xb_plot_can_render(void)
{
    /* Checked once: starting gnuplot costs tens of milliseconds. Two threads racing here both compute
     * the same answer. */
    static int cached = -1;
    if (cached < 0) {
        char prog[] = "gnuplot", e[] = "-e", cmd[] = "set terminal svg; set terminal pngcairo";
        char *argv[] = {prog, e, cmd, NULL};
        char *out = NULL;
        size_t len = 0;
        int code = -1;
        int rc = run_gnuplot(NULL, argv, &out, &len, &code, NULL);
        free(out);
        cached = rc == XB_OK && code == 0;
    }
    return cached;
}
