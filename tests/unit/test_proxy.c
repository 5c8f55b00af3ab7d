#include <string.h>

#include "proxy.h"
#include "tests.h"

static struct bb_proxies
parsed(const char *list)
{
	struct bb_proxies p;
	char err[128];

	CU_ASSERT_EQUAL_FATAL(bb_proxies_parse(&p, list, err, sizeof(err)), 0);
	return p;
}

static void
test_parses_addresses_and_ranges(void)
{
	struct bb_proxies p = parsed(" 10.0.0.1, 192.168.0.0/16 fd00::/8,::1 ");
	char err[128];

	CU_ASSERT_EQUAL(p.n, 4);
	CU_ASSERT_EQUAL(p.nets[1].bits, 16);
	CU_ASSERT_EQUAL(p.nets[3].bits, 128);
	CU_ASSERT_EQUAL(parsed("").n, 0);
	CU_ASSERT_EQUAL(bb_proxies_parse(NULL, "10.0.0.1,10.0.0.0/8", err,
	    sizeof(err)), 0);
}

static void
test_refuses_what_is_not_an_address(void)
{
	static const char *const bad[] = { "lb.example", "10.0.0.1/33",
		"::1/129", "10.0.0/8", "10.0.0.1/", "10.0.0.1/x", "/8", NULL };
	char err[128];

	for (const char *const *b = bad; *b; b++) {
		CU_ASSERT_EQUAL(bb_proxies_parse(NULL, *b, err, sizeof(err)), -1);
		CU_ASSERT(strstr(err, "CIDR") != NULL);
	}
}

static void
test_untrusted_peer_is_the_client(void)
{
	struct bb_proxies p = parsed("10.0.0.1");
	char out[BB_ADDRESS_MAX];

	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "203.0.113.9", "1.2.3.4",
	    out), "203.0.113.9");
	p = parsed("");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1", "1.2.3.4", out),
	    "10.0.0.1");
}

static void
test_trusted_peer_gives_the_nearest_untrusted_entry(void)
{
	struct bb_proxies p = parsed("10.0.0.0/8");
	char out[BB_ADDRESS_MAX];

	/* a client may write anything on the left: only what the trusted
	 * proxies appended counts */
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1",
	    "6.6.6.6, 198.51.100.7", out), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1",
	    "6.6.6.6,198.51.100.7 , 10.1.2.3", out), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1",
	    "10.9.9.9, 10.1.2.3", out), "10.9.9.9");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1",
	    "2001:DB8::0001", out), "2001:db8::1");
}

/* A dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d. */
static void
test_an_ipv4_mapped_address_is_its_ipv4_address(void)
{
	struct bb_proxies p = parsed("127.0.0.1");
	char out[BB_ADDRESS_MAX];

	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "::ffff:127.0.0.1",
	    "198.51.100.7", out), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "127.0.0.1",
	    "::FFFF:198.51.100.7", out), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "127.0.0.1",
	    "198.51.100.7, ::ffff:127.0.0.1", out), "198.51.100.7");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "::ffff:10.0.0.1",
	    "198.51.100.7", out), "::ffff:10.0.0.1");
}

static void
test_garbage_or_absence_keeps_the_peer(void)
{
	struct bb_proxies p = parsed("10.0.0.1");
	char out[BB_ADDRESS_MAX];

	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1", NULL, out),
	    "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1", "", out),
	    "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1",
	    "1.2.3.4, evil\"host", out), "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(bb_proxies_client(&p, "10.0.0.1", "1.2.3.4,",
	    out), "10.0.0.1");
}

void
add_proxy_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "parses addresses and ranges", test_parses_addresses_and_ranges },
		{ "refuses what is not an address",
		    test_refuses_what_is_not_an_address },
		{ "an untrusted peer is the client",
		    test_untrusted_peer_is_the_client },
		{ "a trusted peer gives the nearest untrusted entry",
		    test_trusted_peer_gives_the_nearest_untrusted_entry },
		{ "an IPv4-mapped address is its IPv4 address",
		    test_an_ipv4_mapped_address_is_its_ipv4_address },
		{ "garbage or absence keeps the peer",
		    test_garbage_or_absence_keeps_the_peer },
		CU_TEST_INFO_NULL,
	};
	add_suite("proxy", tests);
}
