/* Trust anchors of a profile, verification of a client's chain against them, and
 * the identity (CN, serialNumber) taken from a client certificate. */
#include "est/auth.h"
#include "../pki/pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T_2051 2556144000 /* 2051-01-01T00:00:00Z */
#define T_2021 1609459200 /* 2021-01-01T00:00:00Z, past */

static EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key;
static X509 *root, *inter, *leaf, *other_root, *other_leaf, *expired_leaf;

/* One subject attribute: a NID and its value as a UTF8String (no length table,
 * so oversized values can be made), or as BMPString when bmp is set. */
struct attr {
	int nid;
	const char *value;
	int bmp;
};

static X509_NAME *make_name(const struct attr *a, size_t n)
{
	X509_NAME *name = X509_NAME_new();
	assert_non_null(name);
	for (size_t i = 0; i < n; i++) {
		if (a[i].bmp) {
			/* ASCII to UCS-2 big endian. */
			unsigned char u[256];
			size_t k = strlen(a[i].value);
			for (size_t j = 0; j < k; j++) {
				u[2 * j] = 0;
				u[2 * j + 1] = (unsigned char)a[i].value[j];
			}
			int ok = X509_NAME_add_entry_by_NID(name, a[i].nid, V_ASN1_BMPSTRING, u,
			                                    (int)(2 * k), -1, 0);
			assert_int_equal(ok, 1);
			continue;
		}
		assert_int_equal(X509_NAME_add_entry_by_NID(name, a[i].nid, V_ASN1_UTF8STRING,
		                                            (const unsigned char *)a[i].value, -1,
		                                            -1, 0),
		                 1);
	}
	return name;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate with the given subject; a CA (basicConstraints, keyCertSign)
 * when ca is set; self-signed when issuer is NULL. */
static X509 *make_cert(const struct attr *subj, size_t n, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, int ca, int64_t not_after)
{
	static long serial = 100;
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	X509_NAME *name = make_name(subj, n);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	X509_NAME_free(name);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), 1600000000));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	}
	EVP_PKEY *signer = issuer ? issuer_key : key;
	/* Ed25519 takes no separate digest. */
	const EVP_MD *md = EVP_PKEY_get_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	assert_true(X509_sign(x, signer, md) > 0);
	return x;
}

static X509 *ca_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	const struct attr a[] = {{NID_organizationName, "Maker", 0}, {NID_commonName, cn, 0}};
	return make_cert(a, 2, key, issuer, issuer_key, 1, T_2051);
}

/* An IDevID: serialNumber and CN, no EKU, as IEEE 802.1AR devices carry. */
static X509 *idevid(const char *serial, X509 *issuer, EVP_PKEY *issuer_key, int64_t not_after)
{
	const struct attr a[] = {{NID_organizationName, "Maker", 0},
	                         {NID_commonName, "Widget 3000", 0},
	                         {NID_serialNumber, serial, 0}};
	return make_cert(a, 3, leaf_key, issuer, issuer_key, 0, not_after);
}

static int group_setup(void **state)
{
	(void)state;
	root_key = tu_key(TU_EC_P256);
	inter_key = tu_key(TU_EC_P256);
	leaf_key = tu_key(TU_ED25519);
	other_key = tu_key(TU_EC_P256);
	root = ca_cert("Maker Root CA", root_key, NULL, NULL);
	inter = ca_cert("Maker Issuing CA", inter_key, root, root_key);
	leaf = idevid("SN0042", inter, inter_key, T_2051);
	expired_leaf = idevid("SN0043", inter, inter_key, T_2021);
	/* Same names as the real root, another key: a forged hierarchy. */
	other_root = ca_cert("Maker Root CA", other_key, NULL, NULL);
	other_leaf = idevid("SN0042", other_root, other_key, T_2051);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509 *all[] = {root, inter, leaf, expired_leaf, other_root, other_leaf};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		X509_free(all[i]);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(other_key);
	return 0;
}

/* A PEM bundle of the certificates (with text around them, as bundles have). */
static char *bundle(X509 *const *certs, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	BIO_puts(b, "# trust anchors of the widget profile\n");
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509(b, certs[i]), 1);
	char *p;
	long len = BIO_get_mem_data(b, &p);
	char *path = tu_temp_file(p, (size_t)len);
	BIO_free(b);
	return path;
}

static struct est_trust *load_ok(X509 *const *certs, size_t n)
{
	struct est_trust *t = NULL;
	struct acmera_errmsg e = {""};
	char *path = bundle(certs, n);
	int rc = est_trust_load(path, &t, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	unlink(path);
	free(path);
	return t;
}

static STACK_OF(X509) * chain_of(X509 *const *certs, size_t n)
{
	STACK_OF(X509) *s = sk_X509_new_null();
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		assert_true(sk_X509_push(s, certs[i]) > 0);
	return s;
}

static int verify(struct est_trust *t, X509 *const *certs, size_t n, struct acmera_errmsg *e)
{
	STACK_OF(X509) *s = chain_of(certs, n);
	int rc = est_trust_verify(t, s, e);
	sk_X509_free(s);
	return rc;
}

static void refused(struct est_trust *t, X509 *const *certs, size_t n, const char *want)
{
	struct acmera_errmsg e = {""};
	assert_int_equal(verify(t, certs, n, &e), ACMERA_ERR_REFUSED);
	if (!strstr(e.text, want))
		print_error("message: %s\n", e.text);
	assert_non_null(strstr(e.text, want));
}

static void idevid_chain_verifies_to_the_root(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	X509 *chain[] = {leaf, inter};
	struct acmera_errmsg e = {""};
	int rc = verify(t, chain, 2, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	/* The root sent along changes nothing. */
	X509 *full[] = {leaf, inter, root};
	assert_int_equal(verify(t, full, 3, &e), 0);
	est_trust_free(t);
}

static void issuing_ca_alone_is_an_anchor(void **state)
{
	(void)state;
	X509 *anchors[] = {inter};
	struct est_trust *t = load_ok(anchors, 1);
	X509 *chain[] = {leaf};
	struct acmera_errmsg e = {""};
	assert_int_equal(verify(t, chain, 1, &e), 0);
	est_trust_free(t);
}

static void missing_intermediate_is_refused(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	X509 *chain[] = {leaf};
	refused(t, chain, 1,
	        "client certificate not trusted: unable to get local issuer certificate (depth 0, "
	        "serialNumber=SN0042,CN=Widget 3000,O=Maker)");
	est_trust_free(t);
}

static void forged_hierarchy_is_refused(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	X509 *chain[] = {other_leaf, other_root};
	refused(t, chain, 2, "client certificate not trusted: ");
	/* A real leaf under a forged intermediate of the same name. */
	X509 *mixed[] = {leaf, other_root};
	refused(t, mixed, 2, "client certificate not trusted: ");
	est_trust_free(t);
}

static void expired_certificate_is_refused(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	X509 *chain[] = {expired_leaf, inter};
	refused(t, chain, 2, "client certificate not trusted: certificate has expired (depth 0");
	est_trust_free(t);
}

static void leaf_that_is_not_a_ca_issues_nothing(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	/* A device certificate signing another one. */
	X509 *sub = idevid("SN9", leaf, leaf_key, T_2051);
	X509 *chain[] = {sub, leaf, inter};
	refused(t, chain, 3, "client certificate not trusted: invalid CA certificate (depth 1");
	X509_free(sub);
	est_trust_free(t);
}

static void empty_or_overlong_chain_is_refused(void **state)
{
	(void)state;
	X509 *anchors[] = {root};
	struct est_trust *t = load_ok(anchors, 1);
	struct acmera_errmsg e = {""};
	assert_int_equal(est_trust_verify(t, NULL, &e), ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "no client certificate");
	refused(t, NULL, 0, "no client certificate");
	X509 *many[17];
	for (size_t i = 0; i < 17; i++)
		many[i] = i == 0 ? leaf : inter;
	refused(t, many, 17, "client certificate chain has 17 certificates, more than 16");
	/* 16 is allowed through to verification. */
	assert_int_equal(verify(t, many, 16, &e), 0);
	est_trust_free(t);
}

static void bundle_of_several_anchors_loads(void **state)
{
	(void)state;
	X509 *root2 = ca_cert("Second Maker Root", other_key, NULL, NULL);
	X509 *leaf2 = idevid("SN7", root2, other_key, T_2051);
	X509 *anchors[] = {root2, root, root};
	struct est_trust *t = load_ok(anchors, 3);
	X509 *chain[] = {leaf, inter};
	X509 *chain2[] = {leaf2};
	struct acmera_errmsg e = {""};
	assert_int_equal(verify(t, chain, 2, &e), 0);
	assert_int_equal(verify(t, chain2, 1, &e), 0);
	est_trust_free(t);
	X509_free(leaf2);
	X509_free(root2);
}

static void load_fails(const char *text, int code, const char *want)
{
	struct est_trust *t = NULL;
	struct acmera_errmsg e = {""};
	char *path = tu_temp_file(text, strlen(text));
	assert_int_equal(est_trust_load(path, &t, &e), code);
	assert_null(t);
	if (!strstr(e.text, want))
		print_error("message: %s\n", e.text);
	assert_non_null(strstr(e.text, want));
	unlink(path);
	free(path);
}

static void bad_bundles_are_refused(void **state)
{
	(void)state;
	load_fails("", ACMERA_ERR_CONFIG, "no PEM certificate");
	load_fails("just text\n", ACMERA_ERR_CONFIG, "no PEM certificate");
	load_fails("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
	           ACMERA_ERR_CONFIG, "after 0 certificates");
	load_fails("-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n-----END CERTIFICATE-----\n",
	           ACMERA_ERR_CONFIG, "after 0 certificates");

	struct est_trust *t = NULL;
	struct acmera_errmsg e = {""};
	assert_int_equal(est_trust_load("/nonexistent/anchors.pem", &t, &e), ACMERA_ERR_IO);
	assert_non_null(strstr(e.text, "/nonexistent/anchors.pem: No such file"));

	/* A good certificate followed by a broken one: refused, not half loaded. */
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(b, root), 1);
	BIO_puts(b, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	char *p;
	long len = BIO_get_mem_data(b, &p);
	char *text = strndup(p, (size_t)len);
	BIO_free(b);
	load_fails(text, ACMERA_ERR_CONFIG, "after 1 certificates");
	free(text);
}

static void identity(const struct attr *a, size_t n, struct est_identity *id)
{
	X509 *x = make_cert(a, n, leaf_key, NULL, NULL, 0, T_2051);
	memset(id, 0, sizeof(*id));
	strcpy(id->user, "kept");
	strcpy(id->cn, "stale");
	strcpy(id->serial_number, "stale");
	est_identity_from_cert(x, id);
	X509_free(x);
	assert_string_equal(id->user, "kept");
}

static void identity_takes_cn_and_serial_number(void **state)
{
	(void)state;
	struct est_identity id;
	est_identity_from_cert(leaf, &id);
	assert_string_equal(id.cn, "Widget 3000");
	assert_string_equal(id.serial_number, "SN0042");

	const struct attr only_cn[] = {{NID_commonName, "dev1", 0}};
	identity(only_cn, 1, &id);
	assert_string_equal(id.cn, "dev1");
	assert_string_equal(id.serial_number, "");

	/* BMPString comes out as UTF-8. */
	const struct attr bmp[] = {{NID_serialNumber, "ab12", 1}, {NID_commonName, "x", 1}};
	identity(bmp, 2, &id);
	assert_string_equal(id.serial_number, "ab12");
	assert_string_equal(id.cn, "x");

	const struct attr utf8[] = {{NID_commonName, "Ger\xc3\xa4t", 0}};
	identity(utf8, 1, &id);
	assert_string_equal(id.cn, "Ger\xc3\xa4t");
}

static void identity_leaves_doubtful_values_empty(void **state)
{
	(void)state;
	struct est_identity id;
	char big[300];

	/* Two CNs: which one names the device is ambiguous. */
	const struct attr two[] = {
	    {NID_commonName, "a", 0}, {NID_commonName, "b", 0}, {NID_serialNumber, "s1", 0}};
	identity(two, 3, &id);
	assert_string_equal(id.cn, "");
	assert_string_equal(id.serial_number, "s1");

	const struct attr ctrl[] = {{NID_commonName, "dev\n1", 0}, {NID_serialNumber, "s\x7f", 0}};
	identity(ctrl, 2, &id);
	assert_string_equal(id.cn, "");
	assert_string_equal(id.serial_number, "");

	const struct attr c1[] = {{NID_commonName, "dev\xc2\x85x", 0},
	                          {NID_serialNumber, "ok\xc2\xa0x", 0}};
	identity(c1, 2, &id);
	assert_string_equal(id.cn, "");
	assert_string_equal(id.serial_number, "ok\xc2\xa0x");

	/* Fits: 255 bytes of CN and 127 of serialNumber; one more does not. */
	memset(big, 'c', 255);
	big[255] = '\0';
	const struct attr fit[] = {{NID_commonName, big, 0}, {NID_serialNumber, big + 128, 0}};
	identity(fit, 2, &id);
	assert_int_equal(strlen(id.cn), 255);
	assert_int_equal(strlen(id.serial_number), 127);
	memset(big, 'c', 256);
	big[256] = '\0';
	const struct attr over[] = {{NID_commonName, big, 0}, {NID_serialNumber, big + 128, 0}};
	identity(over, 2, &id);
	assert_string_equal(id.cn, "");
	assert_string_equal(id.serial_number, "");

	const struct attr none[] = {{NID_organizationName, "Maker", 0}};
	identity(none, 1, &id);
	assert_string_equal(id.cn, "");
	assert_string_equal(id.serial_number, "");

	est_identity_from_cert(NULL, &id);
	assert_string_equal(id.cn, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(idevid_chain_verifies_to_the_root),
	    cmocka_unit_test(issuing_ca_alone_is_an_anchor),
	    cmocka_unit_test(missing_intermediate_is_refused),
	    cmocka_unit_test(forged_hierarchy_is_refused),
	    cmocka_unit_test(expired_certificate_is_refused),
	    cmocka_unit_test(leaf_that_is_not_a_ca_issues_nothing),
	    cmocka_unit_test(empty_or_overlong_chain_is_refused),
	    cmocka_unit_test(bundle_of_several_anchors_loads),
	    cmocka_unit_test(bad_bundles_are_refused),
	    cmocka_unit_test(identity_takes_cn_and_serial_number),
	    cmocka_unit_test(identity_leaves_doubtful_values_empty),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
