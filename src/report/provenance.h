// provenance: what produced a result (tool, libraries, command line, RNG and seed, input hashes)
#ifndef XB_PROVENANCE_H
#define XB_PROVENANCE_H

#include <stdio.h>

#include "error.h"
#include "json.h"

/* Enough for an .npz or a list of .npy files of a 16-layer network plus the data set and device
 * files; inputs beyond it are counted in n_dropped and reported, never silently lost. */
#define XB_PROVENANCE_MAX_INPUTS 40

typedef struct xb_provenance {
    char command_line[8192];
    char started_utc[32];     /* ISO 8601 */
    int has_seed;
    unsigned long seed;
    char rng[32];             /* GSL generator name */
    int n_inputs;
    struct {
        char role[32];        /* "weights", "train_images", ... */
        char path[4096];
        char sha256[65];
    } inputs[XB_PROVENANCE_MAX_INPUTS];
    int n_dropped;            /* inputs that did not fit (written as "inputs_not_recorded") */
    int ngspice_version;      /* the libngspice that solved this run's circuits (0: none ran) */
    char spice_solver[64];    /* its matrix solver, as the run's pool statistics name it */
} xb_provenance;

void xb_provenance_init(xb_provenance *p, int argc, char **argv);
void xb_provenance_set_seed(xb_provenance *p, unsigned long seed);
/* Record an input file; sha256 may be NULL to hash it now. */
int xb_provenance_add_input(xb_provenance *p, const char *role, const char *path, const char *sha256,
                            xb_error *err);
/* Record the weights given as a --weights spec: an .npz (role "weights") or each file of a comma-
 * separated .npy list with its own hash (roles "weights:W1", "weights:b1", ... by position).
 * XB_EINPUT naming the file when one cannot be read. */
int xb_provenance_add_weights(xb_provenance *p, const char *spec, xb_error *err);
/* The libngspice version and solver from the run's own pool statistics (xb_pool_stats); a run that
 * solved no circuit leaves them unset and records "ngspice": null with "ngspice_note". */
void xb_provenance_set_spice(xb_provenance *p, int ngspice_version, const char *solver);
/* Write a "provenance" object member into the current JSON object. */
void xb_provenance_write(const xb_provenance *p, xb_json *j);

/* Library versions are those of the libraries linked and loaded at run time (gsl_version,
 * xmlParserVersion, openblas_get_config, zlibVersion, zip_libzip_version), next to the versions the
 * build was configured against where they can differ. libngspice only says its version once started:
 * this module starts nothing; the version is data, from the statistics of a run that solved circuits
 * (xb_provenance_set_spice) or from the caller (`--version` asks a spice worker in src/cli). */

/* "xbarsim 0.1.0" and the linked libraries, one per line, for --version. ngspice_version: the linked
 * libngspice's (0: it could not be started, why says why). */
void xb_versions_print(FILE *fp, int ngspice_version, const char *why);
/* Write a "libraries" object member: "ngspice" (the version that ran, or null with "ngspice_note"),
 * "ngspice_solver" when known, "ngspice_build", "gsl", "libxml2", "libxml2_build", "zlib", "libzip",
 * "blas". */
void xb_versions_write(xb_json *j, int ngspice_version, const char *solver);

#endif
