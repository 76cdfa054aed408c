// test_pool: the circuit backend's worker pool against the behavioral model and against itself
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include <sys/stat.h>
#include <unistd.h>

#include "behavioral.h"
#include "check.h"
#include "chip.h"
#include "circuit.h"
#include "device.h"
#include "metrics.h"
#include "pool.h"
#include "progress.h"

static char dir[] = "/tmp/xb_test_pool_XXXXXX";

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static double max_rel(const double *a, const double *b, size_t n)
{
    double big = 0, w = 0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]) / big);
    return w;
}

/* A one-off solve that never ends (as ngspice does with an absurd card); and one that checks where its
 * result lives: doubles stored there must be aligned (UBSan checks the stores). */
static int spin_forever(struct xb_spice *sp, void *ctx, void *result, xb_error *err)
{
    (void)sp, (void)ctx, (void)result, (void)err;
    for (;;)
        pause();
    return 0;
}

static int store_doubles(struct xb_spice *sp, void *ctx, void *result, xb_error *err)
{
    (void)sp, (void)ctx, (void)err;
    double *out = result;
    out[0] = 1.5;
    out[1] = ((uintptr_t)result % _Alignof(max_align_t)) == 0 ? 1 : 0;
    return XB_OK;
}

int main(void)
{
    /* A folder of our own: the .spiceinit test below writes into the working folder. */
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return 1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 5);
    size_t sizes[3] = {40, 12, 6};
    xb_mlp *m = xb_mlp_new(2, sizes, XB_ACT_SIGMOID);
    xb_mlp_init(m, rng);
    for (size_t j = 0; j < 12; j++)
        m->b[0][j] = gsl_ran_gaussian(rng, 0.5);
    xb_device dev;
    xb_device_defaults(&dev);
    xb_map_options mo;
    xb_map_defaults(&mo);
    mo.tile_rows = 16;
    mo.tile_cols = 8;
    mo.g_min_S = dev.g_hrs_S;
    mo.g_max_S = xb_device_level_G(&dev, dev.n_levels - 1);
    xb_error err = {0};
    xb_chip *c = NULL;
    xb_chip_map(m, &mo, NULL, 0, &c, &err);
    const size_t n = 30;
    double *X = malloc(n * 40 * sizeof *X), *z_b = malloc(n * 6 * sizeof *X), *z_s = malloc(n * 6 * sizeof *X);
    for (size_t i = 0; i < n * 40; i++)
        X[i] = gsl_rng_uniform(rng);
    xb_behav_options bo;
    xb_behav_defaults(&bo);
    xb_behav *b = NULL, *s = NULL;
    xb_behav_new(c, &bo, NULL, 0, &b, &err);
    xb_behav_forward(b, X, n, NULL, z_b, NULL, &err);

    /* Zero wire resistance and linear cells: the circuit is I = V.G, so the logits match the model's. */
    xb_pool pool = {.chip = c, .dev = &dev};
    xb_pool_defaults(&pool.o);
    pool.o.jobs = 2;
    pool.o.chunk = 7;
    pool.o.quiet = 1;
    pool.o.net.linear_cells = 1;
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 0;
    xb_behav_new(c, &bo, NULL, 0, &s, &err);
    xb_behav_set_current_source(s, xb_pool_layer_currents, &pool);
    CHECK(xb_behav_forward(s, X, n, NULL, z_s, NULL, &err) == XB_OK, "spice forward: %s", err.msg);
    double d = max_rel(z_s, z_b, n * 6);
    CHECK(d < 1e-6, "zero wires, linear cells: logits differ from the behavioral model by %.3g", d);
    /* layer 1: 41 rows (40 + 1 bias row) in 3 row tiles x 24 columns in 3 column tiles, 5 chunks of 7;
     * layer 2: 13 rows in 1 row tile x 12 columns in 2 column tiles, 5 chunks */
    CHECK(pool.stats.units == 3 * 3 * 5 + 1 * 2 * 5, "units solved: %zu", pool.stats.units);

    /* The row drive is an option only: the environment variable that once chose it is ignored, and
     * both drives give the same logits. */
    {
        setenv("XBARSIM_SPICE_ROWS", "external", 1);
        double *zp = malloc(n * 6 * sizeof *zp), *ze = malloc(n * 6 * sizeof *ze);
        CHECK(xb_behav_forward(s, X, n, NULL, zp, NULL, &err) == XB_OK, "auto drive: %s", err.msg);
        CHECK(!strcmp(pool.stats.row_sources, "pwl"), "XBARSIM_SPICE_ROWS is ignored: auto drive ran %s",
              pool.stats.row_sources);
        unsetenv("XBARSIM_SPICE_ROWS");
        pool.o.net.row_drive = XB_ROWS_EXTERNAL;
        CHECK(xb_behav_forward(s, X, n, NULL, ze, NULL, &err) == XB_OK, "external drive: %s", err.msg);
        CHECK(!strcmp(pool.stats.row_sources, "external"), "row_drive external ran %s", pool.stats.row_sources);
        double dr = max_rel(ze, zp, n * 6);
        CHECK(dr < 1e-9, "external vs pwl row drive: logits differ by %.3g", dr);
        pool.o.net.row_drive = XB_ROWS_AUTO;
        free(zp), free(ze);
    }

    /* Wires make the circuit differ from I = V.G; chunking and the number of workers must not. */
    pool.o.net.r_row_ohm = pool.o.net.r_col_ohm = 2;
    double *z1 = malloc(n * 6 * sizeof *z1), *z2 = malloc(n * 6 * sizeof *z2), *z3 = malloc(n * 6 * sizeof *z3);
    xb_behav_forward(s, X, n, NULL, z1, NULL, &err);
    pool.o.jobs = 1;
    pool.o.chunk = 250;
    xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    double dw = max_rel(z1, z_b, n * 6), dc = max_rel(z1, z2, n * 6);
    CHECK(dw > 1e-6, "2-ohm wires change the logits (by %.3g)", dw);
    CHECK(dc < 1e-12, "2 workers in chunks of 7 vs 1 worker in one chunk: %.3g", dc);

    /* The linear mode reproduces exact solves of linear cells to round-off, and says so. */
    pool.o.linear = 1;
    pool.o.linear_sample = 10;
    xb_behav_forward(s, X, n, NULL, z3, NULL, &err);
    double dl = max_rel(z3, z1, n * 6);
    CHECK(dl < 1e-10, "linear mode vs exact: %.3g", dl);
    CHECK(pool.stats.linear_checked > 0 && pool.stats.linear_err_max < 1e-10, "measured linear error %.3g over %zu",
          pool.stats.linear_err_max, pool.stats.linear_checked);

    /* A worker killed while holding a unit: the unit is solved by a fresh worker, results unchanged. */
    pool.o.linear = 0;
    pool.o.jobs = 2;
    pool.o.chunk = 7;
    pool.o.fault_unit = 3;
    size_t lost = pool.stats.workers_lost;
    xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    CHECK(pool.stats.workers_lost > lost, "the fault hook killed a worker");
    CHECK(max_rel(z2, z1, n * 6) < 1e-12, "results after a lost worker");

    /* ngspice's own fatal exit (ControlledExit, here from a `quit`) in the worker holding unit 2: the
     * worker is replaced, the unit solved again, the results unchanged. */
    pool.o.fault_unit = -1;
    pool.o.fault_quit_unit = 2;
    lost = pool.stats.workers_lost;
    CHECK(xb_behav_forward(s, X, n, NULL, z2, NULL, &err) == XB_OK, "forward with a ControlledExit: %s", err.msg);
    CHECK(pool.stats.workers_lost == lost + 2, "ControlledExit cost one worker in each of the 2 layers (%zu lost)",
          pool.stats.workers_lost - lost);
    CHECK(max_rel(z2, z1, n * 6) < 1e-12, "results after a ControlledExit");

    /* A unit that ends every worker that takes it: the run stops, and says what the workers said. */
    pool.o.fault_repeat = 1;
    int rc = xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    printf("a unit that ends every worker -> %s\n", err.msg);
    CHECK(rc == XB_ERUNTIME && strstr(err.msg, "ended 3 workers") && strstr(err.msg, "quit"),
          "the run stops with the workers' message: rc %d %s", rc, err.msg);
    pool.o.fault_repeat = 0;
    pool.o.fault_quit_unit = -1;

    /* A deck ngspice cannot load fails the run at once with ngspice's message, in no worker again. */
    xb_device bad_dev = dev;
    snprintf(bad_dev.mosfet_model_file, sizeof bad_dev.mosfet_model_file, "%s", "/nonexistent/xb_pool_card.lib");
    pool.dev = &bad_dev;
    pool.o.net.linear_cells = 0;
    lost = pool.stats.workers_lost;
    rc = xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    printf("a missing model card -> %s\n", err.msg);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "Could not find include file") && strstr(err.msg, "xb_pool_card.lib"),
          "a missing include file stops the run with ngspice's message: rc %d %s", rc, err.msg);
    CHECK(pool.stats.workers_lost == lost, "no worker was replaced for it (%zu)", pool.stats.workers_lost - lost);
    /* ... also when ngspice ends itself over the deck (an undefined parameter in the cell). */
    char bad_rram[200];
    snprintf(bad_rram, sizeof bad_rram, "%s/bad_rram.lib", dir);
    write_text(bad_rram, ".subckt xb_1t1r row col wl g=1e-4\nRm row be {1/g_undefined}\nXm be wl col xb_access\n"
                         ".ends\n.subckt xb_1t1r_sinh row col wl g=1e-4 v0=1\nRm row col {1/g}\n.ends\n");
    bad_dev = dev;
    snprintf(bad_dev.rram_model_file, sizeof bad_dev.rram_model_file, "%s", bad_rram);
    rc = xb_behav_forward(s, X, n, NULL, z2, NULL, &err);
    printf("a cell with an undefined parameter -> %.300s\n", err.msg);
    CHECK(rc == XB_EINPUT && strstr(err.msg, "g_undefined"), "a deck that ends ngspice stops the run: rc %d %s", rc,
          err.msg);
    CHECK(pool.stats.workers_lost == lost, "... with no retries (%zu)", pool.stats.workers_lost - lost);
    pool.dev = &dev;

    /* A stray .spiceinit in the working folder and in $HOME that would heat the circuit to 150 C: the
     * 1T1R currents do not change. */
    double *za = malloc(n * 6 * sizeof *za), *zb = malloc(n * 6 * sizeof *zb);
    CHECK(xb_behav_forward(s, X, n, NULL, za, NULL, &err) == XB_OK, "1T1R forward: %s", err.msg);
    char home[200], init[260];
    snprintf(home, sizeof home, "%s/home", dir);
    if (mkdir(home, 0700) != 0)
        perror(home);
    snprintf(init, sizeof init, "%s/.spiceinit", home);
    write_text(init, "option temp=150 reltol=0.5\n");
    write_text(".spiceinit", "option temp=150 reltol=0.5\n");
    const char *old_home = getenv("HOME");
    char saved_home[4096];
    snprintf(saved_home, sizeof saved_home, "%s", old_home ? old_home : "");
    setenv("HOME", home, 1);
    CHECK(xb_behav_forward(s, X, n, NULL, zb, NULL, &err) == XB_OK, "1T1R forward with stray .spiceinit: %s", err.msg);
    double dsi = max_rel(zb, za, n * 6);
    CHECK(dsi == 0, "a stray .spiceinit changed the 1T1R logits by %.3g", dsi);
    if (old_home)
        setenv("HOME", saved_home, 1);
    unlink(init);
    unlink(".spiceinit");
    rmdir(home);
    unlink(bad_rram);

    /* Inputs that never converge (an absurd RRAM nonlinearity) are reported per input: prediction -1,
     * counted wrong, and still counted under their true label in the per-class totals. */
    xb_pool_options po = pool.o;
    po.net.rram_v0_V = 1e-12;
    po.jobs = 2;
    xb_circuit circ;
    int *pred = malloc(n * sizeof *pred);
    unsigned char *labels = malloc(n);
    for (size_t k = 0; k < n; k++)
        labels[k] = (unsigned char)(k % 6);
    rc = xb_circuit_classify(c, &dev, &po, &bo, NULL, 0, X, n, 0, "test", NULL, pred, &circ, &err);
    CHECK(rc == XB_OK, "classify with non-converging inputs: %s", err.msg);
    size_t minus = 0;
    for (size_t k = 0; k < n; k++)
        minus += pred[k] == -1;
    printf("non-converging inputs: %zu of %zu failed, %zu solves failed, %zu retried\n", circ.n_failed, n,
           circ.pool.stats.inputs_failed, circ.pool.stats.inputs_retried);
    CHECK(circ.n_failed > 0 && minus == circ.n_failed && circ.pool.stats.inputs_failed > 0,
          "failed inputs are predicted -1 (%zu of %zu)", minus, circ.n_failed);
    xb_confusion *conf = xb_confusion_new(6);
    for (size_t k = 0; k < n; k++)
        xb_confusion_add(conf, labels[k], pred[k]);
    size_t total = 0, unpredicted = 0;
    int per_label_ok = 1;
    for (int k = 0; k < 6; k++) {
        size_t nk;
        xb_confusion_class_accuracy(conf, k, &nk);
        per_label_ok &= nk == n / 6 + ((size_t)k < n % 6);
        total += nk;
        unpredicted += xb_confusion_unpredicted(conf, k);
    }
    CHECK(per_label_ok && total == n, "every sample counts under its label (%zu of %zu)", total, n);
    CHECK(unpredicted == circ.n_failed, "unpredicted samples %zu = failed inputs %zu", unpredicted, circ.n_failed);
    xb_confusion_free(&conf);
    xb_circuit_free(&circ);
    free(pred), free(labels), free(za), free(zb);

    /* A batch's failures land at its inputs' places in the forward call, not at the start. */
    {
        xb_pool bp = {.chip = c, .dev = &dev, .o = po};
        unsigned char flags[10] = {0};
        bp.failed = flags;
        bp.failed_cap = sizeof flags;
        const xb_layer_map *L0 = &c->layers[0];
        double *V0 = malloc(3 * L0->rows * sizeof *V0), *I0 = malloc(L0->n_row_tiles * 3 * L0->cols * sizeof *I0);
        xb_behav_layer_rows(b, 0, X, 3, NULL, V0, &err);
        CHECK(xb_pool_layer_currents(&bp, 0, 5, V0, 3, I0, &err) == XB_OK, "batch at offset 5: %s", err.msg);
        int outside = 0, inside = 0;
        for (size_t k = 0; k < sizeof flags; k++) {
            if (k >= 5 && k < 8)
                inside += flags[k];
            else
                outside += flags[k];
        }
        CHECK(inside > 0 && outside == 0, "failures of inputs 5..7 flagged at 5..7: %d inside, %d outside", inside,
              outside);
        free(V0), free(I0);
    }

    /* A MOSFET card that sends ngspice into an endless loop (kp = 1e30): every unit runs past its time
     * limit, its inputs are solved again one at a time, each one runs past its own limit and is failed
     * like an input that never converges; the call ends, in bounded time, without an error. */
    {
        char card[300], line[400];
        snprintf(card, sizeof card, "%s/kp.lib", dir);
        snprintf(line, sizeof line, ".model nmos1t1r nmos level=1 vto=0.5 kp=1e30 lambda=0 gamma=0 phi=0.6\n");
        write_text(card, line);
        xb_device kp_dev = dev;
        snprintf(kp_dev.mosfet_model_file, sizeof kp_dev.mosfet_model_file, "%s", card);
        const xb_layer_map *L0 = &c->layers[0];
        const size_t nk = 3;
        double *Vk = malloc(nk * L0->rows * sizeof *Vk), *Ik = malloc(L0->n_row_tiles * nk * L0->cols * sizeof *Ik);
        unsigned char kflags[3] = {0};
        xb_behav_layer_rows(b, 0, X, nk, NULL, Vk, &err);
        xb_pool kp = {.chip = c, .dev = &kp_dev, .failed = kflags, .failed_cap = nk};
        xb_pool_defaults(&kp.o);
        kp.o.jobs = 2;
        kp.o.chunk = 3;
        kp.o.quiet = 1;
        kp.o.solve_timeout_s = 0.2;
        CHECK(fabs(xb_pool_unit_timeout_s(&kp.o, 3) - 0.2 * 5) < 1e-12, "unit limit 0.2 x (3 + 2): %g",
              xb_pool_unit_timeout_s(&kp.o, 3));
        double t0 = xb_now();
        int krc = xb_pool_layer_currents(&kp, 0, 0, Vk, nk, Ik, &err);
        double took = xb_now() - t0;
        size_t tiles = L0->n_row_tiles * L0->n_col_tiles;
        printf("kp = 1e30: %.1f s, %zu units timed out, %zu input solves timed out\n", took, kp.stats.units_timed_out,
               kp.stats.inputs_timed_out);
        CHECK(krc == XB_OK, "a card that hangs ngspice: no error (%s)", err.msg);
        CHECK(kflags[0] && kflags[1] && kflags[2], "every input failed: %d %d %d", kflags[0], kflags[1], kflags[2]);
        CHECK(kp.stats.units_timed_out == tiles && kp.stats.inputs_timed_out == tiles * nk,
              "%zu units and %zu input solves timed out, want %zu and %zu", kp.stats.units_timed_out,
              kp.stats.inputs_timed_out, tiles, tiles * nk);
        CHECK(kp.stats.workers_lost == 0, "time-outs are not lost workers (%zu)", kp.stats.workers_lost);
        /* tiles units of 1 s and tiles x 3 inputs of 0.6 s on 2 workers, plus the workers' start. */
        CHECK(took < 60, "bounded time: %.1f s", took);
        free(Vk), free(Ik);
        unlink(card);

        /* The one-off solve: its limit, then a clear error. */
        xb_pool_options oo;
        xb_pool_defaults(&oo);
        oo.solve_timeout_s = 0.2;
        double res[2] = {0, 0};
        int timed = 0;
        t0 = xb_now();
        krc = xb_pool_run_one_timed(&oo, spin_forever, NULL, res, sizeof res, &timed, &err);
        took = xb_now() - t0;
        printf("a one-off solve that never ends -> %.1f s: %s\n", took, err.msg);
        CHECK(krc == XB_ERUNTIME && timed && strstr(err.msg, "time limit"), "run_one past its limit: rc %d, %s", krc,
              err.msg);
        CHECK(took >= 0.6 - 0.05 && took < 10, "run_one stopped after its 0.6 s limit: %.2f s", took);
        CHECK(xb_pool_run_one(&oo, store_doubles, NULL, res, sizeof res, &err) == XB_OK && res[0] == 1.5 &&
                  res[1] == 1, "run_one's result is aligned: %g %g (%s)", res[0], res[1], err.msg);
    }

    /* The linear mode's exact sample: seeded, random, ascending, without repeats. */
    size_t p1[10], p2[10], p3[10];
    xb_pool_linear_sample(100, 10, 7, 0, p1, &err);
    xb_pool_linear_sample(100, 10, 7, 0, p2, &err);
    xb_pool_linear_sample(100, 10, 8, 0, p3, &err);
    int same = 1, differs = 0, ordered = 1, spaced = 1;
    for (int q = 0; q < 10; q++) {
        same &= p1[q] == p2[q];
        differs |= p1[q] != p3[q];
        ordered &= p1[q] < 100 && (q == 0 || p1[q] > p1[q - 1]);
        spaced &= p1[q] == (size_t)q * 10;
    }
    CHECK(same && differs && ordered && !spaced, "linear sample: same seed same picks (%d), another seed others (%d), "
          "ascending distinct (%d), not evenly spaced (%d)", same, differs, ordered, !spaced);

    xb_behav_free(&b);
    xb_behav_free(&s);
    xb_chip_free(&c);
    xb_mlp_free(&m);
    free(X), free(z_b), free(z_s), free(z1), free(z2), free(z3);
    gsl_rng_free(rng);
    if (chdir("/") == 0)
        rmdir(dir);
    return check_summary("test_pool");
}
