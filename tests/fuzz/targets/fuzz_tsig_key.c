/* tsig_key_parse on arbitrary text: key files are edited by hand. */
#include "dns/tsig_key.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsig_key k;
	struct acmera_errmsg e;
	if (tsig_key_parse((const char *)data, size, "fuzz", &k, &e) == 0) {
		/* A parsed key is absolute, of a known algorithm, with a NUL-terminated secret. */
		size_t n = strnlen(k.name, sizeof(k.name));
		if (n == 0 || n == sizeof(k.name) || k.name[n - 1] != '.' ||
		    strncmp(k.algorithm, "hmac-sha", 8) != 0 ||
		    strnlen(k.secret_b64, sizeof(k.secret_b64)) == sizeof(k.secret_b64))
			abort();
		tsig_key_wipe(&k);
	}
	return 0;
}
