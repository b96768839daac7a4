/* Policy: the one name a device may hold (template and identity) and the check
 * of its CSR against that name, key type and TLS channel binding. */
#include "est/policy.h"
#include "../pki/pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>

#define NAME "dev1.iot.example.com"

static EVP_PKEY *p256, *p384, *p521, *k256, *ed25519, *ed448, *rsa2048;

static const struct est_policy strict = {
    .name_template = "{serialNumber}.iot.example.com",
    .allow_p256 = 1,
    .allow_p384 = 1,
    .allow_ed25519 = 1,
    .rsa_min_bits = 2048,
};

/* 32 bytes as a TLS exporter would give; its base64 has '+', '/' and '='. */
static const uint8_t binding[32] = {
    0xfb, 0xff, 0xbf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
    0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0xfe};
#define BINDING_B64 "+/+/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHP4="

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);
	assert_non_null(k);
	return k;
}

static int group_setup(void **state)
{
	(void)state;
	p256 = tu_key(TU_EC_P256);
	p384 = ec_key("P-384");
	p521 = ec_key("P-521");
	k256 = ec_key("secp256k1");
	ed25519 = tu_key(TU_ED25519);
	ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	assert_non_null(ed448);
	rsa2048 = tu_key(TU_RSA_2048);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY *all[] = {p256, p384, p521, k256, ed25519, ed448, rsa2048};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		EVP_PKEY_free(all[i]);
	return 0;
}

static const char *name_of(const char *tmpl, const char *serial, const char *cn, const char *user,
                           int want_rc, struct acmera_errmsg *e)
{
	static char name[300];
	struct est_policy p = strict;
	struct est_identity id;
	memset(&id, 0, sizeof(id));
	p.name_template = tmpl;
	snprintf(id.serial_number, sizeof(id.serial_number), "%s", serial);
	snprintf(id.cn, sizeof(id.cn), "%s", cn);
	snprintf(id.user, sizeof(id.user), "%s", user);
	strcpy(name, "junk");
	int rc = est_policy_name(&p, &id, name, sizeof(name), e);
	if (rc != want_rc)
		print_error("template %s: %d %s\n", tmpl ? tmpl : "(null)", rc, e->text);
	assert_int_equal(rc, want_rc);
	if (rc)
		assert_string_equal(name, "");
	return name;
}

static void name_error(const char *tmpl, const char *serial, const char *cn, const char *user,
                       int code, const char *want)
{
	struct acmera_errmsg e = {""};
	name_of(tmpl, serial, cn, user, code, &e);
	if (strcmp(e.text, want) != 0)
		print_error("got:  %s\nwant: %s\n", e.text, want);
	assert_string_equal(e.text, want);
}

static void name_comes_lower_case_from_each_placeholder(void **state)
{
	(void)state;
	struct acmera_errmsg e = {""};
	assert_string_equal(name_of("{serialNumber}.iot.example.com", "SN0042AB", "", "", 0, &e),
	                    "sn0042ab.iot.example.com");
	assert_string_equal(name_of("{cn}", "", "Dev1", "", 0, &e), "dev1");
	assert_string_equal(name_of("{user}.dev.Example.COM", "", "", "Robot-7", 0, &e),
	                    "robot-7.dev.example.com");
	assert_string_equal(name_of("dev-{serialNumber}-{cn}.example.com", "a1", "b2", "", 0, &e),
	                    "dev-a1-b2.example.com");
	assert_string_equal(name_of("{cn}.{user}.example.com", "", "x", "y", 0, &e),
	                    "x.y.example.com");
}

static void value_must_be_one_dns_label(void **state)
{
	(void)state;
	name_error("{cn}.example.com", "", "evil.other", "", ACMERA_ERR_REFUSED,
	           "{cn} \"evil.other\" is not a single DNS label (letters, digits and inner "
	           "hyphens, 1 to 63), so it gets no name");
	name_error("{serialNumber}.iot.example.com", "AB:CD:EF", "", "", ACMERA_ERR_REFUSED,
	           "{serialNumber} \"AB:CD:EF\" is not a single DNS label (letters, digits and "
	           "inner hyphens, 1 to 63), so it gets no name");
	name_error("{user}.example.com", "", "", "-lead", ACMERA_ERR_REFUSED,
	           "{user} \"-lead\" is not a single DNS label (letters, digits and inner "
	           "hyphens, 1 to 63), so it gets no name");
	struct acmera_errmsg e = {""};
	const char *bad[] = {"trail-", "under_score", "sp ace", "Ger\xc3\xa4t",
	                     "a\"b",   "*",           "x.",     "."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		name_of("{cn}.example.com", "", bad[i], "", ACMERA_ERR_REFUSED, &e);
		assert_non_null(strstr(e.text, "{cn} \""));
	}
	/* Shown escaped: a value cannot forge text in a log line or a 403 body. */
	name_of("{cn}.example.com", "", "a\"b\\c\xc3\xa4", "", ACMERA_ERR_REFUSED, &e);
	assert_non_null(strstr(e.text, "\"a\\x22b\\x5cc\\xc3\\xa4\""));

	char label[70];
	memset(label, 'a', 63);
	label[63] = '\0';
	name_of("{cn}.example.com", "", label, "", 0, &e);
	label[63] = 'a';
	label[64] = '\0';
	name_of("{cn}.example.com", "", label, "", ACMERA_ERR_REFUSED, &e);
	assert_non_null(strstr(e.text, "{cn} \"aaaa"));
}

static void missing_value_gives_no_name(void **state)
{
	(void)state;
	name_error("{serialNumber}.iot.example.com", "", "dev1", "u", ACMERA_ERR_REFUSED,
	           "the client's identity has no {serialNumber}, so it gets no name");
	name_error("{user}.example.com", "s", "c", "", ACMERA_ERR_REFUSED,
	           "the client's identity has no {user}, so it gets no name");
}

static void template_faults_are_configuration_errors(void **state)
{
	(void)state;
	name_error("{serial}.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{serial}.example.com\": unknown placeholder {serial} (use "
	           "{serialNumber}, {cn} or {user})");
	name_error("{CN}.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{CN}.example.com\": unknown placeholder {CN} (use "
	           "{serialNumber}, {cn} or {user})");
	name_error("{cn.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{cn.example.com\": '{' without '}'");
	name_error("cn}.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"cn}.example.com\": '}' without '{'");
	name_error("*.{cn}.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"*.{cn}.example.com\" does not make a valid host name");
	name_error("{cn}..example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{cn}..example.com\" does not make a valid host name");
	name_error("{cn}-.example.com", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{cn}-.example.com\" does not make a valid host name");
	name_error("{cn}.example.com.", "s", "c", "u", ACMERA_ERR_CONFIG,
	           "name template \"{cn}.example.com.\" does not make a valid host name");
	/* A template fault is reported even when the identity lacks the value. */
	name_error("{cn}.ex ample.com", "", "", "", ACMERA_ERR_CONFIG,
	           "name template \"{cn}.ex ample.com\" does not make a valid host name");
	name_error("", "s", "c", "u", ACMERA_ERR_CONFIG, "no name template");
	name_error(NULL, "s", "c", "u", ACMERA_ERR_CONFIG, "no name template");
}

static void name_longer_than_253_is_refused(void **state)
{
	(void)state;
	/* 3 labels of 63 + dots = 191, then "{cn}." and 5 more: "{cn}" may add up to 63. */
	char tmpl[400], label[64];
	memset(label, 'b', 63);
	label[63] = '\0';
	snprintf(tmpl, sizeof(tmpl), "{cn}.%s.%s.%s.com", label, label, label);
	struct acmera_errmsg e = {""};
	/* 1 + 1 + 191 + 4 = 197: fine. */
	name_of(tmpl, "", "a", "", 0, &e);
	char cn[64];
	memset(cn, 'c', 60);
	cn[60] = '\0';
	/* 60 + 1 + 191 + 4 = 256: too long for this identity, not a template fault. */
	name_of(tmpl, "", cn, "", ACMERA_ERR_REFUSED, &e);
	assert_non_null(strstr(e.text, "would be longer than 253 characters"));
	/* Too long whatever the value: the template's fault. */
	snprintf(tmpl, sizeof(tmpl), "{cn}.%s.%s.%s.%s.com", label, label, label, label);
	name_of(tmpl, "", "a", "", ACMERA_ERR_CONFIG, &e);
	assert_non_null(strstr(e.text, "would be longer than 253 characters"));
}

static void small_name_buffer_is_an_error(void **state)
{
	(void)state;
	struct est_identity id;
	memset(&id, 0, sizeof(id));
	strcpy(id.cn, "dev1");
	struct est_policy p = strict;
	p.name_template = "{cn}.example.com";
	char name[16];
	struct acmera_errmsg e = {""};
	assert_int_equal(est_policy_name(&p, &id, name, sizeof(name), &e), ACMERA_ERR_INVAL);
	assert_string_equal(e.text, "name buffer too small");
	char ok[17];
	assert_int_equal(est_policy_name(&p, &id, ok, sizeof(ok), &e), 0);
	assert_string_equal(ok, "dev1.example.com");
}

/* tu_req_sign knows no Ed448, which takes no separate digest either. */
static void req_sign(X509_REQ *req, EVP_PKEY *key)
{
	int id = EVP_PKEY_get_id(key);
	const EVP_MD *md = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
	assert_true(X509_REQ_sign(req, key, md) > 0);
}

/* A signed request with subject CN cn (may be NULL), SAN san (may be NULL) and,
 * when pw is not NULL, a challengePassword of ASN.1 type pw_type. */
static void make_csr(EVP_PKEY *key, const char *cn, const char *san, const char *pw, int pw_type,
                     struct csr_info *out)
{
	X509_REQ *req = tu_req_new(key, cn, san);
	if (pw)
		assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
		                                           pw_type, (const unsigned char *)pw,
		                                           (int)strlen(pw)),
		                 1);
	req_sign(req, key);
	uint8_t *der;
	size_t len;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	struct acmera_errmsg e = {""};
	int rc = csr_parse_der(der, len, out, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	free(der);
}

static int check(const struct est_policy *p, EVP_PKEY *key, const char *cn, const char *san,
                 const char *name, struct acmera_errmsg *e)
{
	struct csr_info c;
	make_csr(key, cn, san, NULL, 0, &c);
	int rc = est_policy_check_csr(p, &c, name, NULL, 0, e);
	csr_info_free(&c);
	return rc;
}

static void csr_refused(const struct est_policy *p, EVP_PKEY *key, const char *cn, const char *san,
                        const char *want)
{
	struct acmera_errmsg e = {""};
	assert_int_equal(check(p, key, cn, san, NAME, &e), ACMERA_ERR_REFUSED);
	if (strcmp(e.text, want) != 0)
		print_error("got:  %s\nwant: %s\n", e.text, want);
	assert_string_equal(e.text, want);
}

static void csr_with_exactly_the_name_passes(void **state)
{
	(void)state;
	struct acmera_errmsg e = {""};
	assert_int_equal(check(&strict, p256, "Widget", "DNS:" NAME, NAME, &e), 0);
	assert_int_equal(check(&strict, p256, NAME, "DNS:Dev1.IoT.Example.com", NAME, &e), 0);
	/* No SAN: the CN is the name. */
	assert_int_equal(check(&strict, p256, NAME, NULL, NAME, &e), 0);
	/* The name compares without regard to case. */
	assert_int_equal(check(&strict, p256, NULL, "DNS:" NAME, "DEV1.iot.example.com", &e), 0);
	/* The same name twice is one name. */
	assert_int_equal(check(&strict, p256, NULL, "DNS:" NAME ",DNS:" NAME, NAME, &e), 0);
}

static void csr_asking_for_another_name_is_refused(void **state)
{
	(void)state;
	csr_refused(&strict, p256, NULL, "DNS:other.example.com",
	            "the CSR asks for other.example.com; this device may only have " NAME);
	csr_refused(&strict, p256, "other.example.com", NULL,
	            "the CSR asks for other.example.com; this device may only have " NAME);
	/* A suffix or prefix match is not a match. */
	csr_refused(&strict, p256, NULL, "DNS:x" NAME,
	            "the CSR asks for x" NAME "; this device may only have " NAME);
	csr_refused(&strict, p256, NULL, "DNS:" NAME ".evil",
	            "the CSR asks for " NAME ".evil; this device may only have " NAME);
}

static void csr_asking_for_more_or_fewer_names_is_refused(void **state)
{
	(void)state;
	csr_refused(&strict, p256, NULL, "DNS:" NAME ",DNS:other.example.com",
	            "the CSR asks for 2 names (" NAME ", other.example.com); this device may "
	            "only have " NAME);
	csr_refused(&strict, p256, "Widget 3000", NULL,
	            "the CSR asks for no DNS name; this device may only have " NAME);
	csr_refused(&strict, p256, NULL, "IP:192.0.2.1",
	            "the CSR asks for no DNS name; this device may only have " NAME);

	/* Many names: the list in the message is cut short. */
	char san[4000] = "";
	for (int i = 0; i < 30; i++)
		snprintf(san + strlen(san), sizeof(san) - strlen(san), "%sDNS:n%02d.example.com",
		         i ? "," : "", i);
	struct acmera_errmsg e = {""};
	assert_int_equal(check(&strict, p256, NULL, san, NAME, &e), ACMERA_ERR_REFUSED);
	assert_non_null(strstr(e.text, "the CSR asks for 30 names (n00.example.com, "));
	assert_non_null(strstr(e.text, ", ...); this device may only have " NAME));
	assert_true(strlen(e.text) < 320);
}

static void csr_asking_for_a_wildcard_is_refused(void **state)
{
	(void)state;
	csr_refused(&strict, p256, NULL, "DNS:*.iot.example.com",
	            "the CSR asks for the wildcard *.iot.example.com; this device may only "
	            "have " NAME);
}

static void csr_asking_for_other_kinds_of_names_is_refused(void **state)
{
	(void)state;
	csr_refused(&strict, p256, NULL, "DNS:" NAME ",IP:192.0.2.1",
	            "the CSR asks for an IP address as well; this device may only have " NAME);
	csr_refused(&strict, p256, NULL, "email:a@example.com,DNS:" NAME,
	            "the CSR asks for an e-mail address as well; this device may only have " NAME);
	csr_refused(&strict, p256, NULL, "DNS:" NAME ",URI:https://example.com/",
	            "the CSR asks for a URI as well; this device may only have " NAME);
	/* A subject CN that is another host name, beside the right SAN. */
	csr_refused(
	    &strict, p256, "other.example.com", "DNS:" NAME,
	    "the CSR's subject CN is \"other.example.com\"; this device may only have " NAME);
	csr_refused(&strict, p256, "*.Example.com", "DNS:" NAME,
	            "the CSR's subject CN is \"*.Example.com\"; this device may only have " NAME);
	/* A CN that is a label, not a host name, is no claim to a name. */
	struct acmera_errmsg e = {""};
	assert_int_equal(check(&strict, p256, "Widget 4.2", "DNS:" NAME, NAME, &e), 0);
	assert_int_equal(check(&strict, p256, "widget42", "DNS:" NAME, NAME, &e), 0);
}

static void csr_key_types(void **state)
{
	(void)state;
	struct acmera_errmsg e = {""};
	assert_int_equal(check(&strict, p384, NULL, "DNS:" NAME, NAME, &e), 0);
	assert_int_equal(check(&strict, ed25519, NULL, "DNS:" NAME, NAME, &e), 0);
	assert_int_equal(check(&strict, rsa2048, NULL, "DNS:" NAME, NAME, &e), 0);
	const char *accepted = "this profile accepts EC P-256, EC P-384, Ed25519 or RSA of at "
	                       "least 2048 bits";
	char want[300];
	snprintf(want, sizeof(want), "the CSR's key is EC P-521; %s", accepted);
	csr_refused(&strict, p521, NULL, "DNS:" NAME, want);
	snprintf(want, sizeof(want), "the CSR's key is EC secp256k1; %s", accepted);
	csr_refused(&strict, k256, NULL, "DNS:" NAME, want);
	snprintf(want, sizeof(want), "the CSR's key is ED448; %s", accepted);
	csr_refused(&strict, ed448, NULL, "DNS:" NAME, want);

	struct est_policy p = strict;
	p.rsa_min_bits = 3072;
	csr_refused(&p, rsa2048, NULL, "DNS:" NAME,
	            "the CSR's key is RSA of 2048 bits; this profile accepts EC P-256, EC "
	            "P-384, Ed25519 or RSA of at least 3072 bits");
	/* A setting below 2048 counts as 2048. */
	p.rsa_min_bits = 1024;
	EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
	assert_non_null(rsa1024);
	csr_refused(&p, rsa1024, NULL, "DNS:" NAME,
	            "the CSR's key is RSA of 1024 bits; this profile accepts EC P-256, EC P-384, "
	            "Ed25519 or RSA of at least 2048 bits");
	EVP_PKEY_free(rsa1024);
	p.rsa_min_bits = 0;
	csr_refused(&p, rsa2048, NULL, "DNS:" NAME,
	            "the CSR's key is RSA of 2048 bits; this profile accepts EC P-256, EC "
	            "P-384 or Ed25519");
	p.allow_p384 = 0;
	p.allow_ed25519 = 0;
	csr_refused(&p, p384, NULL, "DNS:" NAME,
	            "the CSR's key is EC P-384; this profile accepts EC P-256");
	csr_refused(&p, ed25519, NULL, "DNS:" NAME,
	            "the CSR's key is Ed25519; this profile accepts EC P-256");
	assert_int_equal(check(&p, p256, NULL, "DNS:" NAME, NAME, &e), 0);
	p.allow_p256 = 0;
	p.allow_p384 = 1;
	csr_refused(&p, p256, NULL, "DNS:" NAME,
	            "the CSR's key is EC P-256; this profile accepts EC P-384");
	p.allow_p384 = 0;
	csr_refused(&p, p256, NULL, "DNS:" NAME,
	            "the CSR's key is EC P-256; this profile accepts none");
}

static int check_bound(const struct est_policy *p, const char *pw, int type, const uint8_t *b,
                       size_t blen, struct acmera_errmsg *e)
{
	struct csr_info c;
	make_csr(p256, NULL, "DNS:" NAME, pw, type, &c);
	int rc = est_policy_check_csr(p, &c, NAME, b, blen, e);
	csr_info_free(&c);
	return rc;
}

static void channel_binding_in_challenge_password(void **state)
{
	(void)state;
	struct est_policy p = strict;
	p.require_channel_binding = 1;
	struct acmera_errmsg e = {""};
	int rc = check_bound(&p, BINDING_B64, V_ASN1_PRINTABLESTRING, binding, sizeof(binding), &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	assert_int_equal(
	    check_bound(&p, BINDING_B64, V_ASN1_UTF8STRING, binding, sizeof(binding), &e), 0);

	/* Another connection's binding, one byte off. */
	uint8_t other[32];
	memcpy(other, binding, sizeof(other));
	other[31] ^= 1;
	assert_int_equal(
	    check_bound(&p, BINDING_B64, V_ASN1_PRINTABLESTRING, other, sizeof(other), &e),
	    ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "the CSR's challengePassword is not this connection's TLS "
	                            "channel binding; make a new CSR on this connection");
	/* Unpadded or with a newline: not the standard encoding. */
	assert_int_equal(check_bound(&p, "+/+/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHP4",
	                             V_ASN1_PRINTABLESTRING, binding, sizeof(binding), &e),
	                 ACMERA_ERR_REFUSED);
	assert_int_equal(
	    check_bound(&p, BINDING_B64 "\n", V_ASN1_UTF8STRING, binding, sizeof(binding), &e),
	    ACMERA_ERR_REFUSED);
	/* A shorter binding that is a prefix of the password. */
	assert_int_equal(check_bound(&p, BINDING_B64, V_ASN1_PRINTABLESTRING, binding, 30, &e),
	                 ACMERA_ERR_REFUSED);

	assert_int_equal(check_bound(&p, NULL, 0, binding, sizeof(binding), &e),
	                 ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "the CSR has no challengePassword; this profile requires "
	                            "the TLS channel binding in it (RFC 7030 3.5)");
	assert_int_equal(
	    check_bound(&p, BINDING_B64, V_ASN1_IA5STRING, binding, sizeof(binding), &e),
	    ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "the CSR's challengePassword is not one PrintableString or "
	                            "UTF8String");
	assert_int_equal(check_bound(&p, BINDING_B64, V_ASN1_PRINTABLESTRING, NULL, 0, &e),
	                 ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "this connection has no TLS channel binding, which this "
	                            "profile requires in the CSR");

	/* Not required: neither a missing nor a wrong one matters. */
	p.require_channel_binding = 0;
	assert_int_equal(check_bound(&p, NULL, 0, NULL, 0, &e), 0);
	assert_int_equal(
	    check_bound(&p, "whatever", V_ASN1_PRINTABLESTRING, other, sizeof(other), &e), 0);
}

/* OpenSSL will not add an attribute twice, so the second challengePassword is
 * an unstructuredName (same OID length) whose OID is patched, then re-signed. */
static void two_challenge_passwords_are_refused(void **state)
{
	(void)state;
	static const uint8_t unstructured_name[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
	                                            0xf7, 0x0d, 0x01, 0x09, 0x02};
	X509_REQ *req = tu_req_new(p256, NULL, "DNS:" NAME);
	assert_int_equal(
	    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, V_ASN1_PRINTABLESTRING,
	                              (const unsigned char *)BINDING_B64, (int)strlen(BINDING_B64)),
	    1);
	assert_int_equal(
	    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredName, V_ASN1_PRINTABLESTRING,
	                              (const unsigned char *)BINDING_B64, (int)strlen(BINDING_B64)),
	    1);
	req_sign(req, p256);
	uint8_t *der;
	size_t len;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	int patched = 0;
	for (size_t i = 0; i + sizeof(unstructured_name) <= len; i++)
		if (memcmp(der + i, unstructured_name, sizeof(unstructured_name)) == 0) {
			der[i + sizeof(unstructured_name) - 1] = 0x07;
			patched++;
		}
	assert_int_equal(patched, 1);
	const unsigned char *q = der;
	req = d2i_X509_REQ(NULL, &q, (long)len);
	assert_non_null(req);
	free(der);
	req_sign(req, p256);
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);

	struct csr_info c;
	struct acmera_errmsg e = {""};
	assert_int_equal(csr_parse_der(der, len, &c, &e), 0);
	free(der);
	struct est_policy p = strict;
	p.require_channel_binding = 1;
	assert_int_equal(est_policy_check_csr(&p, &c, NAME, binding, sizeof(binding), &e),
	                 ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "the CSR has two challengePasswords");
	csr_info_free(&c);
}

static void challenge_password_with_two_values_is_refused(void **state)
{
	(void)state;
	X509_REQ *req = tu_req_new(p256, NULL, "DNS:" NAME);
	X509_ATTRIBUTE *a =
	    X509_ATTRIBUTE_create_by_NID(NULL, NID_pkcs9_challengePassword, V_ASN1_PRINTABLESTRING,
	                                 BINDING_B64, (int)strlen(BINDING_B64));
	assert_non_null(a);
	assert_int_equal(X509_ATTRIBUTE_set1_data(a, V_ASN1_PRINTABLESTRING, BINDING_B64,
	                                          (int)strlen(BINDING_B64)),
	                 1);
	assert_int_equal(X509_ATTRIBUTE_count(a), 2);
	assert_int_equal(X509_REQ_add1_attr(req, a), 1);
	X509_ATTRIBUTE_free(a);
	req_sign(req, p256);
	uint8_t *der;
	size_t len;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	struct csr_info c;
	struct acmera_errmsg e = {""};
	assert_int_equal(csr_parse_der(der, len, &c, &e), 0);
	free(der);
	struct est_policy p = strict;
	p.require_channel_binding = 1;
	assert_int_equal(est_policy_check_csr(&p, &c, NAME, binding, sizeof(binding), &e),
	                 ACMERA_ERR_REFUSED);
	assert_string_equal(e.text, "the CSR's challengePassword is not one PrintableString or "
	                            "UTF8String");
	csr_info_free(&c);
}

static void names_are_checked_before_key_and_binding(void **state)
{
	(void)state;
	struct est_policy p = strict;
	p.require_channel_binding = 1;
	struct csr_info c;
	struct acmera_errmsg e = {""};
	make_csr(p521, NULL, "DNS:other.example.com", NULL, 0, &c);
	assert_int_equal(est_policy_check_csr(&p, &c, NAME, NULL, 0, &e), ACMERA_ERR_REFUSED);
	assert_string_equal(e.text,
	                    "the CSR asks for other.example.com; this device may only have " NAME);
	assert_int_equal(est_policy_check_csr(&p, &c, "", NULL, 0, &e), ACMERA_ERR_INVAL);
	assert_int_equal(est_policy_check_csr(&p, &c, NULL, NULL, 0, &e), ACMERA_ERR_INVAL);
	csr_info_free(&c);
}

static void names_fit_their_template(void **state)
{
	(void)state;
	struct acmera_errmsg e = {""};
	struct est_policy p = {.name_template = "{serialNumber}.iot.example.com"};
	assert_int_equal(est_policy_name_fits(&p, "sn1234.iot.example.com", &e), 0);
	assert_int_equal(est_policy_name_fits(&p, "a-1.iot.example.com", &e), 0);
	assert_int_equal(est_policy_name_fits(&p, "a.b.iot.example.com", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&p, ".iot.example.com", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&p, "iot.example.com", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&p, "sn1.iot.example.org", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&p, "sn1.iot.example.com.", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&p, "sn_1.iot.example.com", &e), ACMERA_ERR_REFUSED);
	assert_non_null(strstr(e.text, "{serialNumber}.iot.example.com"));
	struct est_policy two = {.name_template = "{user}-{cn}.X.test"};
	assert_int_equal(est_policy_name_fits(&two, "a-b.x.test", &e), 0);
	assert_int_equal(est_policy_name_fits(&two, "a-b-c.x.test", &e), 0);
	assert_int_equal(est_policy_name_fits(&two, "ab.x.test", &e), ACMERA_ERR_REFUSED);
	assert_int_equal(est_policy_name_fits(&two, "a-b.y.test", &e), ACMERA_ERR_REFUSED);
	struct est_policy bare = {.name_template = "{cn}"};
	assert_int_equal(est_policy_name_fits(&bare, "host", &e), 0);
	assert_int_equal(est_policy_name_fits(&bare, "host.example", &e), ACMERA_ERR_REFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(name_comes_lower_case_from_each_placeholder),
	    cmocka_unit_test(value_must_be_one_dns_label),
	    cmocka_unit_test(missing_value_gives_no_name),
	    cmocka_unit_test(template_faults_are_configuration_errors),
	    cmocka_unit_test(name_longer_than_253_is_refused),
	    cmocka_unit_test(small_name_buffer_is_an_error),
	    cmocka_unit_test(csr_with_exactly_the_name_passes),
	    cmocka_unit_test(csr_asking_for_another_name_is_refused),
	    cmocka_unit_test(csr_asking_for_more_or_fewer_names_is_refused),
	    cmocka_unit_test(csr_asking_for_a_wildcard_is_refused),
	    cmocka_unit_test(csr_asking_for_other_kinds_of_names_is_refused),
	    cmocka_unit_test(csr_key_types),
	    cmocka_unit_test(channel_binding_in_challenge_password),
	    cmocka_unit_test(two_challenge_passwords_are_refused),
	    cmocka_unit_test(challenge_password_with_two_values_is_refused),
	    cmocka_unit_test(names_are_checked_before_key_and_binding),
	    cmocka_unit_test(names_fit_their_template),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
