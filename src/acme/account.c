/* ACME account: create, look up, roll over, deactivate. */
#include "acme/account.h"

#include "acme/jws.h"
#include "acme/resources.h"
#include "base/log.h"
#include "base/secret.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *directory_of(struct acme_client *c, struct acmera_errmsg *e)
{
	const struct acme_directory *d = acme_client_directory(c);
	if (!d) {
		acmera_fail(e, ACMERA_ERR_INVAL, "ACME directory not loaded");
		return NULL;
	}
	return d->new_account;
}

/* newAccount; with only_existing it only looks the key up (RFC 8555 7.3.1), and
 * *unknown (when not NULL) is set when the CA answers that no account has the key. */
static int new_account(struct acme_client *c, EVP_PKEY *key, const struct acme_account_opts *o,
                       int only_existing, char **kid, int *unknown, struct acmera_errmsg *e)
{
	const struct acme_directory *d = acme_client_directory(c);
	json_t *req = json_object();
	struct acme_response *r = NULL;
	char *payload = NULL;
	int rc = 0;
	if (!req)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (only_existing) {
		json_object_set_new(req, "onlyReturnExisting", json_true());
	} else {
		json_object_set_new(req, "termsOfServiceAgreed", json_true());
		if (o->contact && *o->contact) {
			json_t *list = json_array();
			json_array_append_new(list, json_string(o->contact));
			json_object_set_new(req, "contact", list);
		}
		/* One half of a binding is a mistake, whether or not this CA asks for one. */
		if (!o->eab_kid != !o->eab_hmac_key) {
			rc =
			    acmera_fail(e, ACMERA_ERR_CONFIG,
			                o->eab_kid ? "acme eab_kid is set but eab_hmac_key_file is "
			                             "not: external account binding needs both"
			                           : "acme eab_hmac_key_file is set but eab_kid is "
			                             "not: external account binding needs both");
			goto out;
		}
		if (o->eab_kid && o->eab_hmac_key) {
			json_t *eab = jws_eab(key, o->eab_kid, o->eab_hmac_key, d->new_account, e);
			if (!eab) {
				rc = ACMERA_ERR_INVAL;
				goto out;
			}
			json_object_set_new(req, "externalAccountBinding", eab);
		} else if (d->external_account_required) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG,
			                 "the CA requires external account binding: set acme "
			                 "eab_kid and eab_hmac_key_file");
			goto out;
		}
	}
	payload = json_dumps(req, JSON_COMPACT);
	if (!payload) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = acme_post_sync(c, d->new_account, payload, NULL, 1, &r, e);
	if (rc && unknown && r && r->problem && acme_problem_is(r->problem, "accountDoesNotExist"))
		*unknown = 1;
	if (rc)
		goto out;
	if (!r->location) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO, "newAccount answer has no Location");
		goto out;
	}
	*kid = strdup(r->location);
	if (!*kid)
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
out:
	acme_response_free(r);
	free(payload);
	json_decref(req);
	return rc;
}

/* A rollover cut short after its new key was stored: the CA holds the old key or
 * the new one. newAccount with onlyReturnExisting, signed with the new key, tells
 * which; the store then keeps that one alone. Fails, changing nothing, when the
 * CA's answer does not settle it (it cannot be reached, say). */
static int settle_rollover(struct acme_client *c, struct store *s, struct store_account *a,
                           struct acmera_errmsg *e)
{
	const struct acme_account_opts lookup = {0};
	EVP_PKEY *next = NULL;
	char *kid = NULL;
	int unknown = 0, rc = 0;
	const char *held = "old";
	if (a->kid) {
		rc = acme_key_from_pem(a->next_key_pem, &next, e);
		if (rc)
			return acmera_fail_wrap(e, rc,
			                        "the pending key of an interrupted rollover");
		acme_client_set_key(c, next, NULL);
		rc = new_account(c, next, &lookup, 1, &kid, &unknown, e);
		acme_client_set_key(c, NULL, NULL);
		EVP_PKEY_free(next);
	}
	if (!a->kid || (rc && unknown)) {
		secret_free(a->next_key_pem); /* it never reached the CA */
		a->next_key_pem = NULL;
		rc = 0;
	} else if (rc) {
		acmera_fail_wrap(e, rc, "an interrupted key rollover could not be settled");
	} else if (strcmp(kid, a->kid) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "the pending key of an interrupted rollover names another "
		                 "account, %s, not %s",
		                 kid, a->kid);
	} else {
		secret_free(a->key_pem); /* the CA took the new key */
		a->key_pem = a->next_key_pem;
		a->next_key_pem = NULL;
		held = "new";
	}
	free(kid);
	if (rc)
		return rc;
	rc = store_account_put(s, a, e);
	if (rc == 0)
		log_event(LOG_LVL_WARN, "acme.account", "action=rollover_settled kid=%s key=%s",
		          a->kid ? a->kid : "", held);
	return rc;
}

int acme_account_ensure(struct acme_client *c, struct store *s, const struct acme_account_opts *o,
                        EVP_PKEY **key, struct acmera_errmsg *e)
{
	struct store_account a = {0};
	char *kid = NULL;
	int rc;
	*key = NULL;
	if (!directory_of(c, e))
		return ACMERA_ERR_INVAL;
	rc = store_account_get(s, acme_client_directory_url(c), &a, e);
	if (rc == ACMERA_ERR_NOTFOUND) {
		if (!o->create)
			return acmera_fail(e, ACMERA_ERR_NOTFOUND,
			                   "no ACME account for %s in the store",
			                   acme_client_directory_url(c));
		int type = acme_key_type_parse(o->key_type ? o->key_type : "p256");
		if (type < 0)
			return acmera_fail(e, ACMERA_ERR_CONFIG, "unknown account key type '%s'",
			                   o->key_type);
		rc = acme_key_generate((enum acme_key_type)type, key, e);
		if (rc)
			return rc;
		a.directory = strdup(acme_client_directory_url(c));
		a.key_pem = acme_key_to_pem(*key);
		a.status = strdup("new");
		if (!a.directory || !a.key_pem || !a.status) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		/* The key is stored before the CA hears of it, so a crash cannot orphan it. */
		rc = store_account_put(s, &a, e);
		if (rc)
			goto out;
		log_event(LOG_LVL_INFO, "acme.account_key", "action=generated type=%s",
		          o->key_type ? o->key_type : "p256");
	} else if (rc) {
		return rc;
	} else {
		if (a.next_key_pem && !(a.status && strcmp(a.status, "deactivated") == 0)) {
			rc = settle_rollover(c, s, &a, e);
			if (rc)
				goto out;
		}
		rc = acme_key_from_pem(a.key_pem, key, e);
		if (rc)
			goto out;
	}
	if (a.status && strcmp(a.status, "deactivated") == 0) {
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "the ACME account %s is deactivated",
		                 a.kid ? a.kid : "");
		goto out;
	}
	if (a.kid) {
		acme_client_set_key(c, *key, a.kid);
		goto out;
	}
	acme_client_set_key(c, *key, NULL);
	rc = new_account(c, *key, o, !o->create, &kid, NULL, e);
	if (rc)
		goto out;
	free(a.kid);
	a.kid = kid;
	kid = NULL;
	free(a.status);
	a.status = strdup("valid");
	rc = store_account_put(s, &a, e);
	if (rc)
		goto out;
	acme_client_set_key(c, *key, a.kid);
	log_event(LOG_LVL_INFO, "acme.account", "action=registered kid=%s", a.kid);
out:
	if (rc && *key) {
		EVP_PKEY_free(*key);
		*key = NULL;
		acme_client_set_key(c, NULL, NULL);
	}
	free(kid);
	store_account_free(&a);
	return rc;
}

int acme_account_fetch(struct acme_client *c, char **json, struct acmera_errmsg *e)
{
	struct acme_response *r = NULL;
	if (!acme_client_kid(c))
		return acmera_fail(e, ACMERA_ERR_INVAL, "no account URL");
	int rc = acme_post_sync(c, acme_client_kid(c), NULL, NULL, 0, &r, e);
	if (rc == 0) {
		*json = strdup(buf_str(&r->body));
		if (!*json)
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	acme_response_free(r);
	return rc;
}

/* Points the CA back at old_key after the new key could not be stored: else the
 * account would be reachable only through a key that exists nowhere. */
static void rollover_undo(struct acme_client *c, EVP_PKEY *fresh, EVP_PKEY *old_key,
                          const char *kid, const char *url)
{
	struct acmera_errmsg e = {{0}};
	acme_client_set_key(c, fresh, kid);
	char *inner = jws_key_change_inner(old_key, fresh, kid, url, &e);
	int rc = inner ? acme_post_sync(c, url, inner, NULL, 0, NULL, &e) : ACMERA_ERR_NOMEM;
	free(inner);
	acme_client_set_key(c, old_key, kid);
	if (rc)
		log_event(LOG_LVL_ERROR, "acme.account", "action=rollover_undo kid=%s error=%s",
		          kid, log_qv(e.text));
	else
		log_event(LOG_LVL_WARN, "acme.account", "action=rollover_undo kid=%s", kid);
}

int acme_account_rollover(struct acme_client *c, struct store *s, const char *key_type,
                          EVP_PKEY **key, struct acmera_errmsg *e)
{
	const struct acme_directory *d = acme_client_directory(c);
	EVP_PKEY *fresh = NULL;
	char *inner = NULL;
	struct store_account a = {0};
	struct acme_response *r = NULL;
	int rc;
	if (!d || !d->key_change)
		return acmera_fail(e, ACMERA_ERR_PROTO, "the CA offers no keyChange");
	int type = acme_key_type_parse(key_type ? key_type : "p256");
	if (type < 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "unknown account key type '%s'", key_type);
	/* The stored account is read first: nothing may fail between the CA taking the
	 * new key and the store keeping it that can be checked before. */
	rc = store_account_get(s, acme_client_directory_url(c), &a, e);
	if (rc)
		return rc;
	if (!a.kid || !acme_client_kid(c) || strcmp(a.kid, acme_client_kid(c)) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "the stored account is not the client's");
		goto out;
	}
	rc = acme_key_generate((enum acme_key_type)type, &fresh, e);
	if (rc)
		goto out;
	inner = jws_key_change_inner(fresh, *key, a.kid, d->key_change, e);
	if (!inner) {
		rc = ACMERA_ERR_INVAL;
		goto out;
	}
	/* The new key is stored before the CA hears of it: a crash from here on leaves
	 * it pending, and the next start asks the CA which key it holds. */
	secret_free(a.next_key_pem);
	a.next_key_pem = acme_key_to_pem(fresh);
	if (!a.next_key_pem) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_account_put(s, &a, e);
	if (rc) {
		acmera_fail_wrap(e, rc, "key rollover: the new key could not be stored");
		goto out;
	}
	rc = acme_post_sync(c, d->key_change, inner, NULL, 0, &r, e);
	if (rc) {
		/* An answer with a problem document is a refusal: the CA keeps the old key.
		 * Without one, the outcome is unknown and the key stays pending. */
		if (r && r->problem) {
			secret_free(a.next_key_pem);
			a.next_key_pem = NULL;
			store_account_put(s, &a, NULL);
		}
		acmera_fail_wrap(e, rc, "key rollover");
		goto out;
	}
	secret_free(a.key_pem);
	a.key_pem = a.next_key_pem;
	a.next_key_pem = NULL;
	rc = store_account_put(s, &a, e);
	if (rc) {
		rollover_undo(c, fresh, *key, a.kid, d->key_change);
		acmera_fail_wrap(e, rc, "key rollover: the new key could not be stored");
		goto out;
	}
	/* a.kid, not acme_client_kid(c): set_key frees the client's own copy first. */
	acme_client_set_key(c, fresh, a.kid);
	EVP_PKEY_free(*key);
	*key = fresh;
	fresh = NULL;
	log_event(LOG_LVL_INFO, "acme.account", "action=rollover kid=%s type=%s", a.kid,
	          key_type ? key_type : "p256");
out:
	acme_response_free(r);
	EVP_PKEY_free(fresh);
	free(inner);
	store_account_free(&a);
	return rc;
}

int acme_account_deactivate(struct acme_client *c, struct store *s, struct acmera_errmsg *e)
{
	struct store_account a = {0};
	int rc =
	    acme_post_sync(c, acme_client_kid(c), "{\"status\":\"deactivated\"}", NULL, 0, NULL, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "account deactivation");
	rc = store_account_get(s, acme_client_directory_url(c), &a, e);
	if (rc)
		return rc;
	free(a.status);
	a.status = strdup("deactivated");
	rc = store_account_put(s, &a, e);
	log_event(LOG_LVL_INFO, "acme.account", "action=deactivated kid=%s", a.kid);
	store_account_free(&a);
	return rc;
}
