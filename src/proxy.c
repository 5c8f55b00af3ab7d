#include "proxy.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SEPARATORS ", \t"

/* s[0..len) as an address; false when it is none. */
static bool
parse_address(const char *s, size_t len, struct bb_net *net)
{
	char text[BB_ADDRESS_MAX];

	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, net->addr) == 1) {
		net->family = AF_INET;
		net->bits = 32;
		return true;
	}
	if (inet_pton(AF_INET6, text, net->addr) == 1) {
		net->family = AF_INET6;
		net->bits = 128;
		return true;
	}
	return false;
}

/* "address" or "address/bits". */
static bool
parse_net(const char *s, size_t len, struct bb_net *net)
{
	const char *slash = memchr(s, '/', len);
	char *end;

	if (slash == NULL)
		return parse_address(s, len, net);
	if (!parse_address(s, (size_t)(slash - s), net))
		return false;
	size_t digits = len - (size_t)(slash - s) - 1;
	if (digits < 1 || digits > 3 || strspn(slash + 1, "0123456789") < digits)
		return false;
	long bits = strtol(slash + 1, &end, 10);
	if (bits > net->bits)
		return false;
	net->bits = (int)bits;
	return true;
}

int
bb_proxies_parse(struct bb_proxies *p, const char *list, char *err,
    size_t errlen)
{
	struct bb_proxies scratch;
	int n = 0;

	if (p == NULL)
		p = &scratch;
	for (list += strspn(list, SEPARATORS); *list;
	    list += strspn(list, SEPARATORS)) {
		size_t len = strcspn(list, SEPARATORS);
		if (n == BB_PROXIES_MAX) {
			snprintf(err, errlen, "at most %d addresses or ranges",
			    BB_PROXIES_MAX);
			return -1;
		}
		if (!parse_net(list, len, &p->nets[n])) {
			snprintf(err, errlen, "IP addresses or CIDR ranges; "
			    "\"%.*s\" is neither", (int)(len < 64 ? len : 64), list);
			return -1;
		}
		n++;
		list += len;
	}
	p->n = n;
	return 0;
}

static bool
in_net(const struct bb_net *net, const struct bb_net *a)
{
	int full = net->bits / 8, rest = net->bits % 8;

	if (net->family != a->family || memcmp(net->addr, a->addr, (size_t)full))
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (a->addr[full] & mask);
}

/* An IPv4-mapped IPv6 address (::ffff:10.0.0.1, as a dual-stack socket
 * reports an IPv4 peer) is that IPv4 address: it must meet the IPv4
 * entries of the list, and be written as one. */
static void
unmap(struct bb_net *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	if (a->family == AF_INET6 && memcmp(a->addr, prefix, 12) == 0) {
		memmove(a->addr, a->addr + 12, 4);
		a->family = AF_INET;
		a->bits = 32;
	}
}

static bool
trusted(const struct bb_proxies *p, const char *s, size_t len)
{
	struct bb_net a;

	if (!parse_address(s, len, &a))
		return false;
	unmap(&a);
	for (int k = 0; k < p->n; k++) {
		if (in_net(&p->nets[k], &a))
			return true;
	}
	return false;
}

const char *
bb_proxies_client(const struct bb_proxies *p, const char *remote,
    const char *forwarded_for, char *out)
{
	const char *end;
	struct bb_net a;

	if (forwarded_for == NULL || !trusted(p, remote, strlen(remote)))
		return remote;
	end = forwarded_for + strlen(forwarded_for);
	while (end > forwarded_for) {
		const char *start = end;
		while (start > forwarded_for && start[-1] != ',')
			start--;
		const char *s = start, *e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!parse_address(s, (size_t)(e - s), &a))
			return remote;
		unmap(&a);
		/* the canonical text: what was written may differ (zeros,
		 * case) */
		inet_ntop(a.family, a.addr, out, BB_ADDRESS_MAX);
		if (!trusted(p, s, (size_t)(e - s)) || start == forwarded_for)
			return out;
		end = start - 1;
	}
	return remote;
}
