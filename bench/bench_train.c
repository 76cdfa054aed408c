// bench_train: training throughput of 784-100-10 on MNIST against this machine's GEMM rate
//
// usage: bench_train [epochs] [dataset]   (defaults: 2 epochs, mnist)
// Prints samples/s, the GEMM rate measured in the same run, their ratio, and the projected time
// of the 15-epoch training run (target: under 3 minutes on a 2-core machine).
#include <stdio.h>
#include <stdlib.h>

#include "dataset.h"
#include "gemm_rate.h"
#include "mlp.h"
#include "progress.h"
#include "train.h"

int main(int argc, char **argv)
{
    size_t epochs = argc > 1 ? (size_t)atoi(argv[1]) : 2;
    const char *spec = argc > 2 ? argv[2] : "mnist";
    xb_error err = {0};
    xb_dataset *d = NULL;
    if (xb_dataset_load(spec, XB_SPLIT_TRAIN, &d, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    double g_big = gemm_rate(1024, 1024, 1024);
    double g_batch = gemm_rate(32, 100, 784); /* the shape of one forward mini-batch */

    size_t sizes[3] = {784, 100, 10};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    xb_train_options o;
    xb_train_defaults(&o);
    o.epochs = epochs;
    o.quiet = 1;
    double t0 = xb_now();
    if (xb_train(m, d, &o, NULL, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    double t = xb_now() - t0;
    double sps = (double)(d->n * epochs) / t;
    /* Per sample: forward 2P, weight gradients 2P, and the input gradient of layer 2 only
     * (layer 1's input gradient is never needed). */
    double params = 784.0 * 100 + 100 * 10;
    double flops = 4.0 * params + 2.0 * 100 * 10;
    printf("bench_train: 784-100-10 sigmoid, batch %zu, %zu epochs of %zu images in %.2f s\n", o.batch, epochs,
           d->n, t);
    printf("  training throughput      %10.0f samples/s  (%.2f GFLOP/s at %.0f flop/sample)\n", sps,
           sps * flops / 1e9, flops);
    printf("  GEMM 1024^3              %10.2f GFLOP/s\n", g_big);
    printf("  GEMM 32x784 * 784x100    %10.2f GFLOP/s\n", g_batch);
    printf("  ratio training/GEMM peak %10.3f\n", sps * flops / 1e9 / g_big);
    printf("  ratio training/GEMM batch%10.3f\n", sps * flops / 1e9 / g_batch);
    printf("  projected 15 epochs      %10.1f s  (target < 180 s: %s)\n", 15 * 60000.0 / sps,
           15 * 60000.0 / sps < 180 ? "met" : "missed");
    xb_mlp_free(&m);
    xb_dataset_free(&d);
    return 0;
}
