// cli: helpers shared by the subcommands
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

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

int xb_cli_out_dir(const char *cmd, const char *opt, const char *path)
{
    xb_error err = {0};
    int rc = xb_check_out_dir(path, opt, &err);
    return rc ? xb_cli_fail(cmd, rc, &err) : 0;
}

int xb_cli_out_file(const char *cmd, const char *opt, const char *path)
{
    xb_error err = {0};
    int rc = xb_check_out_file(path, opt, &err);
    return rc ? xb_cli_fail(cmd, rc, &err) : 0;
}

/* What the handler prints, composed beforehand: it may only write(). */
static char stop_cmd[64];
static char resume_hint[8192];
static char program_path[4096] = "xbarsim";

static void put_err(const char *s)
{
    ssize_t w = write(2, s, strlen(s));
    (void)w;
}

static void on_stop_signal(int sig)
{
    xb_cleanup_now();
    put_err("\nxbarsim ");
    put_err(stop_cmd);
    put_err(sig == SIGINT ? ": stopped by SIGINT" : ": stopped by SIGTERM");
    put_err("; worker processes stopped, temporaries and worker folders removed\n");
    if (resume_hint[0])
        put_err(resume_hint);
    _exit(128 + sig);
}

void xb_cli_catch_signals(const char *cmd)
{
    snprintf(stop_cmd, sizeof stop_cmd, "%s", cmd);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void xb_cli_set_resume_hint(const char *text)
{
    /* Written while the handler may run: cleared first, so it never prints half a text. */
    resume_hint[0] = '\0';
    if (text && strlen(text) < sizeof resume_hint) {
        memcpy(resume_hint + 1, text + 1, strlen(text)); /* the rest, with its NUL */
        __atomic_store_n(&resume_hint[0], text[0], __ATOMIC_SEQ_CST);
    }
}

void xb_cli_set_program(const char *argv0)
{
    if (argv0 && argv0[0])
        snprintf(program_path, sizeof program_path, "%s", argv0);
}

const char *xb_cli_program(void)
{
    return program_path;
}
