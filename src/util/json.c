// json: a small streaming JSON writer for result sidecars
#include "json.h"

#include <math.h>

void xb_json_init(xb_json *j, FILE *fp)
{
    j->fp = fp;
    j->depth = 0;
    j->count[0] = 0;
}

static void put_escaped(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", fp); break;
        case '\\': fputs("\\\\", fp); break;
        case '\n': fputs("\\n", fp); break;
        case '\r': fputs("\\r", fp); break;
        case '\t': fputs("\\t", fp); break;
        default:
            if (*p < 0x20)
                fprintf(fp, "\\u%04x", *p);
            else
                fputc(*p, fp);
        }
    }
    fputc('"', fp);
}

/* Comma, newline, indentation and "key": for the next member. */
static void member(xb_json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->count[j->depth]++ > 0)
            fputc(',', j->fp);
        fputc('\n', j->fp);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->fp);
    }
    if (key && j->depth > 0) {
        put_escaped(j->fp, key);
        fputs(": ", j->fp);
    }
}

static void open(xb_json *j, const char *key, char c)
{
    member(j, key);
    fputc(c, j->fp);
    if (j->depth + 1 < XB_JSON_MAXDEPTH)
        j->depth++;
    j->count[j->depth] = 0;
}

static void close(xb_json *j, char c)
{
    int had = j->count[j->depth] > 0;
    if (j->depth > 0)
        j->depth--;
    if (had) {
        fputc('\n', j->fp);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->fp);
    }
    fputc(c, j->fp);
    if (j->depth == 0)
        fputc('\n', j->fp);
}

void xb_json_object_begin(xb_json *j, const char *key) { open(j, key, '{'); }
void xb_json_object_end(xb_json *j) { close(j, '}'); }
void xb_json_array_begin(xb_json *j, const char *key) { open(j, key, '['); }
void xb_json_array_end(xb_json *j) { close(j, ']'); }

void xb_json_string(xb_json *j, const char *key, const char *value)
{
    member(j, key);
    if (value)
        put_escaped(j->fp, value);
    else
        fputs("null", j->fp);
}

void xb_json_number(xb_json *j, const char *key, double value)
{
    member(j, key);
    if (isfinite(value))
        fprintf(j->fp, "%.17g", value);
    else
        fputs("null", j->fp);
}

void xb_json_int(xb_json *j, const char *key, long long value)
{
    member(j, key);
    fprintf(j->fp, "%lld", value);
}

