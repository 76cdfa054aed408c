// bench_train: training throughput of 784-100-10 on MNIST against this machine's GEMM rate, and the
// cost of hardware-aware training as a ratio to plain training in the same run
//
// usage: bench_train [epochs] [dataset] [batch] [repeats]   (defaults: 2 epochs, mnist, 32, 1)
//        bench_train parts [batch] [calls]   (defaults: 32, 500)
//        bench_train robust WEIGHTS.npz SIGMA DRAWS [dataset]
// The first prints samples/s, the GEMM rate measured in the same run, their ratio, the projected time
// of the 15-epoch training run (target: under 3 minutes on a 2-core machine), then the time of one
// epoch of 784-100-10 ReLU plain, noised (lognormal sigma 0.6), quantization-aware (bits:4) and both,
// each as a ratio to plain (target: at most 1.5), and noised again with the noise helper thread forced
// off and forced on (the default runs it where the thread can be started; while it runs and BLAS's
// threads would take every core, BLAS runs with one fewer: xb_hwtrain_session_lend_core), and the CPU time
// of all threads as the same ratios; with repeats, the six runs interleaved that many times and the
// fastest of each kept.
// parts times one batch's pieces without data loading: the plain pass, and the forward network's build
// (the noise drawn in line, no helper thread) and the master-gradient step of each hardware-aware
// setting, on each path of the noise draws the CPU has (AVX-512, AVX2, baseline; the fastest of 10 blocks
// of calls / 10);
// then the lognormal build with the caller idle for a plain pass between builds, helper thread on and off.
// The second scores a weights file on the test split under lognormal weight noise of std SIGMA (every
// weight and bias, xb_perturb_apply, one draw per layer array per trial, mt19937 seeded 1): mean, std,
// min and max accuracy over DRAWS draws and the clean accuracy (results/README.md, "Training for the
// hardware").
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "dataset.h"
#include "gemm_rate.h"
#include "hwtrain.h"
#include "mlp.h"
#include "perturb.h"
#include "progress.h"
#include "train.h"
#include "weights.h"

static double accuracy(const xb_mlp *m, const xb_dataset *t, int *pred)
{
    xb_error err = {0};
    xb_mlp_predict(m, t->x, t->n, pred, &err);
    size_t ok = 0;
    for (size_t i = 0; i < t->n; i++)
        ok += pred[i] == t->y[i];
    return (double)ok / (double)t->n;
}

static int robust(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_train robust WEIGHTS.npz SIGMA DRAWS [dataset]\n");
        return 2;
    }
    double sigma = atof(argv[3]);
    int draws = atoi(argv[4]);
    const char *spec = argc > 5 ? argv[5] : "mnist";
    xb_error err = {0};
    xb_mlp *m = NULL;
    xb_dataset *t = NULL;
    if (xb_weights_load(argv[2], -1, &m, &err) || xb_dataset_load(spec, XB_SPLIT_TEST, &t, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    int *pred = malloc(t->n * sizeof *pred);
    xb_mlp *p = xb_mlp_clone(m);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    xb_perturb ln = {.kind = XB_PERTURB_LOGNORMAL, .sigma = sigma};
    double sum = 0, sq = 0, lo = 1, hi = 0;
    for (int d = 0; d < draws; d++) {
        for (int k = 0; k < m->n_layers; k++) {
            size_t nw = xb_mlp_n_weights(m, k), nb = xb_mlp_fan_out(m, k);
            memcpy(p->W[k], m->W[k], nw * sizeof **p->W);
            memcpy(p->b[k], m->b[k], nb * sizeof **p->b);
            xb_perturb_apply(&ln, rng, p->W[k], nw, NULL, &err);
            xb_perturb_apply(&ln, rng, p->b[k], nb, NULL, &err);
        }
        double a = accuracy(p, t, pred);
        sum += a, sq += a * a;
        lo = fmin(lo, a), hi = fmax(hi, a);
    }
    double mean = sum / draws, sd = draws > 1 ? sqrt(fmax(0, (sq - draws * mean * mean) / (draws - 1))) : 0;
    printf("%s: clean %.2f%%, lognormal sigma %g over %d draws: mean %.2f%% std %.2f min %.2f max %.2f\n",
           argv[2], 100 * accuracy(m, t, pred), sigma, draws, 100 * mean, 100 * sd, 100 * lo, 100 * hi);
    gsl_rng_free(rng);
    xb_mlp_free(&p);
    xb_mlp_free(&m);
    xb_dataset_free(&t);
    free(pred);
    return 0;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds of training 784-100-10 ReLU with hw (NULL: plain), the noise helper thread as the session
 * decides (helper -1), off (0) or on (1); *cpu: the process's CPU seconds (all its threads: the noise
 * helper's too). */
static double time_hw(const xb_dataset *d, size_t epochs, size_t batch, const char *noise, const char *levels,
                      int helper, double *cpu)
{
    size_t sizes[3] = {784, 100, 10};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_RELU);
    xb_train_options o;
    xb_train_defaults(&o);
    o.epochs = epochs;
    o.batch = batch;
    o.lr = 0.01;
    o.quiet = 1;
    xb_error err = {0};
    xb_hwtrain hw;
    if (xb_hwtrain_parse(&hw, 2, noise, levels, NULL, INFINITY, 0, NULL, NULL, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        exit(1);
    }
    double t0 = xb_now(), c0 = cpu_now();
    int rc;
    if (helper < 0 || !xb_hwtrain_active(&hw))
        rc = xb_hwtrain_train(m, d, &o, &hw, NULL, &err);
    else { /* xb_hwtrain_train's steps, the noise helper thread forced on or off */
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, o.seed);
        xb_train_hooks hooks;
        xb_hwtrain_hooks(s, &hooks);
        xb_hwtrain_session_prefetch(s, helper);
        o.hooks = &hooks;
        int lent = xb_hwtrain_session_lend_core(s); /* as xb_hwtrain_train, when the helper runs */
        rc = xb_train(m, d, &o, NULL, &err);
        xb_hwtrain_return_core(lent);
        if (!rc)
            rc = xb_hwtrain_deploy(&hw, m, &err);
        xb_hwtrain_session_free(&s);
    }
    if (rc) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        exit(1);
    }
    double t = xb_now() - t0;
    *cpu = cpu_now() - c0;
    xb_hwtrain_clear(&hw);
    xb_mlp_free(&m);
    return t;
}

/* Microseconds per call of one batch's parts, 784-100-10 ReLU at batch size batch: the plain pass
 * (forward and backward), and for each hardware-aware setting the forward network's build and the
 * master-gradient step, with ns per weight and bias. */
static int parts(size_t batch, int reps)
{
    size_t sizes[3] = {784, 100, 10};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_RELU), *fwd = NULL, *grad = NULL;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 1);
    xb_mlp_init(m, rng);
    fwd = xb_mlp_clone(m);
    grad = xb_mlp_clone(m);
    double *X = malloc(batch * 784 * sizeof *X);
    unsigned char *y = malloc(batch);
    for (size_t i = 0; i < batch * 784; i++)
        X[i] = gsl_rng_uniform(rng);
    for (size_t i = 0; i < batch; i++)
        y[i] = (unsigned char)(i % 10);
    xb_mlp_work *w = xb_mlp_work_new(m, batch);
    double P = (double)xb_mlp_param_count(m);
    double t0, t_pass = 1e9; /* the fastest of 10 blocks of reps / 10 calls: the machine may be shared */
    for (int blk = 0; blk < 10; blk++) {
        t0 = xb_now();
        for (int r = 0; r < reps / 10; r++)
            xb_mlp_loss_grad(m, X, y, batch, grad, NULL, w);
        t_pass = fmin(t_pass, (xb_now() - t0) / (reps / 10));
    }
    printf("bench_train parts: 784-100-10 relu, batch %zu, %.0f weights and biases, %d calls each\n", batch, P,
           reps);
    printf("  plain pass (forward + backward)  %8.1f us  (%.2f ns per weight)\n", 1e6 * t_pass, 1e9 * t_pass / P);
    const char *cfg[][2] = {{"lognormal:sigma=0.6", "none"}, {"mult:alpha=0.3", "none"}, {"none", "bits:4"},
                            {"lognormal:sigma=0.6", "bits:4"}};
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        xb_error err = {0};
        xb_hwtrain hw;
        if (xb_hwtrain_parse(&hw, 2, cfg[c][0], cfg[c][1], NULL, INFINITY, 0, NULL, NULL, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 1);
        xb_hwtrain_session_prefetch(s, 0); /* the drawing in line: its cost, not a wait for the helper */
        const char *path_name[3] = {"baseline", "avx2", "avx512"};
        int shown = -1;
        for (int level = 2; level >= 0; level--) {
            int path = xb_hwtrain_session_simd(s, level);
            if (path == shown)
                continue; /* the CPU lacks that instruction set: the narrower path ran above */
            shown = path;
            double t_fwd = 1e9, t_grad = 1e9;
            for (int blk = 0; blk < 10; blk++) {
                t0 = xb_now();
                for (int r = 0; r < reps / 10; r++)
                    xb_hwtrain_forward(s, m, fwd, 0, &err);
                t_fwd = fmin(t_fwd, (xb_now() - t0) / (reps / 10));
                t0 = xb_now();
                for (int r = 0; r < reps / 10; r++)
                    xb_hwtrain_master_grad(s, grad);
                t_grad = fmin(t_grad, (xb_now() - t0) / (reps / 10));
            }
            printf("  %-19s %-7s %-8s build %7.1f us (%.2f ns/weight)  master grad %6.1f us  sum/plain %.2f\n",
                   cfg[c][0], cfg[c][1], path_name[path], 1e6 * t_fwd, 1e9 * t_fwd / P, 1e6 * t_grad,
                   (t_fwd + t_grad) / t_pass);
        }
        xb_hwtrain_session_free(&s);
        xb_hwtrain_clear(&hw);
    }
    /* The helper thread at work: between forward builds the caller sleeps for one plain pass (as if
     * BLAS ran), so a free core can draw the next pass's noise meanwhile. */
    xb_error err = {0};
    xb_hwtrain hw;
    xb_hwtrain_parse(&hw, 2, "lognormal:sigma=0.6", "none", NULL, INFINITY, 0, NULL, NULL, &err);
    for (int on = 1; on >= 0; on--) {
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 1);
        int helper = xb_hwtrain_session_prefetch(s, on);
        double t_fwd = 0;
        int calls = reps < 200 ? reps : 200;
        for (int r = 0; r < calls; r++) {
            usleep((useconds_t)(1e6 * t_pass));
            t0 = xb_now();
            xb_hwtrain_forward(s, m, fwd, 0, &err);
            t_fwd += xb_now() - t0;
        }
        printf("  lognormal, a pass's sleep between builds: build %7.1f us with the helper thread %s\n",
               1e6 * t_fwd / calls, helper ? "on" : "off");
        xb_hwtrain_session_free(&s);
    }
    xb_hwtrain_clear(&hw);
    xb_mlp_work_free(&w);
    free(X);
    free(y);
    gsl_rng_free(rng);
    xb_mlp_free(&m);
    xb_mlp_free(&fwd);
    xb_mlp_free(&grad);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "robust"))
        return robust(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "parts"))
        return parts(argc > 2 ? (size_t)atoi(argv[2]) : 32, argc > 3 ? atoi(argv[3]) < 10 ? 10 : atoi(argv[3]) : 500);
    size_t epochs = argc > 1 ? (size_t)atoi(argv[1]) : 2;
    const char *spec = argc > 2 ? argv[2] : "mnist";
    size_t batch = argc > 3 ? (size_t)atoi(argv[3]) : 32;
    int repeats = argc > 4 ? atoi(argv[4]) : 1;
    if (batch < 1 || repeats < 1) {
        fprintf(stderr, "bench_train: batch and repeats must be at least 1\n");
        return 2;
    }
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
    /* Hardware-aware training against plain training, same data, batch and thread count, this run. */
    /* repeats > 1: the six runs interleaved, the fastest of each (the machine may be shared) */
    const char *cfg[6][2] = {{"none", "none"}, {"lognormal:sigma=0.6", "none"}, {"none", "bits:4"},
                             {"lognormal:sigma=0.6", "bits:4"}, {"lognormal:sigma=0.6", "none"},
                             {"lognormal:sigma=0.6", "none"}};
    const int helper[6] = {-1, -1, -1, -1, 0, 1};
    double wall[6] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    double cpu[6] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
    for (int r = 0; r < repeats; r++)
        for (int c = 0; c < 6; c++) {
            double cc, tt = time_hw(d, 1, batch, cfg[c][0], cfg[c][1], helper[c], &cc);
            wall[c] = fmin(wall[c], tt);
            cpu[c] = fmin(cpu[c], cc);
        }
    double t_plain = wall[0], t_noise = wall[1], t_quant = wall[2], t_both = wall[3];
    int default_helper = 0;
    {
        xb_hwtrain hw;
        xb_hwtrain_parse(&hw, 2, "lognormal:sigma=0.6", "none", NULL, INFINITY, 0, NULL, NULL, &err);
        xb_hwtrain_session *s = xb_hwtrain_session_new(&hw, m, 1);
        default_helper = s && xb_hwtrain_session_prefetch(s, -1);
        xb_hwtrain_session_free(&s);
        xb_hwtrain_clear(&hw);
    }
    printf("bench_train: 784-100-10 relu, 1 epoch, batch %zu, hardware-aware training as a ratio to plain "
           "(fastest of %d)\n", batch, repeats);
    printf("  plain                    %10.2f s\n", t_plain);
    printf("  noised (lognormal 0.6)   %10.2f s  ratio %.2f  (target <= 1.5: %s)\n", t_noise, t_noise / t_plain,
           t_noise / t_plain <= 1.5 ? "met" : "missed");
    printf("  quantized (bits:4)       %10.2f s  ratio %.2f  (target <= 1.5: %s)\n", t_quant, t_quant / t_plain,
           t_quant / t_plain <= 1.5 ? "met" : "missed");
    printf("  both                     %10.2f s  ratio %.2f\n", t_both, t_both / t_plain);
    printf("  noised, no helper thread %10.2f s  ratio %.2f  (the next batch's noise drawn in line)\n", wall[4],
           wall[4] / t_plain);
    printf("  noised, helper thread on %10.2f s  ratio %.2f  (the default %s here)\n", wall[5], wall[5] / t_plain,
           default_helper ? "runs it" : "draws in line");
    printf("  CPU time (all threads)   plain %.2f s, noised ratio %.2f (no helper %.2f, helper %.2f), quantized %.2f, "
           "both %.2f\n", cpu[0], cpu[1] / cpu[0], cpu[4] / cpu[0], cpu[5] / cpu[0], cpu[2] / cpu[0], cpu[3] / cpu[0]);
    xb_mlp_free(&m);
    xb_dataset_free(&d);
    return 0;
}
