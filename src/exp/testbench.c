// testbench: XML experiment descriptions (testbenches/*.xml): checked loading, the points they sweep, each point's configuration
#define _GNU_SOURCE
#include "testbench.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "fileio.h"
#include "mc.h"
#include "mlp.h"
#include "train.h"
#include "xmlcheck.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

#define TB_MAX_FILE_BYTES ((size_t)1 << 20)
#define TB_MAX_POINTS 100000
#define TB_MAX_AXES 16

/* ------------------------------------------------------------------------------------------------ */
/* The parameters: element kinds, their attributes and the text shown for a default */

typedef enum { K_DATASET, K_NETWORK, K_DEVICE, K_CHIP, K_LEVELS, K_BEHAVIORAL, K_SPICE, K_PERTURB, K_BACKENDS,
               K_MONTECARLO, K_N } kind;

static const char *const kind_names[K_N] = {"dataset", "network", "device", "chip", "levels", "behavioral", "spice",
                                            "perturb", "backends", "montecarlo"};

typedef struct attr_def {
    kind k;
    const char *attr, *shown_default;
} attr_def;

static const attr_def attrs[] = {
    {K_DATASET, "name", "mnist"}, {K_DATASET, "images", "all"}, {K_DATASET, "calib", "256"},
    {K_NETWORK, "weights", "(trained)"}, {K_NETWORK, "hidden", "100"}, {K_NETWORK, "activation", "sigmoid"},
    {K_NETWORK, "epochs", "15"}, {K_NETWORK, "batch", "32"}, {K_NETWORK, "lr", "auto"},
    {K_NETWORK, "momentum", "0.9"}, {K_NETWORK, "weight-decay", "0"}, {K_NETWORK, "seed", "1"},
    {K_NETWORK, "train-images", "all"},
    {K_DEVICE, "file", "models/hfo2_1t1r.xml"}, {K_DEVICE, "v-read", "(file)"}, {K_DEVICE, "vg-read", "(file)"},
    {K_DEVICE, "d2d", "(file)"}, {K_DEVICE, "stuck-lrs", "(file)"}, {K_DEVICE, "stuck-hrs", "(file)"},
    {K_DEVICE, "sigma-c2c", "(file)"}, {K_DEVICE, "mosfet-file", "(file)"}, {K_DEVICE, "mosfet-model", "(file)"},
    {K_DEVICE, "rram-file", "(file)"},
    {K_CHIP, "norm", "maxabs"}, {K_CHIP, "mapping", "differential"}, {K_CHIP, "bias", "row"},
    {K_CHIP, "tile", "64x64"}, {K_CHIP, "program", "ideal"},
    {K_LEVELS, "spec", "none"}, {K_LEVELS, "layers", "all"},
    {K_BEHAVIORAL, "dac-bits", "0"}, {K_BEHAVIORAL, "adc-bits", "0"}, {K_BEHAVIORAL, "adc-range", "calibrate"},
    {K_BEHAVIORAL, "read-noise", "0"},
    {K_SPICE, "cells", "1t1r"}, {K_SPICE, "r-row", "1"}, {K_SPICE, "r-col", "1"}, {K_SPICE, "rram-v0", "0"},
    {K_SPICE, "mode", "exact"}, {K_SPICE, "linear-sample", "20"}, {K_SPICE, "jobs", "auto"},
    {K_SPICE, "chunk", "250"}, {K_SPICE, "rows", "auto"},
    {K_PERTURB, "model", "none"}, {K_PERTURB, "ar", "1"}, {K_PERTURB, "sigma", "0"}, {K_PERTURB, "alpha", "0"},
    {K_PERTURB, "lrs", "0"}, {K_PERTURB, "hrs", "0"}, {K_PERTURB, "layers", "all"},
    {K_BACKENDS, "use", "behavioral"},
    {K_MONTECARLO, "trials", "1"}, {K_MONTECARLO, "seed", "1"},
};
#define N_ATTRS (sizeof attrs / sizeof attrs[0])

static const attr_def *find_attr(kind k, const char *attr)
{
    for (size_t i = 0; i < N_ATTRS; i++)
        if (attrs[i].k == k && !strcmp(attrs[i].attr, attr))
            return &attrs[i];
    return NULL;
}

/* Read-only parameters computed per point, for plots and analyses. */
static int is_derived(const char *param)
{
    return !strcmp(param, "network.synapses") || !strcmp(param, "network.layers") || !strcmp(param, "network.neurons");
}

/* ------------------------------------------------------------------------------------------------ */
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
    size_t quick_images, quick_trials, quick_epochs, quick_train;
};

const char *xb_tb_name(const xb_tb *tb) { return tb->name; }
const char *xb_tb_title(const xb_tb *tb) { return tb->title; }
const char *xb_tb_path(const xb_tb *tb) { return tb->path; }
const char *xb_tb_sha256(const xb_tb *tb) { return tb->sha256; }
size_t xb_tb_n_points(const xb_tb *tb) { return tb->n_points; }
size_t xb_tb_n_columns(const xb_tb *tb) { return tb->n_columns; }
const char *xb_tb_column(const xb_tb *tb, size_t c) { return tb->columns[c]; }
const char *xb_tb_value(const xb_tb *tb, size_t k, size_t c) { return tb->values[k * tb->n_columns + c]; }
const char *xb_tb_grid(const xb_tb *tb, size_t k) { return tb->grids[tb->point_grid[k]].label; }
size_t xb_tb_n_outputs(const xb_tb *tb) { return tb->n_outputs; }
const xb_tb_output *xb_tb_output_at(const xb_tb *tb, size_t i) { return &tb->outputs[i]; }

int xb_tb_column_index(const xb_tb *tb, const char *name)
{
    for (size_t c = 0; c < tb->n_columns; c++)
        if (!strcmp(tb->columns[c], name))
            return (int)c;
    return -1;
}

const char *xb_backend_name(unsigned backend)
{
    return backend == XB_BACKEND_SPICE ? "spice" : backend == XB_BACKEND_BEHAVIORAL ? "behavioral" : "ideal";
}

static void free_axis(axis *a)
{
    for (size_t v = 0; v < a->n_values; v++) {
        if (a->labels)
            free(a->labels[v]);
        for (size_t s = 0; a->sets && s < a->n_sets[v]; s++)
            free(a->sets[v][s].value);
        if (a->sets)
            free(a->sets[v]);
    }
    free(a->labels);
    free(a->sets);
    free(a->n_sets);
}

void xb_tb_free(xb_tb **tbp)
{
    if (!tbp || !*tbp)
        return;
    xb_tb *tb = *tbp;
    for (size_t i = 0; i < tb->n_base; i++)
        free(tb->base[i].value);
    free(tb->base);
    for (size_t g = 0; g < tb->n_grids; g++) {
        for (size_t i = 0; i < tb->grids[g].n_sets; i++)
            free(tb->grids[g].sets[i].value);
        free(tb->grids[g].sets);
        for (int a = 0; a < tb->grids[g].n_axes; a++)
            free_axis(&tb->grids[g].axes[a]);
    }
    free(tb->grids);
    for (size_t c = 0; c < tb->n_columns; c++)
        free(tb->columns[c]);
    free(tb->columns);
    if (tb->values)
        for (size_t i = 0; i < tb->n_points * tb->n_columns; i++)
            free(tb->values[i]);
    free(tb->values);
    free(tb->point_grid);
    if (tb->point_idx)
        for (size_t k = 0; k < tb->n_points; k++)
            free(tb->point_idx[k]);
    free(tb->point_idx);
    free(tb->elements);
    free(tb->outputs);
    free(tb);
    *tbp = NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* Loading */

typedef struct loader {
    xb_tb *tb;
    xb_error *err;
} loader;

#define FAIL_AT(ld, line, ...) fail_at((ld), (line), __VA_ARGS__)

static int fail_at(loader *ld, int line, const char *fmt, ...) XB_PRINTF(3, 4);
static int fail_at(loader *ld, int line, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return xb_fail(ld->err, XB_EINPUT, "%s:%d: %s", ld->tb->path, line, msg);
}

static const element *find_element(const xb_tb *tb, const char *key)
{
    for (size_t i = 0; i < tb->n_elements; i++)
        if (!strcmp(tb->elements[i].key, key))
            return &tb->elements[i];
    return NULL;
}

/* The kind of parameter key (an element key, or a singleton kind that is not written and keeps its
 * defaults); -1 if none. */
static int key_kind(const xb_tb *tb, const char *key)
{
    const element *e = find_element(tb, key);
    if (e)
        return (int)e->k;
    for (int k = 0; k < K_N; k++)
        if (k != K_LEVELS && k != K_PERTURB && !strcmp(kind_names[k], key))
            return k;
    return -1;
}

/* Split "key.attr". */
static int split_param(const char *param, char *key, size_t klen, char *attr, size_t alen)
{
    const char *dot = strrchr(param, '.');
    if (!dot || dot == param || (size_t)(dot - param) >= klen || strlen(dot + 1) >= alen)
        return -1;
    snprintf(key, klen, "%.*s", (int)(dot - param), param);
    snprintf(attr, alen, "%s", dot + 1);
    return 0;
}

/* Is param something a sweep may set? The message says what exists. */
static int check_param(loader *ld, const char *param, int line)
{
    char key[64], attr[32];
    if (split_param(param, key, sizeof key, attr, sizeof attr))
        return FAIL_AT(ld, line, "parameter '%s': allowed: ELEMENT.ATTRIBUTE, e.g. network.hidden or c2c.sigma", param);
    if (is_derived(param))
        return FAIL_AT(ld, line, "parameter '%s' is computed from the network and cannot be set; allowed: the "
                       "attributes of dataset, network, device, chip, behavioral, spice, montecarlo, and of levels "
                       "and perturb elements by id", param);
    int k = key_kind(ld->tb, key);
    if (k < 0) {
        char ids[512] = "";
        size_t at = 0;
        for (size_t i = 0; i < ld->tb->n_elements && at < sizeof ids; i++)
            if (ld->tb->elements[i].k == K_LEVELS || ld->tb->elements[i].k == K_PERTURB)
                at += (size_t)snprintf(ids + at, sizeof ids - at, " %s", ld->tb->elements[i].key);
        return FAIL_AT(ld, line, "parameter '%s': no element '%s'; allowed: dataset, network, device, chip, behavioral, "
                       "spice, montecarlo, or a levels/perturb id:%s", param, key, ids[0] ? ids : " (none here)");
    }
    if (!find_attr((kind)k, attr) || !strcmp(attr, "id")) {
        char list[512] = "";
        size_t at = 0;
        for (size_t i = 0; i < N_ATTRS && at < sizeof list; i++)
            if ((int)attrs[i].k == k)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", attrs[i].attr);
        return FAIL_AT(ld, line, "parameter '%s': <%s> has no attribute '%s'; allowed: %s", param, kind_names[k], attr,
                       list);
    }
    return XB_OK;
}

static int add_setting(setting **v, size_t *n, const char *key, const char *attr, const char *value, int line,
                       xb_error *err)
{
    setting *grown = realloc(*v, (*n + 1) * sizeof *grown);
    if (!grown)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    *v = grown;
    setting *s = &grown[*n];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key);
    snprintf(s->attr, sizeof s->attr, "%s", attr);
    s->line = line;
    if (!(s->value = strdup(value)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    (*n)++;
    return XB_OK;
}

static int add_param_setting(loader *ld, setting **v, size_t *n, const char *param, const char *value, int line)
{
    int rc = check_param(ld, param, line);
    if (rc)
        return rc;
    char key[64], attr[32];
    split_param(param, key, sizeof key, attr, sizeof attr);
    return add_setting(v, n, key, attr, value, line, ld->err);
}

static int node_line(const xmlNode *n)
{
    return (int)xmlGetLineNo(n);
}

static int is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && (!name || !xmlStrcmp(n->name, (const xmlChar *)name));
}

/* An element of the configuration: record it and its attributes. */
static int read_config_element(loader *ld, const xmlNode *n, kind k)
{
    xb_tb *tb = ld->tb;
    char key[64];
    char *id = xb_xml_attr(n, "id");
    snprintf(key, sizeof key, "%s", id ? id : kind_names[k]);
    xmlFree(id);
    if (find_element(tb, key))
        return FAIL_AT(ld, node_line(n), "element <%s>: id '%s' is taken by the element at line %d; allowed: a unique id "
                       "per levels/perturb element", (const char *)n->name, key, find_element(tb, key)->line);
    for (int j = 0; j < K_N; j++)
        if ((k == K_LEVELS || k == K_PERTURB) && !strcmp(key, kind_names[j]) && j != (int)k)
            return FAIL_AT(ld, node_line(n), "element <%s>: id '%s' is the name of an element; allowed: another id",
                           (const char *)n->name, key);
    element *grown = realloc(tb->elements, (tb->n_elements + 1) * sizeof *grown);
    if (!grown)
        return xb_fail(ld->err, XB_ENOMEM, "out of memory");
    tb->elements = grown;
    element *e = &grown[tb->n_elements++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->k = k;
    e->line = node_line(n);
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        if (!strcmp(an, "id"))
            continue;
        char *v = xb_xml_attr(n, an);
        int rc = add_setting(&tb->base, &tb->n_base, key, an, v ? v : "", e->line, ld->err);
        xmlFree(v);
        if (rc)
            return rc;
    }
    return XB_OK;
}

/* Numbers of an axis range: from, from+step, ... up to `to` (inclusive within round-off), or count
 * points evenly (or log-evenly) spaced. Printed with %.10g so 0.1 + 0.2 reads 0.3. */
static int range_values(loader *ld, const xmlNode *n, char ***out, size_t *count)
{
    char *f = xb_xml_attr(n, "from"), *t = xb_xml_attr(n, "to"), *st = xb_xml_attr(n, "step"),
         *cn = xb_xml_attr(n, "count"), *sc = xb_xml_attr(n, "scale");
    int line = node_line(n), rc = XB_OK;
    int log_scale = sc && !strcmp(sc, "log");
    double from = f ? strtod(f, NULL) : NAN, to = t ? strtod(t, NULL) : NAN;
    size_t m = 0;
    double step = NAN;
    if (!f || !t || (!st == !cn))
        rc = FAIL_AT(ld, line, "element <axis>: a range needs from, to and either step or count; allowed: values=\"...\" "
                     "or from/to/step or from/to/count [scale=\"log\"]");
    else if (st) {
        step = strtod(st, NULL);
        if (!(step > 0) || !(to >= from) || log_scale)
            rc = FAIL_AT(ld, line, "element <axis>: from %s to %s step %s; allowed: step > 0, to >= from, linear scale",
                         f, t, st);
        else
            m = (size_t)floor((to - from) / step + 1e-9) + 1;
    } else {
        m = (size_t)strtoul(cn, NULL, 10);
        if (m < 2 || (log_scale && !(from > 0 && to > 0)))
            rc = FAIL_AT(ld, line, "element <axis>: count %s from %s to %s; allowed: count >= 2, and from, to > 0 on a "
                         "log scale", cn, f, t);
    }
    if (!rc && m > TB_MAX_POINTS)
        rc = FAIL_AT(ld, line, "element <axis>: %zu values; allowed: at most %d", m, TB_MAX_POINTS);
    char **v = NULL;
    if (!rc && !(v = calloc(m, sizeof *v)))
        rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < m; i++) {
        double x;
        if (st)
            x = from + (double)i * step;
        else if (log_scale)
            x = exp(log(from) + (log(to) - log(from)) * (double)i / (double)(m - 1));
        else
            x = from + (to - from) * (double)i / (double)(m - 1);
        if (asprintf(&v[i], "%.10g", x) < 0) {
            v[i] = NULL;
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        }
    }
    xmlFree(f);
    xmlFree(t);
    xmlFree(st);
    xmlFree(cn);
    xmlFree(sc);
    if (rc) {
        for (size_t i = 0; v && i < m; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *count = m;
    return XB_OK;
}

static int read_axis(loader *ld, const xmlNode *n, axis *a)
{
    memset(a, 0, sizeof *a);
    a->line = node_line(n);
    char *param = xb_xml_attr(n, "param"), *name = xb_xml_attr(n, "name"), *values = xb_xml_attr(n, "values");
    char *from = xb_xml_attr(n, "from");
    int has_children = 0, rc = XB_OK;
    for (const xmlNode *c = n->children; c; c = c->next)
        has_children |= is_element(c, "value");
    char **items = NULL;
    size_t n_items = 0;
    if (has_children) {
        if (!name || param || values || from)
            rc = FAIL_AT(ld, a->line, "element <axis>: an axis of <value> groups takes a name and no param, values or "
                         "range; allowed: <axis name=\"N\"><value label=\"L\"><set param=\"..\" value=\"..\"/></value>...");
    } else if (!param || name) {
        rc = FAIL_AT(ld, a->line, "element <axis>: needs param=\"ELEMENT.ATTRIBUTE\" (or a name and <value> groups); "
                     "allowed: <axis param=\"c2c.sigma\" values=\"0 0.1 0.2\"/>");
    } else if (!values == !from) {
        rc = FAIL_AT(ld, a->line, "element <axis>: give either values=\"...\" or a range (from, to, step or count)");
    } else if (values) {
        char *save = NULL, *copy = strdup(values);
        if (!copy)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        for (char *tok = copy ? strtok_r(copy, " \t\r\n", &save) : NULL; tok && !rc;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
            char **grown = realloc(items, (n_items + 1) * sizeof *grown);
            if (!grown || !(grown[n_items] = strdup(tok))) {
                items = grown ? grown : items;
                rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
                break;
            }
            items = grown;
            n_items++;
        }
        free(copy);
        if (!rc && !n_items)
            rc = FAIL_AT(ld, a->line, "element <axis>: values is empty; allowed: one or more values separated by spaces");
    } else {
        rc = range_values(ld, n, &items, &n_items);
    }
    if (!rc && param)
        rc = check_param(ld, param, a->line);
    if (!rc && !has_children) {
        snprintf(a->name, sizeof a->name, "%s", param);
        a->n_values = n_items;
        a->sets = calloc(n_items, sizeof *a->sets);
        a->n_sets = calloc(n_items, sizeof *a->n_sets);
        if (!a->sets || !a->n_sets)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        for (size_t v = 0; v < n_items && !rc; v++)
            rc = add_param_setting(ld, &a->sets[v], &a->n_sets[v], param, items[v], a->line);
    } else if (!rc) {
        snprintf(a->name, sizeof a->name, "%s", name);
        a->labelled = 1;
        for (const xmlNode *c = n->children; c; c = c->next)
            a->n_values += is_element(c, "value");
        a->labels = calloc(a->n_values, sizeof *a->labels);
        a->sets = calloc(a->n_values, sizeof *a->sets);
        a->n_sets = calloc(a->n_values, sizeof *a->n_sets);
        if (!a->labels || !a->sets || !a->n_sets)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        size_t v = 0;
        for (const xmlNode *c = n->children; c && !rc; c = c->next) {
            if (!is_element(c, "value"))
                continue;
            char *label = xb_xml_attr(c, "label");
            for (size_t u = 0; u < v && label; u++)
                if (!strcmp(a->labels[u], label))
                    rc = FAIL_AT(ld, node_line(c), "element <value>: label '%s' appears twice in axis %s; allowed: "
                                 "distinct labels", label, name);
            a->labels[v] = strdup(label ? label : "");
            xmlFree(label);
            for (const xmlNode *s = c->children; s && !rc; s = s->next) {
                if (!is_element(s, "set"))
                    continue;
                char *p = xb_xml_attr(s, "param"), *val = xb_xml_attr(s, "value");
                rc = add_param_setting(ld, &a->sets[v], &a->n_sets[v], p, val, node_line(s));
                xmlFree(p);
                xmlFree(val);
            }
            v++;
        }
    }
    for (size_t i = 0; i < n_items; i++)
        free(items[i]);
    free(items);
    xmlFree(param);
    xmlFree(name);
    xmlFree(values);
    xmlFree(from);
    return rc;
}

/* A grid: <set>s then <axis>es (a <sweep> without <grid> children is one grid itself). */
static int read_grid(loader *ld, const xmlNode *n, grid *g, size_t index)
{
    memset(g, 0, sizeof *g);
    char *label = xb_xml_attr(n, "label");
    if (label)
        snprintf(g->label, sizeof g->label, "%s", label);
    else if (is_element(n, "grid"))
        snprintf(g->label, sizeof g->label, "%zu", index + 1);
    xmlFree(label);
    int rc = XB_OK;
    g->n_points = 1;
    for (const xmlNode *c = n->children; c && !rc; c = c->next) {
        if (is_element(c, "set")) {
            char *p = xb_xml_attr(c, "param"), *v = xb_xml_attr(c, "value");
            rc = add_param_setting(ld, &g->sets, &g->n_sets, p, v, node_line(c));
            xmlFree(p);
            xmlFree(v);
        } else if (is_element(c, "axis")) {
            axis *a = &g->axes[g->n_axes++];
            if ((rc = read_axis(ld, c, a)))
                break;
            for (int b = 0; b + 1 < g->n_axes && !rc; b++)
                if (!strcmp(g->axes[b].name, a->name))
                    rc = FAIL_AT(ld, a->line, "element <axis>: '%s' is swept twice in one grid; allowed: one axis per "
                                 "parameter (list all its values there)", a->name);
            if (!rc && g->n_points > TB_MAX_POINTS / (a->n_values ? a->n_values : 1))
                rc = FAIL_AT(ld, a->line, "element <axis>: the grid grows past %d points; allowed: fewer values",
                             TB_MAX_POINTS);
            g->n_points *= a->n_values;
        }
    }
    return rc;
}

static int add_column(xb_tb *tb, const char *name, xb_error *err)
{
    if (xb_tb_column_index(tb, name) >= 0)
        return XB_OK;
    char **grown = realloc(tb->columns, (tb->n_columns + 1) * sizeof *grown);
    if (!grown)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    tb->columns = grown;
    if (!(grown[tb->n_columns] = strdup(name)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    tb->n_columns++;
    return XB_OK;
}

/* The settings of point k, in order of precedence (later wins): the file's attributes, its grid's
 * sets, its axis values. Pointers into tb; *n_out entries. */
static const setting **point_settings(const xb_tb *tb, size_t k, size_t *n_out)
{
    const grid *g = &tb->grids[tb->point_grid[k]];
    size_t n = tb->n_base + g->n_sets;
    for (int a = 0; a < g->n_axes; a++)
        n += g->axes[a].n_sets[tb->point_idx[k][a]];
    const setting **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < tb->n_base; i++)
        v[m++] = &tb->base[i];
    for (size_t i = 0; i < g->n_sets; i++)
        v[m++] = &g->sets[i];
    for (int a = 0; a < g->n_axes; a++) {
        size_t vi = tb->point_idx[k][a];
        for (size_t i = 0; i < g->axes[a].n_sets[vi]; i++)
            v[m++] = &g->axes[a].sets[vi][i];
    }
    *n_out = m;
    return v;
}

static const setting *lookup(const setting **v, size_t n, const char *key, const char *attr)
{
    for (size_t i = n; i-- > 0;)
        if (!strcmp(v[i]->key, key) && !strcmp(v[i]->attr, attr))
            return v[i]->value[0] ? v[i] : NULL; /* an empty value restores the default */
    return NULL;
}

void xb_tb_where(const xb_tb *tb, size_t k, const char *param, char *buf, size_t len)
{
    char key[64], attr[32];
    int line = 0;
    size_t n = 0;
    const setting **v = split_param(param, key, sizeof key, attr, sizeof attr) ? NULL : point_settings(tb, k, &n);
    const setting *s = v ? lookup(v, n, key, attr) : NULL;
    if (s)
        line = s->line;
    else if (v && find_element(tb, key))
        line = find_element(tb, key)->line;
    free(v);
    snprintf(buf, len, "%s:%d", tb->path, line ? line : 1);
}

static int fill_values(loader *ld)
{
    xb_tb *tb = ld->tb;
    size_t nc = tb->n_columns;
    if (!(tb->values = calloc(tb->n_points * (nc ? nc : 1), sizeof *tb->values)))
        return xb_fail(ld->err, XB_ENOMEM, "out of memory");
    for (size_t k = 0; k < tb->n_points; k++) {
        size_t n = 0;
        const setting **v = point_settings(tb, k, &n);
        if (!v)
            return xb_fail(ld->err, XB_ENOMEM, "out of memory");
        const grid *g = &tb->grids[tb->point_grid[k]];
        for (size_t c = 0; c < nc; c++) {
            const char *text = NULL;
            for (int a = 0; a < g->n_axes && !text; a++)
                if (g->axes[a].labelled && !strcmp(g->axes[a].name, tb->columns[c]))
                    text = g->axes[a].labels[tb->point_idx[k][a]];
            char key[64], attr[32];
            if (!text && !split_param(tb->columns[c], key, sizeof key, attr, sizeof attr)) {
                const setting *s = lookup(v, n, key, attr);
                int kk = key_kind(tb, key);
                const attr_def *d = kk >= 0 ? find_attr((kind)kk, attr) : NULL;
                text = s ? s->value : d ? d->shown_default : "";
            }
            if (!text)
                text = ""; /* a labelled axis of another grid */
            if (!(tb->values[k * nc + c] = strdup(text))) {
                free(v);
                return xb_fail(ld->err, XB_ENOMEM, "out of memory");
            }
        }
        free(v);
    }
    return XB_OK;
}

static int expand_points(loader *ld)
{
    xb_tb *tb = ld->tb;
    tb->n_points = 0;
    for (size_t g = 0; g < tb->n_grids; g++) {
        if (tb->n_points > TB_MAX_POINTS - tb->grids[g].n_points)
            return xb_fail(ld->err, XB_EINPUT, "%s: the sweep has more than %d points; allowed: fewer", tb->path,
                           TB_MAX_POINTS);
        tb->n_points += tb->grids[g].n_points;
    }
    tb->point_grid = calloc(tb->n_points ? tb->n_points : 1, sizeof *tb->point_grid);
    tb->point_idx = calloc(tb->n_points ? tb->n_points : 1, sizeof *tb->point_idx);
    if (!tb->point_grid || !tb->point_idx)
        return xb_fail(ld->err, XB_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t gi = 0; gi < tb->n_grids; gi++) {
        const grid *g = &tb->grids[gi];
        for (size_t p = 0; p < g->n_points; p++, k++) {
            tb->point_grid[k] = gi;
            if (!(tb->point_idx[k] = calloc(TB_MAX_AXES, sizeof **tb->point_idx)))
                return xb_fail(ld->err, XB_ENOMEM, "out of memory");
            /* The first axis varies slowest, like nested loops written in order. */
            size_t rest = p;
            for (int a = g->n_axes; a-- > 0;) {
                tb->point_idx[k][a] = rest % g->axes[a].n_values;
                rest /= g->axes[a].n_values;
            }
        }
    }
    /* Columns: every parameter set or swept anywhere, then labelled axes' names. */
    for (size_t gi = 0; gi < tb->n_grids; gi++) {
        const grid *g = &tb->grids[gi];
        for (size_t i = 0; i < g->n_sets; i++) {
            char param[128];
            snprintf(param, sizeof param, "%s.%s", g->sets[i].key, g->sets[i].attr);
            if (add_column(tb, param, ld->err))
                return XB_ENOMEM;
        }
        for (int a = 0; a < g->n_axes; a++)
            for (size_t v = 0; v < g->axes[a].n_values; v++)
                for (size_t i = 0; i < g->axes[a].n_sets[v]; i++) {
                    char param[128];
                    snprintf(param, sizeof param, "%s.%s", g->axes[a].sets[v][i].key, g->axes[a].sets[v][i].attr);
                    if (add_column(tb, param, ld->err))
                        return XB_ENOMEM;
                }
    }
    for (size_t gi = 0; gi < tb->n_grids; gi++)
        for (int a = 0; a < tb->grids[gi].n_axes; a++)
            if (tb->grids[gi].axes[a].labelled && add_column(tb, tb->grids[gi].axes[a].name, ld->err))
                return XB_ENOMEM;
    return fill_values(ld);
}

/* ------------------------------------------------------------------------------------------------ */
/* Values of one point */

typedef struct cfg_reader {
    const xb_tb *tb;
    const setting **v;
    size_t n;
    xb_error *err;
} cfg_reader;

/* The setting for key.attr and where it came from, or NULL for the default. */
static const setting *get(cfg_reader *r, const char *key, const char *attr)
{
    return lookup(r->v, r->n, key, attr);
}

static int bad_value(cfg_reader *r, const setting *s, const char *what)
{
    return xb_fail(r->err, XB_EINPUT, "%s:%d: parameter %s.%s = '%s': %s", r->tb->path, s->line, s->key, s->attr,
                   s->value, what);
}

static int get_double(cfg_reader *r, const char *key, const char *attr, double def, double lo, double hi, double *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    char *end;
    errno = 0;
    double x = strtod(s->value, &end);
    if (errno || end == s->value || *end || !isfinite(x) || x < lo || x > hi) {
        char what[128];
        snprintf(what, sizeof what, "allowed: a number from %g to %g", lo, hi);
        return bad_value(r, s, what);
    }
    *out = x;
    return XB_OK;
}

/* A count; "all" (when all_ok) gives 0. */
static int get_size(cfg_reader *r, const char *key, const char *attr, size_t def, size_t lo, size_t hi, int all_ok,
                    size_t *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    if (all_ok && !strcmp(s->value, "all")) {
        *out = 0;
        return XB_OK;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s->value, &end, 10);
    if (errno || end == s->value || *end || s->value[0] == '-' || x < lo || x > hi) {
        char what[128];
        snprintf(what, sizeof what, "allowed: a whole number from %zu to %zu%s", lo, hi, all_ok ? ", or all" : "");
        return bad_value(r, s, what);
    }
    *out = (size_t)x;
    return XB_OK;
}

static int get_choice(cfg_reader *r, const char *key, const char *attr, const char *const *choices, int def, int *out)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        *out = def;
        return XB_OK;
    }
    char allowed[256] = "allowed: ";
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(s->value, choices[i])) {
            *out = i;
            return XB_OK;
        }
        size_t at = strlen(allowed);
        snprintf(allowed + at, sizeof allowed - at, "%s%s", i ? ", " : "", choices[i]);
    }
    return bad_value(r, s, allowed);
}

/* A path from the file: relative paths are relative to the testbench's folder. */
static int get_path(cfg_reader *r, const char *key, const char *attr, const char *def, char *out, size_t len)
{
    const setting *s = get(r, key, attr);
    if (!s) {
        snprintf(out, len, "%s", def);
        return XB_OK;
    }
    int n = s->value[0] == '/' ? snprintf(out, len, "%s", s->value) : snprintf(out, len, "%s/%s", r->tb->dir, s->value);
    if (n < 0 || (size_t)n >= len)
        return bad_value(r, s, "allowed: a shorter path");
    /* Without . and .. where the path exists (tb->dir is absolute, so the path is too). */
    char *real = realpath(out, NULL);
    if (real && strlen(real) < len)
        snprintf(out, len, "%s", real);
    free(real);
    return XB_OK;
}

static int get_text(cfg_reader *r, const char *key, const char *attr, const char *def, char *out, size_t len)
{
    const setting *s = get(r, key, attr);
    const char *v = s ? s->value : def;
    if (strlen(v) >= len)
        return bad_value(r, s, "allowed: a shorter value");
    snprintf(out, len, "%s", v);
    return XB_OK;
}

/* Check a layer selector's form (which layers exist is checked once the network is known). */
static int check_layers_form(cfg_reader *r, const char *key, char *out, size_t len)
{
    int rc = get_text(r, key, "layers", "all", out, len);
    if (rc)
        return rc;
    unsigned long long mask;
    xb_error tmp = {0};
    if (xb_layers_parse(out, 64, &mask, &tmp)) {
        const setting *s = get(r, key, "layers");
        return bad_value(r, s, "allowed: all, first, last, or layer numbers joined by '+', e.g. 1 or 1+2");
    }
    return XB_OK;
}


static int read_hidden(cfg_reader *r, xb_tb_config *c)
{
    const setting *s = get(r, "network", "hidden");
    const char *v = s ? s->value : "100";
    c->n_hidden = 0;
    if (!strcmp(v, "none") || !strcmp(v, "0"))
        return XB_OK;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < 1 || x > 100000 || (*end && *end != ',') || c->n_hidden == XB_TB_MAX_HIDDEN)
            return bad_value(r, s, "allowed: hidden sizes like 100 or 300,100 (each 1..100000), or none for the SLP");
        c->hidden[c->n_hidden++] = (size_t)x;
        p = *end ? end + 1 : end;
    }
    return XB_OK;
}

static int read_perturb(cfg_reader *r, const char *key, xb_tb_config *c)
{
    static const char *const models[] = {"none", "c2c", "c2c-level", "mult", "lognormal", "additive", "d2d", "stuck",
                                         NULL};
    static const xb_perturb_kind kinds[] = {XB_PERTURB_NONE, XB_PERTURB_C2C, XB_PERTURB_C2C_LEVEL, XB_PERTURB_MULT,
                                            XB_PERTURB_LOGNORMAL, XB_PERTURB_ADDITIVE, XB_PERTURB_D2D,
                                            XB_PERTURB_STUCK};
    int m, rc;
    if ((rc = get_choice(r, key, "model", models, 0, &m)))
        return rc;
    xb_tb_perturb *p = &c->perturb[c->n_perturb++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", key);
    p->model.kind = kinds[m];
    double ar = 1, sigma = 0, alpha = 0, lrs = 0, hrs = 0;
    if ((rc = get_double(r, key, "ar", 1, 0, 1, &ar)) || (rc = get_double(r, key, "sigma", 0, 0, 1e6, &sigma)) ||
        (rc = get_double(r, key, "alpha", 0, 0, 1e6, &alpha)) || (rc = get_double(r, key, "lrs", 0, 0, 1, &lrs)) ||
        (rc = get_double(r, key, "hrs", 0, 0, 1, &hrs)))
        return rc;
    /* Parameters a model does not use stay 0, as xb_perturb_parse leaves them. */
    switch (p->model.kind) {
    case XB_PERTURB_C2C:
    case XB_PERTURB_C2C_LEVEL: p->model.ar = ar; p->model.sigma = sigma; break;
    case XB_PERTURB_MULT: p->model.alpha = alpha; break;
    case XB_PERTURB_LOGNORMAL:
    case XB_PERTURB_ADDITIVE:
    case XB_PERTURB_D2D: p->model.sigma = sigma; break;
    case XB_PERTURB_STUCK: p->model.p_lrs = lrs; p->model.p_hrs = hrs; break;
    default: break;
    }
    xb_error why = {0};
    if (xb_perturb_check(&p->model, &why)) {
        const setting *s = get(r, key, "hrs");
        if (!s)
            s = get(r, key, "lrs");
        if (!s)
            s = get(r, key, "model");
        return xb_fail(r->err, XB_EINPUT, "%s:%d: perturbation %s: %s", r->tb->path, s ? s->line : 1, key, why.msg);
    }
    return check_layers_form(r, key, p->layers, sizeof p->layers);
}

static int read_config(cfg_reader *r, int quick, xb_tb_config *c)
{
    const xb_tb *tb = r->tb;
    memset(c, 0, sizeof *c);
    int rc, choice;
    /* dataset */
    const setting *ds = get(r, "dataset", "name");
    if (!ds || !strcmp(ds->value, "mnist") || !strcmp(ds->value, "fashion-mnist"))
        snprintf(c->dataset, sizeof c->dataset, "%s", ds ? ds->value : "mnist");
    else if ((rc = get_path(r, "dataset", "name", "", c->dataset, sizeof c->dataset)))
        return rc;
    if ((rc = get_size(r, "dataset", "images", 0, 1, 1000000000, 1, &c->images)) ||
        (rc = get_size(r, "dataset", "calib", 256, 1, 1000000000, 0, &c->calib)))
        return rc;
    /* network */
    if ((rc = get_path(r, "network", "weights", "", c->weights, sizeof c->weights)) || (rc = read_hidden(r, c)))
        return rc;
    static const char *const acts[] = {"sigmoid", "relu", NULL};
    const setting *act = get(r, "network", "activation");
    if ((rc = get_choice(r, "network", "activation", acts, 0, &choice)))
        return rc;
    c->activation = choice == 1 ? XB_ACT_RELU : XB_ACT_SIGMOID;
    if (c->weights[0] && !act)
        c->activation = -1;
    const setting *lr = get(r, "network", "lr");
    c->lr = NAN;
    if (lr && strcmp(lr->value, "auto") && (rc = get_double(r, "network", "lr", NAN, 1e-12, 1e3, &c->lr)))
        return rc;
    /* Training defaults are `xbarsim train`'s, from the one place that holds them. */
    xb_train_options td;
    xb_train_defaults(&td);
    if ((rc = get_size(r, "network", "epochs", td.epochs, 1, 100000, 0, &c->epochs)) ||
        (rc = get_size(r, "network", "batch", td.batch, 1, 1000000, 0, &c->batch)) ||
        (rc = get_size(r, "network", "train-images", 0, 1, 1000000000, 1, &c->train_images)) ||
        (rc = get_double(r, "network", "momentum", td.momentum, 0, 0.999999, &c->momentum)) ||
        (rc = get_double(r, "network", "weight-decay", td.weight_decay, 0, 1e3, &c->weight_decay)))
        return rc;
    size_t seed;
    if ((rc = get_size(r, "network", "seed", td.seed, 0, 4294967295u, 0, &seed)))
        return rc;
    c->train_seed = (unsigned long)seed;
    /* device */
    if ((rc = get_path(r, "device", "file", XB_SOURCE_DIR "/models/hfo2_1t1r.xml", c->device_file,
                       sizeof c->device_file)) ||
        (rc = get_double(r, "device", "v-read", NAN, 1e-6, 100, &c->v_read_V)) ||
        (rc = get_double(r, "device", "vg-read", NAN, 1e-6, 100, &c->vg_read_V)) ||
        (rc = get_double(r, "device", "d2d", NAN, 0, 10, &c->sigma_d2d)) ||
        (rc = get_double(r, "device", "stuck-lrs", NAN, 0, 1, &c->p_stuck_lrs)) ||
        (rc = get_double(r, "device", "stuck-hrs", NAN, 0, 1, &c->p_stuck_hrs)) ||
        (rc = get_double(r, "device", "sigma-c2c", NAN, 0, 10, &c->sigma_c2c)) ||
        (rc = get_path(r, "device", "mosfet-file", "", c->mosfet_file, sizeof c->mosfet_file)) ||
        (rc = get_text(r, "device", "mosfet-model", "", c->mosfet_model, sizeof c->mosfet_model)) ||
        (rc = get_path(r, "device", "rram-file", "", c->rram_file, sizeof c->rram_file)))
        return rc;
    /* chip */
    static const char *const mappings[] = {"differential", "single-ended", NULL}, *const biases[] = {"row", "digital", NULL},
                             *const programs[] = {"ideal", "exact", "igvva", NULL};
    if ((rc = get_text(r, "chip", "norm", "maxabs", c->norm, sizeof c->norm)) ||
        (rc = get_choice(r, "chip", "mapping", mappings, 0, &c->single_ended)) ||
        (rc = get_choice(r, "chip", "bias", biases, 0, &c->digital_bias)) ||
        (rc = get_choice(r, "chip", "program", programs, 0, &choice)))
        return rc;
    c->program = (xb_tb_program)choice;
    /* The chip build's own parsers, as the CLI's --norm, --mapping, --bias and --tile. */
    xb_chip_spec_defaults(&c->chip);
    c->chip.scheme = c->single_ended ? XB_MAP_SINGLE_ENDED : XB_MAP_DIFFERENTIAL;
    c->chip.bias = c->digital_bias ? XB_BIAS_DIGITAL : XB_BIAS_ROW;
    c->chip.calib = c->calib;
    xb_error ignored = {0};
    if (xb_chip_spec_set_norm(&c->chip, c->norm, &ignored))
        return bad_value(r, get(r, "chip", "norm"), "allowed: maxabs or clip:C with C > 0");
    const setting *tile = get(r, "chip", "tile");
    if (tile && (xb_chip_spec_set_tile(&c->chip, tile->value, &ignored) || (!c->single_ended && c->chip.tile_cols % 2)))
        return bad_value(r, tile, "allowed: ROWSxCOLS such as 64x64, at least 1x2, an even width for differential pairs");
    c->tile_rows = c->chip.tile_rows;
    c->tile_cols = c->chip.tile_cols;
    /* levels and perturbations, in the order written */
    for (size_t i = 0; i < tb->n_elements; i++) {
        const element *e = &tb->elements[i];
        if (e->k == K_LEVELS) {
            xb_tb_levels *L = &c->levels[c->n_levels++];
            snprintf(L->id, sizeof L->id, "%s", e->key);
            if ((rc = get_text(r, e->key, "spec", "none", L->spec, sizeof L->spec)) ||
                (rc = check_layers_form(r, e->key, L->layers, sizeof L->layers)))
                return rc;
            if (strchr(L->spec, '/'))
                return bad_value(r, get(r, e->key, "spec"), "allowed: one level set; choose layers with the layers "
                                 "attribute or one <levels> element per layer");
        } else if (e->k == K_PERTURB && (rc = read_perturb(r, e->key, c))) {
            return rc;
        }
    }
    /* behavioral */
    static const char *const ranges[] = {"calibrate", "levels", NULL};
    size_t dac, adc;
    if ((rc = get_size(r, "behavioral", "dac-bits", 0, 0, 24, 0, &dac)) ||
        (rc = get_size(r, "behavioral", "adc-bits", 0, 0, 24, 0, &adc)) ||
        (rc = get_choice(r, "behavioral", "adc-range", ranges, 0, &choice)) ||
        (rc = get_double(r, "behavioral", "read-noise", 0, 0, 10, &c->read_noise)))
        return rc;
    c->dac_bits = (int)dac;
    c->adc_bits = (int)adc;
    c->adc_calibrate = choice == 0;
    /* spice */
    static const char *const cells[] = {"1t1r", "linear", NULL}, *const modes[] = {"exact", "linear", NULL};
    xb_pool_defaults(&c->pool);
    int linear_cells, linear_mode;
    size_t jobs = 0;
    const setting *js = get(r, "spice", "jobs");
    if ((rc = get_choice(r, "spice", "cells", cells, 0, &linear_cells)) ||
        (rc = get_choice(r, "spice", "mode", modes, 0, &linear_mode)) ||
        (rc = get_double(r, "spice", "r-row", 1, 0, 1e6, &c->pool.net.r_row_ohm)) ||
        (rc = get_double(r, "spice", "r-col", 1, 0, 1e6, &c->pool.net.r_col_ohm)) ||
        (rc = get_double(r, "spice", "rram-v0", 0, 0, 100, &c->pool.net.rram_v0_V)) ||
        (rc = get_size(r, "spice", "linear-sample", 20, 0, 100000, 0, &c->pool.linear_sample)) ||
        (rc = get_size(r, "spice", "chunk", 250, 1, 1000000, 0, &c->pool.chunk)) ||
        (js && strcmp(js->value, "auto") && (rc = get_size(r, "spice", "jobs", 0, 1, 1024, 0, &jobs))))
        return rc;
    static const char *const rows[] = {"auto", "external", "pwl", NULL};
    int row_drive;
    if ((rc = get_choice(r, "spice", "rows", rows, 0, &row_drive)))
        return rc;
    c->pool.net.row_drive = row_drive == 1 ? XB_ROWS_EXTERNAL : row_drive == 2 ? XB_ROWS_PWL : XB_ROWS_AUTO;
    c->pool.net.linear_cells = linear_cells;
    c->pool.linear = linear_mode;
    if (jobs)
        c->pool.jobs = (int)jobs;
    if (c->pool.linear && !c->pool.net.linear_cells)
        return bad_value(r, get(r, "spice", "mode"), "the linear mode needs linear cells (spice cells=\"linear\"): "
                         "superposition does not hold for 1T1R cells");
    /* backends and Monte Carlo */
    const setting *be = get(r, "backends", "use");
    c->backends = XB_BACKEND_IDEAL | (be ? 0 : XB_BACKEND_BEHAVIORAL);
    if (be) {
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", be->value);
        for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
            c->backends |= !strcmp(t, "spice") ? XB_BACKEND_SPICE : !strcmp(t, "behavioral") ? XB_BACKEND_BEHAVIORAL : 0;
    }
    if ((rc = get_size(r, "montecarlo", "trials", 1, 1, 1000000, 0, &c->trials)) ||
        (rc = get_size(r, "montecarlo", "seed", 1, 0, 4294967295u, 0, &seed)))
        return rc;
    c->seed = (unsigned long)seed;
    if (quick) {
        if (!c->images || c->images > tb->quick_images)
            c->images = tb->quick_images;
        if (c->trials > tb->quick_trials)
            c->trials = tb->quick_trials;
        if (c->epochs > tb->quick_epochs)
            c->epochs = tb->quick_epochs;
        if (!c->train_images || c->train_images > tb->quick_train)
            c->train_images = tb->quick_train;
        if (c->calib > c->train_images)
            c->calib = c->train_images;
    }
    c->chip.calib = c->calib;
    return XB_OK;
}

int xb_tb_config_of(const xb_tb *tb, size_t k, int quick, xb_tb_config *cfg, xb_error *err)
{
    if (k >= tb->n_points)
        return xb_fail(err, XB_EINPUT, "%s: point %zu does not exist (%zu points)", tb->path, k + 1, tb->n_points);
    cfg_reader r = {tb, NULL, 0, err};
    if (!(r.v = point_settings(tb, k, &r.n)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    int rc = read_config(&r, quick, cfg);
    free(r.v);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* Outputs */

/* Is name usable in an output: a column, a derived value, "backend" where allowed? */
static int check_output_param(loader *ld, int line, const char *what, const char *name, int backend_ok)
{
    if (xb_tb_column_index(ld->tb, name) >= 0 || is_derived(name) || (backend_ok && !strcmp(name, "backend")))
        return XB_OK;
    char cols[600] = "";
    size_t at = 0;
    for (size_t c = 0; c < ld->tb->n_columns && at < sizeof cols; c++)
        at += (size_t)snprintf(cols + at, sizeof cols - at, "%s%s", c ? ", " : "", ld->tb->columns[c]);
    return FAIL_AT(ld, line, "%s '%s' is not swept here; allowed: %s%s, network.synapses, network.layers, network.neurons%s", what, name,
                   cols, at ? "" : "(no swept parameters)", backend_ok ? ", backend" : "");
}

static int split_list(loader *ld, int line, const char *text, char list[][128], int *n)
{
    char copy[600], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    *n = 0;
    for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
        if (*n == XB_TB_MAX_LIST)
            return FAIL_AT(ld, line, "more than %d parameters in '%s'", XB_TB_MAX_LIST, text);
        snprintf(list[(*n)++], 128, "%s", t);
    }
    return XB_OK;
}

/* Points an output draws as one (same values of x, series and by) must be the same point in every
 * other column too; otherwise a parameter that also varies would be silently averaged or overdrawn.
 * Sort the points by their named values, then compare each with the first of its run. */
typedef struct cover_ctx {
    const xb_tb *tb;
    const xb_tb_output *o;
} cover_ctx;

static int named_in(const xb_tb_output *o, const char *col)
{
    int named = !strcmp(o->x, col);
    for (int i = 0; i < o->n_series; i++)
        named |= !strcmp(o->series[i], col);
    for (int i = 0; i < o->n_by; i++)
        named |= !strcmp(o->by[i], col);
    return named;
}

static int cmp_named(const void *pa, const void *pb, void *arg)
{
    const cover_ctx *cc = arg;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    for (size_t c = 0; c < cc->tb->n_columns; c++)
        if (named_in(cc->o, cc->tb->columns[c])) {
            int d = strcmp(xb_tb_value(cc->tb, a, c), xb_tb_value(cc->tb, b, c));
            if (d)
                return d;
        }
    return (a > b) - (a < b);
}

static int check_covered(loader *ld, const xb_tb_output *o)
{
    xb_tb *tb = ld->tb;
    /* A derived x (synapses, layers, neurons) is a function of the network parameters that vary with it;
     * points sharing a value are drawn side by side. */
    if (is_derived(o->x))
        return XB_OK;
    size_t *idx = malloc((tb->n_points ? tb->n_points : 1) * sizeof *idx), n = 0;
    if (!idx)
        return xb_fail(ld->err, XB_ENOMEM, "out of memory");
    for (size_t k = 0; k < tb->n_points; k++)
        if (!o->grid[0] || !strcmp(xb_tb_grid(tb, k), o->grid))
            idx[n++] = k;
    cover_ctx cc = {tb, o};
    qsort_r(idx, n, sizeof *idx, cmp_named, &cc);
    int rc = XB_OK;
    size_t first = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        int same = 1;
        for (size_t c = 0; c < tb->n_columns && same; c++)
            if (named_in(o, tb->columns[c]))
                same = !strcmp(xb_tb_value(tb, idx[i], c), xb_tb_value(tb, idx[first], c));
        if (!same) {
            first = i;
            continue;
        }
        for (size_t c = 0; c < tb->n_columns && !rc; c++)
            if (strcmp(xb_tb_value(tb, idx[i], c), xb_tb_value(tb, idx[first], c)))
                rc = FAIL_AT(ld, o->line, "element <%s>: '%s' also varies (%s, %s) where the named parameters agree "
                             "(points %zu and %zu); allowed: name it in series or by, or choose a grid with "
                             "grid=\"LABEL\"",
                             o->kind == XB_OUT_MIDPOINT ? "midpoint" : o->kind == XB_OUT_SPEARMAN ? "spearman"
                             : o->kind == XB_OUT_KRUSKAL ? "kruskal" : "plot", tb->columns[c],
                             xb_tb_value(tb, idx[first], c), xb_tb_value(tb, idx[i], c), idx[first] + 1, idx[i] + 1);
    }
    free(idx);
    return rc;
}

static int read_output(loader *ld, const xmlNode *n)
{
    xb_tb *tb = ld->tb;
    xb_tb_output o;
    memset(&o, 0, sizeof o);
    o.line = node_line(n);
    const char *el = (const char *)n->name;
    char *kind = xb_xml_attr(n, "kind"), *name = xb_xml_attr(n, "name"), *x = xb_xml_attr(n, "x"),
         *y = xb_xml_attr(n, "y"), *series = xb_xml_attr(n, "series"), *by = xb_xml_attr(n, "by"),
         *backend = xb_xml_attr(n, "backend"), *logx = xb_xml_attr(n, "logx"), *logy = xb_xml_attr(n, "logy"),
         *gridl = xb_xml_attr(n, "grid"), *title = xb_xml_attr(n, "title"), *bins = xb_xml_attr(n, "bins"),
         *scale = xb_xml_attr(n, "scale");
    int rc = XB_OK;
    o.kind = !strcmp(el, "plot") ? XB_OUT_PLOT : !strcmp(el, "midpoint") ? XB_OUT_MIDPOINT
             : !strcmp(el, "spearman") ? XB_OUT_SPEARMAN : !strcmp(el, "kruskal") ? XB_OUT_KRUSKAL : XB_OUT_EXAMPLE;
    snprintf(o.x, sizeof o.x, "%s", x ? x : "");
    snprintf(o.title, sizeof o.title, "%s", title ? title : "");
    snprintf(o.grid, sizeof o.grid, "%s", gridl ? gridl : "");
    o.metric_delta = y && !strcmp(y, "delta_accuracy");
    o.logx = logx && !strcmp(logx, "true");
    o.logy = logy && !strcmp(logy, "true");
    o.fit_log = scale && !strcmp(scale, "log");
    o.backend = !backend ? 0 : !strcmp(backend, "spice") ? XB_BACKEND_SPICE
                : !strcmp(backend, "behavioral") ? XB_BACKEND_BEHAVIORAL : XB_BACKEND_IDEAL;
    if (series)
        rc = split_list(ld, o.line, series, o.series, &o.n_series);
    if (!rc && by)
        rc = split_list(ld, o.line, by, o.by, &o.n_by);
    if (!rc && o.grid[0]) {
        int found = 0;
        for (size_t g = 0; g < tb->n_grids; g++)
            found |= !strcmp(tb->grids[g].label, o.grid);
        if (!found)
            rc = FAIL_AT(ld, o.line, "element <%s>: grid '%s' does not exist; allowed: the label of a <grid> (or its "
                         "number from 1)", el, o.grid);
    }
    int sweepish = o.kind != XB_OUT_EXAMPLE;
    if (!rc && sweepish) {
        if (!o.x[0])
            rc = FAIL_AT(ld, o.line, "element <%s>: needs x=\"PARAMETER\", the swept parameter on the x axis", el);
        if (!rc)
            rc = check_output_param(ld, o.line, "x", o.x, o.kind == XB_OUT_PLOT);
        for (int i = 0; !rc && i < o.n_series; i++)
            rc = check_output_param(ld, o.line, "series", o.series[i], 1);
        for (int i = 0; !rc && i < o.n_by; i++)
            rc = check_output_param(ld, o.line, "by", o.by[i], 1);
        if (!rc && o.kind != XB_OUT_PLOT && o.n_series)
            rc = FAIL_AT(ld, o.line, "element <%s>: takes by=\"...\" for groups, not series", el);
        if (!rc)
            rc = check_covered(ld, &o);
    }
    if (!rc && o.kind == XB_OUT_KRUSKAL) {
        char *p = bins, *end;
        while (!rc && p && *p) {
            while (isspace((unsigned char)*p))
                p++;
            if (!*p)
                break;
            double v = strtod(p, &end);
            if (end == p || o.n_bins == 17 || (o.n_bins && !(v > o.bins[o.n_bins - 1])))
                rc = FAIL_AT(ld, o.line, "element <kruskal>: bins '%s'; allowed: 3 to 17 ascending edges, e.g. \"0 4096 "
                             "8192\" (groups [0, 4096) and [4096, 8192))", bins);
            else
                o.bins[o.n_bins++] = v;
            p = end;
        }
        if (!rc && o.n_bins < 3)
            rc = FAIL_AT(ld, o.line, "element <kruskal>: needs bins=\"E0 E1 E2 ...\", at least 3 edges (2 groups)");
    }
    if (!rc && o.kind == XB_OUT_EXAMPLE) {
        char *a;
        o.point = (a = xb_xml_attr(n, "point")) ? strtoul(a, NULL, 10) : 1;
        xmlFree(a);
        o.layer = (a = xb_xml_attr(n, "layer")) ? strtoul(a, NULL, 10) : 1;
        xmlFree(a);
        o.row_tile = (a = xb_xml_attr(n, "row-tile")) ? strtoul(a, NULL, 10) : 0;
        xmlFree(a);
        o.col_tile = (a = xb_xml_attr(n, "col-tile")) ? strtoul(a, NULL, 10) : 0;
        xmlFree(a);
        o.input = (a = xb_xml_attr(n, "input")) ? strtoul(a, NULL, 10) : 0;
        xmlFree(a);
        if (o.layer < 1 || o.point < 1 || o.point > tb->n_points)
            rc = FAIL_AT(ld, o.line, "element <example>: point %zu, layer %zu; allowed: points 1..%zu and layers from 1",
                         o.point, o.layer, tb->n_points);
        for (size_t i = 0; !rc && i < tb->n_outputs; i++)
            if (tb->outputs[i].kind == XB_OUT_EXAMPLE)
                rc = FAIL_AT(ld, o.line, "element <example>: a second one; allowed: one <example>");
    }
    if (!rc) {
        /* A default file stem from what is drawn. */
        if (name)
            snprintf(o.name, sizeof o.name, "%s", name);
        else {
            static const char *const stems[] = {"plot", "midpoint", "spearman", "kruskal", "example"};
            char x_clean[128];
            snprintf(x_clean, sizeof x_clean, "%s", o.x);
            for (char *q = x_clean; *q; q++)
                if (*q == '.')
                    *q = '_';
            snprintf(o.name, sizeof o.name, "%s%s%.40s-%zu", stems[o.kind], o.x[0] ? "-" : "", x_clean,
                     tb->n_outputs + 1);
        }
        for (size_t i = 0; i < tb->n_outputs && !rc; i++)
            if (!strcmp(tb->outputs[i].name, o.name) && o.kind != XB_OUT_EXAMPLE)
                rc = FAIL_AT(ld, o.line, "element <%s>: name '%s' is used by the output at line %d; allowed: a unique name",
                             el, o.name, tb->outputs[i].line);
    }
    if (!rc) {
        xb_tb_output *grown = realloc(tb->outputs, (tb->n_outputs + 1) * sizeof *grown);
        if (!grown)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        else {
            tb->outputs = grown;
            grown[tb->n_outputs++] = o;
        }
    }
    xmlFree(kind);
    xmlFree(name);
    xmlFree(x);
    xmlFree(y);
    xmlFree(series);
    xmlFree(by);
    xmlFree(backend);
    xmlFree(logx);
    xmlFree(logy);
    xmlFree(gridl);
    xmlFree(title);
    xmlFree(bins);
    xmlFree(scale);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */

static void read_quick(xb_tb *tb, const xmlNode *n)
{
    tb->quick_images = 500;
    tb->quick_trials = 2;
    tb->quick_epochs = 1;
    tb->quick_train = 5000;
    if (!n)
        return;
    const char *names[4] = {"images", "trials", "epochs", "train-images"};
    size_t *fields[4] = {&tb->quick_images, &tb->quick_trials, &tb->quick_epochs, &tb->quick_train};
    for (int i = 0; i < 4; i++) {
        char *v = xb_xml_attr(n, names[i]);
        if (v && strtoul(v, NULL, 10) > 0)
            *fields[i] = strtoul(v, NULL, 10);
        xmlFree(v);
    }
}

static int load_tree(loader *ld, xmlNodePtr root)
{
    xb_tb *tb = ld->tb;
    char *name = xb_xml_attr(root, "name");
    snprintf(tb->name, sizeof tb->name, "%s", name ? name : "");
    xmlFree(name);
    const xmlNode *sweep = NULL, *output = NULL, *quick = NULL;
    int rc = XB_OK;
    for (const xmlNode *n = root->children; n && !rc; n = n->next) {
        if (!is_element(n, NULL))
            continue;
        const char *el = (const char *)n->name;
        int k = -1;
        for (int j = 0; j < K_N; j++)
            if (!strcmp(el, kind_names[j]))
                k = j;
        if (k >= 0)
            rc = read_config_element(ld, n, (kind)k);
        else if (!strcmp(el, "title")) {
            xmlChar *t = xmlNodeGetContent(n);
            snprintf(tb->title, sizeof tb->title, "%s", t ? (const char *)t : "");
            xmlFree(t);
        } else if (!strcmp(el, "sweep"))
            sweep = n;
        else if (!strcmp(el, "output"))
            output = n;
        else if (!strcmp(el, "quick"))
            quick = n;
    }
    read_quick(tb, quick);
    /* Grids: <grid> children, or the sweep itself, or one point without a sweep. */
    size_t n_grids = 0;
    for (const xmlNode *n = sweep ? sweep->children : NULL; n; n = n->next)
        n_grids += is_element(n, "grid");
    size_t alloc = n_grids ? n_grids : 1;
    if (!rc && !(tb->grids = calloc(alloc, sizeof *tb->grids)))
        rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
    if (!rc && n_grids) {
        for (const xmlNode *n = sweep->children; n && !rc; n = n->next)
            if (is_element(n, "grid")) {
                rc = read_grid(ld, n, &tb->grids[tb->n_grids], tb->n_grids);
                tb->n_grids++;
                for (size_t g = 0; !rc && g + 1 < tb->n_grids; g++)
                    if (!strcmp(tb->grids[g].label, tb->grids[tb->n_grids - 1].label))
                        rc = FAIL_AT(ld, node_line(n), "element <grid>: label '%s' is used twice; allowed: distinct "
                                     "labels", tb->grids[g].label);
            }
    } else if (!rc) {
        tb->n_grids = 1;
        if (sweep)
            rc = read_grid(ld, sweep, &tb->grids[0], 0);
        else
            tb->grids[0].n_points = 1;
    }
    if (!rc)
        rc = expand_points(ld);
    /* Every point's values, checked now so a bad value stops the run before anything is computed. */
    for (size_t k = 0; k < tb->n_points && !rc; k++) {
        xb_tb_config cfg;
        rc = xb_tb_config_of(tb, k, 0, &cfg, ld->err);
    }
    for (const xmlNode *n = output ? output->children : NULL; n && !rc; n = n->next)
        if (is_element(n, NULL))
            rc = read_output(ld, n);
    return rc;
}

static const xb_xml_hint tb_hints[] = {
    {"'name'", "; allowed: a name of 1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit"},
    {"'count'", "; allowed: a whole number"},
    {"'number'", "; allowed: a number such as 0.5 or 1e-3"},
    {"'param'", "; allowed: ELEMENT.ATTRIBUTE, e.g. network.hidden or c2c.sigma"},
    {"'column'", "; allowed: a swept parameter (ELEMENT.ATTRIBUTE), an axis name, or backend"},
    {"'backendList'", "; allowed: ideal, behavioral and/or spice, separated by spaces"},
    {"'backend'", "; allowed: ideal, behavioral or spice"},
    {"'metric'", "; allowed: accuracy or delta_accuracy"},
    {"'bool'", "; allowed: true or false"},
    {"'text'", "; allowed: 1 to 4000 characters"},
};

int xb_tb_load(const char *path, const char *xsd, xb_tb **out, xb_error *err)
{
    *out = NULL;
    if (!path)
        return xb_fail(err, XB_EINPUT, "no testbench file given");
    xb_tb *tb = calloc(1, sizeof *tb);
    if (!tb)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    if (strlen(path) >= sizeof tb->path - 1) {
        free(tb);
        return xb_fail(err, XB_EINPUT, "%.200s...: path too long", path);
    }
    snprintf(tb->path, sizeof tb->path, "%s", path);
    const char *slash = strrchr(path, '/');
    /* The folder relative paths start at, made absolute: the device's model files end up in decks that
     * ngspice reads in a worker's own folder, where a path relative to this working folder is lost. */
    char cwd[2048];
    int len = slash ? (int)(slash - path) : 0;
    if (slash == path)
        len = 1; /* the root folder */
    if (path[0] == '/')
        snprintf(tb->dir, sizeof tb->dir, "%.*s", len, path);
    else if (!getcwd(cwd, sizeof cwd)) {
        free(tb);
        return xb_fail(err, XB_ERUNTIME, "%s: cannot resolve its folder: the working folder is unknown (%s)", path,
                       strerror(errno));
    } else if (snprintf(tb->dir, sizeof tb->dir, "%s%s%.*s", cwd, len ? "/" : "", len, path) >= (int)sizeof tb->dir) {
        free(tb);
        return xb_fail(err, XB_EINPUT, "%.200s...: path too long", path);
    }
    char schema[4200];
    xmlDocPtr doc = NULL;
    int rc = xb_xml_find_schema(path, xsd, "testbench.xsd", XB_SOURCE_DIR "/testbenches/testbench.xsd", schema,
                                sizeof schema, err);
    if (!rc)
        rc = xb_sha256_file(path, tb->sha256, err);
    if (!rc)
        rc = xb_xml_load(path, schema, TB_MAX_FILE_BYTES, "testbench", tb_hints, sizeof tb_hints / sizeof tb_hints[0],
                         &doc, err);
    if (!rc) {
        loader ld = {tb, err};
        rc = load_tree(&ld, xmlDocGetRootElement(doc));
    }
    xmlFreeDoc(doc);
    if (rc)
        xb_tb_free(&tb);
    *out = tb;
    return rc;
}
