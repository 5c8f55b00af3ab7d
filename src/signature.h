/* signature: the Fireflies webhook's X-Hub-Signature (CONTRACT §4.5), an
 * HMAC-SHA256 of the raw request body under a shared secret. Pure: no I/O,
 * so that parsing and verification are unit-tested and fuzzed. */
#ifndef BB_SIGNATURE_H
#define BB_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BB_SIGNATURE_LEN 32	/* SHA-256 */

/* Reads an X-Hub-Signature value: 64 hex digits (either case), alone or
 * after "sha256=". Returns 0 with the digest in out, or -1 when the value
 * is anything else (NULL included). */
int bb_signature_parse(const char *header, uint8_t out[BB_SIGNATURE_LEN]);

/* True when digest is the HMAC-SHA256 of body[0..len) under secret; the
 * comparison takes the same time wherever the first difference is. */
bool bb_signature_verify(const uint8_t digest[BB_SIGNATURE_LEN],
    const char *secret, const void *body, size_t len);

#endif
