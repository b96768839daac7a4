/* The HTTP side of acmera ca, with group commit: the requests a worker handles in
 * one pass of its event loop share one store transaction, and their answers leave
 * once it is committed. A commit is a disk sync (SQLite synchronous = FULL); one
 * per pass instead of one per change is what lets a CA with a few busy RAs issue
 * faster than its disk syncs.
 *
 * An answer never leaves before the changes it reports are durable: each request
 * runs under the open batch (store_batch_begin), and when the batch holds changes
 * its answer waits with the others for the flush, which runs once the loop has
 * handled what was ready (an event activated now runs after those already
 * active). If the commit fails, every change of the batch is undone and every
 * waiting answer becomes 500 serverInternal. Challenges go to the validators only
 * after the commit, since their threads read the store through handles of their
 * own. */
#include "ca/internal.h"
#include "ca/nonce.h"

#include "base/log.h"
#include "http/server.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct answer {
	struct http_request *req; /* NULL once the client left (or the server stopped) */
	struct ca_response rs;
	char peer[80], method[16], path[256];
	struct answer *next;
};

/* One worker thread's batch. */
struct pass {
	struct ca_service *svc;
	struct ca_store *st;
	int open;      /* a batch is open on st */
	int scheduled; /* the flush is on the loop */
	struct answer *head, **tail;
	char (*validate)[CA_ID_LEN + 1];
	size_t n_validate, cap_validate;
};

static pthread_key_t pass_key;
static pthread_once_t pass_once = PTHREAD_ONCE_INIT;
static int pass_key_ok;

static void answer_free(struct answer *a)
{
	ca_response_free(&a->rs);
	free(a);
}

/* At thread exit. Answers still queued were never sent (the loop stopped before
 * their flush; their batch is undone when the store handle closes): their requests
 * stay with the server, which closes them, so they must no longer call back here. */
static void pass_free(void *p)
{
	struct pass *ps = p;
	while (ps->head) {
		struct answer *a = ps->head;
		ps->head = a->next;
		if (a->req)
			http_request_on_gone(a->req, NULL, NULL);
		answer_free(a);
	}
	free(ps->validate);
	free(ps);
}

static void make_key(void)
{
	pass_key_ok = pthread_key_create(&pass_key, pass_free) == 0;
}

/* This thread's pass, made on first use; NULL when out of memory. */
static struct pass *this_pass(struct ca_service *s)
{
	pthread_once(&pass_once, make_key);
	if (!pass_key_ok)
		return NULL;
	struct pass *ps = pthread_getspecific(pass_key);
	if (ps) {
		ps->svc = s;
		return ps;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->svc = s;
	ps->tail = &ps->head;
	if (pthread_setspecific(pass_key, ps) != 0) {
		free(ps);
		return NULL;
	}
	return ps;
}

static void send_answer(struct answer *a)
{
	const struct ca_response *rs = &a->rs;
	if (a->req)
		http_reply(a->req, rs->status, rs->content_type, rs->body, rs->len,
		           (const char *const *)rs->headers);
	log_event(rs->status >= 500   ? LOG_LVL_ERROR
	          : rs->status >= 400 ? LOG_LVL_WARN
	                              : LOG_LVL_INFO,
	          "ca.request", "peer=%s method=%s path=%s status=%d account=%s problem=%s type=%s",
	          a->peer, log_qv(a->method), log_qv(a->path), rs->status,
	          rs->account[0] ? rs->account : "-", rs->problem[0] ? rs->problem : "-",
	          log_qv(rs->content_type ? rs->content_type : "-"));
}

static void client_left(void *arg)
{
	struct answer *a = arg;
	a->req = NULL;
}

/* Submits a committed processing challenge; with no room, the verdict says so. */
static void submit_validation(struct ca_service *s, struct ca_store *st, const char *id)
{
	if (ca_validators_submit(s->validators, id) == 0)
		return;
	struct acmera_errmsg e = {{0}};
	char *err = ca_problem_text("serverInternal", 503, "too many validations at once");
	if (ca_store_challenge_finish(st, id, err ? err : "{}", (int64_t)time(NULL), 0, &e))
		log_event(LOG_LVL_ERROR, "ca.validation", "challenge=%s error=%s", id,
		          log_qv(e.text));
	free(err);
}

static void flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pass *ps = arg;
	struct acmera_errmsg e = {{0}};
	ps->scheduled = 0;
	ps->open = 0;
	int rc = ca_store_batch_end(ps->st, &e);
	if (rc)
		log_event(LOG_LVL_ERROR, "ca.store",
		          "error=%s effect=\"batch undone, answered 500\"", log_qv(e.text));
	for (size_t i = 0; i < ps->n_validate; i++)
		if (rc == 0)
			submit_validation(ps->svc, ps->st, ps->validate[i]);
	ps->n_validate = 0;
	while (ps->head) {
		struct answer *a = ps->head;
		ps->head = a->next;
		if (rc) {
			ca_response_free(&a->rs);
			ca_service_fail(ps->svc, &a->rs, "the store could not commit the change");
		}
		if (a->req)
			http_request_on_gone(a->req, NULL, NULL);
		send_answer(a);
		answer_free(a);
	}
	ps->tail = &ps->head;
}

void ca_validate_when_committed(struct ca_ctx *c, const char *id)
{
	pthread_once(&pass_once, make_key);
	struct pass *ps = pass_key_ok ? pthread_getspecific(pass_key) : NULL;
	if (!ps || !ps->open || !ca_store_batch_pending(c->st)) {
		submit_validation(c->svc, c->st, id);
		return;
	}
	if (ps->n_validate == ps->cap_validate) {
		size_t cap = ps->cap_validate ? 2 * ps->cap_validate : 8;
		void *p = realloc(ps->validate, cap * sizeof(*ps->validate));
		if (!p) {
			/* Left processing: validated again at the next start. */
			log_event(LOG_LVL_ERROR, "ca.validation", "challenge=%s error=%s", id,
			          log_qv("out of memory"));
			return;
		}
		ps->validate = p;
		ps->cap_validate = cap;
	}
	snprintf(ps->validate[ps->n_validate++], CA_ID_LEN + 1, "%s", id);
}

/* Opens this thread's batch for the request about to run; 0 when none could be. */
static int open_batch(struct pass *ps)
{
	if (ps->open)
		return 1;
	struct acmera_errmsg e = {{0}};
	ps->st = ca_service_store(ps->svc, &e);
	ps->open = ps->st && ca_store_batch_begin(ps->st, NULL) == 0;
	return ps->open;
}

void ca_service_handle(struct http_request *req, void *arg)
{
	struct ca_service *s = arg;
	struct answer *a = calloc(1, sizeof(*a));
	struct pass *ps = a ? this_pass(s) : NULL;
	if (!a || !ps) {
		free(a);
		static const char text[] = "out of memory\n";
		http_reply(req, 503, "text/plain; charset=utf-8", text, sizeof(text) - 1, NULL);
		return;
	}
	size_t len = 0;
	const uint8_t *body = http_request_body(req, &len);
	struct ca_request rq = {
	    .method = http_request_method(req),
	    .path = http_request_path(req),
	    .content_type = http_request_header(req, "Content-Type"),
	    .accept = http_request_header(req, "Accept"),
	    .body = body,
	    .body_len = len,
	};
	/* Copied for the log line: http_reply frees the request. */
	snprintf(a->peer, sizeof(a->peer), "%s", http_request_peer(req));
	snprintf(a->method, sizeof(a->method), "%s", rq.method ? rq.method : "-");
	snprintf(a->path, sizeof(a->path), "%s", rq.path ? rq.path : "-");
	a->req = req;
	int batched = open_batch(ps);
	ca_service_process(s, &rq, &a->rs);
	if (!batched || !ca_store_batch_pending(ps->st)) {
		/* Nothing of this pass awaits a commit (a flush due implies changes):
		 * answer now, and hold no batch. */
		if (batched) {
			ca_store_batch_end(ps->st, NULL);
			ps->open = 0;
		}
		send_answer(a);
		answer_free(a);
		return;
	}
	*ps->tail = a;
	ps->tail = &a->next;
	http_request_on_gone(req, client_left, a);
	if (!ps->scheduled) {
		static const struct timeval now = {0, 0};
		if (event_base_once(http_request_base(req), -1, EV_TIMEOUT, flush, ps, &now) == 0) {
			ps->scheduled = 1;
		} else {
			/* No event: commit at once. */
			ps->scheduled = 1;
			flush(-1, EV_TIMEOUT, ps);
		}
	}
}
