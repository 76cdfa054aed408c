// worker_pack: the ngspice worker type's context as bytes, for workers on other MPI ranks
#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "worker.h"

/* A context rebuilt from bytes, owning what the original only pointed to. ctx comes first: the worker
 * type sees &owned.ctx. */
typedef struct owned {
    xb_spice_worker_ctx ctx;
    xb_chip *chip;
    xb_device dev;
    xb_netlist_options net;
    double *V;
} owned;

int xb_spice_worker_pack(const void *ctx, xb_pack *out, xb_error *err)
{
    const xb_spice_worker_ctx *w = ctx;
    const xb_layer_map *L = &w->chip->layers[w->layer];
    xb_pack_put(out, &w->layer, sizeof w->layer);
    xb_pack_put(out, &w->n, sizeof w->n);
    xb_pack_put(out, &w->chunk, sizeof w->chunk);
    xb_pack_put(out, w->log_dir, sizeof w->log_dir);
    xb_pack_put(out, w->dev, sizeof *w->dev);
    xb_pack_put(out, w->net, sizeof *w->net);
    xb_chip_pack(w->chip, out);
    xb_pack_put_array(out, w->V, w->n * L->rows * sizeof *w->V);
    return xb_pack_failed(out) ? xb_fail(err, XB_ENOMEM, "out of memory packing a layer's solves for the MPI ranks")
                               : XB_OK;
}

void xb_spice_worker_unpack_free(void **ctx)
{
    owned *o = *ctx;
    if (!o)
        return;
    xb_chip_free(&o->chip);
    free(o->V);
    free(o);
    *ctx = NULL;
}

int xb_spice_worker_unpack(const void *bytes, size_t len, int process, void **ctx, xb_error *err)
{
    *ctx = NULL;
    owned *o = calloc(1, sizeof *o);
    if (!o)
        return xb_fail(err, XB_ENOMEM, "out of memory for a layer's solves");
    xb_unpack u;
    xb_unpack_init(&u, bytes, len);
    xb_spice_worker_ctx *w = &o->ctx;
    xb_unpack_get(&u, &w->layer, sizeof w->layer);
    xb_unpack_get(&u, &w->n, sizeof w->n);
    xb_unpack_get(&u, &w->chunk, sizeof w->chunk);
    xb_unpack_get(&u, w->log_dir, sizeof w->log_dir);
    w->log_dir[sizeof w->log_dir - 1] = '\0';
    xb_unpack_get(&u, &o->dev, sizeof o->dev);
    xb_unpack_get(&u, &o->net, sizeof o->net);
    o->chip = u.failed ? NULL : xb_chip_unpack(&u);
    if (o->chip && w->layer >= 0 && w->layer < o->chip->n_layers)
        o->V = xb_unpack_get_array(&u, w->n * o->chip->layers[w->layer].rows * sizeof *o->V);
    if (!o->chip || !xb_unpack_ok(&u) || (w->n && !o->V)) {
        *ctx = o;
        xb_spice_worker_unpack_free(ctx);
        return xb_fail(err, XB_ERUNTIME, "the layer's solves arrived garbled (%zu bytes): do all ranks run the same "
                       "xbarsim build?", len);
    }
    w->chip = o->chip;
    w->dev = &o->dev;
    w->net = &o->net;
    w->V = o->V;
    w->process = process;
    *ctx = o;
    return XB_OK;
}
