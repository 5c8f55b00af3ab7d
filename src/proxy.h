/* proxy: TRUSTED_PROXIES (CONTRACT §2) -- the load balancers whose
 * X-Forwarded-For names the client. Pure: no I/O. */
#ifndef BB_PROXY_H
#define BB_PROXY_H

#include <stddef.h>
#include <stdint.h>

#define BB_PROXIES_MAX 64
#define BB_ADDRESS_MAX 46	/* INET6_ADDRSTRLEN */

struct bb_net {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int bits;		/* prefix length */
};

struct bb_proxies {
	int n;
	struct bb_net nets[BB_PROXIES_MAX];
};

/* Reads a list of addresses and CIDR ranges (IPv4 or IPv6) separated by
 * commas or blanks into p (which may be NULL, to check the list only).
 * Returns 0, or -1 with what is wrong in err. An empty list trusts nobody. */
int bb_proxies_parse(struct bb_proxies *p, const char *list, char *err,
    size_t errlen);

/* The client of a request whose peer is remote: remote itself, unless it is
 * a trusted proxy; then the nearest X-Forwarded-For entry (walking from the
 * right) that is not one, or the leftmost when all are. An entry that is
 * not an address stops the walk at remote: what a proxy did not write is
 * not believed. The answer is remote or out[BB_ADDRESS_MAX]. */
const char *bb_proxies_client(const struct bb_proxies *p, const char *remote,
    const char *forwarded_for, char *out);

#endif
