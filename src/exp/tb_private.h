// tb_private: declarations shared by the testbench sources (testbench.c, tb_*.c); private, no API
#ifndef XB_TB_PRIVATE_H
#define XB_TB_PRIVATE_H

#include <stddef.h>

#include <libxml/tree.h>

#include "testbench.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

#define TB_MAX_POINTS 100000
#define TB_MAX_AXES 16

/* The element kinds and their attributes (tb_params.c) */

typedef enum { K_DATASET, K_NETWORK, K_DEVICE, K_CHIP, K_LEVELS, K_BEHAVIORAL, K_SPICE, K_PERTURB, K_BACKENDS,
               K_MONTECARLO, K_PROGRAMMING, K_N } kind;

extern const char *const tb_kind_names[K_N];

typedef struct attr_def {
    kind k;
    const char *attr, *shown_default;
} attr_def;

/* The attribute k.attr, or NULL if <k> has none by that name. */
const attr_def *tb_find_attr(kind k, const char *attr);
/* Read-only parameters computed per point, for plots and analyses. */
int tb_is_derived(const char *param);

/* The loaded testbench */

/* An element instance: a singleton by its kind's name, levels and perturb elements by id. */
typedef struct element {
    char key[64];
    kind k;
    int line;
} element;

/* A parameter value from the file: an attribute, a <set>, or an axis value. */
typedef struct setting {
    char key[64], attr[32];
    char *value;
    int line;
} setting;

typedef struct axis {
    char name[64];     /* a param for plain axes; the axis name for labelled values */
    int labelled;
    size_t n_values;
    char **labels;     /* labelled: n_values labels */
    setting **sets;    /* n_values lists of settings */
    size_t *n_sets;
    int line;
} axis;

typedef struct grid {
    char label[64];
    setting *sets;
    size_t n_sets;
    axis axes[TB_MAX_AXES];
    int n_axes;
    size_t n_points;
} grid;

struct xb_tb {
    char path[4096], dir[4096], name[64], title[256], sha256[65];
    element *elements;
    size_t n_elements;
    setting *base;     /* attributes as written */
    size_t n_base;
    grid *grids;
    size_t n_grids;
    size_t n_points;
    char **columns;
    size_t n_columns;
    char **values;     /* n_points x n_columns */
    size_t *point_grid;
    size_t **point_idx; /* per point: the value index on each axis of its grid */
    xb_tb_output *outputs;
    size_t n_outputs;
    size_t quick_images, quick_trials, quick_epochs, quick_train, quick_cells;
    int programming;   /* a <programming> element: a programming study (docs/testbench.md) */
};

/* Loading: the testbench being filled and where errors go. */
typedef struct loader {
    xb_tb *tb;
    xb_error *err;
} loader;

/* XB_EINPUT, "FILE:LINE: message" (testbench.c). */
int tb_fail_at(loader *ld, int line, const char *fmt, ...) XB_PRINTF(3, 4);
#define FAIL_AT(ld, line, ...) tb_fail_at((ld), (line), __VA_ARGS__)

static inline int tb_node_line(const xmlNode *n)
{
    return (int)xmlGetLineNo(n);
}

static inline int tb_is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && (!name || !xmlStrcmp(n->name, (const xmlChar *)name));
}

/* Parameter names (tb_params.c) */

const element *tb_find_element(const xb_tb *tb, const char *key);
/* The kind of parameter key (an element key, or a singleton kind that is not written and keeps its
 * defaults); -1 if none. */
int tb_key_kind(const xb_tb *tb, const char *key);
/* Split "key.attr"; -1 if param has no such form or a part is too long. */
int tb_split_param(const char *param, char *key, size_t klen, char *attr, size_t alen);
/* Is param something a sweep may set? The message says what exists. */
int tb_check_param(loader *ld, const char *param, int line);
/* Append a setting to *v (grown; the value copied). */
int tb_add_setting(setting **v, size_t *n, const char *key, const char *attr, const char *value, int line,
                   xb_error *err);
/* The same after tb_check_param. */
int tb_add_param_setting(loader *ld, setting **v, size_t *n, const char *param, const char *value, int line);

/* Sweeps and points (tb_sweep.c) */

void tb_free_axis(axis *a);
/* A grid: <set>s then <axis>es (a <sweep> without <grid> children is one grid itself). */
int tb_read_grid(loader *ld, const xmlNode *n, grid *g, size_t index);
/* The points of every grid in order, their columns and values. */
int tb_expand_points(loader *ld);
/* The settings of point k, in order of precedence (later wins): the file's attributes, its grid's
 * sets, its axis values. Pointers into tb, in an array the caller frees; *n_out entries; NULL when out
 * of memory. */
const setting **tb_point_settings(const xb_tb *tb, size_t k, size_t *n_out);
/* The last of v setting key.attr; NULL if none or its value is empty (an empty value restores the
 * default). */
const setting *tb_lookup(const setting **v, size_t n, const char *key, const char *attr);

/* Outputs (tb_output.c) */

/* Read and check one <output> child and append it to tb->outputs. */
int tb_read_output(loader *ld, const xmlNode *n);

#endif
