// cmd_train: `xbarsim train`, train an SLP or MLP in software and save its weights
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "device.h"
#include "hwtrain.h"
#include "provenance.h"
#include "train_out.h"
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
    "      --layers LIST         the hidden layers as a list instead of --hidden, convolutional ones first:\n"
    "                            conv:F:K[:S[:P]] (F filters, KxK kernel, stride S, zero padding P),\n"
    "                            maxpool:K[:S] / avgpool:K[:S] after a conv layer, flatten, dense:N; the\n"
    "                            output layer is added (docs/cnn.md), e.g.\n"
    "                            conv:8:3,maxpool:2,conv:8:3,maxpool:2,dense:16\n"
    "  -a, --activation NAME     hidden activation: sigmoid (default) or relu\n"
    "  -e, --epochs N            passes over the training set (default 15)\n"
    "  -b, --batch N             mini-batch size (default 32)\n"
    "      --lr X                initial learning rate (default: 0.01 for the SLP, 0.1 for a sigmoid MLP,\n"
    "                            0.01 for a ReLU MLP; He-normal init for ReLU layers, Glorot-uniform else)\n"
    "      --momentum X          momentum (default 0.9)\n"
    "      --optimizer NAME      sgd (default: SGD with momentum) or adam (beta1 0.9, beta2 0.999, eps 1e-8)\n"
    "      --dropout P           inverted dropout on the hidden layers during training, P in [0, 0.95]\n"
    "      --grad-clip X         scale each batch's gradient down to L2 norm X when longer (default: none)\n"
    "      --weight-decay X      L2 penalty on weights (default 0)\n"
    "      --lr-decay X          multiply the learning rate by X every --lr-step epochs (default 1)\n"
    "      --lr-step N           epochs between decays (default 1)\n"
    "      --val-split X         fraction of the training set held out for validation (default 0)\n"
    "      --limit N             use only the first N training images (quick runs)\n"
    "  -s, --seed N              seed of initialisation and shuffling (default 1)\n"
    "  -j, --threads N           BLAS threads (default: the library's, usually the core count)\n"
    "  -o, --out FILE.npz        weights file (default results/weights/DATASET-ARCH-sSEED.npz)\n"
    "      --float32             store weights as float32 (default float64)\n"
    "  -q, --quiet               no progress output\n";

static const char usage_hw[] =
    "\n"
    "hardware-aware training (docs/training.md): full-precision master weights; every batch runs through a\n"
    "forward copy quantized onto the level set and given a fresh noise draw; the gradient flows back\n"
    "through the noise (its derivative) and the quantizer (straight-through estimator). The saved weights\n"
    "are the deployed ones: quantized, exactly on the level set. A SPEC is one for every layer or one per\n"
    "layer separated by '/'.\n"
    "      --train-noise SPEC    perturbation models of `eval --perturb`, '+'-joined per layer: lognormal:sigma=S,\n"
    "                            mult:alpha=A, c2c:ar=A,sigma=S, c2c-level:ar=A,sigma=S, additive:sigma=S\n"
    "                            (layer outputs), none (default)\n"
    "      --noise-ramp N        noise spreads grow linearly to full over the first N epochs (default 0: none)\n"
    "      --train-levels SPEC   quantization-aware training onto a level set: set1..set5, bits:B, abits:B,\n"
    "                            uniform:N, nnary:K:DELTA:MU, levels:..., device (the device file's levels), none\n"
    "      --train-norm SPEC     weight scaling onto the levels: maxabs (default; per batch), clip:C\n"
    "                            (constant), none (weight units, as the multinary paper)\n"
    "      --ste-threshold T     no gradient on weights with |w / scale| > T (the paper's t_c; default none)\n"
    "      --act-quant SPEC      hidden activations quantized to B bits: B:dynamic (per-batch step) or B:S\n"
    "                            (constant step S); default none\n"
    "      --device FILE         device file for --train-levels device (default models/hfo2_1t1r.xml)\n"
    "\n"
    "examples:\n"
    "  xbarsim train --hidden none --epochs 10 -o slp.npz          # SLP 784-10 on MNIST\n"
    "  xbarsim train --hidden 100 --activation sigmoid -o mlp.npz  # 784-100-10, 15 epochs\n"
    "  xbarsim train --dataset fashion-mnist --hidden 100 --activation relu   # ReLU, lr 0.01\n"
    "  xbarsim train --dataset fashion-mnist --hidden 300,100 --activation relu --val-split 0.1\n"
    "  xbarsim train --hidden 100 --activation relu --optimizer adam --lr 0.001 \\\n"
    "      --train-noise lognormal:sigma=1 --noise-ramp 5 -o nt.npz    # noised training\n"
    "  xbarsim train --hidden 100 --train-levels device --train-noise mult:alpha=0.05 -o hw.npz\n";

enum { O_LR = 1000, O_MOM, O_WD, O_DECAY, O_STEP, O_VAL, O_LIMIT, O_F32, O_OPT, O_DROP, O_CLIP, O_NOISE, O_RAMP,
       O_LEVELS, O_NORM, O_TC, O_ACTQ, O_DEVICE, O_LAYERS };

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

static int run(int argc, char **argv)
{
    const char *spec = "mnist", *out = NULL, *hidden_s = "100", *act_s = "sigmoid", *layers_s = NULL;
    int hidden_given = 0;
    const char *noise_s = "none", *levels_s = "none", *norm_s = "maxabs", *actq_s = "none", *device_s = NULL;
    double t_c = INFINITY;
    size_t ramp = 0;
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
        {"quiet", no_argument, 0, 'q'}, {"optimizer", required_argument, 0, O_OPT},
        {"dropout", required_argument, 0, O_DROP}, {"grad-clip", required_argument, 0, O_CLIP},
        {"train-noise", required_argument, 0, O_NOISE}, {"noise-ramp", required_argument, 0, O_RAMP},
        {"train-levels", required_argument, 0, O_LEVELS}, {"train-norm", required_argument, 0, O_NORM},
        {"ste-threshold", required_argument, 0, O_TC}, {"act-quant", required_argument, 0, O_ACTQ},
        {"device", required_argument, 0, O_DEVICE}, {"layers", required_argument, 0, O_LAYERS}, {0, 0, 0, 0}};
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":d:H:a:e:b:s:j:o:q", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'd': spec = optarg; break;
        case 'H': hidden_s = optarg, hidden_given = 1; break;
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
        case O_OPT: {
            int k = xb_optimizer_parse(optarg);
            if (k < 0)
                return xb_cli_usage_error("train", "--optimizer '%s': expected sgd or adam", optarg);
            o.optimizer = (xb_optimizer)k;
            break;
        }
        case O_DROP: bad = xb_cli_double("train", "--dropout", optarg, 0, 0.95, &o.dropout); break;
        case O_CLIP: bad = xb_cli_double("train", "--grad-clip", optarg, 0, 1e12, &o.grad_clip); break;
        case O_NOISE: noise_s = optarg; break;
        case O_RAMP: bad = xb_cli_size("train", "--noise-ramp", optarg, 0, 100000, &ramp); break;
        case O_LEVELS: levels_s = optarg; break;
        case O_NORM: norm_s = optarg; break;
        case O_TC: bad = xb_cli_double("train", "--ste-threshold", optarg, 1e-300, INFINITY, &t_c); break;
        case O_ACTQ: actq_s = optarg; break;
        case O_DEVICE: device_s = optarg; break;
        case O_LAYERS: layers_s = optarg; break;
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
    if (layers_s && hidden_given)
        return xb_cli_usage_error("train", "--layers and --hidden both describe the hidden layers; give one");
    if (layers_s) {
        xb_layer_spec ls[XB_MAX_LAYERS];
        xb_error lerr = {0};
        if (xb_layer_list_parse(layers_s, "--layers", ls, XB_MAX_LAYERS - 1, &n_hidden, &lerr))
            return xb_cli_usage_error("train", "%s", lerr.msg);
    } else if (parse_hidden(hidden_s, hidden, &n_hidden))
        return 2;
    int act = xb_activation_parse(act_s);
    if (act != XB_ACT_SIGMOID && act != XB_ACT_RELU)
        return xb_cli_usage_error("train", "--activation '%s': expected sigmoid or relu", act_s);
    /* The architecture's default step (xb_train_default_lr) unless --lr was given. */
    if (!lr_given)
        o.lr = xb_train_default_lr(n_hidden, (xb_activation)act);
    xb_cli_set_threads((int)threads);

    char out_buf[4096], arch[256];
    size_t used = (size_t)snprintf(arch, sizeof arch, layers_s ? "cnn-" : n_hidden ? "mlp" : "slp");
    if (layers_s) { /* conv:8:3,maxpool:2 -> cnn-conv8.3_maxpool2 */
        for (const char *p = layers_s; *p && used + 1 < sizeof arch; p++)
            if (*p != ':' || (p > layers_s && p[-1] >= '0' && p[-1] <= '9'))
                arch[used++] = *p == ',' ? '_' : *p == ':' ? '.' : *p;
        arch[used] = '\0';
    }
    for (int k = 0; !layers_s && k < n_hidden && used < sizeof arch; k++)
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
    /* Hardware-aware settings are checked before any data is read. */
    xb_hwtrain hw;
    xb_device dev;
    int want_device = strstr(levels_s, "device") != NULL;
    if (want_device) {
        const char *path = device_s ? device_s : XB_SOURCE_DIR "/models/hfo2_1t1r.xml";
        int drc = xb_device_load(path, NULL, &dev, &err);
        if (drc)
            return xb_cli_fail("train", drc, &err);
    } else if (device_s) {
        return xb_cli_usage_error("train", "--device is only used by --train-levels device");
    }
    int hrc = xb_hwtrain_parse(&hw, n_hidden + 1, noise_s, levels_s, norm_s, t_c, ramp, actq_s,
                               want_device ? &dev : NULL, &err);
    if (hrc)
        return xb_cli_fail("train", hrc, &err);
    xb_provenance prov;
    xb_provenance_init(&prov, argc, argv);
    xb_provenance_set_seed(&prov, o.seed);
    xb_train_spec ts = {.dataset = spec, .limit = limit, .hidden = hidden, .n_hidden = n_hidden, .layers = layers_s,
                        .act = (xb_activation)act, .o = &o, .out = out, .float32 = f32,
                        .blas_threads = xb_cli_threads(), .hw = &hw};
    xb_train_outcome r;
    int rc = xb_train_and_save(&ts, &prov, &r, &err);
    if (!rc)
        printf("%s: test accuracy %.2f%% (%zu/%zu) after %zu epochs in %.1f s (%.0f samples/s)\n", out,
               100 * r.test_acc, r.correct, r.n_test, o.epochs, r.seconds,
               (double)(r.n_train - (size_t)floor(o.val_fraction * (double)r.n_train)) * (double)o.epochs /
                   r.seconds);
    xb_hwtrain_clear(&hw);
    return xb_cli_fail("train", rc, &err);
}

const xb_command xb_cmd_train = {"train", run, "train an SLP / MLP on MNIST-format data, save .npz weights",
                                 {usage, usage_hw}};
