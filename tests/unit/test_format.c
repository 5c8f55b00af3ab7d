#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tests.h"

/* The length comes from sizeof, not strlen, so that a literal may hold a
 * NUL byte; a failure names the literal. */
#define VALID(f, lit) CU_ASSERT(bb_format_check(f, lit, sizeof(lit) - 1))
#define INVALID(f, lit) CU_ASSERT(!bb_format_check(f, lit, sizeof(lit) - 1))

#define LOOKUP(lit) bb_format_lookup(lit, sizeof(lit) - 1)

static void
test_lookup_knows_the_asserted_formats(void)
{
	CU_ASSERT_EQUAL(LOOKUP("date-time"), BB_FORMAT_DATE_TIME);
	CU_ASSERT_EQUAL(LOOKUP("date"), BB_FORMAT_DATE);
	CU_ASSERT_EQUAL(LOOKUP("time"), BB_FORMAT_TIME);
	CU_ASSERT_EQUAL(LOOKUP("email"), BB_FORMAT_EMAIL);
	CU_ASSERT_EQUAL(LOOKUP("hostname"), BB_FORMAT_HOSTNAME);
	CU_ASSERT_EQUAL(LOOKUP("ipv4"), BB_FORMAT_IPV4);
	CU_ASSERT_EQUAL(LOOKUP("ipv6"), BB_FORMAT_IPV6);
	CU_ASSERT_EQUAL(LOOKUP("uri"), BB_FORMAT_URI);
	CU_ASSERT_EQUAL(LOOKUP("uuid"), BB_FORMAT_UUID);
}

/* Draft-07 formats Bloodbank does not assert, and names it does not know:
 * any string passes them. Names match exactly: no case folding, no
 * prefix, no NUL-terminated shortcut. */
static void
test_lookup_gives_none_for_other_names(void)
{
	CU_ASSERT_EQUAL(LOOKUP("idn-email"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("idn-hostname"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("iri"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("uri-reference"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("regex"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("json-pointer"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP(""), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("UUID"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("date-"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(LOOKUP("uuid\0"), BB_FORMAT_NONE);
	CU_ASSERT_EQUAL(bb_format_lookup("date-time", 4), BB_FORMAT_DATE);
}

static void
test_none_accepts_any_string(void)
{
	VALID(BB_FORMAT_NONE, "");
	VALID(BB_FORMAT_NONE, "not a date \0 at all");
}

/* RFC 3339 §5.6 full-date; the first cases are the official suite's. */
static void
test_date_accepts_full_dates(void)
{
	VALID(BB_FORMAT_DATE, "1963-06-19");
	VALID(BB_FORMAT_DATE, "0001-01-01");
	VALID(BB_FORMAT_DATE, "9999-12-31");
	VALID(BB_FORMAT_DATE, "1582-10-10");	/* proleptic Gregorian */
}

/* RFC 3339 §5.7 and Appendix C: the days of each month, February 29 in
 * leap years only, and a century is a leap year when divisible by 400. */
static void
test_date_holds_the_day_to_its_month(void)
{
	static const char *const last[] = {
		"2021-01-31", "2021-02-28", "2021-03-31", "2021-04-30",
		"2021-05-31", "2021-06-30", "2021-07-31", "2021-08-31",
		"2021-09-30", "2021-10-31", "2021-11-30", "2021-12-31",
	};
	static const char *const past[] = {
		"2021-01-32", "2021-02-29", "2021-03-32", "2021-04-31",
		"2021-05-32", "2021-06-31", "2021-07-32", "2021-08-32",
		"2021-09-31", "2021-10-32", "2021-11-31", "2021-12-32",
	};

	for (size_t k = 0; k < 12; k++) {
		CU_ASSERT(bb_format_check(BB_FORMAT_DATE, last[k], 10));
		CU_ASSERT(!bb_format_check(BB_FORMAT_DATE, past[k], 10));
	}
	VALID(BB_FORMAT_DATE, "2020-02-29");
	VALID(BB_FORMAT_DATE, "2000-02-29");
	VALID(BB_FORMAT_DATE, "0400-02-29");
	INVALID(BB_FORMAT_DATE, "2020-02-30");
	INVALID(BB_FORMAT_DATE, "1900-02-29");
	INVALID(BB_FORMAT_DATE, "2100-02-29");
	INVALID(BB_FORMAT_DATE, "0100-02-29");
	INVALID(BB_FORMAT_DATE, "1998-13-01");
	INVALID(BB_FORMAT_DATE, "2024-00-15");
	INVALID(BB_FORMAT_DATE, "2024-01-00");
}

/* Only RFC 3339, not the rest of ISO 8601 (the official suite's cases
 * first), and exactly 4-2-2 ASCII digits with nothing around them. */
static void
test_date_rejects_other_notations(void)
{
	INVALID(BB_FORMAT_DATE, "06/19/1963");
	INVALID(BB_FORMAT_DATE, "2013-350");
	INVALID(BB_FORMAT_DATE, "20230328");
	INVALID(BB_FORMAT_DATE, "2023-W01");
	INVALID(BB_FORMAT_DATE, "2023-W13-2");
	INVALID(BB_FORMAT_DATE, "1998-1-20");
	INVALID(BB_FORMAT_DATE, "1998-01-1");
	INVALID(BB_FORMAT_DATE, "998-01-01");
	INVALID(BB_FORMAT_DATE, "12020-01-01");
	INVALID(BB_FORMAT_DATE, "+2020-01-01");
	INVALID(BB_FORMAT_DATE, "2020.01.01");
	INVALID(BB_FORMAT_DATE, "2020-01-0:");
	INVALID(BB_FORMAT_DATE, "1963-06-1\u09ea");	/* a Bengali 4 */
	INVALID(BB_FORMAT_DATE, "2020\u201301\u201301");	/* en dashes */
	INVALID(BB_FORMAT_DATE, "");
	INVALID(BB_FORMAT_DATE, " 2024-01-15");
	INVALID(BB_FORMAT_DATE, "2024-01-15 ");
	INVALID(BB_FORMAT_DATE, "2020-01-01Z");
	INVALID(BB_FORMAT_DATE, "2020-01-01\0");
	INVALID(BB_FORMAT_DATE, "2020-11-28T23:55:45Z");
}

/* RFC 3339 §5.6 full-time: partial-time and a required time-offset. */
static void
test_time_accepts_full_times(void)
{
	VALID(BB_FORMAT_TIME, "08:30:06.283185Z");
	VALID(BB_FORMAT_TIME, "08:30:06Z");
	VALID(BB_FORMAT_TIME, "23:20:50.52Z");
	VALID(BB_FORMAT_TIME, "08:30:06+00:20");
	VALID(BB_FORMAT_TIME, "08:30:06-08:00");
	VALID(BB_FORMAT_TIME, "12:34:56-00:00");	/* §4.3: offset unknown */
	VALID(BB_FORMAT_TIME, "08:30:06z");		/* §5.6 NOTE */
	VALID(BB_FORMAT_TIME, "00:00:00+23:59");
	VALID(BB_FORMAT_TIME, "23:59:59.999999999999999Z");
}

static void
test_time_rejects_out_of_range_fields(void)
{
	INVALID(BB_FORMAT_TIME, "24:00:00Z");
	INVALID(BB_FORMAT_TIME, "00:60:00Z");
	INVALID(BB_FORMAT_TIME, "00:00:61Z");
	INVALID(BB_FORMAT_TIME, "01:02:03+24:00");
	INVALID(BB_FORMAT_TIME, "01:02:03+00:60");
}

/* §5.6 allows second 60 only by the leap second rules: a leap second is
 * 23:59:60 in UTC (§5.7, Appendix D), so local time minus the offset must
 * be 23:59. */
static void
test_time_allows_second_60_only_at_2359_utc(void)
{
	VALID(BB_FORMAT_TIME, "23:59:60Z");
	VALID(BB_FORMAT_TIME, "23:59:60.5z");
	VALID(BB_FORMAT_TIME, "23:59:60+00:00");
	VALID(BB_FORMAT_TIME, "01:29:60+01:30");
	VALID(BB_FORMAT_TIME, "23:29:60+23:30");
	VALID(BB_FORMAT_TIME, "15:59:60-08:00");
	VALID(BB_FORMAT_TIME, "00:29:60-23:30");
	INVALID(BB_FORMAT_TIME, "22:59:60Z");
	INVALID(BB_FORMAT_TIME, "23:58:60Z");
	INVALID(BB_FORMAT_TIME, "22:59:60+00:00");
	INVALID(BB_FORMAT_TIME, "23:58:60+00:00");
	INVALID(BB_FORMAT_TIME, "23:59:60+01:00");
	INVALID(BB_FORMAT_TIME, "23:59:60+00:30");
	INVALID(BB_FORMAT_TIME, "23:59:60-01:00");
	INVALID(BB_FORMAT_TIME, "23:59:60-00:30");
}

/* The official suite's cases first: no zone names, no ISO 8601 comma,
 * two digits everywhere, one offset. */
static void
test_time_rejects_other_notations(void)
{
	INVALID(BB_FORMAT_TIME, "08:30:06 PST");
	INVALID(BB_FORMAT_TIME, "01:01:01,1111");
	INVALID(BB_FORMAT_TIME, "12:00:00");
	INVALID(BB_FORMAT_TIME, "12:00:00.52");
	INVALID(BB_FORMAT_TIME, "12:00:00.Z");
	INVALID(BB_FORMAT_TIME, "008:030:006Z");
	INVALID(BB_FORMAT_TIME, "8:3:6Z");
	INVALID(BB_FORMAT_TIME, "08:30:06-8:000");
	INVALID(BB_FORMAT_TIME, "08:30:06+0800");
	INVALID(BB_FORMAT_TIME, "08:30:06+08");
	INVALID(BB_FORMAT_TIME, "08:30:06#00:20");
	INVALID(BB_FORMAT_TIME, "01:02:03Z+00:30");
	INVALID(BB_FORMAT_TIME, "ab:cd:ef");
	INVALID(BB_FORMAT_TIME, "1\u09e8:00:00Z");	/* a Bengali 2 */
	INVALID(BB_FORMAT_TIME, "08:30:06Z\0");
	INVALID(BB_FORMAT_TIME, "2020-11-28T23:55:45Z");
}

/* RFC 3339 §5.6 date-time = full-date "T" full-time. */
static void
test_date_time_accepts_rfc3339_instants(void)
{
	VALID(BB_FORMAT_DATE_TIME, "1963-06-19T08:30:06.283185Z");
	VALID(BB_FORMAT_DATE_TIME, "1963-06-19T08:30:06Z");
	VALID(BB_FORMAT_DATE_TIME, "1937-01-01T12:00:27.87+00:20");
	VALID(BB_FORMAT_DATE_TIME, "1990-12-31T15:59:50.123-08:00");
	VALID(BB_FORMAT_DATE_TIME, "1963-06-19t08:30:06.283185z");
	VALID(BB_FORMAT_DATE_TIME, "1985-04-12T00:59:59.999999999999999Z");
	VALID(BB_FORMAT_DATE_TIME, "1998-12-31T23:59:60Z");
	VALID(BB_FORMAT_DATE_TIME, "1998-12-31T15:59:60.123-08:00");
}

/* The official suite's cases first. */
static void
test_date_time_rejects_bad_dates_times_and_notations(void)
{
	INVALID(BB_FORMAT_DATE_TIME, "1990-02-31T15:59:60.123-08:00");
	INVALID(BB_FORMAT_DATE_TIME, "1990-12-31T15:59:60-24:00");
	INVALID(BB_FORMAT_DATE_TIME, "06/19/1963 08:30:06 PST");
	INVALID(BB_FORMAT_DATE_TIME, "2013-350T01:01:01");
	INVALID(BB_FORMAT_DATE_TIME, "1998-12-31T23:59:61Z");
	INVALID(BB_FORMAT_DATE_TIME, "1998-12-31T23:58:60Z");
	INVALID(BB_FORMAT_DATE_TIME, "1998-12-31T22:59:60Z");
	INVALID(BB_FORMAT_DATE_TIME, "2016-12-31T24:59:60+01:00");
	INVALID(BB_FORMAT_DATE_TIME, "1990-12-31T10:00:00+10:60");
	INVALID(BB_FORMAT_DATE_TIME, "1963-06-19T08:30:06.28123+01:00Z");
	INVALID(BB_FORMAT_DATE_TIME, "1963-6-19T08:30:06.283185Z");
	INVALID(BB_FORMAT_DATE_TIME, "1963-06-11T0\u09ea:00:00Z");
	INVALID(BB_FORMAT_DATE_TIME, "+11963-06-19T08:30:06.283185Z");
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12T23:20:50+01");
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12T23:20:50Z\n");
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12 23:20:50Z");	/* ABNF: "T" */
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12T");
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12");
	INVALID(BB_FORMAT_DATE_TIME, "1985-04-12T23:20:50\0Z");
}

/* RFC 5321 §4.1.2 Mailbox: Dot-string or Quoted-string, then a domain or
 * an address literal (§4.1.3). */
static void
test_email_accepts_mailboxes(void)
{
	VALID(BB_FORMAT_EMAIL, "joe.bloggs@example.com");
	VALID(BB_FORMAT_EMAIL, "te~st@example.com");
	VALID(BB_FORMAT_EMAIL, "~test@example.com");
	VALID(BB_FORMAT_EMAIL, "test~@example.com");
	VALID(BB_FORMAT_EMAIL, "te.s.t@example.com");
	VALID(BB_FORMAT_EMAIL, "!#$%&'*+-/=?^_`{|}~@example.com");
	VALID(BB_FORMAT_EMAIL, "postmaster@localhost");
	VALID(BB_FORMAT_EMAIL, "\"joe bloggs\"@example.com");
	VALID(BB_FORMAT_EMAIL, "\"joe..bloggs\"@example.com");
	VALID(BB_FORMAT_EMAIL, "\"joe@bloggs\"@example.com");
	VALID(BB_FORMAT_EMAIL, "\"a\\\"b\\\\c\"@example.com");
	VALID(BB_FORMAT_EMAIL, "\"\"@example.com");
	VALID(BB_FORMAT_EMAIL, "joe.bloggs@[127.0.0.1]");
	VALID(BB_FORMAT_EMAIL, "joe.bloggs@[IPv6:::1]");
	VALID(BB_FORMAT_EMAIL, "joe.bloggs@[ipv6:2001:db8::1]");
}

static void
test_email_rejects_what_is_not_one_mailbox(void)
{
	INVALID(BB_FORMAT_EMAIL, "2962");
	INVALID(BB_FORMAT_EMAIL, ".test@example.com");
	INVALID(BB_FORMAT_EMAIL, "test.@example.com");
	INVALID(BB_FORMAT_EMAIL, "te..st@example.com");
	INVALID(BB_FORMAT_EMAIL, "user1@oceania.org, user2@oceania.org");
	INVALID(BB_FORMAT_EMAIL, "\"Winston Smith\" <winston.smith@recdep."
	    "minitrue> (Records Department)");
	INVALID(BB_FORMAT_EMAIL, "@example.com");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@");
	INVALID(BB_FORMAT_EMAIL, "joe bloggs@example.com");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@invalid=domain.com");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@example.com.");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@[127.0.0.300]");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@[::1]");
	INVALID(BB_FORMAT_EMAIL, "joe.bloggs@[x-tag:stuff]");
	INVALID(BB_FORMAT_EMAIL, "\"unclosed@example.com");
	INVALID(BB_FORMAT_EMAIL, "\"a\\\"@example.com");	/* quote escaped */
	INVALID(BB_FORMAT_EMAIL, "\"tab\there\"@example.com");
	INVALID(BB_FORMAT_EMAIL, "j\u00f6e@example.com");	/* that is idn-email */
	INVALID(BB_FORMAT_EMAIL, "joe\0@example.com");
}

/* RFC 5321 §4.5.3.1.1: a local part of 64 octets at most. */
static void
test_email_limits_the_local_part_to_64_octets(void)
{
	char s[80];

	memset(s, 'a', 64);
	memcpy(s + 64, "@x.io", 5);
	CU_ASSERT(bb_format_check(BB_FORMAT_EMAIL, s, 69));
	memset(s, 'a', 65);
	memcpy(s + 65, "@x.io", 5);
	CU_ASSERT(!bb_format_check(BB_FORMAT_EMAIL, s, 70));
}

/* RFC 1123 §2.1: letters, digits, hyphens; a label may start with a
 * digit but neither start nor end with a hyphen. */
static void
test_hostname_accepts_dns_names(void)
{
	VALID(BB_FORMAT_HOSTNAME, "www.example.com");
	VALID(BB_FORMAT_HOSTNAME, "xn--4gbwdl.xn--wgbh1c");
	VALID(BB_FORMAT_HOSTNAME, "hostname");
	VALID(BB_FORMAT_HOSTNAME, "host-name");
	VALID(BB_FORMAT_HOSTNAME, "h0stn4me");
	VALID(BB_FORMAT_HOSTNAME, "1host");
	VALID(BB_FORMAT_HOSTNAME, "hostnam3");
	VALID(BB_FORMAT_HOSTNAME, "a--b.com");
	VALID(BB_FORMAT_HOSTNAME, "WWW.Example.COM");
	VALID(BB_FORMAT_HOSTNAME, "192.168.0.1");
}

static void
test_hostname_rejects_other_bytes_and_empty_labels(void)
{
	INVALID(BB_FORMAT_HOSTNAME, "-a-host-name-that-starts-with--");
	INVALID(BB_FORMAT_HOSTNAME, "not_a_valid_host_name");
	INVALID(BB_FORMAT_HOSTNAME, "a-vvvvvvvvvvvvvvvveeeeeeeeeeeeeeeerrrrrrrr"
	    "rrrrrrrryyyyyyyyyyyyyyyy-long-host-name-component");
	INVALID(BB_FORMAT_HOSTNAME, "-hostname");
	INVALID(BB_FORMAT_HOSTNAME, "hostname-");
	INVALID(BB_FORMAT_HOSTNAME, "www.-example.com");
	INVALID(BB_FORMAT_HOSTNAME, "www.example-.com");
	INVALID(BB_FORMAT_HOSTNAME, "");
	INVALID(BB_FORMAT_HOSTNAME, ".");
	INVALID(BB_FORMAT_HOSTNAME, ".example");
	INVALID(BB_FORMAT_HOSTNAME, "example.");
	INVALID(BB_FORMAT_HOSTNAME, "example..com");
	INVALID(BB_FORMAT_HOSTNAME, "example\uff0ecom");
	INVALID(BB_FORMAT_HOSTNAME, "\u212aelvin.example.com");
	INVALID(BB_FORMAT_HOSTNAME, "example.com\n");
	INVALID(BB_FORMAT_HOSTNAME, "example\0.com");
}

/* Labels of 63 octets at most, names of 253. */
static void
test_hostname_limits_labels_to_63_and_names_to_253(void)
{
	char s[300];

	memset(s, 'a', sizeof(s));
	CU_ASSERT(bb_format_check(BB_FORMAT_HOSTNAME, s, 63));
	CU_ASSERT(!bb_format_check(BB_FORMAT_HOSTNAME, s, 64));
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	s[63] = s[127] = s[191] = '.';
	CU_ASSERT(bb_format_check(BB_FORMAT_HOSTNAME, s, 253));
	CU_ASSERT(!bb_format_check(BB_FORMAT_HOSTNAME, s, 254));
}

/* The dotted quad of RFC 3986 §3.2.2 IPv4address. */
static void
test_ipv4_accepts_dotted_quads(void)
{
	VALID(BB_FORMAT_IPV4, "192.168.0.1");
	VALID(BB_FORMAT_IPV4, "0.0.0.0");
	VALID(BB_FORMAT_IPV4, "255.255.255.255");
	VALID(BB_FORMAT_IPV4, "87.10.0.1");
	VALID(BB_FORMAT_IPV4, "200.0.249.250");
}

/* Not the inet_aton() forms: short, integer, hex, octal. */
static void
test_ipv4_rejects_other_forms(void)
{
	INVALID(BB_FORMAT_IPV4, "127.0.0.0.1");
	INVALID(BB_FORMAT_IPV4, "256.256.256.256");
	INVALID(BB_FORMAT_IPV4, "127.0");
	INVALID(BB_FORMAT_IPV4, "0x7f000001");
	INVALID(BB_FORMAT_IPV4, "127.1");
	INVALID(BB_FORMAT_IPV4, "127.0.1");
	INVALID(BB_FORMAT_IPV4, "2130706433");
	INVALID(BB_FORMAT_IPV4, "0x7f.0.0.1");
	INVALID(BB_FORMAT_IPV4, "087.10.0.1");
	INVALID(BB_FORMAT_IPV4, "192.168.0.01");
	INVALID(BB_FORMAT_IPV4, "1.2.3.0000");
	INVALID(BB_FORMAT_IPV4, "192.168.0.256");
	INVALID(BB_FORMAT_IPV4, "192.168..1");
	INVALID(BB_FORMAT_IPV4, ".192.168.0.1");
	INVALID(BB_FORMAT_IPV4, "192.168.0.1.");
	INVALID(BB_FORMAT_IPV4, "192.168.1.0/24");
	INVALID(BB_FORMAT_IPV4, "192.168.0.1:80");
	INVALID(BB_FORMAT_IPV4, " 192.168.0.1");
	INVALID(BB_FORMAT_IPV4, "192.168.0.1\n");
	INVALID(BB_FORMAT_IPV4, "+1.2.3.4");
	INVALID(BB_FORMAT_IPV4, "1\u09e87.0.0.1");
	INVALID(BB_FORMAT_IPV4, "192.168.0.1\0.evil.com");
	INVALID(BB_FORMAT_IPV4, "::ffff:192.168.0.1");
	INVALID(BB_FORMAT_IPV4, "");
}

/* RFC 4291 §2.2, its three text forms. */
static void
test_ipv6_accepts_the_three_text_forms(void)
{
	VALID(BB_FORMAT_IPV6, "::1");
	VALID(BB_FORMAT_IPV6, "::");
	VALID(BB_FORMAT_IPV6, "::abef");
	VALID(BB_FORMAT_IPV6, "::42:ff:1");
	VALID(BB_FORMAT_IPV6, "d6::");
	VALID(BB_FORMAT_IPV6, "1:d6::42");
	VALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7:8");
	VALID(BB_FORMAT_IPV6, "2001:DB8:0:0:8:800:200C:417A");
	VALID(BB_FORMAT_IPV6, "1:2:3:4:5:6::8");	/* "::" for one group */
	VALID(BB_FORMAT_IPV6, "1::d6:192.168.0.1");
	VALID(BB_FORMAT_IPV6, "1:2::192.168.0.1");
	VALID(BB_FORMAT_IPV6, "::ffff:192.168.0.1");
	VALID(BB_FORMAT_IPV6, "::13.1.68.3");
	VALID(BB_FORMAT_IPV6, "1000:1000:1000:1000:1000:1000:255.255.255.255");
}

static void
test_ipv6_rejects_bad_groups_and_counts(void)
{
	INVALID(BB_FORMAT_IPV6, "12345::");
	INVALID(BB_FORMAT_IPV6, "1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1");
	INVALID(BB_FORMAT_IPV6, "::laptop");
	INVALID(BB_FORMAT_IPV6, "::abcef");
	INVALID(BB_FORMAT_IPV6, ":2:3:4:5:6:7:8");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7:");
	INVALID(BB_FORMAT_IPV6, ":2:3:4::8");
	INVALID(BB_FORMAT_IPV6, "1::d6::42");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:::8");
	INVALID(BB_FORMAT_IPV6, ":::");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7:8:9");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4::5:6:7:8");
	INVALID(BB_FORMAT_IPV6, "1");
	INVALID(BB_FORMAT_IPV6, "");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7:\u09ea");
}

/* The dotted quad closes the address, as ipv4 writes it; no zone id
 * (RFC 4007 §11), prefix length, brackets or spaces. */
static void
test_ipv6_rejects_bad_ipv4_tails_and_decorations(void)
{
	INVALID(BB_FORMAT_IPV6, "127.0.0.1");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:1.2.3");
	INVALID(BB_FORMAT_IPV6, "1::2:192.168.256.1");
	INVALID(BB_FORMAT_IPV6, "1::2:192.168.ff.1");
	INVALID(BB_FORMAT_IPV6, "::ffff:192.168.0.01");
	INVALID(BB_FORMAT_IPV6, "1.2.3.4::");
	INVALID(BB_FORMAT_IPV6, "::1.2.3.4:5");
	INVALID(BB_FORMAT_IPV6, "100:100:100:100:100:100:255.255.255.255.255");
	INVALID(BB_FORMAT_IPV6, "100:100:100:100:100:100:100:255.255.255.255");
	INVALID(BB_FORMAT_IPV6, "1:2:3:4:5:6:7::1.2.3.4");
	INVALID(BB_FORMAT_IPV6, "1:2::192.16\u09ea.0.1");
	INVALID(BB_FORMAT_IPV6, "fe80::a%eth1");
	INVALID(BB_FORMAT_IPV6, "fe80::/64");
	INVALID(BB_FORMAT_IPV6, "[::1]");
	INVALID(BB_FORMAT_IPV6, "  ::1");
	INVALID(BB_FORMAT_IPV6, "::1  ");
	INVALID(BB_FORMAT_IPV6, "::1\0");
}

/* RFC 3986 §3: a scheme, then any of the hier-part forms (the official
 * suite's cases first). */
static void
test_uri_accepts_absolute_uris(void)
{
	VALID(BB_FORMAT_URI, "http://foo.bar/?baz=qux#quux");
	VALID(BB_FORMAT_URI, "http://foo.com/blah_(wikipedia)_blah#cite-1");
	VALID(BB_FORMAT_URI, "http://foo.bar/?q=Test%20URL-encoded%20stuff");
	VALID(BB_FORMAT_URI, "http://xn--nw2a.xn--j6w193g/");
	VALID(BB_FORMAT_URI,
	    "http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com");
	VALID(BB_FORMAT_URI, "http://223.255.255.254");
	VALID(BB_FORMAT_URI, "ftp://ftp.is.co.za/rfc/rfc1808.txt");
	VALID(BB_FORMAT_URI, "http://www.ietf.org/rfc/rfc2396.txt");
	VALID(BB_FORMAT_URI, "ldap://[2001:db8::7]/c=GB?objectClass?one");
	VALID(BB_FORMAT_URI, "mailto:John.Doe@example.com");
	VALID(BB_FORMAT_URI, "news:comp.infosystems.www.servers.unix");
	VALID(BB_FORMAT_URI, "tel:+1-816-555-1212");
	VALID(BB_FORMAT_URI, "urn:oasis:names:specification:docbook:dtd:xml:4.1.2");
	VALID(BB_FORMAT_URI, "file:///etc/hosts");
	VALID(BB_FORMAT_URI, "x:");
	VALID(BB_FORMAT_URI, "x:/a//b");
	VALID(BB_FORMAT_URI, "HTTP://EXAMPLE.COM:8080/%7Efoo?a=b/c?d#e/f?g");
	VALID(BB_FORMAT_URI, "http://example.com:/");
	VALID(BB_FORMAT_URI, "http://087.10.0.1/");		/* a reg-name */
	VALID(BB_FORMAT_URI, "http://999.999.999.999/");
	VALID(BB_FORMAT_URI, "http://[::1]:8080/");
	VALID(BB_FORMAT_URI, "http://[::ffff:1.2.3.4]");
	VALID(BB_FORMAT_URI, "http://[v7.fe80::a+en1]/");	/* IPvFuture */
	VALID(BB_FORMAT_URI, "urn:uuid:2eb8aa08-aa98-11ea-b4aa-73b441d16380");
}

/* A URI reference that is not a URI has no scheme. */
static void
test_uri_requires_a_scheme(void)
{
	INVALID(BB_FORMAT_URI, "//foo.bar/?baz=qux#quux");
	INVALID(BB_FORMAT_URI, "/abc");
	INVALID(BB_FORMAT_URI, "abc");
	INVALID(BB_FORMAT_URI, ":// should fail");
	INVALID(BB_FORMAT_URI, "");
	INVALID(BB_FORMAT_URI, "1http://example.com");
	INVALID(BB_FORMAT_URI, "ht_tp://example.com");
	INVALID(BB_FORMAT_URI, "bar,baz:foo");
}

/* Bytes outside the grammar must be percent-encoded (RFC 3986 §2.1), and
 * "%" starts a triplet of two hex digits. */
static void
test_uri_rejects_unescaped_bytes_and_bad_escapes(void)
{
	INVALID(BB_FORMAT_URI, "\\\\WINDOWS\\fileshare");
	INVALID(BB_FORMAT_URI, "http:// shouldfail.com");
	INVALID(BB_FORMAT_URI, "https://example.org/foo bar.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar\u00ae.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar\\.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar\".txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar<>.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar{}.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar^.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar`.txt");
	INVALID(BB_FORMAT_URI, "https://example.org/foobar|.txt");
	INVALID(BB_FORMAT_URI, "http://example.com/#a#b");
	INVALID(BB_FORMAT_URI, "http://example.com/\n");
	INVALID(BB_FORMAT_URI, "http://example.com/\0");
	INVALID(BB_FORMAT_URI, "http://example.com/%6G");
	INVALID(BB_FORMAT_URI, "http://example.com/%A");
	INVALID(BB_FORMAT_URI, "http://example.com/%");
	INVALID(BB_FORMAT_URI, "http://example.com/?q=%2");
	INVALID(BB_FORMAT_URI, "http://exa%2mple.com/");
}

/* RFC 3986 §3.2: userinfo, host and port each have their grammar, and
 * an IPv6 address is only a host inside brackets. */
static void
test_uri_checks_the_authority(void)
{
	INVALID(BB_FORMAT_URI, "https://[@example.org/test.txt");
	INVALID(BB_FORMAT_URI, "http://user@name@example.com/");
	INVALID(BB_FORMAT_URI, "http://example.com:abc/path");
	INVALID(BB_FORMAT_URI, "http://example.com:80:80/");
	INVALID(BB_FORMAT_URI, "http://::1/");
	INVALID(BB_FORMAT_URI, "http://[::1/");
	INVALID(BB_FORMAT_URI, "http://[::1]x/");
	INVALID(BB_FORMAT_URI, "http://[]/");
	INVALID(BB_FORMAT_URI, "http://[1::2::3]/");
	INVALID(BB_FORMAT_URI, "http://[::ffff:01.2.3.4]");
	INVALID(BB_FORMAT_URI, "http://[fe80::1%25en0]/");	/* RFC 6874 */
	INVALID(BB_FORMAT_URI, "http://[v.x]/");
	INVALID(BB_FORMAT_URI, "http://[v7.]/");
	INVALID(BB_FORMAT_URI, "http:/[::1]");
}

/* RFC 4122 §3: 8-4-4-4-12 hex digits, either case, any version and
 * variant. */
static void
test_uuid_accepts_canonical_text_in_either_case(void)
{
	VALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d16380");
	VALID(BB_FORMAT_UUID, "2EB8AA08-AA98-11EA-B4AA-73B441D16380");
	VALID(BB_FORMAT_UUID, "2eb8aa08-AA98-11ea-B4Aa-73B441D16380");
	VALID(BB_FORMAT_UUID, "00000000-0000-0000-0000-000000000000");
	VALID(BB_FORMAT_UUID, "98d80576-482e-427f-8434-7f86890ab222");
	VALID(BB_FORMAT_UUID, "99c17cbb-656f-f64a-940f-1a4568f03487");
	VALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-f4aa-73b441d16380");
}

static void
test_uuid_rejects_other_layouts(void)
{
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d1638");
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d163800");
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-73b441d16380");
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4ga-73b441d16380");
	INVALID(BB_FORMAT_UUID, "2eb8aa08aa9811eab4aa73b441d16380");
	INVALID(BB_FORMAT_UUID, "2eb8aa08aa9811eab4aa73b441d16380----");
	INVALID(BB_FORMAT_UUID, "2eb8aa0-8aa98-11e-ab4aa7-3b441d16380");
	INVALID(BB_FORMAT_UUID, "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}");
	INVALID(BB_FORMAT_UUID, "urn:uuid:2eb8aa08-aa98-11ea-b4aa-73b441d16380");
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d1_380");
	INVALID(BB_FORMAT_UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d1638\0");
	INVALID(BB_FORMAT_UUID, "\u09e8eb8aa08-aa98-11ea-b4aa-73b441d16380");
	INVALID(BB_FORMAT_UUID, "");
}

/* Strings as long as a body: every check is one pass, so a MiB costs
 * milliseconds whatever its shape. */
static void
test_long_strings_take_linear_time(void)
{
	enum { MIB = 1 << 20 };
	char *s = malloc(MIB);
	double start, ms;

	CU_ASSERT_FATAL(s != NULL);
	start = cpu_ms();
	memcpy(s, "http://", 7);
	memset(s + 7, 'a', MIB - 7);
	CU_ASSERT(bb_format_check(BB_FORMAT_URI, s, MIB));
	memset(s + 7, '@', MIB - 7);
	CU_ASSERT(!bb_format_check(BB_FORMAT_URI, s, MIB));
	memset(s, '@', MIB);
	CU_ASSERT(!bb_format_check(BB_FORMAT_EMAIL, s, MIB));
	memcpy(s, "1985-04-12T23:20:50.", 20);
	memset(s + 20, '9', MIB - 21);
	s[MIB - 1] = 'Z';
	CU_ASSERT(bb_format_check(BB_FORMAT_DATE_TIME, s, MIB));
	memset(s, ':', MIB);
	CU_ASSERT(!bb_format_check(BB_FORMAT_IPV6, s, MIB));
	ms = cpu_ms() - start;
	free(s);
	CU_ASSERT(ms < LINEAR_MS);
	if (ms >= LINEAR_MS)
		fprintf(stderr, "\n    %.0f ms of CPU ", ms);
}

void
add_format_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "lookup knows the asserted formats",
		    test_lookup_knows_the_asserted_formats },
		{ "lookup gives none for other names",
		    test_lookup_gives_none_for_other_names },
		{ "none accepts any string", test_none_accepts_any_string },
		{ "date accepts full dates", test_date_accepts_full_dates },
		{ "date holds the day to its month",
		    test_date_holds_the_day_to_its_month },
		{ "date rejects other notations",
		    test_date_rejects_other_notations },
		{ "time accepts full times", test_time_accepts_full_times },
		{ "time rejects out-of-range fields",
		    test_time_rejects_out_of_range_fields },
		{ "time allows second 60 only at 23:59 UTC",
		    test_time_allows_second_60_only_at_2359_utc },
		{ "time rejects other notations",
		    test_time_rejects_other_notations },
		{ "date-time accepts RFC 3339 instants",
		    test_date_time_accepts_rfc3339_instants },
		{ "date-time rejects bad dates, times and notations",
		    test_date_time_rejects_bad_dates_times_and_notations },
		{ "email accepts mailboxes", test_email_accepts_mailboxes },
		{ "email rejects what is not one mailbox",
		    test_email_rejects_what_is_not_one_mailbox },
		{ "email limits the local part to 64 octets",
		    test_email_limits_the_local_part_to_64_octets },
		{ "hostname accepts DNS names", test_hostname_accepts_dns_names },
		{ "hostname rejects other bytes and empty labels",
		    test_hostname_rejects_other_bytes_and_empty_labels },
		{ "hostname limits labels to 63 and names to 253",
		    test_hostname_limits_labels_to_63_and_names_to_253 },
		{ "ipv4 accepts dotted quads", test_ipv4_accepts_dotted_quads },
		{ "ipv4 rejects other forms", test_ipv4_rejects_other_forms },
		{ "ipv6 accepts the three text forms",
		    test_ipv6_accepts_the_three_text_forms },
		{ "ipv6 rejects bad groups and counts",
		    test_ipv6_rejects_bad_groups_and_counts },
		{ "ipv6 rejects bad IPv4 tails and decorations",
		    test_ipv6_rejects_bad_ipv4_tails_and_decorations },
		{ "uri accepts absolute URIs", test_uri_accepts_absolute_uris },
		{ "uri requires a scheme", test_uri_requires_a_scheme },
		{ "uri rejects unescaped bytes and bad escapes",
		    test_uri_rejects_unescaped_bytes_and_bad_escapes },
		{ "uri checks the authority", test_uri_checks_the_authority },
		{ "uuid accepts canonical text in either case",
		    test_uuid_accepts_canonical_text_in_either_case },
		{ "uuid rejects other layouts", test_uuid_rejects_other_layouts },
		{ "long strings take linear time",
		    test_long_strings_take_linear_time },
		CU_TEST_INFO_NULL,
	};
	add_suite("format", tests);
}
