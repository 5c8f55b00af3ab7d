/* json: parsing with jsmn plus what jsmn leaves to its caller -- full
 * validation (grammar, UTF-8, escapes, nesting depth, the I-JSON rules of
 * RFC 7493), unescaping, typed lookups -- and a writer that escapes
 * correctly. Every pass takes time linear in the text (n log n for the
 * member names of one object), whatever its shape.
 *
 * Values are addressed by token index; index 0 is the document's root. */
#ifndef BB_JSON_H
#define BB_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define BB_JSON_MAX_DEPTH 64
#define BB_JSON_MAX_TOKENS 65536
/* The longest number literal accepted (I-JSON, RFC 7493 §2.2). */
#define BB_JSON_MAX_NUMBER 64

enum bb_json_status {
	BB_JSON_OK = 0,
	BB_JSON_INVALID,	/* not JSON, not UTF-8, or not I-JSON: a member
				 * name repeated in an object (compared
				 * unescaped), a number that is no finite
				 * double or longer than MAX_NUMBER */
	BB_JSON_TOO_LARGE,	/* deeper than MAX_DEPTH or more than MAX_TOKENS */
};

enum bb_json_type {
	BB_JSON_OBJECT,
	BB_JSON_ARRAY,
	BB_JSON_STRING,
	BB_JSON_NUMBER,
	BB_JSON_BOOL,
	BB_JSON_NULL,
};

struct bb_json_token;

struct bb_json {
	const char *text;	/* not owned; must outlive the document */
	size_t len;
	struct bb_json_token *tok;
	int ntok;
};

/* Parses and validates text. On failure writes a human-readable reason into
 * err. The document must be released with bb_json_free either way. */
enum bb_json_status bb_json_parse(struct bb_json *doc, const char *text,
    size_t len, char *err, size_t errlen);
/* The same with other limits than BB_JSON_MAX_DEPTH and BB_JSON_MAX_TOKENS
 * (a batch of events: one more level for its array, and more values). */
enum bb_json_status bb_json_parse_limit(struct bb_json *doc, const char *text,
    size_t len, int max_depth, int max_tokens, char *err, size_t errlen);
void bb_json_free(struct bb_json *doc);

enum bb_json_type bb_json_type(const struct bb_json *doc, int i);
/* Number of members of an object or elements of an array. */
int bb_json_size(const struct bb_json *doc, int i);
/* The index just past the value at i and everything inside it. */
int bb_json_next(const struct bb_json *doc, int i);
/* The value of member key in object obj, or -1. */
int bb_json_get(const struct bb_json *doc, int obj, const char *key);
/* Steps through the members of object obj in order, returning the index of
 * each name (its value is the next index), then -1:
 *	for (int k = bb_json_member(doc, obj, -1); k >= 0;
 *	    k = bb_json_member(doc, obj, k))
 * A whole loop takes time linear in the size of obj. */
int bb_json_member(const struct bb_json *doc, int obj, int prev);
/* Raw text of a value (strings without their quotes, still escaped). */
const char *bb_json_raw(const struct bb_json *doc, int i, size_t *len);

/* Appends the unescaped UTF-8 value of string i to out. */
void bb_json_unescape(const struct bb_json *doc, int i, struct bb_buf *out);
/* True when string i unescapes to exactly s. */
bool bb_json_string_equals(const struct bb_json *doc, int i, const char *s);
/* Integer value of number i; false when it has a fraction or exponent or
 * does not fit. */
bool bb_json_integer(const struct bb_json *doc, int i, long long *out);

/* Writes value i as compact JSON with canonical escaping. */
void bb_json_write_value(struct bb_buf *out, const struct bb_json *doc, int i);
/* Writes s (len bytes of valid UTF-8) as a quoted, escaped JSON string. */
void bb_json_write_string(struct bb_buf *out, const char *s, size_t len);

/* Checks that s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
bool bb_utf8_valid(const char *s, size_t len);

#endif
