// npz: read and write NumPy .npz archives (zip files of NAME.npy members) with libzip
#include "npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

#include "fileio.h"

struct xb_npz {
    xb_ndarray **items; /* owned, in archive order */
    size_t n;
};

/* 1980-01-03 00:00 UTC: inside the DOS date range in every time zone, and fixed so that writing
 * the same arrays twice gives byte-identical archives (result files are hashed). */
#define NPZ_FIXED_MTIME ((time_t)315705600)

/* Chunk for the first read of a member: we never trust the declared size for a big allocation. */
#define NPZ_READ_CHUNK ((size_t)1 << 20)

static int zip_status(int zip_code)
{
    switch (zip_code) {
    case ZIP_ER_MEMORY:
        return XB_ENOMEM;
    case ZIP_ER_NOZIP:
    case ZIP_ER_INCONS:
    case ZIP_ER_CRC:
    case ZIP_ER_COMPNOTSUPP:
    case ZIP_ER_ENCRNOTSUPP:
    case ZIP_ER_NOPASSWD:
    case ZIP_ER_WRONGPASSWD:
    case ZIP_ER_COMPRESSED_DATA:
    case ZIP_ER_MULTIDISK:
    case ZIP_ER_ZLIB:
    case ZIP_ER_EOF:
    case ZIP_ER_NOENT:
        return XB_EINPUT;
    default:
        return XB_ERUNTIME;
    }
}

static int fail_zip(xb_error *err, zip_error_t *ze, const char *what, const char *doing)
{
    int code = zip_error_code_zip(ze);
    return xb_fail(err, zip_status(code), "%s: %s: %s%s", what, doing, zip_error_strerror(ze),
                   code == ZIP_ER_INCONS || code == ZIP_ER_EOF ? " (truncated or corrupt zip archive)" : "");
}

size_t xb_npz_count(const xb_npz *z)
{
    return z ? z->n : 0;
}

const xb_ndarray *xb_npz_at(const xb_npz *z, size_t i)
{
    return z && i < z->n ? z->items[i] : NULL;
}

const xb_ndarray *xb_npz_get(const xb_npz *z, const char *name)
{
    if (!z || !name)
        return NULL;
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".npy") == 0)
        n -= 4;
    for (size_t i = 0; i < z->n; i++)
        if (strlen(z->items[i]->name) == n && strncmp(z->items[i]->name, name, n) == 0)
            return z->items[i];
    return NULL;
}

void xb_npz_free(xb_npz **z)
{
    if (!z || !*z)
        return;
    for (size_t i = 0; i < (*z)->n; i++)
        xb_ndarray_free(&(*z)->items[i]);
    free((*z)->items);
    free(*z);
    *z = NULL;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Read one member whole, growing the buffer only as data actually arrives, so a lying size in the
 * zip directory cannot make us allocate gigabytes; then hold the data to the declared size. */
static int read_member(zip_t *za, zip_uint64_t index, size_t declared, const char *what,
                       unsigned char **data, size_t *len, xb_error *err)
{
    *data = NULL;
    *len = 0;
    zip_file_t *zf = zip_fopen_index(za, index, 0);
    if (!zf)
        return fail_zip(err, zip_get_error(za), what, "cannot open member");
    size_t limit = declared + 1; /* one byte past the declared size reveals a longer member */
    size_t cap = limit < NPZ_READ_CHUNK ? limit : NPZ_READ_CHUNK, got = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        zip_fclose(zf);
        return xb_fail(err, XB_ENOMEM, "%s: out of memory reading the member", what);
    }
    int peeked = 0;
    for (;;) {
        if (got == cap && !peeked) {
            /* the .npy header in the first chunk fixes the member's size: hold the directory to it
             * before inflating the rest (a bomb declares gigabytes behind a header of a few bytes) */
            size_t total = 0;
            int rc = xb_npy_image_size(buf, got, what, &total, err);
            if (!rc && total && total != declared)
                rc = xb_fail(err, XB_EINPUT, "%s: the member's .npy header announces %zu bytes, the zip "
                             "directory declares %zu uncompressed; allowed: equal sizes (corrupt archive)",
                             what, total, declared);
            if (rc) {
                free(buf);
                zip_fclose(zf);
                return rc;
            }
            peeked = 1;
        }
        if (got == cap) {
            if (cap == limit)
                break;
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                zip_fclose(zf);
                return xb_fail(err, XB_ENOMEM, "%s: out of memory reading %zu bytes", what, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        zip_int64_t r = zip_fread(zf, buf + got, cap - got);
        if (r < 0) {
            int rc = fail_zip(err, zip_file_get_error(zf), what, "cannot read member");
            free(buf);
            zip_fclose(zf);
            return rc;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    int close_code = zip_fclose(zf);
    if (got != declared) {
        free(buf);
        return xb_fail(err, XB_EINPUT, "%s: member holds %s%zu bytes uncompressed, the zip directory "
                       "declares %zu (corrupt archive)", what, got > declared ? "more than " : "",
                       got > declared ? declared : got, declared);
    }
    if (close_code) {
        free(buf);
        zip_error_t ze;
        zip_error_init_with_code(&ze, close_code);
        int rc = fail_zip(err, &ze, what, "cannot read member");
        zip_error_fini(&ze);
        return rc;
    }
    *data = buf;
    *len = got;
    return XB_OK;
}

int xb_npz_read(const char *path, xb_npz **out, xb_error *err)
{
    if (!out)
        return xb_fail(err, XB_EINPUT, "xb_npz_read: no place to store the result");
    *out = NULL;
    if (!path)
        return xb_fail(err, XB_EINPUT, "xb_npz_read: no path given");
    if (!xb_is_file(path))
        return xb_fail(err, XB_EINPUT, "cannot open %s: %s", path,
                       xb_is_dir(path) ? "it is a folder" : "no such file");
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return xb_fail(err, XB_ERUNTIME, "cannot open %s for reading", path);
    int empty = fgetc(probe) == EOF;
    fclose(probe);
    if (empty) /* libzip would take an empty file for an empty archive; numpy rejects it */
        return xb_fail(err, XB_EINPUT, "%s: not a zip archive: the file is empty (expected an .npz)", path);

    int zcode = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zcode);
    if (!za && zcode == ZIP_ER_EXISTS) /* two members of one name: open as is, the name check says which */
        za = zip_open(path, ZIP_RDONLY, &zcode);
    if (!za) {
        if (zcode == ZIP_ER_NOZIP)
            return xb_fail(err, XB_EINPUT, "%s: not a zip archive (no end-of-central-directory record "
                           "found): the file is truncated, or is not an .npz", path);
        zip_error_t ze;
        zip_error_init_with_code(&ze, zcode);
        int rc = fail_zip(err, &ze, path, "cannot open zip archive");
        zip_error_fini(&ze);
        return rc;
    }

    int rc = XB_OK;
    xb_npz *z = NULL;
    const char **sorted = NULL;
    zip_int64_t ne = zip_get_num_entries(za, 0);
    size_t n = ne > 0 ? (size_t)ne : 0;
    z = calloc(1, sizeof *z);
    sorted = calloc(n ? n : 1, sizeof *sorted);
    if (z)
        z->items = calloc(n ? n : 1, sizeof *z->items);
    if (!z || !sorted || !z->items) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu members", path, n);
        goto done;
    }

    /* Check every name before reading any data, so a bad archive fails fast. */
    for (size_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, i, 0);
        if (!name) {
            rc = fail_zip(err, zip_get_error(za), path, "cannot read member name");
            goto done;
        }
        size_t nl = strlen(name);
        if (nl <= 4 || strcmp(name + nl - 4, ".npy") != 0) {
            rc = xb_fail(err, XB_EINPUT, "%s: member '%s' is not an array: .npz members must be named "
                         "NAME.npy", path, name);
            goto done;
        }
        sorted[i] = name;
    }
    qsort(sorted, n, sizeof *sorted, cmp_names);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            rc = xb_fail(err, XB_EINPUT, "%s: duplicate member name '%s' (expected each name once)", path,
                         sorted[i]);
            goto done;
        }

    for (size_t i = 0; i < n; i++) {
        zip_stat_t st;
        zip_stat_init(&st);
        const char *name = zip_get_name(za, i, 0);
        char what[4400];
        snprintf(what, sizeof what, "%s:%s", path, name ? name : "?");
        if (zip_stat_index(za, i, 0, &st) != 0) {
            rc = fail_zip(err, zip_get_error(za), what, "cannot read member information");
            goto done;
        }
        if (!(st.valid & ZIP_STAT_SIZE)) {
            rc = xb_fail(err, XB_EINPUT, "%s: the zip directory gives no uncompressed size", what);
            goto done;
        }
        /* a stored member holds its bytes; a deflated one within the expansion limit (npz.h) */
        if (!(st.valid & ZIP_STAT_COMP_SIZE) || !(st.valid & ZIP_STAT_COMP_METHOD)) {
            rc = xb_fail(err, XB_EINPUT, "%s: the zip directory gives no compressed size or method", what);
            goto done;
        }
        unsigned long long lim = st.comp_size > XB_NPY_MAX_BYTES ? XB_NPY_MAX_BYTES
                                                                 : st.comp_size * XB_NPZ_MAX_RATIO;
        if (lim < XB_NPZ_RATIO_FLOOR)
            lim = XB_NPZ_RATIO_FLOOR;
        if (st.comp_method == ZIP_CM_STORE ? st.size != st.comp_size : st.size > lim) {
            rc = xb_fail(err, XB_EINPUT, "%s: member is %llu bytes uncompressed from %llu %s bytes; allowed: "
                         "%s (corrupt archive or decompression bomb)", what, (unsigned long long)st.size,
                         (unsigned long long)st.comp_size, st.comp_method == ZIP_CM_STORE ? "stored" : "compressed",
                         st.comp_method == ZIP_CM_STORE ? "the same size stored"
                                                        : "at most 100 times the compressed size, or 64 MiB");
            goto done;
        }
        if (st.size > (zip_uint64_t)XB_NPY_MAX_BYTES) {
            rc = xb_fail(err, XB_EINPUT, "%s: member is %llu bytes uncompressed, more than the %zu allowed",
                         what, (unsigned long long)st.size, (size_t)XB_NPY_MAX_BYTES);
            goto done;
        }
        unsigned char *data;
        size_t len;
        if ((rc = read_member(za, i, (size_t)st.size, what, &data, &len, err)))
            goto done;
        xb_ndarray *a;
        rc = xb_npy_parse(data, len, what, &a, err);
        free(data);
        if (rc)
            goto done;
        size_t nl = strlen(name) - 4;
        char *short_name = malloc(nl + 1);
        if (!short_name) {
            xb_ndarray_free(&a);
            rc = xb_fail(err, XB_ENOMEM, "%s: out of memory", what);
            goto done;
        }
        memcpy(short_name, name, nl);
        short_name[nl] = '\0';
        free(a->name);
        a->name = short_name;
        z->items[z->n++] = a;
    }

done:
    free(sorted);
    zip_discard(za);
    if (rc) {
        xb_npz_free(&z);
        return rc;
    }
    *out = z;
    return XB_OK;
}

/* Copy the finished in-memory archive out of its source. */
static int source_bytes(zip_source_t *src, const char *path, unsigned char **data, size_t *len, xb_error *err)
{
    static const unsigned char empty_zip[22] = {'P', 'K', 5, 6}; /* end record of a zip with no members */
    *data = NULL;
    *len = 0;
    if (zip_source_is_deleted(src)) { /* libzip drops archives with no members */
        *data = malloc(sizeof empty_zip);
        if (!*data)
            return xb_fail(err, XB_ENOMEM, "writing %s: out of memory", path);
        memcpy(*data, empty_zip, sizeof empty_zip);
        *len = sizeof empty_zip;
        return XB_OK;
    }
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(src, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return fail_zip(err, zip_source_error(src), path, "cannot size the archive built in memory");
    size_t n = (size_t)st.size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "writing %s: out of memory for %zu bytes", path, n);
    if (zip_source_open(src) != 0) {
        free(buf);
        return fail_zip(err, zip_source_error(src), path, "cannot read the archive built in memory");
    }
    zip_int64_t r = zip_source_read(src, buf, n);
    zip_source_close(src);
    if (r < 0 || (size_t)r != n) {
        free(buf);
        return xb_fail(err, XB_ERUNTIME, "writing %s: short read from the archive built in memory", path);
    }
    *data = buf;
    *len = n;
    return XB_OK;
}

int xb_npz_write(const char *path, const xb_ndarray *const *arrays, size_t n, xb_dtype out_type, xb_error *err)
{
    if (!path)
        return xb_fail(err, XB_EINPUT, "xb_npz_write: no path given");
    if (n && !arrays)
        return xb_fail(err, XB_EINPUT, "writing %s: no arrays given", path);
    if (out_type != XB_DT_F4 && out_type != XB_DT_F8)
        return xb_fail(err, XB_EINPUT, "writing %s: cannot write dtype %s: numeric arrays are written as "
                       "<f4 or <f8", path, xb_dtype_name(out_type));
    for (size_t i = 0; i < n; i++) {
        if (!arrays[i])
            return xb_fail(err, XB_EINPUT, "writing %s: array %zu is missing", path, i);
        if (!arrays[i]->name || !arrays[i]->name[0])
            return xb_fail(err, XB_EINPUT, "writing %s: array %zu has an empty name (npz members need a "
                           "name)", path, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(arrays[i]->name, arrays[j]->name) == 0)
                return xb_fail(err, XB_EINPUT, "writing %s: duplicate array name '%s' (arrays %zu and %zu); "
                               "npz member names must be unique", path, arrays[i]->name, j, i);
    }

    /* Build the archive in memory and hand it to xb_atomic_*, so libzip never touches path. */
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) {
        int rc = fail_zip(err, &ze, path, "cannot create an archive in memory");
        zip_error_fini(&ze);
        return rc;
    }
    zip_t *za = zip_open_from_source(src, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    if (!za) {
        int rc = fail_zip(err, &ze, path, "cannot create an archive in memory");
        zip_error_fini(&ze);
        zip_source_free(src);
        return rc;
    }
    zip_error_fini(&ze);
    zip_source_keep(src); /* still ours after zip_close, to read the result back */

    int rc = XB_OK;
    for (size_t i = 0; i < n; i++) {
        unsigned char *buf;
        size_t len;
        if ((rc = xb_npy_serialize(arrays[i], out_type, &buf, &len, err))) {
            xb_error_prefix(err, "writing %s", path);
            goto fail;
        }
        zip_source_t *ms = zip_source_buffer(za, buf, len, 1);
        if (!ms) {
            free(buf);
            rc = fail_zip(err, zip_get_error(za), path, "cannot add a member");
            goto fail;
        }
        size_t nl = strlen(arrays[i]->name);
        char *member = malloc(nl + 5);
        if (!member) {
            zip_source_free(ms);
            rc = xb_fail(err, XB_ENOMEM, "writing %s: out of memory", path);
            goto fail;
        }
        memcpy(member, arrays[i]->name, nl);
        memcpy(member + nl, ".npy", 5);
        zip_int64_t idx = zip_file_add(za, member, ms, ZIP_FL_ENC_UTF_8);
        free(member);
        if (idx < 0) {
            zip_source_free(ms);
            rc = fail_zip(err, zip_get_error(za), path, "cannot add a member");
            goto fail;
        }
        if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0) != 0 ||
            zip_file_set_mtime(za, (zip_uint64_t)idx, NPZ_FIXED_MTIME, 0) != 0) {
            rc = fail_zip(err, zip_get_error(za), path, "cannot set member options");
            goto fail;
        }
    }
    if (zip_close(za) != 0) {
        rc = fail_zip(err, zip_get_error(za), path, "cannot build the archive");
        goto fail;
    }

    unsigned char *data;
    size_t len;
    rc = source_bytes(src, path, &data, &len, err);
    zip_source_free(src);
    if (rc)
        return rc;
    xb_atomic_file f;
    if ((rc = xb_atomic_open(&f, path, err))) {
        free(data);
        return rc;
    }
    if (fwrite(data, 1, len, f.fp) != len) {
        free(data);
        xb_atomic_abort(&f);
        return xb_fail(err, XB_ERUNTIME, "writing %s failed (disk full?)", path);
    }
    free(data);
    return xb_atomic_commit(&f, err);

fail:
    zip_discard(za);
    zip_source_free(src);
    return rc;
}
