#include "format.h"

#include <string.h>

#include "uuid.h"

/* RFC 1123 §2.1 and RFC 1035 §2.3.4: a label is 1-63 octets, a name 255 on
 * the wire, which is 253 in text without the root's trailing dot. */
#define LABEL_MAX 63
#define HOSTNAME_MAX 253

/* RFC 5321 §4.5.3.1.1: the local part of a mailbox is at most 64 octets. */
#define LOCAL_PART_MAX 64

/* The grammars here are ASCII (RFC 5234 §B.1); <ctype.h> would follow the
 * locale and could take a byte of a UTF-8 sequence for a letter. */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True when c is one of the bytes of set; never for NUL, which the strings
 * checked here may hold and strchr() would find in every set. */
static bool
in_set(char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

/* RFC 5234 §2.3: quoted strings in ABNF, such as "T" or "IPv6:", match
 * either case. */
static bool
equal_ci(char a, char b)
{
	if (a >= 'A' && a <= 'Z')
		a = (char)(a - 'A' + 'a');
	if (b >= 'A' && b <= 'Z')
		b = (char)(b - 'A' + 'a');
	return a == b;
}

/* The n decimal digits at s, as a number in *v. */
static bool
digits(const char *s, size_t n, int *v)
{
	*v = 0;
	for (size_t k = 0; k < n; k++) {
		if (!is_digit(s[k]))
			return false;
		*v = *v * 10 + (s[k] - '0');
	}
	return true;
}

/* RFC 3339 Appendix C: the Gregorian leap year. */
static int
days_in_month(int year, int month)
{
	static const int days[] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

	return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 §5.6 full-date = date-fullyear "-" date-month "-" date-mday,
 * exactly 4, 2 and 2 digits; the day within its month (§5.7). */
static bool
full_date(const char *s, size_t len)
{
	int year, month, day;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return false;
	if (!digits(s, 4, &year) || !digits(s + 5, 2, &month) ||
	    !digits(s + 8, 2, &day))
		return false;
	return month >= 1 && month <= 12 && day >= 1 &&
	    day <= days_in_month(year, month);
}

/* RFC 3339 §5.6 time-offset = "Z" / time-numoffset, with time-numoffset =
 * ("+" / "-") time-hour ":" time-minute; *minutes is the offset east of
 * UTC. "-00:00" (§4.3, UTC with the local offset unknown) counts as 0. */
static bool
time_offset(const char *s, size_t len, int *minutes)
{
	int hour, minute;

	if (len == 1 && equal_ci(s[0], 'Z')) {
		*minutes = 0;
		return true;
	}
	if (len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
		return false;
	if (!digits(s + 1, 2, &hour) || !digits(s + 4, 2, &minute) ||
	    hour > 23 || minute > 59)
		return false;
	*minutes = (s[0] == '-' ? -1 : 1) * (hour * 60 + minute);
	return true;
}

/* RFC 3339 §5.6 full-time = partial-time time-offset, partial-time =
 * time-hour ":" time-minute ":" time-second ["." 1*DIGIT]. */
static bool
full_time(const char *s, size_t len)
{
	int hour, minute, second, offset, utc;
	size_t k = 8;

	if (len < 9 || s[2] != ':' || s[5] != ':')
		return false;
	if (!digits(s, 2, &hour) || !digits(s + 3, 2, &minute) ||
	    !digits(s + 6, 2, &second) ||
	    hour > 23 || minute > 59 || second > 60)
		return false;
	if (s[k] == '.') {
		size_t start = ++k;

		while (k < len && is_digit(s[k]))
			k++;
		if (k == start)
			return false;
	}
	if (!time_offset(s + k, len - k, &offset))
		return false;
	/* §5.6: second 60 only "based on leap second rules", and §5.7
	 * (Appendix D) adds leap seconds at the end of a UTC day: the time
	 * must be 23:59 in UTC, whatever the offset. The date is not held
	 * to a list, since leap seconds are announced only months ahead. */
	utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
	return second < 60 || utc == 23 * 60 + 59;
}

/* RFC 3339 §5.6 date-time = full-date "T" full-time; "T" and "Z" may be
 * lower case (the NOTE in §5.6). The ABNF has no space separator. */
static bool
date_time(const char *s, size_t len)
{
	return len > 11 && full_date(s, 10) && equal_ci(s[10], 'T') &&
	    full_time(s + 11, len - 11);
}

/* RFC 3986 §3.2.2 dec-octet: 0-255 in decimal, without leading zeros
 * (which inet_aton() would read as octal). Advances *p past it. */
static bool
dec_octet(const char **p, const char *end)
{
	const char *start = *p;
	int v = 0;

	while (*p < end && *p - start < 4 && is_digit(**p))
		v = v * 10 + (*(*p)++ - '0');
	if (*p == start || *p - start > 3 || v > 255)
		return false;
	return *p - start == 1 || *start != '0';
}

/* RFC 3986 §3.2.2 IPv4address = dec-octet 3("." dec-octet), the dotted
 * quad and nothing else: no shorthand ("127.1"), hex, octal or integer
 * forms that inet_aton() accepts. */
static bool
ipv4(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	for (int part = 0; part < 4; part++) {
		if (part > 0 && (p == end || *p++ != '.'))
			return false;
		if (!dec_octet(&p, end))
			return false;
	}
	return p == end;
}

/* RFC 4291 §2.2: eight groups of 1-4 hex digits separated by ":" (form 1),
 * one "::" standing for one or more groups of zeros (form 2), and the last
 * two groups written as a dotted quad (form 3, the quad as in ipv4()). No
 * zone id (RFC 4007 §11): it names an interface, not an address. */
static bool
ipv6(const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	int groups = 0;
	bool elided = false;

	if (len >= 2 && p[0] == ':' && p[1] == ':') {
		elided = true;
		p += 2;
	}
	while (p < end) {
		const char *start = p;

		while (p < end && p - start < 5 && is_hex(*p))
			p++;
		if (p < end && *p == '.')
			return groups <= (elided ? 5 : 6) &&
			    ipv4(start, (size_t)(end - start)) &&
			    (elided || groups == 6);
		if (p == start || p - start > 4)
			return false;
		groups++;
		if (p == end)
			break;
		if (*p++ != ':' || p == end)
			return false;	/* a stray byte, or a trailing ":" */
		if (*p == ':') {
			if (elided)
				return false;
			elided = true;
			p++;
		}
	}
	return elided ? groups <= 7 : groups == 8;
}

/* RFC 1123 §2.1 (which lets a label start with a digit), RFC 952: labels
 * of letters, digits and hyphens, neither first nor last a hyphen,
 * separated by single dots; the name as written, without the trailing dot
 * of the absolute form (RFC 1034 §3.1). An IDN only in its A-label (ASCII)
 * form: a "xn--" label is not decoded, nor checked against IDNA2008. */
static bool
hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > HOSTNAME_MAX)
		return false;
	for (size_t k = 0; k <= len; k++) {
		if (k == len || s[k] == '.') {
			if (label == 0 || label > LABEL_MAX || s[k - 1] == '-')
				return false;
			label = 0;
		} else if (is_alpha(s[k]) || is_digit(s[k]) ||
		    (s[k] == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* RFC 5321 §4.1.2 Dot-string = Atom *("." Atom), Atom = 1*atext (RFC 5322
 * §3.2.3): no leading, trailing or doubled dot. */
static bool
dot_string(const char *s, size_t len)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";

	for (size_t k = 0; k < len; k++) {
		if (s[k] == '.') {
			if (k == 0 || k == len - 1 || s[k - 1] == '.')
				return false;
		} else if (!is_alpha(s[k]) && !is_digit(s[k]) &&
		    !in_set(s[k], atext)) {
			return false;
		}
	}
	return len > 0;
}

/* RFC 5321 §4.1.2 Quoted-string = DQUOTE *QcontentSMTP DQUOTE, with
 * qtextSMTP = %d32-33 / %d35-91 / %d93-126 and quoted-pairSMTP = "\"
 * %d32-126: printable ASCII, space included, with '"' and '\' escaped. */
static bool
quoted_string(const char *s, size_t len)
{
	size_t k = 1;

	if (len < 2 || s[0] != '"')
		return false;
	while (k < len - 1) {
		unsigned char c = (unsigned char)s[k];

		if (c == '\\') {
			c = (unsigned char)s[k + 1];
			k += 2;
		} else if (c == '"') {
			return false;
		} else {
			k++;
		}
		if (c < 32 || c > 126)
			return false;
	}
	/* An escape as the last byte before the quote swallowed the quote. */
	return k == len - 1 && s[k] == '"';
}

/* RFC 5321 §4.1.3 address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]".
 * General-address-literal needs a Standardized-tag registered with IANA,
 * and none is; RFC 4291 text is taken for IPv6-addr, which is slightly
 * more liberal ("::" for a single group of zeros). */
static bool
address_literal(const char *s, size_t len)
{
	static const char tag[] = "IPv6:";
	size_t n = sizeof(tag) - 1;

	if (len < 2 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	for (size_t k = 0; k < n; k++) {
		if (k >= len || !equal_ci(s[k], tag[k]))
			return ipv4(s, len);
	}
	return ipv6(s + n, len - n);
}

/* RFC 5321 §4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ).
 * A quoted local part may hold "@" and neither domain form can, so the
 * mailbox splits at the last "@". The Domain is a hostname(). */
static bool
email(const char *s, size_t len)
{
	size_t at = len;

	while (at > 0 && s[at - 1] != '@')
		at--;
	if (at <= 1 || at - 1 > LOCAL_PART_MAX)
		return false;
	if (!dot_string(s, at - 1) && !quoted_string(s, at - 1))
		return false;
	if (at < len && s[at] == '[')
		return address_literal(s + at, len - at);
	return hostname(s + at, len - at);
}

/* RFC 3986 §2.3 unreserved, §2.2 sub-delims. */
static bool
is_unreserved(char c)
{
	return is_alpha(c) || is_digit(c) || in_set(c, "-._~");
}

#define SUB_DELIMS "!$&'()*+,;="

/* Advances *p over unreserved bytes, sub-delims, pct-encoded triplets
 * (RFC 3986 §2.1: "%" HEXDIG HEXDIG) and the bytes of extra, to the first
 * other byte or end. False on a "%" that does not start a triplet. */
static bool
uri_run(const char **p, const char *end, const char *extra)
{
	const char *q = *p;

	while (q < end) {
		if (*q == '%') {
			if (end - q < 3 || !is_hex(q[1]) || !is_hex(q[2]))
				return false;
			q += 3;
		} else if (is_unreserved(*q) || in_set(*q, SUB_DELIMS) ||
		    in_set(*q, extra)) {
			q++;
		} else {
			break;
		}
	}
	*p = q;
	return true;
}

/* RFC 3986 §3.2.3 port = *DIGIT. */
static bool
port(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (!is_digit(*p))
			return false;
	}
	return true;
}

/* RFC 3986 §3.2.2 IP-literal = "[" ( IPv6address / IPvFuture ) "]" with
 * IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ), then
 * an optional ":" port; h starts at the "[". */
static bool
ip_literal(const char *h, const char *end)
{
	const char *close = memchr(h, ']', (size_t)(end - h));
	const char *p = h + 1;

	if (close == NULL)
		return false;
	if (close + 1 < end && (close[1] != ':' || !port(close + 2, end)))
		return false;
	if (p == close || !equal_ci(*p, 'v'))
		return ipv6(p, (size_t)(close - p));
	for (p++; p < close && is_hex(*p); p++)
		;
	if (p == h + 2 || p == close || *p++ != '.' || p == close)
		return false;
	for (; p < close; p++) {
		if (!is_unreserved(*p) && !in_set(*p, SUB_DELIMS ":"))
			return false;
	}
	return true;
}

/* RFC 3986 §3.2 authority = [ userinfo "@" ] host [ ":" port ], ending at
 * the first "/", "?", "#" or the end (none can appear in it). userinfo
 * cannot hold "@" and host cannot either, so the first "@" splits them.
 * IPv4address is a reg-name by syntax ("999.1.1.1" is a reg-name). */
static bool
authority(const char **p, const char *end)
{
	const char *a = *p, *aend = a, *h, *at;

	while (aend < end && !in_set(*aend, "/?#"))
		aend++;
	*p = aend;
	at = memchr(a, '@', (size_t)(aend - a));
	h = at ? at + 1 : a;
	if (at && (!uri_run(&a, at, ":") || a != at))
		return false;
	if (h < aend && *h == '[')
		return ip_literal(h, aend);
	if (!uri_run(&h, aend, ""))
		return false;
	return h == aend || (*h == ':' && port(h + 1, aend));
}

/* RFC 3986 §3 URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ],
 * scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). A hier-part that
 * does not start with "//" is one of path-absolute, path-rootless or
 * path-empty: together, any *( pchar / "/" ) not starting with "//". */
static bool
uri(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	if (p == end || !is_alpha(*p))
		return false;
	while (p < end && (is_alpha(*p) || is_digit(*p) || in_set(*p, "+-.")))
		p++;
	if (p == end || *p++ != ':')
		return false;
	if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
		p += 2;
		if (!authority(&p, end))
			return false;
	}
	/* pchar = unreserved / pct-encoded / sub-delims / ":" / "@" */
	if (!uri_run(&p, end, ":@/"))
		return false;
	/* query and fragment = *( pchar / "/" / "?" ), so a second "#" ends
	 * the run short of the end. */
	if (p < end && *p == '?') {
		p++;
		if (!uri_run(&p, end, ":@/?"))
			return false;
	}
	if (p < end && *p == '#') {
		p++;
		if (!uri_run(&p, end, ":@/?"))
			return false;
	}
	return p == end;
}

static const struct {
	const char *name;
	enum bb_format format;
} names[] = {
	{ "date-time", BB_FORMAT_DATE_TIME },
	{ "date", BB_FORMAT_DATE },
	{ "time", BB_FORMAT_TIME },
	{ "email", BB_FORMAT_EMAIL },
	{ "hostname", BB_FORMAT_HOSTNAME },
	{ "ipv4", BB_FORMAT_IPV4 },
	{ "ipv6", BB_FORMAT_IPV6 },
	{ "uri", BB_FORMAT_URI },
	{ "uuid", BB_FORMAT_UUID },
};

enum bb_format
bb_format_lookup(const char *s, size_t len)
{
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (strlen(names[k].name) == len &&
		    memcmp(names[k].name, s, len) == 0)
			return names[k].format;
	}
	return BB_FORMAT_NONE;
}

bool
bb_format_check(enum bb_format f, const char *s, size_t len)
{
	switch (f) {
	case BB_FORMAT_NONE:
		return true;
	case BB_FORMAT_DATE_TIME:
		return date_time(s, len);
	case BB_FORMAT_DATE:
		return full_date(s, len);
	case BB_FORMAT_TIME:
		return full_time(s, len);
	case BB_FORMAT_EMAIL:
		return email(s, len);
	case BB_FORMAT_HOSTNAME:
		return hostname(s, len);
	case BB_FORMAT_IPV4:
		return ipv4(s, len);
	case BB_FORMAT_IPV6:
		return ipv6(s, len);
	case BB_FORMAT_URI:
		return uri(s, len);
	case BB_FORMAT_UUID:
		return bb_uuid_valid(s, len);
	}
	return false;	/* not a value of the enum: a caller's bug */
}
