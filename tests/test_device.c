// test_device: the default device file equals the built-in defaults; every malformed file is refused with file:line
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "device.h"

#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

static char tmpdir[64];
static char default_xml[1 << 16];

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void read_default_xml(void)
{
    FILE *f = fopen(XB_SOURCE_DIR "/models/hfo2_1t1r.xml", "r");
    if (!f) {
        perror(XB_SOURCE_DIR "/models/hfo2_1t1r.xml");
        exit(1);
    }
    size_t n = fread(default_xml, 1, sizeof default_xml - 1, f);
    default_xml[n] = '\0';
    fclose(f);
}

/* text with the first occurrence of `from` replaced by `to` (malloc'd). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    if (!p) {
        fprintf(stderr, "test setup: '%s' not in the text\n", from);
        exit(1);
    }
    size_t a = (size_t)(p - text), lf = strlen(from), lt = strlen(to), n = strlen(text);
    char *s = malloc(n - lf + lt + 1);
    memcpy(s, text, a);
    memcpy(s + a, to, lt);
    memcpy(s + a + lt, p + lf, n - a - lf + 1);
    return s;
}

/* The default file with one change. */
static char *variant(const char *from, const char *to)
{
    return replace(default_xml, from, to);
}

/* 1-based line of the first occurrence of needle in text. */
static int line_in(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    int line = 1;
    for (const char *q = text; p && q < p; q++)
        line += *q == '\n';
    return p ? line : -1;
}

/* Write text as name (beside a copy of the schema) and expect XB_EINPUT whose message names the file,
 * "FILE:LINE" and the element. */
static void expect_bad_xsd(const char *name, const char *text, int line, const char *element, const char *xsd)
{
    char path[256], want[320];
    tpath(path, sizeof path, name);
    write_text(path, text);
    xb_device d;
    xb_error err = { 0 };
    int rc = xb_device_load(path, xsd, &d, &err);
    CHECK(rc == XB_EINPUT, "%s: rc %d (%s)", name, rc, err.msg);
    snprintf(want, sizeof want, "%s:%d:", path, line);
    CHECK(strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", name, want, err.msg);
    if (element) {
        snprintf(want, sizeof want, "<%s>", element);
        CHECK(strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", name, want, err.msg);
    }
    printf("  %-22s -> %s\n", name, err.msg);
    unlink(path);
}

static void expect_bad(const char *name, const char *text, int line, const char *element)
{
    expect_bad_xsd(name, text, line, element, NULL);
}

static void check_equal(const xb_device *a, const xb_device *b)
{
    CHECK(strcmp(a->name, b->name) == 0, "name %s vs %s", a->name, b->name);
    CHECK(a->v_read_V == b->v_read_V, "v_read_V %g vs %g", a->v_read_V, b->v_read_V);
    CHECK(a->vg_read_V == b->vg_read_V, "vg_read_V %g vs %g", a->vg_read_V, b->vg_read_V);
    CHECK(a->g_hrs_S == b->g_hrs_S, "g_hrs_S %g vs %g", a->g_hrs_S, b->g_hrs_S);
    CHECK(a->g_lrs_S == b->g_lrs_S, "g_lrs_S %g vs %g", a->g_lrs_S, b->g_lrs_S);
    CHECK(a->n_levels == b->n_levels, "n_levels %d vs %d", a->n_levels, b->n_levels);
    for (int l = 0; l < XB_DEVICE_MAX_LEVELS; l++)
        CHECK(a->i_trg_A[l] == b->i_trg_A[l], "i_trg_A[%d] %.17g vs %.17g", l, a->i_trg_A[l], b->i_trg_A[l]);
    const xb_igvva_params *p = &a->igvva, *q = &b->igvva;
    CHECK(p->v_set_V == q->v_set_V, "v_set_V");
    CHECK(p->t_set_s == q->t_set_s, "t_set_s");
    CHECK(p->vg_start_V == q->vg_start_V, "vg_start_V");
    CHECK(p->vg_step_V == q->vg_step_V, "vg_step_V");
    CHECK(p->vg_max_V == q->vg_max_V, "vg_max_V");
    CHECK(p->tolerance_A == q->tolerance_A, "tolerance_A");
    CHECK(p->max_pulses == q->max_pulses, "max_pulses");
    CHECK(p->max_retries == q->max_retries, "max_retries");
    CHECK(p->k_n_A_per_V2 == q->k_n_A_per_V2, "k_n_A_per_V2");
    CHECK(p->v_th_V == q->v_th_V, "v_th_V");
    CHECK(p->v_c_V == q->v_c_V, "v_c_V");
    CHECK(p->sigma_c2c == q->sigma_c2c, "sigma_c2c");
    CHECK(a->sigma_d2d == b->sigma_d2d, "sigma_d2d");
    CHECK(a->sigma_read == b->sigma_read, "sigma_read");
    CHECK(a->p_stuck_lrs == b->p_stuck_lrs, "p_stuck_lrs");
    CHECK(a->p_stuck_hrs == b->p_stuck_hrs, "p_stuck_hrs");
    CHECK(strcmp(a->mosfet_model_file, b->mosfet_model_file) == 0, "mosfet_model_file %s vs %s", a->mosfet_model_file,
          b->mosfet_model_file);
    CHECK(strcmp(a->mosfet_model_name, b->mosfet_model_name) == 0, "mosfet_model_name");
    CHECK(a->access_w_m == b->access_w_m, "access_w_m %g vs %g", a->access_w_m, b->access_w_m);
    CHECK(a->access_l_m == b->access_l_m, "access_l_m %g vs %g", a->access_l_m, b->access_l_m);
    CHECK(strcmp(a->rram_model_file, b->rram_model_file) == 0, "rram_model_file %s vs %s", a->rram_model_file,
          b->rram_model_file);
}

static void test_default_file(void)
{
    xb_device def, got;
    xb_device_defaults(&def);
    memset(&got, 0x5a, sizeof got);
    xb_error err = { 0 };
    const char *path = XB_SOURCE_DIR "/models/hfo2_1t1r.xml";
    int rc = xb_device_load(path, NULL, &got, &err);
    CHECK(rc == XB_OK, "loading %s: %s", path, err.msg);
    if (rc)
        return;
    check_equal(&got, &def);
    CHECK(strcmp(got.source_path, path) == 0, "source_path %s", got.source_path);
    CHECK(def.source_path[0] == '\0', "defaults have no source path");
    CHECK(xb_device_check(&def, &err) == XB_OK, "defaults break a rule: %s", err.msg);
    CHECK_REL(xb_device_level_G(&def, 0), 10e-6 / 0.2, 1e-15, "level 0 G");
    CHECK_REL(xb_device_level_G(&def, 7), 80e-6 / 0.2, 1e-15, "level 7 G");
    CHECK(isnan(xb_device_level_G(&def, 8)) && isnan(xb_device_level_G(&def, -1)), "out-of-range level is NaN");

    /* An explicit schema path, and a copy elsewhere: the schema is found beside the file, model paths
     * resolve against the file's folder. */
    char copy[256];
    tpath(copy, sizeof copy, "copy.xml");
    write_text(copy, default_xml);
    rc = xb_device_load(copy, XB_SOURCE_DIR "/models/device.xsd", &got, &err);
    CHECK(rc == XB_OK, "copy with explicit xsd: %s", err.msg);
    char want[300];
    snprintf(want, sizeof want, "%s/nmos_l1.lib", tmpdir);
    CHECK(strcmp(got.mosfet_model_file, want) == 0, "relative model path resolved: %s", got.mosfet_model_file);
    rc = xb_device_load(copy, "/nonexistent/device.xsd", &got, &err);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "/nonexistent/device.xsd"), "missing explicit xsd: %d %s", rc, err.msg);
    unlink(copy);

    char missing[256];
    tpath(missing, sizeof missing, "missing.xml");
    rc = xb_device_load(missing, NULL, &got, &err);
    CHECK(rc != XB_OK && strstr(err.msg, "missing.xml"), "missing file: %d %s", rc, err.msg);
}

static void test_struct_check(void)
{
    xb_device d;
    xb_error err = { 0 };
    xb_device_defaults(&d);
    d.i_trg_A[3] = d.i_trg_A[2];
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "i_trg_A"), "equal targets: %s", err.msg);
    xb_device_defaults(&d);
    d.igvva.vg_max_V = 1.0;
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "unreachable"), "low vg_max: %s", err.msg);
    xb_device_defaults(&d);
    d.igvva.max_pulses = 50; /* the staircase stops at 1.09 V: 21.8 uA, so 30 uA (level 2) fails */
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "level 2"), "few pulses: %s", err.msg);
    xb_device_defaults(&d);
    d.sigma_d2d = -1e-3;
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "sigma_d2d"), "negative sigma: %s", err.msg);
    xb_device_defaults(&d);
    d.p_stuck_lrs = 0.6;
    d.p_stuck_hrs = 0.6;
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "sum"), "stuck sum: %s", err.msg);
    xb_device_defaults(&d);
    d.n_levels = 1;
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "levels"), "one level: %s", err.msg);
}

/* A schema that accepts any content: the loader's own rules must still catch what the real schema
 * would, with file:line. */
static void test_lax_schema(void)
{
    char xsd[256];
    tpath(xsd, sizeof xsd, "lax.xsd");
    write_text(xsd, "<?xml version=\"1.0\"?>\n"
                    "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n"
                    "  <xs:element name=\"device\"><xs:complexType><xs:sequence>\n"
                    "    <xs:any processContents=\"skip\" minOccurs=\"0\" maxOccurs=\"unbounded\"/>\n"
                    "  </xs:sequence><xs:anyAttribute processContents=\"skip\"/></xs:complexType></xs:element>\n"
                    "</xs:schema>\n");
    printf("lax schema, the loader's own checks (messages shown):\n");
    xb_device d;
    xb_error err = { 0 };
    char path[256];
    tpath(path, sizeof path, "lax_ok.xml");
    write_text(path, default_xml);
    CHECK(xb_device_load(path, xsd, &d, &err) == XB_OK, "default file under the lax schema: %s", err.msg);
    unlink(path);

    char *s = variant("<sigma_c2c>0.05</sigma_c2c>", "<sigma_c2c>-0.05</sigma_c2c>");
    expect_bad_xsd("lax_sigma.xml", s, line_in(s, "<sigma_c2c>"), "sigma_c2c", xsd);
    free(s);
    s = variant("<p_stuck_lrs>0</p_stuck_lrs>", "<p_stuck_lrs>1.01</p_stuck_lrs>");
    expect_bad_xsd("lax_prob.xml", s, line_in(s, "<p_stuck_lrs>"), "p_stuck_lrs", xsd);
    free(s);
    s = variant("<g_lrs_S>9e-4</g_lrs_S>", "");
    expect_bad_xsd("lax_missing.xml", s, line_in(s, "<states>"), "states", xsd);
    free(s);
    s = variant("<v_c_V>0.4</v_c_V>", "<v_c_V>0.4V</v_c_V>");
    expect_bad_xsd("lax_number.xml", s, line_in(s, "<v_c_V>"), "v_c_V", xsd);
    free(s);
    s = variant("<max_retries>3</max_retries>", "<max_retries>-1</max_retries>");
    expect_bad_xsd("lax_int.xml", s, line_in(s, "<max_retries>"), "max_retries", xsd);
    free(s);
    {
        const char *a = strstr(default_xml, "<levels>"), *b = strstr(default_xml, "</levels>");
        s = malloc(strlen(default_xml) + 64);
        int k = sprintf(s, "%.*s<levels>\n    <i_trg_A>10e-6</i_trg_A>\n  ", (int)(a - default_xml), default_xml);
        memcpy(s + k, b, strlen(b) + 1);
        expect_bad_xsd("lax_one_level.xml", s, line_in(s, "<levels>"), "levels", xsd);
        free(s);
    }
    unlink(xsd);
}

static void test_malformed(void)
{
    char *s;
    printf("malformed files (messages shown):\n");

    expect_bad("not_xml.xml", "<device name=\"x\" version=\"1\">\n<read>\n<v_read_V>0.2</v_read_V>\n</device>\n", 4, "read");

    s = variant("<vg_read_V>2.5</vg_read_V>", "<vg_read_V>2.5</vg_read_V><bogus_V>1</bogus_V>");
    expect_bad("unknown.xml", s, line_in(s, "<bogus_V>"), "bogus_V");
    free(s);

    s = variant("<g_lrs_S>9e-4</g_lrs_S>", "");
    expect_bad("missing.xml", s, line_in(s, "<states>"), "states");
    free(s);

    s = variant("<v_read_V>0.2</v_read_V>", "<v_read_V>0.2 volt</v_read_V>");
    expect_bad("non_numeric.xml", s, line_in(s, "<v_read_V>"), "v_read_V");
    free(s);

    s = variant("<sigma_read>0.01</sigma_read>", "<sigma_read>-0.01</sigma_read>");
    expect_bad("negative_sigma.xml", s, line_in(s, "<sigma_read>"), "sigma_read");
    free(s);

    s = variant("<p_stuck_hrs>0</p_stuck_hrs>", "<p_stuck_hrs>1.5</p_stuck_hrs>");
    expect_bad("probability.xml", s, line_in(s, "<p_stuck_hrs>"), "p_stuck_hrs");
    free(s);

    s = variant("<i_trg_A>30e-6</i_trg_A>", "<i_trg_A>15e-6</i_trg_A>");
    expect_bad("not_ascending.xml", s, line_in(s, "<i_trg_A>15e-6"), "i_trg_A");
    free(s);

    s = variant("<i_trg_A>20e-6</i_trg_A>", "<i_trg_A>11e-6</i_trg_A>");
    expect_bad("overlapping.xml", s, line_in(s, "<i_trg_A>11e-6"), "i_trg_A");
    free(s);

    {
        const char *a = strstr(default_xml, "<levels>"), *b = strstr(default_xml, "</levels>");
        size_t n = strlen(default_xml);
        s = malloc(n + 64);
        int k = sprintf(s, "%.*s<levels>\n    <i_trg_A>10e-6</i_trg_A>\n  ", (int)(a - default_xml), default_xml);
        memcpy(s + k, b, strlen(b) + 1);
        expect_bad("one_level.xml", s, line_in(s, "<levels>"), "levels");
        free(s);
    }

    s = variant("<i_trg_A>80e-6</i_trg_A>", "<i_trg_A>80e-6</i_trg_A>\n    <i_trg_A>500e-6</i_trg_A>");
    expect_bad("unreachable.xml", s, line_in(s, "<i_trg_A>500e-6"), "i_trg_A");
    free(s);

    s = variant("<vg_max_V>2.2</vg_max_V>", "<vg_max_V>0.5</vg_max_V>");
    expect_bad("vg_order.xml", s, line_in(s, "<vg_max_V>"), "vg_max_V");
    free(s);

    s = variant("<max_pulses>200</max_pulses>", "<max_pulses>2.5</max_pulses>");
    expect_bad("non_integer.xml", s, line_in(s, "<max_pulses>"), "max_pulses");
    free(s);

    s = variant("<device name=\"hfo2_1t1r\" version=\"1\">", "<device version=\"1\">");
    expect_bad("no_name.xml", s, line_in(s, "<device version"), "device");
    free(s);

    /* XXE: the external entity must never be expanded; the DOCTYPE itself is refused. */
    {
        const char *decl = "<device name=\"hfo2_1t1r\" version=\"1\">";
        const char *xxe = "<!DOCTYPE device [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n"
                          "<device name=\"hfo2_1t1r\" version=\"1\">";
        char *t = variant(decl, xxe);
        s = replace(t, "<mosfet_model_name>nmos1t1r</mosfet_model_name>", "<mosfet_model_name>&xxe;</mosfet_model_name>");
        free(t);
        char path[256];
        tpath(path, sizeof path, "xxe.xml");
        write_text(path, s);
        xb_device d;
        memset(&d, 0, sizeof d);
        xb_error err = { 0 };
        int rc = xb_device_load(path, NULL, &d, &err);
        CHECK(rc != XB_OK || strstr(d.mosfet_model_name, "root") == NULL, "XXE expanded: %s", d.mosfet_model_name);
        CHECK(rc == XB_EINPUT, "XXE file accepted (rc %d)", rc);
        char want[300];
        snprintf(want, sizeof want, "xxe.xml:%d:", line_in(s, "<!DOCTYPE"));
        CHECK(strstr(err.msg, want) && strstr(err.msg, "DOCTYPE"), "XXE message lacks %s: %s", want, err.msg);
        CHECK(strstr(err.msg, "root:") == NULL, "XXE message leaks the file: %s", err.msg);
        printf("  %-22s -> %s\n", "xxe.xml", err.msg);
        unlink(path);
        free(s);
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    if (!in || !out) {
        perror(from);
        exit(1);
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

/* The SPICE model fields: the files must exist and define what the decks call, else the device file is
 * refused with file:line, the element and the fix (not a deck that ngspice rejects in every worker). */
static void test_models(void)
{
    printf("model files (messages shown):\n");
    char *s = variant("<mosfet_model_file>nmos_l1.lib</mosfet_model_file>",
                      "<mosfet_model_file>no_such_card.lib</mosfet_model_file>");
    expect_bad("missing_card.xml", s, line_in(s, "<mosfet_model_file>"), "mosfet_model_file");
    free(s);
    s = variant("<rram_model_file>rram.lib</rram_model_file>", "<rram_model_file>sub/none.lib</rram_model_file>");
    expect_bad("missing_rram.xml", s, line_in(s, "<rram_model_file>"), "rram_model_file");
    free(s);
    s = variant("<mosfet_model_name>nmos1t1r</mosfet_model_name>", "<mosfet_model_name>nch_typo</mosfet_model_name>");
    expect_bad("wrong_model.xml", s, line_in(s, "<mosfet_model_name>"), "mosfet_model_name");
    free(s);

    /* A card from a PDK: binned models NAME.1, NAME.2 count as NAME, any case; a card that pulls in
     * other files cannot be checked by name here (ngspice's own error then fails the run). */
    char card[256], path[256];
    tpath(card, sizeof card, "pdk.lib");
    write_text(card, "* a binned PDK card\n.MODEL NCH.1 NMOS LEVEL=8 VTH0=0.5\n+ TOX=5e-9\n"
                     ".model nch.2 nmos level=8 vth0=0.5\n");
    s = variant("<mosfet_model_file>nmos_l1.lib</mosfet_model_file>", "<mosfet_model_file>pdk.lib</mosfet_model_file>");
    char *t = replace(s, "<mosfet_model_name>nmos1t1r</mosfet_model_name>", "<mosfet_model_name>nch</mosfet_model_name>");
    tpath(path, sizeof path, "pdk.xml");
    write_text(path, t);
    xb_device d;
    xb_error err = { 0 };
    CHECK(xb_device_load(path, NULL, &d, &err) == XB_OK && !strcmp(d.mosfet_model_name, "nch"),
          "binned PDK card: %s", err.msg);
    free(t);
    t = replace(s, "<mosfet_model_name>nmos1t1r</mosfet_model_name>", "<mosfet_model_name>pch</mosfet_model_name>");
    expect_bad("pdk_wrong.xml", t, line_in(t, "<mosfet_model_name>"), "mosfet_model_name");
    free(t);
    write_text(card, "* a card that includes its corners\n.include 'corners.lib'\n");
    t = replace(s, "<mosfet_model_name>nmos1t1r</mosfet_model_name>", "<mosfet_model_name>pch</mosfet_model_name>");
    write_text(path, t);
    CHECK(xb_device_load(path, NULL, &d, &err) == XB_OK, "a card with .include is not checked by name: %s", err.msg);
    free(t);
    free(s);
    unlink(card);
    unlink(path);

    /* An RRAM file of the old kind (models only, no 1T1R cell subcircuits). */
    char old[256];
    tpath(old, sizeof old, "old_rram.lib");
    write_text(old, ".subckt rram_lin te be g=1e-4\nRm te be {1/g}\n.ends rram_lin\n");
    s = variant("<rram_model_file>rram.lib</rram_model_file>", "<rram_model_file>old_rram.lib</rram_model_file>");
    expect_bad("old_rram.xml", s, line_in(s, "<rram_model_file>"), "rram_model_file");
    free(s);
    unlink(old);

    /* The access transistor's size: optional (default 1 um x 1 um), in metres. */
    s = variant("    <access_w_m>1e-6</access_w_m>\n    <access_l_m>1e-6</access_l_m>\n", "");
    tpath(path, sizeof path, "no_size.xml");
    write_text(path, s);
    memset(&d, 0, sizeof d);
    CHECK(xb_device_load(path, NULL, &d, &err) == XB_OK, "no access size given: %s", err.msg);
    CHECK(d.access_w_m == 1e-6 && d.access_l_m == 1e-6, "default access size %g x %g", d.access_w_m, d.access_l_m);
    unlink(path);
    free(s);
    s = variant("<access_w_m>1e-6</access_w_m>", "<access_w_m>2.5e-6</access_w_m>");
    tpath(path, sizeof path, "wide.xml");
    write_text(path, s);
    CHECK(xb_device_load(path, NULL, &d, &err) == XB_OK && d.access_w_m == 2.5e-6, "W = 2.5 um read: %s %g", err.msg,
          d.access_w_m);
    unlink(path);
    free(s);
    s = variant("<access_l_m>1e-6</access_l_m>", "<access_l_m>1</access_l_m>");
    expect_bad("metre_long.xml", s, line_in(s, "<access_l_m>"), "access_l_m");
    free(s);
    s = variant("<access_w_m>1e-6</access_w_m>", "<access_w_m>1u</access_w_m>");
    expect_bad("spice_suffix.xml", s, line_in(s, "<access_w_m>"), "access_w_m");
    free(s);

    /* The same check on a struct, for callers that set the fields themselves. */
    xb_device_defaults(&d);
    CHECK(xb_device_check_models(&d, &err) == XB_OK, "default models: %s", err.msg);
    snprintf(d.mosfet_model_name, sizeof d.mosfet_model_name, "%s", "nmos_other");
    CHECK(xb_device_check_models(&d, &err) == XB_EINPUT && strstr(err.msg, "nmos_other") &&
          strstr(err.msg, "nmos1t1r"), "struct with a wrong model name: %s", err.msg);
}

/* Absurd values are refused at load with the file, the line, the element and the allowed range; model
 * paths come back absolute whatever the working folder; a device node as a model file is named as such. */
static void test_ranges_and_paths(void)
{
    printf("ranges and paths (messages shown):\n");
    static const struct {
        const char *from, *to, *element, *range;
    } bad[] = {
        {"<v_read_V>0.2</v_read_V>", "<v_read_V>1e6</v_read_V>", "v_read_V", "<= 5 V"},
        {"<vg_read_V>2.5</vg_read_V>", "<vg_read_V>300</vg_read_V>", "vg_read_V", "<= 20 V"},
        {"<g_lrs_S>9e-4</g_lrs_S>", "<g_lrs_S>1e3</g_lrs_S>", "g_lrs_S", "<= 1 S"},
        {"<g_hrs_S>5e-6</g_hrs_S>", "<g_hrs_S>1e-15</g_hrs_S>", "g_hrs_S", "1e-12 S <="},
        {"<t_set_s>1e-6</t_set_s>", "<t_set_s>50</t_set_s>", "t_set_s", "<= 1 s"},
        {"<k_n_A_per_V2>250e-6</k_n_A_per_V2>", "<k_n_A_per_V2>1e30</k_n_A_per_V2>", "k_n_A_per_V2", "<= 1 A/V^2"},
        {"<sigma_read>0.01</sigma_read>", "<sigma_read>1e9</sigma_read>", "sigma_read", "<= 10"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *s = variant(bad[k].from, bad[k].to), name[64];
        snprintf(name, sizeof name, "range_%s.xml", bad[k].element);
        char path[256];
        tpath(path, sizeof path, name);
        write_text(path, s);
        xb_device d;
        xb_error err = {0};
        char want[320];
        snprintf(want, sizeof want, "%s:%d: element <%s>", path, line_in(s, bad[k].to), bad[k].element);
        CHECK(xb_device_load(path, NULL, &d, &err) == XB_EINPUT && strstr(err.msg, want) &&
              strstr(err.msg, bad[k].range), "%s: want '%s' and '%s': %s", name, want, bad[k].range, err.msg);
        printf("  %-22s -> %s\n", name, err.msg);
        unlink(path);
        free(s);
    }
    xb_device d;
    xb_device_defaults(&d);
    d.v_read_V = INFINITY;
    xb_error err = {0};
    CHECK(xb_device_check(&d, &err) == XB_EINPUT && strstr(err.msg, "v_read_V"), "infinite read voltage: %s", err.msg);

    /* Relative model paths resolve against the device file's folder, to absolute paths, from any
     * working folder: ngspice reads them in a worker's folder of its own. */
    char path[256], cwd[4096];
    char *s = variant("<v_read_V>0.2</v_read_V>", "<v_read_V>0.2</v_read_V>");
    tpath(path, sizeof path, "rel.xml");
    write_text(path, s);
    free(s);
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        memset(&d, 0, sizeof d);
        CHECK(xb_device_load("rel.xml", NULL, &d, &err) == XB_OK, "relative device file: %s", err.msg);
        char want[4400];
        snprintf(want, sizeof want, "%s/nmos_l1.lib", tmpdir);
        CHECK(!strcmp(d.mosfet_model_file, want), "mosfet_model_file %s, want %s", d.mosfet_model_file, want);
        snprintf(want, sizeof want, "%s/rram.lib", tmpdir);
        CHECK(!strcmp(d.rram_model_file, want), "rram_model_file %s, want %s", d.rram_model_file, want);
        CHECK(d.mosfet_model_file[0] == '/', "absolute: %s", d.mosfet_model_file);
        if (chdir("/") == 0) {
            char rel[300];
            snprintf(rel, sizeof rel, "%s/rel.xml", tmpdir + 1); /* relative to / */
            memset(&d, 0, sizeof d);
            CHECK(xb_device_load(rel, NULL, &d, &err) == XB_OK && !strcmp(d.rram_model_file, want),
                  "from /: %s (%s)", d.rram_model_file, err.msg);
        }
        CHECK(chdir(cwd) == 0, "back to %s", cwd);
    }
    unlink(path);

    s = variant("<mosfet_model_file>nmos_l1.lib</mosfet_model_file>", "<mosfet_model_file>/dev/zero</mosfet_model_file>");
    tpath(path, sizeof path, "devzero.xml");
    write_text(path, s);
    CHECK(xb_device_load(path, NULL, &d, &err) == XB_EINPUT && strstr(err.msg, "not a regular file") &&
          !strstr(err.msg, "does not exist"), "/dev/zero: %s", err.msg);
    printf("  %-22s -> %s\n", "devzero.xml", err.msg);
    unlink(path);
    free(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xb_test_device_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* The schema beside the temporary files, as a user's copy would have it. */
    {
        char xsd_copy[256];
        tpath(xsd_copy, sizeof xsd_copy, "device.xsd");
        FILE *in = fopen(XB_SOURCE_DIR "/models/device.xsd", "r"), *out = fopen(xsd_copy, "w");
        if (!in || !out) {
            perror("copying device.xsd");
            return 1;
        }
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
    }
    /* And the model files the default device names, relative to its folder. */
    char lib_copy[256];
    tpath(lib_copy, sizeof lib_copy, "nmos_l1.lib");
    copy_file(XB_SOURCE_DIR "/models/nmos_l1.lib", lib_copy);
    tpath(lib_copy, sizeof lib_copy, "rram.lib");
    copy_file(XB_SOURCE_DIR "/models/rram.lib", lib_copy);
    read_default_xml();
    test_default_file();
    test_struct_check();
    test_malformed();
    test_lax_schema();
    test_models();
    test_ranges_and_paths();

    char xsd_copy[256];
    tpath(xsd_copy, sizeof xsd_copy, "device.xsd");
    unlink(xsd_copy);
    tpath(lib_copy, sizeof lib_copy, "nmos_l1.lib");
    unlink(lib_copy);
    tpath(lib_copy, sizeof lib_copy, "rram.lib");
    unlink(lib_copy);
    if (rmdir(tmpdir) != 0)
        perror(tmpdir);
    return check_summary("test_device");
}
