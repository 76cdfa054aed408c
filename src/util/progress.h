// progress: a progress bar on a terminal, plain periodic lines otherwise
#ifndef XB_PROGRESS_H
#define XB_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct xb_progress {
    FILE *fp;
    int tty;              /* draw a bar with \r; otherwise print plain lines sparingly */
    int quiet;            /* print nothing */
    char label[64];
    size_t total;
    double t_start;       /* seconds, monotonic */
    double t_last_draw;
} xb_progress;

/* Monotonic clock in seconds. */
double xb_now(void);

/* Start a progress display of total steps on fp (stderr usually). quiet suppresses it. */
void xb_progress_start(xb_progress *p, FILE *fp, const char *label, size_t total, int quiet);
/* Report done steps, with an optional short status text (loss, accuracy, ...). Rate limited. */
void xb_progress_update(xb_progress *p, size_t done, const char *status);
/* Erase the bar from a terminal (before other output takes its line); nothing otherwise. */
void xb_progress_clear(xb_progress *p);
/* Final line: always printed (unless quiet), ends with a newline. */
void xb_progress_finish(xb_progress *p, const char *status);

#endif
