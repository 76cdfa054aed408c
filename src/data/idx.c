// idx: read IDX arrays (the MNIST file format), raw or gzip-compressed, with every size checked
#include "idx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Input chunk of the gzip reader. */
#define IDX_GZ_CHUNK ((size_t)1 << 16)
/* First payload buffer of a gzip file; it doubles as data arrives (never sized from the header alone). */
#define IDX_GZ_FIRST ((size_t)1 << 20)

/* One open source of bytes: a raw file (gz_on 0) or a gzip file inflated here, so that every byte
 * produced is counted (limits and the position of corrupt data are exact). */
typedef struct idx_src {
    const char *path;
    FILE *fp;
    int gz_on;          /* gzip: inflating through zs */
    int gz_ended;       /* gzip: the last member ended and no further member follows */
    z_stream zs;
    unsigned long long out_pos; /* gzip: uncompressed bytes delivered so far */
    unsigned long long in_pos;  /* gzip: compressed bytes read from the file so far */
    unsigned char in[IDX_GZ_CHUNK];
} idx_src;

static int gz_fill(idx_src *s, xb_error *err)
{
    size_t r = fread(s->in, 1, sizeof s->in, s->fp);
    if (r == 0 && ferror(s->fp))
        return xb_fail(err, XB_ERUNTIME, "%s: read error: %s", s->path, strerror(errno));
    s->in_pos += r;
    s->zs.next_in = s->in;
    s->zs.avail_in = (uInt)r;
    return XB_OK;
}

/* Where the stream broke, for messages: uncompressed bytes delivered and the compressed offset. */
static int gz_corrupt(idx_src *s, const char *why, xb_error *err)
{
    unsigned long long at = s->in_pos - s->zs.avail_in;
    return xb_fail(err, XB_EINPUT,
                   "%s: corrupt or truncated gzip data after %llu uncompressed bytes (compressed byte "
                   "offset %llu; zlib: %s); re-download the file",
                   s->path, s->out_pos, at, why);
}

/* Read up to n bytes into buf; *got says how many arrived (fewer means end of data).
 * A decompression failure is bad input (corrupt or cut-off file); a read failure is an I/O error. */
static int src_read(idx_src *s, void *buf, size_t n, size_t *got, xb_error *err)
{
    *got = 0;
    if (!s->gz_on) {
        *got = fread(buf, 1, n, s->fp);
        if (*got < n && ferror(s->fp))
            return xb_fail(err, XB_ERUNTIME, "%s: read error: %s", s->path, strerror(errno));
        return XB_OK;
    }
    unsigned char *p = buf;
    while (*got < n && !s->gz_ended) {
        int rc;
        if (s->zs.avail_in == 0 && (rc = gz_fill(s, err)))
            return rc;
        if (s->zs.avail_in == 0) /* end of file inside a member */
            return gz_corrupt(s, "unexpected end of file", err);
        size_t left = n - *got;
        uInt in_before = s->zs.avail_in;
        s->zs.next_out = p + *got;
        s->zs.avail_out = left > (1u << 30) ? (1u << 30) : (uInt)left;
        uInt before = s->zs.avail_out;
        int zr = inflate(&s->zs, Z_NO_FLUSH);
        size_t made = before - s->zs.avail_out;
        *got += made;
        s->out_pos += made;
        if (zr == Z_MEM_ERROR)
            return xb_fail(err, XB_ENOMEM, "%s: out of memory inflating gzip data", s->path);
        if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR)
            return gz_corrupt(s, s->zs.msg ? s->zs.msg : "invalid data", err);
        if (zr == Z_BUF_ERROR && made == 0 && s->zs.avail_in == in_before) /* no progress: never spin */
            return gz_corrupt(s, "no progress", err);
        if (zr == Z_STREAM_END) {
            /* gzip allows concatenated members (as gunzip does); anything else ends the data */
            if (s->zs.avail_in == 0 && (rc = gz_fill(s, err)))
                return rc;
            if (s->zs.avail_in >= 1 && s->zs.next_in[0] == 0x1f &&
                (s->zs.avail_in < 2 || s->zs.next_in[1] == 0x8b))
                inflateReset(&s->zs);
            else
                s->gz_ended = 1;
        }
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

/* Most a gzip IDX file may expand to: deflate itself reaches ~1032:1, real image and label data
 * 1.5:1 to 6:1, so a file that expands more than XB_IDX_MAX_GZIP_RATIO times (and past the floor)
 * is a decompression bomb or a corrupt header, not a data set. */
static unsigned long long gzip_limit(unsigned long long compressed)
{
    unsigned long long lim = compressed > XB_IDX_MAX_BYTES ? XB_IDX_MAX_BYTES : compressed * XB_IDX_MAX_GZIP_RATIO;
    return lim < XB_IDX_GZIP_FLOOR ? XB_IDX_GZIP_FLOOR : lim;
}

static int check_gzip_ratio(const char *path, unsigned long long compressed, const xb_idx *a, size_t hdr,
                            xb_error *err)
{
    unsigned long long want = (unsigned long long)hdr + a->count, lim = gzip_limit(compressed);
    if (want <= lim)
        return XB_OK;
    return xb_fail(err, XB_EINPUT,
                   "%s: the IDX header announces %llu bytes from a %llu-byte gzip file; allowed: at most "
                   "%llu (%d times the compressed size, at least %llu MiB): a file that expands more is "
                   "a decompression bomb or corrupt, re-download it",
                   path, want, compressed, lim, XB_IDX_MAX_GZIP_RATIO, XB_IDX_GZIP_FLOOR >> 20);
}

/* Open path, recognise gzip by content and read and check the header (sizes against the file: its
 * length when raw; the trailer and the expansion limit when gzip). On success *src is open at the
 * first data byte and a holds ndim, dims and count (no data). */
static int idx_open(const char *path, idx_src **src, xb_idx *a, xb_error *err)
{
    *src = NULL;
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
    }
    if (fseek(fp, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(fp);
        return xb_fail(err, XB_ERUNTIME, "%s: cannot seek: %s", path, strerror(e));
    }

    idx_src *s = calloc(1, sizeof *s);
    if (!s) {
        fclose(fp);
        return xb_fail(err, XB_ENOMEM, "%s: out of memory", path);
    }
    s->path = path;
    s->fp = fp;
    if (is_gzip) {
        if (inflateInit2(&s->zs, 15 + 16) != Z_OK) { /* 15 + 16: a gzip wrapper, its CRC checked */
            fclose(fp);
            free(s);
            return xb_fail(err, XB_ENOMEM, "%s: out of memory for zlib", path);
        }
        s->gz_on = 1;
    }
    *src = s;
    size_t hdr = 0;
    int rc = read_header(s, a, &hdr, err);
    if (!rc)
        rc = is_gzip ? check_gzip_isize(path, isize, a, hdr, err) : check_raw_size(path, &st, a, hdr, err);
    if (!rc && is_gzip)
        rc = check_gzip_ratio(path, (unsigned long long)st.st_size, a, hdr, err);
    return rc;
}

static void idx_close(idx_src **s)
{
    if (!*s)
        return;
    if ((*s)->gz_on)
        inflateEnd(&(*s)->zs);
    fclose((*s)->fp);
    free(*s);
    *s = NULL;
}

int xb_idx_read_header(const char *path, xb_idx *hdr, xb_error *err)
{
    if (!hdr)
        return xb_fail(err, XB_ERUNTIME, "xb_idx_read_header: hdr is NULL");
    memset(hdr, 0, sizeof *hdr);
    idx_src *s = NULL;
    int rc = idx_open(path, &s, hdr, err);
    idx_close(&s);
    if (rc)
        memset(hdr, 0, sizeof *hdr);
    return rc;
}

/* The payload: raw files are already held to their size on disk; gzip data must arrive before
 * memory is given to it, so the buffer starts small and doubles. */
static int read_payload(idx_src *s, xb_idx *a, xb_error *err)
{
    size_t cap = !s->gz_on || a->count < IDX_GZ_FIRST ? a->count : IDX_GZ_FIRST, got = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu data bytes", s->path, cap);
    for (;;) {
        size_t n = 0;
        int rc = src_read(s, buf + got, cap - got, &n, err);
        got += n;
        if (rc) {
            free(buf);
            return rc;
        }
        if (got < cap || cap == a->count)
            break;
        size_t ncap = cap > a->count / 2 ? a->count : 2 * cap;
        unsigned char *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu data bytes", s->path, ncap);
        }
        buf = nb;
        cap = ncap;
    }
    if (got < a->count) {
        free(buf);
        return xb_fail(err, XB_EINPUT,
                       "%s: expected %zu data bytes from the header, file has %zu; "
                       "the file is truncated, re-download it",
                       s->path, a->count, got);
    }
    a->data = buf;
    return XB_OK;
}

int xb_idx_read(const char *path, xb_idx **out, xb_error *err)
{
    if (!out)
        return xb_fail(err, XB_ERUNTIME, "xb_idx_read: out is NULL");
    *out = NULL;
    xb_idx *a = calloc(1, sizeof *a);
    if (!a)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory", path ? path : "(null)");
    idx_src *s = NULL;
    int rc = idx_open(path, &s, a, err);
    if (!rc)
        rc = read_payload(s, a, err);
    if (!rc) {
        /* one more read must hit the end; for gzip it also makes zlib verify the CRC */
        unsigned char extra[64];
        size_t got = 0;
        rc = src_read(s, extra, sizeof extra, &got, err);
        if (!rc && got > 0)
            rc = xb_fail(err, XB_EINPUT,
                         "%s: extra bytes after the %zu data bytes the header announces; "
                         "the file is corrupt, re-download it",
                         path, a->count);
    }
    idx_close(&s);
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
