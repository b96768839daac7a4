/* The answer to /csrattrs: what the CSR must contain, as an RFC 9908
 * CsrAttrs with an id-aa-certificationRequestInfoTemplate (the subject and the
 * subjectAltName the device must ask for, and its key type) followed by the
 * plain RFC 7030 attribute list (OIDs of the key and signature algorithms,
 * extensionRequest) for older clients. DER, built with OpenSSL's ASN.1 support;
 * the OIDs come from RFC 9908's IANA section and ASN.1 module
 * (/work/shared/reference/rfc9908-*). */
#ifndef ACMERA_EST_CSRATTRS_H
#define ACMERA_EST_CSRATTRS_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

enum est_key_kind { EST_KEY_EC_P256, EST_KEY_EC_P384, EST_KEY_RSA, EST_KEY_ED25519 };

struct est_csrattrs_in {
	const char *subject_cn;       /* CN the template asks for, or NULL */
	const char *const *dns_names; /* the SAN dNSNames the device must request */
	size_t n_dns_names;
	enum est_key_kind key;  /* the key type to ask for */
	int rsa_bits;           /* when key == EST_KEY_RSA */
	int challenge_password; /* list the challengePassword OID: the CSR must carry the
	                           TLS channel binding (RFC 7030 3.5, 4.5.2) */
};

/* DER of CsrAttrs (heap, free()). */
int est_csrattrs_build(const struct est_csrattrs_in *in, uint8_t **der, size_t *len,
                       struct acmera_errmsg *e);

/* What a device reads back from a CsrAttrs (for `acmera enroll` and tests):
 * the template's CN and dNSNames and the requested key type. Bounded parser of
 * untrusted bytes; unknown attributes are skipped. Strings are heap copies. */
struct est_csrattrs_out {
	char *subject_cn;
	char **dns_names;
	size_t n_dns_names;
	int have_key;
	enum est_key_kind key;
	int rsa_bits;
	int challenge_password; /* the challengePassword OID is listed (top level) */
};
int est_csrattrs_parse(const uint8_t *der, size_t len, struct est_csrattrs_out *out,
                       struct acmera_errmsg *e);
void est_csrattrs_out_free(struct est_csrattrs_out *o);

#endif
