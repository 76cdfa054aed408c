// backend: the ideal and behavioral tile-current backends, and the plumbing every backend shares
#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "mapping.h"

int xb_tile_stats_init(xb_tile_stats_table *s, const xb_chip *c, xb_error *err)
{
    memset(s, 0, sizeof *s);
    if (c->n_layers > 64)
        return xb_fail(err, XB_EINPUT, "%d layers: at most 64 supported", c->n_layers);
    s->chip = c;
    for (int l = 0; l < c->n_layers; l++) {
        s->first_tile[l] = s->n_tiles;
        s->n_tiles += c->layers[l].n_row_tiles * c->layers[l].n_col_tiles;
    }
    if (!(s->t = calloc(s->n_tiles ? s->n_tiles : 1, sizeof *s->t)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    return XB_OK;
}

void xb_tile_stats_release(xb_tile_stats_table *s)
{
    free(s->t);
    memset(s, 0, sizeof *s);
}

void xb_tile_stats_add(xb_tile_stats_table *s, int l, const double *I_rt, size_t n)
{
    const xb_layer_map *L = &s->chip->layers[l];
    for (size_t rt = 0; rt < L->n_row_tiles; rt++)
        for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
            size_t r0, nr, c0, nc;
            xb_chip_tile_bounds(s->chip, l, rt, ct, &r0, &nr, &c0, &nc);
            xb_tile_stats *t = &s->t[s->first_tile[l] + rt * L->n_col_tiles + ct];
            t->calls++;
            if (!I_rt) {
                t->currents += n * nc;
                continue;
            }
            const double *I = I_rt + rt * n * L->cols;
            for (size_t k = 0; k < n; k++)
                for (size_t j = c0; j < c0 + nc; j++) {
                    double v = I[k * L->cols + j];
                    t->currents++;
                    if (!isfinite(v))
                        t->nonfinite++;
                    else if (fabs(v) > t->i_max_A)
                        t->i_max_A = fabs(v);
                }
        }
}

void xb_tile_stats_get(const xb_tile_stats_table *s, int l, size_t rt, size_t ct, xb_tile_stats *out)
{
    *out = s->t[s->first_tile[l] + rt * s->chip->layers[l].n_col_tiles + ct];
}

const xb_backend_type *xb_backend_find(const xb_backend_type *const *types, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (types[i] && !strcmp(types[i]->name, name))
            return types[i];
    return NULL;
}

void xb_backend_set_rng(const xb_backend_type *t, void *state, gsl_rng *rng)
{
    if (t->set_rng)
        t->set_rng(state, rng);
}

void xb_read_noise_tile(const xb_layer_map *L, const double *V2, const double *G2, size_t r0, size_t nr, size_t n,
                        double sigma, gsl_rng *rng, double *var, double *It)
{
    /* Each column current is Gaussian with variance sigma^2 sum_i V_i^2 G_i^2: one more product. */
    xb_tile_currents_ideal(L, G2, r0, nr, V2, n, var);
    for (size_t i = 0; i < n * L->cols; i++)
        It[i] += sigma * sqrt(var[i]) * gsl_ran_gaussian_ziggurat(rng, 1.0);
}

/* ---- ideal and behavioral: I = V.G with ideal wires ---- */

typedef struct ideal_state {
    const xb_chip *c;
    int use_target;        /* ideal: G_target; behavioral: G_S */
    double sigma_read;
    gsl_rng *rng;
    double *V2, *G2, *var, *Irt; /* read-noise scratch; tile currents for column_currents with noise */
    size_t cap_v, cap_g, cap_i, cap_rt;
    xb_tile_stats_table stats;
} ideal_state;

static void ideal_free(void **sp)
{
    if (!sp || !*sp)
        return;
    ideal_state *s = *sp;
    free(s->V2), free(s->G2), free(s->var), free(s->Irt);
    xb_tile_stats_release(&s->stats);
    free(s);
    *sp = NULL;
}

static int open_common(const xb_chip *c, const xb_backend_params *p, int use_target, void **state, xb_error *err)
{
    *state = NULL;
    ideal_state *s = calloc(1, sizeof *s);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    s->c = c;
    s->use_target = use_target;
    s->sigma_read = use_target || !p ? 0 : p->sigma_read;
    s->rng = p ? p->rng : NULL;
    int rc = xb_tile_stats_init(&s->stats, c, err);
    if (rc) {
        void *v = s;
        ideal_free(&v);
        return rc;
    }
    *state = s;
    return XB_OK;
}

static int ideal_open(const xb_chip *c, const xb_backend_params *p, void **state, xb_error *err)
{
    return open_common(c, p, 1, state, err);
}

static int behavioral_open(const xb_chip *c, const xb_backend_params *p, void **state, xb_error *err)
{
    return open_common(c, p, 0, state, err);
}

static int grow(double **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    free(*p);
    *cap = 0;
    if (!(*p = malloc(need * sizeof **p)))
        return -1;
    *cap = need;
    return 0;
}

static int ideal_tile_currents(void *state, int l, size_t first, const double *V, size_t n, double *I_rt,
                               xb_error *err)
{
    (void)first;
    ideal_state *s = state;
    const xb_layer_map *L = &s->c->layers[l];
    const double *G = s->use_target ? L->g_target_S : L->g_S;
    int noise = s->sigma_read > 0;
    if (noise) {
        if (!s->rng)
            return xb_fail(err, XB_ERUNTIME, "behavioral backend with read noise needs a random generator");
        if (grow(&s->V2, &s->cap_v, n * L->rows) || grow(&s->G2, &s->cap_g, L->rows * L->cols) ||
            grow(&s->var, &s->cap_i, n * L->cols))
            return xb_fail(err, XB_ENOMEM, "out of memory for read noise");
        for (size_t i = 0; i < n * L->rows; i++)
            s->V2[i] = V[i] * V[i];
        for (size_t i = 0; i < L->rows * L->cols; i++)
            s->G2[i] = G[i] * G[i];
    }
    for (size_t rt = 0; rt < L->n_row_tiles; rt++) {
        size_t r0, nr, c0, nc;
        xb_chip_tile_bounds(s->c, l, rt, 0, &r0, &nr, &c0, &nc);
        double *It = I_rt + rt * n * L->cols;
        xb_tile_currents_ideal(L, G, r0, nr, V, n, It);
        if (noise)
            xb_read_noise_tile(L, s->V2, s->G2, r0, nr, n, s->sigma_read, s->rng, s->var, It);
    }
    xb_tile_stats_add(&s->stats, l, I_rt, n);
    return XB_OK;
}

/* Noise-free: every row at once, one product. With read noise the draws are per tile: the tiles' currents
 * summed in order, as a digital path would add them. */
static int ideal_column_currents(void *state, int l, size_t first, const double *V, size_t n, double *I,
                                 xb_error *err)
{
    ideal_state *s = state;
    const xb_layer_map *L = &s->c->layers[l];
    if (!(s->sigma_read > 0)) {
        xb_tile_currents_ideal(L, s->use_target ? L->g_target_S : L->g_S, 0, L->rows, V, n, I);
        xb_tile_stats_add(&s->stats, l, NULL, n);
        return XB_OK;
    }
    size_t m = n * L->cols;
    if (grow(&s->Irt, &s->cap_rt, L->n_row_tiles * m))
        return xb_fail(err, XB_ENOMEM, "out of memory for tile currents");
    int rc = ideal_tile_currents(state, l, first, V, n, s->Irt, err);
    if (rc)
        return rc;
    memset(I, 0, m * sizeof *I);
    for (size_t rt = 0; rt < L->n_row_tiles; rt++)
        for (size_t i = 0; i < m; i++)
            I[i] += s->Irt[rt * m + i];
    return XB_OK;
}

static void ideal_tile_stats(const void *state, int l, size_t rt, size_t ct, xb_tile_stats *out)
{
    xb_tile_stats_get(&((const ideal_state *)state)->stats, l, rt, ct, out);
}

static void ideal_set_rng(void *state, gsl_rng *rng) { ((ideal_state *)state)->rng = rng; }

static const xb_backend_type ideal_type = {
    .name = "ideal",
    .open = ideal_open,
    .tile_currents = ideal_tile_currents,
    .column_currents = ideal_column_currents,
    .tile_stats = ideal_tile_stats,
    .set_rng = NULL,
    .free = ideal_free,
};

static const xb_backend_type behavioral_type = {
    .name = "behavioral",
    .open = behavioral_open,
    .tile_currents = ideal_tile_currents,
    .column_currents = ideal_column_currents,
    .tile_stats = ideal_tile_stats,
    .set_rng = ideal_set_rng,
    .free = ideal_free,
};

const xb_backend_type *const xb_backend_ideal = &ideal_type;
const xb_backend_type *const xb_backend_behavioral = &behavioral_type;
