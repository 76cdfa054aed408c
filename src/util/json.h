// json: a small streaming JSON writer for result sidecars
#ifndef XB_JSON_H
#define XB_JSON_H

#include <stdio.h>

#define XB_JSON_MAXDEPTH 32

/* Writes pretty-printed JSON to fp; keys are ignored inside arrays and at the top level. */
typedef struct xb_json {
    FILE *fp;
    int depth;
    int count[XB_JSON_MAXDEPTH]; /* members written at each depth, for commas */
} xb_json;

void xb_json_init(xb_json *j, FILE *fp);
void xb_json_object_begin(xb_json *j, const char *key);
void xb_json_object_end(xb_json *j);
void xb_json_array_begin(xb_json *j, const char *key);
void xb_json_array_end(xb_json *j);
void xb_json_string(xb_json *j, const char *key, const char *value); /* NULL value -> null */
void xb_json_number(xb_json *j, const char *key, double value);     /* %.17g; NaN/inf -> null */
void xb_json_int(xb_json *j, const char *key, long long value);

#endif
