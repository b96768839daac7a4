/* ACME transport over one libcurl multi handle. See client.h. */
#include "acme/client.h"

#include "acme/jws.h"
#include "acme/nonce.h"
#include "base/clock.h"
#include "base/log.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEADER_MAX 4096

enum req_kind { REQ_GET, REQ_HEAD_NONCE, REQ_POST };

struct request {
	struct acme_client *c;
	enum req_kind kind;
	char *url;
	char *payload; /* NULL: POST-as-GET */
	char *accept;
	int use_jwk;
	int badnonce_left;
	int retries_left;
	struct request *wait_next; /* in the client's queue of POSTs awaiting a nonce */
	int64_t wait_since_ms;     /* when it joined that queue */
	int64_t sent_ms;           /* when it went to curl */
	acme_cb cb;
	void *arg;
	CURL *easy;
	struct curl_slist *headers;
	char *body_sent;
	struct acme_response *resp;
	char nonce_hdr[NONCE_MAX_LEN + 1];
	char retry_after_hdr[64];
	int body_overflow;
	struct request *live_prev, *live_next; /* in the client's in-flight list */
};

struct timer {
	int64_t due_ms;
	acme_timer_cb cb;
	void *arg;
	struct request *resend; /* a request waiting to be sent again */
	struct timer *next;
};

struct acme_client {
	CURLM *multi;
	char *directory_url;
	char *ca_bundle;
	long timeout_s;
	struct acme_directory dir;
	int have_dir;
	struct nonce_pool nonces;
	EVP_PKEY *key;
	struct jws_signer *signer; /* for key, made at its first signature */
	char *kid;
	char *thumbprint;
	struct timer *timers; /* sorted by due_ms */
	void (*wait_hook)(void *arg);
	void *wait_hook_arg;
	int wake_fd;                       /* or -1 */
	int woken;                         /* a wait saw wake_fd readable (acme_client_woken) */
	const volatile sig_atomic_t *stop; /* synchronous calls give up once it is set */
	struct request *live;              /* requests handed to curl */
	/* POSTs waiting for a nonce, oldest first. Every answer brings one nonce, so
	 * the queue drains as answers arrive; newNonce is asked when nothing is in
	 * flight, or, once the wait exceeds ACME_NONCE_PATIENCE_MS (see pump_waiting),
	 * for the part of the queue that no request in flight will feed (at most
	 * ACME_NONCE_CONCURRENCY at once, which also bounds the requests in flight). */
	struct request *wait_head, *wait_tail;
	size_t n_waiting;
	int in_flight;
	int64_t latency_ms; /* moving average of answer times, 0 until one is known */
	uint64_t requests;
};

void acme_response_free(struct acme_response *r)
{
	if (!r)
		return;
	buf_free(&r->body);
	free(r->location);
	free(r->content_type);
	for (size_t i = 0; i < r->n_alternates; i++)
		free(r->alternates[i]);
	free(r->alternates);
	if (r->problem) {
		acme_problem_free(r->problem);
		free(r->problem);
	}
	free(r);
}

static void request_free(struct request *q)
{
	if (!q)
		return;
	if (q->easy)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->headers);
	free(q->url);
	free(q->payload);
	free(q->accept);
	free(q->body_sent);
	acme_response_free(q->resp);
	free(q);
}

static void timer_add(struct acme_client *c, int64_t delay_ms, acme_timer_cb cb, void *arg,
                      struct request *resend)
{
	struct timer *t = calloc(1, sizeof(*t));
	if (!t) {
		/* Out of memory: fire at once rather than lose the event. */
		if (cb)
			cb(arg);
		return;
	}
	t->due_ms = mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	t->cb = cb;
	t->arg = arg;
	t->resend = resend;
	struct timer **p = &c->timers;
	while (*p && (*p)->due_ms <= t->due_ms)
		p = &(*p)->next;
	t->next = *p;
	*p = t;
}

void acme_client_after(struct acme_client *c, int64_t delay_ms, acme_timer_cb cb, void *arg)
{
	timer_add(c, delay_ms, cb, arg, NULL);
}

int acme_client_new(const struct acme_client_opts *o, struct acme_client **out,
                    struct acmera_errmsg *e)
{
	static int curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return acmera_fail(e, ACMERA_ERR_IO, "libcurl initialisation failed");
		curl_ready = 1;
	}
	struct acme_client *c = calloc(1, sizeof(*c));
	if (!c)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	c->multi = curl_multi_init();
	c->directory_url = strdup(o->directory_url ? o->directory_url : "");
	c->ca_bundle = o->ca_bundle ? strdup(o->ca_bundle) : NULL;
	c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 30;
	c->wake_fd = -1;
	nonce_pool_init(&c->nonces);
	if (!c->multi || !c->directory_url || (o->ca_bundle && !c->ca_bundle)) {
		acme_client_free(c);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	                  (long)(o->max_connections > 0 ? o->max_connections : 8));
	*out = c;
	return 0;
}

void acme_client_free(struct acme_client *c)
{
	if (!c)
		return;
	/* Requests still in flight are abandoned without callbacks. */
	while (c->wait_head) {
		struct request *q = c->wait_head;
		c->wait_head = q->wait_next;
		request_free(q);
	}
	while (c->live) {
		struct request *q = c->live;
		c->live = q->live_next;
		curl_multi_remove_handle(c->multi, q->easy);
		request_free(q);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (c->timers) {
		struct timer *t = c->timers;
		c->timers = t->next;
		request_free(t->resend);
		free(t);
	}
	if (c->have_dir)
		acme_directory_free(&c->dir);
	free(c->directory_url);
	free(c->ca_bundle);
	free(c->kid);
	free(c->thumbprint);
	jws_signer_free(c->signer);
	free(c);
}

const struct acme_directory *acme_client_directory(const struct acme_client *c)
{
	return c->have_dir ? &c->dir : NULL;
}

const char *acme_client_directory_url(const struct acme_client *c)
{
	return c->directory_url;
}

void acme_client_set_key(struct acme_client *c, EVP_PKEY *key, const char *kid)
{
	/* Copied before the old one goes: kid may be acme_client_kid(c) itself. */
	char *copy = kid ? strdup(kid) : NULL;
	/* The signer holds a reference to its key, so no other key can take the
	 * same address while it lives: comparing pointers is enough. */
	if (key != c->key) {
		jws_signer_free(c->signer);
		c->signer = NULL;
	}
	c->key = key;
	free(c->kid);
	c->kid = copy;
	free(c->thumbprint);
	c->thumbprint = key ? jws_thumbprint(key) : NULL;
}

const char *acme_client_kid(const struct acme_client *c)
{
	return c->kid;
}
const char *acme_client_thumbprint(const struct acme_client *c)
{
	return c->thumbprint;
}
uint64_t acme_client_requests(const struct acme_client *c)
{
	return c->requests;
}

/* ---- response collection ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct request *q = arg;
	size_t len = size * n;
	if (q->resp->body.len + len > ACME_MAX_BODY) {
		q->body_overflow = 1;
		return 0; /* aborts the transfer */
	}
	if (buf_append(&q->resp->body, p, len))
		return 0;
	return len;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static void add_alternates(struct acme_response *r, const char *value)
{
	char **urls = NULL;
	size_t n = 0;
	if (http_link_parse(value, "alternate", &urls, &n) || n == 0)
		return;
	char **all = realloc(r->alternates, (r->n_alternates + n) * sizeof(*all));
	if (!all) {
		for (size_t i = 0; i < n; i++)
			free(urls[i]);
		free(urls);
		return;
	}
	memcpy(all + r->n_alternates, urls, n * sizeof(*urls));
	r->alternates = all;
	r->n_alternates += n;
	free(urls);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct request *q = arg;
	size_t len = size * n;
	if (len > HEADER_MAX)
		return len; /* ignore absurd headers rather than fail the exchange */
	/* A new status line (after a 100 or a redirect) starts a fresh header set. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		free(q->resp->location);
		q->resp->location = NULL;
		return len;
	}
	char *v;
	if ((v = header_value(p, len, "Replay-Nonce"))) {
		/* Too long to be ours to keep: dropped, not truncated into another value. */
		if (strlen(v) < sizeof(q->nonce_hdr))
			memcpy(q->nonce_hdr, v, strlen(v) + 1);
		free(v);
	} else if ((v = header_value(p, len, "Location"))) {
		free(q->resp->location);
		q->resp->location = v;
	} else if ((v = header_value(p, len, "Content-Type"))) {
		free(q->resp->content_type);
		q->resp->content_type = v;
	} else if ((v = header_value(p, len, "Retry-After"))) {
		snprintf(q->retry_after_hdr, sizeof(q->retry_after_hdr), "%s", v);
		free(v);
	} else if ((v = header_value(p, len, "Link"))) {
		add_alternates(q->resp, v);
		free(v);
	}
	return len;
}

/* ---- sending ---- */

static void send_request(struct request *q);

static struct request *request_new(struct acme_client *c, enum req_kind kind, const char *url,
                                   const char *payload, const char *accept, acme_cb cb, void *arg)
{
	struct request *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->c = c;
	q->kind = kind;
	q->url = strdup(url ? url : "");
	q->payload = payload ? strdup(payload) : NULL;
	q->accept = accept ? strdup(accept) : NULL;
	q->badnonce_left = ACME_BADNONCE_RETRIES;
	/* A failed newNonce fails the queue at once (see nonce_done) rather than
	 * waiting in a retry while more are sent. */
	q->retries_left = kind == REQ_HEAD_NONCE ? 0 : 3;
	q->cb = cb;
	q->arg = arg;
	if (!q->url || (payload && !q->payload) || (accept && !q->accept)) {
		request_free(q);
		return NULL;
	}
	return q;
}

static void pump_waiting(struct acme_client *c);
static void fire(struct request *q, int rc, struct acmera_errmsg *e);

static void nonce_done(void *arg, int rc, struct acme_response *r, const struct acmera_errmsg *e)
{
	struct acme_client *c = arg;
	acme_response_free(r);
	if (rc) {
		/* The CA cannot give nonces: every waiting request fails with the reason
		 * rather than asking again in a tight loop. */
		struct acmera_errmsg copy = *e;
		acmera_fail_wrap(&copy, rc, "newNonce");
		/* Detach the queue first: callbacks may queue new requests. */
		struct request *q = c->wait_head;
		c->wait_head = c->wait_tail = NULL;
		c->n_waiting = 0;
		while (q) {
			struct request *next = q->wait_next;
			struct acmera_errmsg each = copy;
			fire(q, rc, &each);
			q = next;
		}
		return;
	}
	/* The nonce itself went into the pool in on_done. */
	pump_waiting(c);
}

static int prepare_easy(struct request *q, struct acmera_errmsg *e)
{
	struct acme_client *c = q->c;
	if (q->easy) {
		curl_easy_reset(q->easy);
	} else {
		q->easy = curl_easy_init();
		if (!q->easy)
			return acmera_fail(e, ACMERA_ERR_NOMEM, "curl_easy_init failed");
	}
	curl_slist_free_all(q->headers);
	q->headers = NULL;
	acme_response_free(q->resp);
	q->resp = calloc(1, sizeof(*q->resp));
	if (!q->resp)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	q->resp->retry_after = -1;
	q->nonce_hdr[0] = q->retry_after_hdr[0] = '\0';
	q->body_overflow = 0;

	CURL *h = q->easy;
	curl_easy_setopt(h, CURLOPT_URL, q->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_s < 10 ? c->timeout_s : 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "acmera/0.1");
	if (c->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_bundle);
	if (q->accept) {
		char hdr[256];
		snprintf(hdr, sizeof(hdr), "Accept: %s", q->accept);
		q->headers = curl_slist_append(q->headers, hdr);
	}
	if (q->kind == REQ_HEAD_NONCE) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (q->kind == REQ_POST) {
		q->headers = curl_slist_append(q->headers, "Content-Type: application/jose+json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body_sent);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body_sent));
	}
	/* curl adds "Expect: 100-continue" for large bodies; ACME servers need none. */
	q->headers = curl_slist_append(q->headers, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->headers);
	return 0;
}

static void send_request(struct request *q)
{
	struct acme_client *c = q->c;
	struct acmera_errmsg e = {{0}};
	int rc;
	/* A resend must not hand a previous attempt's answer to its callback. */
	acme_response_free(q->resp);
	q->resp = NULL;
	if (q->kind == REQ_POST) {
		char nonce[NONCE_MAX_LEN + 1];
		if (!c->have_dir || !c->dir.new_nonce) {
			fire(q, acmera_fail(&e, ACMERA_ERR_PROTO, "no newNonce URL known"), &e);
			return;
		}
		if (nonce_pool_take(&c->nonces, nonce) != 0) {
			q->wait_next = NULL;
			q->wait_since_ms = mono_ms();
			if (c->wait_tail)
				c->wait_tail->wait_next = q;
			else
				c->wait_head = q;
			c->wait_tail = q;
			c->n_waiting++;
			pump_waiting(c);
			return;
		}
		if (!c->key) {
			fire(q, acmera_fail(&e, ACMERA_ERR_INVAL, "no account key"), &e);
			return;
		}
		if (!c->signer && (rc = jws_signer_new(c->key, &c->signer, &e)) != 0) {
			fire(q, rc, &e);
			return;
		}
		free(q->body_sent);
		q->body_sent = jws_signer_sign(c->signer, q->use_jwk ? NULL : c->kid, nonce, q->url,
		                               q->payload, &e);
		if (!q->body_sent) {
			fire(q, ACMERA_ERR_INVAL, &e);
			return;
		}
	}
	rc = prepare_easy(q, &e);
	if (rc) {
		fire(q, rc, &e);
		return;
	}
	if (curl_multi_add_handle(c->multi, q->easy) != CURLM_OK) {
		fire(q, acmera_fail(&e, ACMERA_ERR_IO, "curl_multi_add_handle failed"), &e);
		return;
	}
	q->live_prev = NULL;
	q->live_next = c->live;
	if (c->live)
		c->live->live_prev = q;
	c->live = q;
	c->in_flight++;
	c->requests++;
	q->sent_ms = mono_ms();
	log_event(LOG_LVL_DEBUG, "acme.request", "method=%s url=%s",
	          q->kind == REQ_POST  ? "POST"
	          : q->kind == REQ_GET ? "GET"
	                               : "HEAD",
	          q->url);
}

static void pump_waiting(struct acme_client *c)
{
	while (c->wait_head && nonce_pool_size(&c->nonces) > 0) {
		struct request *q = c->wait_head;
		c->wait_head = q->wait_next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		c->n_waiting--;
		send_request(q);
	}
	if (!c->wait_head)
		return;
	/* Every request in flight (newNonce included) will bring a nonce. Waiting
	 * for it costs no request, so newNonce is asked only with nothing in flight,
	 * or when the wait is long: the oldest has waited ACME_NONCE_PATIENCE_MS (a
	 * slow answer), or the answers in flight would take that long to feed the
	 * whole queue at the usual answer time (a deep queue). Then it is asked for
	 * the part of the queue nothing in flight will feed, within the bound. */
	int64_t rounds =
	    c->in_flight > 0 ? ((int64_t)c->n_waiting + c->in_flight - 1) / c->in_flight : 0;
	int patient = c->in_flight > 0 &&
	              mono_ms() - c->wait_head->wait_since_ms < ACME_NONCE_PATIENCE_MS &&
	              rounds * c->latency_ms < ACME_NONCE_PATIENCE_MS;
	while (!patient && c->n_waiting > (size_t)c->in_flight &&
	       c->in_flight < ACME_NONCE_CONCURRENCY) {
		struct request *n =
		    request_new(c, REQ_HEAD_NONCE, c->dir.new_nonce, NULL, NULL, nonce_done, c);
		if (!n)
			return;
		send_request(n);
	}
}

static void fire(struct request *q, int rc, struct acmera_errmsg *e)
{
	struct acme_response *r = q->resp;
	q->resp = NULL;
	acme_cb cb = q->cb;
	void *arg = q->arg;
	request_free(q);
	if (cb)
		cb(arg, rc, r, e);
	else
		acme_response_free(r);
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* Takes q off curl and out of the client's in-flight list. */
static void unlink_live(struct acme_client *c, struct request *q)
{
	curl_multi_remove_handle(c->multi, q->easy);
	if (q->live_prev)
		q->live_prev->live_next = q->live_next;
	else
		c->live = q->live_next;
	if (q->live_next)
		q->live_next->live_prev = q->live_prev;
	q->live_prev = q->live_next = NULL;
	c->in_flight--;
}

/* Decides what a finished transfer means: done, retry, or error. */
static void on_done(struct request *q, CURLcode res)
{
	struct acme_client *c = q->c;
	struct acmera_errmsg e = {{0}};
	struct acme_response *r = q->resp;
	unlink_live(c, q);
	int64_t took = mono_ms() - q->sent_ms;
	took = c->latency_ms ? (c->latency_ms * 7 + took) / 8 : took;
	c->latency_ms = took > 0 ? took : 1;

	if (q->nonce_hdr[0])
		nonce_pool_put(&c->nonces, q->nonce_hdr, strlen(q->nonce_hdr));
	/* Callbacks below may queue more; the queue is pumped again after them. */
	pump_waiting(c);
	if (q->body_overflow) {
		fire(q,
		     acmera_fail(&e, ACMERA_ERR_PROTO, "%s: response larger than %u bytes", q->url,
		                 ACME_MAX_BODY),
		     &e);
		return;
	}
	if (res != CURLE_OK) {
		fire(q,
		     acmera_fail(&e, ACMERA_ERR_AGAIN, "%s: %s", q->url, curl_easy_strerror(res)),
		     &e);
		return;
	}
	curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (q->retry_after_hdr[0]) {
		int64_t s;
		if (http_retry_after_parse(q->retry_after_hdr, wall_now(), &s) == 0)
			r->retry_after = s;
	}
	if (r->status >= 200 && r->status < 300) {
		fire(q, 0, &e);
		return;
	}

	r->problem = NULL;
	if (r->content_type && strncasecmp(r->content_type, "application/problem+json", 24) == 0) {
		struct acme_problem *p = calloc(1, sizeof(*p));
		if (p && acme_problem_parse(buf_str(&r->body), r->body.len, p, NULL) == 0)
			r->problem = p;
		else
			free(p);
	}
	char why[400];
	if (r->problem)
		acme_problem_describe(r->problem, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "HTTP %ld", r->status);

	if (q->kind == REQ_POST && r->problem && acme_problem_is(r->problem, "badNonce") &&
	    q->badnonce_left-- > 0) {
		log_event(LOG_LVL_DEBUG, "acme.bad_nonce", "url=%s retries_left=%d", q->url,
		          q->badnonce_left);
		send_request(q);
		return;
	}
	int temporary =
	    r->status >= 500 || (r->problem && (acme_problem_is(r->problem, "serverInternal") ||
	                                        acme_problem_is(r->problem, "rateLimited")));
	int64_t wait = r->retry_after >= 0 ? r->retry_after : 1;
	if (temporary && wait <= ACME_RETRY_INLINE_MAX && q->retries_left-- > 0) {
		log_event(LOG_LVL_WARN, "acme.retry", "url=%s status=%ld retry_after=%lld %s",
		          q->url, r->status, (long long)wait, why);
		timer_add(c, wait * 1000, NULL, NULL, q);
		return;
	}
	fire(q,
	     acmera_fail(&e, temporary ? ACMERA_ERR_AGAIN : ACMERA_ERR_REFUSED, "%s: %s", q->url,
	                 why),
	     &e);
}

static void run_due_timers(struct acme_client *c)
{
	int64_t now = mono_ms();
	/* Detach the due ones first: a callback may add new timers. */
	struct timer *due = NULL, **tail = &due;
	while (c->timers && c->timers->due_ms <= now) {
		struct timer *t = c->timers;
		c->timers = t->next;
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	while (due) {
		struct timer *t = due;
		due = t->next;
		if (t->resend)
			send_request(t->resend);
		else if (t->cb)
			t->cb(t->arg);
		free(t);
	}
}

void acme_client_set_stop(struct acme_client *c, const volatile sig_atomic_t *stop)
{
	c->stop = stop;
}

void acme_client_set_wake_fd(struct acme_client *c, int fd)
{
	c->wake_fd = fd;
	c->woken = 0;
}

int acme_client_woken(struct acme_client *c)
{
	int w = c->woken;
	c->woken = 0;
	return w;
}

void acme_client_set_wait_hook(struct acme_client *c, void (*fn)(void *arg), void *arg)
{
	c->wait_hook = fn;
	c->wait_hook_arg = arg;
}

int acme_client_step(struct acme_client *c, int wait_ms)
{
	int running = 0;
	run_due_timers(c);
	pump_waiting(c);
	if (c->timers) {
		int64_t until = c->timers->due_ms - mono_ms();
		if (until < wait_ms)
			wait_ms = until < 0 ? 0 : (int)until;
	}
	if (c->wait_head) {
		/* Wake up when the oldest waiting POST runs out of patience; past it,
		 * pump_waiting did what the bound allows and answers wake the poll. */
		int64_t until = c->wait_head->wait_since_ms + ACME_NONCE_PATIENCE_MS - mono_ms();
		if (until > 0 && until < wait_ms)
			wait_ms = (int)until;
	}
	if (c->wait_hook)
		c->wait_hook(c->wait_hook_arg);
	int has_wake = c->wake_fd >= 0;
	if (c->in_flight > 0) {
		struct curl_waitfd wake = {.fd = c->wake_fd, .events = CURL_WAIT_POLLIN};
		if (curl_multi_poll(c->multi, &wake, has_wake, wait_ms, NULL) == CURLM_OK)
			c->woken |= has_wake && (wake.revents & CURL_WAIT_POLLIN);
	} else if (wait_ms > 0) {
		/* Nothing on the wire: the caller asked to wait, so wait (for the wake
		 * descriptor, if any), not spin. */
		struct pollfd p = {.fd = c->wake_fd, .events = POLLIN};
		if (poll(&p, has_wake, wait_ms) > 0)
			c->woken |= (p.revents & POLLIN) != 0;
	}
	curl_multi_perform(c->multi, &running);
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct request *q = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		on_done(q, m->data.result);
	}
	pump_waiting(c);
	run_due_timers(c);
	int timers = 0;
	for (struct timer *t = c->timers; t; t = t->next)
		timers++;
	return c->in_flight + timers + (int)c->n_waiting;
}

static void queue(struct acme_client *c, enum req_kind kind, const char *url, const char *payload,
                  const char *accept, int use_jwk, acme_cb cb, void *arg)
{
	struct request *q = request_new(c, kind, url, payload, accept, cb, arg);
	if (!q) {
		struct acmera_errmsg e;
		acmera_fail(&e, ACMERA_ERR_NOMEM, "out of memory");
		if (cb)
			cb(arg, ACMERA_ERR_NOMEM, NULL, &e);
		return;
	}
	q->use_jwk = use_jwk;
	send_request(q);
}

void acme_post(struct acme_client *c, const char *url, const char *payload, const char *accept,
               acme_cb cb, void *arg)
{
	queue(c, REQ_POST, url, payload, accept, 0, cb, arg);
}

void acme_post_jwk(struct acme_client *c, const char *url, const char *payload, acme_cb cb,
                   void *arg)
{
	queue(c, REQ_POST, url, payload, NULL, 1, cb, arg);
}

/* ---- synchronous use ---- */

struct sync_call {
	int done;
	int rc;
	struct acme_response *r;
	struct acmera_errmsg e;
};

static void sync_done(void *arg, int rc, struct acme_response *r, const struct acmera_errmsg *e)
{
	struct sync_call *s = arg;
	s->done = 1;
	s->rc = rc;
	s->r = r;
	if (rc && e)
		s->e = *e;
}

/* Takes the request of s out of the client, wherever it waits: in flight, for a
 * nonce, or for a retry. Its callback is then never called. */
static void cancel_sync(struct acme_client *c, struct sync_call *s)
{
	for (struct request **p = &c->wait_head, *prev = NULL; *p;) {
		struct request *q = *p;
		if (q->arg != s || q->cb != sync_done) {
			prev = q;
			p = &q->wait_next;
			continue;
		}
		*p = q->wait_next;
		if (c->wait_tail == q)
			c->wait_tail = prev;
		c->n_waiting--;
		request_free(q);
	}
	for (struct request *q = c->live, *next; q; q = next) {
		next = q->live_next;
		if (q->arg != s || q->cb != sync_done)
			continue;
		unlink_live(c, q);
		request_free(q);
	}
	for (struct timer **p = &c->timers; *p;) {
		struct timer *t = *p;
		if (!t->resend || t->resend->arg != s || t->resend->cb != sync_done) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		request_free(t->resend);
		free(t);
	}
}

static int sync_wait(struct acme_client *c, struct sync_call *s, struct acme_response **out,
                     struct acmera_errmsg *e)
{
	while (!s->done) {
		if (c->stop && *c->stop) {
			cancel_sync(c, s);
			return acmera_fail(e, ACMERA_ERR_TIMEOUT, "stopped before the CA answered");
		}
		/* A signal cuts the wait short; the bound covers one that does not. */
		acme_client_step(c, 200);
	}
	if (s->rc && e)
		*e = s->e;
	if (out)
		*out = s->r;
	else
		acme_response_free(s->r);
	return s->rc;
}

int acme_post_sync(struct acme_client *c, const char *url, const char *payload, const char *accept,
                   int use_jwk, struct acme_response **out, struct acmera_errmsg *e)
{
	struct sync_call s = {0};
	if (out)
		*out = NULL;
	queue(c, REQ_POST, url, payload, accept, use_jwk, sync_done, &s);
	return sync_wait(c, &s, out, e);
}

int acme_client_load_directory(struct acme_client *c, struct acmera_errmsg *e)
{
	struct sync_call s = {0};
	struct acme_response *r = NULL;
	queue(c, REQ_GET, c->directory_url, NULL, "application/json", 0, sync_done, &s);
	int rc = sync_wait(c, &s, &r, e);
	if (rc) {
		acme_response_free(r);
		return acmera_fail_wrap(e, rc, "ACME directory");
	}
	struct acme_directory d;
	rc = acme_directory_parse(buf_str(&r->body), r->body.len, &d, e);
	acme_response_free(r);
	if (rc)
		return acmera_fail_wrap(e, rc, "ACME directory %s", c->directory_url);
	if (c->have_dir)
		acme_directory_free(&c->dir);
	c->dir = d;
	c->have_dir = 1;
	return 0;
}
