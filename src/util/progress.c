// progress: a progress bar on a terminal, plain periodic lines otherwise
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double xb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void xb_progress_start(xb_progress *p, FILE *fp, const char *label, size_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->fp = fp;
    p->tty = isatty(fileno(fp));
    p->quiet = quiet;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = xb_now();
    p->t_last_draw = p->t_start;
}

static void fmt_time(char *buf, size_t len, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, len, "--:--");
    else if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    else
        snprintf(buf, len, "%02d:%02d", (int)(s / 60), (int)s % 60);
}

static void draw(xb_progress *p, size_t done, const char *status, int final)
{
    double now = xb_now(), el = now - p->t_start;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(p->total - (done < p->total ? done : p->total)) / rate : -1;
    char t_el[32], t_eta[32];
    fmt_time(t_el, sizeof t_el, el);
    fmt_time(t_eta, sizeof t_eta, eta);
    if (p->tty) {
        char bar[31];
        int filled = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(p->fp, "\r%s [%s] %3.0f%% %zu/%zu %.0f/s %s eta %s %s\033[K", p->label, bar,
                100 * frac, done, p->total, rate, t_el, final ? "00:00" : t_eta, status ? status : "");
        if (final)
            fputc('\n', p->fp);
    } else {
        fprintf(p->fp, "%s %3.0f%% %zu/%zu %.0f/s elapsed %s eta %s %s\n", p->label, 100 * frac, done,
                p->total, rate, t_el, final ? "00:00" : t_eta, status ? status : "");
    }
    fflush(p->fp);
    p->t_last_draw = now;
}

void xb_progress_update(xb_progress *p, size_t done, const char *status)
{
    if (p->quiet)
        return;
    /* A terminal redraws often; a log file gets a line every 10 s so it stays readable. */
    double interval = p->tty ? 0.2 : 10.0;
    if (xb_now() - p->t_last_draw >= interval)
        draw(p, done, status, 0);
}

void xb_progress_finish(xb_progress *p, const char *status)
{
    if (!p->quiet)
        draw(p, p->total, status, 1);
}

void xb_progress_clear(xb_progress *p)
{
    if (!p->quiet && p->tty) {
        fputs("\r\033[K", p->fp);
        fflush(p->fp);
    }
}
