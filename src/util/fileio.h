// fileio: atomic result files, whole-file reads, directories and content hashes
#ifndef XB_FILEIO_H
#define XB_FILEIO_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* A file written under a temporary name and renamed into place on commit, so an interrupted
 * run never leaves a half-written result. */
typedef struct xb_atomic_file {
    FILE *fp;            /* write here */
    char path[4096];     /* final name */
    char tmp_path[4160]; /* temporary name in the same folder */
} xb_atomic_file;

/* Open path.tmp.PID for writing; creates missing parent folders. */
int xb_atomic_open(xb_atomic_file *f, const char *path, xb_error *err);
/* The same for DIR/NAME. */
int xb_atomic_open_in(xb_atomic_file *f, const char *dir, const char *name, xb_error *err);
/* Flush, fsync, close and rename into place. On failure the temporary is removed. */
int xb_atomic_commit(xb_atomic_file *f, xb_error *err);
/* Close and remove the temporary (error paths); safe to call after commit. */
void xb_atomic_abort(xb_atomic_file *f);

/* Write s as one CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break. */
void xb_csv_field(FILE *fp, const char *s);

/* Read a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes the NUL).
 * Files larger than max_bytes are refused with XB_EINPUT. */
int xb_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len, xb_error *err);

/* mkdir -p. */
int xb_mkdir_p(const char *path, xb_error *err);

/* Does the path exist as a regular file / as a directory? */
int xb_is_file(const char *path);
int xb_is_dir(const char *path);

/* SHA-256 of a buffer / a file, as 64 lowercase hex characters plus NUL. */
void xb_sha256_hex(const void *data, size_t len, char hex[65]);
int xb_sha256_file(const char *path, char hex[65], xb_error *err);

#endif
