/* clock: milliseconds on the monotonic clock, for deadlines and backoff. */
#ifndef BB_CLOCK_H
#define BB_CLOCK_H

#include <time.h>

static inline long long
bb_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
