/* Orders (RFC 8555 7.1.3, 7.4) with RFC 9444 ancestorDomain: an order whose every
 * identifier is covered by a valid authorization of the account is ready at once. */
#include "ca/internal.h"
#include "ca/names.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ca_order_status(const struct ca_order *o, int64_t now)
{
	if ((strcmp(o->status, "pending") == 0 || strcmp(o->status, "ready") == 0) &&
	    o->expires <= now)
		return "invalid";
	return o->status;
}

void ca_reply_order(struct ca_ctx *c, int status, const struct ca_order *o)
{
	char url[CA_URL_MAX], expires[32];
	const char *st = ca_order_status(o, c->now);
	json_t *j = NULL, *ids = json_loads(o->identifiers, 0, NULL), *authzs = json_array();
	if (!ids || !authzs || ca_url(c->svc, url, "/order/%s/finalize", o->id))
		goto fail;
	ca_time_str(o->expires, expires);
	j = json_pack("{s:s, s:s, s:O, s:O, s:s}", "status", st, "expires", expires, "identifiers",
	              ids, "authorizations", authzs, "finalize", url);
	if (!j)
		goto fail;
	for (size_t i = 0; i < o->n_authzs; i++)
		if (ca_url(c->svc, url, "/authz/%s", o->authzs[i]) ||
		    json_array_append_new(authzs, json_string(url)))
			goto fail;
	if (o->cert[0] &&
	    (ca_url(c->svc, url, "/cert/%s", o->cert) || ca_json_set_str(j, "certificate", url)))
		goto fail;
	if (o->error) {
		json_t *err = json_loads(o->error, 0, NULL);
		if (err)
			json_object_set_new(j, "error", err);
	} else if (strcmp(st, "invalid") == 0 && strcmp(o->status, "invalid") != 0) {
		json_t *err = json_pack("{s:s, s:s, s:i}", "type", CA_PROBLEM_PREFIX "malformed",
		                        "detail", "the order expired", "status", 403);
		if (err)
			json_object_set_new(j, "error", err);
	}
	if (ca_url(c->svc, url, "/order/%s", o->id))
		goto fail;
	ca_header(c->rs, "Location", url);
	if (strcmp(st, "pending") == 0 || strcmp(st, "processing") == 0)
		ca_header(c->rs, "Retry-After", CA_RETRY_AFTER);
	json_decref(ids);
	json_decref(authzs);
	ca_reply_json(c->rs, status, j);
	return;
fail:
	json_decref(ids);
	json_decref(authzs);
	json_decref(j);
	ca_reply_problem(c->rs, 500, "serverInternal", NULL, "cannot show the order");
}

void ca_handle_order(struct ca_ctx *c, const char *id)
{
	struct acmera_errmsg e = {{0}};
	struct ca_order o;
	int rc = ca_store_order_get(c->st, id, &o, &e);
	if (rc == ACMERA_ERR_NOTFOUND || (rc == 0 && strcmp(o.account, c->acct.id) != 0)) {
		ca_reply_problem(c->rs, 404, "malformed", NULL, "no such order");
		goto out;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return;
	}
	if (c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "an order is read by POST-as-GET");
		goto out;
	}
	ca_reply_order(c, 200, &o);
out:
	ca_order_free(&o);
}

/* ---- newOrder ---- */

/* One identifier as asked: the name (with "*." for a wildcard) and the authorization
 * it needs when none covers it. */
struct wanted {
	char name[CA_DNS_NAME_MAX + 1];
	int wildcard;
	char ancestor[CA_DNS_NAME_MAX + 1]; /* "" unless ancestorDomain was given */
};

static int add_subproblem(json_t *subs, const char *type, const char *name, const char *detail)
{
	char full[96];
	snprintf(full, sizeof(full), "%s%s", CA_PROBLEM_PREFIX, type);
	json_t *p = json_pack("{s:s, s:s, s:i, s:{s:s, s:s}}", "type", full, "detail", detail,
	                      "status", 400, "identifier", "type", "dns", "value", name);
	return !p || json_array_append_new(subs, p);
}

/* Checks one identifier object into w; returns 0, or 1 after adding a subproblem,
 * or -1 when the request is malformed as a whole (answered). */
static int read_identifier(struct ca_ctx *c, json_t *v, struct wanted *w, json_t *subs)
{
	struct acmera_errmsg e = {{0}};
	const char *type = json_string_value(json_object_get(v, "type"));
	const char *value = json_string_value(json_object_get(v, "value"));
	json_t *anc = json_object_get(v, "ancestorDomain");
	memset(w, 0, sizeof(*w));
	if (!json_is_object(v) || !type || !value || (anc && !json_is_string(anc))) {
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "each identifier is {\"type\", \"value\"[, \"ancestorDomain\"]}");
		return -1;
	}
	const char *shown = strnlen(value, 300) < 300 ? value : "(too long)";
	if (strcmp(type, "dns") != 0)
		return add_subproblem(subs, "unsupportedIdentifier", shown,
		                      "only dns identifiers are supported")
		           ? -1
		           : 1;
	if (ca_name_normalize(value, 1, w->name, &w->wildcard, &e))
		return add_subproblem(subs, "rejectedIdentifier", shown, e.text) ? -1 : 1;
	if (!ca_name_allowed(w->name, c->svc->domains, c->svc->n_domains))
		return add_subproblem(subs, "rejectedIdentifier", w->name,
		                      "this CA does not issue for this name")
		           ? -1
		           : 1;
	if (!anc)
		return 0;
	/* RFC 9444 4.3: a strict ancestor that the account can prove control of. */
	if (ca_name_normalize(json_string_value(anc), 0, w->ancestor, NULL, &e) ||
	    !ca_name_is_ancestor(w->ancestor, w->name) ||
	    !ca_name_allowed(w->ancestor, c->svc->domains, c->svc->n_domains))
		return add_subproblem(subs, "rejectedIdentifier", w->name,
		                      "ancestorDomain is not an allowed ancestor of the value")
		           ? -1
		           : 1;
	return 0;
}

/* Reads and checks the identifiers into ws (deduplicated); 0, or answered. */
static int read_identifiers(struct ca_ctx *c, struct wanted *ws, size_t *n)
{
	json_t *arr = json_object_get(c->payload, "identifiers"), *v, *subs = json_array();
	size_t i;
	int bad = 0;
	*n = 0;
	if (!subs) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		return -1;
	}
	if (!json_is_array(arr) || json_array_size(arr) < 1 ||
	    json_array_size(arr) > CA_ORDER_MAX_IDS) {
		json_decref(subs);
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "identifiers is an array of 1 to %d identifiers",
		                 CA_ORDER_MAX_IDS);
		return -1;
	}
	if (json_object_get(c->payload, "notBefore") || json_object_get(c->payload, "notAfter")) {
		json_decref(subs);
		ca_reply_problem(c->rs, 400, "malformed", NULL,
		                 "notBefore and notAfter are not supported");
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		int rc = read_identifier(c, v, &ws[*n], subs);
		if (rc < 0) {
			json_decref(subs);
			if (!c->rs->body)
				ca_reply_problem(c->rs, 500, "serverInternal", NULL,
				                 "out of memory");
			return -1;
		}
		if (rc > 0) {
			bad++;
			continue;
		}
		int dup = 0;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = strcmp(ws[k].name, ws[*n].name) == 0;
		if (!dup)
			(*n)++;
	}
	if (bad) {
		ca_reply_problem(c->rs, 400, bad > 1 ? "compound" : "rejectedIdentifier", subs,
		                 "%d identifier(s) refused", bad);
		return -1;
	}
	json_decref(subs);
	return 0;
}

/* The authorization identifier w needs, covered or reused or new, into id. 1 when it
 * is valid already, 0 when pending, -1 when answered with a problem. */
static int authz_for(struct ca_ctx *c, const struct wanted *w, int64_t expires,
                     char id[CA_ID_LEN + 1])
{
	struct acmera_errmsg e = {{0}};
	struct ca_authz a;
	int rc = ca_store_authz_covering(c->st, c->acct.id, w->name, c->now, &a, &e);
	if (rc == 0) {
		memcpy(id, a.id, CA_ID_LEN + 1);
		return 1;
	}
	if (rc != ACMERA_ERR_NOTFOUND) {
		ca_reply_store_error(c->rs, rc, &e);
		return -1;
	}
	const char *name = w->ancestor[0] ? w->ancestor : w->wildcard ? w->name + 2 : w->name;
	int wildcard = w->ancestor[0] ? 0 : w->wildcard, subdomains = w->ancestor[0] != 0;
	rc = ca_store_authz_pending(c->st, c->acct.id, name, wildcard, subdomains, c->now, &a, &e);
	if (rc == ACMERA_ERR_NOTFOUND) {
		if (ca_authz_create(c, name, wildcard, subdomains, expires, &a))
			return -1;
		rc = 0;
	}
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		return -1;
	}
	memcpy(id, a.id, CA_ID_LEN + 1);
	return 0;
}

void ca_handle_new_order(struct ca_ctx *c)
{
	struct acmera_errmsg e = {{0}};
	struct wanted *ws = NULL;
	struct ca_order o = {0};
	size_t n = 0, valid = 0;
	json_t *ids = NULL;
	if (!c->payload) {
		ca_reply_problem(c->rs, 400, "malformed", NULL, "newOrder needs a payload");
		return;
	}
	ws = calloc(CA_ORDER_MAX_IDS, sizeof(*ws));
	o.authzs = calloc(CA_ORDER_MAX_IDS, sizeof(*o.authzs));
	ids = json_array();
	if (!ws || !o.authzs || !ids) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		goto out;
	}
	if (read_identifiers(c, ws, &n))
		goto out;
	o.expires = c->now + c->svc->cfg->ca.order_lifetime;
	/* Everything is checked: from here on state may change. */
	for (size_t i = 0; i < n; i++) {
		int rc = authz_for(c, &ws[i], o.expires, o.authzs[i]);
		if (rc < 0)
			goto out;
		valid += (size_t)rc;
		json_t *id = json_pack("{s:s, s:s}", "type", "dns", "value", ws[i].name);
		if (!id || json_array_append_new(ids, id)) {
			ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
			goto out;
		}
	}
	/* Identifiers under one ancestor share its authorization: listed once. */
	for (size_t i = 0; i < n; i++) {
		int dup = 0;
		for (size_t k = 0; k < o.n_authzs && !dup; k++)
			dup = strcmp(o.authzs[k], o.authzs[i]) == 0;
		if (!dup)
			memmove(o.authzs[o.n_authzs++], o.authzs[i], CA_ID_LEN + 1);
	}
	o.identifiers = json_dumps(ids, JSON_COMPACT);
	if (!o.identifiers || ca_random_id(o.id)) {
		ca_reply_problem(c->rs, 500, "serverInternal", NULL, "out of memory");
		goto out;
	}
	snprintf(o.account, sizeof(o.account), "%s", c->acct.id);
	snprintf(o.status, sizeof(o.status), "%s", valid == n ? "ready" : "pending");
	o.created = c->now;
	int rc = ca_store_order_add(c->st, &o, &e);
	if (rc) {
		ca_reply_store_error(c->rs, rc, &e);
		goto out;
	}
	log_event(LOG_LVL_INFO, "ca.order", "account=%s order=%s names=%zu status=%s first=%s",
	          c->acct.id, o.id, n, o.status, ws[0].name);
	ca_reply_order(c, 201, &o);
out:
	json_decref(ids);
	ca_order_free(&o);
	free(ws);
}
