/* `acmera ca`: an ACME server (RFC 8555) with pre-authorization (7.4.1) and RFC 9444
 * subdomain authorizations, for private PKIs.
 *
 * URL layout under the base URL ([ca] url):
 *   /dir  /new-nonce  /new-account  /new-order  /new-authz  /revoke-cert  /key-change
 *   /acct/ID  /acct/ID/orders[/PAGE]  /order/ID  /order/ID/finalize  /authz/ID
 *   /chall/ID  /cert/ID
 * IDs are 16 random bytes in base64url. Only /dir and /new-nonce answer GET (and
 * HEAD); everything else is POST (POST-as-GET for reads).
 *
 * The request processing is separate from the transport so that tests and the fuzz
 * target drive it directly: ca_service_process takes a request and fills a response;
 * ca_service_handle is the http_handler that does the same over the HTTPS server. */
#ifndef ACMERA_CA_SERVICE_H
#define ACMERA_CA_SERVICE_H

#include "base/config.h"
#include "base/err.h"
#include "http/server.h"
#include "store/ca_store.h"

#include <stddef.h>
#include <stdint.h>

#define CA_MAX_HEADERS 8

struct ca_service;

struct ca_request {
	const char *method;       /* "GET", "HEAD", "POST", ... */
	const char *path;         /* decoded, without the query */
	const char *content_type; /* or NULL */
	const char *accept;       /* or NULL */
	const uint8_t *body;
	size_t body_len;
};

struct ca_response {
	int status;
	const char *content_type; /* a static string, or NULL */
	uint8_t *body;            /* heap, or NULL */
	size_t len;
	char *headers[2 * CA_MAX_HEADERS + 1]; /* name, value pairs (heap), NULL-terminated */
	size_t n_headers;                      /* pairs */
	char problem[48];                      /* the error type answered (for the log), or "" */
	char account[CA_ID_LEN + 1];           /* the account that signed (for the log), or "" */
};

/* Opens the CA signer ([ca] dir / issuer_cert), the EAB keys, the nonce window and
 * starts the validation threads; re-queues challenges a stop left processing. cfg
 * must outlive the service; the store ([store] path) must already be migrated. */
int ca_service_new(const struct config *cfg, struct ca_service **out, struct acmera_errmsg *e);
/* Stops the validation threads (waiting for those in a validation) and frees s. */
void ca_service_free(struct ca_service *s);

/* The root certificate (PEM) clients should trust for issued certificates. */
const char *ca_service_root_pem(const struct ca_service *s);

/* Handles one request on the calling thread (which gets its own store handle);
 * never blocks on the network. rs is filled (free with ca_response_free). */
void ca_service_process(struct ca_service *s, const struct ca_request *rq, struct ca_response *rs);
void ca_response_free(struct ca_response *rs);

/* The http_handler (arg is the struct ca_service): one log line per request. */
void ca_service_handle(struct http_request *req, void *arg);

#endif
