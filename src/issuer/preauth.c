/* Pre-authorization of parent domains (RFC 8555 7.4.1 newAuthz) and, where the
 * CA offers it, RFC 9444 subdomain authorization, so that orders for devices
 * below a parent need no challenge of their own.
 *
 * Each parent is a run of the engine like a job's, without a store job:
 * newAuthz (RUN_AUTHZ), its dns-01 record in the engine's next batch UPDATE
 * (RUN_WAIT_PUBLISH), the challenge (RUN_CHALLENGE), polls of the authorization
 * (RUN_POLL_READY), then the valid authorization is stored and the record goes
 * with the next deletion batch. Nothing here blocks the loop. */
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
#define AUTHZ_POLL_FIRST_MS 500
#define AUTHZ_WAIT_MAX_MS 2000

void preauth_end(struct job_run *r, int rc, const char *why)
{
	struct engine *g = r->eng;
	if (r->state == RUN_ENDED)
		return;
	if (rc)
		log_event(LOG_LVL_WARN, "acme.preauthorize", "domain=%s error=%s", r->job.names,
		          log_qv(why));
	if (r->preauth_blocking) {
		/* Failed or not, the jobs go on: per name when no parent covers them. */
		r->preauth_blocking = 0;
		g->preauth_blocking--;
	}
	engine_queue_delete(g, r);
	r->state = RUN_ENDED;
}

static void authz_valid(struct job_run *r, const struct acme_authz *a)
{
	struct engine *g = r->eng;
	struct acmera_errmsg e = {{0}};
	struct store_authz sa = {
	    .directory = (char *)acme_client_directory_url(g->acme),
	    .domain = r->job.names,
	    .url = r->authz_url,
	    .status = a->status,
	    .subdomains = a->subdomain_auth_allowed,
	    .expires = a->expires,
	};
	if (store_authz_put(g->store, &sa, &e)) {
		preauth_end(r, ACMERA_ERR_STORE, e.text);
		return;
	}
	log_event(LOG_LVL_INFO, "acme.authz", "domain=%s status=valid subdomains=%s", r->job.names,
	          a->subdomain_auth_allowed ? "yes" : "no");
	preauth_end(r, 0, NULL);
}

/* Parses an authorization answer and checks it is for our parent: the CA may
 * not steer our DNS records to another name. */
static int parse_authz(struct job_run *r, struct acme_response *resp, struct acme_authz *a,
                       struct acmera_errmsg *e)
{
	int rc = acme_authz_parse(buf_str(&resp->body), resp->body.len, a, e);
	if (rc == 0 && strcasecmp(a->identifier.value, r->job.names) != 0)
		rc = acmera_fail(e, ACMERA_ERR_PROTO, "the CA answered with an authorization of %s",
		                 a->identifier.value);
	return rc;
}

/* The start of each answer's callback: 1 when the run ended meanwhile or the
 * request failed (then the response is freed and the run ended with why). */
static int answer_failed(struct job_run *r, int rc, struct acme_response *resp,
                         const struct acmera_errmsg *e, const char *why)
{
	if (run_back(r, resp))
		return 1;
	if (!rc)
		return 0;
	acme_response_free(resp);
	preauth_end(r, rc, e ? e->text : why);
	return 1;
}

static void poll_authz(void *arg);

static void on_poll(void *arg, int rc, struct acme_response *resp, const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	struct acmera_errmsg err = {{0}};
	struct acme_authz a = {0};
	if (answer_failed(r, rc, resp, e, "authorization"))
		return;
	int64_t retry_after = resp->retry_after;
	rc = parse_authz(r, resp, &a, &err);
	acme_response_free(resp);
	if (rc) {
		preauth_end(r, rc, err.text);
	} else if (strcmp(a.status, "valid") == 0) {
		authz_valid(r, &a);
	} else if (strcmp(a.status, "pending") != 0) {
		acmera_fail(&err, ACMERA_ERR_REFUSED, "authorization is %s", a.status);
		preauth_end(r, ACMERA_ERR_REFUSED, err.text);
	} else if (r->polls >= AUTHZ_POLLS) {
		preauth_end(r, ACMERA_ERR_TIMEOUT, "authorization still pending: gave up polling");
	} else {
		/* Bounded whatever Retry-After says. */
		int64_t ms = retry_after > 0 ? retry_after * 1000 : 1000;
		run_after(r, ms < AUTHZ_WAIT_MAX_MS ? ms : AUTHZ_WAIT_MAX_MS, poll_authz);
	}
	acme_authz_free(&a);
}

static void poll_authz(void *arg)
{
	struct job_run *r = arg;
	if (run_back(r, NULL))
		return;
	r->polls++;
	run_post(r, r->authz_url, NULL, NULL, on_poll, r);
}

static void on_challenge(void *arg, int rc, struct acme_response *resp,
                         const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	if (answer_failed(r, rc, resp, e, "challenge"))
		return;
	acme_response_free(resp);
	r->state = RUN_POLL_READY;
	run_after(r, AUTHZ_POLL_FIRST_MS, poll_authz);
}

void preauth_published(struct job_run *r)
{
	r->state = RUN_CHALLENGE;
	log_event(LOG_LVL_INFO, "acme.challenge", "domain=%s record=%s", r->job.names,
	          r->chals[0].rec.name);
	run_post(r, r->chals[0].url, "{}", NULL, on_challenge, r);
}

/* A pending authorization: its dns-01 record joins the next batch UPDATE. */
static int queue_dns01(struct job_run *r, const struct acme_authz *a, struct acmera_errmsg *e)
{
	struct engine *g = r->eng;
	const struct acme_challenge *ch = acme_authz_challenge(a, "dns-01");
	if (!ch)
		return acmera_fail(e, ACMERA_ERR_PROTO, "no dns-01 challenge for %s", r->job.names);
	r->chals = calloc(1, sizeof(*r->chals));
	if (!r->chals)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	r->n_chals = 1;
	struct run_challenge *c = &r->chals[0];
	c->run = r;
	int rc = publisher_zone_of(g->pub, r->job.names, c->rec.zone, sizeof(c->rec.zone), e);
	if (rc)
		return rc;
	char *value = acme_dns01_value(ch->token, acme_client_thumbprint(g->acme));
	c->url = strdup(ch->url);
	if (!value || !c->url) {
		free(value);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	snprintf(c->rec.name, sizeof(c->rec.name), "_acme-challenge.%s", r->job.names);
	snprintf(c->rec.value, sizeof(c->rec.value), "%s", value);
	free(value);
	r->state = RUN_WAIT_PUBLISH;
	return engine_queue_publish(g, r);
}

static void on_new_authz(void *arg, int rc, struct acme_response *resp,
                         const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	struct acmera_errmsg err = {{0}};
	struct acme_authz a = {0};
	if (answer_failed(r, rc, resp, e, "newAuthz"))
		return;
	if (!resp->location)
		rc = acmera_fail(&err, ACMERA_ERR_PROTO, "newAuthz answer has no Location");
	else if (!(r->authz_url = strdup(resp->location)))
		rc = acmera_fail(&err, ACMERA_ERR_NOMEM, "out of memory");
	else
		rc = parse_authz(r, resp, &a, &err);
	acme_response_free(resp);
	if (rc == 0 && strcmp(a.status, "valid") == 0) {
		authz_valid(r, &a);
	} else if (rc == 0 && strcmp(a.status, "pending") == 0) {
		log_event(LOG_LVL_INFO, "acme.authz", "domain=%s status=pending challenge=dns-01",
		          r->job.names);
		rc = queue_dns01(r, &a, &err);
	} else if (rc == 0) {
		rc = acmera_fail(&err, ACMERA_ERR_REFUSED, "authorization is %s", a.status);
	}
	if (rc)
		preauth_end(r, rc, err.text);
	acme_authz_free(&a);
}

/* Is a pre-authorization of domain under way already? */
static int preauth_running(const struct engine *g, const char *domain)
{
	for (const struct job_run *r = g->runs; r; r = r->next)
		if (r->preauth && r->state != RUN_ENDED && strcasecmp(r->job.names, domain) == 0)
			return 1;
	return 0;
}

/* 1 when the store holds domain's own authorization valid for margin seconds
 * more (and allowing subdomains when the CA offers them). */
static int authz_held(struct engine *g, const char *domain, int64_t margin)
{
	struct store_authz a = {0};
	int held = store_authz_find_covering(g->store, acme_client_directory_url(g->acme), domain,
	                                     (int64_t)time(NULL), margin, &a, NULL) == 0 &&
	           strcasecmp(a.domain, domain) == 0 && (a.subdomains || !g->subdomains);
	store_authz_free(&a);
	return held;
}

static void preauthorize(struct engine *g, const char *domain, int blocking)
{
	struct job_run *r = calloc(1, sizeof(*r));
	json_t *req = json_pack("{s:{s:s,s:s}}", "identifier", "type", "dns", "value", domain);
	/* RFC 9444 4.2: the request for subdomains rides in the identifier object. */
	if (req && g->subdomains)
		json_object_set_new(json_object_get(req, "identifier"), "subdomainAuthAllowed",
		                    json_true());
	char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!r || !payload || !(r->job.names = strdup(domain))) {
		log_event(LOG_LVL_WARN, "acme.preauthorize", "domain=%s error=\"out of memory\"",
		          domain);
		if (r)
			free(r->job.names);
		free(r);
		free(payload);
		return;
	}
	r->eng = g;
	r->preauth = 1;
	r->state = RUN_AUTHZ;
	r->preauth_blocking = blocking;
	g->preauth_blocking += blocking;
	r->next = g->runs;
	g->runs = r;
	g->n_runs++;
	log_event(LOG_LVL_INFO, "acme.new_authz", "domain=%s subdomains=%s", domain,
	          g->subdomains ? "requested" : "no");
	run_post(r, acme_client_directory(g->acme)->new_authz, payload, NULL, on_new_authz, r);
	free(payload);
}

void preauth_start(struct engine *g)
{
	const struct config *cfg = g->cfg;
	int first = g->preauth_checked == 0;
	if (cfg->acme.n_preauthorize == 0 || !g->have_new_authz) {
		if (first)
			log_event(LOG_LVL_INFO, "issuer.mode",
			          "authorization=per-name-dns-01 reason=\"%s\"",
			          cfg->acme.n_preauthorize == 0 ? "no parent domain configured"
			                                        : "the CA offers no newAuthz");
		return;
	}
	if (first)
		log_event(LOG_LVL_INFO, "issuer.mode", "authorization=%s",
		          g->subdomains ? "pre-authorized-parent-rfc9444" : "pre-authorized-names");
	for (size_t i = 0; i < cfg->acme.n_preauthorize; i++) {
		const char *domain = cfg->acme.preauthorize[i];
		if (authz_held(g, domain, AUTHZ_VALID_MARGIN_S) || preauth_running(g, domain))
			continue;
		/* Renewed early while the old one still serves orders: claims go on. */
		preauthorize(g, domain, !authz_held(g, domain, 60));
	}
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
