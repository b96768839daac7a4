/* HTTPS server on libevent (evhttp over bufferevent_openssl) and OpenSSL 3:
 * TLS 1.2 and 1.3, TCP_NODELAY, keep-alive, handshake/header/idle timeouts,
 * limits on connections and body size, one event loop per worker thread (each
 * worker has its own listening socket on the same address with SO_REUSEPORT).
 *
 * Handlers run on the worker's loop and must not block. A handler either answers
 * at once (http_reply) or keeps the request and answers later from the same loop
 * (e.g. from a timer made with http_request_base): the request stays valid until
 * it is answered or the client goes away (then on_gone, if set, is called). */
#ifndef ACMERA_HTTP_SERVER_H
#define ACMERA_HTTP_SERVER_H

#include "base/err.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;
struct http_request;
struct event_base;

struct http_server_opts {
	const char *listen;    /* "127.0.0.1:8443", "[::1]:8443", ":8443" */
	const char *cert_file; /* server certificate chain, PEM (leaf first) */
	const char *key_file;  /* its private key, PEM (0600) */
	/* Client certificates are requested (not required) from the CAs of this PEM
	 * bundle when set, and verified against it when a handler asks
	 * (http_request_peer_chain). NULL: client certificates are not requested. */
	const char *client_ca_file;
	int workers;              /* event loops / threads, default 1 */
	int max_connections;      /* per worker, default 1000; at the limit the worker
	                           * stops accepting (clients wait in the accept queue) */
	size_t max_body;          /* bytes, default 64 KiB: larger gets 413 */
	size_t max_headers;       /* bytes of the header block, default 16 KiB: larger
	                           * gets 400 (libevent has no 431) */
	int handshake_timeout_ms; /* default 10000 */
	int header_timeout_ms;    /* whole request (head and body, from its first byte or
	                           * the handshake's end to the handler), default 10000 */
	int idle_timeout_ms;      /* keep-alive idle, default 60000 */
	int stop_retry_after;     /* seconds, default 5: see http_server_stop */
};

typedef void (*http_handler)(struct http_request *req, void *arg);

/* Creates the server and binds its sockets (errors name the address). The
 * handler is called for every complete request. */
int http_server_new(const struct http_server_opts *o, http_handler h, void *arg,
                    struct http_server **out, struct acmera_errmsg *e);
/* Runs the workers until http_server_stop (from any thread or a signal handler:
 * it writes to an eventfd each worker's loop watches): blocks the calling thread. The worker
 * threads block all signals (signals go to the caller's thread; SIGPIPE cannot hit them). */
int http_server_run(struct http_server *s);
/* At stop each worker stops accepting, answers every request its handler still
 * holds with 503, Retry-After: stop_retry_after and Connection: close (calling
 * the request's on_gone first, so the handler forgets it), waits up to a second
 * for those answers to be written, then closes everything and returns. */
void http_server_stop(struct http_server *s);
void http_server_free(struct http_server *s);
/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);

/* ---- the request ---- */
const char *http_request_method(const struct http_request *r); /* "GET", "POST", ... */
const char *http_request_path(const struct http_request *r);   /* decoded path, no query */
/* Header value (case-insensitive name) or NULL. */
const char *http_request_header(const struct http_request *r, const char *name);
const uint8_t *http_request_body(const struct http_request *r, size_t *len);
/* Peer address as text, for logs. */
const char *http_request_peer(const struct http_request *r);
/* The TLS client certificate chain (leaf first; not owned) or NULL. The handshake
 * proved the client holds the leaf's key but did not verify the chain: when
 * verified is not NULL, it is verified against client_ca_file (once per request)
 * and *verified says whether it passed. */
STACK_OF(X509) * http_request_peer_chain(struct http_request *r, int *verified);
/* Channel binding of the TLS connection: tls-unique (TLS 1.2, RFC 5929) or
 * tls-exporter (TLS 1.3, RFC 9266: 32 bytes of EXPORTER-Channel-Binding). *len is
 * set; returns NULL when unavailable (tls-unique needs the extended master secret,
 * RFC 7627). */
const uint8_t *http_request_channel_binding(struct http_request *r, size_t *len, const char **type);
/* Data the handler keeps with the request's TLS connection, e.g. who
 * authenticated on it: the client certificate cannot change within a connection
 * (renegotiation is refused). The previous data is freed when replaced; the last is
 * freed with free_fn when the connection ends. Returns -1 (and frees data) when the
 * connection is already gone. */
void *http_request_conn_data(const struct http_request *r);
int http_request_set_conn_data(struct http_request *r, void *data, void (*free_fn)(void *));
/* The worker's event loop, for timers that answer later. */
struct event_base *http_request_base(struct http_request *r);
/* Called once if the client closes before the answer; the request is freed when
 * cb returns. cb NULL clears it. Without on_gone a request whose client left stays
 * valid until http_reply, which then only frees it. Set on a request whose client
 * already left, cb runs at once, from this call. */
void http_request_on_gone(struct http_request *r, void (*cb)(void *arg), void *arg);

/* Answers: status, content type (NULL for none), body, and extra headers as
 * NULL-terminated name/value pairs; headers and body leave in one write. */
void http_reply(struct http_request *r, int status, const char *content_type, const void *body,
                size_t len, const char *const *headers);

#endif
