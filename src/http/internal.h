/* Internals of the HTTPS server shared by its files (not a public API).
 *
 *   server.c   workers, their loops and listening sockets, start and stop
 *   listen.c   "host:port" to a bound SO_REUSEPORT socket
 *   tls.c      the SSL_CTX, client certificate checks, channel binding
 *   conn.c     one TLS connection: accounting, phases and their timeouts
 *   close_watch.c  a held request's client closing (an epoll of the worker's own)
 *   request.c  one request: the handler's view of it and the answer
 *
 * Lifetimes. struct conn belongs to the connection's SSL object (ex_data): it is
 * freed when libevent finalizes the bufferevent, which happens one loop pass after
 * evhttp freed the connection. From evhttp's close callback on, conn->dead is set
 * and nothing may touch the bufferevent any more. */
#ifndef ACMERA_HTTP_INTERNAL_H
#define ACMERA_HTTP_INTERNAL_H

#include "http/server.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

struct worker {
	struct http_server *srv;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener; /* owned by http */
	struct event *stop_ev;           /* reads stop_fd: the stop reached this worker */
	struct event *tick;              /* after the stop: paces the last answers' drain */
	int stop_fd;                     /* eventfd written by http_server_stop, or -1 */
	struct event *resume;            /* ends the pause after an accept error */
	int close_epfd;                  /* close_watch.c's epoll, or -1 */
	struct event *close_ev;          /* reads close_epfd */
	pthread_t thread;
	int started;
	int nconn;                 /* live connections, until their SSL is freed */
	int accepting;             /* the listener is enabled */
	int accept_paused;         /* after an accept error (EMFILE and the like) */
	int stopping;              /* stopping or being freed: never enable the listener again */
	struct http_request *held; /* requests the handler holds (unanswered) */
	int stop_ticks;            /* after a stop: ticks left to write the last answers */
	int stop_replies;          /* answers given at stop and not yet written */
};

struct http_server {
	SSL_CTX *ctx;
	http_handler handler;
	void *arg;
	struct worker *workers;
	int nworkers;
	int max_connections;
	uint16_t port;
	struct timeval handshake_tv;
	struct timeval header_tv;
	struct timeval idle_tv;
	int stop_retry_after;
};

/* Where a connection is; each phase has its own clock:
 *   HANDSHAKE  accepted, TLS handshake running    deadline handshake_timeout
 *   HEAD       first byte of a request seen, or   deadline header_timeout (head
 *              handshake just done                and body until the handler)
 *   BUSY       the handler holds the request      none (the reply is ours to give)
 *   IDLE       keep-alive between requests        read inactivity idle_timeout
 * Writes always have idle_timeout as inactivity timeout. */
enum conn_state { CONN_HANDSHAKE, CONN_HEAD, CONN_BUSY, CONN_IDLE };

struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct event *deadline; /* absolute limit of HANDSHAKE and HEAD */
	int closed_fd; /* while BUSY: a dup of the socket in the worker's close_epfd, or -1 */
	struct http_request *pending; /* the request the handler holds, if any */
	enum conn_state state;
	int counted; /* counted in w->nconn */
	int dead;    /* evhttp freed the connection */
	int nodelay_set;
	int stop_reply; /* its answer was given by the stop (counted in stop_replies) */
	/* What the handler keeps for the connection's life (http_request_set_conn_data). */
	void *app_data;
	void (*app_free)(void *);
};

/* server.c */
void worker_update_accepting(struct worker *w);

/* listen.c: a bound, listening, non-blocking socket for spec ("127.0.0.1:8443",
 * "[::1]:8443", ":8443"); port_override >= 0 replaces the port of spec (the
 * second and later workers join the first one's port). */
int http_listen_open(const char *spec, int port_override, int *fd, uint16_t *port,
                     struct acmera_errmsg *e);

/* tls.c */
int http_tls_ctx_new(const struct http_server_opts *o, SSL_CTX **out, struct acmera_errmsg *e);
/* The SSL ex_data index holding the struct conn (freed with the SSL); -1 on failure. */
int http_tls_conn_index(void);
/* Sends close_notify on an established connection about to be freed, so that
 * OpenSSL keeps its session resumable (it drops those freed without one). */
void http_tls_close_notify(SSL *ssl);
/* The client chain, leaf first, each certificate referenced (sk_X509_pop_free
 * with X509_free), or NULL without a client certificate. */
STACK_OF(X509) * http_tls_peer_chain(SSL *ssl);
/* 1 when chain (leaf first) verifies as a TLS client's against ctx's client CAs. */
int http_tls_chain_verified(SSL_CTX *ctx, STACK_OF(X509) * chain);
/* Fills buf (at least 32 bytes) with the connection's channel binding. */
int http_tls_channel_binding(SSL *ssl, uint8_t *buf, size_t cap, size_t *len, const char **type);

/* conn.c */
struct bufferevent *conn_bev_new(struct event_base *base, void *arg);
void conn_free(struct conn *c);
void conn_enter(struct conn *c, enum conn_state st);
void conn_handshake_start(struct conn *c, const SSL *ssl);
void conn_handshake_done(struct conn *c);
/* 1 while evhttp still owns the connection's bufferevent. */
int conn_alive(struct conn *c);

/* close_watch.c: the worker's epoll for the watches, registered in its base. */
int close_watch_open(struct worker *w, struct acmera_errmsg *e);
/* Watches for the client closing while the handler holds a request (on != 0);
 * off (0) removes the watch at once. */
void conn_watch_close(struct conn *c, int on);
/* The connection's struct conn, or NULL when it is not one of ours (no TLS). */
struct conn *conn_of(struct evhttp_connection *evcon);

/* request.c: evhttp's generic callback (arg: the worker). */
void request_dispatch(struct evhttp_request *evreq, void *arg);
/* The connection of a held request is being freed without evhttp's close
 * callback: the request forgets it (no on_gone: its evhttp request is unknown). */
void request_conn_lost(struct http_request *r);
/* The stop: answers every request the worker's handler holds with 503. */
void request_stop_all(struct worker *w);

#endif
