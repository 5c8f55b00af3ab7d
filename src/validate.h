/* validate: the schemas of the typed endpoints (CONTRACT §4.2-§4.4), event
 * type names (§4.6), and the payloads they produce. Pure: no I/O. */
#ifndef BB_VALIDATE_H
#define BB_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

enum bb_field_kind {
	BB_FIELD_STRING,	/* non-empty string */
	BB_FIELD_STRING_OR_NULL,
	BB_FIELD_STRING_ARRAY,	/* default [] */
	BB_FIELD_UUID_OR_NULL,
	BB_FIELD_COUNT_OR_NULL,	/* integer >= 0 */
	BB_FIELD_OBJECT,	/* default {} */
	BB_FIELD_CHOICE,	/* one of choices */
};

struct bb_field {
	const char *name;
	enum bb_field_kind kind;
	bool required;
	const char *const *choices;	/* NULL-terminated, for CHOICE */
};

struct bb_schema {
	const struct bb_field *fields;
	size_t nfields;
};

extern const struct bb_schema bb_schema_llm_prompt;
extern const struct bb_schema bb_schema_llm_response;
extern const struct bb_schema bb_schema_artifact;

/* An event type that has a typed endpoint (CONTRACT §4.6): its schema,
 * the action an artifact type's payload must name, and the field whose UUID
 * is the event's first parent. */
struct bb_typed {
	const char *event_type;
	const char *description;	/* of its payload, for the catalog */
	const struct bb_schema *schema;
	const char *action;		/* artifact.<action>; else NULL */
	const char *parent_field;	/* llm.response: prompt_id; else NULL */
};

/* The typed endpoint's rules for event type s[0..len), or NULL when no
 * typed endpoint publishes that type. */
const struct bb_typed *bb_typed_lookup(const char *s, size_t len);
/* The k-th typed type, in the order of their names; NULL past the last. */
const struct bb_typed *bb_typed_at(size_t k);
/* Writes t's payload rules as a JSON Schema draft-07 document (CONTRACT
 * §10: the catalog lists the typed types too). The typed validation
 * below stays what decides: it also fills in defaults. */
void bb_typed_write_schema(const struct bb_typed *t, struct bb_buf *out);

/* Checks object obj of doc against schema. Returns the number of offending
 * fields; each is appended to errors as a {"field","message"} object
 * (comma-separated, for a JSON array). When there are none, appends the
 * payload to payload: the known fields in schema order, omitted ones as null
 * or their default, then every unknown field as sent. */
int bb_validate(const struct bb_json *doc, int obj,
    const struct bb_schema *schema, struct bb_buf *payload,
    struct bb_buf *errors);

/* Appends one {"field","message"} entry to errors. */
void bb_validate_error(struct bb_buf *errors, const char *field,
    const char *message);

/* CONTRACT §4.6: 1-255 bytes of [a-z0-9_-] segments joined by single dots. */
bool bb_event_type_valid(const char *s, size_t len);

#endif
