/* Request processing of `acmera ca`: the routes, and what every POST goes through
 * before its handler (RFC 8555 6.2-6.5): media type, JWS, url, account, signature,
 * nonce, payload. */
#include "ca/internal.h"
#include "ca/key_cache.h"
#include "ca/nonce.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum auth { AUTH_KID, AUTH_JWK, AUTH_EITHER };

struct ca_store *ca_service_store(struct ca_service *s, struct acmera_errmsg *e)
{
	struct ca_store *st = pthread_getspecific(s->store_key);
	if (st)
		return st;
	if (ca_store_open(s->cfg->store.path, &st, e))
		return NULL;
	if (pthread_setspecific(s->store_key, st) != 0) {
		ca_store_close(st);
		acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return st;
}

/* ---- GET resources ---- */

static void directory(struct ca_ctx *c)
{
	char u[8][CA_URL_MAX];
	static const char *const paths[] = {"/new-nonce", "/new-account", "/new-order",
	                                    "/new-authz", "/revoke-cert", "/key-change"};
	static const char *const names[] = {"newNonce", "newAccount", "newOrder",
	                                    "newAuthz", "revokeCert", "keyChange"};
	const struct config *cfg = c->svc->cfg;
	json_t *d = json_object(), *meta = json_object();
	if (!d || !meta)
		goto fail;
	for (size_t i = 0; i < 6; i++)
		if (ca_url(c->svc, u[i], "%s", paths[i]) || ca_json_set_str(d, names[i], u[i]))
			goto fail;
	if (cfg->ca.terms_of_service &&
	    ca_json_set_str(meta, "termsOfService", cfg->ca.terms_of_service))
		goto fail;
	if (json_object_set_new(meta, "externalAccountRequired",
	                        json_boolean(cfg->ca.eab_required)) ||
	    json_object_set_new(meta, "subdomainAuthAllowed", json_true()) ||
	    json_object_set(d, "meta", meta))
		goto fail;
	json_decref(meta);
	ca_reply_json(c->rs, 200, d);
	return;
fail:
	json_decref(meta);
	json_decref(d);
	ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
}

static void new_nonce(struct ca_ctx *c)
{
	/* RFC 8555 7.2: HEAD 200, GET 204; the nonce itself is added to every answer. */
	ca_header(c->rs, "Cache-Control", "no-store");
	c->rs->status = strcmp(c->rq->method, "HEAD") == 0 ? 200 : 204;
}

/* ---- POST checks ---- */

/* The media type without parameters, compared case-insensitively. */
static int is_jose_json(const char *ct)
{
	static const char want[] = "application/jose+json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return 0;
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* The account named by the kid (its URL); answers and returns nonzero when unknown or
 * not valid. */
static int load_account(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	char prefix[CA_URL_MAX], id[CA_ID_LEN + 1];
	if (ca_url(c->svc, prefix, "/acct/") || !ca_path_id(c->jws.kid, prefix, "", id)) {
		ca_reply_problem(c->rs, 400, "accountDoesNotExist", NULL,
		                 "kid is not an account URL of this server");
		return -1;
	}
	int rc = ca_store_account_get(c->st, id, &c->acct, &e);
	if (rc == ACMERA_ERR_NOTFOUND) {
		ca_reply_problem(c->rs, 400, "accountDoesNotExist", NULL, "no such account");
		return -1;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return -1;
	}
	c->has_acct = 1;
	snprintf(c->rs->account, sizeof(c->rs->account), "%s", id);
	if (strcmp(c->acct.status, "valid") != 0) {
		ca_reply_problem(c->rs, 401, "unauthorized", NULL, "the account is %s",
		                 c->acct.status);
		return -1;
	}
	rc = ca_key_cache_get(c->svc->keys, c->acct.jwk, &c->key, &c->verifier, &e);
	if (rc) {
		log_event(LOG_LVL_ERROR, "ca.account", "account=%s error=%s", id,
		          log_qv("stored key unusable"));
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "account key unusable");
		return -1;
	}
	return 0;
}

/* Everything a POST must pass; 0, or answered with a problem. */
static int verify_post(struct ca_ctx *c, enum auth auth)
{
	struct acmera_errmsg e = {{0}};
	const char *problem = NULL;
	char url[CA_URL_MAX];
	if (!is_jose_json(c->rq->content_type)) {
		ca_reply_problem(c->rs, 415, "malformed", NULL,
		                 "Content-Type must be application/jose+json");
		return -1;
	}
	if (c->rq->body_len > CA_JWS_MAX_BODY) {
		ca_reply_problem(c->rs, 413, "malformed", NULL, "body larger than %d bytes",
		                 CA_JWS_MAX_BODY);
		return -1;
	}
	if (ca_jws_parse((const char *)c->rq->body, c->rq->body_len, &c->jws, &problem, &e)) {
		ca_reply_problem(c->rs, 400, problem ? problem : "malformed", NULL, "%s", e.text);
		return -1;
	}
	if (ca_url(c->svc, url, "%s", c->rq->path) || strcmp(url, c->jws.url) != 0) {
		ca_reply_problem(c->rs, 401, "unauthorized", NULL,
		                 "the JWS url is not the URL of this request");
		return -1;
	}
	if (c->jws.kid && auth == AUTH_JWK) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "this resource needs a jwk, not a kid");
		return -1;
	}
	if (!c->jws.kid && auth == AUTH_KID) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "this resource needs a kid, not a jwk");
		return -1;
	}
	if (c->jws.kid) {
		if (load_account(c))
			return -1;
	} else {
		c->key = c->jws.key;
		c->jws.key = NULL;
	}
	if (c->verifier ? ca_jws_verify_with(&c->jws, c->verifier, &problem, &e)
	                : ca_jws_verify(&c->jws, c->key, &problem, &e)) {
		ca_reply_problem(c->rs, 400, problem ? problem : "malformed", NULL, "%s", e.text);
		return -1;
	}
	/* Redeemed last: a request refused above leaves its nonce usable. */
	if (ca_nonce_redeem(c->svc->nonces, c->jws.nonce)) {
		ca_reply_problem(c->rs, 400, "badNonce", NULL, "unknown, old or used nonce");
		return -1;
	}
	if (c->jws.post_as_get)
		return 0;
	json_error_t je;
	c->payload = json_loadb((const char *)c->jws.payload, c->jws.payload_len,
	                        JSON_REJECT_DUPLICATES, &je);
	if (!c->payload || !json_is_object(c->payload)) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "the payload is not a JSON object");
		return -1;
	}
	return 0;
}

/* ---- routing ---- */

static int is_post(const struct ca_ctx *c)
{
	return strcmp(c->rq->method, "POST") == 0;
}

static int is_get(const struct ca_ctx *c)
{
	return strcmp(c->rq->method, "GET") == 0 || strcmp(c->rq->method, "HEAD") == 0;
}

static void not_allowed(struct ca_ctx *c, const char *allow)
{
	ca_header(c->rs, "Allow", allow);
	ca_reply_problem(c->rs, 405, "malformed", NULL, "use %s here", allow);
}

/* POST routes with a fixed path. */
static const struct fixed_route {
	const char *path;
	enum auth auth;
	void (*fn)(struct ca_ctx *c);
} fixed_routes[] = {
    {"/new-account", AUTH_JWK, ca_handle_new_account},
    {"/new-order", AUTH_KID, ca_handle_new_order},
    {"/new-authz", AUTH_KID, ca_handle_new_authz},
    {"/revoke-cert", AUTH_EITHER, ca_handle_revoke},
    {"/key-change", AUTH_KID, ca_handle_key_change},
};

/* POST routes /PREFIX/ID[SUFFIX]. */
static const struct id_route {
	const char *prefix, *suffix;
	void (*fn)(struct ca_ctx *c, const char *id);
} id_routes[] = {
    {"/acct/", "", ca_handle_account},
    {"/order/", "", ca_handle_order},
    {"/order/", "/finalize", ca_handle_finalize},
    {"/authz/", "", ca_handle_authz},
    {"/chall/", "", ca_handle_challenge},
    {"/cert/", "", ca_handle_cert},
};

/* /acct/ID/orders or /acct/ID/orders/PAGE (PAGE 1..99999). */
static int orders_path(const char *path, char id[CA_ID_LEN + 1], size_t *page)
{
	if (strncmp(path, "/acct/", 6) != 0 || strnlen(path, 6 + CA_ID_LEN) < 6 + CA_ID_LEN)
		return 0;
	const char *suffix = path + 6 + CA_ID_LEN, *p = suffix + 7;
	size_t n = 0, digits = 0;
	if (strncmp(suffix, "/orders", 7) != 0 || !ca_path_id(path, "/acct/", suffix, id))
		return 0;
	if (*p == '/')
		for (p++; *p >= '1' - (digits > 0) && *p <= '9' && digits < 5; p++, digits++)
			n = n * 10 + (size_t)(*p - '0');
	if (*p || (suffix[7] == '/' && digits == 0))
		return 0;
	*page = digits ? n : 1;
	return 1;
}

static void route(struct ca_ctx *c)
{
	const char *path = c->rq->path;
	char id[CA_ID_LEN + 1];
	size_t page;
	if (strcmp(path, "/dir") == 0 || strcmp(path, "/directory") == 0) {
		if (!is_get(c))
			return not_allowed(c, "GET");
		return directory(c);
	}
	if (strcmp(path, "/new-nonce") == 0) {
		if (!is_get(c))
			return not_allowed(c, "GET, HEAD");
		return new_nonce(c);
	}
	for (size_t i = 0; i < sizeof(fixed_routes) / sizeof(fixed_routes[0]); i++) {
		const struct fixed_route *r = &fixed_routes[i];
		if (strcmp(path, r->path) != 0)
			continue;
		if (!is_post(c))
			return not_allowed(c, "POST");
		if (verify_post(c, r->auth) == 0)
			r->fn(c);
		return;
	}
	if (orders_path(path, id, &page)) {
		if (!is_post(c))
			return not_allowed(c, "POST");
		if (verify_post(c, AUTH_KID) == 0)
			ca_handle_orders(c, id, page);
		return;
	}
	for (size_t i = 0; i < sizeof(id_routes) / sizeof(id_routes[0]); i++) {
		const struct id_route *r = &id_routes[i];
		if (!ca_path_id(path, r->prefix, r->suffix, id))
			continue;
		/* Reads are POST-as-GET (RFC 8555 6.3), certificates included. */
		if (!is_post(c))
			return not_allowed(c, "POST");
		if (verify_post(c, AUTH_KID) == 0)
			r->fn(c, id);
		return;
	}
	ca_reply_problem(c->rs, 404, "malformed", NULL, "no such resource");
}

/* What every answer carries: a fresh nonce (RFC 8555 6.5) and the directory link
 * (7.1) after the request's own links. */
static void finish_answer(struct ca_service *s, struct ca_response *rs, struct buf *links)
{
	char nonce[CA_NONCE_LEN + 1], index[CA_URL_MAX + 32];
	if (ca_nonce_issue(s->nonces, nonce) == 0)
		ca_header(rs, "Replay-Nonce", nonce);
	char dir[CA_URL_MAX];
	if (ca_url(s, dir, "/dir") == 0) {
		snprintf(index, sizeof(index), "<%s>;rel=\"index\"", dir);
		if (links->len)
			buf_printf(links, ", %s", index);
		ca_header(rs, "Link", links->len ? buf_str(links) : index);
	}
	if (rs->status == 0)
		rs->status = 500;
}

void ca_service_fail(struct ca_service *s, struct ca_response *rs, const char *why)
{
	struct buf links = {0};
	memset(rs, 0, sizeof(*rs));
	ca_reply_problem(rs, 500, "serverInternal", NULL, "%s", why);
	finish_answer(s, rs, &links);
	buf_free(&links);
}

void ca_service_process(struct ca_service *s, const struct ca_request *rq, struct ca_response *rs)
{
	struct acmera_errmsg e = {{0}};
	struct ca_ctx c = {.svc = s, .rq = rq, .rs = rs, .now = (int64_t)time(NULL)};
	memset(rs, 0, sizeof(*rs));
	c.st = ca_service_store(s, &e);
	if (!rq->method || !rq->path)
		ca_reply_problem(rs, 400, "malformed", NULL, "no method or path");
	else if (!c.st)
		ca_reply_store_error(rs, ACMERA_ERR_STORE, &e);
	else
		route(&c);
	finish_answer(s, rs, &c.links);
	buf_free(&c.links);
	ca_jws_free(&c.jws);
	ca_account_free(&c.acct);
	EVP_PKEY_free(c.key);
	ca_jws_verifier_free(c.verifier);
	json_decref(c.payload);
}
