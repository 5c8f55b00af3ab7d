#include "regex.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "xalloc.h"

/* PCRE2's limits (pcre2api(3), "The match context"): the number of
 * backtracking steps grows with the subject, so a pattern that needs more
 * than a few per byte is cut off; no pattern can hang a worker. */
#define MATCH_LIMIT_BASE 10000
#define MATCH_LIMIT_PER_BYTE 64
#define MATCH_DEPTH_LIMIT 10000
#define MATCH_HEAP_LIMIT_KIB 2048

/* ECMA-262's whitespace (ES2022 §22.2.2.9: WhiteSpace and
 * LineTerminator), as the inside of a PCRE2 class under PCRE2_ALT_BSUX. */
#define ECMA_SPACE "\\t\\n\\x0b\\f\\r \\u00a0\\u1680\\u2000-\\u200a" \
	"\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"

/* Rewrites an ECMA-262 pattern where PCRE2 would read the same text
 * otherwise: \s and \S with ECMA's whitespace (PCRE2's is ASCII unless
 * PCRE2_UCP, which would make \d and \w Unicode too, unlike ECMA's); "."
 * as anything but a line terminator (PCRE2's excludes \n only); "[]"
 * (matches nothing) and "[^]" (anything), which PCRE2 reads as the start
 * of a class holding "]"; "[" inside a class, a POSIX class to PCRE2.
 * What stays different: \S inside a class is PCRE2's (ASCII whitespace);
 * \p{} knows PCRE2's property names (\p{L}, \p{Greek}) but not ECMA's
 * long ones (\p{Letter}), and a lookbehind must have a fixed length: such
 * patterns do not compile, so the schema is refused; PCRE2 syntax that
 * ECMA-262 lacks (possessive and atomic groups, \A, \Z, (?i), ...)
 * compiles, with PCRE2's meaning. */
static void
ecma_pattern(const char *p, size_t len, struct bb_buf *out)
{
	bool in_class = false;

	for (size_t k = 0; k < len; k++) {
		char ch = p[k];
		if (ch == '\\' && k + 1 < len) {
			char e = p[++k];
			if (e == 's')
				bb_buf_puts(out, in_class ? ECMA_SPACE :
				    "[" ECMA_SPACE "]");
			else if (e == 'S' && !in_class)
				bb_buf_puts(out, "[^" ECMA_SPACE "]");
			else {
				bb_buf_putc(out, '\\');
				bb_buf_putc(out, e);
			}
		} else if (in_class) {
			if (ch == '[')
				bb_buf_putc(out, '\\');
			bb_buf_putc(out, ch);
			in_class = ch != ']';
		} else if (ch == '.') {
			bb_buf_puts(out, "[^\\n\\r\\u2028\\u2029]");
		} else if (ch == '[' && k + 1 < len && p[k + 1] == ']') {
			bb_buf_puts(out, "(?!)");
			k++;
		} else if (ch == '[' && k + 2 < len && p[k + 1] == '^' &&
		    p[k + 2] == ']') {
			bb_buf_puts(out, "[\\s\\S]");
			k += 2;
		} else if (ch == '[') {
			bb_buf_putc(out, '[');
			if (k + 1 < len && p[k + 1] == '^')
				bb_buf_putc(out, p[++k]);
			in_class = true;
		} else {
			bb_buf_putc(out, ch);
		}
	}
}

struct bb_regex {
	pcre2_code *code;
	pcre2_match_context *mctx;
};

/* ECMA-262 semantics where PCRE2 has a switch for them: $ matches only at
 * the very end, \u is a code point escape (and \u{...}, by the compile
 * context); \d and \w stay ASCII (no PCRE2_UCP), as in ECMA-262. */
#define OPTIONS (PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX)

static pcre2_code *
compile(const char *p, size_t len, int *errcode, PCRE2_SIZE *erroff)
{
	pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
	pcre2_code *code;

	if (cctx == NULL)
		abort();
#ifdef PCRE2_EXTRA_ALT_BSUX	/* PCRE2 10.38: \u{hhh...} too */
	pcre2_set_compile_extra_options(cctx, PCRE2_EXTRA_ALT_BSUX);
#endif
	code = pcre2_compile((PCRE2_SPTR)p, len, OPTIONS, errcode, erroff,
	    cctx);
	pcre2_compile_context_free(cctx);
	return code;
}

struct bb_regex *
bb_regex_compile(const char *p, size_t len, char *err, size_t errlen)
{
	struct bb_regex *re;
	struct bb_buf ecma;
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *code;

	bb_buf_init(&ecma);
	ecma_pattern(p, len, &ecma);
	code = compile(ecma.data ? ecma.data : "", ecma.len, &errcode, &erroff);
	bb_buf_free(&ecma);
	if (code == NULL) {
		PCRE2_UCHAR msg[160];
		/* the offset in the pattern as written, not as rewritten */
		pcre2_code *as_written = compile(p, len, &errcode, &erroff);
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		if (as_written == NULL)
			snprintf(err, errlen, "%s at offset %zu",
			    (const char *)msg, (size_t)erroff);
		else
			snprintf(err, errlen, "%s", (const char *)msg);
		pcre2_code_free(as_written);
		return NULL;
	}
	/* JIT where the machine has it: the match limit applies there too. */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	re = bb_xcalloc(1, sizeof(*re));
	re->code = code;
	re->mctx = pcre2_match_context_create(NULL);
	if (re->mctx == NULL)
		abort();
	pcre2_set_depth_limit(re->mctx, MATCH_DEPTH_LIMIT);
	pcre2_set_heap_limit(re->mctx, MATCH_HEAP_LIMIT_KIB);
	return re;
}

void
bb_regex_free(struct bb_regex *re)
{
	if (re == NULL)
		return;
	pcre2_code_free(re->code);
	pcre2_match_context_free(re->mctx);
	free(re);
}

int
bb_regex_search(const struct bb_regex *re, const char *s, size_t len,
    void **match)
{
	int rc;

	if (*match == NULL) {
		*match = pcre2_match_data_create(1, NULL);
		if (*match == NULL)
			abort();
	}
	pcre2_set_match_limit(re->mctx, MATCH_LIMIT_BASE +
	    (uint32_t)(len < 1000000 ? len : 1000000) * MATCH_LIMIT_PER_BYTE);
	rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK,
	    *match, re->mctx);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

void
bb_regex_match_free(void *match)
{
	pcre2_match_data_free(match);
}
