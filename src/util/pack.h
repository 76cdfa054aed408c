// pack: a growing byte buffer to flatten structs and arrays into, and a bounds-checked reader of one
//
// For sending a worker's inputs to a process that has none of the sender's memory (an MPI rank). Values
// travel in the sender's byte order and layout: both ends run the same build on the same architecture.
// A writer that fails to grow remembers it (xb_pack_failed) and ignores later writes, so callers check
// once at the end. A reader that would run past the end fails every later read and reports it.
#ifndef XB_PACK_H
#define XB_PACK_H

#include <stddef.h>

typedef struct xb_pack {
    unsigned char *data;
    size_t len, cap;
    int failed; /* out of memory */
} xb_pack;

/* Append len bytes. */
void xb_pack_put(xb_pack *p, const void *bytes, size_t len);
/* Append a length (size_t) then len bytes: an array that may be absent (bytes NULL, len 0). */
void xb_pack_put_array(xb_pack *p, const void *bytes, size_t len);
int xb_pack_failed(const xb_pack *p);
void xb_pack_free(xb_pack *p);

typedef struct xb_unpack {
    const unsigned char *data;
    size_t len, pos;
    int failed; /* a read past the end, or an array of another length than asked */
} xb_unpack;

void xb_unpack_init(xb_unpack *u, const void *data, size_t len);
/* Copy the next len bytes into out (zeros once failed). */
void xb_unpack_get(xb_unpack *u, void *out, size_t len);
/* The next array written by xb_pack_put_array as a malloc'ed copy of exactly `len` bytes (NULL for an
 * empty one or on failure; a stored length other than len fails the reader). */
void *xb_unpack_get_array(xb_unpack *u, size_t len);
/* The same array copied into out (len bytes, the caller's); 0, or -1 failing the reader as above. */
int xb_unpack_get_array_into(xb_unpack *u, void *out, size_t len);
/* Every byte read, nothing past the end. */
int xb_unpack_ok(const xb_unpack *u);

#endif
