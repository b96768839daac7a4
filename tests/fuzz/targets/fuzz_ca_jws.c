/* Fuzzes the ACME CA's JWS reader: ca_jws_parse on the body, ca_jws_verify with the
 * jwk's own key, and then the payload as a keyChange inner JWS and, when it is a
 * newAccount with externalAccountBinding, the EAB check. Aborts when a promise breaks. */
#include "ca/jws_verify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t MAC_KEY[32] = "0123456789abcdef0123456789abcdef";

static void check_eab(const struct ca_jws *j)
{
	json_error_t jerr;
	json_t *p =
	    json_loadb((const char *)j->payload, j->payload_len, JSON_REJECT_DUPLICATES, &jerr);
	const json_t *eab = json_object_get(p, "externalAccountBinding");
	if (eab) {
		char *kid = NULL;
		struct acmera_errmsg e;
		int rc = ca_eab_verify(eab, j->jwk, j->url, NULL, 0, &kid, &e);
		if ((rc == 0) != (kid != NULL))
			abort();
		free(kid);
		kid = NULL;
		int rc2 = ca_eab_verify(eab, j->jwk, j->url, MAC_KEY, sizeof(MAC_KEY), &kid, &e);
		if (rc2 == 0 && rc != 0) /* the MAC step adds a check, never removes one */
			abort();
		free(kid);
	}
	json_decref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ca_jws j;
	struct acmera_errmsg e;
	const char *problem = NULL;
	if (ca_jws_parse((const char *)data, size, &j, &problem, &e) != 0) {
		if (!problem || j.signing_input || j.key || j.payload)
			abort();
		return 0;
	}
	if (problem || !j.url || !j.nonce || !j.signing_input || !j.sig || !j.payload ||
	    (!j.kid == !j.key) || (!j.key != !j.jwk) || j.post_as_get != (j.payload_len == 0))
		abort();
	if (j.key) {
		(void)ca_jws_verify(&j, j.key, &problem, &e);
		EVP_PKEY *new_key = NULL;
		if (ca_key_change_verify((const char *)j.payload, j.payload_len, j.url, j.url,
		                         j.key, &new_key, &problem, &e) == 0 &&
		    !new_key)
			abort();
		EVP_PKEY_free(new_key);
		check_eab(&j);
	}
	ca_jws_free(&j);
	return 0;
}
