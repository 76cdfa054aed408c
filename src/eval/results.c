// results: classification results as CSV files (summary, per class, confusion, per input)
#include "results.h"

#include <stdio.h>

#include "fileio.h"

void xb_class_result_tally(xb_class_result *r, xb_confusion *conf, const unsigned char *labels,
                           const int *pred, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xb_confusion_add(conf, labels[i], pred[i]);
    r->n = conf->n;
    r->correct = conf->correct;
    r->accuracy = xb_confusion_accuracy(conf);
    xb_wilson_ci(r->correct, r->n, XB_Z95, &r->ci95_lo, &r->ci95_hi);
}

double xb_class_result_delta(const xb_class_result *r, int b)
{
    return r[b].accuracy - r[0].accuracy;
}

int xb_results_write_classification(const char *dir, const xb_class_result *r, int n_backends,
                                    const xb_confusion *conf, const unsigned char *labels,
                                    const int *const *pred, size_t n, xb_error *err)
{
    char path[4200];
    xb_atomic_file f;
    int rc;
    int C = conf->n_classes;

    snprintf(path, sizeof path, "%s/summary.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "backend,samples,correct,accuracy,accuracy_ci95_lo,accuracy_ci95_hi,delta_accuracy\n");
    for (int b = 0; b < n_backends; b++)
        fprintf(f.fp, "%s,%zu,%zu,%.17g,%.17g,%.17g,%.17g\n", r[b].backend, r[b].n, r[b].correct, r[b].accuracy,
                r[b].ci95_lo, r[b].ci95_hi, xb_class_result_delta(r, b));
    if ((rc = xb_atomic_commit(&f, err)))
        return rc;

    snprintf(path, sizeof path, "%s/per_class.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "class,samples,correct,accuracy,unpredicted\n");
    for (int k = 0; k < C; k++) {
        size_t nk;
        double acc = xb_confusion_class_accuracy(conf, k, &nk);
        fprintf(f.fp, "%d,%zu,%zu,%.17g,%zu\n", k, nk, conf->counts[(size_t)k * (size_t)C + (size_t)k], acc,
                xb_confusion_unpredicted(conf, k));
    }
    if ((rc = xb_atomic_commit(&f, err)))
        return rc;

    snprintf(path, sizeof path, "%s/confusion.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "true_label");
    for (int k = 0; k < C; k++)
        fprintf(f.fp, ",pred_%d", k);
    fputc('\n', f.fp);
    for (int t = 0; t < C; t++) {
        fprintf(f.fp, "%d", t);
        for (int k = 0; k < C; k++)
            fprintf(f.fp, ",%zu", conf->counts[(size_t)t * (size_t)C + (size_t)k]);
        fputc('\n', f.fp);
    }
    if ((rc = xb_atomic_commit(&f, err)))
        return rc;

    snprintf(path, sizeof path, "%s/predictions.csv", dir);
    if ((rc = xb_atomic_open(&f, path, err)))
        return rc;
    fprintf(f.fp, "index,label");
    for (int b = 0; b < n_backends; b++)
        fprintf(f.fp, ",pred_%s", r[b].backend);
    fputc('\n', f.fp);
    for (size_t i = 0; i < n; i++) {
        fprintf(f.fp, "%zu,%d", i, labels[i]);
        for (int b = 0; b < n_backends; b++)
            fprintf(f.fp, ",%d", pred[b][i]);
        fputc('\n', f.fp);
    }
    return xb_atomic_commit(&f, err);
}
