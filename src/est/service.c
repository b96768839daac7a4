/* The EST service: routing, authentication, profile policy, and the enrollment
 * wait. See service.h. */
#include "est/service.h"

#include "base/b64.h"
#include "base/clock.h"
#include "base/log.h"
#include "dns/zone.h"
#include "est/auth.h"
#include "est/body.h"
#include "est/csrattrs.h"
#include "est/job_watch.h"
#include "est/policy.h"
#include "est/serverkeygen.h"
#include "est/worker_state.h"
#include "pki/cert.h"
#include "pki/csr.h"
#include "store/job_events.h"
#include "store/store.h"

#include <event2/event.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define EST_PREFIX "/.well-known/est/"
/* A wait looks in the store when this process finished its job (job_watch.h),
 * and at least this often anyway: another process sharing the store, e.g.
 * `acmera issue`, may have finished it. */
#define WAIT_LOOK_MS 1000
#define MAX_NAME 254

struct est_profile {
	const struct config_profile *cfg;
	struct est_policy policy;
	struct est_trust *trust; /* IDevID anchors, or NULL */
	int allow_cert, allow_basic;
	enum est_key_kind key; /* what /csrattrs asks for */
};

struct est_service {
	const struct config *cfg;
	struct est_profile profiles[CONFIG_MAX_PROFILES];
	size_t n_profiles;
	struct est_passwd *passwd;
	char *ca_body; /* configured /cacerts answer (base64 PKCS#7), or NULL */
	size_t ca_body_len;
	struct est_keygen_cache *keygen;
};

static struct store *store_of(const struct est_service *s, struct acmera_errmsg *e)
{
	return est_worker_store(s->cfg->store.path, e);
}

/* ---- set-up ---- */

static int has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == n && strncmp(p, tok, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

static int profile_load(struct est_profile *p, const struct config_profile *c,
                        struct acmera_errmsg *e)
{
	p->cfg = c;
	if (!c->name_template)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "[profile \"%s\"]: no name_template",
		                   c->label);
	p->policy.name_template = c->name_template;
	p->policy.allow_p256 = has_token(c->key_types, "p256");
	p->policy.allow_p384 = has_token(c->key_types, "p384");
	p->policy.allow_ed25519 = has_token(c->key_types, "ed25519");
	p->policy.rsa_min_bits = has_token(c->key_types, "rsa") ? c->rsa_min_bits : 0;
	p->policy.require_channel_binding = c->channel_binding;
	p->allow_cert = has_token(c->auth, "cert");
	p->allow_basic = has_token(c->auth, "basic");
	p->key = p->policy.allow_p256     ? EST_KEY_EC_P256
	         : p->policy.allow_p384   ? EST_KEY_EC_P384
	         : p->policy.rsa_min_bits ? EST_KEY_RSA
	                                  : EST_KEY_ED25519;
	if (p->allow_cert && c->trust_anchors) {
		int rc = est_trust_load(c->trust_anchors, &p->trust, e);
		if (rc)
			return acmera_fail_wrap(e, rc, "[profile \"%s\"] trust_anchors", c->label);
	}
	return 0;
}

static int load_chain(const char *path, STACK_OF(X509) * *out, struct acmera_errmsg *e)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: cannot open", path);
	text = malloc(1 << 20);
	if (text)
		len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	if (!text)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	text[len] = '\0';
	int rc = chain_parse_pem(text, len, out, e);
	free(text);
	return rc ? acmera_fail_wrap(e, rc, "%s", path) : 0;
}

int est_service_new(const struct config *cfg, struct est_service **out, struct acmera_errmsg *e)
{
	struct est_service *s = calloc(1, sizeof(*s));
	int rc = 0;
	if (!s)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	s->cfg = cfg;
	if (cfg->n_profiles == 0) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "no EST profile: add a [profile \"default\"] section");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_profiles; i++) {
		rc = profile_load(&s->profiles[i], &cfg->profiles[i], e);
		if (rc)
			goto fail;
		s->n_profiles++;
	}
	if (cfg->est.passwd_file) {
		rc = est_passwd_load(cfg->est.passwd_file, &s->passwd, e);
		if (!rc)
			rc = est_passwd_cache(s->passwd, cfg->est.auth_cache, e);
		if (rc)
			goto fail;
	}
	if (cfg->est.ca_chain) {
		STACK_OF(X509) *chain = NULL;
		rc = load_chain(cfg->est.ca_chain, &chain, e);
		if (!rc)
			rc = est_body_pkcs7(chain, &s->ca_body, &s->ca_body_len, e);
		if (chain)
			sk_X509_pop_free(chain, X509_free);
		if (rc)
			goto fail;
	}
	rc = est_keygen_cache_new(&s->keygen, e);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	est_service_free(s);
	return rc;
}

void est_service_free(struct est_service *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_profiles; i++)
		est_trust_free(s->profiles[i].trust);
	est_passwd_free(s->passwd);
	free(s->ca_body);
	est_keygen_cache_free(s->keygen);
	free(s);
}

/* ---- answers ---- */

static void reply_text(struct http_request *req, int status, const char *text)
{
	char body[700];
	int n = snprintf(body, sizeof(body), "%s\n", text);
	http_reply(req, status, "text/plain; charset=utf-8", body,
	           n < 0                       ? 0
	           : (size_t)n >= sizeof(body) ? sizeof(body) - 1
	                                       : (size_t)n,
	           NULL);
}

static void reply_retry(struct http_request *req, int status, int seconds, const char *text)
{
	char ra[16], body[700];
	snprintf(ra, sizeof(ra), "%d", seconds);
	const char *headers[] = {"Retry-After", ra, NULL};
	int n = snprintf(body, sizeof(body), "%s\n", text);
	http_reply(req, status, "text/plain; charset=utf-8", body,
	           n < 0                       ? 0
	           : (size_t)n >= sizeof(body) ? sizeof(body) - 1
	                                       : (size_t)n,
	           headers);
}

/* The chain in pem (without its first certificate when skip_leaf) as the PKCS#7
 * answer. 0, or answers 500 and returns -1. */
static int reply_chain_pem(struct http_request *req, const char *pem, int skip_leaf)
{
	struct acmera_errmsg e = {{0}};
	const char *body = NULL;
	size_t len = 0;
	if (est_worker_pkcs7(pem, skip_leaf, &body, &len, &e)) {
		reply_text(req, 500, e.text);
		return -1;
	}
	http_reply(req, 200, EST_CT_PKCS7, body, len, NULL);
	return 0;
}

/* The peer of the request being handled on this worker, copied when it arrives:
 * http_reply frees the request, and most log lines follow the reply. */
static _Thread_local char current_peer[80];

static void set_current_peer(const char *peer)
{
	snprintf(current_peer, sizeof(current_peer), "%s", peer ? peer : "-");
}

static void log_request(struct http_request *req, const char *label, const char *op, int status,
                        const char *name, const char *why)
{
	(void)req; /* may already be answered and freed: only current_peer is used */
	/* label and op come from the decoded path: quoted, so that "%0a" cannot forge a line. */
	log_event(status >= 400 ? LOG_LVL_WARN : LOG_LVL_INFO, "est.request",
	          "peer=%s label=%s op=%s status=%d name=%s reason=%s", current_peer, log_qv(label),
	          log_qv(op), status, name && *name ? name : "-", log_qv(why ? why : ""));
}

/* ---- authentication ---- */

/* 401 with the Basic challenge (RFC 7235: a 401 always names a scheme). */
static void reply_unauthorized(struct http_request *req, const char *why)
{
	const char *headers[] = {"WWW-Authenticate", "Basic realm=\"acmera EST\"", NULL};
	char body[600];
	int n = snprintf(body, sizeof(body), "%s\n", why);
	http_reply(req, 401, "text/plain; charset=utf-8", body,
	           n < 0                       ? 0
	           : (size_t)n >= sizeof(body) ? sizeof(body) - 1
	                                       : (size_t)n,
	           headers);
}

/* Who a client certificate proved to be, kept with its TLS connection so that the
 * chain is verified once per profile and connection, not per request. Kept for a
 * bounded time so that a long-lived connection notices expiry. */
#define CONN_AUTH_SECONDS 60

struct conn_auth {
	const struct est_profile *p;
	struct est_identity id;
	time_t until;
};

static int conn_auth_get(struct http_request *req, const struct est_profile *p,
                         struct est_identity *id)
{
	const struct conn_auth *a = http_request_conn_data(req);
	if (!a || a->p != p || time(NULL) >= a->until)
		return -1;
	*id = a->id;
	return 0;
}

static void conn_auth_put(struct http_request *req, const struct est_profile *p,
                          const struct est_identity *id)
{
	struct conn_auth *a = malloc(sizeof(*a));
	if (!a)
		return; /* only the next request's speed depends on it */
	*a = (struct conn_auth){.p = p, .id = *id, .until = time(NULL) + CONN_AUTH_SECONDS};
	http_request_set_conn_data(req, a, free);
}

/* Fills id from the TLS client certificate (verified against the profile's
 * anchors) or HTTP Basic. Returns 0, or answers 401 (403 where only a client
 * certificate could do) and returns -1. */
static int authenticate(struct est_service *s, const struct est_profile *p,
                        struct http_request *req, struct est_identity *id, const char *label,
                        const char *op)
{
	struct acmera_errmsg e = {{0}};
	memset(id, 0, sizeof(*id));
	STACK_OF(X509) *chain = http_request_peer_chain(req, NULL);
	if (p->allow_cert && chain && sk_X509_num(chain) > 0 && p->trust) {
		if (conn_auth_get(req, p, id) == 0)
			return 0;
		if (est_trust_verify(p->trust, chain, &e) == 0) {
			est_identity_from_cert(sk_X509_value(chain, 0), id);
			id->by_certificate = 1;
			conn_auth_put(req, p, id);
			return 0;
		}
	}
	const char *authz = http_request_header(req, "Authorization");
	if (p->allow_basic && s->passwd && authz) {
		if (est_passwd_check(s->passwd, authz, id->user, sizeof(id->user), &e) == 0)
			return 0;
	} else if (chain && p->allow_cert && !e.text[0]) {
		snprintf(e.text, sizeof(e.text),
		         "client certificate not accepted for this profile");
	}
	const char *why = e.text[0] ? e.text : "authentication required";
	if (!p->allow_basic || !s->passwd) {
		/* No HTTP scheme can help (a 401 must offer one): the remedy is a client
		 * certificate in the TLS handshake, so the answer is 403 saying so. */
		char body[700];
		snprintf(body, sizeof(body),
		         "%s; this profile accepts only TLS client certificates that chain to its "
		         "trust anchors",
		         chain ? why : "no TLS client certificate");
		reply_text(req, 403, body);
		log_request(req, label, op, 403, NULL, body);
		return -1;
	}
	reply_unauthorized(req, why);
	log_request(req, label, op, 401, NULL, why);
	return -1;
}

/* The names must lie in the zones acmera may publish in: refused here, before
 * any ACME traffic, rather than failing at the CA. */
static int name_in_zones(const struct est_service *s, const char *name, struct acmera_errmsg *e)
{
	const struct config *c = s->cfg;
	if (c->dns.n_zones == 0)
		return 0;
	if (dns_zone_for_name(name, (const char *const *)c->dns.zones, c->dns.n_zones))
		return 0;
	return acmera_fail(e, ACMERA_ERR_REFUSED, "%s is outside the zones this RA serves", name);
}

/* ---- operations ---- */

static void op_cacerts(struct est_service *s, struct http_request *req, const char *label)
{
	struct acmera_errmsg e = {{0}};
	if (s->ca_body) {
		http_reply(req, 200, EST_CT_PKCS7, s->ca_body, s->ca_body_len, NULL);
		log_request(req, label, "cacerts", 200, NULL, "configured chain");
		return;
	}
	/* Learnt from the newest certificate issued: its chain minus the leaf. */
	struct store *st = store_of(s, &e);
	const char *body = NULL;
	size_t len = 0;
	if (!st || est_worker_cacerts(st, (int64_t)time(NULL), &body, &len, &e)) {
		reply_retry(req, 503, s->cfg->est.retry_after,
		            "no CA certificates known yet: configure est ca_chain, or enroll once");
		log_request(req, label, "cacerts", 503, NULL, e.text);
		return;
	}
	http_reply(req, 200, EST_CT_PKCS7, body, len, NULL);
	log_request(req, label, "cacerts", 200, NULL, "learnt chain");
}

static void op_csrattrs(struct est_service *s, const struct est_profile *p,
                        struct http_request *req, const char *label)
{
	struct est_identity id;
	struct acmera_errmsg e = {{0}};
	char name[MAX_NAME];
	uint8_t *der = NULL;
	size_t len = 0;
	if (authenticate(s, p, req, &id, label, "csrattrs"))
		return;
	if (est_policy_name(&p->policy, &id, name, sizeof(name), &e) ||
	    name_in_zones(s, name, &e)) {
		reply_text(req, 403, e.text);
		log_request(req, label, "csrattrs", 403, NULL, e.text);
		return;
	}
	const char *names[] = {name};
	struct est_csrattrs_in in = {.subject_cn = name,
	                             .dns_names = names,
	                             .n_dns_names = 1,
	                             .key = p->key,
	                             .rsa_bits = p->policy.rsa_min_bits,
	                             .challenge_password = p->policy.require_channel_binding};
	char *b64 = NULL;
	if (est_csrattrs_build(&in, &der, &len, &e) || !(b64 = b64_encode(der, len, 64))) {
		reply_text(req, 500, e.text[0] ? e.text : "out of memory");
		free(der);
		return;
	}
	http_reply(req, 200, EST_CT_CSRATTRS, b64, strlen(b64), NULL);
	log_request(req, label, "csrattrs", 200, name, NULL);
	free(b64);
	free(der);
}

/* An enrollment waiting for the issuer. */
struct wait {
	struct est_service *s;
	struct http_request *req;
	struct event *timer;          /* the deadline, or the next look in the store if sooner */
	struct job_watch_entry watch; /* watch.job: the job */
	char digest[65];
	char label[64];
	char op[16];
	char name[MAX_NAME];
	int64_t deadline_ms;
	char peer[80];
	/* serverkeygen: the key made for the device, sent with the certificate. */
	uint8_t *key_der;
	size_t key_len;
	char key_digest[65]; /* the device's request, to forget the key once sent */
};

static void wait_free(struct wait *w)
{
	job_watch_remove(&w->watch);
	if (w->timer)
		event_free(w->timer);
	if (w->key_der) {
		OPENSSL_cleanse(w->key_der, w->key_len);
		free(w->key_der);
	}
	free(w);
}

/* The certificate, alone (PKCS#7) or with the key made for serverkeygen. */
static void reply_issued(struct est_service *s, struct http_request *req, const char *pem,
                         const uint8_t *key, size_t key_len, const char *key_digest)
{
	struct acmera_errmsg e = {{0}};
	STACK_OF(X509) *chain = NULL;
	char *body = NULL, *ct = NULL;
	size_t len = 0;
	if (!key) {
		reply_chain_pem(req, pem, 0);
		return;
	}
	if (chain_parse_pem(pem, strlen(pem), &chain, &e) ||
	    est_serverkeygen_body(key, key_len, chain, &body, &len, &ct, &e)) {
		reply_text(req, 500, e.text);
	} else {
		http_reply(req, 200, ct, body, len, NULL);
		est_keygen_forget(s->keygen, key_digest);
	}
	if (body) {
		OPENSSL_cleanse(body, len);
		free(body);
	}
	free(ct);
	if (chain)
		sk_X509_pop_free(chain, X509_free);
}

/* The client left, or the server is shutting down (a worker's connections are
 * freed before its loop): the job goes on without w. Freed here, not at a next
 * tick, which never comes at shutdown. */
static void wait_gone(void *arg)
{
	wait_free(arg);
}

/* Looks in the store; 1 when the wait ended (answered), with the certificate,
 * the job's failure, or 202 past the deadline. Before answering, the request
 * forgets w: after the answer, the connection may close at any time. */
static int wait_check(struct wait *w)
{
	struct acmera_errmsg e = {{0}};
	int64_t now_ms = mono_ms();
	struct store *st = store_of(w->s, &e);
	struct store_cert c = {0};
	if (!st) {
		http_request_on_gone(w->req, NULL, NULL);
		reply_retry(w->req, 503, w->s->cfg->est.retry_after, e.text);
		log_request(w->req, w->label, w->op, 503, w->name, e.text);
		return 1;
	}
	if (store_cert_lookup(st, w->digest, (int64_t)time(NULL), &c, NULL) == 0) {
		http_request_on_gone(w->req, NULL, NULL);
		reply_issued(w->s, w->req, c.chain_pem, w->key_der, w->key_len, w->key_digest);
		log_request(w->req, w->label, w->op, 200, w->name, "issued");
		store_cert_free(&c);
		return 1;
	}
	struct store_job j = {0};
	if (store_job_get(st, w->watch.job, &j, NULL) == 0 && j.state == JOB_FAILED) {
		char why[600];
		snprintf(why, sizeof(why), "the CA did not issue: %s", j.reason ? j.reason : "");
		http_request_on_gone(w->req, NULL, NULL);
		reply_retry(w->req, 503, w->s->cfg->est.retry_after, why);
		log_request(w->req, w->label, w->op, 503, w->name, why);
		store_job_free(&j);
		return 1;
	}
	store_job_free(&j);
	if (now_ms >= w->deadline_ms) {
		http_request_on_gone(w->req, NULL, NULL);
		reply_retry(w->req, 202, w->s->cfg->est.retry_after,
		            "the certificate is being issued; retry after the indicated time");
		log_request(w->req, w->label, w->op, 202, w->name, "pending");
		return 1;
	}
	return 0;
}

/* The timer at at_ms (0: at once), but no later than the next look in the store
 * nor the deadline. */
static void wait_arm(struct wait *w, int64_t at_ms)
{
	int64_t now_ms = mono_ms();
	if (at_ms > now_ms + WAIT_LOOK_MS)
		at_ms = now_ms + WAIT_LOOK_MS;
	if (at_ms > w->deadline_ms)
		at_ms = w->deadline_ms;
	int64_t ms = at_ms > now_ms ? at_ms - now_ms : 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(w->timer, &tv);
}

static void wait_timer(evutil_socket_t fd, short what, void *arg)
{
	struct wait *w = arg;
	(void)fd;
	(void)what;
	set_current_peer(w->peer);
	if (wait_check(w)) {
		wait_free(w);
		return;
	}
	wait_arm(w, INT64_MAX);
}

/* Its job finished in this process (or may have: the store forgot which did).
 * When the look does not answer, the timer keeps its time. */
static void wait_woken(void *arg)
{
	struct wait *w = arg;
	set_current_peer(w->peer);
	if (wait_check(w))
		wait_free(w);
}

/* Wipes and frees a key made for serverkeygen that will not be sent. */
static void drop_key(uint8_t *key, size_t len)
{
	if (key) {
		OPENSSL_cleanse(key, len);
		free(key);
	}
}

/* The job is committed without the disk sync: one that a power loss takes back
 * is submitted again by the device's retry of the same CSR, and the commit of its
 * certificate syncs it in any case. A crash of the process loses nothing. */
static int submit_unsynced(struct store *st, const struct csr_info *csr, const char *names,
                           int64_t now, int64_t *job, int *created, struct acmera_errmsg *e)
{
	int rc = store_batch_begin_lazy(st, e);
	if (rc)
		return rc;
	rc = store_job_submit(st, csr->der, csr->der_len, names, now, job, created, e);
	if (store_batch_end(st, rc ? NULL : e) && rc == 0)
		rc = ACMERA_ERR_STORE;
	return rc;
}

/* Records the job once (repeats join it) and answers now, or later from the
 * worker's loop: 200 with the certificate, or 202 after est.wait. key_der (a key
 * made for serverkeygen, or NULL) is taken over. */
static void enroll_job(struct est_service *s, struct http_request *req, const char *label,
                       const char *op, const struct csr_info *csr, const char *name,
                       uint8_t *key_der, size_t key_len, const char *key_digest)
{
	struct acmera_errmsg e = {{0}};
	struct store *st = store_of(s, &e);
	int64_t now = (int64_t)time(NULL);
	/* Read before the store is: a job finished after it is then looked for. */
	uint64_t finished_before = store_jobs_finished_here();
	if (!st) {
		reply_retry(req, 503, s->cfg->est.retry_after, e.text);
		log_request(req, label, op, 503, name, e.text);
		drop_key(key_der, key_len);
		return;
	}
	const char *chain_pem = NULL;
	if (est_worker_cert(st, csr->sha256_hex, now, &chain_pem, NULL) == 0) {
		reply_issued(s, req, chain_pem, key_der, key_len, key_digest);
		log_request(req, label, op, 200, name, "from the store");
		drop_key(key_der, key_len);
		return;
	}
	char *names = csr_names_joined(csr);
	int64_t job = 0;
	int created = 0;
	if (!names || submit_unsynced(st, csr, names, now, &job, &created, &e)) {
		free(names);
		reply_retry(req, 503, s->cfg->est.retry_after,
		            e.text[0] ? e.text : "out of memory");
		log_request(req, label, op, 503, name, e.text);
		drop_key(key_der, key_len);
		return;
	}
	free(names);
	log_event(LOG_LVL_INFO, "job.submitted", "job=%lld csr=%s names=%s joined=%s via=est",
	          (long long)job, csr->sha256_hex, name, created ? "no" : "yes");
	/* A new job only: a retry that joins one wakes no issuer for an empty claim (a
	 * failed job taken up again waits for the issuer's next look). After the line
	 * above, so that the log tells the claim after the submission. */
	if (created)
		store_jobs_submitted_publish();
	struct wait *w = calloc(1, sizeof(*w));
	if (!w) {
		reply_retry(req, 202, s->cfg->est.retry_after, "the certificate is being issued");
		drop_key(key_der, key_len);
		return;
	}
	w->s = s;
	w->req = req;
	memcpy(w->digest, csr->sha256_hex, sizeof(w->digest));
	snprintf(w->label, sizeof(w->label), "%s", label);
	snprintf(w->op, sizeof(w->op), "%s", op);
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->peer, sizeof(w->peer), "%s", current_peer);
	w->deadline_ms = mono_ms() + s->cfg->est.wait;
	w->key_der = key_der; /* the wait owns it from here */
	w->key_len = key_len;
	if (key_digest)
		snprintf(w->key_digest, sizeof(w->key_digest), "%s", key_digest);
	w->timer = evtimer_new(http_request_base(req), wait_timer, w);
	if (!w->timer) {
		wait_free(w);
		reply_retry(req, 202, s->cfg->est.retry_after, "the certificate is being issued");
		return;
	}
	w->watch.job = job;
	w->watch.on_finished = wait_woken;
	w->watch.arg = w;
	/* A job finished between finished_before and the watch wakes nothing: looked
	 * for at once, from the loop. */
	int rc = job_watch_add(http_request_base(req), &w->watch, finished_before, &e);
	if (rc < 0)
		log_event(LOG_LVL_WARN, "est.wait", "job=%lld error=%s effect=%s", (long long)job,
		          log_qv(e.text), log_qv("looks in the store every second"));
	wait_arm(w, rc == 1 ? 0 : INT64_MAX);
	/* Last: when the client has already left, this frees w at once. */
	http_request_on_gone(req, wait_gone, w);
}

/* Decodes and parses the body as a CSR; answers 415/400 itself on failure. */
static int read_csr(struct http_request *req, const char *label, const char *op,
                    const struct csr_info **csr)
{
	struct acmera_errmsg e = {{0}};
	const char *ct = http_request_header(req, "Content-Type");
	if (!ct || !est_content_type_is(ct, EST_CT_PKCS10)) {
		char why[300];
		snprintf(why, sizeof(why), "Content-Type must be %s, not %s", EST_CT_PKCS10,
		         ct ? ct : "(none)");
		reply_text(req, 415, why);
		log_request(req, label, op, 415, NULL, why);
		return -1;
	}
	size_t len = 0, der_len = 0;
	const uint8_t *body = http_request_body(req, &len);
	uint8_t *der = NULL;
	int rc = est_body_decode(body, len, &der, &der_len, &e);
	if (rc == 0)
		rc = est_worker_csr(der, der_len, csr, &e);
	free(der);
	if (rc) {
		char why[600];
		snprintf(why, sizeof(why), "bad CSR: %s", e.text);
		reply_text(req, 400, why);
		log_request(req, label, op, 400, NULL, why);
		return -1;
	}
	return 0;
}

/* The profile's checks of a device's CSR for name: names, keys, zones, and the
 * TLS channel binding when the profile requires it. A CSR the store already
 * knows passed the binding on the connection it first came on: its retries,
 * after a 202, may come on new connections. 0, or the reason in e. */
static int check_device_csr(const struct est_service *s, const struct est_profile *p,
                            struct http_request *req, const struct csr_info *csr, const char *name,
                            struct acmera_errmsg *e)
{
	struct est_policy without = p->policy;
	without.require_channel_binding = 0;
	int rc = 0;
	if (!est_worker_csr_passed(csr, p, name)) {
		rc = est_policy_check_csr(&without, csr, name, NULL, 0, e);
		if (!rc)
			rc = name_in_zones(s, name, e);
		if (!rc)
			est_worker_csr_pass(csr, p, name);
	}
	if (rc || !p->policy.require_channel_binding)
		return rc;
	size_t blen = 0;
	const uint8_t *binding = http_request_channel_binding(req, &blen, NULL);
	struct acmera_errmsg why = {{0}};
	if (est_policy_check_binding(csr, binding, blen, &why) == 0)
		return 0;
	struct store *st = store_of(s, e);
	struct store_job j = {0};
	int known = st && store_job_get_by_digest(st, csr->sha256_hex, &j, NULL) == 0;
	store_job_free(&j);
	if (known)
		return 0;
	*e = why;
	return ACMERA_ERR_REFUSED;
}

static void op_simpleenroll(struct est_service *s, const struct est_profile *p,
                            struct http_request *req, const char *label)
{
	struct est_identity id;
	struct acmera_errmsg e = {{0}};
	const struct csr_info *csr = NULL;
	char name[MAX_NAME];
	if (authenticate(s, p, req, &id, label, "simpleenroll"))
		return;
	if (read_csr(req, label, "simpleenroll", &csr))
		return;
	if (est_policy_name(&p->policy, &id, name, sizeof(name), &e) ||
	    check_device_csr(s, p, req, csr, name, &e)) {
		reply_text(req, 403, e.text);
		log_request(req, label, "simpleenroll", 403, name, e.text);
		return;
	}
	enroll_job(s, req, label, "simpleenroll", csr, name, NULL, 0, NULL);
}

/* Re-enrollment: the client authenticates with a certificate acmera issued and
 * still valid; the new CSR keeps its subject and names (RFC 7030 4.2.2). */
static void op_simplereenroll(struct est_service *s, const struct est_profile *p,
                              struct http_request *req, const char *label)
{
	struct acmera_errmsg e = {{0}};
	const struct csr_info *csr = NULL;
	struct store_cert cur = {0};
	char **names = NULL;
	size_t n = 0;
	char *leaf_pem = NULL;
	STACK_OF(X509) *chain = http_request_peer_chain(req, NULL);
	X509 *leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	struct store *st = store_of(s, &e);
	if (leaf) {
		STACK_OF(X509) *one = sk_X509_new_null();
		if (one && sk_X509_push(one, leaf) == 1)
			leaf_pem = chain_to_pem(one);
		sk_X509_free(one);
	}
	int found = ACMERA_ERR_NOTFOUND;
	if (leaf && leaf_pem && st)
		found = store_cert_find_leaf(st, leaf_pem, (int64_t)time(NULL), &cur, &e);
	/* A store that fails is not the device's fault: 503, not a 401 that tells it
	 * its certificate is no good. */
	if (leaf && (!leaf_pem || !st || (found != 0 && found != ACMERA_ERR_NOTFOUND))) {
		const char *why = e.text[0] ? e.text : "out of memory";
		reply_retry(req, 503, s->cfg->est.retry_after, why);
		log_request(req, label, "simplereenroll", 503, NULL, why);
		goto out;
	}
	if (found != 0) {
		/* Only the current certificate can re-enroll (RFC 7030 4.2.2): no HTTP
		 * scheme would help, so 403 rather than a 401 challenge. */
		const char *why = leaf
		                      ? "the client certificate is not a valid certificate issued "
		                        "by this RA"
		                      : "re-enrollment needs the current certificate as TLS client "
		                        "certificate";
		reply_text(req, 403, why);
		log_request(req, label, "simplereenroll", 403, NULL, why);
		goto out;
	}
	if (read_csr(req, label, "simplereenroll", &csr))
		goto out;
	char *cur_subject = cert_subject_line(leaf);
	int same_subject = cur_subject && csr->subject && strcmp(cur_subject, csr->subject) == 0;
	free(cur_subject);
	int same_names = cert_dns_names(leaf, &names, &n) == 0 && n == csr->n_names;
	for (size_t i = 0; same_names && i < n; i++) {
		size_t j = 0;
		while (j < csr->n_names && strcasecmp(names[i], csr->names[j]) != 0)
			j++;
		same_names = j < csr->n_names;
	}
	if (!same_subject || !same_names) {
		const char *why =
		    "the CSR must keep the subject and names of the current certificate";
		reply_text(req, 403, why);
		log_request(req, label, "simplereenroll", 403, NULL, why);
		goto out;
	}
	/* The label's profile must be the one that gives such names; its key policy
	 * and channel binding apply as to a first enrollment. */
	if (csr->n_names != 1 || est_policy_name_fits(&p->policy, csr->names[0], &e) ||
	    check_device_csr(s, p, req, csr, csr->names[0], &e)) {
		reply_text(req, 403, e.text[0] ? e.text : "re-enrollment is for one name");
		log_request(req, label, "simplereenroll", 403, NULL, e.text);
		goto out;
	}
	enroll_job(s, req, label, "simplereenroll", csr, csr->names[0], NULL, 0, NULL);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(leaf_pem);
	store_cert_free(&cur);
}

/* The RA makes the key (RFC 7030 4.4): the device's CSR authenticates the request
 * and must ask for its assigned name; the RA's own CSR for the new key goes to the
 * CA; the answer carries key and certificate (RFC 8951 4). */
static void op_serverkeygen(struct est_service *s, const struct est_profile *p,
                            struct http_request *req, const char *label)
{
	struct est_identity id;
	struct acmera_errmsg e = {{0}};
	const struct csr_info *dev = NULL;
	struct csr_info ours = {0};
	char name[MAX_NAME];
	uint8_t *csr_der = NULL, *key_der = NULL;
	size_t csr_len = 0, key_len = 0;
	if (authenticate(s, p, req, &id, label, "serverkeygen"))
		return;
	if (read_csr(req, label, "serverkeygen", &dev))
		return;
	/* The device's CSR is never a job (the RA's own CSR is), so its binding is
	 * checked on every request. */
	if (est_policy_name(&p->policy, &id, name, sizeof(name), &e) ||
	    check_device_csr(s, p, req, dev, name, &e)) {
		reply_text(req, 403, e.text);
		log_request(req, label, "serverkeygen", 403, name, e.text);
		goto out;
	}
	struct est_key_spec spec = {.kind = p->key, .rsa_bits = p->policy.rsa_min_bits};
	if (est_keygen_get(s->keygen, dev->sha256_hex, &spec, name, &csr_der, &csr_len, &key_der,
	                   &key_len, &e) ||
	    csr_parse_der(csr_der, csr_len, &ours, &e)) {
		reply_retry(req, 503, s->cfg->est.retry_after, e.text);
		log_request(req, label, "serverkeygen", 503, name, e.text);
		drop_key(key_der, key_len);
		goto out;
	}
	enroll_job(s, req, label, "serverkeygen", &ours, name, key_der, key_len, dev->sha256_hex);
out:
	free(csr_der);
	csr_info_free(&ours);
}

/* ---- routing ---- */

static const struct est_profile *profile_for(const struct est_service *s, const char *label)
{
	for (size_t i = 0; i < s->n_profiles; i++)
		if (strcmp(s->profiles[i].cfg->label, label) == 0)
			return &s->profiles[i];
	return NULL;
}

void est_service_handle(struct http_request *req, void *arg)
{
	struct est_service *s = arg;
	set_current_peer(http_request_peer(req));
	const char *path = http_request_path(req);
	const char *method = http_request_method(req);
	char label[64] = "default", op[32] = "";
	if (!path || strncmp(path, EST_PREFIX, strlen(EST_PREFIX)) != 0) {
		reply_text(req, 404, "not an EST path: try /.well-known/est/cacerts");
		return;
	}
	const char *rest = path + strlen(EST_PREFIX);
	const char *slash = strchr(rest, '/');
	if (slash) {
		size_t ll = (size_t)(slash - rest);
		if (ll == 0 || ll >= sizeof(label) || strchr(slash + 1, '/') ||
		    strlen(slash + 1) >= sizeof(op)) {
			reply_text(req, 404, "no such EST resource");
			return;
		}
		memcpy(label, rest, ll);
		label[ll] = '\0';
		snprintf(op, sizeof(op), "%s", slash + 1);
	} else if (strlen(rest) < sizeof(op)) {
		snprintf(op, sizeof(op), "%s", rest);
	}
	const struct est_profile *p = profile_for(s, label);
	if (!p) {
		reply_text(req, 404, "no such EST label");
		log_request(req, label, op, 404, NULL, "unknown label");
		return;
	}
	int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
	int is_head = strcmp(method, "HEAD") == 0;
	int wants_get = strcmp(op, "cacerts") == 0 || strcmp(op, "csrattrs") == 0;
	int known = wants_get || strcmp(op, "simpleenroll") == 0 ||
	            strcmp(op, "simplereenroll") == 0 || strcmp(op, "serverkeygen") == 0;
	if (!known) {
		reply_text(req, 404, "no such EST operation");
		log_request(req, label, op, 404, NULL, "unknown operation");
		return;
	}
	/* HEAD is a GET without the body (http_reply leaves it out). */
	if ((wants_get && !is_get && !is_head) || (!wants_get && !is_post)) {
		const char *headers[] = {"Allow", wants_get ? "GET, HEAD" : "POST", NULL};
		char m[16];
		snprintf(m, sizeof(m), "%s", method); /* the reply frees the request */
		http_reply(req, 405, "text/plain; charset=utf-8", "method not allowed\n", 19,
		           headers);
		log_request(req, label, op, 405, NULL, m);
		return;
	}
	if (strcmp(op, "cacerts") == 0)
		op_cacerts(s, req, label);
	else if (strcmp(op, "csrattrs") == 0)
		op_csrattrs(s, p, req, label);
	else if (strcmp(op, "simpleenroll") == 0)
		op_simpleenroll(s, p, req, label);
	else if (strcmp(op, "simplereenroll") == 0)
		op_simplereenroll(s, p, req, label);
	else
		op_serverkeygen(s, p, req, label);
}
