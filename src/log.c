#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum bb_log_level current_level = BB_LOG_INFO;
static enum bb_log_target current_target = BB_LOG_STDERR;
static char *capture;		/* bb_log_capture's buffer, or NULL */
static size_t capture_len;

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

static const char *const target_names[] = {
	[BB_LOG_STDERR] = "stderr",
	[BB_LOG_SYSLOG] = "syslog",
};

static const int priorities[] = {
	[BB_LOG_ERROR] = LOG_ERR,
	[BB_LOG_WARNING] = LOG_WARNING,
	[BB_LOG_INFO] = LOG_INFO,
	[BB_LOG_DEBUG] = LOG_DEBUG,
};

int
bb_log_parse_target(const char *name, enum bb_log_target *target)
{
	for (size_t i = 0; i < sizeof(target_names) / sizeof(target_names[0]);
	    i++) {
		if (strcasecmp(name, target_names[i]) == 0) {
			*target = (enum bb_log_target)i;
			return 0;
		}
	}
	return -1;
}

const char *
bb_log_target_name(enum bb_log_target target)
{
	return target_names[target];
}

/* The socket to the syslog daemon is opened on the first line, and opened
 * again by the C library if the daemon restarts. */
void
bb_log_set_target(enum bb_log_target target)
{
	if (target == BB_LOG_SYSLOG && current_target != BB_LOG_SYSLOG)
		openlog("bloodbank", LOG_PID, LOG_DAEMON);
	else if (target != BB_LOG_SYSLOG && current_target == BB_LOG_SYSLOG)
		closelog();
	current_target = target;
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

	if (capture && level <= BB_LOG_WARNING) {
		va_start(ap, fmt);
		vsnprintf(capture, capture_len, fmt, ap);
		va_end(ap);
		return;
	}
	if (level > current_level)
		return;
	if (current_target == BB_LOG_SYSLOG) {
		/* syslog stamps the time, the ident and the pid itself */
		n = snprintf(line, sizeof(line), "%s: ", level_names[level]);
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		syslog(priorities[level], "%s", line);
		return;
	}
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

void
bb_log_capture(char *buf, size_t len)
{
	capture = len ? buf : NULL;
	capture_len = len;
	if (capture)
		capture[0] = '\0';
}
