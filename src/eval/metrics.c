// metrics: accuracy, confidence intervals and confusion matrices of classifications
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_cdf.h>

void xb_wilson_ci(size_t k, size_t n, double z, double *lo, double *hi)
{
    if (n == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / (1 + z2 / nn);
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

xb_confusion *xb_confusion_new(int n_classes)
{
    if (n_classes < 1)
        return NULL;
    xb_confusion *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n_classes = n_classes;
    c->counts = calloc((size_t)n_classes * (size_t)n_classes, sizeof *c->counts);
    c->label_n = calloc((size_t)n_classes, sizeof *c->label_n);
    if (!c->counts || !c->label_n) {
        free(c->counts);
        free(c->label_n);
        free(c);
        return NULL;
    }
    return c;
}

void xb_confusion_free(xb_confusion **c)
{
    if (!c || !*c)
        return;
    free((*c)->counts);
    free((*c)->label_n);
    free(*c);
    *c = NULL;
}

void xb_confusion_add(xb_confusion *c, int label, int pred)
{
    c->n++;
    if (label < 0 || label >= c->n_classes)
        return;
    c->label_n[label]++;
    if (pred >= 0 && pred < c->n_classes)
        c->counts[(size_t)label * (size_t)c->n_classes + (size_t)pred]++;
    c->correct += label == pred;
}

double xb_confusion_accuracy(const xb_confusion *c)
{
    return c->n ? (double)c->correct / (double)c->n : NAN;
}

double xb_confusion_class_accuracy(const xb_confusion *c, int label, size_t *n_label)
{
    size_t tot = c->label_n[label];
    if (n_label)
        *n_label = tot;
    return tot ? (double)c->counts[(size_t)label * (size_t)c->n_classes + (size_t)label] / (double)tot : NAN;
}

size_t xb_confusion_unpredicted(const xb_confusion *c, int label)
{
    size_t in_columns = 0;
    for (int j = 0; j < c->n_classes; j++)
        in_columns += c->counts[(size_t)label * (size_t)c->n_classes + (size_t)j];
    return c->label_n[label] - in_columns;
}

void xb_mcnemar(size_t b, size_t c, double *stat, double *p)
{
    size_t n = b + c;
    if (n == 0) {
        *stat = 0;
        *p = 1;
        return;
    }
    double d = fabs((double)b - (double)c) - 1;
    *stat = d > 0 ? d * d / (double)n : 0;
    if (n < 25) {
        size_t k = b < c ? b : c;
        double pv = 2 * gsl_cdf_binomial_P((unsigned)k, 0.5, (unsigned)n);
        *p = pv < 1 ? pv : 1;
    } else {
        *p = gsl_cdf_chisq_Q(*stat, 1);
    }
}

size_t xb_count_correct(const int *pred, const unsigned char *labels, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += pred[i] == labels[i];
    return k;
}

void xb_paired_compare(const int *a, const int *b, const unsigned char *labels, size_t n, xb_paired *out)
{
    out->agree = out->only_a = out->only_b = 0;
    for (size_t i = 0; i < n; i++) {
        int ok_a = a[i] == labels[i], ok_b = b[i] == labels[i];
        out->agree += a[i] == b[i];
        out->only_a += ok_a && !ok_b;
        out->only_b += !ok_a && ok_b;
    }
    xb_mcnemar(out->only_a, out->only_b, &out->stat, &out->p);
}
