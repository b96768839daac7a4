/* The HTTP side of acmera ca, with group commit: the requests a worker handles in
 * one pass of its event loop share one store transaction, and their answers leave
 * once it is on disk. One commit per pass instead of one per change is what lets
 * a CA with a few busy RAs issue faster than its disk syncs.
 *
 * An answer never leaves before the changes it reports are durable: each request
 * runs under the open batch (store_batch_begin), and when the batch holds changes
 * its answer waits with the others for the flush, which runs once the loop has
 * handled what was ready (an event activated now runs after those already
 * active). The flush commits without a disk sync and hands the sync to the
 * store's sync thread (wal_syncer.h); the loop goes on with the next requests, and
 * the pass's answers leave when the sync returns. An answer that changed nothing
 * but may have read a commit not yet on disk waits for that commit's sync too. If
 * the commit fails, every change of the batch is undone and its answers become
 * 500 serverInternal; if the sync fails, the answers waiting for it do. Challenges
 * go to the validators only after the sync, since their threads read the store
 * through handles of their own. */
#include "ca/internal.h"
#include "ca/nonce.h"
#include "ca/wal_syncer.h"

#include "base/log.h"
#include "http/server.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct answer {
	struct http_request *req; /* NULL once the client left (or the server stopped) */
	uint64_t seq;             /* the commit it waits for; 0: its batch is still open */
	struct ca_response rs;
	char peer[80], method[16], path[256];
	struct answer *next;
};

struct validation {
	char id[CA_ID_LEN + 1];
	uint64_t seq; /* as in struct answer */
};

/* One worker thread's batch, and what waits for a sync. */
struct pass {
	struct ca_service *svc;
	struct ca_store *st;
	struct event_base *base;
	int open;      /* a batch is open on st */
	int scheduled; /* the flush is on the loop */
	int efd;       /* eventfd the sync thread wakes, -1 when none could be made */
	int armed;     /* a read of efd is on the loop */
	struct answer *head, **tail;
	struct validation *validate;
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

/* At thread exit. Answers still queued were never sent: the loop stopped before
 * their flush (their batch is undone when the store handle closes) or before
 * their sync was reported (their commit stands; a client's retry finds it). Their
 * requests stay with the server, which closes them, so they must no longer call
 * back here. */
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
	if (ps->efd >= 0) {
		wal_syncer_unwatch(ps->svc->syncer, ps->efd);
		close(ps->efd);
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
	/* Without an eventfd, the flush waits for each sync on the loop. */
	ps->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ps->efd >= 0 && wal_syncer_watch(s->syncer, ps->efd) != 0) {
		close(ps->efd);
		ps->efd = -1;
	}
	if (pthread_setspecific(pass_key, ps) != 0) {
		if (ps->efd >= 0) {
			wal_syncer_unwatch(s->syncer, ps->efd);
			close(ps->efd);
		}
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

/* Sends a, taken off the queue: as 500 serverInternal when why is set. */
static void send_off(struct pass *ps, struct answer *a, const char *why)
{
	if (why) {
		ca_response_free(&a->rs);
		ca_service_fail(ps->svc, &a->rs, why);
	}
	if (a->req)
		http_request_on_gone(a->req, NULL, NULL);
	send_answer(a);
	answer_free(a);
}

static void enqueue(struct pass *ps, struct answer *a)
{
	*ps->tail = a;
	ps->tail = &a->next;
	http_request_on_gone(a->req, client_left, a);
}

/* Sends what waited for syncs that have returned, in order, and submits their
 * challenges; waits on the loop for the next sync when more is waiting. */
static void release(struct pass *ps);

static void on_synced(evutil_socket_t fd, short what, void *arg)
{
	struct pass *ps = arg;
	uint64_t n;
	(void)what;
	ps->armed = 0;
	while (read(fd, &n, sizeof(n)) > 0)
		;
	release(ps);
}

static void wait_for_sync(struct pass *ps, uint64_t seq)
{
	if (ps->armed)
		return;
	if (ps->efd >= 0 && event_base_once(ps->base, ps->efd, EV_READ, on_synced, ps, NULL) == 0) {
		ps->armed = 1;
		return;
	}
	wal_syncer_wait(ps->svc->syncer, seq);
	release(ps);
}

static void release(struct pass *ps)
{
	uint64_t failed = 0, synced = wal_syncer_synced(ps->svc->syncer, &failed);
	uint64_t waiting = 0;
	size_t kept = 0;
	for (size_t i = 0; i < ps->n_validate; i++) {
		struct validation *v = &ps->validate[i];
		if (v->seq == 0 || v->seq > synced) {
			waiting = v->seq > waiting ? v->seq : waiting;
			ps->validate[kept++] = *v;
		} else if (v->seq > failed) {
			submit_validation(ps->svc, ps->st, v->id);
		}
	}
	ps->n_validate = kept;
	struct answer **p = &ps->head;
	while (*p) {
		struct answer *a = *p;
		if (a->seq == 0 || a->seq > synced) {
			waiting = a->seq > waiting ? a->seq : waiting;
			p = &a->next;
			continue;
		}
		*p = a->next;
		send_off(ps, a,
		         a->seq <= failed ? "the store could not sync the change to disk" : NULL);
	}
	ps->tail = p;
	if (waiting)
		wait_for_sync(ps, waiting);
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
	uint64_t seq = rc ? 0 : wal_syncer_commit(ps->svc->syncer);
	size_t kept = 0;
	for (size_t i = 0; i < ps->n_validate; i++) {
		if (ps->validate[i].seq == 0 && rc)
			continue; /* undone with its batch */
		if (ps->validate[i].seq == 0)
			ps->validate[i].seq = seq;
		ps->validate[kept++] = ps->validate[i];
	}
	ps->n_validate = kept;
	struct answer **p = &ps->head;
	while (*p) {
		struct answer *a = *p;
		if (a->seq != 0 || !rc) {
			if (a->seq == 0)
				a->seq = seq;
			p = &a->next;
			continue;
		}
		/* Its batch was undone: nothing to wait for. */
		*p = a->next;
		send_off(ps, a, "the store could not commit the change");
	}
	ps->tail = p;
	if (seq)
		wait_for_sync(ps, seq);
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
		struct validation *p = realloc(ps->validate, cap * sizeof(*ps->validate));
		if (!p) {
			/* Left processing: validated again at the next start. */
			log_event(LOG_LVL_ERROR, "ca.validation", "challenge=%s error=%s", id,
			          log_qv("out of memory"));
			return;
		}
		ps->validate = p;
		ps->cap_validate = cap;
	}
	struct validation *v = &ps->validate[ps->n_validate++];
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->seq = 0;
}

/* Opens this thread's batch for the request about to run; 0 when none could be. */
static int open_batch(struct pass *ps)
{
	if (ps->open)
		return 1;
	struct acmera_errmsg e = {{0}};
	ps->st = ca_service_store(ps->svc, &e);
	ps->open = ps->st && ca_store_batch_begin_nosync(ps->st, NULL) == 0;
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
	ps->base = http_request_base(req);
	int batched = open_batch(ps);
	ca_service_process(s, &rq, &a->rs);
	if (!batched || !ca_store_batch_pending(ps->st)) {
		/* Nothing of this pass awaits a commit (a flush due implies changes):
		 * hold no batch, and answer once what it may have read is on disk. */
		if (batched) {
			ca_store_batch_end(ps->st, NULL);
			ps->open = 0;
		}
		uint64_t seen = wal_syncer_unsynced(s->syncer);
		if (!seen) {
			send_answer(a);
			answer_free(a);
			return;
		}
		a->seq = seen;
		enqueue(ps, a);
		wait_for_sync(ps, seen);
		return;
	}
	enqueue(ps, a);
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
