// igvva: behavioral simulation of the Incremental Gate Voltage with Verify write algorithm on 1T1R cells
#ifndef XB_IGVVA_H
#define XB_IGVVA_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "device.h"
#include "error.h"

/* Model (parameters in xb_device.igvva; every cell starts in HRS, G = g_hrs_S):
 *   pulse k of an attempt (k = 0, 1, ...): V_g = vg_start_V + k vg_step_V
 *   compliance          I_c   = 0.5 k_n (V_g - V_th)^2   (0 when V_g <= V_th)
 *   SET outcome         G_set = max(g_hrs, I_c / v_c (1 + sigma_c2c N(0,1)))
 *   the filament only grows: G = max(G, G_set)
 *   verify read         I_read = G v_read (1 + sigma_read N(0,1))
 *   |I_read - I_trg| <= tolerance: OK. Above the window: RESET (G = g_hrs) and restart the staircase
 *   while retries remain, else OVERSHOOT. Below: next pulse, unless V_g would pass vg_max_V
 *   (UNDERSHOOT) or the attempt has used max_pulses pulses (MAX_PULSES).
 * D2D spread and stuck-at faults are not applied here: they act on the programmed map afterwards. */

/* Outcome of programming one cell. */
enum {
    XB_IGVVA_OK = 0,         /* the last verify read was inside the window */
    XB_IGVVA_UNDERSHOOT = 1, /* the staircase reached vg_max_V still below the window */
    XB_IGVVA_OVERSHOOT = 2,  /* above the window with every retry used; the cell keeps the overshot state */
    XB_IGVVA_MAX_PULSES = 3, /* an attempt used max_pulses pulses still below the window */
    XB_IGVVA_BAD_ARGS = 4    /* not run: noise requested without a generator, or a non-finite target */
};
#define XB_IGVVA_N_STATUS 5

typedef struct xb_igvva_result {
    double g_S;        /* conductance the cell ends with (noise-free; read noise is in i_read_A only) */
    double i_read_A;   /* the last verify read (the accepted one for OK cells) */
    double vg_final_V; /* gate voltage of the last pulse (0 if none) */
    int pulses;        /* SET pulses over all attempts */
    int attempts;      /* staircases started: 1 + RESETs after overshoot */
    int status;        /* XB_IGVVA_* */
} xb_igvva_result;

/* At most this many distinct targets are told apart in the statistics and CSV files. */
#define XB_IGVVA_MAX_GROUPS 64

/* Statistics of the cells that share one target. */
typedef struct xb_igvva_group_stats {
    double i_trg_A;            /* NaN in the all-cells summary */
    size_t n_cells;
    size_t n_status[XB_IGVVA_N_STATUS]; /* cells per XB_IGVVA_* outcome */
    double mean_pulses;        /* over all cells */
    int max_pulses;            /* most pulses one cell took */
    double mean_attempts;
    double mean_i_read_A;      /* final verify reads, all cells */
    double std_i_read_A;
    double mean_abs_err_ok_A;  /* mean |I_read - I_trg| over OK cells (NaN without OK cells) */
    double max_abs_err_ok_A;   /* largest |I_read - I_trg| over OK cells */
} xb_igvva_group_stats;

typedef struct xb_igvva_stats {
    int n_groups;                                    /* distinct targets, ascending */
    xb_igvva_group_stats group[XB_IGVVA_MAX_GROUPS];
    xb_igvva_group_stats all;                        /* every cell together */
    size_t n_pulses_total;                           /* SET pulses spent on the whole array */
} xb_igvva_stats;

/* A cell the write-verify loop programs: the statistical SET model (xb_igvva_program_cell) or a circuit
 * (src/spice/program_circuit.c). *g_S and *i_A hold the cell's noise-free conductance and read current;
 * the callbacks update them. A non-zero return ends programming with that status (err filled). */
typedef struct xb_igvva_cell_ops {
    /* Before attempt (1-based) of the staircase: RESET the cell (or leave it, on the first attempt, as
     * it is); attempt 0 reports the cell as it is before programming. */
    int (*reset)(void *ctx, int attempt, double *g_S, double *i_A, xb_error *err);
    /* One SET pulse at gate voltage vg, then the noise-free verify read. */
    int (*set)(void *ctx, double vg, gsl_rng *rng, double *g_S, double *i_A, xb_error *err);
} xb_igvva_cell_ops;

/* The IGVVA write-verify of one cell to the read-current target i_trg_A, the device's staircase,
 * window, pulse limit and RESET-and-retry, with its read noise (sigma_read) on every verify read;
 * noisy: the cell's own draws or the read noise need rng (else r->status = XB_IGVVA_BAD_ARGS). */
int xb_igvva_write_verify(const xb_device *d, double i_trg_A, gsl_rng *rng, int noisy, const xb_igvva_cell_ops *ops,
                          void *ctx, xb_igvva_result *r, xb_error *err);

/* Program one cell to the read-current target i_trg_A and fill *r.
 * rng may be NULL only if sigma_c2c and sigma_read are zero (else r->status = XB_IGVVA_BAD_ARGS).
 * Draws one gaussian per SET and one per read when the respective sigma is non-zero. */
void xb_igvva_program_cell(const xb_device *d, double i_trg_A, gsl_rng *rng, xb_igvva_result *r);

/* Program n cells, cell i to i_trg_A[i], in order (so a seeded rng reproduces the run).
 * inputs, not modified: d, i_trg_A[n]
 * outputs: out[n]; stats (may be NULL) grouped by distinct target value.
 * XB_OK; XB_EINPUT if noise is requested with rng NULL or stats would need more than
 * XB_IGVVA_MAX_GROUPS distinct targets; XB_ENOMEM. */
int xb_igvva_program(const xb_device *d, const double *i_trg_A, size_t n, gsl_rng *rng, xb_igvva_result *out,
                     xb_igvva_stats *stats, xb_error *err);

/* Summaries of finished results (what xb_igvva_program fills in when stats is not NULL). */
int xb_igvva_summarize(const double *i_trg_A, const xb_igvva_result *res, size_t n, xb_igvva_stats *stats,
                       xb_error *err);

/* "ok", "undershoot", "overshoot", "max_pulses", "bad_args". */
const char *xb_igvva_status_name(int status);

/* Per-target empirical CDF of the final verify reads, CSV "level,i_trg_A,i_read_A,cdf": level is the
 * index of the target among the distinct targets (ascending), rows sorted by level then i_read_A,
 * cdf = rank / cells of the level (rank from 1). All cells, failed ones included. Written atomically. */
int xb_igvva_write_cdf_csv(const char *path, const double *i_trg_A, const xb_igvva_result *res, size_t n,
                           xb_error *err);

/* Histogram of pulses per cell, CSV "pulses,count", one row per integer from the fewest to the most
 * pulses seen (zero counts included). Written atomically. */
int xb_igvva_write_pulse_hist_csv(const char *path, const xb_igvva_result *res, size_t n, xb_error *err);

/* The cells as (target, final read) rows sorted by target, then by read: what the CDF file and the CDF
 * figure (src/report/igvva_plot.h) are drawn from. *out (n rows) is the caller's to free. XB_EINPUT
 * (messages start with what) for a non-finite target or read, XB_ENOMEM. */
typedef struct xb_igvva_cdf_row {
    double trg_A, i_read_A;
} xb_igvva_cdf_row;
int xb_igvva_cdf_rows(const char *what, const double *i_trg_A, const xb_igvva_result *res, size_t n,
                      xb_igvva_cdf_row **out, xb_error *err);

/* The fewest and the most pulses of any cell (lo > hi when n is 0). XB_EINPUT for a negative count. */
int xb_igvva_pulse_range(const char *what, const xb_igvva_result *res, size_t n, int *lo, int *hi, xb_error *err);

#endif
