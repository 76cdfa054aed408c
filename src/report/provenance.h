// provenance: what produced a result (tool, libraries, command line, RNG and seed, input hashes)
#ifndef XB_PROVENANCE_H
#define XB_PROVENANCE_H

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
/* Write a "provenance" object member into the current JSON object. */
void xb_provenance_write(const xb_provenance *p, xb_json *j);

/* Library versions are those of the libraries linked and loaded at run time (gsl_version,
 * xmlParserVersion, openblas_get_config, zlibVersion, zip_libzip_version), next to the versions the
 * build was configured against where they can differ. libngspice only says its version once started:
 * the first call that needs it starts it in a forked child (xb_pool_run_one: a clean folder, ~2 ms)
 * and caches the answer for the process. */

/* "xbarsim 0.1.0" and the linked libraries, one per line, for --version. */
void xb_versions_print(FILE *fp);
/* Write a "libraries" object member: "ngspice" (linked, run time; null if it could not be started,
 * with "ngspice_error"), "ngspice_build", "gsl", "libxml2", "libxml2_build", "zlib", "libzip", "blas". */
void xb_versions_write(xb_json *j);
/* The linked libngspice's version number (e.g. 39), asked once per process; 0 when it could not be
 * started (why: in *why, may be NULL). */
int xb_versions_ngspice(const char **why);
/* Record a libngspice version already known (a caller that ran ngspice in this process or its workers),
 * so no child is started to ask. */
void xb_versions_note_ngspice(int version);

#endif
