// build: one chip from a specification (normalization, level sets per layer, mapping, tiles), shared by every command and testbench
#include "build.h"

#include <stdio.h>
#include <string.h>

void xb_chip_spec_defaults(xb_chip_spec *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->levels, sizeof s->levels, "none");
    s->norm.kind = XB_NORM_MAXABS;
    s->scheme = XB_MAP_DIFFERENTIAL;
    s->bias = XB_BIAS_ROW;
    s->tile_rows = 64;
    s->tile_cols = 64;
    s->calib = 256;
}

int xb_chip_spec_set_levels(xb_chip_spec *s, const char *text, xb_error *err)
{
    if (strlen(text) >= sizeof s->levels)
        return xb_fail(err, XB_EINPUT, "'%.40s...': a level-set spec of at most %zu characters", text,
                       sizeof s->levels - 1);
    snprintf(s->levels, sizeof s->levels, "%s", text);
    return XB_OK;
}

int xb_chip_spec_set_norm(xb_chip_spec *s, const char *text, xb_error *err)
{
    xb_norm norm;
    int rc = xb_norm_parse(text, &norm, err);
    if (rc)
        return rc;
    if (norm.kind == XB_NORM_NONE)
        return xb_fail(err, XB_EINPUT, "'%s': a chip needs its weights normalized to the conductance range; allowed: "
                       "maxabs or clip:C with C > 0", text);
    s->norm = norm;
    return XB_OK;
}

int xb_chip_spec_set_mapping(xb_chip_spec *s, const char *text, xb_error *err)
{
    if (strcmp(text, "differential") && strcmp(text, "single-ended"))
        return xb_fail(err, XB_EINPUT, "'%s': expected differential or single-ended", text);
    s->scheme = strcmp(text, "single-ended") ? XB_MAP_DIFFERENTIAL : XB_MAP_SINGLE_ENDED;
    return XB_OK;
}

int xb_chip_spec_set_bias(xb_chip_spec *s, const char *text, xb_error *err)
{
    if (strcmp(text, "row") && strcmp(text, "digital"))
        return xb_fail(err, XB_EINPUT, "'%s': expected row or digital", text);
    s->bias = strcmp(text, "digital") ? XB_BIAS_ROW : XB_BIAS_DIGITAL;
    return XB_OK;
}

int xb_chip_spec_set_tile(xb_chip_spec *s, const char *text, xb_error *err)
{
    unsigned long r, c;
    char extra;
    if (sscanf(text, "%lux%lu%c", &r, &c, &extra) != 2 || r < 1 || c < 2 || r > 65536 || c > 65536)
        return xb_fail(err, XB_EINPUT, "'%s': expected ROWSxCOLS, e.g. 64x64 (at least 1x2, at most 65536x65536)",
                       text);
    s->tile_rows = r;
    s->tile_cols = c;
    return XB_OK;
}

int xb_chip_spec_needs_calib(const xb_mlp *m)
{
    for (int k = 0; k + 1 < m->n_layers; k++)
        if (m->act[k] == XB_ACT_RELU)
            return 1;
    return 0;
}

int xb_chip_build(const xb_chip_spec *s, const xb_device *dev, const xb_mlp *m, const double *cal_x,
                  size_t cal_n, xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err)
{
    *chip = NULL;
    xb_map_options mo;
    xb_map_defaults(&mo);
    xb_map_options_from_device(&mo, dev);
    mo.scheme = s->scheme;
    mo.bias = s->bias;
    mo.tile_rows = s->tile_rows;
    mo.tile_cols = s->tile_cols;
    mo.clip = s->norm.kind == XB_NORM_CLIP ? s->norm.clip : 0;
    if (m->n_layers > 64)
        return xb_fail(err, XB_EINPUT, "a chip holds at most 64 layers; this network has %d", m->n_layers);
    xb_levelset *ls[64] = {0};
    int rc = xb_levelsets_parse(s->levels, m->n_layers, dev, ls, levels_used, levels_len, err);
    if (rc)
        return xb_error_prefix(err, "levels (device: the device file's levels, is allowed too)");
    rc = xb_chip_map(m, &mo, cal_x, cal_x ? cal_n : 0, chip, err);
    if (!rc && (rc = xb_chip_quantize(*chip, (const xb_levelset *const *)ls, err)))
        xb_chip_free(chip);
    for (int l = 0; l < m->n_layers; l++)
        xb_levelset_free(&ls[l]);
    return rc;
}

int xb_chip_build_trial(xb_chip *prog, const xb_device *dev, const xb_program_options *po,
                        const xb_layer_perturb *lp, int n_lp, gsl_rng *rng, xb_chip *out, xb_behav_options *bo,
                        xb_program_result **result, xb_error *err)
{
    if (result)
        *result = NULL;
    int rc = XB_OK;
    if (po)
        rc = xb_chip_program(prog, dev, po, rng, result, err);
    else
        xb_chip_update_targets(prog);
    if (!rc)
        rc = xb_mc_perturb_chip(prog, lp, n_lp, rng, out, bo, err);
    if (rc && result)
        xb_program_result_free(result);
    return rc;
}
