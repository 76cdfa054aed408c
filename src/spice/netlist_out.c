// netlist_out: `xbarsim netlist` after its options: the review decks of a chip, or one tile's deck with its expected currents
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behavioral.h"
#include "dataset.h"
#include "fileio.h"
#include "netlist.h"
#include "netlist_out.h"

int xb_netlist_write_decks(const xb_deck_spec *s, const xb_chip *chip, const xb_device *dev,
                           const xb_pool_options *po, xb_deck_outcome *r, xb_error *err)
{
    const char *out = s->out, *note = s->note;
    size_t layer = s->layer, rt = s->row_tile, ct = s->col_tile, input = s->input, n_inputs = s->n_inputs;
    xb_dataset *test = NULL;
    xb_behav *b = NULL;
    double *V = NULL, *I = NULL;
    unsigned char *failed = NULL;
    int rc = XB_OK;
    memset(r, 0, sizeof *r);
    int l = (int)layer - 1;
    if (l >= chip->n_layers) {
        rc = xb_fail(err, XB_EINPUT, "--layer %zu: the network has %d layers", layer, chip->n_layers);
        goto done;
    }
    if ((rc = xb_mkdir_p(out, err)))
        goto done;
    char *path = r->path;
    if (s->all) {
        for (int k = 0; k < chip->n_layers; k++)
            for (size_t a = 0; a < chip->layers[k].n_row_tiles; a++)
                for (size_t bb = 0; bb < chip->layers[k].n_col_tiles; bb++) {
                    snprintf(path, sizeof r->path, "%s/L%d_T%zu_%zu.cir", out, k + 1, a, bb);
                    if ((rc = xb_netlist_write_file(path, chip, k, a, bb, dev, &po->net, NULL, 0, note, err)))
                        goto done;
                    r->decks++;
                }
        goto done;
    }
    const xb_layer_map *L = &chip->layers[l];
    if (rt >= L->n_row_tiles || ct >= L->n_col_tiles) {
        rc = xb_fail(err, XB_EINPUT, "--tile-index %zu,%zu: layer %d has %zu x %zu tiles (row tiles 0..%zu, column tiles "
                     "0..%zu)", rt, ct, l + 1, L->n_row_tiles, L->n_col_tiles, L->n_row_tiles - 1, L->n_col_tiles - 1);
        goto done;
    }
    if ((rc = xb_dataset_load(s->dataset, XB_SPLIT_TEST, &test, err)))
        goto done;
    if (input + n_inputs > test->n || test->dim != xb_layer_in_values(&chip->layers[0])) {
        rc = xb_fail(err, XB_EINPUT, "inputs %zu..%zu: the test split has %zu images of %zu pixels (the chip takes "
                     "%zu)", input, input + n_inputs - 1, test->n, test->dim, xb_layer_in_values(&chip->layers[0]));
        goto done;
    }
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    if ((rc = xb_behav_new(chip, &bo, NULL, 0, &b, err)))
        goto done;
    /* A conv layer's deck sweeps every patch of each image: P points per image. */
    size_t P = xb_layer_patches(L), nv = n_inputs * P;
    V = malloc(nv * L->rows * sizeof *V);
    I = malloc(L->n_row_tiles * nv * L->cols * sizeof *I);
    failed = calloc(nv, 1);
    if (!V || !I || !failed) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = xb_behav_layer_rows(b, l, test->x + input * test->dim, n_inputs, NULL, V, err)))
        goto done;
    snprintf(path, sizeof r->path, "%s/L%d_T%zu_%zu.cir", out, l + 1, rt, ct);
    if ((rc = xb_netlist_write_file(path, chip, l, rt, ct, dev, &po->net, V, nv, note, err)))
        goto done;
    /* The same inputs through the library driver, in a worker process. */
    xb_pool pool = {.chip = chip, .dev = dev, .o = *po, .label = "netlist", .failed = failed, .failed_cap = nv};
    if ((rc = xb_pool_layer_currents(&pool, l, 0, V, nv, I, err)))
        goto done;
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(chip, l, rt, ct, &r0, &nr, &c0, &nc);
    char *epath = r->epath;
    snprintf(epath, sizeof r->epath, "%s.expected.csv", path);
    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, epath, err)))
        goto done;
    fprintf(f.fp, P > 1 ? "input,test_index,patch" : "input,test_index");
    for (size_t j = 0; j < nc; j++)
        fprintf(f.fp, ",i_vsense%zu_A", j);
    fputc('\n', f.fp);
    size_t n_failed = 0;
    for (size_t k = 0; k < nv; k++) {
        fprintf(f.fp, "%zu,%zu", k, input + k / P);
        if (P > 1)
            fprintf(f.fp, ",%zu", k % P);
        n_failed += failed[k];
        for (size_t j = 0; j < nc; j++)
            if (failed[k])
                fprintf(f.fp, ",nan"); /* never converged, or ran past its time limit */
            else
                fprintf(f.fp, ",%.17g", I[(rt * nv + k) * L->cols + c0 + j]);
        fputc('\n', f.fp);
    }
    if ((rc = xb_atomic_commit(&f, err)))
        goto done;
    r->rows = nr;
    r->cols = nc;
    r->points = nv;
    r->n_failed = n_failed;
    snprintf(r->solver, sizeof r->solver, "%s", pool.stats.solver);
done:
    free(V);
    free(I);
    free(failed);
    xb_behav_free(&b);
    xb_dataset_free(&test);
    return rc;
}
