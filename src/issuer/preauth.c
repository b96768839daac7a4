/* Pre-authorization of parent domains (RFC 8555 7.4.1 newAuthz) and, where the
 * CA offers it, RFC 9444 subdomain authorization, so that orders for devices
 * below a parent need no challenge of their own. */
#include "issuer/engine.h"

#include "acme/jws.h"
#include "base/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AUTHZ_VALID_MARGIN_S 86400 /* renew a parent authorization a day early */
#define AUTHZ_POLLS 60
#define AUTHZ_WAIT_MAX_MS 2000

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int fetch_authz(struct engine *g, const char *url, struct acme_authz *a,
                       int64_t *retry_after, struct acmera_errmsg *e)
{
	struct acme_response *r = NULL;
	int rc = acme_post_sync(g->acme, url, NULL, NULL, 0, &r, e);
	if (rc == 0)
		rc = acme_authz_parse(buf_str(&r->body), r->body.len, a, e);
	if (retry_after)
		*retry_after = r ? r->retry_after : -1;
	acme_response_free(r);
	return rc;
}

/* Publishes the dns-01 record, answers the challenge, waits for the verdict and
 * removes the record again. */
static int solve_dns01(struct engine *g, const char *url, struct acme_authz *a,
                       struct acmera_errmsg *e)
{
	const struct acme_challenge *ch = acme_authz_challenge(a, "dns-01");
	struct pub_record rec = {0};
	int rc;
	if (!ch)
		return acmera_fail(e, ACMERA_ERR_PROTO, "no dns-01 challenge for %s",
		                   a->identifier.value);
	char *value = acme_dns01_value(ch->token, acme_client_thumbprint(g->acme));
	if (!value)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	snprintf(rec.name, sizeof(rec.name), "_acme-challenge.%s", a->identifier.value);
	snprintf(rec.value, sizeof(rec.value), "%s", value);
	free(value);
	char *chal_url = strdup(ch->url);
	if (!chal_url)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	rc = publisher_add(g->pub, &rec, 1, e);
	if (rc)
		goto out;
	rc = acme_post_sync(g->acme, chal_url, "{}", NULL, 0, NULL, e);
	if (rc)
		goto out;
	log_event(LOG_LVL_INFO, "acme.challenge", "record=%s", rec.name);
	/* Bounded: at most AUTHZ_POLLS polls, each wait at most AUTHZ_WAIT_MAX_MS
	 * whatever Retry-After says, and none once the issuer is asked to stop. */
	int64_t wait = 500;
	for (int i = 0; i < AUTHZ_POLLS && !engine_stopping(g); i++) {
		int64_t ra = -1;
		acme_authz_free(a);
		memset(a, 0, sizeof(*a));
		sleep_ms(wait);
		rc = fetch_authz(g, url, a, &ra, e);
		if (rc)
			goto out;
		if (strcmp(a->status, "pending") != 0)
			break;
		wait = ra > 0 ? ra * 1000 : 1000;
		if (wait > AUTHZ_WAIT_MAX_MS)
			wait = AUTHZ_WAIT_MAX_MS;
	}
out:
	if (rec.id > 0) {
		struct acmera_errmsg de = {{0}};
		if (publisher_delete(g->pub, &rec, 1, &de))
			log_event(LOG_LVL_WARN, "dns.delete_later", "record=%s error=%s", rec.name,
			          log_qv(de.text));
	}
	free(chal_url);
	return rc;
}

static int preauthorize(struct engine *g, const char *domain, struct acmera_errmsg *e)
{
	const struct acme_directory *d = acme_client_directory(g->acme);
	struct acme_response *r = NULL;
	struct acme_authz a = {0};
	char *url = NULL;
	json_t *req = json_pack("{s:{s:s,s:s}}", "identifier", "type", "dns", "value", domain);
	/* RFC 9444 4.2: the request for subdomains rides in the identifier object. */
	if (req && g->subdomains)
		json_object_set_new(json_object_get(req, "identifier"), "subdomainAuthAllowed",
		                    json_true());
	char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!payload)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	log_event(LOG_LVL_INFO, "acme.new_authz", "domain=%s subdomains=%s", domain,
	          g->subdomains ? "requested" : "no");
	int rc = acme_post_sync(g->acme, d->new_authz, payload, NULL, 0, &r, e);
	free(payload);
	if (rc)
		goto out;
	if (!r->location) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO, "newAuthz answer has no Location");
		goto out;
	}
	url = strdup(r->location);
	rc = url ? acme_authz_parse(buf_str(&r->body), r->body.len, &a, e)
	         : acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (rc)
		goto out;
	if (strcmp(a.status, "pending") == 0) {
		rc = solve_dns01(g, url, &a, e);
		if (rc)
			goto out;
	}
	if (strcmp(a.status, "valid") != 0) {
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "authorization of %s is %s", domain,
		                 a.status);
		goto out;
	}
	struct store_authz sa = {
	    .directory = (char *)acme_client_directory_url(g->acme),
	    .domain = (char *)domain,
	    .url = url,
	    .status = a.status,
	    .subdomains = a.subdomain_auth_allowed,
	    .expires = a.expires,
	};
	rc = store_authz_put(g->store, &sa, e);
	if (rc == 0)
		log_event(LOG_LVL_INFO, "acme.authz", "domain=%s status=valid subdomains=%s",
		          domain, a.subdomain_auth_allowed ? "yes" : "no");
out:
	acme_authz_free(&a);
	acme_response_free(r);
	free(url);
	return rc;
}

int preauth_ensure(struct engine *g, struct acmera_errmsg *e)
{
	const struct config *cfg = g->cfg;
	int first_rc = 0;
	if (cfg->acme.n_preauthorize == 0) {
		log_event(LOG_LVL_INFO, "issuer.mode",
		          "authorization=per-name-dns-01 "
		          "reason=\"no parent domain configured\"");
		return 0;
	}
	if (!g->have_new_authz) {
		log_event(LOG_LVL_INFO, "issuer.mode",
		          "authorization=per-name-dns-01 "
		          "reason=\"the CA offers no newAuthz\"");
		return 0;
	}
	log_event(LOG_LVL_INFO, "issuer.mode", "authorization=%s",
	          g->subdomains ? "pre-authorized-parent-rfc9444" : "pre-authorized-names");
	for (size_t i = 0; i < cfg->acme.n_preauthorize && !engine_stopping(g); i++) {
		const char *domain = cfg->acme.preauthorize[i];
		struct store_authz a = {0};
		int rc =
		    store_authz_find_covering(g->store, acme_client_directory_url(g->acme), domain,
		                              (int64_t)time(NULL), AUTHZ_VALID_MARGIN_S, &a, NULL);
		int fresh = rc == 0 && strcasecmp(a.domain, domain) == 0 &&
		            (a.subdomains || !g->subdomains);
		store_authz_free(&a);
		if (fresh)
			continue;
		struct acmera_errmsg de = {{0}};
		rc = preauthorize(g, domain, &de);
		if (rc && !first_rc) {
			first_rc = rc;
			acmera_fail(e, rc, "pre-authorization of %s: %s", domain, de.text);
		}
	}
	return first_rc;
}

const char *preauth_ancestor_for(struct engine *g, const char *name, char *buf, size_t len)
{
	struct store_authz a = {0};
	const char *found = NULL;
	if (!g->subdomains)
		return NULL;
	if (store_authz_find_covering(g->store, acme_client_directory_url(g->acme), name,
	                              (int64_t)time(NULL), 60, &a, NULL) == 0 &&
	    a.subdomains && strcasecmp(a.domain, name) != 0) {
		snprintf(buf, len, "%s", a.domain);
		found = buf;
	}
	store_authz_free(&a);
	return found;
}
