/* format: the `format` values that JSON Schema draft-07 validation asserts
 * in Bloodbank (CONTRACT §10): date-time, date and time (RFC 3339 §5.6),
 * email (RFC 5321 §4.1.2 Mailbox), hostname (RFC 1123 §2.1, each label
 * 1-63 bytes, 253 in all), ipv4 (dotted quad, no leading zeros), ipv6 (RFC
 * 4291 §2.2), uri (RFC 3986 §3, absolute: with a scheme) and uuid (RFC
 * 4122 §3, any version, either case). Pure: no I/O, no allocation. */
#ifndef BB_FORMAT_H
#define BB_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

enum bb_format {
	BB_FORMAT_NONE,		/* not asserted: any string passes */
	BB_FORMAT_DATE_TIME,
	BB_FORMAT_DATE,
	BB_FORMAT_TIME,
	BB_FORMAT_EMAIL,
	BB_FORMAT_HOSTNAME,
	BB_FORMAT_IPV4,
	BB_FORMAT_IPV6,
	BB_FORMAT_URI,
	BB_FORMAT_UUID,
};

/* The format named s[0..len), or BB_FORMAT_NONE for a name that draft-07
 * defines but Bloodbank does not assert (idn-email, iri, regex, ...) or
 * does not know. */
enum bb_format bb_format_lookup(const char *s, size_t len);

/* True when s[0..len) (valid UTF-8, unescaped) is an instance of f. */
bool bb_format_check(enum bb_format f, const char *s, size_t len);

#endif
