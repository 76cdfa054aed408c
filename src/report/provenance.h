// provenance: what produced a result (tool, libraries, command line, RNG and seed, input hashes)
#ifndef XB_PROVENANCE_H
#define XB_PROVENANCE_H

#include "error.h"
#include "json.h"

#define XB_PROVENANCE_MAX_INPUTS 16

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
} xb_provenance;

void xb_provenance_init(xb_provenance *p, int argc, char **argv);
void xb_provenance_set_seed(xb_provenance *p, unsigned long seed);
/* Record an input file; sha256 may be NULL to hash it now. */
int xb_provenance_add_input(xb_provenance *p, const char *role, const char *path, const char *sha256,
                            xb_error *err);
/* Write a "provenance" object member into the current JSON object. */
void xb_provenance_write(const xb_provenance *p, xb_json *j);

/* "xbarsim 0.1.0" and the linked libraries, one per line, for --version. */
void xb_versions_print(FILE *fp);
/* Write a "libraries" object member. */
void xb_versions_write(xb_json *j);

#endif
