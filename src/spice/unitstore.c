// unitstore: finished circuit-solve units on disk, keyed by everything their result depends on
#include "unitstore.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fileio.h"
#include "ngspice.h"
#include "worker.h"

static const char store_magic[8] = {'X', 'B', 'S', 'U', 'N', 'I', 'T', '\n'};
#define HEADER_BYTES 136 /* magic 8, version 4, header bytes 4, key 64, seven uint64 */
#define CHECKSUM_BYTES 64

struct xb_unit_store {
    char dir[4096];
    const xb_chip *chip;
    const xb_device *dev;
    const xb_netlist_options *net;
    int layer;
    size_t n, rows, chunk;
    int quiet;
    char prefix[1200];   /* the key's text shared by every unit of the layer call */
    char (*deck)[65];    /* per tile (rt * n_col_tiles + ct): SHA-256 of its deck; "" until computed */
};

/* The model files a deck includes, by content, onto out: "model PATH SHA-256\n" for each `.include` /
 * `.inc` line of text and, MODEL_DEPTH files deep, each `.include`, `.inc` and `.lib FILE SECTION` line of
 * those files (a PDK card that pulls in others). A relative path in a model file is looked up in that
 * file's folder, and as given when it is not there; a file that cannot be read is "unreadable" (its units
 * fail in the worker, as they would without a store). */
#define MODEL_DEPTH 4
#define MODEL_MAX_BYTES ((size_t)256 << 20)

static int starts_with_word(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) <= n || strncasecmp(p, word, n))
        return 0;
    return p[n] == ' ' || p[n] == '\t';
}

/* The next token of [*p, end): quoted or up to white space, copied into tok (NUL-terminated). */
static int next_token(const char **p, const char *end, char *tok, size_t len)
{
    const char *q = *p;
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    if (q >= end || *q == '\r' || *q == ';')
        return 0;
    const char *a = q, *b;
    if (*q == '"' || *q == '\'') {
        char quote = *q;
        a = ++q;
        while (q < end && *q != quote)
            q++;
        b = q;
        if (q < end)
            q++;
    } else {
        while (q < end && *q != ' ' && *q != '\t' && *q != '\r')
            q++;
        b = q;
    }
    *p = q;
    if (b == a || (size_t)(b - a) >= len)
        return 0;
    memcpy(tok, a, (size_t)(b - a));
    tok[b - a] = '\0';
    return 1;
}

static void hash_models(const char *text, size_t len, const char *dir, int depth, FILE *out)
{
    for (const char *line = text, *end = text + len; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *p = line;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        int inc = starts_with_word(p, eol, ".include") || starts_with_word(p, eol, ".inc"),
            lib = !inc && depth > 0 && starts_with_word(p, eol, ".lib");
        char name[4096], section[256], path[8200];
        if ((inc || lib) && (p = strpbrk(p, " \t")) && next_token(&p, eol, name, sizeof name) &&
            (inc || next_token(&p, eol, section, sizeof section))) {
            snprintf(path, sizeof path, "%s", name);
            if (name[0] != '/' && dir[0]) {
                snprintf(path, sizeof path, "%s/%s", dir, name);
                if (!xb_is_file(path))
                    snprintf(path, sizeof path, "%s", name);
            }
            unsigned char *d = NULL;
            size_t n = 0;
            xb_error ignored = {0};
            char hex[65] = "unreadable";
            if (!xb_read_file(path, MODEL_MAX_BYTES, &d, &n, &ignored))
                xb_sha256_hex(d, n, hex);
            fprintf(out, "model %s %s\n", path, hex);
            if (d && depth < MODEL_DEPTH) {
                char sub[8200];
                snprintf(sub, sizeof sub, "%s", path);
                char *slash = strrchr(sub, '/');
                if (slash)
                    *slash = '\0';
                else
                    sub[0] = '\0';
                hash_models((const char *)d, n, slash && !sub[0] ? "/" : sub, depth + 1, out);
            }
            free(d);
        }
        line = eol + 1;
    }
}

/* SHA-256 of the tile's deck as the workers load it (its row sources external: the row voltages are
 * keyed separately) followed by the content hashes of the model files it includes (hash_models), so a
 * model file edited between a stop and its resume never lets a unit solved with the old one be reused. A
 * deck that cannot be written (a value out of range) gets a key no other deck has: its unit fails in the
 * worker anyway. */
static void deck_hash(xb_unit_store *s, size_t rt, size_t ct, char hex[65])
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    xb_error ignored = {0};
    int rc = fp ? xb_netlist_write_tile(fp, s->chip, s->layer, rt, ct, s->dev, s->net, XB_DECK_EXTERNAL, NULL, 0, "",
                                        &ignored)
                : XB_ENOMEM;
    if (fp && fclose(fp))
        rc = rc ? rc : XB_ENOMEM;
    char *models = NULL;
    size_t mlen = 0;
    FILE *mp = !rc && text ? open_memstream(&models, &mlen) : NULL;
    if (mp) {
        fprintf(mp, "%s", text);
        hash_models(text, len, "", 0, mp);
        if (fclose(mp))
            rc = XB_ENOMEM;
    }
    if (rc || !text || !models)
        snprintf(hex, 65, "unwritable-deck-%ld", (long)getpid());
    else
        xb_sha256_hex(models, mlen, hex);
    free(text);
    free(models);
}

static const char *tile_deck(xb_unit_store *s, size_t rt, size_t ct)
{
    const xb_layer_map *L = &s->chip->layers[s->layer];
    char *h = s->deck[rt * L->n_col_tiles + ct];
    if (!h[0])
        deck_hash(s, rt, ct, h);
    return h;
}

int xb_unit_store_open(const char *dir, const char *key, const xb_chip *c, const xb_device *dev,
                       const xb_netlist_options *net, int l, const double *V, size_t n, size_t chunk, int quiet,
                       xb_unit_store **out, xb_error *err)
{
    *out = NULL;
    if (strlen(dir) >= sizeof((xb_unit_store *)0)->dir)
        return xb_fail(err, XB_EINPUT, "the unit store folder %.100s...: path too long", dir);
    int rc = xb_mkdir_p(dir, err);
    if (rc)
        return rc;
    xb_remove_stale_temps(dir, 0);
    const xb_layer_map *L = &c->layers[l];
    xb_unit_store *s = calloc(1, sizeof *s);
    if (s)
        s->deck = calloc(L->n_row_tiles * L->n_col_tiles + 1, sizeof *s->deck);
    if (!s || !s->deck) {
        if (s)
            free(s->deck);
        free(s);
        return xb_fail(err, XB_ENOMEM, "out of memory for the unit store");
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->chip = c;
    s->dev = dev;
    s->net = net;
    s->layer = l;
    s->n = n;
    s->rows = L->rows;
    s->chunk = chunk;
    s->quiet = quiet;
    /* The row voltages bit for bit (the model files the decks include are keyed with each deck). */
    char v_hex[65];
    xb_sha256_hex(V, n * L->rows * sizeof *V, v_hex);
    snprintf(s->prefix, sizeof s->prefix,
             "xbarsim unit store %d|%.400s|layer=%d|n=%zu|rows=%zu|chunk=%zu|row_drive=%d|pwl_chunk=%zu|V=%s",
             XB_UNIT_STORE_VERSION, key ? key : "", l, n, L->rows, chunk, net->row_drive, net->pwl_chunk, v_hex);
    *out = s;
    return XB_OK;
}

void xb_unit_store_free(xb_unit_store **s)
{
    if (!s || !*s)
        return;
    free((*s)->deck);
    free(*s);
    *s = NULL;
}

size_t xb_unit_store_result_bytes(const xb_unit_store *s, const xb_unit *u)
{
    size_t r0, nr, c0, nc;
    xb_chip_tile_bounds(s->chip, u->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    size_t k = u->k1 - u->k0;
    return XB_SPICE_RESULT_CURRENTS + k * nc * sizeof(double) + k;
}

/* The SHA-256 (hex) of unit u's whole key. */
static void unit_key(xb_unit_store *s, const xb_unit *u, char hex[65])
{
    char text[1600];
    int len = snprintf(text, sizeof text, "%s|tile=%zu,%zu|inputs=%zu..%zu|deck=%s", s->prefix, u->rt, u->ct, u->k0,
                       u->k1, tile_deck(s, u->rt, u->ct));
    xb_sha256_hex(text, len > 0 && (size_t)len < sizeof text ? (size_t)len : sizeof text - 1, hex);
}

static void path_for(xb_unit_store *s, const xb_unit *u, const char key[65], char *path, size_t len)
{
    snprintf(path, len, "%s/L%d-%zu-%zu-%zu-%zu-%.16s.unit", s->dir, u->layer + 1, u->rt, u->ct, u->k0, u->k1, key);
}

void xb_unit_store_path(xb_unit_store *s, const xb_unit *u, char *path, size_t len)
{
    char key[65];
    unit_key(s, u, key);
    path_for(s, u, key, path, len);
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, sizeof v); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, sizeof v); return v; }

/* The header of unit u with key key and nc columns; returns HEADER_BYTES. */
static void header_of(const xb_unit *u, const char key[65], size_t nc, size_t payload, unsigned char *h)
{
    memcpy(h, store_magic, 8);
    put_u32(h + 8, XB_UNIT_STORE_VERSION);
    put_u32(h + 12, HEADER_BYTES);
    memcpy(h + 16, key, 64);
    const uint64_t f[7] = {(uint64_t)u->layer, u->rt, u->ct, u->k0, u->k1, nc, payload};
    for (int i = 0; i < 7; i++)
        put_u64(h + 80 + 8 * i, f[i]);
}

int xb_unit_store_save(xb_unit_store *s, const xb_unit *u, const void *result, xb_error *err)
{
    char key[65], path[4400];
    unit_key(s, u, key);
    path_for(s, u, key, path, sizeof path);
    size_t r0, nr, c0, nc, payload = xb_unit_store_result_bytes(s, u);
    xb_chip_tile_bounds(s->chip, u->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    unsigned char *buf = malloc(HEADER_BYTES + payload + CHECKSUM_BYTES);
    if (!buf)
        return xb_fail(err, XB_ENOMEM, "out of memory for a stored unit");
    header_of(u, key, nc, payload, buf);
    memcpy(buf + HEADER_BYTES, result, payload);
    char sum[65];
    xb_sha256_hex(buf, HEADER_BYTES + payload, sum);
    memcpy(buf + HEADER_BYTES + payload, sum, CHECKSUM_BYTES);
    xb_atomic_file f;
    int rc = xb_atomic_open(&f, path, err);
    if (!rc) {
        fwrite(buf, 1, HEADER_BYTES + payload + CHECKSUM_BYTES, f.fp);
        rc = xb_atomic_commit(&f, err);
    }
    free(buf);
    return rc;
}

/* Why the file at path cannot be used, or NULL when it can (its payload copied into result). */
static const char *check_file(const unsigned char *d, size_t len, const xb_unit *u, const char key[65], size_t nc,
                              size_t payload, void *result, size_t cap)
{
    if (len != HEADER_BYTES + payload + CHECKSUM_BYTES)
        return len < HEADER_BYTES + payload + CHECKSUM_BYTES ? "the file is cut short" : "the file is too long";
    if (memcmp(d, store_magic, 8))
        return "not a unit file (its magic bytes differ)";
    if (get_u32(d + 8) != XB_UNIT_STORE_VERSION || get_u32(d + 12) != HEADER_BYTES)
        return "a unit file of another version";
    char sum[65];
    xb_sha256_hex(d, HEADER_BYTES + payload, sum);
    if (memcmp(sum, d + HEADER_BYTES + payload, CHECKSUM_BYTES))
        return "its checksum does not match its contents";
    if (memcmp(d + 16, key, 64))
        return "it was stored for another key (other inputs, conductances or options)";
    unsigned char want[HEADER_BYTES];
    header_of(u, key, nc, payload, want);
    if (memcmp(d, want, HEADER_BYTES))
        return "its layer, tile, inputs or sizes differ from the unit's";
    if (payload > cap)
        return "its result is larger than the unit's";
    const unsigned char *status = d + HEADER_BYTES + XB_SPICE_RESULT_CURRENTS + (u->k1 - u->k0) * nc * sizeof(double);
    for (size_t q = 0; q < u->k1 - u->k0; q++)
        if (status[q] != XB_SOLVE_OK && status[q] != XB_SOLVE_RETRIED && status[q] != XB_SOLVE_FAILED)
            return "a solve status out of range";
    memcpy(result, d + HEADER_BYTES, payload);
    return NULL;
}

int xb_unit_store_load(xb_unit_store *s, const xb_unit *u, void *result, size_t cap, size_t *rejected)
{
    char key[65], path[4400];
    unit_key(s, u, key);
    path_for(s, u, key, path, sizeof path);
    if (!xb_is_file(path))
        return 0;
    size_t r0, nr, c0, nc, payload = xb_unit_store_result_bytes(s, u);
    xb_chip_tile_bounds(s->chip, u->layer, u->rt, u->ct, &r0, &nr, &c0, &nc);
    unsigned char *d = NULL;
    size_t len = 0;
    xb_error rerr = {0};
    const char *why = NULL;
    if (xb_read_file(path, HEADER_BYTES + payload + CHECKSUM_BYTES + 1, &d, &len, &rerr))
        why = rerr.msg[0] ? rerr.msg : "the file cannot be read";
    else
        why = check_file(d, len, u, key, nc, payload, result, cap);
    free(d);
    if (!why)
        return 1;
    if (!s->quiet)
        fprintf(stderr, "\nxbarsim: %s: %s; ignored, its unit (layer %d tile (%zu, %zu), inputs %zu..%zu) is solved "
                "again\n", path, why, u->layer + 1, u->rt, u->ct, u->k0, u->k1 - 1);
    unlink(path);
    if (rejected)
        (*rejected)++;
    return 0;
}

int xb_unit_store_remove(const char *dir, xb_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? XB_OK : xb_fail(err, XB_ERUNTIME, "%s: %s", dir, strerror(errno));
    int rc = XB_OK;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) && errno != ENOENT && !rc)
            rc = xb_fail(err, XB_ERUNTIME, "%s: cannot remove it: %s", path, strerror(errno));
    }
    closedir(d);
    if (!rc && rmdir(dir) && errno != ENOENT)
        rc = xb_fail(err, XB_ERUNTIME, "%s: cannot remove the folder: %s", dir, strerror(errno));
    return rc;
}
