/* log: levelled log lines, to stderr (which lighttpd and spawn-fcgi send
 * to the web server's error log, or nowhere, and systemd to the journal) or
 * to syslog (facility daemon, ident bloodbank: the journal, or rsyslog's
 * files), as LOG_TARGET says. */
#ifndef BB_LOG_H
#define BB_LOG_H

#include <stddef.h>

enum bb_log_level {
	BB_LOG_ERROR,
	BB_LOG_WARNING,
	BB_LOG_INFO,
	BB_LOG_DEBUG,
};

/* Returns 0 and sets *level for "error", "warning", "info" or "debug";
 * -1 for anything else. */
int bb_log_parse_level(const char *name, enum bb_log_level *level);
const char *bb_log_level_name(enum bb_log_level level);
void bb_log_set_level(enum bb_log_level level);

enum bb_log_target {
	BB_LOG_STDERR,
	BB_LOG_SYSLOG,
};

/* Returns 0 and sets *target for "stderr" or "syslog"; -1 otherwise. */
int bb_log_parse_target(const char *name, enum bb_log_target *target);
const char *bb_log_target_name(enum bb_log_target target);
void bb_log_set_target(enum bb_log_target target);

void bb_log(enum bb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* From now on the last warning or error goes into buf (len bytes) instead
 * of the log, for a command that says it in its own words; len 0 ends
 * that. */
void bb_log_capture(char *buf, size_t len);

#define bb_log_error(...) bb_log(BB_LOG_ERROR, __VA_ARGS__)
#define bb_log_warning(...) bb_log(BB_LOG_WARNING, __VA_ARGS__)
#define bb_log_info(...) bb_log(BB_LOG_INFO, __VA_ARGS__)
#define bb_log_debug(...) bb_log(BB_LOG_DEBUG, __VA_ARGS__)

#endif
