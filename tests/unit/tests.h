#ifndef BB_TESTS_H
#define BB_TESTS_H

#include <CUnit/CUnit.h>

/* Each file registers one suite. */
void add_claim_tests(void);
void add_cloudevent_tests(void);
void add_clitime_tests(void);
void add_config_tests(void);
void add_confirms_tests(void);
void add_correlation_tests(void);
void add_dot_tests(void);
void add_envelope_tests(void);
void add_format_tests(void);
void add_frames_tests(void);
void add_http_tests(void);
void add_json_tests(void);
void add_jsonschema_tests(void);
void add_metrics_tests(void);
void add_proxy_tests(void);
void add_regex_tests(void);
void add_signature_tests(void);
void add_spoolrec_tests(void);
void add_topic_tests(void);
void add_tracker_tests(void);
void add_uuid_tests(void);
void add_validate_tests(void);

/* Adds a suite with the given tests (NULL-terminated name/function pairs). */
void add_suite(const char *name, const CU_TestInfo *tests);

/* CPU time this process has used, in milliseconds: a bound on it is
 * how a test tells linear work from quadratic on a shared machine. */
double cpu_ms(void);

/* That bound for a MiB of input: linear code takes a few milliseconds,
 * quadratic code seconds. Sanitizers slow every access several times
 * over, so the bound is wider under them -- still far below seconds. */
#if defined(__SANITIZE_ADDRESS__)
#define LINEAR_MS 500.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LINEAR_MS 500.0
#endif
#endif
#ifndef LINEAR_MS
#define LINEAR_MS 100.0
#endif

#endif
