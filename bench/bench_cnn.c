// bench_cnn: convolutional networks on the chip: behavioral inference rate against this machine's GEMM
// rate, and the circuit-level cost per image, exact solves against the linear mode
//
// usage: bench_cnn [weights.npz] [images] [circuit-images]
//        (defaults: results/reference/mnist-cnn-pytorch.npz, 10000, 10)
// Behavioral: the network mapped onto 64x64 tiles (differential pairs, bias rows), every non-ideality
// off, classifies the first IMAGES MNIST test images (best of 3); its work is the crossbar products of
// every patch, 2 x patches x rows x columns flops per layer and image, as a rate and as a ratio to the
// GEMM rate of a product of the first layer's shape (patches of 256 images x rows by rows x columns)
// measured in the same run, beside the ideal network's own forward pass (im2col + GEMM).
// Circuit: CIRCUIT-IMAGES images through ngspice (libngspice, 2 workers) with linear cells and 1-ohm
// wires, exact solves against the linear mode (one solve per tile, then superposition, spot-checked):
// tile solves (dc-sweep points) per image, seconds per image, and the largest logit difference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_spice.h"
#include "behavioral.h"
#include "chip.h"
#include "dataset.h"
#include "device.h"
#include "gemm_rate.h"
#include "pool.h"
#include "weights.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

static double circuit(const xb_chip *c, const xb_device *dev, int linear, const double *X, size_t n, double *z,
                      size_t *points)
{
    xb_error err = {0};
    xb_pool pool = {.chip = c, .dev = dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 1;
    xb_backend_params sp = {.pool = &pool};
    const xb_backend_type *t = linear ? xb_backend_spice_linear : xb_backend_spice_exact;
    void *st = NULL;
    xb_behav *b = NULL;
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    if (t->open(c, &sp, &st, &err) || xb_behav_new(c, &bo, NULL, 0, &b, &err)) {
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        exit(1);
    }
    xb_behav_set_backend(b, t, st);
    double t0 = xb_now();
    if (xb_behav_forward(b, X, n, NULL, z, NULL, &err)) {
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        exit(1);
    }
    double s = xb_now() - t0;
    *points = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        for (size_t rt = 0; rt < L->n_row_tiles; rt++)
            for (size_t ct = 0; ct < L->n_col_tiles; ct++) {
                xb_tile_stats ts;
                t->tile_stats(st, l, rt, ct, &ts);
                size_t r0, nr, c0, nc;
                xb_chip_tile_bounds(c, l, rt, ct, &r0, &nr, &c0, &nc);
                *points += ts.currents / nc;
            }
    }
    xb_behav_free(&b);
    t->free(&st);
    return s;
}

int main(int argc, char **argv)
{
    const char *wpath = argc > 1 ? argv[1] : XB_SOURCE_DIR "/results/reference/mnist-cnn-pytorch.npz";
    size_t n = argc > 2 ? (size_t)atoi(argv[2]) : 10000, nc = argc > 3 ? (size_t)atoi(argv[3]) : 10;
    xb_error err = {0};
    xb_mlp *m = NULL;
    xb_dataset *test = NULL;
    if (xb_weights_load(wpath, -1, &m, &err) || xb_dataset_load("mnist", XB_SPLIT_TEST, &test, &err)) {
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        return 1;
    }
    if (n > test->n)
        n = test->n;
    if (nc > n)
        nc = n;
    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_map_options_from_device(&mo, &dev);
    xb_chip *c = NULL;
    xb_behav *b = NULL;
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    if (xb_chip_map(m, &mo, test->x, 256, &c, &err) || xb_behav_new(c, &bo, NULL, 0, &b, &err)) {
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        return 1;
    }
    char desc[1024];
    printf("bench_cnn: %s, %zu MNIST test images\n", xb_mlp_describe(m, desc, sizeof desc), n);
    double flop = 0; /* per image: every patch's crossbar product */
    for (int l = 0; l < c->n_layers; l++) {
        const xb_layer_map *L = &c->layers[l];
        double f = 2.0 * (double)xb_layer_patches(L) * (double)L->rows * (double)L->cols;
        flop += f;
        printf("  layer %d: %zu patches x %zu rows x %zu columns (%zu x %zu tiles), %.3g Mflop per image\n", l + 1,
               xb_layer_patches(L), L->rows, L->cols, L->n_row_tiles, L->n_col_tiles, f / 1e6);
    }
    int *pred = malloc(n * sizeof *pred), *pred_ideal = malloc(n * sizeof *pred_ideal);
    double best = 1e30, best_ideal = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = xb_now();
        xb_behav_forward(b, test->x, n, NULL, NULL, pred, &err);
        double t = xb_now() - t0;
        best = t < best ? t : best;
        t0 = xb_now();
        xb_mlp_predict(m, test->x, n, pred_ideal, &err);
        t = xb_now() - t0;
        best_ideal = t < best_ideal ? t : best_ideal;
    }
    size_t agree = 0, ok = 0;
    for (size_t i = 0; i < n; i++)
        agree += pred[i] == pred_ideal[i], ok += pred[i] == test->y[i];
    const xb_layer_map *L0 = &c->layers[0];
    int gm = (int)(256 * xb_layer_patches(L0));
    double g = gemm_rate(gm, (int)L0->cols, (int)L0->rows), rate = flop * (double)n / best / 1e9;
    printf("  behavioral          %8.0f images/s  (%.2f s, accuracy %.2f%%, %zu of %zu predictions as the network's)\n",
           (double)n / best, best, 100.0 * (double)ok / (double)n, agree, n);
    printf("  network (im2col)    %8.0f images/s  (%.2f s)\n", (double)n / best_ideal, best_ideal);
    printf("  crossbar work       %8.2f GFLOP/s\n", rate);
    printf("  GEMM %dx%zu * %zux%zu %6.2f GFLOP/s\n", gm, L0->rows, L0->rows, L0->cols, g);
    printf("  ratio behavioral/GEMM   %.3f\n", rate / g);

    /* circuit level */
    size_t classes = c->layers[c->n_layers - 1].fan_out, pts_x = 0, pts_l = 0;
    double *zx = malloc(nc * classes * sizeof *zx), *zl = malloc(nc * classes * sizeof *zl);
    double tx = circuit(c, &dev, 0, test->x, nc, zx, &pts_x);
    double tl = circuit(c, &dev, 1, test->x, nc, zl, &pts_l);
    double d = 0, big = 0;
    for (size_t i = 0; i < nc * classes; i++)
        d = fmax(d, fabs(zx[i] - zl[i])), big = fmax(big, fabs(zx[i]));
    printf("bench_cnn: circuit level, %zu images, linear cells, 1-ohm wires, 2 workers (libngspice)\n", nc);
    printf("  tile solves per image   %zu (dc-sweep points over every tile: patches x row tiles x column tiles)\n",
           pts_x / nc);
    printf("  exact                   %.3f s per image\n", tx / (double)nc);
    printf("  linear mode             %.3f s per image  (%.1fx faster; logits within %.3g relative of exact)\n",
           tl / (double)nc, tx / tl, d / (big > 0 ? big : 1));
    free(zx), free(zl), free(pred), free(pred_ideal);
    xb_behav_free(&b);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    xb_dataset_free(&test);
    return 0;
}
