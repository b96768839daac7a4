/* csr_parse_der over arbitrary bytes; what parses is also joined and freed. */
#include "pki/csr.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csr_info c;
	struct acmera_errmsg e;
	if (csr_parse_der(data, size, &c, &e) == 0) {
		free(csr_names_joined(&c));
		csr_info_free(&c);
	}
	return 0;
}
