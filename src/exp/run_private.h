// run_private: what the files of a testbench run (run.c, point.c, state.c, writers.c, example.c) share; not public API
//
// One run_ctx lives in xb_run_testbench for the whole run; the other files receive it and use its caches
// (data sets, network, chip, input hashes). Everything it points to is owned by the run_ctx and freed
// when the run ends; the functions below borrow what they are given unless they say otherwise.
#ifndef XB_RUN_PRIVATE_H
#define XB_RUN_PRIVATE_H

#include <stddef.h>
#include <stdio.h>

#include "analysis.h"
#include "behavioral.h"
#include "chip.h"
#include "circuit.h"
#include "dataset.h"
#include "device.h"
#include "error.h"
#include "mlp.h"
#include "program.h"
#include "provenance.h"
#include "run.h"
#include "testbench.h"

/* ------------------------------------------------------------------------------------------------ */
/* What one point's trials measured (the state file's numbers) */

#define N_BACKENDS 3 /* ideal, behavioral, spice: index b is backend bit 1 << b */

typedef struct trial_result {
    unsigned long seed;
    double correct[N_BACKENDS]; /* NAN where the backend did not run */
    double agree;               /* behavioral and spice predictions equal (count) */
    double mcnemar_p;
    double i_err_mean, i_err_max, failed;
    double seconds;
} trial_result;

typedef struct point_result {
    size_t images, synapses, layers, neurons, trials;
    unsigned long seed; /* montecarlo seed of the point (trial seeds derive from it) */
    trial_result *t;
} point_result;

/* ------------------------------------------------------------------------------------------------ */
/* The run's state: caches of what points share */

typedef struct data_slot {
    char spec[4096];
    xb_dataset *train, *test;
    unsigned long use; /* for least-recently-used replacement */
} data_slot;

typedef struct run_ctx {
    const xb_tb *tb;
    const xb_run_options *o;
    xb_error *err;
    char out[4000], state[4096], logs[4096];
    data_slot data[2];
    unsigned long clock;
    char net_key[8400];
    char weights_recorded[4096]; /* the last weights spec written into the provenance */
    xb_mlp *net;
    char chip_key[32768];
    xb_chip *chip;     /* mapped and quantized, g_S at the targets */
    xb_device dev;     /* the device of chip_key, overrides applied */
    xb_provenance prov;
    int render;
    struct hash_entry {
        char path[4096], sha256[65];
    } *hashes;             /* SHA-256 of input files, each read once */
    size_t n_hashes;
    struct point_inputs {
        char data[65], weights[65], device[65];
    } in;                  /* what the current point reads, by content */
    size_t example_point; /* 0-based */
    const xb_tb_output *example;
    int any_spice;
    /* Circuit work units of the points computed in this run: solved by the workers, loaded from a
     * point's unit store (a resumed point), and stored units refused by their checks. */
    size_t units_solved, units_loaded, units_rejected;
} run_ctx;

/* ------------------------------------------------------------------------------------------------ */
/* run.c: the driver */

/* A "[run] " line on stderr unless o->quiet. */
void xb_run_say(const xb_run_options *o, const char *fmt, ...) XB_PRINTF(2, 3);
/* Record an input file in the provenance once, however many points use it. */
void xb_run_add_input(run_ctx *r, const char *role, const char *path, const char *sha256);

/* ------------------------------------------------------------------------------------------------ */
/* point.c: one point */

/* Evaluate point k (configuration c) into pr (pr->t is allocated here; the caller frees it). When the
 * spice backend runs, the per-input predictions go to pred_path; the example point also writes the
 * example folder. */
int xb_run_eval_point(run_ctx *r, size_t k, const xb_tb_config *c, point_result *pr, const char *pred_path);
/* The seed of trial t of a point with Monte Carlo seed s: splitmix64(s, t) (docs/testbench.md). */
unsigned long xb_run_trial_seed(unsigned long seed, size_t trial);
/* The device of c: its file with the point's overrides applied. */
int xb_run_load_device(const xb_tb_config *c, xb_device *d, xb_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* programming.c: a programming study (xb_tb_is_programming) */

/* Every point of a programming study, computed or reused from its state file: per point and trial each
 * method's write-verify of prog_cells cells per level; then programming.csv. pr[k].trials is set for
 * run.json; *n_computed counts the points computed now. */
int xb_run_programming(run_ctx *r, point_result *pr, size_t *n_computed);
/* Before anything runs: every point's device loads (XB_EINPUT naming where the testbench set it). */
int xb_run_programming_plan(run_ctx *r);

/* ------------------------------------------------------------------------------------------------ */
/* state.c: the state folder */

/* The hashes of what a point reads (data, weights, device files) into in. */
void xb_run_hash_inputs(run_ctx *r, const xb_tb_config *c, struct point_inputs *in);
/* The identity of c's network (the key of the network cache and the trained networks' file names). */
void xb_run_network_key(const xb_tb_config *c, const struct point_inputs *in, char *key, size_t len);
/* The device part of a point's identity: the file, its contents and every override. */
void xb_run_device_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len);
/* The text a point's identity is hashed from (the first line of its state file). */
void xb_run_point_config_text(const xb_tb_config *c, const struct point_inputs *in, char *buf, size_t len);
/* The state file of point k: state/points/HASH followed by suffix. */
void xb_run_point_file(const run_ctx *r, size_t k, const xb_tb_config *c, char *path, size_t len, const char *suffix);
/* The unit store of point k (state/units/HASH, HASH as in its state file): the circuit solves' finished
 * units while the point runs, removed once its state file is written. */
void xb_run_point_units_dir(const run_ctx *r, size_t k, const xb_tb_config *c, char *path, size_t len);
int xb_run_write_point_state(const char *path, const xb_tb_config *c, const struct point_inputs *in,
                             const point_result *pr, xb_error *err);
/* Read a state file back into pr (pr->t allocated here; freed and pr zeroed on failure). XB_EINPUT for a
 * damaged file. */
int xb_run_read_point_state(const char *path, size_t trials_expected, point_result *pr, xb_error *err);
/* Make the results folder ready: stale temporaries removed, state folders made (emptied for --fresh),
 * the testbench copied beside the results. */
int xb_run_prepare_out(run_ctx *r, xb_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* writers.c: the result files */

/* ",%.17g", or an empty field for a value that does not apply. */
void xb_run_csv_num(FILE *fp, double v);
/* The swept columns' names, and point k's values, each after a comma. */
void xb_run_csv_columns_header(FILE *fp, const xb_tb *tb);
void xb_run_csv_columns(FILE *fp, const xb_tb *tb, size_t k);
/* The circuit fields of a trial that points.csv and a point's state file share, in this order:
 * mcnemar_p, current_rel_err_mean, current_rel_err_max, inputs_failed, seconds; then the line's end. */
void xb_run_csv_trial_tail(FILE *fp, const trial_result *tr);
int xb_run_write_points_csv(run_ctx *r, const point_result *pr, xb_error *err);
/* The summary rows of every point and backend that ran (*out allocated here; the caller frees it). */
int xb_run_summarize(const run_ctx *r, const point_result *pr, xb_summary_row **out, size_t *n_out, xb_error *err);
int xb_run_write_summary_csv(const run_ctx *r, const xb_summary_row *rows, size_t n, xb_error *err);
int xb_run_write_predictions(run_ctx *r, char (*pred_paths)[4400], xb_error *err);
int xb_run_write_run_json(run_ctx *r, const point_result *pr, size_t n_computed, double seconds, xb_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* example.c: the example folder */

int xb_run_example_programming(run_ctx *r, const xb_program_result *pr, const xb_chip *chip, xb_error *err);
int xb_run_example_circuit(run_ctx *r, const xb_circuit *circ, xb_error *err);
/* spice energy="on": point k's energy and settling time per tile into OUT/energy/point-K.csv, and for the
 * example point the figure example/plots/energy-per-tile. */
int xb_run_write_energy(run_ctx *r, size_t k, int is_example, const xb_energy *e, xb_error *err);
int xb_run_example_netlist(run_ctx *r, const xb_tb_config *c, const xb_chip *chip, const xb_behav *bm,
                           const xb_dataset *test, xb_error *err);

#endif
