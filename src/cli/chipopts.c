// chipopts: the options that say how a network goes onto a chip, shared by `program` and `eval`
#include "chipopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "pipeline.h"

enum { O_DEVICE = 2000, O_LEVELS, O_NORM, O_MAPPING, O_BIAS, O_TILE, O_CALIB, O_NET_LAYERS, O_INPUT_SHAPE, O_LAYOUT };

const struct option xb_cli_chip_options[] = {
    {"device", required_argument, 0, O_DEVICE}, {"levels", required_argument, 0, O_LEVELS},
    {"norm", required_argument, 0, O_NORM},     {"mapping", required_argument, 0, O_MAPPING},
    {"bias", required_argument, 0, O_BIAS},     {"tile", required_argument, 0, O_TILE},
    {"calib", required_argument, 0, O_CALIB},   {"layers", required_argument, 0, O_NET_LAYERS},
    {"input-shape", required_argument, 0, O_INPUT_SHAPE}, {"layout", required_argument, 0, O_LAYOUT},
    {0, 0, 0, 0}};

enum { O_SOLVE_TIMEOUT = 2100 };

const struct option xb_cli_spice_options[] = {{"solve-timeout", required_argument, 0, O_SOLVE_TIMEOUT}, {0, 0, 0, 0}};

int xb_cli_spice_option(const char *cmd, int c, const char *arg, xb_pool_options *o, int *bad)
{
    if (c != O_SOLVE_TIMEOUT)
        return 0;
    /* At least a millisecond per input; at most a day. */
    *bad = xb_cli_double(cmd, "--solve-timeout", arg, 1e-3, 86400, &o->solve_timeout_s);
    return 1;
}

void xb_cli_chip_defaults(xb_cli_chip *o)
{
    memset(o, 0, sizeof *o);
    o->device = XB_SOURCE_DIR "/models/hfo2_1t1r.xml";
    o->levels = "none";
    o->norm = "maxabs";
    o->mapping = "differential";
    o->bias = "row";
    o->tile = "64x64";
    xb_chip_spec_defaults(&o->spec);
    o->calib = o->spec.calib;
    o->net.hidden = -1;
}

/* A value the spec's parser refused: exit 2 with the option's name. */
static int refused(const char *cmd, const char *opt, int rc, const xb_error *err)
{
    return rc ? xb_cli_usage_error(cmd, "%s %s", opt, err->msg) : 0;
}

int xb_cli_chip_option(const char *cmd, int c, const char *arg, xb_cli_chip *o, int *bad)
{
    xb_error err = {0};
    switch (c) {
    case O_DEVICE: o->device = arg; return 1;
    case O_LEVELS:
        o->levels = arg;
        *bad = refused(cmd, "--levels", xb_chip_spec_set_levels(&o->spec, arg, &err), &err);
        return 1;
    case O_NORM:
        o->norm = arg;
        *bad = refused(cmd, "--norm", xb_chip_spec_set_norm(&o->spec, arg, &err), &err);
        return 1;
    case O_MAPPING:
        o->mapping = arg;
        *bad = refused(cmd, "--mapping", xb_chip_spec_set_mapping(&o->spec, arg, &err), &err);
        return 1;
    case O_BIAS:
        o->bias = arg;
        *bad = refused(cmd, "--bias", xb_chip_spec_set_bias(&o->spec, arg, &err), &err);
        return 1;
    case O_TILE:
        o->tile = arg;
        *bad = refused(cmd, "--tile", xb_chip_spec_set_tile(&o->spec, arg, &err), &err);
        return 1;
    case O_CALIB:
        *bad = xb_cli_size(cmd, "--calib", arg, 1, 60000, &o->calib);
        o->spec.calib = o->calib;
        return 1;
    case O_NET_LAYERS: {
        xb_layer_spec ls[XB_MAX_LAYERS];
        int n = 0;
        if (xb_layer_list_parse(arg, "--layers", ls, XB_MAX_LAYERS, &n, &err))
            *bad = xb_cli_usage_error(cmd, "%s", err.msg);
        o->net.layers = arg;
        return 1;
    }
    case O_INPUT_SHAPE: {
        unsigned long h = 0, w = 0, ch = 0;
        char tail = 0;
        if (sscanf(arg, "%lux%lux%lu%c", &h, &w, &ch, &tail) != 3 || !h || !w || !ch || h > 100000 || w > 100000 ||
            ch > 100000 || arg[0] == '-')
            *bad = xb_cli_usage_error(cmd, "--input-shape '%s': expected HEIGHTxWIDTHxCHANNELS, e.g. 28x28x1", arg);
        o->net.input[0] = h, o->net.input[1] = w, o->net.input[2] = ch;
        return 1;
    }
    case O_LAYOUT:
        if (strcmp(arg, "keras") && strcmp(arg, "pytorch"))
            *bad = xb_cli_usage_error(cmd, "--layout '%s': expected keras or pytorch", arg);
        o->net.layout = arg;
        return 1;
    default:
        return 0;
    }
}

int xb_cli_chip_build(const xb_cli_chip *o, const xb_mlp *m, const char *dataset, xb_device *dev,
                      xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err)
{
    return xb_eval_chip_build(o->device, &o->spec, m, dataset, dev, chip, levels_used, levels_len, err);
}
