/* PKCS#7 certs-only straight from a PEM chain that acmera stored itself, without
 * parsing the certificates: OpenSSL 3.0 spends most of a d2i_X509 building a
 * decoder for the public key, and answers are built far more often than chains
 * are stored. The certificates' DER is copied as it is into the structure that
 * pkcs7_certs_only_der encodes (the two agree byte for byte: tested). */
#include "pki/cert.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <stdlib.h>
#include <string.h>

/* id-signedData and id-data (RFC 5652), DER with their tags. */
static const uint8_t oid_signed_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                          0xf7, 0x0d, 0x01, 0x07, 0x02};
static const uint8_t oid_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                   0xf7, 0x0d, 0x01, 0x07, 0x01};

/* Bytes of a DER length field for n. */
static size_t len_size(size_t n)
{
	return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

static uint8_t *put_head(uint8_t *p, uint8_t tag, size_t n)
{
	*p++ = tag;
	size_t k = len_size(n);
	if (k == 1) {
		*p++ = (uint8_t)n;
		return p;
	}
	*p++ = (uint8_t)(0x80 | (k - 1));
	for (size_t i = k - 1; i > 0; i--)
		*p++ = (uint8_t)(n >> (8 * (i - 1)));
	return p;
}

/* 1 when der is exactly one DER SEQUENCE (the outer shape of a certificate). */
static int one_sequence(const uint8_t *der, size_t len)
{
	if (len < 2 || der[0] != 0x30)
		return 0;
	size_t n = der[1], h = 2;
	if (n & 0x80) {
		size_t k = n & 0x7f;
		if (k == 0 || k > 3 || len < 2 + k)
			return 0;
		n = 0;
		for (size_t i = 0; i < k; i++)
			n = n << 8 | der[2 + i];
		h += k;
	}
	return h + n == len;
}

int pkcs7_certs_only_from_pem(const char *pem, size_t len, int skip_first, uint8_t **der,
                              size_t *der_len, struct acmera_errmsg *e)
{
	uint8_t *certs[CHAIN_MAX_CERTS];
	long sizes[CHAIN_MAX_CERTS];
	size_t n = 0, total = 0;
	int rc = 0, seen = 0;
	*der = NULL;
	*der_len = 0;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long dlen = 0;
		if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
			ERR_clear_error(); /* the end, or text after the last block */
			break;
		}
		int is_cert = strcmp(name, "CERTIFICATE") == 0;
		OPENSSL_free(name);
		OPENSSL_free(header);
		if (!is_cert || !one_sequence(data, (size_t)dlen) || n == CHAIN_MAX_CERTS) {
			OPENSSL_free(data);
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 n == CHAIN_MAX_CERTS ? "more than %d certificates"
			                                      : "block %d is not a certificate",
			                 n == CHAIN_MAX_CERTS ? CHAIN_MAX_CERTS : seen + 1);
			goto out;
		}
		if (seen++ == 0 && skip_first) {
			OPENSSL_free(data);
			continue;
		}
		certs[n] = data;
		sizes[n++] = dlen;
		total += (size_t)dlen;
	}
	if (n == 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "no certificate in the chain");
		goto out;
	}
	/* SignedData: version 1, no digest algorithms, id-data without content, the
	 * certificates ([0] IMPLICIT, in order), no signers. */
	size_t sd_body = 3 + 2 + (2 + sizeof(oid_data)) + 1 + len_size(total) + total + 2;
	size_t sd = 1 + len_size(sd_body) + sd_body;
	size_t ci_body = sizeof(oid_signed_data) + 1 + len_size(sd) + sd;
	size_t all = 1 + len_size(ci_body) + ci_body;
	uint8_t *out = malloc(all), *p = out;
	if (!out) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	p = put_head(p, 0x30, ci_body);
	memcpy(p, oid_signed_data, sizeof(oid_signed_data));
	p += sizeof(oid_signed_data);
	p = put_head(p, 0xa0, sd);
	p = put_head(p, 0x30, sd_body);
	static const uint8_t version_and_digests[] = {0x02, 0x01, 0x01, 0x31, 0x00};
	memcpy(p, version_and_digests, sizeof(version_and_digests));
	p += sizeof(version_and_digests);
	p = put_head(p, 0x30, sizeof(oid_data));
	memcpy(p, oid_data, sizeof(oid_data));
	p += sizeof(oid_data);
	p = put_head(p, 0xa0, total);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, certs[i], (size_t)sizes[i]);
		p += sizes[i];
	}
	*p++ = 0x31;
	*p++ = 0x00;
	*der = out;
	*der_len = (size_t)(p - out);
out:
	for (size_t i = 0; i < n; i++)
		OPENSSL_free(certs[i]);
	BIO_free(bio);
	return rc;
}
