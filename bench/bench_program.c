// bench_program: circuit IGVVA (ngspice transients) against the statistical IGVVA on the same cells
//
// usage: bench_program [cells_per_level] [out_dir] [tile]
//   8 levels x cells_per_level cells (default 16; the paper's figure has 128), level of cell i = i mod 8,
//   programmed by both methods with the device defaults and seed 1. Prints per level the pulse statistics
//   and the read-current spread side by side, and the time per cell and per 64x64 tile of both methods with
//   their ratio, measured in this run. A 64x64 tile's time is 4096 cells' time: cells are programmed one
//   after the other, each from RESET, so it adds up; `tile` as third argument programs a real 4096-cell
//   tile by circuit instead (about 15 to 40 minutes). With out_dir, writes compare.csv, cdf.csv (both
//   methods) and the figure cdf-compare-plot there.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "device.h"
#include "fileio.h"
#include "igvva.h"
#include "igvva_plot.h"
#include "plot.h"
#include "program_circuit.h"
#include "progress.h"

int main(int argc, char **argv)
{
    long per_level = argc > 1 ? atol(argv[1]) : 16;
    const char *out = argc > 2 && strcmp(argv[2], "-") ? argv[2] : NULL;
    int tile = argc > 3 && !strcmp(argv[3], "tile");
    if (per_level < 1 || per_level > 100000) {
        fprintf(stderr, "usage: bench_program [cells_per_level] [out_dir|-] [tile]\n");
        return 2;
    }
    xb_device d;
    xb_device_defaults(&d);
    size_t n = tile ? 4096 : (size_t)per_level * (size_t)d.n_levels;
    double *trg = malloc(n * sizeof *trg);
    xb_igvva_result *rs = calloc(n, sizeof *rs), *rc_ = calloc(n, sizeof *rc_);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!trg || !rs || !rc_ || !rng)
        return 1;
    for (size_t i = 0; i < n; i++)
        trg[i] = d.i_trg_A[i % (size_t)d.n_levels];
    xb_error err = {0};

    /* Statistical: repeated until it has run for a measurable time. */
    xb_igvva_stats ss, sc;
    double t0 = xb_now(), stat_s;
    long reps = 0;
    do {
        gsl_rng_set(rng, 1);
        if (xb_igvva_program(&d, trg, n, rng, rs, &ss, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        reps++;
    } while ((stat_s = xb_now() - t0) < 0.5);
    stat_s /= (double)reps;

    xb_circuit_prog *p = NULL;
    if (xb_circuit_prog_new(&d, NULL, &p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gsl_rng_set(rng, 1);
    t0 = xb_now();
    if (xb_circuit_program_cells(p, trg, n, rng, rc_, NULL, 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double circ_s = xb_now() - t0;
    long pulses = 0, reads = 0;
    xb_circuit_prog_counts(p, &pulses, &reads, NULL);
    printf("libngspice %d; %zu cells (%s), seed 1, device defaults (sigma_c2c %g / sigma_ea %g eV, sigma_read %g)\n",
           xb_spice_version(xb_circuit_prog_spice(p)), n, tile ? "a 64x64 tile" : "8 levels", d.igvva.sigma_c2c,
           d.rram.sigma_ea_eV, d.sigma_read);
    xb_circuit_prog_free(&p);
    xb_igvva_summarize(trg, rc_, n, &sc, NULL);

    printf("\nlevel  I_trg   cells | ok stat  ok circ | pulses stat (max) | pulses circ (max) | "
           "std I_read stat  circ (uA) | mean I_read stat  circ (uA)\n");
    for (int g = 0; g < ss.n_groups; g++) {
        const xb_igvva_group_stats *a = &ss.group[g], *b = &sc.group[g];
        printf("%5d %5.0f uA %5zu | %7zu %8zu | %10.1f (%4d) | %10.1f (%4d) | %15.3f %5.3f | %16.3f %5.3f\n", g,
               a->i_trg_A * 1e6, a->n_cells, a->n_status[XB_IGVVA_OK], b->n_status[XB_IGVVA_OK], a->mean_pulses,
               a->max_pulses, b->mean_pulses, b->max_pulses, a->std_i_read_A * 1e6, b->std_i_read_A * 1e6,
               a->mean_i_read_A * 1e6, b->mean_i_read_A * 1e6);
    }
    double per_cell_c = circ_s / (double)n, per_cell_s = stat_s / (double)n;
    printf("\ncircuit:     %.4g s per cell (%.3g ms per pulse, %ld transients, %ld reads); 64x64 tile %s%.4g s\n",
           per_cell_c, pulses ? 1e3 * circ_s / (double)pulses : NAN, pulses, reads, tile ? "" : "(4096 cells) ",
           tile ? circ_s : 4096 * per_cell_c);
    printf("statistical: %.4g s per cell; 64x64 tile %.4g s\n", per_cell_s, 4096 * per_cell_s);
    printf("circuit / statistical: %.4g x slower per cell\n", per_cell_c / per_cell_s);

    if (out) {
        char path[4300];
        snprintf(path, sizeof path, "%s/compare.csv", out);
        xb_mkdir_p(out, &err);
        FILE *fp = fopen(path, "w");
        if (fp) {
            fprintf(fp, "level,i_trg_A,cells,ok_statistical,ok_circuit,mean_pulses_statistical,mean_pulses_circuit,"
                        "std_i_read_A_statistical,std_i_read_A_circuit,seconds_per_cell_statistical,"
                        "seconds_per_cell_circuit\n");
            for (int g = 0; g < ss.n_groups; g++)
                fprintf(fp, "%d,%.17g,%zu,%zu,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", g, ss.group[g].i_trg_A,
                        ss.group[g].n_cells, ss.group[g].n_status[XB_IGVVA_OK], sc.group[g].n_status[XB_IGVVA_OK],
                        ss.group[g].mean_pulses, sc.group[g].mean_pulses, ss.group[g].std_i_read_A,
                        sc.group[g].std_i_read_A, per_cell_s, per_cell_c);
            fclose(fp);
        }
        snprintf(path, sizeof path, "%s/cdf-statistical.csv", out);
        xb_igvva_write_cdf_csv(path, trg, rs, n, &err);
        snprintf(path, sizeof path, "%s/cdf-circuit.csv", out);
        xb_igvva_write_cdf_csv(path, trg, rc_, n, &err);
        if (xb_plot_igvva_cdf_compare(out, "cdf-compare-plot", trg, rs, "statistical", rc_, "circuit", n,
                                      xb_plot_can_render(), &err))
            fprintf(stderr, "figure: %s\n", err.msg);
        printf("wrote %s/compare.csv, cdf-statistical.csv, cdf-circuit.csv, cdf-compare-plot.*\n", out);
    }
    free(trg);
    free(rs);
    free(rc_);
    gsl_rng_free(rng);
    return 0;
}
