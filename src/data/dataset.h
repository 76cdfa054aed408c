// dataset: load a labelled image split (MNIST-style IDX images + labels) from a named data set or a folder
#ifndef XB_DATASET_H
#define XB_DATASET_H

#include <stddef.h>

#include "error.h"

typedef enum { XB_SPLIT_TRAIN, XB_SPLIT_TEST } xb_split;

typedef struct xb_dataset {
    size_t n;            /* samples */
    size_t rows, cols;   /* image size */
    size_t dim;          /* rows * cols features */
    double *x;           /* n x dim row-major, pixel / 255.0 in [0,1]; owned */
    unsigned char *y;    /* n labels; owned */
    int n_classes;       /* max label + 1, at least 2 (10 for MNIST-like data) */
    char name[64];       /* "mnist", "fashion-mnist" or "custom" */
    char images_path[4096], labels_path[4096];
    char images_sha256[65], labels_sha256[65]; /* of the files as stored (compressed if .gz) */
} xb_dataset;

/* Load one split. spec: "mnist", "fashion-mnist", or a folder holding the IDX files
 * ({train,t10k}-{images-idx3,labels-idx1}-ubyte, or the dotted mirror spelling
 * {train,t10k}-{images.idx3,labels.idx1}-ubyte, each plain or .gz; plain wins).
 * output: *out, a new data set the caller frees with xb_dataset_free (NULL on failure).
 * Returns XB_OK, XB_EINPUT (missing or bad files; the message says where it looked and the fix),
 * XB_ERUNTIME or XB_ENOMEM. */
int xb_dataset_load(const char *spec, xb_split split, xb_dataset **out, xb_error *err);

/* Load from two explicit IDX files: images (n, rows, cols) and labels (n). name is "custom". */
int xb_dataset_load_files(const char *images, const char *labels, xb_dataset **out, xb_error *err);

/* Keep the first n samples only (n >= d->n leaves it unchanged); shrinks in place. */
void xb_dataset_truncate(xb_dataset *d, size_t n);

/* Free the data set and set *d to NULL; accepts NULL and *d == NULL. */
void xb_dataset_free(xb_dataset **d);

/* Resolve spec to a folder path (for messages and provenance) into folder[len].
 * Named data sets search, in order:
 *   mnist:         $XBARSIM_DATA/mnist, ./data/mnist, XB_DATA_DIR/mnist
 *   fashion-mnist: $XBARSIM_DATA/fashion-mnist, ./data/fashion-mnist, XB_DATA_DIR/fashion-mnist,
 *                  /usr/share/datasets/fashion-mnist
 * and take the first folder holding an images file of either split. Anything else is a folder path.
 * Returns XB_EINPUT with the places searched and the fix if not found. */
int xb_dataset_resolve(const char *spec, char *folder, size_t len, xb_error *err);

/* Find the images and labels files of one split inside folder (plain before .gz, hyphenated before
 * dotted). Returns XB_EINPUT naming the files looked for if either is missing. */
int xb_dataset_find_files(const char *folder, xb_split split, char *images, char *labels, size_t len,
                          xb_error *err);

#endif
