// plot_render: running gnuplot on a figure's script with a timeout, and putting its pictures in place atomically
#define _GNU_SOURCE
#include "plot_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

/* gnuplot draws one of these figures in well under a second; two minutes means it is stuck. */
#define RENDER_TIMEOUT_S 120
/* How much of gnuplot's output is kept: the tail, because its error message comes last. */
#define OUTPUT_KEEP 65536

/* Keep the last OUTPUT_KEEP bytes of what gnuplot printed; a chunk is always shorter than that. */
static void keep_tail(char *buf, size_t *len, const char *chunk, size_t k)
{
    if (*len + k > OUTPUT_KEEP) {
        size_t drop = *len + k - OUTPUT_KEEP;
        memmove(buf, buf + drop, *len - drop);
        *len -= drop;
    }
    memcpy(buf + *len, chunk, k);
    *len += k;
}

static void child_say(const char *msg)
{
    ssize_t w = write(2, msg, strlen(msg));
    (void)w;
}

/* Run gnuplot with argv in dir (NULL: the current folder), with stdin from /dev/null so that it can
 * never wait for input. *out (malloc'd, NUL-terminated) gets the tail of its stdout and stderr;
 * *exit_code its exit status, or -1 when it was killed or timed out. */
static int run_gnuplot(const char *dir, char *const argv[], char **out, size_t *out_len, int *exit_code,
                       xb_error *err)
{
    *out = NULL;
    *out_len = 0;
    *exit_code = -1;
    char *buf = malloc(OUTPUT_KEEP + 1);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "out of memory for gnuplot's output");
    size_t len = 0;
    int fds[2];
    /* Close-on-exec, so that processes started by other threads do not hold the pipe open. */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        free(buf);
        return xb_fail(err, XB_ERUNTIME, "cannot create a pipe for gnuplot: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        free(buf);
        return xb_fail(err, XB_ERUNTIME, "cannot start gnuplot: %s", strerror(saved));
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        if (dir && chdir(dir) != 0) {
            child_say("cannot enter the figure folder\n");
            _exit(126);
        }
        execvp("gnuplot", argv);
        child_say("cannot start gnuplot: it is not on PATH (install gnuplot-nox) or cannot be executed\n");
        _exit(127);
    }
    close(fds[1]);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int timed_out = 0;
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0) {
            char chunk[4096]; /* < OUTPUT_KEEP, as keep_tail assumes */
            ssize_t k = read(fds[0], chunk, sizeof chunk);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break; /* end of output: gnuplot has exited or is about to */
            keep_tail(buf, &len, chunk, (size_t)k);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > RENDER_TIMEOUT_S) {
            kill(pid, SIGKILL);
            timed_out = 1;
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    if (timed_out)
        return xb_fail(err, XB_ERUNTIME, "gnuplot did not finish within %d s and was stopped", RENDER_TIMEOUT_S);
    if (WIFEXITED(status))
        *exit_code = WEXITSTATUS(status);
    return XB_OK;
}

/* gnuplot's message in one line: its last line that is not blank and not the ^ pointing into the
 * command (that command, above it, goes to the log). */
static void last_message_line(const char *out, char *line, size_t cap)
{
    line[0] = '\0';
    const char *end = out + strlen(out);
    while (end > out) {
        const char *start = end;
        while (start > out && start[-1] != '\n')
            start--;
        int useful = 0;
        for (const char *p = start; p < end; p++)
            if (*p != ' ' && *p != '\t' && *p != '^' && *p != '\n' && *p != '\r')
                useful = 1;
        if (useful) {
            size_t n = (size_t)(end - start);
            while (n > 0 && (start[n - 1] == '\n' || start[n - 1] == '\r'))
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, start, n);
            line[n] = '\0';
            return;
        }
        end = start > out ? start - 1 : out;
    }
}

static int write_log(const char *path, const char *text, size_t len, xb_error *err)
{
    xb_atomic_file af;
    int rc = xb_atomic_open(&af, path, err);
    if (rc)
        return rc;
    fwrite(text, 1, len, af.fp);
    return xb_atomic_commit(&af, err);
}

/* Is the file a whole picture? An SVG ends with </svg>, a PNG with its IEND chunk: gnuplot on a full
 * disk can exit 0 with a truncated file. */
static int picture_complete(const char *path, int png)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    unsigned char head[8] = {0}, tail[64];
    size_t nh = fread(head, 1, sizeof head, fp);
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    size_t nt = 0;
    if (size > 0 && fseek(fp, size > (long)sizeof tail ? size - (long)sizeof tail : 0, SEEK_SET) == 0)
        nt = fread(tail, 1, sizeof tail, fp);
    fclose(fp);
    if (png) {
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
        return nh == 8 && !memcmp(head, sig, 8) && nt >= 12 && !memcmp(tail + nt - 12, iend, 12);
    }
    while (nt > 0 && (tail[nt - 1] == '\n' || tail[nt - 1] == '\r' || tail[nt - 1] == ' ' || tail[nt - 1] == '\t'))
        nt--;
    return nh > 0 && nt >= 6 && !memcmp(tail + nt - 6, "</svg>", 6);
}

int xb_plot_render(const char *dir, const char *name, xb_error *err)
{
    int rc = plot_check_name(name, err);
    if (rc)
        return rc;
    char gp[4200], svg[4200], png[4200], log[4200], svg_tmp[4300], png_tmp[4300];
    if ((rc = plot_figure_path(gp, sizeof gp, dir, name, "gp", err)) ||
        (rc = plot_figure_path(svg, sizeof svg, dir, name, "svg", err)) ||
        (rc = plot_figure_path(png, sizeof png, dir, name, "png", err)) ||
        (rc = plot_figure_path(log, sizeof log, dir, name, "log", err)))
        return rc;
    if (!xb_is_file(gp))
        return xb_fail(err, XB_EINPUT, "%s does not exist", gp);
    /* gnuplot draws to temporaries in the same folder (the script's xbarsim_svg and xbarsim_png),
     * renamed into place only when it succeeded and both pictures are complete. Old pictures go
     * first, so that a picture present afterwards is always this run's. */
    long pid = (long)getpid();
    snprintf(svg_tmp, sizeof svg_tmp, "%s.tmp.%ld", svg, pid);
    snprintf(png_tmp, sizeof png_tmp, "%s.tmp.%ld", png, pid);
    remove(svg);
    remove(png);
    xb_cleanup_track_file(svg_tmp);
    xb_cleanup_track_file(png_tmp);
    char prog[] = "gnuplot", e[] = "-e", script[XB_PLOT_NAME_MAX + 8], vars[2 * XB_PLOT_NAME_MAX + 96];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(vars, sizeof vars, "xbarsim_svg = '%s.svg.tmp.%ld'; xbarsim_png = '%s.png.tmp.%ld'", name, pid, name,
             pid);
    char *argv[] = {prog, e, vars, script, NULL};
    char *out = NULL;
    size_t out_len = 0;
    int code = -1;
    rc = run_gnuplot(plot_dir_or_here(dir), argv, &out, &out_len, &code, err);
    if (rc == XB_ENOMEM)
        goto finish;
    /* The log holds gnuplot's warnings (points skipped, ranges adjusted) even when it succeeds; an old
     * log would describe an older run. */
    xb_error log_err = {0}; /* a log that cannot be written does not make the pictures wrong */
    if (out_len > 0)
        write_log(log, out, out_len, &log_err);
    else
        remove(log);
    if (!rc && code != 0) {
        char line[700];
        last_message_line(out, line, sizeof line);
        if (code == 126 || code == 127) /* our child's own exits: gnuplot never ran */
            rc = xb_fail(err, XB_ERUNTIME, "cannot render %s: %s", gp, line[0] ? line : "gnuplot did not start");
        else
            rc = xb_fail(err, XB_ERUNTIME, "gnuplot failed on %s (exit status %d): %s%s%s", gp, code,
                         line[0] ? line : "no message", out_len ? "; its full output is in " : "",
                         out_len ? log : "");
    }
    /* A hand-edited script may name its outputs itself: then it wrote the pictures in place. */
    const char *got_svg = xb_is_file(svg_tmp) ? svg_tmp : svg, *got_png = xb_is_file(png_tmp) ? png_tmp : png;
    if (!rc && (!xb_is_file(got_svg) || !xb_is_file(got_png)))
        rc = xb_fail(err, XB_ERUNTIME, "gnuplot ran %s but did not write both %s.svg and %s.png", gp, name, name);
    if (!rc && (!picture_complete(got_svg, 0) || !picture_complete(got_png, 1)))
        rc = xb_fail(err, XB_ERUNTIME, "gnuplot ran %s but %s is incomplete (a full disk?); no picture was kept", gp,
                     !picture_complete(got_svg, 0) ? got_svg : got_png);
    if (!rc && got_svg == svg_tmp && rename(svg_tmp, svg) != 0)
        rc = xb_fail(err, XB_ERUNTIME, "cannot rename %s to %s: %s", svg_tmp, svg, strerror(errno));
    if (!rc && got_png == png_tmp && rename(png_tmp, png) != 0)
        rc = xb_fail(err, XB_ERUNTIME, "cannot rename %s to %s: %s", png_tmp, png, strerror(errno));
finish:
    remove(svg_tmp);
    remove(png_tmp);
    xb_cleanup_untrack_file(svg_tmp);
    xb_cleanup_untrack_file(png_tmp);
    if (rc) {
        remove(svg);
        remove(png);
    }
    free(out);
    return rc;
}

int xb_plot_can_render(void)
{
    /* Checked once: starting gnuplot costs tens of milliseconds. Two threads racing here both compute
     * the same answer. */
    static int cached = -1;
    if (cached < 0) {
        char prog[] = "gnuplot", e[] = "-e", cmd[] = "set terminal svg; set terminal pngcairo";
        char *argv[] = {prog, e, cmd, NULL};
        char *out = NULL;
        size_t len = 0;
        int code = -1;
        int rc = run_gnuplot(NULL, argv, &out, &len, &code, NULL);
        free(out);
        cached = rc == XB_OK && code == 0;
    }
    return cached;
}

int xb_plot_tolerate(int rc, int render, const xb_error *perr, const char *cmd, const char *name, const char *dir,
                     xb_error *err)
{
    if (rc == XB_ERUNTIME && render) {
        fprintf(stderr, "%s: warning: gnuplot could not draw %s (%s); its data (.csv) and script (.gp) are in %s/\n",
                cmd, name, perr->msg, dir);
        return XB_OK;
    }
    if (rc)
        *err = *perr;
    return rc;
}
