// plot: figures (data CSV + gnuplot script + SVG/PNG) for experiment results
//
// Every figure is written as NAME.csv (the data), NAME.gp (a readable gnuplot script that reads NAME.csv
// and writes NAME.svg and NAME.png) and, when rendered, NAME.svg and NAME.png, side by side, so a user can
// restyle a figure by editing NAME.gp and running `gnuplot NAME.gp` in its folder. The CSV and the script
// are written atomically; gnuplot draws the pictures to NAME.svg.tmp.PID and NAME.png.tmp.PID (the
// script's xbarsim_svg and xbarsim_png, which default to the final names when it is run by hand), renamed
// into place only when gnuplot exited 0 and both are whole (an SVG ends with </svg>, a PNG with IEND);
// stale pictures are removed before it runs, so a failure leaves none, and NAME.log holds gnuplot's output
// when it printed anything.
#ifndef XB_PLOT_H
#define XB_PLOT_H

#include <stddef.h>

#include "error.h"

typedef enum {
    XB_PLOT_ERRORLINES = 0, /* points joined by lines, with y error bars when y_lo/y_hi are given */
    XB_PLOT_LINES,          /* a line only (fitted curves); a shaded band when y_lo/y_hi are given */
    XB_PLOT_POINTS,         /* points only (scatter); error bars when y_lo/y_hi are given */
    XB_PLOT_STEPS           /* a step function (empirical CDFs); y_lo/y_hi are written but not drawn */
} xb_plot_style;

/* Longest figure name accepted (the file stem, without extension). */
#define XB_PLOT_NAME_MAX 200

typedef struct xb_figure xb_figure;

/* name: file stem of letters, digits, '-', '_' and '.', not starting with '.' or '-' (anything else is
 * XB_EINPUT at write time). title, xlabel, ylabel may be NULL (none). All strings are copied.
 * Returns NULL only when out of memory. */
xb_figure *xb_figure_new(const char *name, const char *title, const char *xlabel, const char *ylabel);
/* Accepts NULL and *f == NULL; sets *f to NULL. */
void xb_figure_free(xb_figure **f);

/* Logarithmic x and/or y axes. Non-positive values on a log axis are skipped by gnuplot. */
void xb_figure_log_axes(xb_figure *f, int logx, int logy);

/* Categorical x: the series' x values are indices 0..n-1 into these labels, shown as tick labels.
 * Labels are copied; n == 0 returns to a numeric x axis. Cannot be combined with a log x axis. */
int xb_figure_x_categories(xb_figure *f, const char *const *labels, size_t n);

/* Add a series; data are copied. y_lo/y_hi are the lower and upper ends of the error bar (absolute
 * values, not distances from y); give both or neither. Non-finite values are written as empty fields
 * (missing values: gnuplot skips the point), never dropped from the CSV. A series with n == 0 is kept
 * in the CSV as a block with one empty row so that block numbers stay equal to series numbers.
 * Returns XB_OK, XB_EINPUT (bad arguments) or XB_ENOMEM; the first failure is also remembered and
 * returned, with its message, by xb_figure_write. */
int xb_figure_add(xb_figure *f, const char *label, xb_plot_style style, const double *x, const double *y,
                  const double *y_lo, const double *y_hi, size_t n);

/* Draw the last series added in the colour of the one before it (a fitted curve beside its data). */
void xb_figure_same_colour(xb_figure *f);
/* Draw the last series' line dashed (lines and steps): a second method beside the first in its colour. */
void xb_figure_dashed(xb_figure *f);
/* A dashed vertical marker at x with a label (may be NULL), e.g. the fitted midpoint noise level. */
int xb_figure_vline(xb_figure *f, double x, const char *label);

/* The y = x reference line (circuit against behavioral currents). */
void xb_figure_diagonal(xb_figure *f);

/* Write DIR/NAME.csv and DIR/NAME.gp (creating DIR), then, if render, run gnuplot to make NAME.svg and
 * NAME.png. XB_EINPUT for a bad name, a figure with nothing to plot, categorical x indices out of range
 * or an earlier failed xb_figure_add; XB_ERUNTIME with gnuplot's own message if it fails (the CSV and
 * the script stay, for inspection). Nothing is written when the name or the figure is bad. */
int xb_figure_write(const xb_figure *f, const char *dir, int render, xb_error *err);

/* A heat map of a rows x cols matrix z (row-major; row 0 drawn at the top like an array layout; x is
 * the column index), written as DIR/NAME.csv (one line per row, non-finite values empty and drawn
 * blank), DIR/NAME.gp, and rendered like figures. title, xlabel, ylabel, cblabel may be NULL. */
int xb_heatmap_write(const char *dir, const char *name, const char *title, const char *xlabel, const char *ylabel,
                     const char *cblabel, const double *z, size_t rows, size_t cols, int render, xb_error *err);

/* Run gnuplot on an existing DIR/NAME.gp with DIR as working directory (re-rendering an edited script).
 * XB_ERUNTIME with gnuplot's message when it fails or cannot be started. */
int xb_plot_render(const char *dir, const char *name, xb_error *err);

/* 1 if a gnuplot that can write svg and pngcairo is on PATH (checked once, cached). */
int xb_plot_can_render(void);

/* What a command does with rc, the result of drawing figure NAME into DIR (render: gnuplot was asked to
 * draw it; perr: the drawing's error): the pictures are a convenience, so a gnuplot failure (XB_ERUNTIME
 * while rendering) becomes a warning on stderr, "CMD: warning: gnuplot could not draw NAME (why); its
 * data (.csv) and script (.gp) are in DIR/", and XB_OK; any other failure is copied into err and
 * returned. */
int xb_plot_tolerate(int rc, int render, const xb_error *perr, const char *cmd, const char *name, const char *dir,
                     xb_error *err);

#endif
