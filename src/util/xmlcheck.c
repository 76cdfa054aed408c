// xmlcheck: load an XML file safely and check it against an XML Schema, every error as FILE:LINE
#include "xmlcheck.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include "fileio.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* Collects errors as "FILE:LINE: element <x>: message" lines, the first few in full. */
typedef struct error_sink {
    const char *path;   /* the file the messages name */
    const char *schema; /* the schema's file name, for "allowed: XML that X accepts" */
    const xb_xml_hint *hints;
    size_t n_hints;
    char text[1024];
    size_t len;
    int count;
} error_sink;

static void sink_add(error_sink *s, const char *line)
{
    s->count++;
    size_t n = strlen(line);
    size_t room = sizeof s->text - s->len;
    if (s->len > 0) {
        if (room < 2)
            return;
        s->text[s->len++] = '\n';
        room--;
    }
    if (n >= room)
        n = room - 1;
    memcpy(s->text + s->len, line, n);
    s->len += n;
    s->text[s->len] = '\0';
}

/* libxml's message without its "Element 'x': " lead-in (we name the element ourselves) and without
 * the trailing newline. */
static void clean_message(const char *msg, char *out, size_t cap)
{
    const char *m = msg ? msg : "(no message)";
    if (strncmp(m, "Element '", 9) == 0) {
        const char *q = strchr(m + 9, '\'');
        if (q) {
            m = q + 1;
            if ((m[0] == ':' || m[0] == ',') && m[1] == ' ')
                m += 2;
        }
    }
    snprintf(out, cap, "%s", m);
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
}

/* What to write instead, for the schema messages that do not say it themselves. */
static void schema_hint(const error_sink *s, const char *msg, char *out, size_t cap)
{
    out[0] = '\0';
    if (strstr(msg, "is not a valid value of")) {
        for (size_t i = 0; i < s->n_hints; i++)
            if (strstr(msg, s->hints[i].type)) {
                snprintf(out, cap, "%s", s->hints[i].allowed);
                return;
            }
        snprintf(out, cap, "; allowed: see the type in %s", s->schema);
    } else if (strstr(msg, "is not expected") && !strstr(msg, "Expected is")) {
        snprintf(out, cap, "; allowed: only the elements %s lists, in its order", s->schema);
    }
}

#if LIBXML_VERSION >= 21200
static void schema_error_cb(void *user, const xmlError *e)
#else
static void schema_error_cb(void *user, xmlErrorPtr e)
#endif
{
    error_sink *s = user;
    if (!e || e->level < XML_ERR_ERROR)
        return;
    const xmlNode *node = e->node;
    const char *el = node && node->type == XML_ELEMENT_NODE ? (const char *)node->name : NULL;
    int line = e->line;
    if (line <= 0 && node)
        line = (int)xmlGetLineNo(node);
    char msg[600], hint[200], full[900];
    clean_message(e->message, msg, sizeof msg);
    schema_hint(s, msg, hint, sizeof hint);
    size_t n = strlen(msg);
    if (hint[0] && n > 0 && msg[n - 1] == '.')
        msg[n - 1] = '\0';
    if (el)
        snprintf(full, sizeof full, "%s:%d: element <%s>: %s%s", s->path, line, el, msg, hint);
    else
        snprintf(full, sizeof full, "%s:%d: %s%s", e->file ? e->file : s->path, line, msg, hint);
    sink_add(s, full);
}

/* The first well-formedness error, with the element open at that point. The parser passes itself
 * as the user data; its _private carries the sink. */
#if LIBXML_VERSION >= 21200
static void parse_error_cb(void *user, const xmlError *e)
#else
static void parse_error_cb(void *user, xmlErrorPtr e)
#endif
{
    xmlParserCtxtPtr ctxt = user;
    error_sink *s = ctxt ? ctxt->_private : NULL;
    if (!s || !e || e->level < XML_ERR_ERROR)
        return;
    if (s->count++ > 0)
        return;
    char msg[600];
    clean_message(e->message, msg, sizeof msg);
    if (ctxt->name)
        snprintf(s->text, sizeof s->text, "%s:%d: element <%s>: not well-formed XML: %s; allowed: XML that %s accepts",
                 s->path, e->line, (const char *)ctxt->name, msg, s->schema);
    else
        snprintf(s->text, sizeof s->text, "%s:%d: not well-formed XML: %s; allowed: XML that %s accepts", s->path,
                 e->line, msg, s->schema);
    s->len = strlen(s->text);
}

/* libxml2 writes some failures (a declared encoding the bytes do not match) through its generic
 * handler to stderr as well as to the structured one; the structured message is the one we report. */
static void quiet_generic_cb(void *ctx, const char *fmt, ...)
{
    (void)ctx, (void)fmt;
}

/* Line of the first "<!DOCTYPE" in the raw text (the DTD node carries no line of its own). */
static int doctype_line(const unsigned char *data, size_t len)
{
    const char *p = strstr((const char *)data, "<!DOCTYPE");
    if (!p)
        return 1;
    int line = 1;
    for (const unsigned char *q = data; q < (const unsigned char *)p && q < data + len; q++)
        line += *q == '\n';
    return line;
}

int xb_xml_load(const char *path, const char *xsd, size_t max_bytes, const char *what, const xb_xml_hint *hints,
                size_t n_hints, xmlDocPtr *out, xb_error *err)
{
    pthread_once(&xml_once, xml_init);
    *out = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = xb_read_file(path, max_bytes, &data, &len, err);
    if (rc)
        return rc;
    const char *slash = strrchr(xsd, '/');
    error_sink sink = {.path = path, .schema = slash ? slash + 1 : xsd, .hints = hints, .n_hints = n_hints};
    xmlParserCtxtPtr pctx = NULL;
    xmlDocPtr doc = NULL;
    xmlSchemaParserCtxtPtr sp = NULL;
    xmlSchemaPtr schema = NULL;
    xmlSchemaValidCtxtPtr vctx = NULL;

    /* Entities stay unexpanded and no DTD or network resource is fetched (no XML_PARSE_NOENT,
     * XML_PARSE_DTDLOAD); any DOCTYPE is refused below, which also closes the door on entity
     * expansion attacks. Errors come back through the context instead of stderr. */
    if (!(pctx = xmlNewParserCtxt())) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    pctx->_private = &sink;
    pctx->sax->serror = parse_error_cb;
    int opts = XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;
    xmlSetGenericErrorFunc(NULL, quiet_generic_cb); /* per thread; restored to the default below */
    doc = xmlCtxtReadMemory(pctx, (const char *)data, (int)len, path, NULL, opts);
    xmlSetGenericErrorFunc(NULL, NULL);
    if (!doc || !pctx->wellFormed) {
        if (sink.count)
            rc = xb_fail(err, XB_EINPUT, "%s", sink.text);
        else
            rc = xb_fail(err, XB_EINPUT, "%s:1: not well-formed XML; allowed: XML that %s accepts", path, sink.schema);
        goto done;
    }
    if (doc->intSubset || doc->extSubset) {
        rc = xb_fail(err, XB_EINPUT,
                     "%s:%d: element <!DOCTYPE>: a %s takes no DTD (entities are never expanded); allowed: plain XML "
                     "checked by %s",
                     path, doctype_line(data, len), what, sink.schema);
        goto done;
    }

    sink.path = xsd;
    sink.count = 0;
    sink.len = 0;
    sink.text[0] = '\0';
    if (!(sp = xmlSchemaNewParserCtxt(xsd))) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory", xsd);
        goto done;
    }
    xmlSchemaSetParserStructuredErrors(sp, schema_error_cb, &sink);
    if (!(schema = xmlSchemaParse(sp))) {
        rc = xb_fail(err, XB_EINPUT, "schema %s is not usable: %s", xsd, sink.count ? sink.text : "parse failed");
        goto done;
    }
    if (!(vctx = xmlSchemaNewValidCtxt(schema))) {
        rc = xb_fail(err, XB_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    sink.path = path;
    xmlSchemaSetValidStructuredErrors(vctx, schema_error_cb, &sink);
    if (xmlSchemaValidateDoc(vctx, doc) != 0) {
        if (sink.count > 1)
            rc = xb_fail(err, XB_EINPUT, "%s\n(%d schema errors in all)", sink.text, sink.count);
        else if (sink.count == 1)
            rc = xb_fail(err, XB_EINPUT, "%s", sink.text);
        else
            rc = xb_fail(err, XB_EINPUT, "%s: does not match %s", path, xsd);
        goto done;
    }
    *out = doc;
    doc = NULL;
    rc = XB_OK;
done:
    xmlSchemaFreeValidCtxt(vctx);
    xmlSchemaFree(schema);
    xmlSchemaFreeParserCtxt(sp);
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(pctx);
    free(data);
    return rc;
}

int xb_xml_find_schema(const char *path, const char *given, const char *name, const char *fallback, char *out,
                       size_t cap, xb_error *err)
{
    if (given) {
        if (!xb_is_file(given))
            return xb_fail(err, XB_EINPUT, "schema %s: no such file; allowed: the path of %s", given, name);
        snprintf(out, cap, "%s", given);
        return XB_OK;
    }
    const char *slash = strrchr(path, '/');
    char beside[4200];
    snprintf(beside, sizeof beside, "%.*s%s%s", slash ? (int)(slash - path) : 0, path, slash ? "/" : "", name);
    if (xb_is_file(beside)) {
        snprintf(out, cap, "%s", beside);
        return XB_OK;
    }
    if (xb_is_file(fallback)) {
        snprintf(out, cap, "%s", fallback);
        return XB_OK;
    }
    return xb_fail(err, XB_EINPUT, "%s: no schema found (looked for %s and %s); allowed: pass the path of %s", path,
                   beside, fallback, name);
}

char *xb_xml_attr(const xmlNode *node, const char *name)
{
    return (char *)xmlGetProp(node, (const xmlChar *)name);
}
