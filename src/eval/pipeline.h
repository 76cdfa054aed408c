// pipeline: the one evaluation pipeline: backends on one chip, Monte Carlo trials, paired comparison, result files, provenance
//
// `xbarsim eval` fills an xb_eval_spec from its options and calls xb_eval_run, which writes the results
// folder and hands back what it measured for printing. `xbarsim run` (src/exp) evaluates each trial of a
// testbench point through the same steps: xb_eval_chip_build for the chip, xb_eval_circuit for the
// circuit backend and its paired comparison with the behavioral predictions, xb_eval_fault_hook for the
// test-only fault injection.
#ifndef XB_PIPELINE_H
#define XB_PIPELINE_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "behavioral.h"
#include "build.h"
#include "circuit.h"
#include "dataset.h"
#include "device.h"
#include "energy.h"
#include "error.h"
#include "mc.h"
#include "metrics.h"
#include "weights.h"
#include "mlp.h"
#include "pool.h"
#include "provenance.h"
#include "results.h"

typedef enum { XB_EVAL_IDEAL = 0, XB_EVAL_BEHAVIORAL, XB_EVAL_SPICE } xb_eval_backend;

/* What to evaluate. Strings are borrowed for the duration of xb_eval_run. */
typedef struct xb_eval_spec {
    const char *weights;        /* --weights spec: an .npz or W1.npy,b1.npy,... */
    int hidden_activation;      /* -1: the weights file's */
    xb_net_desc net;            /* layers, input grid, layout the weights file may leave out (hidden unused) */
    const char *dataset;        /* mnist | fashion-mnist | a folder */
    size_t limit;               /* first N test images (0: all) */
    xb_eval_backend backend;    /* ideal; behavioral; spice runs ideal, behavioral and the circuit */
    const char *out;            /* results folder (exists or is created) */
    const char *chip_path;      /* a conductance map (NULL: build the chip from device and chip) */
    const char *device;         /* device XML */
    xb_chip_spec chip;          /* how the network goes onto the chip */
    const char *chip_text[5];   /* levels, norm, mapping, bias, tile as given (run.json) */
    xb_behav_options bo;        /* DAC, ADC, read noise of the digital path */
    const char *perturb_text[XB_MC_MAX_PERTURB]; /* --perturb specs, parsed against the network */
    int n_perturb;
    size_t trials;              /* Monte Carlo trials of the behavioral model (0: the nominal run only) */
    unsigned long seed;         /* mt19937 seed of every draw */
    xb_pool_options pool;       /* spice workers and netlist options */
    xb_energy_options energy;   /* spice: energy and settling time per tile (energy.h; off by default) */
    int quiet;
    int argc;                   /* the command line, for provenance */
    char **argv;
} xb_eval_spec;

void xb_eval_spec_defaults(xb_eval_spec *s);

/* What xb_eval_run measured, for printing. Owned by the result; release with xb_eval_result_free. */
typedef struct xb_eval_result {
    xb_class_result r[3];       /* ideal, behavioral, spice (n_backends of them ran) */
    int n_backends;
    size_t n_test;
    char network[256];          /* xb_mlp_describe */
    double *acc;                /* trials accuracies (NULL without trials) */
    size_t trials;
    xb_circuit circ;            /* the circuit's statistics (spice) */
    xb_paired pair;             /* behavioral against spice */
    xb_energy energy;           /* spice with spec.energy.on: per tile energy and settling time */
} xb_eval_result;

void xb_eval_result_free(xb_eval_result *r);

/* Run s and write under s->out: summary.csv, predictions.csv, per_class.csv, confusion.csv, run.json;
 * with trials trials.csv and mc_summary.csv; with spice tile_errors.csv, ir_drop.csv and logs/, and with
 * energy.on energy.csv (per tile), the energy-plot figure and run.json's spice.energy.
 * XB_EINPUT for inputs that do not fit (network against data set or chip), XB_ERUNTIME for solver
 * failures; res is filled only on success (and must be freed either way). */
int xb_eval_run(const xb_eval_spec *s, xb_eval_result *res, xb_error *err);

/* Load the device (into *dev) and the calibration images m needs from dataset's training split, and
 * build the chip (xb_chip_build): the chip before programming. *chip: new, the caller frees it. */
int xb_eval_chip_build(const char *device, const xb_chip_spec *spec, const xb_mlp *m, const char *dataset,
                       xb_device *dev, xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err);

/* The circuit backend on chip c: n inputs X through libngspice (xb_circuit_classify_fs, after
 * xb_eval_fault_hook) with the ADC full scales adc_fs_A[c->n_layers] the behavioral model of the same
 * chip used (xb_behav_adc_calibrate, computed once), predictions into pred_spice[n], compared input by input with pred_behav into
 * *pair; the pool's statistics (ngspice version, solver) go into prov when it is not NULL. circ is
 * filled on success and released by the caller with xb_circuit_free. */
int xb_eval_circuit(const xb_chip *c, const xb_device *dev, const xb_pool_options *po, const xb_behav_options *bo,
                    const double *adc_fs_A, const xb_dataset *test, size_t sample_inputs, gsl_rng *rng,
                    const int *pred_behav, int *pred_spice, xb_circuit *circ, xb_paired *pair, xb_provenance *prov,
                    xb_error *err);

/* TEST HOOK, not a user option: the fault injection the worker pool's tests use. $XBARSIM_FAULT_UNIT=U
 * makes the first worker that takes unit U kill itself (SIGKILL); $XBARSIM_FAULT_QUIT_UNIT=U makes it
 * send ngspice `quit` (ControlledExit). Read here only, applied to po for `eval` and `run` alike. */
void xb_eval_fault_hook(xb_pool_options *po);

/* The linked libngspice's version, asked by starting one spice worker (a forked child: libngspice is
 * one instance per process); 0 when it could not be started, with the reason in why[why_len]. For
 * `--version`; a run's files take the version from its own pool statistics instead. */
int xb_eval_ngspice_linked(char *why, size_t why_len);

#endif
