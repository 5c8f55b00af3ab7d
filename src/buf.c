#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
bb_buf_init(struct bb_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
bb_buf_free(struct bb_buf *b)
{
	free(b->data);
	bb_buf_init(b);
}

void
bb_buf_reset(struct bb_buf *b)
{
	if (b->cap > BB_BUF_KEEP)
		bb_buf_free(b);
	b->len = 0;
}

static void
reserve(struct bb_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > (size_t)-1 / 2 - b->len)
		abort();
	need = b->len + extra + 1;	/* keep room for a terminating NUL */
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		abort();
	b->data = p;
	b->cap = cap;
}

void
bb_buf_append(struct bb_buf *b, const void *data, size_t len)
{
	reserve(b, len);
	if (len)	/* data may be NULL when len is 0 */
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

char *
bb_buf_space(struct bb_buf *b, size_t n)
{
	reserve(b, n);
	return b->data + b->len;
}

void
bb_buf_puts(struct bb_buf *b, const char *s)
{
	bb_buf_append(b, s, strlen(s));
}

void
bb_buf_putc(struct bb_buf *b, char c)
{
	bb_buf_append(b, &c, 1);
}

void
bb_buf_printf(struct bb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
