// test_unitstore: finished circuit units stored, loaded instead of solved, checked, and never reused stale
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <sys/stat.h>
#include <unistd.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "device.h"
#include "fileio.h"
#include "pool.h"
#include "unitstore.h"

static char dir[] = "/tmp/xb_test_unitstore_XXXXXX";

/* The .unit files in folder d (and, with first, the path of the first one in name order). */
static size_t count_units(const char *d, char *first, size_t len)
{
    DIR *dp = opendir(d);
    size_t n = 0;
    char best[256] = "";
    for (struct dirent *e; dp && (e = readdir(dp));) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".unit")) {
            n++;
            if (!best[0] || strcmp(e->d_name, best) < 0)
                snprintf(best, sizeof best, "%s", e->d_name);
        }
    }
    if (dp)
        closedir(dp);
    if (first)
        snprintf(first, len, "%s/%s", d, best);
    return n;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_size;
}

/* One forward pass through the pool from fresh statistics: the logits into z. */
static int forward(xb_pool *pool, xb_behav *s, const double *X, size_t n, double *z, xb_error *err)
{
    memset(&pool->stats, 0, sizeof pool->stats);
    return xb_behav_forward(s, X, n, NULL, z, NULL, err);
}

int main(void)
{
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    size_t sizes[3] = {40, 12, 6};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    xb_mlp_init(m, rng);
    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    mo.tile_rows = 16;
    mo.tile_cols = 8;
    mo.g_min_S = dev.g_hrs_S;
    mo.g_max_S = xb_device_level_G(&dev, dev.n_levels - 1);
    xb_error err = {0};
    xb_chip *c = NULL;
    CHECK(xb_chip_map(m, &mo, NULL, 0, &c, &err) == XB_OK, "chip: %s", err.msg);
    const size_t n = 30;
    double *X = malloc(n * 40 * sizeof *X), *X2 = malloc(n * 40 * sizeof *X2);
    for (size_t i = 0; i < n * 40; i++)
        X[i] = X2[i] = gsl_rng_uniform(rng);
    X2[17 * 40 + 3] += 0.25; /* one pixel of one input changed */
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *s = NULL;
    CHECK(xb_behav_new(c, &bo, NULL, 0, &s, &err) == XB_OK, "model: %s", err.msg);

    /* Linear cells with wires: fast, and their currents carry every bit of the solver's arithmetic. */
    xb_pool pool = {.chip = c, .dev = &dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.chunk = 7;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 2;
    xb_behav_set_current_source(s, xb_pool_layer_currents, &pool);
    /* layer 1: 3 row tiles x 3 column tiles x 5 chunks; layer 2: 1 x 2 x 5 */
    const size_t units = 3 * 3 * 5 + 1 * 2 * 5;
    double *z_ref = malloc(n * 6 * sizeof *z_ref), *z = malloc(n * 6 * sizeof *z);
    CHECK(forward(&pool, s, X, n, z_ref, &err) == XB_OK, "reference: %s", err.msg);
    CHECK(pool.stats.units == units && pool.stats.units_loaded == 0, "without a store: %zu solved, %zu loaded",
          pool.stats.units, pool.stats.units_loaded);

    /* First run with a store: everything solved and stored, results unchanged. */
    snprintf(pool.o.unit_dir, sizeof pool.o.unit_dir, "%s/units", dir);
    snprintf(pool.o.unit_key, sizeof pool.o.unit_key, "test;trial=0");
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "stored run: %s", err.msg);
    CHECK(pool.stats.units == units && pool.stats.units_loaded == 0, "first run: %zu solved, %zu loaded",
          pool.stats.units, pool.stats.units_loaded);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "storing units changes no result");
    CHECK(count_units(pool.o.unit_dir, NULL, 0) == units, "one file per unit: %zu",
          count_units(pool.o.unit_dir, NULL, 0));

    /* Run again: every unit loaded, none solved, the same bytes. */
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "resumed run: %s", err.msg);
    CHECK(pool.stats.units == 0 && pool.stats.units_loaded == units, "all stored: %zu solved, %zu loaded",
          pool.stats.units, pool.stats.units_loaded);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "loaded units give byte-identical logits");

    /* A killed run: some units missing; only those are solved. */
    char first[4400];
    count_units(pool.o.unit_dir, first, sizeof first);
    CHECK(unlink(first) == 0, "removed %s", first);
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "partial resume: %s", err.msg);
    CHECK(pool.stats.units == 1 && pool.stats.units_loaded == units - 1, "one missing: %zu solved, %zu loaded",
          pool.stats.units, pool.stats.units_loaded);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "partial resume: byte-identical logits");

    /* Damaged files are ignored, removed and solved again: a flipped byte of the currents, a truncated
     * file, and a file that is not a unit at all. */
    count_units(pool.o.unit_dir, first, sizeof first);
    long size = file_size(first);
    FILE *fp = fopen(first, "r+b");
    CHECK(fp && size > 200, "open %s (%ld bytes)", first, size);
    if (fp) {
        fseek(fp, 200, SEEK_SET);
        int ch = fgetc(fp);
        fseek(fp, 200, SEEK_SET);
        fputc(ch ^ 0x01, fp);
        fclose(fp);
    }
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "flipped byte: %s", err.msg);
    CHECK(pool.stats.units_rejected == 1 && pool.stats.units == 1 && pool.stats.units_loaded == units - 1,
          "flipped byte: %zu rejected, %zu solved, %zu loaded", pool.stats.units_rejected, pool.stats.units,
          pool.stats.units_loaded);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "flipped byte: the unit was solved again, byte-identical logits");
    CHECK(truncate(first, size - 10) == 0, "truncate %s", first);
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "truncated: %s", err.msg);
    CHECK(pool.stats.units_rejected == 1 && pool.stats.units == 1, "truncated: %zu rejected, %zu solved",
          pool.stats.units_rejected, pool.stats.units);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "truncated: byte-identical logits");
    fp = fopen(first, "wb");
    if (fp) {
        for (long i = 0; i < size; i++)
            fputc('x', fp);
        fclose(fp);
    }
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "garbage: %s", err.msg);
    CHECK(pool.stats.units_rejected == 1 && pool.stats.units == 1, "garbage of the right size: %zu rejected, %zu "
          "solved", pool.stats.units_rejected, pool.stats.units);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "garbage: byte-identical logits");

    /* A changed input changes layer 1's row voltages, so no unit of its layer call is reused, and layer 2's
     * row voltages follow. Its results equal a run without a store. */
    double *z2_ref = malloc(n * 6 * sizeof *z2_ref);
    char saved[4096];
    snprintf(saved, sizeof saved, "%s", pool.o.unit_dir);
    pool.o.unit_dir[0] = '\0';
    CHECK(forward(&pool, s, X2, n, z2_ref, &err) == XB_OK, "changed input, no store: %s", err.msg);
    snprintf(pool.o.unit_dir, sizeof pool.o.unit_dir, "%s", saved);
    CHECK(forward(&pool, s, X2, n, z, &err) == XB_OK, "changed input: %s", err.msg);
    CHECK(pool.stats.units_loaded == 0 && pool.stats.units == units, "changed input: %zu loaded, %zu solved",
          pool.stats.units_loaded, pool.stats.units);
    CHECK(!memcmp(z, z2_ref, n * 6 * sizeof *z), "changed input: the logits of a run without a store");

    /* Another caller key (another trial) and changed conductances reuse nothing either. */
    snprintf(pool.o.unit_key, sizeof pool.o.unit_key, "test;trial=1");
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "other key: %s", err.msg);
    CHECK(pool.stats.units_loaded == 0, "another key: %zu loaded", pool.stats.units_loaded);
    snprintf(pool.o.unit_key, sizeof pool.o.unit_key, "test;trial=0");
    c->layers[1].g_S[0] *= 1.5;
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "changed conductance: %s", err.msg);
    /* Layer 1 is untouched (all 45 loaded); layer 2 tile (0, 0) holds the changed cell (5 chunks solved),
     * tile (0, 1) does not (5 loaded). */
    CHECK(pool.stats.units_loaded == 3 * 3 * 5 + 5 && pool.stats.units == 5,
          "changed conductance: %zu loaded, %zu solved", pool.stats.units_loaded, pool.stats.units);
    c->layers[1].g_S[0] /= 1.5;

    /* The store's own checks, unit by unit: a unit of another size is refused. */
    xb_unit_store *st = NULL;
    const double *V = X; /* any n x 41 doubles: the store only hashes them */
    double *Vl = calloc(n * 41, sizeof *Vl);
    for (size_t i = 0; i < n * 40; i++)
        Vl[i] = V[i];
    CHECK(xb_unit_store_open(saved, "direct", c, &dev, &pool.o.net, 0, Vl, n, 7, 1, &st, &err) == XB_OK, "open: %s",
          err.msg);
    xb_unit u = {0, 0, 0, 0, 7};
    size_t bytes = st ? xb_unit_store_result_bytes(st, &u) : 0;
    unsigned char *res = calloc(bytes + 64, 1), *back = calloc(bytes + 64, 1);
    for (size_t i = 0; i < bytes; i++)
        res[i] = (unsigned char)(i * 7);
    memset(res + bytes - 7, 1, 7); /* statuses: retried */
    CHECK(st && xb_unit_store_save(st, &u, res, &err) == XB_OK, "save: %s", err.msg);
    size_t rejected = 0;
    CHECK(st && xb_unit_store_load(st, &u, back, bytes, &rejected) == 1 && !memcmp(res, back, bytes),
          "a saved unit loads back byte for byte");
    CHECK(st && xb_unit_store_load(st, &u, back, bytes - 1, &rejected) == 0 && rejected == 1,
          "a buffer too small for the unit: refused (%zu)", rejected);
    xb_unit other = {0, 0, 0, 7, 14};
    CHECK(st && xb_unit_store_load(st, &other, back, bytes, &rejected) == 0 && rejected == 1,
          "a unit never stored: not found, not rejected");
    memset(res + bytes - 7, 9, 7); /* a status no solve writes */
    CHECK(st && xb_unit_store_save(st, &u, res, &err) == XB_OK, "save: %s", err.msg);
    CHECK(st && xb_unit_store_load(st, &u, back, bytes, &rejected) == 0 && rejected == 2,
          "statuses out of range: refused (%zu)", rejected);
    xb_unit_store_free(&st);
    CHECK(!st, "free NULLs the pointer");
    xb_unit_store_free(&st);

    /* A store folder that cannot be made (under a regular file) costs only the store: the run goes on. */
    char blocked[4400];
    snprintf(blocked, sizeof blocked, "%s/afile", dir);
    FILE *bf = fopen(blocked, "w");
    if (bf)
        fclose(bf);
    snprintf(pool.o.unit_dir, sizeof pool.o.unit_dir, "%s/afile/units", dir);
    CHECK(forward(&pool, s, X, n, z, &err) == XB_OK, "a store that cannot be made: %s", err.msg);
    CHECK(pool.stats.units == units && pool.stats.units_loaded == 0, "no store: %zu solved, %zu loaded",
          pool.stats.units, pool.stats.units_loaded);
    CHECK(!memcmp(z, z_ref, n * 6 * sizeof *z), "no store: byte-identical logits");
    unlink(blocked);

    /* Removing the store leaves nothing; removing it again is fine. */
    CHECK(xb_unit_store_remove(saved, &err) == XB_OK, "remove: %s", err.msg);
    CHECK(!xb_is_dir(saved), "the store folder is gone");
    CHECK(xb_unit_store_remove(saved, &err) == XB_OK, "remove a missing store: %s", err.msg);

    free(res), free(back), free(Vl), free(X), free(X2), free(z), free(z_ref), free(z2_ref);
    xb_behav_free(&s);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
    rmdir(dir);
    return check_summary("test_unitstore");
}
