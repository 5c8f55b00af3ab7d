/* log: levelled log lines on stderr, which lighttpd and spawn-fcgi send to
 * the web server's error log and systemd to the journal. */
#ifndef BB_LOG_H
#define BB_LOG_H

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

void bb_log(enum bb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define bb_log_error(...) bb_log(BB_LOG_ERROR, __VA_ARGS__)
#define bb_log_warning(...) bb_log(BB_LOG_WARNING, __VA_ARGS__)
#define bb_log_info(...) bb_log(BB_LOG_INFO, __VA_ARGS__)
#define bb_log_debug(...) bb_log(BB_LOG_DEBUG, __VA_ARGS__)

#endif
