/* jsonschema: JSON Schema draft-07 (CONTRACT §10), compiled once from a
 * schema document into a tree of nodes and then checked against values of
 * any parsed document by walking its tokens -- the jsmn tokens that
 * json.c already made, no second parser. Pure: no I/O.
 *
 * Supported: the whole draft-07 validation vocabulary, boolean schemas,
 * $ref to JSON pointers within the document ("#", "#/definitions/a") and
 * to the $id of a subschema of the same document, and `format` as an
 * assertion for the formats of format.h. Annotations are ignored. Anything
 * else -- an unknown keyword, a remote $ref, a pattern that does not
 * compile, a $ref cycle that never reaches a deeper value -- makes the
 * document invalid: compiling fails and says where and why. */
#ifndef BB_JSONSCHEMA_H
#define BB_JSONSCHEMA_H

#include <stddef.h>

#include "buf.h"
#include "json.h"

/* Failing locations reported by one validation, at most. */
#define BB_JSONSCHEMA_MAX_ERRORS 20

struct bb_jsonschema;

/* Compiles the schema document text[0..len) (which need not outlive the
 * result). Returns NULL on failure with "<JSON pointer>: <reason>" in err
 * (the pointer "" for the root, or for text that is not JSON). */
struct bb_jsonschema *bb_jsonschema_compile(const char *text, size_t len,
    char *err, size_t errlen);
void bb_jsonschema_free(struct bb_jsonschema *s);

/* The schema's own document, compact, and its root "title" and
 * "description" strings (unescaped; "" when absent). */
const char *bb_jsonschema_text(const struct bb_jsonschema *s, size_t *len);
const char *bb_jsonschema_title(const struct bb_jsonschema *s);
const char *bb_jsonschema_description(const struct bb_jsonschema *s);

/* Working memory of validations, kept from one to the next so that a
 * validation allocates nothing once it has grown; one per worker. */
struct bb_jsonschema_item;
struct bb_jsonschema_memo;
struct bb_jsonschema_work {
	struct bb_buf text;	/* a string value, unescaped */
	struct bb_buf other;	/* another, to compare with it */
	struct bb_buf field;	/* the dotted instance path of an error */
	struct bb_jsonschema_item *items;	/* uniqueItems: hashed elements */
	size_t items_cap;
	void *match;		/* PCRE2 match data */
	/* Outcomes of quiet checks (inside anyOf, oneOf, not, if,
	 * contains) by subschema and value, of this validation only. */
	struct bb_jsonschema_memo *memo;
	size_t memo_cap, memo_used;
	unsigned memo_gen;
};

void bb_jsonschema_work_init(struct bb_jsonschema_work *w);
void bb_jsonschema_work_free(struct bb_jsonschema_work *w);

/* Checks value i of doc against s. Returns the number of failing
 * locations (0: valid), reporting each, up to BB_JSONSCHEMA_MAX_ERRORS,
 * as a {"field","message","keyword"} object appended to errors (entries
 * comma-separated, the inside of a JSON array; errors may be NULL). The
 * field is the instance location, member names and array indexes joined
 * by dots from i ("" for i itself). Validation costs at most linear time
 * in the size of the value times the size of the schema: a schema whose
 * $ref graph would take longer, or a pattern that runs past PCRE2's match
 * limit, fails the value with keyword "$ref" or "pattern". */
int bb_jsonschema_validate(const struct bb_jsonschema *s,
    const struct bb_json *doc, int i, struct bb_jsonschema_work *w,
    struct bb_buf *errors);

#endif
