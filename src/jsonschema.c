#include "jsonschema.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "format.h"
#include "regex.h"
#include "xalloc.h"

/* A same-instance path ($ref, allOf, not, if, ...) longer than this is
 * refused at compile time: validation recurses along it without going
 * deeper into the value, and the worker's stack is finite. */
#define MAX_CHAIN 512
/* Such paths at every level of a deep value add up, though (512 at each
 * of 62 levels overflowed 8 MB of stack in an ASan build), so a
 * validation also stops, failing the value as the cost bound does, when
 * subschemas nest deeper than this. Each level takes up to three C
 * frames (check, check_applicators, check_quietly): 4096 of them stay
 * under 1 MB of stack (-O2), 2 MB with ASan, of the usual 8. */
#define MAX_NEST 4096
/* Node visits (and element comparisons) one validation may make, per
 * token of the value per token of the schema: the bound that keeps a $ref
 * graph that shares subschemas from taking exponential time. Tokens of the
 * schema, not nodes: an enum, const or required of n values costs up to n
 * comparisons at one node. */
#define COST_PER_PAIR 4
/* A list of node or token indexes in s->list: [first, first + n). */
struct range {
	int first, n;
};

enum {
	T_NULL = 1 << 0,
	T_BOOLEAN = 1 << 1,
	T_OBJECT = 1 << 2,
	T_ARRAY = 1 << 3,
	T_NUMBER = 1 << 4,
	T_STRING = 1 << 5,
	T_INTEGER = 1 << 6,
};

/* A bound given by a number keyword: its value and its token, whose text
 * the error message quotes. */
struct bound {
	int tok;		/* -1: absent */
	double v;
};

/* One schema or subschema, compiled. Indexes name other nodes (-1:
 * absent), tokens of the schema's document, or entries of s->list. */
struct node {
	int tok;		/* where it is in the document */
	int pointer;		/* its JSON pointer, at s->names + pointer */
	int base;		/* its base URI ($id), at s->names + base */
	signed char boolean;	/* a boolean schema: 0 or 1; else -1 */
	int ref;		/* $ref: the node it names; siblings ignored */
	int ref_tok;
	unsigned types;		/* T_*; 0: no type keyword */
	int enum_tok, const_tok;
	struct bound multiple_of, maximum, exclusive_maximum, minimum,
	    exclusive_minimum;
	uint64_t multiple_digits;	/* multipleOf as an exact decimal, */
	long multiple_exp;		/* digits times ten to the exp, */
	bool multiple_exact;		/* when it has at most 18 digits */
	long long max_length, min_length, max_items, min_items,
	    max_properties, min_properties;	/* -1: absent */
	int pattern;		/* in s->patterns */
	enum bb_format format;
	bool unique_items;
	int items;		/* a schema for every element */
	bool tuple_form;	/* items is an array of schemas: */
	struct range tuple;	/* the schemas of the first elements */
	int additional_items, contains;
	int required_tok;
	bool plain_names;	/* no escape in a name of properties,
				 * required or dependencies */
	struct range properties;	/* pairs: name token, node */
	struct range pattern_properties;	/* pairs: pattern, node */
	int additional_properties;
	struct range dependencies;	/* pairs: name token, node or
					 * -2 - the array token of names */
	int property_names;
	int if_, then_, else_, not_;
	struct range all_of, any_of, one_of;
};

struct pattern {
	struct bb_regex *re;
	int tok;
};

/* An $id: its URI, resolved against its parent's base, and its node. */
struct id {
	int uri;		/* at s->names + uri */
	int tok;
};

struct bb_jsonschema {
	char *text;		/* the document, compact */
	size_t len;
	struct bb_json doc;	/* of text */
	struct node *nodes;
	int nnodes, nodes_cap;
	int *list;
	int nlist, list_cap;
	struct pattern *patterns;
	int npatterns, patterns_cap;
	struct id *ids;
	int nids, ids_cap;
	struct bb_buf names;	/* pointers and URIs, NUL-terminated */
	int *node_of;		/* token -> its node, or -1 */
	char *title, *description;
};

struct bb_jsonschema_item {
	uint64_t hash;
	int tok;
};

struct bb_jsonschema_memo {
	uint64_t key;		/* node << 32 | token */
	unsigned gen;		/* the validation that wrote it */
	bool ok;
	bool reported;		/* its failures were reported */
};

/* ------------------------------------------------------------ compiling */

struct compiler {
	struct bb_jsonschema *s;
	char *err;
	size_t errlen;
	bool failed;
	struct bb_buf ptr;	/* the JSON pointer being compiled */
};

static void
refuse(struct compiler *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
refuse(struct compiler *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return;
	c->failed = true;
	n = snprintf(c->err, c->errlen, "%.*s: ", (int)c->ptr.len,
	    c->ptr.data ? c->ptr.data : "");
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
add_name(struct bb_jsonschema *s, const char *p, size_t len)
{
	int at = (int)s->names.len;

	bb_buf_append(&s->names, p, len);
	bb_buf_putc(&s->names, '\0');
	return at;
}

static const char *
name_at(const struct bb_jsonschema *s, int at)
{
	return s->names.data + at;
}

/* Appends "/<token>" to the pointer, escaped as RFC 6901 §3 says. */
static size_t
push_ptr(struct compiler *c, const char *seg, size_t len)
{
	size_t mark = c->ptr.len;

	bb_buf_putc(&c->ptr, '/');
	for (size_t k = 0; k < len; k++) {
		if (seg[k] == '~')
			bb_buf_puts(&c->ptr, "~0");
		else if (seg[k] == '/')
			bb_buf_puts(&c->ptr, "~1");
		else
			bb_buf_putc(&c->ptr, seg[k]);
	}
	return mark;
}

static size_t
push_member(struct compiler *c, int name)
{
	struct bb_buf b;
	size_t mark;

	bb_buf_init(&b);
	bb_json_unescape(&c->s->doc, name, &b);
	mark = push_ptr(c, b.data ? b.data : "", b.len);
	bb_buf_free(&b);
	return mark;
}

static size_t
push_index(struct compiler *c, int k)
{
	char n[16];

	return push_ptr(c, n, (size_t)snprintf(n, sizeof(n), "%d", k));
}

static void
pop_ptr(struct compiler *c, size_t mark)
{
	c->ptr.len = mark;
}

static int
reserve_list(struct bb_jsonschema *s, int n)
{
	int first = s->nlist;

	if (s->nlist + n > s->list_cap) {
		s->list_cap = (s->nlist + n) * 2;
		s->list = bb_xreallocarray(s->list, (size_t)s->list_cap,
		    sizeof(*s->list));
	}
	for (int k = 0; k < n; k++)
		s->list[first + k] = -1;
	s->nlist += n;
	return first;
}

static int compile_at(struct compiler *c, int tok, int base);

#define NODE(c, n) (&(c)->s->nodes[(n)])

static int
sub(struct compiler *c, int tok, int base, const char *kw)
{
	size_t mark = push_ptr(c, kw, strlen(kw));
	int n = compile_at(c, tok, base);

	pop_ptr(c, mark);
	return n;
}

/* A non-empty array of schemas (allOf, anyOf, oneOf, items). */
static struct range
schema_array(struct compiler *c, int tok, int base, const char *kw,
    bool empty_ok)
{
	const struct bb_json *d = &c->s->doc;
	struct range r = { 0, 0 };
	size_t mark = push_ptr(c, kw, strlen(kw));
	int k = 0;

	if (bb_json_type(d, tok) != BB_JSON_ARRAY ||
	    (!empty_ok && bb_json_size(d, tok) == 0)) {
		refuse(c, "must be a non-empty array of schemas");
		pop_ptr(c, mark);
		return r;
	}
	r.n = bb_json_size(d, tok);
	r.first = reserve_list(c->s, r.n);
	for (int e = tok + 1; k < r.n; e = bb_json_next(d, e), k++) {
		size_t m2 = push_index(c, k);
		int n = compile_at(c, e, base);
		pop_ptr(c, m2);
		c->s->list[r.first + k] = n;
	}
	pop_ptr(c, mark);
	return r;
}

/* An object whose members' values are schemas (properties, definitions,
 * dependencies in its schema form): pairs of name token and node. With
 * patterns, the names are compiled as regular expressions. */
static struct range schema_members(struct compiler *c, int tok, int base,
    const char *kw, bool patterns);

/* A number literal read exactly, as the decimal it is: digits[0..n) (no
 * leading or trailing zeros; n = 0 for zero) times ten to the exp. JSON
 * numbers are decimal, so multipleOf is decided on them rather than on
 * the nearest doubles: 0.3 is a multiple of 0.1, 12391239123 one of 1e-8,
 * and 1e308 none of 0.123456789. */
struct decimal {
	char digits[BB_JSON_MAX_NUMBER];
	int n;
	long exp;
};

/* Exponents are read up to this size: beyond it a literal's value is 0 or
 * infinite as a double, which json.c and number_bound refuse or which is
 * no multiple of anything but 1eN alike. */
#define DECIMAL_EXP_MAX 1000000

static void
decimal_read(const char *s, size_t len, struct decimal *d)
{
	size_t k = 0;
	long frac = 0, e = 0;
	bool in_frac = false, negative = false;

	d->n = 0;
	if (k < len && s[k] == '-')
		k++;
	for (; k < len && ((s[k] >= '0' && s[k] <= '9') || s[k] == '.'); k++) {
		if (s[k] == '.') {
			in_frac = true;
			continue;
		}
		frac += in_frac;
		if ((d->n > 0 || s[k] != '0') &&
		    d->n < (int)sizeof(d->digits))
			d->digits[d->n++] = s[k];
	}
	if (k < len && (s[k] == 'e' || s[k] == 'E')) {
		k++;
		if (k < len && (s[k] == '-' || s[k] == '+'))
			negative = s[k++] == '-';
		for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
			if (e < DECIMAL_EXP_MAX)
				e = e * 10 + (s[k] - '0');
		}
	}
	d->exp = (negative ? -e : e) - frac;
	while (d->n > 0 && d->digits[d->n - 1] == '0') {
		d->n--;
		d->exp++;
	}
}

static bool
number_bound(struct compiler *c, int tok, const char *kw, struct bound *b,
    bool positive)
{
	size_t len;
	const char *raw = bb_json_raw(&c->s->doc, tok, &len);
	char tmp[BB_JSON_MAX_NUMBER + 1];

	if (bb_json_type(&c->s->doc, tok) != BB_JSON_NUMBER ||
	    len >= sizeof(tmp)) {
		size_t mark = push_ptr(c, kw, strlen(kw));
		refuse(c, "must be a number");
		pop_ptr(c, mark);
		return false;
	}
	memcpy(tmp, raw, len);
	tmp[len] = '\0';
	b->tok = tok;
	b->v = strtod(tmp, NULL);
	if (positive && !(b->v > 0)) {
		size_t mark = push_ptr(c, kw, strlen(kw));
		refuse(c, "must be greater than 0");
		pop_ptr(c, mark);
		return false;
	}
	return true;
}

/* multipleOf: its value as a double, and as an exact decimal when its
 * digits fit in 64 bits (18 of them: any multipleOf anyone writes). */
static void
multiple_bound(struct compiler *c, int n, int tok)
{
	struct node *nd = NODE(c, n);
	struct decimal m;
	size_t len;
	const char *raw;

	if (!number_bound(c, tok, "multipleOf", &nd->multiple_of, true))
		return;
	raw = bb_json_raw(&c->s->doc, tok, &len);
	decimal_read(raw, len, &m);
	nd->multiple_exact = m.n > 0 && m.n <= 18;
	nd->multiple_digits = 0;
	for (int k = 0; k < m.n && nd->multiple_exact; k++)
		nd->multiple_digits = nd->multiple_digits * 10 +
		    (uint64_t)(m.digits[k] - '0');
	nd->multiple_exp = m.exp;
}

/* A non-negative integer keyword (maxLength, minItems, ...); draft-07
 * allows a number with a zero fraction, such as 2.0. */
static long long
count(struct compiler *c, int tok, const char *kw)
{
	struct bound b;

	if (!number_bound(c, tok, kw, &b, false))
		return -1;
	if (b.v < 0 || b.v != floor(b.v) || b.v > 9.0e15) {
		size_t mark = push_ptr(c, kw, strlen(kw));
		refuse(c, "must be a non-negative integer");
		pop_ptr(c, mark);
		return -1;
	}
	return (long long)b.v;
}

static unsigned
type_bit(const struct bb_json *d, int tok)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "null", T_NULL }, { "boolean", T_BOOLEAN },
		{ "object", T_OBJECT }, { "array", T_ARRAY },
		{ "number", T_NUMBER }, { "string", T_STRING },
		{ "integer", T_INTEGER },
	};

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (bb_json_string_equals(d, tok, names[k].name))
			return names[k].bit;
	}
	return 0;
}

static unsigned
types(struct compiler *c, int tok)
{
	const struct bb_json *d = &c->s->doc;
	unsigned bits = 0, bit;
	size_t mark = push_ptr(c, "type", 4);

	if (bb_json_type(d, tok) == BB_JSON_STRING) {
		bits = type_bit(d, tok);
	} else if (bb_json_type(d, tok) == BB_JSON_ARRAY) {
		int e = tok + 1;
		for (int k = 0; k < bb_json_size(d, tok); k++, e++) {
			bit = type_bit(d, e);
			if (bit == 0 || (bits & bit)) {
				bits = 0;
				break;
			}
			bits |= bit;
		}
	}
	if (bits == 0)
		refuse(c, "must be a type name or an array of distinct ones");
	pop_ptr(c, mark);
	return bits;
}

/* Compiles string tok, the value of keyword kw (NULL: the pointer names
 * it already, as for a member name of patternProperties). */
static int
compile_pattern(struct compiler *c, int tok, const char *kw)
{
	struct bb_jsonschema *s = c->s;
	struct bb_buf src;
	struct bb_regex *re;
	char why[256];
	size_t mark = kw ? push_ptr(c, kw, strlen(kw)) : c->ptr.len;

	if (bb_json_type(&s->doc, tok) != BB_JSON_STRING) {
		refuse(c, "must be a string");
		pop_ptr(c, mark);
		return -1;
	}
	bb_buf_init(&src);
	bb_json_unescape(&s->doc, tok, &src);
	re = bb_regex_compile(src.data ? src.data : "", src.len, why,
	    sizeof(why));
	bb_buf_free(&src);
	if (re == NULL)
		refuse(c, "the pattern does not compile: %s", why);
	pop_ptr(c, mark);
	if (re == NULL)
		return -1;
	if (s->npatterns == s->patterns_cap) {
		s->patterns_cap = s->patterns_cap ? s->patterns_cap * 2 : 8;
		s->patterns = bb_xreallocarray(s->patterns,
		    (size_t)s->patterns_cap, sizeof(*s->patterns));
	}
	s->patterns[s->npatterns].re = re;
	s->patterns[s->npatterns].tok = tok;
	return s->npatterns++;
}

static struct range
schema_members(struct compiler *c, int tok, int base, const char *kw,
    bool patterns)
{
	const struct bb_json *d = &c->s->doc;
	struct range r = { 0, 0 };
	size_t mark = push_ptr(c, kw, strlen(kw));
	int k = 0;

	if (bb_json_type(d, tok) != BB_JSON_OBJECT) {
		refuse(c, "must be an object of schemas");
		pop_ptr(c, mark);
		return r;
	}
	r.n = bb_json_size(d, tok);
	r.first = reserve_list(c->s, 2 * r.n);
	for (int m = bb_json_member(d, tok, -1); m >= 0;
	    m = bb_json_member(d, tok, m), k++) {
		int key = m;
		size_t m2 = push_member(c, m);
		if (patterns)
			key = compile_pattern(c, m, NULL);
		int n = compile_at(c, m + 1, base);
		pop_ptr(c, m2);
		c->s->list[r.first + 2 * k] = key;
		c->s->list[r.first + 2 * k + 1] = n;
	}
	pop_ptr(c, mark);
	return r;
}

static bool
strings(const struct bb_json *d, int tok)
{
	bool ok = bb_json_type(d, tok) == BB_JSON_ARRAY;

	for (int e = tok + 1, k = 0; ok && k < bb_json_size(d, tok); k++, e++)
		ok = bb_json_type(d, e) == BB_JSON_STRING;
	return ok;
}

static struct range
dependencies(struct compiler *c, int tok, int base)
{
	const struct bb_json *d = &c->s->doc;
	struct range r = { 0, 0 };
	size_t mark = push_ptr(c, "dependencies", 12);
	int k = 0;

	if (bb_json_type(d, tok) != BB_JSON_OBJECT) {
		refuse(c, "must be an object");
		pop_ptr(c, mark);
		return r;
	}
	r.n = bb_json_size(d, tok);
	r.first = reserve_list(c->s, 2 * r.n);
	for (int m = bb_json_member(d, tok, -1); m >= 0;
	    m = bb_json_member(d, tok, m), k++) {
		int v = m + 1, n;
		size_t m2 = push_member(c, m);
		if (bb_json_type(d, v) == BB_JSON_ARRAY) {
			if (!strings(d, v))
				refuse(c, "must be a schema or an array of "
				    "strings");
			n = -2 - v;
		} else {
			n = compile_at(c, v, base);
		}
		pop_ptr(c, m2);
		c->s->list[r.first + 2 * k] = m;
		c->s->list[r.first + 2 * k + 1] = n;
	}
	pop_ptr(c, mark);
	return r;
}

/* ------------------------------------------------------------ $id, $ref */

/* The length of the scheme of an absolute URI ("http" of "http://x"), or
 * 0 (RFC 3986 §3.1). */
static size_t
scheme_len(const char *u)
{
	size_t k = 0;

	if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
		return 0;
	while (u[k] && u[k] != ':' && u[k] != '/' && u[k] != '?' &&
	    u[k] != '#')
		k++;
	return u[k] == ':' ? k : 0;
}

/* Resolves reference r against base (RFC 3986 §5.2.2, without removing
 * dot segments: the $ids this is for name their documents plainly). */
static void
resolve_uri(const char *base, const char *r, struct bb_buf *out)
{
	size_t sl = scheme_len(base), keep;
	const char *path, *hash = strchr(base, '#');
	size_t blen = hash ? (size_t)(hash - base) : strlen(base);

	bb_buf_reset(out);
	if (scheme_len(r) || blen == 0) {
		bb_buf_puts(out, r);
		return;
	}
	if (r[0] == '#') {
		keep = blen;
	} else if (r[0] == '/' && r[1] == '/') {
		keep = sl + 1;
	} else if (r[0] == '/') {
		path = base + sl + 1;
		if (path[0] == '/' && path[1] == '/') {
			const char *end = strchr(path + 2, '/');
			keep = end ? (size_t)(end - base) : blen;
		} else {
			keep = sl + 1;
		}
	} else {
		keep = blen;
		while (keep > 0 && base[keep - 1] != '/')
			keep--;
		if (keep <= sl + 3)	/* "http://host": the path is "/" */
			keep = 0;
	}
	if (keep == 0) {
		bb_buf_append(out, base, blen);
		bb_buf_putc(out, '/');
	} else {
		bb_buf_append(out, base, keep);
	}
	bb_buf_puts(out, r);
}

/* Follows a JSON pointer (RFC 6901), given as a URI fragment (§6: percent-
 * encoded), from token from. Returns the token, or -1. */
static int
follow_pointer(const struct bb_json *d, int from, const char *p)
{
	struct bb_buf seg;
	int at = from;

	bb_buf_init(&seg);
	while (*p == '/' && at >= 0) {
		bb_buf_reset(&seg);
		for (p++; *p && *p != '/'; p++) {
			char ch = *p;
			if (ch == '%' && isxdigit((unsigned char)p[1]) &&
			    isxdigit((unsigned char)p[2])) {
				ch = (char)(OPENSSL_hexchar2int(
				    (unsigned char)p[1]) * 16 +
				    OPENSSL_hexchar2int((unsigned char)p[2]));
				p += 2;
			}
			if (ch == '~' && (p[1] == '0' || p[1] == '1')) {
				ch = p[1] == '0' ? '~' : '/';
				p++;
			}
			bb_buf_putc(&seg, ch);
		}
		bb_buf_putc(&seg, '\0');
		if (bb_json_type(d, at) == BB_JSON_OBJECT) {
			at = bb_json_get(d, at, seg.data);
		} else if (bb_json_type(d, at) == BB_JSON_ARRAY) {
			char *end;
			long k = strtol(seg.data, &end, 10);
			if (*end || end == seg.data || k < 0 ||
			    k >= bb_json_size(d, at) ||
			    (seg.data[0] == '0' && seg.data[1])) {
				at = -1;
			} else {
				at++;
				while (k-- > 0)
					at = bb_json_next(d, at);
			}
		} else {
			at = -1;
		}
	}
	bb_buf_free(&seg);
	return *p == '\0' ? at : -1;
}

/* The token a $ref names, or -1 with the reason said. A fragment that is
 * a pointer is followed from the schema that set the base URI: the root,
 * or the nearest subschema with an $id; any other fragment must be the
 * plain-name $id of a subschema. */
static int
ref_target(struct compiler *c, int n)
{
	struct bb_jsonschema *s = c->s;
	struct bb_buf ref, uri;
	const char *base = name_at(s, NODE(c, n)->base), *frag;
	int from = -1, target = -1;

	bb_buf_init(&ref);
	bb_buf_init(&uri);
	bb_json_unescape(&s->doc, NODE(c, n)->ref_tok, &ref);
	bb_buf_putc(&ref, '\0');
	resolve_uri(base, ref.data, &uri);
	bb_buf_putc(&uri, '\0');
	frag = strchr(uri.data, '#');
	if (frag && frag[1] != '\0' && frag[1] != '/') {
		/* a plain name: the $id "#name" of a subschema (draft-07
		 * §8.2.3, location-independent identifiers) */
		for (int k = 0; k < s->nids && target < 0; k++) {
			if (strcmp(name_at(s, s->ids[k].uri), uri.data) == 0)
				target = s->ids[k].tok;
		}
		if (target < 0)
			refuse(c, "\"%s\" names no $id in this document",
			    ref.data);
		bb_buf_free(&ref);
		bb_buf_free(&uri);
		return target;
	}
	for (int k = 0; k < s->nids; k++) {
		const char *id = name_at(s, s->ids[k].uri);
		size_t len = frag ? (size_t)(frag - uri.data) : strlen(uri.data);
		if (strncmp(id, uri.data, len) == 0 &&
		    (id[len] == '\0' || (id[len] == '#' && id[len + 1] == '\0')))
			from = s->ids[k].tok;
	}
	if (from < 0 && (frag == uri.data || scheme_len(ref.data) == 0) &&
	    strncmp(uri.data, name_at(s, s->nodes[0].base),
	    frag ? (size_t)(frag - uri.data) : uri.len) == 0)
		from = 0;
	if (from < 0)
		refuse(c, "\"%s\" is not in this document: only references "
		    "within the file are allowed", ref.data);
	else if ((target = follow_pointer(&s->doc, from, frag ? frag + 1 : ""))
	    < 0)
		refuse(c, "\"%s\" names nothing in this document", ref.data);
	bb_buf_free(&ref);
	bb_buf_free(&uri);
	return target;
}

/* ------------------------------------------------------------ keywords */

static int
new_node(struct compiler *c, int tok, int base)
{
	struct bb_jsonschema *s = c->s;
	struct node *n;

	if (s->nnodes == s->nodes_cap) {
		s->nodes_cap = s->nodes_cap ? s->nodes_cap * 2 : 16;
		s->nodes = bb_xreallocarray(s->nodes, (size_t)s->nodes_cap,
		    sizeof(*s->nodes));
	}
	n = &s->nodes[s->nnodes];
	memset(n, 0, sizeof(*n));
	n->tok = tok;
	n->pointer = add_name(s, c->ptr.data ? c->ptr.data : "", c->ptr.len);
	n->base = base;
	n->boolean = -1;
	n->ref = n->ref_tok = -1;
	n->enum_tok = n->const_tok = n->required_tok = -1;
	n->multiple_of.tok = n->maximum.tok = n->exclusive_maximum.tok = -1;
	n->minimum.tok = n->exclusive_minimum.tok = -1;
	n->max_length = n->min_length = n->max_items = n->min_items = -1;
	n->max_properties = n->min_properties = -1;
	n->pattern = -1;
	n->items = n->additional_items = n->contains = -1;
	n->additional_properties = n->property_names = -1;
	n->if_ = n->then_ = n->else_ = n->not_ = -1;
	s->node_of[tok] = s->nnodes;
	return s->nnodes++;
}

/* Keywords that only annotate (draft-07 §10, and $id, $schema, which
 * compile_at reads itself): accepted, never checked. */
static const char *const annotations[] = {
	"title", "description", "default", "examples", "$comment", "readOnly",
	"writeOnly", "$id", "$schema", NULL
};

/* Compiles member m (name token; its value is m + 1) of object schema n. */
static void
keyword(struct compiler *c, int n, int m, int base)
{
	const struct bb_json *d = &c->s->doc;
	int v = m + 1;
	size_t mark;

#define IS(name) bb_json_string_equals(d, m, name)
#define SUB(name) sub(c, v, base, name)
	if (IS("$ref")) {
		if (bb_json_type(d, v) != BB_JSON_STRING) {
			mark = push_ptr(c, "$ref", 4);
			refuse(c, "must be a string");
			pop_ptr(c, mark);
		}
		NODE(c, n)->ref_tok = v;
	} else if (IS("type")) {
		NODE(c, n)->types = types(c, v);
	} else if (IS("enum")) {
		if (bb_json_type(d, v) != BB_JSON_ARRAY) {
			mark = push_ptr(c, "enum", 4);
			refuse(c, "must be an array");
			pop_ptr(c, mark);
		}
		NODE(c, n)->enum_tok = v;
	} else if (IS("const")) {
		NODE(c, n)->const_tok = v;
	} else if (IS("multipleOf")) {
		multiple_bound(c, n, v);
	} else if (IS("maximum")) {
		number_bound(c, v, "maximum", &NODE(c, n)->maximum, false);
	} else if (IS("exclusiveMaximum")) {
		number_bound(c, v, "exclusiveMaximum",
		    &NODE(c, n)->exclusive_maximum, false);
	} else if (IS("minimum")) {
		number_bound(c, v, "minimum", &NODE(c, n)->minimum, false);
	} else if (IS("exclusiveMinimum")) {
		number_bound(c, v, "exclusiveMinimum",
		    &NODE(c, n)->exclusive_minimum, false);
	} else if (IS("maxLength")) {
		NODE(c, n)->max_length = count(c, v, "maxLength");
	} else if (IS("minLength")) {
		NODE(c, n)->min_length = count(c, v, "minLength");
	} else if (IS("pattern")) {
		NODE(c, n)->pattern = compile_pattern(c, v, "pattern");
	} else if (IS("format")) {
		size_t len;
		const char *raw = bb_json_raw(d, v, &len);
		if (bb_json_type(d, v) != BB_JSON_STRING) {
			mark = push_ptr(c, "format", 6);
			refuse(c, "must be a string");
			pop_ptr(c, mark);
		} else {
			NODE(c, n)->format = bb_format_lookup(raw, len);
		}
	} else if (IS("items")) {
		if (bb_json_type(d, v) == BB_JSON_ARRAY) {
			struct range r = schema_array(c, v, base, "items", true);
			NODE(c, n)->tuple = r;
			NODE(c, n)->tuple_form = true;
		} else {
			int k = SUB("items");
			NODE(c, n)->items = k;
		}
	} else if (IS("additionalItems")) {
		int k = SUB("additionalItems");
		NODE(c, n)->additional_items = k;
	} else if (IS("maxItems")) {
		NODE(c, n)->max_items = count(c, v, "maxItems");
	} else if (IS("minItems")) {
		NODE(c, n)->min_items = count(c, v, "minItems");
	} else if (IS("uniqueItems")) {
		if (bb_json_type(d, v) != BB_JSON_BOOL) {
			mark = push_ptr(c, "uniqueItems", 11);
			refuse(c, "must be true or false");
			pop_ptr(c, mark);
		}
		NODE(c, n)->unique_items = bb_json_type(d, v) == BB_JSON_BOOL &&
		    *bb_json_raw(d, v, &(size_t){ 0 }) == 't';
	} else if (IS("contains")) {
		int k = SUB("contains");
		NODE(c, n)->contains = k;
	} else if (IS("maxProperties")) {
		NODE(c, n)->max_properties = count(c, v, "maxProperties");
	} else if (IS("minProperties")) {
		NODE(c, n)->min_properties = count(c, v, "minProperties");
	} else if (IS("required")) {
		if (!strings(d, v)) {
			mark = push_ptr(c, "required", 8);
			refuse(c, "must be an array of strings");
			pop_ptr(c, mark);
		}
		NODE(c, n)->required_tok = v;
	} else if (IS("properties")) {
		struct range r = schema_members(c, v, base, "properties", false);
		NODE(c, n)->properties = r;
	} else if (IS("patternProperties")) {
		struct range r = schema_members(c, v, base,
		    "patternProperties", true);
		NODE(c, n)->pattern_properties = r;
	} else if (IS("additionalProperties")) {
		int k = SUB("additionalProperties");
		NODE(c, n)->additional_properties = k;
	} else if (IS("dependencies")) {
		struct range r = dependencies(c, v, base);
		NODE(c, n)->dependencies = r;
	} else if (IS("propertyNames")) {
		int k = SUB("propertyNames");
		NODE(c, n)->property_names = k;
	} else if (IS("if")) {
		int k = SUB("if");
		NODE(c, n)->if_ = k;
	} else if (IS("then")) {
		int k = SUB("then");
		NODE(c, n)->then_ = k;
	} else if (IS("else")) {
		int k = SUB("else");
		NODE(c, n)->else_ = k;
	} else if (IS("allOf")) {
		struct range r = schema_array(c, v, base, "allOf", false);
		NODE(c, n)->all_of = r;
	} else if (IS("anyOf")) {
		struct range r = schema_array(c, v, base, "anyOf", false);
		NODE(c, n)->any_of = r;
	} else if (IS("oneOf")) {
		struct range r = schema_array(c, v, base, "oneOf", false);
		NODE(c, n)->one_of = r;
	} else if (IS("not")) {
		int k = SUB("not");
		NODE(c, n)->not_ = k;
	} else if (IS("definitions")) {
		(void)schema_members(c, v, base, "definitions", false);
	} else {
		for (int k = 0; annotations[k]; k++) {
			if (IS(annotations[k]))
				return;
		}
		mark = push_member(c, m);
		refuse(c, "unknown keyword");
		pop_ptr(c, mark);
	}
#undef IS
#undef SUB
}

/* The base URI of a schema with an $id (resolved against its parent's),
 * recorded so that a $ref can name it; else its parent's. Beside a $ref,
 * $id is ignored like every other sibling (draft-07 §8.3). */
static int
scope(struct compiler *c, int tok, int base)
{
	struct bb_jsonschema *s = c->s;
	int id = bb_json_get(&s->doc, tok, "$id");
	struct bb_buf raw, uri;

	if (id < 0 || bb_json_get(&s->doc, tok, "$ref") >= 0)
		return base;
	if (bb_json_type(&s->doc, id) != BB_JSON_STRING) {
		size_t mark = push_ptr(c, "$id", 3);
		refuse(c, "must be a string");
		pop_ptr(c, mark);
		return base;
	}
	bb_buf_init(&raw);
	bb_buf_init(&uri);
	bb_json_unescape(&s->doc, id, &raw);
	bb_buf_putc(&raw, '\0');
	resolve_uri(name_at(s, base), raw.data, &uri);
	base = add_name(s, uri.data ? uri.data : "", uri.len);
	if (s->nids == s->ids_cap) {
		s->ids_cap = s->ids_cap ? s->ids_cap * 2 : 4;
		s->ids = bb_xreallocarray(s->ids, (size_t)s->ids_cap,
		    sizeof(*s->ids));
	}
	s->ids[s->nids].uri = base;
	s->ids[s->nids].tok = tok;
	s->nids++;
	bb_buf_free(&raw);
	bb_buf_free(&uri);
	return base;
}

static int
compile_at(struct compiler *c, int tok, int base)
{
	const struct bb_json *d = &c->s->doc;
	int n;

	if (c->s->node_of[tok] >= 0)
		return c->s->node_of[tok];
	switch (bb_json_type(d, tok)) {
	case BB_JSON_BOOL:
		n = new_node(c, tok, base);
		NODE(c, n)->boolean = *bb_json_raw(d, tok, &(size_t){ 0 }) == 't';
		return n;
	case BB_JSON_OBJECT:
		break;
	default:
		refuse(c, "a schema must be an object or a boolean");
		return new_node(c, tok, base);
	}
	base = scope(c, tok, base);
	n = new_node(c, tok, base);
	for (int m = bb_json_member(d, tok, -1); m >= 0 && !c->failed;
	    m = bb_json_member(d, tok, m))
		keyword(c, n, m, base);
	return n;
}

/* ------------------------------------------------------------ the whole */

/* Resolves every $ref, compiling what they name (which may hold more). */
static void
resolve_refs(struct compiler *c)
{
	struct bb_jsonschema *s = c->s;

	for (int n = 0; n < s->nnodes && !c->failed; n++) {
		int target;
		if (s->nodes[n].ref_tok < 0)
			continue;
		bb_buf_reset(&c->ptr);
		bb_buf_puts(&c->ptr, name_at(s, s->nodes[n].pointer));
		bb_buf_puts(&c->ptr, "/$ref");
		target = ref_target(c, n);
		if (target >= 0) {
			int k = compile_at(c, target, s->nodes[n].base);
			s->nodes[n].ref = k;
		}
	}
}

/* Calls fn for each subschema that applies to the same value as node n. */
#define SAME_VALUE(s, nd, fn) do {					\
	const struct node *nd_ = (nd);					\
	if (nd_->ref >= 0) {						\
		fn(nd_->ref);						\
		break;							\
	}								\
	const struct range *rs_[] = { &nd_->all_of, &nd_->any_of,	\
	    &nd_->one_of };						\
	for (int r_ = 0; r_ < 3; r_++)					\
		for (int k_ = 0; k_ < rs_[r_]->n; k_++)			\
			fn((s)->list[rs_[r_]->first + k_]);		\
	for (int k_ = 0; k_ < nd_->dependencies.n; k_++)		\
		if ((s)->list[nd_->dependencies.first + 2 * k_ + 1] >= 0) \
			fn((s)->list[nd_->dependencies.first + 2 * k_ + 1]); \
	const int one_[] = { nd_->not_, nd_->if_, nd_->then_, nd_->else_ }; \
	for (int k_ = 0; k_ < 4; k_++)					\
		if (one_[k_] >= 0)					\
			fn(one_[k_]);					\
} while (0)

/* Depth-first over the same-value edges: a cycle among them would make
 * validation recurse forever without going deeper into the value, and a
 * path longer than MAX_CHAIN would take the stack. depth[n] is 0 while
 * unvisited, -1 while on the path, else the longest path from n. */
static int
chain(struct compiler *c, int n, int *depth, int level)
{
	int longest = 0;

	if (depth[n] > 0)
		return depth[n];
	if (level > MAX_CHAIN) {
		/* said by the caller, once the path is unwound; stopping
		 * here keeps this walk's own recursion within the bound */
		return MAX_CHAIN + 1;
	}
	if (depth[n] < 0) {
		bb_buf_reset(&c->ptr);
		bb_buf_puts(&c->ptr, name_at(c->s, c->s->nodes[n].pointer));
		refuse(c, "a $ref cycle that never reaches a deeper value");
		return MAX_CHAIN + 1;
	}
	depth[n] = -1;
#define VISIT(k) do {							\
	int d_ = chain(c, (k), depth, level + 1);			\
	if (d_ > longest)						\
		longest = d_;						\
} while (0)
	SAME_VALUE(c->s, &c->s->nodes[n], VISIT);
#undef VISIT
	depth[n] = longest + 1;
	if (depth[n] > MAX_CHAIN && !c->failed) {
		bb_buf_reset(&c->ptr);
		bb_buf_puts(&c->ptr, name_at(c->s, c->s->nodes[n].pointer));
		refuse(c, "more than %d subschemas apply to one value in a row",
		    MAX_CHAIN);
	}
	return depth[n];
}

static void
check_chains(struct compiler *c)
{
	int *depth = bb_xcalloc((size_t)c->s->nnodes, sizeof(*depth));

	for (int n = 0; n < c->s->nnodes && !c->failed; n++)
		chain(c, n, depth, 0);
	free(depth);
}

static bool
escaped(const struct bb_jsonschema *s, int tok)
{
	size_t len;
	const char *raw = bb_json_raw(&s->doc, tok, &len);

	return memchr(raw, '\\', len) != NULL;
}

static bool
plain_strings(const struct bb_jsonschema *s, int arr)
{
	for (int k = 0, t = arr + 1; k < bb_json_size(&s->doc, arr); k++, t++) {
		if (escaped(s, t))
			return false;
	}
	return true;
}

/* Notes the nodes whose names (of properties, required, dependencies)
 * hold no escape: validation then compares them as written. */
static void
mark_plain_names(struct bb_jsonschema *s)
{
	for (int n = 0; n < s->nnodes; n++) {
		struct node *nd = &s->nodes[n];
		bool plain = nd->required_tok < 0 ||
		    plain_strings(s, nd->required_tok);
		for (int k = 0; k < nd->properties.n; k++)
			plain = plain && !escaped(s,
			    s->list[nd->properties.first + 2 * k]);
		for (int k = 0; k < nd->dependencies.n; k++) {
			const int *p = s->list + nd->dependencies.first + 2 * k;
			plain = plain && !escaped(s, p[0]) &&
			    (p[1] >= -1 || plain_strings(s, -2 - p[1]));
		}
		nd->plain_names = plain;
	}
}

static char *
root_string(const struct bb_jsonschema *s, const char *key)
{
	int v = bb_json_type(&s->doc, 0) == BB_JSON_OBJECT ?
	    bb_json_get(&s->doc, 0, key) : -1;
	struct bb_buf b;

	bb_buf_init(&b);
	if (v >= 0 && bb_json_type(&s->doc, v) == BB_JSON_STRING)
		bb_json_unescape(&s->doc, v, &b);
	bb_buf_putc(&b, '\0');
	return b.data;
}

struct bb_jsonschema *
bb_jsonschema_compile(const char *text, size_t len, char *err, size_t errlen)
{
	struct bb_jsonschema *s = bb_xcalloc(1, sizeof(*s));
	struct compiler c = { .s = s, .err = err, .errlen = errlen };
	struct bb_json raw;
	struct bb_buf compact;
	char why[256];

	bb_buf_init(&s->names);
	bb_buf_init(&c.ptr);
	bb_buf_init(&compact);
	if (bb_json_parse(&raw, text, len, why, sizeof(why)) != BB_JSON_OK) {
		bb_json_free(&raw);
		snprintf(err, errlen, ": not a JSON document (%s)", why);
		bb_jsonschema_free(s);
		return NULL;
	}
	/* The compact copy is what the catalog answers and what the
	 * compiled nodes point into. */
	bb_json_write_value(&compact, &raw, 0);
	bb_json_free(&raw);
	s->text = compact.data;
	s->len = compact.len;
	if (bb_json_parse(&s->doc, s->text, s->len, why, sizeof(why)) !=
	    BB_JSON_OK) {
		snprintf(err, errlen, ": %s", why);
		bb_buf_free(&c.ptr);
		bb_jsonschema_free(s);
		return NULL;
	}
	s->node_of = bb_xreallocarray(NULL, (size_t)s->doc.ntok,
	    sizeof(*s->node_of));
	memset(s->node_of, 0xff, (size_t)s->doc.ntok * sizeof(*s->node_of));
	compile_at(&c, 0, add_name(s, "", 0));
	resolve_refs(&c);
	if (!c.failed)
		check_chains(&c);
	if (!c.failed)
		mark_plain_names(s);
	bb_buf_free(&c.ptr);
	if (c.failed) {
		bb_jsonschema_free(s);
		return NULL;
	}
	s->title = root_string(s, "title");
	s->description = root_string(s, "description");
	return s;
}

void
bb_jsonschema_free(struct bb_jsonschema *s)
{
	if (s == NULL)
		return;
	for (int k = 0; k < s->npatterns; k++)
		bb_regex_free(s->patterns[k].re);
	bb_json_free(&s->doc);
	bb_buf_free(&s->names);
	free(s->text);
	free(s->nodes);
	free(s->list);
	free(s->patterns);
	free(s->ids);
	free(s->node_of);
	free(s->title);
	free(s->description);
	free(s);
}

const char *
bb_jsonschema_text(const struct bb_jsonschema *s, size_t *len)
{
	*len = s->len;
	return s->text;
}

const char *
bb_jsonschema_title(const struct bb_jsonschema *s)
{
	return s->title;
}

const char *
bb_jsonschema_description(const struct bb_jsonschema *s)
{
	return s->description;
}

/* ------------------------------------------------------------ validating */

/* The memo: open addressing, entries of older validations counting as
 * empty, so that starting a validation clears nothing. */
static struct bb_jsonschema_memo *
memo_slot(struct bb_jsonschema_memo *m, size_t cap, unsigned gen,
    uint64_t key)
{
	size_t k = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (cap - 1);

	while (m[k].gen == gen && m[k].key != key)
		k = (k + 1) & (cap - 1);
	return &m[k];
}

/* The outcome of subschema n over value i if known: valid, or invalid
 * and either quiet or reported already. */
static int
memo_get(const struct bb_jsonschema_work *w, int n, int i, bool quiet)
{
	uint64_t key = (uint64_t)(uint32_t)n << 32 | (uint32_t)i;
	const struct bb_jsonschema_memo *e;

	if (w->memo_used == 0)
		return -1;
	e = memo_slot(w->memo, w->memo_cap, w->memo_gen, key);
	if (e->gen != w->memo_gen || !(e->ok || quiet || e->reported))
		return -1;
	return e->ok;
}

static void
memo_put(struct bb_jsonschema_work *w, int n, int i, bool ok,
    bool reported)
{
	uint64_t key = (uint64_t)(uint32_t)n << 32 | (uint32_t)i;
	struct bb_jsonschema_memo *e;

	if (2 * (w->memo_used + 1) > w->memo_cap) {
		struct bb_jsonschema_memo *old = w->memo;
		size_t cap = w->memo_cap;
		w->memo_cap = cap ? cap * 2 : 256;
		w->memo = bb_xcalloc(w->memo_cap, sizeof(*w->memo));
		for (size_t k = 0; k < cap; k++) {
			if (old[k].gen == w->memo_gen)
				*memo_slot(w->memo, w->memo_cap, w->memo_gen,
				    old[k].key) = old[k];
		}
		free(old);
	}
	e = memo_slot(w->memo, w->memo_cap, w->memo_gen, key);
	if (e->gen != w->memo_gen)
		w->memo_used++;
	*e = (struct bb_jsonschema_memo){ key, w->memo_gen, ok, reported };
}

/* One step of the instance path: a member name (a token of doc) or an
 * array index. */
struct step {
	const struct bb_json *doc;	/* NULL: index */
	int tok;
	int index;
};

struct run {
	const struct bb_jsonschema *s;
	const struct bb_json *d;
	struct bb_jsonschema_work *w;
	struct bb_buf *errors;
	int quiet;		/* > 0: only whether it is valid counts */
	int nerrors;
	long long budget;
	bool gave_up;		/* a bound was met: the value fails */
	int nest;		/* check() calls under way */
	int depth;
	struct step path[BB_JSON_MAX_DEPTH + 2];
};

static void
push_name(struct run *r, const struct bb_json *doc, int tok)
{
	if (r->depth < (int)(sizeof(r->path) / sizeof(r->path[0])))
		r->path[r->depth] = (struct step){ doc, tok, 0 };
	r->depth++;
}

static void
push_element(struct run *r, int index)
{
	if (r->depth < (int)(sizeof(r->path) / sizeof(r->path[0])))
		r->path[r->depth] = (struct step){ NULL, -1, index };
	r->depth++;
}

static void
write_field(struct run *r, struct bb_buf *out)
{
	int n = r->depth;

	if (n > (int)(sizeof(r->path) / sizeof(r->path[0])))
		n = (int)(sizeof(r->path) / sizeof(r->path[0]));
	bb_buf_reset(out);
	for (int k = 0; k < n; k++) {
		if (k > 0)
			bb_buf_putc(out, '.');
		if (r->path[k].doc)
			bb_json_unescape(r->path[k].doc, r->path[k].tok, out);
		else
			bb_buf_printf(out, "%d", r->path[k].index);
	}
}

static void
fail(struct run *r, const char *keyword, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct run *r, const char *keyword, const char *fmt, ...)
{
	struct bb_buf *e = r->errors;
	char message[256];
	va_list ap;

	if (r->quiet)
		return;
	if (++r->nerrors > BB_JSONSCHEMA_MAX_ERRORS || e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	/* a message cut to fit ends on a whole UTF-8 sequence */
	size_t len = strlen(message);
	while (len > 0 && !bb_utf8_valid(message, len))
		len--;
	message[len] = '\0';
	write_field(r, &r->w->field);
	if (e->len)
		bb_buf_putc(e, ',');
	bb_buf_puts(e, "{\"field\":");
	bb_json_write_string(e, r->w->field.data ? r->w->field.data : "",
	    r->w->field.len);
	bb_buf_puts(e, ",\"message\":");
	bb_json_write_string(e, message, strlen(message));
	bb_buf_puts(e, ",\"keyword\":");
	bb_json_write_string(e, keyword, strlen(keyword));
	bb_buf_putc(e, '}');
}

/* True when the caller should stop looking for more failures. */
static bool
done(const struct run *r)
{
	return r->quiet > 0 || r->nerrors >= BB_JSONSCHEMA_MAX_ERRORS;
}

/* Stops the validation at a bound: from now on every check answers
 * false, and the value fails with keyword "$ref" however deep inside a
 * quiet branch (anyOf, not, if) the bound was met. */
static void
give_up(struct run *r, const char *why)
{
	int q = r->quiet;

	if (r->gave_up)
		return;
	r->gave_up = true;
	r->quiet = 0;
	fail(r, "$ref", "%s", why);
	r->quiet = q;
}

static bool
spend(struct run *r, long long n)
{
	r->budget -= n;
	if (r->budget >= 0)
		return true;
	give_up(r, "validation ran past its cost bound: the schema's "
	    "subschemas apply too many times over");
	return false;
}

/* The unescaped text of string tok of doc, in buf only when it holds an
 * escape. */
static const char *
text_of(const struct bb_json *doc, int tok, struct bb_buf *buf, size_t *len)
{
	const char *raw = bb_json_raw(doc, tok, len);

	if (memchr(raw, '\\', *len) == NULL)
		return raw;
	bb_buf_reset(buf);
	bb_json_unescape(doc, tok, buf);
	*len = buf->len;
	return buf->data ? buf->data : "";
}

static double
number(const struct bb_json *doc, int tok)
{
	size_t len;
	const char *raw = bb_json_raw(doc, tok, &len);
	char tmp[BB_JSON_MAX_NUMBER + 1];

	/* json.c refuses longer literals; a schema's are checked too. */
	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, raw, len);
	tmp[len] = '\0';
	return strtod(tmp, NULL);
}

static bool
same_string(struct run *r, const struct bb_json *da, int a,
    const struct bb_json *db, int b)
{
	size_t la, lb;
	const char *sa = text_of(da, a, &r->w->text, &la);
	const char *sb = text_of(db, b, &r->w->other, &lb);

	return la == lb && memcmp(sa, sb, la) == 0;
}

/* JSON equality (draft-07 §4.2.2): numbers by value, objects whatever the
 * order of their members. */
static bool
equal(struct run *r, const struct bb_json *da, int a, const struct bb_json *db,
    int b)
{
	enum bb_json_type t = bb_json_type(da, a);
	size_t la, lb;

	if (!spend(r, 1))
		return false;
	if (t != bb_json_type(db, b))
		return false;
	switch (t) {
	case BB_JSON_NUMBER:
		return number(da, a) == number(db, b);
	case BB_JSON_STRING:
		return same_string(r, da, a, db, b);
	case BB_JSON_BOOL:
		return *bb_json_raw(da, a, &la) == *bb_json_raw(db, b, &lb);
	case BB_JSON_NULL:
		return true;
	case BB_JSON_ARRAY:
		if (bb_json_size(da, a) != bb_json_size(db, b))
			return false;
		for (int k = 0, x = a + 1, y = b + 1; k < bb_json_size(da, a);
		    k++, x = bb_json_next(da, x), y = bb_json_next(db, y)) {
			if (!equal(r, da, x, db, y))
				return false;
		}
		return true;
	case BB_JSON_OBJECT:
		if (bb_json_size(da, a) != bb_json_size(db, b))
			return false;
		/* Member names are unique (I-JSON), so equal sizes and each
		 * member of a found equal in b make the objects equal. */
		for (int m = bb_json_member(da, a, -1); m >= 0;
		    m = bb_json_member(da, a, m)) {
			int found = -1;
			for (int n = bb_json_member(db, b, -1); n >= 0 &&
			    found < 0; n = bb_json_member(db, b, n)) {
				if (!spend(r, 1))
					return false;
				if (same_string(r, da, m, db, n))
					found = n + 1;
			}
			if (found < 0 || !equal(r, da, m + 1, db, found))
				return false;
		}
		return true;
	}
	return false;
}

/* FNV-1a, then a final mix, so that sums of member hashes spread. */
static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t k = 0; k < len; k++)
		h = (h ^ b[k]) * 0x100000001b3ULL;
	return h;
}

static uint64_t
mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* A hash of value i that equal values share (see equal()); *next is set
 * past it. */
static uint64_t
hash_value(struct run *r, int i, int *next)
{
	const struct bb_json *d = r->d;
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)bb_json_type(d, i);
	size_t len;
	const char *s;
	int k, e;
	double x;

	switch (bb_json_type(d, i)) {
	case BB_JSON_NUMBER:
		x = number(d, i);
		if (x == 0)
			x = 0;	/* -0 equals 0 */
		h = fnv(h, &x, sizeof(x));
		break;
	case BB_JSON_STRING:
		s = text_of(d, i, &r->w->text, &len);
		h = fnv(h, s, len);
		break;
	case BB_JSON_BOOL:
		h = fnv(h, bb_json_raw(d, i, &len), 1);
		break;
	case BB_JSON_NULL:
		break;
	case BB_JSON_ARRAY:
		for (k = 0, e = i + 1; k < bb_json_size(d, i); k++)
			h = mix(h ^ hash_value(r, e, &e)) + (uint64_t)k;
		*next = e;
		return mix(h);
	case BB_JSON_OBJECT:
		for (k = 0, e = i + 1; k < bb_json_size(d, i); k++) {
			s = text_of(d, e, &r->w->text, &len);
			uint64_t name = fnv(0xcbf29ce484222325ULL, s, len);
			h += mix(name ^ hash_value(r, e + 1, &e));
		}
		*next = e;
		return mix(h);
	}
	*next = i + 1;
	return mix(h);
}

static int
by_hash(const void *a, const void *b)
{
	const struct bb_jsonschema_item *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* uniqueItems: hashed, sorted, and only equal hashes compared, so that an
 * array costs n log n, not n squared. Returns the index of a repeated
 * element, or -1. */
static int
repeated(struct run *r, int arr)
{
	struct bb_jsonschema_work *w = r->w;
	int n = bb_json_size(r->d, arr);

	if (n < 2)	/* and w->items may still be NULL, which qsort()
			 * must not be given even for no elements */
		return -1;
	if ((size_t)n > w->items_cap) {
		w->items_cap = (size_t)n * 2;
		w->items = bb_xreallocarray(w->items, w->items_cap,
		    sizeof(*w->items));
	}
	for (int k = 0, e = arr + 1; k < n; k++) {
		w->items[k].tok = e;
		w->items[k].hash = hash_value(r, e, &e);
	}
	qsort(w->items, (size_t)n, sizeof(*w->items), by_hash);
	for (int k = 0; k < n; k++) {
		for (int j = k + 1; j < n && w->items[j].hash ==
		    w->items[k].hash; j++) {
			if (equal(r, r->d, w->items[k].tok, r->d,
			    w->items[j].tok))
				return 1;
			if (r->gave_up)
				return 1;
		}
	}
	return -1;
}

static bool check(struct run *r, int n, int i);

/* Checks value i against subschema n, which keyword kw holds; a false
 * schema there fails with kw as its keyword. */
static bool
check_sub(struct run *r, int n, int i, const char *kw)
{
	if (r->s->nodes[n].boolean == 0) {
		fail(r, kw, "is not allowed here");
		return false;
	}
	return check(r, n, i);
}

static bool
check_quietly(struct run *r, int n, int i)
{
	bool ok;

	r->quiet++;
	ok = check(r, n, i);
	r->quiet--;
	return ok;
}

static const char *
raw_text(const struct bb_jsonschema *s, int tok)
{
	static char tmp[BB_JSON_MAX_NUMBER + 1];
	size_t len;
	const char *raw = bb_json_raw(&s->doc, tok, &len);

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, raw, len);
	tmp[len] = '\0';
	return tmp;
}

/* a * b mod m, for m < 2^62 (no overflow: every sum stays below 2^63). */
static uint64_t
mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	uint64_t r = 0;

	for (a %= m; b; b >>= 1) {
		if (b & 1 && (r += a) >= m)
			r -= m;
		if ((a += a) >= m)
			a -= m;
	}
	return r;
}

/* Whether the literal of number i is a multiple of nd's multipleOf, both
 * read as exact decimals: x = a * 10^ex and m = b * 10^em with neither a
 * nor b ending in 0. When ex < em, x / m = a / (b * 10^(em - ex)) is no
 * integer, since 10 does not divide a; otherwise it is one when b divides
 * a * 10^(ex - em), which is worked out modulo b. */
static bool
multiple_exact(const struct run *r, const struct node *nd, int i)
{
	struct decimal x;
	size_t len;
	const char *raw = bb_json_raw(r->d, i, &len);
	uint64_t b = nd->multiple_digits, rem = 0, p;
	long long e;

	decimal_read(raw, len, &x);
	if (x.n == 0)
		return true;
	e = (long long)x.exp - nd->multiple_exp;
	if (e < 0)
		return false;
	for (int k = 0; k < x.n; k++)	/* b < 10^18: no overflow */
		rem = (rem * 10 + (uint64_t)(x.digits[k] - '0')) % b;
	for (p = 10 % b; e > 0 && rem; e >>= 1) {
		if (e & 1)
			rem = mulmod(rem, p, b);
		p = mulmod(p, p, b);
	}
	return rem == 0;
}

/* The same for a multipleOf of more than 18 digits, on doubles. */
static bool
multiple_of(double x, double m)
{
	long double q;

	/* Integers below 2^53 are exact in a double: divide exactly. */
	if (x == floor(x) && m == floor(m) && fabs(x) < 9007199254740992.0 &&
	    fabs(m) < 9007199254740992.0)
		return fmod(x, m) == 0;
	/* Otherwise the quotient of two binary fractions: 0.0075 / 0.0001
	 * is 74.99999999999999 in doubles, so "an integer" means within
	 * rounding of one. */
	q = (long double)x / (long double)m;
	if (!isfinite(q))
		return false;
	return fabsl(q - roundl(q)) < 1e-9L;
}

static bool
check_number(struct run *r, const struct node *nd, int i)
{
	double x = number(r->d, i);
	bool ok = true;

	if (nd->multiple_of.tok >= 0 && !(nd->multiple_exact ?
	    multiple_exact(r, nd, i) : multiple_of(x, nd->multiple_of.v))) {
		fail(r, "multipleOf", "must be a multiple of %s",
		    raw_text(r->s, nd->multiple_of.tok));
		ok = false;
	}
	if (nd->maximum.tok >= 0 && !(x <= nd->maximum.v)) {
		fail(r, "maximum", "must be at most %s",
		    raw_text(r->s, nd->maximum.tok));
		ok = false;
	}
	if (nd->exclusive_maximum.tok >= 0 && !(x < nd->exclusive_maximum.v)) {
		fail(r, "exclusiveMaximum", "must be less than %s",
		    raw_text(r->s, nd->exclusive_maximum.tok));
		ok = false;
	}
	if (nd->minimum.tok >= 0 && !(x >= nd->minimum.v)) {
		fail(r, "minimum", "must be at least %s",
		    raw_text(r->s, nd->minimum.tok));
		ok = false;
	}
	if (nd->exclusive_minimum.tok >= 0 && !(x > nd->exclusive_minimum.v)) {
		fail(r, "exclusiveMinimum", "must be greater than %s",
		    raw_text(r->s, nd->exclusive_minimum.tok));
		ok = false;
	}
	return ok;
}

/* 1: matches, 0: does not, -1: ran past the engine's limits. */
static int
matches(struct run *r, int pattern, const char *s, size_t len)
{
	return bb_regex_search(r->s->patterns[pattern].re, s, len,
	    &r->w->match);
}

/* String tok of the schema, unescaped and cut to fit a message (fail()
 * trims a sequence the cut split). */
static const char *
schema_text(struct run *r, int tok)
{
	size_t len;
	const char *s = text_of(&r->s->doc, tok, &r->w->other, &len);
	static char tmp[160];

	snprintf(tmp, sizeof(tmp), "%.*s", (int)len, s);
	return tmp;
}

static size_t
code_points(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t k = 0; k < len; k++)
		n += ((unsigned char)s[k] & 0xc0) != 0x80;
	return n;
}

static bool
check_string(struct run *r, const struct node *nd, int i)
{
	size_t len, n;
	const char *s = text_of(r->d, i, &r->w->text, &len);
	bool ok = true;
	int m;

	n = (nd->max_length >= 0 || nd->min_length >= 0) ?
	    code_points(s, len) : 0;
	if (nd->max_length >= 0 && n > (size_t)nd->max_length) {
		fail(r, "maxLength", "must be at most %lld character%s long",
		    nd->max_length, nd->max_length == 1 ? "" : "s");
		ok = false;
	}
	if (nd->min_length >= 0 && n < (size_t)nd->min_length) {
		fail(r, "minLength", "must be at least %lld character%s long",
		    nd->min_length, nd->min_length == 1 ? "" : "s");
		ok = false;
	}
	if (nd->pattern >= 0 && (m = matches(r, nd->pattern, s, len)) != 1) {
		if (m == 0)
			fail(r, "pattern", "must match the pattern %s",
			    schema_text(r, r->s->patterns[nd->pattern].tok));
		else
			fail(r, "pattern", "the pattern ran past its match "
			    "limit on this value");
		ok = false;
	}
	if (nd->format != BB_FORMAT_NONE && !bb_format_check(nd->format, s,
	    len)) {
		size_t flen;
		const char *f = bb_json_raw(&r->s->doc,
		    bb_json_get(&r->s->doc, nd->tok, "format"), &flen);
		fail(r, "format", "must be a valid %.*s", (int)flen, f);
		ok = false;
	}
	return ok;
}

static bool
check_array(struct run *r, const struct node *nd, int i)
{
	const struct bb_json *d = r->d;
	int n = bb_json_size(d, i), k, e;
	bool ok = true, found;

	if (nd->max_items >= 0 && n > nd->max_items) {
		fail(r, "maxItems", "must have at most %lld element%s",
		    nd->max_items, nd->max_items == 1 ? "" : "s");
		ok = false;
	}
	if (nd->min_items >= 0 && n < nd->min_items) {
		fail(r, "minItems", "must have at least %lld element%s",
		    nd->min_items, nd->min_items == 1 ? "" : "s");
		ok = false;
	}
	if (nd->unique_items && repeated(r, i) >= 0) {
		fail(r, "uniqueItems", "must not hold the same value twice");
		ok = false;
	}
	if (!ok && done(r))
		return false;
	for (k = 0, e = i + 1; k < n; k++, e = bb_json_next(d, e)) {
		int sub = nd->items;
		const char *kw = "items";
		if (nd->tuple_form) {
			sub = k < nd->tuple.n ? r->s->list[nd->tuple.first + k] :
			    nd->additional_items;
			kw = k < nd->tuple.n ? "items" : "additionalItems";
		}
		if (sub < 0)
			continue;
		push_element(r, k);
		if (!check_sub(r, sub, e, kw))
			ok = false;
		r->depth--;
		if (!ok && done(r))
			return false;
	}
	if (nd->contains >= 0) {
		found = false;
		for (k = 0, e = i + 1; k < n && !found; k++, e = bb_json_next(d, e))
			found = check_quietly(r, nd->contains, e);
		if (!found) {
			fail(r, "contains", "must hold an element that matches "
			    "the schema of contains");
			ok = false;
		}
	}
	return ok;
}

/* Whether no member name of object i holds an escape: then, with a node
 * whose names hold none either, names compare as they are written. */
static bool
plain_members(const struct run *r, int i)
{
	size_t len;

	for (int m = bb_json_member(r->d, i, -1); m >= 0;
	    m = bb_json_member(r->d, i, m)) {
		const char *raw = bb_json_raw(r->d, m, &len);
		if (memchr(raw, '\\', len) != NULL)
			return false;
	}
	return true;
}

/* Whether name (len bytes, unescaped) is string tok of the schema; plain:
 * tok holds no escape. */
static bool
is_schema_string(struct run *r, const char *name, size_t len, int tok,
    bool plain)
{
	size_t tlen;
	const char *t;

	t = plain ? bb_json_raw(&r->s->doc, tok, &tlen) :
	    text_of(&r->s->doc, tok, &r->w->text, &tlen);
	return tlen == len && memcmp(t, name, len) == 0;
}

/* Whether object i has a member named by string tok of the schema; plain
 * as check_object found it. */
static bool
has_member(struct run *r, int i, int tok, bool plain)
{
	size_t len;

	for (int m = bb_json_member(r->d, i, -1); m >= 0;
	    m = bb_json_member(r->d, i, m)) {
		if (plain) {
			const char *name = bb_json_raw(r->d, m, &len);
			if (is_schema_string(r, name, len, tok, true))
				return true;
		} else if (same_string(r, r->d, m, &r->s->doc, tok)) {
			return true;
		}
	}
	return false;
}

/* properties, patternProperties and additionalProperties, member by
 * member. */
static bool
check_members(struct run *r, const struct node *nd, int i, bool plain)
{
	const struct bb_json *d = r->d;
	const int *list = r->s->list;
	bool ok = true;

	for (int m = bb_json_member(d, i, -1); m >= 0;
	    m = bb_json_member(d, i, m)) {
		bool matched = false;
		size_t len;
		const char *name = plain ? bb_json_raw(d, m, &len) :
		    text_of(d, m, &r->w->other, &len);
		push_name(r, d, m);
		/* names of properties are distinct: one matches at most */
		for (int k = 0; k < nd->properties.n && !matched; k++) {
			const int *p = list + nd->properties.first + 2 * k;
			if (!spend(r, 1))
				break;
			if (!is_schema_string(r, name, len, p[0], plain))
				continue;
			matched = true;
			if (!check_sub(r, p[1], m + 1, "properties"))
				ok = false;
		}
		for (int k = 0; k < nd->pattern_properties.n; k++) {
			const int *p = list + nd->pattern_properties.first + 2 * k;
			/* again: a subschema's check may have reused the
			 * buffer that held it */
			if (!plain)
				name = text_of(d, m, &r->w->other, &len);
			int hit = matches(r, p[0], name, len);
			if (hit < 0) {
				fail(r, "patternProperties", "a pattern ran past "
				    "its match limit on this name");
				ok = false;
			} else if (hit) {
				matched = true;
				if (!check_sub(r, p[1], m + 1,
				    "patternProperties"))
					ok = false;
			}
		}
		if (!matched && nd->additional_properties >= 0 &&
		    !check_sub(r, nd->additional_properties, m + 1,
		    "additionalProperties"))
			ok = false;
		if (nd->property_names >= 0 &&
		    !check_sub(r, nd->property_names, m, "propertyNames"))
			ok = false;
		r->depth--;
		if (!ok && done(r))
			return false;
	}
	return ok;
}

static bool
check_object(struct run *r, const struct node *nd, int i)
{
	const struct bb_json *sd = &r->s->doc;
	int n = bb_json_size(r->d, i);
	bool ok = true;
	bool plain = nd->plain_names && plain_members(r, i);

	if (nd->max_properties >= 0 && n > nd->max_properties) {
		fail(r, "maxProperties", "must have at most %lld member%s",
		    nd->max_properties, nd->max_properties == 1 ? "" : "s");
		ok = false;
	}
	if (nd->min_properties >= 0 && n < nd->min_properties) {
		fail(r, "minProperties", "must have at least %lld member%s",
		    nd->min_properties, nd->min_properties == 1 ? "" : "s");
		ok = false;
	}
	if (nd->required_tok >= 0) {
		int t = nd->required_tok + 1;
		for (int k = 0; k < bb_json_size(sd, nd->required_tok);
		    k++, t++) {
			if (has_member(r, i, t, plain))
				continue;
			push_name(r, sd, t);
			fail(r, "required", "required");
			r->depth--;
			ok = false;
			if (done(r))
				return false;
		}
	}
	for (int k = 0; k < nd->dependencies.n; k++) {
		const int *p = r->s->list + nd->dependencies.first + 2 * k;
		if (!has_member(r, i, p[0], plain))
			continue;
		if (p[1] >= 0) {
			if (!check_sub(r, p[1], i, "dependencies"))
				ok = false;
		} else {
			int names = -2 - p[1], t = names + 1;
			for (int j = 0; j < bb_json_size(sd, names); j++, t++) {
				if (has_member(r, i, t, plain))
					continue;
				push_name(r, sd, t);
				fail(r, "dependencies", "required by the "
				    "member %s", schema_text(r, p[0]));
				r->depth--;
				ok = false;
			}
		}
		if (!ok && done(r))
			return false;
	}
	if (!check_members(r, nd, i, plain))
		ok = false;
	return ok;
}

static bool
check_applicators(struct run *r, const struct node *nd, int i)
{
	const int *list = r->s->list;
	bool ok = true;
	int valid, k;

	for (k = 0; k < nd->all_of.n; k++) {
		if (!check_sub(r, list[nd->all_of.first + k], i, "allOf")) {
			ok = false;
			if (done(r))
				return false;
		}
	}
	if (nd->any_of.n) {
		for (valid = 0, k = 0; k < nd->any_of.n && !valid; k++)
			valid = check_quietly(r, list[nd->any_of.first + k], i);
		if (!valid) {
			fail(r, "anyOf", "must match at least one schema of "
			    "anyOf");
			ok = false;
		}
	}
	if (nd->one_of.n) {
		for (valid = 0, k = 0; k < nd->one_of.n && valid < 2; k++)
			valid += check_quietly(r, list[nd->one_of.first + k], i);
		if (valid != 1) {
			fail(r, "oneOf", "must match exactly one schema of "
			    "oneOf, not %s", valid ? "several" : "none");
			ok = false;
		}
	}
	if (nd->not_ >= 0 && check_quietly(r, nd->not_, i)) {
		fail(r, "not", "must not match the schema of not");
		ok = false;
	}
	if (nd->if_ >= 0) {
		int then_else = check_quietly(r, nd->if_, i) ? nd->then_ :
		    nd->else_;
		if (then_else >= 0 && !check_sub(r, then_else, i,
		    then_else == nd->then_ ? "then" : "else"))
			ok = false;
	}
	return ok;
}

static bool
type_matches(const struct run *r, unsigned types, int i)
{
	switch (bb_json_type(r->d, i)) {
	case BB_JSON_NULL:
		return types & T_NULL;
	case BB_JSON_BOOL:
		return types & T_BOOLEAN;
	case BB_JSON_OBJECT:
		return types & T_OBJECT;
	case BB_JSON_ARRAY:
		return types & T_ARRAY;
	case BB_JSON_STRING:
		return types & T_STRING;
	case BB_JSON_NUMBER:
		if (types & T_NUMBER)
			return true;
		/* draft-07 §6.1.1: 1.0 is an integer */
		double x = number(r->d, i);
		return (types & T_INTEGER) && x == floor(x) && isfinite(x);
	}
	return false;
}

static void
fail_type(struct run *r, unsigned types)
{
	static const char *const names[] = { "null", "boolean", "object",
		"array", "number", "string", "integer" };
	char list[96] = "";

	for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (!(types & (1u << k)))
			continue;
		if (list[0])
			strcat(list, " or ");
		strcat(list, names[k]);
	}
	fail(r, "type", "must be %s %s", strchr("aeiou", list[0]) &&
	    list[0] ? "an" : "a", list);
}

static bool
check_node(struct run *r, int n, int i)
{
	const struct node *nd = &r->s->nodes[n];
	bool ok = true;

	if (!spend(r, 1))
		return false;
	if (nd->boolean >= 0) {
		if (nd->boolean == 0)
			fail(r, "false", "no value is allowed here");
		return nd->boolean == 1;
	}
	if (nd->ref >= 0)
		return check_sub(r, nd->ref, i, "$ref");
	if (nd->types && !type_matches(r, nd->types, i)) {
		fail_type(r, nd->types);
		ok = false;
	}
	if (nd->enum_tok >= 0) {
		const struct bb_json *sd = &r->s->doc;
		bool found = false;
		for (int k = 0, e = nd->enum_tok + 1; k < bb_json_size(sd,
		    nd->enum_tok) && !found; k++, e = bb_json_next(sd, e))
			found = equal(r, sd, e, r->d, i);
		if (!found) {
			fail(r, "enum", "must be one of the values of enum");
			ok = false;
		}
	}
	if (nd->const_tok >= 0 && !equal(r, &r->s->doc, nd->const_tok, r->d,
	    i)) {
		fail(r, "const", "must be equal to the value of const");
		ok = false;
	}
	if (!ok && done(r))
		return false;
	switch (bb_json_type(r->d, i)) {
	case BB_JSON_NUMBER:
		ok = check_number(r, nd, i) && ok;
		break;
	case BB_JSON_STRING:
		ok = check_string(r, nd, i) && ok;
		break;
	case BB_JSON_ARRAY:
		ok = check_array(r, nd, i) && ok;
		break;
	case BB_JSON_OBJECT:
		ok = check_object(r, nd, i) && ok;
		break;
	default:
		break;
	}
	if (!ok && done(r))
		return false;
	return check_applicators(r, nd, i) && ok;
}

static bool
check(struct run *r, int n, int i)
{
	bool ok;
	int known;

	if (r->gave_up)
		return false;
	/* Whether a value is valid under a subschema does not change: one
	 * reached again over the same value (two branches of a oneOf that
	 * both descend into it, a shared $ref) is not checked again -- unless
	 * it failed quietly and must now say why -- so the work stays within
	 * the schema's nodes times the value's tokens, and no failure is
	 * reported twice. */
	if ((known = memo_get(r->w, n, i, r->quiet > 0)) >= 0)
		return known;
	if (r->nest >= MAX_NEST) {
		give_up(r, "validation nests subschemas too deep for the "
		    "stack: the schema applies too many in a row at each "
		    "level of this value");
		return false;
	}
	r->nest++;
	ok = check_node(r, n, i);
	r->nest--;
	if (!r->gave_up)
		memo_put(r->w, n, i, ok, r->quiet == 0);
	return ok;
}

void
bb_jsonschema_work_init(struct bb_jsonschema_work *w)
{
	memset(w, 0, sizeof(*w));
	bb_buf_init(&w->text);
	bb_buf_init(&w->other);
	bb_buf_init(&w->field);
}

void
bb_jsonschema_work_free(struct bb_jsonschema_work *w)
{
	bb_buf_free(&w->text);
	bb_buf_free(&w->other);
	bb_buf_free(&w->field);
	free(w->items);
	free(w->memo);
	bb_regex_match_free(w->match);
	memset(w, 0, sizeof(*w));
}

int
bb_jsonschema_validate(const struct bb_jsonschema *s,
    const struct bb_json *doc, int i, struct bb_jsonschema_work *w,
    struct bb_buf *errors)
{
	struct run r = { .s = s, .d = doc, .w = w, .errors = errors };
	long long tokens = bb_json_next(doc, i) - i;

	/* a new generation: every memo entry of earlier validations is
	 * empty (generation 0 is never used, so calloc'd entries are too) */
	if (++w->memo_gen == 0) {
		if (w->memo)
			memset(w->memo, 0, w->memo_cap * sizeof(*w->memo));
		w->memo_gen = 1;
	}
	w->memo_used = 0;

	r.budget = (tokens + 1) * ((long long)s->doc.ntok + 1) * COST_PER_PAIR;
	/* Past the bound every check answers false, which a "not" (or an
	 * "if" without "then") would turn into a pass: the bound itself must
	 * fail the value. */
	if (check(&r, 0, i) && !r.gave_up)
		return 0;
	return r.nerrors > 0 ? r.nerrors : 1;
}
