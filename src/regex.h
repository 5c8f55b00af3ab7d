/* regex: ECMA-262 regular expressions, as JSON Schema's `pattern` and
 * `patternProperties` are written (CONTRACT §10), on PCRE2 -- the patterns
 * rewritten where PCRE2 would read the same text otherwise, and every
 * search under match limits that grow with the subject, so that no
 * pattern can hang a worker. */
#ifndef BB_REGEX_H
#define BB_REGEX_H

#include <stddef.h>

struct bb_regex;

/* Compiles pattern p[0..len) (UTF-8). Returns NULL with PCRE2's reason
 * (and its offset in the pattern as written) in err. */
struct bb_regex *bb_regex_compile(const char *p, size_t len, char *err,
    size_t errlen);
void bb_regex_free(struct bb_regex *re);

/* Searches s[0..len) (valid UTF-8) anywhere, as ECMA-262's RegExp test
 * does. *match is working memory, made on first use and kept (NULL to
 * start; bb_regex_match_free releases it). Returns 1 on a match, 0 on
 * none, -1 when the search ran past its limits. */
int bb_regex_search(const struct bb_regex *re, const char *s, size_t len,
    void **match);
void bb_regex_match_free(void *match);

#endif
