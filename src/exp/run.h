// run: execute a testbench: train or load networks, program chips, evaluate every point and trial, write the results folder
//
// Results (OUT = results/NAME, or results/NAME-quick for --quick):
//   points.csv      one row per point and trial: swept parameters, seeds, accuracy of each backend, dACC
//   summary.csv     one row per point and backend: mean, std, 95% t-interval and Wilson interval
//   predictions.csv per input, when the spice backend ran: ideal, behavioral and circuit predictions
//   NAME.csv        each <midpoint>, <spearman>, <kruskal> analysis
//   plots/          each figure as data CSV, gnuplot script, SVG and PNG
//   example/        one tile's netlist and, where they apply, CDFs of programmed read currents, circuit
//                   against behavioral column currents, the IR-drop map (with their plots)
//   run.json        provenance: tool and libraries, command line, RNG, seeds, input file hashes
//   testbench.xml   the testbench as run
//   state/          finished points (one file each, named by a hash of the point's configuration) and
//                   trained networks: a run that stops resumes where it stopped, and a changed
//                   testbench recomputes only the points whose configuration changed; units/POINT/
//                   holds the finished circuit units of a point still running (unitstore.h), so a
//                   point stopped partway resumes inside it; removed when the point is finished
// Every data file is written under a temporary name and renamed when complete (gnuplot draws the pictures
// from the data and scripts beside them, also to temporaries). The results folder is checked before
// anything runs; a run starting there removes the temporaries of stopped runs (NAME.tmp.PID of PIDs
// that are gone); a state file that does not read back exactly as written is refused (XB_EINPUT).
#ifndef XB_RUN_H
#define XB_RUN_H

#include "error.h"
#include "testbench.h"

typedef struct xb_run_options {
    int quick;          /* apply the testbench's <quick> limits */
    int fresh;          /* discard finished points and trained networks of an earlier run */
    int quiet;          /* only the final lines */
    int render;         /* run gnuplot; 0 writes the data and scripts only */
    int jobs;           /* spice workers (0: the testbench's) */
    const char *out;    /* results folder (NULL: results/NAME[-quick]) */
    int argc;           /* the command line, for provenance */
    char **argv;
} xb_run_options;

void xb_run_defaults(xb_run_options *o);

/* Run every point of tb (finished points found in the results folder are reused) and write the
 * results. XB_EINPUT for problems found while planning (missing data, a layer selector that does not
 * fit the network, ...), before any point runs. */
int xb_run_testbench(const xb_tb *tb, const xb_run_options *o, xb_error *err);

/* Where a run writes by default: results/NAME or results/NAME-quick. */
void xb_run_default_out(const xb_tb *tb, int quick, char *buf, size_t len);

#endif
