// npy_write: serialize C-order double or string arrays as NumPy .npy images and write them atomically
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "npy_private.h"

static void store_le(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xFF);
}

int xb_npy_serialize(const xb_ndarray *a, xb_dtype out_type, unsigned char **buf, size_t *len, xb_error *err)
{
    if (!buf || !len)
        return xb_fail(err, XB_EINPUT, "xb_npy_serialize: no output buffer given");
    *buf = NULL;
    *len = 0;
    if (!a)
        return xb_fail(err, XB_EINPUT, "xb_npy_serialize: no array given");
    const char *name = a->name ? a->name : "(array)";
    size_t count;
    if (a->ndim < 0 || a->ndim > XB_NDARRAY_MAXDIM || xb_npy_shape_count(a->ndim, a->shape, &count) ||
        count != a->count)
        return xb_fail(err, XB_EINPUT, "%s: inconsistent array: ndim %d, count %zu does not match the shape",
                       name, a->ndim, a->count);
    int is_str = a->dtype == XB_DT_STR;
    if (is_str ? !a->str : !a->data)
        return xb_fail(err, XB_EINPUT, "%s: array has no %s", name, is_str ? "strings" : "data");
    if (!is_str && out_type != XB_DT_F4 && out_type != XB_DT_F8)
        return xb_fail(err, XB_EINPUT, "%s: cannot write dtype %s: numeric arrays are written as <f4 or <f8",
                       name, xb_dtype_name(out_type));

    size_t itemsize, ulen = 0;
    char descr[48];
    if (is_str) {
        for (size_t i = 0; i < count; i++) {
            const unsigned char *s = (const unsigned char *)(a->str[i] ? a->str[i] : "");
            size_t n = 0;
            uint32_t cp;
            while (*s) {
                if (xb_npy_utf8_next(&s, &cp))
                    return xb_fail(err, XB_EINPUT, "%s: string element %zu is not valid UTF-8", name, i);
                n++;
            }
            if (n > ulen)
                ulen = n;
        }
        if (ulen == 0)
            ulen = 1; /* numpy never writes '<U0' for a str array */
        if (xb_npy_mul_overflows(ulen, 4, &itemsize))
            return xb_fail(err, XB_EINPUT, "%s: strings too long", name);
        snprintf(descr, sizeof descr, "<U%zu", ulen);
    } else {
        itemsize = out_type == XB_DT_F4 ? 4 : 8;
        snprintf(descr, sizeof descr, "%s", xb_dtype_name(out_type));
    }

    char sh[256], dict[400];
    int dn = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                      xb_shape_str(a->ndim, a->shape, sh, sizeof sh));
    size_t dlen = (size_t)dn;
    /* numpy pads with spaces so the data starts on a 64-byte boundary; the header ends in '\n'. */
    size_t pre = 10, total_hdr = (pre + dlen + 1 + 63) / 64 * 64;
    if (total_hdr - pre > 65535) {
        pre = 12;
        total_hdr = (pre + dlen + 1 + 63) / 64 * 64;
    }
    size_t nbytes, total;
    if (xb_npy_mul_overflows(count, itemsize, &nbytes) || __builtin_add_overflow(total_hdr, nbytes, &total))
        return xb_fail(err, XB_EINPUT, "%s: array too large to serialize", name);
    unsigned char *out = malloc(total);
    if (!out)
        return xb_fail(err, XB_ENOMEM, "%s: out of memory serializing %zu bytes", name, total);
    memcpy(out, xb_npy_magic, 6);
    out[6] = pre == 10 ? 1 : 2;
    out[7] = 0;
    store_le(out + 8, total_hdr - pre, pre - 8);
    memcpy(out + pre, dict, dlen);
    memset(out + pre + dlen, ' ', total_hdr - pre - dlen - 1);
    out[total_hdr - 1] = '\n';

    unsigned char *p = out + total_hdr;
    for (size_t i = 0; i < count; i++, p += itemsize) {
        if (is_str) {
            const unsigned char *s = (const unsigned char *)(a->str[i] ? a->str[i] : "");
            size_t k = 0;
            uint32_t cp;
            while (*s && xb_npy_utf8_next(&s, &cp) == 0)
                store_le(p + 4 * k++, cp, 4);
            memset(p + 4 * k, 0, itemsize - 4 * k);
        } else if (out_type == XB_DT_F4) {
            float f = (float)a->data[i];
            uint32_t w;
            memcpy(&w, &f, sizeof w);
            store_le(p, w, 4);
        } else {
            uint64_t w;
            memcpy(&w, &a->data[i], sizeof w);
            store_le(p, w, 8);
        }
    }
    *buf = out;
    *len = total;
    return XB_OK;
}

int xb_npy_write(const char *path, const xb_ndarray *a, xb_dtype out_type, xb_error *err)
{
    if (!path)
        return xb_fail(err, XB_EINPUT, "xb_npy_write: no path given");
    unsigned char *buf;
    size_t len;
    int rc = xb_npy_serialize(a, out_type, &buf, &len, err);
    if (rc)
        return xb_error_prefix(err, "writing %s", path);
    xb_atomic_file f;
    rc = xb_atomic_open(&f, path, err);
    if (rc) {
        free(buf);
        return rc;
    }
    if (len && fwrite(buf, 1, len, f.fp) != len) {
        free(buf);
        xb_atomic_abort(&f);
        return xb_fail(err, XB_ERUNTIME, "writing %s failed (disk full?)", path);
    }
    free(buf);
    return xb_atomic_commit(&f, err);
}
