#include "validate.h"

#include <stdio.h>
#include <string.h>

#include "uuid.h"

static const struct bb_field llm_prompt_fields[] = {
	{ "prompt", BB_FIELD_STRING, true, NULL },
	{ "provider", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "model", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "project", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "working_dir", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "domain", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "tags", BB_FIELD_STRING_ARRAY, false, NULL },
};

static const struct bb_field llm_response_fields[] = {
	{ "response", BB_FIELD_STRING, true, NULL },
	{ "provider", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "model", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "prompt_id", BB_FIELD_UUID_OR_NULL, false, NULL },
	{ "tokens_used", BB_FIELD_COUNT_OR_NULL, false, NULL },
	{ "duration_ms", BB_FIELD_COUNT_OR_NULL, false, NULL },
};

static const char *const artifact_actions[] = {
	"created", "updated", "deleted", NULL
};

static const struct bb_field artifact_fields[] = {
	{ "action", BB_FIELD_CHOICE, true, artifact_actions },
	{ "kind", BB_FIELD_STRING, true, NULL },
	{ "uri", BB_FIELD_STRING, true, NULL },
	{ "title", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "content", BB_FIELD_STRING_OR_NULL, false, NULL },
	{ "metadata", BB_FIELD_OBJECT, false, NULL },
};

#define NFIELDS(f) (sizeof(f) / sizeof(f[0]))
#define SCHEMA(f) { f, NFIELDS(f) }
const struct bb_schema bb_schema_llm_prompt = SCHEMA(llm_prompt_fields);
const struct bb_schema bb_schema_llm_response = SCHEMA(llm_response_fields);
const struct bb_schema bb_schema_artifact = SCHEMA(artifact_fields);

static const struct bb_typed typed[] = {
	{ "artifact.created", "An artifact was created (POST /events/artifact "
	    "with action created).", &bb_schema_artifact, "created", NULL },
	{ "artifact.deleted", "An artifact was deleted (POST /events/artifact "
	    "with action deleted).", &bb_schema_artifact, "deleted", NULL },
	{ "artifact.updated", "An artifact was updated (POST /events/artifact "
	    "with action updated).", &bb_schema_artifact, "updated", NULL },
	{ "llm.prompt", "A prompt sent to a language model (POST "
	    "/events/llm/prompt).", &bb_schema_llm_prompt, NULL, NULL },
	{ "llm.response", "A language model's response; prompt_id names the "
	    "prompt's event, its parent (POST /events/llm/response).",
	    &bb_schema_llm_response, NULL, "prompt_id" },
};

const struct bb_typed *
bb_typed_at(size_t k)
{
	return k < sizeof(typed) / sizeof(typed[0]) ? &typed[k] : NULL;
}

/* The draft-07 keywords that say what field_problem() checks. */
static void
write_field_schema(const struct bb_typed *t, const struct bb_field *f,
    struct bb_buf *out)
{
	switch (f->kind) {
	case BB_FIELD_STRING:
		bb_buf_puts(out, "{\"type\":\"string\",\"minLength\":1}");
		break;
	case BB_FIELD_STRING_OR_NULL:
		bb_buf_puts(out, "{\"type\":[\"string\",\"null\"]}");
		break;
	case BB_FIELD_STRING_ARRAY:
		bb_buf_puts(out, "{\"type\":[\"array\",\"null\"],"
		    "\"items\":{\"type\":\"string\"},\"default\":[]}");
		break;
	case BB_FIELD_UUID_OR_NULL:
		bb_buf_puts(out, "{\"type\":[\"string\",\"null\"],"
		    "\"format\":\"uuid\"}");
		break;
	case BB_FIELD_COUNT_OR_NULL:
		/* draft-07 counts 1.0 as an integer; the endpoint takes a
		 * count written as one, and that the document can only say */
		bb_buf_puts(out, "{\"type\":[\"integer\",\"null\"],"
		    "\"minimum\":0,\"maximum\":9223372036854775807,"
		    "\"description\":\"written as an integer: no fraction or "
		    "exponent, such as 1.0 or 1e3\"}");
		break;
	case BB_FIELD_OBJECT:
		bb_buf_puts(out, "{\"type\":[\"object\",\"null\"],"
		    "\"default\":{}}");
		break;
	case BB_FIELD_CHOICE:
		/* an artifact type's action is its own */
		bb_buf_puts(out, "{\"const\":");
		bb_json_write_string(out, t->action, strlen(t->action));
		bb_buf_putc(out, '}');
		break;
	}
}

void
bb_typed_write_schema(const struct bb_typed *t, struct bb_buf *out)
{
	const struct bb_schema *s = t->schema;
	size_t k, n = 0;

	bb_buf_puts(out, "{\"$schema\":\"http://json-schema.org/draft-07/"
	    "schema#\",\"title\":");
	bb_json_write_string(out, t->event_type, strlen(t->event_type));
	bb_buf_puts(out, ",\"description\":");
	bb_json_write_string(out, t->description, strlen(t->description));
	bb_buf_puts(out, ",\"type\":\"object\",\"required\":[");
	for (k = 0; k < s->nfields; k++) {
		if (!s->fields[k].required)
			continue;
		bb_buf_puts(out, n++ ? ",\"" : "\"");
		bb_buf_puts(out, s->fields[k].name);
		bb_buf_putc(out, '"');
	}
	bb_buf_puts(out, "],\"properties\":{");
	for (k = 0; k < s->nfields; k++) {
		bb_buf_puts(out, k ? ",\"" : "\"");
		bb_buf_puts(out, s->fields[k].name);
		bb_buf_puts(out, "\":");
		write_field_schema(t, &s->fields[k], out);
	}
	bb_buf_puts(out, "}}");
}

const struct bb_typed *
bb_typed_lookup(const char *s, size_t len)
{
	for (size_t k = 0; k < sizeof(typed) / sizeof(typed[0]); k++) {
		if (strlen(typed[k].event_type) == len &&
		    memcmp(typed[k].event_type, s, len) == 0)
			return &typed[k];
	}
	return NULL;
}

/* Room for the fields of the largest schema. */
#define MAX_FIELDS 8
_Static_assert(NFIELDS(llm_prompt_fields) <= MAX_FIELDS, "MAX_FIELDS");
_Static_assert(NFIELDS(llm_response_fields) <= MAX_FIELDS, "MAX_FIELDS");
_Static_assert(NFIELDS(artifact_fields) <= MAX_FIELDS, "MAX_FIELDS");

void
bb_validate_error(struct bb_buf *errors, const char *field,
    const char *message)
{
	if (errors->len)
		bb_buf_putc(errors, ',');
	bb_buf_puts(errors, "{\"field\":");
	bb_json_write_string(errors, field, strlen(field));
	bb_buf_puts(errors, ",\"message\":");
	bb_json_write_string(errors, message, strlen(message));
	bb_buf_putc(errors, '}');
}

static bool
is_string_array(const struct bb_json *doc, int v)
{
	int j = v + 1;

	if (bb_json_type(doc, v) != BB_JSON_ARRAY)
		return false;
	for (int n = 0; n < bb_json_size(doc, v); n++, j++) {
		if (bb_json_type(doc, j) != BB_JSON_STRING)
			return false;
	}
	return true;
}

static bool
is_choice(const struct bb_json *doc, int v, const char *const *choices)
{
	if (bb_json_type(doc, v) != BB_JSON_STRING)
		return false;
	for (; *choices; choices++) {
		if (bb_json_string_equals(doc, v, *choices))
			return true;
	}
	return false;
}

/* Why value v does not fit field f, or NULL when it does; msg is room for
 * a message built here. Null stands for "omitted" in optional fields. */
static const char *
field_problem(const struct bb_json *doc, int v, const struct bb_field *f,
    char *msg, size_t msglen)
{
	enum bb_json_type t = bb_json_type(doc, v);
	const char *raw;
	size_t len;
	long long n;

	if (t == BB_JSON_NULL && !f->required)
		return NULL;
	switch (f->kind) {
	case BB_FIELD_STRING:
		bb_json_raw(doc, v, &len);
		return t == BB_JSON_STRING && len > 0 ? NULL :
		    "must be a non-empty string";
	case BB_FIELD_STRING_OR_NULL:
		return t == BB_JSON_STRING ? NULL : "must be a string or null";
	case BB_FIELD_STRING_ARRAY:
		return is_string_array(doc, v) ? NULL :
		    "must be an array of strings";
	case BB_FIELD_UUID_OR_NULL:
		raw = bb_json_raw(doc, v, &len);
		return t == BB_JSON_STRING && bb_uuid_valid(raw, len) ? NULL :
		    "must be a UUID or null";
	case BB_FIELD_COUNT_OR_NULL:
		return bb_json_integer(doc, v, &n) && n >= 0 ? NULL :
		    "must be an integer >= 0 or null";
	case BB_FIELD_OBJECT:
		return t == BB_JSON_OBJECT ? NULL : "must be an object";
	case BB_FIELD_CHOICE:
		if (is_choice(doc, v, f->choices))
			return NULL;
		snprintf(msg, msglen, "must be one of");
		for (const char *const *c = f->choices; *c; c++)
			snprintf(msg + strlen(msg), msglen - strlen(msg), "%s %s",
			    c == f->choices ? "" : ",", *c);
		return msg;
	}
	return "unknown field kind";
}

static const char *
default_value(const struct bb_field *f)
{
	switch (f->kind) {
	case BB_FIELD_STRING_ARRAY:
		return "[]";
	case BB_FIELD_OBJECT:
		return "{}";
	default:
		return "null";
	}
}

/* The field of schema that member name key names, or -1. */
static int
field_index(const struct bb_json *doc, int key, const struct bb_schema *schema)
{
	for (size_t k = 0; k < schema->nfields; k++) {
		if (bb_json_string_equals(doc, key, schema->fields[k].name))
			return (int)k;
	}
	return -1;
}

int
bb_validate(const struct bb_json *doc, int obj, const struct bb_schema *schema,
    struct bb_buf *payload, struct bb_buf *errors)
{
	int values[MAX_FIELDS];
	int nerrors = 0;

	/* One pass over the members finds the value of every field, so the
	 * time is linear in the number of members, however many are unknown
	 * (a lookup per field would pass over them all once per field). */
	for (size_t k = 0; k < schema->nfields; k++)
		values[k] = -1;
	for (int m = bb_json_member(doc, obj, -1); m >= 0;
	    m = bb_json_member(doc, obj, m)) {
		int k = field_index(doc, m, schema);
		if (k >= 0)
			values[k] = m + 1;	/* names are unique (I-JSON) */
	}
	for (size_t k = 0; k < schema->nfields; k++) {
		const struct bb_field *f = &schema->fields[k];
		int v = values[k];
		const char *problem;
		char msg[128];

		if (v < 0)
			problem = f->required ? "required" : NULL;
		else
			problem = field_problem(doc, v, f, msg, sizeof(msg));
		if (problem) {
			bb_validate_error(errors, f->name, problem);
			nerrors++;
		}
	}
	if (nerrors)
		return nerrors;

	bb_buf_putc(payload, '{');
	for (size_t k = 0; k < schema->nfields; k++) {
		const struct bb_field *f = &schema->fields[k];
		int v = values[k];

		bb_buf_puts(payload, k ? ",\"" : "\"");
		bb_buf_puts(payload, f->name);
		bb_buf_puts(payload, "\":");
		if (v < 0 || (bb_json_type(doc, v) == BB_JSON_NULL &&
		    (f->kind == BB_FIELD_STRING_ARRAY || f->kind == BB_FIELD_OBJECT)))
			bb_buf_puts(payload, default_value(f));
		else
			bb_json_write_value(payload, doc, v);
	}
	/* Unknown fields are kept as sent (CONTRACT §3), in request order. */
	for (int m = bb_json_member(doc, obj, -1); m >= 0;
	    m = bb_json_member(doc, obj, m)) {
		if (field_index(doc, m, schema) < 0) {
			bb_buf_putc(payload, ',');
			bb_json_write_value(payload, doc, m);
			bb_buf_putc(payload, ':');
			bb_json_write_value(payload, doc, m + 1);
		}
	}
	bb_buf_putc(payload, '}');
	return 0;
}

bool
bb_event_type_valid(const char *s, size_t len)
{
	bool segment_start = true;

	if (len < 1 || len > 255)
		return false;
	for (size_t k = 0; k < len; k++) {
		char c = s[k];
		if (c == '.') {
			if (segment_start)
				return false;
			segment_start = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-'))
			return false;
		segment_start = false;
	}
	return !segment_start;
}
