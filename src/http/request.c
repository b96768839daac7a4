/* One request as the handler sees it, and its answer.
 *
 * Ownership. evhttp keeps its request on the connection while the handler holds
 * it. When the client leaves first (EOF, or a hang-up seen by close_watch.c), evhttp
 * detaches the request from the connection and leaves it to us; when the server
 * is freed, evhttp frees it itself right after the close callback. Either way the
 * handler hears of it through on_gone, after which the request is freed; without
 * on_gone the request is kept (marked gone) until http_reply frees it.
 *
 * One write. evhttp puts the head and then the body into the TLS bufferevent's
 * output buffer as separate chunks, and bufferevent_openssl makes one TLS record,
 * hence one write(), per chunk. http_reply pulls the first record's worth of
 * bytes into one chunk before the loop writes anything. */
#include "http/internal.h"

#include "base/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A TLS record holds at most this much application data. */
#define RECORD_MAX 16384

struct http_request {
	struct evhttp_request *evreq; /* NULL once evhttp freed it */
	struct conn *conn;            /* NULL once the connection is gone */
	struct worker *w;
	const char *method;
	char *path;
	char peer[INET6_ADDRSTRLEN + 16];
	const uint8_t *body;
	size_t body_len;
	STACK_OF(X509) * chain;
	int verified; /* -1 until a handler asks */
	uint8_t binding[64];
	size_t binding_len;
	const char *binding_type;
	int binding_done;
	void (*on_gone)(void *arg);
	void *on_gone_arg;
	int gone;
	/* In the worker's list of held requests while the handler holds it. */
	struct http_request *held_prev, *held_next;
	int held;
};

static void request_hold(struct http_request *r)
{
	r->held = 1;
	r->held_prev = NULL;
	r->held_next = r->w->held;
	if (r->w->held)
		r->w->held->held_prev = r;
	r->w->held = r;
}

static void request_unhold(struct http_request *r)
{
	if (!r->held)
		return;
	if (r->held_prev)
		r->held_prev->held_next = r->held_next;
	else
		r->w->held = r->held_next;
	if (r->held_next)
		r->held_next->held_prev = r->held_prev;
	r->held = 0;
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
}

static void request_free(struct http_request *r)
{
	request_unhold(r);
	/* Only a request that evhttp detached from its connection is still ours. */
	if (r->evreq)
		evhttp_request_free(r->evreq);
	sk_X509_pop_free(r->chain, X509_free);
	free(r->path);
	free(r);
}

/* The client is gone: tell the handler, or keep the request for http_reply. */
static void request_gone(struct http_request *r)
{
	r->gone = 1;
	r->conn = NULL;
	if (r->on_gone) {
		void (*cb)(void *) = r->on_gone;
		r->on_gone = NULL;
		cb(r->on_gone_arg);
		request_free(r);
	}
}

void request_conn_lost(struct http_request *r)
{
	r->evreq = NULL;
	request_gone(r);
}

/* evhttp's close callback: the connection is being freed. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	(void)evcon;
	c->dead = 1;
	http_tls_close_notify(c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL);
	evtimer_del(c->deadline);
	conn_watch_close(c, 0);
	struct http_request *r = c->pending;
	if (!r)
		return;
	c->pending = NULL;
	/* Still on the connection: evhttp frees it next (server shutdown). */
	if (r->evreq && evhttp_request_get_connection(r->evreq))
		r->evreq = NULL;
	request_gone(r);
}

/* The answer is written and the connection stays: wait for the next request. */
static void on_reply_sent(struct evhttp_request *evreq, void *arg)
{
	struct conn *c = arg;
	(void)evreq;
	if (c->stop_reply) {
		c->stop_reply = 0;
		c->w->stop_replies--;
	}
	if (c->dead)
		return;
	conn_enter(c, CONN_IDLE);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)))
		conn_enter(c, CONN_HEAD);
}

static void set_peer(struct http_request *r, struct evhttp_connection *evcon)
{
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evcon, &addr, &port);
	if (!addr)
		snprintf(r->peer, sizeof(r->peer), "-");
	else if (strchr(addr, ':'))
		snprintf(r->peer, sizeof(r->peer), "[%.46s]:%u", addr, (unsigned)port);
	else
		snprintf(r->peer, sizeof(r->peer), "%.46s:%u", addr, (unsigned)port);
}

/* The decoded path, or NULL when it is not an absolute path or hides a NUL. */
static char *decoded_path(struct evhttp_request *evreq)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(evreq);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t n = 0;
	if (!raw || raw[0] != '/')
		return NULL;
	char *p = evhttp_uridecode(raw, 0, &n);
	if (p && strlen(p) != n) {
		free(p);
		return NULL;
	}
	return p;
}

/* Fills r from evreq; an HTTP status to answer at once when it cannot be. */
static int request_fill(struct http_request *r, struct evhttp_request *evreq)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	r->method = method_name(evhttp_request_get_command(evreq));
	set_peer(r, evcon);
	if (!(r->path = decoded_path(evreq)))
		return 400;
	struct evbuffer *in = evhttp_request_get_input_buffer(evreq);
	r->body_len = evbuffer_get_length(in);
	r->body = r->body_len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
	if (!r->body)
		return 500;
	SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
	if (ssl && SSL_get0_peer_certificate(ssl) && !(r->chain = http_tls_peer_chain(ssl)))
		return 500;
	r->verified = -1;
	return 0;
}

void request_dispatch(struct evhttp_request *evreq, void *arg)
{
	struct worker *w = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct conn *c = conn_of(evcon);
	struct http_request *r = NULL;
	int status;

	if (!c) {
		/* No TLS on this connection (see conn_bev_new): never serve it. */
		evhttp_send_error(evreq, 500, NULL);
		return;
	}
	conn_enter(c, CONN_BUSY);
	evhttp_connection_set_closecb(evcon, on_conn_close, c);
	evhttp_request_set_on_complete_cb(evreq, on_reply_sent, c);

	if (!(r = calloc(1, sizeof(*r)))) {
		evhttp_send_error(evreq, 500, NULL);
		return;
	}
	r->evreq = evreq;
	r->conn = c;
	r->w = w;
	if ((status = request_fill(r, evreq))) {
		r->evreq = NULL;
		request_free(r);
		evhttp_send_error(evreq, status, NULL);
		return;
	}
	c->pending = r;
	w->srv->handler(r, w->srv->arg);
	if (c->pending == r) {
		/* Held for a later answer: nothing more is read (a pipelined request
		 * waits, and a client cannot fill our buffer) until then. An answer
		 * given at once needs no such switch, which costs system calls. */
		bufferevent_disable(c->bev, EV_READ);
		conn_watch_close(c, 1);
		request_hold(r);
	}
}

void request_stop_all(struct worker *w)
{
	static const char text[] = "the server is stopping; retry later\n";
	char ra[16];
	snprintf(ra, sizeof(ra), "%d", w->srv->stop_retry_after);
	const char *headers[] = {"Retry-After", ra, "Connection", "close", NULL};
	while (w->held) {
		struct http_request *r = w->held;
		request_unhold(r);
		if (r->on_gone) {
			void (*cb)(void *) = r->on_gone;
			r->on_gone = NULL;
			cb(r->on_gone_arg);
		}
		if (r->conn && !r->gone && r->evreq) {
			r->conn->stop_reply = 1;
			w->stop_replies++;
		}
		http_reply(r, 503, "text/plain; charset=utf-8", text, sizeof(text) - 1, headers);
	}
}

const char *http_request_method(const struct http_request *r)
{
	return r->method;
}

const char *http_request_path(const struct http_request *r)
{
	return r->path;
}

const char *http_request_header(const struct http_request *r, const char *name)
{
	if (!r->evreq || !name)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(r->evreq), name);
}

const uint8_t *http_request_body(const struct http_request *r, size_t *len)
{
	*len = r->evreq ? r->body_len : 0;
	return r->evreq ? r->body : NULL;
}

const char *http_request_peer(const struct http_request *r)
{
	return r->peer;
}

STACK_OF(X509) * http_request_peer_chain(struct http_request *r, int *verified)
{
	if (verified) {
		if (r->chain && r->verified < 0)
			r->verified = http_tls_chain_verified(r->w->srv->ctx, r->chain);
		*verified = r->chain ? r->verified : 0;
	}
	return r->chain;
}

const uint8_t *http_request_channel_binding(struct http_request *r, size_t *len, const char **type)
{
	if (!r->binding_done && r->conn && !r->conn->dead) {
		SSL *ssl = bufferevent_openssl_get_ssl(r->conn->bev);
		r->binding_done = 1;
		if (!ssl || http_tls_channel_binding(ssl, r->binding, sizeof(r->binding),
		                                     &r->binding_len, &r->binding_type))
			r->binding_len = 0;
	}
	*len = r->binding_len;
	if (type)
		*type = r->binding_len ? r->binding_type : NULL;
	return r->binding_len ? r->binding : NULL;
}

void *http_request_conn_data(const struct http_request *r)
{
	return r->conn && !r->conn->dead ? r->conn->app_data : NULL;
}

int http_request_set_conn_data(struct http_request *r, void *data, void (*free_fn)(void *))
{
	struct conn *c = r->conn;
	if (!c || c->dead) {
		if (free_fn)
			free_fn(data);
		return -1;
	}
	if (c->app_free && c->app_data != data)
		c->app_free(c->app_data);
	c->app_data = data;
	c->app_free = free_fn;
	return 0;
}

struct event_base *http_request_base(struct http_request *r)
{
	return r->w->base;
}

void http_request_on_gone(struct http_request *r, void (*cb)(void *arg), void *arg)
{
	r->on_gone = cb;
	r->on_gone_arg = arg;
	if (r->gone && cb)
		request_gone(r); /* already gone: at once, and r is freed */
}

/* RFC 9110 field-name token and field-value without control characters. */
static int header_ok(const char *name, const char *value)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	if (!name || !value || !*name)
		return 0;
	for (const char *p = name; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || strchr(tchar, ch)))
			return 0;
	}
	for (const char *p = value; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return 0;
	}
	return 1;
}

static void add_header(struct evkeyvalq *h, const char *name, const char *value)
{
	if (!header_ok(name, value)) {
		log_event(LOG_LVL_WARN, "http.reply", "error=%s name=%s",
		          log_qv("header dropped: bad name or value"), log_qv(name ? name : ""));
		return;
	}
	evhttp_remove_header(h, name);
	evhttp_add_header(h, name, value);
}

void http_reply(struct http_request *r, int status, const char *content_type, const void *body,
                size_t len, const char *const *headers)
{
	struct conn *c = r->conn;
	if (r->gone || !r->evreq || !c) {
		request_free(r);
		return;
	}
	if (status < 200 || status > 599)
		status = 500;
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->evreq);
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
		add_header(h, headers[i], headers[i + 1]);
	if (content_type)
		add_header(h, "Content-Type", content_type);
	int no_body = status == 204 || status == 304;
	if (!no_body) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", len);
		add_header(h, "Content-Length", n);
	}
	/* HEAD: the length of the body it would have, and no body. */
	if (!no_body && len && strcmp(r->method, "HEAD") != 0 &&
	    evbuffer_add(evhttp_request_get_output_buffer(r->evreq), body, len)) {
		evhttp_send_error(r->evreq, 500, NULL);
		goto done;
	}
	evhttp_send_reply(r->evreq, status, NULL, NULL);
	if (!c->dead) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		size_t total = evbuffer_get_length(out);
		evbuffer_pullup(out, (ev_ssize_t)(total < RECORD_MAX ? total : RECORD_MAX));
	}
done:
	c->pending = NULL;
	conn_watch_close(c, 0);
	r->evreq = NULL; /* evhttp frees it once written */
	request_free(r);
}
