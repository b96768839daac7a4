/* Fuzzes b64_decode (RFC 8951 rules) and b64url_decode (strict), checking
 * their promises: bounded output, the bad offset inside the input, and that
 * what decodes survives a round trip (exactly, for strict base64url). */
#include "base/b64.h"
#include "base/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	uint8_t *out = NULL, *again = NULL;
	size_t len = 0, len2 = 0, bad = 0;

	int rc = b64_decode(s, size, &out, &len, &bad);
	if (rc == 0) {
		if (!out || len > size / 4 * 3 + 2)
			abort();
		char *enc = b64_encode(out, len, 64);
		if (!enc || b64_decode(enc, strlen(enc), &again, &len2, NULL) != 0 || len2 != len ||
		    (len && memcmp(again, out, len) != 0))
			abort();
		free(enc);
		free(again);
		again = NULL;
	} else if (rc != ACMERA_ERR_INVAL || out || bad >= size) {
		abort();
	}
	free(out);
	out = NULL;

	rc = b64url_decode(s, size, &out, &len);
	if (rc == 0) {
		char *enc = b64url_encode(out, len);
		/* strict: one spelling per value, so re-encoding gives the input back */
		if (!enc || strlen(enc) != size || memcmp(enc, s, size) != 0)
			abort();
		free(enc);
	} else if (rc != ACMERA_ERR_INVAL || out) {
		abort();
	}
	free(out);
	return 0;
}
