#include "cloudevent.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "format.h"
#include "validate.h"

/* The names of enum bb_ce_attribute, in its order. */
static const char *const names[BB_CE_NATTRIBUTES] = {
	"id", "source", "type", "subject", "time", "datacontenttype",
	"dataschema", "causationid", "traceparent", "tracestate",
};

/* Where an attribute goes besides being read: the published CloudEvent
 * (KEPT) and the native envelope's source.meta (META). */
enum { KEPT = 1, META = 2 };

static int
placement(int a)
{
	switch (a) {
	case BB_CE_ID:
		return KEPT | META;
	case BB_CE_SOURCE:
	case BB_CE_DATACONTENTTYPE:
		return KEPT;
	case BB_CE_SUBJECT:
	case BB_CE_DATASCHEMA:
		return KEPT | META;
	case BB_CE_TIME:
		return META;	/* §9.3: time is Bloodbank's timestamp */
	case BB_CE_TYPE:
		return 0;
	default:		/* the extensions Bloodbank reads */
		return META;
	}
}

void
bb_cloudevent_init(struct bb_cloudevent *ce)
{
	memset(ce, 0, sizeof(*ce));
	bb_buf_init(&ce->strings);
	bb_buf_init(&ce->kept);
	bb_buf_init(&ce->meta);
	ce->data = ce->data_base64 = -1;
}

void
bb_cloudevent_free(struct bb_cloudevent *ce)
{
	bb_buf_free(&ce->strings);
	bb_buf_free(&ce->kept);
	bb_buf_free(&ce->meta);
}

static void
reset(struct bb_cloudevent *ce)
{
	bb_buf_reset(&ce->strings);
	bb_buf_reset(&ce->kept);
	bb_buf_reset(&ce->meta);
	memset(ce->at, 0, sizeof(ce->at));
	ce->data = ce->data_base64 = -1;
	ce->nextensions = 0;
}

const char *
bb_cloudevent_get(const struct bb_cloudevent *ce, enum bb_ce_attribute a)
{
	return ce->at[a] ? ce->strings.data + ce->at[a] - 1 : NULL;
}

/* CloudEvents 1.0.2 §3.1.1: an extension's name is 1-20 of [a-z0-9]. */
static bool
extension_name(const char *s, size_t len)
{
	if (len < 1 || len > 20)
		return false;
	for (size_t k = 0; k < len; k++) {
		if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= '0' && s[k] <= '9')))
			return false;
	}
	return true;
}

static bool
has_control(const char *s, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

static int
known(const char *name, size_t len)
{
	for (int a = 0; a < BB_CE_NATTRIBUTES; a++) {
		if (strlen(names[a]) == len && memcmp(names[a], name, len) == 0)
			return a;
	}
	return -1;
}

static void
member(struct bb_buf *out, const char *name, size_t len)
{
	if (out->len)
		bb_buf_putc(out, ',');
	bb_json_write_string(out, name, len);
	bb_buf_putc(out, ':');
}

/* RFC 3986 §4.1: a URI-reference holds only these characters, and "%"
 * only before two hex digits. */
static bool
uri_reference(const char *s, size_t len)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=";

	for (size_t k = 0; k < len; k++) {
		if (s[k] == '%' && k + 2 < len &&
		    OPENSSL_hexchar2int((unsigned char)s[k + 1]) >= 0 &&
		    OPENSSL_hexchar2int((unsigned char)s[k + 2]) >= 0)
			k += 2;
		else if (s[k] == '\0' || strchr(allowed, s[k]) == NULL)
			return false;
	}
	return true;
}

/* The attributes of one event as they are read: problems are counted,
 * and an attribute found wrong is not said to be missing as well. */
struct reader {
	struct bb_cloudevent *ce;
	struct bb_buf *errors;
	int problems;
	unsigned seen;		/* bit a: attribute a came, right or wrong */
	bool specversion;	/* "1.0" came */
};

/* An attribute's name as an error's field: cut to fit out, but never in
 * the middle of a UTF-8 sequence. */
static void
field_of(char *out, size_t outlen, const char *name, size_t len)
{
	if (len >= outlen) {
		len = outlen - 1;
		while (len > 0 && ((unsigned char)name[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(out, name, len);
	out[len] = '\0';
}

static void
problem(struct reader *r, const char *field, const char *message)
{
	bb_validate_error(r->errors, field, message);
	r->problems++;
}

/* Why string value s of attribute a (-1: an extension) is not valid, or
 * NULL. */
static const char *
string_problem(int a, const char *s, size_t len)
{
	if (len > BB_CE_MAX_VALUE)
		return "longer than 4096 bytes";
	if (has_control(s, len))
		return "must not hold control characters";
	/* CloudEvents 1.0.2 §3.1: an attribute that is present is not
	 * empty */
	if (a >= 0 && len == 0)
		return "must be a non-empty string";
	switch (a) {
	case BB_CE_SOURCE:
		return uri_reference(s, len) ? NULL : "must be a URI-reference";
	case BB_CE_TIME:
		return bb_format_check(BB_FORMAT_DATE_TIME, s, len) ? NULL :
		    "must be an RFC 3339 timestamp";
	case BB_CE_DATASCHEMA:
		return bb_format_check(BB_FORMAT_URI, s, len) ? NULL :
		    "must be an absolute URI";
	default:
		return NULL;
	}
}

/* Takes attribute or extension name[0..nlen) with string value s (or,
 * with s NULL, the number or boolean tok of doc: an extension's value in
 * structured mode), or says why not. */
static void
take(struct reader *r, const char *name, size_t nlen, const char *s,
    size_t len, const struct bb_json *doc, int tok)
{
	struct bb_cloudevent *ce = r->ce;
	int a = known(name, nlen);
	int where = a >= 0 ? placement(a) : KEPT | META;
	const char *why = NULL;
	char field[32];

	field_of(field, sizeof(field), name, nlen);
	if (a >= 0)
		r->seen |= 1u << a;
	if (a < 0 && !extension_name(name, nlen))
		why = "an extension's name is 1-20 of [a-z0-9]";
	else if (a < 0 && nlen == 11 && memcmp(name, "bloodbankid", 11) == 0)
		why = "is set by Bloodbank";
	else if (a < 0 && ++ce->nextensions > BB_CE_MAX_EXTENSIONS)
		why = "more than 32 extensions";
	else if (s != NULL)
		why = string_problem(a, s, len);
	if (why) {
		problem(r, field, why);
		return;
	}
	if (a >= 0) {
		ce->at[a] = ce->strings.len + 1;
		bb_buf_append(&ce->strings, s, len);
		bb_buf_putc(&ce->strings, '\0');
	}
	for (int k = 0; k < 2; k++) {
		struct bb_buf *out = k ? &ce->meta : &ce->kept;
		if (!(where & (k ? META : KEPT)))
			continue;
		member(out, name, nlen);
		if (s != NULL)
			bb_json_write_string(out, s, len);
		else
			bb_json_write_value(out, doc, tok);
	}
}

/* Every attribute that must be there (§9.1) and is not. */
static int
finish(struct reader *r)
{
	static const enum bb_ce_attribute required[] = { BB_CE_ID,
		BB_CE_SOURCE, BB_CE_TYPE };

	if (!r->specversion && !(r->seen & (1u << BB_CE_NATTRIBUTES)))
		problem(r, "specversion", "required: \"1.0\"");
	for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
		if (!(r->seen & (1u << required[k])))
			problem(r, names[required[k]], "required");
	}
	return r->problems;
}

static void
specversion(struct reader *r, bool right)
{
	r->seen |= 1u << BB_CE_NATTRIBUTES;
	r->specversion = right;
	if (!right)
		problem(r, "specversion", "must be \"1.0\"");
}

static bool
base64_valid(const char *s, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t pad = 0;

	/* RFC 4648 §4: groups of four, "=" only as the last one or two */
	if (len % 4 != 0)
		return false;
	while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
		pad++;
	for (size_t k = 0; k < len - pad; k++) {
		if (s[k] == '\0' || strchr(alphabet, s[k]) == NULL)
			return false;
	}
	return true;
}

/* CloudEvents 1.0.2 §3.1.1: an Integer is 32 bits, written without a
 * fraction or exponent. */
static bool
integer(const struct bb_json *doc, int v)
{
	long long n;

	return bb_json_integer(doc, v, &n) && n >= -2147483648LL &&
	    n <= 2147483647LL;
}

/* One member of a structured event. */
static void
json_member(struct reader *r, const struct bb_json *doc, int m,
    struct bb_buf *name, struct bb_buf *value)
{
	struct bb_cloudevent *ce = r->ce;
	int v = m + 1, a;
	enum bb_json_type t = bb_json_type(doc, v);
	size_t len;
	const char *raw;

	bb_buf_reset(name);
	bb_json_unescape(doc, m, name);
	bb_buf_putc(name, '\0');
	name->len--;
	if (t == BB_JSON_NULL && strcmp(name->data, "data") != 0) {
		/* JSON event format §2.2: a null attribute is an absent one */
	} else if (strcmp(name->data, "specversion") == 0) {
		specversion(r, bb_json_string_equals(doc, v, "1.0"));
	} else if (strcmp(name->data, "data") == 0) {
		ce->data = v;
	} else if (strcmp(name->data, "data_base64") == 0) {
		raw = bb_json_raw(doc, v, &len);
		if (t != BB_JSON_STRING || !base64_valid(raw, len))
			problem(r, "data_base64", "must be a base64 string");
		ce->data_base64 = v;
	} else if (t == BB_JSON_STRING) {
		bb_buf_reset(value);
		bb_json_unescape(doc, v, value);
		take(r, name->data, name->len, value->data ? value->data : "",
		    value->len, doc, v);
	} else if ((a = known(name->data, name->len)) < 0 &&
	    (t == BB_JSON_BOOL || (t == BB_JSON_NUMBER && integer(doc, v)))) {
		take(r, name->data, name->len, NULL, 0, doc, v);
	} else {
		char field[32];
		if (a >= 0)
			r->seen |= 1u << a;
		field_of(field, sizeof(field), name->data, name->len);
		problem(r, field, a >= 0 ? "must be a string" : "an extension's "
		    "value is a string, an integer (32 bits) or a boolean");
	}
}

int
bb_cloudevent_from_json(struct bb_cloudevent *ce, const struct bb_json *doc,
    int obj, struct bb_buf *errors)
{
	struct reader r = { .ce = ce, .errors = errors };
	struct bb_buf name, value;

	reset(ce);
	bb_buf_init(&name);
	bb_buf_init(&value);
	for (int m = bb_json_member(doc, obj, -1); m >= 0;
	    m = bb_json_member(doc, obj, m))
		json_member(&r, doc, m, &name, &value);
	bb_buf_free(&name);
	bb_buf_free(&value);
	if (ce->data >= 0 && ce->data_base64 >= 0)
		problem(&r, "data", "data and data_base64 exclude each other");
	return finish(&r);
}

/* HTTP binding 1.0.2 §3.1.3.2: a header's value is percent-decoded, and
 * must then be UTF-8. */
static bool
percent_decode(const char *s, struct bb_buf *out)
{
	bb_buf_reset(out);
	for (; *s; s++) {
		if (*s != '%') {
			bb_buf_putc(out, *s);
			continue;
		}
		int hi = OPENSSL_hexchar2int((unsigned char)s[1]);
		int lo = hi < 0 ? -1 : OPENSSL_hexchar2int((unsigned char)s[2]);
		if (hi < 0 || lo < 0)
			return false;
		bb_buf_putc(out, (char)(hi * 16 + lo));
		s += 2;
	}
	return bb_utf8_valid(out->data ? out->data : "", out->len);
}

int
bb_cloudevent_from_headers(struct bb_cloudevent *ce,
    const struct bb_request *req, struct bb_buf *errors, char *why,
    size_t whylen)
{
	struct reader r = { .ce = ce, .errors = errors };
	struct bb_buf name, value;
	int rc = 0;

	reset(ce);
	if (req->nce < 0) {
		snprintf(why, whylen, "more than %d ce- headers",
		    BB_CE_MAX_HEADERS);
		return -1;
	}
	bb_buf_init(&name);
	bb_buf_init(&value);
	for (int k = 0; k < req->nce && rc == 0; k++) {
		const struct bb_ce_header *h = &req->ce[k];
		size_t nlen = strcspn(h->name, "=");
		/* CGI/1.1 (RFC 3875 §4.1.18) names: only [A-Z0-9_] should
		 * come, but nothing from the web server is trusted. */
		if (nlen == 0 || nlen > 64 || strspn(h->name,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789_") != nlen) {
			snprintf(why, whylen, "a ce- header's name is not 1-64 "
			    "letters, digits and dashes");
			rc = -1;
			break;
		}
		bb_buf_reset(&name);
		for (size_t j = 0; j < nlen; j++)
			bb_buf_putc(&name, (char)(h->name[j] >= 'A' &&
			    h->name[j] <= 'Z' ? h->name[j] + 32 : h->name[j]));
		bb_buf_putc(&name, '\0');
		name.len--;
		if (strlen(h->value) > 3 * BB_CE_MAX_VALUE ||
		    !percent_decode(h->value, &value)) {
			snprintf(why, whylen, "the ce-%s header is not "
			    "percent-encoded UTF-8 of at most %d bytes",
			    name.data, BB_CE_MAX_VALUE);
			rc = -1;
		} else if (strcmp(name.data, "specversion") == 0) {
			specversion(&r, value.len == 3 &&
			    memcmp(value.data, "1.0", 3) == 0);
		} else if (strcmp(name.data, "datacontenttype") == 0) {
			problem(&r, "datacontenttype", "in binary mode, the "
			    "Content-Type header is the datacontenttype");
		} else if (strcmp(name.data, "data") == 0) {
			problem(&r, "data", "in binary mode, the body is the "
			    "data");
		} else {
			take(&r, name.data, name.len, value.data ? value.data : "",
			    value.len, NULL, -1);
		}
	}
	if (rc == 0 && req->content_type && *req->content_type)
		take(&r, "datacontenttype", 15, req->content_type,
		    strlen(req->content_type), NULL, -1);
	bb_buf_free(&name);
	bb_buf_free(&value);
	return rc != 0 ? rc : finish(&r);
}

/* §9.1: JSON data is what needs no other decoding than JSON's. */
bool
bb_cloudevent_data_is_json(const struct bb_cloudevent *ce)
{
	const char *t = bb_cloudevent_get(ce, BB_CE_DATACONTENTTYPE);
	size_t n;

	if (t == NULL || bb_content_type_is_json(t))
		return true;
	n = strcspn(t, ";");
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	return n > 5 && strncasecmp(t + n - 5, "+json", 5) == 0;
}
