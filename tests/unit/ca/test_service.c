/* Unit tests of the CA's request handling (ca_service_process), driven with JWS signed
 * by the client's own code: the POST checks, accounts, RFC 9444 pre-authorization making
 * device orders ready, finalization and the certificate download. No network: the
 * challenge verdict is written to the store directly. */
#include "acme/jws.h"
#include "base/b64.h"
#include "base/config.h"
#include "ca/service.h"
#include "store/ca_store.h"
#include "../pki/pki_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#define BASE "https://ca.test"

struct fx {
	char dir[64];
	struct config cfg;
	struct ca_service *ca;
	EVP_PKEY *key;
	char kid[256];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};
	char p[128];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/acmera-casvc-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(config_init(&f->cfg), 0);
	snprintf(p, sizeof(p), "%s/acmera.db", f->dir);
	config_set_str(&f->cfg.store.path, p);
	snprintf(p, sizeof(p), "%s/ca", f->dir);
	config_set_str(&f->cfg.ca.dir, p);
	config_set_str(&f->cfg.ca.url, BASE);
	config_set_str(&f->cfg.ca.resolver, "127.0.0.1:9");
	config_list_add(f->cfg.ca.domains, &f->cfg.ca.n_domains, "example.test", NULL);
	f->cfg.ca.validators = 1;
	if (ca_service_new(&f->cfg, &f->ca, &e))
		fail_msg("ca_service_new: %s", e.text);
	assert_int_equal(acme_key_generate(ACME_KEY_P256, &f->key, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	ca_service_free(f->ca);
	config_free(&f->cfg);
	EVP_PKEY_free(f->key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static const char *header(const struct ca_response *rs, const char *name)
{
	for (size_t i = 0; i < rs->n_headers; i++)
		if (strcasecmp(rs->headers[2 * i], name) == 0)
			return rs->headers[2 * i + 1];
	return NULL;
}

static void request(struct fx *f, const char *method, const char *path, const char *ct,
                    const char *body, const char *accept, struct ca_response *rs)
{
	struct ca_request rq = {.method = method,
	                        .path = path,
	                        .content_type = ct,
	                        .accept = accept,
	                        .body = (const uint8_t *)body,
	                        .body_len = body ? strlen(body) : 0};
	ca_service_process(f->ca, &rq, rs);
}

static char *fresh_nonce(struct fx *f)
{
	struct ca_response rs;
	request(f, "HEAD", "/new-nonce", NULL, NULL, NULL, &rs);
	assert_int_equal(rs.status, 200);
	char *n = strdup(header(&rs, "Replay-Nonce"));
	ca_response_free(&rs);
	return n;
}

/* A signed POST (kid NULL: jwk) to path; payload NULL is POST-as-GET. */
static void post(struct fx *f, EVP_PKEY *key, const char *kid, const char *path,
                 const char *payload, const char *accept, struct ca_response *rs)
{
	char url[256];
	char *nonce = fresh_nonce(f);
	snprintf(url, sizeof(url), BASE "%s", path);
	char *body = jws_sign(key, kid, nonce, url, payload, NULL);
	assert_non_null(body);
	request(f, "POST", path, "application/jose+json", body, accept, rs);
	free(body);
	free(nonce);
}

/* The member name of the JSON body as a string ("" when absent). */
static const char *body_str(const struct ca_response *rs, const char *name)
{
	static char out[512];
	json_t *j = json_loadb((const char *)rs->body, rs->len, 0, NULL);
	snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(j, name)) ?: "");
	json_decref(j);
	return out;
}

/* The path part of a URL of this CA. */
static const char *path_of(const char *url)
{
	assert_int_equal(strncmp(url, BASE, strlen(BASE)), 0);
	return url + strlen(BASE);
}

static void new_account(struct fx *f)
{
	struct ca_response rs;
	post(f, f->key, NULL, "/new-account", "{\"termsOfServiceAgreed\":true}", NULL, &rs);
	assert_int_equal(rs.status, 201);
	snprintf(f->kid, sizeof(f->kid), "%s", header(&rs, "Location"));
	ca_response_free(&rs);
}

static void ca_directory_lists_resources_and_subdomain_support(void **state)
{
	struct fx *f = *state;
	struct ca_response rs;
	request(f, "GET", "/dir", NULL, NULL, NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(body_str(&rs, "newAuthz"), BASE "/new-authz");
	assert_non_null(strstr((const char *)rs.body, "\"subdomainAuthAllowed\": true"));
	assert_non_null(header(&rs, "Replay-Nonce"));
	assert_string_equal(header(&rs, "Link"), "<" BASE "/dir>;rel=\"index\"");
	ca_response_free(&rs);
	request(f, "GET", "/new-nonce", NULL, NULL, NULL, &rs);
	assert_int_equal(rs.status, 204);
	assert_string_equal(header(&rs, "Cache-Control"), "no-store");
	ca_response_free(&rs);
}

static void ca_post_refuses_bad_media_type_url_nonce_and_get(void **state)
{
	struct fx *f = *state;
	struct ca_response rs;
	char *nonce = fresh_nonce(f);
	char *body = jws_sign(f->key, NULL, nonce, BASE "/new-account", "{}", NULL);
	request(f, "POST", "/new-account", "application/json", body, NULL, &rs);
	assert_int_equal(rs.status, 415);
	ca_response_free(&rs);
	/* signed for another URL */
	request(f, "POST", "/new-order", "application/jose+json", body, NULL, &rs);
	assert_int_equal(rs.status, 401);
	assert_non_null(strstr((const char *)rs.body, "error:unauthorized"));
	ca_response_free(&rs);
	/* the nonce survived the refusals; once used it is gone */
	request(f, "POST", "/new-account", "application/jose+json", body, NULL, &rs);
	assert_int_equal(rs.status, 201);
	ca_response_free(&rs);
	request(f, "POST", "/new-account", "application/jose+json", body, NULL, &rs);
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr((const char *)rs.body, "error:badNonce"));
	assert_non_null(header(&rs, "Replay-Nonce"));
	ca_response_free(&rs);
	free(body);
	free(nonce);
	request(f, "GET", "/order/AAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, NULL, &rs);
	assert_int_equal(rs.status, 405);
	ca_response_free(&rs);
}

static void ca_new_account_again_answers_200_and_kid_is_required_elsewhere(void **state)
{
	struct fx *f = *state;
	struct ca_response rs;
	new_account(f);
	post(f, f->key, NULL, "/new-account", "{\"onlyReturnExisting\":true}", NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(header(&rs, "Location"), f->kid);
	ca_response_free(&rs);
	post(f, f->key, NULL, "/new-order", "{}", NULL, &rs);
	assert_int_equal(rs.status, 400);
	ca_response_free(&rs);
	EVP_PKEY *other = NULL;
	assert_int_equal(acme_key_generate(ACME_KEY_P256, &other, NULL), 0);
	post(f, other, NULL, "/new-account", "{\"onlyReturnExisting\":true}", NULL, &rs);
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr((const char *)rs.body, "accountDoesNotExist"));
	ca_response_free(&rs);
	/* a kid signed by the wrong key */
	post(f, other, f->kid, "/new-order", "{}", NULL, &rs);
	assert_int_equal(rs.status, 400);
	ca_response_free(&rs);
	EVP_PKEY_free(other);
}

static void ca_new_order_outside_domains_or_with_dates_is_refused(void **state)
{
	struct fx *f = *state;
	struct ca_response rs;
	new_account(f);
	post(f, f->key, f->kid, "/new-order",
	     "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.other.test\"}]}", NULL, &rs);
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr((const char *)rs.body, "rejectedIdentifier"));
	assert_non_null(strstr((const char *)rs.body, "subproblems"));
	ca_response_free(&rs);
	post(f, f->key, f->kid, "/new-order",
	     "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example.test\"}],"
	     "\"notAfter\":\"2030-01-01T00:00:00Z\"}",
	     NULL, &rs);
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr((const char *)rs.body, "malformed"));
	ca_response_free(&rs);
	post(f, f->key, f->kid, "/new-order",
	     "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.b.example.test\","
	     "\"ancestorDomain\":\"a.b.example.test\"}]}",
	     NULL, &rs);
	assert_int_equal(rs.status, 400);
	ca_response_free(&rs);
}

/* Marks the first challenge of the authorization at authz_url valid. */
static void validate_directly(struct fx *f, const char *authz_path)
{
	struct ca_store *st = NULL;
	struct ca_challenge ch[CA_MAX_CHALLENGES];
	size_t n = 0;
	assert_int_equal(ca_store_open(f->cfg.store.path, &st, NULL), 0);
	const char *id = authz_path + strlen("/authz/");
	assert_int_equal(ca_store_challenges_of(st, id, ch, &n, NULL), 0);
	assert_true(n >= 1);
	int64_t now = (int64_t)time(NULL);
	assert_int_equal(ca_store_challenge_begin(st, ch[0].id, now, NULL), 0);
	assert_int_equal(ca_store_challenge_finish(st, ch[0].id, NULL, now, 3600, NULL), 0);
	for (size_t i = 0; i < n; i++)
		ca_challenge_free(&ch[i]);
	ca_store_close(st);
}

static char *csr_b64(const char *cn, const char *san)
{
	EVP_PKEY *k = tu_key(TU_EC_P256);
	uint8_t *der = NULL;
	size_t len = 0;
	tu_csr(k, cn, san, &der, &len);
	char *b = b64url_encode(der, len);
	free(der);
	EVP_PKEY_free(k);
	return b;
}

static void ca_preauthorized_parent_makes_device_order_ready_and_issues(void **state)
{
	struct fx *f = *state;
	struct ca_response rs;
	char authz[256], order[256], fin[256], cert[256], payload[2048];
	new_account(f);
	post(f, f->key, f->kid, "/new-authz",
	     "{\"identifier\":{\"type\":\"dns\",\"value\":\"iot.example.test\","
	     "\"subdomainAuthAllowed\":true}}",
	     NULL, &rs);
	assert_int_equal(rs.status, 201);
	assert_non_null(strstr((const char *)rs.body, "\"subdomainAuthAllowed\": true"));
	assert_non_null(strstr((const char *)rs.body, "dns-01"));
	assert_null(strstr((const char *)rs.body, "http-01"));
	snprintf(authz, sizeof(authz), "%s", path_of(header(&rs, "Location")));
	ca_response_free(&rs);
	/* before validation a device order is pending, on a challenge of its own */
	post(f, f->key, f->kid, "/new-order",
	     "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"d0.iot.example.test\"}]}", NULL, &rs);
	assert_int_equal(rs.status, 201);
	assert_string_equal(body_str(&rs, "status"), "pending");
	ca_response_free(&rs);

	validate_directly(f, authz);
	post(f, f->key, f->kid, "/new-order",
	     "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"d1.iot.example.test\"}]}", NULL, &rs);
	assert_int_equal(rs.status, 201);
	assert_string_equal(body_str(&rs, "status"), "ready");
	char authz_url[300];
	snprintf(authz_url, sizeof(authz_url), "\"" BASE "%s\"", authz);
	assert_non_null(strstr((const char *)rs.body, authz_url));
	snprintf(order, sizeof(order), "%s", path_of(header(&rs, "Location")));
	snprintf(fin, sizeof(fin), "%s", path_of(body_str(&rs, "finalize")));
	ca_response_free(&rs);

	/* a CSR with other names is refused and changes nothing */
	char *csr = csr_b64("d2.iot.example.test", "DNS:d2.iot.example.test");
	snprintf(payload, sizeof(payload), "{\"csr\":\"%s\"}", csr);
	free(csr);
	post(f, f->key, f->kid, fin, payload, NULL, &rs);
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr((const char *)rs.body, "badCSR"));
	ca_response_free(&rs);

	csr = csr_b64("d1.iot.example.test", "DNS:d1.iot.example.test");
	snprintf(payload, sizeof(payload), "{\"csr\":\"%s\"}", csr);
	free(csr);
	post(f, f->key, f->kid, fin, payload, NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(body_str(&rs, "status"), "valid");
	snprintf(cert, sizeof(cert), "%s", path_of(body_str(&rs, "certificate")));
	ca_response_free(&rs);
	/* finalized once only */
	post(f, f->key, f->kid, fin, payload, NULL, &rs);
	assert_int_equal(rs.status, 403);
	assert_non_null(strstr((const char *)rs.body, "orderNotReady"));
	ca_response_free(&rs);

	post(f, f->key, f->kid, cert, NULL, NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(rs.content_type, "application/pem-certificate-chain");
	assert_non_null(strstr((const char *)rs.body, "-----BEGIN CERTIFICATE-----"));
	ca_response_free(&rs);
	post(f, f->key, f->kid, cert, NULL, "application/pkcs7-mime", &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(rs.content_type, "application/pkcs7-mime");
	assert_true(rs.len > 100 && rs.body[0] == 0x30);
	ca_response_free(&rs);

	post(f, f->key, f->kid, order, NULL, NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(body_str(&rs, "status"), "valid");
	ca_response_free(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(ca_directory_lists_resources_and_subdomain_support),
	    T(ca_post_refuses_bad_media_type_url_nonce_and_get),
	    T(ca_new_account_again_answers_200_and_kid_is_required_elsewhere),
	    T(ca_new_order_outside_domains_or_with_dates_is_refused),
	    T(ca_preauthorized_parent_makes_device_order_ready_and_issues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
