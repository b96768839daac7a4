/* One TLS connection of a worker: its accounting against max_connections and the
 * clocks of its phases (see enum conn_state).
 *
 * The handshake and the request head have absolute deadlines, not inactivity
 * timeouts, so that a client dripping one byte at a time cannot hold a slot for
 * longer than the limit. When one expires, the connection's bufferevent gets a
 * timeout event, which evhttp handles like its own: the connection is dropped
 * without an answer. */
#include "http/internal.h"

#include "base/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

/* 1 while evhttp still owns the bufferevent: its callbacks may be triggered. A
 * freed bufferevent has no callbacks left (bufferevent_free clears them) and
 * waits for its finalizer, which also frees this conn. */
int conn_alive(struct conn *c)
{
	bufferevent_event_cb ecb = NULL;
	if (c->dead || !c->bev)
		return 0;
	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	return ecb != NULL;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (!conn_alive(c))
		return;
	log_event(LOG_LVL_DEBUG, "http.timeout", "phase=%s",
	          c->state == CONN_HANDSHAKE ? "handshake" : "request");
	/* evhttp frees the connection from this call; c lives until the finalizer. */
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/* Bytes of a new request on an idle keep-alive connection start its head clock. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	(void)buf;
	if (info->n_added && c->state == CONN_IDLE && !c->dead)
		conn_enter(c, CONN_HEAD);
}

void conn_enter(struct conn *c, enum conn_state st)
{
	struct http_server *s = c->w->srv;
	c->state = st;
	evtimer_del(c->deadline);
	if (st == CONN_HANDSHAKE)
		evtimer_add(c->deadline, &s->handshake_tv);
	else if (st == CONN_HEAD)
		evtimer_add(c->deadline, &s->header_tv);
	if (!c->dead && c->bev)
		bufferevent_set_timeouts(c->bev, st == CONN_IDLE ? &s->idle_tv : NULL, &s->idle_tv);
}

void conn_handshake_start(struct conn *c, const SSL *ssl)
{
	if (c->nodelay_set)
		return;
	c->nodelay_set = 1;
	/* A response leaves in one write; Nagle would hold it behind the unacked
	 * session tickets for a delayed ACK (40 ms). */
	int fd = SSL_get_fd(ssl), one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void conn_handshake_done(struct conn *c)
{
	/* Also called for TLS 1.3 post-handshake messages: only the first counts. */
	if (c->state == CONN_HANDSHAKE)
		conn_enter(c, CONN_HEAD);
}

struct conn *conn_of(struct evhttp_connection *evcon)
{
	int idx = http_tls_conn_index();
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl && idx >= 0 ? SSL_get_ex_data(ssl, idx) : NULL;
}

/* evhttp's bufferevent callback: every accepted socket gets a TLS bufferevent
 * (evhttp sets its fd afterwards). NULL would make evhttp speak plain HTTP on it;
 * request_dispatch refuses requests on such a connection. */
struct bufferevent *conn_bev_new(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct conn *c = calloc(1, sizeof(*c));
	SSL *ssl = NULL;
	struct bufferevent *bev;

	if (!c)
		goto fail;
	c->w = w;
	c->closed_fd = -1;
	if (!(c->deadline = evtimer_new(base, on_deadline, c)) || !(ssl = SSL_new(w->srv->ctx)) ||
	    !SSL_set_ex_data(ssl, http_tls_conn_index(), c))
		goto fail;
	/* From here c belongs to ssl. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		/* Depending on where it failed, libevent may have freed ssl (and c)
		 * already: a leak here is better than a double free. */
		log_event(LOG_LVL_ERROR, "http.accept", "error=%s",
		          log_qv("cannot create a TLS bufferevent"));
		return NULL;
	}
	c->bev = bev;
	c->counted = 1;
	w->nconn++;
	/* A TCP close without close_notify ends the connection like one with it. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
	conn_enter(c, CONN_HANDSHAKE);
	worker_update_accepting(w);
	return bev;
fail:
	/* c is not attached to ssl yet: both go here. */
	log_event(LOG_LVL_ERROR, "http.accept", "error=%s", log_qv("out of memory"));
	SSL_free(ssl);
	if (c && c->deadline)
		event_free(c->deadline);
	free(c);
	return NULL;
}

/* From SSL_free, when libevent finalizes the bufferevent. */
void conn_free(struct conn *c)
{
	struct worker *w = c->w;
	if (c->pending)
		request_conn_lost(c->pending); /* normally done by evhttp's close callback */
	if (c->deadline)
		event_free(c->deadline);
	conn_watch_close(c, 0);
	if (c->app_free)
		c->app_free(c->app_data);
	if (c->counted) {
		w->nconn--;
		worker_update_accepting(w);
	}
	free(c);
}
