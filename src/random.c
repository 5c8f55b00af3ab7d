#include "random.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define POOL_BYTES 4096

static unsigned char pool[POOL_BYTES];
static size_t left;		/* unused bytes at the end of pool */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
forget(void)
{
	/* The parent's bytes are not ours: a child draws its own. */
	explicit_bzero(pool, sizeof(pool));
	left = 0;
}

static void
register_fork_handler(void)
{
	if (pthread_atfork(NULL, NULL, forget) != 0)
		abort();
}

static void
refill(void)
{
	size_t got = 0;

	while (got < sizeof(pool)) {
		ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		got += (size_t)n;
	}
	left = sizeof(pool);
}

void
bb_random(void *out, size_t n)
{
	if (n > 256)
		abort();
	pthread_once(&once, register_fork_handler);
	if (left < n)
		refill();
	unsigned char *from = pool + sizeof(pool) - left;
	memcpy(out, from, n);
	explicit_bzero(from, n);	/* a byte is handed out once */
	left -= n;
}
