#include <string.h>

#include <hiredis/hiredis.h>

#include "tracker.h"
#include "tests.h"

static void
test_reads_a_sentinel_list(void)
{
	const char *list = "s1:26379, [::1]:26380 ,10.0.0.3:1";
	char host[64];
	int port = 0;

	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 1);
	CU_ASSERT_STRING_EQUAL(host, "s1");
	CU_ASSERT_EQUAL(port, 26379);
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 1);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_EQUAL(port, 26380);
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 1);
	CU_ASSERT_STRING_EQUAL(host, "10.0.0.3");
	CU_ASSERT_EQUAL(port, 1);
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 0);
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 0);

	list = "";
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 0);
}

static void
test_skips_an_entry_that_is_not_host_port(void)
{
	static const char *const bad[] = { "s1", "s1:", ":26379", "s1:0",
		"s1:65536", "s1:2x", "[]:1", "s1:+5", "s1: 5", NULL };
	char host[8];
	int port;

	for (const char *const *b = bad; *b; b++) {
		const char *list = *b;
		CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host),
		    &port), -1);
		CU_ASSERT_EQUAL(*list, '\0');
	}
	/* a host that does not fit is refused, and the next entry read */
	const char *list = "sentinel.example:1,s2:2";
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), -1);
	CU_ASSERT_EQUAL(bb_host_port_next(&list, host, sizeof(host), &port), 1);
	CU_ASSERT_STRING_EQUAL(host, "s2");
	CU_ASSERT_EQUAL(port, 2);
}

/* A reply as hiredis builds it: an array of the given strings. */
static redisReply *
array(redisReply *elements, redisReply **slots, int n, const char **strs)
{
	static redisReply top;

	for (int k = 0; k < n; k++) {
		elements[k] = (redisReply){ .type = REDIS_REPLY_STRING,
		    .str = (char *)strs[k], .len = strlen(strs[k]) };
		slots[k] = &elements[k];
	}
	top = (redisReply){ .type = REDIS_REPLY_ARRAY, .elements = (size_t)n,
	    .element = slots };
	return &top;
}

static void
test_reads_the_master_address(void)
{
	redisReply e[3], *slots[3], nil = { .type = REDIS_REPLY_NIL };
	char host[16];
	int port = 0;

	CU_ASSERT_TRUE(bb_sentinel_master_addr(array(e, slots, 2,
	    (const char *[]){ "127.0.0.1", "19391" }), host, sizeof(host),
	    &port));
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 19391);

	CU_ASSERT_FALSE(bb_sentinel_master_addr(&nil, host, sizeof(host), &port));
	CU_ASSERT_FALSE(bb_sentinel_master_addr(array(e, slots, 1,
	    (const char *[]){ "127.0.0.1" }), host, sizeof(host), &port));
	CU_ASSERT_FALSE(bb_sentinel_master_addr(array(e, slots, 3,
	    (const char *[]){ "h", "1", "2" }), host, sizeof(host), &port));
	static const char *const ports[] = { "", "0", "65536", "123456",
		"80x", "-1", NULL };
	for (const char *const *p = ports; *p; p++)
		CU_ASSERT_FALSE(bb_sentinel_master_addr(array(e, slots, 2,
		    (const char *[]){ "h", *p }), host, sizeof(host), &port));
	CU_ASSERT_FALSE(bb_sentinel_master_addr(array(e, slots, 2,
	    (const char *[]){ "", "1" }), host, sizeof(host), &port));
	CU_ASSERT_FALSE(bb_sentinel_master_addr(array(e, slots, 2,
	    (const char *[]){ "a-host-too-long", "1" }), host, 8, &port));
	/* an integer where the port should be a string */
	redisReply *r = array(e, slots, 2, (const char *[]){ "h", "1" });
	e[1] = (redisReply){ .type = REDIS_REPLY_INTEGER, .integer = 1 };
	CU_ASSERT_FALSE(bb_sentinel_master_addr(r, host, sizeof(host), &port));
	CU_ASSERT_EQUAL(port, 19391);
}

void
add_tracker_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "reads a Sentinel list", test_reads_a_sentinel_list },
		{ "skips an entry that is not host:port",
		    test_skips_an_entry_that_is_not_host_port },
		{ "reads the master's address", test_reads_the_master_address },
		CU_TEST_INFO_NULL,
	};
	add_suite("tracker", tests);
}
