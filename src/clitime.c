#include "clitime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool
digits(const char *s, int n, int *out)
{
	*out = 0;
	for (int k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return false;
		*out = *out * 10 + (s[k] - '0');
	}
	return true;
}

bool
bb_rfc3339_us(const char *s, size_t len, long long *us)
{
	struct tm tm = { 0 };
	int year, mon, day, hour, min, sec, zh = 0, zm = 0;
	size_t k = 19;
	long frac = 0, scale = 1000000;

	if (len < 20 || !digits(s, 4, &year) || s[4] != '-' ||
	    !digits(s + 5, 2, &mon) || s[7] != '-' || !digits(s + 8, 2, &day) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2, &hour) || s[13] != ':' ||
	    !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return false;
	if (s[k] == '.') {
		size_t start = ++k;
		for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
			if (scale > 1) {
				scale /= 10;
				frac += (s[k] - '0') * scale;
			}
		}
		if (k == start)
			return false;
	}
	if (k < len && (s[k] == 'Z' || s[k] == 'z')) {
		k++;
	} else if (k + 6 == len && (s[k] == '+' || s[k] == '-') &&
	    digits(s + k + 1, 2, &zh) && s[k + 3] == ':' &&
	    digits(s + k + 4, 2, &zm) && zh < 24 && zm < 60) {
		if (s[k] == '-') {
			zh = -zh;
			zm = -zm;
		}
		k += 6;
	} else {
		return false;
	}
	if (k != len || mon < 1 || mon > 12 || day < 1 || day > 31 ||
	    hour > 23 || min > 59 || sec > 60)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (tm.tm_mday != day)
		return false;		/* February 30th, ... */
	t -= (time_t)(zh * 3600 + zm * 60);
	*us = (long long)t * 1000000 + frac;
	return true;
}

bool
bb_cli_time(const char *s, long long now_us, long long *us)
{
	char *end;
	long long n;

	if (bb_rfc3339_us(s, strlen(s), us))
		return true;
	if (s[0] < '0' || s[0] > '9')
		return false;
	n = strtoll(s, &end, 10);
	if (end[0] == '\0' || end[1] != '\0' || n > 100L * 365 * 86400)
		return false;
	const char *units = "smhd";
	const long long seconds[] = { 1, 60, 3600, 86400 };
	const char *u = strchr(units, end[0]);
	if (u == NULL)
		return false;
	*us = now_us - n * seconds[u - units] * 1000000;
	return true;
}
