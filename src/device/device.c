// device: the HfO2 1T1R cell description: built-in defaults, checked loading of XML device files
#define _XOPEN_SOURCE 700
#include "device.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "fileio.h"
#include "xmlcheck.h"

/* The build defines the source tree so an installed or out-of-tree binary still finds models/. */
#ifndef XB_SOURCE_DIR
#define XB_SOURCE_DIR "."
#endif

/* Device files are a page of XML; anything much larger is not one. */
#define DEVICE_MAX_FILE_BYTES ((size_t)1 << 20)

/* ------------------------------------------------------------------------------------------------ */
/* Defaults (keep equal to models/hfo2_1t1r.xml; models/README.md gives the sources) */

void xb_device_defaults(xb_device *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", "hfo2_1t1r");
    d->v_read_V = 0.2;
    d->vg_read_V = 2.5;
    d->g_hrs_S = 5e-6;
    d->g_lrs_S = 9e-4;
    d->n_levels = 8;
    static const double i_trg_A[8] = { 10e-6, 20e-6, 30e-6, 40e-6, 50e-6, 60e-6, 70e-6, 80e-6 };
    memcpy(d->i_trg_A, i_trg_A, sizeof i_trg_A);
    d->igvva.v_set_V = 1.2;
    d->igvva.t_set_s = 1e-6;
    d->igvva.vg_start_V = 0.6;
    d->igvva.vg_step_V = 0.01;
    d->igvva.vg_max_V = 2.2;
    d->igvva.tolerance_A = 2e-6;
    d->igvva.max_pulses = 200;
    d->igvva.max_retries = 3;
    d->igvva.k_n_A_per_V2 = 250e-6;
    d->igvva.v_th_V = 0.5;
    d->igvva.v_c_V = 0.4;
    d->igvva.sigma_c2c = 0.05;
    d->sigma_d2d = 0.03;
    d->sigma_read = 0.01;
    d->p_stuck_lrs = 0.0;
    d->p_stuck_hrs = 0.0;
    snprintf(d->mosfet_model_file, sizeof d->mosfet_model_file, "%s", XB_SOURCE_DIR "/models/nmos_l1.lib");
    snprintf(d->mosfet_model_name, sizeof d->mosfet_model_name, "%s", "nmos1t1r");
    d->access_w_m = 1e-6;
    d->access_l_m = 1e-6;
    snprintf(d->rram_model_file, sizeof d->rram_model_file, "%s", XB_SOURCE_DIR "/models/rram.lib");
    xb_rram_params *r = &d->rram;
    snprintf(r->model_file, sizeof r->model_file, "%s", XB_SOURCE_DIR "/models/rram_gap.lib");
    r->i0_A = 5e-3;
    r->g0_m = 0.25e-9;
    r->v0_V = 0.25;
    r->vel0_m_per_s = 10;
    r->ea_eV = 0.38;
    r->a0_m = 0.25e-9;
    r->t_ox_m = 5e-9;
    r->gamma0 = 16;
    r->beta = 0.8;
    r->t0_K = 298;
    r->r_th_K_per_W = 7.2327e5;
    r->gap_min_m = 0.1e-9;
    r->gap_max_m = 2.0e-9;
    r->sigma_ea_eV = 0.005;
    r->v_reset_V = 1.5;
    r->t_rise_s = 10e-9;
}

double xb_device_level_G(const xb_device *d, int l)
{
    if (l < 0 || l >= d->n_levels || l >= XB_DEVICE_MAX_LEVELS)
        return NAN;
    return d->i_trg_A[l] / d->v_read_V;
}

/* ------------------------------------------------------------------------------------------------ */
/* Rules beyond the schema */

/* The first rule a device breaks: the field (element name), the level for i_trg_A (else -1) and
 * "what is wrong; allowed: ...". */
typedef struct violation {
    const char *field;
    int level;
    char what[9000]; /* model file paths are up to 4 kB */
} violation;

/* Last gate voltage of the staircase: limited by vg_max_V and by max_pulses per attempt. Must agree
 * with the undershoot rule of igvva.c (a pulse k runs while vg_start + k*step <= vg_max + 1e-9*step). */
static double staircase_last_vg(const xb_igvva_params *p)
{
    double k = floor((p->vg_max_V - p->vg_start_V) / p->vg_step_V + 1e-9);
    if (k > p->max_pulses - 1)
        k = p->max_pulses - 1;
    if (k < 0)
        k = 0;
    return p->vg_start_V + k * p->vg_step_V;
}

/* Zero-noise read current after a SET at gate voltage vg. */
static double zero_noise_read_A(const xb_device *d, double vg)
{
    const xb_igvva_params *p = &d->igvva;
    double ov = vg - p->v_th_V;
    double ic = ov > 0 ? 0.5 * p->k_n_A_per_V2 * ov * ov : 0.0;
    double g = ic / p->v_c_V;
    if (g < d->g_hrs_S)
        g = d->g_hrs_S;
    return g * d->v_read_V;
}

#define RULE(cond, fld, lvl, ...)                                            \
    do {                                                                     \
        if (!(cond)) {                                                       \
            v->field = (fld);                                                \
            v->level = (lvl);                                                \
            snprintf(v->what, sizeof v->what, __VA_ARGS__);                  \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static int probability(double x) { return isfinite(x) && x >= 0 && x <= 1; }
/* lo < x <= hi (a positive quantity with a physical ceiling) and lo <= x <= hi. */
static int in_open_closed(double x, double lo, double hi) { return isfinite(x) && x > lo && x <= hi; }
static int in_closed(double x, double lo, double hi) { return isfinite(x) && x >= lo && x <= hi; }

/* The ranges a device value must lie in (models/README.md lists them): wide enough for any RRAM cell and
 * access transistor, narrow enough that a typo of six orders of magnitude (a read voltage of 1e6 V, a
 * conductance of 1e3 S) is refused here instead of reaching ngspice or the programming model. */
#define V_MAX 20.0        /* volts on any terminal (read, gate, SET) */
#define V_READ_MAX 5.0    /* a read that does not disturb the cell */
#define G_MIN 1e-12       /* siemens: 1 TOhm */
#define G_MAX 1.0         /* siemens: 1 Ohm */
#define I_MAX 0.1         /* amperes: read targets and verify windows */
#define SIGMA_MAX 10.0    /* relative spreads */

static int device_rules(const xb_device *d, violation *v)
{
    const xb_igvva_params *p = &d->igvva;
    RULE(in_open_closed(d->v_read_V, 0, V_READ_MAX), "v_read_V", -1,
         "%g V is not a read voltage; allowed: 0 < v_read_V <= %g V", d->v_read_V, V_READ_MAX);
    RULE(in_open_closed(d->vg_read_V, 0, V_MAX), "vg_read_V", -1, "%g V; allowed: 0 < vg_read_V <= %g V", d->vg_read_V,
         V_MAX);
    RULE(in_closed(d->g_hrs_S, G_MIN, G_MAX), "g_hrs_S", -1, "%g S; allowed: %g S <= g_hrs_S <= %g S", d->g_hrs_S,
         G_MIN, G_MAX);
    RULE(in_closed(d->g_lrs_S, G_MIN, G_MAX) && d->g_lrs_S > d->g_hrs_S, "g_lrs_S", -1,
         "%g S is not above g_hrs_S = %g S or not at most %g S; allowed: g_hrs_S < g_lrs_S <= %g S", d->g_lrs_S,
         d->g_hrs_S, G_MAX, G_MAX);

    RULE(in_open_closed(p->v_set_V, 0, V_MAX), "v_set_V", -1, "%g V; allowed: 0 < v_set_V <= %g V", p->v_set_V, V_MAX);
    RULE(in_open_closed(p->t_set_s, 0, 1), "t_set_s", -1, "%g s; allowed: 0 < t_set_s <= 1 s", p->t_set_s);
    RULE(in_closed(p->vg_start_V, -V_MAX, V_MAX), "vg_start_V", -1, "%g V; allowed: -%g V <= vg_start_V <= %g V",
         p->vg_start_V, V_MAX, V_MAX);
    RULE(in_open_closed(p->vg_step_V, 0, V_MAX), "vg_step_V", -1, "%g V; allowed: 0 < vg_step_V <= %g V", p->vg_step_V,
         V_MAX);
    RULE(in_closed(p->vg_max_V, -V_MAX, V_MAX) && p->vg_max_V > p->vg_start_V, "vg_max_V", -1,
         "%g V is not above vg_start_V = %g V or not at most %g V; allowed: vg_start_V < vg_max_V <= %g V", p->vg_max_V,
         p->vg_start_V, V_MAX, V_MAX);
    RULE(in_open_closed(p->tolerance_A, 0, I_MAX), "tolerance_A", -1, "%g A; allowed: 0 < tolerance_A <= %g A",
         p->tolerance_A, I_MAX);
    RULE(p->max_pulses >= 1, "max_pulses", -1, "%d; allowed: >= 1", p->max_pulses);
    RULE(p->max_retries >= 0, "max_retries", -1, "%d; allowed: >= 0", p->max_retries);
    RULE(in_open_closed(p->k_n_A_per_V2, 0, 1), "k_n_A_per_V2", -1, "%g A/V^2; allowed: 0 < k_n_A_per_V2 <= 1 A/V^2",
         p->k_n_A_per_V2);
    RULE(in_closed(p->v_th_V, -V_MAX, V_MAX), "v_th_V", -1, "%g V; allowed: -%g V <= v_th_V <= %g V", p->v_th_V, V_MAX,
         V_MAX);
    RULE(in_open_closed(p->v_c_V, 0, V_MAX), "v_c_V", -1, "%g V; allowed: 0 < v_c_V <= %g V", p->v_c_V, V_MAX);
    RULE(in_closed(p->sigma_c2c, 0, SIGMA_MAX), "sigma_c2c", -1, "%g; allowed: 0 <= sigma <= %g", p->sigma_c2c,
         SIGMA_MAX);

    RULE(in_closed(d->sigma_d2d, 0, SIGMA_MAX), "sigma_d2d", -1, "%g; allowed: 0 <= sigma <= %g", d->sigma_d2d,
         SIGMA_MAX);
    RULE(in_closed(d->sigma_read, 0, SIGMA_MAX), "sigma_read", -1, "%g; allowed: 0 <= sigma <= %g", d->sigma_read,
         SIGMA_MAX);
    RULE(probability(d->p_stuck_lrs), "p_stuck_lrs", -1, "%g is not a probability; allowed: 0 <= p <= 1",
         d->p_stuck_lrs);
    RULE(probability(d->p_stuck_hrs), "p_stuck_hrs", -1, "%g is not a probability; allowed: 0 <= p <= 1",
         d->p_stuck_hrs);
    RULE(d->p_stuck_lrs + d->p_stuck_hrs <= 1, "p_stuck_hrs", -1,
         "p_stuck_lrs + p_stuck_hrs = %g; allowed: a sum <= 1", d->p_stuck_lrs + d->p_stuck_hrs);

    /* Metres: a value of 1 is someone's "1 um" and would make a metre-wide transistor. */
    RULE(in_closed(d->access_w_m, 1e-9, 1e-3), "access_w_m", -1,
         "%g m is not a transistor width; allowed: 1e-9 to 1e-3 metres, such as 1e-6 for 1 um", d->access_w_m);
    RULE(in_closed(d->access_l_m, 1e-9, 1e-3), "access_l_m", -1,
         "%g m is not a transistor length; allowed: 1e-9 to 1e-3 metres, such as 1e-6 for 1 um", d->access_l_m);

    const xb_rram_params *m = &d->rram;
    RULE(in_open_closed(m->i0_A, 0, 1), "i0_A", -1, "%g A; allowed: 0 < i0_A <= 1 A", m->i0_A);
    RULE(in_closed(m->g0_m, 1e-12, 1e-8), "g0_m", -1, "%g m; allowed: 1e-12 to 1e-8 m (such as 0.25e-9)", m->g0_m);
    RULE(in_open_closed(m->v0_V, 0, V_MAX), "v0_V", -1, "%g V; allowed: 0 < v0_V <= %g V", m->v0_V, V_MAX);
    RULE(in_open_closed(m->vel0_m_per_s, 0, 1e6), "vel0_m_per_s", -1, "%g m/s; allowed: 0 < vel0_m_per_s <= 1e6",
         m->vel0_m_per_s);
    RULE(in_open_closed(m->ea_eV, 0, 5), "ea_eV", -1, "%g eV; allowed: 0 < ea_eV <= 5 eV", m->ea_eV);
    RULE(in_closed(m->a0_m, 1e-12, 1e-8), "a0_m", -1, "%g m; allowed: 1e-12 to 1e-8 m (such as 0.25e-9)", m->a0_m);
    RULE(in_closed(m->t_ox_m, 1e-10, 1e-6), "t_ox_m", -1, "%g m; allowed: 1e-10 to 1e-6 m (such as 5e-9)", m->t_ox_m);
    RULE(in_open_closed(m->gamma0, 0, 1000), "gamma0", -1, "%g; allowed: 0 < gamma0 <= 1000", m->gamma0);
    RULE(in_closed(m->beta, 0, 1000), "beta", -1, "%g; allowed: 0 <= beta <= 1000", m->beta);
    RULE(in_open_closed(m->t0_K, 0, 1000), "t0_K", -1, "%g K; allowed: 0 < t0_K <= 1000 K", m->t0_K);
    RULE(in_closed(m->r_th_K_per_W, 0, 1e9), "r_th_K_per_W", -1, "%g K/W; allowed: 0 to 1e9 K/W", m->r_th_K_per_W);
    RULE(in_closed(m->gap_min_m, 0, m->t_ox_m), "gap_min_m", -1, "%g m; allowed: 0 <= gap_min_m <= t_ox_m = %g m",
         m->gap_min_m, m->t_ox_m);
    RULE(in_closed(m->gap_max_m, 0, m->t_ox_m) && m->gap_max_m > m->gap_min_m, "gap_max_m", -1,
         "%g m; allowed: gap_min_m = %g m < gap_max_m <= t_ox_m = %g m", m->gap_max_m, m->gap_min_m, m->t_ox_m);
    RULE(in_closed(m->sigma_ea_eV, 0, 1), "sigma_ea_eV", -1, "%g eV; allowed: 0 to 1 eV", m->sigma_ea_eV);
    RULE(in_open_closed(m->v_reset_V, 0, V_MAX), "v_reset_V", -1, "%g V; allowed: 0 < v_reset_V <= %g V",
         m->v_reset_V, V_MAX);
    RULE(in_open_closed(m->t_rise_s, 0, 1) && m->t_rise_s < p->t_set_s, "t_rise_s", -1,
         "%g s; allowed: 0 < t_rise_s < t_set_s = %g s", m->t_rise_s, p->t_set_s);

    RULE(d->n_levels >= 2 && d->n_levels <= XB_DEVICE_MAX_LEVELS, "levels", -1,
         "%d level(s); allowed: 2 to %d <i_trg_A> targets", d->n_levels, XB_DEVICE_MAX_LEVELS);
    double vg_last = staircase_last_vg(p);
    double i_last = zero_noise_read_A(d, vg_last);
    for (int l = 0; l < d->n_levels; l++) {
        double t = d->i_trg_A[l];
        RULE(in_open_closed(t, 0, I_MAX), "i_trg_A", l, "level %d target %g A; allowed: 0 < i_trg_A <= %g A", l, t,
             I_MAX);
        if (l > 0) {
            double prev = d->i_trg_A[l - 1];
            RULE(t > prev, "i_trg_A", l, "level %d target %g A is not above level %d (%g A); allowed: ascending targets",
                 l, t, l - 1, prev);
            RULE(t - prev > 2 * p->tolerance_A, "i_trg_A", l,
                 "level %d target %g A is within 2*tolerance_A = %g A of level %d (%g A), so the verify windows "
                 "overlap; allowed: targets more than 2*tolerance_A apart",
                 l, t, 2 * p->tolerance_A, l - 1, prev);
        }
        RULE(i_last >= t - p->tolerance_A, "i_trg_A", l,
             "level %d target %g A is unreachable: the staircase ends at V_g = %g V (vg_max_V, max_pulses) where "
             "the zero-noise read current is %g A; allowed: targets up to %g A, or raise vg_max_V or k_n_A_per_V2",
             l, t, vg_last, i_last, i_last + p->tolerance_A);
    }
    return 0;
}

int xb_device_check(const xb_device *d, xb_error *err)
{
    violation v;
    if (device_rules(d, &v) == 0)
        return XB_OK;
    return xb_fail(err, XB_EINPUT, "device %s: field %s: %s", d->name[0] ? d->name : "(unnamed)", v.field, v.what);
}

/* ------------------------------------------------------------------------------------------------ */
/* The SPICE model files: checked here so a wrong name is a bad-input error naming the device file,
 * not a deck that ngspice refuses in every worker. */

/* Model files of PDKs run to a few megabytes; a larger file is not a model card. */
#define MODEL_MAX_FILE_BYTES ((size_t)256 << 20)

enum { DEFINES_NO = 0, DEFINES_YES = 1, DEFINES_UNKNOWN = 2 };

/* Does the SPICE file at path define `.<kind> name` (kind "model" or "subckt"; case-insensitive, as
 * SPICE is)? For models, binned variants name.1, name.2, ... count. DEFINES_UNKNOWN when it pulls in
 * other files (.include, .inc, .lib), which this scan does not follow; names found go into seen. */
static int spice_file_defines(const char *path, const char *kind, const char *name, char *seen, size_t seen_cap)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (xb_read_file(path, MODEL_MAX_FILE_BYTES, &data, &len, NULL) != XB_OK)
        return DEFINES_UNKNOWN;
    size_t klen = strlen(kind), nlen = strlen(name), used = 0;
    int found = 0, includes = 0;
    seen[0] = '\0';
    for (char *line = (char *)data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (isspace((unsigned char)*line))
            line++;
        if (*line != '.')
            continue;
        if (!strncasecmp(line, ".include", 8) || !strncasecmp(line, ".inc ", 5) || !strncasecmp(line, ".lib ", 5))
            includes = 1;
        if (strncasecmp(line + 1, kind, klen) || !isspace((unsigned char)line[1 + klen]))
            continue;
        char *t = line + 1 + klen;
        while (isspace((unsigned char)*t))
            t++;
        size_t tl = 0;
        while (t[tl] && !isspace((unsigned char)t[tl]) && t[tl] != '(')
            tl++;
        if (tl == nlen && !strncasecmp(t, name, nlen))
            found = 1;
        if (!strcmp(kind, "model") && tl > nlen + 1 && !strncasecmp(t, name, nlen) && t[nlen] == '.')
            found = 1;
        if (tl && used + tl + 3 < seen_cap) {
            used += (size_t)snprintf(seen + used, seen_cap - used, "%s%.*s", used ? ", " : "", (int)tl, t);
        }
    }
    free(data);
    return found ? DEFINES_YES : includes ? DEFINES_UNKNOWN : DEFINES_NO;
}

/* NULL when path is a readable regular file, else what is wrong with it. */
static const char *model_file_problem(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? "does not exist" : "cannot be read";
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? "is a folder, not a regular file" : "is not a regular file (a device or pipe)";
    if (access(path, R_OK) != 0)
        return "cannot be read (permission denied)";
    return NULL;
}

static int model_rules(const xb_device *d, violation *v)
{
    char seen[300];
    const char *why;
    why = model_file_problem(d->mosfet_model_file);
    RULE(!why, "mosfet_model_file", -1,
         "model file %s %s; allowed: the path of a SPICE model card holding the access transistor's "
         ".model, absolute or relative to the device file's folder (such as nmos_l1.lib)",
         d->mosfet_model_file, why);
    why = model_file_problem(d->rram_model_file);
    RULE(!why, "rram_model_file", -1,
         "model file %s %s; allowed: the path of a SPICE file with the RRAM and 1T1R cell "
         "subcircuits, absolute or relative to the device file's folder (such as rram.lib)",
         d->rram_model_file, why);
    int m = spice_file_defines(d->mosfet_model_file, "model", d->mosfet_model_name, seen, sizeof seen);
    RULE(m != DEFINES_NO, "mosfet_model_name", -1,
         "%s defines no .model %s (its models: %s); allowed: the name of a .model in mosfet_model_file",
         d->mosfet_model_file, d->mosfet_model_name, seen[0] ? seen : "none");
    static const char *const cells[] = {"xb_1t1r", "xb_1t1r_sinh"};
    for (size_t k = 0; k < sizeof cells / sizeof cells[0]; k++) {
        int r = spice_file_defines(d->rram_model_file, "subckt", cells[k], seen, sizeof seen);
        RULE(r != DEFINES_NO, "rram_model_file", -1,
             "%s defines no .subckt %s (its subcircuits: %s); allowed: a file with the 1T1R cells xb_1t1r and "
             "xb_1t1r_sinh, which call the access transistor as xb_access (copy them from models/rram.lib)",
             d->rram_model_file, cells[k], seen[0] ? seen : "none");
    }
    return 0;
}

/* The compact model file: every subcircuit circuit programming and gap cells call. */
static int rram_model_rules(const xb_device *d, violation *v)
{
    char seen[300];
    const char *why = model_file_problem(d->rram.model_file);
    RULE(!why, "model_file", -1,
         "model file %s %s; allowed: the path of the gap model's SPICE file, absolute or relative to the device "
         "file's folder (such as rram_gap.lib)", d->rram.model_file, why);
    static const char *const subckts[] = {"rram_gap_dyn", "rram_gap_held", "rram_gap", "xb_1t1r_gap"};
    for (size_t k = 0; k < sizeof subckts / sizeof subckts[0]; k++) {
        int r = spice_file_defines(d->rram.model_file, "subckt", subckts[k], seen, sizeof seen);
        RULE(r != DEFINES_NO, "model_file", -1,
             "%s defines no .subckt %s (its subcircuits: %s); allowed: a file with rram_gap_dyn, rram_gap_held, "
             "rram_gap and xb_1t1r_gap (copy them from models/rram_gap.lib)", d->rram.model_file, subckts[k],
             seen[0] ? seen : "none");
    }
    return 0;
}

int xb_device_check_rram_model(const xb_device *d, xb_error *err)
{
    violation v;
    if (rram_model_rules(d, &v) == 0)
        return XB_OK;
    return xb_fail(err, XB_EINPUT, "device %s: <rram> field %s: %s", d->name[0] ? d->name : "(unnamed)", v.field,
                   v.what);
}

int xb_device_check_models(const xb_device *d, xb_error *err)
{
    violation v;
    if (model_rules(d, &v) == 0)
        return XB_OK;
    return xb_fail(err, XB_EINPUT, "device %s: field %s: %s", d->name[0] ? d->name : "(unnamed)", v.field, v.what);
}

/* ------------------------------------------------------------------------------------------------ */
/* XML loading */

/* What device.xsd's simple types allow, for schema messages that do not say it themselves. */
static const xb_xml_hint device_hints[] = {
    {"'positive'", "; allowed: a finite number > 0, such as 0.2 or 1e-6"},
    {"'nonNegative'", "; allowed: a finite number >= 0"},
    {"'finite'", "; allowed: a finite number, such as 0.6"},
    {"'probability'", "; allowed: a number from 0 to 1"},
    {"'pulseCount'", "; allowed: an integer from 1 to 1000000"},
    {"'retryCount'", "; allowed: an integer from 0 to 1000"},
    {"'identifier'", "; allowed: 1 to 63 of A-Z a-z 0-9 _ . -"},
    {"'spiceName'", "; allowed: a SPICE name, a letter or _ then up to 62 of A-Z a-z 0-9 _"},
    {"'filePath'", "; allowed: a path of 1 to 4000 characters"},
};

/* Per-load state: the file, the error record and the line of each element read, so rules checked
 * after the walk can still point at file:line. */
typedef struct load_ctx {
    const char *path;
    xb_error *err;
    struct {
        const char *name;
        int line;
    } lines[80];
    int n_lines;
    int level_line[XB_DEVICE_MAX_LEVELS];
    int levels_line;
} load_ctx;

static void remember_line(load_ctx *c, const char *name, int line)
{
    if (c->n_lines < (int)(sizeof c->lines / sizeof c->lines[0])) {
        c->lines[c->n_lines].name = name;
        c->lines[c->n_lines].line = line;
        c->n_lines++;
    }
}

static int line_of(const load_ctx *c, const char *field, int level)
{
    if (strcmp(field, "i_trg_A") == 0 && level >= 0 && level < XB_DEVICE_MAX_LEVELS && c->level_line[level] > 0)
        return c->level_line[level];
    if (strcmp(field, "levels") == 0)
        return c->levels_line;
    for (int i = 0; i < c->n_lines; i++)
        if (strcmp(c->lines[i].name, field) == 0)
            return c->lines[i].line;
    return 0;
}

static xmlNodePtr child_element(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0)
            return n;
    return NULL;
}

/* The element, or an error naming the parent's line (the schema normally reports this first; the
 * check stays for schemas a user loosened). */
static xmlNodePtr need_element(load_ctx *c, xmlNodePtr parent, const char *name)
{
    xmlNodePtr n = child_element(parent, name);
    if (!n)
        xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: missing required element <%s>; allowed: see device.xsd",
                c->path, xmlGetLineNo(parent), (const char *)parent->name, name);
    return n;
}

/* The element's text with surrounding white space removed; caller frees with xmlFree. */
static char *element_text(xmlNodePtr n)
{
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return NULL;
    char *s = (char *)t;
    size_t len = strlen(s), a = 0;
    while (a < len && isspace((unsigned char)s[a]))
        a++;
    while (len > a && isspace((unsigned char)s[len - 1]))
        len--;
    memmove(s, s + a, len - a);
    s[len - a] = '\0';
    return s;
}

static int parse_double_node(load_ctx *c, xmlNodePtr n, double *out)
{
    char *s = element_text(n);
    if (!s)
        return xb_fail(c->err, XB_ENOMEM, "out of memory reading %s", c->path);
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    int bad = end == s || *end != '\0' || errno == ERANGE || !isfinite(x);
    if (bad)
        xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: '%.60s' is not a number; allowed: a finite number such as 0.2 or 1e-6",
                c->path, xmlGetLineNo(n), (const char *)n->name, s);
    xmlFree(s);
    if (bad)
        return XB_EINPUT;
    *out = x;
    return XB_OK;
}

static int read_double(load_ctx *c, xmlNodePtr parent, const char *name, double *out)
{
    xmlNodePtr n = need_element(c, parent, name);
    if (!n)
        return XB_EINPUT;
    remember_line(c, name, (int)xmlGetLineNo(n));
    return parse_double_node(c, n, out);
}

/* An element the schema allows to be left out: *out keeps its default then. */
static int read_optional_double(load_ctx *c, xmlNodePtr parent, const char *name, double *out)
{
    xmlNodePtr n = child_element(parent, name);
    if (!n)
        return XB_OK;
    remember_line(c, name, (int)xmlGetLineNo(n));
    return parse_double_node(c, n, out);
}

static int read_int(load_ctx *c, xmlNodePtr parent, const char *name, int lo, int hi, int *out)
{
    xmlNodePtr n = need_element(c, parent, name);
    if (!n)
        return XB_EINPUT;
    remember_line(c, name, (int)xmlGetLineNo(n));
    char *s = element_text(n);
    if (!s)
        return xb_fail(c->err, XB_ENOMEM, "out of memory reading %s", c->path);
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    int bad = end == s || *end != '\0' || errno == ERANGE || x < lo || x > hi;
    if (bad)
        xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: '%.60s' is not allowed; allowed: an integer from %d to %d",
                c->path, xmlGetLineNo(n), name, s, lo, hi);
    xmlFree(s);
    if (bad)
        return XB_EINPUT;
    *out = (int)x;
    return XB_OK;
}

static int read_string(load_ctx *c, xmlNodePtr parent, const char *name, char *buf, size_t cap)
{
    xmlNodePtr n = need_element(c, parent, name);
    if (!n)
        return XB_EINPUT;
    remember_line(c, name, (int)xmlGetLineNo(n));
    char *s = element_text(n);
    if (!s)
        return xb_fail(c->err, XB_ENOMEM, "out of memory reading %s", c->path);
    size_t len = strlen(s);
    int bad = len == 0 || len >= cap;
    if (bad)
        xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: %zu characters; allowed: 1 to %zu", c->path,
                xmlGetLineNo(n), name, len, cap - 1);
    else
        memcpy(buf, s, len + 1);
    xmlFree(s);
    return bad ? XB_EINPUT : XB_OK;
}

/* A model file named in the device file: relative names are relative to the device file's folder. The
 * result is absolute (and without . or .. where the file exists): ngspice reads it in a worker's own
 * folder, so a path relative to the working folder of the command would not be found there. */
static int read_model_path(load_ctx *c, xmlNodePtr parent, const char *name, char *buf, size_t cap)
{
    char rel[4096], joined[8400], cwd[4096] = "";
    int rc = read_string(c, parent, name, rel, sizeof rel);
    if (rc)
        return rc;
    const char *slash = strrchr(c->path, '/');
    if (rel[0] != '/' && c->path[0] != '/' && !getcwd(cwd, sizeof cwd))
        return xb_fail(c->err, XB_ERUNTIME, "%s:%d: element <%s>: cannot resolve %s: the working folder is unknown "
                       "(%s)", c->path, line_of(c, name, -1), name, rel, strerror(errno));
    int n;
    if (rel[0] == '/')
        n = snprintf(joined, sizeof joined, "%s", rel);
    else if (!slash)
        n = snprintf(joined, sizeof joined, "%s/%s", cwd, rel);
    else
        n = snprintf(joined, sizeof joined, "%s%s%.*s/%s", cwd, cwd[0] ? "/" : "", (int)(slash - c->path), c->path,
                     rel);
    char *real = n >= 0 && (size_t)n < sizeof joined ? realpath(joined, NULL) : NULL;
    const char *use = real ? real : joined;
    if (n < 0 || (size_t)n >= sizeof joined || strlen(use) >= cap) {
        free(real);
        return xb_fail(c->err, XB_EINPUT, "%s:%d: element <%s>: the resolved path is too long; allowed: %zu characters",
                       c->path, line_of(c, name, -1), name, cap - 1);
    }
    snprintf(buf, cap, "%s", use);
    free(real);
    return XB_OK;
}

static int walk_tree(load_ctx *c, xmlNodePtr root, xb_device *d)
{
    int rc;
    if (xmlStrcmp(root->name, (const xmlChar *)"device") != 0)
        return xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: not a device file; allowed: root element <device>",
                       c->path, xmlGetLineNo(root), (const char *)root->name);
    xmlChar *name = xmlGetProp(root, (const xmlChar *)"name");
    if (!name || !name[0] || strlen((const char *)name) >= sizeof d->name) {
        xmlFree(name);
        return xb_fail(c->err, XB_EINPUT, "%s:%ld: element <device>: attribute name is missing or too long; allowed: 1 to %zu characters",
                       c->path, xmlGetLineNo(root), sizeof d->name - 1);
    }
    snprintf(d->name, sizeof d->name, "%s", (const char *)name);
    xmlFree(name);

    xmlNodePtr g;
    if (!(g = need_element(c, root, "read")))
        return XB_EINPUT;
    if ((rc = read_double(c, g, "v_read_V", &d->v_read_V)) || (rc = read_double(c, g, "vg_read_V", &d->vg_read_V)))
        return rc;

    if (!(g = need_element(c, root, "states")))
        return XB_EINPUT;
    if ((rc = read_double(c, g, "g_hrs_S", &d->g_hrs_S)) || (rc = read_double(c, g, "g_lrs_S", &d->g_lrs_S)))
        return rc;

    if (!(g = need_element(c, root, "levels")))
        return XB_EINPUT;
    c->levels_line = (int)xmlGetLineNo(g);
    d->n_levels = 0;
    for (xmlNodePtr n = g->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcmp(n->name, (const xmlChar *)"i_trg_A") != 0)
            return xb_fail(c->err, XB_EINPUT, "%s:%ld: element <%s>: not expected in <levels>; allowed: <i_trg_A>",
                           c->path, xmlGetLineNo(n), (const char *)n->name);
        if (d->n_levels >= XB_DEVICE_MAX_LEVELS)
            return xb_fail(c->err, XB_EINPUT, "%s:%ld: element <i_trg_A>: more than %d levels; allowed: 2 to %d",
                           c->path, xmlGetLineNo(n), XB_DEVICE_MAX_LEVELS, XB_DEVICE_MAX_LEVELS);
        c->level_line[d->n_levels] = (int)xmlGetLineNo(n);
        if ((rc = parse_double_node(c, n, &d->i_trg_A[d->n_levels])))
            return rc;
        d->n_levels++;
    }

    xb_igvva_params *p = &d->igvva;
    if (!(g = need_element(c, root, "igvva")))
        return XB_EINPUT;
    if ((rc = read_double(c, g, "v_set_V", &p->v_set_V)) || (rc = read_double(c, g, "t_set_s", &p->t_set_s)) ||
        (rc = read_double(c, g, "vg_start_V", &p->vg_start_V)) || (rc = read_double(c, g, "vg_step_V", &p->vg_step_V)) ||
        (rc = read_double(c, g, "vg_max_V", &p->vg_max_V)) || (rc = read_double(c, g, "tolerance_A", &p->tolerance_A)) ||
        (rc = read_int(c, g, "max_pulses", 1, 1000000, &p->max_pulses)) ||
        (rc = read_int(c, g, "max_retries", 0, 1000, &p->max_retries)) ||
        (rc = read_double(c, g, "k_n_A_per_V2", &p->k_n_A_per_V2)) || (rc = read_double(c, g, "v_th_V", &p->v_th_V)) ||
        (rc = read_double(c, g, "v_c_V", &p->v_c_V)) || (rc = read_double(c, g, "sigma_c2c", &p->sigma_c2c)))
        return rc;

    if (!(g = need_element(c, root, "variability")))
        return XB_EINPUT;
    if ((rc = read_double(c, g, "sigma_d2d", &d->sigma_d2d)) || (rc = read_double(c, g, "sigma_read", &d->sigma_read)) ||
        (rc = read_double(c, g, "p_stuck_lrs", &d->p_stuck_lrs)) || (rc = read_double(c, g, "p_stuck_hrs", &d->p_stuck_hrs)))
        return rc;

    if (!(g = need_element(c, root, "spice")))
        return XB_EINPUT;
    if ((rc = read_model_path(c, g, "mosfet_model_file", d->mosfet_model_file, sizeof d->mosfet_model_file)) ||
        (rc = read_string(c, g, "mosfet_model_name", d->mosfet_model_name, sizeof d->mosfet_model_name)) ||
        (rc = read_optional_double(c, g, "access_w_m", &d->access_w_m)) ||
        (rc = read_optional_double(c, g, "access_l_m", &d->access_l_m)) ||
        (rc = read_model_path(c, g, "rram_model_file", d->rram_model_file, sizeof d->rram_model_file)))
        return rc;

    /* The compact model of circuit-level programming: optional, the built-in defaults without it. Its file
     * is checked where it is used (xb_device_check_rram_model): the statistical paths never read it. */
    xb_rram_params *m = &d->rram;
    int has_rram = (g = child_element(root, "rram")) != NULL;
    if (has_rram &&
        ((rc = read_model_path(c, g, "model_file", m->model_file, sizeof m->model_file)) ||
         (rc = read_double(c, g, "i0_A", &m->i0_A)) || (rc = read_double(c, g, "g0_m", &m->g0_m)) ||
         (rc = read_double(c, g, "v0_V", &m->v0_V)) || (rc = read_double(c, g, "vel0_m_per_s", &m->vel0_m_per_s)) ||
         (rc = read_double(c, g, "ea_eV", &m->ea_eV)) || (rc = read_double(c, g, "a0_m", &m->a0_m)) ||
         (rc = read_double(c, g, "t_ox_m", &m->t_ox_m)) || (rc = read_double(c, g, "gamma0", &m->gamma0)) ||
         (rc = read_double(c, g, "beta", &m->beta)) || (rc = read_double(c, g, "t0_K", &m->t0_K)) ||
         (rc = read_double(c, g, "r_th_K_per_W", &m->r_th_K_per_W)) ||
         (rc = read_double(c, g, "gap_min_m", &m->gap_min_m)) || (rc = read_double(c, g, "gap_max_m", &m->gap_max_m)) ||
         (rc = read_double(c, g, "sigma_ea_eV", &m->sigma_ea_eV)) ||
         (rc = read_double(c, g, "v_reset_V", &m->v_reset_V)) || (rc = read_double(c, g, "t_rise_s", &m->t_rise_s))))
        return rc;

    violation v;
    if (device_rules(d, &v) || model_rules(d, &v))
        return xb_fail(c->err, XB_EINPUT, "%s:%d: element <%s>: %s", c->path, line_of(c, v.field, v.level), v.field, v.what);
    return XB_OK;
}

int xb_device_load(const char *path, const char *xsd_path, xb_device *d, xb_error *err)
{
    if (strlen(path) >= sizeof d->source_path)
        return xb_fail(err, XB_EINPUT, "%.200s...: path too long", path);
    char xsd[4200];
    int rc = xb_xml_find_schema(path, xsd_path, "device.xsd", XB_SOURCE_DIR "/models/device.xsd", xsd, sizeof xsd, err);
    if (rc)
        return rc;
    xmlDocPtr doc = NULL;
    if ((rc = xb_xml_load(path, xsd, DEVICE_MAX_FILE_BYTES, "device file", device_hints,
                          sizeof device_hints / sizeof device_hints[0], &doc, err)))
        return rc;
    xb_device tmp;
    xb_device_defaults(&tmp);
    memset(tmp.mosfet_model_file, 0, sizeof tmp.mosfet_model_file);
    memset(tmp.rram_model_file, 0, sizeof tmp.rram_model_file);
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root)
        rc = xb_fail(err, XB_EINPUT, "%s:1: no root element; allowed: <device>", path);
    else if (!(rc = walk_tree(&c, root, &tmp))) {
        snprintf(tmp.source_path, sizeof tmp.source_path, "%s", path);
        *d = tmp;
    }
    xmlFreeDoc(doc);
    return rc;
}
