// test_testbench: loading testbench XML: points of grids and axes, per-point configurations, and every kind of bad file
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "check.h"
#include "mc.h"
#include "mlp.h"
#include "testbench.h"
#include "train.h"

#define XSD XB_SOURCE_DIR "/testbenches/testbench.xsd"

static char dir[] = "/tmp/xb_test_tb_XXXXXX";

/* Write text to DIR/name and return the path (static buffer). */
static const char *write_tb(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Load text and expect XB_EINPUT with a message holding every given fragment. */
static void expect_error(const char *what, const char *text, const char *frag1, const char *frag2)
{
    xb_tb *tb = NULL;
    xb_error err = {0};
    const char *path = write_tb("bad.xml", text);
    int rc = xb_tb_load(path, XSD, &tb, &err);
    CHECK(rc == XB_EINPUT, "%s: expected XB_EINPUT, got %d (%s)", what, rc, err.msg);
    CHECK(tb == NULL, "%s: no testbench on failure", what);
    CHECK(strstr(err.msg, frag1) != NULL, "%s: message lacks '%s': %s", what, frag1, err.msg);
    if (frag2)
        CHECK(strstr(err.msg, frag2) != NULL, "%s: message lacks '%s': %s", what, frag2, err.msg);
    xb_tb_free(&tb);
}

static const char good[] =
    "<?xml version=\"1.0\"?>\n"                                                           /* 1 */
    "<testbench name=\"t1\" version=\"1\">\n"                                               /* 2 */
    "  <title>unit test</title>\n"                                                         /* 3 */
    "  <dataset name=\"mnist\" images=\"100\"/>\n"                                          /* 4 */
    "  <network hidden=\"8\" epochs=\"3\"/>\n"                                              /* 5 */
    "  <levels id=\"q\" spec=\"set3\" layers=\"last\"/>\n"                                  /* 6 */
    "  <perturb id=\"c2c\" model=\"c2c\" ar=\"0.5\" sigma=\"0.1\"/>\n"                      /* 7 */
    "  <montecarlo trials=\"7\" seed=\"9\"/>\n"                                             /* 8 */
    "  <quick images=\"20\" trials=\"2\"/>\n"                                               /* 9 */
    "  <sweep>\n"                                                                           /* 10 */
    "    <grid label=\"a\">\n"                                                              /* 11 */
    "      <set param=\"c2c.ar\" value=\"1\"/>\n"                                           /* 12 */
    "      <axis param=\"c2c.sigma\" from=\"0\" to=\"0.5\" step=\"0.1\"/>\n"                /* 13 */
    "      <axis name=\"net\">\n"                                                           /* 14 */
    "        <value label=\"slp\"><set param=\"network.hidden\" value=\"none\"/></value>\n" /* 15 */
    "        <value label=\"mlp\"><set param=\"network.hidden\" value=\"16,8\"/>\n"         /* 16 */
    "                             <set param=\"network.lr\" value=\"0.05\"/></value>\n"     /* 17 */
    "      </axis>\n"                                                                       /* 18 */
    "    </grid>\n"                                                                         /* 19 */
    "    <grid>\n"                                                                          /* 20 */
    "      <axis param=\"chip.tile\" values=\"32x32 64x64\"/>\n"                            /* 21 */
    "      <axis param=\"spice.r-row\" from=\"0.1\" to=\"10\" count=\"3\" scale=\"log\"/>\n" /* 22 */
    "    </grid>\n"                                                                         /* 23 */
    "  </sweep>\n"                                                                          /* 24 */
    "  <output>\n"                                                                          /* 25 */
    "    <plot grid=\"a\" x=\"c2c.sigma\" series=\"net\"/>\n"                               /* 26 */
    "    <plot name=\"r\" grid=\"2\" x=\"spice.r-row\" by=\"chip.tile\" y=\"delta_accuracy\"/>\n"
    "    <midpoint x=\"c2c.sigma\" by=\"net network.hidden\" grid=\"a\" scale=\"log\"/>\n"
    "    <kruskal x=\"network.synapses\" bins=\"0 4096 8192\"/>\n"
    "  </output>\n"
    "</testbench>\n";

static void test_points(void)
{
    xb_tb *tb = NULL;
    xb_error err = {0};
    const char *path = write_tb("good.xml", good);
    CHECK(xb_tb_load(path, XSD, &tb, &err) == XB_OK, "good testbench loads: %s", err.msg);
    if (!tb)
        return;
    CHECK(!strcmp(xb_tb_name(tb), "t1") && !strcmp(xb_tb_title(tb), "unit test"), "name and title");
    /* Grid a: 6 sigma values x 2 nets; grid 2: 2 tiles x 3 resistances. */
    CHECK(xb_tb_n_points(tb) == 12 + 6, "18 points, got %zu", xb_tb_n_points(tb));
    int sig = xb_tb_column_index(tb, "c2c.sigma"), net = xb_tb_column_index(tb, "net"),
        hid = xb_tb_column_index(tb, "network.hidden"), rrow = xb_tb_column_index(tb, "spice.r-row"),
        ar = xb_tb_column_index(tb, "c2c.ar");
    CHECK(sig >= 0 && net >= 0 && hid >= 0 && rrow >= 0 && ar >= 0, "columns exist");
    if (sig < 0 || net < 0 || hid < 0 || rrow < 0 || ar < 0) {
        xb_tb_free(&tb);
        return;
    }
    /* The first axis varies slowest; ranges print without round-off noise. */
    const char *want_sigma[6] = {"0", "0.1", "0.2", "0.3", "0.4", "0.5"};
    for (size_t k = 0; k < 12; k++) {
        CHECK(!strcmp(xb_tb_value(tb, k, (size_t)sig), want_sigma[k / 2]), "point %zu sigma %s, want %s", k + 1,
              xb_tb_value(tb, k, (size_t)sig), want_sigma[k / 2]);
        CHECK(!strcmp(xb_tb_value(tb, k, (size_t)net), k % 2 ? "mlp" : "slp"), "point %zu net", k + 1);
        CHECK(!strcmp(xb_tb_value(tb, k, (size_t)ar), "1"), "grid a sets ar = 1");
        CHECK(!strcmp(xb_tb_grid(tb, k), "a"), "grid label a");
    }
    CHECK(!strcmp(xb_tb_value(tb, 1, (size_t)hid), "16,8"), "labelled value sets hidden");
    CHECK(!strcmp(xb_tb_grid(tb, 12), "2"), "unlabelled second grid is '2', got '%s'", xb_tb_grid(tb, 12));
    CHECK(!strcmp(xb_tb_value(tb, 12, (size_t)ar), "0.5"), "grid 2 keeps the element's ar");
    CHECK(!strcmp(xb_tb_value(tb, 12, (size_t)net), ""), "grid 2 has no net label");
    CHECK(!strcmp(xb_tb_value(tb, 12, (size_t)hid), "8"), "grid 2 keeps hidden 8, got %s", xb_tb_value(tb, 12, (size_t)hid));
    CHECK(!strcmp(xb_tb_value(tb, 13, (size_t)rrow), "1"), "log range midpoint is 1, got %s",
          xb_tb_value(tb, 13, (size_t)rrow));

    xb_tb_config c;
    CHECK(xb_tb_config_of(tb, 3, 0, &c, &err) == XB_OK, "config of point 4: %s", err.msg);
    CHECK(c.n_hidden == 2 && c.hidden[0] == 16 && c.hidden[1] == 8, "point 4 is the 784-16-8-10 net");
    CHECK_REL(c.lr, 0.05, 0, "point 4 lr");
    CHECK(c.n_perturb == 1 && c.perturb[0].model.kind == XB_PERTURB_C2C, "one c2c perturbation");
    CHECK_REL(c.perturb[0].model.sigma, 0.1, 1e-15, "point 4 sigma");
    CHECK_REL(c.perturb[0].model.ar, 1, 0, "point 4 ar");
    CHECK(c.trials == 7 && c.seed == 9 && c.images == 100 && c.calib == 256, "trials, seed, images, calib defaults");
    CHECK(c.n_levels == 1 && !strcmp(c.levels[0].spec, "set3") && !strcmp(c.levels[0].layers, "last"), "levels");
    CHECK(c.activation == XB_ACT_SIGMOID && c.epochs == 3 && c.program == XB_TB_PROGRAM_IDEAL, "defaults");
    CHECK(c.backends == (XB_BACKEND_IDEAL | XB_BACKEND_BEHAVIORAL), "default backends");
    CHECK(xb_tb_config_of(tb, 0, 0, &c, &err) == XB_OK && c.n_hidden == 0 && isnan(c.lr), "point 1: SLP, auto lr");
    CHECK(xb_tb_config_of(tb, 17, 0, &c, &err) == XB_OK && c.tile_rows == 64 && c.tile_cols == 64, "point 18 tile");
    CHECK_REL(c.pool.net.r_row_ohm, 10, 1e-9, "point 18 r-row");
    CHECK_REL(c.pool.net.r_col_ohm, 1, 0, "point 18 r-col default");
    /* Quick mode caps images and trials. */
    CHECK(xb_tb_config_of(tb, 3, 1, &c, &err) == XB_OK && c.images == 20 && c.trials == 2 && c.epochs == 1,
          "quick caps: images %zu trials %zu epochs %zu", c.images, c.trials, c.epochs);
    CHECK(xb_tb_n_outputs(tb) == 4, "four outputs");
    const xb_tb_output *o = xb_tb_output_at(tb, 2);
    CHECK(o->kind == XB_OUT_MIDPOINT && o->fit_log && o->n_by == 2, "midpoint output parsed");
    o = xb_tb_output_at(tb, 3);
    CHECK(o->kind == XB_OUT_KRUSKAL && o->n_bins == 3 && o->bins[1] == 4096, "kruskal bins parsed");
    char where[600];
    xb_tb_where(tb, 3, "network.lr", where, sizeof where);
    CHECK(strstr(where, "good.xml:17") != NULL, "network.lr of point 4 comes from line 17: %s", where);
    xb_tb_where(tb, 3, "c2c.sigma", where, sizeof where);
    CHECK(strstr(where, "good.xml:13") != NULL, "c2c.sigma of point 4 comes from line 13: %s", where);
    xb_tb_free(&tb);
    CHECK(tb == NULL, "free sets NULL");
    xb_tb_free(&tb);
}

static void test_layers_mask(void)
{
    unsigned long long m;
    xb_error err = {0};
    CHECK(xb_layers_parse("all", 3, &m, &err) == XB_OK && m == 7, "all of 3");
    CHECK(xb_layers_parse("first", 3, &m, &err) == XB_OK && m == 1, "first");
    CHECK(xb_layers_parse("last", 3, &m, &err) == XB_OK && m == 4, "last");
    CHECK(xb_layers_parse("1+3", 3, &m, &err) == XB_OK && m == 5, "1+3");
    CHECK(xb_layers_parse("4", 3, &m, &err) == XB_EINPUT && strstr(err.msg, "3 layers"), "layer 4 of 3: %s", err.msg);
    CHECK(xb_layers_parse("1+", 3, &m, &err) == XB_EINPUT, "dangling +");
    CHECK(xb_layers_parse("0", 3, &m, &err) == XB_EINPUT, "layer 0");
}

#define HEAD "<?xml version=\"1.0\"?>\n<testbench name=\"t\">\n"

static void test_errors(void)
{
    char path_note[64];
    snprintf(path_note, sizeof path_note, "bad.xml:");
    expect_error("not well-formed", HEAD "  <dataset name=\"mnist\">\n</testbench>\n", "bad.xml:4", "not well-formed");
    expect_error("unknown element", HEAD "  <datasets name=\"mnist\"/>\n</testbench>\n", "bad.xml:3", "datasets");
    expect_error("unknown attribute", HEAD "  <network hiden=\"5\"/>\n</testbench>\n", "bad.xml:3", "hiden");
    expect_error("missing name", "<?xml version=\"1.0\"?>\n<testbench>\n</testbench>\n", "bad.xml:2", "name");
    expect_error("DOCTYPE with an external entity",
                 "<?xml version=\"1.0\"?>\n<!DOCTYPE testbench [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                 "<testbench name=\"t\"><title>&x;</title></testbench>\n",
                 "bad.xml:2", "DTD");
    expect_error("bad value of an attribute", HEAD "  <network epochs=\"many\"/>\n</testbench>\n", "bad.xml:3",
                 "network.epochs = 'many'");
    expect_error("unknown element in a parameter",
                 HEAD "  <sweep>\n    <axis param=\"noise.sigma\" values=\"1 2\"/>\n  </sweep>\n</testbench>\n",
                 "bad.xml:4", "no element 'noise'");
    expect_error("unknown attribute in a parameter",
                 HEAD "  <sweep>\n    <axis param=\"network.hiden\" values=\"1 2\"/>\n  </sweep>\n</testbench>\n",
                 "bad.xml:4", "no attribute 'hiden'");
    expect_error("bad value in an axis",
                 HEAD "  <perturb id=\"p\" model=\"c2c\"/>\n  <sweep>\n\n    <axis param=\"p.sigma\" values=\"0.1 abc\"/>\n"
                      "  </sweep>\n</testbench>\n",
                 "bad.xml:6", "p.sigma = 'abc'");
    expect_error("value out of range",
                 HEAD "  <perturb id=\"p\" model=\"c2c\"/>\n  <sweep>\n    <axis param=\"p.ar\" values=\"0.5 1.5\"/>\n"
                      "  </sweep>\n</testbench>\n",
                 "bad.xml:5", "from 0 to 1");
    expect_error("stuck-at probabilities above 1 together",
                 HEAD "  <perturb id=\"s\" model=\"stuck\" lrs=\"0.6\" hrs=\"0.5\"/>\n</testbench>\n",
                 "bad.xml:3", "exceeds 1");
    expect_error("derived parameter swept",
                 HEAD "  <sweep>\n    <axis param=\"network.synapses\" values=\"1 2\"/>\n  </sweep>\n</testbench>\n",
                 "bad.xml:4", "computed");
    expect_error("duplicate id",
                 HEAD "  <perturb id=\"p\" model=\"c2c\"/>\n  <perturb id=\"p\" model=\"mult\"/>\n</testbench>\n",
                 "bad.xml:4", "taken");
    expect_error("two axes on one parameter",
                 HEAD "  <sweep>\n    <axis param=\"chip.tile\" values=\"8x8\"/>\n    <axis param=\"chip.tile\" "
                      "values=\"16x16\"/>\n  </sweep>\n</testbench>\n",
                 "bad.xml:5", "swept twice");
    expect_error("odd tile width for differential pairs",
                 HEAD "  <chip tile=\"8x7\"/>\n</testbench>\n", "bad.xml:3", "even width");
    expect_error("linear spice mode with 1T1R cells",
                 HEAD "  <spice mode=\"linear\"/>\n</testbench>\n", "bad.xml:3", "linear cells");
    expect_error("bad layer selector",
                 HEAD "  <levels id=\"q\" spec=\"set1\" layers=\"1+x\"/>\n</testbench>\n", "bad.xml:3", "q.layers");
    expect_error("level set list in one element",
                 HEAD "  <levels id=\"q\" spec=\"set1/set2\"/>\n</testbench>\n", "bad.xml:3", "one level set");
    expect_error("range without step or count",
                 HEAD "  <sweep>\n    <axis param=\"chip.tile\" from=\"1\" to=\"2\"/>\n  </sweep>\n</testbench>\n",
                 "bad.xml:4", "step or count");
    expect_error("plot over a parameter that also varies",
                 HEAD "  <perturb id=\"p\" model=\"c2c\"/>\n  <sweep>\n    <axis param=\"p.ar\" values=\"0.5 1\"/>\n"
                      "    <axis param=\"p.sigma\" values=\"0 0.1\"/>\n  </sweep>\n  <output>\n"
                      "    <plot x=\"p.sigma\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:9", "'p.ar' also varies");
    expect_error("plot of a parameter not swept",
                 HEAD "  <output>\n    <plot x=\"network.hidden\"/>\n  </output>\n</testbench>\n", "bad.xml:4",
                 "not swept");
    expect_error("kruskal without ascending bins",
                 HEAD "  <sweep>\n    <axis param=\"network.hidden\" values=\"4 8\"/>\n  </sweep>\n  <output>\n"
                      "    <kruskal x=\"network.synapses\" bins=\"0 8192 4096\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:7", "ascending");
    expect_error("grid that does not exist",
                 HEAD "  <sweep>\n    <axis param=\"network.hidden\" values=\"4 8\"/>\n  </sweep>\n  <output>\n"
                      "    <plot x=\"network.hidden\" grid=\"nope\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:7", "grid 'nope'");
    expect_error("example point out of range",
                 HEAD "  <output>\n    <example point=\"3\"/>\n  </output>\n</testbench>\n", "bad.xml:4",
                 "points 1..1");
    /* A file that is not there. */
    xb_tb *tb = NULL;
    xb_error err = {0};
    CHECK(xb_tb_load("/nonexistent/tb.xml", XSD, &tb, &err) != XB_OK && strstr(err.msg, "/nonexistent/tb.xml"),
          "missing file names itself: %s", err.msg);
}

/* The entity is never expanded: even a file that only references an external entity without a DOCTYPE
 * is not well-formed, and nothing of /etc/passwd reaches the message. */
static void test_no_entity_expansion(void)
{
    xb_tb *tb = NULL;
    xb_error err = {0};
    const char *path = write_tb("ent.xml", HEAD "  <title>&xxe;</title>\n</testbench>\n");
    CHECK(xb_tb_load(path, XSD, &tb, &err) == XB_EINPUT, "undeclared entity refused");
    CHECK(strstr(err.msg, "root:") == NULL, "no file contents in the message");
    xb_tb_free(&tb);
}

/* Every shipped testbench loads. */
static void test_shipped(void)
{
    const char *names[] = {"c2c-ar-sigma", "hidden-nodes", "quantization-sets", "imprecise-computation",
                           "synapse-budget", "midpoint-noise", "circuit-vs-behavioral"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/testbenches/%s.xml", XB_SOURCE_DIR, names[i]);
        xb_tb *tb = NULL;
        xb_error err = {0};
        CHECK(xb_tb_load(path, NULL, &tb, &err) == XB_OK, "%s loads: %s", names[i], err.msg);
        CHECK(tb && xb_tb_n_points(tb) > 0, "%s has points", names[i]);
        xb_tb_free(&tb);
    }
}

/* The chip build's option parsers: one per option, shared by the CLI and testbenches. A testbench's
 * <chip> reads through them, and the training defaults it falls back to are `xbarsim train`'s. */
static void test_chip_spec(void)
{
    xb_chip_spec s;
    xb_error err = {0};
    xb_chip_spec_defaults(&s);
    CHECK(s.norm.kind == XB_NORM_MAXABS && s.tile_rows == 64 && s.tile_cols == 64 && s.calib == 256 &&
              !strcmp(s.levels, "none"), "spec defaults");
    CHECK(xb_chip_spec_set_norm(&s, "clip:0.25", &err) == XB_OK && s.norm.kind == XB_NORM_CLIP &&
              fabs(s.norm.clip - 0.25) < 1e-15, "clip:0.25 parsed: %s", err.msg);
    CHECK(xb_chip_spec_set_norm(&s, "none", &err) == XB_EINPUT && strstr(err.msg, "maxabs or clip:C") &&
              s.norm.kind == XB_NORM_CLIP, "norm none refused, spec unchanged: %s", err.msg);
    CHECK(xb_chip_spec_set_norm(&s, "clip:0", &err) == XB_EINPUT, "clip:0 refused");
    CHECK(xb_chip_spec_set_tile(&s, "8x6", &err) == XB_OK && s.tile_rows == 8 && s.tile_cols == 6, "tile 8x6");
    CHECK(xb_chip_spec_set_tile(&s, "8x1", &err) == XB_EINPUT && s.tile_cols == 6, "tile 8x1 refused");
    CHECK(xb_chip_spec_set_tile(&s, "8x8x", &err) == XB_EINPUT, "tile with trailing text refused");
    CHECK(xb_chip_spec_set_mapping(&s, "single-ended", &err) == XB_OK && s.scheme == XB_MAP_SINGLE_ENDED, "mapping");
    CHECK(xb_chip_spec_set_mapping(&s, "diff", &err) == XB_EINPUT, "mapping diff refused");
    CHECK(xb_chip_spec_set_bias(&s, "digital", &err) == XB_OK && s.bias == XB_BIAS_DIGITAL, "bias");
    CHECK(xb_chip_spec_set_bias(&s, "col", &err) == XB_EINPUT, "bias col refused");

    const char *path = write_tb("chip.xml", "<?xml version=\"1.0\"?>\n<testbench name=\"c\">\n"
                                "  <dataset calib=\"100\"/>\n"
                                "  <chip norm=\"clip:0.5\" tile=\"16x6\" mapping=\"single-ended\" bias=\"digital\"/>\n"
                                "  <spice rows=\"pwl\"/>\n"
                                "</testbench>\n");
    xb_tb *tb = NULL;
    CHECK(xb_tb_load(path, XSD, &tb, &err) == XB_OK, "chip testbench loads: %s", err.msg);
    xb_tb_config c;
    if (tb && xb_tb_config_of(tb, 0, 0, &c, &err) == XB_OK) {
        CHECK(c.chip.norm.kind == XB_NORM_CLIP && fabs(c.chip.norm.clip - 0.5) < 1e-15 && c.chip.tile_rows == 16 &&
                  c.chip.tile_cols == 6 && c.chip.scheme == XB_MAP_SINGLE_ENDED && c.chip.bias == XB_BIAS_DIGITAL &&
                  c.chip.calib == 100, "testbench chip spec");
        CHECK(c.pool.net.row_drive == XB_ROWS_PWL, "spice rows=pwl sets the row drive (%d)", c.pool.net.row_drive);
        xb_train_options td;
        xb_train_defaults(&td);
        CHECK(c.epochs == td.epochs && c.batch == td.batch && fabs(c.momentum - td.momentum) < 1e-15 &&
                  c.train_seed == td.seed, "training defaults are xb_train_defaults'");
    } else {
        CHECK(0, "config of the chip testbench: %s", err.msg);
    }
    xb_tb_free(&tb);
    expect_error("spice rows", HEAD "  <spice rows=\"dc\"/>\n</testbench>\n", "spice.rows = 'dc'",
                 "external");
}

/* <network>'s training settings: defaults train plainly, values reach the configuration, a sweep over
 * network.train-noise compares recipes, and each bad value names its line, attribute and what is allowed. */
static void test_train_settings(void)
{
    static const char text[] =
        "<?xml version=\"1.0\"?>\n"
        "<testbench name=\"hw\" version=\"1\">\n"
        "  <network hidden=\"8\" optimizer=\"adam\" dropout=\"0.2\" grad-clip=\"5\" noise-ramp=\"3\"\n"
        "           train-levels=\"nnary:2:0.01:0.01/device\" train-norm=\"none\" ste-threshold=\"1.5\"\n"
        "           act-quant=\"4:dynamic\" lr-decay=\"0.5\" lr-step=\"2\"/>\n"
        "  <sweep>\n"
        "    <axis param=\"network.train-noise\" values=\"none lognormal:sigma=0.5 mult:alpha=0.1+additive:sigma=0.05\"/>\n"
        "  </sweep>\n"
        "</testbench>\n";
    xb_tb *tb = NULL;
    xb_error err = {0};
    int rc = xb_tb_load(write_tb("hw.xml", text), XSD, &tb, &err);
    CHECK(rc == XB_OK, "training settings load: %s", err.msg);
    if (rc)
        return;
    CHECK(xb_tb_n_points(tb) == 3, "a sweep over network.train-noise has 3 points, got %zu", xb_tb_n_points(tb));
    xb_tb_config c;
    static const char *const noise[] = {"none", "lognormal:sigma=0.5", "mult:alpha=0.1+additive:sigma=0.05"};
    for (size_t k = 0; k < 3; k++) {
        rc = xb_tb_config_of(tb, k, 0, &c, &err);
        CHECK(rc == XB_OK, "point %zu: %s", k + 1, err.msg);
        CHECK(!strcmp(c.train_noise, noise[k]), "point %zu: train-noise '%s'", k + 1, c.train_noise);
    }
    CHECK(c.optimizer == XB_OPT_ADAM, "optimizer adam, got %d", c.optimizer);
    CHECK(fabs(c.dropout - 0.2) < 1e-15 && fabs(c.grad_clip - 5) < 1e-15, "dropout %g, grad-clip %g", c.dropout,
          c.grad_clip);
    CHECK(c.noise_ramp == 3 && c.lr_step == 2 && fabs(c.lr_decay - 0.5) < 1e-15, "ramp %zu, lr-step %zu, decay %g",
          c.noise_ramp, c.lr_step, c.lr_decay);
    CHECK(!strcmp(c.train_levels, "nnary:2:0.01:0.01/device") && !strcmp(c.train_norm, "none") &&
          !strcmp(c.act_quant, "4:dynamic"), "levels '%s', norm '%s', act-quant '%s'", c.train_levels, c.train_norm,
          c.act_quant);
    CHECK(fabs(c.ste_threshold - 1.5) < 1e-15, "ste-threshold %g", c.ste_threshold);
    xb_tb_free(&tb);

    /* The defaults: plain SGD, as `xbarsim train` without its hardware-aware options. */
    rc = xb_tb_load(write_tb("plain.xml", HEAD "  <network hidden=\"8\"/>\n</testbench>\n"), XSD, &tb, &err);
    CHECK(rc == XB_OK, "plain load: %s", err.msg);
    if (!rc) {
        rc = xb_tb_config_of(tb, 0, 0, &c, &err);
        CHECK(rc == XB_OK && c.optimizer == XB_OPT_SGD && c.dropout == 0 && c.grad_clip == 0 && c.lr_decay == 1 &&
              c.lr_step == 1 && c.noise_ramp == 0 && isinf(c.ste_threshold) && !strcmp(c.train_noise, "none") &&
              !strcmp(c.train_levels, "none") && !strcmp(c.train_norm, "maxabs") && !strcmp(c.act_quant, "none"),
              "plain defaults (rc %d)", rc);
        xb_tb_free(&tb);
    }

    expect_error("optimizer", HEAD "  <network optimizer=\"rmsprop\"/>\n</testbench>\n",
                 "bad.xml:3: parameter network.optimizer = 'rmsprop'", "allowed: sgd, adam");
    expect_error("dropout", HEAD "  <network dropout=\"1\"/>\n</testbench>\n", "bad.xml:3: parameter network.dropout",
                 "from 0 to 0.95");
    expect_error("conductance noise in training", HEAD "  <network train-noise=\"d2d:sigma=0.1\"/>\n</testbench>\n",
                 "bad.xml:3: parameter network.train-noise = 'd2d:sigma=0.1'", "programmed conductances");
    expect_error("unknown noise model", HEAD "  <network train-noise=\"gauss:sigma=1\"/>\n</testbench>\n",
                 "bad.xml:3: parameter network.train-noise", "allowed: none, or '+'-joined lognormal");
    expect_error("a spec per layer, one too many",
                 HEAD "  <network hidden=\"8\" train-levels=\"bits:2/bits:3/bits:4\"/>\n</testbench>\n",
                 "parameter network.train-levels", "3 specs for a network of 2 layers");
    expect_error("bad level set", HEAD "  <network train-levels=\"nnary:x\"/>\n</testbench>\n",
                 "parameter network.train-levels = 'nnary:x'", "allowed: none, device, set1..set5");
    expect_error("train-norm", HEAD "  <network train-norm=\"clip:-1\"/>\n</testbench>\n",
                 "parameter network.train-norm = 'clip:-1'", "allowed: maxabs, clip:C");
    expect_error("act-quant", HEAD "  <network act-quant=\"17:dynamic\"/>\n</testbench>\n",
                 "parameter network.act-quant = '17:dynamic'", "bits B in 1..16");
    expect_error("ste-threshold", HEAD "  <network ste-threshold=\"0\"/>\n</testbench>\n",
                 "parameter network.ste-threshold = '0'", "t_c > 0");
    expect_error("a swept bad value names the axis line",
                 HEAD "  <sweep>\n    <axis param=\"network.train-noise\" values=\"none lognormal:sigma=-1\"/>\n"
                      "  </sweep>\n</testbench>\n",
                 "bad.xml:4: parameter network.train-noise = 'lognormal:sigma=-1'", NULL);
}

/* <mcnemar> compares points input by input: only points that keep per-input predictions (spice). */
static void test_mcnemar_output(void)
{
#define MCN_HEAD HEAD "  <backends use=\"behavioral spice\"/>\n  <sweep>\n" \
                 "    <axis param=\"network.seed\" values=\"1 2\"/>\n  </sweep>\n  <output>\n"
    xb_tb *tb = NULL;
    xb_error err = {0};
    int rc = xb_tb_load(write_tb("mcn.xml", MCN_HEAD "    <mcnemar x=\"network.seed\"/>\n  </output>\n</testbench>\n"),
                        XSD, &tb, &err);
    CHECK(rc == XB_OK, "mcnemar loads: %s", err.msg);
    if (!rc) {
        CHECK(xb_tb_n_outputs(tb) == 1 && xb_tb_output_at(tb, 0)->kind == XB_OUT_MCNEMAR, "one mcnemar output");
        CHECK(!strcmp(xb_tb_output_at(tb, 0)->name, "mcnemar-network_seed-1"), "default name '%s'",
              xb_tb_output_at(tb, 0)->name);
    }
    xb_tb_free(&tb);
    expect_error("mcnemar by backend", MCN_HEAD "    <mcnemar x=\"network.seed\" by=\"backend\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:8: element <mcnemar>: by 'backend'", NULL);
    expect_error("mcnemar x derived", MCN_HEAD "    <mcnemar x=\"network.synapses\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:8: element <mcnemar>: x 'network.synapses'", NULL);
    expect_error("mcnemar without spice",
                 HEAD "  <sweep>\n    <axis param=\"network.seed\" values=\"1 2\"/>\n  </sweep>\n  <output>\n"
                      "    <mcnemar x=\"network.seed\"/>\n  </output>\n</testbench>\n",
                 "bad.xml:7: element <mcnemar>: point 1 does not run the spice backend", NULL);
#undef MCN_HEAD
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_points();
    test_layers_mask();
    test_errors();
    test_no_entity_expansion();
    test_shipped();
    test_chip_spec();
    test_train_settings();
    test_mcnemar_output();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_testbench");
}
