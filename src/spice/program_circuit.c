// program_circuit: IGVVA write-verify as ngspice transients of the 1T1R cell with the gap compact model
#define _POSIX_C_SOURCE 200809L
#include "program_circuit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "progress.h"

/* Samples kept of a transient: a pulse takes about 100 to 200 time points. */
#define WAVE_CAP 20000

struct xb_circuit_prog {
    xb_device dev;
    xb_spice *spice;
    char *deck;
    double t_stop_s;      /* end of a pulse's transient */
    double *wave_t, *wave_i;
    long pulses, reads;
    double seconds;
    int progress;         /* for the strategy table */
};

xb_spice *xb_circuit_prog_spice(xb_circuit_prog *p) { return p->spice; }

void xb_circuit_prog_counts(const xb_circuit_prog *p, long *pulses, long *reads, double *seconds)
{
    if (pulses)
        *pulses = p->pulses;
    if (reads)
        *reads = p->reads;
    if (seconds)
        *seconds = p->seconds;
}

/* The cell deck: a switching cell (pulse source, gap integrated on a capacitor) and a held copy for the
 * verify reads, each with its access transistor. Lengths in nm, as models/rram_gap.lib takes them. */
static char *cell_deck(const xb_device *d, double *t_stop)
{
    const xb_rram_params *m = &d->rram;
    const xb_igvva_params *g = &d->igvva;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp)
        return NULL;
    double tr = m->t_rise_s, tw = g->t_set_s;
    *t_stop = 2 * tr + tw + tr;
    fprintf(fp, "* xbarsim circuit IGVVA: one 1T1R cell with the gap model (src/spice/program_circuit.h)\n");
    fprintf(fp, ".include \"%s\"\n.include \"%s\"\n", d->mosfet_model_file, m->model_file);
    fprintf(fp, ".subckt xb_access d g s\nM1 d g s 0 %s W=%.12g L=%.12g\n.ends xb_access\n", d->mosfet_model_name,
            d->access_w_m, d->access_l_m);
    fprintf(fp, "* the switching cell: top electrode pulse V(tp)*V(amp), gate wl, sense source vis\n");
    fprintf(fp, "Vtp tp 0 PULSE(0 1 0 %.12g %.12g %.12g 1)\n", tr, tr, tw);
    fprintf(fp, "Vamp amp 0 DC %.17g\n", g->v_set_V);
    fprintf(fp, "Bte tex 0 V=V(tp)*V(amp)\nVis tex te DC 0\n");
    fprintf(fp, "Vgi gi 0 DC %.17g\nVdea dea 0 DC 0\n", m->gap_max_m * 1e9);
    fprintf(fp, "Xd te be gi dea rram_gap_dyn i0=%.17g g0=%.17g v0=%.17g vel0=%.17g ea=%.17g a0=%.17g tox=%.17g "
                "gamma0=%.17g beta=%.17g t0=%.17g rth=%.17g gmin=%.17g gmax=%.17g\n",
            m->i0_A, m->g0_m * 1e9, m->v0_V, m->vel0_m_per_s, m->ea_eV, m->a0_m * 1e9, m->t_ox_m * 1e9, m->gamma0,
            m->beta, m->t0_K, m->r_th_K_per_W, m->gap_min_m * 1e9, m->gap_max_m * 1e9);
    fprintf(fp, "Xmd be wl 0 xb_access\nVwl wl 0 DC %.17g\n", g->vg_start_V);
    fprintf(fp, "* the verify read: the same RRAM with its gap held at V(gr) nm\n");
    fprintf(fp, "Vrd rte 0 DC %.17g\nVgr gr 0 DC %.17g\n", d->v_read_V, m->gap_max_m * 1e9);
    fprintf(fp, "Xr rte rbe gr rram_gap_held i0=%.17g g0=%.17g v0=%.17g\n", m->i0_A, m->g0_m * 1e9, m->v0_V);
    fprintf(fp, "Xmr rbe rwl 0 xb_access\nVrwl rwl 0 DC %.17g\n.end\n", d->vg_read_V);
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int xb_circuit_prog_new(const xb_device *d, const char *log_path, xb_circuit_prog **out, xb_error *err)
{
    *out = NULL;
    int rc = xb_device_check(d, err);
    if (rc || (rc = xb_device_check_models(d, err)) || (rc = xb_device_check_rram_model(d, err)))
        return rc;
    xb_circuit_prog *p = calloc(1, sizeof *p);
    if (!p)
        return xb_fail(err, XB_ENOMEM, "out of memory");
    p->dev = *d;
    p->wave_t = malloc(WAVE_CAP * sizeof *p->wave_t);
    p->wave_i = malloc(WAVE_CAP * sizeof *p->wave_i);
    p->deck = cell_deck(d, &p->t_stop_s);
    if (!p->wave_t || !p->wave_i || !p->deck) {
        xb_circuit_prog_free(&p);
        return xb_fail(err, XB_ENOMEM, "out of memory for the cell deck");
    }
    if ((rc = xb_spice_open(log_path, &p->spice, err)) ||
        (rc = xb_spice_load_text(p->spice, "the circuit-programming cell", p->deck, err))) {
        if (rc == XB_EINPUT) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            xb_fail(err, XB_EINPUT, "%.700s; the deck includes %s and %s: fix the <spice> and <rram> models of "
                    "device %s", msg, d->mosfet_model_file, d->rram.model_file, d->name);
        }
        xb_circuit_prog_free(&p);
        return rc;
    }
    *out = p;
    return XB_OK;
}

void xb_circuit_prog_free(xb_circuit_prog **pp)
{
    if (!pp || !*pp)
        return;
    xb_circuit_prog *p = *pp;
    if (p->spice) {
        xb_spice_unload(p->spice);
        xb_spice_close(&p->spice);
    }
    free(p->deck);
    free(p->wave_t);
    free(p->wave_i);
    free(p);
    *pp = NULL;
}

static int alter(xb_circuit_prog *p, const char *src, double v)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "alter %s dc = %.17g", src, v);
    return xb_spice_run(p->spice, cmd);
}

static int dead(const char *what, xb_error *err)
{
    return xb_fail(err, XB_ERUNTIME, "ngspice ended during %s; see the ngspice log", what);
}

static double clamp_gap(const xb_rram_params *m, double gap_m)
{
    return gap_m < m->gap_min_m ? m->gap_min_m : gap_m > m->gap_max_m ? m->gap_max_m : gap_m;
}

int xb_circuit_pulse(xb_circuit_prog *p, double gap_m, double v_te_V, double vg_V, double d_ea_eV,
                     xb_circuit_pulse_result *r, double *t, double *i_te, size_t cap, xb_error *err)
{
    const xb_rram_params *m = &p->dev.rram;
    if (!isfinite(gap_m) || !isfinite(v_te_V) || !isfinite(vg_V) || !isfinite(d_ea_eV) || fabs(v_te_V) > 20 ||
        fabs(vg_V) > 20)
        return xb_fail(err, XB_EINPUT, "circuit pulse: gap %g m, top electrode %g V, gate %g V, ea offset %g eV; "
                       "allowed: finite values, voltages within +-20 V", gap_m, v_te_V, vg_V, d_ea_eV);
    double t0 = xb_now();
    if (alter(p, "vamp", v_te_V) || alter(p, "vwl", vg_V) || alter(p, "vgi", clamp_gap(m, gap_m) * 1e9) ||
        alter(p, "vdea", d_ea_eV))
        return dead("a pulse's settings", err);
    double t_stop = p->t_stop_s, step = p->dev.igvva.t_set_s / 100;
    long n = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        char cmd[160];
        /* The retry caps the step: a SET that snaps faster than the step control expects. */
        if (attempt == 0)
            snprintf(cmd, sizeof cmd, "tran %.12g %.12g", step, t_stop);
        else
            snprintf(cmd, sizeof cmd, "tran %.12g %.12g 0 %.12g", step / 10, t_stop, m->t_rise_s / 20);
        if (xb_spice_run(p->spice, cmd) && xb_spice_dead(p->spice))
            return dead("a pulse's transient", err);
        n = xb_spice_vector(p->spice, "time", p->wave_t, WAVE_CAP);
        if (n > 1 && p->wave_t[(n < WAVE_CAP ? n : WAVE_CAP) - 1] >= t_stop * (1 - 1e-9))
            break;
        xb_spice_run(p->spice, "destroy all");
        n = -1;
    }
    if (n < 0) {
        xb_spice_run(p->spice, NULL);
        return xb_fail(err, XB_ERUNTIME, "circuit pulse: the transient (top electrode %g V, gate %g V, from gap %g nm) "
                       "did not finish, also with smaller steps; see the ngspice log", v_te_V, vg_V, gap_m * 1e9);
    }
    long ni = xb_spice_vector(p->spice, "vis#branch", p->wave_i, WAVE_CAP);
    double gap_nm = xb_spice_vector_last(p->spice, "xd.gap");
    if (ni != n || !isfinite(gap_nm)) {
        xb_spice_run(p->spice, "destroy all");
        return xb_fail(err, XB_ERUNTIME, "circuit pulse: the transient has no gap or current vectors");
    }
    size_t k = (size_t)(n < WAVE_CAP ? n : WAVE_CAP);
    /* The flat top from one rise time after the edge: the edge adds the transistor's capacitive currents
     * (and trapezoidal integration carries them a step further). */
    double peak = 0, plateau = 0, t_flat0 = 2 * m->t_rise_s, t_flat1 = m->t_rise_s + p->dev.igvva.t_set_s;
    for (size_t i = 0; i < k; i++) {
        if (p->wave_t[i] < t_flat0 || p->wave_t[i] > t_flat1 * (1 + 1e-12))
            continue;
        if (fabs(p->wave_i[i]) > fabs(peak))
            peak = p->wave_i[i];
        plateau = p->wave_i[i];
    }
    for (size_t i = 0; i < k && i < cap; i++) {
        if (t)
            t[i] = p->wave_t[i];
        if (i_te)
            i_te[i] = p->wave_i[i];
    }
    xb_spice_run(p->spice, "destroy all");
    xb_spice_run(p->spice, NULL); /* the command history grows with every alter */
    r->gap_end_m = clamp_gap(m, gap_nm * 1e-9);
    r->i_peak_A = peak;
    r->i_plateau_A = plateau;
    r->n_points = n;
    p->pulses++;
    p->seconds += xb_now() - t0;
    return XB_OK;
}

int xb_circuit_read(xb_circuit_prog *p, double gap_m, double *i_read_A, xb_error *err)
{
    double t0 = xb_now();
    if (!isfinite(gap_m))
        return xb_fail(err, XB_EINPUT, "circuit read: gap %g m; allowed: finite", gap_m);
    if (alter(p, "vgr", gap_m * 1e9))
        return dead("a verify read's settings", err);
    if (xb_spice_run(p->spice, "op") && xb_spice_dead(p->spice))
        return dead("a verify read", err);
    double i = xb_spice_vector_last(p->spice, "vrd#branch");
    if (!isfinite(i)) {
        /* Once more with the fixed-step homotopy, as the tile solves do. */
        xb_spice_run(p->spice, "destroy all");
        xb_spice_run(p->spice, "option gminsteps=10 srcsteps=20");
        xb_spice_run(p->spice, "op");
        xb_spice_run(p->spice, "option gminsteps=1 srcsteps=1");
        i = xb_spice_vector_last(p->spice, "vrd#branch");
    }
    xb_spice_run(p->spice, "destroy all");
    if (!isfinite(i))
        return xb_fail(err, XB_ERUNTIME, "circuit read: the operating point at gap %g nm did not converge",
                       gap_m * 1e9);
    *i_read_A = -i; /* the branch current of a source flows from its + node through it */
    p->reads++;
    p->seconds += xb_now() - t0;
    return XB_OK;
}

static int noisy(const xb_device *d)
{
    return d->rram.sigma_ea_eV > 0 || d->sigma_read > 0;
}

/* The circuit cell of the write-verify loop (xb_igvva_write_verify): its state is the gap. */
typedef struct circuit_cell {
    xb_circuit_prog *p;
    double gap;
} circuit_cell;

/* Attempt 0: the read of the RESET state; later attempts RESET with the top electrode negative and the
 * transistor fully on (the first starts from the RESET state as it is). */
static int circuit_reset(void *ctx, int attempt, double *g, double *i, xb_error *err)
{
    circuit_cell *c = ctx;
    const xb_device *d = &c->p->dev;
    if (attempt == 0) {
        int rc = xb_circuit_read(c->p, c->gap, i, err);
        *g = *i / d->v_read_V;
        return rc;
    }
    if (attempt == 1)
        return XB_OK;
    xb_circuit_pulse_result pr;
    int rc = xb_circuit_pulse(c->p, c->gap, -d->rram.v_reset_V, d->vg_read_V, 0.0, &pr, NULL, NULL, 0, err);
    if (!rc)
        c->gap = pr.gap_end_m;
    return rc;
}

/* A SET transient at gate voltage vg (its activation-energy draw: the cycle-to-cycle spread), then the
 * verify read with the gap held. */
static int circuit_set(void *ctx, double vg, gsl_rng *rng, double *g, double *i, xb_error *err)
{
    circuit_cell *c = ctx;
    const xb_device *d = &c->p->dev;
    const xb_rram_params *m = &d->rram;
    double d_ea = m->sigma_ea_eV > 0 ? m->sigma_ea_eV * gsl_ran_gaussian(rng, 1.0) : 0.0;
    xb_circuit_pulse_result pr;
    int rc = xb_circuit_pulse(c->p, c->gap, d->igvva.v_set_V, vg, d_ea, &pr, NULL, NULL, 0, err);
    if (rc)
        return rc;
    c->gap = pr.gap_end_m;
    if ((rc = xb_circuit_read(c->p, c->gap, i, err)))
        return rc;
    *g = *i / d->v_read_V;
    return XB_OK;
}

/* One cell by the write-verify loop of the statistical model, with the circuit in place of the
 * compliance formula. */
static int program_cell(xb_circuit_prog *p, double i_trg_A, gsl_rng *rng, xb_igvva_result *r, double *gap_out,
                        xb_error *err)
{
    static const xb_igvva_cell_ops ops = {.reset = circuit_reset, .set = circuit_set};
    circuit_cell c = {.p = p, .gap = p->dev.rram.gap_max_m};
    int rc = xb_igvva_write_verify(&p->dev, i_trg_A, rng, noisy(&p->dev), &ops, &c, r, err);
    if (!rc && gap_out)
        *gap_out = c.gap;
    return rc;
}

int xb_circuit_program_cells(xb_circuit_prog *p, const double *i_trg_A, size_t n, gsl_rng *rng,
                             xb_igvva_result *out, double *gap_m, int progress, xb_error *err)
{
    const xb_device *d = &p->dev;
    if (noisy(d) && !rng)
        return xb_fail(err, XB_EINPUT, "circuit IGVVA: sigma_ea_eV = %g and sigma_read = %g need a random generator; "
                       "allowed: an rng, or zero variation", d->rram.sigma_ea_eV, d->sigma_read);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(i_trg_A[i]))
            return xb_fail(err, XB_EINPUT, "circuit IGVVA: target of cell %zu is %g; allowed: a finite read current",
                           i, i_trg_A[i]);
    double t0 = xb_now();
    for (size_t i = 0; i < n; i++) {
        int rc = program_cell(p, i_trg_A[i], rng, &out[i], gap_m ? &gap_m[i] : NULL, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return xb_fail(err, rc, "circuit IGVVA, cell %zu of %zu (target %g A): %.900s", i, n, i_trg_A[i], msg);
        }
        if (progress && ((i + 1) % 64 == 0 || i + 1 == n))
            fprintf(stderr, "circuit IGVVA: %zu of %zu cells, %.1f s\n", i + 1, n, xb_now() - t0);
    }
    return XB_OK;
}

static int program_strategy(void *ctx, const xb_device *d, const double *i_trg_A, size_t n, gsl_rng *rng,
                            xb_igvva_result *out, xb_error *err)
{
    xb_circuit_prog *p = ctx;
    (void)d; /* the programmer's own copy, the same device */
    return xb_circuit_program_cells(p, i_trg_A, n, rng, out, NULL, p->progress, err);
}

void xb_circuit_programmer_bind(xb_circuit_prog *p, int progress, xb_cell_programmer *out)
{
    p->progress = progress;
    out->name = "circuit";
    out->program = program_strategy;
    out->ctx = p;
}
