/* The device side of EST without a network: key choice, the CSR made from the
 * RA's /csrattrs template (checked by the RA's own parser and policy), the CSR
 * of a re-enrollment, the channel binding in the challengePassword (checked by
 * the RA's policy), the reading of the RA's answer, fingerprints, and the
 * options the client refuses before connecting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../pki/pki_test_util.h"
#include "base/b64.h"
#include "est/client.h"
#include "est/csrattrs.h"
#include "est/policy.h"
#include "http/internal.h"
#include "pki/cert.h"
#include "pki/csr.h"

#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#define FAR_FUTURE 4102444800 /* 2100-01-01 */

/* What the RA would answer on /csrattrs, read back as the device reads it. */
static void template_for(const char *name, enum est_key_kind key, int rsa_bits,
                         struct est_csrattrs_out *out)
{
	const char *names[] = {name};
	struct est_csrattrs_in in = {.subject_cn = name,
	                             .dns_names = names,
	                             .n_dns_names = 1,
	                             .key = key,
	                             .rsa_bits = rsa_bits};
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csrattrs_build(&in, &der, &len, &e), 0);
	memset(out, 0, sizeof(*out));
	assert_int_equal(est_csrattrs_parse(der, len, out, &e), 0);
	free(der);
}

static void csr_of(const uint8_t *der, size_t len, struct csr_info *c)
{
	struct acmera_errmsg e = {{0}};
	memset(c, 0, sizeof(*c));
	int rc = csr_parse_der(der, len, c, &e);
	if (rc)
		fail_msg("csr_parse_der: %s", e.text);
}

static int sig_nid(const struct csr_info *c)
{
	const X509_ALGOR *alg = NULL;
	X509_REQ_get0_signature(c->req, NULL, &alg);
	const ASN1_OBJECT *obj = NULL;
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	return OBJ_obj2nid(obj);
}

/* The RA's template, a key of the kind it names, and the CSR: the RA's parser and
 * policy accept it, whatever the key type. */
static void check_template_roundtrip(enum est_key_kind kind, int rsa_bits, int want_sig)
{
	const char *name = "sn-1234.iot.example.com";
	struct est_csrattrs_out t;
	struct est_key_spec spec;
	int ignored = 0;
	EVP_PKEY *key = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	template_for(name, kind, rsa_bits, &t);
	est_key_choose(&t, NULL, &spec, &ignored);
	assert_int_equal(spec.kind, kind);
	assert_int_equal(ignored, 0);
	assert_int_equal(est_key_generate(&spec, &key, &e), 0);
	assert_int_equal(est_csr_from_template(t.subject_cn, (const char *const *)t.dns_names,
	                                       t.n_dns_names, key, NULL, &der, &len, &e),
	                 0);
	struct csr_info c;
	csr_of(der, len, &c);
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], name);
	assert_string_equal(c.subject, "CN=sn-1234.iot.example.com");
	assert_int_equal(sig_nid(&c), want_sig);
	struct est_policy p = {.name_template = "{cn}",
	                       .allow_p256 = 1,
	                       .allow_p384 = 1,
	                       .allow_ed25519 = 1,
	                       .rsa_min_bits = 2048};
	if (est_policy_check_csr(&p, &c, name, NULL, 0, &e) != 0)
		fail_msg("policy refused the CSR: %s", e.text);
	csr_info_free(&c);
	free(der);
	EVP_PKEY_free(key);
	est_csrattrs_out_free(&t);
}

static void csr_from_p256_template_is_ecdsa_sha256_and_passes_ra_policy(void **state)
{
	(void)state;
	check_template_roundtrip(EST_KEY_EC_P256, 0, NID_ecdsa_with_SHA256);
}

static void csr_from_p384_template_is_signed_with_sha256(void **state)
{
	(void)state;
	check_template_roundtrip(EST_KEY_EC_P384, 0, NID_ecdsa_with_SHA256);
}

static void csr_from_rsa_template_is_sha256_with_rsa(void **state)
{
	(void)state;
	check_template_roundtrip(EST_KEY_RSA, 2048, NID_sha256WithRSAEncryption);
}

static void csr_from_ed25519_template_is_signed_without_digest(void **state)
{
	(void)state;
	check_template_roundtrip(EST_KEY_ED25519, 0, NID_ED25519);
}

static void csr_without_cn_takes_first_name_as_cn_and_all_names_as_san(void **state)
{
	(void)state;
	EVP_PKEY *key = tu_key(TU_EC_P256);
	const char *names[] = {"a.example.com", "b.example.com"};
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csr_from_template(NULL, names, 2, key, NULL, &der, &len, &e), 0);
	struct csr_info c;
	csr_of(der, len, &c);
	assert_string_equal(c.subject, "CN=a.example.com");
	assert_int_equal(c.n_names, 2);
	assert_string_equal(c.names[1], "b.example.com");
	csr_info_free(&c);
	free(der);
	EVP_PKEY_free(key);
}

static void csr_name_longer_than_cn_bound_goes_in_san_only(void **state)
{
	(void)state;
	char name[100];
	memset(name, 'a', 70);
	strcpy(name + 70, ".example.com");
	name[40] = '.'; /* two labels of at most 63 */
	const char *names[] = {name};
	EVP_PKEY *key = tu_key(TU_EC_P256);
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csr_from_template(NULL, names, 1, key, NULL, &der, &len, &e), 0);
	struct csr_info c;
	csr_of(der, len, &c);
	assert_string_equal(c.subject, "");
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], name);
	csr_info_free(&c);
	free(der);
	EVP_PKEY_free(key);
}

static void csr_refuses_names_that_are_not_host_names(void **state)
{
	(void)state;
	EVP_PKEY *key = tu_key(TU_EC_P256);
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	const char *bad[] = {"",        "a..b",       "-a.example", "a b.example", "a.example\n",
	                     long_name, "a_b.example"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *names[] = {bad[i]};
		assert_int_equal(est_csr_from_template(NULL, names, 1, key, NULL, &der, &len, &e),
		                 ACMERA_ERR_INVAL);
		assert_null(der);
	}
	/* Nothing to ask for at all. */
	assert_int_equal(est_csr_from_template(NULL, NULL, 0, key, NULL, &der, &len, &e),
	                 ACMERA_ERR_INVAL);
	assert_int_equal(est_csr_from_template("not a host", NULL, 0, key, NULL, &der, &len, &e),
	                 ACMERA_ERR_INVAL);
	EVP_PKEY_free(key);
}

static void reenroll_csr_keeps_subject_and_san_of_current_cert(void **state)
{
	(void)state;
	EVP_PKEY *old = tu_key(TU_EC_P256), *fresh = tu_key(TU_ED25519);
	X509 *cur = tu_cert("dev.example.com", old, NULL, NULL, FAR_FUTURE,
	                    "DNS:dev.example.com,DNS:alt.example.com");
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csr_like_cert(cur, fresh, NULL, &der, &len, &e), 0);
	struct csr_info c;
	csr_of(der, len, &c);
	char *subj = cert_subject_line(cur);
	assert_string_equal(c.subject, subj);
	assert_int_equal(c.n_names, 2);
	assert_string_equal(c.names[0], "dev.example.com");
	assert_string_equal(c.names[1], "alt.example.com");
	/* The new key, not the old one. */
	assert_int_equal(EVP_PKEY_eq(c.key, fresh), 1);
	free(subj);
	csr_info_free(&c);
	free(der);
	X509_free(cur);
	EVP_PKEY_free(old);
	EVP_PKEY_free(fresh);
}

/* The one challengePassword of c: its ASN.1 type and text. */
static int challenge_password_of(const struct csr_info *c, char *out, size_t outlen)
{
	int i = X509_REQ_get_attr_by_NID(c->req, NID_pkcs9_challengePassword, -1);
	if (i < 0)
		return -1;
	assert_int_equal(X509_REQ_get_attr_by_NID(c->req, NID_pkcs9_challengePassword, i), -1);
	X509_ATTRIBUTE *a = X509_REQ_get_attr(c->req, i);
	assert_int_equal(X509_ATTRIBUTE_count(a), 1);
	ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
	int n = ASN1_STRING_length(t->value.asn1_string);
	assert_true(n >= 0 && (size_t)n < outlen);
	memcpy(out, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
	out[n] = '\0';
	return t->type;
}

/* What a TLS 1.3 connection would give: 32 bytes of exporter output. */
static void some_binding(uint8_t b[32], char b64[EST_BINDING_B64_MAX])
{
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(0xf0 ^ (i * 37));
	char *s = b64_encode(b, 32, 0);
	assert_non_null(s);
	assert_true(strlen(s) < EST_BINDING_B64_MAX);
	strcpy(b64, s);
	free(s);
}

static const struct est_policy bound_policy = {
    .name_template = "{cn}", .allow_p256 = 1, .allow_ed25519 = 1, .require_channel_binding = 1};

static void csr_with_channel_binding_carries_it_and_passes_ra_binding_check(void **state)
{
	(void)state;
	uint8_t binding[32], other[32];
	char cp[EST_BINDING_B64_MAX], got[300];
	some_binding(binding, cp);
	memcpy(other, binding, sizeof(other));
	other[31] ^= 1;
	const char *names[] = {"dev.example.com"};
	EVP_PKEY *key = tu_key(TU_EC_P256);
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csr_from_template(NULL, names, 1, key, cp, &der, &len, &e), 0);
	struct csr_info c;
	csr_of(der, len, &c);
	/* Base64 fits a PrintableString, the type RFC 2985 lists first. */
	assert_int_equal(challenge_password_of(&c, got, sizeof(got)), V_ASN1_PRINTABLESTRING);
	assert_string_equal(got, cp);
	assert_int_equal(c.n_names, 1);
	if (est_policy_check_csr(&bound_policy, &c, "dev.example.com", binding, 32, &e) != 0)
		fail_msg("the RA refused the bound CSR: %s", e.text);
	/* Another connection's binding is refused. */
	assert_int_equal(est_policy_check_csr(&bound_policy, &c, "dev.example.com", other, 32, &e),
	                 ACMERA_ERR_REFUSED);
	csr_info_free(&c);
	free(der);
	/* Without one, a profile that requires it refuses the CSR. */
	assert_int_equal(est_csr_from_template(NULL, names, 1, key, NULL, &der, &len, &e), 0);
	csr_of(der, len, &c);
	assert_int_equal(challenge_password_of(&c, got, sizeof(got)), -1);
	assert_int_equal(
	    est_policy_check_csr(&bound_policy, &c, "dev.example.com", binding, 32, &e),
	    ACMERA_ERR_REFUSED);
	assert_non_null(strstr(e.text, "no challengePassword"));
	csr_info_free(&c);
	free(der);
	EVP_PKEY_free(key);
}

static void reenroll_csr_with_channel_binding_keeps_names_and_carries_it(void **state)
{
	(void)state;
	uint8_t binding[32];
	char cp[EST_BINDING_B64_MAX], got[300];
	some_binding(binding, cp);
	EVP_PKEY *old = tu_key(TU_EC_P256), *fresh = tu_key(TU_ED25519);
	X509 *cur = tu_cert("dev.example.com", old, NULL, NULL, FAR_FUTURE, "DNS:dev.example.com");
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_csr_like_cert(cur, fresh, cp, &der, &len, &e), 0);
	struct csr_info c;
	csr_of(der, len, &c);
	assert_int_equal(challenge_password_of(&c, got, sizeof(got)), V_ASN1_PRINTABLESTRING);
	assert_string_equal(got, cp);
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], "dev.example.com");
	if (est_policy_check_csr(&bound_policy, &c, "dev.example.com", binding, 32, &e) != 0)
		fail_msg("the RA refused the bound re-enrollment CSR: %s", e.text);
	csr_info_free(&c);
	free(der);
	X509_free(cur);
	EVP_PKEY_free(old);
	EVP_PKEY_free(fresh);
}

static void challenge_password_outside_printable_string_is_utf8string(void **state)
{
	(void)state;
	const char *names[] = {"dev.example.com"};
	const char *pw[] = {"p\xc3\xa4sswort", "under_score", "a*b", "semi;colon"};
	EVP_PKEY *key = tu_key(TU_EC_P256);
	char got[300];
	struct acmera_errmsg e = {{0}};
	for (size_t i = 0; i < sizeof(pw) / sizeof(pw[0]); i++) {
		uint8_t *der = NULL;
		size_t len = 0;
		assert_int_equal(est_csr_from_template(NULL, names, 1, key, pw[i], &der, &len, &e),
		                 0);
		struct csr_info c;
		csr_of(der, len, &c);
		assert_int_equal(challenge_password_of(&c, got, sizeof(got)), V_ASN1_UTF8STRING);
		assert_string_equal(got, pw[i]);
		csr_info_free(&c);
		free(der);
	}
	EVP_PKEY_free(key);
}

static void challenge_password_refused_when_empty_too_long_or_not_utf8(void **state)
{
	(void)state;
	const char *names[] = {"dev.example.com"};
	EVP_PKEY *key = tu_key(TU_EC_P256);
	X509 *cur = tu_cert("dev.example.com", key, NULL, NULL, FAR_FUTURE, "DNS:dev.example.com");
	char longest[256], too_long[257];
	memset(longest, 'A', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(too_long, 'A', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	const char *bad[] = {"", too_long, "\xff\xfe", "\xc3", "a\xe2\x82"};
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(est_csr_from_template(NULL, names, 1, key, bad[i], &der, &len, &e),
		                 ACMERA_ERR_INVAL);
		assert_null(der);
		assert_int_equal(est_csr_like_cert(cur, key, bad[i], &der, &len, &e),
		                 ACMERA_ERR_INVAL);
		assert_null(der);
	}
	/* 255 characters is the bound, not past it. */
	assert_int_equal(est_csr_from_template(NULL, names, 1, key, longest, &der, &len, &e), 0);
	free(der);
	X509_free(cur);
	EVP_PKEY_free(key);
}

static void client_has_no_channel_binding_before_a_request(void **state)
{
	(void)state;
	struct est_client *c = NULL;
	struct acmera_errmsg e = {{0}};
	char b64[EST_BINDING_B64_MAX] = "x";
	const char *type = "x";
	struct est_client_opts o = {.server = "https://ra.example:8443", .ca_file = "/dev/null"};
	assert_int_equal(est_client_new(&o, &c, &e), 0);
	assert_int_equal(est_client_channel_binding(c, b64, &type, &e), ACMERA_ERR_PROTO);
	assert_string_equal(b64, "");
	assert_null(type);
	assert_non_null(strstr(e.text, "no TLS channel binding"));
	est_client_free(c);
}

/* ---- the binding both ends compute, over an in-memory TLS connection ---- */

struct tls_pair {
	SSL_CTX *sctx, *cctx;
	EVP_PKEY *key;
	X509 *cert;
};

static void tls_pair_init(struct tls_pair *p, int version, long client_options)
{
	p->key = tu_key(TU_EC_P256);
	p->cert = tu_cert("localhost", p->key, NULL, NULL, FAR_FUTURE, "DNS:localhost");
	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->sctx);
	assert_non_null(p->cctx);
	assert_int_equal(SSL_CTX_use_certificate(p->sctx, p->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, p->key), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(p->sctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(p->cctx, version), 1);
	SSL_CTX_set_options(p->cctx, (uint64_t)client_options);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
}

static void tls_pair_free(struct tls_pair *p)
{
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
}

/* A handshake between a new client (resuming session when given) and server. */
static void tls_connect(struct tls_pair *p, SSL_SESSION *session, SSL **cli, SSL **srv)
{
	BIO *bc = NULL, *bs = NULL;
	*cli = SSL_new(p->cctx);
	*srv = SSL_new(p->sctx);
	assert_non_null(*cli);
	assert_non_null(*srv);
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(*cli, bc, bc);
	SSL_set_bio(*srv, bs, bs);
	if (session)
		assert_int_equal(SSL_set_session(*cli, session), 1);
	SSL_set_connect_state(*cli);
	SSL_set_accept_state(*srv);
	for (int i = 0; i < 50; i++) {
		int rc = SSL_do_handshake(*cli), rs = SSL_do_handshake(*srv);
		if (rc == 1 && rs == 1)
			return;
		int ec = SSL_get_error(*cli, rc), es = SSL_get_error(*srv, rs);
		if ((rc != 1 && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
		    (rs != 1 && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
			fail_msg("TLS handshake failed: %d %d", ec, es);
	}
	fail_msg("TLS handshake did not finish");
}

/* The client's binding (est_tls_channel_binding) equals the server's
 * (http_tls_channel_binding, what the RA checks); returns its length. */
static size_t check_same_binding(SSL *cli, SSL *srv, const char *want_type, uint8_t out[64])
{
	uint8_t sb[64];
	size_t clen = 0, slen = 0;
	const char *ctype = NULL, *stype = NULL;
	struct acmera_errmsg e = {{0}};
	if (est_tls_channel_binding(cli, out, 64, &clen, &ctype, &e) != 0)
		fail_msg("client binding: %s", e.text);
	assert_int_equal(http_tls_channel_binding(srv, sb, sizeof(sb), &slen, &stype), 0);
	assert_string_equal(ctype, want_type);
	assert_string_equal(stype, want_type);
	assert_int_equal(clen, slen);
	assert_memory_equal(out, sb, clen);
	return clen;
}

static void client_channel_binding_equals_the_servers_on_tls13(void **state)
{
	(void)state;
	struct tls_pair p;
	SSL *cli, *srv;
	uint8_t b[64];
	tls_pair_init(&p, TLS1_3_VERSION, 0);
	tls_connect(&p, NULL, &cli, &srv);
	assert_int_equal(check_same_binding(cli, srv, "tls-exporter", b), 32);
	SSL_free(cli);
	SSL_free(srv);
	tls_pair_free(&p);
}

static void client_channel_binding_equals_the_servers_on_tls12_full_and_resumed(void **state)
{
	(void)state;
	struct tls_pair p;
	SSL *cli, *srv;
	uint8_t full[64], resumed[64];
	tls_pair_init(&p, TLS1_2_VERSION, 0);
	tls_connect(&p, NULL, &cli, &srv);
	assert_int_equal(SSL_session_reused(cli), 0);
	size_t n = check_same_binding(cli, srv, "tls-unique", full);
	SSL_SESSION *sess = SSL_get1_session(cli);
	assert_non_null(sess);
	/* A connection closed without close_notify would not be resumable. */
	SSL_set_shutdown(cli, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(srv, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(cli);
	SSL_free(srv);
	/* Resumed: the server's Finished comes first and is the binding. */
	tls_connect(&p, sess, &cli, &srv);
	assert_int_equal(SSL_session_reused(cli), 1);
	assert_int_equal(check_same_binding(cli, srv, "tls-unique", resumed), n);
	assert_memory_not_equal(full, resumed, n);
	SSL_SESSION_free(sess);
	SSL_free(cli);
	SSL_free(srv);
	tls_pair_free(&p);
}

static void client_refuses_tls_unique_without_extended_master_secret(void **state)
{
	(void)state;
	struct tls_pair p;
	SSL *cli, *srv;
	uint8_t b[64];
	size_t len = 1;
	const char *type = "x";
	struct acmera_errmsg e = {{0}};
	tls_pair_init(&p, TLS1_2_VERSION, (long)SSL_OP_NO_EXTENDED_MASTER_SECRET);
	tls_connect(&p, NULL, &cli, &srv);
	assert_int_equal(est_tls_channel_binding(cli, b, sizeof(b), &len, &type, &e),
	                 ACMERA_ERR_PROTO);
	assert_int_equal(len, 0);
	assert_null(type);
	assert_non_null(strstr(e.text, "extended master secret"));
	/* The RA would refuse it as well. */
	assert_int_equal(http_tls_channel_binding(srv, b, sizeof(b), &len, &type), -1);
	SSL_free(cli);
	SSL_free(srv);
	tls_pair_free(&p);
}

static void key_choice_follows_ra_unless_user_choice_is_compatible(void **state)
{
	(void)state;
	struct est_csrattrs_out ra = {.have_key = 1, .key = EST_KEY_EC_P256};
	struct est_key_spec out, want;
	int ignored = 0;
	/* Nothing from anyone: p256. */
	est_key_choose(NULL, NULL, &out, &ignored);
	assert_int_equal(out.kind, EST_KEY_EC_P256);
	/* No attributes: the user's choice. */
	assert_int_equal(est_key_spec_parse("ed25519", &want), 0);
	est_key_choose(NULL, &want, &out, &ignored);
	assert_int_equal(out.kind, EST_KEY_ED25519);
	assert_int_equal(ignored, 0);
	/* Attributes without a key type: the user's choice. */
	struct est_csrattrs_out nokey = {.have_key = 0};
	est_key_choose(&nokey, &want, &out, &ignored);
	assert_int_equal(out.kind, EST_KEY_ED25519);
	/* Another curve than the RA's: the RA's, and the user is told. */
	assert_int_equal(est_key_spec_parse("p384", &want), 0);
	est_key_choose(&ra, &want, &out, &ignored);
	assert_int_equal(out.kind, EST_KEY_EC_P256);
	assert_int_equal(ignored, 1);
	/* RSA: a larger key than asked is compatible, a smaller one is not. */
	struct est_csrattrs_out ra_rsa = {.have_key = 1, .key = EST_KEY_RSA, .rsa_bits = 3072};
	assert_int_equal(est_key_spec_parse("rsa4096", &want), 0);
	est_key_choose(&ra_rsa, &want, &out, &ignored);
	assert_int_equal(out.kind, EST_KEY_RSA);
	assert_int_equal(out.rsa_bits, 4096);
	assert_int_equal(ignored, 0);
	assert_int_equal(est_key_spec_parse("rsa2048", &want), 0);
	est_key_choose(&ra_rsa, &want, &out, &ignored);
	assert_int_equal(out.rsa_bits, 3072);
	assert_int_equal(ignored, 1);
	/* Unknown names are refused. */
	assert_int_not_equal(est_key_spec_parse("rsa1024", &want), 0);
	assert_int_not_equal(est_key_spec_parse("P256", &want), 0);
}

static void key_spec_of_existing_keys_names_their_kind(void **state)
{
	(void)state;
	const char *names[] = {"p256", "p384", "ed25519", "rsa2048"};
	struct acmera_errmsg e = {{0}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct est_key_spec s, back;
		EVP_PKEY *k = NULL;
		char buf[16];
		assert_int_equal(est_key_spec_parse(names[i], &s), 0);
		assert_int_equal(est_key_generate(&s, &k, &e), 0);
		assert_int_equal(est_key_spec_of(k, &back, &e), 0);
		assert_string_equal(est_key_spec_name(&back, buf, sizeof(buf)), names[i]);
		EVP_PKEY_free(k);
	}
	struct est_key_spec tiny = {.kind = EST_KEY_RSA, .rsa_bits = 1024};
	EVP_PKEY *k = NULL;
	assert_int_equal(est_key_generate(&tiny, &k, &e), ACMERA_ERR_INVAL);
	assert_null(k);
}

/* The base64 PKCS#7 body the RA sends for chain. */
static char *answer_for(X509 *a, X509 *b)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	assert_non_null(chain);
	assert_true(sk_X509_push(chain, a) > 0);
	if (b)
		assert_true(sk_X509_push(chain, b) > 0);
	uint8_t *der = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(pkcs7_certs_only_der(chain, &der, &len, &e), 0);
	char *body = b64_encode(der, len, 64);
	assert_non_null(body);
	free(der);
	sk_X509_free(chain);
	return body;
}

static void answer_puts_certificate_of_our_key_first(void **state)
{
	(void)state;
	EVP_PKEY *ca_key = tu_key(TU_EC_P256), *key = tu_key(TU_EC_P256);
	X509 *ca = tu_cert("Test CA", ca_key, NULL, NULL, FAR_FUTURE, NULL);
	X509 *leaf = tu_cert("dev.example.com", key, ca, ca_key, FAR_FUTURE, "DNS:dev.example.com");
	/* The CA first, as a careless RA might send it. */
	char *body = answer_for(ca, leaf);
	STACK_OF(X509) *chain = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_enroll_answer((const uint8_t *)body, strlen(body), key, &chain, &e),
	                 0);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0), leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), ca), 0);
	sk_X509_pop_free(chain, X509_free);
	free(body);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

static void answer_without_certificate_for_our_key_is_refused(void **state)
{
	(void)state;
	EVP_PKEY *other = tu_key(TU_EC_P256), *key = tu_key(TU_EC_P256);
	X509 *leaf = tu_cert("dev.example.com", other, NULL, NULL, FAR_FUTURE, NULL);
	char *body = answer_for(leaf, NULL);
	STACK_OF(X509) *chain = NULL;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(est_enroll_answer((const uint8_t *)body, strlen(body), key, &chain, &e),
	                 ACMERA_ERR_PROTO);
	assert_null(chain);
	assert_non_null(strstr(e.text, "key of the CSR"));
	/* Not base64, and base64 of something else. */
	assert_int_not_equal(est_enroll_answer((const uint8_t *)"%%%", 3, key, &chain, &e), 0);
	assert_int_not_equal(est_enroll_answer((const uint8_t *)"AAAA", 4, key, &chain, &e), 0);
	assert_null(chain);
	free(body);
	X509_free(leaf);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void fingerprint_matches_hex_with_colons_in_any_case(void **state)
{
	(void)state;
	EVP_PKEY *k = tu_key(TU_EC_P256);
	X509 *x = tu_cert("ra.example.com", k, NULL, NULL, FAR_FUTURE, NULL);
	char fp[65], colons[200] = "", upper[65];
	assert_int_equal(est_cert_fingerprint(x, fp), 0);
	assert_int_equal(strlen(fp), 64);
	for (int i = 0; i < 32; i++) {
		char two[4];
		snprintf(two, sizeof(two), "%.2s%s", fp + 2 * i, i < 31 ? ":" : "");
		strcat(colons, two);
	}
	for (int i = 0; i <= 64; i++)
		upper[i] = (char)(fp[i] >= 'a' && fp[i] <= 'f' ? fp[i] - 32 : fp[i]);
	assert_true(est_fingerprint_matches(fp, fp));
	assert_true(est_fingerprint_matches(colons, fp));
	assert_true(est_fingerprint_matches(upper, fp));
	/* One digit off, one short, one long, not hex. */
	char off[65];
	memcpy(off, fp, 65);
	off[10] = off[10] == '0' ? '1' : '0';
	assert_false(est_fingerprint_matches(off, fp));
	off[10] = fp[10];
	off[63] = '\0';
	assert_false(est_fingerprint_matches(off, fp));
	char longer[70];
	snprintf(longer, sizeof(longer), "%s00", fp);
	assert_false(est_fingerprint_matches(longer, fp));
	assert_false(est_fingerprint_matches("", fp));
	assert_false(est_fingerprint_matches(NULL, fp));
	X509_free(x);
	EVP_PKEY_free(k);
}

static void server_text_is_one_printable_line(void **state)
{
	(void)state;
	char body[] = "the CSR must\r\n  name\tdev.example.com\x1b[2J\n";
	struct est_response r = {.status = 403, .body = (uint8_t *)body, .len = strlen(body)};
	char out[64];
	est_response_text(&r, out, sizeof(out));
	assert_string_equal(out, "the CSR must name dev.example.com?[2J");
	char small[8];
	est_response_text(&r, small, sizeof(small));
	assert_string_equal(small, "the CSR");
}

static void client_refuses_bad_servers_labels_and_credentials_before_connecting(void **state)
{
	(void)state;
	struct est_client *c = NULL;
	struct acmera_errmsg e = {{0}};
	const char *bad_servers[] = {"http://ra.example:8443",
	                             "https://",
	                             "https:///x",
	                             "https://ra.example/other",
	                             "https://ra.example/?x",
	                             "https://user@ra.example",
	                             "https://ra .example"};
	for (size_t i = 0; i < sizeof(bad_servers) / sizeof(bad_servers[0]); i++) {
		struct est_client_opts o = {
		    .server = bad_servers[i], .ca_file = "/dev/null", .user = "u", .password = "p"};
		assert_int_equal(est_client_new(&o, &c, &e), ACMERA_ERR_INVAL);
		assert_null(c);
	}
	const char *bad_labels[] = {"", "a/b", "simpleenroll", "cacerts", "..", "a%2f"};
	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
		struct est_client_opts o = {.server = "https://ra.example:8443",
		                            .label = bad_labels[i],
		                            .ca_file = "/dev/null",
		                            .user = "u",
		                            .password = "p"};
		assert_int_equal(est_client_new(&o, &c, &e), ACMERA_ERR_INVAL);
	}
	/* Bootstrap never carries credentials; verified clients need one trust source. */
	struct est_client_opts boot = {
	    .server = "https://ra.example", .insecure = 1, .user = "u", .password = "p"};
	assert_int_equal(est_client_new(&boot, &c, &e), ACMERA_ERR_INVAL);
	struct est_client_opts none = {
	    .server = "https://ra.example", .user = "u", .password = "p"};
	assert_int_equal(est_client_new(&none, &c, &e), ACMERA_ERR_INVAL);
	/* TLS 1.2 is the floor: no maximum below it. */
	const int bad_tls[] = {11, 1, 14, -1};
	for (size_t i = 0; i < sizeof(bad_tls) / sizeof(bad_tls[0]); i++) {
		struct est_client_opts o = {
		    .server = "https://ra.example", .ca_file = "/dev/null", .tls_max = bad_tls[i]};
		assert_int_equal(est_client_new(&o, &c, &e), ACMERA_ERR_INVAL);
		assert_null(c);
	}
	struct est_client_opts good[] = {
	    {.server = "https://ra.example:8443", .ca_file = "/dev/null"},
	    {.server = "https://ra.example:8443/", .label = "iot", .ca_pem = ""},
	    {.server = "https://ra.example/.well-known/est/", .ca_file = "/dev/null"},
	    {.server = "https://127.0.0.1:8443", .insecure = 1},
	    {.server = "https://127.0.0.1:8443", .ca_file = "/dev/null", .tls_max = 12},
	    {.server = "https://127.0.0.1:8443", .ca_file = "/dev/null", .tls_max = 13},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (est_client_new(&good[i], &c, &e) != 0)
			fail_msg("%s: %s", good[i].server, e.text);
		est_client_free(c);
		c = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(csr_from_p256_template_is_ecdsa_sha256_and_passes_ra_policy),
	    cmocka_unit_test(csr_from_p384_template_is_signed_with_sha256),
	    cmocka_unit_test(csr_from_rsa_template_is_sha256_with_rsa),
	    cmocka_unit_test(csr_from_ed25519_template_is_signed_without_digest),
	    cmocka_unit_test(csr_without_cn_takes_first_name_as_cn_and_all_names_as_san),
	    cmocka_unit_test(csr_name_longer_than_cn_bound_goes_in_san_only),
	    cmocka_unit_test(csr_refuses_names_that_are_not_host_names),
	    cmocka_unit_test(reenroll_csr_keeps_subject_and_san_of_current_cert),
	    cmocka_unit_test(csr_with_channel_binding_carries_it_and_passes_ra_binding_check),
	    cmocka_unit_test(reenroll_csr_with_channel_binding_keeps_names_and_carries_it),
	    cmocka_unit_test(challenge_password_outside_printable_string_is_utf8string),
	    cmocka_unit_test(challenge_password_refused_when_empty_too_long_or_not_utf8),
	    cmocka_unit_test(client_has_no_channel_binding_before_a_request),
	    cmocka_unit_test(client_channel_binding_equals_the_servers_on_tls13),
	    cmocka_unit_test(client_channel_binding_equals_the_servers_on_tls12_full_and_resumed),
	    cmocka_unit_test(client_refuses_tls_unique_without_extended_master_secret),
	    cmocka_unit_test(key_choice_follows_ra_unless_user_choice_is_compatible),
	    cmocka_unit_test(key_spec_of_existing_keys_names_their_kind),
	    cmocka_unit_test(answer_puts_certificate_of_our_key_first),
	    cmocka_unit_test(answer_without_certificate_for_our_key_is_refused),
	    cmocka_unit_test(fingerprint_matches_hex_with_colons_in_any_case),
	    cmocka_unit_test(server_text_is_one_printable_line),
	    cmocka_unit_test(client_refuses_bad_servers_labels_and_credentials_before_connecting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
