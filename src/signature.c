#include "signature.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PREFIX "sha256="

int
bb_signature_parse(const char *header, uint8_t out[BB_SIGNATURE_LEN])
{
	if (header == NULL)
		return -1;
	/* GitHub-style senders write the algorithm first; Fireflies sends the
	 * digest alone. */
	if (strncasecmp(header, PREFIX, sizeof(PREFIX) - 1) == 0)
		header += sizeof(PREFIX) - 1;
	if (strlen(header) != 2 * BB_SIGNATURE_LEN)
		return -1;
	for (size_t k = 0; k < BB_SIGNATURE_LEN; k++) {
		int hi = OPENSSL_hexchar2int((unsigned char)header[2 * k]);
		int lo = OPENSSL_hexchar2int((unsigned char)header[2 * k + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[k] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool
bb_signature_verify(const uint8_t digest[BB_SIGNATURE_LEN], const char *secret,
    const void *body, size_t len)
{
	static const uint8_t empty;
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	/* An empty body may come as a NULL pointer. */
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), len ? body : &empty,
	    len, mac, &mac_len) == NULL || mac_len != BB_SIGNATURE_LEN)
		return false;
	return CRYPTO_memcmp(mac, digest, BB_SIGNATURE_LEN) == 0;
}
