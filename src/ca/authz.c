/* Authorizations and challenges (RFC 8555 7.1.4, 7.4.1, 7.5; RFC 9444 subdomain
 * authorizations). */
#include "ca/internal.h"
#include "ca/names.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ca_authz_status(const struct ca_authz *a, int64_t now)
{
	if ((strcmp(a->status, "pending") == 0 || strcmp(a->status, "valid") == 0) &&
	    a->expires <= now)
		return "expired";
	return a->status;
}

/* ---- rendering ---- */

static json_t *challenge_json(struct ca_ctx *c, const struct ca_challenge *ch)
{
	char url[CA_URL_MAX], when[32];
	json_t *j;
	if (ca_url(c->svc, url, "/chall/%s", ch->id))
		return NULL;
	j = json_pack("{s:s, s:s, s:s, s:s}", "type", ch->type, "url", url, "status", ch->status,
	              "token", ch->token);
	if (j && ch->validated > 0) {
		ca_time_str(ch->validated, when);
		ca_json_set_str(j, "validated", when);
	}
	if (j && ch->error) {
		json_t *err = json_loads(ch->error, 0, NULL);
		if (err)
			json_object_set_new(j, "error", err);
	}
	return j;
}

static json_t *authz_json(struct ca_ctx *c, const struct ca_authz *a)
{
	struct acmera_errmsg e = {{0}};
	struct ca_challenge ch[CA_MAX_CHALLENGES];
	size_t n = 0;
	char expires[32];
	json_t *j = NULL, *arr = NULL;
	if (ca_store_challenges_of(c->st, a->id, ch, &n, &e))
		return NULL;
	ca_time_str(a->expires, expires);
	j = json_pack("{s:s, s:s, s:{s:s, s:s}}", "status", ca_authz_status(a, c->now), "expires",
	              expires, "identifier", "type", "dns", "value", a->name);
	arr = json_array();
	if (!j || !arr)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		json_t *cj = challenge_json(c, &ch[i]);
		if (!cj || json_array_append_new(arr, cj))
			goto fail;
	}
	if (json_object_set(j, "challenges", arr) ||
	    (a->wildcard && json_object_set_new(j, "wildcard", json_true())) ||
	    (a->subdomains && json_object_set_new(j, "subdomainAuthAllowed", json_true())))
		goto fail;
	json_decref(arr);
	for (size_t i = 0; i < n; i++)
		ca_challenge_free(&ch[i]);
	return j;
fail:
	json_decref(arr);
	json_decref(j);
	for (size_t i = 0; i < n; i++)
		ca_challenge_free(&ch[i]);
	return NULL;
}

static void reply_authz(struct ca_ctx *c, int status, const struct ca_authz *a, int location)
{
	char url[CA_URL_MAX];
	json_t *j = authz_json(c, a);
	if (!j || ca_url(c->svc, url, "/authz/%s", a->id)) {
		json_decref(j);
		ca_reply_problem(c->rs, 500, "serverInternal", NULL,
		                 "cannot show the authorization");
		return;
	}
	if (location)
		ca_header(c->rs, "Location", url);
	if (strcmp(ca_authz_status(a, c->now), "pending") == 0)
		ca_header(c->rs, "Retry-After", CA_RETRY_AFTER);
	ca_reply_json(c->rs, status, j);
}

/* ---- creation ---- */

static int make_challenge(struct ca_challenge *ch, const char *authz, const char *type)
{
	memset(ch, 0, sizeof(*ch));
	snprintf(ch->authz, sizeof(ch->authz), "%s", authz);
	snprintf(ch->type, sizeof(ch->type), "%s", type);
	snprintf(ch->status, sizeof(ch->status), "pending");
	return ca_random_id(ch->id) || ca_random_token(ch->token);
}

int ca_authz_create(struct ca_ctx *c, const char *name, int wildcard, int subdomains,
                    int64_t expires, struct ca_authz *out)
{
	struct acmera_errmsg e = {{0}};
	struct ca_challenge ch[CA_MAX_CHALLENGES];
	size_t n = 1;
	memset(out, 0, sizeof(*out));
	snprintf(out->account, sizeof(out->account), "%s", c->acct.id);
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->status, sizeof(out->status), "pending");
	out->wildcard = wildcard;
	out->subdomains = subdomains;
	out->expires = expires;
	out->created = c->now;
	/* http-01 proves one host only: not a wildcard (RFC 8555 7.1.3) nor a subtree. */
	int rc = ca_random_id(out->id) || make_challenge(&ch[0], out->id, "dns-01");
	if (!rc && !wildcard && !subdomains) {
		rc = make_challenge(&ch[1], out->id, "http-01");
		n = 2;
	}
	if (rc) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "no randomness");
		return -1;
	}
	rc = ca_store_authz_add(c->st, out, ch, n, &e);
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return -1;
	}
	return 0;
}

/* ---- newAuthz (pre-authorization) ---- */

void ca_handle_new_authz(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	struct ca_authz a;
	char name[CA_DNS_NAME_MAX + 1];
	json_t *id = c->payload ? json_object_get(c->payload, "identifier") : NULL;
	json_t *sub = json_object_get(id, "subdomainAuthAllowed");
	const char *type = json_string_value(json_object_get(id, "type"));
	const char *value = json_string_value(json_object_get(id, "value"));
	if (!json_is_object(id) || !type || !value || (sub && !json_is_boolean(sub))) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "newAuthz needs {\"identifier\": {\"type\", \"value\"}}");
		return;
	}
	if (strcmp(type, "dns") != 0) {
		ca_reply_problem(c->rs, 400, "unsupportedIdentifier", NULL,
		                 "only dns identifiers are supported");
		return;
	}
	/* RFC 8555 7.4.1: no wildcards in pre-authorization. */
	if (ca_name_normalize(value, 0, name, NULL, &e)) {
		ca_reply_problem(c->rs, 400, "rejectedIdentifier", NULL, "%s", e.text);
		return;
	}
	if (!ca_name_allowed(name, c->svc->domains, c->svc->n_domains)) {
		ca_reply_problem(c->rs, 400, "rejectedIdentifier", NULL,
		                 "this CA does not issue for %s", name);
		return;
	}
	int subdomains = json_is_true(sub);
	/* The same authorization again while it is valid or pending: no new one. */
	int rc = ca_store_authz_covering(c->st, c->acct.id, name, c->now, &a, &e);
	if (rc == 0 && strcmp(a.name, name) == 0 && a.subdomains >= subdomains && !a.wildcard) {
		reply_authz(c, 200, &a, 1);
		return;
	}
	rc = ca_store_authz_pending(c->st, c->acct.id, name, 0, subdomains, c->now, &a, &e);
	if (rc == 0) {
		reply_authz(c, 200, &a, 1);
		return;
	}
	if (rc != ACMERA_ERR_NOTFOUND) {
		ca_reply_store_error(c->rs, rc, &e);
		return;
	}
	if (ca_authz_create(c, name, 0, subdomains, c->now + c->svc->cfg->ca.order_lifetime, &a))
		return;
	log_event(LOG_LVL_INFO, "ca.authz", "account=%s authz=%s name=%s subdomains=%d", c->acct.id,
	          a.id, name, subdomains);
	reply_authz(c, 201, &a, 1);
}

/* ---- the authorization resource ---- */

/* The authorization id of the signing account; 0, or answered. */
static int own_authz(struct ca_ctx *c, const char *id, struct ca_authz *a)
{
	struct acmera_errmsg e = {{0}};
	int rc = ca_store_authz_get(c->st, id, a, &e);
	if (rc == ACMERA_ERR_NOTFOUND || (rc == 0 && strcmp(a->account, c->acct.id) != 0)) {
		ca_reply_problem(c->rs, 404, "malformed", NULL, "no such authorization");
		return -1;
	}
	if (rc)
		ca_reply_store_error(c->rs, rc, &e);
	return rc;
}

void ca_handle_authz(struct ca_ctx *c, const char *id)
{
	struct acmera_errmsg e = {{0}};
	struct ca_authz a;
	if (own_authz(c, id, &a))
		return;
	if (!c->payload) {
		reply_authz(c, 200, &a, 0);
		return;
	}
	json_t *status = json_object_get(c->payload, "status");
	if (!json_is_string(status) || strcmp(json_string_value(status), "deactivated") != 0) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "an authorization's status can only become deactivated");
		return;
	}
	int rc = ca_store_authz_deactivate(c->st, id, &e);
	if (rc == ACMERA_ERR_AGAIN) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "the authorization is %s",
		                 ca_authz_status(&a, c->now));
		return;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return;
	}
	log_event(LOG_LVL_INFO, "ca.authz", "account=%s authz=%s status=deactivated", c->acct.id,
	          id);
	snprintf(a.status, sizeof(a.status), "deactivated");
	reply_authz(c, 200, &a, 0);
}

/* ---- challenges ---- */

static void reply_challenge(struct ca_ctx *c, const struct ca_challenge *ch)
{
	char up[CA_URL_MAX];
	json_t *j = challenge_json(c, ch);
	if (!j || ca_url(c->svc, up, "/authz/%s", ch->authz)) {
		json_decref(j);
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		return;
	}
	ca_link(c, up, "up");
	if (strcmp(ch->status, "pending") == 0 || strcmp(ch->status, "processing") == 0)
		ca_header(c->rs, "Retry-After", CA_RETRY_AFTER);
	ca_reply_json(c->rs, 200, j);
}

void ca_handle_challenge(struct ca_ctx *c, const char *id)
{
	struct acmera_errmsg e = {{0}};
	struct ca_challenge ch = {0};
	struct ca_authz a;
	int rc = ca_store_challenge_get(c->st, id, &ch, &e);
	if (rc == ACMERA_ERR_NOTFOUND) {
		ca_reply_problem(c->rs, 404, "malformed", NULL, "no such challenge");
		return;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return;
	}
	if (own_authz(c, ch.authz, &a))
		goto out;
	/* POST-as-GET reads; any object (RFC 8555 7.5.1: "{}") starts the validation. */
	if (!c->payload || strcmp(ch.status, "pending") != 0) {
		reply_challenge(c, &ch);
		goto out;
	}
	if (strcmp(ca_authz_status(&a, c->now), "pending") != 0) {
		ca_reply_problem(c->rs, 403, "unauthorized", NULL, "the authorization is %s",
		                 ca_authz_status(&a, c->now));
		goto out;
	}
	rc = ca_store_challenge_begin(c->st, id, c->now, &e);
	if (rc == 0)
		ca_validate_when_committed(c, id);
	if (rc && rc != ACMERA_ERR_AGAIN) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	log_event(LOG_LVL_INFO, "ca.challenge", "account=%s challenge=%s type=%s name=%s",
	          c->acct.id, id, ch.type, a.name);
	ca_challenge_free(&ch);
	rc = ca_store_challenge_get(c->st, id, &ch, &e);
	if (rc)
		ca_reply_store_error(c->rs, rc, &e);
	else
		reply_challenge(c, &ch);
out:
	ca_challenge_free(&ch);
}
