#include "topic.h"

#include <string.h>

#define MAX_WORDS 128		/* 255 bytes make at most 128 words */

static bool
word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-';
}

bool
bb_topic_pattern_valid(const char *pattern)
{
	size_t len = strlen(pattern);

	if (len < 1 || len > 255)
		return false;
	for (const char *w = pattern;;) {
		size_t n = strcspn(w, ".");
		if (n == 0)
			return false;
		bool wildcard = n == 1 && (w[0] == '*' || w[0] == '#');
		for (size_t k = 0; k < n && !wildcard; k++) {
			if (!word_char(w[k]))
				return false;
		}
		if (w[n] == '\0')
			return true;
		w += n + 1;
	}
}

/* Splits s at its dots into at most MAX_WORDS (start, length) words. */
static int
split(const char *s, const char *start[], size_t len[])
{
	int n = 0;

	for (const char *w = s; n < MAX_WORDS;) {
		size_t k = strcspn(w, ".");
		start[n] = w;
		len[n++] = k;
		if (w[k] == '\0')
			break;
		w += k + 1;
	}
	return n;
}

/* Dynamic programming over (pattern words, key words): linear in their
 * product whatever the pattern's `#`s, never backtracking. */
bool
bb_topic_match(const char *pattern, const char *key)
{
	const char *pw[MAX_WORDS], *kw[MAX_WORDS];
	size_t pl[MAX_WORDS], kl[MAX_WORDS];
	int np = split(pattern, pw, pl), nk = split(key, kw, kl);
	/* row[j]: the pattern's first i words match the key's first j */
	bool row[MAX_WORDS + 1], next[MAX_WORDS + 1];

	row[0] = true;
	for (int j = 1; j <= nk; j++)
		row[j] = false;
	for (int i = 0; i < np; i++) {
		bool hash = pl[i] == 1 && pw[i][0] == '#';
		bool star = pl[i] == 1 && pw[i][0] == '*';
		next[0] = hash && row[0];
		for (int j = 1; j <= nk; j++) {
			if (hash)
				next[j] = row[j] || next[j - 1];
			else
				next[j] = row[j - 1] && (star || (pl[i] == kl[j - 1] &&
				    memcmp(pw[i], kw[j - 1], pl[i]) == 0));
		}
		memcpy(row, next, sizeof(bool) * (size_t)(nk + 1));
	}
	return row[nk];
}
