#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "tests.h"

/* The text of totals, NUL-terminated, for strstr. */
static char *
render(const struct bb_metrics_totals *t)
{
	struct bb_buf out;

	bb_buf_init(&out);
	bb_metrics_write(t, "0.2.0", &out);
	bb_buf_putc(&out, '\0');
	return out.data;
}

static void
test_label_values_escape_backslash_quote_and_newline(void)
{
	struct bb_buf out;

	bb_buf_init(&out);
	bb_metrics_write_label(&out, "a\\b\"c\nd");
	bb_buf_putc(&out, '\0');
	CU_ASSERT_STRING_EQUAL(out.data, "a\\\\b\\\"c\\nd");
	bb_buf_free(&out);
}

static void
test_build_info_label_is_escaped(void)
{
	struct bb_metrics_totals t = { 0 };
	struct bb_buf out;

	bb_buf_init(&out);
	bb_metrics_write(&t, "1\"x", &out);
	bb_buf_putc(&out, '\0');
	CU_ASSERT_PTR_NOT_NULL(strstr(out.data,
	    "bloodbank_build_info{version=\"1\\\"x\"} 1\n"));
	bb_buf_free(&out);
}

static void
test_bucket_bounds_are_inclusive_and_overflow_to_inf(void)
{
	CU_ASSERT_EQUAL(bb_metrics_bucket(0), 0);
	CU_ASSERT_EQUAL(bb_metrics_bucket(1000), 0);	/* le="0.001" */
	CU_ASSERT_EQUAL(bb_metrics_bucket(1001), 1);
	CU_ASSERT_EQUAL(bb_metrics_bucket(100000), 5);	/* le="0.1" */
	CU_ASSERT_EQUAL(bb_metrics_bucket(100001), 6);
	CU_ASSERT_EQUAL(bb_metrics_bucket(5000000), 10);	/* le="5" */
	CU_ASSERT_EQUAL(bb_metrics_bucket(5000001), BB_METRICS_BUCKETS);
}

static void
test_histogram_is_cumulative_with_inf_sum_and_count(void)
{
	struct bb_metrics_totals t = { 0 };

	t.bucket[0] = 2;		/* 2 at <= 1 ms */
	t.bucket[3] = 1;		/* 1 in (10 ms, 25 ms] */
	t.bucket[BB_METRICS_BUCKETS] = 1;	/* 1 over 5 s */
	t.sum_us = 6001500;
	char *s = render(&t);
	static const char *const want[] = {
		"# TYPE bloodbank_publish_duration_seconds histogram\n",
		"bloodbank_publish_duration_seconds_bucket{le=\"0.001\"} 2\n",
		"bloodbank_publish_duration_seconds_bucket{le=\"0.01\"} 2\n",
		"bloodbank_publish_duration_seconds_bucket{le=\"0.025\"} 3\n",
		"bloodbank_publish_duration_seconds_bucket{le=\"5\"} 3\n",
		"bloodbank_publish_duration_seconds_bucket{le=\"+Inf\"} 4\n",
		"bloodbank_publish_duration_seconds_sum 6.001500\n",
		"bloodbank_publish_duration_seconds_count 4\n",
	};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
		CU_ASSERT_PTR_NOT_NULL(strstr(s, want[k]));
	free(s);
}

static void
test_requests_by_route_and_code_only_when_seen(void)
{
	struct bb_metrics_totals t = { 0 };

	t.http[2][bb_metrics_code_index(200)] = 5;	/* prompt */
	t.http[8][bb_metrics_code_index(207)] = 1;	/* batch */
	t.http[0][bb_metrics_code_index(302)] = 1;	/* none, other */
	char *s = render(&t);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "bloodbank_http_requests_total"
	    "{route=\"prompt\",code=\"200\"} 5\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "bloodbank_http_requests_total"
	    "{route=\"batch\",code=\"207\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "bloodbank_http_requests_total"
	    "{route=\"none\",code=\"other\"} 1\n"));
	CU_ASSERT_PTR_NULL(strstr(s, "code=\"404\""));
	free(s);
}

static void
test_every_outcome_is_written_even_at_zero(void)
{
	struct bb_metrics_totals t = { 0 };

	t.counter[BB_EVENTS_NACKED] = 3;
	t.counter[BB_TRACKING_SKIPPED] = 2;
	t.workers = 4;
	char *s = render(&t);
	CU_ASSERT_PTR_NOT_NULL(strstr(s,
	    "bloodbank_events_total{outcome=\"published\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s,
	    "bloodbank_events_total{outcome=\"nacked\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s,
	    "bloodbank_events_total{outcome=\"unroutable\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s,
	    "bloodbank_tracking_writes_total{outcome=\"skipped\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "bloodbank_workers 4\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\nbloodbank_broker_blocked 0\n"));
	free(s);
}

static void
test_publish_results_map_to_outcomes(void)
{
	CU_ASSERT_EQUAL(bb_metrics_outcome(BB_PUBLISH_OK), BB_EVENTS_PUBLISHED);
	CU_ASSERT_EQUAL(bb_metrics_outcome(BB_PUBLISH_BLOCKED), BB_EVENTS_BLOCKED);
	CU_ASSERT_EQUAL(bb_metrics_outcome(BB_PUBLISH_TIMEOUT), BB_EVENTS_TIMEOUT);
	CU_ASSERT_EQUAL(bb_metrics_outcome(BB_PUBLISH_UNROUTABLE),
	    BB_EVENTS_UNROUTABLE);
}

/* A worker (a child process here) that counts and dies: its counts stay,
 * its gauges go, and the next worker adopts its slot. */
static void
test_dead_workers_counts_stay_and_its_gauges_go(void)
{
	char path[] = "/tmp/bb-metrics-test.XXXXXX";
	char err[256];
	struct bb_metrics_totals t;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(bb_metrics_open(path, err, sizeof(err)), 0);
	bb_metrics_published(2, 3000);
	pid_t pid = fork();
	if (pid == 0) {
		bb_metrics_close();
		if (bb_metrics_open(path, err, sizeof(err)) != 0)
			_exit(1);
		bb_metrics_published(5, 20000);
		bb_metrics_set(BB_GAUGE_BROKER_CONNECTED, true);
		_exit(0);
	}
	int status;
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_EQUAL(status, 0);
	CU_ASSERT_EQUAL_FATAL(bb_metrics_collect(&t), 0);
	CU_ASSERT_EQUAL(t.counter[BB_EVENTS_PUBLISHED], 7);
	CU_ASSERT_EQUAL(t.counter[BB_WORKER_STARTS], 2);
	CU_ASSERT_EQUAL(t.workers, 1);
	CU_ASSERT_EQUAL(t.gauge[BB_GAUGE_BROKER_CONNECTED], 0);
	CU_ASSERT_EQUAL(t.bucket[1], 2);
	CU_ASSERT_EQUAL(t.bucket[3], 5);
	CU_ASSERT_EQUAL(t.sum_us, 2 * 3000 + 5 * 20000);
	/* a successor: the same totals, one more start */
	bb_metrics_close();
	CU_ASSERT_EQUAL_FATAL(bb_metrics_open(path, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(bb_metrics_collect(&t), 0);
	CU_ASSERT_EQUAL(t.counter[BB_EVENTS_PUBLISHED], 7);
	CU_ASSERT_EQUAL(t.counter[BB_WORKER_STARTS], 3);
	bb_metrics_close();
	unlink(path);
}

/* METRICS_PATH naming the wrong file: it is refused and left as it was. */
static void
test_a_file_not_ours_is_refused_and_kept(void)
{
	char path[] = "/tmp/bb-metrics-test.XXXXXX";
	char link[sizeof(path) + 5], err[256], back[64];
	const char text[] = "precious data\n";
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	CU_ASSERT_EQUAL(bb_metrics_open(path, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a Bloodbank metrics file"));
	CU_ASSERT_FALSE(bb_metrics_enabled());
	fd = open(path, O_RDONLY);
	CU_ASSERT_EQUAL(read(fd, back, sizeof(back)), (ssize_t)strlen(text));
	close(fd);
	CU_ASSERT_EQUAL(memcmp(back, text, strlen(text)), 0);
	unlink(path);

	/* a symbolic link is not followed, even to a metrics file */
	memcpy(path + sizeof(path) - 7, "XXXXXX", 6);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(bb_metrics_open(path, err, sizeof(err)), 0);
	bb_metrics_close();
	snprintf(link, sizeof(link), "%s.link", path);
	CU_ASSERT_EQUAL_FATAL(symlink(path, link), 0);
	CU_ASSERT_EQUAL(bb_metrics_open(link, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ELOOP)));
	unlink(link);
	unlink(path);

	CU_ASSERT_EQUAL(bb_metrics_open("/dev/null", err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
}

static void
test_empty_path_turns_counting_off(void)
{
	struct bb_metrics_totals t;
	char err[64];

	CU_ASSERT_EQUAL(bb_metrics_open("", err, sizeof(err)), 0);
	CU_ASSERT_FALSE(bb_metrics_enabled());
	bb_metrics_add(BB_EVENTS_REJECTED, 1);
	CU_ASSERT_EQUAL(bb_metrics_collect(&t), -1);
}

void
add_metrics_tests(void)
{
	static const CU_TestInfo tests[] = {
		{ "label values escape backslash, quote and newline",
		    test_label_values_escape_backslash_quote_and_newline },
		{ "build_info label is escaped", test_build_info_label_is_escaped },
		{ "a file not ours is refused and kept",
		    test_a_file_not_ours_is_refused_and_kept },
		{ "bucket bounds are inclusive and overflow to +Inf",
		    test_bucket_bounds_are_inclusive_and_overflow_to_inf },
		{ "histogram is cumulative with +Inf, _sum and _count",
		    test_histogram_is_cumulative_with_inf_sum_and_count },
		{ "requests by route and code, only when seen",
		    test_requests_by_route_and_code_only_when_seen },
		{ "every outcome is written, even at zero",
		    test_every_outcome_is_written_even_at_zero },
		{ "publish results map to outcomes",
		    test_publish_results_map_to_outcomes },
		{ "a dead worker's counts stay and its gauges go",
		    test_dead_workers_counts_stay_and_its_gauges_go },
		{ "an empty METRICS_PATH turns counting off",
		    test_empty_path_turns_counting_off },
		CU_TEST_INFO_NULL,
	};
	add_suite("metrics", tests);
}
