/* Parsers of ACME server objects. The Pebble bodies were captured from Pebble
 * (Debian package) on loopback; the Let's Encrypt and RFC 9444 bodies are written
 * after their documented shapes. */
#include "acme/resources.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARSE(fn, json, out, e) fn((json), strlen(json), (out), (e))

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* ---- directory ---- */

static const char PEBBLE_DIR[] =
    "{\n"
    "   \"keyChange\": \"https://127.0.0.1:14444/rollover-account-key\",\n"
    "   \"meta\": {\n"
    "      \"externalAccountRequired\": false,\n"
    "      \"termsOfService\": \"data:text/plain,Do%20what%20thou%20wilt\"\n"
    "   },\n"
    "   \"newAccount\": \"https://127.0.0.1:14444/sign-me-up\",\n"
    "   \"newNonce\": \"https://127.0.0.1:14444/nonce-plz\",\n"
    "   \"newOrder\": \"https://127.0.0.1:14444/order-plz\",\n"
    "   \"revokeCert\": \"https://127.0.0.1:14444/revoke-cert\"\n"
    "}";

static const char LE_DIR[] =
    "{\"keyChange\":\"https://acme-v02.api.letsencrypt.org/acme/key-change\","
    "\"meta\":{\"caaIdentities\":[\"letsencrypt.org\"],"
    "\"profiles\":{\"classic\":\"https://letsencrypt.org/docs/profiles#classic\"},"
    "\"termsOfService\":\"https://letsencrypt.org/documents/LE-SA-v1.5-February-24-2025.pdf\","
    "\"website\":\"https://letsencrypt.org\"},"
    "\"newAccount\":\"https://acme-v02.api.letsencrypt.org/acme/new-acct\","
    "\"newNonce\":\"https://acme-v02.api.letsencrypt.org/acme/new-nonce\","
    "\"newOrder\":\"https://acme-v02.api.letsencrypt.org/acme/new-order\","
    "\"renewalInfo\":"
    "\"https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo\","
    "\"revokeCert\":\"https://acme-v02.api.letsencrypt.org/acme/revoke-cert\","
    "\"rZ1Ha6EDn3Q\":\"https://community.letsencrypt.org/t/adding-random-entries-to-the-"
    "directory/33417\"}";

/* A private CA with pre-authorization and RFC 9444, as acmera ca offers. */
static const char SUBDOMAIN_DIR[] =
    "{\"newNonce\":\"http://ca.internal:8080/acme/new-nonce\","
    "\"newAccount\":\"http://ca.internal:8080/acme/new-account\","
    "\"newOrder\":\"http://ca.internal:8080/acme/new-order\","
    "\"newAuthz\":\"http://ca.internal:8080/acme/new-authz\","
    "\"revokeCert\":\"http://ca.internal:8080/acme/revoke-cert\","
    "\"keyChange\":\"http://ca.internal:8080/acme/key-change\","
    "\"meta\":{\"externalAccountRequired\":true,\"subdomainAuthAllowed\":true}}";

static void directory_parses_pebble(void **state)
{
	(void)state;
	struct acme_directory d;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(PARSE(acme_directory_parse, PEBBLE_DIR, &d, &e), 0);
	assert_string_equal(d.new_nonce, "https://127.0.0.1:14444/nonce-plz");
	assert_string_equal(d.new_account, "https://127.0.0.1:14444/sign-me-up");
	assert_string_equal(d.new_order, "https://127.0.0.1:14444/order-plz");
	assert_string_equal(d.revoke_cert, "https://127.0.0.1:14444/revoke-cert");
	assert_string_equal(d.key_change, "https://127.0.0.1:14444/rollover-account-key");
	assert_null(d.new_authz);
	assert_null(d.renewal_info);
	assert_null(d.website);
	/* Pebble's terms are a data: URL; they are for people and still accepted. */
	assert_string_equal(d.terms_of_service, "data:text/plain,Do%20what%20thou%20wilt");
	assert_int_equal(d.external_account_required, 0);
	assert_int_equal(d.subdomain_auth_allowed, 0);
	acme_directory_free(&d);
	assert_null(d.new_nonce);
	acme_directory_free(NULL);
}

static void directory_parses_lets_encrypt_with_unknown_fields(void **state)
{
	(void)state;
	struct acme_directory d;
	assert_int_equal(PARSE(acme_directory_parse, LE_DIR, &d, NULL), 0);
	assert_string_equal(d.new_account, "https://acme-v02.api.letsencrypt.org/acme/new-acct");
	assert_string_equal(d.renewal_info, "https://acme-v02.api.letsencrypt.org/"
	                                    "draft-ietf-acme-ari-03/renewalInfo");
	assert_string_equal(d.website, "https://letsencrypt.org");
	assert_contains(d.terms_of_service, "LE-SA-v1.5");
	assert_null(d.new_authz);
	acme_directory_free(&d);
}

static void directory_reads_rfc9444_subdomain_auth_and_new_authz(void **state)
{
	(void)state;
	struct acme_directory d;
	assert_int_equal(PARSE(acme_directory_parse, SUBDOMAIN_DIR, &d, NULL), 0);
	assert_string_equal(d.new_authz, "http://ca.internal:8080/acme/new-authz");
	assert_int_equal(d.subdomain_auth_allowed, 1);
	assert_int_equal(d.external_account_required, 1);
	acme_directory_free(&d);
}

static void expect_dir_error(const char *json, const char *needle)
{
	struct acme_directory d;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(PARSE(acme_directory_parse, json, &d, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, needle);
	assert_null(d.new_nonce);
	assert_null(d.new_account);
}

static void directory_refuses_missing_fields_wrong_types_and_bad_urls(void **state)
{
	(void)state;
	expect_dir_error("{\"newAccount\":\"https://a/acct\",\"newOrder\":\"https://a/order\"}",
	                 "missing field \"newNonce\"");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newOrder\":\"https://a/order\"}",
	                 "missing field \"newAccount\"");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/acct\"}",
	                 "missing field \"newOrder\"");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":42}",
	                 "\"newOrder\" is not a string");
	expect_dir_error("{\"newNonce\":\"ftp://a/n\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":\"https://a/o\"}",
	                 "\"newNonce\" is not an http(s) URL");
	expect_dir_error("{\"newNonce\":\"https://a/n x\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":\"https://a/o\"}",
	                 "bad character");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":\"https://a/o\",\"meta\":[]}",
	                 "\"meta\" is not an object");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":\"https://a/o\","
	                 "\"meta\":{\"subdomainAuthAllowed\":\"yes\"}}",
	                 "\"subdomainAuthAllowed\" is not a boolean");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/acct\","
	                 "\"newOrder\":\"\"}",
	                 "\"newOrder\" is empty");
	expect_dir_error("[\"https://a/n\"]", "not a JSON object");
	expect_dir_error("{\"newNonce\":", "bad JSON");
	expect_dir_error("{\"newNonce\":\"https://a/n\",\"newNonce\":\"https://b/n\","
	                 "\"newAccount\":\"https://a/acct\",\"newOrder\":\"https://a/o\"}",
	                 "bad JSON");
}

static void directory_bounds_url_length(void **state)
{
	(void)state;
	char json[4096 + 256], url[2050];
	memcpy(url, "https://", 8);
	memset(url + 8, 'a', sizeof(url) - 9);
	url[sizeof(url) - 1] = '\0'; /* 2049 characters */
	snprintf(json, sizeof(json),
	         "{\"newNonce\":\"%s\",\"newAccount\":\"https://a/a\","
	         "\"newOrder\":\"https://a/o\"}",
	         url);
	expect_dir_error(json, "longer than 2048");
	url[2048] = '\0';
	snprintf(json, sizeof(json),
	         "{\"newNonce\":\"%s\",\"newAccount\":\"https://a/a\","
	         "\"newOrder\":\"https://a/o\"}",
	         url);
	struct acme_directory d;
	assert_int_equal(PARSE(acme_directory_parse, json, &d, NULL), 0);
	assert_int_equal(strlen(d.new_nonce), 2048);
	acme_directory_free(&d);
}

/* {"a":{"a":{...}}} with levels objects; returns the length. */
static size_t nested(char *buf, size_t levels)
{
	size_t o = 0;
	buf[o++] = '{';
	for (size_t i = 1; i < levels; i++) {
		memcpy(buf + o, "\"a\":{", 5);
		o += 5;
	}
	memset(buf + o, '}', levels);
	return o + levels;
}

static void parsers_refuse_oversize_deep_and_nul_bodies(void **state)
{
	(void)state;
	struct acme_directory d;
	struct acme_problem p;
	struct acmera_errmsg e = {{0}};
	/* Valid JSON, but one byte over the limit. */
	size_t n = ACME_MAX_BODY + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	memcpy(big, PEBBLE_DIR, strlen(PEBBLE_DIR));
	assert_int_equal(acme_directory_parse(big, n, &d, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "exceeds");
	assert_int_equal(acme_directory_parse(big, ACME_MAX_BODY, &d, &e), 0);
	acme_directory_free(&d);
	/* Nesting far deeper than jansson's limit fails cleanly. */
	size_t depth = 100000;
	memset(big, '[', depth);
	assert_int_equal(acme_problem_parse(big, depth, &p, &e), ACMERA_ERR_PROTO);
	/* Closed nesting: 1000 levels is fine (an unknown field), 3000 is refused. */
	size_t len = nested(big, 1000);
	assert_int_equal(acme_problem_parse(big, len, &p, &e), 0);
	assert_string_equal(p.type, "about:blank");
	acme_problem_free(&p);
	len = nested(big, 3000);
	assert_int_equal(acme_problem_parse(big, len, &p, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "maximum parsing depth");
	free(big);
	/* An escaped NUL would cut a C string short. */
	const char *nul = "{\"type\":\"urn:ietf:params:acme:error:malformed\\u0000x\"}";
	assert_int_equal(PARSE(acme_problem_parse, nul, &p, &e), ACMERA_ERR_PROTO);
	assert_int_equal(acme_directory_parse(NULL, 0, &d, &e), ACMERA_ERR_INVAL);
	assert_int_equal(acme_directory_parse("", 0, &d, &e), ACMERA_ERR_PROTO);
}

/* ---- orders ---- */

static const char PEBBLE_ORDER[] =
    "{\n   \"status\": \"pending\",\n   \"expires\": \"2026-11-29T13:23:52Z\",\n"
    "   \"identifiers\": [\n      {\n         \"type\": \"dns\",\n"
    "         \"value\": \"*.iot.example.com\"\n      },\n      {\n"
    "         \"type\": \"dns\",\n"
    "         \"value\": \"dev1.iot.example.com\"\n      }\n   ],\n"
    "   \"finalize\": \"https://127.0.0.1:14444/finalize-order/"
    "ucwe6Xf7TOvPGm5pWWR_eqTMgqAO_sFDNli8G6jXmVE\",\n"
    "   \"authorizations\": [\n"
    "      \"https://127.0.0.1:14444/authZ/U1In-QRhDizPF-eksT7HeP-BEovNsDTL5qR0MYgcM0o\",\n"
    "      \"https://127.0.0.1:14444/authZ/YaoNZxzHA_rY0esMa-lgglBvmSRpX7vZhOgNy0IQpgA\"\n"
    "   ]\n}";

static const char PEBBLE_ORDER_INVALID[] =
    "{\"status\":\"invalid\",\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
    "\"detail\":\"Error retrieving TXT records for DNS challenge (\\\"lookup "
    "_acme-challenge.iot.example.com on 127.0.0.1:53: no such host\\\")\","
    "\"status\":403},\"expires\":\"2026-11-29T13:23:52Z\","
    "\"identifiers\":[{\"type\":\"dns\",\"value\":\"dev1.iot.example.com\"},"
    "{\"type\":\"dns\",\"value\":\"*.iot.example.com\"}],"
    "\"finalize\":\"https://127.0.0.1:14444/finalize-order/ucwe6Xf7\","
    "\"authorizations\":[\"https://127.0.0.1:14444/authZ/YaoNZxzHA\","
    "\"https://127.0.0.1:14444/authZ/U1In-QRhDizPF\"]}";

static const char LE_ORDER_VALID[] =
    "{\"status\":\"valid\",\"expires\":\"2026-12-05T10:41:07Z\","
    "\"identifiers\":[{\"type\":\"dns\",\"value\":\"dev1.iot.example.com\"}],"
    "\"authorizations\":[\"https://acme-v02.api.letsencrypt.org/acme/authz/1234/5678\"],"
    "\"finalize\":\"https://acme-v02.api.letsencrypt.org/acme/finalize/1234/9999\","
    "\"certificate\":\"https://acme-v02.api.letsencrypt.org/acme/cert/04aa1b2c3d4e5f\","
    "\"notBefore\":null}";

/* RFC 9444 5: the order names the ancestor domain the client controls. */
static const char ANCESTOR_ORDER[] =
    "{\"status\":\"ready\",\"expires\":\"2026-11-28T14:00:00.123456789+01:00\","
    "\"identifiers\":[{\"type\":\"dns\",\"value\":\"foo.bar.example.org\","
    "\"ancestorDomain\":\"example.org\"}],"
    "\"authorizations\":[\"https://ca.example/authz/e\"],"
    "\"finalize\":\"https://ca.example/order/1/finalize\"}";

static void order_parses_pebble_pending(void **state)
{
	(void)state;
	struct acme_order o;
	assert_int_equal(PARSE(acme_order_parse, PEBBLE_ORDER, &o, NULL), 0);
	assert_string_equal(o.status, "pending");
	assert_int_equal(o.expires, 1795958632);
	assert_int_equal(o.n_identifiers, 2);
	assert_string_equal(o.identifiers[0].type, "dns");
	assert_string_equal(o.identifiers[0].value, "*.iot.example.com");
	assert_string_equal(o.identifiers[1].value, "dev1.iot.example.com");
	assert_null(o.identifiers[1].ancestor_domain);
	assert_int_equal(o.n_authorizations, 2);
	assert_string_equal(o.authorizations[1], "https://127.0.0.1:14444/authZ/"
	                                         "YaoNZxzHA_rY0esMa-lgglBvmSRpX7vZhOgNy0IQpgA");
	assert_contains(o.finalize, "/finalize-order/ucwe6Xf7");
	assert_null(o.certificate);
	assert_null(o.error);
	acme_order_free(&o);
	assert_null(o.status);
	acme_order_free(NULL);
}

static void order_parses_invalid_with_error(void **state)
{
	(void)state;
	struct acme_order o;
	char text[512];
	assert_int_equal(PARSE(acme_order_parse, PEBBLE_ORDER_INVALID, &o, NULL), 0);
	assert_string_equal(o.status, "invalid");
	assert_non_null(o.error);
	assert_true(acme_problem_is(o.error, "unauthorized"));
	assert_int_equal(o.error->status, 403);
	acme_problem_describe(o.error, text, sizeof(text));
	assert_contains(text, "type=unauthorized status=403 detail=\"Error retrieving TXT");
	acme_order_free(&o);
}

static void order_parses_valid_with_certificate(void **state)
{
	(void)state;
	struct acme_order o;
	assert_int_equal(PARSE(acme_order_parse, LE_ORDER_VALID, &o, NULL), 0);
	assert_string_equal(o.status, "valid");
	assert_string_equal(o.certificate,
	                    "https://acme-v02.api.letsencrypt.org/acme/cert/04aa1b2c3d4e5f");
	acme_order_free(&o);
}

static void order_reads_rfc9444_ancestor_domain(void **state)
{
	(void)state;
	struct acme_order o;
	assert_int_equal(PARSE(acme_order_parse, ANCESTOR_ORDER, &o, NULL), 0);
	assert_string_equal(o.status, "ready");
	assert_string_equal(o.identifiers[0].ancestor_domain, "example.org");
	/* 14:00 at +01:00 is 13:00Z; the fraction is dropped. */
	assert_int_equal(o.expires, 1795870800);
	acme_order_free(&o);
}

static void expect_order_error(const char *json, const char *needle)
{
	struct acme_order o;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(PARSE(acme_order_parse, json, &o, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, needle);
	assert_null(o.status);
	assert_null(o.authorizations);
	assert_null(o.identifiers);
}

static void order_refuses_missing_and_mistyped_fields(void **state)
{
	(void)state;
	expect_order_error("{\"finalize\":\"https://a/f\",\"authorizations\":[]}",
	                   "missing field \"status\"");
	expect_order_error("{\"status\":\"pending\",\"authorizations\":[]}",
	                   "missing field \"finalize\"");
	expect_order_error("{\"status\":\"pending\",\"finalize\":\"https://a/f\"}",
	                   "missing field \"authorizations\"");
	expect_order_error("{\"status\":\"pending\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":\"https://a/z\"}",
	                   "\"authorizations\" is not an array");
	expect_order_error("{\"status\":\"pending\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[\"https://a/z\",7]}",
	                   "\"authorizations[1]\" is not a string");
	expect_order_error("{\"status\":\"done\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[]}",
	                   "unknown status \"done\"");
	expect_order_error("{\"status\":true,\"finalize\":\"https://a/f\",\"authorizations\":[]}",
	                   "\"status\" is not a string");
	expect_order_error("{\"status\":\"pending\",\"expires\":\"tomorrow\","
	                   "\"finalize\":\"https://a/f\",\"authorizations\":[]}",
	                   "\"expires\" is not an RFC 3339 time");
	expect_order_error("{\"status\":\"pending\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[],\"identifiers\":[{\"type\":\"dns\"}]}",
	                   "identifiers[0]: missing field \"value\"");
	expect_order_error("{\"status\":\"pending\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[],\"identifiers\":[\"a.example\"]}",
	                   "identifier is not an object");
	expect_order_error("{\"status\":\"invalid\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[],\"error\":\"failed\"}",
	                   "\"error\" is not an object");
	expect_order_error("{\"status\":\"valid\",\"finalize\":\"https://a/f\","
	                   "\"authorizations\":[],\"certificate\":\"file:///etc/passwd\"}",
	                   "\"certificate\" is not an http(s) URL");
}

static char *order_with_authzs(size_t n)
{
	size_t cap = 128 + n * 32;
	char *s = malloc(cap);
	size_t o = (size_t)snprintf(s, cap,
	                            "{\"status\":\"pending\",\"finalize\":\"https://a/f\","
	                            "\"authorizations\":[");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(s + o, cap - o, "%s\"https://a/z/%zu\"", i ? "," : "", i);
	snprintf(s + o, cap - o, "]}");
	return s;
}

static void order_bounds_the_number_of_authorizations(void **state)
{
	(void)state;
	struct acme_order o;
	char *ok = order_with_authzs(ACME_MAX_LIST), *over = order_with_authzs(ACME_MAX_LIST + 1);
	assert_int_equal(PARSE(acme_order_parse, ok, &o, NULL), 0);
	assert_int_equal(o.n_authorizations, ACME_MAX_LIST);
	assert_string_equal(o.authorizations[ACME_MAX_LIST - 1], "https://a/z/999");
	acme_order_free(&o);
	expect_order_error(over, "more than 1000 entries");
	free(ok);
	free(over);
}

/* ---- authorizations and challenges ---- */

static const char PEBBLE_AUTHZ[] =
    "{\n   \"status\": \"pending\",\n   \"identifier\": {\n      \"type\": \"dns\",\n"
    "      \"value\": \"iot.example.com\"\n   },\n   \"challenges\": [\n      {\n"
    "         \"type\": \"dns-01\",\n"
    "         \"url\": \"https://127.0.0.1:14444/chalZ/"
    "6IOkrGSrNoVoXXUaIJCcp0ZKx_CAx8pHSTpSXHNkT9A\",\n"
    "         \"token\": \"5Uxk6_0OhSLmqoc3UmIO7XzsdIqMpxZCv87QbLYlVYc\",\n"
    "         \"status\": \"pending\"\n      }\n   ],\n"
    "   \"expires\": \"2026-11-28T14:23:52Z\",\n   \"wildcard\": true\n}";

static const char PEBBLE_AUTHZ_INVALID[] =
    "{\"status\":\"invalid\",\"identifier\":{\"type\":\"dns\",\"value\":\"iot.example.com\"},"
    "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://127.0.0.1:14444/chalZ/6IOk\","
    "\"token\":\"5Uxk6_0OhSLmqoc3UmIO7XzsdIqMpxZCv87QbLYlVYc\",\"status\":\"invalid\","
    "\"validated\":\"2026-11-28T13:23:58Z\",\"error\":{\"type\":"
    "\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"Error retrieving TXT records "
    "for DNS challenge\",\"status\":403}}],\"expires\":\"2026-11-28T14:23:52Z\","
    "\"wildcard\":true}";

static const char LE_AUTHZ[] =
    "{\"identifier\":{\"type\":\"dns\",\"value\":\"dev1.iot.example.com\"},"
    "\"status\":\"pending\",\"expires\":\"2026-12-05T10:41:07Z\",\"challenges\":["
    "{\"type\":\"http-01\",\"status\":\"pending\","
    "\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1234/5678/Ab1\","
    "\"token\":\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"},"
    "{\"type\":\"dns-01\",\"status\":\"pending\","
    "\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1234/5678/Cd2\","
    "\"token\":\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"},"
    "{\"type\":\"tls-alpn-01\",\"status\":\"pending\","
    "\"url\":\"https://acme-v02.api.letsencrypt.org/acme/chall/1234/5678/Ef3\","
    "\"token\":\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"}]}";

/* RFC 9444 4.1: a pre-authorization for example.org that covers its subdomains. */
static const char SUBDOMAIN_AUTHZ[] =
    "{\"status\":\"valid\",\"expires\":\"2026-12-28T13:00:00Z\","
    "\"identifier\":{\"type\":\"dns\",\"value\":\"example.org\"},"
    "\"challenges\":[{\"url\":\"https://example.com/acme/chall/prV_B7yEyA4\","
    "\"type\":\"dns-01\",\"status\":\"valid\","
    "\"token\":\"DGyRejmCefe7v4NfDGDKfA\",\"validated\":\"2026-11-28T12:59:00Z\"}],"
    "\"subdomainAuthAllowed\":true}";

static void authz_parses_pebble_wildcard(void **state)
{
	(void)state;
	struct acme_authz a;
	assert_int_equal(PARSE(acme_authz_parse, PEBBLE_AUTHZ, &a, NULL), 0);
	assert_string_equal(a.status, "pending");
	assert_string_equal(a.identifier.type, "dns");
	assert_string_equal(a.identifier.value, "iot.example.com");
	assert_int_equal(a.wildcard, 1);
	assert_int_equal(a.subdomain_auth_allowed, 0);
	assert_int_equal(a.expires, 1795875832);
	assert_int_equal(a.n_challenges, 1);
	const struct acme_challenge *c = acme_authz_challenge(&a, "dns-01");
	assert_non_null(c);
	assert_string_equal(c->token, "5Uxk6_0OhSLmqoc3UmIO7XzsdIqMpxZCv87QbLYlVYc");
	assert_string_equal(c->status, "pending");
	assert_null(c->error);
	assert_null(acme_authz_challenge(&a, "http-01"));
	acme_authz_free(&a);
	assert_null(a.challenges);
	acme_authz_free(NULL);
}

static void authz_parses_invalid_challenge_error(void **state)
{
	(void)state;
	struct acme_authz a;
	assert_int_equal(PARSE(acme_authz_parse, PEBBLE_AUTHZ_INVALID, &a, NULL), 0);
	assert_string_equal(a.status, "invalid");
	const struct acme_challenge *c = acme_authz_challenge(&a, "dns-01");
	assert_string_equal(c->status, "invalid");
	assert_non_null(c->error);
	assert_true(acme_problem_is(c->error, "unauthorized"));
	assert_false(acme_problem_is(c->error, "unauthorize"));
	acme_authz_free(&a);
}

static void authz_finds_each_challenge_type(void **state)
{
	(void)state;
	struct acme_authz a;
	assert_int_equal(PARSE(acme_authz_parse, LE_AUTHZ, &a, NULL), 0);
	assert_int_equal(a.n_challenges, 3);
	assert_int_equal(a.wildcard, 0);
	assert_string_equal(acme_authz_challenge(&a, "dns-01")->url,
	                    "https://acme-v02.api.letsencrypt.org/acme/chall/1234/5678/Cd2");
	assert_string_equal(acme_authz_challenge(&a, "tls-alpn-01")->url,
	                    "https://acme-v02.api.letsencrypt.org/acme/chall/1234/5678/Ef3");
	assert_null(acme_authz_challenge(&a, "dns-account-01"));
	acme_authz_free(&a);
}

static void authz_reads_rfc9444_subdomain_auth_allowed(void **state)
{
	(void)state;
	struct acme_authz a;
	assert_int_equal(PARSE(acme_authz_parse, SUBDOMAIN_AUTHZ, &a, NULL), 0);
	assert_int_equal(a.subdomain_auth_allowed, 1);
	assert_string_equal(a.identifier.value, "example.org");
	assert_string_equal(a.status, "valid");
	acme_authz_free(&a);
}

static void expect_authz_error(const char *json, const char *needle)
{
	struct acme_authz a;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(PARSE(acme_authz_parse, json, &a, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, needle);
	assert_null(a.challenges);
	assert_null(a.identifier.value);
}

static void authz_refuses_missing_and_mistyped_fields(void **state)
{
	(void)state;
	expect_authz_error("{\"status\":\"pending\",\"challenges\":[]}",
	                   "missing field \"identifier\"");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"challenges\":[]}",
	                   "missing field \"status\"");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\"}",
	                   "missing field \"challenges\"");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\",\"challenges\":[],\"wildcard\":1}",
	                   "\"wildcard\" is not a boolean");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\",\"challenges\":[],"
	                   "\"subdomainAuthAllowed\":\"true\"}",
	                   "\"subdomainAuthAllowed\" is not a boolean");
	expect_authz_error("{\"identifier\":\"a.example\",\"status\":\"pending\","
	                   "\"challenges\":[]}",
	                   "\"identifier\" is not an object");
	/* dns-01 and http-01 need a base64url token; other types need none. */
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\",\"challenges\":[{\"type\":\"dns-01\","
	                   "\"url\":\"https://a/c\",\"status\":\"pending\"}]}",
	                   "challenges[0]: missing field \"token\"");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\",\"challenges\":[{\"type\":\"http-01\","
	                   "\"url\":\"https://a/c\",\"status\":\"pending\","
	                   "\"token\":\"../../etc\"}]}",
	                   "token is not base64url");
	expect_authz_error("{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                   "\"status\":\"pending\",\"challenges\":[{\"type\":\"dns-01\","
	                   "\"url\":\"https://a/c\",\"status\":\"ready\",\"token\":\"abc\"}]}",
	                   "unknown status \"ready\"");
	struct acme_authz a;
	const char *no_token = "{\"identifier\":{\"type\":\"dns\",\"value\":\"a.example\"},"
	                       "\"status\":\"pending\","
	                       "\"challenges\":[{\"type\":\"dns-account-01\","
	                       "\"url\":\"https://a/c\",\"status\":\"pending\"}]}";
	assert_int_equal(PARSE(acme_authz_parse, no_token, &a, NULL), 0);
	assert_null(a.challenges[0].token);
	acme_authz_free(&a);
}

static void challenge_parses_pebble_and_refuses_bad_ones(void **state)
{
	(void)state;
	struct acme_challenge c;
	struct acmera_errmsg e = {{0}};
	const char *pebble =
	    "{\n   \"type\": \"dns-01\",\n   \"url\": \"https://127.0.0.1:14444/chalZ/"
	    "6IOkrGSrNoVoXXUaIJCcp0ZKx_CAx8pHSTpSXHNkT9A\",\n"
	    "   \"token\": \"5Uxk6_0OhSLmqoc3UmIO7XzsdIqMpxZCv87QbLYlVYc\",\n"
	    "   \"status\": \"processing\"\n}";
	assert_int_equal(PARSE(acme_challenge_parse, pebble, &c, NULL), 0);
	assert_string_equal(c.type, "dns-01");
	assert_string_equal(c.status, "processing");
	acme_challenge_free(&c);
	acme_challenge_free(NULL);
	const char *no_url = "{\"type\":\"dns-01\",\"status\":\"pending\",\"token\":\"abc\"}";
	assert_int_equal(PARSE(acme_challenge_parse, no_url, &c, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "missing field \"url\"");
	assert_null(c.type);
	const char *no_type = "{\"url\":\"https://a/c\",\"status\":\"pending\"}";
	assert_int_equal(PARSE(acme_challenge_parse, no_type, &c, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "missing field \"type\"");
	const char *num_token =
	    "{\"type\":\"tls-alpn-01\",\"url\":\"https://a/c\",\"status\":\"pending\","
	    "\"token\":5}";
	assert_int_equal(PARSE(acme_challenge_parse, num_token, &c, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "\"token\" is not a string");
}

/* ---- accounts ---- */

static void account_parses_pebble_and_lets_encrypt(void **state)
{
	(void)state;
	struct acme_account a;
	const char *pebble =
	    "{\n   \"status\": \"valid\",\n"
	    "   \"contact\": [\n      \"mailto:ops@example.com\"\n"
	    "   ],\n   \"orders\": \"https://127.0.0.1:14444/list-orderz/7a379ffded33351f\",\n"
	    "   \"key\": {\n      \"kty\": \"EC\",\n      \"crv\": \"P-256\",\n"
	    "      \"x\": \"tFobDnwwDaLClXTZhhCuJ7UddH34Be6g7g5k5UQZeEQ\",\n"
	    "      \"y\": \"9BFBFbdlZu14w9ZG-dsUoy8rXEnrjHxDGyY_ocnLzPE\"\n   }\n}";
	assert_int_equal(PARSE(acme_account_parse, pebble, &a, NULL), 0);
	assert_string_equal(a.status, "valid");
	assert_int_equal(a.n_contact, 1);
	assert_string_equal(a.contact[0], "mailto:ops@example.com");
	assert_string_equal(a.orders, "https://127.0.0.1:14444/list-orderz/7a379ffded33351f");
	acme_account_free(&a);
	/* Let's Encrypt sends no "orders". */
	const char *le = "{\"key\":{\"kty\":\"RSA\",\"n\":\"xyz\",\"e\":\"AQAB\"},"
	                 "\"initialIp\":\"192.0.2.1\",\"createdAt\":\"2026-11-28T13:00:00Z\","
	                 "\"status\":\"deactivated\"}";
	assert_int_equal(PARSE(acme_account_parse, le, &a, NULL), 0);
	assert_string_equal(a.status, "deactivated");
	assert_int_equal(a.n_contact, 0);
	assert_null(a.orders);
	acme_account_free(&a);
	acme_account_free(NULL);
}

static void account_refuses_bad_status_and_contacts(void **state)
{
	(void)state;
	struct acme_account a;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(PARSE(acme_account_parse, "{\"contact\":[]}", &a, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "missing field \"status\"");
	const char *num = "{\"status\":\"valid\",\"contact\":[1]}";
	assert_int_equal(PARSE(acme_account_parse, num, &a, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "\"contact[0]\" is not a string");
	assert_null(a.contact);
	assert_int_equal(
	    PARSE(acme_account_parse, "{\"status\":\"valid\",\"contact\":\"mailto:a@b\"}", &a, &e),
	    ACMERA_ERR_PROTO);
	assert_contains(e.text, "\"contact\" is not an array");
	assert_int_equal(PARSE(acme_account_parse, "{\"status\":\"pending\"}", &a, &e),
	                 ACMERA_ERR_PROTO);
	assert_contains(e.text, "unknown status");
}

/* ---- problems ---- */

static void problem_parses_pebble_bad_nonce(void **state)
{
	(void)state;
	struct acme_problem p;
	const char *json = "{\n   \"type\": \"urn:ietf:params:acme:error:badNonce\",\n"
	                   "   \"detail\": \"JWS has an invalid anti-replay nonce: "
	                   "AAAAAAAAAAAAAAAAAAAAAA\",\n   \"status\": 400\n}";
	assert_int_equal(PARSE(acme_problem_parse, json, &p, NULL), 0);
	assert_true(acme_problem_is(&p, "badNonce"));
	assert_false(acme_problem_is(&p, "malformed"));
	assert_int_equal(p.status, 400);
	assert_int_equal(p.n_sub, 0);
	char text[256];
	acme_problem_describe(&p, text, sizeof(text));
	assert_string_equal(text, "type=badNonce status=400 detail=\"JWS has an invalid "
	                          "anti-replay nonce: AAAAAAAAAAAAAAAAAAAAAA\"");
	acme_problem_free(&p);
	assert_null(p.type);
	acme_problem_free(NULL);
}

/* RFC 8555 6.7.1 example. */
static const char SUBPROBLEMS[] =
    "{\"type\":\"urn:ietf:params:acme:error:malformed\","
    "\"detail\":\"Some of the identifiers requested were rejected\","
    "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:malformed\","
    "\"detail\":\"Invalid underscore in DNS name \\\"_example.org\\\"\","
    "\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},"
    "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
    "\"detail\":\"This CA will not issue for \\\"example.net\\\"\","
    "\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}}]}";

static void problem_keeps_subproblem_identifiers(void **state)
{
	(void)state;
	struct acme_problem p;
	assert_int_equal(PARSE(acme_problem_parse, SUBPROBLEMS, &p, NULL), 0);
	assert_true(acme_problem_is(&p, "malformed"));
	assert_int_equal(p.status, 0);
	assert_int_equal(p.n_sub, 2);
	assert_string_equal(p.sub[0].identifier, "_example.org");
	assert_string_equal(p.sub[1].identifier, "example.net");
	assert_string_equal(p.sub[1].type, "urn:ietf:params:acme:error:rejectedIdentifier");
	char text[512];
	acme_problem_describe(&p, text, sizeof(text));
	assert_string_equal(text, "type=malformed detail=\"Some of the identifiers requested "
	                          "were rejected\" sub=[_example.org: malformed \"Invalid "
	                          "underscore in DNS name \"_example.org\"\"; example.net: "
	                          "rejectedIdentifier \"This CA will not issue for "
	                          "\"example.net\"\"]");
	/* Truncation keeps a terminated string. */
	char small[16];
	acme_problem_describe(&p, small, sizeof(small));
	assert_string_equal(small, "type=malformed ");
	acme_problem_free(&p);
}

static void problem_defaults_type_and_checks_types(void **state)
{
	(void)state;
	struct acme_problem p;
	struct acmera_errmsg e = {{0}};
	char text[128];
	assert_int_equal(
	    PARSE(acme_problem_parse, "{\"detail\":\"no\\nway\",\"status\":503}", &p, NULL), 0);
	assert_string_equal(p.type, "about:blank");
	assert_false(acme_problem_is(&p, "about:blank"));
	acme_problem_describe(&p, text, sizeof(text));
	/* Control characters from the server do not reach logs. */
	assert_string_equal(text, "type=about:blank status=503 detail=\"no?way\"");
	acme_problem_free(&p);
	assert_int_equal(PARSE(acme_problem_parse, "{\"status\":\"400\"}", &p, &e),
	                 ACMERA_ERR_PROTO);
	assert_contains(e.text, "\"status\" is not an HTTP status");
	assert_int_equal(PARSE(acme_problem_parse, "{\"status\":4000}", &p, &e), ACMERA_ERR_PROTO);
	assert_int_equal(PARSE(acme_problem_parse, "{\"type\":7}", &p, &e), ACMERA_ERR_PROTO);
	assert_contains(e.text, "\"type\" is not a string");
	assert_int_equal(
	    PARSE(acme_problem_parse, "{\"subproblems\":[{\"identifier\":\"x\"}]}", &p, &e),
	    ACMERA_ERR_PROTO);
	assert_contains(e.text, "subproblems[0]: field \"identifier\" is not an object");
	assert_null(p.sub);
	assert_int_equal(PARSE(acme_problem_parse,
	                       "{\"subproblems\":[{\"identifier\":{\"type\":\"dns\"}}]}", &p, &e),
	                 ACMERA_ERR_PROTO);
	assert_contains(e.text, "missing field \"value\"");
	assert_int_equal(PARSE(acme_problem_parse, "{\"subproblems\":{}}", &p, &e),
	                 ACMERA_ERR_PROTO);
	acme_problem_describe(NULL, text, sizeof(text));
	assert_string_equal(text, "");
	assert_false(acme_problem_is(NULL, "badNonce"));
}

/* ---- RFC 3339 ---- */

static void time_parse_accepts_rfc3339_forms(void **state)
{
	(void)state;
	struct {
		const char *s;
		int64_t t;
	} ok[] = {
	    {"2026-11-28T13:00:00Z", 1795870800},
	    {"2026-11-28t13:00:00z", 1795870800},
	    {"2026-11-28T13:00:00.5Z", 1795870800},
	    {"2026-11-28T13:00:00.123456789Z", 1795870800},
	    {"2026-11-28T15:30:00+02:30", 1795870800},
	    {"2026-11-28T08:00:00-05:00", 1795870800},
	    {"2026-11-28T13:00:00-00:00", 1795870800},
	    {"2000-02-29T00:00:00Z", 951782400},
	    {"1970-01-01T00:00:00Z", 0},
	    {"0001-01-01T00:00:00Z", -62135596800},
	    {"9999-12-31T23:59:59Z", 253402300799},
	    {"2016-12-31T23:59:60Z", 1483228800},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t t = 1;
		if (acme_time_parse(ok[i].s, &t) != 0)
			fail_msg("refused %s", ok[i].s);
		if (t != ok[i].t)
			fail_msg("%s gave %lld", ok[i].s, (long long)t);
	}
}

static void time_parse_refuses_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
	    "",
	    "2026-11-28",
	    "2026-11-28T13:00:00",
	    "2026-11-28 13:00:00Z",
	    "2026-11-28T13:00:00ZZ",
	    "2026-11-28T13:00:00.Z",
	    "2026-11-28T13:00:00+0100",
	    "2026-11-28T13:00:00+01",
	    "2026-11-28T13:00:00+24:00",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-02-29T00:00:00Z",
	    "2026-04-31T00:00:00Z",
	    "2026-11-28T24:00:00Z",
	    "2026-11-28T13:60:00Z",
	    "2026-11-28T13:00:61Z",
	    "0000-01-01T00:00:00Z",
	    "+2026-11-28T13:00:00Z",
	    "2026-1-28T13:00:00Z",
	    "2026-11-28T13:00:00.1234567890123456789Z",
	    "Sat, 28 Nov 2026 13:00:00 GMT",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t;
		if (acme_time_parse(bad[i], &t) == 0)
			fail_msg("accepted %s", bad[i]);
	}
	int64_t t;
	assert_int_not_equal(acme_time_parse(NULL, &t), 0);
}

static void time_parse_agrees_with_timegm(void **state)
{
	(void)state;
	srand(7);
	for (int i = 0; i < 20000; i++) {
		struct tm tm = {0};
		tm.tm_year = 1 + rand() % 8000 - 1900 + 100;
		tm.tm_mon = rand() % 12;
		tm.tm_mday = 1 + rand() % 28;
		tm.tm_hour = rand() % 24;
		tm.tm_min = rand() % 60;
		tm.tm_sec = rand() % 60;
		char s[64];
		snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		int64_t t;
		assert_int_equal(acme_time_parse(s, &t), 0);
		if (t != (int64_t)timegm(&tm))
			fail_msg("%s: %lld", s, (long long)t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(directory_parses_pebble),
	    cmocka_unit_test(directory_parses_lets_encrypt_with_unknown_fields),
	    cmocka_unit_test(directory_reads_rfc9444_subdomain_auth_and_new_authz),
	    cmocka_unit_test(directory_refuses_missing_fields_wrong_types_and_bad_urls),
	    cmocka_unit_test(directory_bounds_url_length),
	    cmocka_unit_test(parsers_refuse_oversize_deep_and_nul_bodies),
	    cmocka_unit_test(order_parses_pebble_pending),
	    cmocka_unit_test(order_parses_invalid_with_error),
	    cmocka_unit_test(order_parses_valid_with_certificate),
	    cmocka_unit_test(order_reads_rfc9444_ancestor_domain),
	    cmocka_unit_test(order_refuses_missing_and_mistyped_fields),
	    cmocka_unit_test(order_bounds_the_number_of_authorizations),
	    cmocka_unit_test(authz_parses_pebble_wildcard),
	    cmocka_unit_test(authz_parses_invalid_challenge_error),
	    cmocka_unit_test(authz_finds_each_challenge_type),
	    cmocka_unit_test(authz_reads_rfc9444_subdomain_auth_allowed),
	    cmocka_unit_test(authz_refuses_missing_and_mistyped_fields),
	    cmocka_unit_test(challenge_parses_pebble_and_refuses_bad_ones),
	    cmocka_unit_test(account_parses_pebble_and_lets_encrypt),
	    cmocka_unit_test(account_refuses_bad_status_and_contacts),
	    cmocka_unit_test(problem_parses_pebble_bad_nonce),
	    cmocka_unit_test(problem_keeps_subproblem_identifiers),
	    cmocka_unit_test(problem_defaults_type_and_checks_types),
	    cmocka_unit_test(time_parse_accepts_rfc3339_forms),
	    cmocka_unit_test(time_parse_refuses_malformed),
	    cmocka_unit_test(time_parse_agrees_with_timegm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
