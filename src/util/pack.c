// pack: byte buffers to flatten structs into and read them back with bounds checks
#include "pack.h"

#include <stdlib.h>
#include <string.h>

void xb_pack_put(xb_pack *p, const void *bytes, size_t len)
{
    if (p->failed || !len)
        return;
    if (len > p->cap - p->len) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap - p->len < len) {
            if (cap > (size_t)-1 / 2) {
                p->failed = 1;
                return;
            }
            cap *= 2;
        }
        unsigned char *d = realloc(p->data, cap);
        if (!d) {
            p->failed = 1;
            return;
        }
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + p->len, bytes, len);
    p->len += len;
}

void xb_pack_put_array(xb_pack *p, const void *bytes, size_t len)
{
    if (!bytes)
        len = 0;
    xb_pack_put(p, &len, sizeof len);
    xb_pack_put(p, bytes, len);
}

int xb_pack_failed(const xb_pack *p) { return p->failed; }

void xb_pack_free(xb_pack *p)
{
    free(p->data);
    memset(p, 0, sizeof *p);
}

void xb_unpack_init(xb_unpack *u, const void *data, size_t len)
{
    u->data = data;
    u->len = data ? len : 0;
    u->pos = 0;
    u->failed = 0;
}

void xb_unpack_get(xb_unpack *u, void *out, size_t len)
{
    if (u->failed || len > u->len - u->pos) {
        u->failed = 1;
        memset(out, 0, len);
        return;
    }
    memcpy(out, u->data + u->pos, len);
    u->pos += len;
}

int xb_unpack_get_array_into(xb_unpack *u, void *out, size_t len)
{
    size_t stored = 0;
    xb_unpack_get(u, &stored, sizeof stored);
    if (u->failed || stored != len || stored > u->len - u->pos) {
        u->failed = 1;
        return -1;
    }
    if (len)
        memcpy(out, u->data + u->pos, len);
    u->pos += len;
    return 0;
}

void *xb_unpack_get_array(xb_unpack *u, size_t len)
{
    void *out = len ? malloc(len) : NULL;
    if (len && !out) {
        u->failed = 1;
        return NULL;
    }
    if (xb_unpack_get_array_into(u, out, len)) {
        free(out);
        return NULL;
    }
    return out;
}

int xb_unpack_ok(const xb_unpack *u) { return !u->failed && u->pos == u->len; }
