/* dns_response_parse on arbitrary bytes: the answer to an UPDATE comes from the network. */
#include "dns/update.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rcode, tsig_error;
	struct acmera_errmsg e;
	if (dns_response_parse(data, size, &rcode, &tsig_error, &e) == 0) {
		/* What a caller relies on: a 12-bit rcode, a 16-bit TSIG error or -1. */
		if (rcode < 0 || rcode > 0xfff || tsig_error < -1 || tsig_error > 0xffff)
			abort();
	}
	return 0;
}
