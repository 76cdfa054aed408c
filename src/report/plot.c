// plot: figures and heat maps for experiment results: their data CSV and gnuplot script (plot_render.c draws them)
#define _GNU_SOURCE
#include "plot_private.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* Colours and point shapes cycle so that neighbouring series differ in both (colour-blind readers). */
#define N_COLOURS 8
static const int point_types[] = {7, 5, 9, 11, 13, 15, 6, 4};

typedef struct series {
    char *label;
    xb_plot_style style;
    double *x, *y, *y_lo, *y_hi; /* y_lo and y_hi are NULL when absent */
    size_t n;
    size_t slot;                 /* picks the colour and point type */
    int dashed;                  /* lines and steps drawn dashed */
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
int plot_check_name(const char *name, xb_error *err)
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

const char *plot_dir_or_here(const char *dir)
{
    return dir && dir[0] ? dir : ".";
}

/* DIR/NAME.EXT */
int plot_figure_path(char *out, size_t cap, const char *dir, const char *name, const char *ext, xb_error *err)
{
    int k = snprintf(out, cap, "%s/%s.%s", plot_dir_or_here(dir), name, ext);
    if (k < 0 || (size_t)k >= cap)
        return xb_fail(err, XB_EINPUT, "%s: folder path too long", plot_dir_or_here(dir));
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

void xb_figure_dashed(xb_figure *f)
{
    if (f && f->n_series)
        f->series[f->n_series - 1].dashed = 1;
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
        fprintf(fp, "using 1:2 with lines lc %d lw 2%s", colour, s->dashed ? " dashtype 2" : "");
        break;
    case XB_PLOT_POINTS:
        if (bars)
            fprintf(fp, "using 1:2:%s with yerrorbars lc %d pt %d ps 0.7", lo_hi, colour, pt);
        else
            fprintf(fp, "using 1:2 with points lc %d pt %d ps 0.7", colour, pt);
        break;
    case XB_PLOT_STEPS:
        fprintf(fp, "using 1:2 with steps lc %d lw 1.5%s", colour, s->dashed ? " dashtype 2" : "");
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
    int rc = plot_check_name(f->name, err);
    if (!rc)
        rc = check_figure(f, err);
    if (rc)
        return rc;
    char csv[4200], gp[4200];
    if ((rc = plot_figure_path(csv, sizeof csv, dir, f->name, "csv", err)) ||
        (rc = plot_figure_path(gp, sizeof gp, dir, f->name, "gp", err)))
        return rc;
    if ((rc = xb_mkdir_p(plot_dir_or_here(dir), err)) || (rc = write_figure_csv(f, csv, err)) ||
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
    int rc = plot_check_name(name, err);
    if (rc)
        return rc;
    if (rows == 0 || cols == 0 || !z)
        return xb_fail(err, XB_EINPUT, "heat map %s: empty matrix (%zu x %zu)", name, rows, cols);
    char csv[4200], gp[4200];
    if ((rc = plot_figure_path(csv, sizeof csv, dir, name, "csv", err)) ||
        (rc = plot_figure_path(gp, sizeof gp, dir, name, "gp", err)) || (rc = xb_mkdir_p(plot_dir_or_here(dir), err)))
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
