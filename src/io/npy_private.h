// npy_private: what the .npy reader (npy.c) and writer (npy_write.c) share; not part of the io API
#ifndef XB_NPY_PRIVATE_H
#define XB_NPY_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

extern const unsigned char xb_npy_magic[6];

/* Non-zero when a * b overflows size_t (*r holds the wrapped product). */
int xb_npy_mul_overflows(size_t a, size_t b, size_t *r);
/* Element count of a shape (a zero dimension gives 0, as numpy sees it); non-zero on overflow. */
int xb_npy_shape_count(int ndim, const size_t *shape, size_t *count);
/* Strict UTF-8 decoding of one code point at *ps (a non-NUL byte), advancing *ps; -1 if malformed. */
int xb_npy_utf8_next(const unsigned char **ps, uint32_t *cp);

#endif
