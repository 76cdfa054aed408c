// mc: Monte Carlo over perturbation draws of a programmed chip, and the statistics of the trials
#include "mc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

int xb_layers_parse(const char *sel, int n_layers, unsigned long long *mask, xb_error *err)
{
    *mask = 0;
    if (n_layers < 1 || n_layers > 64)
        return xb_fail(err, XB_EINPUT, "a network of %d layers", n_layers);
    if (!strcmp(sel, "all")) {
        *mask = n_layers == 64 ? ~0ULL : (1ULL << n_layers) - 1;
        return XB_OK;
    }
    if (!strcmp(sel, "first") || !strcmp(sel, "last")) {
        *mask = 1ULL << (sel[0] == 'f' ? 0 : n_layers - 1);
        return XB_OK;
    }
    const char *p = sel;
    while (*p) {
        char *end;
        long k = strtol(p, &end, 10);
        if (end == p || k < 1 || (*end && *end != '+') || (*end == '+' && !end[1]))
            return xb_fail(err, XB_EINPUT, "layers '%s': allowed: all, first, last, or numbers joined by '+'", sel);
        if (k > n_layers)
            return xb_fail(err, XB_EINPUT, "layers '%s': the network has %d layer%s; allowed: 1..%d, all, first, last",
                           sel, n_layers, n_layers == 1 ? "" : "s", n_layers);
        *mask |= 1ULL << (k - 1);
        p = *end ? end + 1 : end;
    }
    return *mask ? XB_OK : xb_fail(err, XB_EINPUT, "layers '%s': empty", sel);
}

int xb_layer_perturb_parse(const char *text, int n_layers, xb_layer_perturb *out, xb_error *err)
{
    char spec[256];
    const char *at = strchr(text, '@');
    size_t len = at ? (size_t)(at - text) : strlen(text);
    if (len >= sizeof spec)
        return xb_fail(err, XB_EINPUT, "perturbation '%s' is too long", text);
    memcpy(spec, text, len);
    spec[len] = '\0';
    int rc = xb_perturb_parse(spec, &out->model, err);
    if (rc)
        return rc;
    if (xb_layers_parse(at ? at + 1 : "all", n_layers, &out->layers, err))
        return xb_fail(err, XB_EINPUT, "perturbation '%s': layers after '@' must be all, first, last or numbers 1..%d "
                       "joined by '+', e.g. @1 or @1+2", text, n_layers);
    return XB_OK;
}

int xb_mc_perturb_chip(const xb_chip *base, const xb_layer_perturb *p, int n_p, gsl_rng *rng, xb_chip *chip,
                       xb_behav_options *bo, xb_error *err)
{
    for (int l = 0; l < base->n_layers && l < XB_BEHAV_MAX_LAYERS; l++)
        bo->sigma_out[l] = 0;
    int weights_touched = 0, g_touched = 0;
    for (int l = 0; l < base->n_layers; l++) {
        const xb_layer_map *B = &base->layers[l];
        xb_layer_map *L = &chip->layers[l];
        memcpy(L->wn, B->wn, B->rows * B->fan_out * sizeof *L->wn);
        for (int i = 0; i < n_p; i++) {
            if (!(p[i].layers >> l & 1))
                continue;
            if (xb_perturb_on_conductances(&p[i].model)) {
                g_touched = 1; /* drawn below, once the targets have moved */
                continue;
            }
            if (xb_perturb_on_outputs(&p[i].model)) {
                /* Independent Gaussian sources add in variance. */
                bo->sigma_out[l] = hypot(bo->sigma_out[l], p[i].model.sigma);
                continue;
            }
            int rc = xb_perturb_apply(&p[i].model, rng, L->wn, L->rows * L->fan_out, NULL, err);
            if (rc)
                return rc;
            weights_touched = 1;
        }
    }
    if (!weights_touched) {
        for (int l = 0; l < base->n_layers; l++)
            memcpy(chip->layers[l].g_S, base->layers[l].g_S,
                   base->layers[l].rows * base->layers[l].cols * sizeof(double));
    } else {
        xb_chip_update_targets(chip);
        for (int l = 0; l < base->n_layers; l++) {
            const xb_layer_map *B = &base->layers[l];
            xb_layer_map *L = &chip->layers[l];
            for (size_t i = 0; i < B->rows * B->cols; i++) {
                double g = L->g_target_S[i] + (B->g_S[i] - B->g_target_S[i]);
                L->g_S[i] = g > 0 ? g : 0;
            }
        }
    }
    if (!g_touched)
        return XB_OK;
    /* Conductance-domain models act on the cells as they now are: the programmed state moved by the
     * weight-domain models. Stuck cells take the device's LRS and HRS conductances (g_lrs_S, g_hrs_S
     * of the device file, carried in the chip's options and its conductance map), as at program time. */
    for (int i = 0; i < n_p; i++)
        if (p[i].model.kind == XB_PERTURB_STUCK && !(isfinite(chip->opt.g_lrs_S) && isfinite(chip->opt.g_hrs_S)))
            return xb_fail(err, XB_EINPUT, "perturbation stuck: the chip does not record the device's LRS/HRS "
                           "conductances (a conductance map of format 1); write it again with xbarsim program");
    for (int l = 0; l < base->n_layers; l++) {
        xb_layer_map *L = &chip->layers[l];
        for (int i = 0; i < n_p; i++) {
            if (!(p[i].layers >> l & 1) || !xb_perturb_on_conductances(&p[i].model))
                continue;
            int rc = xb_perturb_apply_g(&p[i].model, rng, L->g_S, L->rows * L->cols, chip->opt.g_lrs_S,
                                        chip->opt.g_hrs_S, NULL, err);
            if (rc)
                return xb_error_prefix(err, "layer %d", l + 1);
        }
    }
    return XB_OK;
}

void xb_mc_stats_of(const double *v, size_t n, xb_mc_stats *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n == 0) {
        s->mean = s->std = s->ci95_lo = s->ci95_hi = s->min = s->max = NAN;
        return;
    }
    double sum = 0;
    s->min = s->max = v[0];
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        s->min = fmin(s->min, v[i]);
        s->max = fmax(s->max, v[i]);
    }
    s->mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - s->mean) * (v[i] - s->mean);
    s->std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
    double half = n > 1 ? gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) * s->std / sqrt((double)n) : 0;
    s->ci95_lo = s->mean - half;
    s->ci95_hi = s->mean + half;
}

void xb_mc_stats_clamp(xb_mc_stats *s, double lo, double hi)
{
    if (!isnan(s->ci95_lo))
        s->ci95_lo = fmin(fmax(s->ci95_lo, lo), hi);
    if (!isnan(s->ci95_hi))
        s->ci95_hi = fmin(fmax(s->ci95_hi, lo), hi);
}
