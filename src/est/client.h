/* The device side of EST (RFC 7030, RFC 8951), for `acmera enroll`: the HTTPS
 * transport to one EST server (libcurl easy interface; TLS always verified, except
 * for the bootstrap fetch of /cacerts, RFC 7030 4.1.1), the TLS channel binding of
 * its connection (RFC 7030 3.5), and the pieces a request is built from and its
 * answer checked with: the key, the CSR from the RA's template, and the
 * certificate that comes back. */
#ifndef ACMERA_EST_CLIENT_H
#define ACMERA_EST_CLIENT_H

#include "base/err.h"
#include "est/csrattrs.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EST_CLIENT_MAX_BODY (256 * 1024) /* larger answers are refused */
#define EST_URL_MAX 1024

/* ---- transport ---- */

struct est_client;

struct est_client_opts {
	const char *server;    /* "https://HOST[:PORT]", optionally ending in /.well-known/est */
	const char *label;     /* CA label (RFC 7030 3.2.2), or NULL */
	const char *ca_file;   /* explicit trust anchors for the server's TLS (PEM file), */
	const char *ca_pem;    /* or as PEM text (the anchors accepted by bootstrap) */
	int insecure;          /* bootstrap only: no TLS verification; credentials are
	                          refused so that none reach an unauthenticated server */
	const char *cert_file; /* TLS client certificate and key (PEM), or NULL */
	const char *key_file;
	const char *user;     /* HTTP Basic, or NULL */
	const char *password; /* copied by libcurl; the caller may wipe it after _new */
	int timeout_s;        /* per request, 0 = 60 */
	int tls_max;          /* highest TLS version: 12 (TLS 1.2), 13, or 0 for the
	                         library's highest; the lowest is always TLS 1.2 */
};

/* An answer with any HTTP status. body is NUL-terminated (not counted in len). */
struct est_response {
	long status;
	char *content_type; /* or NULL */
	char *retry_after;  /* raw header value, or NULL */
	uint8_t *body;
	size_t len;
};
void est_response_free(struct est_response *r);

/* Checks the options (https URL without query, label syntax, exactly one trust
 * source unless insecure) and prepares the handle; connects on the first request. */
int est_client_new(const struct est_client_opts *o, struct est_client **out,
                   struct acmera_errmsg *e);
void est_client_free(struct est_client *c);

/* GET or POST /.well-known/est/[LABEL/]op. Returns 0 with r filled for any HTTP
 * status; transport failures (TLS verification included) and answers larger than
 * EST_CLIENT_MAX_BODY fail with ACMERA_ERR_IO / ACMERA_ERR_PROTO. r is freed by
 * the caller with est_response_free (also after a failure). */
int est_client_get(struct est_client *c, const char *op, struct est_response *r,
                   struct acmera_errmsg *e);
int est_client_post(struct est_client *c, const char *op, const char *content_type,
                    const void *body, size_t len, struct est_response *r, struct acmera_errmsg *e);

/* The TLS certificate the server presented in the last exchange (a new
 * reference, X509_free). */
int est_client_server_cert(struct est_client *c, X509 **out, struct acmera_errmsg *e);

/* Room for the base64 of any channel binding (at most 64 bytes). */
#define EST_BINDING_B64_MAX 96

/* The TLS channel binding of the connection the last request went over, read
 * while that request was on it: tls-exporter on TLS 1.3 (RFC 9266: 32 bytes of
 * exporter "EXPORTER-Channel-Binding", no context), tls-unique on TLS 1.2 (RFC
 * 5929: the first Finished of the latest handshake; refused without the
 * extended master secret, RFC 7627). b64 gets standard base64 without line
 * breaks, as the CSR's challengePassword carries it; *type "tls-exporter" or
 * "tls-unique" (static). ACMERA_ERR_PROTO with the reason when there was no
 * answer yet or the connection offers no usable binding. */
int est_client_channel_binding(const struct est_client *c, char b64[EST_BINDING_B64_MAX],
                               const char **type, struct acmera_errmsg *e);
/* The same for the client side of any TLS connection ssl (what the function
 * above reads from libcurl's): buf of cap >= 32 bytes gets *len bytes. */
int est_tls_channel_binding(SSL *ssl, uint8_t *buf, size_t cap, size_t *len, const char **type,
                            struct acmera_errmsg *e);
/* 1 when the last request opened a new connection (CURLINFO_NUM_CONNECTS > 0)
 * rather than reusing the one before: a binding learnt earlier is stale. */
int est_client_new_connection(const struct est_client *c);

/* ---- keys, CSRs, answers (no I/O) ---- */

struct est_key_spec {
	enum est_key_kind kind;
	int rsa_bits; /* when kind == EST_KEY_RSA */
};

/* "p256", "p384", "ed25519", "rsa2048" (or rsa3072, rsa4096). */
int est_key_spec_parse(const char *name, struct est_key_spec *out);
/* The name of s into buf ("p256", "rsa3072"); returns buf. */
const char *est_key_spec_name(const struct est_key_spec *s, char *buf, size_t len);
/* The kind and size of an existing key (re-enrollment keeps it by default). */
int est_key_spec_of(EVP_PKEY *key, struct est_key_spec *out, struct acmera_errmsg *e);

/* The key to make: without a wish from the RA (attrs NULL or without a key) the
 * user's (want), else p256; with one, the user's only when compatible (same
 * kind; RSA at least as large), else the RA's, and *want_ignored is set. */
void est_key_choose(const struct est_csrattrs_out *attrs, const struct est_key_spec *want,
                    struct est_key_spec *out, int *want_ignored);
/* A fresh key (RSA: 2048 to 16384 bits). *out owned by the caller. */
int est_key_generate(const struct est_key_spec *s, EVP_PKEY **out, struct acmera_errmsg *e);

/* PKCS#10 DER (heap, free()) for key: subject CN=cn (cn NULL: the first name, when
 * it fits the 64-character CN bound) and a subjectAltName of dNSNames names (n 0:
 * cn alone). Signed with SHA-256; Ed25519 without a digest. Names must be host
 * names (LDH labels, "*." prefix allowed, at most 253 characters).
 * challenge_password, when not NULL, becomes the challengePassword attribute
 * (PKCS#9): a PrintableString when it fits one, else a UTF8String; 1 to 255
 * characters of UTF-8. */
int est_csr_from_template(const char *cn, const char *const *names, size_t n, EVP_PKEY *key,
                          const char *challenge_password, uint8_t **der, size_t *len,
                          struct acmera_errmsg *e);
/* Re-enrollment (RFC 7030 4.2.2): the subject and the subjectAltName extension of
 * current, copied unchanged, with the new key; challenge_password as above. */
int est_csr_like_cert(X509 *current, EVP_PKEY *key, const char *challenge_password, uint8_t **der,
                      size_t *len, struct acmera_errmsg *e);

/* Reads a 200 answer of /simpleenroll or /simplereenroll: base64 PKCS#7
 * certs-only. The certificate whose public key is key becomes the first of
 * *chain (the others follow in their order); none is ACMERA_ERR_PROTO.
 * *chain: sk_X509_pop_free(chain, X509_free). */
int est_enroll_answer(const uint8_t *body, size_t len, EVP_PKEY *key, STACK_OF(X509) * *chain,
                      struct acmera_errmsg *e);
/* Reads a 200 answer of /cacerts into a new stack. */
int est_cacerts_answer(const uint8_t *body, size_t len, STACK_OF(X509) * *chain,
                       struct acmera_errmsg *e);

/* SHA-256 of the DER of x, lower-case hex. */
int est_cert_fingerprint(X509 *x, char out[65]);
/* 1 when text names fp: 64 hex digits, case and ':' separators ignored. */
int est_fingerprint_matches(const char *text, const char fp[65]);

/* The server's text for an error: printable, one line, at most outlen - 1 bytes. */
void est_response_text(const struct est_response *r, char *out, size_t outlen);

/* ---- the enrollment exchange ---- */

/* For a CSR that carries the channel binding: makes it again, with the same key,
 * carrying challenge_password (the binding of the connection now in use).
 * *der: heap, free(). */
struct est_csr_rebind {
	int (*remake)(void *arg, const char *challenge_password, uint8_t **der, size_t *len,
	              struct acmera_errmsg *e);
	void *arg;
};

/* POSTs csr_der (base64, 64-character lines) to op ("simpleenroll" or
 * "simplereenroll") until the answer is not 202, honouring Retry-After and
 * re-sending the same bytes, for at most max_wait_s seconds in total. Prints one
 * step line per answer to steps (may be NULL). 200: *chain as est_enroll_answer.
 * Any other status: ACMERA_ERR_REFUSED with "POST /op -> STATUS: server text";
 * still 202 past max_wait_s: ACMERA_ERR_TIMEOUT.
 * rebind (NULL when the CSR carries no binding): csr_der carries the binding of
 * the connection of c's last request. When the first POST had to open a new
 * connection and is refused (400, 403), the CSR is made again for the new
 * connection and posted once more; when that one too went over a new
 * connection, the refusal says so. Retries after 202 re-send the same CSR even
 * over a new connection: a new CSR would be a new request. */
int est_enroll_submit(struct est_client *c, const char *op, const uint8_t *csr_der, size_t csr_len,
                      const struct est_csr_rebind *rebind, EVP_PKEY *key, int max_wait_s,
                      FILE *steps, STACK_OF(X509) * *chain, struct acmera_errmsg *e);

#endif
