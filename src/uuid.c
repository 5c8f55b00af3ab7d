#include "uuid.h"

#include <ctype.h>
#include <string.h>
#include <uuid/uuid.h>

void
bb_uuid_random(char *out)
{
	uuid_t u;

	/* getrandom(2) underneath; no time or MAC address leaks into ids. */
	uuid_generate_random(u);
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
