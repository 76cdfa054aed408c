// error: status codes and the error record every fallible call fills in
#ifndef XB_ERROR_H
#define XB_ERROR_H

#include <stddef.h>

/* Status codes. The CLI maps them to exit codes: XB_EINPUT -> 2, anything else non-zero -> 1. */
enum {
    XB_OK = 0,      /* success */
    XB_ERUNTIME = 1, /* runtime failure: I/O error, solver failure, ... */
    XB_EINPUT = 2,  /* bad usage or bad input: the message names the file, position and fix */
    XB_ENOMEM = 3   /* out of memory */
};

/* One error record travels through a call chain; the first failure writes it. */
typedef struct xb_error {
    int code;
    char msg[1024];
} xb_error;

#if defined(__GNUC__)
#define XB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define XB_PRINTF(a, b)
#endif

/* Record a failure in err (may be NULL) and return code, so callers can write `return xb_fail(...)`. */
int xb_fail(xb_error *err, int code, const char *fmt, ...) XB_PRINTF(3, 4);

/* Prefix an existing message with context ("reading weights.npz: ..."); returns err->code. */
int xb_error_prefix(xb_error *err, const char *fmt, ...) XB_PRINTF(2, 3);

/* One-line meaning of a status code. */
const char *xb_strerror(int code);

/* Exit code of the CLI for a status: 0, 1 or 2. */
int xb_exit_code(int code);

#endif
