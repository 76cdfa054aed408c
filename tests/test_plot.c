// test_plot: figure and heat-map files (CSV read back exactly, script contents, rendered SVG/PNG),
// bad names, remembered add errors and gnuplot's failures
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "fileio.h"
#include "plot.h"

#define MAX_ROWS 512
#define MAX_BLOCKS 16

static char tmp_root[] = "/tmp/xb_test_plot.XXXXXX";
static int can_render;

/* --- reading files back --- */

static char *slurp(const char *path, size_t *len)
{
    unsigned char *data = NULL;
    size_t n = 0;
    xb_error err = {0};
    if (xb_read_file(path, 64u << 20, &data, &n, &err) != XB_OK)
        return NULL;
    if (len)
        *len = n;
    return (char *)data;
}

static void path_of(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    snprintf(out, cap, "%s/%s.%s", dir, name, ext);
}

/* One CSV data row: up to four fields, each present (a number) or empty. */
typedef struct row {
    double v[4];
    int has[4];
    int n_fields;
} row;

typedef struct parsed {
    row rows[MAX_ROWS];
    size_t n_rows;
    size_t block_start[MAX_BLOCKS + 1]; /* rows of block b: block_start[b] .. block_start[b+1]-1 */
    size_t n_blocks;
    char comments[MAX_ROWS][256];
    size_t n_comments;
} parsed;

/* Split a figure CSV the way gnuplot does: '#' lines are comments, two blank lines end a block. */
static int parse_figure_csv(const char *path, parsed *p)
{
    memset(p, 0, sizeof *p);
    char *text = slurp(path, NULL);
    if (!text)
        return -1;
    int blanks = 0, any_row = 0;
    /* strtok would merge blank lines, which mark the blocks, so lines are cut by hand. */
    char *line = text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (line[0] == '#') {
            if (p->n_comments < MAX_ROWS)
                snprintf(p->comments[p->n_comments++], sizeof p->comments[0], "%s", line);
        } else if (line[0] == '\0') {
            blanks++;
        } else {
            if (!any_row || blanks >= 2) {
                if (p->n_blocks == MAX_BLOCKS)
                    break;
                p->block_start[p->n_blocks++] = p->n_rows;
            }
            blanks = 0;
            any_row = 1;
            if (p->n_rows == MAX_ROWS)
                break;
            row *r = &p->rows[p->n_rows++];
            char *field = line;
            for (int k = 0; k < 4 && field; k++) {
                char *comma = strchr(field, ',');
                if (comma)
                    *comma = '\0';
                r->n_fields++;
                if (field[0]) {
                    char *end;
                    r->v[k] = strtod(field, &end);
                    r->has[k] = *end == '\0';
                    if (!r->has[k])
                        r->n_fields = -100; /* a field that is not a number fails the field count */
                }
                field = comma ? comma + 1 : NULL;
            }
            if (field)
                r->n_fields = -100; /* more than four fields */
        }
        line = nl ? nl + 1 : NULL;
    }
    p->block_start[p->n_blocks] = p->n_rows;
    free(text);
    return 0;
}

/* A value given as v must come back exactly; a non-finite one as an empty field. */
static void check_field(const row *r, int k, double v, const char *what, size_t i)
{
    if (isfinite(v))
        CHECK(r->has[k] && r->v[k] == v, "%s row %zu field %d: got %s%.17g want %.17g", what, i, k,
              r->has[k] ? "" : "(empty) ", r->v[k], v);
    else
        CHECK(!r->has[k], "%s row %zu field %d: non-finite value written as %.17g, want an empty field", what, i, k,
              r->v[k]);
}

static void check_block(const parsed *p, size_t b, const double *x, const double *y, const double *lo,
                        const double *hi, size_t n, const char *what)
{
    CHECK(b < p->n_blocks, "%s: block %zu missing (%zu blocks)", what, b, p->n_blocks);
    if (b >= p->n_blocks)
        return;
    size_t got = p->block_start[b + 1] - p->block_start[b];
    CHECK(got == (n ? n : 1), "%s: %zu rows, want %zu", what, got, n ? n : 1);
    if (got != (n ? n : 1))
        return;
    for (size_t i = 0; i < n; i++) {
        const row *r = &p->rows[p->block_start[b] + i];
        CHECK(r->n_fields == 4, "%s row %zu: %d fields, want 4", what, i, r->n_fields);
        check_field(r, 0, x[i], what, i);
        check_field(r, 1, y[i], what, i);
        if (lo) {
            check_field(r, 2, lo[i], what, i);
            check_field(r, 3, hi[i], what, i);
        } else {
            CHECK(!r->has[2] && !r->has[3], "%s row %zu: error bar fields should be empty", what, i);
        }
    }
    if (n == 0) {
        const row *r = &p->rows[p->block_start[b]];
        CHECK(r->n_fields == 4 && !r->has[0] && !r->has[1] && !r->has[2] && !r->has[3],
              "%s: an empty series should be one row of empty fields", what);
    }
}

static int has_comment(const parsed *p, const char *want)
{
    for (size_t i = 0; i < p->n_comments; i++)
        if (strcmp(p->comments[i], want) == 0)
            return 1;
    return 0;
}

static int file_contains(const char *path, const char *needle)
{
    char *text = slurp(path, NULL);
    int found = text && strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* The script names its data and both pictures, and tells how to re-run it. */
static void check_script(const char *dir, const char *name)
{
    char gp[4200], want[512];
    path_of(gp, sizeof gp, dir, name, "gp");
    char *text = slurp(gp, NULL);
    CHECK(text != NULL, "%s not written", gp);
    if (!text)
        return;
    CHECK(text[0] == '#', "%s should start with a comment", gp);
    snprintf(want, sizeof want, "'%s.csv'", name);
    CHECK(strstr(text, want) != NULL, "%s does not read %s", gp, want);
    /* Run by hand it writes NAME.svg and NAME.png; xbarsim passes temporary names instead. */
    snprintf(want, sizeof want, "if (!exists('xbarsim_svg')) xbarsim_svg = '%s.svg'\nset output xbarsim_svg", name);
    CHECK(strstr(text, want) != NULL, "%s lacks: %s", gp, want);
    snprintf(want, sizeof want, "if (!exists('xbarsim_png')) xbarsim_png = '%s.png'\nset output xbarsim_png", name);
    CHECK(strstr(text, want) != NULL, "%s lacks: %s", gp, want);
    snprintf(want, sizeof want, "gnuplot %s.gp", name);
    char *found = strstr(text, want);
    CHECK(found != NULL && found < text + 400, "%s: the opening comment should say how to re-run it (%s)", gp,
          want);
    CHECK(strstr(text, "set datafile separator ','") != NULL, "%s: no CSV separator", gp);
    /* gnuplot joins a line ending in a backslash to the next, comments included: only the plot
     * command's own continuations may end that way. */
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > 0 && line[n - 1] == '\\')
            CHECK(n >= 3 && line[n - 2] == ' ' && line[n - 3] == ',', "%s: a line ends in a backslash: %.*s", gp,
                  (int)n, line);
        line += n + (nl != NULL);
    }
    CHECK(strstr(text, "set terminal svg size 800,560") != NULL, "%s: no svg terminal", gp);
    CHECK(strstr(text, "set terminal pngcairo size 1000,700") != NULL, "%s: no pngcairo terminal", gp);
    free(text);
}

/* With gnuplot present, both pictures exist and look like an SVG and a PNG. */
static void check_rendered(const char *dir, const char *name)
{
    if (!can_render)
        return;
    char svg[4200], png[4200];
    path_of(svg, sizeof svg, dir, name, "svg");
    path_of(png, sizeof png, dir, name, "png");
    size_t n = 0;
    char *text = slurp(svg, &n);
    CHECK(text != NULL, "%s not rendered", svg);
    if (text) {
        const char *p = text;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
        CHECK(strncmp(p, "<?xml", 5) == 0 || strncmp(p, "<svg", 4) == 0, "%s does not start like an SVG", svg);
        CHECK(strstr(text, "</svg>") != NULL, "%s is not a complete SVG", svg);
        free(text);
    }
    char *img = slurp(png, &n);
    CHECK(img != NULL, "%s not rendered", png);
    if (img) {
        static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
        CHECK(n >= 8 && memcmp(img, magic, 8) == 0, "%s lacks the PNG signature", png);
        CHECK(n > 1024, "%s is only %zu bytes", png, n);
        free(img);
    }
}

/* "Nothing written": the folder is absent, or empty (and then removed, so the next check starts clean). */
static int is_empty_dir_or_absent(const char *dir)
{
    return !xb_is_dir(dir) || rmdir(dir) == 0;
}

/* --- the figures --- */

static void test_errorbars(const char *dir)
{
    const char *name = "acc_vs_noise";
    double x[] = {0, 0.05, 0.1, 1.0 / 3.0, 0.5};
    double y0[] = {0.98, 0.9712345678901234, 0.9, 0.7, 0.31};
    double lo0[] = {0.97, 0.96, 0.88, 0.65, 0.25};
    double hi0[] = {0.99, 0.98, 0.92, 0.75, 0.37};
    double y1[] = {0.97, NAN, 0.85, 0.6, 1e-300};
    double lo1[] = {0.96, NAN, 0.8, INFINITY, 0};
    double hi1[] = {0.98, NAN, 0.9, 0.7, 2e-300};
    double xf[] = {0, 0.125, 0.25, 0.375, 0.5};
    double yf[] = {0.985, 0.95, 0.85, 0.62, 0.3};
    double lof[] = {0.975, 0.93, 0.82, 0.58, 0.26};
    double hif[] = {0.995, 0.97, 0.88, 0.66, 0.34};
    xb_figure *f = xb_figure_new(name, "Accuracy against read noise", "sigma_rel (1)", "accuracy (1)");
    CHECK(f != NULL, "figure_new");
    CHECK(xb_figure_add(f, "behavioral", XB_PLOT_ERRORLINES, x, y0, lo0, hi0, 5) == XB_OK, "add 0");
    CHECK(xb_figure_add(f, "circuit (SPICE) it's a_b^c @x", XB_PLOT_ERRORLINES, x, y1, lo1, hi1, 5) == XB_OK,
          "add 1");
    CHECK(xb_figure_add(f, "logistic fit", XB_PLOT_LINES, xf, yf, lof, hif, 5) == XB_OK, "add fit");
    xb_figure_same_colour(f); /* the fit beside its data */
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    CHECK(f == NULL, "free should set the pointer to NULL");
    xb_figure_free(&f); /* a second free is harmless */

    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    static parsed p;
    CHECK(parse_figure_csv(csv, &p) == 0, "cannot read %s", csv);
    CHECK(p.n_blocks == 3, "%zu blocks, want 3", p.n_blocks);
    check_block(&p, 0, x, y0, lo0, hi0, 5, "errorbars series 0");
    check_block(&p, 1, x, y1, lo1, hi1, 5, "errorbars series 1");
    check_block(&p, 2, xf, yf, lof, hif, 5, "errorbars fitted band");
    CHECK(has_comment(&p, "# series 0: behavioral"), "series 0 comment missing");
    CHECK(has_comment(&p, "# series 1: circuit (SPICE) it's a_b^c @x"), "series 1 comment missing");
    CHECK(p.n_comments >= 1 && strncmp(p.comments[0], "# acc_vs_noise: Accuracy against read noise", 43) == 0,
          "header comment: %s", p.n_comments ? p.comments[0] : "(none)");
    check_script(dir, name);
    /* The quote is doubled, and the title is one gnuplot string. */
    CHECK(file_contains(gp, "title 'circuit (SPICE) it''s a_b^c @x'"), "escaped series title missing");
    CHECK(file_contains(gp, "index 1 using 1:2:"), "series 1 should be drawn from block 1");
    CHECK(file_contains(gp, "with yerrorlines"), "error-bar series should use yerrorlines");
    CHECK(file_contains(gp, "index 2 using 1:(valid(3) ? $3 : $2):(valid(4) ? $4 : $2) with filledcurves"),
          "a fitted line with bounds should have a band");
    CHECK(file_contains(gp, "with lines lc 2 lw 2"), "the fit should take series 1's colour (lc 2)");
    CHECK(file_contains(gp, "with yerrorlines lc 2 "), "series 1 keeps colour 2");
    CHECK(file_contains(gp, "set xlabel 'sigma_rel (1)'"), "x label missing");
    CHECK(file_contains(gp, "noenhanced"), "labels should be plain text");
    check_rendered(dir, name);
    if (can_render) {
        char svg[4200];
        path_of(svg, sizeof svg, dir, name, "svg");
        /* Enhanced text would have split a_b^c into sub- and superscript pieces. */
        CHECK(file_contains(svg, "a_b^c"), "%s: the label was not drawn as plain text", svg);
        CHECK(file_contains(svg, "sigma_rel (1)"), "%s: the x label is missing", svg);
    }
}

static void test_log_axes(const char *dir)
{
    const char *name = "noise_sweep.log";
    double x[] = {1e-3, 1e-2, 1e-1, 1};
    double y[] = {1e-9, 3e-8, 1e-6, 2.5e-5};
    double fit[] = {1.1e-9, 2.9e-8, 1.05e-6, 2.4e-5};
    xb_figure *f = xb_figure_new(name, "Error against noise in C:\\", "sigma (1)", "mean |dI| (A)");
    xb_figure_log_axes(f, 1, 1);
    CHECK(xb_figure_add(f, "measured", XB_PLOT_POINTS, x, y, NULL, NULL, 4) == XB_OK, "add");
    CHECK(xb_figure_add(f, "fit", XB_PLOT_LINES, x, fit, NULL, NULL, 4) == XB_OK, "add fit");
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    static parsed p;
    CHECK(parse_figure_csv(csv, &p) == 0, "cannot read %s", csv);
    CHECK(p.n_blocks == 2, "%zu blocks, want 2", p.n_blocks);
    check_block(&p, 0, x, y, NULL, NULL, 4, "log series 0");
    check_block(&p, 1, x, fit, NULL, NULL, 4, "log series 1");
    check_script(dir, name);
    CHECK(file_contains(gp, "set logscale x"), "no log x");
    CHECK(file_contains(gp, "set logscale y"), "no log y");
    CHECK(file_contains(gp, "with points"), "scatter style missing");
    CHECK(file_contains(gp, "with lines"), "line style missing");
    check_rendered(dir, name);
}

static void test_categorical(const char *dir)
{
    const char *name = "backends";
    const char *labels[] = {"float", "int8_q", "4-bit 'lin'", "circuit"};
    double x[] = {0, 1, 2, 3};
    double y[] = {0.981, 0.979, 0.95, 0.948};
    double lo[] = {0.978, 0.976, 0.946, 0.944};
    double hi[] = {0.984, 0.982, 0.954, 0.952};
    double y2[] = {0.97, 0.96, 0.93, 0.91};
    double lo2[] = {0.965, 0.95, 0.925, 0.9};
    double hi2[] = {0.975, 0.97, 0.935, 0.92};
    xb_figure *f = xb_figure_new(name, "Accuracy by backend", "backend", "accuracy (1)");
    CHECK(xb_figure_x_categories(f, labels, 4) == XB_OK, "categories");
    CHECK(xb_figure_add(f, "MNIST", XB_PLOT_ERRORLINES, x, y, lo, hi, 4) == XB_OK, "add");
    CHECK(xb_figure_add(f, "MNIST, drift", XB_PLOT_POINTS, x, y2, lo2, hi2, 4) == XB_OK, "add 2");
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    static parsed p;
    CHECK(parse_figure_csv(csv, &p) == 0, "cannot read %s", csv);
    check_block(&p, 0, x, y, lo, hi, 4, "categorical series 0");
    check_block(&p, 1, x, y2, lo2, hi2, 4, "categorical series 1");
    CHECK(file_contains(gp, "with yerrorbars"), "points with bounds should have error bars");
    CHECK(has_comment(&p, "# x category 1: int8_q"), "category comment missing");
    check_script(dir, name);
    CHECK(file_contains(gp, "set xtics ('float' 0, 'int8_q' 1, '4-bit ''lin''' 2, 'circuit' 3)"),
          "category tics missing or misquoted");
    CHECK(file_contains(gp, "set xrange [-0.5:3.5]"), "category x range missing");
    check_rendered(dir, name);

    /* An index outside the categories is refused before anything is written. */
    double bad_x[] = {0, 4};
    CHECK(xb_figure_add(f, "bad", XB_PLOT_POINTS, bad_x, y, NULL, NULL, 2) == XB_OK, "add bad");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/bad_categories", dir);
    err = (xb_error){0};
    CHECK(xb_figure_write(f, sub, 0, &err) == XB_EINPUT, "index 4 of 4 categories should be XB_EINPUT");
    CHECK(strstr(err.msg, "category") != NULL, "message should name the problem: %s", err.msg);
    CHECK(is_empty_dir_or_absent(sub), "%s should not have been written", sub);
    /* A log x axis makes no sense over categories. */
    xb_figure *g = xb_figure_new("cat_log", NULL, NULL, NULL);
    xb_figure_x_categories(g, labels, 4);
    xb_figure_log_axes(g, 1, 0);
    xb_figure_add(g, "a", XB_PLOT_POINTS, x, y, NULL, NULL, 4);
    CHECK(xb_figure_write(g, sub, 0, &err) == XB_EINPUT, "categorical log x should be XB_EINPUT");
    xb_figure_free(&g);
    xb_figure_free(&f);
}

static void test_steps_vline(const char *dir)
{
    const char *name = "ecdf_midpoint";
    enum { M = 50 };
    double x[M], y[M];
    for (int i = 0; i < M; i++) {
        x[i] = 0.01 * (double)i * (double)i / (double)M;
        y[i] = (double)(i + 1) / M;
    }
    double x2[] = {0.0, 0.1, 0.2, 0.3};
    double y2[] = {0.25, 0.5, 0.75, 1.0};
    xb_figure *f = xb_figure_new(name, "Empirical CDF of the midpoint", "sigma_mid (1)", "F (1)");
    CHECK(xb_figure_add(f, "run A", XB_PLOT_STEPS, x, y, NULL, NULL, M) == XB_OK, "add");
    CHECK(xb_figure_add(f, "nothing", XB_PLOT_STEPS, NULL, NULL, NULL, NULL, 0) == XB_OK, "add empty");
    CHECK(xb_figure_add(f, "run B", XB_PLOT_STEPS, x2, y2, NULL, NULL, 4) == XB_OK, "add B");
    CHECK(xb_figure_vline(f, 0.125, "fitted midpoint 0.125") == XB_OK, "vline");
    CHECK(xb_figure_vline(f, NAN, "bad") == XB_EINPUT, "a non-finite marker should be XB_EINPUT");
    xb_error err = {0};
    /* The failed vline is remembered and stops the write. */
    CHECK(xb_figure_write(f, dir, 0, &err) == XB_EINPUT, "write after a failed vline should be XB_EINPUT");
    CHECK(strstr(err.msg, "marker") != NULL, "message should name the marker: %s", err.msg);
    xb_figure_free(&f);

    f = xb_figure_new(name, "Empirical CDF of the midpoint", "sigma_mid (1)", "F (1)");
    xb_figure_add(f, "run A", XB_PLOT_STEPS, x, y, NULL, NULL, M);
    xb_figure_add(f, "nothing", XB_PLOT_STEPS, NULL, NULL, NULL, NULL, 0);
    xb_figure_add(f, "run B", XB_PLOT_STEPS, x2, y2, NULL, NULL, 4);
    xb_figure_vline(f, 0.125, "fitted midpoint 0.125");
    err = (xb_error){0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    static parsed p;
    CHECK(parse_figure_csv(csv, &p) == 0, "cannot read %s", csv);
    CHECK(p.n_blocks == 3, "%zu blocks, want 3 (the empty series keeps its block)", p.n_blocks);
    check_block(&p, 0, x, y, NULL, NULL, M, "steps series 0");
    check_block(&p, 1, NULL, NULL, NULL, NULL, 0, "steps empty series");
    check_block(&p, 2, x2, y2, NULL, NULL, 4, "steps series 2");
    check_script(dir, name);
    CHECK(file_contains(gp, "with steps"), "steps style missing");
    CHECK(file_contains(gp, "index 2 using 1:2 with steps"), "series 2 should be block 2");
    CHECK(file_contains(gp, "set arrow from 0.125, graph 0 to 0.125, graph 1 nohead"), "marker line missing");
    CHECK(file_contains(gp, "set label 'fitted midpoint 0.125' at 0.125"), "marker label missing");
    check_rendered(dir, name);
}

static void test_points_diagonal(const char *dir)
{
    const char *name = "circuit_vs_behavioral";
    enum { M = 40 };
    double x[M], y[M];
    for (int i = 0; i < M; i++) {
        x[i] = 1e-6 * (double)i / M;
        y[i] = x[i] * (1.0 - 0.02 * sin((double)i));
    }
    xb_figure *f = xb_figure_new(name, "Column currents", "I behavioral (A)", "I circuit (A)");
    CHECK(xb_figure_add(f, "tile 0", XB_PLOT_POINTS, x, y, NULL, NULL, M) == XB_OK, "add");
    xb_figure_diagonal(f);
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    static parsed p;
    CHECK(parse_figure_csv(csv, &p) == 0, "cannot read %s", csv);
    check_block(&p, 0, x, y, NULL, NULL, M, "scatter series");
    check_script(dir, name);
    CHECK(file_contains(gp, "with points"), "points style missing");
    CHECK(file_contains(gp, "x with lines dashtype 2"), "y = x line missing");
    CHECK(file_contains(gp, "title 'y = x'"), "y = x legend missing");
    check_rendered(dir, name);
}

/* A series with no drawable point still renders (an empty frame), instead of failing in gnuplot. */
static void test_nothing_drawable(const char *dir)
{
    const char *name = "all_failed";
    double x[] = {1, 2, 3};
    double y[] = {NAN, -1, 0};
    xb_figure *f = xb_figure_new(name, "Everything failed", "x", "y");
    xb_figure_log_axes(f, 0, 1);
    xb_figure_add(f, "nothing usable", XB_PLOT_ERRORLINES, x, y, NULL, NULL, 3);
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, can_render, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    char gp[4200];
    path_of(gp, sizeof gp, dir, name, "gp");
    CHECK(file_contains(gp, "no data points to draw"), "the empty frame should say why it is empty");
    check_rendered(dir, name);
}

static void test_heatmap(const char *dir)
{
    const char *name = "conductance_map";
    enum { R = 3, C = 4 };
    double z[R * C];
    for (int i = 0; i < R * C; i++)
        z[i] = 1e-6 * (1.0 + (double)i / 7.0);
    z[5] = NAN;
    xb_error err = {0};
    CHECK(xb_heatmap_write(dir, name, "Programmed conductance", "column", "row", "G (S)", z, R, C, can_render,
                           &err) == XB_OK,
          "heat map: %s", err.msg);
    char csv[4200], gp[4200];
    path_of(csv, sizeof csv, dir, name, "csv");
    path_of(gp, sizeof gp, dir, name, "gp");
    char *text = slurp(csv, NULL);
    CHECK(text != NULL, "%s not written", csv);
    if (text) {
        int r = 0, comments = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (line[0] == '#') {
                comments++;
                continue;
            }
            int c = 0;
            char *field = line;
            while (field) {
                char *comma = strchr(field, ',');
                if (comma)
                    *comma = '\0';
                if (r < R && c < C) {
                    double want = z[r * C + c];
                    char *end;
                    double got = strtod(field, &end);
                    if (isfinite(want))
                        CHECK(*end == '\0' && got == want, "heat map [%d][%d]: got '%s' want %.17g", r, c, field,
                              want);
                    else
                        CHECK(strcmp(field, "NaN") == 0, "heat map [%d][%d]: got '%s' want NaN", r, c, field);
                }
                c++;
                field = comma ? comma + 1 : NULL;
            }
            CHECK(c == C, "heat map row %d has %d values, want %d", r, c, C);
            r++;
        }
        CHECK(r == R, "heat map has %d rows, want %d", r, R);
        CHECK(comments == 1, "heat map should have one header comment, has %d", comments);
        free(text);
    }
    check_script(dir, name);
    CHECK(file_contains(gp, "matrix with image"), "image plot missing");
    CHECK(file_contains(gp, "set yrange [2.5:-0.5]"), "row 0 should be on top");
    CHECK(file_contains(gp, "set cblabel 'G (S)'"), "colour box label missing");
    CHECK(file_contains(gp, "set palette"), "palette missing");
    check_rendered(dir, name);

    /* A larger map whose value grows with the row, to see the orientation in the picture. */
    enum { R2 = 16, C2 = 48 };
    static double z2[R2 * C2];
    for (int r = 0; r < R2; r++)
        for (int c = 0; c < C2; c++)
            z2[r * C2 + c] = (double)r + 0.1 * (double)c / C2;
    err = (xb_error){0};
    CHECK(xb_heatmap_write(dir, "rows_increase", "Value grows with the row", "column", "row", "row + col/480", z2,
                           R2, C2, can_render, &err) == XB_OK,
          "heat map 2: %s", err.msg);
    check_rendered(dir, "rows_increase");

    CHECK(xb_heatmap_write(dir, "empty_map", NULL, NULL, NULL, NULL, z, 0, C, 0, &err) == XB_EINPUT,
          "an empty matrix should be XB_EINPUT");
}

static void test_bad_names(const char *dir)
{
    const char *bad[] = {"a/b", "x y", "", ".hidden", "-option", "semi;colon", "quote'"};
    double x[] = {1, 2}, y[] = {3, 4};
    double z[] = {1, 2, 3, 4};
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/bad_names", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xb_figure *f = xb_figure_new(bad[i], "t", "x", "y");
        xb_figure_add(f, "s", XB_PLOT_LINES, x, y, NULL, NULL, 2);
        xb_error err = {0};
        CHECK(xb_figure_write(f, sub, 1, &err) == XB_EINPUT, "figure name '%s' should be XB_EINPUT", bad[i]);
        CHECK(err.msg[0] != '\0', "figure name '%s': no message", bad[i]);
        xb_figure_free(&f);
        err = (xb_error){0};
        CHECK(xb_heatmap_write(sub, bad[i], NULL, NULL, NULL, NULL, z, 2, 2, 1, &err) == XB_EINPUT,
              "heat map name '%s' should be XB_EINPUT", bad[i]);
        CHECK(xb_plot_render(sub, bad[i], &err) == XB_EINPUT, "render name '%s' should be XB_EINPUT", bad[i]);
        CHECK(is_empty_dir_or_absent(sub), "name '%s': %s should not have been created", bad[i], sub);
    }
    /* The good names in the other tests contain '.', '-' and '_'; a bare one must pass too. */
    xb_figure *f = xb_figure_new("Fig-1.v2_ok", NULL, NULL, NULL);
    xb_figure_add(f, NULL, XB_PLOT_LINES, x, y, NULL, NULL, 2);
    xb_error err = {0};
    CHECK(xb_figure_write(f, sub, 0, &err) == XB_OK, "a good name was refused: %s", err.msg);
    xb_figure_free(&f);
}

/* Mistakes in xb_figure_add are remembered and reported by the write, with nothing written. */
static void test_remembered_errors(const char *dir)
{
    double x[] = {1, 2}, y[] = {3, 4}, lo[] = {2, 3};
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/remembered", dir);
    xb_figure *f = xb_figure_new("half_bars", NULL, NULL, NULL);
    CHECK(xb_figure_add(f, "ok", XB_PLOT_LINES, x, y, NULL, NULL, 2) == XB_OK, "good add");
    CHECK(xb_figure_add(f, "one end", XB_PLOT_ERRORLINES, x, y, lo, NULL, 2) == XB_EINPUT,
          "y_lo without y_hi should be XB_EINPUT");
    CHECK(xb_figure_add(f, "style", (xb_plot_style)17, x, y, NULL, NULL, 2) == XB_EINPUT,
          "an unknown style should be XB_EINPUT");
    CHECK(xb_figure_add(f, "no data", XB_PLOT_LINES, NULL, y, NULL, NULL, 2) == XB_EINPUT,
          "missing x should be XB_EINPUT");
    xb_error err = {0};
    CHECK(xb_figure_write(f, sub, 0, &err) == XB_EINPUT, "write should report the first failed add");
    CHECK(strstr(err.msg, "one end") != NULL, "the message should name the first bad series: %s", err.msg);
    CHECK(is_empty_dir_or_absent(sub), "%s should not have been written", sub);
    xb_figure_free(&f);

    f = xb_figure_new("no_series", NULL, NULL, NULL);
    err = (xb_error){0};
    CHECK(xb_figure_write(f, sub, 0, &err) == XB_EINPUT, "a figure without series should be XB_EINPUT");
    CHECK(is_empty_dir_or_absent(sub), "%s should not have been written", sub);
    xb_figure_free(&f);
    CHECK(xb_figure_write(NULL, sub, 0, &err) == XB_EINPUT, "a NULL figure should be XB_EINPUT");
}

/* A script gnuplot rejects surfaces as XB_ERUNTIME with gnuplot's message, and leaves no pictures. */
static void test_gnuplot_failure(const char *dir)
{
    if (!can_render)
        return;
    const char *name = "broken";
    double x[] = {1, 2}, y[] = {3, 4};
    xb_figure *f = xb_figure_new(name, NULL, NULL, NULL);
    xb_figure_add(f, "s", XB_PLOT_LINES, x, y, NULL, NULL, 2);
    xb_error err = {0};
    CHECK(xb_figure_write(f, dir, 1, &err) == XB_OK, "write: %s", err.msg);
    xb_figure_free(&f);
    char gp[4200], svg[4200], png[4200], log[4200];
    path_of(gp, sizeof gp, dir, name, "gp");
    path_of(svg, sizeof svg, dir, name, "svg");
    path_of(png, sizeof png, dir, name, "png");
    path_of(log, sizeof log, dir, name, "log");
    CHECK(xb_is_file(png), "%s should exist before the failing run", png);
    /* An edited script with a mistake after the SVG output was opened. */
    FILE *fp = fopen(gp, "w");
    CHECK(fp != NULL, "cannot rewrite %s", gp);
    if (!fp)
        return;
    fprintf(fp, "set terminal svg\nset output '%s.svg'\nplot sin(x) with nosuchstyle\n", name);
    fclose(fp);
    err = (xb_error){0};
    int rc = xb_plot_render(dir, name, &err);
    CHECK(rc == XB_ERUNTIME, "a rejected script should be XB_ERUNTIME, got %d", rc);
    CHECK(strstr(err.msg, "broken.gp\" line 3") != NULL, "the message should carry gnuplot's own words: %s",
          err.msg);
    CHECK(!xb_is_file(svg), "%s was left behind after the failure", svg);
    CHECK(!xb_is_file(png), "the old %s was left behind, passing for a new one", png);
    CHECK(file_contains(log, "nosuchstyle"), "%s should hold gnuplot's full output", log);

    /* A script that runs but writes only the SVG: an old PNG must not pass for this run's. */
    fp = fopen(png, "w");
    CHECK(fp != NULL, "cannot create a stale %s", png);
    if (fp) {
        fputs("stale", fp);
        fclose(fp);
    }
    fp = fopen(gp, "w");
    CHECK(fp != NULL, "cannot rewrite %s", gp);
    if (!fp)
        return;
    fprintf(fp, "set terminal svg\nset output '%s.svg'\nplot x\n", name);
    fclose(fp);
    err = (xb_error){0};
    rc = xb_plot_render(dir, name, &err);
    CHECK(rc == XB_ERUNTIME, "a script that writes no PNG should be XB_ERUNTIME, got %d", rc);
    CHECK(strstr(err.msg, "did not write both") != NULL, "message: %s", err.msg);
    CHECK(!xb_is_file(png), "the stale %s was left behind", png);

    err = (xb_error){0};
    CHECK(xb_plot_render(dir, "never_written", &err) == XB_EINPUT, "rendering a missing script should be XB_EINPUT");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    can_render = xb_plot_can_render();
    CHECK(xb_plot_can_render() == can_render, "the cached answer should not change");
    if (!can_render)
        printf("test_plot: no gnuplot with svg and pngcairo on PATH; rendering is not checked\n");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/figures/nested", tmp_root); /* a folder the writer has to create */
    test_errorbars(dir);
    test_log_axes(dir);
    test_categorical(dir);
    test_steps_vline(dir);
    test_points_diagonal(dir);
    test_nothing_drawable(dir);
    test_heatmap(dir);
    test_bad_names(dir);
    test_remembered_errors(dir);
    test_gnuplot_failure(dir);
    if (getenv("XB_TEST_PLOT_KEEP"))
        printf("test_plot: figures kept in %s\n", dir);
    else
        nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_plot");
}
