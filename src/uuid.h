/* uuid: event ids, by libuuid. */
#ifndef BB_UUID_H
#define BB_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define BB_UUID_STRLEN 36

/* Writes a random (version 4) UUID, lowercase canonical, NUL-terminated,
 * into out[BB_UUID_STRLEN + 1]. */
void bb_uuid_random(char *out);

/* RFC 4122 §4.3: a name-based (version 5, SHA-1) UUID of name in the OID
 * namespace, the deterministic id of an idempotent publish. */
void bb_uuid_oid_v5(const char *name, size_t len, char *out);

/* True when s[0..len) is a UUID in canonical 8-4-4-4-12 form (either
 * case). */
bool bb_uuid_valid(const char *s, size_t len);

/* Copies a valid UUID into out in lowercase. */
void bb_uuid_lower(const char *s, char *out);

#endif
