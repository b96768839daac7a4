/* pkcs7_certs_only_parse over arbitrary bytes; parsed chains are re-encoded. */
#include "pki/cert.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *chain = NULL;
	struct acmera_errmsg e;
	if (pkcs7_certs_only_parse(data, size, &chain, &e) != 0)
		return 0;
	uint8_t *der = NULL;
	size_t len = 0;
	if (pkcs7_certs_only_der(chain, &der, &len, &e) == 0)
		free(der);
	free(chain_to_pem(chain));
	int64_t t;
	(void)cert_not_after(sk_X509_value(chain, 0), &t);
	sk_X509_pop_free(chain, X509_free);
	return 0;
}
