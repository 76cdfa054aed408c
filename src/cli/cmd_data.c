// cmd_data: `xbarsim data`, check that a dataset is in place and describe it
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"

static const char usage[] =
    "usage: xbarsim data [--dataset NAME|PATH]\n"
    "\n"
    "Load both splits of a dataset, validate the IDX files and print their sizes, class counts and\n"
    "SHA-256 hashes.\n"
    "\n"
    "  -d, --dataset NAME|PATH  mnist (default), fashion-mnist, or a folder with the four IDX files\n"
    "                           (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,\n"
    "                           t10k-labels-idx1-ubyte; each may be .gz)\n"
    "\n"
    "example: xbarsim data --dataset fashion-mnist\n";

static int run(int argc, char **argv)
{
    const char *spec = "mnist";
    static const struct option opts[] = {{"dataset", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":d:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': spec = optarg; break;
        case ':': return xb_cli_usage_error("data", "option %s needs a value", argv[optind - 1]);
        default: return xb_cli_usage_error("data", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return xb_cli_usage_error("data", "unexpected argument '%s'", argv[optind]);
    xb_error err = {0};
    char folder[4096];
    int rc = xb_dataset_resolve(spec, folder, sizeof folder, &err);
    if (rc)
        return xb_cli_fail("data", rc, &err);
    printf("dataset %s: %s\n", spec, folder);
    for (int s = 0; s < 2; s++) {
        xb_dataset *d = NULL;
        rc = xb_dataset_load(spec, s ? XB_SPLIT_TEST : XB_SPLIT_TRAIN, &d, &err);
        if (rc)
            return xb_cli_fail("data", rc, &err);
        size_t hist[256] = {0};
        for (size_t i = 0; i < d->n; i++)
            hist[d->y[i]]++;
        printf("%s: %zu images of %zux%zu, %d classes\n", s ? "test" : "train", d->n, d->rows, d->cols,
               d->n_classes);
        printf("  images %s\n    sha256 %s\n  labels %s\n    sha256 %s\n  per class:", d->images_path,
               d->images_sha256, d->labels_path, d->labels_sha256);
        for (int k = 0; k < d->n_classes; k++)
            printf(" %zu", hist[k]);
        printf("\n");
        xb_dataset_free(&d);
    }
    return 0;
}

const xb_command xb_cmd_data = {"data", run, "check and describe a dataset (MNIST, Fashion-MNIST, a folder)",
                                {usage}};
