// fuzz_common: shared helpers of the fuzz targets: inputs written to a private temporary folder
#ifndef XB_FUZZ_COMMON_H
#define XB_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A folder under $TMPDIR (or /tmp) made once per process and removed at exit, with links named
 * links[0..n) to the files targets[0..n) (models a device file refers to by relative path). */
static char fuzz_dir_[4096];
static const char *const *fuzz_links_;
static size_t fuzz_n_links_;

static inline void fuzz_cleanup_(void)
{
    char p[4200];
    for (size_t i = 0; i < fuzz_n_links_; i++) {
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_, fuzz_links_[i]);
        unlink(p);
    }
    rmdir(fuzz_dir_);
}

static inline const char *fuzz_dir(const char *const *links, const char *const *targets, size_t n)
{
    if (fuzz_dir_[0])
        return fuzz_dir_;
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/xbfuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir_)) {
        perror("mkdtemp");
        abort();
    }
    fuzz_links_ = links;
    fuzz_n_links_ = n;
    for (size_t i = 0; i < n; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_, links[i]);
        if (symlink(targets[i], p) != 0) {
            perror("symlink");
            abort();
        }
    }
    atexit(fuzz_cleanup_);
    return fuzz_dir_;
}

/* Write data to a new file in the private folder (mkstemp); path receives its name. The caller
 * removes it with unlink(path) after the call under test. */
static inline void fuzz_write(const char *dir, const uint8_t *data, size_t size, char *path, size_t len)
{
    snprintf(path, len, "%s/in-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            perror("write");
            abort();
        }
        done += (size_t)w;
    }
    close(fd);
}

/* Every refusal must be a status with a message: no other codes, no empty messages. */
static inline void fuzz_check_status(int rc, const xb_error *err)
{
    if (rc != XB_OK && rc != XB_EINPUT && rc != XB_ERUNTIME && rc != XB_ENOMEM)
        abort();
    if (rc != XB_OK && err->msg[0] == '\0')
        abort();
}

#endif
