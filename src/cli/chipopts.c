// chipopts: the options that say how a network goes onto a chip, shared by `program` and `eval`
#include "chipopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "quant.h"

enum { O_DEVICE = 2000, O_LEVELS, O_NORM, O_MAPPING, O_BIAS, O_TILE, O_CALIB };

const struct option xb_cli_chip_options[] = {
    {"device", required_argument, 0, O_DEVICE}, {"levels", required_argument, 0, O_LEVELS},
    {"norm", required_argument, 0, O_NORM},     {"mapping", required_argument, 0, O_MAPPING},
    {"bias", required_argument, 0, O_BIAS},     {"tile", required_argument, 0, O_TILE},
    {"calib", required_argument, 0, O_CALIB},   {0, 0, 0, 0}};

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
    o->calib = 256;
}

int xb_cli_chip_option(const char *cmd, int c, const char *arg, xb_cli_chip *o, int *bad)
{
    switch (c) {
    case O_DEVICE: o->device = arg; return 1;
    case O_LEVELS: o->levels = arg; return 1;
    case O_NORM: o->norm = arg; return 1;
    case O_MAPPING:
        if (strcmp(arg, "differential") && strcmp(arg, "single-ended"))
            *bad = xb_cli_usage_error(cmd, "--mapping '%s': expected differential or single-ended", arg);
        o->mapping = arg;
        return 1;
    case O_BIAS:
        if (strcmp(arg, "row") && strcmp(arg, "digital"))
            *bad = xb_cli_usage_error(cmd, "--bias '%s': expected row or digital", arg);
        o->bias = arg;
        return 1;
    case O_TILE: {
        unsigned long r, cc;
        char extra;
        if (sscanf(arg, "%lux%lu%c", &r, &cc, &extra) != 2 || r < 1 || cc < 2 || r > 65536 || cc > 65536)
            *bad = xb_cli_usage_error(cmd, "--tile '%s': expected ROWSxCOLS, e.g. 64x64 (at least 1x2)", arg);
        o->tile = arg;
        return 1;
    }
    case O_CALIB:
        *bad = xb_cli_size(cmd, "--calib", arg, 1, 60000, &o->calib);
        return 1;
    default:
        return 0;
    }
}

int xb_cli_chip_build(const xb_cli_chip *o, const xb_mlp *m, const char *dataset, xb_device *dev,
                      xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err)
{
    *chip = NULL;
    int rc = xb_device_load(o->device, NULL, dev, err);
    if (rc)
        return rc;
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_map_options_from_device(&mo, dev);
    mo.scheme = strcmp(o->mapping, "single-ended") ? XB_MAP_DIFFERENTIAL : XB_MAP_SINGLE_ENDED;
    mo.bias = strcmp(o->bias, "digital") ? XB_BIAS_ROW : XB_BIAS_DIGITAL;
    unsigned long r = 64, c = 64;
    sscanf(o->tile, "%lux%lu", &r, &c);
    mo.tile_rows = r;
    mo.tile_cols = c;
    xb_norm norm;
    if ((rc = xb_norm_parse(o->norm, &norm, err)))
        return rc;
    if (norm.kind == XB_NORM_NONE)
        return xb_fail(err, XB_EINPUT, "--norm none: a chip needs its weights normalized to the conductance "
                       "range; use maxabs or clip:C");
    mo.clip = norm.kind == XB_NORM_CLIP ? norm.clip : 0;

    xb_levelset *ls[64] = {0};
    if (m->n_layers > 64)
        return xb_fail(err, XB_EINPUT, "a chip holds at most 64 layers; this network has %d", m->n_layers);
    if ((rc = xb_levelsets_parse(o->levels, m->n_layers, dev, ls, levels_used, levels_len, err)))
        return xb_error_prefix(err, "--levels (device: the device file's levels, is allowed too)");
    xb_dataset *cal = NULL;
    int needs_calib = 0;
    for (int k = 0; k + 1 < m->n_layers; k++)
        needs_calib |= m->act[k] == XB_ACT_RELU;
    if (needs_calib && !(rc = xb_dataset_load(dataset, XB_SPLIT_TRAIN, &cal, err)))
        xb_dataset_truncate(cal, o->calib);
    if (!rc)
        rc = xb_chip_map(m, &mo, cal ? cal->x : NULL, cal ? cal->n : 0, chip, err);
    xb_dataset_free(&cal);
    if (!rc && (rc = xb_chip_quantize(*chip, (const xb_levelset *const *)ls, err)))
        xb_chip_free(chip);
    for (int l = 0; l < m->n_layers; l++)
        xb_levelset_free(&ls[l]);
    return rc;
}
