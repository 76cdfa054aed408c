// cmd_netlist: `xbarsim netlist`, write SPICE decks of a chip's tiles for review and for `ngspice -b`
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chipopts.h"
#include "cli.h"
#include "netlist_out.h"
#include "weights.h"

static const char usage[] =
    "usage: xbarsim netlist --weights FILE [options]\n"
    "\n"
    "Write SPICE decks of crossbar tiles that a person can read and run with `ngspice -b DECK`: row\n"
    "drivers, a resistor per wire segment, the cells (1T1R cells of the device's RRAM file with its MOSFET\n"
    "card; a comment per cell gives its layer row and column, input, output neuron and side of the pair,\n"
    "weight and normalized weight, target and programmed conductance), the word line, and a 0 V sense\n"
    "source per column whose current is the column current. The deck's inputs are test images (layer 1)\n"
    "or, for later layers, the behavioral model's activations of those images. Beside each deck,\n"
    "DECK.expected.csv holds the column currents xbarsim's libngspice driver computes for the same\n"
    "inputs. docs/circuit.md describes the decks.\n"
    "\n"
    "  -w, --weights FILE        weights.npz, or W1.npy,b1.npy,...\n"
    "      --chip FILE           a conductance map from `xbarsim program` (else the weights are mapped here)\n"
    "  -d, --dataset NAME|PATH   where the test images come from (default mnist)\n"
    "  -a, --activation NAME     hidden activation when the weights file does not record it\n"
    "      --layer L             layer (default 1)\n"
    "      --tile-index R,C      which tile: row tile and column tile (default 0,0); the tile size is\n"
    "                            --tile RxC below\n"
    "      --all                 every tile of every layer (review decks, no expected currents)\n"
    "      --input K             first test image (default 0)\n"
    "      --inputs N            inputs in the deck: 1 writes an `op` deck, more a `dc` sweep (default 1)\n"
    "      --cells 1t1r|linear|gap  cell model (default 1t1r; gap: the <rram> compact model)\n"
    "      --r-row OHM, --r-col OHM   wire resistance per cell segment (default 1)\n"
    "      --rram-v0 V           RRAM sinh I-V nonlinearity voltage (default 0: linear)\n"
    XB_CLI_SPICE_USAGE
    "                            (an expected current that fails is written as NaN, and said on stderr)\n"
    "  -o, --out DIR             folder for the decks (default netlists/generated)\n"
    XB_CLI_CHIP_USAGE
    "\n"
    "example:\n"
    "  xbarsim netlist --weights results/reference/mnist-slp-f32.npz --tile 64x64 --tile-index 6,0 -o /tmp/decks\n"
    "  ngspice -b /tmp/decks/L1_T6_0.cir\n";

enum { O_CHIP = 1000, O_LAYER, O_TILE, O_ALL, O_INPUT, O_INPUTS, O_CELLS, O_RROW, O_RCOL, O_V0 };

static int run(int argc, char **argv)
{
    const char *weights = NULL, *spec = "mnist", *act_s = NULL, *out = "netlists/generated", *chip_path = NULL;
    size_t layer = 1, rt = 0, ct = 0, input = 0, n_inputs = 1;
    int all = 0;
    xb_cli_chip copt;
    xb_cli_chip_defaults(&copt);
    xb_pool_options po;
    xb_pool_defaults(&po);
    po.jobs = 1;
    po.quiet = 1;
    struct option opts[32] = {
        {"weights", required_argument, 0, 'w'}, {"dataset", required_argument, 0, 'd'},
        {"activation", required_argument, 0, 'a'}, {"out", required_argument, 0, 'o'},
        {"chip", required_argument, 0, O_CHIP}, {"layer", required_argument, 0, O_LAYER},
        {"tile-index", required_argument, 0, O_TILE}, {"all", no_argument, 0, O_ALL},
        {"input", required_argument, 0, O_INPUT}, {"inputs", required_argument, 0, O_INPUTS},
        {"cells", required_argument, 0, O_CELLS}, {"r-row", required_argument, 0, O_RROW},
        {"r-col", required_argument, 0, O_RCOL}, {"rram-v0", required_argument, 0, O_V0}};
    int n_opts = 14;
    for (int i = 0; i < XB_CLI_CHIP_N_OPTIONS; i++)
        opts[n_opts++] = xb_cli_chip_options[i];
    for (int i = 0; i < XB_CLI_SPICE_N_OPTIONS; i++)
        opts[n_opts++] = xb_cli_spice_options[i];
    memset(&opts[n_opts], 0, sizeof opts[0]);
    int c, bad = 0;
    opterr = 0;
    optind = 1;
    while (!bad && (c = getopt_long(argc, argv, ":w:d:a:o:", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        if (xb_cli_chip_option("netlist", c, optarg, &copt, &bad) || xb_cli_spice_option("netlist", c, optarg, &po, &bad))
            continue;
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': spec = optarg; break;
        case 'a': act_s = optarg; break;
        case 'o': out = optarg; break;
        case O_CHIP: chip_path = optarg; break;
        case O_LAYER: bad = xb_cli_size("netlist", "--layer", optarg, 1, 64, &layer); break;
        case O_TILE: {
            unsigned long a, b;
            char extra;
            if (sscanf(optarg, "%lu,%lu%c", &a, &b, &extra) != 2 || optarg[0] == '-')
                bad = xb_cli_usage_error("netlist", "--tile-index '%s': expected ROW_TILE,COL_TILE, e.g. 0,0 (the "
                                         "tile size is --tile RxC)", optarg);
            else
                rt = a, ct = b;
            break;
        }
        case O_ALL: all = 1; break;
        case O_INPUT: bad = xb_cli_size("netlist", "--input", optarg, 0, (size_t)1 << 40, &input); break;
        case O_INPUTS: bad = xb_cli_size("netlist", "--inputs", optarg, 1, 1024, &n_inputs); break;
        case O_CELLS:
            if (strcmp(optarg, "1t1r") && strcmp(optarg, "linear") && strcmp(optarg, "gap"))
                bad = xb_cli_usage_error("netlist", "--cells '%s': expected 1t1r, linear or gap", optarg);
            po.net.linear_cells = !strcmp(optarg, "linear");
            po.net.gap_cells = !strcmp(optarg, "gap");
            break;
        case O_RROW: bad = xb_cli_double("netlist", "--r-row", optarg, 0, 1e6, &po.net.r_row_ohm); break;
        case O_RCOL: bad = xb_cli_double("netlist", "--r-col", optarg, 0, 1e6, &po.net.r_col_ohm); break;
        case O_V0: bad = xb_cli_double("netlist", "--rram-v0", optarg, 0, 100, &po.net.rram_v0_V); break;
        case ':': return xb_cli_usage_error("netlist", "option %s needs a value", opt);
        default: return xb_cli_usage_error("netlist", "unknown option '%s'", opt);
        }
    }
    if (bad)
        return 2;
    if (optind < argc)
        return xb_cli_usage_error("netlist", "unexpected argument '%s'", argv[optind]);
    if (!weights)
        return xb_cli_usage_error("netlist", "--weights is required (an .npz file or W1.npy,b1.npy,...)");
    int hidden = -1;
    if (act_s && (hidden = xb_activation_parse(act_s)) < 0)
        return xb_cli_usage_error("netlist", "--activation '%s': expected sigmoid, relu or identity", act_s);
    if (xb_cli_out_dir("netlist", "--out", out))
        return 2;

    xb_error err = {0};
    xb_mlp *m = NULL;
    xb_chip *chip = NULL;
    xb_device dev;
    char note[4096];
    size_t used = (size_t)snprintf(note, sizeof note, "xbarsim");
    for (int i = 0; i < argc && used < sizeof note; i++)
        used += (size_t)snprintf(note + used, sizeof note - used, " %s", argv[i]);
    copt.net.hidden = hidden;
    int rc = xb_weights_load_desc(weights, &copt.net, &m, &err);
    if (rc)
        goto done;
    if (chip_path) {
        if ((rc = xb_chip_load(chip_path, &chip, &err)) || (rc = xb_device_load(copt.device, NULL, &dev, &err)))
            goto done;
    } else if ((rc = xb_cli_chip_build(&copt, m, spec, &dev, &chip, NULL, 0, &err))) {
        goto done;
    }
    xb_deck_spec ds = {.out = out, .note = note, .all = all, .layer = layer, .row_tile = rt, .col_tile = ct,
                       .dataset = spec, .input = input, .n_inputs = n_inputs};
    xb_deck_outcome r;
    if ((rc = xb_netlist_write_decks(&ds, chip, &dev, &po, &r, &err)))
        goto done;
    if (all) {
        printf("%zu review decks (every row at v_read) -> %s/\n", r.decks, out);
        goto done;
    }
    if (r.points > n_inputs)
        printf("%s (%zu x %zu tile, %zu input%s x %zu patches) and %s (currents from libngspice %s)\n", r.path, r.rows,
               r.cols, n_inputs, n_inputs == 1 ? "" : "s", r.points / n_inputs, r.epath, r.solver);
    else
        printf("%s (%zu x %zu tile, %zu input%s) and %s (currents from libngspice %s)\n", r.path, r.rows, r.cols,
               n_inputs, n_inputs == 1 ? "" : "s", r.epath, r.solver);
    if (r.n_failed)
        fprintf(stderr, "xbarsim netlist: %zu of %zu input%s%s failed in libngspice (no convergence, or past the "
                "time limit of --solve-timeout): their expected currents are NaN\n", r.n_failed, r.points,
                r.points == 1 ? "" : "s", r.points > n_inputs ? " (patches)" : "");
done:
    xb_chip_free(&chip);
    xb_mlp_free(&m);
    return xb_cli_fail("netlist", rc, &err);
}

const xb_command xb_cmd_netlist = {"netlist", run, "write SPICE decks of crossbar tiles (review, ngspice -b)",
                                   {usage, XB_CLI_NET_USAGE}};
