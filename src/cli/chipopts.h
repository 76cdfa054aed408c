// chipopts: the options that say how a network goes onto a chip, shared by `program` and `eval`
#ifndef XB_CHIPOPTS_H
#define XB_CHIPOPTS_H

#include <getopt.h>
#include <stddef.h>

#include "build.h"
#include "chip.h"
#include "dataset.h"
#include "device.h"
#include "mlp.h"
#include "pool.h"
#include "weights.h"

/* The chip options as given (the texts, for the JSON sidecars) and as parsed (spec, xb_chip_build's). */
typedef struct xb_cli_chip {
    const char *device;   /* device XML (default models/hfo2_1t1r.xml of the source tree) */
    const char *levels;   /* level set spec, "/"-separated per layer */
    const char *norm;     /* maxabs | clip:C */
    const char *mapping;  /* differential | single-ended */
    const char *bias;     /* row | digital */
    const char *tile;     /* RxC */
    size_t calib;         /* calibration images from the training split */
    xb_chip_spec spec;
    xb_net_desc net;      /* --layers, --input-shape, --layout: what the weights file may leave out
                             (net.hidden is the command's --activation) */
} xb_cli_chip;

/* Long options (codes 2000..2099) to splice into a command's table, terminated by {0}. */
extern const struct option xb_cli_chip_options[];
#define XB_CLI_CHIP_N_OPTIONS 10

/* Usage lines for these options (a literal, to splice into a command's usage text). */
#define XB_CLI_CHIP_USAGE \
    "  mapping onto the chip:\n" \
    "      --device FILE         device file (default models/hfo2_1t1r.xml): read voltage, levels, IGVVA,\n" \
    "                            variability; its HRS and top level bound the conductance range\n" \
    "      --levels SPEC[/SPEC]  level set, one for all layers or '/'-separated per layer: none (default),\n" \
    "                            set1..set5 (the paper's normalized sets), bits:B (symmetric, 2^B-1 levels),\n" \
    "                            abits:B (asymmetric, 2^B levels (q - zero_point) * scale from each layer's\n" \
    "                            own weight range), uniform:N (N levels over [-1, 1]), nnary:K:DELTA:MU,\n" \
    "                            levels:L1,L2,... (normalized units), device (the device file's levels)\n" \
    "      --norm maxabs|clip:C  per-layer normalization before quantization (default maxabs)\n" \
    "      --mapping differential|single-ended   G+/G- pairs on adjacent columns (default) or one column\n" \
    "                            per weight against a reference column per tile\n" \
    "      --bias row|digital    bias as extra rows driven at the read voltage (default) or added digitally\n" \
    "      --tile RxC            tile size (default 64x64, the 4-kbit array)\n" \
    "      --calib N             training images used to calibrate ReLU input ranges and the ADC (default 256)\n"

/* Usage lines of the network-description options (their own part of a command's usage). */
#define XB_CLI_NET_USAGE \
    "  what a weights file may leave out (a convolutional network's description, docs/cnn.md):\n" \
    "      --layers LIST         every weight layer: conv:F:K[:S[:P]], maxpool:K[:S], avgpool:K[:S], flatten,\n" \
    "                            dense:N (the file's own 'layers' array comes first)\n" \
    "      --input-shape HxWxC   the input grid (MNIST: 28x28x1)\n" \
    "      --layout keras|pytorch   conv kernels (kh, kw, in, out) and dense (in, out), flatten (H, W, C);\n" \
    "                            or Conv2d.weight (out, in, kh, kw), Linear.weight (out, in), flatten (C, H, W)\n"

/* Spice options shared by every command that solves through the worker pool (codes 2100..2199),
 * terminated by {0}. */
extern const struct option xb_cli_spice_options[];
#define XB_CLI_SPICE_N_OPTIONS 1

#define XB_CLI_SPICE_USAGE \
    "      --solve-timeout SECONDS  time limit per input (default 20): a work unit of N inputs may take\n" \
    "                            SECONDS x (N + 2); past it its worker is stopped and the inputs are solved\n" \
    "                            again one at a time (SECONDS x 3 each); an input past its own limit counts\n" \
    "                            as failed, like one that does not converge (docs/circuit.md)\n"

/* Handle spice option code c into o; returns 1 if it was one of ours (and sets *bad on a bad value). */
int xb_cli_spice_option(const char *cmd, int c, const char *arg, xb_pool_options *o, int *bad);

void xb_cli_chip_defaults(xb_cli_chip *o);
/* Handle option code c; returns 1 if it was one of ours (and sets *bad on a bad value), else 0. */
int xb_cli_chip_option(const char *cmd, int c, const char *arg, xb_cli_chip *o, int *bad);

/* Load the device, the calibration images m needs, and build the chip (xb_chip_build): the chip before
 * programming (g_S = targets). */
int xb_cli_chip_build(const xb_cli_chip *o, const xb_mlp *m, const char *dataset, xb_device *dev,
                      xb_chip **chip, char *levels_used, size_t levels_len, xb_error *err);

#endif
