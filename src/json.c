#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
/* Without parent links jsmn finds the container a ']' closes, or the one a
 * ',' after an object member returns to, by looking back over every token
 * so far: quadratic time. With them a ',' is one step and a closer follows
 * the links up from the last token, as many steps as the depth, which
 * prescan() bounds. */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "xalloc.h"

/* jsmn's token, wrapped so that the header need not include jsmn.h. */
struct bb_json_token {
	jsmntok_t t;
};

#define TOK(doc, i) (&(doc)->tok[(i)].t)

/* walk() fails with WALK_INVALID for text that is not JSON, or with
 * WALK_REFUSED, having said why in the walker's err, for JSON that is not
 * I-JSON. */
enum { WALK_INVALID = -1, WALK_REFUSED = -2 };

/* A member name, unescaped into the walker's text. */
struct name {
	size_t off, len;	/* in walker.text */
	const char *s;		/* set only to sort: text moves as it grows */
};

struct walker {
	const struct bb_json *doc;
	char *err;
	size_t errlen;
	/* The names of the objects being walked, outermost first: an object
	 * pushes its names and pops them when it closes. */
	struct bb_buf text;
	struct name *names;
	int nnames;
};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long
hex4(const char *p)
{
	long v = 0;

	for (int k = 0; k < 4; k++) {
		int h = hexval(p[k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if malformed. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned long cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool
bb_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t k = 0; k < len;) {
		size_t n = utf8_seq(p + k, len - k);
		if (n == 0)
			return false;
		k += n;
	}
	return true;
}

/* RFC 8259 §7: escapes, no raw control characters, UTF-8 text, and \u
 * surrogates only as complete pairs. */
static bool
string_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t k = 0; k < len;) {
		if (p[k] < 0x20)
			return false;
		if (p[k] >= 0x80) {
			size_t n = utf8_seq(p + k, len - k);
			if (n == 0)
				return false;
			k += n;
			continue;
		}
		if (p[k] != '\\') {
			k++;
			continue;
		}
		if (k + 1 >= len)
			return false;
		if (strchr("\"\\/bfnrt", p[k + 1]) != NULL && p[k + 1] != '\0') {
			k += 2;
			continue;
		}
		if (p[k + 1] != 'u' || k + 6 > len)
			return false;
		long cp = hex4(s + k + 2);
		if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
			return false;
		k += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (k + 6 > len || p[k] != '\\' || p[k + 1] != 'u')
				return false;
			long lo = hex4(s + k + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return false;
			k += 6;
		}
	}
	return true;
}

/* RFC 8259 §6 and §3: a number, or one of the three literal names. */
static bool
primitive_valid(const char *s, size_t len)
{
	size_t k = 0;

	if ((len == 4 && memcmp(s, "true", 4) == 0) ||
	    (len == 5 && memcmp(s, "false", 5) == 0) ||
	    (len == 4 && memcmp(s, "null", 4) == 0))
		return true;
	if (k < len && s[k] == '-')
		k++;
	if (k < len && s[k] == '0')
		k++;
	else if (k < len && s[k] >= '1' && s[k] <= '9')
		while (k < len && s[k] >= '0' && s[k] <= '9')
			k++;
	else
		return false;
	if (k < len && s[k] == '.') {
		size_t d = ++k;
		while (k < len && s[k] >= '0' && s[k] <= '9')
			k++;
		if (k == d)
			return false;
	}
	if (k < len && (s[k] == 'e' || s[k] == 'E')) {
		k++;
		if (k < len && (s[k] == '+' || s[k] == '-'))
			k++;
		size_t d = k;
		while (k < len && s[k] >= '0' && s[k] <= '9')
			k++;
		if (k == d)
			return false;
	}
	return k == len;
}

/* RFC 7493 §2.2: an I-JSON number fits an IEEE 754 double, or consumers
 * would read different values (or an infinity) from the same event. s is a
 * valid primitive; a number's length is capped so that it can be copied to
 * the stack for strtod, which reads '.' as the decimal point since nothing
 * here calls setlocale. Returns false, saying why in err, to refuse it. */
static bool
primitive_ijson(const char *s, size_t len, char *err, size_t errlen)
{
	char tmp[BB_JSON_MAX_NUMBER + 1];

	if (strchr("tfn", s[0]) != NULL)
		return true;
	if (len > BB_JSON_MAX_NUMBER) {
		snprintf(err, errlen, "number literal longer than %d characters",
		    BB_JSON_MAX_NUMBER);
		return false;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (!isfinite(strtod(tmp, NULL))) {
		snprintf(err, errlen, "number %s does not fit an IEEE 754 double",
		    tmp);
		return false;
	}
	return true;
}

/* Token extents including a string's quotes. */
static size_t
outer_start(const struct bb_json *doc, int i)
{
	const jsmntok_t *t = TOK(doc, i);
	return (size_t)t->start - (t->type == JSMN_STRING);
}

static size_t
outer_end(const struct bb_json *doc, int i)
{
	const jsmntok_t *t = TOK(doc, i);
	return (size_t)t->end + (t->type == JSMN_STRING);
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* jsmn is lenient about what lies between tokens (it accepts "[1 2]" and
 * "{"a" 1}"), so the bytes between two tokens are checked here: only
 * whitespace around exactly one separator, or no separator at all. */
static bool
gap_valid(const struct bb_json *doc, size_t from, size_t to, char sep)
{
	bool seen = (sep == 0);

	if (from > to || to > doc->len)
		return false;
	for (size_t k = from; k < to; k++) {
		char c = doc->text[k];
		if (is_ws(c))
			continue;
		if (c != sep || seen)
			return false;
		seen = true;
	}
	return seen;
}

static int
name_cmp(const void *pa, const void *pb)
{
	const struct name *a = pa, *b = pb;
	size_t m = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->s, b->s, m);

	if (c != 0 || a->len == b->len)
		return c;
	return a->len < b->len ? -1 : 1;
}

static void
say_duplicate(struct walker *w, const struct name *nm)
{
	bool printable = nm->len <= 32;

	for (size_t k = 0; k < nm->len && printable; k++)
		printable = nm->s[k] >= 0x20 && nm->s[k] < 0x7f;
	if (printable)
		snprintf(w->err, w->errlen, "duplicate member name \"%.*s\"",
		    (int)nm->len, nm->s);
	else
		snprintf(w->err, w->errlen, "duplicate member name");
}

/* RFC 7493 §2.3: the names of an object are unique, compared after
 * unescaping ("a" and "\u0061" are one name), or consumers would each keep
 * a different one. The names pushed since base are sorted, n log n for n
 * members where comparing every pair would be quadratic. */
static bool
names_unique(struct walker *w, int base)
{
	struct name *v = w->names + base;
	size_t n = (size_t)(w->nnames - base);

	for (size_t k = 0; k < n; k++)
		v[k].s = w->text.data + v[k].off;
	qsort(v, n, sizeof(*v), name_cmp);
	for (size_t k = 1; k < n; k++) {
		if (name_cmp(&v[k - 1], &v[k]) == 0) {
			say_duplicate(w, &v[k]);
			return false;
		}
	}
	return true;
}

static void
push_name(struct walker *w, int key)
{
	struct name *nm = &w->names[w->nnames++];

	nm->off = w->text.len;
	bb_json_unescape(w->doc, key, &w->text);
	nm->len = w->text.len - nm->off;
}

static int walk(struct walker *w, int i);

/* Recursion is as deep as the nesting, which prescan() has bounded. */
static int
walk_container(struct walker *w, int i)
{
	const struct bb_json *doc = w->doc;
	const jsmntok_t *t = TOK(doc, i);
	bool object = (t->type == JSMN_OBJECT);
	size_t pos = (size_t)t->start + 1;
	int base = w->nnames;
	size_t text_base = w->text.len;
	int j = i + 1;

	for (int n = 0; n < t->size; n++) {
		if (j >= doc->ntok ||
		    !gap_valid(doc, pos, outer_start(doc, j), n ? ',' : 0))
			return WALK_INVALID;
		if (object) {
			const jsmntok_t *key = TOK(doc, j);
			if (key->type != JSMN_STRING || key->size != 1 ||
			    j + 1 >= doc->ntok ||
			    !string_valid(doc->text + key->start,
			    (size_t)(key->end - key->start)) ||
			    !gap_valid(doc, outer_end(doc, j),
			    outer_start(doc, j + 1), ':'))
				return WALK_INVALID;
			push_name(w, j);
			j++;
		}
		int next = walk(w, j);
		if (next < 0)
			return next;
		pos = outer_end(doc, j);
		j = next;
	}
	if ((size_t)t->end < 1 || doc->text[t->end - 1] != (object ? '}' : ']') ||
	    !gap_valid(doc, pos, (size_t)t->end - 1, 0))
		return WALK_INVALID;
	if (object && !names_unique(w, base))
		return WALK_REFUSED;
	w->nnames = base;	/* pops this object's names */
	w->text.len = text_base;
	return j;
}

/* Validates the value at i; returns the index after it. */
static int
walk(struct walker *w, int i)
{
	const jsmntok_t *t = TOK(w->doc, i);
	const char *s = w->doc->text + t->start;
	size_t len = (size_t)(t->end - t->start);

	if (t->start < 0 || t->end < t->start)
		return WALK_INVALID;
	switch (t->type) {
	case JSMN_OBJECT:
	case JSMN_ARRAY:
		return walk_container(w, i);
	case JSMN_STRING:
		if (t->size != 0 || !string_valid(s, len))
			return WALK_INVALID;
		return i + 1;
	case JSMN_PRIMITIVE:
		if (!primitive_valid(s, len))
			return WALK_INVALID;
		if (!primitive_ijson(s, len, w->err, w->errlen))
			return WALK_REFUSED;
		return i + 1;
	default:
		return WALK_INVALID;
	}
}

/* Validates the whole document; returns the index after the root. */
static int
walk_document(const struct bb_json *doc, char *err, size_t errlen)
{
	struct walker w = { doc, err, errlen, { NULL, 0, 0 }, NULL, 0 };
	int end;

	/* Every name is a token, so ntok bounds the names open at once. */
	w.names = bb_xcalloc((size_t)doc->ntok, sizeof(*w.names));
	/* Storage from the start: a name's text is never a null pointer. */
	bb_buf_append(&w.text, NULL, 0);
	end = walk(&w, 0);
	free(w.names);
	bb_buf_free(&w.text);
	return end;
}

/* Bounds the nesting depth in one pass over the text, before jsmn, whose
 * time on a closer grows with the depth. The text is split as strict jsmn
 * splits it, so that no bracket jsmn sees escapes the count: a string runs
 * to an unescaped quote, a primitive to whitespace, ',', ']' or '}' (a
 * quote or bracket inside one is part of it), and a NUL ends the text. An
 * unmatched closer is refused here: jsmn with parent links lets one pass
 * when a ':' has pointed it at a closed container, and a count gone below
 * zero would bound nothing. */
static enum bb_json_status
prescan(const char *s, size_t len, int max_depth)
{
	int depth = 0;

	for (size_t k = 0; k < len && s[k] != '\0'; k++) {
		switch (s[k]) {
		case '"':
			for (k++; k < len && s[k] != '\0' && s[k] != '"'; k++)
				k += (s[k] == '\\');
			break;
		case '[':
		case '{':
			if (++depth > max_depth)
				return BB_JSON_TOO_LARGE;
			break;
		case ']':
		case '}':
			if (--depth < 0)
				return BB_JSON_INVALID;
			break;
		default:
			if (strchr("-0123456789tfn", s[k]) == NULL)
				break;
			while (k + 1 < len &&
			    strchr(" \t\r\n,]}", s[k + 1]) == NULL)
				k++;
			break;
		}
	}
	return BB_JSON_OK;
}

/* jsmn in strict mode wants a delimiter after a primitive, so a document
 * that is only a number or a literal is checked here. Returns the result, or
 * -1 when the document is not a lone primitive. */
static int
parse_lone_primitive(struct bb_json *doc, char *err, size_t errlen)
{
	size_t a = 0, z = doc->len;

	while (a < z && is_ws(doc->text[a]))
		a++;
	while (z > a && is_ws(doc->text[z - 1]))
		z--;
	if (a == z || strchr("{[\"", doc->text[a]) != NULL)
		return -1;
	if (!primitive_valid(doc->text + a, z - a)) {
		snprintf(err, errlen, "malformed JSON");
		return BB_JSON_INVALID;
	}
	if (!primitive_ijson(doc->text + a, z - a, err, errlen))
		return BB_JSON_INVALID;
	doc->tok = bb_xcalloc(1, sizeof(*doc->tok));
	doc->tok[0].t.type = JSMN_PRIMITIVE;
	doc->tok[0].t.start = (int)a;
	doc->tok[0].t.end = (int)z;
	doc->ntok = 1;
	return BB_JSON_OK;
}

enum bb_json_status
bb_json_parse(struct bb_json *doc, const char *text, size_t len, char *err,
    size_t errlen)
{
	return bb_json_parse_limit(doc, text, len, BB_JSON_MAX_DEPTH,
	    BB_JSON_MAX_TOKENS, err, errlen);
}

enum bb_json_status
bb_json_parse_limit(struct bb_json *doc, const char *text, size_t len,
    int max_depth, int max_tokens, char *err, size_t errlen)
{
	jsmn_parser parser;
	int n;

	doc->text = text;
	doc->len = len;
	doc->tok = NULL;
	doc->ntok = 0;
	if (len > INT_MAX) {
		snprintf(err, errlen, "document too large");
		return BB_JSON_TOO_LARGE;
	}
	switch (prescan(text, len, max_depth)) {
	case BB_JSON_TOO_LARGE:
		snprintf(err, errlen, "nested deeper than %d levels", max_depth);
		return BB_JSON_TOO_LARGE;
	case BB_JSON_INVALID:
		snprintf(err, errlen, "malformed JSON: unmatched ']' or '}'");
		return BB_JSON_INVALID;
	case BB_JSON_OK:
		break;
	}
	if ((n = parse_lone_primitive(doc, err, errlen)) >= 0)
		return (enum bb_json_status)n;
	/* A first pass only counts tokens, so that the array is sized to the
	 * document and a flood of tokens is refused before allocating. */
	jsmn_init(&parser);
	n = jsmn_parse(&parser, text, len, NULL, 0);
	if (n > max_tokens) {
		snprintf(err, errlen, "more than %d JSON values", max_tokens);
		return BB_JSON_TOO_LARGE;
	}
	if (n <= 0) {
		snprintf(err, errlen, n == 0 ? "empty document" : "malformed JSON");
		return BB_JSON_INVALID;
	}
	doc->tok = calloc((size_t)n, sizeof(*doc->tok));
	if (doc->tok == NULL) {
		snprintf(err, errlen, "out of memory");
		return BB_JSON_TOO_LARGE;
	}
	jsmn_init(&parser);
	n = jsmn_parse(&parser, text, len, &doc->tok[0].t, (unsigned)n);
	if (n <= 0) {
		snprintf(err, errlen, "malformed JSON");
		return BB_JSON_INVALID;
	}
	doc->ntok = n;
	int end = walk_document(doc, err, errlen);
	if (end == WALK_REFUSED)
		return BB_JSON_INVALID;
	if (end != n || !gap_valid(doc, 0, outer_start(doc, 0), 0) ||
	    !gap_valid(doc, outer_end(doc, 0), len, 0)) {
		snprintf(err, errlen, bb_utf8_valid(text, len) ?
		    "malformed JSON" : "malformed JSON or invalid UTF-8");
		return BB_JSON_INVALID;
	}
	return BB_JSON_OK;
}

void
bb_json_free(struct bb_json *doc)
{
	free(doc->tok);
	doc->tok = NULL;
	doc->ntok = 0;
}

enum bb_json_type
bb_json_type(const struct bb_json *doc, int i)
{
	const jsmntok_t *t = TOK(doc, i);

	switch (t->type) {
	case JSMN_OBJECT:
		return BB_JSON_OBJECT;
	case JSMN_ARRAY:
		return BB_JSON_ARRAY;
	case JSMN_STRING:
		return BB_JSON_STRING;
	default:
		break;
	}
	switch (doc->text[t->start]) {
	case 't':
	case 'f':
		return BB_JSON_BOOL;
	case 'n':
		return BB_JSON_NULL;
	default:
		return BB_JSON_NUMBER;
	}
}

int
bb_json_size(const struct bb_json *doc, int i)
{
	return TOK(doc, i)->size;
}

int
bb_json_next(const struct bb_json *doc, int i)
{
	int end = TOK(doc, i)->end;
	int j = i + 1;

	/* Tokens are in document order: the subtree of i is every following
	 * token that starts before i ends. */
	while (j < doc->ntok && TOK(doc, j)->start < end)
		j++;
	return j;
}

const char *
bb_json_raw(const struct bb_json *doc, int i, size_t *len)
{
	const jsmntok_t *t = TOK(doc, i);

	*len = (size_t)(t->end - t->start);
	return doc->text + t->start;
}

/* Decodes the escape at s (which starts with a backslash) into a code
 * point; returns the number of bytes consumed. Input is already valid. */
static size_t
decode_escape(const char *s, unsigned long *cp)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";

	if (s[1] != 'u') {
		*cp = (unsigned char)to[strchr(from, s[1]) - from];
		return 2;
	}
	*cp = (unsigned long)hex4(s + 2);
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 6;
	/* RFC 8259 §7: a UTF-16 surrogate pair. */
	*cp = 0x10000 + ((*cp - 0xd800) << 10) +
	    ((unsigned long)hex4(s + 8) - 0xdc00);
	return 12;
}

/* Encodes code point cp as UTF-8 into u; returns its length. */
static size_t
utf8_encode(unsigned long cp, char u[4])
{
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return n;
}

static void
put_utf8(struct bb_buf *out, unsigned long cp)
{
	char u[4];

	bb_buf_append(out, u, utf8_encode(cp, u));
}

void
bb_json_unescape(const struct bb_json *doc, int i, struct bb_buf *out)
{
	size_t len;
	const char *s = bb_json_raw(doc, i, &len);
	size_t k = 0;

	while (k < len) {
		size_t run = k;
		while (run < len && s[run] != '\\')
			run++;
		bb_buf_append(out, s + k, run - k);
		k = run;
		if (k < len) {
			unsigned long cp;
			k += decode_escape(s + k, &cp);
			put_utf8(out, cp);
		}
	}
}

/* Unescapes as it compares, without allocating: callers compare every
 * member name of a body with a few field names. */
bool
bb_json_string_equals(const struct bb_json *doc, int i, const char *s)
{
	size_t len, n = strlen(s), at = 0, k = 0;
	const char *raw = bb_json_raw(doc, i, &len);

	if (TOK(doc, i)->type != JSMN_STRING)
		return false;
	while (k < len) {
		const char *esc = memchr(raw + k, '\\', len - k);
		size_t run = esc ? (size_t)(esc - raw) - k : len - k;
		if (at + run > n || memcmp(s + at, raw + k, run) != 0)
			return false;
		at += run;
		k += run;
		if (esc) {
			unsigned long cp;
			char u[4];
			k += decode_escape(raw + k, &cp);
			size_t m = utf8_encode(cp, u);
			if (at + m > n || memcmp(s + at, u, m) != 0)
				return false;
			at += m;
		}
	}
	return at == n;
}

int
bb_json_member(const struct bb_json *doc, int obj, int prev)
{
	int k = prev < 0 ? obj + 1 : bb_json_next(doc, prev + 1);

	if (TOK(doc, obj)->type != JSMN_OBJECT || k >= doc->ntok ||
	    TOK(doc, k)->start >= TOK(doc, obj)->end)
		return -1;
	return k;
}

int
bb_json_get(const struct bb_json *doc, int obj, const char *key)
{
	for (int k = bb_json_member(doc, obj, -1); k >= 0;
	    k = bb_json_member(doc, obj, k)) {
		if (bb_json_string_equals(doc, k, key))
			return k + 1;
	}
	return -1;
}

bool
bb_json_integer(const struct bb_json *doc, int i, long long *out)
{
	size_t len;
	const char *s = bb_json_raw(doc, i, &len);
	char tmp[32];
	char *end;

	if (bb_json_type(doc, i) != BB_JSON_NUMBER || len >= sizeof(tmp) ||
	    memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, 'E', len))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	*out = strtoll(tmp, &end, 10);
	return errno == 0 && *end == '\0';
}

void
bb_json_write_string(struct bb_buf *out, const char *s, size_t len)
{
	size_t k = 0;

	bb_buf_putc(out, '"');
	while (k < len) {
		size_t run = k;
		while (run < len && (unsigned char)s[run] >= 0x20 &&
		    s[run] != '"' && s[run] != '\\')
			run++;
		bb_buf_append(out, s + k, run - k);
		k = run;
		if (k == len)
			break;
		switch (s[k]) {
		case '"': bb_buf_puts(out, "\\\""); break;
		case '\\': bb_buf_puts(out, "\\\\"); break;
		case '\b': bb_buf_puts(out, "\\b"); break;
		case '\f': bb_buf_puts(out, "\\f"); break;
		case '\n': bb_buf_puts(out, "\\n"); break;
		case '\r': bb_buf_puts(out, "\\r"); break;
		case '\t': bb_buf_puts(out, "\\t"); break;
		default:
			bb_buf_printf(out, "\\u%04x", (unsigned char)s[k]);
			break;
		}
		k++;
	}
	bb_buf_putc(out, '"');
}

static void
write_string_token(struct bb_buf *out, const struct bb_json *doc, int i)
{
	size_t len;
	const char *raw = bb_json_raw(doc, i, &len);
	struct bb_buf tmp;

	bb_buf_init(&tmp);
	bb_json_unescape(doc, i, &tmp);
	bb_json_write_string(out, tmp.data ? tmp.data : raw, tmp.len);
	bb_buf_free(&tmp);
}

/* Writes value i; returns the index just past it, so that a container
 * steps to its next member without searching for the end of the last one
 * (which would cost the size of the value again at every level above). */
static int
write_value(struct bb_buf *out, const struct bb_json *doc, int i)
{
	const jsmntok_t *t = TOK(doc, i);
	size_t len;
	const char *raw;
	int j = i + 1;

	switch (t->type) {
	case JSMN_OBJECT:
	case JSMN_ARRAY:
		bb_buf_putc(out, t->type == JSMN_OBJECT ? '{' : '[');
		for (int n = 0; n < t->size; n++) {
			if (n)
				bb_buf_putc(out, ',');
			if (t->type == JSMN_OBJECT) {
				write_string_token(out, doc, j);
				bb_buf_putc(out, ':');
				j++;
			}
			j = write_value(out, doc, j);
		}
		bb_buf_putc(out, t->type == JSMN_OBJECT ? '}' : ']');
		return j;
	case JSMN_STRING:
		write_string_token(out, doc, i);
		return j;
	default:
		raw = bb_json_raw(doc, i, &len);
		bb_buf_append(out, raw, len);
		return j;
	}
}

void
bb_json_write_value(struct bb_buf *out, const struct bb_json *doc, int i)
{
	write_value(out, doc, i);
}
