// testbench: loading a testbench file (schema, then the tree) into xb_tb; the accessors and free
#define _GNU_SOURCE
#include "tb_private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "xmlcheck.h"

#define TB_MAX_FILE_BYTES ((size_t)1 << 20)

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
int xb_tb_is_programming(const xb_tb *tb) { return tb->programming; }
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
            tb_free_axis(&tb->grids[g].axes[a]);
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

int tb_fail_at(loader *ld, int line, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return xb_fail(ld->err, XB_EINPUT, "%s:%d: %s", ld->tb->path, line, msg);
}

/* An element of the configuration: record it and its attributes. */
static int read_config_element(loader *ld, const xmlNode *n, kind k)
{
    xb_tb *tb = ld->tb;
    char key[64];
    char *id = xb_xml_attr(n, "id");
    snprintf(key, sizeof key, "%s", id ? id : tb_kind_names[k]);
    xmlFree(id);
    if (tb_find_element(tb, key))
        return FAIL_AT(ld, tb_node_line(n), "element <%s>: id '%s' is taken by the element at line %d; allowed: a unique id "
                       "per levels/perturb element", (const char *)n->name, key, tb_find_element(tb, key)->line);
    for (int j = 0; j < K_N; j++)
        if ((k == K_LEVELS || k == K_PERTURB) && !strcmp(key, tb_kind_names[j]) && j != (int)k)
            return FAIL_AT(ld, tb_node_line(n), "element <%s>: id '%s' is the name of an element; allowed: another id",
                           (const char *)n->name, key);
    element *grown = realloc(tb->elements, (tb->n_elements + 1) * sizeof *grown);
    if (!grown)
        return xb_fail(ld->err, XB_ENOMEM, "out of memory");
    tb->elements = grown;
    element *e = &grown[tb->n_elements++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->k = k;
    e->line = tb_node_line(n);
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        if (!strcmp(an, "id"))
            continue;
        char *v = xb_xml_attr(n, an);
        int rc = tb_add_setting(&tb->base, &tb->n_base, key, an, v ? v : "", e->line, ld->err);
        xmlFree(v);
        if (rc)
            return rc;
    }
    return XB_OK;
}

/* ------------------------------------------------------------------------------------------------ */

static void read_quick(xb_tb *tb, const xmlNode *n)
{
    tb->quick_images = 500;
    tb->quick_trials = 2;
    tb->quick_epochs = 1;
    tb->quick_train = 5000;
    tb->quick_cells = 4;
    if (!n)
        return;
    const char *names[5] = {"images", "trials", "epochs", "train-images", "cells"};
    size_t *fields[5] = {&tb->quick_images, &tb->quick_trials, &tb->quick_epochs, &tb->quick_train, &tb->quick_cells};
    for (int i = 0; i < 5; i++) {
        char *v = xb_xml_attr(n, names[i]);
        if (v && strtoul(v, NULL, 10) > 0)
            *fields[i] = strtoul(v, NULL, 10);
        xmlFree(v);
    }
}

/* A programming study (a <programming> element) programs cells and nothing else: only the device, the
 * Monte Carlo trials and the programming itself apply, in elements, sweeps and outputs alike. */
static int programming_key(const xb_tb *tb, const char *key)
{
    int k = tb_key_kind(tb, key);
    return k == K_DEVICE || k == K_MONTECARLO || k == K_PROGRAMMING;
}

static int check_setting_list(loader *ld, const setting *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ld->tb->programming && tb_key_kind(ld->tb, v[i].key) == K_PROGRAMMING)
            return FAIL_AT(ld, v[i].line, "parameter '%s.%s' without a <programming> element; allowed: programming "
                           "parameters in a programming study only (add <programming/> after <device>)", v[i].key,
                           v[i].attr);
        else if (ld->tb->programming && !programming_key(ld->tb, v[i].key))
            return FAIL_AT(ld, v[i].line, "parameter '%s.%s' in a programming study (a testbench with <programming>); "
                           "allowed: device, programming and montecarlo parameters", v[i].key, v[i].attr);
    return XB_OK;
}

static int check_programming(loader *ld, const xmlNode *output)
{
    xb_tb *tb = ld->tb;
    const element *p = tb_find_element(tb, "programming");
    tb->programming = p != NULL;
    if (!p)
        return XB_OK;
    for (size_t i = 0; i < tb->n_elements; i++)
        if (!programming_key(tb, tb->elements[i].key))
            return FAIL_AT(ld, tb->elements[i].line, "element <%s> in a programming study (a testbench with "
                           "<programming> at line %d programs cells, it trains and classifies nothing); allowed "
                           "beside it: device, montecarlo, quick, sweep", tb_kind_names[tb->elements[i].k], p->line);
    for (const xmlNode *n = output ? output->children : NULL; n; n = n->next)
        if (tb_is_element(n, NULL))
            return FAIL_AT(ld, tb_node_line(n), "element <%s> in a programming study: its figures are written for "
                           "every point (docs/testbench.md, \"Programming studies\"); allowed: no <output>",
                           (const char *)n->name);
    return XB_OK;
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
        if (!tb_is_element(n, NULL))
            continue;
        const char *el = (const char *)n->name;
        int k = -1;
        for (int j = 0; j < K_N; j++)
            if (!strcmp(el, tb_kind_names[j]))
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
    if (!rc)
        rc = check_programming(ld, output);
    /* Grids: <grid> children, or the sweep itself, or one point without a sweep. */
    size_t n_grids = 0;
    for (const xmlNode *n = sweep ? sweep->children : NULL; n; n = n->next)
        n_grids += tb_is_element(n, "grid");
    size_t alloc = n_grids ? n_grids : 1;
    if (!rc && !(tb->grids = calloc(alloc, sizeof *tb->grids)))
        rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
    if (!rc && n_grids) {
        for (const xmlNode *n = sweep->children; n && !rc; n = n->next)
            if (tb_is_element(n, "grid")) {
                rc = tb_read_grid(ld, n, &tb->grids[tb->n_grids], tb->n_grids);
                tb->n_grids++;
                for (size_t g = 0; !rc && g + 1 < tb->n_grids; g++)
                    if (!strcmp(tb->grids[g].label, tb->grids[tb->n_grids - 1].label))
                        rc = FAIL_AT(ld, tb_node_line(n), "element <grid>: label '%s' is used twice; allowed: distinct "
                                     "labels", tb->grids[g].label);
            }
    } else if (!rc) {
        tb->n_grids = 1;
        if (sweep)
            rc = tb_read_grid(ld, sweep, &tb->grids[0], 0);
        else
            tb->grids[0].n_points = 1;
    }
    for (size_t g = 0; g < tb->n_grids && !rc; g++) {
        const grid *gr = &tb->grids[g];
        rc = check_setting_list(ld, gr->sets, gr->n_sets);
        for (int a = 0; a < gr->n_axes && !rc; a++)
            for (size_t v = 0; v < gr->axes[a].n_values && !rc; v++)
                rc = check_setting_list(ld, gr->axes[a].sets[v], gr->axes[a].n_sets[v]);
    }
    if (!rc)
        rc = tb_expand_points(ld);
    /* Every point's values, checked now so a bad value stops the run before anything is computed. */
    for (size_t k = 0; k < tb->n_points && !rc; k++) {
        xb_tb_config cfg;
        rc = xb_tb_config_of(tb, k, 0, &cfg, ld->err);
    }
    for (const xmlNode *n = output ? output->children : NULL; n && !rc; n = n->next)
        if (tb_is_element(n, NULL))
            rc = tb_read_output(ld, n);
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
