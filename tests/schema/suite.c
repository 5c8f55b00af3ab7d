/* suite: the official JSON-Schema-Test-Suite (Debian json-schema-test-suite,
 * draft7 directory) run through jsonschema.c, as CONTRACT §10 promises.
 *
 * Each file is an array of groups {"description","schema","tests"}; each test
 * is {"description","data","valid"}. A group's schema is written out compact
 * and compiled, as a SCHEMA_DIR file would be; each test's data is validated
 * where it lies in the parsed file, as a payload is validated where it lies
 * in the request body. A miss fails the run unless the group is on the skip
 * list below, which says why; a skipped group that no longer behaves as its
 * entry says fails the run too, so that the list stays true.
 *
 * Runs every file of DIR, of DIR/optional, and of DIR/optional/format for the
 * formats that format.h asserts (the others are annotations in Bloodbank).
 *
 * usage: suite [DIR]           DIR: the suite's draft7 directory
 *        suite --ndjson FILE   FILE ("-": stdin) holds one case a line,
 *                              {"schema":...,"instance":...}; prints one line
 *                              a case: "valid", "invalid" or
 *                              "refused: <compile error>" (differential.py)
 * Exits 0 when everything passed, 1 on any miss. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "format.h"
#include "json.h"
#include "jsonschema.h"

#define DEFAULT_DIR "/usr/share/json-schema-test-suite/tests/draft7"
/* The suite's largest file holds a few thousand values. */
#define MAX_TOKENS (1 << 20)

enum skip_kind {
	REFUSED,	/* the schema must not compile */
	DIFFERS,	/* it compiles; at least one test answers otherwise */
};

struct skip {
	const char *file;	/* relative to DIR */
	const char *group;	/* the group's description (every group so
				 * described: bignum.json repeats some) */
	enum skip_kind kind;
	const char *reason;
};

static const struct skip skips[] = {
	/* §10: "$ref to # JSON pointers within the file"; a remote $ref
	 * makes the file invalid. */
	{ "refRemote.json", "remote ref", REFUSED,
	    "remote $ref (http://localhost:1234/integer.json)" },
	{ "refRemote.json", "fragment within remote ref", REFUSED,
	    "remote $ref (http://localhost:1234/subSchemas.json)" },
	{ "refRemote.json", "ref within remote ref", REFUSED,
	    "remote $ref (http://localhost:1234/subSchemas.json)" },
	{ "refRemote.json", "base URI change", REFUSED,
	    "remote $ref (folderInteger.json under another base URI)" },
	{ "refRemote.json", "base URI change - change folder", REFUSED,
	    "remote $ref (folderInteger.json under another base URI)" },
	{ "refRemote.json", "base URI change - change folder in subschema",
	    REFUSED,
	    "remote $ref (folderInteger.json under another base URI)" },
	{ "refRemote.json", "root ref in remote ref", REFUSED,
	    "remote $ref (name.json)" },
	{ "ref.json", "remote ref, containing refs itself", REFUSED,
	    "remote $ref to the draft-07 meta-schema" },
	{ "definitions.json", "valid definition", REFUSED,
	    "remote $ref to the draft-07 meta-schema" },
	{ "definitions.json", "invalid definition", REFUSED,
	    "remote $ref to the draft-07 meta-schema" },
	/* §10: anything but the listed keywords and annotations makes the
	 * file invalid, also as a mere container of $ref targets. */
	{ "ref.json", "escaped pointer ref", REFUSED,
	    "unknown keywords (\"tilda~field\", \"slash/field\", "
	    "\"percent%field\") hold the $ref targets" },
	/* contentMediaType and contentEncoding are not in §10's list. */
	{ "optional/content.json",
	    "validation of string-encoded content based on media type",
	    REFUSED, "contentMediaType is not a §10 keyword" },
	{ "optional/content.json", "validation of binary string-encoding",
	    REFUSED, "contentEncoding is not a §10 keyword" },
	{ "optional/content.json",
	    "validation of binary-encoded media type documents", REFUSED,
	    "contentMediaType and contentEncoding are not §10 keywords" },
	/* The only test of this file checks the "regex" format, which §10
	 * does not assert (it is an annotation, any string passes). */
	{ "optional/ecmascript-regex.json", "ECMA 262 regex non-compliance",
	    DIFFERS, "format \"regex\" is an annotation in Bloodbank (§10)" },
};

#define NSKIPS (sizeof(skips) / sizeof(skips[0]))

struct counts {
	int passed, failed, skipped, total;
};

struct run {
	struct bb_jsonschema_work work;
	struct bb_buf schema, errors, text;
	bool skip_used[NSKIPS];
	char refusal[NSKIPS][256];	/* why a skipped schema was refused */
	int stale;		/* skip entries that are no longer true */
};

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1))) {
		if (fread(text, 1, (size_t)n, f) != (size_t)n) {
			free(text);
			text = NULL;
		} else
			*len = (size_t)n;
	}
	fclose(f);
	return text;
}

/* The unescaped string i of doc (or "" for anything else) in b. */
static const char *
string_of(const struct bb_json *doc, int i, struct bb_buf *b)
{
	bb_buf_reset(b);
	if (i >= 0 && bb_json_type(doc, i) == BB_JSON_STRING)
		bb_json_unescape(doc, i, b);
	bb_buf_putc(b, '\0');
	return b->data;
}

static int
find_skip(const char *file, const char *group)
{
	for (size_t k = 0; k < NSKIPS; k++) {
		if (strcmp(skips[k].file, file) == 0 &&
		    strcmp(skips[k].group, group) == 0)
			return (int)k;
	}
	return -1;
}

/* Checks the contract of an answer beyond valid/invalid: 0 leaves no
 * errors; n > 0 leaves min(n, MAX_ERRORS) well-formed entries. Returns a
 * complaint, or NULL. */
static const char *
check_errors(int n, const struct bb_buf *errors)
{
	struct bb_buf arr;
	struct bb_json doc;
	char err[128];
	const char *bad = NULL;
	int want = n < BB_JSONSCHEMA_MAX_ERRORS ? n : BB_JSONSCHEMA_MAX_ERRORS;

	if (n == 0)
		return errors->len ? "valid, yet errors reported" : NULL;
	bb_buf_init(&arr);
	bb_buf_putc(&arr, '[');
	bb_buf_append(&arr, errors->data, errors->len);
	bb_buf_putc(&arr, ']');
	if (bb_json_parse(&doc, arr.data, arr.len, err, sizeof(err)) !=
	    BB_JSON_OK)
		bad = "the errors are not a JSON array's inside";
	else if (bb_json_size(&doc, 0) != want)
		bad = "the number of errors reported is not min(n, MAX_ERRORS)";
	else {
		for (int e = 1; e < doc.ntok && !bad;
		    e = bb_json_next(&doc, e)) {
			if (bb_json_type(&doc, e) != BB_JSON_OBJECT ||
			    bb_json_size(&doc, e) != 3)
				bad = "an error is not {field,message,keyword}";
			else if (bb_json_get(&doc, e, "field") < 0 ||
			    bb_json_get(&doc, e, "message") < 0 ||
			    bb_json_get(&doc, e, "keyword") < 0)
				bad = "an error is not {field,message,keyword}";
		}
	}
	bb_json_free(&doc);
	bb_buf_free(&arr);
	return bad;
}

/* Runs one test of a group whose schema compiled; true when it passed. */
static bool
run_test(struct run *r, const char *file, const char *group,
    struct bb_jsonschema *s, const struct bb_json *doc, int t, bool report)
{
	int data = bb_json_get(doc, t, "data");
	int valid = bb_json_get(doc, t, "valid");
	bool want, got;
	const char *bad;
	int n;

	if (data < 0 || valid < 0 || bb_json_type(doc, valid) != BB_JSON_BOOL) {
		printf("FAIL %s: %s: a test without data or valid\n", file,
		    group);
		return false;
	}
	want = bb_json_raw(doc, valid, &(size_t){ 0 })[0] == 't';
	bb_buf_reset(&r->errors);
	n = bb_jsonschema_validate(s, doc, data, &r->work, &r->errors);
	got = n == 0;
	bad = check_errors(n, &r->errors);
	if (got == want && bad == NULL)
		return true;
	if (report) {
		const char *test = string_of(doc,
		    bb_json_get(doc, t, "description"), &r->text);

		printf("FAIL %s: %s: %s: ", file, group, test);
		if (bad)
			printf("%s: [%.*s]\n", bad, (int)r->errors.len,
			    r->errors.data ? r->errors.data : "");
		else
			printf("expected %s, got %s [%.*s]\n",
			    want ? "valid" : "invalid",
			    got ? "valid" : "invalid", (int)r->errors.len,
			    r->errors.data ? r->errors.data : "");
	}
	return false;
}

/* Runs group g of doc, adding its tests to c. */
static void
run_group(struct run *r, const char *file, const struct bb_json *doc, int g,
    struct counts *c)
{
	char group[512], err[256];
	int schema = bb_json_get(doc, g, "schema");
	int tests = bb_json_get(doc, g, "tests");
	int k, ntests = 0, npassed = 0;
	struct bb_jsonschema *s = NULL;

	snprintf(group, sizeof(group), "%s",
	    string_of(doc, bb_json_get(doc, g, "description"), &r->text));
	if (schema < 0 || tests < 0 ||
	    bb_json_type(doc, tests) != BB_JSON_ARRAY) {
		printf("FAIL %s: %s: a group without schema or tests\n", file,
		    group);
		c->failed++;
		c->total++;
		return;
	}
	ntests = bb_json_size(doc, tests);
	k = find_skip(file, group);
	bb_buf_reset(&r->schema);
	bb_json_write_value(&r->schema, doc, schema);
	s = bb_jsonschema_compile(r->schema.data, r->schema.len, err,
	    sizeof(err));
	if (s) {
		for (int t = tests + 1, i = 0; i < ntests; i++,
		    t = bb_json_next(doc, t))
			npassed += run_test(r, file, group, s, doc, t, k < 0);
	} else if (k < 0)
		printf("FAIL %s: %s: schema refused: %s\n", file, group, err);
	c->total += ntests;
	if (k < 0) {
		c->passed += npassed;
		c->failed += ntests - npassed;
	} else {
		r->skip_used[k] = true;
		c->skipped += ntests;
		if (!s)
			snprintf(r->refusal[k], sizeof(r->refusal[k]), "%s",
			    err);
		if (skips[k].kind == REFUSED && s) {
			printf("STALE %s: %s: on the skip list as refused "
			    "(%s), but it compiles (%d of %d tests pass)\n",
			    file, group, skips[k].reason, npassed, ntests);
			r->stale++;
		} else if (skips[k].kind == DIFFERS && !s) {
			printf("STALE %s: %s: on the skip list as differing "
			    "(%s), but it is refused: %s\n", file, group,
			    skips[k].reason, err);
			r->stale++;
		} else if (skips[k].kind == DIFFERS && npassed == ntests) {
			printf("STALE %s: %s: on the skip list (%s), but every "
			    "test passes\n", file, group, skips[k].reason);
			r->stale++;
		}
	}
	bb_jsonschema_free(s);
}

/* Runs DIR/file, printing its line; adds to total. */
static void
run_file(struct run *r, const char *dir, const char *file,
    struct counts *total)
{
	struct counts c = { 0, 0, 0, 0 };
	struct bb_json doc;
	char path[4096], err[256];
	size_t len = 0;
	char *text;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((text = read_file(path, &len)) == NULL) {
		printf("FAIL %s: cannot read %s\n", file, path);
		total->failed++;
		return;
	}
	if (bb_json_parse_limit(&doc, text, len, BB_JSON_MAX_DEPTH, MAX_TOKENS,
	    err, sizeof(err)) != BB_JSON_OK ||
	    bb_json_type(&doc, 0) != BB_JSON_ARRAY) {
		printf("FAIL %s: not parsed: %s\n", file, err);
		total->failed++;
	} else {
		for (int g = 1, i = 0, n = bb_json_size(&doc, 0); i < n; i++,
		    g = bb_json_next(&doc, g))
			run_group(r, file, &doc, g, &c);
		printf("%s: %d passed / %d total", file, c.passed, c.total);
		if (c.skipped)
			printf(", %d skipped", c.skipped);
		if (c.failed)
			printf(", %d FAILED", c.failed);
		putchar('\n');
	}
	bb_json_free(&doc);
	free(text);
	total->passed += c.passed;
	total->failed += c.failed;
	total->skipped += c.skipped;
	total->total += c.total;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
is_json(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

/* Runs every *.json file of DIR/sub (sub "" or ending in '/'), in name
 * order; in optional/format/ only those of asserted formats. */
static int
run_dir(struct run *r, const char *dir, const char *sub, bool formats,
    struct counts *total)
{
	char path[4096], file[1024];
	struct dirent **list;
	int n;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((n = scandir(path, &list, is_json, by_name)) < 0) {
		printf("FAIL %s: cannot list it\n", path);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		size_t stem = strlen(name) - 5;

		snprintf(file, sizeof(file), "%s%s", sub, name);
		if (formats && bb_format_lookup(name, stem) == BB_FORMAT_NONE)
			printf("%s: not run: format \"%.*s\" is an annotation "
			    "in Bloodbank (§10)\n", file, (int)stem, name);
		else
			run_file(r, dir, file, total);
		free(list[i]);
	}
	free(list);
	return 0;
}

static int
run_suite(const char *dir)
{
	struct counts total = { 0, 0, 0, 0 };
	struct run r;
	int bad = 0;

	memset(&r, 0, sizeof(r));
	bb_jsonschema_work_init(&r.work);
	bb_buf_init(&r.schema);
	bb_buf_init(&r.errors);
	bb_buf_init(&r.text);
	bad |= run_dir(&r, dir, "", false, &total);
	bad |= run_dir(&r, dir, "optional/", false, &total);
	bad |= run_dir(&r, dir, "optional/format/", true, &total);
	for (size_t k = 0; k < NSKIPS; k++) {
		if (!r.skip_used[k]) {
			printf("STALE %s: %s: on the skip list, but no such "
			    "group was run\n", skips[k].file, skips[k].group);
			r.stale++;
		}
	}
	for (size_t k = 0; k < NSKIPS; k++)
		printf("skipped %s: %s: %s%s%s%s\n", skips[k].file,
		    skips[k].group, skips[k].reason,
		    r.refusal[k][0] ? " (refused: " : "", r.refusal[k],
		    r.refusal[k][0] ? ")" : "");
	printf("JSON-Schema-Test-Suite %s: %d passed / %d total, %d skipped, "
	    "%d failed, %d stale skips: %s\n", dir, total.passed, total.total,
	    total.skipped, total.failed, r.stale,
	    total.failed || r.stale || bad ? "FAIL" : "ok");
	bb_jsonschema_work_free(&r.work);
	bb_buf_free(&r.schema);
	bb_buf_free(&r.errors);
	bb_buf_free(&r.text);
	return total.failed || r.stale || bad ? 1 : 0;
}

/* One case of --ndjson: line holds {"schema":...,"instance":...}. */
static void
run_case(const char *line, size_t len, struct bb_jsonschema_work *w,
    struct bb_buf *schema)
{
	struct bb_json doc;
	struct bb_jsonschema *s;
	char err[256];
	int sch, inst;

	if (bb_json_parse_limit(&doc, line, len, BB_JSON_MAX_DEPTH, MAX_TOKENS,
	    err, sizeof(err)) != BB_JSON_OK) {
		printf("error: line not parsed: %s\n", err);
	} else if (bb_json_type(&doc, 0) != BB_JSON_OBJECT ||
	    (sch = bb_json_get(&doc, 0, "schema")) < 0 ||
	    (inst = bb_json_get(&doc, 0, "instance")) < 0) {
		printf("error: a line must be {\"schema\",\"instance\"}\n");
	} else {
		bb_buf_reset(schema);
		bb_json_write_value(schema, &doc, sch);
		s = bb_jsonschema_compile(schema->data, schema->len, err,
		    sizeof(err));
		if (s == NULL)
			printf("refused: %s\n", err);
		else {
			printf(bb_jsonschema_validate(s, &doc, inst, w, NULL) ?
			    "invalid\n" : "valid\n");
			bb_jsonschema_free(s);
		}
	}
	bb_json_free(&doc);
}

static int
run_ndjson(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	struct bb_jsonschema_work w;
	struct bb_buf schema;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (f == NULL) {
		perror(path);
		return 1;
	}
	bb_jsonschema_work_init(&w);
	bb_buf_init(&schema);
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		run_case(line, (size_t)n, &w, &schema);
	}
	free(line);
	bb_buf_free(&schema);
	bb_jsonschema_work_free(&w);
	if (f != stdin)
		fclose(f);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--ndjson") == 0)
		return run_ndjson(argv[2]);
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: suite [DIR]\n"
		    "       suite --ndjson FILE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run_suite(argc == 2 ? argv[1] : DEFAULT_DIR);
}
