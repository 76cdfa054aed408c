// tb_sweep: sweeps: axes (lists, lin/log ranges, labelled groups), grids, their union into points and columns
#define _GNU_SOURCE
#include "tb_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlcheck.h"

void tb_free_axis(axis *a)
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

/* Numbers of an axis range: from, from+step, ... up to `to` (inclusive within round-off), or count
 * points evenly (or log-evenly) spaced. Printed with %.10g so 0.1 + 0.2 reads 0.3. */
static int range_values(loader *ld, const xmlNode *n, char ***out, size_t *count)
{
    char *f = xb_xml_attr(n, "from"), *t = xb_xml_attr(n, "to"), *st = xb_xml_attr(n, "step"),
         *cn = xb_xml_attr(n, "count"), *sc = xb_xml_attr(n, "scale");
    int line = tb_node_line(n), rc = XB_OK;
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
    a->line = tb_node_line(n);
    char *param = xb_xml_attr(n, "param"), *name = xb_xml_attr(n, "name"), *values = xb_xml_attr(n, "values");
    char *from = xb_xml_attr(n, "from");
    int has_children = 0, rc = XB_OK;
    for (const xmlNode *c = n->children; c; c = c->next)
        has_children |= tb_is_element(c, "value");
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
        rc = tb_check_param(ld, param, a->line);
    if (!rc && !has_children) {
        snprintf(a->name, sizeof a->name, "%s", param);
        a->n_values = n_items;
        a->sets = calloc(n_items, sizeof *a->sets);
        a->n_sets = calloc(n_items, sizeof *a->n_sets);
        if (!a->sets || !a->n_sets)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        for (size_t v = 0; v < n_items && !rc; v++)
            rc = tb_add_param_setting(ld, &a->sets[v], &a->n_sets[v], param, items[v], a->line);
    } else if (!rc) {
        snprintf(a->name, sizeof a->name, "%s", name);
        a->labelled = 1;
        for (const xmlNode *c = n->children; c; c = c->next)
            a->n_values += tb_is_element(c, "value");
        a->labels = calloc(a->n_values, sizeof *a->labels);
        a->sets = calloc(a->n_values, sizeof *a->sets);
        a->n_sets = calloc(a->n_values, sizeof *a->n_sets);
        if (!a->labels || !a->sets || !a->n_sets)
            rc = xb_fail(ld->err, XB_ENOMEM, "out of memory");
        size_t v = 0;
        for (const xmlNode *c = n->children; c && !rc; c = c->next) {
            if (!tb_is_element(c, "value"))
                continue;
            char *label = xb_xml_attr(c, "label");
            for (size_t u = 0; u < v && label; u++)
                if (!strcmp(a->labels[u], label))
                    rc = FAIL_AT(ld, tb_node_line(c), "element <value>: label '%s' appears twice in axis %s; allowed: "
                                 "distinct labels", label, name);
            a->labels[v] = strdup(label ? label : "");
            xmlFree(label);
            for (const xmlNode *s = c->children; s && !rc; s = s->next) {
                if (!tb_is_element(s, "set"))
                    continue;
                char *p = xb_xml_attr(s, "param"), *val = xb_xml_attr(s, "value");
                rc = tb_add_param_setting(ld, &a->sets[v], &a->n_sets[v], p, val, tb_node_line(s));
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
int tb_read_grid(loader *ld, const xmlNode *n, grid *g, size_t index)
{
    memset(g, 0, sizeof *g);
    char *label = xb_xml_attr(n, "label");
    if (label)
        snprintf(g->label, sizeof g->label, "%s", label);
    else if (tb_is_element(n, "grid"))
        snprintf(g->label, sizeof g->label, "%zu", index + 1);
    xmlFree(label);
    int rc = XB_OK;
    g->n_points = 1;
    for (const xmlNode *c = n->children; c && !rc; c = c->next) {
        if (tb_is_element(c, "set")) {
            char *p = xb_xml_attr(c, "param"), *v = xb_xml_attr(c, "value");
            rc = tb_add_param_setting(ld, &g->sets, &g->n_sets, p, v, tb_node_line(c));
            xmlFree(p);
            xmlFree(v);
        } else if (tb_is_element(c, "axis")) {
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
const setting **tb_point_settings(const xb_tb *tb, size_t k, size_t *n_out)
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

const setting *tb_lookup(const setting **v, size_t n, const char *key, const char *attr)
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
    const setting **v = tb_split_param(param, key, sizeof key, attr, sizeof attr) ? NULL : tb_point_settings(tb, k, &n);
    const setting *s = v ? tb_lookup(v, n, key, attr) : NULL;
    if (s)
        line = s->line;
    else if (v && tb_find_element(tb, key))
        line = tb_find_element(tb, key)->line;
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
        const setting **v = tb_point_settings(tb, k, &n);
        if (!v)
            return xb_fail(ld->err, XB_ENOMEM, "out of memory");
        const grid *g = &tb->grids[tb->point_grid[k]];
        for (size_t c = 0; c < nc; c++) {
            const char *text = NULL;
            for (int a = 0; a < g->n_axes && !text; a++)
                if (g->axes[a].labelled && !strcmp(g->axes[a].name, tb->columns[c]))
                    text = g->axes[a].labels[tb->point_idx[k][a]];
            char key[64], attr[32];
            if (!text && !tb_split_param(tb->columns[c], key, sizeof key, attr, sizeof attr)) {
                const setting *s = tb_lookup(v, n, key, attr);
                int kk = tb_key_kind(tb, key);
                const attr_def *d = kk >= 0 ? tb_find_attr((kind)kk, attr) : NULL;
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

int tb_expand_points(loader *ld)
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
