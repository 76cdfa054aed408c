// bench_behavioral: Monte Carlo behavioral inference of 784-100-10 on the MNIST test set against the GEMM rate
//
// usage: bench_behavioral [trials] [weights.npz]   (defaults: 100, results/reference/mnist-mlp100-f32.npz)
// Each trial draws fresh C2C perturbations (c2c:ar=1,sigma=0.1 on every layer), moves the
// conductances and classifies all 10,000 test images. Target: 100 trials in under 60 s on 2 cores.
#include <stdio.h>
#include <stdlib.h>

#include "behavioral.h"
#include "chip.h"
#include "dataset.h"
#include "gemm_rate.h"
#include "mc.h"
#include "weights.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

int main(int argc, char **argv)
{
    size_t trials = argc > 1 ? (size_t)atoi(argv[1]) : 100;
    const char *wpath = argc > 2 ? argv[2] : XB_SOURCE_DIR "/results/reference/mnist-mlp100-f32.npz";
    xb_error err = {0};
    xb_mlp *m = NULL;
    xb_dataset *test = NULL;
    if (xb_weights_load(wpath, -1, &m, &err) || xb_dataset_load("mnist", XB_SPLIT_TEST, &test, &err)) {
        fprintf(stderr, "bench_behavioral: %s\n", err.msg);
        return 1;
    }
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_chip *base = NULL;
    if (xb_chip_map(m, &mo, test->x, 256, &base, &err)) {
        fprintf(stderr, "bench_behavioral: %s\n", err.msg);
        return 1;
    }
    xb_chip *chip = xb_chip_clone(base);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL;
    xb_behav_new(chip, &bo, NULL, 0, &b, &err);
    xb_layer_perturb p;
    xb_layer_perturb_parse("c2c:ar=1,sigma=0.1", base->n_layers, &p, &err);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    int *pred = malloc(test->n * sizeof *pred);

    double g_big = gemm_rate(1024, 1024, 1024);
    double g_shape = gemm_rate(1024, (int)base->layers[0].cols, (int)base->layers[0].rows);

    double t0 = xb_now(), acc_sum = 0, t_perturb = 0;
    for (size_t t = 0; t < trials; t++) {
        double tp = xb_now();
        xb_mc_perturb_chip(base, &p, 1, rng, chip, &bo, &err);
        t_perturb += xb_now() - tp;
        xb_behav_forward(b, test->x, test->n, rng, NULL, pred, &err);
        size_t ok = 0;
        for (size_t i = 0; i < test->n; i++)
            ok += pred[i] == test->y[i];
        acc_sum += (double)ok / (double)test->n;
    }
    double t = xb_now() - t0;
    double flop = 0;
    for (int l = 0; l < base->n_layers; l++)
        flop += 2.0 * (double)base->layers[l].rows * (double)base->layers[l].cols;
    double ips = (double)(trials * test->n) / t;
    printf("bench_behavioral: 784-100-10 sigmoid, %zu trials x %zu test images, fresh C2C (ar=1, sigma=0.1)\n",
           trials, test->n);
    printf("  wall time                %10.2f s  (perturbation and conductance update: %.2f s)\n", t, t_perturb);
    printf("  inferences               %10.0f /s  (%.2f GFLOP/s at %.0f flop/inference)\n", ips, ips * flop / 1e9,
           flop);
    printf("  mean accuracy            %10.4f\n", acc_sum / (double)trials);
    printf("  GEMM 1024^3              %10.2f GFLOP/s\n", g_big);
    printf("  GEMM 1024x%zux%zu       %10.2f GFLOP/s\n", base->layers[0].rows, base->layers[0].cols, g_shape);
    printf("  ratio behavioral/GEMM peak  %7.3f\n", ips * flop / 1e9 / g_big);
    printf("  ratio behavioral/GEMM shape %7.3f\n", ips * flop / 1e9 / g_shape);
    printf("  projected 100 trials     %10.1f s  (target < 60 s: %s)\n", 100 * t / (double)trials,
           100 * t / (double)trials < 60 ? "met" : "missed");
    free(pred);
    gsl_rng_free(rng);
    xb_behav_free(&b);
    xb_chip_free(&chip);
    xb_chip_free(&base);
    xb_mlp_free(&m);
    xb_dataset_free(&test);
    return 0;
}
