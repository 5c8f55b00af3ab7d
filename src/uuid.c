#include "uuid.h"

#include <ctype.h>
#include <string.h>
#include <uuid/uuid.h>

#include "random.h"

/* RFC 4122 §4.4: 122 random bits, the version in the high nibble of octet
 * 6 and the variant in the two high bits of octet 8. The bits come from the
 * per-process pool (random.h); libuuid's uuid_generate_random would make
 * six system calls per id. No time or MAC address leaks into ids. */
void
bb_uuid_random(char *out)
{
	uuid_t u;

	bb_random(u, sizeof(u));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	uuid_unparse_lower(u, out);
}

void
bb_uuid_oid_v5(const char *name, size_t len, char *out)
{
	uuid_t u;

	uuid_generate_sha1(u, *uuid_get_template("oid"), name, len);
	uuid_unparse_lower(u, out);
}

bool
bb_uuid_valid(const char *s, size_t len)
{
	if (len != BB_UUID_STRLEN)
		return false;
	for (size_t k = 0; k < len; k++) {
		bool dash = (k == 8 || k == 13 || k == 18 || k == 23);
		if (dash ? s[k] != '-' : !isxdigit((unsigned char)s[k]))
			return false;
	}
	return true;
}

void
bb_uuid_lower(const char *s, char *out)
{
	for (size_t k = 0; k < BB_UUID_STRLEN; k++)
		out[k] = (char)tolower((unsigned char)s[k]);
	out[BB_UUID_STRLEN] = '\0';
}
