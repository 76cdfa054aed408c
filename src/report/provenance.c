// provenance: what produced a result (tool, libraries, command line, RNG and seed, input hashes)
#include "provenance.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_version.h>
#include <libxml/xmlversion.h>
#include <zip.h>
#include <zlib.h>

#include "config.h"
#include "fileio.h"

char *openblas_get_config(void); /* OpenBLAS has no header of its own that GSL code can include */

void xb_provenance_init(xb_provenance *p, int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    /* argv is a subcommand's: argv[0] is the command name, so the tool's name goes first. */
    size_t used = (size_t)snprintf(p->command_line, sizeof p->command_line, "xbarsim");
    for (int i = 0; i < argc && used < sizeof p->command_line; i++) {
        /* Quote arguments with spaces so the line can be pasted back into a shell. */
        int quote = strpbrk(argv[i], " \t'\"") != NULL;
        used += (size_t)snprintf(p->command_line + used, sizeof p->command_line - used,
                                 quote ? " '%s'" : " %s", argv[i]);
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(p->started_utc, sizeof p->started_utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(p->rng, sizeof p->rng, "gsl_rng_mt19937");
}

void xb_provenance_set_seed(xb_provenance *p, unsigned long seed)
{
    p->has_seed = 1;
    p->seed = seed;
}

int xb_provenance_add_input(xb_provenance *p, const char *role, const char *path, const char *sha256,
                            xb_error *err)
{
    if (p->n_inputs == XB_PROVENANCE_MAX_INPUTS)
        return XB_OK;
    int i = p->n_inputs;
    snprintf(p->inputs[i].role, sizeof p->inputs[i].role, "%s", role);
    snprintf(p->inputs[i].path, sizeof p->inputs[i].path, "%s", path);
    if (sha256) {
        snprintf(p->inputs[i].sha256, sizeof p->inputs[i].sha256, "%s", sha256);
    } else {
        int rc = xb_sha256_file(path, p->inputs[i].sha256, err);
        if (rc)
            return rc;
    }
    p->n_inputs++;
    return XB_OK;
}

void xb_versions_write(xb_json *j)
{
    xb_json_object_begin(j, "libraries");
    xb_json_string(j, "ngspice_build", XB_NGSPICE_VERSION);
    xb_json_string(j, "gsl", gsl_version);
    xb_json_string(j, "libxml2", LIBXML_DOTTED_VERSION);
    xb_json_string(j, "zlib", zlibVersion());
    xb_json_string(j, "libzip", zip_libzip_version());
    xb_json_string(j, "blas", openblas_get_config());
    xb_json_object_end(j);
}

void xb_versions_print(FILE *fp)
{
    fprintf(fp, "xbarsim %s\n", XB_VERSION);
    fprintf(fp, "  ngspice  %s (shared library, built against)\n", XB_NGSPICE_VERSION);
    fprintf(fp, "  GSL      %s\n", gsl_version);
    fprintf(fp, "  libxml2  %s\n", LIBXML_DOTTED_VERSION);
    fprintf(fp, "  zlib     %s\n", zlibVersion());
    fprintf(fp, "  libzip   %s\n", zip_libzip_version());
    fprintf(fp, "  BLAS     %s\n", openblas_get_config());
}

void xb_provenance_write(const xb_provenance *p, xb_json *j)
{
    xb_json_object_begin(j, "provenance");
    xb_json_string(j, "tool", "xbarsim");
    xb_json_string(j, "version", XB_VERSION);
    xb_versions_write(j);
    xb_json_string(j, "command_line", p->command_line);
    xb_json_string(j, "started_utc", p->started_utc);
    xb_json_string(j, "rng", p->rng);
    if (p->has_seed)
        xb_json_int(j, "seed", (long long)p->seed);
    else
        xb_json_string(j, "seed", NULL);
    xb_json_array_begin(j, "inputs");
    for (int i = 0; i < p->n_inputs; i++) {
        xb_json_object_begin(j, NULL);
        xb_json_string(j, "role", p->inputs[i].role);
        xb_json_string(j, "path", p->inputs[i].path);
        xb_json_string(j, "sha256", p->inputs[i].sha256);
        xb_json_object_end(j);
    }
    xb_json_array_end(j);
    xb_json_object_end(j);
}
