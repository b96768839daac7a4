/* est_body_decode over arbitrary bodies; the same bytes as a Content-Type value. */
#include "est/body.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e;
	if (est_body_decode(data, size, &der, &len, &e) == 0) {
		if (!der || len == 0)
			abort();
		free(der);
	} else if (der || len) {
		abort();
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)est_content_type_is(s, EST_CT_PKCS10);
	(void)est_content_type_is(EST_CT_PKCS7, s);
	free(s);
	return 0;
}
