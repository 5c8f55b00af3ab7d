#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "tests.h"

void
add_suite(const char *name, const CU_TestInfo *tests)
{
	CU_pSuite suite = CU_add_suite(name, NULL, NULL);

	if (suite == NULL)
		exit(2);
	for (; tests->pName; tests++) {
		if (CU_add_test(suite, tests->pName, tests->pTestFunc) == NULL)
			exit(2);
	}
}

double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int
main(void)
{
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	add_claim_tests();
	add_cloudevent_tests();
	add_clitime_tests();
	add_config_tests();
	add_confirms_tests();
	add_correlation_tests();
	add_dot_tests();
	add_envelope_tests();
	add_format_tests();
	add_frames_tests();
	add_http_tests();
	add_json_tests();
	add_jsonschema_tests();
	add_metrics_tests();
	add_proxy_tests();
	add_regex_tests();
	add_signature_tests();
	add_spoolrec_tests();
	add_topic_tests();
	add_tracker_tests();
	add_uuid_tests();
	add_validate_tests();
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}
