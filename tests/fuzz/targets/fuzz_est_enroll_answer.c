/* What an EST server sends `acmera enroll`: the /simpleenroll answer (base64
 * PKCS#7, the certificate for our key moved first), the /cacerts answer, and the
 * text of an error body made printable. The key is a fixed public key, so seeds
 * holding a certificate for it reach the reordering. */
#include "est/client.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static const char PUBLIC_KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEF90o/hJcU4w2OBaEcNJc0s78Z4lP\n"
    "+u+WUNBHh2oCNVzWJ8vHMTgWkH2PHc5rWhbHXdSKBxLS00BLjhJwnVG92A==\n"
    "-----END PUBLIC KEY-----\n";

static EVP_PKEY *fixed_key(void)
{
	static EVP_PKEY *key;
	if (!key) {
		BIO *b = BIO_new_mem_buf(PUBLIC_KEY, -1);
		key = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!key)
			abort();
	}
	return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *key = fixed_key();
	STACK_OF(X509) *chain = NULL;
	struct acmera_errmsg e;
	if (est_enroll_answer(data, size, key, &chain, &e) == 0) {
		/* Success promises a chain whose first certificate holds our key. */
		if (!chain || sk_X509_num(chain) < 1 ||
		    EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(chain, 0)), key) != 1)
			abort();
		sk_X509_pop_free(chain, X509_free);
	} else if (chain) {
		abort();
	}
	if (est_cacerts_answer(data, size, &chain, &e) == 0) {
		if (!chain || sk_X509_num(chain) < 1)
			abort();
		sk_X509_pop_free(chain, X509_free);
	} else if (chain) {
		abort();
	}
	struct est_response r = {.status = 400, .body = (uint8_t *)data, .len = size};
	char text[512];
	est_response_text(&r, text, sizeof(text));
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (strlen(text) >= sizeof(text))
		abort();
	return 0;
}
