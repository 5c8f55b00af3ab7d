/* clock: the monotonic clock, in milliseconds for deadlines and backoff,
 * in microseconds for the publish latency of /metrics; the wall clock in
 * milliseconds, for times written down (the spool's); a millisecond
 * budget as the timeval librabbitmq and hiredis take. */
#ifndef BB_CLOCK_H
#define BB_CLOCK_H

#include <sys/time.h>
#include <time.h>

static inline long long
bb_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long
bb_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline long long
bb_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline struct timeval
bb_ms_to_tv(long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	return tv;
}

#endif
