// results: classification results as CSV files (summary, per class, confusion, per input)
#ifndef XB_RESULTS_H
#define XB_RESULTS_H

#include <stddef.h>

#include "error.h"
#include "metrics.h"

/* Accuracy summary of one backend's predictions. */
typedef struct xb_class_result {
    const char *backend;
    size_t n, correct;
    double accuracy, ci95_lo, ci95_hi; /* Wilson interval */
} xb_class_result;

/* dACC of backend b against the first backend (the ideal software run): ACC_b - ACC_0. */
double xb_class_result_delta(const xb_class_result *r, int b);

/* Tally predictions into a confusion matrix and summary. conf must have room for the labels. */
void xb_class_result_tally(xb_class_result *r, xb_confusion *conf, const unsigned char *labels,
                           const int *pred, size_t n);

/* Write, each atomically: DIR/summary.csv (one row per backend: backend,samples,correct,accuracy,
 * accuracy_ci95_lo,accuracy_ci95_hi,delta_accuracy, the last against the first backend),
 * DIR/predictions.csv (one row per input, a prediction column per backend), and DIR/per_class.csv
 * (class,samples,correct,accuracy,unpredicted), DIR/confusion.csv of the last backend.
 * pred[b] holds backend b's n predictions; conf is the last backend's confusion matrix. */
int xb_results_write_classification(const char *dir, const xb_class_result *r, int n_backends,
                                    const xb_confusion *conf, const unsigned char *labels,
                                    const int *const *pred, size_t n, xb_error *err);

#endif
