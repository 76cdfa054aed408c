// idx: read IDX arrays (the MNIST file format), raw or gzip-compressed, with every size checked
#ifndef XB_IDX_H
#define XB_IDX_H

#include <stddef.h>

#include "error.h"

/* A raw IDX array of unsigned bytes (type 0x08 only; other type codes are rejected with a message). */
typedef struct xb_idx {
    int ndim;            /* 1..4 */
    size_t dims[4];      /* dims[ndim..3] are 0 */
    size_t count;        /* product of dims */
    unsigned char *data; /* count bytes, row-major; owned */
} xb_idx;

/* Largest payload accepted, in bytes: anything bigger is a corrupt header, not a data set. */
#define XB_IDX_MAX_BYTES ((unsigned long long)1 << 32)

/* Read an IDX file; gzip-compressed files are recognised by their content, not their name.
 * Header, sizes and (for gzip) the trailer's length are checked before the payload is allocated.
 * inputs: path. output: *out, a new array the caller frees with xb_idx_free (NULL on failure).
 * Returns XB_OK, XB_EINPUT (bad or truncated file), XB_ERUNTIME (I/O) or XB_ENOMEM. */
int xb_idx_read(const char *path, xb_idx **out, xb_error *err);

/* Free the array and set *a to NULL; accepts NULL and *a == NULL. */
void xb_idx_free(xb_idx **a);

#endif
