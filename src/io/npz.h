// npz: NumPy .npz archives (zip files of .npy members) read into and written from xb_ndarray lists
#ifndef XB_NPZ_H
#define XB_NPZ_H

#include <stddef.h>

#include "error.h"
#include "npy.h"

/* A deflated member may expand to at most XB_NPZ_MAX_RATIO times its compressed size, or to
 * XB_NPZ_RATIO_FLOOR bytes, whichever is more. Float weights compress barely (1.1:1), conductance maps
 * of repeated g_min cells 10 to 50:1; deflate reaches ~1032:1 only on near-constant data, which is a
 * decompression bomb here, refused before it is inflated. */
#define XB_NPZ_MAX_RATIO 100
#define XB_NPZ_RATIO_FLOOR ((unsigned long long)64 << 20)

typedef struct xb_npz xb_npz; /* an ordered list of arrays, in the archive's member order */

/* Load every member of the .npz at path (stored or deflated, as numpy.savez and
 * numpy.savez_compressed write them). Members must be named NAME.npy, with unique names, each at
 * most XB_NPY_MAX_BYTES uncompressed and within the expansion limit above; a member's .npy header
 * must agree with the size the zip directory states, checked on the first chunk before the rest is
 * inflated, and no member is inflated past its stated size. On success *out is new and owned by the caller (release with
 * xb_npz_free); on failure *out is NULL and err names the file and member. */
int xb_npz_read(const char *path, xb_npz **out, xb_error *err);

size_t xb_npz_count(const xb_npz *z);

/* The i-th array (NULL if i is out of range); owned by z, valid until xb_npz_free. */
const xb_ndarray *xb_npz_at(const xb_npz *z, size_t i);

/* The array named name ("W1"; "W1.npy" also matches); owned by z. NULL if absent. */
const xb_ndarray *xb_npz_get(const xb_npz *z, const char *name); /* NULL if absent */

/* Release z and its arrays; sets *z to NULL; accepts NULL and *z == NULL. */
void xb_npz_free(xb_npz **z);

/* Write arrays[0..n) (inputs, not modified; numeric ones as out_type, XB_DT_F4 or XB_DT_F8) to
 * path as deflated members NAME.npy, in order. Names must be unique and non-empty. Atomic: the
 * archive is built in memory and renamed into place, so a failure leaves neither a half file at
 * path nor a temporary behind. Member times are fixed so equal inputs give equal bytes. */
int xb_npz_write(const char *path, const xb_ndarray *const *arrays, size_t n, xb_dtype out_type, xb_error *err);

#endif
