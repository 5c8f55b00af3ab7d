/* xalloc: allocation that aborts on failure. A worker that cannot allocate
 * a few kilobytes cannot answer anyway; the master or the web server starts
 * a fresh one. */
#ifndef BB_XALLOC_H
#define BB_XALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *
bb_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		abort();
	return p;
}

static inline void *
bb_xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > (size_t)-1 / size)
		abort();
	p = realloc(p, n * size);
	if (p == NULL && n != 0 && size != 0)
		abort();
	return p;
}

static inline char *
bb_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

#endif
