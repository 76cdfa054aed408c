// metrics: accuracy, confidence intervals and confusion matrices of classifications
#ifndef XB_METRICS_H
#define XB_METRICS_H

#include <stddef.h>

/* Wilson score interval of k successes in n trials at normal quantile z (1.959963984540054 for 95%). */
void xb_wilson_ci(size_t k, size_t n, double z, double *lo, double *hi);

#define XB_Z95 1.959963984540054

typedef struct xb_confusion {
    int n_classes;
    size_t *counts;   /* n_classes x n_classes: row = true label, column = prediction */
    size_t n, correct;
    size_t *label_n;  /* n_classes: samples with each true label, predicted or not */
} xb_confusion;

xb_confusion *xb_confusion_new(int n_classes);
void xb_confusion_free(xb_confusion **c);
/* Predictions outside [0, n_classes) (-1: an input whose circuit solve failed) count as wrong: the
 * sample counts under its true label (label_n) but lands in no column of counts. */
void xb_confusion_add(xb_confusion *c, int label, int pred);
double xb_confusion_accuracy(const xb_confusion *c);
/* Recall of one class: correct / samples with that label, predicted or not (NaN if none). */
double xb_confusion_class_accuracy(const xb_confusion *c, int label, size_t *n_label);
/* Samples with this label whose prediction was no class (failed inputs). */
size_t xb_confusion_unpredicted(const xb_confusion *c, int label);

/* McNemar's test on paired classifications: b = inputs only the first got right, c = only the second.
 * Exact two-sided binomial p-value for b + c < 25, else the chi-square statistic with continuity
 * correction. *stat receives the chi-square statistic (0 when b + c = 0, p = 1). */
void xb_mcnemar(size_t b, size_t c, double *stat, double *p);

/* How many of n predictions equal their labels. */
size_t xb_count_correct(const int *pred, const unsigned char *labels, size_t n);

/* Two classifiers on the same inputs: agreements, the discordant pairs and McNemar's test on them. */
typedef struct xb_paired {
    size_t agree;        /* inputs both predict the same */
    size_t only_a, only_b; /* inputs only the first / only the second gets right */
    double stat, p;      /* xb_mcnemar(only_a, only_b) */
} xb_paired;
void xb_paired_compare(const int *a, const int *b, const unsigned char *labels, size_t n, xb_paired *out);

#endif
