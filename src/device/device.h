// device: the HfO2 1T1R cell description (read point, level targets, IGVVA, variability), from XML
#ifndef XB_DEVICE_H
#define XB_DEVICE_H

#include <stddef.h>

#include "error.h"

#define XB_DEVICE_MAX_LEVELS 16

/* Incremental Gate Voltage with Verify: a constant SET pulse on the top electrode, the gate voltage
 * stepped up after each verify read that is still below target. */
typedef struct xb_igvva_params {
    double v_set_V;          /* top-electrode SET pulse amplitude */
    double t_set_s;          /* SET pulse width */
    double vg_start_V;       /* first gate voltage of the staircase */
    double vg_step_V;        /* gate voltage increment per pulse */
    double vg_max_V;         /* staircase ends here: the cell fails if still below target */
    double tolerance_A;      /* verify accepts |I_read - I_trg| <= tolerance */
    int max_pulses;          /* per attempt */
    int max_retries;         /* RESET-and-retry attempts after an overshoot (0: overshoot is a failure) */
    /* Physics of one SET: the access transistor limits the current to a compliance
     * I_c = 0.5 k_n (V_g - V_th)^2, and the filament left behind reads as G = I_c / v_c (the
     * compliance-current / LRS-resistance relation of HfO2 cells). */
    double k_n_A_per_V2;     /* transistor transconductance parameter during SET */
    double v_th_V;           /* transistor threshold voltage */
    double v_c_V;            /* G_after_set = I_c / v_c */
    double sigma_c2c;        /* relative spread of each SET outcome: G *= (1 + sigma_c2c N(0,1)) */
} xb_igvva_params;

/* The gap-based compact model of the RRAM used at circuit level (models/rram_gap.lib; the Stanford/PKU
 * model of Guan, Yu and Wong, IEEE EDL 33(10) 2012; docs/device-circuit.md has the equations):
 *   I = i0 exp(-g/g0) sinh(V/v0),  dg/dt = -vel0 exp(-(ea + dea) q/(kB T)) sinh(gamma a0/t_ox q V/(kB T)),
 *   gamma = gamma0 - beta (g / 1 nm)^3,  T = t0 + r_th |V I|,  gap_min <= g <= gap_max.
 * The device file's optional <rram> group; without it these defaults (xb_device_defaults). */
typedef struct xb_rram_params {
    char model_file[4096];   /* defines rram_gap_dyn, rram_gap_held, rram_gap and xb_1t1r_gap */
    double i0_A;             /* current prefactor */
    double g0_m;             /* gap decay length of the current */
    double v0_V;             /* I-V nonlinearity voltage */
    double vel0_m_per_s;     /* gap velocity prefactor */
    double ea_eV;            /* activation energy of the gap motion */
    double a0_m;             /* hopping distance (atomic spacing) */
    double t_ox_m;           /* oxide thickness */
    double gamma0;           /* field enhancement factor at g = 0 */
    double beta;             /* its decrease with the gap, per nm^3 */
    double t0_K;             /* ambient temperature */
    double r_th_K_per_W;     /* thermal resistance (self-heating) */
    double gap_min_m;        /* the strongest filament (LRS) */
    double gap_max_m;        /* the RESET state (HRS): every circuit-programmed cell starts here */
    double sigma_ea_eV;      /* cycle-to-cycle variation: each pulse's ea is ea + sigma_ea_eV N(0,1) */
    double v_reset_V;        /* RESET pulse amplitude (applied as -v_reset_V on the top electrode) */
    double t_rise_s;         /* rise and fall time of the SET and RESET pulses */
} xb_rram_params;

typedef struct xb_device {
    char name[64];
    char source_path[4096];  /* the XML file it came from ("" for built-in defaults) */
    double v_read_V;         /* read voltage on the top electrode (rows) */
    double vg_read_V;        /* word-line (gate) voltage during reads */
    double g_hrs_S;          /* conductance after RESET (the lowest state, "level 0" of a differential pair) */
    double g_lrs_S;          /* conductance of a cell stuck at LRS */
    int n_levels;            /* read-current targets, ascending */
    double i_trg_A[XB_DEVICE_MAX_LEVELS];
    xb_igvva_params igvva;
    double sigma_d2d;        /* relative device-to-device spread of programmed conductance */
    double sigma_read;       /* relative read noise per read, drawn anew at every inference */
    double p_stuck_lrs;      /* probability a cell is stuck at LRS */
    double p_stuck_hrs;      /* probability a cell is stuck at HRS */
    /* SPICE models for the circuit level (paths in the XML file are relative to its folder). */
    char mosfet_model_file[4096];
    char mosfet_model_name[64];  /* the .model name in mosfet_model_file (a PDK card plugs in by name) */
    double access_w_m;           /* access transistor width and length in the decks (default 1 um each, */
    double access_l_m;           /* the W = L the level-1 card's KP = k_n_A_per_V2 assumes) */
    char rram_model_file[4096];  /* defines rram_lin, rram_sinh, xb_1t1r and xb_1t1r_sinh (models/rram.lib) */
    xb_rram_params rram;         /* the switching model of circuit-level programming and gap cells */
} xb_device;

/* Built-in defaults (the same values as models/hfo2_1t1r.xml). */
void xb_device_defaults(xb_device *d);

/* Read and validate a device file against the schema (models/device.xsd next to it, or the path given
 * by xsd_path when not NULL). Errors name file:line, the element and what is allowed. */
int xb_device_load(const char *path, const char *xsd_path, xb_device *d, xb_error *err);

/* The circuit-level model files of d exist and define what the decks use: mosfet_model_file holds a
 * `.model` named mosfet_model_name (or its binned variants NAME.1, NAME.2, ...; not checked when the file
 * pulls in others with .include / .lib), and rram_model_file defines the subcircuits the decks call.
 * XB_OK, or XB_EINPUT naming the field, the file and the fix (xb_device_load adds file:line). For callers
 * that change the model fields after loading. */
int xb_device_check_models(const xb_device *d, xb_error *err);

/* The compact model file (rram.model_file) exists and defines the subcircuits circuit programming and gap
 * cells call: rram_gap_dyn, rram_gap_held, rram_gap, xb_1t1r_gap. XB_OK or XB_EINPUT naming the file and the
 * fix. Circuit-level users call it before use (xb_device_load does not: the statistical paths never read it). */
int xb_device_check_rram_model(const xb_device *d, xb_error *err);

/* Target conductance of level l: i_trg_A[l] / v_read_V (NaN when l is not a level). */
double xb_device_level_G(const xb_device *d, int l);

/* The rules a schema cannot express, on a filled-in struct (xb_device_load applies them too, naming
 * file:line): 2..16 positive ascending targets whose verify windows do not overlap, vg_start < vg_max,
 * sigmas >= 0, probabilities in [0, 1], and every target reachable by the zero-noise staircase.
 * XB_OK or XB_EINPUT naming the field and what is allowed. */
int xb_device_check(const xb_device *d, xb_error *err);

#endif
