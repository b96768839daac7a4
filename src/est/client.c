/* The EST client transport: one libcurl easy handle per server, TLS verified
 * against explicit anchors only (never the system store: RFC 7030 3.6.1's explicit
 * TA database), no redirects followed; the channel binding of each request's
 * connection is read while the connection is the request's. See client.h. */
#include "est/client.h"

#include "base/b64.h"
#include "base/log.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EST_PATH "/.well-known/est"
#define HEADER_VALUE_MAX 1024
#define LABEL_MAX 64
#define BINDING_MAX 64 /* EVP_MAX_MD_SIZE: the largest Finished */
#define EXPORTER_LEN 32

/* The channel binding of the last request's connection. */
struct binding {
	uint8_t v[BINDING_MAX];
	size_t len; /* 0: none, see why */
	const char *type;
	int resumed;              /* the handshake resumed a session */
	struct acmera_errmsg why; /* when len is 0 */
};

struct est_client {
	CURL *h;
	char base[EST_URL_MAX]; /* https://host:port/.well-known/est[/label] */
	char *ca_pem;           /* kept alive: curl reads the blob at each handshake */
	int insecure;
	struct binding cb;
	int new_connection; /* the last request opened one */
};

/* What one transfer collects. */
struct exchange {
	struct est_client *c;
	struct est_response *r;
	size_t cap;
	int too_large;
	int cb_read; /* the binding was read during this transfer */
};

void est_response_free(struct est_response *r)
{
	if (!r)
		return;
	free(r->content_type);
	free(r->retry_after);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* RFC 7030 3.2.2: a label is one path segment and never an operation name. */
static int label_valid(const char *l)
{
	static const char *const ops[] = {"cacerts", "simpleenroll", "simplereenroll",
	                                  "fullcmc", "serverkeygen", "csrattrs"};
	size_t n = strlen(l);
	if (n == 0 || n >= LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = l[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '~'))
			return 0;
	}
	if (strcmp(l, ".") == 0 || strcmp(l, "..") == 0)
		return 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(l, ops[i]) == 0)
			return 0;
	return 1;
}

/* https://authority[/.well-known/est][/]: nothing else, no userinfo, query or
 * fragment; printable ASCII only. */
static int base_url(const char *server, const char *label, char *out, size_t outlen,
                    struct acmera_errmsg *e)
{
	size_t n = strlen(server);
	if (strncmp(server, "https://", 8) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "--server: '%s' is not an https:// URL",
		                   server);
	if (n > EST_URL_MAX / 2)
		return acmera_fail(e, ACMERA_ERR_INVAL, "--server: URL too long");
	for (size_t i = 0; i < n; i++)
		if (server[i] <= 0x20 || server[i] >= 0x7f || server[i] == '?' ||
		    server[i] == '#' || server[i] == '@')
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "--server: '%s' must be https://HOST[:PORT]", server);
	while (n > 8 && server[n - 1] == '/')
		n--;
	if (n <= 8)
		return acmera_fail(e, ACMERA_ERR_INVAL, "--server: '%s' has no host", server);
	const char *path = memchr(server + 8, '/', n - 8);
	size_t auth_end = path ? (size_t)(path - server) : n;
	if (auth_end == 8)
		return acmera_fail(e, ACMERA_ERR_INVAL, "--server: '%s' has no host", server);
	if (path && !((size_t)(server + n - path) == strlen(EST_PATH) &&
	              memcmp(path, EST_PATH, strlen(EST_PATH)) == 0))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "--server: '%s' must be https://HOST[:PORT] (the path is "
		                   "/.well-known/est; use --label for a CA label)",
		                   server);
	if (label && !label_valid(label))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "--label: '%s' must be one path segment of letters, digits, "
		                   "'-', '_', '.', '~' and not an operation name",
		                   label);
	int w = snprintf(out, outlen, "%.*s%s%s%s", (int)auth_end, server, EST_PATH,
	                 label ? "/" : "", label ? label : "");
	if (w < 0 || (size_t)w >= outlen)
		return acmera_fail(e, ACMERA_ERR_INVAL, "--server: URL too long");
	return 0;
}

int est_client_new(const struct est_client_opts *o, struct est_client **out,
                   struct acmera_errmsg *e)
{
	*out = NULL;
	int sources = (o->ca_file != NULL) + (o->ca_pem != NULL);
	if (o->insecure ? sources != 0 : sources != 1)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "EST client: exactly one trust source (CA file or PEM), or "
		                   "bootstrap without one");
	if (o->insecure && (o->cert_file || o->key_file || o->user || o->password))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "EST client: no credentials go to an unauthenticated server");
	if ((o->cert_file == NULL) != (o->key_file == NULL) ||
	    (o->user == NULL) != (o->password == NULL))
		return acmera_fail(
		    e, ACMERA_ERR_INVAL,
		    "EST client: certificate and key, user and password go in pairs");
	if (o->tls_max != 0 && o->tls_max != 12 && o->tls_max != 13)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "EST client: TLS maximum %d is not 12 or 13", o->tls_max);
	struct est_client *c = calloc(1, sizeof(*c));
	if (!c)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	int rc = base_url(o->server, o->label, c->base, sizeof(c->base), e);
	if (rc)
		goto fail;
	if (o->ca_pem && !(c->ca_pem = strdup(o->ca_pem))) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	c->insecure = o->insecure;
	c->h = curl_easy_init();
	if (!c->h) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "curl_easy_init failed");
		goto fail;
	}
	CURL *h = c->h;
	long timeout = o->timeout_s > 0 ? o->timeout_s : 60;
	CURLcode cc = CURLE_OK;
	cc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	cc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	cc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
	cc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout < 15 ? timeout : 15L);
	cc |= curl_easy_setopt(h, CURLOPT_USERAGENT, "acmera-enroll/0.1");
	cc |= curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
	long max = o->tls_max == 12   ? CURL_SSLVERSION_MAX_TLSv1_2
	           : o->tls_max == 13 ? CURL_SSLVERSION_MAX_TLSv1_3
	                              : CURL_SSLVERSION_MAX_DEFAULT;
	cc |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2 | max);
	if (o->insecure) {
		cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		/* The explicit anchors only: the system store is not an EST TA database. */
		cc |= curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		if (o->ca_file) {
			cc |= curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
		} else {
			struct curl_blob blob = {
			    .data = c->ca_pem, .len = strlen(c->ca_pem), .flags = CURL_BLOB_NOCOPY};
			cc |= curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
		}
	}
	if (o->cert_file) {
		cc |= curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert_file);
		cc |= curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		cc |= curl_easy_setopt(h, CURLOPT_SSLKEY, o->key_file);
		cc |= curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (o->user) {
		/* Basic alone: sent with the first request, over the verified TLS only. */
		cc |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		cc |= curl_easy_setopt(h, CURLOPT_USERNAME, o->user);
		cc |= curl_easy_setopt(h, CURLOPT_PASSWORD, o->password);
	}
	if (cc != CURLE_OK) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "libcurl lacks an option acmera needs (blobs, certinfo, TLS "
		                 "versions)");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	est_client_free(c);
	return rc;
}

void est_client_free(struct est_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	free(c->ca_pem);
	free(c);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;
	struct est_response *r = x->r;
	if (len > EST_CLIENT_MAX_BODY - r->len) {
		x->too_large = 1;
		return 0; /* aborts the transfer */
	}
	if (r->len + len + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		uint8_t *b = realloc(r->body, cap);
		if (!b)
			return 0;
		r->body = b;
		x->cap = cap;
	}
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* The value of header name in line, or NULL (heap). */
static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - v) > HEADER_VALUE_MAX)
		return NULL;
	return strndup(v, (size_t)(end - v));
}

int est_tls_channel_binding(SSL *ssl, uint8_t *buf, size_t cap, size_t *len, const char **type,
                            struct acmera_errmsg *e)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	*len = 0;
	*type = NULL;
	if (cap < EXPORTER_LEN)
		return acmera_fail(e, ACMERA_ERR_INVAL, "channel binding buffer too small");
	if (SSL_version(ssl) == TLS1_3_VERSION) {
		if (SSL_export_keying_material(ssl, buf, EXPORTER_LEN, label, sizeof(label) - 1,
		                               NULL, 0, 0) != 1) {
			ERR_clear_error();
			return acmera_fail(e, ACMERA_ERR_PROTO, "the TLS 1.3 exporter failed");
		}
		*len = EXPORTER_LEN;
		*type = "tls-exporter";
		return 0;
	}
	if (SSL_version(ssl) != TLS1_2_VERSION)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s has no channel binding acmera uses",
		                   SSL_get_version(ssl));
	/* Without the extended master secret tls-unique can be made equal on two
	 * connections (the triple handshake attack): the server refuses it too. */
	if (SSL_get_extms_support(ssl) != 1)
		return acmera_fail(e, ACMERA_ERR_PROTO,
		                   "the TLS 1.2 connection lacks the extended master secret (RFC "
		                   "7627), without which tls-unique is unsafe");
	/* RFC 5929: the first Finished of the handshake, the client's own in a full
	 * one and the server's in a resumed one. */
	size_t n = SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, buf, cap)
	                                   : SSL_get_finished(ssl, buf, cap);
	if (n == 0 || n > cap)
		return acmera_fail(e, ACMERA_ERR_PROTO, "no TLS Finished message to bind to");
	*len = n;
	*type = "tls-unique";
	return 0;
}

/* CURLINFO_TLS_SSL_PTR is only valid while a transfer holds the connection, so
 * the binding is read with the first header of the answer. */
static void read_binding(struct exchange *x)
{
	struct curl_tlssessioninfo *ti = NULL;
	struct binding *b = &x->c->cb;
	x->cb_read = 1;
	if (curl_easy_getinfo(x->c->h, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
	    ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals) {
		acmera_fail(&b->why, ACMERA_ERR_PROTO,
		            "libcurl does not show its OpenSSL connection");
		return;
	}
	SSL *ssl = ti->internals;
	b->resumed = SSL_session_reused(ssl) == 1;
	if (est_tls_channel_binding(ssl, b->v, sizeof(b->v), &b->len, &b->type, &b->why) != 0)
		b->len = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;
	char *v;
	if (!x->cb_read)
		read_binding(x);
	/* A new status line (after 100 Continue) starts a fresh header set. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		free(x->r->content_type);
		free(x->r->retry_after);
		x->r->content_type = x->r->retry_after = NULL;
	} else if ((v = header_value(p, len, "Content-Type"))) {
		free(x->r->content_type);
		x->r->content_type = v;
	} else if ((v = header_value(p, len, "Retry-After"))) {
		free(x->r->retry_after);
		x->r->retry_after = v;
	}
	return len;
}

static int perform(struct est_client *c, const char *method, const char *op,
                   struct curl_slist *headers, struct est_response *r, struct acmera_errmsg *e)
{
	char url[EST_URL_MAX + 32];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct exchange x = {.c = c, .r = r};
	long conns = 0;
	memset(r, 0, sizeof(*r));
	memset(&c->cb, 0, sizeof(c->cb));
	acmera_fail(&c->cb.why, ACMERA_ERR_PROTO, "no answer was read on the connection");
	c->new_connection = 1;
	snprintf(url, sizeof(url), "%s/%s", c->base, op);
	CURL *h = c->h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (x.too_large)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s %s: answer larger than %d bytes",
		                   method, url, EST_CLIENT_MAX_BODY);
	if (cc != CURLE_OK)
		return acmera_fail(e, ACMERA_ERR_IO, "%s %s: %s", method, url,
		                   errbuf[0] ? errbuf : curl_easy_strerror(cc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
		c->new_connection = conns > 0;
	if (!r->body && !(r->body = calloc(1, 1)))
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	log_event(LOG_LVL_DEBUG, "est.client",
	          "method=%s url=%s status=%ld bytes=%zu new_connection=%s resumed=%s binding=%s",
	          method, log_qv(url), r->status, r->len, c->new_connection ? "yes" : "no",
	          c->cb.resumed ? "yes" : "no", c->cb.len ? c->cb.type : "none");
	return 0;
}

int est_client_get(struct est_client *c, const char *op, struct est_response *r,
                   struct acmera_errmsg *e)
{
	curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	return perform(c, "GET", op, NULL, r, e);
}

int est_client_post(struct est_client *c, const char *op, const char *content_type,
                    const void *body, size_t len, struct est_response *r, struct acmera_errmsg *e)
{
	char ct[256];
	struct curl_slist *headers = NULL, *h2 = NULL;
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	memset(r, 0, sizeof(*r));
	if (!(headers = curl_slist_append(NULL, ct)) ||
	    !(h2 = curl_slist_append(headers, "Expect:"))) {
		curl_slist_free_all(headers);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	curl_easy_setopt(c->h, CURLOPT_POST, 1L);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	int rc = perform(c, "POST", op, h2, r, e);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(h2);
	return rc;
}

int est_client_server_cert(struct est_client *c, X509 **out, struct acmera_errmsg *e)
{
	struct curl_certinfo *ci = NULL;
	*out = NULL;
	if (curl_easy_getinfo(c->h, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
	    ci->num_of_certs < 1)
		return acmera_fail(e, ACMERA_ERR_PROTO, "the server's TLS certificate is unknown");
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
		if (strncmp(s->data, "Cert:", 5) != 0)
			continue;
		BIO *b = BIO_new_mem_buf(s->data + 5, -1);
		X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!x)
			break;
		*out = x;
		return 0;
	}
	return acmera_fail(e, ACMERA_ERR_PROTO, "cannot read the server's TLS certificate");
}

int est_client_channel_binding(const struct est_client *c, char b64[EST_BINDING_B64_MAX],
                               const char **type, struct acmera_errmsg *e)
{
	b64[0] = '\0';
	*type = NULL;
	if (c->cb.len == 0)
		return acmera_fail(e, ACMERA_ERR_PROTO, "no TLS channel binding: %s",
		                   c->cb.why.text);
	char *s = b64_encode(c->cb.v, c->cb.len, 0);
	if (!s)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	int rc = 0;
	if (strlen(s) >= EST_BINDING_B64_MAX)
		rc = acmera_fail(e, ACMERA_ERR_PROTO, "TLS channel binding too long");
	else
		memcpy(b64, s, strlen(s) + 1);
	*type = rc ? NULL : c->cb.type;
	free(s);
	return rc;
}

int est_client_new_connection(const struct est_client *c)
{
	return c->new_connection;
}
