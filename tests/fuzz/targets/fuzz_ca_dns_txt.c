/* The dns-01 check of `acmera ca` on arbitrary bytes: the answer, TXT text and CNAME chain
 * come from DNS data the applicant controls. */
#include "ca/validate.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define QNAME "_acme-challenge.x.example."
#define EXPECTED "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *problem = NULL;
	char *detail = NULL;
	struct acmera_errmsg e;
	int rc = ca_validate_dns01_answer(data, size, QNAME, EXPECTED, &problem, &detail, &e);
	/* What a caller relies on: success has no problem; a failure is a refusal with a
	 * problem type and a printable detail. */
	if (rc == 0 && (problem || detail))
		abort();
	if (rc != 0) {
		if (rc != ACMERA_ERR_REFUSED || !problem || !detail)
			abort();
		for (const char *p = detail; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				abort();
	}
	free(detail);
	return 0;
}
