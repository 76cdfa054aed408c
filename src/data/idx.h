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

/* A gzip file may expand to at most XB_IDX_MAX_GZIP_RATIO times its size on disk (or to
 * XB_IDX_GZIP_FLOOR bytes, whichever is more): real image and label files expand 1.5 to 6 times,
 * deflate can reach ~1032, so more is a decompression bomb or a corrupt header. */
#define XB_IDX_MAX_GZIP_RATIO 100
#define XB_IDX_GZIP_FLOOR ((unsigned long long)64 << 20)

/* Read an IDX file; gzip-compressed files are recognised by their content, not their name.
 * Header and sizes are checked before the payload is read: raw files against their length on disk,
 * gzip files against the trailer's length and the expansion limit above; gzip data is inflated
 * into a buffer that grows as bytes arrive, never past the header's size (+64 bytes to find the end).
 * inputs: path. output: *out, a new array the caller frees with xb_idx_free (NULL on failure).
 * Returns XB_OK, XB_EINPUT (bad or truncated file), XB_ERUNTIME (I/O) or XB_ENOMEM. */
int xb_idx_read(const char *path, xb_idx **out, xb_error *err);

/* Read and check only the header of path (the same checks as xb_idx_read, no data read): hdr gets
 * ndim, dims and count, hdr->data stays NULL. For cross-checking files before loading them. */
int xb_idx_read_header(const char *path, xb_idx *hdr, xb_error *err);

/* Free the array and set *a to NULL; accepts NULL and *a == NULL. */
void xb_idx_free(xb_idx **a);

#endif
