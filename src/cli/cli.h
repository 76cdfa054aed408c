// cli: the subcommand table and helpers shared by the subcommands
#ifndef XB_CLI_H
#define XB_CLI_H

#include <stddef.h>

#include "error.h"

typedef struct xb_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;               /* one line for `xbarsim help` */
    const char *usage[4];              /* full text for `xbarsim help NAME` and `NAME --help`, in parts
                                          (C99 guarantees only 4095-character literals); NULL ends it */
} xb_command;

extern const xb_command xb_cmd_train, xb_cmd_eval, xb_cmd_data, xb_cmd_program, xb_cmd_netlist, xb_cmd_run;

/* Print "xbarsim CMD: MESSAGE" and a pointer to --help on stderr; returns 2. */
int xb_cli_usage_error(const char *cmd, const char *fmt, ...) XB_PRINTF(2, 3);
/* Print an error record and return the exit code for it (0, 1 or 2). */
int xb_cli_fail(const char *cmd, int rc, const xb_error *err);

/* Option value parsers: return 0 or print a usage error naming the option and return 2. */
int xb_cli_size(const char *cmd, const char *opt, const char *val, size_t lo, size_t hi, size_t *out);
int xb_cli_double(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out);
int xb_cli_ulong(const char *cmd, const char *opt, const char *val, unsigned long *out);

/* Set the BLAS thread count (0: leave the library's default). */
void xb_cli_set_threads(int n);
/* The BLAS thread count in force. */
int xb_cli_threads(void);

/* Check an output folder / file given by an option (see xb_check_out_dir): 0, or print the error
 * and return 2. */
int xb_cli_out_dir(const char *cmd, const char *opt, const char *path);
int xb_cli_out_file(const char *cmd, const char *opt, const char *path);

/* SIGINT and SIGTERM: stop the workers, remove the temporaries and worker folders (xb_cleanup_now),
 * print that cmd was stopped and, when set, how to resume, and exit 128 + the signal (130, 143). */
void xb_cli_catch_signals(const char *cmd);
/* The text printed after a stop (NULL: none); copied. */
void xb_cli_set_resume_hint(const char *text);
/* The path the tool was started by (argv[0]), for commands printed back to the user. */
void xb_cli_set_program(const char *argv0);
const char *xb_cli_program(void);

/* Print a command's usage to stdout (for --help). */
void xb_cli_print_usage(const xb_command *c);

#endif
