/* /csrattrs: CsrAttrs built for a device and read back, the examples of RFC 9908
 * and RFC 7030, and malformed input refused. Hand-made vectors come from the
 * openssl asn1parse -genconf files in vectors/. */
#include "est/csrattrs.h"
#include "base/b64.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint8_t *unb64(const char *s, size_t *len)
{
	uint8_t *der = NULL;
	assert_int_equal(b64_decode(s, strlen(s), &der, len, NULL), 0);
	return der;
}

static void build(const struct est_csrattrs_in *in, uint8_t **der, size_t *len)
{
	struct acmera_errmsg e = {{0}};
	int rc = est_csrattrs_build(in, der, len, &e);
	if (rc)
		fail_msg("build: %s", e.text);
	assert_non_null(*der);
	assert_true(*len > 0);
}

static void parse_ok(const uint8_t *der, size_t len, struct est_csrattrs_out *o)
{
	struct acmera_errmsg e = {{0}};
	int rc = est_csrattrs_parse(der, len, o, &e);
	if (rc)
		fail_msg("parse: %s", e.text);
}

static void parse_b64_ok(const char *b64, struct est_csrattrs_out *o)
{
	size_t len;
	uint8_t *der = unb64(b64, &len);
	parse_ok(der, len, o);
	free(der);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return 1;
	return 0;
}

/* ---- build, then read back ---- */

static void csrattrs_round_trip_keeps_cn_names_and_key_for_every_key_kind(void **state)
{
	static const char *const names[] = {"dev1.iot.example.com", "dev1-alt.iot.example.com"};
	static const enum est_key_kind kinds[] = {EST_KEY_EC_P256, EST_KEY_EC_P384, EST_KEY_RSA,
	                                          EST_KEY_ED25519};
	for (size_t k = 0; k < 4; k++) {
		for (size_t n = 1; n <= 2; n++) {
			for (int with_cn = 0; with_cn <= 1; with_cn++) {
				struct est_csrattrs_in in = {
				    .subject_cn = with_cn ? "Device 1 – Halle 3" : NULL,
				    .dns_names = names,
				    .n_dns_names = n,
				    .key = kinds[k],
				    .rsa_bits = 3072,
				};
				uint8_t *der;
				size_t len;
				struct est_csrattrs_out o;
				build(&in, &der, &len);
				parse_ok(der, len, &o);
				if (with_cn)
					assert_string_equal(o.subject_cn, "Device 1 – Halle 3");
				else
					assert_null(o.subject_cn);
				assert_int_equal(o.n_dns_names, n);
				for (size_t i = 0; i < n; i++)
					assert_string_equal(o.dns_names[i], names[i]);
				assert_int_equal(o.have_key, 1);
				assert_int_equal(o.key, kinds[k]);
				assert_int_equal(o.rsa_bits, kinds[k] == EST_KEY_RSA ? 3072 : 0);
				est_csrattrs_out_free(&o);
				free(der);
			}
		}
	}
}

/* vectors/build-p256-cn-one-name.cnf: the RFC 9908 template (subject CN, P-256
 * algorithm without key, extensionRequest with the SAN) then the RFC 7030 list. */
static const char golden_p256[] =
    "MIHWMIGABgsqhkiG9w0BCRACPTFxMG8CAQAwHzEdMBsGA1UEAwwUZGV2MS5pb3QuZXhhbXBsZS5jb22gFTAT"
    "BgcqhkjOPQIBBggqhkjOPQMBB6EyMDAGCSqGSIb3DQEJDjEjMCEwHwYDVR0RBBgwFoIUZGV2MS5pb3QuZXhh"
    "bXBsZS5jb20wFQYHKoZIzj0CATEKBggqhkjOPQMBBzAwBgkqhkiG9w0BCQ4xIzAhMB8GA1UdEQQYMBaCFGRl"
    "djEuaW90LmV4YW1wbGUuY29tBggqhkjOPQQDAg==";

static void csrattrs_build_encodes_exactly_the_rfc9908_template_shape(void **state)
{
	const char *names[] = {"dev1.iot.example.com"};
	struct est_csrattrs_in in = {.subject_cn = "dev1.iot.example.com",
	                             .dns_names = names,
	                             .n_dns_names = 1,
	                             .key = EST_KEY_EC_P256};
	uint8_t *der, *want;
	size_t len, want_len;
	build(&in, &der, &len);
	want = unb64(golden_p256, &want_len);
	assert_int_equal(len, want_len);
	assert_memory_equal(der, want, len);
	free(want);
	free(der);
}

static void csrattrs_without_cn_has_no_subject_and_a_critical_san(void **state)
{
	const char *names[] = {"dev1.iot.example.com"};
	struct est_csrattrs_in in = {.dns_names = names, .n_dns_names = 1, .key = EST_KEY_EC_P384};
	static const uint8_t cn_oid[] = {0x06, 0x03, 0x55, 0x04, 0x03};
	static const uint8_t san_critical[] = {0x06, 0x03, 0x55, 0x1d, 0x11, 0x01, 0x01, 0xff};
	static const uint8_t ecdsa_sha384[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
	                                       0xce, 0x3d, 0x04, 0x03, 0x03};
	uint8_t *der;
	size_t len;
	build(&in, &der, &len);
	assert_false(contains(der, len, cn_oid, sizeof cn_oid));
	assert_true(contains(der, len, san_critical, sizeof san_critical));
	assert_true(contains(der, len, ecdsa_sha384, sizeof ecdsa_sha384));
	free(der);
}

static void csrattrs_rsa_template_carries_a_placeholder_key_of_the_size(void **state)
{
	struct est_csrattrs_in in = {.key = EST_KEY_RSA, .rsa_bits = 4096};
	/* INTEGER 4096 in the legacy rsaEncryption attribute */
	static const uint8_t legacy_bits[] = {0x31, 0x04, 0x02, 0x02, 0x10, 0x00};
	uint8_t *der;
	size_t len;
	struct est_csrattrs_out o;
	build(&in, &der, &len);
	assert_true(contains(der, len, legacy_bits, sizeof legacy_bits));
	assert_true(len > 512); /* the 4096-bit placeholder modulus is in there */
	parse_ok(der, len, &o);
	assert_int_equal(o.key, EST_KEY_RSA);
	assert_int_equal(o.rsa_bits, 4096);
	assert_int_equal(o.n_dns_names, 0);
	est_csrattrs_out_free(&o);
	free(der);
}

static void expect_build_refused(const struct est_csrattrs_in *in, const char *why)
{
	struct acmera_errmsg e = {{0}};
	uint8_t *der = (uint8_t *)1;
	size_t len = 7;
	assert_int_equal(est_csrattrs_build(in, &der, &len, &e), ACMERA_ERR_INVAL);
	assert_null(der);
	assert_int_equal(len, 0);
	if (!strstr(e.text, why))
		fail_msg("reason \"%s\" lacks \"%s\"", e.text, why);
}

static void csrattrs_build_refuses_bad_input(void **state)
{
	const char *bad_names[] = {"ok.example.com", "bad name.example.com"};
	const char *many[101];
	for (size_t i = 0; i < 101; i++)
		many[i] = "d.example.com";
	char long_cn[66];
	memset(long_cn, 'c', 65);
	long_cn[65] = '\0';
	struct est_csrattrs_in in = {.key = EST_KEY_RSA, .rsa_bits = 1024};
	expect_build_refused(&in, "RSA size 1024");
	in.rsa_bits = 2049;
	expect_build_refused(&in, "RSA size 2049");
	in = (struct est_csrattrs_in){
	    .key = EST_KEY_EC_P256, .dns_names = bad_names, .n_dns_names = 2};
	expect_build_refused(&in, "dNSName 1");
	in.dns_names = many;
	in.n_dns_names = 101;
	expect_build_refused(&in, "101 dNSNames");
	in = (struct est_csrattrs_in){.key = (enum est_key_kind)99};
	expect_build_refused(&in, "unknown key kind");
	in = (struct est_csrattrs_in){.key = EST_KEY_EC_P256, .subject_cn = long_cn};
	expect_build_refused(&in, "subject CN");
	in.subject_cn = "\xff\xfe";
	expect_build_refused(&in, "subject CN");
}

/* ---- RFC examples ---- */

/* RFC 9908 section 3.4: the CSR template example, wrapped in CsrAttrs
 * (vectors/rfc9908-csr-template.cnf): CN without a value, two OUs, P-256,
 * extensionReqTemplate with a SAN of a dNSName and an empty iPAddress. */
static const char rfc9908_template[] =
    "MIGpMIGmBgsqhkiG9w0BCRACPTGBljCBkwIBADAsMQcwBQYDVQQDMQ8wDQYDVQQLDAZteURlcHQxEDAOBgNV"
    "BAsMB215R3JvdXCgFTATBgcqhkjOPQIBBggqhkjOPQMBB6FJMEcGCyqGSIb3DQEJEAI+MTgwNjAdBgNVHREE"
    "FjAUghB3d3cubXlTZXJ2ZXIuY29thwAwDgYDVR0PAQH/BAQDAgOIMAUGA1UdJQ==";

static void csrattrs_reads_the_rfc9908_csr_template_example(void **state)
{
	struct est_csrattrs_out o;
	parse_b64_ok(rfc9908_template, &o);
	assert_null(o.subject_cn); /* the CN is the client's to fill in */
	assert_int_equal(o.have_key, 1);
	assert_int_equal(o.key, EST_KEY_EC_P256);
	assert_int_equal(o.n_dns_names, 1);
	assert_string_equal(o.dns_names[0], "www.myServer.com");
	est_csrattrs_out_free(&o);
}

struct example {
	const char *name, *b64;
	int have_key;
	enum est_key_kind key;
	int rsa_bits;
};

/* rfc9908-csrattrs-examples.txt, section 5 of RFC 9908 */
static const struct example rfc9908_examples[] = {
    {"realistic-acp",
     "MGgwZgYJKoZIhvcNAQkOMVkwVzBVBgNVHREBAf8ESzBJoEcGCCsGAQUFBwgKoDsWOXJmYzg5OTQrZmQ3MzlmYz"
     "IzYzM0NDAxMTIyMzM0NDU1MDAwMDAwMDArQGFjcC5leGFtcGxlLmNvbQ==",
     0, 0, 0},
    {"rfc7030-example01",
     "MDIGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiBgcrBgEBAQEWBggqhkjOPQQDAw==", 1, EST_KEY_EC_P384,
     0},
    {"potato-example",
     "MEUGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAjBgkqhkiG9w0BCRQGCgmSJomT8ixkAQUGA1UEBQYIKo"
     "ZIzj0EAwQ=",
     0, 0, 0}, /* secp521r1: not a kind we name */
    {"harkins01", "MCkGCSqGSIb3DQEJBzARBgkqhkiG9w0BAQExBAICEAAGCSqGSIb3DQEBCw==", 1, EST_KEY_RSA,
     4096},
    {"harkins02", "MC4GCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiBgNVBAUGCCqGSM49BAMD", 1,
     EST_KEY_EC_P384, 0},
    {"harkins03",
     "MEUGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAjBgkqhkiG9w0BCRQGCgmSJomT8ixkAQUGA1UEBQYIKo"
     "ZIzj0EAwQ=",
     0, 0, 0},
};

static void csrattrs_reads_the_rfc9908_section5_examples(void **state)
{
	for (size_t i = 0; i < sizeof rfc9908_examples / sizeof rfc9908_examples[0]; i++) {
		const struct example *x = &rfc9908_examples[i];
		struct est_csrattrs_out o;
		parse_b64_ok(x->b64, &o);
		if (o.have_key != x->have_key)
			fail_msg("%s: have_key %d", x->name, o.have_key);
		if (x->have_key) {
			assert_int_equal(o.key, x->key);
			assert_int_equal(o.rsa_bits, x->rsa_bits);
		}
		/* realistic-acp asks for an otherName SAN: no dNSName in it */
		assert_int_equal(o.n_dns_names, 0);
		assert_null(o.subject_cn);
		est_csrattrs_out_free(&o);
	}
}

/* RFC 7030 section 4.5.2: extensionRequest holds a bare macAddress OID, which
 * RFC 9908 section 5.2 calls incorrect but clients still meet. */
static void csrattrs_reads_the_old_rfc7030_example(void **state)
{
	struct est_csrattrs_out o;
	parse_b64_ok("MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJ\n"
	             "BgcrBgEBAQEWBggqhkjOPQQDAw==",
	             &o);
	assert_int_equal(o.have_key, 1);
	assert_int_equal(o.key, EST_KEY_EC_P384);
	assert_int_equal(o.n_dns_names, 0);
	/* Its first element is the challengePassword OID. */
	assert_int_equal(o.challenge_password, 1);
	est_csrattrs_out_free(&o);
}

static void csrattrs_challenge_password_is_asked_only_when_wanted(void **state)
{
	(void)state;
	const char *names[] = {"dev.example.test"};
	struct est_csrattrs_in in = {
	    .subject_cn = names[0], .dns_names = names, .n_dns_names = 1, .key = EST_KEY_EC_P256};
	for (int want = 0; want <= 1; want++) {
		uint8_t *der = NULL;
		size_t len = 0;
		struct est_csrattrs_out o;
		in.challenge_password = want;
		build(&in, &der, &len);
		parse_ok(der, len, &o);
		assert_int_equal(o.challenge_password, want);
		/* The template still names the device either way. */
		assert_int_equal(o.n_dns_names, 1);
		assert_string_equal(o.dns_names[0], "dev.example.test");
		est_csrattrs_out_free(&o);
		free(der);
	}
}

/* vectors/template-before-legacy.cnf: legacy says RSA 4096, template says P-384. */
static void csrattrs_template_wins_over_the_legacy_list(void **state)
{
	struct est_csrattrs_out o;
	parse_b64_ok("MD8wEQYJKoZIhvcNAQEBMQQCAhAAMCoGCyqGSIb3DQEJEAI9MRswGQIBAKASMBAG"
	             "ByqGSM49AgEGBSuBBAAioQA=",
	             &o);
	assert_int_equal(o.have_key, 1);
	assert_int_equal(o.key, EST_KEY_EC_P384);
	est_csrattrs_out_free(&o);
}

static void csrattrs_empty_sequence_asks_for_nothing(void **state)
{
	static const uint8_t empty[] = {0x30, 0x00};
	struct est_csrattrs_out o;
	parse_ok(empty, sizeof empty, &o);
	assert_int_equal(o.have_key, 0);
	assert_int_equal(o.n_dns_names, 0);
	assert_null(o.subject_cn);
	est_csrattrs_out_free(&o);
}

/* ---- refused ---- */

static void expect_parse_refused(const uint8_t *der, size_t len, const char *why)
{
	struct acmera_errmsg e = {{0}};
	struct est_csrattrs_out o;
	memset(&o, 0x55, sizeof o);
	assert_int_equal(est_csrattrs_parse(der, len, &o, &e), ACMERA_ERR_INVAL);
	assert_null(o.subject_cn);
	assert_null(o.dns_names);
	assert_int_equal(o.n_dns_names, 0);
	if (why && !strstr(e.text, why))
		fail_msg("reason \"%s\" lacks \"%s\"", e.text, why);
}

static void csrattrs_truncated_input_is_refused_at_every_length(void **state)
{
	const char *names[] = {"dev1.iot.example.com", "x.iot.example.com"};
	struct est_csrattrs_in in = {.subject_cn = "dev1",
	                             .dns_names = names,
	                             .n_dns_names = 2,
	                             .key = EST_KEY_RSA,
	                             .rsa_bits = 2048};
	uint8_t *der;
	size_t len;
	build(&in, &der, &len);
	for (size_t n = 0; n < len; n++)
		expect_parse_refused(der, n, NULL);
	free(der);
}

static void csrattrs_garbage_and_trailing_bytes_are_refused(void **state)
{
	expect_parse_refused((const uint8_t *)"hello, world", 12, "not a CsrAttrs");
	static const uint8_t not_seq[] = {0x06, 0x03, 0x55, 0x04, 0x03};
	expect_parse_refused(not_seq, sizeof not_seq, "not a CsrAttrs");
	/* AttrOrOID is an OID or an Attribute; an INTEGER is neither */
	static const uint8_t bad_choice[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	expect_parse_refused(bad_choice, sizeof bad_choice, "not a CsrAttrs");
	static const uint8_t trailing[] = {0x30, 0x00, 0x00};
	expect_parse_refused(trailing, sizeof trailing, "not a CsrAttrs");
	expect_parse_refused(NULL, 0, "empty");
	uint8_t *big = calloc(1, 70000);
	assert_non_null(big);
	expect_parse_refused(big, 70000, "more than");
	free(big);
}

static void csrattrs_refuses_a_dnsname_that_is_not_a_dns_name(void **state)
{
	size_t len;
	uint8_t *der = unb64("MC4wLAYJKoZIhvcNAQkOMR8wHTAbBgNVHREEFDASghBiYWQg"
	                     "bmFtZS5leGFtcGxl",
	                     &len);
	expect_parse_refused(der, len, "not a DNS name");
	free(der);
}

/* Two copies of the template attribute in one CsrAttrs. */
static void csrattrs_refuses_two_templates(void **state)
{
	size_t len;
	uint8_t *der = unb64(rfc9908_template, &len);
	/* 30 81 a9 | 30 81 a6 ... : the one element is 169 bytes from offset 3 */
	assert_int_equal(len, 172);
	size_t el = 169;
	uint8_t buf[4 + 2 * 169];
	buf[0] = 0x30;
	buf[1] = 0x82; /* 338 needs two length bytes */
	buf[2] = (uint8_t)((2 * el) >> 8);
	buf[3] = (uint8_t)(2 * el);
	memcpy(buf + 4, der + 3, el);
	memcpy(buf + 4 + el, der + 3, el);
	expect_parse_refused(buf, sizeof buf, "two CSR templates");
	free(der);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(csrattrs_round_trip_keeps_cn_names_and_key_for_every_key_kind),
	    cmocka_unit_test(csrattrs_build_encodes_exactly_the_rfc9908_template_shape),
	    cmocka_unit_test(csrattrs_without_cn_has_no_subject_and_a_critical_san),
	    cmocka_unit_test(csrattrs_rsa_template_carries_a_placeholder_key_of_the_size),
	    cmocka_unit_test(csrattrs_build_refuses_bad_input),
	    cmocka_unit_test(csrattrs_reads_the_rfc9908_csr_template_example),
	    cmocka_unit_test(csrattrs_reads_the_rfc9908_section5_examples),
	    cmocka_unit_test(csrattrs_reads_the_old_rfc7030_example),
	    cmocka_unit_test(csrattrs_template_wins_over_the_legacy_list),
	    cmocka_unit_test(csrattrs_empty_sequence_asks_for_nothing),
	    cmocka_unit_test(csrattrs_truncated_input_is_refused_at_every_length),
	    cmocka_unit_test(csrattrs_garbage_and_trailing_bytes_are_refused),
	    cmocka_unit_test(csrattrs_refuses_a_dnsname_that_is_not_a_dns_name),
	    cmocka_unit_test(csrattrs_refuses_two_templates),
	    cmocka_unit_test(csrattrs_challenge_password_is_asked_only_when_wanted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
