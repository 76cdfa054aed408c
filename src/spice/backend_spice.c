// backend_spice: the spice-exact and spice-linear tile-current backends over the worker pool
#include "backend_spice.h"

#include <stdlib.h>

#include "pool.h"

typedef struct spice_state {
    xb_pool *pool;
    int linear;
    xb_tile_stats_table stats;
} spice_state;

static void spice_free(void **sp)
{
    if (!sp || !*sp)
        return;
    spice_state *s = *sp;
    xb_tile_stats_release(&s->stats);
    free(s);
    *sp = NULL;
}

static int spice_open(const xb_chip *c, const xb_backend_params *p, int linear, void **state, xb_error *err)
{
    *state = NULL;
    if (!p || !p->pool)
        return xb_fail(err, XB_EINPUT, "the %s backend needs a worker pool (params.pool)",
                       linear ? "spice-linear" : "spice-exact");
    xb_pool *pool = p->pool;
    if (pool->chip != c)
        return xb_fail(err, XB_EINPUT, "the worker pool serves another chip than the backend's");
    spice_state *s = calloc(1, sizeof *s);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    s->pool = pool;
    s->linear = linear;
    int rc = xb_tile_stats_init(&s->stats, c, err);
    if (rc) {
        void *v = s;
        spice_free(&v);
        return rc;
    }
    *state = s;
    return XB_OK;
}

static int exact_open(const xb_chip *c, const xb_backend_params *p, void **state, xb_error *err)
{
    return spice_open(c, p, 0, state, err);
}

static int linear_open(const xb_chip *c, const xb_backend_params *p, void **state, xb_error *err)
{
    return spice_open(c, p, 1, state, err);
}

static int spice_tile_currents(void *state, int l, size_t first, const double *V, size_t n, double *I_rt,
                               xb_error *err)
{
    spice_state *s = state;
    int saved = s->pool->o.linear;
    s->pool->o.linear = s->linear;
    int rc = xb_pool_layer_currents(s->pool, l, first, V, n, I_rt, err);
    s->pool->o.linear = saved;
    if (!rc)
        xb_tile_stats_add(&s->stats, l, I_rt, n);
    return rc;
}

static void spice_tile_stats(const void *state, int l, size_t rt, size_t ct, xb_tile_stats *out)
{
    xb_tile_stats_get(&((const spice_state *)state)->stats, l, rt, ct, out);
}

static const xb_backend_type exact_type = {
    .name = "spice-exact",
    .open = exact_open,
    .tile_currents = spice_tile_currents,
    .column_currents = NULL,
    .tile_stats = spice_tile_stats,
    .set_rng = NULL,
    .free = spice_free,
};

static const xb_backend_type linear_type = {
    .name = "spice-linear",
    .open = linear_open,
    .tile_currents = spice_tile_currents,
    .column_currents = NULL,
    .tile_stats = spice_tile_stats,
    .set_rng = NULL,
    .free = spice_free,
};

const xb_backend_type *const xb_backend_spice_exact = &exact_type;
const xb_backend_type *const xb_backend_spice_linear = &linear_type;
