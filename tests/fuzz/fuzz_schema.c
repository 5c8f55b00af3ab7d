/* libFuzzer harness over schema files and the values checked against them
 * (jsonschema.c, format.c, PCRE2 under its limits).
 *
 * Input: a schema document, then a NUL or a newline, then an instance
 * document (the schema half is the whole input when neither occurs; a
 * schema written on several lines simply fails to compile, so the seed
 * corpus keeps each schema on one line). Beyond the sanitizers, it checks
 * the header's promises: a compiled schema's own text compiles again; a
 * validation answers 0 with no errors, or n > 0 with min(n, MAX_ERRORS)
 * {"field","message","keyword"} objects that make a JSON array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema.h"

static void
check_errors(int n, const struct bb_buf *errors)
{
	struct bb_buf arr;
	struct bb_json doc;
	char err[128];
	int want = n < BB_JSONSCHEMA_MAX_ERRORS ? n : BB_JSONSCHEMA_MAX_ERRORS;

	if (n < 0)
		abort();
	if (n == 0) {
		if (errors->len)
			abort();
		return;
	}
	bb_buf_init(&arr);
	bb_buf_putc(&arr, '[');
	bb_buf_append(&arr, errors->data, errors->len);
	bb_buf_putc(&arr, ']');
	if (bb_json_parse(&doc, arr.data, arr.len, err, sizeof(err)) !=
	    BB_JSON_OK || bb_json_size(&doc, 0) != want)
		abort();
	for (int e = 1; e < doc.ntok; e = bb_json_next(&doc, e)) {
		if (bb_json_type(&doc, e) != BB_JSON_OBJECT ||
		    bb_json_size(&doc, e) != 3 ||
		    bb_json_get(&doc, e, "field") < 0 ||
		    bb_json_get(&doc, e, "message") < 0 ||
		    bb_json_get(&doc, e, "keyword") < 0)
			abort();
	}
	bb_json_free(&doc);
	bb_buf_free(&arr);
}

/* The text that a compiled schema keeps of itself compiles again. */
static void
check_text(const struct bb_jsonschema *s)
{
	char err[256];
	size_t len;
	const char *text = bb_jsonschema_text(s, &len);
	struct bb_jsonschema *again = bb_jsonschema_compile(text, len, err,
	    sizeof(err));

	if (again == NULL || bb_jsonschema_title(s) == NULL ||
	    bb_jsonschema_description(s) == NULL)
		abort();
	bb_jsonschema_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bb_jsonschema_work work;
	const char *text = (const char *)data;
	const uint8_t *nul = memchr(data, '\0', size);
	const uint8_t *nl = memchr(data, '\n', size);
	const uint8_t *cut = nul && (!nl || nul < nl) ? nul : nl;
	size_t slen = cut ? (size_t)(cut - data) : size;
	struct bb_jsonschema *s;
	struct bb_buf errors;
	struct bb_json doc;
	char err[256];

	s = bb_jsonschema_compile(text, slen, err, sizeof(err));
	if (s == NULL) {
		if (memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return 0;
	}
	check_text(s);
	if (cut) {
		/* fresh each time, as a worker's first validation finds it */
		bb_jsonschema_work_init(&work);
		bb_buf_init(&errors);
		if (bb_json_parse(&doc, text + slen + 1, size - slen - 1, err,
		    sizeof(err)) == BB_JSON_OK) {
			/* the root, and values inside it, as a payload
			 * nested in an envelope is validated where it lies
			 * (not every value: that would be quadratic) */
			int at[3] = { 0, doc.ntok / 2, doc.ntok - 1 };

			for (int k = 0; k < 3; k++) {
				if (k && at[k] == at[k - 1])
					continue;
				bb_buf_reset(&errors);
				check_errors(bb_jsonschema_validate(s, &doc,
				    at[k], &work, &errors), &errors);
			}
		}
		bb_json_free(&doc);
		bb_buf_free(&errors);
		bb_jsonschema_work_free(&work);
	}
	bb_jsonschema_free(s);
	return 0;
}
