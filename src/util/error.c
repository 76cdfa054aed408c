// error: fill in and describe error records
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int xb_fail(xb_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int xb_error_prefix(xb_error *err, const char *fmt, ...)
{
    if (!err)
        return XB_ERUNTIME;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* A message cut short keeps its beginning: the prefix names the file, which matters most. */
    if (n >= 0 && (size_t)n < sizeof err->msg - 2)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %.*s", (int)(sizeof err->msg - (size_t)n - 3), old);
    return err->code;
}

const char *xb_strerror(int code)
{
    switch (code) {
    case XB_OK: return "success";
    case XB_ERUNTIME: return "runtime failure";
    case XB_EINPUT: return "bad usage or bad input";
    case XB_ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

int xb_exit_code(int code)
{
    if (code == XB_OK)
        return 0;
    return code == XB_EINPUT ? 2 : 1;
}
