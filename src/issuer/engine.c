/* The issuer's loop: claims jobs, drives them, batches their DNS records, and
 * hands unfinished work back to the store when it stops. */
#include "issuer/engine.h"

#include "acme/account.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/secret.h"
#include "issuer/dns_worker.h"
#include "store/job_events.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define CLAIM_INTERVAL_MS 250
#define DELETE_GATHER_MS 2000 /* gather deletions of a batch before one UPDATE */
#define PREAUTH_RECHECK_S 3600
#define DNS_POLL_MS 50 /* loop tick while the DNS worker has a batch */

int engine_stopping(const struct engine *g)
{
	const struct issuer_opts *o = g->opts;
	return o && ((o->stop && *o->stop) || (o->deadline && time(NULL) >= o->deadline));
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
		g->publish_since_ms = mono_ms();
	g->to_publish[g->n_publish++] = r;
	r->pending++; /* reaped only once the batch is done with it */
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
			g->delete_since_ms = mono_ms();
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

/* Hands the queued runs' records to the DNS worker as one batch; the runs wait in
 * in_flight (still RUN_WAIT_PUBLISH) until publish_done. */
static void flush_publish(struct engine *g)
{
	size_t n = 0, kept = 0;
	/* A run that ended meanwhile (lease lost) publishes nothing. */
	for (size_t i = 0; i < g->n_publish; i++) {
		struct job_run *r = g->to_publish[i];
		if (r->state != RUN_WAIT_PUBLISH) {
			r->pending--;
			continue;
		}
		g->to_publish[kept++] = r;
		for (size_t k = 0; k < r->n_chals; k++)
			n += r->chals[k].url != NULL;
	}
	g->n_publish = kept;
	if (kept == 0)
		return;
	struct pub_record *recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs) {
		for (size_t i = 0; i < kept; i++) {
			g->to_publish[i]->pending--;
			run_retry(g->to_publish[i], ACMERA_ERR_AGAIN, "out of memory", 0, -1);
		}
		g->n_publish = 0;
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < kept; i++)
		for (size_t j = 0; j < g->to_publish[i]->n_chals; j++)
			if (g->to_publish[i]->chals[j].url)
				recs[k++] = g->to_publish[i]->chals[j].rec;
	/* The queue becomes the batch; new runs queue in the other array. */
	struct job_run **t = g->in_flight;
	size_t tcap = g->cap_in_flight;
	g->in_flight = g->to_publish;
	g->cap_in_flight = g->cap_publish;
	g->n_in_flight = kept;
	g->to_publish = t;
	g->cap_publish = tcap;
	g->n_publish = 0;
	g->last_batch_add = 1;
	dns_worker_submit(g->dns, DNS_BATCH_ADD, recs, n);
}

/* Applies an add batch's outcome to its runs, as the blocking code did in place. */
static void publish_done(struct engine *g, struct dns_batch *b)
{
	/* Copy back zone and store ids; mark published even on failure, because a
	 * timed-out UPDATE may still have been applied. */
	size_t k = 0;
	for (size_t i = 0; i < g->n_in_flight; i++) {
		struct job_run *r = g->in_flight[i];
		for (size_t j = 0; j < r->n_chals && k < b->n; j++) {
			if (!r->chals[j].url)
				continue;
			r->chals[j].rec = b->recs[k++];
			r->chals[j].published = r->chals[j].rec.id > 0;
		}
	}
	size_t count = g->n_in_flight;
	g->n_in_flight = 0;
	for (size_t i = 0; i < count; i++) {
		struct job_run *r = g->in_flight[i];
		r->pending--;
		if (r->state == RUN_ENDED)
			engine_queue_delete(g, r); /* ended while its records went out */
		else if (b->rc)
			run_retry(r,
			          b->rc == ACMERA_ERR_INVAL ? ACMERA_ERR_INVAL : ACMERA_ERR_AGAIN,
			          b->err.text, 0, -1);
		else
			run_published(r);
	}
}

/* Hands every record queued for deletion to the DNS worker as one batch. */
static void flush_delete(struct engine *g)
{
	struct pub_record *recs = g->to_delete;
	size_t n = g->n_delete;
	g->to_delete = NULL;
	g->n_delete = g->cap_delete = 0;
	g->last_batch_add = 0;
	dns_worker_submit(g->dns, DNS_BATCH_DELETE, recs, n);
}

static void delete_done(struct engine *g, struct dns_batch *b)
{
	/* Keep only what was not deleted (its store id is still set). */
	size_t kept = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->recs[i].id <= 0)
			continue;
		if (grow((void **)&g->to_delete, &g->cap_delete, g->n_delete + 1,
		         sizeof(*g->to_delete)))
			continue; /* the store still lists it: cleaned at the next start */
		if (g->n_delete == 0)
			g->delete_since_ms = mono_ms();
		g->to_delete[g->n_delete++] = b->recs[i];
		kept++;
	}
	if (b->rc && kept) {
		g->delete_failures++;
		int64_t wait = 1000LL << (g->delete_failures < 6 ? g->delete_failures : 6);
		g->delete_retry_ms = mono_ms() + wait;
		log_event(LOG_LVL_WARN, "dns.delete_later", "records=%zu retry_in=%lldms", kept,
		          (long long)wait);
	} else {
		g->delete_failures = 0;
	}
}

/* Applies the worker's result once its batch is done; wait_ms as in
 * dns_worker_collect. */
static void collect_batch(struct engine *g, int wait_ms)
{
	struct dns_batch b;
	if (!dns_worker_collect(g->dns, wait_ms, &b))
		return;
	if (b.op == DNS_BATCH_ADD)
		publish_done(g, &b);
	else
		delete_done(g, &b);
	free(b.recs);
}

/* Starts the next DNS batch when the worker is free: adds first, but a due
 * deletion goes next after an add, so that a steady stream of new records never
 * holds old ones in DNS. */
static void dns_dispatch(struct engine *g, int64_t now)
{
	if (dns_worker_busy(g->dns))
		return;
	int add_due = g->n_publish && (!runs_gathering(g) ||
	                               now - g->publish_since_ms >= g->cfg->issuer.batch_wait);
	int delete_due = g->n_delete && now >= g->delete_retry_ms &&
	                 (!runs_validating(g) || now - g->delete_since_ms >= DELETE_GATHER_MS);
	if (add_due && !(delete_due && g->last_batch_add))
		flush_publish(g);
	else if (delete_due)
		flush_delete(g);
}

/* At the end of the run: the batch in flight finishes (bounded by the DNS
 * timeouts) and every record known to be out gets one last deletion. */
static void dns_drain(struct engine *g)
{
	if (dns_worker_busy(g->dns)) {
		log_event(LOG_LVL_INFO, "dns.wait", "reason=\"batch in progress\"");
		collect_batch(g, -1);
	}
	/* Queued runs never got their records out. */
	for (size_t i = 0; i < g->n_publish; i++)
		g->to_publish[i]->pending--;
	g->n_publish = 0;
	if (g->n_delete) {
		flush_delete(g);
		collect_batch(g, -1);
	}
}

/* Room for more runs under [issuer] parallel. */
static size_t room(const struct engine *g)
{
	size_t parallel = (size_t)g->cfg->issuer.parallel;
	return parallel > g->n_runs ? parallel - g->n_runs : 0;
}

/* 1 when jobs were submitted in this process since the last read. The ACME
 * step's wait watches the eventfd: it is read only when that wait saw it. */
static int submitted_read(struct engine *g)
{
	uint64_t n = 0;
	return g->submitted_fd >= 0 && acme_client_woken(g->acme) &&
	       read(g->submitted_fd, &n, sizeof(n)) == sizeof(n) && n > 0;
}

/* Claims at the interval, and sooner:
 * - when jobs were submitted in this process and either the CA takes
 *   pre-authorized parents (RFC 9444: their orders are ready at once) or no job is
 *   under way; otherwise the interval gathers the new jobs, whose TXT records then
 *   share UPDATEs;
 * - when the last claim filled every place (more jobs may be due) and a quarter of
 *   the places are free again: a long queue keeps the runs full, in claims of many
 *   jobs each (one store commit per claim). */
static int claim_due(const struct engine *g, int64_t now, int64_t next_claim)
{
	size_t parallel = (size_t)g->cfg->issuer.parallel;
	size_t quarter = parallel / 4 ? parallel / 4 : 1;
	return now >= next_claim ||
	       (g->submitted && room(g) > 0 && (g->subdomains || g->n_runs == 0)) ||
	       (g->more_due && room(g) >= quarter);
}

static void claim(struct engine *g)
{
	size_t room_now = room(g);
	if (room_now == 0)
		return;
	struct store_job *jobs = NULL;
	size_t n = 0;
	struct acmera_errmsg e = {{0}};
	const struct issuer_opts *o = g->opts;
	int64_t now = (int64_t)time(NULL);
	/* Watching given jobs (`acmera issue`): leave the others of a shared store to
	 * the issuers that serve them. */
	int rc = o->n_watch > 0 ? store_job_claim_ids(g->store, g->owner, o->watch, o->n_watch, now,
	                                              g->cfg->issuer.lease, room_now, &jobs, &n, &e)
	                        : store_job_claim(g->store, g->owner, now, g->cfg->issuer.lease,
	                                          room_now, &jobs, &n, &e);
	if (rc) {
		g->more_due = 0;
		log_event(LOG_LVL_ERROR, "issuer.claim", "error=%s", log_qv(e.text));
		return;
	}
	g->more_due = n == room_now;
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
		if (r->state == RUN_ENDED || r->preauth)
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
		if (r->preauth) {
			/* Nothing stored to hand back: the next start begins it again. */
			preauth_end(r, ACMERA_ERR_AGAIN, "issuer stopped");
			continue;
		}
		/* Keep the last real error visible: it says more than "stopped". */
		char why[600];
		snprintf(why, sizeof(why), "issuer stopped%s%s",
		         r->job.reason ? "; last error: " : "", r->job.reason ? r->job.reason : "");
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
	secret_free(eab_key);
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
		log_event(LOG_LVL_ERROR, "acme.account", "action=re-register error=%s",
		          log_qv(e.text));
		g->account_retry_ms = mono_ms() + 5000;
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
	/* A stop asked while the CA keeps a set-up request unanswered ends it. */
	acme_client_set_stop(g->acme, g->opts->stop);
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
	/* Woken by jobs submitted here (an EST request): claimed at once rather than
	 * at the next look. Without it, the looks every CLAIM_INTERVAL_MS still find
	 * them. */
	g->submitted_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->submitted_fd >= 0 && store_jobs_submitted_watch(g->submitted_fd, NULL) == 0) {
		acme_client_set_wake_fd(g->acme, g->submitted_fd);
	} else if (g->submitted_fd >= 0) {
		close(g->submitted_fd);
		g->submitted_fd = -1;
	}
	/* Records left by a crash or an outage go before new ones are made. */
	struct acmera_errmsg ce = {{0}};
	if (publisher_cleanup(g->pub, &ce))
		log_event(LOG_LVL_WARN, "dns.cleanup", "error=%s", log_qv(ce.text));
	return dns_worker_start(cfg, &g->dns, e);
}

static void engine_teardown(struct engine *g)
{
	if (g->submitted_fd >= 0) {
		store_jobs_submitted_unwatch(g->submitted_fd);
		close(g->submitted_fd);
		g->submitted_fd = -1;
	}
	/* The client first: its pending callbacks point at runs. */
	acme_client_free(g->acme);
	g->acme = NULL;
	while (g->runs) {
		struct job_run *r = g->runs;
		g->runs = r->next;
		run_free(r);
	}
	dns_worker_stop(g->dns);
	g->dns = NULL;
	free(g->to_publish);
	free(g->in_flight);
	free(g->to_delete);
	publisher_free(g->pub);
	EVP_PKEY_free(g->account_key);
}

/* The answers of one pass of the ACME loop share one store commit (group commit).
 * Nothing leaves the process on the strength of a change before it is committed,
 * but for requests to the CA, which a restart repeats harmlessly. Only a
 * certificate must also survive a power loss before it is seen; the other changes
 * (claims, order URLs, deferrals, failures) a restart after one would redo, so the
 * batch syncs the disk only once it holds a certificate (store_batch_begin_lazy).
 * The DNS worker's notes of records sync before their UPDATE is sent, on their own
 * handle. A commit that fails undoes the batch; those jobs stay ACTIVE and are
 * claimed again once their lease runs out. */
static void batch_commit(struct engine *g, int reopen)
{
	struct acmera_errmsg e = {{0}};
	if (g->batch_open && store_batch_end(g->store, &e))
		log_event(LOG_LVL_ERROR, "issuer.store",
		          "error=%s effect=\"jobs of this batch retried after their lease\"",
		          log_qv(e.text));
	g->batch_open = reopen && store_batch_begin_lazy(g->store, NULL) == 0;
}

void engine_commit(struct engine *g)
{
	if (g->batch_open)
		batch_commit(g, 1);
}

/* acme_client_step is about to wait: commit what its callbacks changed so far. */
static void commit_before_wait(void *arg)
{
	engine_commit(arg);
}

int issuer_run(struct store *s, const struct issuer_opts *o, struct issuer_stats *st,
               struct acmera_errmsg *e)
{
	struct issuer_stats local = {0};
	struct engine g = {
	    .cfg = o->cfg, .store = s, .stats = st ? st : &local, .opts = o, .submitted_fd = -1};
	int rc = engine_setup(&g, e);
	if (rc)
		goto out;
	acme_client_set_wait_hook(g.acme, commit_before_wait, &g);
	preauth_start(&g);
	g.preauth_checked = (int64_t)time(NULL);

	int64_t next_claim = 0, next_renew = mono_ms();
	int64_t renew_every = (int64_t)o->cfg->issuer.lease * 1000 / 3;
	int stopping = 0;
	for (;;) {
		int64_t now = mono_ms();
		if (!stopping && o->stop && *o->stop)
			stopping = 1;
		if (!stopping && o->deadline && time(NULL) >= o->deadline) {
			stopping = 1;
			rc = acmera_fail(e, ACMERA_ERR_TIMEOUT, "gave up at the deadline");
		}
		/* Runs that ended in the last step leave first: `acmera issue` stops as soon
		 * as its last job is done, not a claim interval later. */
		reap(&g);
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
		/* From here to the ACME step's wait, the pass's changes share a commit
		 * (the account's recovery above stays outside: its key is synced). */
		batch_commit(&g, 1);
		if (claim_due(&g, now, next_claim) && !g.account_lost) {
			if (time(NULL) - g.preauth_checked > PREAUTH_RECHECK_S) {
				preauth_start(&g);
				g.preauth_checked = (int64_t)time(NULL);
			}
			/* Jobs below a parent being pre-authorized wait for it. */
			if (g.preauth_blocking == 0) {
				g.submitted = 0;
				claim(&g);
			}
			next_claim = now + CLAIM_INTERVAL_MS;
		}
		/* DNS work runs on the worker: the loop only hands batches over and
		 * takes their results, and goes on driving ACME meanwhile. */
		collect_batch(&g, 0);
		dns_dispatch(&g, now);
		if (now >= next_renew) {
			renew_leases(&g);
			next_renew = now + renew_every;
		}
		reap(&g);
		batch_commit(&g, 1);
		acme_client_step(g.acme, g.n_runs || dns_worker_busy(g.dns) ? DNS_POLL_MS
		                                                            : CLAIM_INTERVAL_MS);
		batch_commit(&g, 0);
		g.submitted |= submitted_read(&g);
	}
	/* Last chance to remove records; what stays is listed in the store. */
	dns_drain(&g);
out:
	if (g.acme)
		g.stats->acme_requests = acme_client_requests(g.acme);
	if (g.pub)
		g.stats->dns_messages = publisher_messages(g.pub) + dns_worker_messages(g.dns);
	engine_teardown(&g);
	return rc;
}
