// plot_private: the figure file names shared by plot.c and plot_render.c; private, no API
#ifndef XB_PLOT_PRIVATE_H
#define XB_PLOT_PRIVATE_H

#include <stddef.h>

#include "plot.h"

/* The name becomes a file name and sits unquoted on gnuplot's command line, so it is kept to
 * characters that need no quoting anywhere, and cannot look like an option or a hidden file.
 * XB_EINPUT naming what is wrong. */
int plot_check_name(const char *name, xb_error *err);
/* dir, or "." when dir is NULL or empty. */
const char *plot_dir_or_here(const char *dir);
/* DIR/NAME.EXT into out (cap bytes); XB_EINPUT when it does not fit. */
int plot_figure_path(char *out, size_t cap, const char *dir, const char *name, const char *ext, xb_error *err);

#endif
