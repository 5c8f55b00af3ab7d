/* catalog: the event schemas of SCHEMA_DIR (CONTRACT §10) -- one JSON
 * Schema draft-07 file per event type, compiled when a worker starts --
 * and the answers of GET /schemas and GET /schemas/{event_type}, which
 * list the typed types' built-in schemas too. */
#ifndef BB_CATALOG_H
#define BB_CATALOG_H

#include <stddef.h>

#include "http.h"
#include "jsonschema.h"

/* Largest schema file read. */
#define BB_CATALOG_MAX_FILE (1024 * 1024)

struct bb_catalog;

/* Reads and compiles every <event_type>.json of dir; other files (a
 * README, *.json.example) are left alone, and a dir that does not exist,
 * or "", holds no schemas. On any invalid file -- or a file named for no
 * event type, or for a typed type, or a dir that cannot be read -- returns
 * NULL with "<path>: <JSON pointer>: <reason>" (or "<path>: <reason>") in
 * err: a catalog is never half-loaded. */
struct bb_catalog *bb_catalog_load(const char *dir, char *err, size_t errlen);
void bb_catalog_free(struct bb_catalog *c);

/* Schemas loaded from files. */
int bb_catalog_count(const struct bb_catalog *c);
/* The schema of event type s[0..len), or NULL. */
const struct bb_jsonschema *bb_catalog_find(const struct bb_catalog *c,
    const char *type, size_t len);

/* The answer of GET (or HEAD) /schemas, or of /schemas/{event_type} when
 * type is not NULL. */
void bb_catalog_answer(const struct bb_catalog *c, const char *type,
    size_t len, struct bb_response *resp);

#endif
