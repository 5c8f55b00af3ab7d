/* clitime: a point in time as an operator gives it on the command line --
 * RFC 3339 (2026-12-03T06:00:00Z, 2026-12-03T07:00:00.5+01:00) or a
 * duration back from now (90s, 15m, 2h, 7d) -- and an event's own
 * timestamp, both in microseconds since the epoch. Pure. */
#ifndef BB_CLITIME_H
#define BB_CLITIME_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 3339 date-time with a zone (Z or +hh:mm); false when s is not one. */
bool bb_rfc3339_us(const char *s, size_t len, long long *us);

/* RFC 3339, or a number and a unit (s, m, h, d) back from now_us. */
bool bb_cli_time(const char *s, long long now_us, long long *us);

#endif
