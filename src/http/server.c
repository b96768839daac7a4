/* The HTTPS server: its workers (one thread, event loop, evhttp and listening
 * socket each), their start and stop, and the accept switch that enforces
 * max_connections.
 *
 * At max_connections a worker stops accepting: new clients wait in the kernel's
 * accept queue (their TCP connect succeeds, the TLS handshake waits) until one of
 * the worker's connections closes, or give up on their own time. A failed accept
 * (EMFILE and the like) pauses accepting for a second instead of spinning. */
#include "http/internal.h"

#include "base/log.h"

#include <errno.h>
#include <event2/listener.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_CONNECTIONS 1000
#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_MAX_HEADERS (16 * 1024)
#define DEFAULT_HANDSHAKE_MS 10000
#define DEFAULT_HEADER_MS 10000
#define DEFAULT_IDLE_MS 60000
#define MAX_WORKERS 256
#define MAX_SIZE (1024L * 1024 * 1024)
#define STOP_TICK_MS 100   /* how often the drain looks whether the answers are out */
#define STOP_DRAIN_MS 1000 /* longest wait for the answers given at stop */
#define DEFAULT_STOP_RETRY_AFTER 5
#define ACCEPT_PAUSE_MS 1000

/* The worker whose loop runs on this thread (for the listener's error callback,
 * whose argument is evhttp's). */
static _Thread_local struct worker *current_worker;

static void ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

void worker_update_accepting(struct worker *w)
{
	int want =
	    w->listener && !w->stopping && !w->accept_paused && w->nconn < w->srv->max_connections;
	if (want == w->accepting || !w->listener)
		return;
	if (want)
		evconnlistener_enable(w->listener);
	else
		evconnlistener_disable(w->listener);
	w->accepting = want;
	if (!want && !w->accept_paused)
		log_event(LOG_LVL_DEBUG, "http.full", "connections=%d", w->nconn);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	w->accept_paused = 0;
	worker_update_accepting(w);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct worker *w = current_worker;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv;
	(void)lev;
	(void)arg;
	log_event(LOG_LVL_WARN, "http.accept", "error=%s connections=%d",
	          log_qv(evutil_socket_error_to_string(err)), w ? w->nconn : -1);
	if (!w)
		return;
	w->accept_paused = 1;
	worker_update_accepting(w);
	ms_to_tv(ACCEPT_PAUSE_MS, &tv);
	evtimer_add(w->resume, &tv);
}

/* After the stop: ends the loop once the answers given at stop are written, or
 * when the drain's time is up. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	if (w->stop_replies <= 0 || w->stop_ticks-- <= 0)
		event_base_loopbreak(w->base);
}

/* The stop reached this worker: no new clients; the held ones get an answer. An
 * idle worker sleeps until then instead of polling the flag. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick;
	uint64_t n;
	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 || w->stopping)
		return;
	w->stopping = 1;
	event_del(w->stop_ev);
	worker_update_accepting(w);
	request_stop_all(w);
	w->stop_ticks = STOP_DRAIN_MS / STOP_TICK_MS;
	ms_to_tv(STOP_TICK_MS, &tick);
	event_add(w->tick, &tick);
	on_tick(-1, 0, w);
}

/* A keep-alive request disables and re-enables reading and adds and removes the
 * write event: with the changelist, epoll sees only the net change of each loop
 * turn. The changelist is unsafe for a descriptor that has a dup in the same
 * epoll; the only dup, a held request's close watch, lives in close_watch.c's
 * epoll instead, and is closed no later than the socket. */
static struct event_base *worker_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;
	if (!cfg)
		return NULL;
	if (event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
		base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_setname_np(pthread_self(), "acmera-http");
	current_worker = w;
	event_base_dispatch(w->base);
	current_worker = NULL;
	return NULL;
}

static int worker_init(struct http_server *s, struct worker *w, const struct http_server_opts *o,
                       int index, size_t max_body, size_t max_headers, struct acmera_errmsg *e)
{
	int fd = -1;
	uint16_t port = 0;
	int rc;

	w->srv = s;
	if ((w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "eventfd: %s", strerror(errno));
	if (!(w->base = worker_base_new()) || !(w->http = evhttp_new(w->base)) ||
	    !(w->stop_ev = event_new(w->base, w->stop_fd, EV_READ | EV_PERSIST, on_stop, w)) ||
	    !(w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w)) ||
	    !(w->resume = evtimer_new(w->base, on_resume, w)))
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if ((rc = close_watch_open(w, e)))
		return rc;
	evhttp_set_bevcb(w->http, conn_bev_new, w);
	evhttp_set_gencb(w->http, request_dispatch, w);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)max_body);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)max_headers);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	/* No Content-Type unless the handler names one. */
	evhttp_set_default_content_type(w->http, NULL);

	if ((rc = http_listen_open(o->listen, index == 0 ? -1 : (int)s->port, &fd, &port, e)))
		return rc;
	struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(w->http, fd);
	if (!bound) {
		close(fd);
		return acmera_fail(e, ACMERA_ERR_IO, "listen '%.80s': cannot watch the socket",
		                   o->listen);
	}
	if (index == 0)
		s->port = port;
	w->listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(w->listener, on_accept_error);
	w->accepting = 1;
	event_add(w->stop_ev, NULL);
	return 0;
}

static void worker_free(struct worker *w)
{
	w->stopping = 1;
	w->listener = NULL;
	/* Frees the listener and every connection: handlers holding a request hear
	 * on_gone; the connections' TLS state goes when the base runs its finalizers. */
	if (w->http)
		evhttp_free(w->http);
	if (w->tick)
		event_free(w->tick);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->resume)
		event_free(w->resume);
	if (w->close_ev)
		event_free(w->close_ev);
	/* Runs the connections' finalizers, which remove their close watches. */
	if (w->base)
		event_base_free(w->base);
	if (w->close_epfd >= 0)
		close(w->close_epfd);
	w->close_epfd = -1;
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->stop_fd = -1;
}

static int check_ms(const char *what, int v, int def, int *out, struct acmera_errmsg *e)
{
	if (v < 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s must not be negative", what);
	*out = v ? v : def;
	return 0;
}

int http_server_new(const struct http_server_opts *o, http_handler h, void *arg,
                    struct http_server **out, struct acmera_errmsg *e)
{
	struct http_server *s = NULL;
	int hs = 0, head = 0, idle = 0, rc;

	if (!o || !h || !out)
		return acmera_fail(e, ACMERA_ERR_INVAL, "http_server_new: missing argument");
	*out = NULL;
	if (o->workers < 0 || o->workers > MAX_WORKERS)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "workers must be 1 to %d", MAX_WORKERS);
	if (o->max_connections < 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "max_connections must not be negative");
	if (o->max_body > MAX_SIZE || o->max_headers > MAX_SIZE)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "max_body and max_headers: at most 1 GiB");
	if ((rc = check_ms("handshake_timeout", o->handshake_timeout_ms, DEFAULT_HANDSHAKE_MS, &hs,
	                   e)) ||
	    (rc = check_ms("header_timeout", o->header_timeout_ms, DEFAULT_HEADER_MS, &head, e)) ||
	    (rc = check_ms("idle_timeout", o->idle_timeout_ms, DEFAULT_IDLE_MS, &idle, e)))
		return rc;

	if (!(s = calloc(1, sizeof(*s))))
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	s->handler = h;
	s->arg = arg;
	s->nworkers = o->workers ? o->workers : 1;
	s->max_connections = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
	ms_to_tv(hs, &s->handshake_tv);
	ms_to_tv(head, &s->header_tv);
	ms_to_tv(idle, &s->idle_tv);
	s->stop_retry_after =
	    o->stop_retry_after > 0 ? o->stop_retry_after : DEFAULT_STOP_RETRY_AFTER;
	if ((rc = http_tls_ctx_new(o, &s->ctx, e)))
		goto out;
	if (!(s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers)))) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Before any init can fail: a freed worker closes what it holds. */
	for (int i = 0; i < s->nworkers; i++)
		s->workers[i].stop_fd = s->workers[i].close_epfd = -1;
	for (int i = 0; i < s->nworkers; i++) {
		rc = worker_init(s, &s->workers[i], o, i,
		                 o->max_body ? o->max_body : DEFAULT_MAX_BODY,
		                 o->max_headers ? o->max_headers : DEFAULT_MAX_HEADERS, e);
		if (rc)
			goto out;
	}
	*out = s;
	s = NULL;
out:
	http_server_free(s);
	return rc;
}

int http_server_run(struct http_server *s)
{
	sigset_t all, old;
	int rc = 0, n;

	if (!s)
		return ACMERA_ERR_INVAL;
	/* Workers take no signals: the caller's thread does (a stop from a signal
	 * handler reaches them through their stop_fd), and a write to a closed socket gives EPIPE
	 * there instead of killing the process. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (n = 0; n < s->nworkers; n++) {
		struct worker *w = &s->workers[n];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_event(LOG_LVL_ERROR, "http.run", "error=%s",
			          log_qv("cannot start a worker thread"));
			http_server_stop(s);
			rc = ACMERA_ERR_NOMEM;
			break;
		}
		w->started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < n; i++) {
		pthread_join(s->workers[i].thread, NULL);
		s->workers[i].started = 0;
	}
	return rc;
}

/* Async-signal-safe: a write(2) per worker. */
void http_server_stop(struct http_server *s)
{
	const uint64_t one = 1;
	if (!s)
		return;
	for (int i = 0; i < s->nworkers; i++)
		if (s->workers[i].stop_fd >= 0 &&
		    write(s->workers[i].stop_fd, &one, sizeof(one)) < 0) {
			/* Only a full counter fails, and that is already readable. */
		}
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	for (int i = 0; s->workers && i < s->nworkers; i++)
		worker_free(&s->workers[i]);
	free(s->workers);
	SSL_CTX_free(s->ctx);
	free(s);
}

uint16_t http_server_port(const struct http_server *s)
{
	return s ? s->port : 0;
}
