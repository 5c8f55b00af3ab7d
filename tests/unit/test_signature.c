#include <string.h>

#include "signature.h"
#include "tests.h"

/* RFC 4231 §4.3, test case 2: HMAC-SHA256 under the key "Jefe". */
#define KEY "Jefe"
#define DATA "what do ya want for nothing?"
#define MAC "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

static void
test_parses_bare_hex_and_sha256_prefix(void)
{
	uint8_t a[BB_SIGNATURE_LEN], b[BB_SIGNATURE_LEN], c[BB_SIGNATURE_LEN];

	CU_ASSERT_EQUAL(bb_signature_parse(MAC, a), 0);
	CU_ASSERT_EQUAL(bb_signature_parse("sha256=" MAC, b), 0);
	CU_ASSERT_EQUAL(bb_signature_parse("SHA256=5BDCC146BF60754E6A042426089575"
	    "C75A003F089D2739839DEC58B964EC3843", c), 0);
	CU_ASSERT(memcmp(a, b, sizeof(a)) == 0);
	CU_ASSERT(memcmp(a, c, sizeof(a)) == 0);
	CU_ASSERT_EQUAL(a[0], 0x5b);
	CU_ASSERT_EQUAL(a[31], 0x43);
}

static void
test_refuses_malformed_values(void)
{
	uint8_t d[BB_SIGNATURE_LEN];

	CU_ASSERT_EQUAL(bb_signature_parse(NULL, d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse("", d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse("sha256=", d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse("sha1=" MAC, d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse(MAC "00", d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse(MAC + 2, d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse(" " MAC, d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse("sha256= " MAC, d), -1);
	CU_ASSERT_EQUAL(bb_signature_parse("zzdcc146bf60754e6a042426089575c75a00"
	    "3f089d2739839dec58b964ec3843", d), -1);
}

static void
test_verifies_the_rfc_4231_vector(void)
{
	uint8_t d[BB_SIGNATURE_LEN];

	CU_ASSERT_EQUAL_FATAL(bb_signature_parse(MAC, d), 0);
	CU_ASSERT(bb_signature_verify(d, KEY, DATA, strlen(DATA)));
}

static void
test_refuses_another_body_key_or_digest(void)
{
	uint8_t d[BB_SIGNATURE_LEN];

	CU_ASSERT_EQUAL_FATAL(bb_signature_parse(MAC, d), 0);
	CU_ASSERT_FALSE(bb_signature_verify(d, KEY, DATA "!", strlen(DATA) + 1));
	CU_ASSERT_FALSE(bb_signature_verify(d, KEY, DATA, strlen(DATA) - 1));
	CU_ASSERT_FALSE(bb_signature_verify(d, "jefe", DATA, strlen(DATA)));
	CU_ASSERT_FALSE(bb_signature_verify(d, "", DATA, strlen(DATA)));
	d[31] ^= 1;
	CU_ASSERT_FALSE(bb_signature_verify(d, KEY, DATA, strlen(DATA)));
}

static void
test_verifies_an_empty_body(void)
{
	/* HMAC-SHA256 of "" under "key" */
	uint8_t d[BB_SIGNATURE_LEN];

	CU_ASSERT_EQUAL_FATAL(bb_signature_parse("5d5d139563c95b5967b9bd9a8c9b23"
	    "3a9dedb45072794cd232dc1b74832607d0", d), 0);
	CU_ASSERT(bb_signature_verify(d, "key", NULL, 0));
	CU_ASSERT_FALSE(bb_signature_verify(d, "key", "x", 1));
}

void
add_signature_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "parses bare hex and the sha256= prefix",
		    test_parses_bare_hex_and_sha256_prefix },
		{ "refuses malformed values", test_refuses_malformed_values },
		{ "verifies the RFC 4231 vector", test_verifies_the_rfc_4231_vector },
		{ "refuses another body, key or digest",
		    test_refuses_another_body_key_or_digest },
		{ "verifies an empty body", test_verifies_an_empty_body },
		CU_TEST_INFO_NULL,
	};
	add_suite("signature", tests);
}
