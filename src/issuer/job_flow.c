/* One job's way through ACME: order, authorizations, challenges, finalize with the
 * device's own CSR, certificate download. Each step is a callback of the ACME
 * client; the engine batches the DNS records between RUN_WAIT_PUBLISH and
 * run_published().
 *
 * Lifetime: every request and timer that will call back with a run counts in
 * r->pending (run_post, run_after); each callback starts with run_back(). A run
 * is freed only once it has ended and nothing is pending. */
#include "issuer/engine.h"

#include "acme/jws.h"
#include "base/b64.h"
#include "base/log.h"
#include "issuer/chain_check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POLL_FIRST_MS 1000 /* CAs validate within a second or so */
#define ISSUE_FIRST_MS 500 /* and sign a certificate faster still */
#define POLL_GIVE_UP_S 300 /* an order still pending after this is retried */
#define PKCS7_FIRST "application/pkcs7-mime, application/pem-certificate-chain;q=0.9"

/* Problems that will not go away by asking again (RFC 8555 6.7). */
static const char *const permanent_problems[] = {"rejectedIdentifier",
                                                 "badCSR",
                                                 "caa",
                                                 "unsupportedIdentifier",
                                                 "badSignatureAlgorithm",
                                                 "badPublicKey",
                                                 "unsupportedContact",
                                                 "invalidContact",
                                                 "userActionRequired",
                                                 NULL};

static int is_permanent_type(const char *type)
{
	static const char prefix[] = "urn:ietf:params:acme:error:";
	if (!type || strncmp(type, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	for (int i = 0; permanent_problems[i]; i++)
		if (strcmp(type + sizeof(prefix) - 1, permanent_problems[i]) == 0)
			return 1;
	return 0;
}

/* A problem is permanent when its type, or every subproblem's, is. */
static int problem_permanent(const struct acme_problem *p)
{
	if (!p)
		return 0;
	if (is_permanent_type(p->type))
		return 1;
	if (p->n_sub == 0)
		return 0;
	for (size_t i = 0; i < p->n_sub; i++)
		if (!is_permanent_type(p->sub[i].type))
			return 0;
	return 1;
}

static int64_t backoff_seconds(int attempts, int poll_max)
{
	int64_t s = 2;
	for (int i = 0; i < attempts && s < 3600; i++)
		s *= 2;
	int64_t cap = poll_max > 0 ? (int64_t)poll_max * 10 : 300;
	return s < cap ? s : cap;
}

void run_free(struct job_run *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_chals; i++)
		free(r->chals[i].url);
	free(r->chals);
	if (r->fallback) {
		issued_chain_free(r->fallback);
		free(r->fallback);
	}
	for (size_t i = 0; i < r->n_alts; i++)
		free(r->alts[i]);
	free(r->alts);
	free(r->order_url);
	free(r->finalize_url);
	free(r->authz_url);
	store_job_free(&r->job);
	free(r);
}

void run_post(struct job_run *r, const char *url, const char *payload, const char *accept,
              acme_cb cb, void *arg)
{
	r->pending++;
	acme_post(r->eng->acme, url, payload, accept, cb, arg);
}

void run_after(struct job_run *r, int64_t ms, acme_timer_cb cb)
{
	r->pending++;
	acme_client_after(r->eng->acme, ms, cb, r);
}

/* Called first by every callback: 1 when the run has ended meanwhile. */
int run_back(struct job_run *r, struct acme_response *resp)
{
	r->pending--;
	if (r->state != RUN_ENDED)
		return 0;
	acme_response_free(resp);
	return 1;
}

static void run_end(struct job_run *r)
{
	engine_queue_delete(r->eng, r);
	r->state = RUN_ENDED;
}

/* A new order may replace the recorded one only while ours was never finalized:
 * a finalized order may carry a certificate, and a second finalize would make
 * another. */
static int may_replace_order(const struct job_run *r)
{
	return !r->finalized;
}

void run_retry(struct job_run *r, int rc, const char *why, int new_order, int64_t retry_after)
{
	struct engine *g = r->eng;
	struct acmera_errmsg e = {{0}};
	if (r->state == RUN_ENDED)
		return;
	if (r->preauth) {
		preauth_end(r, rc ? rc : ACMERA_ERR_PROTO, why);
		return;
	}
	int attempts = r->job.attempts + 1;
	int permanent = rc == ACMERA_ERR_INVAL;
	/* An unreachable CA or DNS server is waited out, however long it takes; only
	 * answers that keep refusing use up the attempts. */
	int transient = rc == ACMERA_ERR_AGAIN || rc == ACMERA_ERR_TIMEOUT;
	if (!permanent && !transient && attempts >= g->cfg->issuer.max_attempts)
		permanent = 1;
	if (new_order || permanent)
		store_job_set_order(g->store, r->job.id, g->owner, NULL, &e);
	if (permanent) {
		store_job_fail(g->store, r->job.id, g->owner, why, &e);
		g->stats->failed++;
		log_event(LOG_LVL_ERROR, "job.failed", "job=%lld names=%s attempts=%d error=%s",
		          (long long)r->job.id, r->job.names, attempts, log_qv(why));
	} else {
		int64_t wait = retry_after >= 0
		                   ? retry_after
		                   : backoff_seconds(r->job.attempts, g->cfg->acme.poll_max);
		store_job_defer(g->store, r->job.id, g->owner, (int64_t)time(NULL) + wait, why, &e);
		g->stats->deferred++;
		log_event(LOG_LVL_WARN, "job.deferred",
		          "job=%lld names=%s attempt=%d retry_in=%llds error=%s",
		          (long long)r->job.id, r->job.names, attempts, (long long)wait,
		          log_qv(why));
	}
	run_end(r);
}

/* Common error path of every ACME callback: classifies the CA's answer. */
static void run_acme_error(struct job_run *r, int rc, struct acme_response *resp,
                           const struct acmera_errmsg *e, const char *step)
{
	char why[700];
	int new_order = 0;
	const struct acme_problem *p = resp ? resp->problem : NULL;
	snprintf(why, sizeof(why), "%s: %s", step, e ? e->text : "");
	/* A CA that forgot the order (restarted, expired) needs a new one; there is
	 * nothing left to resume. */
	if (resp && resp->status == 404)
		new_order = 1;
	if (p && acme_problem_is(p, "accountDoesNotExist")) {
		/* A CA that lost its state (a test CA restarted) forgets accounts too. */
		r->eng->account_lost = 1;
		new_order = 1;
	}
	if (problem_permanent(p))
		rc = ACMERA_ERR_INVAL;
	else if (p && acme_problem_is(p, "unauthorized") && r->state == RUN_ORDER && !r->order_url)
		rc = ACMERA_ERR_INVAL; /* the account may not order at all (deactivated) */
	else if (rc == ACMERA_ERR_INVAL)
		rc = ACMERA_ERR_PROTO; /* our own parse trouble is not the device's fault */
	int64_t retry_after = resp ? resp->retry_after : -1;
	acme_response_free(resp);
	run_retry(r, rc, why, new_order, retry_after);
}

static void on_order(void *arg, int rc, struct acme_response *resp, const struct acmera_errmsg *e);
static void poll_order(void *arg);
static void finalize(struct job_run *r);

static void schedule_poll(struct job_run *r, int64_t retry_after)
{
	int64_t ms;
	if (retry_after >= 0)
		ms = retry_after * 1000;
	else if (r->polls == 0)
		ms = r->state == RUN_POLL_VALID ? ISSUE_FIRST_MS : POLL_FIRST_MS;
	else
		ms = backoff_seconds(r->polls - 1, r->eng->cfg->acme.poll_max) * 500;
	int64_t cap = (int64_t)r->eng->cfg->acme.poll_max * 1000;
	if (ms > cap)
		ms = cap;
	if (ms < 100)
		ms = 100;
	r->polls++;
	run_after(r, ms, poll_order);
}

static void poll_order(void *arg)
{
	struct job_run *r = arg;
	if (run_back(r, NULL))
		return;
	if (time(NULL) - r->poll_started > POLL_GIVE_UP_S) {
		/* Back to the store; a finalized order is resumed, not replaced. */
		run_retry(r, ACMERA_ERR_TIMEOUT, "order still not done: gave up polling for now",
		          may_replace_order(r), -1);
		return;
	}
	run_post(r, r->order_url, NULL, NULL, on_order, r);
}

/* ---- download ---- */

static void store_chain(struct job_run *r, struct issued_chain *chain)
{
	struct engine *g = r->eng;
	struct acmera_errmsg err = {{0}};
	int rc = store_job_complete(g->store, r->job.id, g->owner, chain->pem, chain->not_after,
	                            chain->issuer, &err);
	if (rc) {
		run_retry(r, rc, err.text, 0, -1);
		return;
	}
	g->stats->issued++;
	log_event(LOG_LVL_INFO, "acme.certificate",
	          "job=%lld names=%s not_after=%lld issuer=\"%s\"", (long long)r->job.id,
	          r->job.names, (long long)chain->not_after, chain->issuer);
	run_end(r);
}

/* Keeps the alternate URLs of the first answer to try them in turn. */
static int remember_alternates(struct job_run *r, struct acme_response *resp)
{
	r->alts = calloc(resp->n_alternates, sizeof(*r->alts));
	if (!r->alts)
		return ACMERA_ERR_NOMEM;
	for (size_t i = 0; i < resp->n_alternates; i++) {
		r->alts[i] = strdup(resp->alternates[i]);
		if (!r->alts[i])
			return ACMERA_ERR_NOMEM;
		r->n_alts++;
	}
	return 0;
}

static void on_certificate(void *arg, int rc, struct acme_response *resp,
                           const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	struct engine *g = r->eng;
	struct acmera_errmsg err = {{0}};
	struct issued_chain chain = {0};
	const char *want = g->cfg->acme.alternate_chain;
	if (run_back(r, resp))
		return;
	if (rc && r->fallback) {
		/* An alternate that cannot be fetched leaves the default chain, which is good. */
		log_event(LOG_LVL_WARN, "acme.alternate_chain", "job=%lld error=%s using=default",
		          (long long)r->job.id, log_qv(e ? e->text : ""));
		acme_response_free(resp);
		store_chain(r, r->fallback);
		return;
	}
	if (rc) {
		run_acme_error(r, rc, resp, e, "certificate download");
		return;
	}
	rc = issued_chain_from_response(resp, r->job.csr_der, r->job.csr_der_len, &chain, &err);
	if (rc == 0 && !r->fallback && want && *want && resp->n_alternates > 0 &&
	    !issued_chain_matches(&chain, want))
		rc = remember_alternates(r, resp)
		         ? acmera_fail(&err, ACMERA_ERR_NOMEM, "out of memory")
		         : 0;
	acme_response_free(resp);
	if (rc == ACMERA_ERR_INVAL) {
		/* Not the certificate of this CSR (a CA that reused another job's order for
		 * the same names): never stored; a new order of our own is needed. */
		issued_chain_free(&chain);
		run_retry(r, ACMERA_ERR_PROTO, err.text, 1, -1);
		return;
	}
	if (rc) {
		issued_chain_free(&chain);
		run_retry(r, rc, err.text, 0, -1);
		return;
	}
	int matches = !want || !*want || issued_chain_matches(&chain, want);
	if (!matches && r->alt_next < r->n_alts) {
		if (!r->fallback) {
			r->fallback = malloc(sizeof(*r->fallback));
			if (!r->fallback) {
				issued_chain_free(&chain);
				run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
				return;
			}
			*r->fallback = chain;
		} else {
			issued_chain_free(&chain);
		}
		const char *next = r->alts[r->alt_next++];
		log_event(LOG_LVL_INFO, "acme.alternate_chain", "job=%lld want=\"%s\" url=%s",
		          (long long)r->job.id, want, next);
		run_post(r, next, NULL, PKCS7_FIRST, on_certificate, r);
		return;
	}
	if (!matches && r->fallback) {
		log_event(LOG_LVL_WARN, "acme.alternate_chain",
		          "job=%lld want=\"%s\" result=none_matched using=default",
		          (long long)r->job.id, want);
		issued_chain_free(&chain);
		store_chain(r, r->fallback);
		return;
	}
	store_chain(r, &chain);
	issued_chain_free(&chain);
}

/* ---- finalize ---- */

static void finalize(struct job_run *r)
{
	char *csr = b64url_encode(r->job.csr_der, r->job.csr_der_len);
	json_t *j = json_pack("{s:s}", "csr", csr ? csr : "");
	char *payload = j ? json_dumps(j, JSON_COMPACT) : NULL;
	free(csr);
	json_decref(j);
	if (!payload) {
		run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
		return;
	}
	r->state = RUN_FINALIZE;
	log_event(LOG_LVL_INFO, "acme.finalize", "job=%lld order=%s", (long long)r->job.id,
	          r->order_url);
	run_post(r, r->finalize_url, payload, NULL, on_order, r);
	free(payload);
}

static void finalize_timer(void *arg)
{
	struct job_run *r = arg;
	if (run_back(r, NULL))
		return;
	finalize(r);
}

/* ---- authorizations and challenges ---- */

static void authz_settled(struct job_run *r)
{
	if (r->state != RUN_AUTHZ || r->outstanding > 0)
		return;
	int pending = 0;
	for (size_t i = 0; i < r->n_chals; i++)
		pending += r->chals[i].url != NULL;
	if (pending == 0) {
		/* All authorizations valid already: the order is (or becomes) ready. */
		r->state = RUN_POLL_READY;
		r->poll_started = time(NULL);
		r->pending++; /* poll_order balances it like a timer */
		poll_order(r);
		return;
	}
	r->state = RUN_WAIT_PUBLISH;
	if (engine_queue_publish(r->eng, r))
		run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
}

/* 1 when ident is one of the job's names (a wildcard name is authorized through its
 * base name): the CA's authorizations may not steer our DNS records elsewhere. */
static int identifier_of_job(const struct job_run *r, const char *ident)
{
	const char *p = r->job.names ? r->job.names : "";
	size_t n = strlen(ident);
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *name = p;
		if (len > 2 && name[0] == '*' && name[1] == '.') {
			name += 2;
			len -= 2;
		}
		if (len == n && strncasecmp(name, ident, n) == 0)
			return 1;
		p += end ? (size_t)(end - p) + 1 : strlen(p);
	}
	return 0;
}

static void on_authz(void *arg, int rc, struct acme_response *resp, const struct acmera_errmsg *e)
{
	struct run_challenge *slot = arg;
	struct job_run *r = slot->run;
	struct acmera_errmsg err = {{0}};
	struct acme_authz a = {0};
	r->outstanding--;
	if (run_back(r, resp))
		return;
	if (rc) {
		run_acme_error(r, rc, resp, e, "authorization");
		return;
	}
	rc = acme_authz_parse(buf_str(&resp->body), resp->body.len, &a, &err);
	acme_response_free(resp);
	if (rc) {
		run_retry(r, ACMERA_ERR_PROTO, err.text, may_replace_order(r), -1);
		return;
	}
	if (!identifier_of_job(r, a.identifier.value)) {
		run_retry(r, ACMERA_ERR_PROTO,
		          "the CA sent an authorization for a name not in the CSR",
		          may_replace_order(r), -1);
		acme_authz_free(&a);
		return;
	}
	if (strcmp(a.status, "valid") == 0) {
		log_event(LOG_LVL_INFO, "acme.authz", "job=%lld identifier=%s status=valid",
		          (long long)r->job.id, a.identifier.value);
	} else if (strcmp(a.status, "pending") == 0) {
		const struct acme_challenge *ch = acme_authz_challenge(&a, "dns-01");
		if (!ch) {
			run_retry(r, ACMERA_ERR_INVAL, "the CA offers no dns-01 challenge", 1, -1);
			acme_authz_free(&a);
			return;
		}
		/* The zone is settled per job, so that one bad name fails only its own job
		 * and never the batch UPDATE of others. Asking DNS for it blocks: not with
		 * the store locked. */
		if (!publisher_zone_known(r->eng->pub, a.identifier.value))
			engine_commit(r->eng);
		rc = publisher_zone_of(r->eng->pub, a.identifier.value, slot->rec.zone,
		                       sizeof(slot->rec.zone), &err);
		char *value =
		    rc ? NULL : acme_dns01_value(ch->token, acme_client_thumbprint(r->eng->acme));
		if (!value) {
			run_retry(r, rc ? rc : ACMERA_ERR_NOMEM, rc ? err.text : "out of memory", 0,
			          -1);
			acme_authz_free(&a);
			return;
		}
		snprintf(slot->rec.name, sizeof(slot->rec.name), "_acme-challenge.%s",
		         a.identifier.value);
		snprintf(slot->rec.value, sizeof(slot->rec.value), "%s", value);
		free(value);
		slot->url = strdup(ch->url);
		log_event(LOG_LVL_INFO, "acme.authz",
		          "job=%lld identifier=%s status=pending challenge=dns-01",
		          (long long)r->job.id, a.identifier.value);
		if (!slot->url) {
			run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
			acme_authz_free(&a);
			return;
		}
	} else {
		char why[400];
		snprintf(why, sizeof(why), "authorization of %s is %s", a.identifier.value,
		         a.status);
		run_retry(r, ACMERA_ERR_REFUSED, why, may_replace_order(r), -1);
		acme_authz_free(&a);
		return;
	}
	acme_authz_free(&a);
	authz_settled(r);
}

static void fetch_authzs(struct job_run *r, const struct acme_order *o)
{
	r->chals = calloc(o->n_authorizations ? o->n_authorizations : 1, sizeof(*r->chals));
	if (!r->chals) {
		run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
		return;
	}
	r->n_chals = o->n_authorizations;
	r->state = RUN_AUTHZ;
	r->outstanding = o->n_authorizations;
	for (size_t i = 0; i < o->n_authorizations; i++) {
		r->chals[i].run = r;
		run_post(r, o->authorizations[i], NULL, NULL, on_authz, &r->chals[i]);
	}
	authz_settled(r);
}

static void on_challenge(void *arg, int rc, struct acme_response *resp,
                         const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	r->outstanding--;
	if (run_back(r, resp))
		return;
	if (rc) {
		run_acme_error(r, rc, resp, e, "challenge");
		return;
	}
	acme_response_free(resp);
	if (r->outstanding == 0) {
		r->poll_started = time(NULL);
		r->polls = 0;
		/* Finalize straight away after the CA's usual validation time: a CA that
		 * is not done yet answers orderNotReady, and only then is the order polled.
		 * This saves one request per certificate in the common case. */
		r->state = RUN_POLL_READY;
		run_after(r, POLL_FIRST_MS, finalize_timer);
	}
}

void run_published(struct job_run *r)
{
	if (r->preauth) {
		preauth_published(r);
		return;
	}
	r->state = RUN_CHALLENGE;
	r->outstanding = 0;
	for (size_t i = 0; i < r->n_chals; i++)
		if (r->chals[i].url)
			r->outstanding++;
	for (size_t i = 0; i < r->n_chals; i++) {
		if (!r->chals[i].url)
			continue;
		log_event(LOG_LVL_INFO, "acme.challenge", "job=%lld record=%s",
		          (long long)r->job.id, r->chals[i].rec.name);
		run_post(r, r->chals[i].url, "{}", NULL, on_challenge, r);
	}
}

/* ---- the order ---- */

static void on_order_error(struct job_run *r, int rc, struct acme_response *resp,
                           const struct acmera_errmsg *e)
{
	if (r->state == RUN_FINALIZE && resp && resp->problem &&
	    acme_problem_is(resp->problem, "orderNotReady")) {
		/* Validation still running: wait for the order to turn ready. */
		acme_response_free(resp);
		r->state = RUN_POLL_READY;
		schedule_poll(r, -1);
		return;
	}
	run_acme_error(r, rc, resp, e, r->state == RUN_FINALIZE ? "finalize" : "order");
}

static void order_invalid(struct job_run *r, const struct acme_order *o)
{
	char why[600];
	int rc = ACMERA_ERR_REFUSED;
	snprintf(why, sizeof(why), "order is %s", o->status);
	if (o->error) {
		char d[500];
		acme_problem_describe(o->error, d, sizeof(d));
		snprintf(why, sizeof(why), "order is %s: %s", o->status, d);
		if (problem_permanent(o->error))
			rc = ACMERA_ERR_INVAL;
	}
	/* An invalid order is over: the next attempt needs a new one. */
	run_retry(r, rc, why, 1, -1);
}

static void on_order(void *arg, int rc, struct acme_response *resp, const struct acmera_errmsg *e)
{
	struct job_run *r = arg;
	struct engine *g = r->eng;
	struct acmera_errmsg err = {{0}};
	struct acme_order o = {0};
	if (run_back(r, resp))
		return;
	if (rc) {
		on_order_error(r, rc, resp, e);
		return;
	}
	if (r->state == RUN_FINALIZE)
		r->finalized = r->finalize_answered = 1;
	if (r->state == RUN_ORDER && !r->order_url) {
		if (!resp->location) {
			acme_response_free(resp);
			run_retry(r, ACMERA_ERR_PROTO, "newOrder answer has no Location", 1, -1);
			return;
		}
		r->order_url = strdup(resp->location);
		/* Committed before anything else happens to the order: a restart resumes
		 * this order rather than placing a second one. */
		if (!r->order_url ||
		    store_job_set_order(g->store, r->job.id, g->owner, r->order_url, &err)) {
			acme_response_free(resp);
			run_retry(r, ACMERA_ERR_STORE, err.text, 0, -1);
			return;
		}
	}
	rc = acme_order_parse(buf_str(&resp->body), resp->body.len, &o, &err);
	int64_t retry_after = resp->retry_after;
	acme_response_free(resp);
	if (rc) {
		run_retry(r, ACMERA_ERR_PROTO, err.text, may_replace_order(r), -1);
		return;
	}
	if (!r->finalize_url && !(r->finalize_url = strdup(o.finalize))) {
		acme_order_free(&o);
		run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
		return;
	}
	log_event(LOG_LVL_INFO, "acme.order", "job=%lld order=%s status=%s", (long long)r->job.id,
	          r->order_url, o.status);

	/* Past pending, the challenge records have served their purpose. */
	if (strcmp(o.status, "pending") != 0)
		engine_queue_delete(g, r);
	if (strcmp(o.status, "pending") == 0) {
		if (r->state == RUN_ORDER)
			fetch_authzs(r, &o);
		else
			schedule_poll(r, retry_after);
	} else if (strcmp(o.status, "ready") == 0) {
		/* Finalized yet still ready: the CA has not moved on; never finalize twice
		 * in a row, poll instead. */
		if (r->finalize_answered) {
			r->state = RUN_POLL_VALID;
			schedule_poll(r, retry_after);
		} else {
			finalize(r);
		}
	} else if (strcmp(o.status, "processing") == 0) {
		r->state = RUN_POLL_VALID;
		if (!r->poll_started)
			r->poll_started = time(NULL);
		schedule_poll(r, retry_after);
	} else if (strcmp(o.status, "valid") == 0 && o.certificate) {
		r->state = RUN_DOWNLOAD;
		run_post(r, o.certificate, NULL, PKCS7_FIRST, on_certificate, r);
	} else if (strcmp(o.status, "valid") == 0) {
		run_retry(r, ACMERA_ERR_PROTO, "order is valid but names no certificate", 0, -1);
	} else {
		order_invalid(r, &o);
	}
	acme_order_free(&o);
}

void run_start(struct job_run *r)
{
	struct engine *g = r->eng;
	r->state = RUN_ORDER;
	if (r->job.order_url) {
		/* A recorded order may have been finalized before a crash: resume it. */
		r->order_url = strdup(r->job.order_url);
		r->finalized = 1;
		if (!r->order_url) {
			run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
			return;
		}
		log_event(LOG_LVL_INFO, "acme.order", "job=%lld order=%s action=resume",
		          (long long)r->job.id, r->order_url);
		run_post(r, r->order_url, NULL, NULL, on_order, r);
		return;
	}
	json_t *ids = json_array();
	char *names = strdup(r->job.names ? r->job.names : "");
	char *save = NULL;
	for (char *n = names ? strtok_r(names, ",", &save) : NULL; n && ids;
	     n = strtok_r(NULL, ",", &save)) {
		char anc[256];
		json_t *id = json_pack("{s:s,s:s}", "type", "dns", "value", n);
		if (id && preauth_ancestor_for(g, n, anc, sizeof(anc)))
			json_object_set_new(id, "ancestorDomain", json_string(anc));
		json_array_append_new(ids, id);
	}
	json_t *req = ids ? json_pack("{s:o}", "identifiers", ids) : NULL;
	char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	free(names);
	if (!payload) {
		run_retry(r, ACMERA_ERR_NOMEM, "out of memory", 0, -1);
		return;
	}
	log_event(LOG_LVL_INFO, "acme.new_order", "job=%lld names=%s", (long long)r->job.id,
	          r->job.names);
	run_post(r, acme_client_directory(g->acme)->new_order, payload, NULL, on_order, r);
	free(payload);
}
