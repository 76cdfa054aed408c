// train_out: `xbarsim train` after its options: train a network, test it, save its weights and sidecars
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fileio.h"
#include "hwtrain.h"
#include "json.h"
#include "progress.h"
#include "train_out.h"
#include "weights.h"

static int write_log(const char *path, const xb_epoch_stats *st, size_t n, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    fprintf(f.fp, "epoch,learning_rate,loss,train_accuracy,val_accuracy,seconds\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f.fp, "%zu,%.17g,%.17g,%.17g,%.17g,%.6f\n", st[i].epoch, st[i].lr, st[i].loss,
                st[i].train_acc, st[i].val_acc, st[i].seconds);
    return xb_atomic_commit(&f, err);
}

static int write_sidecar(const char *path, const xb_provenance *prov, const xb_mlp *m,
                         const xb_train_options *o, const xb_hwtrain *hw, const char *spec, size_t n_train, const xb_epoch_stats *st,
                         double test_acc, size_t n_test, double seconds, int blas_threads, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    xb_json j;
    char desc[1024];
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_object_begin(&j, "network");
    xb_json_string(&j, "architecture", xb_mlp_describe(m, desc, sizeof desc));
    xb_json_array_begin(&j, "sizes");
    for (int k = 0; k <= m->n_layers; k++)
        xb_json_int(&j, NULL, (long long)m->sizes[k]);
    xb_json_array_end(&j);
    if (m->conv) {
        char layers[1024];
        xb_json_string(&j, "layers", xb_mlp_layers_string(m, layers, sizeof layers));
        xb_json_array_begin(&j, "input");
        xb_json_int(&j, NULL, (long long)m->conv[0].in_h);
        xb_json_int(&j, NULL, (long long)m->conv[0].in_w);
        xb_json_int(&j, NULL, (long long)m->conv[0].in_c);
        xb_json_array_end(&j);
        xb_json_int(&j, "synapses", (long long)xb_mlp_synapses(m));
    }
    xb_json_string(&j, "hidden_activation", m->n_layers > 1 ? xb_activation_name(m->act[0]) : NULL);
    xb_json_int(&j, "parameters", (long long)xb_mlp_param_count(m));
    xb_json_object_end(&j);
    xb_json_object_begin(&j, "training");
    xb_json_string(&j, "dataset", spec);
    xb_json_int(&j, "train_samples", (long long)n_train);
    xb_json_int(&j, "epochs", (long long)o->epochs);
    xb_json_int(&j, "batch", (long long)o->batch);
    xb_json_number(&j, "learning_rate", o->lr);
    if (o->optimizer != XB_OPT_SGD) {
        xb_json_string(&j, "optimizer", xb_optimizer_name(o->optimizer));
        xb_json_number(&j, "adam_beta1", o->adam_beta1);
        xb_json_number(&j, "adam_beta2", o->adam_beta2);
        xb_json_number(&j, "adam_eps", o->adam_eps);
    } else {
        xb_json_number(&j, "momentum", o->momentum);
    }
    if (o->dropout > 0)
        xb_json_number(&j, "dropout", o->dropout);
    if (o->grad_clip > 0)
        xb_json_number(&j, "grad_clip_norm", o->grad_clip);
    xb_json_number(&j, "weight_decay", o->weight_decay);
    xb_json_number(&j, "lr_decay", o->lr_decay);
    xb_json_int(&j, "lr_step", (long long)o->lr_step);
    xb_json_number(&j, "val_fraction", o->val_fraction);
    xb_json_int(&j, "blas_threads", blas_threads);
    xb_json_number(&j, "seconds", seconds);
    xb_json_number(&j, "final_loss", st[o->epochs - 1].loss);
    xb_json_number(&j, "final_train_accuracy", st[o->epochs - 1].train_acc);
    xb_json_number(&j, "final_val_accuracy", st[o->epochs - 1].val_acc);
    if (xb_hwtrain_active(hw))
        xb_hwtrain_write_json(hw, o->seed, &j, "hardware_aware");
    xb_json_object_end(&j);
    xb_json_object_begin(&j, "test");
    xb_json_int(&j, "samples", (long long)n_test);
    xb_json_number(&j, "accuracy", test_acc);
    xb_json_object_end(&j);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

int xb_train_write_results(const char *stem, const xb_provenance *prov, const xb_mlp *m,
                              const xb_train_options *o, const xb_hwtrain *hw, const char *dataset,
                              int blas_threads, const xb_epoch_stats *st, const xb_train_outcome *r, xb_error *err)
{
    char path[4200];
    int rc;
    snprintf(path, sizeof path, "%s.train.csv", stem);
    if ((rc = write_log(path, st, o->epochs, err)))
        return rc;
    snprintf(path, sizeof path, "%s.json", stem);
    return write_sidecar(path, prov, m, o, hw, dataset, r->n_train, st, r->test_acc, r->n_test, r->seconds,
                         blas_threads, err);
}

int xb_train_and_save(const xb_train_spec *s, xb_provenance *prov, xb_train_outcome *r, xb_error *err)
{
    const xb_train_options *o = s->o;
    const char *spec = s->dataset;
    xb_dataset *train = NULL, *test = NULL;
    xb_mlp *m = NULL;
    xb_epoch_stats *st = NULL;
    int *pred = NULL;
    int rc = xb_dataset_load(spec, XB_SPLIT_TRAIN, &train, err);
    if (!rc)
        rc = xb_dataset_load(spec, XB_SPLIT_TEST, &test, err);
    if (rc)
        goto done;
    if (s->limit)
        xb_dataset_truncate(train, s->limit);
    xb_provenance_add_input(prov, "train_images", train->images_path, train->images_sha256, err);
    xb_provenance_add_input(prov, "train_labels", train->labels_path, train->labels_sha256, err);
    xb_provenance_add_input(prov, "test_images", test->images_path, test->images_sha256, err);
    xb_provenance_add_input(prov, "test_labels", test->labels_path, test->labels_sha256, err);

    size_t sizes[34], classes = (size_t)(train->n_classes > test->n_classes ? train->n_classes : test->n_classes);
    if (s->layers) {
        xb_layer_spec ls[XB_MAX_LAYERS];
        int nl = 0;
        if ((rc = xb_layer_list_parse(s->layers, "--layers", ls, XB_MAX_LAYERS - 1, &nl, err)))
            goto done;
        ls[nl++] = (xb_layer_spec){.units = classes};
        if (!(m = xb_net_new(train->rows, train->cols, 1, nl, ls, s->act, err))) {
            rc = err->code ? err->code : XB_EINPUT;
            goto done;
        }
    } else {
        sizes[0] = train->dim;
        for (int k = 0; k < s->n_hidden; k++)
            sizes[k + 1] = s->hidden[k];
        sizes[s->n_hidden + 1] = classes;
        m = xb_mlp_new(s->n_hidden + 1, sizes, s->act);
    }
    st = calloc(o->epochs, sizeof *st);
    pred = malloc(test->n * sizeof *pred);
    if (!m || !st || !pred) {
        rc = xb_fail(err, XB_ENOMEM, "out of memory");
        goto done;
    }
    char desc[1024];
    if (!o->quiet)
        fprintf(stderr, "training %s on %s (%zu images), %zu epochs, batch %zu, lr %g, momentum %g, seed %lu\n",
                xb_mlp_describe(m, desc, sizeof desc), spec, train->n, o->epochs, o->batch, o->lr, o->momentum,
                o->seed);
    double t0 = xb_now();
    if ((rc = xb_hwtrain_train(m, train, o, s->hw, st, err)))
        goto done;
    r->seconds = xb_now() - t0;
    if ((rc = xb_mlp_predict(m, test->x, test->n, pred, err)))
        goto done;
    r->correct = 0;
    for (size_t i = 0; i < test->n; i++)
        r->correct += pred[i] == test->y[i];
    r->n_train = train->n;
    r->n_test = test->n;
    r->test_acc = (double)r->correct / (double)test->n;

    char stem[4096];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(s->out) - 4), s->out);
    if ((rc = xb_weights_save_npz(m, s->out, s->float32 ? XB_DT_F4 : XB_DT_F8, err)))
        goto done;
    rc = xb_train_write_results(stem, prov, m, o, s->hw, spec, s->blas_threads, st, r, err);
done:
    free(pred);
    free(st);
    xb_mlp_free(&m);
    xb_dataset_free(&train);
    xb_dataset_free(&test);
    return rc;
}
