// npy: n-dimensional arrays and the NumPy .npy format that carries them in and out of xbarsim
#ifndef XB_NPY_H
#define XB_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define XB_NDARRAY_MAXDIM 8

/* Largest .npy file (or .npz member, uncompressed) we load: bounds memory on hostile input. */
#define XB_NPY_MAX_BYTES (SIZE_MAX > 0xFFFFFFFFu ? (size_t)0x100000000ull : (size_t)0x7FFFFFFFu)

typedef enum {
    XB_DT_F4,
    XB_DT_F8,
    XB_DT_I1,
    XB_DT_U1,
    XB_DT_I2,
    XB_DT_U2,
    XB_DT_I4,
    XB_DT_U4,
    XB_DT_I8,
    XB_DT_U8,
    XB_DT_BOOL,
    XB_DT_STR
} xb_dtype;

/* An n-dimensional array as loaded: numeric data always converted to double, C (row-major) order
 * whatever the file's order; string arrays ('<U' dtype) as NUL-terminated UTF-8 strings. */
typedef struct xb_ndarray {
    char *name;                      /* member name without .npy (npz) or file path (npy); owned */
    int ndim;
    size_t shape[XB_NDARRAY_MAXDIM];
    size_t count;                    /* product of shape (1 for ndim 0) */
    xb_dtype dtype;                  /* dtype found in the file (for messages and round trips) */
    int fortran_order;               /* as found in the file; data below is already C order */
    double *data;                    /* count doubles, NULL for string arrays; owned */
    char **str;                      /* count strings for XB_DT_STR, else NULL; owned */
} xb_ndarray;

/* A numeric array of zeros (dtype XB_DT_F8, data never NULL, even for count 0). name may be NULL
 * (stored as ""); it is copied. Returns NULL when out of memory, ndim is outside 0..MAXDIM or the
 * shape's product overflows. The caller owns the result: release it with xb_ndarray_free. */
xb_ndarray *xb_ndarray_new(const char *name, int ndim, const size_t *shape); /* zeroed double data */

/* A 1-D string array holding copies of strings[0..count) (NULL entries become ""); the strings
 * should be UTF-8 (checked when serialized). Returns NULL when out of memory; caller owns it. */
xb_ndarray *xb_ndarray_new_strings(const char *name, size_t count, const char *const *strings); /* 1-D */

/* Release an array and everything it owns; sets *a to NULL; accepts NULL and *a == NULL. */
void xb_ndarray_free(xb_ndarray **a);

/* numpy spelling: "<f4", "<f8", "|u1", "<U", ... (a static string). */
const char *xb_dtype_name(xb_dtype t);

/* "(784, 100)" style shape text into buf, for messages; "()" for 0-d, "(10,)" for 1-d. Returns
 * buf (truncated to len - 1 characters if needed). */
const char *xb_shape_str(int ndim, const size_t *shape, char *buf, size_t len);

/* Parse a whole .npy image buf[0..len) (inputs, not modified). what: a name for messages (a path,
 * or "weights.npz:W1.npy"); it also becomes the array's name. On success *out is a new array the
 * caller owns; on failure *out is NULL and err says why (XB_EINPUT for bad input, XB_ENOMEM). */
int xb_npy_parse(const void *buf, size_t len, const char *what, xb_ndarray **out, xb_error *err);

/* The total length a .npy image must have, from its preamble and header at buf[0..len) (a prefix of
 * the image is enough): *total is set, or 0 when the prefix is too short or not a .npy preamble (then
 * xb_npy_parse on the whole image says what is wrong). XB_EINPUT for a header that cannot be parsed
 * or whose shape overflows. Lets a reader refuse a member whose stated size disagrees with its
 * header before inflating it. */
int xb_npy_image_size(const void *buf, size_t len, const char *what, size_t *total, xb_error *err);

/* Read and parse the .npy file at path; files above XB_NPY_MAX_BYTES are refused. */
int xb_npy_read(const char *path, xb_ndarray **out, xb_error *err);

/* Serialize: numeric arrays as dtype out_type (XB_DT_F4 or XB_DT_F8, little-endian, C order);
 * string arrays as '<U{maxlen}' (UTF-32LE, as numpy writes them). *buf malloc'd. */
int xb_npy_serialize(const xb_ndarray *a, xb_dtype out_type, unsigned char **buf, size_t *len, xb_error *err);

/* Write a as a .npy file at path (see xb_npy_serialize); atomic: on failure nothing is left at
 * path and no temporary file remains. */
int xb_npy_write(const char *path, const xb_ndarray *a, xb_dtype out_type, xb_error *err); /* atomic */

#endif
