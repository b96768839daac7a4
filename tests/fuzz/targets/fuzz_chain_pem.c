/* chain_parse_pem over arbitrary text; a parsed chain goes through every reader. */
#include "pki/cert.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *chain = NULL;
	struct acmera_errmsg e;
	if (chain_parse_pem((const char *)data, size, &chain, &e) != 0)
		return 0;
	free(chain_to_pem(chain));
	uint8_t *der = NULL;
	size_t len = 0;
	if (pkcs7_certs_only_der(chain, &der, &len, &e) == 0)
		free(der);
	(void)chain_matches_issuer(chain, "root");
	X509 *leaf = sk_X509_value(chain, 0);
	int64_t t;
	(void)cert_not_after(leaf, &t);
	free(cert_issuer_line(leaf));
	free(cert_subject_line(leaf));
	char **names = NULL;
	size_t n = 0;
	if (cert_dns_names(leaf, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	sk_X509_pop_free(chain, X509_free);
	return 0;
}
