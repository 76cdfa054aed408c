// testbench: XML experiment descriptions (testbenches/*.xml): checked loading, the points they sweep, each point's configuration
//
// A testbench names what to run (dataset, network, device, chip, level sets, backends, perturbations,
// Monte Carlo trials) through elements whose attributes all have defaults, and a sweep: the union of
// grids, each the Cartesian product of its axes. Every attribute is a parameter named
// ELEMENT.ATTRIBUTE (levels and perturb elements by their id), so any of them can be swept:
// c2c.sigma, network.hidden, chip.tile, spice.r-row, device.v-read, ... docs/testbench.md is the
// reference; testbenches/testbench.xsd the schema.
#ifndef XB_TESTBENCH_H
#define XB_TESTBENCH_H

#include <stddef.h>

#include "error.h"
#include "perturb.h"
#include "build.h"
#include "energy.h"
#include "pool.h"

#define XB_TB_MAX_LEVELS 16
#define XB_TB_MAX_PERTURB 16
#define XB_TB_MAX_HIDDEN 32
#define XB_TB_MAX_LIST 4

enum { XB_BACKEND_IDEAL = 1, XB_BACKEND_BEHAVIORAL = 2, XB_BACKEND_SPICE = 4 };
/* The write-verify methods of a programming study (programming.methods). */
enum { XB_PROG_STATISTICAL = 1, XB_PROG_CIRCUIT = 2 };
typedef enum { XB_TB_PROGRAM_IDEAL = 0, XB_TB_PROGRAM_EXACT, XB_TB_PROGRAM_IGVVA } xb_tb_program;

/* A <levels> element: a level set and the layers it quantizes. */
typedef struct xb_tb_levels {
    char id[64], spec[256], layers[64];
} xb_tb_levels;

/* A <perturb> element: a perturbation model and the layers it acts on. */
typedef struct xb_tb_perturb {
    char id[64], layers[64];
    xb_perturb model;
} xb_tb_perturb;

/* One point's configuration, every value resolved: defaults filled in, paths relative to the
 * testbench's folder made usable from the working directory. */
typedef struct xb_tb_config {
    /* <dataset> */
    char dataset[4096];         /* mnist, fashion-mnist, or a folder with the four IDX files */
    size_t images;              /* first N test images (0: the whole test split) */
    size_t calib;               /* training images calibrating ReLU input ranges and the ADC */
    /* <network>: trained here, or loaded */
    char weights[4096];         /* "" : train with the settings below */
    int n_hidden;
    size_t hidden[XB_TB_MAX_HIDDEN];
    /* a convolutional network: its hidden layers as a layer list (mlp.h: conv:F:K, maxpool:P, ...,
     * dense:N), from network.arch or from conv-layers, filters, kernel, pool, pool-kind and hidden;
     * "" : the dense network of hidden */
    char layers[1024];
    int n_weight_layers;        /* weight layers of the network trained here, the output layer included */
    int activation;             /* of hidden layers (xb_activation); -1: as the weights file says */
    size_t epochs, batch, train_images; /* train_images 0: the whole training split */
    double lr;                  /* NAN: 0.01 for the SLP, 0.1 otherwise, as `xbarsim train` */
    double momentum, weight_decay;
    unsigned long train_seed;
    /* hardware-aware training, as `xbarsim train`'s options of the same names (docs/training.md);
     * the defaults train plainly */
    int optimizer;              /* xb_optimizer: sgd, adam */
    double dropout, grad_clip, lr_decay; /* grad_clip 0: none; lr_decay 1: none */
    size_t lr_step;
    char train_noise[1024], train_levels[1024], train_norm[64], act_quant[64]; /* "none" / "maxabs" */
    double ste_threshold;       /* INFINITY: none */
    size_t noise_ramp;
    /* <device>: a device file and optional overrides (NAN / "" : the file's value) */
    char device_file[4096];
    double v_read_V, vg_read_V, sigma_d2d, p_stuck_lrs, p_stuck_hrs, sigma_c2c;
    char mosfet_file[4096], mosfet_model[64], rram_file[4096];
    /* <chip> */
    char norm[64];              /* maxabs | clip:C, as written (part of the point's identity) */
    int single_ended;           /* mapping */
    int digital_bias;           /* bias */
    size_t tile_rows, tile_cols;
    xb_chip_spec chip;          /* the same, parsed by xb_chip_spec_set_* (levels and calib filled per point) */
    xb_tb_program program;
    /* <levels> */
    int n_levels;
    xb_tb_levels levels[XB_TB_MAX_LEVELS];
    /* <behavioral> */
    int dac_bits, adc_bits, adc_calibrate;
    double read_noise;
    /* <spice> (pool.jobs 0: the core count) */
    xb_pool_options pool;
    xb_energy_options energy;   /* spice.energy on: energy and settling time per tile (energy.h) */
    /* <perturb> */
    int n_perturb;
    xb_tb_perturb perturb[XB_TB_MAX_PERTURB];
    /* <backends>, <montecarlo> */
    unsigned backends;          /* XB_BACKEND_* bits; ideal is always computed */
    size_t trials;
    unsigned long seed;
    /* <programming>: a programming study (no network): each trial programs prog_cells cells per level of
     * the device by each method */
    int programming;
    size_t prog_cells;
    unsigned prog_methods;      /* XB_PROG_* bits */
} xb_tb_config;

/* XB_OUT_MCNEMAR: per group of `by` values, the first point against each other point (x names them),
 * input by input, from the per-input predictions that points with the spice backend keep. */
typedef enum { XB_OUT_PLOT = 0, XB_OUT_MIDPOINT, XB_OUT_SPEARMAN, XB_OUT_KRUSKAL, XB_OUT_EXAMPLE,
               XB_OUT_MCNEMAR } xb_tb_output_kind;

/* An <output> entry. Parameter names are checked at load: each names a column, a derived value
 * (network.synapses: weights and biases; network.layers: weight layers; network.neurons: hidden units)
 * or, where allowed, "backend". */
typedef struct xb_tb_output {
    xb_tb_output_kind kind;
    int line;
    char name[64];              /* file stem (a default is made from the kind and parameters) */
    char x[128];
    int metric_delta;           /* y: 0 accuracy, 1 delta_accuracy */
    char series[XB_TB_MAX_LIST][128];
    int n_series;
    char by[XB_TB_MAX_LIST][128];
    int n_by;
    char over[XB_TB_MAX_LIST][128]; /* spearman, kruskal: parameters that vary among the points of a group,
                                       each point one sample (architectures of a family) */
    int n_over;
    unsigned backend;           /* one XB_BACKEND_* bit; 0: the testbench's last backend */
    int logx, logy;
    int fit_log;                /* midpoint: fit in ln x (scale="log") */
    char grid[64];              /* only the points of this grid ("" : all) */
    char title[256];
    double bins[17];            /* kruskal: group edges, ascending */
    int n_bins;
    size_t point, layer, row_tile, col_tile, input; /* example: 1-based point and layer */
} xb_tb_output;

typedef struct xb_tb xb_tb;

/* Load and check path against the schema (xsd; NULL: testbench.xsd beside the file, else the source
 * tree's testbenches/testbench.xsd). Checks everything that does not need data or weights files:
 * parameter names, every point's values, outputs. Errors: XB_EINPUT, "FILE:LINE: element <x>: ...". */
int xb_tb_load(const char *path, const char *xsd, xb_tb **out, xb_error *err);
void xb_tb_free(xb_tb **tb);

const char *xb_tb_name(const xb_tb *tb);
const char *xb_tb_title(const xb_tb *tb);
const char *xb_tb_path(const xb_tb *tb);
const char *xb_tb_sha256(const xb_tb *tb);  /* of the file's bytes */

size_t xb_tb_n_points(const xb_tb *tb);
/* The swept columns: every parameter a grid sets or sweeps, in order of appearance, then the names of
 * axes whose values are labelled groups of settings. */
size_t xb_tb_n_columns(const xb_tb *tb);
const char *xb_tb_column(const xb_tb *tb, size_t c);
/* -1 if name is no column. */
int xb_tb_column_index(const xb_tb *tb, const char *name);
/* Point k's value of column c, as text: the value in force, a default shown as its default text. */
const char *xb_tb_value(const xb_tb *tb, size_t k, size_t c);
/* Label of point k's grid ("" for a sweep without grids; "1", "2", ... for unlabelled grids). */
const char *xb_tb_grid(const xb_tb *tb, size_t k);

/* Point k's configuration; quick caps images, trials, epochs and training images by <quick>.
 * XB_EINPUT naming FILE:LINE of the offending attribute, set or axis. */
int xb_tb_config_of(const xb_tb *tb, size_t k, int quick, xb_tb_config *cfg, xb_error *err);
/* FILE:LINE of the element that set a parameter for point k (for messages about values that turn out
 * wrong later, e.g. a layer selector for a network loaded from a file). */
void xb_tb_where(const xb_tb *tb, size_t k, const char *param, char *buf, size_t len);

/* 1 for a programming study (a <programming> element): its points program cells by write-verify and
 * compare the methods; nothing is trained or classified (docs/testbench.md, "Programming studies"). */
int xb_tb_is_programming(const xb_tb *tb);

size_t xb_tb_n_outputs(const xb_tb *tb);
const xb_tb_output *xb_tb_output_at(const xb_tb *tb, size_t i);

/* "ideal" / "behavioral" / "spice" for one XB_BACKEND_* bit. */
const char *xb_backend_name(unsigned backend);

#endif
