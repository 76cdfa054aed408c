// tb_output: the <output> entries (plots, midpoints, rank tests, McNemar, the example), checked against the sweep
#define _GNU_SOURCE
#include "tb_private.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlcheck.h"


/* Is name usable in an output: a column, a derived value, "backend" where allowed? */
static int check_output_param(loader *ld, int line, const char *what, const char *name, int backend_ok)
{
    if (xb_tb_column_index(ld->tb, name) >= 0 || tb_is_derived(name) || (backend_ok && !strcmp(name, "backend")))
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
    for (int i = 0; i < o->n_over; i++)
        named |= !strcmp(o->over[i], col);
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
    if (tb_is_derived(o->x))
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
                             : o->kind == XB_OUT_KRUSKAL ? "kruskal" : o->kind == XB_OUT_MCNEMAR ? "mcnemar" : "plot",
                             tb->columns[c],
                             xb_tb_value(tb, idx[first], c), xb_tb_value(tb, idx[i], c), idx[first] + 1, idx[i] + 1);
    }
    free(idx);
    return rc;
}

int tb_read_output(loader *ld, const xmlNode *n)
{
    xb_tb *tb = ld->tb;
    xb_tb_output o;
    memset(&o, 0, sizeof o);
    o.line = tb_node_line(n);
    const char *el = (const char *)n->name;
    char *kind = xb_xml_attr(n, "kind"), *name = xb_xml_attr(n, "name"), *x = xb_xml_attr(n, "x"),
         *y = xb_xml_attr(n, "y"), *series = xb_xml_attr(n, "series"), *by = xb_xml_attr(n, "by"),
         *backend = xb_xml_attr(n, "backend"), *logx = xb_xml_attr(n, "logx"), *logy = xb_xml_attr(n, "logy"),
         *gridl = xb_xml_attr(n, "grid"), *title = xb_xml_attr(n, "title"), *bins = xb_xml_attr(n, "bins"),
         *scale = xb_xml_attr(n, "scale"), *over = xb_xml_attr(n, "over");
    int rc = XB_OK;
    o.kind = !strcmp(el, "plot") ? XB_OUT_PLOT : !strcmp(el, "midpoint") ? XB_OUT_MIDPOINT
             : !strcmp(el, "spearman") ? XB_OUT_SPEARMAN : !strcmp(el, "kruskal") ? XB_OUT_KRUSKAL
             : !strcmp(el, "mcnemar") ? XB_OUT_MCNEMAR : XB_OUT_EXAMPLE;
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
    if (!rc && over)
        rc = split_list(ld, o.line, over, o.over, &o.n_over);
    if (!rc && over && o.kind != XB_OUT_SPEARMAN && o.kind != XB_OUT_KRUSKAL)
        rc = FAIL_AT(ld, o.line, "element <%s>: over=\"...\" is for <spearman> and <kruskal>, whose points are samples", el);
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
        for (int i = 0; !rc && o.kind == XB_OUT_MCNEMAR && i < o.n_by; i++)
            if (!strcmp(o.by[i], "backend"))
                rc = FAIL_AT(ld, o.line, "element <mcnemar>: by 'backend'; allowed: parameters (each backend has its "
                             "rows; choose one with backend=\"...\")");
        if (!rc && o.kind == XB_OUT_MCNEMAR && xb_tb_column_index(tb, o.x) < 0)
            rc = FAIL_AT(ld, o.line, "element <mcnemar>: x '%s'; allowed: a swept parameter or axis that names the "
                         "points compared", o.x);
        for (int i = 0; !rc && i < o.n_series; i++)
            rc = check_output_param(ld, o.line, "series", o.series[i], 1);
        for (int i = 0; !rc && i < o.n_by; i++)
            rc = check_output_param(ld, o.line, "by", o.by[i], 1);
        for (int i = 0; !rc && i < o.n_over; i++)
            rc = check_output_param(ld, o.line, "over", o.over[i], 0);
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
    /* McNemar pairs inputs: only points that keep their per-input predictions (spice among the backends). */
    for (size_t k = 0; !rc && o.kind == XB_OUT_MCNEMAR && k < tb->n_points; k++) {
        if (o.grid[0] && strcmp(xb_tb_grid(tb, k), o.grid))
            continue;
        xb_tb_config *cfg = malloc(sizeof *cfg);
        if (!cfg)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        else if (!(rc = xb_tb_config_of(tb, k, 0, cfg, ld->err)) && !(cfg->backends & XB_BACKEND_SPICE))
            rc = FAIL_AT(ld, o.line, "element <mcnemar>: point %zu does not run the spice backend, so it keeps no "
                         "per-input predictions; allowed: points with backends use=\"... spice\" (choose them with "
                         "grid=\"LABEL\")", k + 1);
        free(cfg);
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
            static const char *const stems[] = {"plot", "midpoint", "spearman", "kruskal", "example", "mcnemar"};
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
    xmlFree(over);
    return rc;
}
