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

/* Output locations, checked before any long computation starts. XB_EINPUT, naming what (an option
 * such as "--out") and the path, for an empty path, a path under a regular file, an existing file
 * where a folder is wanted (or a folder where a file is), and a location nothing can be written in
 * (a probe file is created and removed in the folder, or in its nearest existing ancestor: permission
 * bits alone do not stop root). Nothing is created. */
int xb_check_out_dir(const char *path, const char *what, xb_error *err);
int xb_check_out_file(const char *path, const char *what, xb_error *err);

/* Is there a process with this id (kill(pid, 0) does not say ESRCH)? */
int xb_pid_alive(long pid);

/* Remove the temporaries NAME.tmp.PID (of xb_atomic_open and the plot renderer) in dir and in its
 * subfolders down to depth levels whose PID is not a live process, or is this process (a run that
 * starts owns none yet): what a killed run left. Symbolic links are not followed. Returns how many. */
size_t xb_remove_stale_temps(const char *dir, int depth);

/* Cleanup on a fatal signal. The process keeps a table of its open temporaries (xb_atomic_open adds
 * them, commit and abort drop them) and of its worker processes and their folders (src/sched/local.c);
 * xb_cleanup_now kills and reaps those workers, removes their folders and every temporary. It uses
 * only async-signal-safe calls, so a SIGINT/SIGTERM handler may call it. The tables are fixed-size: a
 * temporary that finds no free slot is simply not tracked. */
void xb_cleanup_track_file(const char *path);
void xb_cleanup_untrack_file(const char *path);
void xb_cleanup_track_worker(const char *dir, long pid); /* pid 0: the folder exists, no worker yet */
void xb_cleanup_untrack_worker(const char *dir);
void xb_cleanup_now(void);
/* Remove dir and what it holds down to depth levels of subfolders, with async-signal-safe calls only. */
void xb_remove_tree_signal_safe(const char *dir, int depth);

/* SHA-256 of a buffer / a file, as 64 lowercase hex characters plus NUL. */
void xb_sha256_hex(const void *data, size_t len, char hex[65]);
int xb_sha256_file(const char *path, char hex[65], xb_error *err);

#endif
