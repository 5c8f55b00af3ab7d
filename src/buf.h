/* buf: a growable byte buffer, the one place where output is assembled. */
#ifndef BB_BUF_H
#define BB_BUF_H

#include <stddef.h>

struct bb_buf {
	char *data;
	size_t len;
	size_t cap;
};

void bb_buf_init(struct bb_buf *b);
void bb_buf_free(struct bb_buf *b);
/* Empties b for reuse. Memory is kept for the next use, except above
 * BB_BUF_KEEP: one large answer (a lineage, a batch) must not hold its
 * memory for the rest of the worker's life. */
#define BB_BUF_KEEP (256 * 1024)
void bb_buf_reset(struct bb_buf *b);
/* Appending aborts the process on allocation failure: a worker that cannot
 * allocate a few kilobytes cannot answer anyway, and the web server
 * restarts it. */
void bb_buf_append(struct bb_buf *b, const void *data, size_t len);
void bb_buf_puts(struct bb_buf *b, const char *s);
void bb_buf_putc(struct bb_buf *b, char c);
/* Room for at least n more bytes at the end, for a writer that fills them
 * in place; it then adds what it wrote to len. */
char *bb_buf_space(struct bb_buf *b, size_t n);
void bb_buf_printf(struct bb_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
