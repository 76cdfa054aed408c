// test_npy: .npy/.npz round trips, numpy byte layouts, and every malformed-input path we promise
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "check.h"
#include "fileio.h"
#include "npy.h"
#include "npz.h"

/* Byte-exact images as numpy.save writes them (format 1.0, header padded to 64 bytes). */
static const unsigned char npy_f8_2x3[] = /* np.arange(6.).reshape(2, 3) */
    "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }     "
    "                                                     \x0a\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x08"
    "@\x00\x00\x00\x00\x00\x00\x10@\x00\x00\x00\x00\x00\x00\x14@";
static const unsigned char npy_f4_3[] = /* np.array([1.5, -2, 0.25], np.float32) */
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }       "
    "                                                     \x0a\x00\x00\xc0\x3f\x00\x00\x00\xc0"
    "\x00\x00\x80>";
static const unsigned char npy_u2_2[] = /* np.array(['ab', 'µ→']) */
    "\x93NUMPY\x01\x00v\x00{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }       "
    "                                                     \x0a" "a\x00\x00\x00" "b\x00\x00\x00"
    "\xb5\x00\x00\x00\x92!\x00\x00";

static char tmpdir[64];

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* An .npy image the way numpy lays one out, for an arbitrary header dict and payload. */
static unsigned char *make_npy(int major, const char *dict, const void *data, size_t dlen, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict);
    size_t tot = (pre + hl + 1 + 63) / 64 * 64;
    unsigned char *b = malloc(tot + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t h = tot - pre;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (unsigned char)(h >> (8 * i));
    memcpy(b + pre, dict, hl);
    memset(b + pre + hl, ' ', tot - pre - hl - 1);
    b[tot - 1] = '\n';
    if (dlen)
        memcpy(b + tot, data, dlen);
    *len = tot + dlen;
    return b;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static int count_dir_entries(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Parse must fail with XB_EINPUT, set *out NULL, and the message must hold every keyword. */
static void expect_bad(const char *label, const void *buf, size_t len, const char *kw1, const char *kw2)
{
    xb_error err = {0};
    xb_ndarray *a = (xb_ndarray *)1;
    int rc = xb_npy_parse(buf, len, "bad.npy", &a, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", label, rc, err.msg);
    CHECK(a == NULL, "%s: out not cleared", label);
    CHECK(strstr(err.msg, "bad.npy") != NULL, "%s: message lacks the file name: %s", label, err.msg);
    CHECK(strstr(err.msg, kw1) != NULL, "%s: message lacks '%s': %s", label, kw1, err.msg);
    if (kw2)
        CHECK(strstr(err.msg, kw2) != NULL, "%s: message lacks '%s': %s", label, kw2, err.msg);
    if (a != (xb_ndarray *)1)
        xb_ndarray_free(&a);
}

static void expect_bad_dict(const char *label, const char *dict, size_t dlen, const char *kw1, const char *kw2)
{
    unsigned char zeros[64] = {0};
    size_t len;
    unsigned char *b = make_npy(1, dict, zeros, dlen, &len);
    expect_bad(label, b, len, kw1, kw2);
    free(b);
}

static void test_literals(void)
{
    xb_error err = {0};
    xb_ndarray *a = NULL;
    CHECK(xb_npy_parse(npy_f8_2x3, sizeof npy_f8_2x3 - 1, "lit.npy", &a, &err) == XB_OK, "%s", err.msg);
    if (a) {
        CHECK(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->count == 6, "shape");
        CHECK(a->dtype == XB_DT_F8 && !a->fortran_order && a->str == NULL, "dtype");
        for (size_t i = 0; i < 6; i++)
            CHECK(a->data[i] == (double)i, "f8 literal [%zu] = %g", i, a->data[i]);
        CHECK(strcmp(a->name, "lit.npy") == 0, "name %s", a->name);
        unsigned char *buf;
        size_t len;
        CHECK(xb_npy_serialize(a, XB_DT_F8, &buf, &len, &err) == XB_OK, "%s", err.msg);
        CHECK(len == sizeof npy_f8_2x3 - 1 && memcmp(buf, npy_f8_2x3, len) == 0, "f8 bytes differ from numpy's");
        free(buf);
        xb_ndarray_free(&a);
        CHECK(a == NULL, "free sets NULL");
    }
    CHECK(xb_npy_parse(npy_f4_3, sizeof npy_f4_3 - 1, "f4.npy", &a, &err) == XB_OK, "%s", err.msg);
    if (a) {
        CHECK(a->ndim == 1 && a->count == 3 && a->dtype == XB_DT_F4, "f4 shape");
        CHECK(a->data[0] == 1.5 && a->data[1] == -2 && a->data[2] == 0.25, "f4 values");
        unsigned char *buf;
        size_t len;
        CHECK(xb_npy_serialize(a, XB_DT_F4, &buf, &len, &err) == XB_OK, "%s", err.msg);
        CHECK(len == sizeof npy_f4_3 - 1 && memcmp(buf, npy_f4_3, len) == 0, "f4 bytes differ from numpy's");
        free(buf);
        xb_ndarray_free(&a);
    }
    CHECK(xb_npy_parse(npy_u2_2, sizeof npy_u2_2 - 1, "u.npy", &a, &err) == XB_OK, "%s", err.msg);
    if (a) {
        CHECK(a->dtype == XB_DT_STR && a->data == NULL && a->count == 2, "str dtype");
        CHECK(strcmp(a->str[0], "ab") == 0 && strcmp(a->str[1], "\xc2\xb5\xe2\x86\x92") == 0, "str values");
        unsigned char *buf;
        size_t len;
        CHECK(xb_npy_serialize(a, XB_DT_F8, &buf, &len, &err) == XB_OK, "%s", err.msg);
        CHECK(len == sizeof npy_u2_2 - 1 && memcmp(buf, npy_u2_2, len) == 0, "<U bytes differ from numpy's");
        free(buf);
        xb_ndarray_free(&a);
    }
    xb_ndarray_free(&a);
    xb_ndarray_free(NULL);
}

static xb_ndarray *filled(const char *name, int ndim, const size_t *shape, xb_dtype t)
{
    xb_ndarray *a = xb_ndarray_new(name, ndim, shape);
    for (size_t i = 0; a && i < a->count; i++)
        a->data[i] = t == XB_DT_F4 ? (double)i * 0.25 - 3.0 : (double)i * 0.1 - 1.3 + 1e-13 * (double)i;
    return a;
}

static void same_array(const char *label, const xb_ndarray *got, const xb_ndarray *want, xb_dtype t)
{
    CHECK(got != NULL, "%s: missing", label);
    if (!got)
        return;
    CHECK(got->ndim == want->ndim && got->count == want->count, "%s: ndim %d count %zu", label, got->ndim,
          got->count);
    for (int k = 0; k < want->ndim && k < got->ndim; k++)
        CHECK(got->shape[k] == want->shape[k], "%s: shape[%d]", label, k);
    CHECK(got->dtype == t, "%s: dtype %s", label, xb_dtype_name(got->dtype));
    for (size_t i = 0; i < want->count && i < got->count; i++)
        CHECK(got->data[i] == want->data[i], "%s: [%zu] got %.17g want %.17g", label, i, got->data[i],
              want->data[i]);
}

static void test_round_trips(void)
{
    static const size_t shapes[4][3] = {{0}, {5}, {3, 4}, {2, 3, 4}};
    xb_dtype types[2] = {XB_DT_F4, XB_DT_F8};
    for (int ti = 0; ti < 2; ti++) {
        xb_ndarray *arr[4];
        for (int nd = 0; nd < 4; nd++) {
            char name[32], path[256], label[64];
            snprintf(name, sizeof name, "a%d", nd);
            snprintf(label, sizeof label, "npy %s %dd", xb_dtype_name(types[ti]), nd);
            arr[nd] = filled(name, nd, shapes[nd], types[ti]);
            tpath(path, sizeof path, "rt.npy");
            xb_error err = {0};
            CHECK(xb_npy_write(path, arr[nd], types[ti], &err) == XB_OK, "%s: %s", label, err.msg);
            xb_ndarray *b = NULL;
            CHECK(xb_npy_read(path, &b, &err) == XB_OK, "%s: %s", label, err.msg);
            same_array(label, b, arr[nd], types[ti]);
            if (b)
                CHECK(strcmp(b->name, path) == 0, "npy name is the path: %s", b->name);
            xb_ndarray_free(&b);
            remove(path);
        }
        char path[256];
        tpath(path, sizeof path, "rt.npz");
        xb_error err = {0};
        CHECK(xb_npz_write(path, (const xb_ndarray *const *)arr, 4, types[ti], &err) == XB_OK, "%s", err.msg);
        xb_npz *z = NULL;
        CHECK(xb_npz_read(path, &z, &err) == XB_OK, "npz read: %s", err.msg);
        CHECK(xb_npz_count(z) == 4, "npz count %zu", xb_npz_count(z));
        for (int nd = 0; nd < 4 && z; nd++) {
            char label[64];
            snprintf(label, sizeof label, "npz %s %dd", xb_dtype_name(types[ti]), nd);
            const xb_ndarray *b = xb_npz_at(z, (size_t)nd);
            same_array(label, b, arr[nd], types[ti]);
            CHECK(b && strcmp(b->name, arr[nd]->name) == 0, "%s: name", label);
            CHECK(xb_npz_get(z, arr[nd]->name) == b, "%s: get", label);
        }
        CHECK(xb_npz_get(z, "a2.npy") == xb_npz_at(z, 2), "get with .npy suffix");
        CHECK(xb_npz_get(z, "nope") == NULL && xb_npz_at(z, 9) == NULL, "absent");
        xb_npz_free(&z);
        CHECK(z == NULL, "npz free sets NULL");

        /* Equal inputs give equal bytes: output hashes are recorded. */
        char path2[256];
        tpath(path2, sizeof path2, "rt2.npz");
        CHECK(xb_npz_write(path2, (const xb_ndarray *const *)arr, 4, types[ti], &err) == XB_OK, "%s", err.msg);
        size_t n1, n2;
        unsigned char *b1 = slurp(path, &n1), *b2 = slurp(path2, &n2);
        CHECK(n1 == n2 && n1 > 0 && memcmp(b1, b2, n1) == 0, "npz output not deterministic");
        CHECK(b1 && n1 > 4 && memcmp(b1, "PK\x03\x04", 4) == 0, "npz is a zip");
        free(b1);
        free(b2);
        remove(path);
        remove(path2);
        for (int nd = 0; nd < 4; nd++)
            xb_ndarray_free(&arr[nd]);
    }
    xb_npz_free(NULL);
}

static void test_strings(void)
{
    const char *s[] = {"", "abc", "\xc2\xb5\xe2\x86\x92\xf0\x9f\x98\x80", "x"};
    xb_ndarray *a = xb_ndarray_new_strings("labels", 4, s);
    CHECK(a && a->dtype == XB_DT_STR && a->ndim == 1 && a->count == 4, "new_strings");
    char path[256];
    tpath(path, sizeof path, "s.npy");
    xb_error err = {0};
    CHECK(xb_npy_write(path, a, XB_DT_F8, &err) == XB_OK, "%s", err.msg);
    xb_ndarray *b = NULL;
    CHECK(xb_npy_read(path, &b, &err) == XB_OK, "%s", err.msg);
    for (size_t i = 0; b && i < 4; i++)
        CHECK(strcmp(b->str[i], s[i]) == 0, "string %zu: '%s'", i, b->str[i]);
    xb_ndarray_free(&b);
    remove(path);

    size_t dims[2] = {2, 2};
    xb_ndarray *num = filled("W1", 2, dims, XB_DT_F8);
    const xb_ndarray *both[2] = {num, a};
    tpath(path, sizeof path, "s.npz");
    CHECK(xb_npz_write(path, both, 2, XB_DT_F8, &err) == XB_OK, "%s", err.msg);
    xb_npz *z = NULL;
    CHECK(xb_npz_read(path, &z, &err) == XB_OK, "%s", err.msg);
    const xb_ndarray *c = xb_npz_get(z, "labels");
    CHECK(c && c->dtype == XB_DT_STR, "npz strings");
    for (size_t i = 0; c && i < 4; i++)
        CHECK(strcmp(c->str[i], s[i]) == 0, "npz string %zu", i);
    xb_npz_free(&z);
    remove(path);
    xb_ndarray_free(&num);

    /* Strings that are not UTF-8 cannot be written as '<U'. */
    free(a->str[1]);
    a->str[1] = strdup("\xff\xfe");
    unsigned char *buf = NULL;
    size_t len;
    CHECK(xb_npy_serialize(a, XB_DT_F8, &buf, &len, &err) == XB_EINPUT && buf == NULL, "bad utf-8 accepted");
    CHECK(strstr(err.msg, "UTF-8") != NULL, "%s", err.msg);
    xb_ndarray_free(&a);
}

static void test_layouts(void)
{
    xb_error err = {0};
    xb_ndarray *a = NULL;
    size_t len;
    unsigned char *b;

    /* Fortran order: file holds the first axis fastest; we must hand back C order. */
    double fdata[24];
    for (size_t k = 0, f = 0; k < 4; k++)
        for (size_t j = 0; j < 3; j++)
            for (size_t i = 0; i < 2; i++)
                fdata[f++] = (double)(i * 12 + j * 4 + k);
    b = make_npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }", fdata, sizeof fdata, &len);
    CHECK(xb_npy_parse(b, len, "f.npy", &a, &err) == XB_OK, "%s", err.msg);
    for (size_t i = 0; a && i < 24; i++)
        CHECK(a->data[i] == (double)i, "fortran 3-d [%zu] = %g", i, a->data[i]);
    CHECK(a && a->fortran_order, "fortran flag");
    xb_ndarray_free(&a);
    free(b);
    double m[6] = {0, 3, 1, 4, 2, 5}; /* [[0,1,2],[3,4,5]] column by column */
    b = make_npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", m, sizeof m, &len);
    CHECK(xb_npy_parse(b, len, "f.npy", &a, &err) == XB_OK, "%s", err.msg);
    for (size_t i = 0; a && i < 6; i++)
        CHECK(a->data[i] == (double)i, "fortran 2-d [%zu] = %g", i, a->data[i]);
    xb_ndarray_free(&a);
    free(b);

    /* Big-endian and other integer/bool dtypes. */
    static const unsigned char be_f8[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc0, 0x02, 0, 0, 0, 0, 0, 0};
    b = make_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", be_f8, sizeof be_f8, &len);
    CHECK(xb_npy_parse(b, len, "be.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->data[0] == 1.5 && a->data[1] == -2.25 && a->dtype == XB_DT_F8, "big-endian f8");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char be_i4[] = {0xff, 0xff, 0xff, 0xfb, 0x00, 0x01, 0x11, 0x70};
    b = make_npy(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", be_i4, sizeof be_i4, &len);
    CHECK(xb_npy_parse(b, len, "be.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->data[0] == -5 && a->data[1] == 70000 && a->dtype == XB_DT_I4, "big-endian i4");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char be_u2_f4[] = {0xff, 0xff, 0x00, 0x01};
    b = make_npy(1, "{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }", be_u2_f4, 4, &len);
    CHECK(xb_npy_parse(b, len, "be.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->data[0] == 65535 && a->data[1] == 1, "big-endian u2");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char be_f4[] = {0x3f, 0xc0, 0x00, 0x00};
    b = make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (), }", be_f4, 4, &len);
    CHECK(xb_npy_parse(b, len, "be.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->ndim == 0 && a->count == 1 && a->data[0] == 1.5, "big-endian f4 scalar");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char le_i8[] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0, 0, 0, 0, 0, 0, 0, 0x80};
    b = make_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", le_i8, 16, &len);
    CHECK(xb_npy_parse(b, len, "i8.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->data[0] == -3 && a->data[1] == -9223372036854775808.0, "i8");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char small[] = {0x80, 0x7f, 0, 1, 7};
    b = make_npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", small, 2, &len);
    CHECK(xb_npy_parse(b, len, "i1.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->data[0] == -128 && a->data[1] == 127, "i1");
    xb_ndarray_free(&a);
    free(b);
    b = make_npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", small + 2, 3, &len);
    CHECK(xb_npy_parse(b, len, "b1.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->dtype == XB_DT_BOOL && a->data[0] == 0 && a->data[1] == 1 && a->data[2] == 1, "bool");
    xb_ndarray_free(&a);
    free(b);
    static const unsigned char be_u1[] = {0, 0, 0, 'Z'};
    b = make_npy(1, "{'descr': '>U1', 'fortran_order': False, 'shape': (1,), }", be_u1, 4, &len);
    CHECK(xb_npy_parse(b, len, "bu.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && strcmp(a->str[0], "Z") == 0, "big-endian <U");
    xb_ndarray_free(&a);
    free(b);

    /* Header spellings numpy (or Python 2 numpy) may produce, and versions 2.0 / 3.0. */
    double four[4] = {1, 2, 3, 4};
    const char *dicts[] = {
        "{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f8\"}",
        "{ 'descr' : '<f8' ,'fortran_order':False,'shape':( 4 , ) }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4L,), }",
        "{'descr': '=f8', 'fortran_order': False, 'shape': (4), }",
        "{'descr':'<f8','fortran_order':True,'shape':(4,)}",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof *dicts; i++)
        for (int major = 1; major <= 3; major++) {
            b = make_npy(major, dicts[i], four, sizeof four, &len);
            CHECK(xb_npy_parse(b, len, "h.npy", &a, &err) == XB_OK, "dict %zu v%d: %s", i, major, err.msg);
            CHECK(a && a->count == 4 && a->data[3] == 4, "dict %zu v%d values", i, major);
            xb_ndarray_free(&a);
            free(b);
        }
    /* Zero-size arrays are legal. */
    b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296, 4294967296), }",
                 NULL, 0, &len);
    CHECK(xb_npy_parse(b, len, "z.npy", &a, &err) == XB_OK, "%s", err.msg);
    CHECK(a && a->count == 0 && a->data != NULL, "zero-size");
    xb_ndarray_free(&a);
    free(b);

    char sh[64];
    size_t s2[2] = {784, 100}, s1[1] = {10};
    CHECK(strcmp(xb_shape_str(2, s2, sh, sizeof sh), "(784, 100)") == 0, "%s", sh);
    CHECK(strcmp(xb_shape_str(1, s1, sh, sizeof sh), "(10,)") == 0, "%s", sh);
    CHECK(strcmp(xb_shape_str(0, NULL, sh, sizeof sh), "()") == 0, "%s", sh);
    CHECK(strcmp(xb_shape_str(2, s2, sh, 5), "(784") == 0, "truncated %s", sh);
}

static void test_malformed(void)
{
    size_t len;
    unsigned char *b;
    unsigned char good[512];
    memcpy(good, npy_f8_2x3, sizeof npy_f8_2x3 - 1);
    size_t glen = sizeof npy_f8_2x3 - 1;

    unsigned char t[512];
    memcpy(t, good, glen);
    t[5] = 'X';
    expect_bad("bad magic", t, glen, "magic", "93 4e 55 4d 50 58");
    expect_bad("not npy at all", "PK\x03\x04 hello", 10, "magic", NULL);
    expect_bad("truncated header", good, 8, "truncated header", "10");
    expect_bad("truncated magic", good, 4, "truncated header", NULL);
    expect_bad("empty", good, 0, "truncated header", NULL);
    memcpy(t, good, glen);
    t[8] = 0xe8, t[9] = 0x03; /* header length 1000 */
    expect_bad("header length past end", t, glen, "header length 1000", "past the end");
    memcpy(t, good, glen);
    t[6] = 4;
    expect_bad("version", t, glen, "version 4.0", "1.0, 2.0 or 3.0");
    memcpy(t, good, glen);
    expect_bad("data too short", t, glen - 8, "data holds 40 bytes", "(2, 3) of <f8 needs 48");
    memcpy(t + glen, "12345678", 8);
    expect_bad("data too long", t, glen + 8, "data holds 56 bytes", "needs 48");

    expect_bad_dict("missing key", "{'descr': '<f8', 'fortran_order': False, }", 0, "missing key 'shape'", NULL);
    expect_bad_dict("missing descr", "{'fortran_order': False, 'shape': (), }", 8, "missing key 'descr'", NULL);
    expect_bad_dict("bad shape text", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, x), }", 16,
                    "bad shape", "'x), }");
    expect_bad_dict("shape not tuple", "{'descr': '<f8', 'fortran_order': False, 'shape': [2], }", 16,
                    "bad shape", NULL);
    expect_bad_dict("negative dim", "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", 16,
                    "bad shape", NULL);
    expect_bad_dict("shape overflow",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                    0, "overflow", "(4294967296, 4294967296, 4294967296)");
    expect_bad_dict("dim overflow",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 0,
                    "overflow", NULL);
    expect_bad_dict("absurd shape", "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", 8,
                    "data holds 8 bytes", "needs 800000000000");
    expect_bad_dict("too many dims",
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 8,
                    "more than 8 dimensions", NULL);
    expect_bad_dict("object", "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8,
                    "unsupported dtype '|O'", "pickle");
    expect_bad_dict("structured", "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                    8, "structured", NULL);
    expect_bad_dict("complex", "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", 16,
                    "unsupported dtype '<c16'", "complex");
    expect_bad_dict("float16", "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2,
                    "unsupported dtype '<f2'", "float16");
    expect_bad_dict("bytes", "{'descr': '|S3', 'fortran_order': False, 'shape': (1,), }", 3, "unsupported dtype", NULL);
    expect_bad_dict("fortran not bool", "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }", 8,
                    "True or False", NULL);
    expect_bad_dict("unknown key", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", 8,
                    "unexpected key 'x'", NULL);
    expect_bad_dict("duplicate key", "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", 8,
                    "twice", NULL);
    expect_bad_dict("text after dict", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }x", 8,
                    "after the dict", NULL);
    expect_bad_dict("not a dict", "['descr', '<f8']", 8, "dict", NULL);
    expect_bad_dict("unterminated", "{'descr': '<f8", 8, "unterminated", NULL);
    static const unsigned char badcp[4] = {0, 0, 0x11, 0};
    b = make_npy(1, "{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }", badcp, 4, &len);
    expect_bad("bad code point", b, len, "invalid code point 0x110000", NULL);
    free(b);

    xb_error err = {0};
    xb_ndarray *a = NULL;
    char path[256];
    tpath(path, sizeof path, "missing.npy");
    CHECK(xb_npy_read(path, &a, &err) == XB_EINPUT && a == NULL, "missing file: %s", err.msg);
    CHECK(strstr(err.msg, "missing.npy") != NULL, "%s", err.msg);
}

/* Truncations and byte flips of valid images must fail cleanly (ASan watches for overruns): every
 * rejected image gives XB_EINPUT, no array, and a message that names the file. Which flips are caught
 * is not asserted (a flip inside the data is a valid file with other numbers); what is asserted is
 * that each refusal is a clean, named input error. */
static void test_fuzz(void)
{
    const unsigned char *imgs[3] = {npy_f8_2x3, npy_f4_3, npy_u2_2};
    size_t lens[3] = {sizeof npy_f8_2x3 - 1, sizeof npy_f4_3 - 1, sizeof npy_u2_2 - 1};
    int ok_truncated = 0, rejected = 0;
    uint32_t rng = 12345;
    for (int k = 0; k < 3; k++) {
        for (size_t n = 0; n < lens[k]; n++) {
            unsigned char *c = malloc(n ? n : 1); /* exact size, so ASan sees any over-read */
            memcpy(c, imgs[k], n);
            xb_ndarray *a = NULL;
            xb_error err = {0};
            int rc = xb_npy_parse(c, n, "fz.npy", &a, &err);
            if (rc == XB_OK)
                ok_truncated++;
            else
                CHECK(rc == XB_EINPUT && a == NULL && strstr(err.msg, "fz.npy"),
                      "truncated to %zu: rc %d, message %s", n, rc, err.msg);
            xb_ndarray_free(&a);
            free(c);
        }
        for (int it = 0; it < 3000; it++) {
            unsigned char *c = malloc(lens[k]);
            memcpy(c, imgs[k], lens[k]);
            for (int f = 0; f < 1 + it % 3; f++) {
                rng = rng * 1103515245u + 12345u;
                c[(rng >> 8) % lens[k]] ^= (unsigned char)(1u << ((rng >> 4) % 8));
            }
            xb_ndarray *a = NULL;
            xb_error err = {0};
            int rc = xb_npy_parse(c, lens[k], "fz.npy", &a, &err);
            CHECK(rc == XB_OK || (rc == XB_EINPUT && a == NULL && strstr(err.msg, "fz.npy")), "fuzz rc %d: %s", rc,
                  err.msg);
            rejected += rc != XB_OK;
            xb_ndarray_free(&a);
            free(c);
        }
    }
    CHECK(ok_truncated == 0, "%d truncated images parsed", ok_truncated);
    /* Most flips land in the header of these small images; if none were refused the loop tested nothing. */
    CHECK(rejected > 1000, "only %d of 9000 flipped images were refused", rejected);
}

/* A zip written directly with libzip, to make archives our writer never would. */
static void make_zip(const char *path, const char *const *names, const void *const *data, const size_t *lens,
                     int n, int store)
{
    int ze;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    for (int i = 0; za && i < n; i++) {
        zip_source_t *s = zip_source_buffer(za, data[i], lens[i], 0);
        zip_int64_t idx = zip_file_add(za, names[i], s, 0);
        zip_set_file_compression(za, (zip_uint64_t)idx, store && i == 0 ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
    }
    if (za)
        zip_close(za);
}

static void expect_npz_bad(const char *label, const char *path, const char *kw1, const char *kw2)
{
    xb_error err = {0};
    xb_npz *z = (xb_npz *)1;
    int rc = xb_npz_read(path, &z, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", label, rc, err.msg);
    CHECK(z == NULL, "%s: out not cleared", label);
    CHECK(strstr(err.msg, path) != NULL, "%s: message lacks the path: %s", label, err.msg);
    CHECK(strstr(err.msg, kw1) != NULL, "%s: message lacks '%s': %s", label, kw1, err.msg);
    if (kw2)
        CHECK(strstr(err.msg, kw2) != NULL, "%s: message lacks '%s': %s", label, kw2, err.msg);
    if (z != (xb_npz *)1)
        xb_npz_free(&z);
}

static void test_npz(void)
{
    char path[256], p2[256];
    xb_error err = {0};
    xb_npz *z = NULL;

    /* Stored (numpy.savez) and deflated (savez_compressed) members in one archive. */
    tpath(path, sizeof path, "mixed.npz");
    const char *names[2] = {"W1.npy", "b.npy"};
    const void *datas[2] = {npy_f8_2x3, npy_f4_3};
    size_t lens[2] = {sizeof npy_f8_2x3 - 1, sizeof npy_f4_3 - 1};
    make_zip(path, names, datas, lens, 2, 1);
    CHECK(xb_npz_read(path, &z, &err) == XB_OK, "mixed: %s", err.msg);
    const xb_ndarray *w = xb_npz_get(z, "W1"), *bb = xb_npz_get(z, "b");
    CHECK(w && w->count == 6 && w->data[5] == 5, "stored member");
    CHECK(bb && bb->count == 3 && bb->data[0] == 1.5, "deflated member");
    xb_npz_free(&z);

    /* An .npy file is not a zip. */
    tpath(path, sizeof path, "plain.npz");
    write_bytes(path, npy_f8_2x3, sizeof npy_f8_2x3 - 1);
    expect_npz_bad("not a zip", path, "not a zip", NULL);
    write_bytes(path, "", 0);
    expect_npz_bad("empty file", path, "not a zip", "empty");
    tpath(path, sizeof path, "absent.npz");
    expect_npz_bad("missing", path, "no such file", NULL);

    /* Truncated archives: cut a valid one in half, and just its last bytes. */
    size_t dims[2] = {20, 30};
    xb_ndarray *m = filled("W1", 2, dims, XB_DT_F8);
    const xb_ndarray *one[1] = {m};
    tpath(path, sizeof path, "full.npz");
    CHECK(xb_npz_write(path, one, 1, XB_DT_F8, &err) == XB_OK, "%s", err.msg);
    size_t n;
    unsigned char *img = slurp(path, &n);
    tpath(p2, sizeof p2, "cut.npz");
    write_bytes(p2, img, n / 2);
    expect_npz_bad("truncated half", p2, "truncated", NULL);
    write_bytes(p2, img, n - 5);
    expect_npz_bad("truncated tail", p2, "truncated", NULL);

    /* Byte flips in the archive must never crash; a refused archive is a clean XB_EINPUT naming it. Most
     * must be caught (CRC, structure); a flip in an unchecked field (a timestamp) may still read. */
    size_t refused = 0, flips = 0;
    for (size_t i = 0; i < n; i += 3, flips++) {
        img[i] ^= 0x5a;
        write_bytes(p2, img, n);
        img[i] ^= 0x5a;
        xb_npz *fz = NULL;
        xb_error ferr = {0};
        int rc = xb_npz_read(p2, &fz, &ferr);
        CHECK(rc == XB_OK || (rc == XB_EINPUT && fz == NULL && strstr(ferr.msg, p2)), "flip %zu: rc %d, %s", i, rc,
              ferr.msg);
        refused += rc != XB_OK;
        xb_npz_free(&fz);
    }
    CHECK(refused * 2 > flips, "only %zu of %zu flipped archives refused", refused, flips);
    free(img);
    remove(p2);

    /* Members must be NAME.npy and must parse; messages name archive and member. */
    tpath(path, sizeof path, "txt.npz");
    const char *tn[2] = {"W1.npy", "notes.txt"};
    make_zip(path, tn, datas, lens, 2, 0);
    expect_npz_bad("no .npy suffix", path, "'notes.txt'", "NAME.npy");
    tpath(path, sizeof path, "badm.npz");
    const char *bn[1] = {"W1.npy"};
    const void *bd[1] = {npy_f8_2x3};
    size_t bl[1] = {160};
    make_zip(path, bn, bd, bl, 1, 0);
    expect_npz_bad("bad member", path, "badm.npz:W1.npy: data holds 32 bytes", "needs 48");

    /* Writer: duplicate or empty names are refused and nothing is left behind. */
    int before = count_dir_entries();
    xb_ndarray *m2 = filled("W1", 2, dims, XB_DT_F4);
    const xb_ndarray *dup[2] = {m, m2};
    tpath(path, sizeof path, "dup.npz");
    CHECK(xb_npz_write(path, dup, 2, XB_DT_F8, &err) == XB_EINPUT, "duplicate accepted");
    CHECK(strstr(err.msg, "duplicate") && strstr(err.msg, "'W1'") && strstr(err.msg, "dup.npz"), "%s", err.msg);
    free(m2->name);
    m2->name = strdup("");
    CHECK(xb_npz_write(path, dup, 2, XB_DT_F8, &err) == XB_EINPUT && strstr(err.msg, "empty name"), "%s", err.msg);
    CHECK(xb_npz_write(path, one, 1, XB_DT_I4, &err) == XB_EINPUT, "bad out_type accepted");
    CHECK(!xb_is_file(path) && count_dir_entries() == before, "writer left files behind");
    xb_ndarray_free(&m2);

    /* Failure after serializing started (bad UTF-8) also leaves nothing. */
    const char *bad_s[1] = {"\xc3"};
    xb_ndarray *sa = xb_ndarray_new_strings("s", 1, bad_s);
    const xb_ndarray *two[2] = {m, sa};
    CHECK(xb_npz_write(path, two, 2, XB_DT_F8, &err) == XB_EINPUT, "bad string accepted");
    CHECK(!xb_is_file(path) && count_dir_entries() == before, "writer left files behind");
    xb_ndarray_free(&sa);

    /* A folder that cannot be created gives a runtime error, and no file. */
    CHECK(xb_npz_write("/proc/xbarsim_no/x.npz", one, 1, XB_DT_F8, &err) == XB_ERUNTIME, "%s", err.msg);
    xb_ndarray_free(&m);

    /* No arrays: an empty archive, as numpy.savez() writes. */
    tpath(path, sizeof path, "empty.npz");
    CHECK(xb_npz_write(path, NULL, 0, XB_DT_F8, &err) == XB_OK, "%s", err.msg);
    CHECK(xb_npz_read(path, &z, &err) == XB_OK && xb_npz_count(z) == 0, "empty npz: %s", err.msg);
    xb_npz_free(&z);
}

/* Replace every occurrence of from by to (same length) in the file: names in local and central headers. */
static void patch_file(const char *path, const char *from, const char *to)
{
    size_t n = 0, k = strlen(from);
    unsigned char *b = slurp(path, &n);
    for (size_t i = 0; b && i + k <= n; i++)
        if (memcmp(b + i, from, k) == 0)
            memcpy(b + i, to, k);
    if (b)
        write_bytes(path, b, n);
    free(b);
}

/* Archives that used to take memory or give runtime errors for bad input (issue: every bad input
 * refused cleanly). */
static void test_npz_limits(void)
{
    char path[256];
    static const char dict10[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }";
    size_t hl = 0;
    unsigned char *h = make_npy(1, dict10, NULL, 0, &hl);
    unsigned char zeros10[80] = {0};

    /* two members of one name: a named input error, not "File already exists" */
    tpath(path, sizeof path, "dup.npz");
    unsigned char *m10 = make_npy(1, dict10, zeros10, sizeof zeros10, &hl);
    const char *names[2] = {"a.npy", "b.npy"};
    const void *data[2] = {m10, m10};
    size_t lens[2] = {hl, hl};
    make_zip(path, names, data, lens, 2, 0);
    patch_file(path, "b.npy", "a.npy");
    expect_npz_bad("duplicate members", path, "duplicate member name 'a.npy'", NULL);

    /* a (10,) header followed by 8 MB of zeros: the header's size disagrees with the directory's,
     * found on the first chunk instead of after inflating everything */
    size_t big = (size_t)8 << 20;
    unsigned char *bomb = calloc(1, big + 256);
    if (bomb && h) {
        memcpy(bomb, m10, hl);
        tpath(path, sizeof path, "liar.npz");
        const void *d1[1] = {bomb};
        size_t l1[1] = {big};
        make_zip(path, names, d1, l1, 1, 0);
        expect_npz_bad("header against directory", path, "header announces 208 bytes", "declares 8388608");
    }
    free(bomb);

    /* 80 MB of zeros under a consistent header: more than 100 times the deflated size, past 64 MiB */
    static const char dictbig[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000,), }";
    size_t bl = 0;
    unsigned char *hb = make_npy(1, dictbig, NULL, 0, &bl);
    size_t total = bl + 80000000;
    bomb = calloc(1, total);
    if (bomb && hb) {
        memcpy(bomb, hb, bl);
        tpath(path, sizeof path, "bomb.npz");
        const void *d1[1] = {bomb};
        size_t l1[1] = {total};
        make_zip(path, names, d1, l1, 1, 0);
        expect_npz_bad("deflate bomb", path, "decompression bomb", "at most 100 times");
    }
    free(bomb);
    free(hb);
    free(h);
    free(m10);
}

static void cleanup_dir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            remove(p);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_npy.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_literals();
    test_round_trips();
    test_strings();
    test_layouts();
    test_malformed();
    test_fuzz();
    test_npz();
    test_npz_limits();
    cleanup_dir();
    return check_summary("test_npy");
}
