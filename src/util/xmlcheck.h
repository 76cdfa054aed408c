// xmlcheck: load an XML file safely and check it against an XML Schema, every error as FILE:LINE
#ifndef XB_XMLCHECK_H
#define XB_XMLCHECK_H

#include <stddef.h>

#include <libxml/tree.h>

#include "error.h"

/* For schema errors about a simple type whose message does not say what is allowed: when the message
 * names type (e.g. "'positive'"), allowed (e.g. "; allowed: a number > 0") is appended. */
typedef struct xb_xml_hint {
    const char *type, *allowed;
} xb_xml_hint;

/* Read path (at most max_bytes), parse it with no network access, no DTD loading and no entity
 * expansion, refuse any DOCTYPE, and validate it against the schema file xsd.
 *   what: the kind of file for messages ("device file", "testbench")
 *   hints: n_hints extra explanations of the schema's simple types (may be NULL)
 *   output: *doc, the document the caller frees with xmlFreeDoc.
 * Every failure is XB_EINPUT (XB_ENOMEM, XB_ERUNTIME for I/O) with "path:line: element <x>: what is
 * wrong; allowed: ...". */
int xb_xml_load(const char *path, const char *xsd, size_t max_bytes, const char *what, const xb_xml_hint *hints,
                size_t n_hints, xmlDocPtr *doc, xb_error *err);

/* The schema for the file at path: given (when not NULL, it must exist), else the file called name in
 * path's folder, else fallback (the source tree's copy). XB_EINPUT naming the places looked at. */
int xb_xml_find_schema(const char *path, const char *given, const char *name, const char *fallback, char *out,
                       size_t cap, xb_error *err);

/* The text of attribute name of node (NULL if absent); the caller frees it with xmlFree. */
char *xb_xml_attr(const xmlNode *node, const char *name);

#endif
