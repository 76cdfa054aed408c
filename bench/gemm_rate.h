// gemm_rate: this machine's DGEMM rate, measured in the run that compares against it
#ifndef XB_GEMM_RATE_H
#define XB_GEMM_RATE_H

#include <stdlib.h>

#include <gsl/gsl_cblas.h>

#include "progress.h"

/* GFLOP/s of C = A B for an m x k by k x n product, best of five timed batches. */
static inline double gemm_rate(int m, int n, int k)
{
    double *A = calloc((size_t)m * k, sizeof *A), *B = calloc((size_t)k * n, sizeof *B),
           *C = calloc((size_t)m * n, sizeof *C);
    for (int i = 0; i < m * k; i++)
        A[i] = 1e-3 * (i % 97);
    for (int i = 0; i < k * n; i++)
        B[i] = 1e-3 * (i % 89);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        int inner = 1 + (int)(2e8 / (2.0 * m * n * k));
        double t0 = xb_now();
        for (int r = 0; r < inner; r++)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0, A, k, B, n, 0.0, C, n);
        double t = (xb_now() - t0) / inner;
        if (t < best)
            best = t;
    }
    free(A), free(B), free(C);
    return 2.0 * m * n * k / best / 1e9;
}

#endif
