// idx: read IDX arrays (the MNIST file format), raw or gzip-compressed, with every size checked
#include "idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* One open source of bytes: exactly one of fp (raw file) and gz (gzip stream) is set. */
typedef struct idx_src {
    const char *path;
    FILE *fp;
    gzFile gz;
} idx_src;

/* Read up to n bytes into buf; *got says how many arrived (fewer means end of data).
 * A decompression failure is bad input (corrupt or cut-off file); a read failure is an I/O error. */
static int src_read(idx_src *s, void *buf, size_t n, size_t *got, xb_error *err)
{
    *got = 0;
    if (s->fp) {
        *got = fread(buf, 1, n, s->fp);
        if (*got < n && ferror(s->fp))
            return xb_fail(err, XB_ERUNTIME, "%s: read error: %s", s->path, strerror(errno));
        return XB_OK;
    }
    unsigned char *p = buf;
    while (*got < n) {
        /* gzread takes an unsigned length, so feed it bounded chunks */
        size_t left = n - *got;
        unsigned chunk = left > (1u << 30) ? (1u << 30) : (unsigned)left;
        int r = gzread(s->gz, p + *got, chunk);
        if (r < 0) {
            int zerr = Z_OK;
            const char *zmsg = gzerror(s->gz, &zerr);
            if (zerr == Z_ERRNO)
                return xb_fail(err, XB_ERUNTIME, "%s: read error: %s", s->path, strerror(errno));
            return xb_fail(err, XB_EINPUT,
                           "%s: corrupt or truncated gzip data after %zu bytes (zlib: %s); "
                           "re-download the file",
                           s->path, *got, zmsg ? zmsg : "unknown error");
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return XB_OK;
}

static const char *idx_type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown type";
    }
}

static void format_dims(const uint32_t *dims, int ndim, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%lu", i ? " x " : "", (unsigned long)dims[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Read and validate the magic and dims; on success fills a->ndim, a->dims, a->count and *hdr_bytes. */
static int read_header(idx_src *s, xb_idx *a, size_t *hdr_bytes, xb_error *err)
{
    unsigned char magic[4];
    size_t got;
    int rc = src_read(s, magic, 4, &got, err);
    if (rc)
        return rc;
    if (got < 4)
        return xb_fail(err, XB_EINPUT,
                       "%s: file holds %zu bytes, too short for the 4-byte IDX magic; "
                       "the file is truncated or empty, re-download it",
                       s->path, got);
    if (magic[0] || magic[1])
        return xb_fail(err, XB_EINPUT,
                       "%s: not an IDX file: first two bytes are 0x%02x 0x%02x, expected 0x00 0x00 "
                       "(an HTML error page or another format?)",
                       s->path, magic[0], magic[1]);
    if (magic[2] != 0x08)
        return xb_fail(err, XB_EINPUT,
                       "%s: IDX type code 0x%02x (%s) is not supported; expected 0x08 (unsigned byte)",
                       s->path, magic[2], idx_type_name(magic[2]));
    int ndim = magic[3];
    if (ndim < 1 || ndim > 4)
        return xb_fail(err, XB_EINPUT, "%s: IDX header gives %d dimensions, expected 1 to 4", s->path,
                       ndim);

    unsigned char raw[16];
    rc = src_read(s, raw, 4 * (size_t)ndim, &got, err);
    if (rc)
        return rc;
    if (got < 4 * (size_t)ndim)
        return xb_fail(err, XB_EINPUT,
                       "%s: file ends inside the IDX header (expected %d dimension words, found %zu "
                       "bytes); the file is truncated, re-download it",
                       s->path, ndim, got);
    uint32_t dims[4];
    for (int i = 0; i < ndim; i++)
        dims[i] = (uint32_t)raw[4 * i] << 24 | (uint32_t)raw[4 * i + 1] << 16 |
                  (uint32_t)raw[4 * i + 2] << 8 | (uint32_t)raw[4 * i + 3];

    char dimstr[64];
    format_dims(dims, ndim, dimstr, sizeof dimstr);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0)
            return xb_fail(err, XB_EINPUT,
                           "%s: IDX dimension %d of %d is 0 (dims %s); expected every size > 0",
                           s->path, i + 1, ndim, dimstr);
        /* check every step so a corrupt header can neither wrap around nor ask for a huge buffer */
        if (__builtin_mul_overflow(count, (uint64_t)dims[i], &count) || count > XB_IDX_MAX_BYTES)
            return xb_fail(err, XB_EINPUT,
                           "%s: IDX header dims %s give more than %llu bytes; the header is corrupt",
                           s->path, dimstr, XB_IDX_MAX_BYTES);
    }
    if (count > SIZE_MAX - 16)
        return xb_fail(err, XB_EINPUT, "%s: IDX dims %s are too large for this machine", s->path,
                       dimstr);

    a->ndim = ndim;
    for (int i = 0; i < 4; i++)
        a->dims[i] = i < ndim ? dims[i] : 0;
    a->count = (size_t)count;
    *hdr_bytes = 4 + 4 * (size_t)ndim;
    return XB_OK;
}

/* Header + payload against the file size on disk; catches truncation before allocating. */
static int check_raw_size(const char *path, const struct stat *st, const xb_idx *a, size_t hdr,
                          xb_error *err)
{
    unsigned long long want = (unsigned long long)hdr + a->count;
    unsigned long long have = (unsigned long long)st->st_size;
    if (want == have)
        return XB_OK;
    return xb_fail(err, XB_EINPUT,
                   "%s: expected %llu bytes from the header (%zu-byte header + %zu data bytes), "
                   "file has %llu; %s",
                   path, want, hdr, a->count, have,
                   have < want ? "the file is truncated, re-download it"
                               : "it has trailing bytes, re-download it");
}

/* The gzip trailer's ISIZE (uncompressed length mod 2^32) is a cheap sanity check of the
 * header before we trust it for a large allocation. */
static int check_gzip_isize(const char *path, uint32_t isize, const xb_idx *a, size_t hdr,
                            xb_error *err)
{
    unsigned long long want = (unsigned long long)hdr + a->count;
    uint32_t want32 = (uint32_t)(want & 0xFFFFFFFFu);
    if (isize == want32)
        return XB_OK;
    return xb_fail(err, XB_EINPUT,
                   "%s: gzip trailer gives %lu uncompressed bytes, the IDX header implies %llu "
                   "(%zu-byte header + %zu data bytes); the file is truncated or corrupt, "
                   "re-download it",
                   path, (unsigned long)isize, want, hdr, a->count);
}

int xb_idx_read(const char *path, xb_idx **out, xb_error *err)
{
    if (!out)
        return xb_fail(err, XB_ERUNTIME, "xb_idx_read: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return xb_fail(err, XB_EINPUT, "xb_idx_read: empty path");

    FILE *fp = fopen(path, "rb");
    if (!fp)
        return xb_fail(err, errno == ENOENT || errno == EACCES ? XB_EINPUT : XB_ERUNTIME,
                       "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return xb_fail(err, XB_ERUNTIME, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(fp);
        return xb_fail(err, XB_EINPUT, "%s: not a regular file; expected an IDX file", path);
    }

    unsigned char sig[2] = {0, 0};
    size_t nsig = fread(sig, 1, 2, fp);
    int is_gzip = nsig == 2 && sig[0] == 0x1f && sig[1] == 0x8b;
    uint32_t isize = 0;
    if (is_gzip) {
        unsigned char t[4];
        /* 10-byte gzip header + 8-byte trailer is the least a gzip file can hold */
        if (st.st_size < 18 || fseek(fp, -4, SEEK_END) != 0 || fread(t, 1, 4, fp) != 4) {
            fclose(fp);
            return xb_fail(err, XB_EINPUT,
                           "%s: gzip file of %lld bytes is too short to hold a trailer; "
                           "the file is truncated, re-download it",
                           path, (long long)st.st_size);
        }
        isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        fclose(fp);
        fp = NULL;
    } else if (fseek(fp, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(fp);
        return xb_fail(err, XB_ERUNTIME, "%s: cannot seek: %s", path, strerror(e));
    }

    idx_src s = {.path = path, .fp = fp, .gz = NULL};
    if (is_gzip) {
        s.gz = gzopen(path, "rb");
        if (!s.gz)
            return xb_fail(err, XB_ERUNTIME, "cannot open %s with zlib: %s", path,
                           errno ? strerror(errno) : "out of memory");
        gzbuffer(s.gz, 1u << 18); /* larger buffer: fewer reads on the 47 MB MNIST images */
    }

    xb_idx *a = calloc(1, sizeof *a);
    int rc = a ? XB_OK : xb_fail(err, XB_ENOMEM, "%s: out of memory", path);
    size_t hdr = 0;
    if (!rc)
        rc = read_header(&s, a, &hdr, err);
    if (!rc)
        rc = is_gzip ? check_gzip_isize(path, isize, a, hdr, err)
                     : check_raw_size(path, &st, a, hdr, err);
    if (!rc) {
        a->data = malloc(a->count);
        if (!a->data)
            rc = xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu data bytes", path, a->count);
    }
    if (!rc) {
        size_t got = 0;
        rc = src_read(&s, a->data, a->count, &got, err);
        if (!rc && got < a->count)
            rc = xb_fail(err, XB_EINPUT,
                         "%s: expected %zu data bytes from the header, file has %zu; "
                         "the file is truncated, re-download it",
                         path, a->count, got);
    }
    if (!rc) {
        /* one more read must hit the end; for gzip it also makes zlib verify the CRC */
        unsigned char extra[64];
        size_t got = 0;
        rc = src_read(&s, extra, sizeof extra, &got, err);
        if (!rc && got > 0)
            rc = xb_fail(err, XB_EINPUT,
                         "%s: extra bytes after the %zu data bytes the header announces; "
                         "the file is corrupt, re-download it",
                         path, a->count);
    }

    if (s.fp)
        fclose(s.fp);
    if (s.gz)
        gzclose(s.gz);
    if (rc) {
        xb_idx_free(&a);
        return rc;
    }
    *out = a;
    return XB_OK;
}

void xb_idx_free(xb_idx **a)
{
    if (!a || !*a)
        return;
    free((*a)->data);
    free(*a);
    *a = NULL;
}
