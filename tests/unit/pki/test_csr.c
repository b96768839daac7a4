/* csr_parse_der / csr_load_file: proof of possession, names, bounds, digest. */
#include "pki/csr.h"
#include "pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static EVP_PKEY *keys[3]; /* indexed by enum tu_key_type */

static int keys_setup(void **state)
{
	for (int t = TU_EC_P256; t <= TU_ED25519; t++)
		keys[t] = tu_key((enum tu_key_type)t);
	return 0;
}

static int keys_teardown(void **state)
{
	for (int t = TU_EC_P256; t <= TU_ED25519; t++)
		EVP_PKEY_free(keys[t]);
	return 0;
}

/* Parses a fresh CSR and expects it to be refused with a message containing want. */
static void expect_refused(const uint8_t *der, size_t len, const char *want)
{
	struct csr_info c;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(csr_parse_der(der, len, &c, &e), ACMERA_ERR_INVAL);
	if (!strstr(e.text, want))
		fail_msg("error \"%s\" does not mention \"%s\"", e.text, want);
	assert_null(c.req);
	assert_null(c.der);
	assert_int_equal(c.n_names, 0);
}

static void expect_san_refused(const char *san, const char *shown)
{
	uint8_t *der;
	size_t len;
	tu_csr(keys[TU_EC_P256], "x.example.com", san, &der, &len);
	expect_refused(der, len, shown);
	free(der);
}

static void csr_with_each_key_type_parses_and_verifies(void **state)
{
	for (int t = TU_EC_P256; t <= TU_ED25519; t++) {
		uint8_t *der;
		size_t len;
		struct csr_info c;
		struct acmera_errmsg e = {{0}};
		tu_csr(keys[t], "dev1.iot.example.com", "DNS:dev1.iot.example.com", &der, &len);
		if (csr_parse_der(der, len, &c, &e) != 0)
			fail_msg("key type %d: %s", t, e.text);
		assert_non_null(c.req);
		assert_int_equal(c.der_len, len);
		assert_memory_equal(c.der, der, len);
		assert_int_equal(c.n_names, 1);
		assert_string_equal(c.names[0], "dev1.iot.example.com");
		assert_string_equal(c.subject, "CN=dev1.iot.example.com,O=Acme");
		csr_info_free(&c);
		assert_null(c.req);
		free(der);
	}
}

static void csr_names_are_lower_case_deduplicated_in_order(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], "ignored.example.com",
	       "DNS:Device1.IoT.Example.COM,IP:192.0.2.1,DNS:b.example.com,"
	       "email:ops@example.com,DNS:device1.iot.example.com,URI:https://example.com/,"
	       "DNS:B.EXAMPLE.COM,DNS:*.Wild.example.com",
	       &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 3);
	assert_string_equal(c.names[0], "device1.iot.example.com");
	assert_string_equal(c.names[1], "b.example.com");
	assert_string_equal(c.names[2], "*.wild.example.com");
	char *joined = csr_names_joined(&c);
	assert_string_equal(joined, "device1.iot.example.com,b.example.com,*.wild.example.com");
	free(joined);
	csr_info_free(&c);
	free(der);
}

static void csr_without_san_uses_subject_cn_lower_case(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_RSA_2048], "Sensor-7.Example.COM", NULL, &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], "sensor-7.example.com");
	csr_info_free(&c);
	free(der);
}

static void csr_cn_that_is_not_a_host_name_gives_no_names(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], "Device 42", NULL, &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 0);
	char *joined = csr_names_joined(&c);
	assert_string_equal(joined, "");
	free(joined);
	csr_info_free(&c);
	free(der);
}

static void csr_with_san_ignores_subject_cn(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], "cn.example.com", "DNS:san.example.com", &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], "san.example.com");
	csr_info_free(&c);
	free(der);
}

static void csr_with_extensions_but_no_san_uses_subject_cn(void **state)
{
	X509_REQ *req = tu_req_new(keys[TU_EC_P256], "ku.example.com", NULL);
	tu_req_add_ext(req, NID_key_usage, "critical,digitalSignature");
	tu_req_sign(req, keys[TU_EC_P256]);
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 1);
	assert_string_equal(c.names[0], "ku.example.com");
	csr_info_free(&c);
	free(der);
}

static void csr_with_two_san_extensions_is_refused(void **state)
{
	X509_REQ *req = tu_req_new(keys[TU_EC_P256], NULL, NULL);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	assert_non_null(exts);
	for (int i = 0; i < 2; i++) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
		                                          i ? "DNS:b.example" : "DNS:a.example");
		assert_non_null(ext);
		assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
	}
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	tu_req_sign(req, keys[TU_EC_P256]);
	uint8_t *der;
	size_t len;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	expect_refused(der, len, "more than one subjectAltName");
	free(der);
}

static void csr_with_only_ip_san_has_no_names(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], "cn.example.com", "IP:192.0.2.7", &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, 0);
	csr_info_free(&c);
	free(der);
}

static void csr_invalid_host_names_are_refused_by_name(void **state)
{
	expect_san_refused("DNS:ok.example.com,DNS:under_score.example.com",
	                   "\"under_score.example.com\"");
	expect_san_refused("DNS:-lead.example.com", "\"-lead.example.com\"");
	expect_san_refused("DNS:trail-.example.com", "\"trail-.example.com\"");
	expect_san_refused("DNS:a..example.com", "\"a..example.com\"");
	expect_san_refused("DNS:.example.com", "\".example.com\"");
	expect_san_refused("DNS:example.com.", "\"example.com.\"");
	expect_san_refused("DNS:*", "\"*\"");
	expect_san_refused("DNS:*.", "\"*.\"");
	expect_san_refused("DNS:a.*.example.com", "\"a.*.example.com\"");
	expect_san_refused("DNS:**.example.com", "\"**.example.com\"");
	expect_san_refused("DNS:192.0.2.1:443", "\"192.0.2.1:443\"");
	expect_san_refused("DNS:user@example.com", "\"user@example.com\"");
}

static void csr_label_of_64_and_name_over_253_are_refused(void **state)
{
	char label63[64], label64[65], name[300];
	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'b', 64);
	label64[64] = '\0';
	char san[400];
	uint8_t *der;
	size_t len;
	struct csr_info c;

	snprintf(san, sizeof(san), "DNS:%s.example.com", label63);
	tu_csr(keys[TU_EC_P256], NULL, san, &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	csr_info_free(&c);
	free(der);

	snprintf(san, sizeof(san), "DNS:%s.example.com", label64);
	expect_san_refused(san, label64);

	/* 4 labels of 63 plus 3 dots: 255 characters; with one label of 61: 253. */
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	assert_int_equal(strlen(name), 253);
	snprintf(san, sizeof(san), "DNS:%s", name);
	tu_csr(keys[TU_EC_P256], NULL, san, &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_string_equal(c.names[0], name);
	csr_info_free(&c);
	free(der);

	snprintf(name, sizeof(name), "%s.%s.%s.%.62s", label63, label63, label63, label63);
	snprintf(san, sizeof(san), "DNS:%s", name);
	expect_san_refused(san, "is not a valid host name");
}

static void csr_name_with_nul_or_control_bytes_is_refused_and_escaped(void **state)
{
	static const uint8_t raw[] = "good.example.com\0.evil\n";
	X509_REQ *req = tu_req_new(keys[TU_EC_P256], NULL, NULL);
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	assert_non_null(gens);
	assert_non_null(gn);
	assert_non_null(s);
	assert_int_equal(ASN1_STRING_set(s, raw, sizeof(raw) - 1), 1);
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	tu_req_add_gens(req, gens);
	GENERAL_NAMES_free(gens);
	tu_req_sign(req, keys[TU_EC_P256]);
	uint8_t *der;
	size_t len;
	tu_req_der(req, &der, &len);
	X509_REQ_free(req);
	expect_refused(der, len, "\"good.example.com\\x00.evil\\x0a\"");
	free(der);
}

static void csr_with_more_than_max_names_is_refused(void **state)
{
	char *san = malloc(64 * (CSR_MAX_NAMES + 1));
	assert_non_null(san);
	size_t o = 0;
	for (int i = 0; i < CSR_MAX_NAMES; i++)
		o += (size_t)sprintf(san + o, "%sDNS:n%d.example.com", i ? "," : "", i);
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], NULL, san, &der, &len);
	assert_int_equal(csr_parse_der(der, len, &c, NULL), 0);
	assert_int_equal(c.n_names, CSR_MAX_NAMES);
	csr_info_free(&c);
	free(der);

	sprintf(san + o, ",DNS:one-more.example.com");
	tu_csr(keys[TU_EC_P256], NULL, san, &der, &len);
	expect_refused(der, len, "more than 100 names");
	free(der);
	free(san);
}

static void csr_with_flipped_signature_byte_is_refused(void **state)
{
	for (int t = TU_EC_P256; t <= TU_ED25519; t++) {
		uint8_t *der;
		size_t len;
		tu_csr(keys[t], "dev.example.com", "DNS:dev.example.com", &der, &len);
		/* The signature BIT STRING ends the encoding. */
		der[len - 1] ^= 0x01;
		expect_refused(der, len, "signature does not verify");
		free(der);
	}
}

/* A job's CSR, verified when it was taken, is read again without its key and
 * without checking the signature: the names are the same, the key undecoded. */
static void stored_csr_is_read_without_its_key(void **state)
{
	(void)state;
	uint8_t *der;
	size_t len;
	struct csr_info c;
	tu_csr(keys[TU_EC_P256], "dev.example.com", "DNS:Dev.example.com,DNS:b.example.com", &der,
	       &len);
	assert_int_equal(csr_parse_stored(der, len, &c, NULL), 0);
	assert_null(c.key);
	assert_non_null(X509_REQ_get_X509_PUBKEY(c.req));
	assert_int_equal(c.n_names, 2);
	assert_string_equal(c.names[0], "dev.example.com");
	assert_string_equal(c.names[1], "b.example.com");
	csr_info_free(&c);
	der[len - 1] ^= 0x01; /* not checked again */
	assert_int_equal(csr_parse_stored(der, len, &c, NULL), 0);
	csr_info_free(&c);
	assert_int_equal(csr_parse_stored(der, len - 1, &c, NULL), ACMERA_ERR_INVAL);
	free(der);
}

static void csr_with_changed_subject_is_refused(void **state)
{
	uint8_t *der;
	size_t len;
	tu_csr(keys[TU_EC_P256], "dev.example.com", "DNS:dev.example.com", &der, &len);
	uint8_t *at = memmem(der, len, "dev.example.com", 15);
	assert_non_null(at);
	at[0] = 'e';
	expect_refused(der, len, "signature does not verify");
	free(der);
}

static void csr_with_trailing_byte_is_refused(void **state)
{
	uint8_t *der;
	size_t len;
	tu_csr(keys[TU_EC_P256], "dev.example.com", NULL, &der, &len);
	uint8_t *more = realloc(der, len + 1);
	assert_non_null(more);
	more[len] = 0;
	expect_refused(more, len + 1, "1 trailing bytes");
	free(more);
}

static void csr_oversize_truncated_empty_or_garbage_is_refused(void **state)
{
	uint8_t *big = calloc(1, CSR_MAX_DER + 1);
	assert_non_null(big);
	expect_refused(big, CSR_MAX_DER + 1, "more than 65536");
	free(big);

	uint8_t *der;
	size_t len;
	tu_csr(keys[TU_EC_P256], "dev.example.com", NULL, &der, &len);
	expect_refused(der, len - 1, "not a PKCS#10 request");
	expect_refused(der, 0, "empty");
	static const uint8_t junk[] = "-----BEGIN CERTIFICATE REQUEST-----";
	expect_refused(junk, sizeof(junk) - 1, "not a PKCS#10 request");
	free(der);
}

static void csr_digest_is_sha256_of_exact_bytes(void **state)
{
	char hex[65];
	sha256_hex((const uint8_t *)"abc", 3, hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	uint8_t *der;
	size_t len;
	struct csr_info a, b;
	tu_csr(keys[TU_EC_P256], "dev.example.com", "DNS:dev.example.com", &der, &len);
	assert_int_equal(csr_parse_der(der, len, &a, NULL), 0);
	assert_int_equal(csr_parse_der(der, len, &b, NULL), 0);
	sha256_hex(der, len, hex);
	assert_string_equal(a.sha256_hex, hex);
	assert_string_equal(a.sha256_hex, b.sha256_hex);
	csr_info_free(&b);

	/* Same key, same request, signed again: a new ECDSA nonce, new bytes, new key. */
	uint8_t *der2;
	size_t len2;
	tu_csr(keys[TU_EC_P256], "dev.example.com", "DNS:dev.example.com", &der2, &len2);
	assert_int_equal(csr_parse_der(der2, len2, &b, NULL), 0);
	assert_string_not_equal(a.sha256_hex, b.sha256_hex);
	csr_info_free(&a);
	csr_info_free(&b);
	free(der);
	free(der2);
}

static char *pem_of(const uint8_t *der, size_t len, const char *label)
{
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_true(PEM_write_bio(bio, label, "", der, (long)len) > 0);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	char *s = strndup(p, (size_t)n);
	BIO_free(bio);
	assert_non_null(s);
	return s;
}

/* Loads text from a temporary file and returns csr_load_file's result. */
static int load_text(const char *text, size_t len, struct csr_info *c, struct acmera_errmsg *e)
{
	char *path = tu_temp_file(text, len);
	int rc = csr_load_file(path, c, e);
	unlink(path);
	free(path);
	return rc;
}

static void csr_file_in_pem_der_or_old_label_gives_same_digest(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	struct acmera_errmsg e = {{0}};
	char want[65];
	tu_csr(keys[TU_ED25519], "dev.example.com", "DNS:dev.example.com", &der, &len);
	sha256_hex(der, len, want);

	assert_int_equal(load_text((const char *)der, len, &c, &e), 0);
	assert_string_equal(c.sha256_hex, want);
	csr_info_free(&c);

	const char *labels[] = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"};
	for (size_t i = 0; i < 2; i++) {
		char *pem = pem_of(der, len, labels[i]);
		char text[8192];
		int n =
		    snprintf(text, sizeof(text), "Certificate Request:\n  text\r\n%sbye\n", pem);
		assert_true(n > 0 && (size_t)n < sizeof(text));
		if (load_text(text, (size_t)n, &c, &e) != 0)
			fail_msg("%s: %s", labels[i], e.text);
		assert_string_equal(c.sha256_hex, want);
		assert_int_equal(c.der_len, len);
		assert_string_equal(c.names[0], "dev.example.com");
		csr_info_free(&c);
		free(pem);
	}
	free(der);
}

static void csr_file_with_other_or_extra_pem_blocks_is_refused(void **state)
{
	uint8_t *der;
	size_t len;
	struct csr_info c;
	struct acmera_errmsg e = {{0}};
	tu_csr(keys[TU_EC_P256], "dev.example.com", NULL, &der, &len);
	char *csr = pem_of(der, len, "CERTIFICATE REQUEST");
	char *key = pem_of((const uint8_t *)"secret", 6, "PRIVATE KEY");
	char text[8192];

	int n = snprintf(text, sizeof(text), "%s%s", key, csr);
	assert_int_equal(load_text(text, (size_t)n, &c, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "\"PRIVATE KEY\", not a CSR"));

	n = snprintf(text, sizeof(text), "%s%s", csr, csr);
	assert_int_equal(load_text(text, (size_t)n, &c, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "more than one PEM block"));
	assert_null(c.req);

	free(csr);
	free(key);
	free(der);
}

static void csr_file_of_plain_text_is_refused(void **state)
{
	struct csr_info c;
	struct acmera_errmsg e = {{0}};
	const char text[] = "0 is not a CSR\n";
	assert_int_equal(load_text(text, sizeof(text) - 1, &c, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "bad PEM"));
	assert_int_equal(load_text("", 0, &c, &e), ACMERA_ERR_INVAL);
}

static void csr_file_missing_is_io_error(void **state)
{
	struct csr_info c;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(csr_load_file("/nonexistent/acmera.csr", &c, &e), ACMERA_ERR_IO);
	assert_non_null(strstr(e.text, "/nonexistent/acmera.csr"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(csr_with_each_key_type_parses_and_verifies),
	    cmocka_unit_test(stored_csr_is_read_without_its_key),
	    cmocka_unit_test(csr_names_are_lower_case_deduplicated_in_order),
	    cmocka_unit_test(csr_without_san_uses_subject_cn_lower_case),
	    cmocka_unit_test(csr_cn_that_is_not_a_host_name_gives_no_names),
	    cmocka_unit_test(csr_with_san_ignores_subject_cn),
	    cmocka_unit_test(csr_with_extensions_but_no_san_uses_subject_cn),
	    cmocka_unit_test(csr_with_two_san_extensions_is_refused),
	    cmocka_unit_test(csr_with_only_ip_san_has_no_names),
	    cmocka_unit_test(csr_invalid_host_names_are_refused_by_name),
	    cmocka_unit_test(csr_label_of_64_and_name_over_253_are_refused),
	    cmocka_unit_test(csr_name_with_nul_or_control_bytes_is_refused_and_escaped),
	    cmocka_unit_test(csr_with_more_than_max_names_is_refused),
	    cmocka_unit_test(csr_with_flipped_signature_byte_is_refused),
	    cmocka_unit_test(csr_with_changed_subject_is_refused),
	    cmocka_unit_test(csr_with_trailing_byte_is_refused),
	    cmocka_unit_test(csr_oversize_truncated_empty_or_garbage_is_refused),
	    cmocka_unit_test(csr_digest_is_sha256_of_exact_bytes),
	    cmocka_unit_test(csr_file_in_pem_der_or_old_label_gives_same_digest),
	    cmocka_unit_test(csr_file_with_other_or_extra_pem_blocks_is_refused),
	    cmocka_unit_test(csr_file_of_plain_text_is_refused),
	    cmocka_unit_test(csr_file_missing_is_io_error),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
