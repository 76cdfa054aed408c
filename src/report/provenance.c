// provenance: what produced a result (tool, libraries, command line, RNG and seed, input hashes)
#include "provenance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_version.h>
#include <libxml/parser.h>
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
    if (p->n_inputs == XB_PROVENANCE_MAX_INPUTS) {
        p->n_dropped++;
        return XB_OK;
    }
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

int xb_provenance_add_weights(xb_provenance *p, const char *spec, xb_error *err)
{
    if (!strchr(spec, ','))
        return xb_provenance_add_input(p, "weights", spec, NULL, err);
    /* A list is W1.npy,b1.npy,W2.npy,...: each file is an input of its own, named by its position
     * (empty items skipped, as the loader skips them), so a changed b2.npy shows in the record as a
     * changed "weights:b2". */
    int rc = XB_OK, k = 0;
    const char *item = spec;
    while (!rc) {
        size_t len = strcspn(item, ",");
        char path[4096], role[32];
        if (len >= sizeof path)
            return xb_fail(err, XB_EINPUT, "weights list: item %d is longer than %zu characters", k + 1,
                           sizeof path - 1);
        memcpy(path, item, len);
        path[len] = '\0';
        if (len > 0) {
            snprintf(role, sizeof role, "weights:%c%d", k % 2 ? 'b' : 'W', k / 2 + 1);
            rc = xb_provenance_add_input(p, role, path, NULL, err);
            k++;
        }
        if (!item[len])
            break;
        item += len + 1;
    }
    return rc;
}

/* --- library versions --- */

void xb_provenance_set_spice(xb_provenance *p, int ngspice_version, const char *solver)
{
    if (ngspice_version > 0)
        p->ngspice_version = ngspice_version;
    if (solver && solver[0])
        snprintf(p->spice_solver, sizeof p->spice_solver, "%s", solver);
}

/* The linked libxml2's version: xmlParserVersion is "MMmmpp" (e.g. "20914" for 2.9.14). */
static const char *libxml2_linked(char buf[32])
{
    long v = strtol(xmlParserVersion, NULL, 10);
    snprintf(buf, 32, "%ld.%ld.%ld", v / 10000, v / 100 % 100, v % 100);
    return buf;
}

void xb_versions_write(xb_json *j, int v, const char *solver)
{
    char ng[16], xml[32];
    snprintf(ng, sizeof ng, "%d", v);
    xb_json_object_begin(j, "libraries");
    xb_json_string(j, "ngspice", v > 0 ? ng : NULL);
    if (v <= 0)
        xb_json_string(j, "ngspice_note", "no circuit was solved in this run");
    if (solver && solver[0])
        xb_json_string(j, "ngspice_solver", solver);
    xb_json_string(j, "ngspice_build", XB_NGSPICE_VERSION);
    xb_json_string(j, "gsl", gsl_version);
    xb_json_string(j, "libxml2", libxml2_linked(xml));
    xb_json_string(j, "libxml2_build", LIBXML_DOTTED_VERSION);
    xb_json_string(j, "zlib", zlibVersion());
    xb_json_string(j, "libzip", zip_libzip_version());
    xb_json_string(j, "blas", openblas_get_config());
    xb_json_object_end(j);
}

void xb_versions_print(FILE *fp, int v, const char *why)
{
    char xml[32];
    fprintf(fp, "xbarsim %s\n", XB_VERSION);
    if (v > 0)
        fprintf(fp, "  ngspice  %d (the linked libngspice, started to ask; built against %s)\n", v, XB_NGSPICE_VERSION);
    else
        fprintf(fp, "  ngspice  unknown: libngspice could not be started (%s); built against %s\n", why ? why : "?",
                XB_NGSPICE_VERSION);
    fprintf(fp, "  GSL      %s\n", gsl_version);
    fprintf(fp, "  libxml2  %s (built against %s)\n", libxml2_linked(xml), LIBXML_DOTTED_VERSION);
    fprintf(fp, "  zlib     %s\n", zlibVersion());
    fprintf(fp, "  libzip   %s\n", zip_libzip_version());
    fprintf(fp, "  BLAS     %s\n", openblas_get_config());
}

void xb_provenance_write(const xb_provenance *p, xb_json *j)
{
    xb_json_object_begin(j, "provenance");
    xb_json_string(j, "tool", "xbarsim");
    xb_json_string(j, "version", XB_VERSION);
    xb_versions_write(j, p->ngspice_version, p->spice_solver);
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
    if (p->n_dropped)
        xb_json_int(j, "inputs_not_recorded", p->n_dropped);
    xb_json_object_end(j);
}
