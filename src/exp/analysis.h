// analysis: a finished testbench's figures and statistics: sweep plots, midpoint noise level fits, Spearman and Kruskal-Wallis tables
#ifndef XB_ANALYSIS_H
#define XB_ANALYSIS_H

#include <stddef.h>

#include "error.h"
#include "testbench.h"

/* Statistics of one point and one backend over its Monte Carlo trials (accuracies as fractions). */
typedef struct xb_summary_row {
    size_t point;                    /* 0-based */
    unsigned backend;                /* one XB_BACKEND_* bit */
    size_t trials, images;
    unsigned long seed;              /* the point's montecarlo seed */
    double synapses, layers, neurons; /* of the point's network: weights + biases, weight layers, hidden units */
    double acc_mean, acc_std;
    double acc_lo, acc_hi;           /* 95% t-interval of the mean over trials; with one trial the Wilson interval */
    double wilson_lo, wilson_hi;     /* Wilson interval of all trials' classifications pooled */
    double dacc_mean, dacc_std;      /* dACC = ACC - ACC_ideal */
    double dacc_lo, dacc_hi;
} xb_summary_row;

typedef struct xb_analysis_ctx {
    const xb_tb *tb;
    const char *out;                 /* results folder: figures go to OUT/plots, tables to OUT/NAME.csv */
    const xb_summary_row *rows;
    size_t n_rows;
    int render;                      /* run gnuplot */
    int quiet;                       /* no result lines on stdout */
} xb_analysis_ctx;

/* Every <plot>, <midpoint>, <spearman> and <kruskal> of the testbench. */
int xb_analysis_run_all(const xb_analysis_ctx *a, xb_error *err);

/* The uncertainty of a mean accuracy a over T trials of N images each, as the midpoint fit weighs it:
 * sqrt(std^2 / T + a (1 - a) / N): the spread of the Monte Carlo mean plus the binomial uncertainty of
 * an accuracy measured on N images (which keeps it above zero when the trials agree). */
double xb_accuracy_uncertainty(double mean, double std, size_t trials, size_t images);

#endif
