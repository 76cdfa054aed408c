// cmd_eval: `xbarsim eval`, classify a test split with trained weights and write the results
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "fileio.h"
#include "json.h"
#include "mlp.h"
#include "progress.h"
#include "provenance.h"
#include "results.h"
#include "weights.h"

static const char usage[] =
    "usage: xbarsim eval --weights FILE [options]\n"
    "\n"
    "Classify the test split with trained weights and write, under the output folder:\n"
    "summary.csv (accuracy with its 95% Wilson interval), per_class.csv, confusion.csv,\n"
    "predictions.csv (one row per input) and run.json (provenance: versions, command line,\n"
    "input hashes). Every file is written to a temporary name and renamed when complete.\n"
    "\n"
    "  -w, --weights FILE        weights.npz, or W1.npy,b1.npy,W2.npy,b2.npy,... (W_k: (fan_in, fan_out))\n"
    "  -d, --dataset NAME|PATH   mnist (default), fashion-mnist, or a folder with the four IDX files\n"
    "  -B, --backend NAME        ideal (default): floating-point software inference\n"
    "  -a, --activation NAME     hidden activation when the weights file does not record it\n"
    "      --limit N             only the first N test images\n"
    "  -o, --out DIR             output folder (default results/eval/WEIGHTS-BACKEND)\n"
    "  -j, --threads N           BLAS threads (default: the library's)\n"
    "  -q, --quiet               print only the result line\n"
    "\n"
    "example: xbarsim eval --weights results/weights/mnist-slp-s1.npz --backend ideal\n";

enum { O_LIMIT = 1000 };

static int write_run_json(const char *dir, const xb_provenance *prov, const xb_mlp *m, const char *spec,
                          const xb_class_result *r, double seconds, xb_error *err)
{
    char path[4200], desc[256];
    snprintf(path, sizeof path, "%s/run.json", dir);
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    xb_json j;
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_string(&j, "network", xb_mlp_describe(m, desc, sizeof desc));
    xb_json_string(&j, "dataset", spec);
    xb_json_string(&j, "split", "test");
    xb_json_object_begin(&j, "result");
    xb_json_string(&j, "backend", r->backend);
    xb_json_int(&j, "samples", (long long)r->n);
    xb_json_int(&j, "correct", (long long)r->correct);
    xb_json_number(&j, "accuracy", r->accuracy);
    xb_json_number(&j, "accuracy_ci95_lo", r->ci95_lo);
    xb_json_number(&j, "accuracy_ci95_hi", r->ci95_hi);
    xb_json_number(&j, "seconds", seconds);
    xb_json_object_end(&j);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

static int run(int argc, char **argv)
{
    const char *spec = "mnist", *weights = NULL, *backend = "ideal", *act_s = NULL, *out = NULL;
    size_t limit = 0, threads = 0;
    int quiet = 0;
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"backend", required_argument, 0, 'B'}, {"activation", required_argument, 0, 'a'},
        {"limit", required_argument, 0, O_LIMIT}, {"out", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'}, {0, 0, 0, 0}};
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":w:d:B:a:o:j:q", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': spec = optarg; break;
        case 'B': backend = optarg; break;
        case 'a': act_s = optarg; break;
        case O_LIMIT: bad = xb_cli_size("eval", "--limit", optarg, 1, (size_t)1 << 40, &limit); break;
        case 'o': out = optarg; break;
        case 'j': bad = xb_cli_size("eval", "--threads", optarg, 1, 1024, &threads); break;
        case 'q': quiet = 1; break;
        case ':': return xb_cli_usage_error("eval", "option %s needs a value", opt);
        default: return xb_cli_usage_error("eval", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind < argc)
        return xb_cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!weights)
        return xb_cli_usage_error("eval", "--weights is required (an .npz file or W1.npy,b1.npy,...)");
    if (strcmp(backend, "ideal"))
        return xb_cli_usage_error("eval", "--backend '%s': this build offers: ideal", backend);
    int hidden = -1;
    if (act_s && (hidden = xb_activation_parse(act_s)) < 0)
        return xb_cli_usage_error("eval", "--activation '%s': expected sigmoid, relu or identity", act_s);
    xb_cli_set_threads((int)threads);

    char out_buf[4096];
    if (!out) {
        char wcopy[4096];
        snprintf(wcopy, sizeof wcopy, "%s", weights);
        char *comma = strchr(wcopy, ',');
        if (comma)
            *comma = '\0';
        char *base = basename(wcopy), *dot = strrchr(base, '.');
        if (dot)
            *dot = '\0';
        snprintf(out_buf, sizeof out_buf, "results/eval/%s-%s", base, backend);
        out = out_buf;
    }

    xb_error err = {0};
    xb_provenance prov;
    xb_provenance_init(&prov, argc, argv);
    xb_mlp *m = NULL;
    xb_dataset *test = NULL;
    xb_confusion *conf = NULL;
    int *pred = NULL;
    int rc = xb_weights_load(weights, hidden, &m, &err);
    if (!rc)
        rc = xb_dataset_load(spec, XB_SPLIT_TEST, &test, &err);
    if (rc)
        goto done;
    if (limit)
        xb_dataset_truncate(test, limit);
    if (m->sizes[0] != test->dim) {
        rc = xb_fail(&err, XB_EINPUT, "%s: the network takes %zu inputs (W1 has %zu rows) but %s images have "
                     "%zu pixels", weights, m->sizes[0], m->sizes[0], spec, test->dim);
        goto done;
    }
    if (m->sizes[m->n_layers] < (size_t)test->n_classes) {
        rc = xb_fail(&err, XB_EINPUT, "%s: the network has %zu outputs but %s has %d classes", weights,
                     m->sizes[m->n_layers], spec, test->n_classes);
        goto done;
    }
    if (strchr(weights, ','))
        xb_provenance_add_input(&prov, "weights", weights, "(several .npy files)", &err);
    else if ((rc = xb_provenance_add_input(&prov, "weights", weights, NULL, &err)))
        goto done;
    xb_provenance_add_input(&prov, "test_images", test->images_path, test->images_sha256, &err);
    xb_provenance_add_input(&prov, "test_labels", test->labels_path, test->labels_sha256, &err);

    pred = malloc(test->n * sizeof *pred);
    conf = xb_confusion_new((int)m->sizes[m->n_layers]);
    if (!pred || !conf) {
        rc = xb_fail(&err, XB_ENOMEM, "out of memory");
        goto done;
    }
    double t0 = xb_now();
    if ((rc = xb_mlp_predict(m, test->x, test->n, pred, &err)))
        goto done;
    double seconds = xb_now() - t0;
    xb_class_result r = {.backend = backend};
    xb_class_result_tally(&r, conf, test->y, pred, test->n);
    if ((rc = xb_results_write_classification(out, &r, conf, test->y, pred, test->n, 0, &err)))
        goto done;
    if ((rc = write_run_json(out, &prov, m, spec, &r, seconds, &err)))
        goto done;
    char desc[256];
    if (!quiet)
        fprintf(stderr, "%s, %s backend, %zu test images of %s\n", xb_mlp_describe(m, desc, sizeof desc),
                backend, test->n, spec);
    printf("accuracy %.2f%% (%zu/%zu, 95%% CI %.2f-%.2f%%) -> %s/\n", 100 * r.accuracy, r.correct, r.n,
           100 * r.ci95_lo, 100 * r.ci95_hi, out);
done:
    free(pred);
    xb_confusion_free(&conf);
    xb_mlp_free(&m);
    xb_dataset_free(&test);
    return xb_cli_fail("eval", rc, &err);
}

const xb_command xb_cmd_eval = {"eval", run, "classify the test split with trained weights (backend: ideal)",
                                usage};
