// cli: helpers shared by the subcommands
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void openblas_set_num_threads(int n); /* from OpenBLAS */
int openblas_get_num_threads(void);

int xb_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "xbarsim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'xbarsim %s --help'.\n", cmd);
    return 2;
}

int xb_cli_fail(const char *cmd, int rc, const xb_error *err)
{
    if (rc == XB_OK)
        return 0;
    fprintf(stderr, "xbarsim %s: error: %s\n", cmd, err && err->msg[0] ? err->msg : xb_strerror(rc));
    return xb_exit_code(rc);
}

int xb_cli_size(const char *cmd, const char *opt, const char *val, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-' || v < lo || v > hi)
        return xb_cli_usage_error(cmd, "%s '%s': expected a whole number from %zu to %zu", opt, val, lo, hi);
    *out = (size_t)v;
    return 0;
}

int xb_cli_double(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v) || v < lo || v > hi)
        return xb_cli_usage_error(cmd, "%s '%s': expected a number from %g to %g", opt, val, lo, hi);
    *out = v;
    return 0;
}

int xb_cli_ulong(const char *cmd, const char *opt, const char *val, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-')
        return xb_cli_usage_error(cmd, "%s '%s': expected a non-negative whole number", opt, val);
    *out = v;
    return 0;
}

void xb_cli_set_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}

int xb_cli_threads(void)
{
    return openblas_get_num_threads();
}

void xb_cli_print_usage(const xb_command *c)
{
    for (int i = 0; i < 4 && c->usage[i]; i++)
        fputs(c->usage[i], stdout);
}
