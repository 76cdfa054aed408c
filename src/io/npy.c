// npy: parse NumPy .npy images (format 1.0/2.0/3.0) into C-order double or string arrays (npy_write.c writes them)
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "npy_private.h"

const unsigned char xb_npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* Every size computed from untrusted header text goes through this, so a hostile shape can never
 * wrap around into a small allocation. */
int xb_npy_mul_overflows(size_t a, size_t b, size_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}

/* Element count of a shape; a zero dimension makes the count 0 even when the others would
 * overflow, as numpy sees it. Returns nonzero on overflow. */
int xb_npy_shape_count(int ndim, const size_t *shape, size_t *count)
{
    *count = 1;
    for (int k = 0; k < ndim; k++)
        if (shape[k] == 0) {
            *count = 0;
            return 0;
        }
    for (int k = 0; k < ndim; k++)
        if (xb_npy_mul_overflows(*count, shape[k], count))
            return 1;
    return 0;
}

static char *dup_str(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

xb_ndarray *xb_ndarray_new(const char *name, int ndim, const size_t *shape)
{
    if (ndim < 0 || ndim > XB_NDARRAY_MAXDIM || (ndim > 0 && !shape))
        return NULL;
    size_t count, bytes;
    if (xb_npy_shape_count(ndim, shape, &count) || xb_npy_mul_overflows(count ? count : 1, sizeof(double), &bytes))
        return NULL;
    xb_ndarray *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->name = dup_str(name);
    a->data = calloc(count ? count : 1, sizeof(double));
    if (!a->name || !a->data) {
        xb_ndarray_free(&a);
        return NULL;
    }
    a->ndim = ndim;
    for (int k = 0; k < ndim; k++)
        a->shape[k] = shape[k];
    a->count = count;
    a->dtype = XB_DT_F8;
    return a;
}

xb_ndarray *xb_ndarray_new_strings(const char *name, size_t count, const char *const *strings)
{
    if (count && !strings)
        return NULL;
    xb_ndarray *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->name = dup_str(name);
    a->str = calloc(count ? count : 1, sizeof(char *));
    if (!a->name || !a->str) {
        xb_ndarray_free(&a);
        return NULL;
    }
    a->ndim = 1;
    a->shape[0] = count;
    a->count = count;
    a->dtype = XB_DT_STR;
    for (size_t i = 0; i < count; i++) {
        a->str[i] = dup_str(strings[i]);
        if (!a->str[i]) {
            xb_ndarray_free(&a);
            return NULL;
        }
    }
    return a;
}

void xb_ndarray_free(xb_ndarray **a)
{
    if (!a || !*a)
        return;
    xb_ndarray *x = *a;
    if (x->str) {
        for (size_t i = 0; i < x->count; i++)
            free(x->str[i]);
        free(x->str);
    }
    free(x->data);
    free(x->name);
    free(x);
    *a = NULL;
}

const char *xb_dtype_name(xb_dtype t)
{
    switch (t) {
    case XB_DT_F4: return "<f4";
    case XB_DT_F8: return "<f8";
    case XB_DT_I1: return "|i1";
    case XB_DT_U1: return "|u1";
    case XB_DT_I2: return "<i2";
    case XB_DT_U2: return "<u2";
    case XB_DT_I4: return "<i4";
    case XB_DT_U4: return "<u4";
    case XB_DT_I8: return "<i8";
    case XB_DT_U8: return "<u8";
    case XB_DT_BOOL: return "|b1";
    case XB_DT_STR: return "<U";
    }
    return "?";
}

const char *xb_shape_str(int ndim, const size_t *shape, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (ndim < 0 || !shape)
        ndim = 0;
    if (ndim > XB_NDARRAY_MAXDIM)
        ndim = XB_NDARRAY_MAXDIM;
    size_t pos = 0;
    buf[0] = '\0';
#define SHAPE_APPEND(...)                                                 \
    do {                                                                  \
        if (pos < len) {                                                  \
            int k_ = snprintf(buf + pos, len - pos, __VA_ARGS__);         \
            if (k_ > 0)                                                   \
                pos += (size_t)k_;                                        \
        }                                                                 \
    } while (0)
    SHAPE_APPEND("(");
    for (int k = 0; k < ndim; k++)
        SHAPE_APPEND(k ? ", %zu" : "%zu", shape[k]);
    SHAPE_APPEND(ndim == 1 ? ",)" : ")");
#undef SHAPE_APPEND
    return buf;
}

/* ---- header parsing ---- */

typedef struct {
    xb_dtype type;
    int big;         /* bytes are most significant first */
    size_t itemsize; /* bytes per element */
    size_t ulen;     /* characters per element for XB_DT_STR */
    char text[64];   /* the descr as written, for messages */
} npy_descr;

typedef struct {
    const char *p, *end;
    const char *what;
    xb_error *err;
} hdr_cursor;

static int host_is_big(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 0;
}

/* Up to 40 printable characters from p, so messages show what was found without dumping
 * binary junk into a terminal. */
static const char *snippet(const char *p, const char *end, char out[64])
{
    if (p >= end)
        return "end of header";
    size_t n = 0;
    while (p < end && n < 40) {
        unsigned char c = (unsigned char)*p++;
        out[n++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (p < end) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static void skip_ws(hdr_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(hdr_cursor *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int peek(const hdr_cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A Python string literal ('x' or "x", optional u/b prefix, no escapes: dtype strings never
 * need them). role names it in messages ("key", "value of 'descr'"). */
static int read_pystr(hdr_cursor *c, char *out, size_t outlen, const char *role)
{
    char sn[64];
    if (c->p + 1 < c->end && (*c->p == 'u' || *c->p == 'b') && (c->p[1] == '\'' || c->p[1] == '"'))
        c->p++;
    if (!(peek(c, '\'') || peek(c, '"')))
        return xb_fail(c->err, XB_EINPUT, "%s: bad .npy header: expected a quoted string as %s, found '%s'",
                       c->what, role, snippet(c->p, c->end, sn));
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\')
            return xb_fail(c->err, XB_EINPUT,
                           "%s: bad .npy header: escape sequences are not supported in %s, found '%s'",
                           c->what, role, snippet(c->p, c->end, sn));
        if (n + 1 >= outlen)
            return xb_fail(c->err, XB_EINPUT, "%s: bad .npy header: %s is longer than %zu characters",
                           c->what, role, outlen - 1);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return xb_fail(c->err, XB_EINPUT, "%s: bad .npy header: unterminated string in %s", c->what, role);
    c->p++;
    out[n] = '\0';
    return XB_OK;
}

static int unsupported_dtype(const char *what, const char *descr, const char *why, xb_error *err)
{
    return xb_fail(err, XB_EINPUT,
                   "%s: unsupported dtype '%s' (%s); expected a numeric dtype such as '<f8', '<f4', "
                   "'<i8', '|u1' or '|b1', or a string dtype such as '<U10'",
                   what, descr, why);
}

static int parse_descr(const char *s, const char *what, npy_descr *d, xb_error *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->text, sizeof d->text, "%s", s);
    const char *p = s;
    char order = '=';
    if (*p && strchr("<>|=", *p))
        order = *p++;
    char kind = *p ? *p++ : '\0';
    size_t size = 0;
    int have_size = 0;
    while (is_digit(*p)) {
        if (size > (SIZE_MAX - 9) / 10)
            return unsupported_dtype(what, s, "item size too large", err);
        size = size * 10 + (size_t)(*p++ - '0');
        have_size = 1;
    }
    if (*p)
        return unsupported_dtype(what, s, "not a simple dtype", err);
    d->big = order == '>' || (order != '<' && host_is_big());
    switch (kind) {
    case 'f':
        if (have_size && size == 4)
            d->type = XB_DT_F4;
        else if (have_size && size == 8)
            d->type = XB_DT_F8;
        else if (have_size && size == 2)
            return unsupported_dtype(what, s, "float16 is not supported; convert to float32", err);
        else
            return unsupported_dtype(what, s, "only 4- and 8-byte floats are supported", err);
        break;
    case 'i':
    case 'u':
        if (!have_size || !(size == 1 || size == 2 || size == 4 || size == 8))
            return unsupported_dtype(what, s, "integers must be 1, 2, 4 or 8 bytes", err);
        if (kind == 'i')
            d->type = size == 1 ? XB_DT_I1 : size == 2 ? XB_DT_I2 : size == 4 ? XB_DT_I4 : XB_DT_I8;
        else
            d->type = size == 1 ? XB_DT_U1 : size == 2 ? XB_DT_U2 : size == 4 ? XB_DT_U4 : XB_DT_U8;
        break;
    case 'b':
        if (!have_size || size != 1)
            return unsupported_dtype(what, s, "booleans must be 1 byte", err);
        d->type = XB_DT_BOOL;
        break;
    case 'U':
        if (!have_size)
            return unsupported_dtype(what, s, "string dtype without a length", err);
        if (xb_npy_mul_overflows(size, 4, &d->itemsize))
            return unsupported_dtype(what, s, "string length too large", err);
        d->type = XB_DT_STR;
        d->ulen = size;
        return XB_OK;
    case 'O':
        return unsupported_dtype(what, s, "object arrays hold pickled Python objects", err);
    case 'c':
        return unsupported_dtype(what, s, "complex numbers are not supported", err);
    case 'S':
    case 'a':
        return unsupported_dtype(what, s, "byte strings are not supported; save text as str ('<U')", err);
    case 'V':
        return unsupported_dtype(what, s, "raw void records are not supported", err);
    case 'M':
    case 'm':
        return unsupported_dtype(what, s, "datetimes are not supported", err);
    default:
        return unsupported_dtype(what, s, "unknown type code", err);
    }
    d->itemsize = size;
    return XB_OK;
}

static int parse_bool(hdr_cursor *c, int *v)
{
    char sn[64];
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *v = 1;
    } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *v = 0;
    } else {
        return xb_fail(c->err, XB_EINPUT,
                       "%s: bad .npy header: 'fortran_order' must be True or False, found '%s'", c->what,
                       snippet(c->p, c->end, sn));
    }
    if (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z') || *c->p == '_'))
        return xb_fail(c->err, XB_EINPUT,
                       "%s: bad .npy header: 'fortran_order' must be True or False, found '%s'", c->what,
                       snippet(c->p - (*v ? 4 : 5), c->end, sn));
    return XB_OK;
}

/* A Python tuple of non-negative ints: (), (10,), (2, 3); (10) and Python 2's 3L also pass. */
static int parse_shape(hdr_cursor *c, int *ndim, size_t *shape)
{
    char sn[64];
    const char *start = c->p;
    if (!eat(c, '('))
        return xb_fail(c->err, XB_EINPUT, "%s: bad shape in .npy header: expected a tuple such as (10,) or "
                       "(2, 3), found '%s'", c->what, snippet(c->p, c->end, sn));
    int n = 0;
    skip_ws(c);
    if (eat(c, ')')) {
        *ndim = 0;
        return XB_OK;
    }
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || !is_digit(*c->p))
            return xb_fail(c->err, XB_EINPUT, "%s: bad shape in .npy header: expected a non-negative "
                           "integer dimension, found '%s' in '%s'", c->what, snippet(c->p, c->end, sn),
                           snippet(start, c->end, (char[64]){0}));
        size_t v = 0;
        while (c->p < c->end && is_digit(*c->p)) {
            if (v > (SIZE_MAX - 9) / 10)
                return xb_fail(c->err, XB_EINPUT, "%s: shape overflow in .npy header: a dimension in '%s' "
                               "exceeds %zu", c->what, snippet(start, c->end, sn), (size_t)SIZE_MAX);
            v = v * 10 + (size_t)(*c->p++ - '0');
        }
        if (peek(c, 'L') || peek(c, 'l'))
            c->p++;
        if (n == XB_NDARRAY_MAXDIM)
            return xb_fail(c->err, XB_EINPUT, "%s: shape '%s' has more than %d dimensions, the most "
                           "supported", c->what, snippet(start, c->end, sn), XB_NDARRAY_MAXDIM);
        shape[n++] = v;
        skip_ws(c);
        if (eat(c, ')'))
            break;
        if (!eat(c, ','))
            return xb_fail(c->err, XB_EINPUT, "%s: bad shape in .npy header: expected ',' or ')' after a "
                           "dimension, found '%s'", c->what, snippet(c->p, c->end, sn));
        skip_ws(c);
        if (eat(c, ')'))
            break;
    }
    *ndim = n;
    return XB_OK;
}

static int parse_header(const char *h, size_t hlen, const char *what, npy_descr *d, int *fortran,
                        int *ndim, size_t *shape, xb_error *err)
{
    hdr_cursor c = {h, h + hlen, what, err};
    char sn[64];
    int have_descr = 0, have_fortran = 0, have_shape = 0, rc;
    skip_ws(&c);
    if (!eat(&c, '{'))
        return xb_fail(err, XB_EINPUT, "%s: bad .npy header: expected a dict starting with '{', found '%s'",
                       what, snippet(c.p, c.end, sn));
    for (;;) {
        skip_ws(&c);
        if (eat(&c, '}'))
            break;
        char key[32];
        if ((rc = read_pystr(&c, key, sizeof key, "a key")))
            return rc;
        skip_ws(&c);
        if (!eat(&c, ':'))
            return xb_fail(err, XB_EINPUT, "%s: bad .npy header: expected ':' after key '%s', found '%s'",
                           what, key, snippet(c.p, c.end, sn));
        skip_ws(&c);
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            if (peek(&c, '[') || peek(&c, '{'))
                return xb_fail(err, XB_EINPUT, "%s: unsupported dtype: structured dtypes (records with "
                               "named fields) are not supported; expected a plain numeric or '<U' dtype",
                               what);
            char descr[64];
            if ((rc = read_pystr(&c, descr, sizeof descr, "the value of 'descr'")))
                return rc;
            if ((rc = parse_descr(descr, what, d, err)))
                return rc;
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            if ((rc = parse_bool(&c, fortran)))
                return rc;
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            if ((rc = parse_shape(&c, ndim, shape)))
                return rc;
        } else {
            return xb_fail(err, XB_EINPUT, "%s: bad .npy header: unexpected key '%s' (expected only "
                           "'descr', 'fortran_order' and 'shape')", what, key);
        }
        if (*seen)
            return xb_fail(err, XB_EINPUT, "%s: bad .npy header: key '%s' appears twice", what, key);
        *seen = 1;
        skip_ws(&c);
        if (!eat(&c, ',') && !peek(&c, '}'))
            return xb_fail(err, XB_EINPUT, "%s: bad .npy header: expected ',' or '}' after the value of "
                           "'%s', found '%s'", what, key, snippet(c.p, c.end, sn));
    }
    skip_ws(&c);
    if (c.p < c.end)
        return xb_fail(err, XB_EINPUT, "%s: bad .npy header: unexpected text after the dict: '%s'", what,
                       snippet(c.p, c.end, sn));
    if (!have_descr || !have_fortran || !have_shape)
        return xb_fail(err, XB_EINPUT, "%s: bad .npy header: missing key '%s' (a header needs 'descr', "
                       "'fortran_order' and 'shape')", what,
                       !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return XB_OK;
}

/* ---- element conversion ---- */

static uint64_t load_uint(const unsigned char *p, size_t n, int big)
{
    uint64_t v = 0;
    if (big)
        for (size_t i = 0; i < n; i++)
            v = v << 8 | p[i];
    else
        for (size_t i = n; i-- > 0;)
            v = v << 8 | p[i];
    return v;
}

/* Two's complement by arithmetic, so no implementation-defined signed conversion is involved. */
static double signed_value(uint64_t u, size_t nbytes)
{
    unsigned bits = (unsigned)(nbytes * 8);
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (!(u & sign))
        return (double)u;
    uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    return -(double)((~u & mask) + 1);
}

static double load_number(const unsigned char *p, const npy_descr *d)
{
    uint64_t u = load_uint(p, d->itemsize, d->big);
    switch (d->type) {
    case XB_DT_F4: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, sizeof f);
        return f;
    }
    case XB_DT_F8: {
        double x;
        memcpy(&x, &u, sizeof x);
        return x;
    }
    case XB_DT_I1:
    case XB_DT_I2:
    case XB_DT_I4:
    case XB_DT_I8:
        return signed_value(u, d->itemsize);
    case XB_DT_BOOL:
        return u != 0;
    default:
        return (double)u;
    }
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict decoder (no overlongs, surrogates or values past U+10FFFF); *ps points at a non-NUL byte. */
int xb_npy_utf8_next(const unsigned char **ps, uint32_t *cp)
{
    const unsigned char *s = *ps;
    uint32_t c = s[0], min;
    int n;
    if (c < 0x80) {
        *cp = c;
        *ps = s + 1;
        return 0;
    }
    if ((c & 0xE0) == 0xC0) {
        n = 1, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, c &= 0x07, min = 0x10000;
    } else {
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    *cp = c;
    *ps = s + n + 1;
    return 0;
}

/* One '<U' element (ulen UTF-32 code units) into a new UTF-8 string; numpy pads with trailing
 * NULs, which are dropped. */
static int decode_ucs4(const unsigned char *p, const npy_descr *d, size_t elem, const char *what,
                       char **out, xb_error *err)
{
    size_t n = d->ulen;
    while (n > 0 && load_uint(p + 4 * (n - 1), 4, d->big) == 0)
        n--;
    size_t bytes = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = (uint32_t)load_uint(p + 4 * i, 4, d->big);
        if (cp == 0)
            return xb_fail(err, XB_EINPUT, "%s: string element %zu holds a NUL character at position %zu "
                           "(expected NULs only as trailing padding)", what, elem, i);
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return xb_fail(err, XB_EINPUT, "%s: string element %zu holds invalid code point 0x%X at "
                           "position %zu (expected a Unicode scalar value)", what, elem, (unsigned)cp, i);
        bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    char *s = malloc(bytes);
    if (!s)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory decoding string element %zu", what, elem);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += utf8_encode((uint32_t)load_uint(p + 4 * i, 4, d->big), s + pos);
    s[pos] = '\0';
    *out = s;
    return XB_OK;
}

int xb_npy_image_size(const void *buf, size_t len, const char *what, size_t *total, xb_error *err)
{
    *total = 0;
    if (!what)
        what = "(npy buffer)";
    const unsigned char *b = buf;
    if (len < 12 || !b)
        return XB_OK; /* too short to tell; the whole image is checked when parsed */
    if (memcmp(b, xb_npy_magic, sizeof xb_npy_magic) != 0 || b[6] < 1 || b[6] > 3 || b[7] != 0)
        return XB_OK; /* xb_npy_parse says what is wrong */
    size_t pre = b[6] == 1 ? 10 : 12;
    size_t hlen = b[6] == 1 ? (size_t)load_uint(b + 8, 2, 0) : (size_t)load_uint(b + 8, 4, 0);
    if (hlen > len - pre)
        return XB_OK;
    npy_descr d;
    int fortran = 0, ndim = 0;
    size_t shape[XB_NDARRAY_MAXDIM] = {0}, count, nbytes, sum;
    int rc = parse_header((const char *)b + pre, hlen, what, &d, &fortran, &ndim, shape, err);
    if (rc)
        return rc;
    char sh[256];
    if (xb_npy_shape_count(ndim, shape, &count) || xb_npy_mul_overflows(count, d.itemsize, &nbytes) ||
        __builtin_add_overflow(pre + hlen, nbytes, &sum))
        return xb_fail(err, XB_EINPUT, "%s: shape overflow: the header's shape %s of %s has more bytes than "
                       "can be addressed", what, xb_shape_str(ndim, shape, sh, sizeof sh), d.text);
    *total = sum;
    return XB_OK;
}

int xb_npy_parse(const void *buf, size_t len, const char *what, xb_ndarray **out, xb_error *err)
{
    if (!what)
        what = "(npy buffer)";
    if (!out)
        return xb_fail(err, XB_EINPUT, "%s: no place to store the array", what);
    *out = NULL;
    const unsigned char *b = buf;
    if (!b && len)
        return xb_fail(err, XB_EINPUT, "%s: no data", what);

    size_t mlen = len < sizeof xb_npy_magic ? len : sizeof xb_npy_magic;
    if (mlen && memcmp(b, xb_npy_magic, mlen) != 0) {
        char hex[64] = "";
        size_t pos = 0;
        for (size_t i = 0; i < len && i < 8; i++)
            pos += (size_t)snprintf(hex + pos, sizeof hex - pos, "%s%02x", i ? " " : "", b[i]);
        return xb_fail(err, XB_EINPUT, "%s: bad magic: not a .npy file (expected the bytes 93 4e 55 4d 50 "
                       "59, \"\\x93NUMPY\", at the start, found %s)", what, hex);
    }
    if (len < 8)
        return xb_fail(err, XB_EINPUT, "%s: truncated header: the file holds %zu bytes, the .npy preamble "
                       "needs at least 10", what, len);
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return xb_fail(err, XB_EINPUT, "%s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or "
                       "3.0)", what, major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre)
        return xb_fail(err, XB_EINPUT, "%s: truncated header: the file holds %zu bytes, the version %d.0 "
                       "preamble needs %zu", what, len, major, pre);
    size_t hlen = major == 1 ? (size_t)load_uint(b + 8, 2, 0) : (size_t)load_uint(b + 8, 4, 0);
    if (hlen > len - pre)
        return xb_fail(err, XB_EINPUT, "%s: header length %zu runs past the end of the file (only %zu "
                       "bytes follow the %zu-byte preamble)", what, hlen, len - pre, pre);

    npy_descr d;
    int fortran = 0, ndim = 0;
    size_t shape[XB_NDARRAY_MAXDIM] = {0};
    int rc = parse_header((const char *)b + pre, hlen, what, &d, &fortran, &ndim, shape, err);
    if (rc)
        return rc;

    char sh[256];
    size_t count, nbytes;
    if (xb_npy_shape_count(ndim, shape, &count) || xb_npy_mul_overflows(count, d.itemsize, &nbytes))
        return xb_fail(err, XB_EINPUT, "%s: shape overflow: the header's shape %s of %s has more bytes than "
                       "can be addressed", what, xb_shape_str(ndim, shape, sh, sizeof sh), d.text);
    size_t have = len - pre - hlen;
    if (nbytes != have)
        return xb_fail(err, XB_EINPUT, "%s: data holds %zu bytes, the header's shape %s of %s needs %zu "
                       "(%s)", what, have, xb_shape_str(ndim, shape, sh, sizeof sh), d.text, nbytes,
                       have < nbytes ? "file truncated?" : "trailing bytes after the data");
    /* Zero-width items ('<U0') carry no bytes, so the size check above cannot bound the count. */
    size_t slots;
    if ((d.itemsize == 0 && count > ((size_t)1 << 24)) ||
        xb_npy_mul_overflows(count ? count : 1, sizeof(double) > sizeof(char *) ? sizeof(double) : sizeof(char *), &slots))
        return xb_fail(err, XB_EINPUT, "%s: shape %s of %s is too large to load", what,
                       xb_shape_str(ndim, shape, sh, sizeof sh), d.text);

    xb_ndarray *a = calloc(1, sizeof *a);
    if (!a)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory", what);
    a->name = dup_str(what);
    a->ndim = ndim;
    memcpy(a->shape, shape, sizeof a->shape);
    a->count = count;
    a->dtype = d.type;
    a->fortran_order = fortran;
    if (d.type == XB_DT_STR)
        a->str = calloc(count ? count : 1, sizeof(char *));
    else
        a->data = malloc((count ? count : 1) * sizeof(double));
    if (!a->name || (!a->str && !a->data)) {
        xb_ndarray_free(&a);
        return xb_fail(err, XB_ENOMEM, "%s: out of memory for %zu elements", what, count);
    }

    /* Fortran order: walk the file in its order (first axis fastest) and scatter into C order. */
    const unsigned char *src = b + pre + hlen;
    int transpose = fortran && ndim > 1;
    size_t cstride[XB_NDARRAY_MAXDIM], idx[XB_NDARRAY_MAXDIM] = {0}, off = 0;
    if (transpose) {
        cstride[ndim - 1] = 1;
        for (int k = ndim - 2; k >= 0; k--)
            cstride[k] = cstride[k + 1] * shape[k + 1];
    }
    for (size_t f = 0; f < count; f++) {
        size_t dest = transpose ? off : f;
        const unsigned char *p = src + f * d.itemsize;
        if (d.type == XB_DT_STR) {
            if ((rc = decode_ucs4(p, &d, dest, what, &a->str[dest], err))) {
                xb_ndarray_free(&a);
                return rc;
            }
        } else {
            a->data[dest] = load_number(p, &d);
        }
        if (transpose)
            for (int k = 0; k < ndim; k++) {
                off += cstride[k];
                if (++idx[k] < shape[k])
                    break;
                off -= cstride[k] * shape[k];
                idx[k] = 0;
            }
    }
    *out = a;
    return XB_OK;
}

int xb_npy_read(const char *path, xb_ndarray **out, xb_error *err)
{
    if (out)
        *out = NULL;
    if (!path)
        return xb_fail(err, XB_EINPUT, "xb_npy_read: no path given");
    unsigned char *data;
    size_t len;
    int rc = xb_read_file(path, XB_NPY_MAX_BYTES, &data, &len, err);
    if (rc)
        return rc;
    rc = xb_npy_parse(data, len, path, out, err);
    free(data);
    return rc;
}
