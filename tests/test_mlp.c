// test_mlp: backprop against finite differences, convergence, determinism, weight files, their provenance
// and the library versions recorded with it
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <libxml/parser.h>
#include <zip.h>

#include "check.h"
#include "fileio.h"
#include "json.h"
#include "mlp.h"
#include "npz.h"
#include "pipeline.h"
#include "provenance.h"
#include "train.h"
#include "weights.h"

/* Central differences of the loss with respect to every parameter against the analytic gradient. */
static void check_gradient(xb_activation act, int n_layers, const size_t *sizes)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 7);
    xb_mlp *m = xb_mlp_new(n_layers, sizes, act);
    xb_mlp_init(m, rng);
    for (int k = 0; k < n_layers; k++)
        for (size_t i = 0; i < sizes[k + 1]; i++)
            m->b[k][i] = gsl_ran_gaussian(rng, 0.3);
    const size_t n = 6;
    double X[6 * 16];
    unsigned char y[6];
    for (size_t i = 0; i < n * sizes[0]; i++)
        X[i] = gsl_rng_uniform(rng);
    for (size_t i = 0; i < n; i++)
        y[i] = (unsigned char)gsl_rng_uniform_int(rng, sizes[n_layers]);
    xb_mlp *g = xb_mlp_clone(m);
    xb_mlp_work *w = xb_mlp_work_new(m, n);
    xb_mlp_loss_grad(m, X, y, n, g, NULL, w);
    const double h = 1e-5;
    double worst = 0;
    for (int k = 0; k < n_layers; k++) {
        size_t nw = sizes[k] * sizes[k + 1];
        for (size_t i = 0; i < nw + sizes[k + 1]; i++) {
            double *p = i < nw ? &m->W[k][i] : &m->b[k][i - nw];
            double an = i < nw ? g->W[k][i] : g->b[k][i - nw];
            double keep = *p;
            *p = keep + h;
            double lp = xb_mlp_loss_grad(m, X, y, n, NULL, NULL, w);
            *p = keep - h;
            double lm = xb_mlp_loss_grad(m, X, y, n, NULL, NULL, w);
            *p = keep;
            double num = (lp - lm) / (2 * h);
            double err = fabs(num - an) / fmax(1e-4, fabs(num) + fabs(an));
            if (err > worst)
                worst = err;
        }
    }
    /* Central differences carry O(h^2) truncation and O(eps/h) round-off: ~1e-8 relative here. */
    CHECK(worst < 1e-6, "%s %d-layer gradient: worst relative error %.3g", xb_activation_name(act), n_layers,
          worst);
    xb_mlp_work_free(&w);
    xb_mlp_free(&g);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* Three Gaussian blobs in 2-D, well separated: any working trainer gets them nearly all right. */
static xb_dataset *blobs(size_t n, unsigned long seed)
{
    xb_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->rows = 1;
    d->cols = 2;
    d->dim = 2;
    d->n_classes = 3;
    d->x = malloc(n * 2 * sizeof *d->x);
    d->y = malloc(n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, seed);
    const double cx[3] = {0.2, 0.8, 0.5}, cy[3] = {0.2, 0.2, 0.8};
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 3);
        d->y[i] = (unsigned char)c;
        d->x[2 * i] = cx[c] + gsl_ran_gaussian(rng, 0.07);
        d->x[2 * i + 1] = cy[c] + gsl_ran_gaussian(rng, 0.07);
    }
    gsl_rng_free(rng);
    return d;
}

static void test_training(void)
{
    xb_dataset *d = blobs(900, 3);
    size_t sizes[3] = {2, 8, 3};
    xb_train_options o;
    xb_train_defaults(&o);
    o.epochs = 30;
    o.batch = 16;
    o.quiet = 1;
    o.val_fraction = 0.2;
    xb_error err = {0};
    xb_epoch_stats st[30];
    for (int a = XB_ACT_SIGMOID; a <= XB_ACT_RELU; a++) {
        xb_mlp *m = xb_mlp_new(2, sizes, (xb_activation)a);
        CHECK(xb_train(m, d, &o, st, &err) == XB_OK, "train: %s", err.msg);
        CHECK(st[29].loss < st[0].loss, "%s: loss fell from %g to %g", xb_activation_name(m->act[0]),
              st[0].loss, st[29].loss);
        CHECK(st[29].val_acc > 0.97, "%s: validation accuracy %g", xb_activation_name(m->act[0]),
              st[29].val_acc);
        xb_mlp_free(&m);
    }

    /* Determinism: the same seed gives bit-identical weights, another seed different ones. */
    xb_mlp *a = xb_mlp_new(2, sizes, XB_ACT_SIGMOID), *b = xb_mlp_new(2, sizes, XB_ACT_SIGMOID),
           *c = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    o.epochs = 3;
    xb_train(a, d, &o, NULL, &err);
    xb_train(b, d, &o, NULL, &err);
    o.seed = 2;
    xb_train(c, d, &o, NULL, &err);
    int same = 1, differ = 0;
    for (int k = 0; k < 2; k++) {
        size_t nw = sizes[k] * sizes[k + 1];
        same &= !memcmp(a->W[k], b->W[k], nw * sizeof(double)) &&
                !memcmp(a->b[k], b->b[k], sizes[k + 1] * sizeof(double));
        differ |= memcmp(a->W[k], c->W[k], nw * sizeof(double)) != 0;
    }
    CHECK(same, "same seed must give bit-identical weights");
    CHECK(differ, "another seed must give other weights");

    /* Bad options are input errors. */
    o.val_fraction = 1.5;
    CHECK(xb_train(a, d, &o, NULL, &err) == XB_EINPUT, "val fraction 1.5 accepted");
    o.val_fraction = 0;
    size_t wrong[3] = {3, 8, 3};
    xb_mlp *bad = xb_mlp_new(2, wrong, XB_ACT_SIGMOID);
    CHECK(xb_train(bad, d, &o, NULL, &err) == XB_EINPUT && strstr(err.msg, "3 inputs"), "msg: %s", err.msg);
    xb_mlp_free(&bad);
    xb_mlp_free(&a);
    xb_mlp_free(&b);
    xb_mlp_free(&c);
    free(d->x);
    free(d->y);
    free(d);
}

static void test_weight_files(const char *dir)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    size_t sizes[4] = {5, 4, 3, 2};
    xb_mlp *m = xb_mlp_new(3, sizes, XB_ACT_RELU);
    xb_mlp_init(m, rng);
    m->b[1][2] = 0.25;
    char path[512];
    xb_error err = {0};
    snprintf(path, sizeof path, "%s/w.npz", dir);
    CHECK(xb_weights_save_npz(m, path, XB_DT_F8, &err) == XB_OK, "save: %s", err.msg);
    xb_mlp *r = NULL;
    CHECK(xb_weights_load(path, -1, &r, &err) == XB_OK, "load: %s", err.msg);
    if (r) {
        CHECK(r->n_layers == 3 && r->act[0] == XB_ACT_RELU && r->act[1] == XB_ACT_RELU &&
                  r->act[2] == XB_ACT_IDENTITY, "layers/activations round trip");
        int same = 1;
        for (int k = 0; k < 3; k++)
            same &= !memcmp(r->W[k], m->W[k], sizes[k] * sizes[k + 1] * sizeof(double)) &&
                    !memcmp(r->b[k], m->b[k], sizes[k + 1] * sizeof(double));
        CHECK(same, "float64 weights round trip exactly");
        xb_mlp_free(&r);
    }

    /* The same arrays as separate .npy files. */
    char paths[6][512], list[4096] = "";
    for (int k = 0; k < 3; k++) {
        size_t ws[2] = {sizes[k], sizes[k + 1]}, bs[1] = {sizes[k + 1]};
        xb_ndarray *W = xb_ndarray_new("W", 2, ws), *b = xb_ndarray_new("b", 1, bs);
        memcpy(W->data, m->W[k], W->count * sizeof(double));
        memcpy(b->data, m->b[k], b->count * sizeof(double));
        snprintf(paths[2 * k], 512, "%s/W%d.npy", dir, k + 1);
        snprintf(paths[2 * k + 1], 512, "%s/b%d.npy", dir, k + 1);
        xb_npy_write(paths[2 * k], W, XB_DT_F4, &err);
        xb_npy_write(paths[2 * k + 1], b, XB_DT_F4, &err);
        xb_ndarray_free(&W);
        xb_ndarray_free(&b);
    }
    snprintf(list, sizeof list, "%s,%s,%s,%s,%s,%s", paths[0], paths[1], paths[2], paths[3], paths[4], paths[5]);
    CHECK(xb_weights_load(list, -1, &r, &err) == XB_EINPUT && strstr(err.msg, "--activation"),
          "npy list without an activation must ask for one: %s", err.msg);
    CHECK(xb_weights_load(list, XB_ACT_RELU, &r, &err) == XB_OK, "npy list: %s", err.msg);
    if (r) {
        CHECK_REL(r->W[1][5], (double)(float)m->W[1][5], 0, "float32 weight");
        xb_mlp_free(&r);
    }

    /* Shape mismatches name the array, the expected and the found shape. */
    size_t s1[2] = {5, 4}, s2[2] = {3, 2}, sb[1] = {4}, sb2[1] = {7};
    xb_ndarray *W1 = xb_ndarray_new("W1", 2, s1), *b1 = xb_ndarray_new("b1", 1, sb),
               *W2 = xb_ndarray_new("W2", 2, s2), *b2 = xb_ndarray_new("b2", 1, sb2);
    const xb_ndarray *arr[4] = {W1, b1, W2, b2};
    snprintf(path, sizeof path, "%s/bad.npz", dir);
    xb_npz_write(path, arr, 4, XB_DT_F8, &err);
    CHECK(xb_weights_load(path, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT && strstr(err.msg, "W2") &&
              strstr(err.msg, "(3, 2)") && strstr(err.msg, "(4, N)"), "W2 mismatch message: %s", err.msg);
    const xb_ndarray *arr2[3] = {W1, b1, W2};
    xb_npz_write(path, arr2, 3, XB_DT_F8, &err);
    CHECK(xb_weights_load(path, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT && strstr(err.msg, "b2"),
          "missing b2: %s", err.msg);
    const xb_ndarray *arr3[2] = {W1, b2};
    b2->name[0] = 'b', b2->name[1] = '1';
    xb_npz_write(path, arr3, 2, XB_DT_F8, &err);
    CHECK(xb_weights_load(path, -1, &r, &err) == XB_EINPUT && strstr(err.msg, "b1") && strstr(err.msg, "(7,)") &&
              strstr(err.msg, "(4,)"), "b1 mismatch message: %s", err.msg);
    CHECK(xb_weights_load("nothing.txt", -1, &r, &err) == XB_EINPUT, "a .txt is refused");
    xb_ndarray_free(&W1);
    xb_ndarray_free(&b1);
    xb_ndarray_free(&W2);
    xb_ndarray_free(&b2);
    xb_mlp_free(&m);
    gsl_rng_free(rng);
}

/* An .npy image with any dtype, laid out as numpy.save does (format 1.0, header padded to 64 bytes),
 * for the dtypes our writer never produces. Returns the length written into buf. */
static size_t npy_image(unsigned char *buf, const char *descr, const char *shape, const void *data, size_t dlen)
{
    char dict[128];
    int hl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t tot = (10 + (size_t)hl + 1 + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((tot - 10) & 0xff);
    buf[9] = (unsigned char)((tot - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)hl);
    memset(buf + 10 + hl, ' ', tot - 10 - (size_t)hl - 1);
    buf[tot - 1] = '\n';
    memcpy(buf + tot, data, dlen);
    return tot + dlen;
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

/* A list of .npy files names the file that is wrong; integer and bool arrays are refused by name and
 * dtype; provenance hashes each file of a list on its own. */
static void test_weight_lists(const char *dir)
{
    xb_error err = {0};
    xb_mlp *r = NULL;
    char p[4][512], list[2100];
    const char *names[4] = {"W1.npy", "b1.npy", "W2.npy", "b2.npy"};
    size_t shapes[4][2] = {{5, 4}, {4, 0}, {4, 3}, {3, 0}};
    xb_ndarray *arr[4];
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/list-%s", dir, names[i]);
        arr[i] = xb_ndarray_new(names[i], shapes[i][1] ? 2 : 1, shapes[i]);
        for (size_t k = 0; k < arr[i]->count; k++)
            arr[i]->data[k] = 0.01 * (double)(k + 1) * (i % 2 ? 1 : -1);
        xb_npy_write(p[i], arr[i], XB_DT_F8, &err);
    }
    snprintf(list, sizeof list, "%s,%s,%s,%s", p[0], p[1], p[2], p[3]);
    CHECK(xb_weights_load(list, XB_ACT_SIGMOID, &r, &err) == XB_OK, "good list: %s", err.msg);
    xb_mlp_free(&r);

    /* b2 of the wrong length: the message names b2's own file, not the first of the list. */
    size_t b7[1] = {7};
    xb_ndarray *bad = xb_ndarray_new("b2", 1, b7);
    xb_npy_write(p[3], bad, XB_DT_F8, &err);
    CHECK(xb_weights_load(list, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT, "b2 (7,) accepted");
    CHECK(strncmp(err.msg, p[3], strlen(p[3])) == 0 && strstr(err.msg, "b2 has shape (7,)") &&
              strstr(err.msg, "(3,)") && !strstr(err.msg, "list-W1.npy"),
          "b2 message names list-b2.npy: %s", err.msg);
    xb_ndarray_free(&bad);
    xb_npy_write(p[3], arr[3], XB_DT_F8, &err);

    /* W2 that does not follow W1: named by its own file. */
    size_t w2bad[2] = {6, 3};
    bad = xb_ndarray_new("W2", 2, w2bad);
    xb_npy_write(p[2], bad, XB_DT_F8, &err);
    CHECK(xb_weights_load(list, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT &&
              strncmp(err.msg, p[2], strlen(p[2])) == 0 && strstr(err.msg, "W2 has shape (6, 3)") &&
              strstr(err.msg, "(4, N)"),
          "W2 message names list-W2.npy: %s", err.msg);
    xb_ndarray_free(&bad);
    xb_npy_write(p[2], arr[2], XB_DT_F8, &err);

    /* An integer W1: refused with the array, the expected and the found dtype. */
    unsigned char img[512];
    int32_t ints[20] = {0};
    size_t len = npy_image(img, "<i4", "(5, 4)", ints, sizeof ints);
    write_file(p[0], img, len);
    CHECK(xb_weights_load(list, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT && r == NULL, "int32 W1 accepted");
    CHECK(strncmp(err.msg, p[0], strlen(p[0])) == 0 && strstr(err.msg, "W1 has dtype '<i4'") &&
              strstr(err.msg, "float32") && strstr(err.msg, "float64"),
          "int W1 message: %s", err.msg);
    xb_npy_write(p[0], arr[0], XB_DT_F8, &err);
    /* A bool b2. */
    unsigned char bools[3] = {1, 0, 1};
    len = npy_image(img, "|b1", "(3,)", bools, sizeof bools);
    write_file(p[3], img, len);
    CHECK(xb_weights_load(list, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT &&
              strncmp(err.msg, p[3], strlen(p[3])) == 0 && strstr(err.msg, "b2 has dtype '|b1'"),
          "bool b2 message: %s", err.msg);
    /* The same bool b2 inside an .npz: the archive is named, with the array. */
    char npz[600];
    snprintf(npz, sizeof npz, "%s/int.npz", dir);
    unsigned char m0[512], m1[512], m2[512];
    size_t l0 = 0, l1 = 0, l2 = 0;
    unsigned char *bufs[4] = {m0, m1, m2, img};
    size_t *lens[3] = {&l0, &l1, &l2};
    for (int i = 0; i < 3; i++) {
        unsigned char *b = NULL;
        size_t bl = 0;
        xb_npy_serialize(arr[i], XB_DT_F8, &b, &bl, &err);
        memcpy(bufs[i], b, bl < 512 ? bl : 512);
        *lens[i] = bl;
        free(b);
    }
    int ze;
    zip_t *za = zip_open(npz, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    size_t all_lens[4] = {l0, l1, l2, len};
    for (int i = 0; za && i < 4; i++)
        zip_file_add(za, names[i], zip_source_buffer(za, bufs[i], all_lens[i], 0), 0);
    if (za)
        zip_close(za);
    CHECK(xb_weights_load(npz, XB_ACT_SIGMOID, &r, &err) == XB_EINPUT && strstr(err.msg, npz) &&
              strstr(err.msg, "b2 has dtype '|b1'") && strstr(err.msg, "float32"),
          "bool b2 in an npz: %s", err.msg);
    xb_npy_write(p[3], arr[3], XB_DT_F8, &err);

    /* Provenance: each file of the list with its own hash, in list order. */
    xb_provenance prov;
    char *argv[1] = {"eval"};
    xb_provenance_init(&prov, 1, argv);
    CHECK(xb_provenance_add_weights(&prov, list, &err) == XB_OK, "provenance of a list: %s", err.msg);
    CHECK(prov.n_inputs == 4, "%d inputs recorded, want 4", prov.n_inputs);
    static const char *const roles[4] = {"weights:W1", "weights:b1", "weights:W2", "weights:b2"};
    for (int i = 0; i < 4 && i < prov.n_inputs; i++) {
        char h[65];
        xb_sha256_file(p[i], h, &err);
        CHECK(strcmp(prov.inputs[i].role, roles[i]) == 0 && strcmp(prov.inputs[i].path, p[i]) == 0 &&
                  strcmp(prov.inputs[i].sha256, h) == 0,
              "input %d: %s %s %s", i, prov.inputs[i].role, prov.inputs[i].path, prov.inputs[i].sha256);
    }
    CHECK(strcmp(prov.inputs[1].sha256, prov.inputs[3].sha256) != 0, "different files, different hashes");
    xb_provenance_init(&prov, 1, argv);
    CHECK(xb_provenance_add_weights(&prov, npz, &err) == XB_OK && prov.n_inputs == 1 &&
              strcmp(prov.inputs[0].role, "weights") == 0,
          "provenance of an npz: %s", err.msg);
    /* Empty items are skipped by the loader, so they do not shift the roles either. */
    char gappy[1200];
    snprintf(gappy, sizeof gappy, "%s,,%s", p[0], p[1]);
    xb_provenance_init(&prov, 1, argv);
    CHECK(xb_provenance_add_weights(&prov, gappy, &err) == XB_OK && prov.n_inputs == 2 &&
              strcmp(prov.inputs[1].role, "weights:b1") == 0 && strcmp(prov.inputs[1].path, p[1]) == 0,
          "empty list item: %d inputs, second %s", prov.n_inputs, prov.inputs[1].role);
    char missing[1200];
    snprintf(missing, sizeof missing, "%s,%s/none.npy", p[0], dir);
    xb_provenance_init(&prov, 1, argv);
    CHECK(xb_provenance_add_weights(&prov, missing, &err) != XB_OK && strstr(err.msg, "none.npy"),
          "a missing list file is named: %s", err.msg);
    /* More inputs than the record holds are counted, not lost silently. */
    xb_provenance_init(&prov, 1, argv);
    for (int i = 0; i < XB_PROVENANCE_MAX_INPUTS + 3; i++)
        xb_provenance_add_input(&prov, "x", p[0], "00", &err);
    CHECK(prov.n_inputs == XB_PROVENANCE_MAX_INPUTS && prov.n_dropped == 3, "overflow: %d kept, %d dropped",
          prov.n_inputs, prov.n_dropped);
    for (int i = 0; i < 4; i++)
        xb_ndarray_free(&arr[i]);
}

/* Library versions are the linked ones: libngspice started in a child and asked, libxml2's run-time
 * xmlParserVersion. The record in every JSON sidecar says the same as --version. */
static void test_versions(void)
{
    char why[512] = "";
    int v = xb_eval_ngspice_linked(why, sizeof why);
    CHECK(v >= 30 && !why[0], "linked ngspice version %d (%s)", v, why);
    char *buf = NULL, *txt = NULL;
    size_t len = 0, tlen = 0;
    FILE *mem = open_memstream(&buf, &len);
    xb_json j;
    xb_json_init(&j, mem);
    xb_json_object_begin(&j, NULL);
    xb_versions_write(&j, v, "KLU");
    xb_json_object_end(&j);
    fclose(mem);
    mem = open_memstream(&txt, &tlen);
    xb_versions_print(mem, v, NULL);
    fclose(mem);
    char want[64];
    snprintf(want, sizeof want, "\"ngspice\": \"%d\"", v);
    CHECK(buf && strstr(buf, want) && strstr(buf, "\"ngspice_build\"") && strstr(buf, "\"libxml2_build\"") &&
              strstr(buf, "\"ngspice_solver\": \"KLU\"") && !strstr(buf, "ngspice_note"),
          "libraries record: %s", buf);
    snprintf(want, sizeof want, "ngspice  %d (the linked libngspice", v);
    CHECK(txt && strstr(txt, want), "--version text: %s", txt);
    long x = strtol(xmlParserVersion, NULL, 10);
    snprintf(want, sizeof want, "\"libxml2\": \"%ld.%ld.%ld\"", x / 10000, x / 100 % 100, x % 100);
    CHECK(buf && strstr(buf, want), "libxml2 from xmlParserVersion (%s): %s", xmlParserVersion, buf);
    /* A run that solved no circuit says so instead of starting a library to ask. */
    free(buf);
    buf = NULL;
    mem = open_memstream(&buf, &len);
    xb_json_init(&j, mem);
    xb_json_object_begin(&j, NULL);
    xb_versions_write(&j, 0, NULL);
    xb_json_object_end(&j);
    fclose(mem);
    CHECK(buf && strstr(buf, "\"ngspice\": null") && strstr(buf, "ngspice_note") && !strstr(buf, "ngspice_solver"),
          "no circuit solved: %s", buf);
    free(buf);
    free(txt);
}

/* The per-architecture learning-rate defaults (one place for train and testbenches): the SLP and
 * sigmoid values the reference results were trained with, and the smaller ReLU step. */
static void test_default_lr(void)
{
    CHECK(xb_train_default_lr(0, XB_ACT_SIGMOID) == 0.01 && xb_train_default_lr(0, XB_ACT_RELU) == 0.01,
          "SLP default lr 0.01");
    CHECK(xb_train_default_lr(1, XB_ACT_SIGMOID) == 0.1 && xb_train_default_lr(2, XB_ACT_SIGMOID) == 0.1,
          "sigmoid MLP default lr 0.1");
    CHECK(xb_train_default_lr(1, XB_ACT_RELU) == 0.01 && xb_train_default_lr(2, XB_ACT_RELU) == 0.01,
          "ReLU MLP default lr 0.01");
}

int main(void)
{
    test_default_lr();
    size_t s1[2] = {7, 4}, s2[3] = {6, 5, 3}, s3[4] = {5, 6, 4, 3};
    check_gradient(XB_ACT_IDENTITY, 1, s1);
    check_gradient(XB_ACT_SIGMOID, 2, s2);
    check_gradient(XB_ACT_SIGMOID, 3, s3);
    check_gradient(XB_ACT_RELU, 3, s3);
    test_training();
    char dir[] = "/tmp/xb_test_mlp_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    test_weight_files(dir);
    test_weight_lists(dir);
    test_versions();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_mlp");
}
