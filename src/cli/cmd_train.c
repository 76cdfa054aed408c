// cmd_train: `xbarsim train`, train an SLP or MLP in software and save its weights
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "fileio.h"
#include "json.h"
#include "progress.h"
#include "provenance.h"
#include "train.h"
#include "weights.h"

static const char usage[] =
    "usage: xbarsim train [options]\n"
    "\n"
    "Train a single-layer perceptron or a multi-layer perceptron (softmax + cross-entropy, mini-batch\n"
    "SGD with momentum) and save its weights as .npz (arrays W1, b1, W2, b2, ...; W_k has shape\n"
    "(fan_in, fan_out)). Also writes STEM.train.csv (one row per epoch) and STEM.json (provenance,\n"
    "options, test accuracy). Same seed and thread count give bit-identical weights.\n"
    "\n"
    "  -d, --dataset NAME|PATH   mnist (default), fashion-mnist, or a folder with the four IDX files\n"
    "  -H, --hidden LIST         hidden layer sizes, e.g. 100 or 300,100; 'none' for the SLP (default 100)\n"
    "  -a, --activation NAME     hidden activation: sigmoid (default) or relu\n"
    "  -e, --epochs N            passes over the training set (default 15)\n"
    "  -b, --batch N             mini-batch size (default 32)\n"
    "      --lr X                initial learning rate (default: 0.01 for the SLP, 0.1 for a sigmoid MLP,\n"
    "                            0.01 for a ReLU MLP; He-normal init for ReLU layers, Glorot-uniform else)\n"
    "      --momentum X          momentum (default 0.9)\n"
    "      --weight-decay X      L2 penalty on weights (default 0)\n"
    "      --lr-decay X          multiply the learning rate by X every --lr-step epochs (default 1)\n"
    "      --lr-step N           epochs between decays (default 1)\n"
    "      --val-split X         fraction of the training set held out for validation (default 0)\n"
    "      --limit N             use only the first N training images (quick runs)\n"
    "  -s, --seed N              seed of initialisation and shuffling (default 1)\n"
    "  -j, --threads N           BLAS threads (default: the library's, usually the core count)\n"
    "  -o, --out FILE.npz        weights file (default results/weights/DATASET-ARCH-sSEED.npz)\n"
    "      --float32             store weights as float32 (default float64)\n"
    "  -q, --quiet               no progress output\n"
    "\n"
    "examples:\n"
    "  xbarsim train --hidden none --epochs 10 -o slp.npz          # SLP 784-10 on MNIST\n"
    "  xbarsim train --hidden 100 --activation sigmoid -o mlp.npz  # 784-100-10, 15 epochs\n"
    "  xbarsim train --dataset fashion-mnist --hidden 100 --activation relu   # ReLU, lr 0.01\n"
    "  xbarsim train --dataset fashion-mnist --hidden 300,100 --activation relu --val-split 0.1\n";

enum { O_LR = 1000, O_MOM, O_WD, O_DECAY, O_STEP, O_VAL, O_LIMIT, O_F32 };

static int parse_hidden(const char *s, size_t *sizes, int *n_hidden)
{
    *n_hidden = 0;
    if (!strcmp(s, "none") || !strcmp(s, "0") || !*s)
        return 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || (*end && *end != ',') || *n_hidden == 32)
            return xb_cli_usage_error("train", "--hidden '%s': expected sizes like 100 or 300,100, or 'none'",
                                      s);
        sizes[(*n_hidden)++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static const char *dataset_tag(const char *spec)
{
    return !strcmp(spec, "mnist") || !strcmp(spec, "fashion-mnist") ? spec : "custom";
}

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
                         const xb_train_options *o, const char *spec, size_t n_train, const xb_epoch_stats *st,
                         double test_acc, size_t n_test, double seconds, xb_error *err)
{
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (rc)
        return rc;
    xb_json j;
    char desc[256];
    xb_json_init(&j, f.fp);
    xb_json_object_begin(&j, NULL);
    xb_provenance_write(prov, &j);
    xb_json_object_begin(&j, "network");
    xb_json_string(&j, "architecture", xb_mlp_describe(m, desc, sizeof desc));
    xb_json_array_begin(&j, "sizes");
    for (int k = 0; k <= m->n_layers; k++)
        xb_json_int(&j, NULL, (long long)m->sizes[k]);
    xb_json_array_end(&j);
    xb_json_string(&j, "hidden_activation", m->n_layers > 1 ? xb_activation_name(m->act[0]) : NULL);
    xb_json_int(&j, "parameters", (long long)xb_mlp_param_count(m));
    xb_json_object_end(&j);
    xb_json_object_begin(&j, "training");
    xb_json_string(&j, "dataset", spec);
    xb_json_int(&j, "train_samples", (long long)n_train);
    xb_json_int(&j, "epochs", (long long)o->epochs);
    xb_json_int(&j, "batch", (long long)o->batch);
    xb_json_number(&j, "learning_rate", o->lr);
    xb_json_number(&j, "momentum", o->momentum);
    xb_json_number(&j, "weight_decay", o->weight_decay);
    xb_json_number(&j, "lr_decay", o->lr_decay);
    xb_json_int(&j, "lr_step", (long long)o->lr_step);
    xb_json_number(&j, "val_fraction", o->val_fraction);
    xb_json_int(&j, "blas_threads", xb_cli_threads());
    xb_json_number(&j, "seconds", seconds);
    xb_json_number(&j, "final_loss", st[o->epochs - 1].loss);
    xb_json_number(&j, "final_train_accuracy", st[o->epochs - 1].train_acc);
    xb_json_number(&j, "final_val_accuracy", st[o->epochs - 1].val_acc);
    xb_json_object_end(&j);
    xb_json_object_begin(&j, "test");
    xb_json_int(&j, "samples", (long long)n_test);
    xb_json_number(&j, "accuracy", test_acc);
    xb_json_object_end(&j);
    xb_json_object_end(&j);
    return xb_atomic_commit(&f, err);
}

static int run(int argc, char **argv)
{
    const char *spec = "mnist", *out = NULL, *hidden_s = "100", *act_s = "sigmoid";
    size_t limit = 0, threads = 0;
    int f32 = 0, lr_given = 0;
    xb_train_options o;
    xb_train_defaults(&o);
    static const struct option opts[] = {
        {"dataset", required_argument, 0, 'd'}, {"hidden", required_argument, 0, 'H'},
        {"activation", required_argument, 0, 'a'}, {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'}, {"lr", required_argument, 0, O_LR},
        {"momentum", required_argument, 0, O_MOM}, {"weight-decay", required_argument, 0, O_WD},
        {"lr-decay", required_argument, 0, O_DECAY}, {"lr-step", required_argument, 0, O_STEP},
        {"val-split", required_argument, 0, O_VAL}, {"limit", required_argument, 0, O_LIMIT},
        {"seed", required_argument, 0, 's'}, {"threads", required_argument, 0, 'j'},
        {"out", required_argument, 0, 'o'}, {"float32", no_argument, 0, O_F32},
        {"quiet", no_argument, 0, 'q'}, {0, 0, 0, 0}};
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":d:H:a:e:b:s:j:o:q", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'd': spec = optarg; break;
        case 'H': hidden_s = optarg; break;
        case 'a': act_s = optarg; break;
        case 'e': bad = xb_cli_size("train", "--epochs", optarg, 1, 100000, &o.epochs); break;
        case 'b': bad = xb_cli_size("train", "--batch", optarg, 1, 1 << 20, &o.batch); break;
        case O_LR: bad = xb_cli_double("train", "--lr", optarg, 0, 1e3, &o.lr), lr_given = 1; break;
        case O_MOM: bad = xb_cli_double("train", "--momentum", optarg, 0, 0.9999, &o.momentum); break;
        case O_WD: bad = xb_cli_double("train", "--weight-decay", optarg, 0, 1, &o.weight_decay); break;
        case O_DECAY: bad = xb_cli_double("train", "--lr-decay", optarg, 1e-6, 1, &o.lr_decay); break;
        case O_STEP: bad = xb_cli_size("train", "--lr-step", optarg, 1, 100000, &o.lr_step); break;
        case O_VAL: bad = xb_cli_double("train", "--val-split", optarg, 0, 0.9, &o.val_fraction); break;
        case O_LIMIT: bad = xb_cli_size("train", "--limit", optarg, 1, (size_t)1 << 40, &limit); break;
        case 's': bad = xb_cli_ulong("train", "--seed", optarg, &o.seed); break;
        case 'j': bad = xb_cli_size("train", "--threads", optarg, 1, 1024, &threads); break;
        case 'o': out = optarg; break;
        case O_F32: f32 = 1; break;
        case 'q': o.quiet = 1; break;
        case ':': return xb_cli_usage_error("train", "option %s needs a value", opt);
        default: return xb_cli_usage_error("train", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind < argc)
        return xb_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    size_t hidden[32];
    int n_hidden;
    if (parse_hidden(hidden_s, hidden, &n_hidden))
        return 2;
    int act = xb_activation_parse(act_s);
    if (act != XB_ACT_SIGMOID && act != XB_ACT_RELU)
        return xb_cli_usage_error("train", "--activation '%s': expected sigmoid or relu", act_s);
    /* The architecture's default step (xb_train_default_lr) unless --lr was given. */
    if (!lr_given)
        o.lr = xb_train_default_lr(n_hidden, (xb_activation)act);
    xb_cli_set_threads((int)threads);

    char out_buf[4096], arch[256];
    size_t used = (size_t)snprintf(arch, sizeof arch, n_hidden ? "mlp" : "slp");
    for (int k = 0; k < n_hidden && used < sizeof arch; k++)
        used += (size_t)snprintf(arch + used, sizeof arch - used, "-%zu", hidden[k]);
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "results/weights/%s-%s%s%s-s%lu.npz", dataset_tag(spec), arch,
                 n_hidden ? "-" : "", n_hidden ? act_s : "", o.seed);
        out = out_buf;
    }
    size_t out_len = strlen(out);
    if (out_len < 5 || strcmp(out + out_len - 4, ".npz"))
        return xb_cli_usage_error("train", "--out '%s': the weights file must end in .npz", out);
    if (xb_cli_out_file("train", "--out", out))
        return 2;

    xb_error err = {0};
    xb_provenance prov;
    xb_provenance_init(&prov, argc, argv);
    xb_provenance_set_seed(&prov, o.seed);
    xb_dataset *train = NULL, *test = NULL;
    xb_mlp *m = NULL;
    xb_epoch_stats *st = NULL;
    int *pred = NULL;
    int rc = xb_dataset_load(spec, XB_SPLIT_TRAIN, &train, &err);
    if (!rc)
        rc = xb_dataset_load(spec, XB_SPLIT_TEST, &test, &err);
    if (rc)
        goto done;
    if (limit)
        xb_dataset_truncate(train, limit);
    xb_provenance_add_input(&prov, "train_images", train->images_path, train->images_sha256, &err);
    xb_provenance_add_input(&prov, "train_labels", train->labels_path, train->labels_sha256, &err);
    xb_provenance_add_input(&prov, "test_images", test->images_path, test->images_sha256, &err);
    xb_provenance_add_input(&prov, "test_labels", test->labels_path, test->labels_sha256, &err);

    size_t sizes[34];
    sizes[0] = train->dim;
    for (int k = 0; k < n_hidden; k++)
        sizes[k + 1] = hidden[k];
    sizes[n_hidden + 1] = (size_t)(train->n_classes > test->n_classes ? train->n_classes : test->n_classes);
    m = xb_mlp_new(n_hidden + 1, sizes, (xb_activation)act);
    st = calloc(o.epochs, sizeof *st);
    pred = malloc(test->n * sizeof *pred);
    if (!m || !st || !pred) {
        rc = xb_fail(&err, XB_ENOMEM, "out of memory");
        goto done;
    }
    char desc[256];
    if (!o.quiet)
        fprintf(stderr, "training %s on %s (%zu images), %zu epochs, batch %zu, lr %g, momentum %g, seed %lu\n",
                xb_mlp_describe(m, desc, sizeof desc), spec, train->n, o.epochs, o.batch, o.lr, o.momentum,
                o.seed);
    double t0 = xb_now();
    if ((rc = xb_train(m, train, &o, st, &err)))
        goto done;
    double seconds = xb_now() - t0;
    if ((rc = xb_mlp_predict(m, test->x, test->n, pred, &err)))
        goto done;
    size_t correct = 0;
    for (size_t i = 0; i < test->n; i++)
        correct += pred[i] == test->y[i];
    double test_acc = (double)correct / (double)test->n;

    char stem[4096], path[4200];
    snprintf(stem, sizeof stem, "%.*s", (int)(out_len - 4), out);
    if ((rc = xb_weights_save_npz(m, out, f32 ? XB_DT_F4 : XB_DT_F8, &err)))
        goto done;
    snprintf(path, sizeof path, "%s.train.csv", stem);
    if ((rc = write_log(path, st, o.epochs, &err)))
        goto done;
    snprintf(path, sizeof path, "%s.json", stem);
    if ((rc = write_sidecar(path, &prov, m, &o, spec, train->n, st, test_acc, test->n, seconds, &err)))
        goto done;
    printf("%s: test accuracy %.2f%% (%zu/%zu) after %zu epochs in %.1f s (%.0f samples/s)\n", out,
           100 * test_acc, correct, test->n, o.epochs, seconds,
           (double)(train->n - (size_t)floor(o.val_fraction * (double)train->n)) * (double)o.epochs / seconds);
done:
    free(pred);
    free(st);
    xb_mlp_free(&m);
    xb_dataset_free(&train);
    xb_dataset_free(&test);
    return xb_cli_fail("train", rc, &err);
}

const xb_command xb_cmd_train = {"train", run, "train an SLP / MLP on MNIST-format data, save .npz weights",
                                 {usage}};
