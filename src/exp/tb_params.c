// tb_params: the parameter table (ELEMENT.ATTRIBUTE names and defaults) and the checks on parameter names
#define _GNU_SOURCE
#include "tb_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tb_kind_names[K_N] = {"dataset", "network", "device", "chip", "levels", "behavioral", "spice",
                                        "perturb", "backends", "montecarlo", "programming"};

static const attr_def attrs[] = {
    {K_DATASET, "name", "mnist"}, {K_DATASET, "images", "all"}, {K_DATASET, "calib", "256"},
    {K_NETWORK, "weights", "(trained)"}, {K_NETWORK, "hidden", "100"}, {K_NETWORK, "activation", "sigmoid"},
    {K_NETWORK, "epochs", "15"}, {K_NETWORK, "batch", "32"}, {K_NETWORK, "lr", "auto"},
    {K_NETWORK, "momentum", "0.9"}, {K_NETWORK, "weight-decay", "0"}, {K_NETWORK, "seed", "1"},
    {K_NETWORK, "train-images", "all"}, {K_NETWORK, "optimizer", "sgd"}, {K_NETWORK, "dropout", "0"},
    {K_NETWORK, "grad-clip", "0"}, {K_NETWORK, "lr-decay", "1"}, {K_NETWORK, "lr-step", "1"},
    {K_NETWORK, "train-noise", "none"}, {K_NETWORK, "noise-ramp", "0"}, {K_NETWORK, "train-levels", "none"},
    {K_NETWORK, "train-norm", "maxabs"}, {K_NETWORK, "ste-threshold", "none"}, {K_NETWORK, "act-quant", "none"},
    {K_NETWORK, "arch", "none"}, {K_NETWORK, "conv-layers", "0"}, {K_NETWORK, "filters", "8"},
    {K_NETWORK, "kernel", "3"}, {K_NETWORK, "pool", "2"}, {K_NETWORK, "pool-kind", "max"},
    {K_DEVICE, "file", "models/hfo2_1t1r.xml"}, {K_DEVICE, "v-read", "(file)"}, {K_DEVICE, "vg-read", "(file)"},
    {K_DEVICE, "d2d", "(file)"}, {K_DEVICE, "stuck-lrs", "(file)"}, {K_DEVICE, "stuck-hrs", "(file)"},
    {K_DEVICE, "sigma-c2c", "(file)"}, {K_DEVICE, "mosfet-file", "(file)"}, {K_DEVICE, "mosfet-model", "(file)"},
    {K_DEVICE, "rram-file", "(file)"},
    {K_CHIP, "norm", "maxabs"}, {K_CHIP, "mapping", "differential"}, {K_CHIP, "bias", "row"},
    {K_CHIP, "tile", "64x64"}, {K_CHIP, "program", "ideal"},
    {K_LEVELS, "spec", "none"}, {K_LEVELS, "layers", "all"},
    {K_BEHAVIORAL, "dac-bits", "0"}, {K_BEHAVIORAL, "adc-bits", "0"}, {K_BEHAVIORAL, "adc-range", "calibrate"},
    {K_BEHAVIORAL, "read-noise", "0"},
    {K_SPICE, "cells", "1t1r"}, {K_SPICE, "r-row", "1"}, {K_SPICE, "r-col", "1"}, {K_SPICE, "rram-v0", "0"},
    {K_SPICE, "mode", "exact"}, {K_SPICE, "linear-sample", "20"}, {K_SPICE, "jobs", "auto"},
    {K_SPICE, "chunk", "250"}, {K_SPICE, "rows", "auto"}, {K_SPICE, "energy", "off"},
    {K_SPICE, "read-time", "1e-07"}, {K_SPICE, "c-wire", "2e-16"},
    {K_PERTURB, "model", "none"}, {K_PERTURB, "ar", "1"}, {K_PERTURB, "sigma", "0"}, {K_PERTURB, "alpha", "0"},
    {K_PERTURB, "lrs", "0"}, {K_PERTURB, "hrs", "0"}, {K_PERTURB, "layers", "all"},
    {K_BACKENDS, "use", "behavioral"},
    {K_MONTECARLO, "trials", "1"}, {K_MONTECARLO, "seed", "1"},
    {K_PROGRAMMING, "cells", "128"}, {K_PROGRAMMING, "methods", "statistical circuit"},
};
#define N_ATTRS (sizeof attrs / sizeof attrs[0])

const attr_def *tb_find_attr(kind k, const char *attr)
{
    for (size_t i = 0; i < N_ATTRS; i++)
        if (attrs[i].k == k && !strcmp(attrs[i].attr, attr))
            return &attrs[i];
    return NULL;
}

/* Read-only parameters computed per point, for plots and analyses. */
int tb_is_derived(const char *param)
{
    return !strcmp(param, "network.synapses") || !strcmp(param, "network.layers") || !strcmp(param, "network.neurons");
}

const element *tb_find_element(const xb_tb *tb, const char *key)
{
    for (size_t i = 0; i < tb->n_elements; i++)
        if (!strcmp(tb->elements[i].key, key))
            return &tb->elements[i];
    return NULL;
}

/* The kind of parameter key (an element key, or a singleton kind that is not written and keeps its
 * defaults); -1 if none. */
int tb_key_kind(const xb_tb *tb, const char *key)
{
    const element *e = tb_find_element(tb, key);
    if (e)
        return (int)e->k;
    for (int k = 0; k < K_N; k++)
        if (k != K_LEVELS && k != K_PERTURB && !strcmp(tb_kind_names[k], key))
            return k;
    return -1;
}

/* Split "key.attr". */
int tb_split_param(const char *param, char *key, size_t klen, char *attr, size_t alen)
{
    const char *dot = strrchr(param, '.');
    if (!dot || dot == param || (size_t)(dot - param) >= klen || strlen(dot + 1) >= alen)
        return -1;
    snprintf(key, klen, "%.*s", (int)(dot - param), param);
    snprintf(attr, alen, "%s", dot + 1);
    return 0;
}

/* Is param something a sweep may set? The message says what exists. */
int tb_check_param(loader *ld, const char *param, int line)
{
    char key[64], attr[32];
    if (tb_split_param(param, key, sizeof key, attr, sizeof attr))
        return FAIL_AT(ld, line, "parameter '%s': allowed: ELEMENT.ATTRIBUTE, e.g. network.hidden or c2c.sigma", param);
    if (tb_is_derived(param))
        return FAIL_AT(ld, line, "parameter '%s' is computed from the network and cannot be set; allowed: the "
                       "attributes of dataset, network, device, chip, behavioral, spice, montecarlo, and of levels "
                       "and perturb elements by id", param);
    int k = tb_key_kind(ld->tb, key);
    if (k < 0) {
        char ids[512] = "";
        size_t at = 0;
        for (size_t i = 0; i < ld->tb->n_elements && at < sizeof ids; i++)
            if (ld->tb->elements[i].k == K_LEVELS || ld->tb->elements[i].k == K_PERTURB)
                at += (size_t)snprintf(ids + at, sizeof ids - at, " %s", ld->tb->elements[i].key);
        return FAIL_AT(ld, line, "parameter '%s': no element '%s'; allowed: dataset, network, device, chip, behavioral, "
                       "spice, montecarlo, programming, or a levels/perturb id:%s", param, key, ids[0] ? ids : " (none here)");
    }
    if (!tb_find_attr((kind)k, attr) || !strcmp(attr, "id")) {
        char list[512] = "";
        size_t at = 0;
        for (size_t i = 0; i < N_ATTRS && at < sizeof list; i++)
            if ((int)attrs[i].k == k)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", attrs[i].attr);
        return FAIL_AT(ld, line, "parameter '%s': <%s> has no attribute '%s'; allowed: %s", param, tb_kind_names[k], attr,
                       list);
    }
    return XB_OK;
}

int tb_add_setting(setting **v, size_t *n, const char *key, const char *attr, const char *value, int line,
                   xb_error *err)
{
    setting *grown = realloc(*v, (*n + 1) * sizeof *grown);
    if (!grown)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    *v = grown;
    setting *s = &grown[*n];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key);
    snprintf(s->attr, sizeof s->attr, "%s", attr);
    s->line = line;
    if (!(s->value = strdup(value)))
        return xb_fail(err, XB_ENOMEM, "out of memory");
    (*n)++;
    return XB_OK;
}

int tb_add_param_setting(loader *ld, setting **v, size_t *n, const char *param, const char *value, int line)
{
    int rc = tb_check_param(ld, param, line);
    if (rc)
        return rc;
    char key[64], attr[32];
    tb_split_param(param, key, sizeof key, attr, sizeof attr);
    return tb_add_setting(v, n, key, attr, value, line, ld->err);
}
