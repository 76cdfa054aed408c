// energy_plot: the figure of energy per input per tile (sources split into cells and wires, ADC, DAC)
#ifndef XB_ENERGY_PLOT_H
#define XB_ENERGY_PLOT_H

#include "energy.h"
#include "error.h"

/* DIR/NAME.csv, .gp and, with render and gnuplot, .svg/.png (plot.h): one category per tile ("L1 T0,0"),
 * points for the cells', the wires', the ADC's, the DAC's and the whole energy per input, log y. */
int xb_energy_plot(const xb_energy *e, const char *dir, const char *name, int render, xb_error *err);

#endif
