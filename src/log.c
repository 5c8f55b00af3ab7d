#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum bb_log_level current_level = BB_LOG_INFO;

static const char *const level_names[] = {
	[BB_LOG_ERROR] = "error",
	[BB_LOG_WARNING] = "warning",
	[BB_LOG_INFO] = "info",
	[BB_LOG_DEBUG] = "debug",
};

int
bb_log_parse_level(const char *name, enum bb_log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level = (enum bb_log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
bb_log_level_name(enum bb_log_level level)
{
	return level_names[level];
}

void
bb_log_set_level(enum bb_log_level level)
{
	current_level = level;
}

void
bb_log(enum bb_log_level level, const char *fmt, ...)
{
	char line[1024];
	char stamp[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;
	size_t len;

	if (level > current_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s bloodbank[%ld] %s: ", stamp,
	    (long)getpid(), level_names[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	len = strlen(line);
	line[len++] = '\n';
	/* One write per line, so that lines from several workers sharing one
	 * error log do not interleave. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}
