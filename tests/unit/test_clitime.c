#include <string.h>

#include "clitime.h"
#include "tests.h"

static long long
at(const char *s)
{
	long long us = -1;

	CU_ASSERT_TRUE(bb_rfc3339_us(s, strlen(s), &us));
	return us;
}

static void
test_rfc3339_with_zones_and_fractions(void)
{
	CU_ASSERT_EQUAL(at("1970-01-01T00:00:00Z"), 0);
	CU_ASSERT_EQUAL(at("2026-12-03T06:00:00Z"), 1796277600LL * 1000000);
	CU_ASSERT_EQUAL(at("2026-12-03T07:00:00+01:00"), 1796277600LL * 1000000);
	CU_ASSERT_EQUAL(at("2026-12-03T05:30:00-00:30"), 1796277600LL * 1000000);
	CU_ASSERT_EQUAL(at("2026-12-03T06:00:00.5Z"), 1796277600LL * 1000000 +
	    500000);
	/* an envelope's own timestamp */
	CU_ASSERT_EQUAL(at("2026-12-03T06:00:00.123456+00:00"),
	    1796277600LL * 1000000 + 123456);
	/* beyond microseconds, cut */
	CU_ASSERT_EQUAL(at("2026-12-03T06:00:00.1234567Z"),
	    1796277600LL * 1000000 + 123456);
	CU_ASSERT_EQUAL(at("2026-12-03t06:00:00z"), 1796277600LL * 1000000);
}

static void
test_rfc3339_refuses_what_is_not_one(void)
{
	const char *bad[] = { "", "2026-12-03", "2026-12-03T06:00:00",
		"2026-12-03T06:00Z", "2026-13-03T06:00:00Z", "2026-02-30T06:00:00Z",
		"2026-12-03T24:00:00Z", "2026-12-03T06:00:00.Z",
		"2026-12-03T06:00:00+0100", "2026-12-03T06:00:00Zjunk",
		"26-12-03T06:00:00Z", "yesterday", NULL };
	long long us;

	for (int k = 0; bad[k]; k++)
		CU_ASSERT_FALSE(bb_rfc3339_us(bad[k], strlen(bad[k]), &us));
}

static void
test_durations_back_from_now(void)
{
	const long long now = 1796277600LL * 1000000;
	long long us;

	CU_ASSERT_TRUE(bb_cli_time("90s", now, &us));
	CU_ASSERT_EQUAL(us, now - 90LL * 1000000);
	CU_ASSERT_TRUE(bb_cli_time("15m", now, &us));
	CU_ASSERT_EQUAL(us, now - 900LL * 1000000);
	CU_ASSERT_TRUE(bb_cli_time("2h", now, &us));
	CU_ASSERT_EQUAL(us, now - 7200LL * 1000000);
	CU_ASSERT_TRUE(bb_cli_time("7d", now, &us));
	CU_ASSERT_EQUAL(us, now - 7LL * 86400 * 1000000);
	CU_ASSERT_TRUE(bb_cli_time("2026-12-03T06:00:00Z", 0, &us));
	CU_ASSERT_EQUAL(us, now);
	CU_ASSERT_FALSE(bb_cli_time("2", now, &us));
	CU_ASSERT_FALSE(bb_cli_time("2w", now, &us));
	CU_ASSERT_FALSE(bb_cli_time("h", now, &us));
	CU_ASSERT_FALSE(bb_cli_time("-2h", now, &us));
	CU_ASSERT_FALSE(bb_cli_time("2hh", now, &us));
	CU_ASSERT_FALSE(bb_cli_time("99999999999999d", now, &us));
}

void
add_clitime_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "RFC 3339 with zones and fractions",
		    test_rfc3339_with_zones_and_fractions },
		{ "RFC 3339 refuses what is not one",
		    test_rfc3339_refuses_what_is_not_one },
		{ "durations back from now", test_durations_back_from_now },
		CU_TEST_INFO_NULL,
	};
	add_suite("clitime", tests);
}
