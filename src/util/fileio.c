// fileio: atomic result files, whole-file reads, directories and content hashes
#define _GNU_SOURCE
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int xb_mkdir_p(const char *path, xb_error *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0)
        return XB_OK;
    if (n >= sizeof buf)
        return xb_fail(err, XB_EINPUT, "%s: path too long", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return xb_fail(err, XB_ERUNTIME, "cannot create folder %s: %s", buf, strerror(errno));
            if (c == '\0')
                break;
            *p = c;
        }
    }
    if (!xb_is_dir(path))
        return xb_fail(err, XB_ERUNTIME, "%s exists and is not a folder", path);
    return XB_OK;
}

int xb_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int xb_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int xb_atomic_open(xb_atomic_file *f, const char *path, xb_error *err)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return xb_fail(err, XB_EINPUT, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = xb_mkdir_p(dir, err);
        if (rc)
            return rc;
    }
    /* Tracked before it exists: a signal between the two must not leave it behind. */
    xb_cleanup_track_file(f->tmp_path);
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int e = errno;
        xb_cleanup_untrack_file(f->tmp_path);
        return xb_fail(err, XB_ERUNTIME, "cannot write %s: %s", f->tmp_path, strerror(e));
    }
    return XB_OK;
}

int xb_atomic_open_in(xb_atomic_file *f, const char *dir, const char *name, xb_error *err)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        memset(f, 0, sizeof *f);
        return xb_fail(err, XB_EINPUT, "%s/%s: path too long", dir, name);
    }
    return xb_atomic_open(f, path, err);
}

int xb_atomic_commit(xb_atomic_file *f, xb_error *err)
{
    if (!f->fp)
        return xb_fail(err, XB_ERUNTIME, "%s: not open", f->path);
    int bad = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
    int saved = errno;
    if (fclose(f->fp) != 0)
        bad = 1;
    f->fp = NULL;
    if (bad) {
        remove(f->tmp_path);
        xb_cleanup_untrack_file(f->tmp_path);
        return xb_fail(err, XB_ERUNTIME, "writing %s failed: %s", f->path, strerror(saved));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        saved = errno;
        remove(f->tmp_path);
        xb_cleanup_untrack_file(f->tmp_path);
        return xb_fail(err, XB_ERUNTIME, "cannot rename %s to %s: %s", f->tmp_path, f->path,
                       strerror(saved));
    }
    xb_cleanup_untrack_file(f->tmp_path);
    return XB_OK;
}

void xb_atomic_abort(xb_atomic_file *f)
{
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        remove(f->tmp_path);
        xb_cleanup_untrack_file(f->tmp_path);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* Output locations */

/* Can a file be created in the existing folder dir? 0, or the errno of the failure. */
static int probe_write(const char *dir)
{
    char probe[4200];
    int n = snprintf(probe, sizeof probe, "%s/.xbarsim-write-check-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof probe)
        return ENAMETOOLONG;
    int fd = mkstemp(probe);
    if (fd < 0)
        return errno;
    close(fd);
    unlink(probe);
    return 0;
}

int xb_check_out_dir(const char *path, const char *what, xb_error *err)
{
    if (!path[0])
        return xb_fail(err, XB_EINPUT, "%s '': an empty output path; give a folder, such as %s results/mine",
                       what, what);
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return xb_fail(err, XB_EINPUT, "%s %.100s...: path too long (at most %zu characters)", what, path,
                       sizeof buf - 1);
    memcpy(buf, path, n + 1);
    /* The nearest part of the path that exists. */
    struct stat st;
    int depth = 0;
    for (;;) {
        while (n > 1 && buf[n - 1] == '/')
            buf[--n] = '\0';
        if (stat(buf, &st) == 0)
            break;
        if (errno == ENOTDIR) {
            /* A component above is a file: find it for the message. */
        } else if (errno != ENOENT) {
            return xb_fail(err, XB_EINPUT, "%s %s: cannot use %s: %s; choose another output folder", what, path,
                           buf, strerror(errno));
        }
        char *slash = strrchr(buf, '/');
        if (!slash) {
            snprintf(buf, sizeof buf, ".");
            if (stat(buf, &st) != 0)
                return xb_fail(err, XB_EINPUT, "%s %s: the current folder cannot be read: %s", what, path,
                               strerror(errno));
            depth++;
            break;
        }
        if (slash == buf)
            slash[1] = '\0';
        else
            *slash = '\0';
        n = strlen(buf);
        depth++;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (depth == 0)
            return xb_fail(err, XB_EINPUT, "%s %s: this is an existing file, not a folder; give a folder (a new one "
                           "is created) or move the file away", what, path);
        return xb_fail(err, XB_EINPUT, "%s %s: %s is a file, so no folder can be made under it; give a folder "
                       "path whose parents are folders", what, path, buf);
    }
    int e = probe_write(buf);
    if (e)
        return xb_fail(err, XB_EINPUT, "%s %s: nothing can be written in %s (%s); choose a writable output folder",
                       what, path, buf, strerror(e));
    return XB_OK;
}

int xb_check_out_file(const char *path, const char *what, xb_error *err)
{
    if (!path[0])
        return xb_fail(err, XB_EINPUT, "%s '': an empty output path; give a file name", what);
    if (xb_is_dir(path))
        return xb_fail(err, XB_EINPUT, "%s %s: this is a folder; give a file name", what, path);
    char dir[4096];
    if (strlen(path) >= sizeof dir)
        return xb_fail(err, XB_EINPUT, "%s %.100s...: path too long (at most %zu characters)", what, path,
                       sizeof dir - 1);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    char what_dir[4300];
    snprintf(what_dir, sizeof what_dir, "%s %s: its folder", what, path);
    return xb_check_out_dir(dir, what_dir, err);
}

int xb_pid_alive(long pid)
{
    if (pid <= 0)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 0;
    /* A zombie is gone too: where PID 1 does not reap orphans (some containers), a killed process whose
     * parent has exited (an MPI rank after its launcher) stays one. */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')'); /* "PID (COMM) STATE ...": COMM may hold anything */
    return !(close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X'));
}

/* NAME.tmp.DIGITS: the PID, or -1. */
static long temp_pid(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t)
        return -1;
    const char *next;
    while ((next = strstr(t + 1, ".tmp.")))
        t = next;
    const char *d = t + 5;
    if (!*d)
        return -1;
    long pid = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 100000000L)
            return -1;
        pid = pid * 10 + (*d - '0');
    }
    return pid;
}

size_t xb_remove_stale_temps(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0)
                removed += xb_remove_stale_temps(path, depth - 1);
            continue;
        }
        long pid = temp_pid(e->d_name);
        if (S_ISREG(st.st_mode) && pid > 0 && (pid == (long)getpid() || !xb_pid_alive(pid)) && unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* ------------------------------------------------------------------------------------------------ */
/* Cleanup on a fatal signal: fixed tables, claimed and released with atomics, read by the handler */

#define TRACKED_FILES 128
#define TRACKED_WORKERS 1100

static struct tracked_file {
    int used;
    char path[4160];
} tracked_files[TRACKED_FILES];

static struct tracked_worker {
    int used;
    long pid;
    char dir[128];
} tracked_workers[TRACKED_WORKERS];

void xb_cleanup_track_file(const char *path)
{
    if (strlen(path) >= sizeof tracked_files[0].path)
        return;
    for (int i = 0; i < TRACKED_FILES; i++) {
        int expected = 0;
        /* 2: claimed, being filled; the handler ignores it. */
        if (__atomic_compare_exchange_n(&tracked_files[i].used, &expected, 2, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            strcpy(tracked_files[i].path, path);
            __atomic_store_n(&tracked_files[i].used, 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

void xb_cleanup_untrack_file(const char *path)
{
    for (int i = 0; i < TRACKED_FILES; i++)
        if (__atomic_load_n(&tracked_files[i].used, __ATOMIC_SEQ_CST) == 1 && !strcmp(tracked_files[i].path, path)) {
            __atomic_store_n(&tracked_files[i].used, 0, __ATOMIC_SEQ_CST);
            return;
        }
}

void xb_cleanup_track_worker(const char *dir, long pid)
{
    if (strlen(dir) >= sizeof tracked_workers[0].dir)
        return;
    for (int i = 0; i < TRACKED_WORKERS; i++)
        if (__atomic_load_n(&tracked_workers[i].used, __ATOMIC_SEQ_CST) == 1 && !strcmp(tracked_workers[i].dir, dir)) {
            __atomic_store_n(&tracked_workers[i].pid, pid, __ATOMIC_SEQ_CST);
            return;
        }
    for (int i = 0; i < TRACKED_WORKERS; i++) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&tracked_workers[i].used, &expected, 2, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            strcpy(tracked_workers[i].dir, dir);
            tracked_workers[i].pid = pid;
            __atomic_store_n(&tracked_workers[i].used, 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

void xb_cleanup_untrack_worker(const char *dir)
{
    for (int i = 0; i < TRACKED_WORKERS; i++)
        if (__atomic_load_n(&tracked_workers[i].used, __ATOMIC_SEQ_CST) == 1 && !strcmp(tracked_workers[i].dir, dir)) {
            __atomic_store_n(&tracked_workers[i].used, 0, __ATOMIC_SEQ_CST);
            return;
        }
}

/* The kernel's directory entry (getdents64 is a plain system call: safe in a signal handler, unlike
 * readdir, which allocates). */
struct dirent64_raw {
    unsigned long long ino;
    long long off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

static size_t safe_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void xb_remove_tree_signal_safe(const char *dir, int depth)
{
    for (int pass = 0; pass < 3; pass++) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            break;
        char buf[4096] __attribute__((aligned(8)));
        long got;
        while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long at = 0; at < got;) {
                struct dirent64_raw *e = (struct dirent64_raw *)(void *)(buf + at);
                at += e->reclen;
                if (e->name[0] == '.' && (!e->name[1] || (e->name[1] == '.' && !e->name[2])))
                    continue;
                if (unlinkat(fd, e->name, 0) == 0 || errno != EISDIR)
                    continue;
                /* A folder: one level down, by its full path. */
                char sub[4200];
                size_t a = safe_len(dir), b = safe_len(e->name);
                if (depth <= 0 || a + b + 2 > sizeof sub)
                    continue;
                memcpy(sub, dir, a);
                sub[a] = '/';
                memcpy(sub + a + 1, e->name, b + 1);
                xb_remove_tree_signal_safe(sub, depth - 1);
            }
        }
        close(fd);
        if (rmdir(dir) == 0 || errno != ENOTEMPTY)
            break;
    }
}

void xb_cleanup_now(void)
{
    for (int i = 0; i < TRACKED_WORKERS; i++) {
        struct tracked_worker *w = &tracked_workers[i];
        if (__atomic_load_n(&w->used, __ATOMIC_SEQ_CST) != 1)
            continue;
        long pid = __atomic_load_n(&w->pid, __ATOMIC_SEQ_CST);
        if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
            while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
                ;
        xb_remove_tree_signal_safe(w->dir, 2);
        __atomic_store_n(&w->used, 0, __ATOMIC_SEQ_CST);
    }
    for (int i = 0; i < TRACKED_FILES; i++)
        if (__atomic_load_n(&tracked_files[i].used, __ATOMIC_SEQ_CST) == 1) {
            unlink(tracked_files[i].path);
            __atomic_store_n(&tracked_files[i].used, 0, __ATOMIC_SEQ_CST);
        }
}

int xb_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len, xb_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return xb_fail(err, errno == ENOENT ? XB_EINPUT : XB_ERUNTIME, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return xb_fail(err, XB_EINPUT, "%s is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(fp);
        return xb_fail(err, XB_EINPUT, "%s: file is %lld bytes, more than the %zu allowed", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return xb_fail(err, XB_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, fp) != n) {
        free(buf);
        fclose(fp);
        return xb_fail(err, XB_ERUNTIME, "%s: short read", path);
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return XB_OK;
}

/* SHA-256 (FIPS 180-4), written from the specification. */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char block[64];
    size_t fill;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g; g = f; f = e; e = d + t1;
        d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_init(sha256_ctx *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->len = 0;
    c->fill = 0;
}

static void sha256_update(sha256_ctx *c, const unsigned char *p, size_t n)
{
    c->len += n;
    while (n) {
        size_t take = 64 - c->fill < n ? 64 - c->fill : n;
        memcpy(c->block + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill == 64) {
            sha256_block(c, c->block);
            c->fill = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, char hex[65])
{
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0, lenbuf[8];
    sha256_update(c, &pad, 1);
    while (c->fill != 56)
        sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, lenbuf, 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

void xb_sha256_hex(const void *data, size_t len, char hex[65])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, hex);
}

int xb_sha256_file(const char *path, char hex[65], xb_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return xb_fail(err, XB_EINPUT, "cannot open %s: %s", path, strerror(errno));
    /* A device or a pipe (/dev/zero) never ends: only regular files are inputs. */
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return xb_fail(err, XB_EINPUT, "%s is not a regular file: give the path of a file", path);
    }
    sha256_ctx c;
    sha256_init(&c);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        sha256_update(&c, buf, n);
    int bad = ferror(fp);
    fclose(fp);
    if (bad)
        return xb_fail(err, XB_ERUNTIME, "%s: read error", path);
    sha256_final(&c, hex);
    return XB_OK;
}

void xb_csv_field(FILE *fp, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', fp);
        fputc(*p, fp);
    }
    fputc('"', fp);
}
