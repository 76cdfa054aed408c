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

/* Tally predictions into a confusion matrix and summary. conf must have room for the labels. */
void xb_class_result_tally(xb_class_result *r, xb_confusion *conf, const unsigned char *labels,
                           const int *pred, size_t n);

/* Write DIR/summary.csv, DIR/per_class.csv, DIR/confusion.csv and DIR/predictions.csv, each atomically.
 * index0: dataset index of the first input (predictions.csv names inputs by dataset index). */
int xb_results_write_classification(const char *dir, const xb_class_result *r, const xb_confusion *conf,
                                    const unsigned char *labels, const int *pred, size_t n, size_t index0,
                                    xb_error *err);

#endif
