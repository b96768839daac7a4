/* Accounts (RFC 8555 7.3): newAccount with external account binding, update,
 * deactivation, key change, the orders list. */
#include "ca/internal.h"

#include "acme/jws.h"
#include "base/b64.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- answers ---- */

static void reply_account(struct ca_ctx *c, int status, const struct ca_account *a)
{
	char url[CA_URL_MAX], orders[CA_URL_MAX];
	json_t *j = NULL, *contact = NULL;
	if (ca_url(c->svc, url, "/acct/%s", a->id) ||
	    ca_url(c->svc, orders, "/acct/%s/orders", a->id))
		goto fail;
	j = json_object();
	if (!j || ca_json_set_str(j, "status", a->status))
		goto fail;
	contact = a->contact ? json_loads(a->contact, 0, NULL) : json_array();
	if (!json_is_array(contact) || json_object_set(j, "contact", contact) ||
	    ca_json_set_str(j, "orders", orders))
		goto fail;
	if (a->eab_kid) {
		json_t *eab = json_pack("{s:s}", "kid", a->eab_kid);
		if (!eab || json_object_set_new(j, "externalAccountBinding", eab))
			goto fail;
	}
	json_decref(contact);
	ca_header(c->rs, "Location", url);
	ca_reply_json(c->rs, status, j);
	return;
fail:
	json_decref(contact);
	json_decref(j);
	ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
}

/* ---- contact ---- */

/* "mailto:" one address, no header fields (RFC 8555 7.3: others are refused). */
static int contact_ok(const char *v, const char **why)
{
	size_t n = strlen(v);
	if (n > 7 + 254 || strncmp(v, "mailto:", 7) != 0) {
		*why = "unsupportedContact";
		return 0;
	}
	const char *addr = v + 7, *at = strchr(addr, '@');
	if (!at || at == addr || !at[1] || strchr(at + 1, '@') || strpbrk(addr, "?,;<> \t\r\n")) {
		*why = "invalidContact";
		return 0;
	}
	for (const char *p = addr; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			*why = "invalidContact";
			return 0;
		}
	return 1;
}

/* The payload's contact array as compact JSON text in *out (NULL when absent). Answers
 * and returns nonzero when refused. */
static int read_contact(struct ca_ctx *c, char **out)
{
	json_t *arr = json_object_get(c->payload, "contact");
	const char *why = NULL;
	size_t i;
	json_t *v;
	*out = NULL;
	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > CA_MAX_CONTACTS) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "contact is an array of at most %d mailto: URLs", CA_MAX_CONTACTS);
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || !contact_ok(json_string_value(v), &why)) {
			ca_reply_problem(c->rs, 400, why ? why : "malformed", NULL,
			                 "contact %zu: only one mailto: address each", i);
			return -1;
		}
	}
	*out = json_dumps(arr, JSON_COMPACT);
	if (!*out) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- newAccount ---- */

/* RFC 8555 7.3.4: the kid and MAC of the externalAccountBinding; 0 and *kid (heap)
 * when it is right, else answered. */
static int check_eab(struct ca_ctx *c, json_t *eab, char **kid)
{
	struct acmera_errmsg e = {{0}};
	const uint8_t *key;
	size_t key_len = 0;
	*kid = NULL;
	if (ca_eab_verify(eab, c->jws.jwk, c->jws.url, NULL, 0, kid, &e)) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "externalAccountBinding: %s",
		                 e.text);
		return -1;
	}
	key = c->svc->eab ? ca_eab_key(c->svc->eab, *kid, &key_len) : NULL;
	free(*kid);
	*kid = NULL;
	if (!key) {
		ca_reply_problem(c->rs, 401, "unauthorized", NULL,
		                 "externalAccountBinding: unknown key id");
		return -1;
	}
	if (ca_eab_verify(eab, c->jws.jwk, c->jws.url, key, key_len, kid, &e)) {
		ca_reply_problem(c->rs, 401, "unauthorized", NULL, "externalAccountBinding: %s",
		                 e.text);
		return -1;
	}
	return 0;
}

/* An account exists for the key: answered 200 (RFC 8555 7.3.1). */
static void existing(struct ca_ctx *c, struct ca_account *a)
{
	snprintf(c->rs->account, sizeof(c->rs->account), "%s", a->id);
	if (strcmp(a->status, "valid") != 0) {
		ca_reply_problem(c->rs, 401, "unauthorized", NULL, "the account is %s", a->status);
		return;
	}
	reply_account(c, 200, a);
}

void ca_handle_new_account(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	struct ca_account a = {0};
	char *thumb = NULL, *contact = NULL, *kid = NULL, *jwk = NULL;
	int rc;
	if (!c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "newAccount needs a payload");
		return;
	}
	thumb = jws_thumbprint(c->key);
	if (!thumb || strlen(thumb) != CA_THUMB_LEN) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "cannot hash the key");
		goto out;
	}
	rc = ca_store_account_by_thumbprint(c->st, thumb, &a, &e);
	if (rc == 0) {
		existing(c, &a);
		goto out;
	}
	if (rc != ACMERA_ERR_NOTFOUND) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	if (json_is_true(json_object_get(c->payload, "onlyReturnExisting"))) {
		ca_reply_problem(c->rs, 400, "accountDoesNotExist", NULL,
		                 "no account for this key");
		goto out;
	}
	if (c->svc->cfg->ca.terms_of_service &&
	    !json_is_true(json_object_get(c->payload, "termsOfServiceAgreed"))) {
		ca_reply_problem(c->rs, 403, "userActionRequired", NULL,
		                 "agree to the terms of service (termsOfServiceAgreed)");
		goto out;
	}
	if (read_contact(c, &contact))
		goto out;
	json_t *eab = json_object_get(c->payload, "externalAccountBinding");
	if (!eab && c->svc->cfg->ca.eab_required) {
		ca_reply_problem(c->rs, 403, "externalAccountRequired", NULL,
		                 "this CA needs an externalAccountBinding");
		goto out;
	}
	if (eab && check_eab(c, eab, &kid))
		goto out;
	jwk = json_dumps(c->jws.jwk, JSON_COMPACT | JSON_SORT_KEYS);
	if (!jwk || ca_random_id(a.id)) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		goto out;
	}
	a.jwk = jwk;
	snprintf(a.thumbprint, sizeof(a.thumbprint), "%s", thumb);
	snprintf(a.status, sizeof(a.status), "valid");
	a.contact = contact;
	a.eab_kid = kid;
	a.created = c->now;
	rc = ca_store_account_add(c->st, &a, &e);
	a.jwk = a.contact = a.eab_kid = NULL; /* still owned by the locals */
	if (rc == ACMERA_ERR_REFUSED) {
		/* Another request made it first, or the EAB kid is taken. */
		if (ca_store_account_by_thumbprint(c->st, thumb, &a, &e) == 0) {
			existing(c, &a);
			goto out;
		}
		ca_reply_problem(c->rs, 401, "unauthorized", NULL,
		                 "the externalAccountBinding key id already has an account");
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	snprintf(c->rs->account, sizeof(c->rs->account), "%s", a.id);
	a.contact = contact;
	a.eab_kid = kid;
	reply_account(c, 201, &a);
	a.contact = a.eab_kid = NULL;
out:
	ca_account_free(&a);
	free(thumb);
	free(contact);
	free(kid);
	free(jwk);
}

/* ---- the account resource ---- */

/* The account URL of the request must be the signer's own. */
static int own_account(struct ca_ctx *c, const char *id)
{
	if (strcmp(id, c->acct.id) == 0)
		return 1;
	ca_reply_problem(c->rs, 403, "unauthorized", NULL, "not the signing account");
	return 0;
}

void ca_handle_account(struct ca_ctx *c, const char *id)
{
	struct acmera_errmsg e = {{0}};
	char *contact = NULL;
	if (!own_account(c, id))
		return;
	if (!c->payload) {
		reply_account(c, 200, &c->acct);
		return;
	}
	json_t *status = json_object_get(c->payload, "status");
	const char *st = json_string_value(status), *new_status = NULL;
	/* RFC 8555 7.3.2 ignores a status update but deactivation: "valid" (what the account
	 * is, load_account saw to it) comes from clients that send back the account object,
	 * as certbot's update_registration does. Other values are refused as mistakes. */
	if (status && (!st || strcmp(st, "valid") != 0)) {
		if (!st || strcmp(st, "deactivated") != 0) {
			ca_reply_problem(c->rs, 400, "malformed", NULL,
			                 "an account's status can only become deactivated");
			return;
		}
		new_status = "deactivated";
	}
	if (read_contact(c, &contact))
		return;
	int rc = ca_store_account_update(c->st, id, contact, new_status, &e);
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	log_event(LOG_LVL_INFO, "ca.account", "account=%s change=%s", id,
	          new_status ? "deactivated" : "contact");
	ca_account_free(&c->acct);
	rc = ca_store_account_get(c->st, id, &c->acct, &e);
	if (rc)
		ca_reply_store_error(c->rs, rc, &e);
	else
		reply_account(c, 200, &c->acct);
out:
	free(contact);
}

/* ---- orders list ---- */

void ca_handle_orders(struct ca_ctx *c, const char *id, size_t page)
{
	struct acmera_errmsg e = {{0}};
	char(*ids)[CA_ID_LEN + 1] = NULL;
	char url[CA_URL_MAX];
	size_t n = 0;
	int more = 0;
	json_t *j = NULL, *arr = NULL;
	if (!own_account(c, id))
		return;
	ids = calloc(CA_ORDERS_PAGE, sizeof(*ids));
	j = json_object();
	arr = json_array();
	if (!ids || !j || !arr || json_object_set(j, "orders", arr)) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		goto out;
	}
	int rc = ca_store_order_list(c->st, id, (page - 1) * CA_ORDERS_PAGE, CA_ORDERS_PAGE, ids,
	                             &n, &more, &e);
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (ca_url(c->svc, url, "/order/%s", ids[i]) ||
		    json_array_append_new(arr, json_string(url))) {
			ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
			goto out;
		}
	if (more && ca_url(c->svc, url, "/acct/%s/orders/%zu", id, page + 1) == 0)
		ca_link(c, url, "next");
	ca_reply_json(c->rs, 200, j);
	j = NULL;
out:
	json_decref(arr);
	json_decref(j);
	free(ids);
}

/* ---- keyChange ---- */

/* The jwk of the inner JWS (already checked by ca_key_change_verify) as sorted compact
 * JSON text (heap), or NULL. */
static char *inner_jwk(const struct ca_jws *outer)
{
	json_t *inner = json_loadb((const char *)outer->payload, outer->payload_len, 0, NULL);
	const char *prot = json_string_value(json_object_get(inner, "protected"));
	uint8_t *hdr = NULL;
	size_t hdr_len = 0;
	char *text = NULL;
	if (prot && b64url_decode(prot, strlen(prot), &hdr, &hdr_len) == 0) {
		json_t *h = json_loadb((const char *)hdr, hdr_len, 0, NULL);
		json_t *jwk = json_object_get(h, "jwk");
		if (json_is_object(jwk))
			text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(h);
	}
	free(hdr);
	json_decref(inner);
	return text;
}

/* 409 with the Location of the account that has the key (RFC 8555 7.3.5). */
static void conflict(struct ca_ctx *c, const char *thumb)
{
	struct ca_account other = {0};
	char url[CA_URL_MAX];
	if (ca_store_account_by_thumbprint(c->st, thumb, &other, NULL) == 0 &&
	    ca_url(c->svc, url, "/acct/%s", other.id) == 0)
		ca_header(c->rs, "Location", url);
	ca_account_free(&other);
	ca_reply_problem(c->rs, 409, "conflict", NULL, "the new key already has an account");
}

void ca_handle_key_change(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	struct ca_account other = {0};
	const char *problem = NULL;
	EVP_PKEY *new_key = NULL;
	char *thumb = NULL, *jwk_text = NULL, acct_url[CA_URL_MAX];
	int rc;
	if (!c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "keyChange needs a payload");
		return;
	}
	if (ca_url(c->svc, acct_url, "/acct/%s", c->acct.id) ||
	    ca_key_change_verify((const char *)c->jws.payload, c->jws.payload_len, c->jws.url,
	                         acct_url, c->key, &new_key, &problem, &e)) {
		ca_reply_problem(c->rs, 400, problem ? problem : "malformed", NULL, "%s", e.text);
		goto out;
	}
	thumb = jws_thumbprint(new_key);
	jwk_text = inner_jwk(&c->jws);
	if (!thumb || strlen(thumb) != CA_THUMB_LEN || !jwk_text) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "cannot hash the new key");
		goto out;
	}
	rc = ca_store_account_by_thumbprint(c->st, thumb, &other, &e);
	if (rc == 0) {
		conflict(c, thumb);
		goto out;
	}
	if (rc == ACMERA_ERR_NOTFOUND)
		rc = ca_store_account_set_key(c->st, c->acct.id, jwk_text, thumb, &e);
	if (rc == ACMERA_ERR_REFUSED) { /* taken meanwhile */
		conflict(c, thumb);
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	log_event(LOG_LVL_INFO, "ca.account", "account=%s change=key", c->acct.id);
	free(c->acct.jwk);
	c->acct.jwk = jwk_text;
	jwk_text = NULL;
	snprintf(c->acct.thumbprint, sizeof(c->acct.thumbprint), "%s", thumb);
	reply_account(c, 200, &c->acct);
out:
	ca_account_free(&other);
	free(jwk_text);
	free(thumb);
	EVP_PKEY_free(new_key);
}
