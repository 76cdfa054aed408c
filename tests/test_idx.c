// test_idx: IDX reader and dataset loader on small files written here, good and broken
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "dataset.h"
#include "error.h"
#include "idx.h"

static char tmpdir[64];

/* Build an IDX image in memory: magic (with the given first bytes/type), dims, payload, extra bytes. */
static size_t make_idx(unsigned char *buf, int z0, int type, int ndim, const uint32_t *dims,
                       const unsigned char *data, size_t n, size_t extra)
{
    size_t k = 0;
    buf[k++] = (unsigned char)z0;
    buf[k++] = 0;
    buf[k++] = (unsigned char)type;
    buf[k++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[k++] = (unsigned char)(dims[i] >> 24);
        buf[k++] = (unsigned char)(dims[i] >> 16);
        buf[k++] = (unsigned char)(dims[i] >> 8);
        buf[k++] = (unsigned char)dims[i];
    }
    if (data)
        memcpy(buf + k, data, n);
    k += n;
    memset(buf + k, 0xAB, extra);
    return k + extra;
}

/* Write bytes to tmpdir/rel, raw or through zlib; returns the full path (static, per slot). */
static const char *put(const char *rel, const unsigned char *buf, size_t len, int gz)
{
    static char paths[8][4096];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 4096, "%s/%s", tmpdir, rel);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        if (!g || gzwrite(g, buf, (unsigned)len) != (int)len || gzclose(g) != Z_OK)
            fprintf(stderr, "cannot write %s\n", p);
    } else {
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
            fprintf(stderr, "cannot write %s\n", p);
    }
    return p;
}

static void cut_file(const char *path, off_t drop)
{
    struct stat st;
    if (stat(path, &st) != 0 || truncate(path, st.st_size - drop) != 0)
        fprintf(stderr, "cannot truncate %s\n", path);
}

/* The shared contract of every bad case: XB_EINPUT, a NULL result and the file named. */
static void expect_bad_idx(const char *path, const char *needle, const char *what)
{
    xb_idx *a = (xb_idx *)1;
    xb_error err = {0};
    int rc = xb_idx_read(path, &a, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", what, rc, err.msg);
    CHECK(a == NULL, "%s: result not NULL", what);
    CHECK(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", what, err.msg);
    if (needle)
        CHECK(strstr(err.msg, needle) != NULL, "%s: message lacks '%s': %s", what, needle, err.msg);
    xb_idx_free(&a);
}

static const unsigned char pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char labels3[3] = {0, 7, 3};

/* Writes a valid 3-image split (3 x 2 x 2) under the given names. */
static void put_split(const char *img_rel, const char *lab_rel, int gz)
{
    unsigned char buf[128];
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    put(img_rel, buf, make_idx(buf, 0, 8, 3, idims, pixels, 12, 0), gz);
    put(lab_rel, buf, make_idx(buf, 0, 8, 1, ldims, labels3, 3, 0), gz);
}

static void check_split(const xb_dataset *d, const char *what)
{
    CHECK(d->n == 3 && d->rows == 2 && d->cols == 2 && d->dim == 4, "%s: shape %zu %zu %zu %zu", what,
          d->n, d->rows, d->cols, d->dim);
    CHECK(d->x[0] == 0.0, "%s: x[0] %g", what, d->x[0]);
    CHECK(d->x[1] == 1.0, "%s: 255 -> %.17g", what, d->x[1]);
    CHECK(d->x[2] == 0.2, "%s: 51 -> %.17g", what, d->x[2]);
    CHECK(d->x[3] == 0.4, "%s: 102 -> %.17g", what, d->x[3]);
    CHECK_REL(d->x[11], 8 / 255.0, 1e-15, "last pixel");
    CHECK(d->y[0] == 0 && d->y[1] == 7 && d->y[2] == 3, "%s: labels %d %d %d", what, d->y[0],
          d->y[1], d->y[2]);
    CHECK(d->n_classes == 8, "%s: n_classes %d", what, d->n_classes);
    CHECK(strlen(d->images_sha256) == 64 && strlen(d->labels_sha256) == 64, "%s: hashes", what);
}

static void test_valid(void)
{
    for (int gz = 0; gz < 2; gz++) {
        put_split(gz ? "v_img.gz" : "v_img", gz ? "v_lab.gz" : "v_lab", gz);
        char img[4096], lab[4096];
        snprintf(img, sizeof img, "%s/%s", tmpdir, gz ? "v_img.gz" : "v_img");
        snprintf(lab, sizeof lab, "%s/%s", tmpdir, gz ? "v_lab.gz" : "v_lab");

        xb_idx *a = NULL;
        xb_error err = {0};
        CHECK(xb_idx_read(img, &a, &err) == XB_OK, "idx read gz=%d: %s", gz, err.msg);
        if (a) {
            CHECK(a->ndim == 3 && a->dims[0] == 3 && a->dims[1] == 2 && a->dims[2] == 2 &&
                      a->dims[3] == 0 && a->count == 12,
                  "idx dims gz=%d", gz);
            CHECK(memcmp(a->data, pixels, 12) == 0, "idx data gz=%d", gz);
        }
        xb_idx_free(&a);
        CHECK(a == NULL, "free sets NULL");

        xb_dataset *d = NULL;
        CHECK(xb_dataset_load_files(img, lab, &d, &err) == XB_OK, "load gz=%d: %s", gz, err.msg);
        if (d) {
            check_split(d, gz ? "gz" : "raw");
            CHECK(strcmp(d->name, "custom") == 0, "name %s", d->name);
            CHECK(strcmp(d->images_path, img) == 0, "images_path %s", d->images_path);
            xb_dataset_truncate(d, 10);
            CHECK(d->n == 3, "truncate to more keeps n");
            xb_dataset_truncate(d, 2);
            CHECK(d->n == 2 && d->x[7] == 4 / 255.0 && d->y[1] == 7, "truncate to 2");
        }
        xb_dataset_free(&d);
        CHECK(d == NULL, "dataset free sets NULL");
    }
    xb_dataset_free(NULL);
    xb_idx_free(NULL);
}

static void test_bad_files(void)
{
    unsigned char buf[256];
    uint32_t idims[3] = {3, 2, 2};
    size_t n;

    n = make_idx(buf, 0, 8, 3, idims, pixels, 12, 0);
    const char *p = put("trunc_raw", buf, n - 1, 0);
    expect_bad_idx(p, "expected 28 bytes from the header", "truncated raw");
    expect_bad_idx(p, "file has 27", "truncated raw size");

    p = put("extra_raw", buf, make_idx(buf, 0, 8, 3, idims, pixels, 12, 5), 0);
    expect_bad_idx(p, "file has 33", "extra bytes raw");

    /* valid gzip of a short IDX payload: the trailer size gives it away */
    n = make_idx(buf, 0, 8, 3, idims, pixels, 12, 0);
    p = put("short.gz", buf, n - 3, 1);
    expect_bad_idx(p, "gzip trailer", "gz of truncated payload");

    /* a gzip stream cut short */
    p = put("cut.gz", buf, n, 1);
    cut_file(p, 6);
    expect_bad_idx(p, NULL, "cut gz stream");

    /* a gzip stream with its trailer cut off completely */
    p = put("cut2.gz", buf, n, 1);
    cut_file(p, 8);
    expect_bad_idx(p, NULL, "gz without trailer");

    p = put("extra.gz", buf, make_idx(buf, 0, 8, 3, idims, pixels, 12, 4), 1);
    expect_bad_idx(p, "gzip trailer", "gz with extra payload");

    /* two gzip members: the last trailer matches, so only the read-to-end check catches it */
    n = make_idx(buf, 0, 8, 3, idims, pixels, 12, 0);
    p = put("twice.gz", buf, n, 1);
    gzFile g = gzopen(p, "ab");
    if (g) {
        gzwrite(g, buf, (unsigned)n);
        gzclose(g);
    }
    expect_bad_idx(p, "extra bytes", "gz with a second member");

    p = put("magic", buf, make_idx(buf, 1, 8, 3, idims, pixels, 12, 0), 0);
    expect_bad_idx(p, "first two bytes", "wrong magic");
    memcpy(buf, "<htm", 4);
    p = put("html", buf, 16, 0);
    expect_bad_idx(p, "not an IDX file", "html");

    p = put("float", buf, make_idx(buf, 0, 0x0D, 3, idims, pixels, 12, 0), 0);
    expect_bad_idx(p, "0x0d", "float type");
    p = put("float.gz", buf, make_idx(buf, 0, 0x0D, 3, idims, pixels, 12, 0), 1);
    expect_bad_idx(p, "float32", "float type gz");

    p = put("ndim0", buf, make_idx(buf, 0, 8, 0, idims, pixels, 12, 0), 0);
    expect_bad_idx(p, "0 dimensions", "ndim 0");
    uint32_t d5[5] = {1, 1, 1, 2, 6};
    p = put("ndim5", buf, make_idx(buf, 0, 8, 5, d5, pixels, 12, 0), 0);
    expect_bad_idx(p, "5 dimensions", "ndim 5");

    uint32_t dz[3] = {3, 0, 2};
    p = put("zerodim", buf, make_idx(buf, 0, 8, 3, dz, NULL, 0, 0), 0);
    expect_bad_idx(p, "is 0", "zero dim");

    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    p = put("absurd", buf, make_idx(buf, 0, 8, 3, huge, NULL, 0, 0), 0);
    expect_bad_idx(p, "corrupt", "absurd header");
    p = put("absurd.gz", buf, make_idx(buf, 0, 8, 3, huge, NULL, 0, 0), 1);
    expect_bad_idx(p, "corrupt", "absurd header gz");
    /* just over the cap: 65536 * 65537 bytes */
    uint32_t over[2] = {65536, 65537};
    p = put("over", buf, make_idx(buf, 0, 8, 2, over, NULL, 0, 0), 0);
    expect_bad_idx(p, "corrupt", "just over 2^32");

    p = put("empty", buf, 0, 0);
    expect_bad_idx(p, "too short", "empty file");
    p = put("halfheader", buf, make_idx(buf, 0, 8, 3, idims, NULL, 0, 0) - 2, 0);
    expect_bad_idx(p, "inside the IDX header", "cut header");

    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such-file", tmpdir);
    expect_bad_idx(missing, NULL, "missing file");
}

/* Memory and messages on hostile gzip files (the limits in idx.h). */
static void test_gzip_limits(void)
{
    /* 80 MB of zeros behind a valid header and trailer: ~80 kB of gzip, more than 100 times smaller */
    uint32_t dims[3] = {102041, 28, 28};
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    unsigned char *big = calloc(1, n + 16);
    if (!big)
        return;
    size_t len = make_idx(big, 0, 8, 3, dims, NULL, n, 0);
    const char *p = put("bomb.gz", big, len, 1);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size * 100 < (off_t)len, "bomb ratio: %lld bytes", (long long)st.st_size);
    expect_bad_idx(p, "decompression bomb", "gzip bomb refused");
    expect_bad_idx(p, "at most 67108864", "gzip bomb names the limit");
    xb_idx hdr;
    xb_error err = {0};
    CHECK(xb_idx_read_header(p, &hdr, &err) == XB_EINPUT, "header-only read applies the limit: %s", err.msg);

    /* the same size of varied bytes compresses little and loads */
    for (size_t i = 0; i < n; i++)
        big[16 + i] = (unsigned char)((i * 2654435761u) >> 13);
    p = put("varied.gz", big, len, 1);
    xb_idx *a = NULL;
    CHECK(xb_idx_read(p, &a, &err) == XB_OK, "80 MB of varied bytes load: %s", err.msg);
    CHECK(a && a->count == n && a->data[n - 1] == big[16 + n - 1], "varied payload intact");
    xb_idx_free(&a);
    CHECK(xb_idx_read_header(p, &hdr, &err) == XB_OK && hdr.count == n && !hdr.data && hdr.dims[0] == 102041,
          "header-only read: %zu", hdr.count);

    /* a flipped byte in the middle of the stream: the message gives the real uncompressed position */
    uint32_t d2[1] = {200000};
    for (size_t i = 0; i < d2[0]; i++)
        big[8 + i] = (unsigned char)(i * i % 251);
    len = make_idx(big, 0, 8, 1, d2, big + 8, d2[0], 0);
    p = put("flip.gz", big, len, 1);
    FILE *f = fopen(p, "r+b");
    if (f && stat(p, &st) == 0) {
        fseek(f, st.st_size / 2, SEEK_SET);
        int c = fgetc(f);
        fseek(f, st.st_size / 2, SEEK_SET);
        fputc(c ^ 0x55, f);
    }
    if (f)
        fclose(f);
    a = (xb_idx *)1;
    int rc = xb_idx_read(p, &a, &err);
    CHECK(rc == XB_EINPUT && a == NULL, "flipped byte: rc %d", rc);
    const char *at = strstr(err.msg, "after ");
    unsigned long long pos = 0;
    CHECK(at && sscanf(at, "after %llu uncompressed bytes", &pos) == 1 && pos > 1000 && pos <= len + 64,
          "corrupt gzip names the real position (%llu): %s", pos, err.msg);
    CHECK(strstr(err.msg, "compressed byte offset") != NULL, "corrupt gzip names the file offset: %s", err.msg);
    free(big);
}

static void expect_bad_load(const char *img, const char *lab, const char *needle, const char *what)
{
    xb_dataset *d = (xb_dataset *)1;
    xb_error err = {0};
    int rc = xb_dataset_load_files(img, lab, &d, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", what, rc, err.msg);
    CHECK(d == NULL, "%s: result not NULL", what);
    CHECK(strstr(err.msg, needle) != NULL, "%s: message lacks '%s': %s", what, needle, err.msg);
}

static void test_bad_dataset(void)
{
    unsigned char buf[128];
    uint32_t idims[3] = {3, 2, 2}, l2[1] = {2}, l3d[3] = {3, 1, 1};
    char img[4096], lab[4096], lab3[4096];
    snprintf(img, sizeof img, "%s", put("m_img", buf, make_idx(buf, 0, 8, 3, idims, pixels, 12, 0), 0));
    snprintf(lab, sizeof lab, "%s", put("m_lab", buf, make_idx(buf, 0, 8, 1, l2, labels3, 2, 0), 0));
    snprintf(lab3, sizeof lab3, "%s", put("m_lab3", buf, make_idx(buf, 0, 8, 3, l3d, labels3, 3, 0), 0));

    expect_bad_load(img, lab, "3 images", "count mismatch");
    expect_bad_load(img, lab, lab, "count mismatch names labels file");
    expect_bad_load(img, lab, img, "count mismatch names images file");
    expect_bad_load(img, lab3, lab3, "labels with 3 dims");
    expect_bad_load(img, lab3, "3 dimensions, expected 1", "labels with 3 dims message");
    expect_bad_load(lab, lab, "expected 3", "images with 1 dim");
    /* shapes are cross-checked on the headers, before a payload is read */
    char badcrc[4096];
    snprintf(badcrc, sizeof badcrc, "%s", put("m_crc.gz", buf, make_idx(buf, 0, 8, 3, idims, pixels, 12, 0), 1));
    struct stat st;
    FILE *f = fopen(badcrc, "r+b");
    if (f && stat(badcrc, &st) == 0 && fseek(f, st.st_size - 8, SEEK_SET) == 0) /* the CRC-32 */
        fputc(0x5A, f);
    if (f)
        fclose(f);
    expect_bad_load(badcrc, lab, "counts differ", "count mismatch found before the payload is read");
}

static void test_folders(void)
{
    char dir[4096], sub[4096];
    snprintf(dir, sizeof dir, "%s/folder", tmpdir);
    mkdir(dir, 0700);
    /* train: hyphenated .gz; test: plain images + dotted labels */
    put_split("folder/train-images-idx3-ubyte.gz", "folder/train-labels-idx1-ubyte.gz", 1);
    put_split("folder/t10k-images-idx3-ubyte", "folder/t10k-labels.idx1-ubyte", 0);

    xb_dataset *d = NULL;
    xb_error err = {0};
    CHECK(xb_dataset_load(dir, XB_SPLIT_TRAIN, &d, &err) == XB_OK, "folder train: %s", err.msg);
    if (d) {
        check_split(d, "folder train");
        CHECK(strstr(d->images_path, "train-images-idx3-ubyte.gz") != NULL, "%s", d->images_path);
        CHECK(strcmp(d->name, "custom") == 0, "folder name %s", d->name);
    }
    xb_dataset_free(&d);
    CHECK(xb_dataset_load(dir, XB_SPLIT_TEST, &d, &err) == XB_OK, "folder test: %s", err.msg);
    if (d) {
        check_split(d, "folder test");
        CHECK(strstr(d->labels_path, "t10k-labels.idx1-ubyte") != NULL, "%s", d->labels_path);
    }
    xb_dataset_free(&d);

    /* plain wins over .gz: a broken .gz next to a good plain file must not be read */
    unsigned char junk[4] = {1, 2, 3, 4};
    put("folder/t10k-images-idx3-ubyte.gz", junk, 4, 0);
    CHECK(xb_dataset_load(dir, XB_SPLIT_TEST, &d, &err) == XB_OK, "plain wins: %s", err.msg);
    if (d)
        CHECK(strstr(d->images_path, ".gz") == NULL, "plain wins: %s", d->images_path);
    xb_dataset_free(&d);

    /* named data set through $XBARSIM_DATA */
    snprintf(sub, sizeof sub, "%s/mnist", tmpdir);
    mkdir(sub, 0700);
    put_split("mnist/train-images.idx3-ubyte", "mnist/train-labels-idx1-ubyte", 0);
    setenv("XBARSIM_DATA", tmpdir, 1);
    char folder[4096];
    CHECK(xb_dataset_resolve("mnist", folder, sizeof folder, &err) == XB_OK, "resolve: %s", err.msg);
    CHECK(strcmp(folder, sub) == 0, "resolve gave %s", folder);
    CHECK(xb_dataset_load("mnist", XB_SPLIT_TRAIN, &d, &err) == XB_OK, "mnist: %s", err.msg);
    if (d) {
        check_split(d, "named");
        CHECK(strcmp(d->name, "mnist") == 0, "name %s", d->name);
    }
    xb_dataset_free(&d);
    /* the test split is missing there: the message names the files looked for */
    d = (xb_dataset *)1;
    CHECK(xb_dataset_load("mnist", XB_SPLIT_TEST, &d, &err) == XB_EINPUT, "mnist test missing");
    CHECK(d == NULL, "missing split result NULL");
    CHECK(strstr(err.msg, "t10k-images-idx3-ubyte") != NULL, "missing split msg: %s", err.msg);

    /* a named data set found nowhere says where it looked and how to fix it (only checkable when
     * no real copy is installed where the search goes next) */
    snprintf(sub, sizeof sub, "%s/empty-data", tmpdir);
    mkdir(sub, 0700);
    setenv("XBARSIM_DATA", sub, 1);
    if (xb_dataset_resolve("mnist", folder, sizeof folder, &err) != XB_OK) {
        CHECK(err.code == XB_EINPUT, "named missing code %d", err.code);
        CHECK(strstr(err.msg, "scripts/setup") && strstr(err.msg, sub), "named missing: %s", err.msg);
    }
    if (xb_dataset_resolve("fashion-mnist", folder, sizeof folder, &err) != XB_OK)
        CHECK(strstr(err.msg, "apt-get install dataset-fashion-mnist") &&
                  strstr(err.msg, "/usr/share/datasets/fashion-mnist"),
              "fashion missing: %s", err.msg);
    unsetenv("XBARSIM_DATA");

    /* missing folder and empty folder */
    char nope[4096];
    snprintf(nope, sizeof nope, "%s/nope", tmpdir);
    CHECK(xb_dataset_load(nope, XB_SPLIT_TRAIN, &d, &err) == XB_EINPUT, "missing folder");
    CHECK(strstr(err.msg, nope) && strstr(err.msg, "train-images-idx3-ubyte"), "missing folder: %s",
          err.msg);
    CHECK(xb_dataset_load(sub, XB_SPLIT_TRAIN, &d, &err) == XB_EINPUT, "empty folder");
    CHECK(strstr(err.msg, sub) && strstr(err.msg, "train-images-idx3-ubyte") &&
              strstr(err.msg, "train-images.idx3-ubyte"),
          "empty folder: %s", err.msg);
    CHECK(xb_dataset_load("", XB_SPLIT_TRAIN, &d, &err) == XB_EINPUT, "empty spec");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xb_test_idx_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_valid();
    test_bad_files();
    test_bad_dataset();
    test_gzip_limits();
    test_folders();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("test_idx");
}
