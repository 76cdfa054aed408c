// energy: energy per input of every tile from the solved circuit, ADC/DAC energy, and settling time
//
// Per tile and input: every source's V.I, the cells' and the wires' shares (xb_spice_tile_power) times
// the read time; ADC and DAC conversions at a per-conversion energy added digitally (one DAC conversion
// per driven row, one ADC conversion per column of the tile); the tile's settling time from a transient
// with a capacitance per wire segment (xb_spice_tile_settling). Measured on the first `inputs` inputs of
// each layer (its first batch), each tile in a fresh worker (xb_pool_run_one), so the circuit solves and
// their results are untouched. docs/circuit.md ("Energy and latency") has the definitions and the sources
// of the defaults. Ownership: an xb_energy owns its tile records; release with xb_energy_free.
#ifndef XB_ENERGY_H
#define XB_ENERGY_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "error.h"
#include "json.h"

struct xb_pool_options;

/* Defaults, with their sources (docs/circuit.md):
 * read time: ISAAC's crossbar read cycle, 100 ns (Shafiee et al., ISCA 2016, section 6);
 * ADC: ISAAC's 8-bit 1.28 GS/s SAR ADC, 2 mW: 2e-3 / 1.28e9 = 1.5625 pJ per conversion;
 * DAC: ISAAC's 1-bit DACs, 4 mW for 8 x 128 of them at 1.28 GHz: 3.05 fJ per conversion;
 * wire capacitance: 0.2 fF per cell segment, an on-chip interconnect's ~0.2 fF/um over a ~1 um pitch;
 * settling: within 0.1 % of the largest final column current. */
#define XB_ENERGY_T_READ_S 100e-9
#define XB_ENERGY_ADC_J 1.5625e-12
#define XB_ENERGY_DAC_J (4e-3 / 1024 / 1.28e9)
#define XB_ENERGY_C_WIRE_F 0.2e-15
#define XB_ENERGY_SETTLE_FRAC 1e-3
#define XB_ENERGY_INPUTS 8

typedef struct xb_energy_options {
    int on;               /* measure (default 0) */
    size_t inputs;        /* inputs per layer measured (default XB_ENERGY_INPUTS; the layer's first) */
    double t_read_s;      /* read time: energy = power x t_read */
    double adc_J, dac_J;  /* energy per conversion */
    double c_wire_F;      /* capacitance per wire segment of the settling transient */
    double settle_frac;   /* settled: every column current within this fraction of the largest final one */
} xb_energy_options;

void xb_energy_defaults(xb_energy_options *o);
/* XB_EINPUT naming the option (as `--NAME`) when a value is out of range. */
int xb_energy_check(const xb_energy_options *o, xb_error *err);

typedef struct xb_tile_energy {
    int layer;                           /* 0-based */
    size_t rt, ct, rows, cols;
    size_t inputs;                       /* inputs the sweep solved (NaN ones left out of the means) */
    double e_src_J, e_cell_J, e_wire_J;  /* per input, mean over the inputs */
    double e_adc_J, e_dac_J;             /* per input: cols x adc_J, rows x dac_J */
    double t_settle_s, t_stop_s;         /* settling time, every row at v_read; the transient's length */
} xb_tile_energy;

typedef struct xb_energy {
    xb_energy_options o;
    xb_tile_energy *tiles;
    size_t n_tiles, cap;
    unsigned char done[64];              /* layers measured (layer l < 64) */
} xb_energy;

void xb_energy_init(xb_energy *e, const xb_energy_options *o);
void xb_energy_free(xb_energy *e);

/* Measure every tile of layer l of chip c for the first min(n, e->o.inputs) of the n x rows row
 * voltages V, each tile in a fresh worker with po's netlist options and time limit. Once per layer
 * (later calls for a measured layer do nothing). Errors: the solver's (XB_EINPUT, XB_ERUNTIME), XB_ENOMEM. */
int xb_energy_layer(xb_energy *e, const struct xb_pool_options *po, const xb_chip *c, const xb_device *dev, int l,
                    const double *V, size_t n, xb_error *err);

/* Per input: a tile's whole energy (sources + ADC + DAC); a layer's (l >= 0) or every layer's (l < 0). */
double xb_energy_tile_total_J(const xb_tile_energy *t);
double xb_energy_total_J(const xb_energy *e, int l);
/* The longest settling time of layer l's tiles (l < 0: the sum over layers, which run one after the other). */
double xb_energy_settle_s(const xb_energy *e, int l);

/* CSV, one row per tile: layer,row_tile,col_tile,rows,cols,inputs,t_read_s,e_sources_J,e_cells_J,e_wires_J,
 * e_adc_J,e_dac_J,e_total_J,c_wire_F,settle_fraction,t_settle_s,t_transient_s. */
int xb_energy_write_csv(const xb_energy *e, const char *path, xb_error *err);
/* The "energy" object of a run.json: options, per layer and per inference totals. */
void xb_energy_json(const xb_energy *e, xb_json *j, int n_layers);

#endif
