/* The issuer's loop: claims jobs, drives them, batches their DNS records, and
 * hands unfinished work back to the store when it stops. */
#include "issuer/engine.h"

#include "acme/account.h"
#include "base/log.h"
#include "base/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define CLAIM_INTERVAL_MS 250
#define DELETE_GATHER_MS 2000   /* gather deletions of a batch before one UPDATE */
#define PREAUTH_RECHECK_S 3600

int engine_stopping(const struct engine *g)
{
	const struct issuer_opts *o = g->opts;
	return o && ((o->stop && *o->stop) || (o->deadline && time(NULL) >= o->deadline));
}

int64_t engine_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * size);
	if (!p)
		return ACMERA_ERR_NOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

int engine_queue_publish(struct engine *g, struct job_run *r)
{
	if (grow((void **)&g->to_publish, &g->cap_publish, g->n_publish + 1,
		 sizeof(*g->to_publish)))
		return ACMERA_ERR_NOMEM;
	if (g->n_publish == 0)
		g->publish_since_ms = engine_now_ms();
	g->to_publish[g->n_publish++] = r;
	return 0;
}

void engine_queue_delete(struct engine *g, struct job_run *r)
{
	for (size_t i = 0; i < r->n_chals; i++) {
		struct run_challenge *c = &r->chals[i];
		if (!c->published)
			continue;
		c->published = 0;
		if (grow((void **)&g->to_delete, &g->cap_delete, g->n_delete + 1,
			 sizeof(*g->to_delete))) {
			/* The store still lists it: cleaned at the next start. */
			continue;
		}
		if (g->n_delete == 0)
			g->delete_since_ms = engine_now_ms();
		g->to_delete[g->n_delete++] = c->rec;
	}
}

/* Is any run still collecting challenges (so the batch may grow)? */
static int runs_gathering(struct engine *g)
{
	for (struct job_run *r = g->runs; r; r = r->next)
		if (r->state == RUN_ORDER || r->state == RUN_AUTHZ)
			return 1;
	return 0;
}

/* Is any run still before its order left "pending" (so more records will be due
 * for deletion soon, and one UPDATE can carry them all)? */
static int runs_validating(struct engine *g)
{
	for (struct job_run *r = g->runs; r; r = r->next)
		if (r->state == RUN_WAIT_PUBLISH || r->state == RUN_CHALLENGE ||
		    r->state == RUN_POLL_READY || r->state == RUN_FINALIZE)
			return 1;
	return 0;
}

static void flush_publish(struct engine *g)
{
	size_t n = 0;
	struct acmera_errmsg e = {{0}};
	for (size_t i = 0; i < g->n_publish; i++)
		for (size_t k = 0; k < g->to_publish[i]->n_chals; k++)
			n += g->to_publish[i]->chals[k].url != NULL;
	struct pub_record *recs = calloc(n ? n : 1, sizeof(*recs));
	int rc = recs ? 0 : acmera_fail(&e, ACMERA_ERR_NOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; rc == 0 && i < g->n_publish; i++)
		for (size_t j = 0; j < g->to_publish[i]->n_chals; j++)
			if (g->to_publish[i]->chals[j].url)
				recs[k++] = g->to_publish[i]->chals[j].rec;
	if (rc == 0)
		rc = publisher_add(g->pub, recs, n, &e);
	/* Copy back zone and store ids; mark published even on failure, because a
	 * timed-out UPDATE may still have been applied. */
	k = 0;
	for (size_t i = 0; recs && i < g->n_publish; i++) {
		struct job_run *r = g->to_publish[i];
		for (size_t j = 0; j < r->n_chals; j++) {
			if (!r->chals[j].url)
				continue;
			r->chals[j].rec = recs[k++];
			r->chals[j].published = r->chals[j].rec.id > 0;
		}
	}
	free(recs);
	size_t count = g->n_publish;
	g->n_publish = 0;
	for (size_t i = 0; i < count; i++) {
		struct job_run *r = g->to_publish[i];
		if (rc)
			run_retry(r, rc == ACMERA_ERR_INVAL ? ACMERA_ERR_INVAL : ACMERA_ERR_AGAIN, e.text,
				  0, -1);
		else
			run_published(r);
	}
}

static void flush_delete(struct engine *g)
{
	struct acmera_errmsg e = {{0}};
	int rc = publisher_delete(g->pub, g->to_delete, g->n_delete, &e);
	/* Keep only what was not deleted (its store id is still set). */
	size_t kept = 0;
	for (size_t i = 0; i < g->n_delete; i++)
		if (g->to_delete[i].id > 0)
			g->to_delete[kept++] = g->to_delete[i];
	g->n_delete = kept;
	if (rc && kept) {
		g->delete_failures++;
		int64_t wait = 1000LL << (g->delete_failures < 6 ? g->delete_failures : 6);
		g->delete_retry_ms = engine_now_ms() + wait;
		log_event(LOG_LVL_WARN, "dns.delete_later", "records=%zu retry_in=%lldms", kept,
			  (long long)wait);
	} else {
		g->delete_failures = 0;
	}
}

static void claim(struct engine *g)
{
	size_t room = (size_t)g->cfg->issuer.parallel > g->n_runs
			      ? (size_t)g->cfg->issuer.parallel - g->n_runs
			      : 0;
	if (room == 0)
		return;
	struct store_job *jobs = NULL;
	size_t n = 0;
	struct acmera_errmsg e = {{0}};
	if (store_job_claim(g->store, g->owner, (int64_t)time(NULL), g->cfg->issuer.lease, room,
			    &jobs, &n, &e)) {
		log_event(LOG_LVL_ERROR, "issuer.claim", "error=%s", log_qv(e.text));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct job_run *r = calloc(1, sizeof(*r));
		if (!r) {
			store_job_defer(g->store, jobs[i].id, g->owner, (int64_t)time(NULL),
					"out of memory", NULL);
			store_job_free(&jobs[i]);
			continue;
		}
		r->eng = g;
		r->job = jobs[i];
		r->next = g->runs;
		g->runs = r;
		g->n_runs++;
		log_event(LOG_LVL_INFO, "job.claimed", "job=%lld names=%s attempt=%d",
			  (long long)r->job.id, r->job.names, r->job.attempts + 1);
		run_start(r);
	}
	free(jobs); /* the jobs' members now belong to the runs */
}

static void reap(struct engine *g)
{
	for (struct job_run **p = &g->runs; *p;) {
		struct job_run *r = *p;
		if (r->state == RUN_ENDED && r->pending == 0) {
			*p = r->next;
			g->n_runs--;
			run_free(r);
		} else {
			p = &r->next;
		}
	}
}

static void renew_leases(struct engine *g)
{
	int64_t until = (int64_t)time(NULL) + g->cfg->issuer.lease;
	for (struct job_run *r = g->runs; r; r = r->next) {
		if (r->state == RUN_ENDED)
			continue;
		struct acmera_errmsg e = {{0}};
		if (store_job_renew_lease(g->store, r->job.id, g->owner, until, &e) ==
		    ACMERA_ERR_NOTFOUND) {
			/* Another issuer holds the job now: stop driving it, change nothing. */
			log_event(LOG_LVL_WARN, "job.lost", "job=%lld reason=\"%s\"",
				  (long long)r->job.id, e.text);
			engine_queue_delete(g, r);
			r->state = RUN_ENDED;
		}
	}
}

/* Have all watched jobs ended? */
static int watched_done(struct engine *g, const struct issuer_opts *o)
{
	for (size_t i = 0; i < o->n_watch; i++) {
		struct store_job j = {0};
		if (store_job_get(g->store, o->watch[i], &j, NULL))
			continue; /* gone: nothing to wait for */
		int ended = j.state == JOB_DONE || j.state == JOB_FAILED;
		store_job_free(&j);
		if (!ended)
			return 0;
	}
	return 1;
}

/* Hands active runs back to the store so that the next issuer resumes them now. */
static void release_runs(struct engine *g)
{
	for (struct job_run *r = g->runs; r; r = r->next) {
		if (r->state == RUN_ENDED)
			continue;
		/* Keep the last real error visible: it says more than "stopped". */
		char why[600];
		snprintf(why, sizeof(why), "issuer stopped%s%s", r->job.reason ? "; last error: " : "",
			 r->job.reason ? r->job.reason : "");
		store_job_defer(g->store, r->job.id, g->owner, (int64_t)time(NULL), why, NULL);
		engine_queue_delete(g, r);
		r->state = RUN_ENDED;
	}
}

/* Finds or registers the account; the client's key changes only on success. */
static int ensure_account(struct engine *g, struct acmera_errmsg *e)
{
	const struct config *cfg = g->cfg;
	char *eab_key = NULL;
	EVP_PKEY *key = NULL;
	int rc;
	if (cfg->acme.eab_hmac_key_file) {
		rc = read_secret_file(cfg->acme.eab_hmac_key_file, &eab_key, e);
		if (rc)
			return rc;
	}
	struct acme_account_opts ao = {
		.key_type = cfg->acme.account_key_type,
		.contact = cfg->acme.contact,
		.eab_kid = cfg->acme.eab_kid,
		.eab_hmac_key = eab_key,
		.create = 1,
	};
	rc = acme_account_ensure(g->acme, g->store, &ao, &key, e);
	if (eab_key) {
		explicit_bzero(eab_key, strlen(eab_key));
		free(eab_key);
	}
	if (rc) {
		/* acme_account_ensure cleared the client's key: put the old one back. */
		if (g->account_key)
			acme_client_set_key(g->acme, g->account_key, NULL);
		return acmera_fail_wrap(e, rc, "ACME account");
	}
	EVP_PKEY_free(g->account_key);
	g->account_key = key;
	return 0;
}

/* Registers the stored key again after the CA said it does not know the account.
 * Until that works, no job is claimed (their requests would fail the same way). */
static void recover_account(struct engine *g)
{
	struct store_account a = {0};
	struct acmera_errmsg e = {{0}};
	if (store_account_get(g->store, acme_client_directory_url(g->acme), &a, &e) == 0) {
		free(a.kid);
		a.kid = NULL;
		store_account_put(g->store, &a, &e);
		store_account_free(&a);
	}
	log_event(LOG_LVL_WARN, "acme.account", "action=re-register reason=accountDoesNotExist");
	if (ensure_account(g, &e)) {
		log_event(LOG_LVL_ERROR, "acme.account", "action=re-register error=%s", log_qv(e.text));
		g->account_retry_ms = engine_now_ms() + 5000;
		return;
	}
	g->account_lost = 0;
}

/* host:pid:random, unique among issuers sharing a store. */
static void make_owner(struct engine *g)
{
	char host[64] = "host";
	unsigned char rnd[8] = {0};
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(g->owner, sizeof(g->owner), "%s:%d:%02x%02x%02x%02x%02x%02x%02x%02x", host,
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
}

static int engine_setup(struct engine *g, struct acmera_errmsg *e)
{
	const struct config *cfg = g->cfg;
	make_owner(g);
	struct acme_client_opts co = {
		.directory_url = cfg->acme.directory,
		.ca_bundle = cfg->acme.ca_bundle,
		.timeout_s = cfg->acme.timeout,
	};
	if (!cfg->acme.directory)
		return acmera_fail(e, ACMERA_ERR_CONFIG,
				   "no ACME directory: set acme directory (or --directory)");
	int rc = publisher_new(cfg, g->store, &g->pub, e);
	if (rc)
		return rc;
	rc = acme_client_new(&co, &g->acme, e);
	if (rc)
		return rc;
	rc = acme_client_load_directory(g->acme, e);
	if (rc)
		return rc;
	const struct acme_directory *d = acme_client_directory(g->acme);
	g->have_new_authz = d->new_authz != NULL;
	g->subdomains = d->subdomain_auth_allowed;
	log_event(LOG_LVL_INFO, "acme.directory",
		  "url=%s new_authz=%s subdomain_auth=%s external_account_required=%s",
		  cfg->acme.directory, g->have_new_authz ? "yes" : "no",
		  g->subdomains ? "yes" : "no", d->external_account_required ? "yes" : "no");

	rc = ensure_account(g, e);
	if (rc)
		return rc;
	/* Records left by a crash or an outage go before new ones are made. */
	struct acmera_errmsg ce = {{0}};
	if (publisher_cleanup(g->pub, &ce))
		log_event(LOG_LVL_WARN, "dns.cleanup", "error=%s", log_qv(ce.text));
	return 0;
}

static void engine_teardown(struct engine *g)
{
	/* The client first: its pending callbacks point at runs. */
	acme_client_free(g->acme);
	g->acme = NULL;
	while (g->runs) {
		struct job_run *r = g->runs;
		g->runs = r->next;
		run_free(r);
	}
	free(g->to_publish);
	free(g->to_delete);
	publisher_free(g->pub);
	EVP_PKEY_free(g->account_key);
}

int issuer_run(struct store *s, const struct issuer_opts *o, struct issuer_stats *st,
	       struct acmera_errmsg *e)
{
	struct issuer_stats local = {0};
	struct engine g = {.cfg = o->cfg, .store = s, .stats = st ? st : &local, .opts = o};
	int rc = engine_setup(&g, e);
	if (rc)
		goto out;
	struct acmera_errmsg pe = {{0}};
	if (preauth_ensure(&g, &pe))
		log_event(LOG_LVL_WARN, "acme.preauthorize", "error=%s", log_qv(pe.text));
	g.preauth_checked = (int64_t)time(NULL);

	int64_t next_claim = 0, next_renew = engine_now_ms();
	int64_t renew_every = (int64_t)o->cfg->issuer.lease * 1000 / 3;
	int stopping = 0;
	for (;;) {
		int64_t now = engine_now_ms();
		if (!stopping && o->stop && *o->stop)
			stopping = 1;
		if (!stopping && o->deadline && time(NULL) >= o->deadline) {
			stopping = 1;
			rc = acmera_fail(e, ACMERA_ERR_TIMEOUT, "gave up at the deadline");
		}
		if (!stopping && o->n_watch && g.n_runs == 0 && watched_done(&g, o))
			stopping = 1;
		if (stopping) {
			release_runs(&g);
			reap(&g);
			break;
		}
		/* Only once no request is in flight: they were signed for the old kid. */
		if (g.account_lost && g.n_runs == 0 && now >= g.account_retry_ms)
			recover_account(&g);
		if (now >= next_claim && !g.account_lost) {
			if (time(NULL) - g.preauth_checked > PREAUTH_RECHECK_S) {
				if (preauth_ensure(&g, &pe))
					log_event(LOG_LVL_WARN, "acme.preauthorize", "error=%s",
						  log_qv(pe.text));
				g.preauth_checked = (int64_t)time(NULL);
			}
			claim(&g);
			next_claim = now + CLAIM_INTERVAL_MS;
		}
		if (g.n_publish &&
		    (!runs_gathering(&g) ||
		     now - g.publish_since_ms >= o->cfg->issuer.batch_wait))
			flush_publish(&g);
		if (g.n_delete && now >= g.delete_retry_ms &&
		    (!runs_validating(&g) || now - g.delete_since_ms >= DELETE_GATHER_MS))
			flush_delete(&g);
		if (now >= next_renew) {
			renew_leases(&g);
			next_renew = now + renew_every;
		}
		reap(&g);
		acme_client_step(g.acme, g.n_runs ? 50 : CLAIM_INTERVAL_MS);
	}
	/* Last chance to remove records; what stays is listed in the store. */
	if (g.n_delete)
		flush_delete(&g);
out:
	if (g.acme)
		g.stats->acme_requests = acme_client_requests(g.acme);
	if (g.pub)
		g.stats->dns_messages = publisher_messages(g.pub);
	engine_teardown(&g);
	return rc;
}
