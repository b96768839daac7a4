/* Fuzzes the ACME CA's request processing (ca_service_process) with a store in a
 * temporary file. The first byte picks the route and the mode: the rest is either the
 * raw POST body, or a payload the harness signs properly (fresh nonce, the account's
 * kid) so that the handlers' payload checks are reached: newOrder, newAuthz,
 * revokeCert, keyChange, account update, and finalize of an order made ready at start
 * by a pre-authorized parent domain. */
#include "acme/jws.h"
#include "base/config.h"
#include "base/log.h"
#include "ca/service.h"
#include "store/ca_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE "https://ca.test"

static struct config cfg;
static struct ca_service *ca;
static EVP_PKEY *key;
static char kid[256], acct_path[128], finalize_path[128];

static void run(const char *method, const char *path, const char *ct, const uint8_t *body,
                size_t len, struct ca_response *rs)
{
	struct ca_request rq = {.method = method,
	                        .path = path,
	                        .content_type = ct,
	                        .accept = "application/pkcs7-mime",
	                        .body = body,
	                        .body_len = len};
	ca_service_process(ca, &rq, rs);
}

static void signed_post(const char *path, const char *k, const char *payload,
                        struct ca_response *rs)
{
	struct ca_response n;
	char url[256];
	run("HEAD", "/new-nonce", NULL, NULL, 0, &n);
	const char *nonce = NULL;
	for (size_t i = 0; i < n.n_headers; i++)
		if (strcmp(n.headers[2 * i], "Replay-Nonce") == 0)
			nonce = n.headers[2 * i + 1];
	snprintf(url, sizeof(url), BASE "%s", path);
	char *body = nonce ? jws_sign(key, k, nonce, url, payload, NULL) : NULL;
	ca_response_free(&n);
	if (!body) {
		memset(rs, 0, sizeof(*rs));
		return;
	}
	run("POST", path, "application/jose+json", (const uint8_t *)body, strlen(body), rs);
	free(body);
}

static const char *location(const struct ca_response *rs)
{
	for (size_t i = 0; i < rs->n_headers; i++)
		if (strcmp(rs->headers[2 * i], "Location") == 0)
			return rs->headers[2 * i + 1];
	return "";
}

/* An account, a valid subdomain authorization of example.test, a ready order. */
static void init(void)
{
	char dir[] = "/tmp/acmera-fuzz-ca-XXXXXX", p[128];
	struct ca_response rs;
	if (!mkdtemp(dir) || config_init(&cfg))
		abort();
	log_set_level(LOG_LVL_ERROR);
	snprintf(p, sizeof(p), "%s/acmera.db", dir);
	config_set_str(&cfg.store.path, p);
	snprintf(p, sizeof(p), "%s/ca", dir);
	config_set_str(&cfg.ca.dir, p);
	config_set_str(&cfg.ca.url, BASE);
	config_set_str(&cfg.ca.resolver, "127.0.0.1:9");
	config_list_add(cfg.ca.domains, &cfg.ca.n_domains, "example.test", NULL);
	cfg.ca.validators = 1;
	if (ca_service_new(&cfg, &ca, NULL) || acme_key_generate(ACME_KEY_P256, &key, NULL))
		abort();
	signed_post("/new-account", NULL, "{}", &rs);
	snprintf(kid, sizeof(kid), "%s", location(&rs));
	snprintf(acct_path, sizeof(acct_path), "%s", kid + strlen(BASE));
	ca_response_free(&rs);
	signed_post("/new-authz", kid,
	            "{\"identifier\":{\"type\":\"dns\",\"value\":\"example.test\","
	            "\"subdomainAuthAllowed\":true}}",
	            &rs);
	const char *authz = location(&rs) + strlen(BASE) + strlen("/authz/");
	struct ca_store *st = NULL;
	struct ca_challenge ch[CA_MAX_CHALLENGES];
	size_t n = 0;
	int64_t now = (int64_t)time(NULL);
	if (ca_store_open(cfg.store.path, &st, NULL) ||
	    ca_store_challenges_of(st, authz, ch, &n, NULL) || n < 1 ||
	    ca_store_challenge_begin(st, ch[0].id, now, NULL) ||
	    ca_store_challenge_finish(st, ch[0].id, NULL, now, 86400, NULL))
		abort();
	for (size_t i = 0; i < n; i++)
		ca_challenge_free(&ch[i]);
	ca_store_close(st);
	ca_response_free(&rs);
	signed_post("/new-order", kid,
	            "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example.test\"}]}", &rs);
	snprintf(finalize_path, sizeof(finalize_path), "%s/finalize", location(&rs) + strlen(BASE));
	ca_response_free(&rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const raw_paths[] = {"/new-account", "/new-order", "/revoke-cert",
	                                        "/acct/AAAAAAAAAAAAAAAAAAAAAA", "/dir"};
	struct ca_response rs;
	if (!ca)
		init();
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	data++;
	size--;
	if (sel & 0x80) {
		run("POST", raw_paths[sel % 5], "application/jose+json", data, size, &rs);
		ca_response_free(&rs);
		return 0;
	}
	char *payload = malloc(size + 1);
	if (!payload)
		return 0;
	memcpy(payload, data, size);
	payload[size] = '\0';
	switch (sel % 7) {
	case 0:
		signed_post("/new-order", kid, payload, &rs);
		break;
	case 1:
		signed_post("/new-authz", kid, payload, &rs);
		break;
	case 2:
		signed_post("/revoke-cert", kid, payload, &rs);
		break;
	case 3:
		signed_post("/key-change", kid, payload, &rs);
		break;
	case 4:
		signed_post(acct_path, kid, strstr(payload, "deactivated") ? "{}" : payload, &rs);
		break;
	case 5:
		signed_post(finalize_path, kid, payload, &rs);
		break;
	default:
		signed_post("/new-account", NULL, payload, &rs);
		break;
	}
	ca_response_free(&rs);
	free(payload);
	return 0;
}
